"""Worker-side Prometheus metrics. Each worker process serves them on EDUQ_WORKER_METRICS_PORT
(a port per worker; unset = not served) — see deploy/prometheus.yml."""
from __future__ import annotations

import logging

from prometheus_client import Gauge, Histogram, start_http_server

from app.settings import settings

log = logging.getLogger("eduq.worker")

BATCH_SIZE = Histogram("eduq_batch_size", "Items per model batch", ["kind"],
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
MODEL_LOAD = Gauge("eduq_model_load_seconds", "Seconds the last model load took", ["model"])
_served = False


def serve() -> None:
    """Start the metrics endpoint once per process, if a port is configured."""
    global _served
    cfg = settings()
    port = cfg.worker_metrics_port
    if _served or not port:
        return
    try:
        start_http_server(port, addr=cfg.worker_metrics_addr)
        _served = True
    except OSError as e:
        log.warning("worker metrics port %s unavailable: %s", port, e)
