"""The whole platform path for `make bench`: HTTP -> Postgres -> Redis queue -> Celery worker ->
Postgres -> polling, timed from the first POST to the last job finished."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts import load  # noqa: E402
from tests.conftest import create_database, drop_database, free_port  # noqa: E402

BIN = Path(sys.executable).parent


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError("API exited")
        time.sleep(0.2)
    raise TimeoutError(url)


def peak_rss_mib(pid: int) -> float:
    """The largest peak resident set (VmHWM) of a process and its children: a Celery worker's pool child is
    the process that holds the model."""
    best, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) / 1024)
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split()]
        except OSError:
            continue
    return best


def run_platform(jobs: list[dict], log_dir: Path, redis_url: str = "redis://127.0.0.1:6379/11",
                 extra_env: dict | None = None, stats: dict | None = None) -> tuple[float, list[list[dict]]]:
    """Submit each job body (a grading request), wait for all, return (seconds, results per job).

    The worker is started and warmed up (model loaded, ready) before the clock starts. `stats`, when given,
    receives the worker's peak RSS (MiB) and its model-load log line."""
    import redis

    name = f"eduq_bench_{uuid.uuid4().hex[:8]}"
    db_url = create_database(name)
    redis.Redis.from_url(redis_url).flushdb()
    env = dict(os.environ, DATABASE_URL=db_url, CELERY_BROKER_URL=redis_url, PYTHONUNBUFFERED="1",
               EDUQ_VAR_DIR=str(log_dir), EDUQ_LOG_FORMAT="text", **(extra_env or {}))
    subprocess.run([str(BIN / "eduq"), "db", "upgrade"], env=env, check=True, cwd=ROOT, capture_output=True)
    out = subprocess.run([str(BIN / "eduq"), "teachers", "create", "--email", "bench@example.org", "--name", "Bench"],
                         env=env, check=True, cwd=ROOT, capture_output=True, text=True)
    headers = {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    procs = []
    try:
        api = subprocess.Popen([str(BIN / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "8", "-b",
                                f"127.0.0.1:{port}", "app.wsgi:app"], env=env, cwd=ROOT, start_new_session=True,
                               stdout=open(log_dir / "bench-api.log", "wb"), stderr=subprocess.STDOUT)
        procs.append(api)
        wlog = log_dir / "bench-worker.log"
        worker = subprocess.Popen([str(BIN / "celery"), "-A", "workers.celery_app", "worker", "-Q", "grading", "-c", "1",
                                   "-P", "prefork", "-n", f"bench-{uuid.uuid4().hex[:6]}@%h", "--without-gossip",
                                   "--without-mingle", "-l", "INFO"], env=env, cwd=ROOT, start_new_session=True,
                                  stdout=open(wlog, "wb"), stderr=subprocess.STDOUT)
        procs.append(worker)
        _wait_http(base + "/readyz", api)
        load.wait_worker(worker, wlog)
        for line in wlog.read_text(errors="replace").splitlines():
            if any(s in line for s in ("loaded in", "precision probe", "encoder variant", "models ready")):
                print("  worker:", line.split("] ", 1)[-1].strip(), flush=True)
        t0 = time.perf_counter()
        views = []
        for body in jobs:
            r = requests.post(base + "/api/v1/grading-jobs", json=body, headers=headers, timeout=60)
            r.raise_for_status()
            views.append(r.json()["job"])
        for i, v in enumerate(views):
            while v["status"] not in ("succeeded", "failed", "cancelled"):
                v = requests.get(base + v["links"]["self"] + "?wait=10", headers=headers, timeout=30).json()["job"]
            views[i] = v
        elapsed = time.perf_counter() - t0
        if stats is not None:
            stats["worker_peak_rss_mib"] = peak_rss_mib(worker.pid)
        results = []
        for v in views:
            page = requests.get(base + v["links"]["results"] + "?limit=1000", headers=headers, timeout=60).json()
            results.append(page["results"])
        return elapsed, results
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        drop_database(name)
