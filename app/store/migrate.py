"""Programmatic Alembic: `eduq db upgrade` and the schema checks in the tests."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from app.settings import settings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config(str(MIGRATIONS / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("version_locations", str(MIGRATIONS / "versions"))
    if database_url:
        cfg.attributes["database_url"] = database_url
    return cfg


def _sqlite_folder(database_url: str | None) -> None:
    """A SQLite file's folder is made first (the embedded default's var/ does not exist in a fresh clone)."""
    url = database_url or settings().database_url
    path = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
    if path and path != ":memory:":
        Path(path).resolve().parent.mkdir(parents=True, exist_ok=True)


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    _sqlite_folder(database_url)
    command.upgrade(alembic_config(database_url), revision)
