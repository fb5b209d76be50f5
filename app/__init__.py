"""EduQueue's platform: everything but the models.

    settings.py   every environment variable, typed, in one place
    logs.py       structured logs
    errors.py     ApiError, raised anywhere, rendered by the web layer
    store/        Postgres: engine and sessions, tables, migrations, accounts, model artifacts
    lifecycle/    the job lifecycle: create, publish (broker.py), claim, progress, finish, sweep,
                  leases, webhooks, retention
    web/          the Flask app: create_app, one handler file per resource (web/api/), the page
    cli.py        the `eduq` command line

Nothing here imports the worker runtime or the Celery tasks (workers/); the rules are import-linter
contracts in pyproject.toml. See docs/architecture.md.
"""
