"""scripts/load.py at a tenth of `make load`: 1,000 essays in 50 jobs from 20 clients, through a
real API and worker on a fresh database. Correctness only (no timing asserts)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


@pytest.mark.skipif(not (ROOT.parent / "shared" / "data" / "asap" / "dev.jsonl").exists(), reason="no ASAP dev data")
def test_load_tenth_size_all_graded_none_lost(tmp_path):
    out = tmp_path / "load.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "load.py"), "--essays", "1000", "--jobs", "50",
                           "--clients", "20", "--out", str(out), "--log-dir", str(tmp_path / "logs"),
                           "--redis-url", "redis://127.0.0.1:6379/13", "--timeout", "780"],
                          cwd=ROOT, capture_output=True, text=True, timeout=880)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    rep = json.loads(out.read_text())
    assert rep["accepted_jobs"] == rep["finished_jobs"] == 50, rep
    assert rep["essays_total"] == 1000
    assert rep["lost"] == 0 and rep["duplicated"] == 0, rep
    assert rep["max_results_per_essay"] == 1
    assert rep["essays_by_status"] == {"done": 1000}, rep
    assert rep["results_returned_by_api"] == 1000
    assert rep["jobs_by_status"] == {"succeeded": 50}
    assert rep["inconsistent_jobs"] == 0
    assert rep["submit_ms"]["n"] == 50 and rep["poll_ms"]["n"] > 0
    assert rep["worker_rss"]["samples"] > 0
    assert rep["ok"] and proc.returncode == 0, proc.stdout[-2000:]
