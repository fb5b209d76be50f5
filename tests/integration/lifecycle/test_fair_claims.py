"""The fair claim order against Postgres (app/lifecycle/fair_share.py, claims.claim): a class of one
school is not held behind another school's big job, teachers of one school share it, school weights
count; and the hot queries of claiming and writing use indexes (EXPLAIN), so their cost does not grow
with the table."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text, update

from app.lifecycle import claims
from app.store.db import session_scope
from app.store.tables import Essay, Job, School, Teacher, utcnow
from tests.conftest import make_teacher

RUBRIC = {"name": "r", "scale": {"min": 1, "max": 6, "step": 1}, "traits": []}


def make_job(teacher_id: str, n: int, age_s: float = 0.0) -> str:
    with session_scope() as s:
        t = s.get(Teacher, teacher_id)
        created = utcnow() - timedelta(seconds=age_s)
        job = Job(kind="grading", teacher_id=teacher_id, school_id=t.school_id, total=n, rubric=RUBRIC, model="default",
                  created_at=created)
        s.add(job)
        s.flush()
        s.add_all(Essay(job_id=job.id, position=i, client_id=f"e{i}", text=f"text {i}", created_at=created)
                  for i in range(n))
        return job.id


def per_job(batch) -> dict[str, int]:
    out: dict[str, int] = {}
    for it in batch.items:
        out[it.job_id] = out.get(it.job_id, 0) + 1
    return out


def test_a_class_is_not_held_behind_another_schools_big_job(clean_queue):
    a, _ = make_teacher(school="Big District School")
    b, _ = make_teacher(school="Small School")
    big = make_job(a, 300, age_s=60)  # submitted first
    small = make_job(b, 30)
    got = per_job(claims.claim("grading", 64, 60, 3, worker="w1"))
    assert got == {big: 34, small: 30}, got  # the class whole in the first batch; its unused share to the big job
    got = per_job(claims.claim("grading", 64, 60, 3, worker="w1"))
    assert got == {big: 64}


def test_teachers_of_one_school_share_it(clean_queue):
    t1, _ = make_teacher(school="Shared School")
    t2, _ = make_teacher(school="Shared School")
    old = make_job(t1, 200, age_s=60)
    newer = make_job(t1, 200, age_s=30)
    other = make_job(t2, 200)
    got = per_job(claims.claim("grading", 64, 60, 3, worker="w1"))
    assert got == {old: 32, other: 32}, got  # t1's oldest job first; t2 as much as t1
    assert newer not in got


def test_school_weights_count(clean_queue):
    a, _ = make_teacher(school="Weighted School")
    b, _ = make_teacher(school="Plain School")
    with session_scope() as s:
        s.execute(update(School).where(School.id == s.get(Teacher, a).school_id).values(share_weight=3.0))
    ja = make_job(a, 300, age_s=10)
    jb = make_job(b, 300)
    assert per_job(claims.claim("grading", 64, 60, 3, worker="w1")) == {ja: 48, jb: 16}


def test_expired_claims_are_claimed_again_in_the_fair_order(clean_queue):
    a, _ = make_teacher(school="Expiry School")
    job = make_job(a, 10)
    first = claims.claim("grading", 64, 60, 3, worker="dead")
    assert len(first.items) == 10 and claims.claim("grading", 64, 60, 3, worker="w2").items == []
    with session_scope() as s:
        s.execute(update(Essay).where(Essay.job_id == job).values(claimed_until=utcnow() - timedelta(seconds=1)))
    again = claims.claim("grading", 64, 60, 3, worker="w2")
    assert sorted(i.position for i in again.items) == list(range(10)) and all(i.attempts == 2 for i in again.items)


def _plan(s, sql: str) -> str:
    s.execute(text("SET LOCAL enable_seqscan = off"))  # tiny test tables: ask which index serves the query
    return "\n".join(r[0] for r in s.execute(text("EXPLAIN " + sql)))


def test_the_hot_queries_use_indexes(clean_queue):
    a, _ = make_teacher(school="Explain School")
    job = make_job(a, 50)
    now = "now()"
    with session_scope() as s:
        plans = {
            "a job's pending essays (claim)": (
                f"SELECT id FROM essays WHERE job_id = '{job}' AND status = 'pending' ORDER BY position LIMIT 32",
                "ix_essays_job_status_position"),
            "a teacher's active jobs in age order (claim)": (
                f"SELECT id FROM jobs WHERE kind = 'grading' AND teacher_id = '{a}' AND status IN ('queued', 'running') "
                "ORDER BY created_at LIMIT 4", "ix_jobs_active"),
            "does a job have pending essays (claim)": (
                f"SELECT 1 FROM essays WHERE job_id = '{job}' AND status = 'pending' LIMIT 1",
                "ix_essays_job_status_position"),
            "does a job have expired claims (claim)": (
                f"SELECT 1 FROM essays WHERE job_id = '{job}' AND status = 'claimed' AND claimed_until < {now} LIMIT 1",
                "ix_essays_job_status_position"),
            "a job's progress (write)": (
                f"SELECT status, count(*) FROM essays WHERE job_id = '{job}' GROUP BY status",
                "ix_essays_job_status_position"),
            "a page of results (poll)": (
                f"SELECT * FROM grading_results WHERE job_id = '{job}' ORDER BY position LIMIT 100",
                "ix_grading_results_job_position"),
            "any claimable work (idle poll)": (
                f"SELECT job_id FROM essays WHERE status = 'pending' OR (status = 'claimed' AND claimed_until < {now}) "
                "LIMIT 1", "ix_essays_status_claim"),
        }
        for what, (sql, index) in plans.items():
            plan = _plan(s, sql)
            assert index in plan and "Seq Scan" not in plan, f"{what}: {plan}"
