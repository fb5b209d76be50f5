"""Flower, as the Procfile starts it: protected by FLOWER_BASIC_AUTH, and it sees the workers."""
from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import BIN, Proc, free_port, proc_env

pytestmark = pytest.mark.e2e


def test_flower_basic_auth_and_workers(grading_worker, log_dir):
    port = free_port()
    flower = Proc("flower", [str(BIN / "celery"), "-A", "workers.celery_app", "flower", f"--port={port}",
                             "--address=127.0.0.1"],
                  proc_env(FLOWER_BASIC_AUTH="ops:s3cret", FLOWER_PORT=str(port)), log_dir).start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                r = requests.get(base + "/", timeout=2)
                break
            except requests.RequestException:
                assert time.time() < deadline, flower.output()[-2000:]
                time.sleep(0.3)
        assert r.status_code == 401
        assert requests.get(base + "/", auth=("ops", "wrong"), timeout=5).status_code == 401
        seen = {}
        while time.time() < deadline and not seen:
            seen = requests.get(base + "/api/workers?refresh=1", auth=("ops", "s3cret"), timeout=20).json()
            time.sleep(1)
        assert any(name.startswith("grading-") for name in seen), seen
    finally:
        flower.stop()
