"""Work never strands: a worker that is idle looks in Postgres for claimable work itself.

A broker message is only a wake-up call. When a worker dies, its unacked message comes back only after
the broker's visibility timeout (an hour with Redis), and the sweeper that re-publishes lost jobs runs
on another process kind (beat, worker_ops) that may not be running. So each grading or lessons worker
runs this poller in its main process: every EDUQ_IDLE_POLL_S, if the worker has no task in hand, one
indexed probe asks Postgres for a job with claimable items (pending, or claimed under an expired
lease) of the kinds it serves, and publishes that job id to its own queue. A killed worker's essays are
thus claimed again within its lease plus one poll, with any subset of the Procfile's processes
running; a duplicate message is harmless (work is claimed, never taken from a message).

The main process forks pool children (a killed child is replaced at once). A fork copies every lock
in the state it has at that instant, and a poll holds some (the broker's producer pool, the database
pool): a child forked mid-poll inherited a held lock and hung at its first publish. So a poll and a
fork exclude each other (`os.register_at_fork`): a fork waits for the poll in progress to end.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Callable

log = logging.getLogger("eduq.worker")
KINDS_OF_QUEUE = {"grading": ("grading",), "lessons": ("lesson", "follow_up")}  # the job kinds a queue serves


class IdlePoller:
    def __init__(self, kinds: list[str], interval_s: float, is_idle: Callable[[], bool],
                 find: Callable[[str], str | None], publish: Callable[[str, str], object]):
        self.kinds, self.interval_s = kinds, max(0.05, float(interval_s))
        self.is_idle, self.find, self.publish = is_idle, find, publish
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eduq-idle-poll", daemon=True)
        self.woken = 0
        self._busy = threading.Lock()  # held for a whole poll, and by a fork in this process
        os.register_at_fork(before=self._busy.acquire, after_in_parent=self._busy.release,
                            after_in_child=self._busy.release)

    def start(self) -> "IdlePoller":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self) -> list[tuple[str, str]]:
        """Publish one wake-up per kind that has claimable work, if the worker is idle."""
        sent: list[tuple[str, str]] = []
        if not self.is_idle():
            return sent
        for kind in self.kinds:
            job_id = self.find(kind)
            if job_id is not None and self.is_idle():
                self.publish(job_id, kind)
                sent.append((kind, job_id))
        self.woken += len(sent)
        return sent

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                with self._busy:
                    sent = self.poll_once()
                for kind, job_id in sent:
                    log.info("idle worker found claimable %s work; woke job %s", kind, job_id,
                             extra={"job_id": job_id})
            except Exception as exc:  # the database or the broker is away: look again next time
                log.warning("idle poll failed: %s", type(exc).__name__)
