"""One engine per process, created lazily; disposed after fork by the worker."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

from prometheus_client import Counter
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.settings import settings

# every SQL statement this process sends, by the program it runs in (gunicorn: the API; celery: a worker);
# bench/platform_ceiling.py divides them by the essays: statements per essay
STATEMENTS = Counter("eduq_db_statements", "SQL statements sent to the database", ["program"])
_PROGRAM = os.path.basename(sys.argv[0] or "python")[:40] if sys.argv else "python"

_engine: Engine | None = None
DB_ERRORS = (OperationalError, InterfaceError)  # the database is away: retry later, never fail the work
_factory: sessionmaker[Session] | None = None
_pid: int | None = None


def _count(*_args) -> None:
    STATEMENTS.labels(_PROGRAM).inc()


def _make_engine(url: str) -> Engine:
    eng = _new_engine(url)
    event.listen(eng, "before_cursor_execute", _count)
    return eng


def _new_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        eng = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _rec):  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return eng
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings().db_pool_size,
        max_overflow=settings().db_max_overflow,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
    )


def engine() -> Engine:
    global _engine, _factory, _pid
    if _engine is None or _pid != os.getpid():
        if _engine is not None:
            # Inherited across fork: never reuse the parent's connections.
            _engine.dispose(close=False)
        _engine = _make_engine(settings().database_url)
        _factory = sessionmaker(_engine, expire_on_commit=False)
        _pid = os.getpid()
    return _engine


def session_factory() -> sessionmaker[Session]:
    engine()
    assert _factory is not None
    return _factory


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error, always closed."""
    s = session_factory()()
    try:
        with s.begin():
            yield s
    finally:
        s.close()


def copy_rows(s: Session, table, rows: list[dict]) -> None:
    """Insert many rows of `table` (a Table) in the session's transaction: Postgres's COPY (about half the
    client CPU of a multi-row INSERT for a class of 30 essays, and no statement for the server to plan), or a
    Core executemany elsewhere (SQLite). Every row must have the same keys; no defaults are applied here."""
    if not rows:
        return
    if s.get_bind().dialect.name != "postgresql":
        s.execute(table.insert(), rows)
        return
    cols = list(rows[0])
    raw = s.connection().connection.driver_connection
    with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row([r[c] for c in cols])


def reset_engine() -> None:
    """Drop the engine (after fork, or when tests switch databases)."""
    global _engine, _factory, _pid
    if _engine is not None:
        _engine.dispose(close=_pid == os.getpid())
    _engine = _factory = _pid = None
