"""Claiming and writing work in Postgres: skip-locked claims, leases, idempotent writes, poison items."""
from __future__ import annotations

import threading
import time

from sqlalchemy import func, select, update

from app.lifecycle import claims
from app.store.db import session_scope
from app.store.tables import Essay, GradingResult, Job, Teacher
from tests.conftest import make_teacher

RUBRIC = {"name": "r", "scale": {"min": 1, "max": 6, "step": 1}, "traits": []}


def make_job(n: int) -> str:
    tid, _ = make_teacher()
    with session_scope() as s:
        t = s.get(Teacher, tid)
        job = Job(kind="grading", teacher_id=tid, school_id=t.school_id, total=n, rubric=RUBRIC, model="default")
        s.add(job)
        s.flush()
        s.add_all(Essay(job_id=job.id, position=i, client_id=f"e{i}", text=f"text {i}", created_at=job.created_at)
                  for i in range(n))
        return job.id


def fake_result(score=3.0):
    return {"score": score, "traits": {}, "confidence": 0.5, "needs_review": False, "review_reasons": [],
            "feedback": [], "model_version": "test"}


def job_row(job_id):
    with session_scope() as s:
        j = s.get(Job, job_id)
        return j.status, j.done, j.failed, j.total, j.version


def test_claims_are_disjoint_across_concurrent_workers(clean_queue):
    job_id = make_job(60)
    got: dict[str, list[str]] = {}

    def worker(name):
        ids = []
        while True:
            b = claims.claim("grading", 7, 60, 3, worker=name)
            if not b.items:
                break
            ids += b.ids
        got[name] = ids

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    all_ids = [i for ids in got.values() for i in ids]
    assert len(all_ids) == 60 and len(set(all_ids)) == 60
    assert job_row(job_id)[0] == "running"


def test_redelivered_batch_writes_nothing_twice(clean_queue):
    job_id = make_job(3)
    b = claims.claim("grading", 10, 60, 3, worker="A")
    res = {i.id: fake_result() for i in b.items}
    assert claims.write_grading_results(b.items, res, worker="A") == 3
    assert claims.write_grading_results(b.items, res, worker="A") == 0
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(GradingResult).where(GradingResult.job_id == job_id)) == 3
    status, done, failed, total, _ = job_row(job_id)
    assert (status, done, failed, total) == ("succeeded", 3, 0, 3)


def test_expired_lease_is_reclaimed_and_late_writer_is_ignored(clean_queue):
    job_id = make_job(2)
    a = claims.claim("grading", 10, 0.5, 3, worker="A")
    assert len(a) == 2
    assert len(claims.claim("grading", 10, 60, 3, worker="B")) == 0  # lease still live
    time.sleep(0.7)
    b = claims.claim("grading", 10, 60, 3, worker="B")
    assert sorted(b.ids) == sorted(a.ids)
    # A comes back late: it no longer holds the claim, so it writes nothing
    assert claims.write_grading_results(a.items, {i.id: fake_result(1) for i in a.items}, worker="A") == 0
    assert claims.write_grading_results(b.items, {i.id: fake_result(5) for i in b.items}, worker="B") == 2
    with session_scope() as s:
        scores = s.scalars(select(GradingResult.score).where(GradingResult.job_id == job_id)).all()
    assert scores == [5.0, 5.0]


def test_poison_item_fails_after_max_attempts_others_succeed(clean_queue):
    job_id = make_job(3)
    for attempt in range(1, 4):
        b = claims.claim("grading", 10, 60, 3, worker="A")
        poison = [i for i in b.items if i.payload == "text 1"][0]
        good = [i for i in b.items if i is not poison]
        claims.write_grading_results(good, {i.id: fake_result() for i in good}, worker="A")
        final = claims.release_failed("grading", poison, "ValueError: boom", 3, worker="A")
        assert final == (attempt == 3)
        if final:
            break
    status, done, failed, total, _ = job_row(job_id)
    assert (status, done, failed, total) == ("succeeded", 3, 1, 3)
    with session_scope() as s:
        err = s.scalar(select(Essay.error).where(Essay.job_id == job_id, Essay.status == "failed"))
    assert "boom" in err and "3 attempt" in err


def test_item_of_a_dead_worker_gives_up_after_max_attempts(clean_queue):
    job_id = make_job(1)
    for _ in range(2):  # two workers died holding it
        assert len(claims.claim("grading", 10, 0.01, 2, worker="dead")) == 1
        time.sleep(0.05)
    b = claims.claim("grading", 10, 60, 2, worker="next")
    assert len(b) == 0 and b.jobs  # over the limit: failed, not handed out again
    status, done, failed, _, _ = job_row(job_id)
    assert (status, done, failed) == ("failed", 1, 1)


def test_batch_spans_jobs_oldest_first(clean_queue):
    first = make_job(2)
    second = make_job(2)
    b = claims.claim_batch("grading", 3, 0.1, 60, 3)
    assert [i.job_id for i in b.items].count(first) == 2 and len(b) == 3
    assert set(b.jobs) == {first, second}


def test_cancelled_essays_are_not_claimed(clean_queue):
    job_id = make_job(2)
    with session_scope() as s:
        s.execute(update(Essay).where(Essay.job_id == job_id).values(status="cancelled"))
    assert len(claims.claim("grading", 10, 60, 3)) == 0


def test_two_writers_finishing_one_job_at_once_finish_it(clean_queue):
    """Each writer locks the job before it counts the items: the second one, waiting on the lock, then
    sees the first one's committed essay. (Counted before the lock, it saw that essay still claimed,
    and the job stayed running with every essay done.)"""
    job_id = make_job(2)
    a = claims.claim("grading", 1, 60, 3, worker="wA").items[0]
    b = claims.claim("grading", 1, 60, 3, worker="wB").items[0]
    wrote = []
    with session_scope() as s:  # writer A, up to its refresh, not yet committed
        s.execute(update(Essay).where(Essay.id == a.id).values(status="done", claimed_by=None, claimed_until=None))
        claims.refresh_jobs(s, "grading", [job_id])
        t = threading.Thread(target=lambda: wrote.append(
            claims.write_grading_results([b], {b.id: fake_result()}, worker="wB")))
        t.start()
        time.sleep(0.5)  # writer B is now waiting for the job's row
    t.join(timeout=30)
    assert wrote == [1]
    status, done, failed, total, _ = job_row(job_id)
    assert (status, done, failed, total) == ("succeeded", 2, 0, 2)
