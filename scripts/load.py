#!/usr/bin/env python
"""Load test of the whole platform: HTTP -> Postgres -> Redis -> Celery worker -> Postgres -> polls.

    python scripts/load.py --essays 10000 --jobs 500 --clients 20 [--out var/load.json]

Starts its own API (gunicorn) and grading worker against a FRESH database (dropped at the end)
and its own Redis db, like bench/platform_path.py. Essay texts are read at run time from
../shared/data/asap/dev.jsonl (never copied). Each of --clients threads submits its share of the
jobs (each with an Idempotency-Key), then polls them until finished: a round of conditional GETs
(If-None-Match with the last ETag, so an unchanged job costs a 304) every --poll-every seconds (5), or,
with --poll-wait S, one job at a time by long-poll (`GET /jobs/{id}?wait=S`: the API answers when the job
changes, so a client holds one request at a time instead of a round per interval). Reports:

- correctness from Postgres: jobs finished, essays lost (neither done nor failed), results
  duplicated (results beyond one per essay), results returned by the API;
- API latency p50/p99 of submissions (POST /grading-jobs) and polls (GET /jobs/{id});
- the worker child's RSS (/proc/<pid>/status VmRSS, every second) and whether it is flat after
  warm-up (mean of the first quartile of samples vs the last).

Prints a table and writes the same figures as JSON. Exit status 1 if anything was lost or duplicated.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import create_database, drop_database, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DATA = ROOT.parent / "shared" / "data" / "asap" / "dev.jsonl"
RUBRIC = {"name": "Load test rubric", "prompt": "Write a persuasive letter.",
          "scale": {"min": 1, "max": 6, "step": 1},
          "traits": [{"name": "organization", "scale": {"min": 1, "max": 6, "step": 1}}]}
FINISHED = ("succeeded", "failed", "cancelled")


def load_texts() -> list[str]:
    with open(DATA) as fh:
        return [json.loads(line)["essay"] for line in fh if line.strip()]


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]


class RssSampler(threading.Thread):
    """VmRSS of the worker's pool child (the process that holds the model), every second."""

    def __init__(self, parent_pid: int):
        super().__init__(daemon=True)
        self.parent_pid, self.samples, self.stop_ev = parent_pid, [], threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stop_ev.is_set():
            for child in children(self.parent_pid):
                kib = rss_kib(child)
                if kib:
                    self.samples.append((round(time.monotonic() - self.t0, 1), child, kib))
                    break
            self.stop_ev.wait(1.0)


def rss_summary(samples: list[tuple[float, int, int]], warmup_s: float) -> dict:
    after = [s[2] for s in samples if s[0] >= warmup_s] or [s[2] for s in samples]
    if len(after) < 4:
        return {"samples": len(samples), "flat": None}
    q = len(after) // 4
    first, last = statistics.mean(after[:q]), statistics.mean(after[-q:])
    growth = (last - first) / first * 100
    return {"samples": len(samples), "samples_after_warmup": len(after), "warmup_s": round(warmup_s, 1),
            "first_quartile_mib": round(first / 1024, 1), "last_quartile_mib": round(last / 1024, 1),
            "max_mib": round(max(after) / 1024, 1), "growth_pct": round(growth, 2), "flat": abs(growth) < 10.0,
            "pids": sorted({s[1] for s in samples}),
            # the curve, one point every ~10 samples: [seconds since start, MiB]
            "series_mib": [[s[0], round(s[2] / 1024, 1)] for s in samples[::10]]}


def db_counts(db_url: str, job_ids: list[str]) -> dict:
    from sqlalchemy import create_engine, text

    eng = create_engine(db_url)
    with eng.connect() as c:
        def q(sql: str) -> list:
            return c.execute(text(sql), {"ids": job_ids}).all()

        jobs = dict(q("SELECT status, count(*) FROM jobs WHERE id = ANY(:ids) GROUP BY status"))
        essays = dict(q("SELECT status, count(*) FROM essays WHERE job_id = ANY(:ids) GROUP BY status"))
        n_results = q("SELECT count(*) FROM grading_results WHERE job_id = ANY(:ids)")[0][0]
        max_per = q("SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM grading_results "
                    "WHERE job_id = ANY(:ids) GROUP BY essay_id) x")[0][0]
        totals = q("SELECT coalesce(sum(total), 0), coalesce(sum(done), 0), coalesce(sum(failed), 0) "
                   "FROM jobs WHERE id = ANY(:ids)")[0]
        inconsistent = q("SELECT count(*) FROM jobs j WHERE id = ANY(:ids) AND (j.done <> (SELECT count(*) FROM essays e "
                         "WHERE e.job_id = j.id AND e.status IN ('done','failed')) OR j.total <> (SELECT count(*) "
                         "FROM essays e WHERE e.job_id = j.id))")[0][0]
    eng.dispose()
    done, failed = essays.get("done", 0), essays.get("failed", 0)
    return {"jobs_by_status": jobs, "essays_by_status": essays, "essays_total": int(totals[0]),
            "results": n_results, "max_results_per_essay": max_per,
            "lost": int(totals[0]) - done - failed, "duplicated": max(0, n_results - done),
            "inconsistent_jobs": inconsistent}


def job_bodies(texts: list[str], n_essays: int, n_jobs: int, model: str = "default") -> list[dict]:
    """The jobs' request bodies: n_essays essays spread over n_jobs jobs, texts taken in turn."""
    per_job = [n_essays // n_jobs + (1 if j < n_essays % n_jobs else 0) for j in range(n_jobs)]
    bodies, k = [], 0
    for j, n in enumerate(per_job):
        essays = [{"id": f"j{j}-e{i}", "text": texts[(k + i) % len(texts)]} for i in range(n)]
        k += n
        bodies.append({"rubric": RUBRIC, "essays": essays, "model": model})
    return bodies


def stack_env(db_url: str, redis_url: str, log_dir: Path) -> dict:
    """Environment of the API, the worker and the eduq commands run for the load test."""
    return dict(os.environ, DATABASE_URL=db_url, CELERY_BROKER_URL=redis_url, PYTHONUNBUFFERED="1",
                EDUQ_VAR_DIR=str(log_dir), EDUQ_LOG_FORMAT="text", EDUQ_RATE_LIMIT="", EDUQ_SUBMIT_RATE_LIMIT="",
                OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))


def prepare_db(env: dict) -> dict:
    """Migrate the fresh database and create the load teacher; returns its Authorization header."""
    subprocess.run([str(BIN / "eduq"), "db", "upgrade"], env=env, check=True, cwd=ROOT, capture_output=True)
    made = subprocess.run([str(BIN / "eduq"), "teachers", "create", "--email", "load@example.org", "--name", "Load"],
                          env=env, check=True, cwd=ROOT, capture_output=True, text=True)
    return {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}


def start_api(port: int, env: dict, log_dir: Path) -> subprocess.Popen:
    """gunicorn (2 gthread workers) serving the API on 127.0.0.1:port, logging to load-api.log."""
    return subprocess.Popen([str(BIN / "gunicorn"), "-w", "2", "-k", "gthread", "--threads", "8", "-b",
                             f"127.0.0.1:{port}", "--timeout", "120", "app.wsgi:app"], env=env, cwd=ROOT,
                            start_new_session=True, stdout=open(log_dir / "load-api.log", "wb"),
                            stderr=subprocess.STDOUT)


def start_worker(env: dict, wlog: Path) -> subprocess.Popen:
    """A one-process Celery worker on the grading and maintenance queues, logging to wlog (several of them:
    each its own process, the way a deployment scales workers out)."""
    return subprocess.Popen([str(BIN / "celery"), "-A", "workers.celery_app", "worker", "-Q",
                             "grading,maintenance", "-c", "1", "-P", "prefork", "-n",
                             f"load-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle",
                             "-l", "INFO"], env=env, cwd=ROOT, start_new_session=True,
                            stdout=open(wlog, "wb"), stderr=subprocess.STDOUT)


def wait_api(base: str, api: subprocess.Popen, log_dir: Path) -> None:
    """Until /readyz answers 200; RuntimeError with the log's tail if the API dies or 120 s pass."""
    deadline = time.time() + 120
    while True:
        try:
            if requests.get(base + "/readyz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        if api.poll() is not None or time.time() > deadline:
            raise RuntimeError((log_dir / "load-api.log").read_text(errors="replace")[-3000:])
        time.sleep(0.2)


# the Celery worker is up AND its pool child has loaded and warmed up every grading model (worker_process_init,
# several seconds after "ready."; a run timed from "ready." alone counts that load as grading time)
WORKER_READY = ("ready.", "grading models ready")


def wait_worker(worker: subprocess.Popen, wlog: Path) -> None:
    """Until the worker logs WORKER_READY; RuntimeError with the log's tail if it dies or 300 s pass."""
    deadline = time.time() + 300
    while not all(s in wlog.read_text(errors="replace") for s in WORKER_READY):
        if worker.poll() is not None or time.time() > deadline:
            raise RuntimeError(wlog.read_text(errors="replace")[-3000:])
        time.sleep(0.2)


class Clients:
    """The client threads: each submits jobs from the shared queue, then polls its own jobs until finished."""

    def __init__(self, bodies: list[dict], base: str, headers: dict, timeout_s: float, poll_every_s: float,
                 poll_wait_s: float = 0.0):
        self.base, self.headers, self.poll_every_s, self.poll_wait_s = base, headers, poll_every_s, poll_wait_s
        self.local = threading.local()  # each client thread's own HTTP session (keep-alive)
        self.work: queue.Queue = queue.Queue()
        for j, b in enumerate(bodies):  # encoded before the clock starts: the load generator shares the CPUs
            self.work.put((j, json.dumps(b).encode()))
        self.submit_ms: list[float] = []
        self.poll_ms: list[float] = []
        self.errors: list[str] = []
        self.job_ids: list[str | None] = [None] * len(bodies)
        self.first_finished: list[float] = []
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.end_by = time.time() + timeout_s

    def run(self, n_clients: int) -> float:
        """Run n_clients client threads to the end; returns the seconds since the clients' start."""
        threads = [threading.Thread(target=self.client, args=(c,), daemon=True) for c in range(n_clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - self.t0

    def client(self, c: int) -> None:
        """One client: submit jobs until the queue is empty, then poll them."""
        mine: list[str] = []
        while True:
            try:
                j, body = self.work.get_nowait()
            except queue.Empty:
                break
            self.submit(j, body, mine)
        self.poll(mine)

    def error(self, msg: str) -> None:
        """Record a client error."""
        with self.lock:
            self.errors.append(msg)

    def submit(self, j: int, body: bytes, mine: list[str]) -> None:
        """POST job j (same Idempotency-Key each time, at most 10 tries); its id goes to job_ids and mine."""
        key = f"load-{j}"
        for _ in range(10):
            s0 = time.perf_counter()
            try:
                r = self.http().post(self.base + "/api/v1/grading-jobs", data=body, timeout=60,
                                     headers={**self.headers, "Idempotency-Key": key, "Content-Type": "application/json"})
            except requests.RequestException as e:
                self.error(f"POST job {j}: {type(e).__name__}")
                time.sleep(1)
                continue
            ms = (time.perf_counter() - s0) * 1000
            if r.status_code in (200, 202):
                with self.lock:
                    self.submit_ms.append(ms)
                self.job_ids[j] = r.json()["job"]["id"]
                mine.append(self.job_ids[j])
                return
            self.error(f"POST job {j}: {r.status_code} {r.text[:200]}")
            time.sleep(float(r.headers.get("Retry-After", 1)))

    def http(self) -> requests.Session:
        """This thread's session: connections kept alive between its requests, as an API client would."""
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def poll(self, mine: list[str]) -> None:
        """Rounds of conditional GETs of the unfinished jobs, every poll_every_s, until all finish or time is up;
        with poll_wait_s, long-polls of one job after another instead."""
        left = list(mine)
        etags: dict[str, str] = {}
        if self.poll_wait_s:
            for jid in mine:
                while jid in left and time.time() < self.end_by:
                    self.poll_one(jid, etags, left)
            return
        while left and time.time() < self.end_by:
            for jid in list(left):
                self.poll_one(jid, etags, left)
            time.sleep(self.poll_every_s)

    def poll_one(self, jid: str, etags: dict[str, str], left: list[str]) -> None:
        """GET one job (If-None-Match with its last ETag); a finished job leaves ``left``."""
        s0 = time.perf_counter()
        cond = {"If-None-Match": etags[jid]} if jid in etags else {}
        wait = f"?wait={self.poll_wait_s:g}" if self.poll_wait_s else ""
        try:
            r = self.http().get(f"{self.base}/api/v1/jobs/{jid}{wait}", headers={**self.headers, **cond},
                                timeout=60 + self.poll_wait_s)
        except requests.RequestException as e:
            self.error(f"GET {jid}: {type(e).__name__}")
            return
        ms = (time.perf_counter() - s0) * 1000
        with self.lock:
            self.poll_ms.append(ms)
        if r.status_code == 200:
            etags[jid] = r.headers.get("ETag", "")
            if r.json()["job"]["status"] in FINISHED:
                left.remove(jid)
                with self.lock:
                    self.first_finished.append(time.monotonic() - self.t0)


def results_returned(base: str, headers: dict, accepted: list[str]) -> int:
    """Results the API returns for the accepted jobs, every page."""
    returned = 0
    for jid in accepted:
        cursor = None
        while True:
            url = f"{base}/api/v1/jobs/{jid}/results?limit=1000" + (f"&cursor={cursor}" if cursor else "")
            page = requests.get(url, headers=headers, timeout=60).json()
            returned += len(page["results"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return returned


def make_report(n_essays: int, n_jobs: int, n_clients: int, cl: Clients, accepted: list[str], returned: int,
                counts: dict, elapsed: float, rss_samples: list) -> dict:
    """The figures of a run (see the module's docstring), with "ok"."""
    # warm-up: until the first job finished (model loaded, first batches run), at least 10 s
    warmup = max(10.0, min(cl.first_finished) if cl.first_finished else 10.0)
    submit_ms, poll_ms, errors = cl.submit_ms, cl.poll_ms, cl.errors
    report = {
        "command": f"scripts/load.py --essays {n_essays} --jobs {n_jobs} --clients {n_clients}",
        "essays": n_essays, "jobs": n_jobs, "clients": n_clients, "accepted_jobs": len(accepted),
        "finished_jobs": sum(v for k, v in counts["jobs_by_status"].items() if k in FINISHED),
        "seconds": round(elapsed, 1), "essays_per_s": round(n_essays / elapsed, 1),
        "results_returned_by_api": returned, **counts,
        "submit_ms": {"n": len(submit_ms), "p50": _r(pct(submit_ms, 50)), "p99": _r(pct(submit_ms, 99))},
        "poll_ms": {"n": len(poll_ms), "p50": _r(pct(poll_ms, 50)), "p99": _r(pct(poll_ms, 99))},
        "worker_rss": rss_summary(rss_samples, warmup),
        "client_errors": len(errors), "client_error_examples": errors[:5],
    }
    report["ok"] = (report["accepted_jobs"] == n_jobs and report["finished_jobs"] == n_jobs and
                    report["lost"] == 0 and report["duplicated"] == 0 and returned == n_essays and
                    counts["inconsistent_jobs"] == 0)
    return report


def stop_procs(procs: list[subprocess.Popen]) -> None:
    """SIGTERM every process group, wait up to 30 s each, SIGKILL the ones still there."""
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


def run(n_essays: int, n_jobs: int, n_clients: int, out: Path | None, log_dir: Path,
        redis_url: str, timeout_s: float, keep_db: bool = False, poll_every_s: float = 5.0,
        model: str = "default", workers: int = 1, extra_env: dict | None = None, on_db=None,
        poll_wait_s: float = 0.0) -> dict:
    """One load test against a fresh database and its own API and worker(s) (see the module's docstring).
    on_db(db_url, report): called with the database before it is dropped (bench/platform.py reads it)."""
    import redis

    bodies = job_bodies(load_texts(), n_essays, n_jobs, model)
    name = f"eduq_load_{uuid.uuid4().hex[:8]}"
    db_url = create_database(name)
    redis.Redis.from_url(redis_url).flushdb()
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**stack_env(db_url, redis_url, log_dir), **(extra_env or {})}
    headers = prepare_db(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    sampler = None
    try:
        api = start_api(port, env, log_dir)
        procs.append(api)
        wlogs = [log_dir / f"load-worker{k or ''}.log" for k in range(workers)]
        started = [start_worker(env, w) for w in wlogs]
        procs += started
        worker = started[0]
        wait_api(base, api, log_dir)
        for w, wl in zip(started, wlogs):
            wait_worker(w, wl)
        sampler = RssSampler(worker.pid)
        sampler.start()

        cl = Clients(bodies, base, headers, timeout_s, poll_every_s, poll_wait_s)
        elapsed = cl.run(n_clients)
        sampler.stop_ev.set()
        sampler.join(timeout=5)
        accepted = [j for j in cl.job_ids if j]
        returned = results_returned(base, headers, accepted)
        counts = db_counts(db_url, accepted)
        report = make_report(n_essays, n_jobs, n_clients, cl, accepted, returned, counts, elapsed, sampler.samples)
        if on_db:
            on_db(db_url, report)
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2))
        return report
    finally:
        if sampler:
            sampler.stop_ev.set()
        stop_procs(procs)
        if not keep_db:
            drop_database(name)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def table(rep: dict) -> str:
    rss = rep["worker_rss"]
    rows = [
        ("jobs accepted / finished", f"{rep['accepted_jobs']} / {rep['finished_jobs']} of {rep['jobs']}"),
        ("essays", f"{rep['essays_total']} ({rep['essays_by_status']})"),
        ("lost", rep["lost"]), ("duplicated", rep["duplicated"]),
        ("results returned by the API", rep["results_returned_by_api"]),
        ("wall time", f"{rep['seconds']} s ({rep['essays_per_s']} essays/s)"),
        ("submit latency p50 / p99", f"{rep['submit_ms']['p50']} / {rep['submit_ms']['p99']} ms (n={rep['submit_ms']['n']})"),
        ("poll latency p50 / p99", f"{rep['poll_ms']['p50']} / {rep['poll_ms']['p99']} ms (n={rep['poll_ms']['n']})"),
        ("worker RSS first / last quartile", f"{rss.get('first_quartile_mib')} / {rss.get('last_quartile_mib')} MiB "
                                             f"(growth {rss.get('growth_pct')}%, max {rss.get('max_mib')} MiB, "
                                             f"{rss.get('samples')} samples)"),
        ("RSS flat after warm-up", rss.get("flat")),
        ("client errors", rep["client_errors"]),
        ("OK", rep["ok"]),
    ]
    w = max(len(r[0]) for r in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--essays", type=int, default=10000)
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "load.json")
    ap.add_argument("--log-dir", type=Path, default=ROOT / "var" / "load-logs")
    ap.add_argument("--redis-url", default=os.environ.get("EDUQ_LOAD_REDIS_URL", "redis://127.0.0.1:6379/12"))
    ap.add_argument("--timeout", type=float, default=3600, help="give up polling after this many seconds")
    ap.add_argument("--keep-db", action="store_true")
    ap.add_argument("--poll-every", type=float, default=5.0,
                    help="seconds between a client's rounds of status polls (conditional GETs with If-None-Match)")
    ap.add_argument("--poll-wait", type=float, default=0.0,
                    help="long-poll each job with ?wait= this many seconds instead of rounds of polls")
    a = ap.parse_args(argv)
    rep = run(a.essays, a.jobs, a.clients, a.out, a.log_dir, a.redis_url, a.timeout, a.keep_db, a.poll_every,
              poll_wait_s=a.poll_wait)
    print(table(rep))
    print(f"JSON: {a.out}")
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
