"""Who gets the next claimed items when several schools and teachers wait: weighted fair shares.

    fair_shares(active_jobs, limit, weights) -> [(job_id, quota), ...]

The policy (docs/scaling.md, "Fair share"): every claim of up to `limit` items deals them out one at a
time, each to the school with the least work dealt so far in proportion to its weight
(`schools.share_weight`, 1 unless an operator sets it: `eduq schools weight`); within a school to its
teacher with the least dealt so far (teachers share equally); within a teacher to the oldest job
first. Ties go to the oldest job. So a 30-essay class of one school waits behind another school's
10,000-essay job for no more than its share of a batch, not for the whole job; and two teachers of
one school share its workers likewise. Jobs are dealt slots up to what they can still take (`room`);
the claim queries each job for its quota and deals what a job could not fill to the others.
Stateless: nothing is remembered between claims, so a restarted worker, or another one, applies
the same order.
"""
from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from datetime import datetime


@dataclass
class ActiveJob:
    id: str
    school_id: str
    teacher_id: str
    created_at: datetime
    room: int | None = None  # items it can still give now; None: unknown (at most the claim's limit)


def fair_shares(jobs: list[ActiveJob], limit: int, weights: dict[str, float] | None = None) -> list[tuple[str, int]]:
    """Quotas summing to at most `limit`, in the order the jobs should be queried (oldest first).
    O(limit log n): a heap of schools by (dealt + 1) / weight, in each a heap of teachers by dealt."""
    weights = weights or {}
    ordered = [j for j in sorted(jobs, key=lambda j: (j.created_at, j.id)) if j.room is None or j.room > 0]
    quota: dict[str, int] = {j.id: 0 for j in ordered}
    teachers: dict[str, dict[str, deque]] = {}  # school -> teacher -> its jobs, oldest first
    for j in ordered:
        teachers.setdefault(j.school_id, {}).setdefault(j.teacher_id, deque()).append(j)
    # heap entries: (key, oldest job's created_at, id) so ties go to whoever waits longest
    t_heaps = {s: [(0, q[0].created_at, t) for t, q in ts.items()] for s, ts in teachers.items()}
    s_dealt = {s: 0 for s in teachers}
    s_heap = [(1.0 / max(float(weights.get(s, 1.0)), 1e-6), min(e[1] for e in t_heaps[s]), s) for s in teachers]
    heapq.heapify(s_heap)
    for h in t_heaps.values():
        heapq.heapify(h)
    left = max(0, limit)
    while left and s_heap:
        _, s_first, school = heapq.heappop(s_heap)
        dealt_t, _, teacher = heapq.heappop(t_heaps[school])
        q = teachers[school][teacher]
        job = q[0]
        quota[job.id] += 1
        left -= 1
        if job.room is not None and quota[job.id] >= job.room:
            q.popleft()
        if q:
            heapq.heappush(t_heaps[school], (dealt_t + 1, q[0].created_at, teacher))
        if t_heaps[school]:
            s_dealt[school] += 1
            w = max(float(weights.get(school, 1.0)), 1e-6)
            heapq.heappush(s_heap, ((s_dealt[school] + 1) / w, min(e[1] for e in t_heaps[school]), school))
    return [(j.id, quota[j.id]) for j in ordered if quota[j.id] > 0]
