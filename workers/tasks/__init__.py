"""Celery tasks, one thin module per queue. A message carries a job id only; each task hands it to
the worker runtime (workers/runtime/), which claims the work itself from Postgres.

    grading.py      queue grading      eduq.grade
    lessons.py      queue lessons      eduq.lesson
    training.py     queue training     eduq.train
    maintenance.py  queue maintenance  eduq.sweep, eduq.purge
    webhooks.py     queue webhooks     eduq.webhook
    process.py      worker process signals: logging, after-fork resets, model preload, start-up sweep
"""
