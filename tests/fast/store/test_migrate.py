"""`eduq db upgrade` on the embedded default: a SQLite file in a folder that does not exist yet (a
fresh clone has no var/) is created with the newest schema. Fast: SQLite only."""
from __future__ import annotations

from sqlalchemy import create_engine, inspect


def test_upgrade_makes_the_sqlite_folder(tmp_path):
    from app.store.migrate import upgrade

    db = tmp_path / "fresh" / "var" / "eduq.db"
    url = f"sqlite:///{db}"
    upgrade(url)
    assert db.is_file()
    eng = create_engine(url)
    try:
        assert {"jobs", "essays", "grading_results", "teachers"} <= set(inspect(eng).get_table_names())
    finally:
        eng.dispose()
