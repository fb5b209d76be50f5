"""The grading worker's loop: claim essays across jobs (app/lifecycle/claims.py), grade each batch
through the process's GradingService (workers/ml/grading/service.py; no database session is open
meanwhile), and write the results while the model runs on the next batch."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from app.lifecycle import claims
from app.settings import settings
from app.store.db import DB_ERRORS
from workers.ml.grading.interface import GradeFailure, GradeRequest
from workers.ml.grading.service import calibrated_id
from workers.runtime import faults, models
from workers.runtime import worker_metrics as metrics

log = logging.getLogger("eduq.worker")
TASK_BUDGET_S = 60.0  # after this, a task stops helping other jobs and returns


class BackgroundWriter:
    """Writes one batch's results on a thread while the model runs on the next batch.

    At most one write is in flight; `wait()` re-raises its error (a database error then retries
    the task: the batch's claims expire and its essays are graded again, never written twice)."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eduq-writer")
        self.pending = None
        self.written = 0

    def submit(self, items, results) -> None:
        self.wait()
        self.pending = self.pool.submit(write_retrying, items, results)

    def wait(self) -> None:
        if self.pending is not None:
            fut, self.pending = self.pending, None
            self.written += fut.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)


def write_retrying(items, results, attempts: int = 3) -> int:
    """claims.write_grading_results, tried again at once on a deadlock or another transient database error:
    a failed write would leave the batch's essays claimed until their lease expires (a write is idempotent:
    only the claim holder writes, one result per essay). Other errors, and the last attempt's, propagate."""
    for attempt in range(1, attempts + 1):
        try:
            return claims.write_grading_results(items, results)
        except DB_ERRORS as exc:
            if attempt == attempts:
                raise
            log.warning("writing a batch failed (%s); writing it again", type(exc.orig).__name__)
            time.sleep(0.05 * attempt)
    return 0


def requests_of(batch: claims.Batch) -> list[GradeRequest]:
    """Each claimed essay as a request: its job's rubric and model, with the job's calibration where it has one."""
    out = []
    for it in batch.items:
        job = batch.jobs[it.job_id]
        out.append(GradeRequest(it.payload, job["rubric"], calibrated_id(job.get("model") or "default", job.get("calibration"))))
    return out


def grade_batch(batch: claims.Batch, writer: BackgroundWriter | None = None) -> int:
    """Grade one claimed batch and write its results. Returns essays written (a write handed to
    `writer` is counted by the writer instead). An essay its grader could not score goes back to
    pending (or fails for good after EDUQ_GRADING_MAX_ATTEMPTS); the rest of the batch is written."""
    items = batch.items
    if not items:
        return 0
    cfg = settings()
    requests = requests_of(batch)
    log.info("grading batch size=%d jobs=%d models=%s", len(items), len(batch.jobs),
             ",".join(sorted({r.model for r in requests})),
             extra={"batch_size": len(items), "job_ids": sorted(batch.jobs)})
    metrics.BATCH_SIZE.labels("grading").observe(len(items))
    # chaos-testing hook (workers/runtime/faults.py): the real graders unless EDUQ_FAULT_* is set
    outs = models.grading().grade(requests, wrap=faults.wrap_grader)
    results = {}
    for it, out in zip(items, outs):
        if isinstance(out, GradeFailure):
            claims.release_failed("grading", it, out.error, 1 if out.final else cfg.grading_max_attempts)
        else:
            results[it.id] = out
    if writer is not None:
        writer.submit(items, results)
        return 0
    return write_retrying(items, results)


def run_grading(task, job_id: str) -> dict:
    """Grade pending essays, batched across jobs, until this job has nothing left to claim."""
    cfg = settings()
    t0 = time.monotonic()
    batches = essays = 0
    writer = BackgroundWriter()
    try:
        while True:
            batch = claims.claim_batch("grading", cfg.grading_max_batch, cfg.grading_max_wait_s,
                                       cfg.grading_lease_s, cfg.grading_max_attempts)
            if not batch.items:
                if batch.jobs:
                    continue  # everything claimed was given up on; look again
                break
            essays += grade_batch(batch, writer)
            batches += 1
            if time.monotonic() - t0 > TASK_BUDGET_S and claims.outstanding("grading", job_id)[0] == 0:
                break
    finally:
        writer.close()
    essays += writer.written
    claimable, wait = claims.outstanding("grading", job_id)
    if claimable == 0 and wait is not None:
        # Another worker holds some of this job's essays. If it dies, its lease expires:
        # come back then so the job never waits on a dead worker.
        raise task.retry(countdown=wait + 1.0, max_retries=None)
    log.info("grade task done", extra={"job_id": job_id, "essays": essays, "batches": batches,
                                       "seconds": round(time.monotonic() - t0, 2)})
    return {"essays": essays, "batches": batches}

