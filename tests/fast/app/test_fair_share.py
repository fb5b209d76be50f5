"""The fair order of claims (app/lifecycle/fair_share.py): schools by weight, teachers equally, each
teacher's oldest job first; what a job cannot fill goes to the others."""
from __future__ import annotations

from datetime import datetime, timedelta

from app.lifecycle.fair_share import ActiveJob, fair_shares

T0 = datetime(2026, 12, 1, 8, 0)


def job(jid, school, teacher, minutes, room=None):
    return ActiveJob(jid, school, teacher, T0 + timedelta(minutes=minutes), room)


def test_a_class_behind_another_schools_big_job_gets_half_the_batch():
    big = job("big", "A", "a1", 0)
    assert fair_shares([big], 64) == [("big", 64)]  # alone: everything
    assert fair_shares([big, job("class", "B", "b1", 5)], 64) == [("big", 32), ("class", 32)]
    # the class has 30 essays left: the two slots it cannot use go to the big job
    assert fair_shares([big, job("class", "B", "b1", 5, room=30)], 64) == [("big", 34), ("class", 30)]


def test_school_weights_split_the_batch_in_proportion():
    jobs = [job("a", "A", "a1", 0), job("b", "B", "b1", 1)]
    assert fair_shares(jobs, 64, {"A": 3.0}) == [("a", 48), ("b", 16)]
    assert fair_shares(jobs, 64, {"A": 1.0, "B": 1.0}) == [("a", 32), ("b", 32)]


def test_teachers_of_one_school_share_it_and_each_teacher_goes_oldest_job_first():
    jobs = [job("t1-old", "A", "t1", 0), job("t1-new", "A", "t1", 1), job("t2", "A", "t2", 2)]
    assert fair_shares(jobs, 10) == [("t1-old", 5), ("t2", 5)]
    jobs[0].room = 3
    assert fair_shares(jobs, 10) == [("t1-old", 3), ("t1-new", 2), ("t2", 5)]


def test_three_schools_and_an_odd_slot_go_to_whoever_waits_longest():
    jobs = [job("c", "C", "c1", 2), job("a", "A", "a1", 0), job("b", "B", "b1", 1)]
    assert fair_shares(jobs, 7) == [("a", 3), ("b", 2), ("c", 2)]


def test_nothing_to_deal():
    assert fair_shares([], 64) == []
    assert fair_shares([job("x", "A", "a", 0, room=0)], 64) == []
    assert fair_shares([job("x", "A", "a", 0)], 0) == []


def test_many_jobs_still_deal_exactly_the_limit():
    jobs = [job(f"j{i}", f"S{i % 7}", f"T{i % 23}", i) for i in range(3000)]
    shares = fair_shares(jobs, 64)
    assert sum(q for _, q in shares) == 64
    per_school = {}
    for jid, q in shares:
        s = f"S{int(jid[1:]) % 7}"
        per_school[s] = per_school.get(s, 0) + q
    assert sorted(per_school.values()) == [9, 9, 9, 9, 9, 9, 10]
