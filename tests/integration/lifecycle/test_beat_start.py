"""beat started with EDUQ_VAR_DIR naming a folder that does not exist yet (a fresh volume or clone)
creates it and starts, instead of dying in a flood of tracebacks."""
from __future__ import annotations

import pytest

from tests.conftest import BIN, REDIS_TEST_URL, Proc, proc_env

pytestmark = pytest.mark.timeout(180)


def test_beat_starts_on_a_var_dir_that_does_not_exist_yet(tmp_path, log_dir, pg_url):
    var = tmp_path / "fresh" / "volume"
    assert not var.exists()
    beat = Proc("beat-fresh", [str(BIN / "celery"), "-A", "workers.celery_app", "beat", "-l", "INFO",
                               "-s", str(var / "celerybeat-schedule")],
                proc_env(EDUQ_VAR_DIR=str(var), CELERY_BROKER_URL=REDIS_TEST_URL, DATABASE_URL=pg_url), log_dir).start()
    try:
        beat.wait_for("beat: Starting", timeout=120)
        assert var.is_dir()
        assert "Traceback" not in beat.output(), beat.output()[-3000:]
    finally:
        beat.stop()
