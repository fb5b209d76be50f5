"""The KEDA postgresql triggers' queries (deploy/k8s/60-keda-scaledobjects.yaml) against the migrated
schema: each returns the count of work waiting, and reads an index (no sequential scan of an item table),
so polling it every 15 s costs the same at 100 or 10 million essays."""
from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy import text

from app.store.db import session_scope
from tests.conftest import make_teacher
from tests.integration.lifecycle.test_fair_claims import make_job

KEDA = Path(__file__).resolve().parents[3] / "deploy" / "k8s" / "60-keda-scaledobjects.yaml"


def queries() -> dict[str, str]:
    out = {}
    for d in yaml.safe_load_all(KEDA.read_text()):
        if d and d["kind"] == "ScaledObject":
            for trig in d["spec"]["triggers"]:
                if trig["type"] == "postgresql":
                    out[d["metadata"]["name"]] = trig["metadata"]["query"]
    return out


def test_the_grading_trigger_counts_essays_waiting_or_in_progress(clean_queue):
    teacher, _ = make_teacher(school="KEDA School")
    job = make_job(teacher, 7)
    q = queries()["worker-grading"]
    with session_scope() as s:
        assert s.scalar(text(q)) == 7
        s.execute(text("UPDATE essays SET status = 'claimed' WHERE job_id = :j AND position < 3"), {"j": job})
        s.execute(text("UPDATE essays SET status = 'done' WHERE job_id = :j AND position >= 5"), {"j": job})
        assert s.scalar(text(q)) == 5  # 3 being graded, 2 pending; the done ones are not work


def test_every_keda_query_returns_an_integer_and_reads_an_index(clean_queue):
    got = queries()
    assert set(got) == {"worker-grading", "worker-lessons", "worker-training"}
    with session_scope() as s:
        s.execute(text("SET LOCAL enable_seqscan = off"))  # tiny test tables: ask which index the query can use
        for name, q in got.items():
            assert isinstance(s.scalar(text(q)), int), name
            plan = "\n".join(r[0] for r in s.execute(text("EXPLAIN " + q)))
            assert "Seq Scan" not in plan and "Index" in plan, f"{name}: {plan}"
