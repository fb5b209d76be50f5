"""The body of the `eduq.train` task: a lease in Postgres so that a training run never runs twice.

- The task takes the job's lease atomically (queued -> running, lease_owner = this process,
  lease_until = now + EDUQ_TRAIN_LEASE_S). A redelivered message (past the broker's visibility
  timeout, or after a worker restart) that finds the job running under a live lease, or finished,
  just returns.
- A heartbeat thread extends the lease every EDUQ_TRAIN_HEARTBEAT_S and reads the job's status:
  a cancelled job (DELETE /jobs/{id}) or a lost lease stops the training loop at its next step.
- A lease that expires (the worker died) is not resumed: `reap_training_leases` (called by the
  sweeper) fails the job with the reason `worker_lost`. Nothing partial is kept; submit again.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy import select, update

from app.lifecycle import claims
from app.settings import settings
from app.store.db import session_scope
from app.store.grader_models import model_view
from app.store.tables import GraderModel, Job, TrainingExample, utcnow

log = logging.getLogger("eduq.worker")


def lease_s() -> float:
    return settings().train_lease_s


def heartbeat_s() -> float:
    return settings().train_heartbeat_s  # EDUQ_TRAIN_HEARTBEAT_S, else lease/4 (at least 1 s)


def acquire(job_id: str, owner: str) -> str:
    """'acquired', or why not: 'missing', 'finished', 'busy' (a live lease), 'expired' (failed now)."""
    now = utcnow()
    with session_scope() as s:
        res = s.execute(update(Job).where(Job.id == job_id, Job.kind == "fine_tune", Job.status == "queued")
                        .values(status="running", lease_owner=owner, lease_until=now + timedelta(seconds=lease_s()),
                                heartbeat_at=now, started_at=now, updated_at=now, version=Job.version + 1))
        if res.rowcount == 1:
            return "acquired"
        job = s.get(Job, job_id)
        if job is None:
            return "missing"
        if job.status != "running":
            return "finished"
        until = job.lease_until
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=now.tzinfo)
        if until is not None and until > now:
            return "busy"
    reap_training_leases(only=job_id)
    return "expired"


class Lease:
    """Heartbeat + status watch for one held lease."""

    def __init__(self, job_id: str, owner: str):
        self.job_id, self.owner = job_id, owner
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def start(self) -> "Lease":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set()

    def beat(self) -> bool:
        now = utcnow()
        try:
            with session_scope() as s:
                res = s.execute(update(Job).where(Job.id == self.job_id, Job.lease_owner == self.owner,
                                                  Job.status == "running")
                                .values(heartbeat_at=now, lease_until=now + timedelta(seconds=lease_s())))
                if res.rowcount == 1:
                    return True
                status = s.scalar(select(Job.status).where(Job.id == self.job_id))
        except Exception as exc:  # the database blinked: keep training, the lease has slack
            log.warning("heartbeat for %s failed: %s", self.job_id, type(exc).__name__)
            return True
        (self.cancelled if status == "cancelled" else self.lost).set()
        return False

    def _run(self) -> None:
        while not self._stop.wait(heartbeat_s()):
            if not self.beat():
                return


class Progress:
    """Writes stage/epoch/loss/val_qwk into Job.params['progress'] (shown as progress.detail)."""

    def __init__(self, job_id: str, lease: Lease, min_interval: float = 0.5):
        self.job_id, self.lease, self.min_interval = job_id, lease, min_interval
        self._last = 0.0
        self._stage = None

    def __call__(self, detail: dict, force: bool = False) -> None:
        now = time.monotonic()
        stage_changed = detail.get("stage") != self._stage
        if not (force or stage_changed or now - self._last >= self.min_interval):
            return
        self._last, self._stage = now, detail.get("stage")
        with session_scope() as s:
            job = s.scalar(select(Job).where(Job.id == self.job_id).with_for_update())
            if job is None or job.status != "running" or job.lease_owner != self.lease.owner:
                if job is not None and job.status == "cancelled":
                    self.lease.cancelled.set()
                else:
                    self.lease.lost.set()
                return
            params = dict(job.params or {})
            params["progress"] = {**detail, "updated_at": utcnow().isoformat()}
            job.params = params
            if detail.get("stage") == "training" and detail.get("epochs"):
                job.total = int(detail["epochs"])
                job.done = int(detail.get("epoch") or 0)
            job.version += 1
            job.updated_at = utcnow()


def load_job(job_id: str) -> tuple[dict, dict, list[dict]]:
    with session_scope() as s:
        job = s.get(Job, job_id)
        params, rubric = dict(job.params or {}), job.rubric
        rows = s.scalars(select(TrainingExample).where(TrainingExample.job_id == job_id)
                         .order_by(TrainingExample.position)).all()
        examples = [{"text": r.text, "score": r.score, "traits": r.traits or {}, "demographics": r.demographics or {}}
                    for r in rows]
    return params, rubric, examples


def finish(job_id: str, owner: str, *, status: str, error: dict | None = None, model: GraderModel | None = None) -> bool:
    """Finish the job if this process still holds its lease. Returns False if it did not."""
    now = utcnow()
    with session_scope() as s:
        job = s.scalar(select(Job).where(Job.id == job_id).with_for_update())
        if job is None or job.status != "running" or job.lease_owner != owner:
            return False
        params = dict(job.params or {})
        if model is not None:
            s.add(model)
            s.flush()
            params["result"] = {"model": model_view(model)}
            params["progress"] = {**(params.get("progress") or {}), "stage": "done"}
            job.model = model.id
            job.done = job.total or job.done
        job.params = params
        job.status, job.error = status, error
        job.finished_at = job.updated_at = now
        job.lease_until = None
        job.version += 1
        created = job.created_at if job.created_at.tzinfo else job.created_at.replace(tzinfo=now.tzinfo)
        fin = claims.Finished(job.id, job.kind, job.status, (now - created).total_seconds(), bool(job.callback_url))
    claims.after_finish([fin])
    return True


def reap_training_leases(only: str | None = None) -> dict:
    """Fail running fine-tune jobs whose lease expired (their worker died). Called by the sweeper
    (app/lifecycle/sweep.py, which also re-publishes queued ones whose message may be lost)."""
    now = utcnow()
    finished = []
    with session_scope() as s:
        stmt = select(Job).where(Job.kind == "fine_tune", Job.status == "running", Job.lease_until < now)
        if only:
            stmt = stmt.where(Job.id == only)
        for job in s.scalars(stmt.with_for_update(skip_locked=True)).all():
            seen = job.heartbeat_at.isoformat() if job.heartbeat_at else "never"
            job.status = "failed"
            job.error = {"code": "worker_lost",
                         "message": f"The training worker stopped (last heartbeat {seen}); nothing was kept. "
                                    "Submit the job again."}
            job.finished_at = job.updated_at = now
            job.version += 1
            finished.append(claims.Finished(job.id, job.kind, "failed", 0.0, bool(job.callback_url)))
    claims.after_finish(finished)
    if finished:
        log.warning("failed %d fine-tune job(s) whose worker stopped", len(finished))
    return {"reaped": [f.job_id for f in finished]}
