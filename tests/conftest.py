"""Shared fixtures: a fresh Postgres database per test session, Redis, teachers, live processes.

Tests talk to the real Postgres and Redis (see scripts/ensure_services.sh); e2e tests start a real
gunicorn API process and real Celery worker processes.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("EDUQ_TEST_PG_ADMIN_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
REDIS_TEST_URL = os.environ.get("EDUQ_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
# the broker the tests' processes use: Redis, or RabbitMQ with EDUQ_TEST_BROKER_URL=amqp://... (make test runs
# the grading end-to-end tests on both)
BROKER_TEST_URL = os.environ.get("EDUQ_TEST_BROKER_URL", REDIS_TEST_URL)
AMQP_TEST_URL = os.environ.get("EDUQ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")  # the machine's RabbitMQ
BIN = Path(sys.executable).parent
LOOPBACK_RECEIVERS = "127.0.0.1/32"  # EDUQ_CALLBACK_ALLOWLIST for tests whose callback receiver runs here


def _admin_engine():
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def create_database(name: str) -> str:
    eng = _admin_engine()
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    eng.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    eng = _admin_engine()
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


@pytest.fixture(autouse=True)
def _settings_follow_monkeypatch(monkeypatch):
    """The settings are read once per process (app/settings.py); a test that changes the environment
    through monkeypatch reads them again at once, and the next test starts from a fresh read."""
    from app.settings import reset_settings

    real_setenv, real_delenv = monkeypatch.setenv, monkeypatch.delenv

    def setenv(*a, **k):
        real_setenv(*a, **k)
        reset_settings()

    def delenv(*a, **k):
        real_delenv(*a, **k)
        reset_settings()

    monkeypatch.setenv, monkeypatch.delenv = setenv, delenv
    reset_settings()
    yield


def use_env(**env: str) -> None:
    from app.settings import reset_settings
    from app.store.db import reset_engine

    os.environ.update(env)
    reset_settings()
    reset_engine()


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory):
    name = f"eduq_test_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    var = tmp_path_factory.mktemp("var")
    use_env(DATABASE_URL=url, CELERY_BROKER_URL=BROKER_TEST_URL, EDUQ_VAR_DIR=str(var))
    from app.store.migrate import upgrade

    upgrade(url)
    yield url
    from app.store.db import reset_engine

    reset_engine()
    drop_database(name)


@pytest.fixture(scope="session")
def redis_client():
    import redis

    r = redis.Redis.from_url(REDIS_TEST_URL)
    r.flushdb()
    purge_broker()
    yield r
    r.flushdb()
    purge_broker()


def purge_broker(url: str = BROKER_TEST_URL) -> None:
    """Empty a RabbitMQ broker's queues (Redis: flushdb above)."""
    from app.lifecycle.broker import is_amqp, task_queues

    if not is_amqp(url):
        return
    from kombu import Connection

    with Connection(url, connect_timeout=5) as conn:
        ch = conn.channel()
        for q in task_queues(url):
            q(ch).declare()
            q(ch).purge()


@pytest.fixture(scope="session")
def flask_app(pg_url, redis_client):
    from app.web import create_app

    return create_app({"TESTING": True})


@pytest.fixture()
def client(flask_app):
    return flask_app.test_client()


def make_teacher(email: str | None = None, school: str = "Test School", role: str = "teacher") -> tuple[str, str]:
    from app.store.accounts import create_teacher
    from app.store.db import session_scope

    email = email or f"t-{uuid.uuid4().hex[:8]}@example.org"
    with session_scope() as s:
        teacher, token = create_teacher(s, email=email, name="Test Teacher", school=school, role=role)
        return teacher.id, token


@pytest.fixture()
def teacher(pg_url):
    tid, token = make_teacher()
    return {"id": tid, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


@pytest.fixture()
def other_teacher(pg_url):
    tid, token = make_teacher(school="Other School")
    return {"id": tid, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


RUBRIC = {"name": "Argument essay, grade 8", "prompt": "Write a letter to your local newspaper about school uniforms.",
          "scale": {"min": 1, "max": 6, "step": 1},
          "traits": [{"name": "organization", "scale": {"min": 1, "max": 6, "step": 1}}]}


# ----------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict, log_dir: Path):
        self.name, self.args, self.env = name, args, env
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.p: subprocess.Popen | None = None

    def start(self) -> "Proc":
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.output():
                return
            if self.p.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.p.returncode}:\n{self.output()[-4000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} did not print {needle!r} in {timeout}s:\n{self.output()[-4000:]}")

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.p and self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


def proc_env(**extra: str) -> dict:
    env = dict(os.environ)
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "2")})
    env.update(extra)
    return env


def start_api(log_dir: Path, **extra) -> tuple[Proc, str]:
    port = free_port()
    proc = Proc("api", [str(BIN / "gunicorn"), "-w", "2", "--threads", "8", "-k", "gthread", "-b",
                        f"127.0.0.1:{port}", "--timeout", "120", "app.wsgi:app"],
                proc_env(**extra), log_dir).start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except requests.RequestException:
            time.sleep(0.2)
        if proc.p.poll() is not None:
            raise RuntimeError(proc.output())
    raise TimeoutError(proc.output())


def start_worker(log_dir: Path, queues: str = "grading", name: str = "w", **extra) -> Proc:
    proc = Proc(f"worker-{name}", [str(BIN / "celery"), "-A", "workers.celery_app", "worker", "-Q", queues,
                                   "-c", "1", "-P", "prefork", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h",
                                   "--without-gossip", "--without-mingle", "-l", "INFO"],
                proc_env(**extra), log_dir).start()
    proc.wait_for("ready.", timeout=180)
    return proc


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def live_api(pg_url, redis_client, log_dir):
    # the tests' callback receivers listen on loopback, which callbacks may reach only when allowed
    proc, base = start_api(log_dir, EDUQ_CALLBACK_ALLOWLIST=LOOPBACK_RECEIVERS)
    yield base
    proc.stop()


@pytest.fixture(scope="session")
def grading_worker(pg_url, redis_client, log_dir):
    proc = start_worker(log_dir, "grading,maintenance", "grading", EDUQ_GRADING_LEASE_S="15")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def training_worker(pg_url, redis_client, log_dir):
    """A worker on the training queue (fine-tune jobs), with a short lease and heartbeat."""
    proc = start_worker(log_dir, "training", "training", EDUQ_TRAIN_LEASE_S="20", EDUQ_TRAIN_HEARTBEAT_S="1")
    yield proc
    proc.stop()
