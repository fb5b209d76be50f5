"""gunicorn entry point: gunicorn app.wsgi:app"""
from . import create_app

app = create_app()
