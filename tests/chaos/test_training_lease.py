"""A fine-tune job that outlives the broker's visibility timeout does not run twice.

Two training workers with EDUQ_VISIBILITY_TIMEOUT_S=2: while the first trains (minutes-long
runs are normal), Redis redelivers the unacked message to the second. The job holds a lease in
Postgres (Job.lease_owner/lease_until/heartbeat_at, extended by a heartbeat): the redelivered
task finds it busy (or finished) and returns. One run, one model.

Redis's redelivery is kombu's: it runs on a consumer's poll and takes a Redis lock that can be held
for minutes, so a run has gone by without one (received 1x in 131 s, 2026-12-01). When none has come
15 s into the run, the test publishes a copy of the message itself, exactly what a redelivery is, so
the lease is tested on every run."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import start_worker

from .conftest import wait_all_finished

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(420)]
ASAP_DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "asap" / "dev.jsonl"


def _examples(n: int) -> list[dict]:
    out = []
    with open(ASAP_DEV) as fh:
        for line in fh:
            row = json.loads(line)
            if row.get("prompt") == 1:
                out.append({"text": row["essay"], "score": float(row["score"])})
            if len(out) == n:
                break
    return out


def _received(workers) -> int:
    return len(re.findall(r"eduq\.train\[[^\]]+\] received", "".join(w.output() for w in workers)))


def _redeliver_if_redis_did_not(base: str, auth: dict, job_id: str, workers, wait_s: float = 15.0) -> bool:
    """Once the job runs, wait `wait_s` for Redis's redelivery; without one, publish the same task
    message (same task, same job id) to the training queue. Returns whether the test published it."""
    from celery import Celery

    from tests.conftest import REDIS_TEST_URL

    deadline = time.time() + 300
    while time.time() < deadline:
        v = requests.get(f"{base}/api/v1/jobs/{job_id}", headers=auth, timeout=10).json()["job"]
        if v["status"] != "queued":
            break
        time.sleep(0.5)
    until = time.time() + wait_s
    while time.time() < until:
        if _received(workers) >= 2:
            return False
        time.sleep(0.5)
    Celery(broker=REDIS_TEST_URL).send_task("eduq.train", args=[job_id], queue="training")
    return True


def test_training_outliving_visibility_timeout_runs_once(stack_factory, auth, log_dir):
    try:
        from app.store.tables import Job
        assert all(hasattr(Job, f) for f in ("lease_owner", "lease_until", "heartbeat_at"))
        import workers.runtime.training
    except (ImportError, AssertionError) as e:  # pragma: no cover - guards the contract
        pytest.fail(f"fine-tune jobs need a lease (Job.lease_owner/lease_until/heartbeat_at, "
                    f"workers/runtime/training.py): {e}")
    assert ASAP_DEV.exists(), f"the shared ASAP data is missing at {ASAP_DEV}"
    st = stack_factory(beat=False)
    env = {**st.env, "EDUQ_VISIBILITY_TIMEOUT_S": "2", "EDUQ_TRAIN_LEASE_S": "20", "EDUQ_TRAIN_HEARTBEAT_S": "1"}
    workers = [start_worker(log_dir, "training", f"train-{k}", **env) for k in range(2)]
    st.procs.extend(workers)
    # full fine-tuning of the encoder: seconds per step on a CPU, so ~30 steps outlive the 2 s
    # visibility timeout and kombu's restore interval whatever the machine's load
    body = {"name": "chaos lease", "method": "full",
            "rubric": {"name": "ASAP prompt 1", "scale": {"min": 0, "max": 12, "step": 1}},
            "examples": _examples(60), "hyperparameters": {"epochs": 4, "patience": 4, "batch_size": 8}}
    r = requests.post(st.base + "/api/v1/fine-tune-jobs", json=body, headers=auth, timeout=60)
    assert r.status_code == 202, r.text
    job_id = r.json()["job"]["id"]
    injected = _redeliver_if_redis_did_not(st.base, auth, job_id, workers)
    [view] = wait_all_finished(lambda: st.base, auth, [job_id], timeout=360).values()
    time.sleep(3)  # a late redelivery is logged too
    logs = "".join(w.output() for w in workers)
    received = _received(workers)
    skipped = re.findall(rf"training job {job_id} not run here: (\w+)", logs)
    assert view["status"] == "succeeded", view

    from app.store.db import session_scope
    from app.store.tables import GraderModel, Job

    with session_scope() as s:
        job = s.get(Job, job_id)
        n_models = s.scalar(select(func.count()).select_from(GraderModel).where(GraderModel.job_id == job_id))
        took = (job.finished_at - job.started_at).total_seconds()
    assert received >= 2, (f"the message was not redelivered (received {received}x, a copy published by the test: "
                            f"{injected}; the run took {took:.0f}s)")
    assert skipped and set(skipped) <= {"busy", "finished"}, skipped
    assert n_models == 1, f"the job ran {n_models} times"
    assert logs.count(f"training job {job_id} stopped") == 0
