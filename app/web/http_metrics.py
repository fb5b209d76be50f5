"""Prometheus metrics (prometheus_client). Multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set."""
from __future__ import annotations

import logging
import os
import time

from flask import Flask, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from app.lifecycle.broker import QUEUES
from app.settings import settings

access = logging.getLogger("eduq.access")

REQUEST_LATENCY = Histogram("eduq_http_request_duration_seconds", "API request latency",
                            ["method", "route", "status"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
JOBS_SUBMITTED = Counter("eduq_jobs_submitted_total", "Jobs accepted", ["kind"])


class QueueDepthCollector:
    """eduq_queue_depth{queue}: messages waiting in each broker queue (Redis list length)."""

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        fam = GaugeMetricFamily("eduq_queue_depth", "Messages waiting per queue", labels=["queue"])
        url = settings().broker_url
        if url.startswith("redis"):
            try:
                import redis

                r = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
                for q in QUEUES:
                    fam.add_metric([q], float(r.llen(q)))
                r.close()
            except Exception:
                pass
        yield fam


_registered = False


def _register_queue_depth() -> None:
    global _registered
    if not _registered:
        from prometheus_client import REGISTRY

        REGISTRY.register(QueueDepthCollector())
        _registered = True


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(QueueDepthCollector())
        return generate_latest(registry), CONTENT_TYPE_LATEST
    _register_queue_depth()
    return generate_latest(), CONTENT_TYPE_LATEST


def init_app(app: Flask) -> None:
    @app.before_request
    def _start():
        g._t0 = time.perf_counter()

    @app.after_request
    def _observe(resp):
        t0 = getattr(g, "_t0", None)
        if t0 is not None:
            route = request.url_rule.rule if request.url_rule else "unmatched"
            elapsed = time.perf_counter() - t0
            REQUEST_LATENCY.labels(request.method, route, str(resp.status_code)).observe(elapsed)
            principal = getattr(g, "principal", None)
            job_id = (request.view_args or {}).get("job_id")
            if job_id is None and resp.is_json and resp.status_code in (200, 202):
                body = resp.get_json(silent=True) or {}
                job_id = (body.get("job") or {}).get("id") if isinstance(body, dict) else None
            access.info("request", extra={"method": request.method, "route": route, "status": resp.status_code,
                                          "ms": round(elapsed * 1000, 1), "job_id": job_id,
                                          "teacher_id": principal.teacher_id if principal else None})
        return resp
