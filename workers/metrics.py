"""Worker-side Prometheus metrics. Each worker process serves them on EDUQ_WORKER_METRICS_PORT
(a port per worker; unset = not served) — see deploy/prometheus.yml."""
from __future__ import annotations

import logging
import os

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("eduq.worker")

BATCH_SIZE = Histogram("eduq_batch_size", "Items per model batch", ["kind"],
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
ESSAYS_GRADED = Counter("eduq_essays_graded_total", "Essays graded and written")
ITEMS_FAILED = Counter("eduq_items_failed_total", "Items that failed for good", ["kind"])
MODEL_LOAD = Gauge("eduq_model_load_seconds", "Seconds the last model load took", ["model"])
JOB_DURATION = Histogram("eduq_job_duration_seconds", "Job duration from submission to finish", ["kind", "status"],
                         buckets=(1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200))

_served = False


def serve() -> None:
    """Start the metrics endpoint once per process, if a port is configured."""
    global _served
    port = os.environ.get("EDUQ_WORKER_METRICS_PORT")
    if _served or not port:
        return
    try:
        start_http_server(int(port), addr=os.environ.get("EDUQ_WORKER_METRICS_ADDR", "0.0.0.0"))
        _served = True
    except OSError as e:
        log.warning("worker metrics port %s unavailable: %s", port, e)
