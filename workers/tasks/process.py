"""Worker process signals: JSON logs, a fresh database engine after fork, the models this worker's
queues need loaded in the child (never in the parent, so CUDA is initialised only where it is used),
a sweep when a worker starts, and, in grading and lessons workers, the idle poller that finds
stranded work in Postgres (workers/runtime/idle_poll.py)."""
from __future__ import annotations

import logging

from celery.signals import after_setup_logger, celeryd_init, worker_process_init, worker_ready
from celery.worker import state as worker_state

from app.lifecycle import claims
from app.lifecycle.broker import SWEEP, celery_app
from app.lifecycle.jobs import publish
from app.logs import configure
from app.settings import settings
from app.store.db import reset_engine
from workers.runtime import models, worker_metrics
from workers.runtime.idle_poll import KINDS_OF_QUEUE, IdlePoller

log = logging.getLogger("eduq.worker")
QUEUES: set[str] = set()


@after_setup_logger.connect
def _json_logs(**_):
    configure()


@celeryd_init.connect
def _remember_queues(sender=None, conf=None, options=None, **_):
    # In the parent: only note which queues this worker serves. No torch here.
    qs = (options or {}).get("queues") or []
    if isinstance(qs, str):
        qs = qs.split(",")
    QUEUES.update(q.strip() for q in qs if q and q.strip())


@worker_process_init.connect
def _after_fork(**_):
    reset_engine()  # never share the parent's database connections
    worker_metrics.serve()
    models.preload(QUEUES)


@worker_ready.connect
def _on_ready(sender=None, **_):
    # A restarted worker re-publishes what an earlier one may have left (beat does it periodically).
    try:
        celery_app.send_task(SWEEP)
    except Exception:
        log.warning("could not queue the start-up sweep")
    kinds = [k for q in sorted(QUEUES) for k in KINDS_OF_QUEUE.get(q, ())]
    if kinds:  # this worker serves grading or lessons: it looks for stranded work itself when idle
        global POLLER
        POLLER = IdlePoller(kinds, settings().idle_poll_s, _idle, claims.claimable_job, publish).start()


def _idle() -> bool:
    """No task of this worker is running or due in its main process. A retry scheduled for later (an ETA:
    a grading task waits out another worker's lease that way) is not work in hand: while it waits, the
    poller still looks for claimable work, or that work would wait on the retry too."""
    if worker_state.active_requests:
        return False
    return not any(getattr(r, "eta", None) is None for r in list(worker_state.reserved_requests))


POLLER: IdlePoller | None = None
