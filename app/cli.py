"""The `eduq` command line."""
from __future__ import annotations

import sys

import click


@click.group()
def main() -> None:
    """EduQueue administration."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Bring the database named by DATABASE_URL to the newest schema."""
    from .config import settings
    from .migrate import upgrade

    upgrade(settings().database_url, revision)
    click.echo(f"database at {revision}")


@main.group()
def teachers() -> None:
    """Teachers and their API tokens."""


@teachers.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--school", default="Default School", show_default=True)
@click.option("--role", type=click.Choice(["teacher", "admin"]), default="teacher", show_default=True)
def teachers_create(email: str, name: str, school: str, role: str) -> None:
    """Create a teacher (or add a token to an existing one); prints the token last."""
    from .auth import create_teacher
    from .db import session_scope

    with session_scope() as s:
        teacher, token = create_teacher(s, email=email, name=name, school=school, role=role)
        click.echo(f"teacher {teacher.id} ({teacher.email}, {teacher.role}) school {teacher.school_id}")
    click.echo("token (shown once, only its hash is stored):")
    click.echo(token)


@main.group()
def grader() -> None:
    """Graders: train and evaluate."""


@grader.command("train-default")
@click.option("--data", default="../shared/data/asap/train.jsonl", show_default=True)
@click.option("--out", default=None, help="Folder for the head (default: the shipped one).")
def grader_train_default(data: str, out: str | None) -> None:
    """Rebuild the default grader's head from the shared ASAP data."""
    from workers.grader import train

    args = ["--data", data] + (["--out", out] if out else [])
    sys.exit(train.main(args))


@grader.command("eval")
@click.option("--model", "model", required=True,
              help="'default' (alias 'asap': the shipped grader trained on ASAP train.jsonl) or a head file path.")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="JSON lines with prompt, essay, score; rubrics.json must sit beside it.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the JSON report.")
@click.option("--limit", type=int, default=None, help="Only the first N lines.")
def grader_eval(model: str, data: str, out: str, limit: int | None) -> None:
    """Grade every line with its prompt's rubric and write QWK per prompt and the mean."""
    import json
    from pathlib import Path

    from workers.grader.default import DefaultGrader
    from workers.grader.evaluate import evaluate

    if model in ("default", "asap"):
        g = DefaultGrader.load()
    elif Path(model).is_file():
        g = DefaultGrader.load(head_path=model)
    else:
        raise click.BadParameter(f"unknown model {model!r}: use default, asap or a head .npz path", param_hint="--model")
    res = evaluate(g, data, limit)
    report = {"model": model, "model_version": g.version, "data": data, "n": res["n"],
              "mean_qwk": res["mean_qwk"], "prompts": res["per_prompt"],
              "needs_review_share": res["needs_review_share"], "mean_confidence": res["mean_confidence"],
              "seconds": res["seconds"]}
    Path(out).write_text(json.dumps(report, indent=2) + "\n")
    for p, v in res["per_prompt"].items():
        click.echo(f"prompt {p}: QWK {v['qwk']:.4f} (n={v['n']})")
    click.echo(f"mean QWK {res['mean_qwk']:.4f} -> {out}")


if __name__ == "__main__":  # pragma: no cover
    main()
