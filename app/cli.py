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
    from app.settings import settings
    from app.store.migrate import upgrade

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
    from app.store.accounts import create_teacher
    from app.store.db import session_scope

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
    from workers.ml.training import default_head as train

    args = ["--data", data] + (["--out", out] if out else [])
    sys.exit(train.main(args))


@grader.command("train-asap")
@click.option("--data", default="../shared/data/asap/train.jsonl", show_default=True)
@click.option("--out", default=None, help="Artifacts folder (default: the shipped workers/ml/grading/artifacts/asap).")
@click.option("--prompts", default=None, help="Only these prompts, e.g. 1,2.")
@click.option("--limit", type=int, default=None, help="Only the first N essays per prompt (smoke runs).")
def grader_train_asap(data: str, out: str | None, prompts: str | None, limit: int | None) -> None:
    """Rebuild the shipped per-prompt ASAP graders from train.jsonl (cross-validated choices; see docs/grading.md)."""
    from workers.ml.training import asap_stack as asap_train

    args = ["--data", data] + (["--out", out] if out else []) + (["--prompts", prompts] if prompts else []) \
        + (["--limit", str(limit)] if limit else [])
    sys.exit(asap_train.main(args))


@grader.command("eval")
@click.option("--model", "model", required=True,
              help="asap (the shipped per-prompt ASAP graders), default (the rubric-agnostic grader), "
                   "an asap artifacts folder or a default-grader head .npz.")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False),
              help="JSON lines with prompt, essay, score (and traits); rubrics.json must sit beside it.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the JSON report.")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
              help="The validity report with plots (default: OUT with .html).")
@click.option("--limit", type=int, default=None, help="Only the first N lines.")
@click.option("--stress/--no-stress", default=True, show_default=True,
              help="Add the review flags' stress set built from the same file.")
@click.option("--stress-per-prompt", type=int, default=40, show_default=True)
@click.option("--lopo", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Include the default grader's leave-one-prompt-out JSON (python -m workers.ml.training.default_head --lopo).")
def grader_eval(model: str, data: str, out: str, html_path: str | None, limit: int | None, stress: bool,
                stress_per_prompt: int, lopo: str | None) -> None:
    """Grade every line with its prompt's rubric: QWK, exact/adjacent agreement, SMD, confusion matrix,
    trait QWK and calibration per prompt, as JSON and as an HTML validity report."""
    import json
    from pathlib import Path

    from workers.ml.evaluation.report import render_html
    from workers.ml.evaluation.validity import run_eval

    try:
        rep = run_eval(model, data, limit=limit, stress=stress, stress_per_prompt=stress_per_prompt, lopo=lopo)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--model") from e
    Path(out).write_text(json.dumps(rep, indent=1) + "\n")
    html = render_html(rep, html_path or Path(out).with_suffix(".html"))
    for p, v in rep["per_prompt"].items():
        traits = ", ".join(f"{t} {q:.3f}" for t, q in (v.get("trait_qwk") or {}).items())
        click.echo(f"prompt {p}: QWK {v['qwk']:.4f} exact {v['exact']:.3f} SMD {v['smd']:+.3f} (n={v['n']})"
                   + (f"; traits: {traits}" if traits else ""))
    click.echo(f"mean QWK {rep['mean_qwk']:.4f}; mean trait QWK {rep.get('mean_trait_qwk', float('nan')):.4f}; "
               f"ECE {rep.get('ece', float('nan')):.4f}")
    if "stress" in rep:
        click.echo(f"stress set: caught {rep['stress']['catch_rate']:.1%}; real essays flagged "
                   f"{rep['stress']['real_flag_rate']:.2%}")
    click.echo(f"-> {out}, {html}")


if __name__ == "__main__":  # pragma: no cover
    main()
