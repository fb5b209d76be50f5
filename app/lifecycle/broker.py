"""The Celery app. Importing it is cheap (no torch, no task code): the API imports it to publish
job ids; worker processes start from workers/celery_app.py, which is this app."""
from __future__ import annotations

import os

from celery import Celery
from kombu import Exchange, Queue

from app.settings import settings

# the task modules, one per queue (workers/tasks/); named, not imported: the API never loads them
TASK_MODULES = ["workers.tasks.process", "workers.tasks.grading", "workers.tasks.lessons", "workers.tasks.training",
                "workers.tasks.maintenance", "workers.tasks.webhooks"]
QUEUES = ("grading", "lessons", "training", "maintenance", "webhooks")

# every task's name, in one place: the task modules register under these, publishers send to them
GRADE, LESSON, TRAIN, FOLLOW_UP = "eduq.grade", "eduq.lesson", "eduq.train", "eduq.follow_up"
SWEEP, PURGE, WEBHOOK = "eduq.sweep", "eduq.purge", "eduq.webhook"
TASK_FOR_KIND = {"grading": GRADE, "lesson": LESSON, "fine_tune": TRAIN, "follow_up": FOLLOW_UP}  # a job kind's task
TASK_ROUTES = {
    GRADE: {"queue": "grading"},
    LESSON: {"queue": "lessons"},
    FOLLOW_UP: {"queue": "lessons"},
    TRAIN: {"queue": "training"},
    SWEEP: {"queue": "maintenance"},
    PURGE: {"queue": "maintenance"},
    WEBHOOK: {"queue": "webhooks"},
}


def is_amqp(broker_url: str) -> bool:
    return broker_url.split(":", 1)[0] in ("amqp", "amqps", "pyamqp")


def task_queues(broker_url: str) -> list[Queue]:
    """The queues. On RabbitMQ: durable quorum queues (replicated, their messages survive a broker
    restart) on topic exchanges, which Celery's native delayed delivery needs for the tasks' countdown
    retries; elsewhere plain queues."""
    if is_amqp(broker_url):
        return [Queue(q, Exchange(q, type="topic", durable=True), routing_key=q, durable=True,
                      queue_arguments={"x-queue-type": "quorum"}) for q in QUEUES]
    return [Queue(q) for q in QUEUES]


def _transport_options(broker_url: str) -> dict:
    if broker_url.startswith("filesystem"):
        folder = os.path.join(str(settings().var_dir), "broker")
        for sub in ("queue", "processed"):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
        return {
            "data_folder_in": os.path.join(folder, "queue"),
            "data_folder_out": os.path.join(folder, "queue"),
            "processed_folder": os.path.join(folder, "processed"),
            "store_processed": False,
            # kombu 5.7's broadcast (pidbox) exchange tables; its default is ./control in the working directory
            "control_folder": os.path.join(folder, "control"),
        }
    if is_amqp(broker_url):
        # publisher confirms: a publish returns once RabbitMQ has the message (the quorum queue's majority)
        return {"confirm_publish": True}
    # Redis: an unacked message is redelivered after visibility_timeout. Grading tasks are
    # short (seconds per batch) and idempotent; training jobs hold a lease in Postgres instead.
    return {"visibility_timeout": settings().visibility_timeout_s,
            "socket_timeout": 5, "socket_connect_timeout": 5}


def guard_redis_channel_close() -> None:
    """Work around a kombu 5.7 race that kills the worker when Redis goes away.

    A Redis channel closed after the broker went away can still need a new client, to give back its
    unacked messages, after its connection's client is already gone. `_connparams` then raises
    AttributeError ('NoneType' object has no attribute 'hostname'). Celery's consumer does not expect that
    while it closes the lost connection, and the worker process exits with "Unrecoverable error". Seen
    once in tests/chaos/test_redis_restart.py on a fast CPU.

    Raise the transport's ConnectionError there instead: the close is then ignored as a connection error,
    and the consumer reconnects as it does after any broker loss. The messages it could not give back
    died with Redis anyway; Postgres still has their jobs, and the sweeper re-publishes them."""
    try:
        import redis
        from kombu.transport import redis as kombu_redis
    except ImportError:  # no Redis transport installed: nothing to guard
        return
    original = kombu_redis.Channel._connparams
    if getattr(original, "eduq_guarded", False):
        return

    def _connparams(self, asynchronous=False):
        if self.connection is None or getattr(self.connection, "client", None) is None:
            raise redis.exceptions.ConnectionError("the broker connection is already closed")
        return original(self, asynchronous=asynchronous)

    _connparams.eduq_guarded = True
    kombu_redis.Channel._connparams = _connparams


def make_celery() -> Celery:
    cfg = settings()
    # beat keeps its schedule file under EDUQ_VAR_DIR (Procfile: -s $EDUQ_VAR_DIR/celerybeat-schedule); a
    # fresh volume or clone has no such folder yet, and beat would die on it
    os.makedirs(cfg.var_dir, exist_ok=True)
    app = Celery("eduq", broker=cfg.broker_url, include=TASK_MODULES)
    app.conf.update(
        broker_transport_options=_transport_options(cfg.broker_url),
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        task_queues=task_queues(cfg.broker_url),
        task_default_queue="maintenance",
        task_default_exchange_type="topic" if is_amqp(cfg.broker_url) else "direct",
        task_default_queue_type="quorum" if is_amqp(cfg.broker_url) else "classic",
        worker_detect_quorum_queues=True,  # per-consumer prefetch, as quorum queues need
        task_routes=TASK_ROUTES,
        task_acks_late=True,  # a message is acked only after its work is written
        task_reject_on_worker_lost=True,  # a killed child's message goes back to the queue
        worker_prefetch_multiplier=1,
        task_ignore_result=True,  # results live in Postgres, never in Celery's backend
        task_serializer="json",
        accept_content=["json"],
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1},
        worker_proc_alive_timeout=cfg.worker_start_timeout_s,  # model load after fork
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_schedule={
            "sweep-stale-jobs": {"task": SWEEP, "schedule": float(cfg.sweep_interval_s)},
            "purge-expired-data": {"task": PURGE, "schedule": float(cfg.purge_interval_s),
                                   "options": {"queue": "maintenance"}},
        },
    )
    return app


guard_redis_channel_close()
celery_app = make_celery()

