"""workers/runtime/grading.py:write_retrying: a batch's write that hits a deadlock (or another transient
database error) is written again at once, so its claims do not wait out their lease; other errors, and a
database that stays away, propagate (the task's retry takes over)."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from workers.runtime import grading


def test_a_deadlocked_write_is_written_again(monkeypatch):
    calls = []

    def write(items, results):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("UPDATE essays ...", {}, Exception("deadlock detected"))
        return len(items)

    monkeypatch.setattr(grading.claims, "write_grading_results", write)
    assert grading.write_retrying(["a", "b"], {}) == 2 and len(calls) == 2


def test_a_database_that_stays_away_and_other_errors_propagate(monkeypatch):
    calls = []

    def away(items, results):
        calls.append(1)
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(grading.claims, "write_grading_results", away)
    with pytest.raises(OperationalError):
        grading.write_retrying(["a"], {}, attempts=3)
    assert len(calls) == 3
    monkeypatch.setattr(grading.claims, "write_grading_results", lambda i, r: (_ for _ in ()).throw(KeyError("x")))
    with pytest.raises(KeyError):
        grading.write_retrying(["a"], {})
