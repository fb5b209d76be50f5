"""The `eduq` command line.

Every command checks its arguments before it imports a model library or touches a model: a missing file,
a data file without rubrics.json beside it, an unknown --model, an --out that cannot be written or a
malformed --lopo file is a one-line usage error on stderr and exit status 2 (click's own handling). The
heavy imports (workers.ml, torch) stay inside the command bodies, after the checks.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

DEFAULT_TRAIN = "../shared/data/asap/train.jsonl"
LOPO_COMPUTE = ":compute:"  # what a bare `--lopo` (no file) stands for


def _rubrics_beside(path: Path) -> dict:
    """rubrics.json next to a data file, as {prompt id: rubric}; raises ValueError with a one-line reason."""
    rub = path.parent / "rubrics.json"
    if not rub.is_file():
        raise ValueError(f"no rubrics.json beside {path} (the data folder needs rubrics.json next to the JSON lines)")
    try:
        prompts = json.loads(rub.read_text()).get("prompts")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"{rub} is not readable JSON: {str(e).splitlines()[0]}") from e
    if not isinstance(prompts, dict) or not prompts:
        raise ValueError(f'{rub} has no "prompts" object (expected {{"prompts": {{"1": {{...}}}}}})')
    return prompts


class DataFile(click.Path):
    """A JSON-lines file of essays (prompt, essay, score) with rubrics.json beside it."""

    name = "data"

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, readable=True)

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        path = Path(value)
        try:
            prompts = _rubrics_beside(path)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        with path.open(encoding="utf-8", errors="replace") as f:
            first = next((line for line in f if line.strip()), None)
        if first is None:
            self.fail(f"{value} is empty", param, ctx)
        try:
            row = json.loads(first)
        except json.JSONDecodeError:
            self.fail(f"{value} is not JSON lines (its first line does not parse)", param, ctx)
        if not isinstance(row, dict) or not {"prompt", "essay", "score"} <= row.keys():
            self.fail(f"{value}: each line needs prompt, essay and score", param, ctx)
        if str(row["prompt"]) not in prompts:
            self.fail(f"{value}: prompt {row['prompt']} is not in rubrics.json beside it", param, ctx)
        return value


class WritablePath(click.ParamType):
    """A file (or folder) the command may create or overwrite: its nearest existing ancestor is a writable folder."""

    name = "path"

    def __init__(self, folder: bool = False) -> None:
        self.folder = folder

    def convert(self, value, param, ctx):
        path = Path(os.fspath(value))
        what = "folder" if self.folder else "file"
        if path.exists():
            if self.folder != path.is_dir():
                self.fail(f"{path} exists and is not a {what}", param, ctx)
            if not os.access(path, os.W_OK):
                self.fail(f"{path} is not writable", param, ctx)
            return str(path)
        parent = path.absolute().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            self.fail(f"cannot create {path}: {parent} is not a folder", param, ctx)
        if not os.access(parent, os.W_OK | os.X_OK):
            self.fail(f"cannot create {path}: {parent} is not writable", param, ctx)
        return str(path)


class ModelRef(click.ParamType):
    """asap, default, an asap artifacts folder (with manifest.json) or a default-grader head .npz file."""

    name = "model"
    HINT = "use asap, default, an asap artifacts folder (with manifest.json) or a default-grader head .npz file"

    def convert(self, value, param, ctx):
        if value in ("asap", "default"):
            return value
        path = Path(value)
        if path.is_dir():
            if not (path / "manifest.json").is_file():
                self.fail(f"folder {value} has no manifest.json: {self.HINT}", param, ctx)
            return value
        if path.is_file() and path.suffix == ".npz":
            return value
        if path.suffix == ".npz":
            self.fail(f"head file {value} does not exist", param, ctx)
        self.fail(f"unknown model {value!r}: {self.HINT}", param, ctx)


class LopoSource(click.ParamType):
    """A bare --lopo (compute the figures) or the JSON of earlier leave-one-prompt-out figures: a
    {"per_prompt": ..., "mean_qwk": ...} object or an eval report that holds one under "lopo"."""

    name = "file"

    def convert(self, value, param, ctx):
        if value == LOPO_COMPUTE or isinstance(value, dict):
            return value
        path = click.Path(exists=True, dir_okay=False, readable=True).convert(value, param, ctx)
        try:
            d = json.loads(Path(path).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self.fail(f"{path} is not JSON: {str(e).splitlines()[0]}", param, ctx)
        if isinstance(d, dict) and isinstance(d.get("lopo"), dict):
            d = d["lopo"]  # an earlier `eduq grader eval --lopo` report (its own per_prompt is the grader's)
        if not (isinstance(d, dict) and isinstance(d.get("per_prompt"), dict) and "mean_qwk" in d):
            self.fail(f'{path} holds no leave-one-prompt-out figures (a "per_prompt" object and "mean_qwk")', param, ctx)
        return d


def _prompt_list(ctx, param, value: str | None) -> list[str] | None:
    if value is None:
        return None
    prompts = [p.strip() for p in value.split(",") if p.strip()]
    if not prompts or not all(p.isdigit() for p in prompts):
        raise click.BadParameter(f"{value!r} is not a comma-separated list of prompt ids, e.g. 1,2", ctx, param)
    return prompts


def _email(ctx, param, value: str) -> str:
    local, at, domain = value.strip().partition("@")
    if not (local and at and domain and " " not in value.strip()):
        raise click.BadParameter(f"{value!r} is not an e-mail address", ctx, param)
    return value.strip()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--email", required=True, callback=_email)
@click.option("--name", required=True)
@click.option("--school", default="Default School", show_default=True)
@click.option("--role", type=click.Choice(["teacher", "admin"]), default="teacher", show_default=True)
def teachers_create(email: str, name: str, school: str, role: str) -> None:
    """Create a teacher (or add a token to an existing one); prints the token last."""
    if not name.strip():
        raise click.BadParameter("the name is empty", param_hint="--name")
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
@click.option("--data", default=DEFAULT_TRAIN, show_default=True, type=DataFile(),
              help="Training JSON lines; rubrics.json must sit beside it.")
@click.option("--out", default=None, type=WritablePath(folder=True),
              help="Folder for the head (default: the shipped workers/ml/grading/artifacts/).")
def grader_train_default(data: str, out: str | None) -> None:
    """Rebuild the default grader's head from the shared ASAP data."""
    from workers.ml.training import default_head as train

    args = ["--data", data] + (["--out", out] if out else [])
    sys.exit(train.main(args))


@grader.command("train-asap")
@click.option("--data", default=DEFAULT_TRAIN, show_default=True, type=DataFile(),
              help="Training JSON lines; rubrics.json must sit beside it.")
@click.option("--out", default=None, type=WritablePath(folder=True),
              help="Artifacts folder (default: the shipped workers/ml/grading/artifacts/asap).")
@click.option("--prompts", default=None, callback=_prompt_list, help="Only these prompts, e.g. 1,2.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N essays per prompt (smoke runs).")
def grader_train_asap(data: str, out: str | None, prompts: list[str] | None, limit: int | None) -> None:
    """Rebuild the shipped per-prompt ASAP graders from train.jsonl (cross-validated choices; see docs/grading.md)."""
    if prompts:
        known = _rubrics_beside(Path(data))
        unknown = [p for p in prompts if p not in known]
        if unknown:
            raise click.BadParameter(f"prompt {', '.join(unknown)} not in rubrics.json beside {data} "
                                     f"(has {', '.join(sorted(known, key=int))})", param_hint="--prompts")
    from workers.ml.training import asap_stack as asap_train

    args = ["--data", data] + (["--out", out] if out else []) + (["--prompts", ",".join(prompts)] if prompts else []) \
        + (["--limit", str(limit)] if limit else [])
    sys.exit(asap_train.main(args))


@grader.command("eval")
@click.option("--model", "model", required=True, type=ModelRef(),
              help="asap (the shipped per-prompt ASAP graders), default (the rubric-agnostic grader), "
                   "an asap artifacts folder (with manifest.json) or a default-grader head .npz.")
@click.option("--data", required=True, type=DataFile(),
              help="JSON lines with prompt, essay, score (and traits); rubrics.json must sit beside it.")
@click.option("--out", required=True, type=WritablePath(), help="Where to write the JSON report.")
@click.option("--html", "html_path", default=None, type=WritablePath(),
              help="The validity report with plots (default: OUT with .html).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N lines.")
@click.option("--stress/--no-stress", default=True, show_default=True,
              help="Add the review flags' stress set built from the same file.")
@click.option("--stress-per-prompt", type=click.IntRange(min=1), default=40, show_default=True)
@click.option("--lopo", type=LopoSource(), is_flag=False, flag_value=LOPO_COMPUTE, default=None,
              help="Add the default grader's leave-one-prompt-out QWK. Bare --lopo computes it (its recipe fitted "
                   "on seven prompts of the train.jsonl beside DATA, measured on the eighth's essays of all of DATA; "
                   "about 50 s with the embeddings cached in var/cache); --lopo FILE reads the figures from the report "
                   "of an earlier `eduq grader eval --lopo` (or their JSON: per_prompt, mean_qwk).")
def grader_eval(model: str, data: str, out: str, html_path: str | None, limit: int | None, stress: bool,
                stress_per_prompt: int, lopo: str | dict | None) -> None:
    """Grade every line with its prompt's rubric: QWK, exact/adjacent agreement, SMD, confusion matrix,
    trait QWK and calibration per prompt, as JSON and as an HTML validity report."""
    lopo_train = None
    if lopo == LOPO_COMPUTE:
        lopo, lopo_train = None, Path(data).with_name("train.jsonl")
        if not lopo_train.is_file():
            raise click.BadParameter(f"no train.jsonl beside {data} to fit the leave-one-prompt-out recipe on; "
                                     "pass --lopo FILE with earlier figures instead", param_hint="--lopo")
        lopo_train = str(lopo_train)
    for p in (out, html_path):
        if p:
            Path(p).absolute().parent.mkdir(parents=True, exist_ok=True)

    from workers.ml.evaluation.report import render_html
    from workers.ml.evaluation.validity import run_eval

    try:
        rep = run_eval(model, data, limit=limit, stress=stress, stress_per_prompt=stress_per_prompt, lopo=lopo,
                       lopo_train=lopo_train)
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
    if "lopo" in rep:
        click.echo(f"default grader, leave one prompt out: mean QWK {rep['lopo']['mean_qwk']:.4f}")
    click.echo(f"-> {out}, {html}")


if __name__ == "__main__":  # pragma: no cover
    main()
