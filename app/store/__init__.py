"""Postgres (SQLite for the embedded default): the engine (db.py), the tables (tables.py), migrations
(migrate.py), teachers and tokens (accounts.py), the audit trail, fine-tuned model versions
(grader_models.py) and where their artifacts live (model_store.py)."""
