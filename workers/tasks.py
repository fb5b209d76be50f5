"""Celery tasks. Messages carry job ids only; the work itself is claimed from Postgres."""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from celery.signals import after_setup_logger, celeryd_init, worker_process_init, worker_ready
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import InterfaceError, OperationalError

from app.config import settings
from app.db import reset_engine, session_scope
from app.models import Essay, Job, LessonPlan, utcnow
from workers import claims, faults, metrics, runtime
from workers.celery_app import celery_app

log = logging.getLogger("eduq.worker")
_QUEUES: set[str] = set()
DB_ERRORS = (OperationalError, InterfaceError)
TASK_BUDGET_S = 60.0  # after this, a task stops helping other jobs and returns


@after_setup_logger.connect
def _json_logs(**_):
    from app.logging_setup import configure

    configure()


@celeryd_init.connect
def _remember_queues(sender=None, conf=None, options=None, **_):
    # In the parent: only note which queues this worker serves. No torch here.
    qs = (options or {}).get("queues") or []
    if isinstance(qs, str):
        qs = qs.split(",")
    _QUEUES.update(q.strip() for q in qs if q and q.strip())


@worker_process_init.connect
def _after_fork(**_):
    reset_engine()  # never share the parent's database connections
    metrics.serve()
    if "grading" in _QUEUES:
        runtime.grader()
        runtime.asap_grader()  # the shipped per-prompt graders (~1 s), so an 'asap-N' job never waits on a load
    if "lessons" in _QUEUES:
        runtime.lessons()


@worker_ready.connect
def _sweep_on_start(sender=None, **_):
    # A restarted worker re-publishes what an earlier one may have left (beat does it periodically).
    try:
        celery_app.send_task("eduq.sweep")
    except Exception:
        log.warning("could not queue the start-up sweep")


# ------------------------------------------------------------------------------ grading

class BackgroundWriter:
    """Writes one batch's results on a thread while the model runs on the next batch.

    At most one write is in flight; `wait()` re-raises its error (a database error then retries
    the task: the batch's claims expire and its essays are graded again, never written twice)."""

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eduq-writer")
        self.pending = None
        self.written = 0

    def submit(self, items, results) -> None:
        self.wait()
        self.pending = self.pool.submit(claims.write_grading_results, items, results)

    def wait(self) -> None:
        if self.pending is not None:
            fut, self.pending = self.pending, None
            self.written += fut.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)


def model_family(model_id: str) -> str:
    """'default', 'asap' (the shipped per-prompt graders 'asap-1'..'asap-8') or a fine-tuned model's id."""
    return "asap" if model_id.startswith("asap-") else model_id


class AsapForRubrics:
    """The ASAP graders behind the default grader's interface: the prompt comes from each job's model
    ('asap-3' -> prompt '3'); trait scores come back under the job rubric's own trait names."""

    def __init__(self, asap, models: list[str]):
        self.asap, self.models = asap, models

    def grade(self, texts: list[str], rubrics: list[dict], models: list[str] | None = None) -> list[dict]:
        models = models or self.models
        prompt_ids = [m.split("-", 1)[1] for m in models]
        outs = self.asap.grade(texts, prompt_ids, prompt_texts=[r.get("prompt") for r in rubrics])
        for out, rubric in zip(outs, rubrics):
            names = {t["name"].lower(): t["name"] for t in rubric.get("traits") or []}
            out["traits"] = {names.get(k.lower(), k): v for k, v in out["traits"].items()}
        return outs


def grade_batch(batch: claims.Batch, writer: BackgroundWriter | None = None) -> int:
    """Run the model over one claimed batch and write the results. Returns essays written
    (a write handed to `writer` is counted by the writer instead)."""
    cfg = settings()
    items = batch.items
    if not items:
        return 0
    groups: dict[str, list[claims.ClaimedItem]] = {}
    for model_id, group in batch.by_model().items():
        groups.setdefault(model_family(model_id), []).extend(group)
    if len(groups) > 1:  # several graders in this batch: each group to its own
        written = 0
        for family, group in groups.items():
            sub = claims.Batch(items=group, jobs={j: batch.jobs[j] for j in {i.job_id for i in group}})
            written += grade_batch(sub, writer)
        return written
    (family,) = groups
    if family not in ("default", "asap"):
        return grade_finetuned(batch, family)
    texts = [i.payload for i in items]
    rubrics = [batch.jobs[i.job_id]["rubric"] for i in items]
    models = [batch.jobs[i.job_id].get("model") or "default" for i in items]
    base = runtime.grader() if family == "default" else AsapForRubrics(runtime.asap_grader(), models)
    # chaos-testing hook (workers/faults.py): the real grader unless EDUQ_FAULT_* is set; off by default
    grader = faults.wrap_grader(base)
    log.info("grading batch size=%d jobs=%d model=%s", len(items), len(batch.jobs), family,
             extra={"batch_size": len(items), "job_ids": sorted(batch.jobs)})
    metrics.BATCH_SIZE.labels("grading").observe(len(items))
    try:
        outs = grader.grade(texts, rubrics)
        results = {it.id: out for it, out in zip(items, outs)}
        if writer is not None:
            writer.submit(items, results)
            return 0
        return claims.write_grading_results(items, results)
    except DB_ERRORS:
        raise
    except Exception as exc:  # one bad essay must not sink its batch: isolate it
        log.warning("batch of %d raised %s; grading its essays one by one", len(items), type(exc).__name__)
        written = 0
        for it, text, rubric, model in zip(items, texts, rubrics, models):
            try:
                one_grader = grader if family == "default" else faults.wrap_grader(AsapForRubrics(base.asap, [model]))
                out = one_grader.grade([text], [rubric])[0]
            except DB_ERRORS:
                raise
            except Exception as one:
                claims.release_failed("grading", it, f"{type(one).__name__}: {one}", cfg.grading_max_attempts)
                continue
            written += claims.write_grading_results([it], {it.id: out})
        return written


@celery_app.task(name="eduq.grade", bind=True, acks_late=True, max_retries=50,
                 autoretry_for=DB_ERRORS, retry_backoff=2, retry_backoff_max=60, retry_jitter=True)
def grade(self, job_id: str) -> dict:
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
        raise self.retry(countdown=wait + 1.0, max_retries=None)
    log.info("grade task done", extra={"job_id": job_id, "essays": essays, "batches": batches,
                                       "seconds": round(time.monotonic() - t0, 2)})
    return {"essays": essays, "batches": batches}


# ------------------------------------------------------------------------------ lessons

@celery_app.task(name="eduq.lesson", bind=True, acks_late=True, max_retries=50,
                 autoretry_for=DB_ERRORS, retry_backoff=2, retry_backoff_max=60, retry_jitter=True)
def lesson(self, job_id: str) -> dict:
    from workers.lessons_task import run_lessons

    return run_lessons(self, job_id)


# ------------------------------------------------------------------------------ sweeper

@celery_app.task(name="eduq.sweep", acks_late=True, ignore_result=True)
def sweep() -> dict:
    """Postgres is the source of truth: re-publish unfinished jobs whose message may be lost
    (publish failed, Redis restarted without persistence, worker died) and that have
    claimable work. A duplicate message is harmless: work is claimed, not taken from it."""
    from app.services.jobs import publish

    cfg = settings()
    now = utcnow()
    stale = now - timedelta(seconds=cfg.republish_after_s)
    found: list[tuple[str, str]] = []
    with session_scope() as s:
        for kind, Item in (("grading", Essay), ("lesson", LessonPlan)):
            claimable = (select(Item.id).where(
                Item.job_id == Job.id,
                or_(Item.status == "pending", and_(Item.status == "claimed", Item.claimed_until < now))).exists())
            ids = s.scalars(select(Job.id).where(
                Job.kind == kind, Job.status.in_(("queued", "running")),
                or_(Job.published_at.is_(None), Job.published_at < stale), claimable).limit(500)).all()
            if ids:
                s.execute(update(Job).where(Job.id.in_(ids)).values(published_at=now, publish_count=Job.publish_count + 1))
                found.extend((kind, i) for i in ids)
    for kind, job_id in found:
        publish(job_id, kind)
    reap_training_leases()
    if found:
        log.info("sweeper re-published %d job(s)", len(found))
    return {"republished": len(found)}


# ------------------------------------------------------------------------------ webhooks

class CallbackFailed(Exception):
    pass


@celery_app.task(name="eduq.webhook", bind=True, acks_late=True, max_retries=8,
                 autoretry_for=(CallbackFailed,) + DB_ERRORS, retry_backoff=5, retry_backoff_max=3600, retry_jitter=True)
def webhook(self, job_id: str) -> dict:
    import requests

    from app.models import WebhookDelivery
    from app.services.jobs import job_view
    from app.services.webhooks import body_for, sign

    with session_scope() as s:
        job = s.get(Job, job_id)
        if job is None or not job.callback_url:
            return {"skipped": True}
        if s.scalar(select(WebhookDelivery.id).where(WebhookDelivery.job_id == job_id, WebhookDelivery.delivered.is_(True))):
            return {"already_delivered": True}
        url, body = job.callback_url, body_for(job_view(job))
    attempt = self.request.retries + 1
    t0 = time.monotonic()
    status, error = None, None
    try:
        r = requests.post(url, data=body, timeout=10, allow_redirects=False, headers={
            "Content-Type": "application/json", "X-Signature": sign(body), "X-EduQueue-Job": job_id,
            "X-EduQueue-Delivery": str(attempt), "User-Agent": "EduQueue-Webhook/1"})
        status = r.status_code
    except requests.RequestException as e:
        error = f"{type(e).__name__}: {e}"[:500]
    ok = status is not None and 200 <= status < 300
    with session_scope() as s:
        s.add(WebhookDelivery(job_id=job_id, attempt=attempt, url=url, status_code=status, error=error,
                              duration_ms=int((time.monotonic() - t0) * 1000), delivered=ok))
    if not ok:
        raise CallbackFailed(f"callback for {job_id} answered {status or error}")
    return {"delivered": True, "attempt": attempt}


# ------------------------------------------------------------------------------ retention

@celery_app.task(name="eduq.purge", acks_late=True, ignore_result=True)
def purge() -> dict:
    """Delete the content of finished jobs older than EDUQ_RETENTION_DAYS (see app/services/retention.py)."""
    from app.services.retention import purge_expired

    return purge_expired()


# ------------------------------------------------------------------------------ fine-tuning

def grade_finetuned(batch: claims.Batch, model_id: str) -> int:
    """Grade a group of essays with one fine-tuned version (from the worker's LRU cache)."""
    from workers.training.cache import ModelGone, cache

    cfg = settings()
    items = batch.items
    metrics.BATCH_SIZE.labels("grading").observe(len(items))
    try:
        grader = cache().get(model_id)
    except ModelGone as exc:
        for it in items:
            claims.release_failed("grading", it, str(exc), 1)
        return 0
    texts = [i.payload for i in items]
    try:
        outs = grader.grade(texts)
        return claims.write_grading_results(items, {it.id: out for it, out in zip(items, outs)})
    except DB_ERRORS:
        raise
    except Exception as exc:
        log.warning("fine-tuned batch of %d raised %s", len(items), type(exc).__name__)
        for it in items:
            claims.release_failed("grading", it, f"{type(exc).__name__}: {exc}", cfg.grading_max_attempts)
        return 0


@celery_app.task(name="eduq.train", bind=True, acks_late=True, max_retries=20,
                 autoretry_for=DB_ERRORS, retry_backoff=5, retry_backoff_max=120, retry_jitter=True)
def train(self, job_id: str) -> dict:
    """Fine-tune under a Postgres lease with heartbeat (workers/training/runner.py)."""
    from workers.training.runner import run_training

    return run_training(job_id)


def reap_training_leases() -> dict:
    """Sweeper hook: fail fine-tune jobs whose lease expired; re-publish lost queued ones."""
    from workers.training.runner import reap_training_leases as reap

    try:
        return reap()
    except DB_ERRORS:
        raise
    except Exception:
        log.exception("reaping training leases failed")
        return {}
