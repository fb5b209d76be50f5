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


if __name__ == "__main__":  # pragma: no cover
    main()
