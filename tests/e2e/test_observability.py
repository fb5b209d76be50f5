"""What operators see: a worker's own Prometheus endpoint, and JSON log lines with ids, never essay text."""
from __future__ import annotations

import json
import re
import time

import pytest
import requests

from tests.conftest import RUBRIC, free_port, make_teacher, start_worker
from tests.e2e.test_grading_e2e import wait_finished

pytestmark = pytest.mark.e2e
SECRET_TEXT = "Zebra-marmalade uniforms"  # must never appear in a log line


def _metric(text: str, name: str) -> float:
    vals = [float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.M)]
    return sum(vals)


def test_worker_metrics_and_json_logs(live_api, grading_worker, log_dir):
    import os
    import signal

    port = free_port()
    os.killpg(grading_worker.p.pid, signal.SIGSTOP)  # only the worker under test takes this job
    try:
        w = start_worker(log_dir, "grading", "metrics", EDUQ_WORKER_METRICS_PORT=str(port), EDUQ_LOG_FORMAT="json")
        try:
            _, token = make_teacher()
            h = {"Authorization": f"Bearer {token}"}
            essays = [{"id": f"m{i}", "text": f"{SECRET_TEXT} are a fine idea for our school, reason {i}. " * 6}
                      for i in range(5)]
            job = requests.post(live_api + "/api/v1/grading-jobs", json={"rubric": RUBRIC, "essays": essays},
                                headers=h, timeout=30).json()["job"]
            assert wait_finished(live_api, job, h)["status"] == "succeeded"
            time.sleep(0.5)
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            assert _metric(text, "eduq_essays_graded_total") >= 5
            assert _metric(text, "eduq_batch_size_count") >= 1
            assert _metric(text, "eduq_model_load_seconds") > 0
            assert _metric(text, "eduq_job_duration_seconds_count") >= 1
            out = w.output()
        finally:
            w.stop()
    finally:
        os.killpg(grading_worker.p.pid, signal.SIGCONT)
    assert SECRET_TEXT not in out
    ours = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"eduq.' in line]
    batch_lines = [r for r in ours if r.get("batch_size")]
    assert batch_lines and job["id"] in batch_lines[0]["job_ids"]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in ours)
    # the API side: request latency by route, and the queue depth per queue
    api_text = requests.get(live_api + "/metrics", timeout=10).text
    assert "eduq_http_request_duration_seconds_bucket" in api_text and "eduq_queue_depth" in api_text
