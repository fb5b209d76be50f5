"""Follow-ups on the lessons queue: claim waiting items across jobs, build each student's next steps
(workers/ml/followups), check them, write the results while holding the claims."""
from __future__ import annotations

import logging
import time

from app.lifecycle import claims
from app.settings import settings
from workers.ml.followups.build import VERSION, build
from workers.ml.followups.checks import problems
from workers.runtime import worker_metrics as metrics

log = logging.getLogger("eduq.worker")
KIND = "follow_up"


class MalformedFollowUp(ValueError):
    """A follow-up that is not the schema's shape: retried, then the item fails with this reason."""


def follow_up(req: dict) -> dict:
    """One item's result: the follow-up, the checks it passed or the reasons it needs review."""
    fu = build(req["text"], req["rubric"], req["scores"])
    found = problems(fu, req["text"], req["rubric"])
    if any(p.startswith("not the follow-up schema") for p in found):
        raise MalformedFollowUp("; ".join(found))
    return {"essay_id": req["essay_id"], "student_ref": req.get("student_ref"), "assignment": req.get("assignment"),
            "follow_up": fu, "scores": req["scores"], "model_version": VERSION,
            "checks": {"passed": not found, "problems": found}, "needs_review": bool(found), "review_reasons": found}


def run_follow_ups(task, job_id: str) -> dict:
    t0 = time.monotonic()
    done = 0
    while True:
        cfg = settings()
        batch = claims.claim_batch(KIND, cfg.lesson_max_batch, cfg.lesson_max_wait_s, cfg.lesson_lease_s,
                                   cfg.lesson_max_attempts)
        if not batch.items:
            if batch.jobs:
                continue
            break
        metrics.BATCH_SIZE.labels(KIND).observe(len(batch.items))
        good = {}
        for it in batch.items:
            try:
                good[it.id] = follow_up(it.payload)
            except Exception as exc:  # this student's item fails alone; retried up to the attempts
                log.warning("follow-up %s raised %s", it.id, type(exc).__name__)
                claims.release_failed(KIND, it, f"{type(exc).__name__}: {exc}", cfg.lesson_max_attempts)
        done += claims.write_lesson_results(batch.items, good, kind=KIND)
    claimable, wait = claims.outstanding(KIND, job_id)
    if claimable == 0 and wait is not None:
        raise task.retry(countdown=wait + 1.0, max_retries=None)
    log.info("follow-ups %s: %d written, %.1fs", job_id, done, time.monotonic() - t0)
    return {"follow_ups": done}
