"""workers/runtime/idle_poll.py: an idle worker wakes a job with claimable work; a busy one does not."""
from __future__ import annotations

import time

from workers.runtime.idle_poll import IdlePoller


def _poller(idle, found, sent, interval=60.0):
    return IdlePoller(["grading", "lesson"], interval, lambda: idle[0], lambda kind: found.get(kind),
                      lambda job_id, kind: sent.append((kind, job_id)))


def test_idle_worker_wakes_each_kind_with_claimable_work():
    sent: list = []
    p = _poller([True], {"grading": "job_a", "lesson": None}, sent)
    assert p.poll_once() == [("grading", "job_a")]
    assert sent == [("grading", "job_a")] and p.woken == 1


def test_busy_worker_publishes_nothing():
    sent: list = []
    p = _poller([False], {"grading": "job_a", "lesson": "job_b"}, sent)
    assert p.poll_once() == [] and sent == []


def test_nothing_claimable_publishes_nothing_and_errors_do_not_stop_the_thread():
    sent: list = []
    calls = []

    def find(kind):
        calls.append(kind)
        if len(calls) == 1:
            raise ConnectionError("the database is away")
        return "job_c" if kind == "grading" else None

    p = IdlePoller(["grading"], 0.05, lambda: True, find, lambda job_id, kind: sent.append((kind, job_id))).start()
    deadline = time.time() + 5
    while not sent and time.time() < deadline:
        time.sleep(0.05)
    p.stop()
    assert sent and sent[0] == ("grading", "job_c") and len(calls) >= 2


def test_a_fork_waits_for_the_poll_in_progress():
    """A pool child forked mid-poll would inherit the locks the poll holds (broker producer pool,
    database pool) and hang at its first publish: a fork waits until the poll ends."""
    import os
    import threading
    import time

    in_find, release = threading.Event(), threading.Event()

    def find(kind):
        in_find.set()
        release.wait(5)
        return None

    poller = IdlePoller(["grading"], 0.05, lambda: True, find, lambda *a: None).start()
    try:
        assert in_find.wait(5), "the poller never polled"
        threading.Timer(0.4, release.set).start()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: nothing of the poll in progress is held here
            os._exit(0 if poller._busy.acquire(timeout=1) else 3)
        waited = time.monotonic() - t0
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0, "the child inherited the poller's lock held"
        assert waited >= 0.3, f"fork did not wait for the poll in progress ({waited:.2f}s)"
    finally:
        release.set()
        poller.stop()


def test_a_worker_holding_only_retries_scheduled_for_later_is_idle(monkeypatch):
    """A grading task that waits out another worker's lease is retried with a countdown (an ETA request held
    by the worker): the worker must still look for claimable work meanwhile (workers/tasks/process.py)."""
    from types import SimpleNamespace

    from workers.tasks import process

    state = process.worker_state
    monkeypatch.setattr(state, "active_requests", [])
    monkeypatch.setattr(state, "reserved_requests", [SimpleNamespace(eta="2026-12-07T09:00:00+00:00")])
    assert process._idle() is True
    monkeypatch.setattr(state, "reserved_requests", [SimpleNamespace(eta="2026-12-07T09:00:00+00:00"),
                                                     SimpleNamespace(eta=None)])
    assert process._idle() is False  # a message due now is work in hand
    monkeypatch.setattr(state, "reserved_requests", [])
    monkeypatch.setattr(state, "active_requests", [SimpleNamespace(eta=None)])
    assert process._idle() is False
