"""The worker's broker connection against a real Redis: the guard of app/lifecycle/broker.py that keeps a
lost connection's close from killing the worker (kombu 5.7: AttributeError while giving back messages)."""
from __future__ import annotations

import pytest
import redis
from kombu import Connection

from app.lifecycle import broker as celery_app  # noqa: F401  (installs the guard, as every worker process does)


def test_a_channel_whose_connection_is_gone_raises_a_connection_error_not_attribute_error(redis_client):
    conn = Connection("redis://127.0.0.1:6379/15")
    try:
        channel = conn.default_channel
        assert channel._connparams()["host"] == "127.0.0.1"  # a live connection: unchanged
        channel._pool = None
        conn.transport.client = None  # what kombu leaves behind once it has dropped a lost connection
        with pytest.raises(redis.exceptions.ConnectionError):
            channel._connparams()
        # the consumer's close runs under kombu's ignore_errors: a connection error there is swallowed
        assert isinstance(redis.exceptions.ConnectionError("x"), conn.connection_errors)
    finally:
        conn.transport.client = conn
        conn.release()


def test_the_guard_is_installed_once():
    from kombu.transport import redis as kombu_redis

    before = kombu_redis.Channel._connparams
    celery_app.guard_redis_channel_close()
    assert kombu_redis.Channel._connparams is before and before.eduq_guarded
