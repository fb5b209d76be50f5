"""Claiming work items in Postgres, and writing their results, idempotently.

Postgres is the source of truth. A worker claims pending items with FOR UPDATE SKIP LOCKED
(a lease: `claimed_by`, `claimed_until`), closes its session while the model runs, then writes
results, item status and job progress in ONE transaction. A result row is unique per essay and
written only while the writer still holds the claim, so a redelivered or duplicated batch
writes nothing twice. A worker that dies leaves claims that expire and are claimed again.
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, func, literal_column, or_, select, update
from sqlalchemy.orm import Session

from app.lifecycle import job_metrics as metrics
from app.lifecycle.fair_share import ActiveJob, fair_shares
from app.lifecycle.webhooks import enqueue
from app.store.db import session_scope
from app.store.tables import Essay, FollowUp, GradingResult, Job, LessonPlan, School, utcnow

_WORKER_ID: tuple[int, str] | None = None


def worker_id() -> str:
    """hostname:pid:random, fresh in every process (so a restarted worker never reuses claims)."""
    global _WORKER_ID
    if _WORKER_ID is None or _WORKER_ID[0] != os.getpid():
        _WORKER_ID = (os.getpid(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    return _WORKER_ID[1]


def _insert(s: Session):
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


# ---------------------------------------------------------------------------------- batches

@dataclass
class ClaimedItem:
    id: str
    job_id: str
    position: int
    attempts: int
    payload: Any  # essay text, or a lesson request


@dataclass
class Batch:
    """A batch is its own small class, separate from the model: it maps item ids to rows."""

    items: list[ClaimedItem] = field(default_factory=list)
    jobs: dict[str, dict] = field(default_factory=dict)  # job_id -> {"rubric": ..., "model": ...}

    def __len__(self) -> int:
        return len(self.items)

    def extend(self, other: "Batch") -> None:
        self.items.extend(other.items)
        self.jobs.update(other.jobs)

    @property
    def ids(self) -> list[str]:
        return [i.id for i in self.items]

    def by_model(self) -> dict[str, list[ClaimedItem]]:
        groups: dict[str, list[ClaimedItem]] = {}
        for it in self.items:
            groups.setdefault(self.jobs[it.job_id].get("model") or "default", []).append(it)
        return groups


ITEM = {"grading": Essay, "lesson": LessonPlan, "follow_up": FollowUp}


JOBS_PER_TEACHER = 4  # the oldest jobs with claimable work a claim considers per teacher


def _claimable(Item, now):
    return or_(Item.status == "pending", and_(Item.status == "claimed", Item.claimed_until < now))


def _has_claimable(Item, now):
    """EXISTS a pending item, or one whose claim expired, of the job: two probes on the job's (job_id, status)
    index, each bounded by the job's own items. (One EXISTS with an OR led the planner, on statistics older
    than a fast-growing table, to bitmap-scan every pending essay once per job: 50 s for a claim at 100,000
    essays. A single probe for any expired claim in the whole table, tried too, walks every dead 'claimed'
    index entry that vacuum has not removed yet: its cost grew with the essays graded.)"""
    return or_(select(Item.id).where(Item.job_id == Job.id, Item.status == "pending").exists(),
               select(Item.id).where(Item.job_id == Job.id, Item.status == "claimed", Item.claimed_until < now).exists())


def _active_jobs(s: Session, kind: str, now, skip: list[str] | None = None) -> list[ActiveJob]:
    """Each teacher's JOBS_PER_TEACHER oldest jobs of `kind` that have claimable items, none of `skip`.
    On Postgres one statement: the teachers with active jobs by a skip scan of the partial index
    ix_jobs_active (queued and running jobs only; a recursive step per teacher, not a row per job), then
    per teacher (LATERAL) their jobs in order until enough have work, so its cost follows the teachers
    waiting, not the jobs or essays stored or queued. SQLite (the embedded default): a window over the
    active jobs."""
    Item = ITEM[kind]
    active = [Job.kind == kind, Job.status.in_(("queued", "running"))]  # an item kind is its job kind
    other = [Job.id.not_in(skip)] if skip else []
    if s.get_bind().dialect.name == "postgresql":
        first = select(func.min(Job.teacher_id).label("teacher_id")).where(*active).cte("t", recursive=True)
        later = select(func.min(Job.teacher_id)).where(*active, Job.teacher_id > first.c.teacher_id).scalar_subquery()
        teachers = first.union_all(select(later).where(first.c.teacher_id.is_not(None)))
        per = (select(Job.id, Job.school_id, Job.teacher_id, Job.created_at)
               .where(Job.teacher_id == teachers.c.teacher_id, *active, *other, _has_claimable(Item, now))
               .order_by(Job.created_at, Job.id).limit(JOBS_PER_TEACHER).lateral("j"))
        rows = s.execute(select(per.c.id, per.c.school_id, per.c.teacher_id, per.c.created_at)
                         .select_from(teachers).join(per, literal_column("true"))
                         .where(teachers.c.teacher_id.is_not(None))).all()
    else:
        rn = func.row_number().over(partition_by=Job.teacher_id, order_by=(Job.created_at, Job.id)).label("rn")
        inner = select(Job.id, Job.school_id, Job.teacher_id, Job.created_at, rn).where(
            *active, *other, _has_claimable(Item, now)).subquery()
        rows = s.execute(select(inner.c.id, inner.c.school_id, inner.c.teacher_id, inner.c.created_at)
                         .where(inner.c.rn <= JOBS_PER_TEACHER)).all()
    return [ActiveJob(r.id, r.school_id, r.teacher_id, r.created_at) for r in rows]


def _job_items(s: Session, Item, job_id: str, n: int, now, taken: list[str]) -> list[str]:
    """Up to n claimable items of one job, in order, locked (SKIP LOCKED), none of `taken` (what this
    claim already locked): pending ones by position (the index ix_*_job_status_position), then any
    whose claim expired."""
    lock = {"skip_locked": True}
    fresh = [Item.id.not_in(taken)] if taken else []
    ids = list(s.scalars(select(Item.id).where(Item.job_id == job_id, Item.status == "pending", *fresh)
                         .order_by(Item.position).limit(n).with_for_update(**lock)).all())
    if len(ids) < n:
        ids += s.scalars(select(Item.id).where(Item.job_id == job_id, Item.status == "claimed", Item.claimed_until < now,
                                               *fresh)
                         .order_by(Item.position).limit(n - len(ids)).with_for_update(**lock)).all()
    return ids


def _fair_ids(s: Session, kind: str, limit: int, now) -> list[str]:
    """Up to `limit` claimable item ids in the fair order across schools and teachers (fair_share.py)."""
    Item = ITEM[kind]
    by_id: dict[str, ActiveJob] = {}
    weights: dict[str, float] = {}
    ids: list[str] = []
    taken: dict[str, list[str]] = {}
    for _ in range(4):  # what a job could not fill goes to the others
        if all(j.room == 0 for j in by_id.values()):
            # every job seen is exhausted for this claim (or its rows are locked by another worker's claim,
            # SKIP LOCKED): the next oldest jobs with claimable work
            more = _active_jobs(s, kind, now, skip=list(by_id))
            if not more:
                break
            by_id.update((j.id, j) for j in more)
            schools = sorted({j.school_id for j in by_id.values()})
            weights = dict(s.execute(select(School.id, School.share_weight).where(School.id.in_(schools))).all()) \
                if len(schools) > 1 else {}
        shares = fair_shares(list(by_id.values()), limit - len(ids), weights)
        if not shares:
            break
        for job_id, q in shares:
            got = _job_items(s, Item, job_id, q, now, taken.get(job_id, []))
            taken.setdefault(job_id, []).extend(got)
            ids += got
            if len(got) < q:
                by_id[job_id].room = 0
        if len(ids) >= limit:
            break
    return ids


def claim(kind: str, limit: int, lease_s: float, max_attempts: int, worker: str | None = None) -> Batch:
    """Claim up to `limit` claimable items of `kind` in the fair order (fair_share.py): schools by
    weight, teachers equally, each teacher's oldest job first. One short transaction."""
    Item = ITEM[kind]
    worker = worker or worker_id()
    now = utcnow()
    batch = Batch()
    finished: list[Finished] = []
    with session_scope() as s:
        ids = _fair_ids(s, kind, limit, now)
        if not ids:
            return batch
        payload_col = Item.text if kind == "grading" else Item.request
        rows = s.execute(
            update(Item)
            .where(Item.id.in_(ids))
            .values(status="claimed", claimed_by=worker, claimed_until=now + timedelta(seconds=lease_s),
                    attempts=Item.attempts + 1)
            .returning(Item.id, Item.job_id, Item.position, Item.attempts, payload_col)
        ).all()
        over = [r.id for r in rows if r.attempts > max_attempts]
        if over:  # claimed again and again: its workers died on it; stop retrying it
            s.execute(update(Item).where(Item.id.in_(over)).values(
                status="failed", claimed_by=None, claimed_until=None,
                error=f"gave up after {max_attempts} attempts (the worker stopped while processing it)"))
        job_ids = sorted({r.job_id for r in rows})
        jobs = s.execute(select(Job.id, Job.rubric, Job.model, Job.status, Job.params).where(Job.id.in_(job_ids))).all()
        batch.jobs = {j.id: {"rubric": j.rubric, "model": j.model,
                             "calibration": ((j.params or {}).get("calibration") or {}).get("id")} for j in jobs}
        # job rows locked in id order, as refresh_jobs locks them, and FOR NO KEY UPDATE: it does not wait on the
        # KEY SHARE locks that other workers' result inserts take on their jobs (the foreign key)
        queued = s.scalars(select(Job.id).where(Job.id.in_(job_ids), Job.status == "queued")
                           .order_by(Job.id).with_for_update(key_share=True)).all()
        if queued:
            s.execute(update(Job).where(Job.id.in_(queued))
                      .values(status="running", started_at=now, updated_at=now, version=Job.version + 1))
        if over:
            finished = refresh_jobs(s, kind, job_ids)
        batch.items = sorted((ClaimedItem(r.id, r.job_id, r.position, r.attempts, r[4]) for r in rows if r.id not in over),
                             key=lambda i: (i.job_id, i.position))
    after_finish(finished)
    return batch


def claim_batch(kind: str, max_batch: int, max_wait_s: float, lease_s: float, max_attempts: int) -> Batch:
    """Claim a batch across jobs: take what is there, then wait up to max_wait_s for more."""
    batch = claim(kind, max_batch, lease_s, max_attempts)
    if not batch.items and not batch.jobs:
        return batch
    deadline = time.monotonic() + max_wait_s
    while len(batch) < max_batch and time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        batch.extend(claim(kind, max_batch - len(batch), lease_s, max_attempts))
    return batch


# ---------------------------------------------------------------------------------- writing

def after_finish(finished: list["Finished"]) -> None:
    """Once the transaction that finished jobs has committed: metrics, webhooks, and the follow-up jobs
    that finishing grading jobs made (published now; the sweeper publishes one this misses)."""
    from app.lifecycle.jobs import publish

    for f in finished:
        metrics.JOB_DURATION.labels(f.kind, f.status).observe(max(0.0, f.seconds))
        if f.has_callback:
            enqueue(f.job_id)
        if f.spawned:
            publish(f.spawned, "follow_up")


class Finished(NamedTuple):
    job_id: str
    kind: str
    status: str
    seconds: float
    has_callback: bool
    spawned: str | None = None  # a follow-up job this grading job's finish made (submitted with "follow_up": true)


def refresh_jobs(s: Session, kind: str, job_ids: list[str]) -> list[Finished]:
    """Recompute progress from the items and finish jobs with nothing left. Caller's transaction.

    Returns the jobs this call finished; pass them to `after_finish` once committed."""
    Item = ITEM[kind]
    finished: list[Finished] = []
    if not job_ids:
        return finished
    # The jobs first, locked FOR NO KEY UPDATE in id order (FOR UPDATE would deadlock two writers whose batches
    # share a job: each holds KEY SHARE on it from inserting results that reference it); THEN the counts, so
    # that they see every other writer's committed items. Counted before the lock, two writers finishing
    # the last essays of one job at once each saw only their own, and the job was never finished.
    jobs = s.scalars(select(Job).where(Job.id.in_(sorted(job_ids))).order_by(Job.id)
                     .with_for_update(key_share=True).execution_options(populate_existing=True)).all()
    counts: dict[str, dict[str, int]] = {}
    for job_id, status, n in s.execute(
        select(Item.job_id, Item.status, func.count()).where(Item.job_id.in_(job_ids)).group_by(Item.job_id, Item.status)
    ):
        counts.setdefault(job_id, {})[status] = n
    now = utcnow()
    for job in jobs:
        c = counts.get(job.id, {})
        done_n, failed_n = c.get("done", 0), c.get("failed", 0)
        left = c.get("pending", 0) + c.get("claimed", 0)
        changed = (job.done, job.failed) != (done_n + failed_n, failed_n)
        job.done, job.failed = done_n + failed_n, failed_n
        if job.status in ("queued", "running") and left == 0:
            job.status = "succeeded" if done_n > 0 or job.total == 0 else "failed"
            job.finished_at = now
            if failed_n:
                job.error = {"code": "items_failed" if done_n else "all_items_failed",
                             "message": f"{failed_n} of {job.total} item(s) could not be processed; see their results."}
            changed = True
            created = job.created_at if job.created_at.tzinfo else job.created_at.replace(tzinfo=now.tzinfo)
            spawned = None
            if job.kind == "grading" and job.status == "succeeded" and (job.params or {}).get("follow_up") \
                    and not (job.params or {}).get("follow_up_job"):
                from app.lifecycle.followups import spawn

                s.flush()  # the results this transaction wrote, before the follow-ups read them
                spawned = spawn(s, job)
            finished.append(Finished(job.id, job.kind, job.status, (now - created).total_seconds(),
                                     bool(job.callback_url), spawned))
        if changed:
            job.version += 1
            job.updated_at = now
    return finished


def _still_held(s: Session, Item, ids: list[str], worker: str, *cols) -> list:
    """The rows of `ids` this worker still holds (a claim another worker took over after the lease is not
    ours), locked to the commit: locked by primary key alone, the holder checked here. With the status in the
    WHERE, the planner, on statistics older than the table, AND-ed in the (status, claimed_until) index: every
    'claimed' entry vacuum had not removed yet, once per batch (9 ms a write at 100,000 essays graded, and
    growing)."""
    locked = s.execute(select(Item.id, *cols, Item.status, Item.claimed_by)
                       .where(Item.id.in_(ids)).with_for_update()).all()
    return [r for r in locked if r.status == "claimed" and r.claimed_by == worker]


def write_grading_results(batch_items: list[ClaimedItem], results: dict[str, dict], worker: str | None = None) -> int:
    """Write results for items this worker still holds; returns how many were written."""
    worker = worker or worker_id()
    ids = [i.id for i in batch_items if i.id in results]
    if not ids:
        return 0
    with session_scope() as s:
        mine = [(r.id, r.job_id, r.position) for r in _still_held(s, Essay, ids, worker, Essay.job_id, Essay.position)]
        if not mine:
            return 0
        s.execute(update(Essay).where(Essay.id.in_([m[0] for m in mine]))
                  .values(status="done", claimed_by=None, claimed_until=None, error=None))
        now = utcnow()
        rows = []
        for essay_id, job_id, position in mine:
            r = results[essay_id]
            rows.append({"id": f"res_{uuid.uuid4().hex}", "essay_id": essay_id, "job_id": job_id, "position": position,
                         "score": None if r["score"] is None else float(r["score"]), "traits": r.get("traits") or {},
                         "confidence": float(r.get("confidence", 0.0)), "needs_review": bool(r.get("needs_review")),
                         "review_reasons": list(r.get("review_reasons") or []), "feedback": list(r.get("feedback") or []),
                         "model_version": str(r.get("model_version") or "unknown"), "created_at": now})
        insert = _insert(s)
        # a Core insert with a list of parameter sets (executemany), not .values(rows): the statement compiles
        # once and is cached (a multi-row VALUES compiled anew for every batch: most of a worker's CPU with the
        # noop grader), and no ORM bulk bookkeeping per row
        s.execute(insert(GradingResult.__table__).on_conflict_do_nothing(index_elements=["essay_id"]), rows)
        finished = refresh_jobs(s, "grading", sorted({m[1] for m in mine}))
    metrics.ESSAYS_GRADED.inc(len(mine))
    after_finish(finished)
    return len(mine)


def write_lesson_results(batch_items: list[ClaimedItem], results: dict[str, dict], worker: str | None = None,
                         kind: str = "lesson") -> int:
    """Results of claimed lesson plans (or follow-ups: kind), only while this worker holds their claims."""
    Item = ITEM[kind]
    worker = worker or worker_id()
    ids = [i.id for i in batch_items if i.id in results]
    if not ids:
        return 0
    with session_scope() as s:
        mine = [(r.id, r.job_id) for r in _still_held(s, Item, ids, worker, Item.job_id)]
        now = utcnow()
        for item_id, _ in mine:
            s.execute(update(Item).where(Item.id == item_id).values(
                status="done", result=results[item_id], claimed_by=None, claimed_until=None, finished_at=now))
        finished = refresh_jobs(s, kind, sorted({m[1] for m in mine}))
    after_finish(finished)
    return len(mine)


def release_failed(kind: str, item: ClaimedItem, error: str, max_attempts: int, worker: str | None = None) -> bool:
    """An item whose processing raised: back to pending, or failed for good after max_attempts.

    Returns True when the item failed for good."""
    Item = ITEM[kind]
    worker = worker or worker_id()
    final = item.attempts >= max_attempts
    with session_scope() as s:
        res = s.execute(
            update(Item).where(Item.id == item.id, Item.status == "claimed", Item.claimed_by == worker)
            .values(status="failed" if final else "pending", claimed_by=None, claimed_until=None,
                    error=(f"failed after {item.attempts} attempt(s): {error}"[:2000]))
        )
        finished = refresh_jobs(s, kind, [item.job_id]) if res.rowcount and final else []
    if final:
        metrics.ITEMS_FAILED.labels(kind).inc()
    after_finish(finished)
    return final


def outstanding(kind: str, job_id: str) -> tuple[int, float | None]:
    """(claimable items now, seconds until the earliest live claim of another worker expires)."""
    Item = ITEM[kind]
    now = utcnow()
    with session_scope() as s:
        claimable = s.scalar(select(func.count()).select_from(Item).where(
            Item.job_id == job_id,
            or_(Item.status == "pending", and_(Item.status == "claimed", Item.claimed_until < now))))
        soonest = s.scalar(select(func.min(Item.claimed_until)).where(
            Item.job_id == job_id, Item.status == "claimed", Item.claimed_until >= now))
    wait = None
    if soonest is not None:
        if soonest.tzinfo is None:
            soonest = soonest.replace(tzinfo=now.tzinfo)
        wait = max(0.0, (soonest - now).total_seconds())
    return int(claimable or 0), wait


def claimable_job(kind: str) -> str | None:
    """A job with claimable work of `kind` (a pending item, or one whose lease expired), or None: one
    indexed probe (ix_essays_status_claim / ix_lesson_plans_status_claim), cheap when there is none."""
    Item = ITEM[kind]
    with session_scope() as s:
        return s.scalar(select(Item.job_id).where(_claimable(Item, utcnow())).limit(1))
