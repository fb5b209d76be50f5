"""Model code: the encoder, graders (grading/), lesson plans (lessons/), training (training/) and
evaluation (evaluation/). It imports no Celery, SQLAlchemy or Flask, and serving code (grading/,
lessons/) never imports training or evaluation code (import-linter contracts in pyproject.toml)."""
