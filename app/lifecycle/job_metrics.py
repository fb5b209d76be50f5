"""Prometheus counters of the job lifecycle, updated where items are written and jobs finish
(in whichever worker process does it; see workers/runtime/worker_metrics.py for how they are served)."""
from __future__ import annotations

from prometheus_client import Counter, Histogram

ESSAYS_GRADED = Counter("eduq_essays_graded_total", "Essays graded and written")
ITEMS_FAILED = Counter("eduq_items_failed_total", "Items that failed for good", ["kind"])
JOB_DURATION = Histogram("eduq_job_duration_seconds", "Job duration from submission to finish", ["kind", "status"],
                         buckets=(1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 7200))
