"""Settings, read once from the environment.

Every setting has an embedded default so that `make demo` runs with no server at all
(SQLite and Celery's filesystem transport under ./var). Production sets DATABASE_URL and
CELERY_BROKER_URL (Postgres and Redis). The README's configuration table lists them all.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _var_dir() -> Path:
    return Path(os.environ.get("EDUQ_VAR_DIR", ROOT / "var"))


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    var_dir: Path
    # request limits
    max_body_bytes: int = 20 * 1024 * 1024
    max_essays_per_job: int = 1000
    max_essay_chars: int = 30_000
    max_traits: int = 12
    max_lessons_per_job: int = 20
    # queueing and batching
    grading_max_batch: int = 64
    grading_max_wait_s: float = 0.25
    grading_lease_s: int = 120
    grading_max_attempts: int = 3
    republish_after_s: int = 120
    sweep_interval_s: int = 30
    long_poll_max_s: int = 30
    # limits and privacy (rate limits are per bearer token; "" disables one)
    rate_limit: str = "600/minute;20000/hour"
    submit_rate_limit: str = "120/minute;2000/hour"
    cors_origins: tuple = ()
    retention_days: int = 365
    purge_interval_s: int = 86400
    # misc
    extra: dict = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings() -> Settings:
    var = _var_dir()
    db = os.environ.get("DATABASE_URL") or f"sqlite:///{var / 'eduq.db'}"
    if db.startswith("postgres://"):
        db = "postgresql+psycopg://" + db[len("postgres://"):]
    elif db.startswith("postgresql://"):
        db = "postgresql+psycopg://" + db[len("postgresql://"):]
    broker = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
    return Settings(
        database_url=db,
        broker_url=broker,
        var_dir=var,
        max_body_bytes=_int("EDUQ_MAX_BODY_BYTES", 20 * 1024 * 1024),
        max_essays_per_job=_int("EDUQ_MAX_ESSAYS_PER_JOB", 1000),
        max_essay_chars=_int("EDUQ_MAX_ESSAY_CHARS", 30_000),
        max_lessons_per_job=_int("EDUQ_MAX_LESSONS_PER_JOB", 20),
        grading_max_batch=_int("EDUQ_GRADING_MAX_BATCH", 64),
        grading_max_wait_s=_float("EDUQ_GRADING_MAX_WAIT_S", 0.25),
        grading_lease_s=_int("EDUQ_GRADING_LEASE_S", 120),
        grading_max_attempts=_int("EDUQ_GRADING_MAX_ATTEMPTS", 3),
        republish_after_s=_int("EDUQ_REPUBLISH_AFTER_S", 120),
        sweep_interval_s=_int("EDUQ_SWEEP_INTERVAL_S", 30),
        long_poll_max_s=_int("EDUQ_LONG_POLL_MAX_S", 30),
        rate_limit=os.environ.get("EDUQ_RATE_LIMIT", "600/minute;20000/hour").strip(),
        submit_rate_limit=os.environ.get("EDUQ_SUBMIT_RATE_LIMIT", "120/minute;2000/hour").strip(),
        cors_origins=tuple(o.strip() for o in os.environ.get("EDUQ_CORS_ORIGINS", "").split(",") if o.strip()),
        retention_days=_int("EDUQ_RETENTION_DAYS", 365),
        purge_interval_s=_int("EDUQ_PURGE_INTERVAL_S", 86400),
    )


_settings: Settings | None = None


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment)."""
    global _settings
    _settings = None


SETTING_NAMES = [f.name for f in fields(Settings)]
