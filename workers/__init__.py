"""Worker processes: Celery tasks (tasks/, one thin module per queue), what a worker process does
with its models (runtime/), and the model code itself (ml/: no Celery, SQLAlchemy or Flask)."""
