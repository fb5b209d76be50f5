"""The lessons worker: claim waiting plans across jobs, generate them together, write results."""
from __future__ import annotations

import logging
import time

from app.lifecycle import claims
from app.settings import settings
from workers.runtime import models as runtime
from workers.runtime import worker_metrics as metrics

log = logging.getLogger("eduq.worker")


def generate_batch(batch: claims.Batch) -> int:
    engine = runtime.lessons()
    items = batch.items
    reqs = [i.payload for i in items]
    log.info("lesson batch size=%d jobs=%d", len(items), len(batch.jobs))
    metrics.BATCH_SIZE.labels("lesson").observe(len(items))
    try:
        outs = engine.generate(reqs)
        good = {}
        for it, out in zip(items, outs):
            if out.get("lesson") is None:  # the engine refused the request: no retry will help
                msg = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in out.get("errors") or []) or "invalid request"
                claims.release_failed("lesson", it, msg, max_attempts=0)
            else:
                good[it.id] = out
        return claims.write_lesson_results(items, good)
    except Exception as exc:
        log.warning("lesson batch of %d raised %s; generating one by one", len(items), type(exc).__name__)
        written = 0
        for it in items:
            try:
                out = engine.generate([it.payload])[0]
            except Exception as one:
                claims.release_failed("lesson", it, f"{type(one).__name__}: {one}",
                                      settings().lesson_max_attempts)
                continue
            written += claims.write_lesson_results([it], {it.id: out})
        return written


def run_lessons(task, job_id: str) -> dict:
    t0 = time.monotonic()
    plans = 0
    while True:
        cfg = settings()
        batch = claims.claim_batch("lesson", cfg.lesson_max_batch, cfg.lesson_max_wait_s, cfg.lesson_lease_s,
                                   cfg.lesson_max_attempts)
        if not batch.items:
            if batch.jobs:
                continue
            break
        plans += generate_batch(batch)
    claimable, wait = claims.outstanding("lesson", job_id)
    if claimable == 0 and wait is not None:
        raise task.retry(countdown=wait + 1.0, max_retries=None)
    log.info("lesson %s: %d plans, %.1fs", job_id, plans, time.monotonic() - t0)
    return {"plans": plans}
