"""Worker process signals: JSON logs, a fresh database engine after fork, the models this worker's
queues need loaded in the child (never in the parent, so CUDA is initialised only where it is used),
and a sweep when a worker starts."""
from __future__ import annotations

import logging

from celery.signals import after_setup_logger, celeryd_init, worker_process_init, worker_ready

from app.lifecycle.broker import SWEEP, celery_app
from app.logs import configure
from app.store.db import reset_engine
from workers.runtime import models, worker_metrics

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
def _sweep_on_start(sender=None, **_):
    # A restarted worker re-publishes what an earlier one may have left (beat does it periodically).
    try:
        celery_app.send_task(SWEEP)
    except Exception:
        log.warning("could not queue the start-up sweep")
