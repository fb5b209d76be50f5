"""What a worker process holds: one encoder, the review flags, the grader registry and the grading
service over them, and the lesson engine. Loaded after fork (worker_process_init), never in the
parent, so CUDA is only ever initialised in the child that uses it; each load warms up its model
and fails loudly (out of memory, a broken artifact) before any job is touched.

    grading()   -> GradingService   'default', 'asap-N' and fine-tuned ids, one MiniLM for all
    lessons()   -> LessonEngine
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from app.settings import settings
from workers.runtime import worker_metrics as metrics

if TYPE_CHECKING:  # the grading stack imports torch: a lessons-only worker never loads it
    from workers.ml.grading.service import GradingService

log = logging.getLogger("eduq.worker")
_lock = threading.RLock()
_service: "GradingService | None" = None
_lessons = None
LOAD_SECONDS: dict[str, float] = {}


def _timed(name: str, fn):
    t0 = time.perf_counter()
    out = fn()
    LOAD_SECONDS[name] = time.perf_counter() - t0
    metrics.MODEL_LOAD.labels(name).set(LOAD_SECONDS[name])
    return out


def build_service(encoder=None) -> "GradingService":
    """The registry every grading worker serves: 'default', 'asap-1'..'asap-8', fine-tuned versions."""
    from workers.ml.encoder import Encoder
    from workers.ml.grading.asap import AsapGrader
    from workers.ml.grading.default import DefaultGrader
    from workers.ml.grading.review import Reviewer
    from workers.ml.grading.service import GraderRegistry, GradingService
    from workers.runtime.finetuned_cache import GraderCache

    if encoder is None:  # the compressed variant chosen for this machine, with the heads refit on it
        from workers.ml.variants import served_variant

        encoder = Encoder(max_length=512, variant=served_variant().name)
    registry = GraderRegistry()
    default = DefaultGrader.load(encoder=encoder)
    registry.register("default", lambda: default)
    asap: list = []

    def asap_grader(_model_id: str):
        with _lock:  # one AsapGrader for every prompt (its artifacts' checksums verified on load)
            if not asap:
                asap.append(AsapGrader.load(encoder=encoder))
            return asap[0]

    registry.register_prefix("asap-", asap_grader)
    if settings().bench_mode:  # the benchmark-only grader: never registered otherwise
        from workers.ml.grading.noop import NoopGrader

        log.warning("EDUQ_BENCH_MODE=1: the benchmark-only model 'noop' is served (never in production)")
        registry.register("noop", NoopGrader)
    def calibrated(cal_id: str):
        """'default@cal_…': the default grader taught by the job's frozen scored examples (from Postgres)."""
        from app.store.calibration import load_set
        from workers.ml.grading.calibrated import CalibratedGrader
        from workers.ml.grading.calibration import Recipe

        data = load_set(cal_id)  # LookupError when its job was deleted
        return CalibratedGrader(default, asap_grader("asap-1"), Recipe.load(), cal_id, data["rubric"], data["examples"])

    registry.calibrations(calibrated)
    finetuned = GraderCache(size=settings().model_cache_size, encoder=encoder)
    registry.fallback(finetuned.get)
    return GradingService(encoder, registry, Reviewer.load(encoder=encoder))


def grading() -> "GradingService":
    global _service
    with _lock:
        if _service is None:
            service = _timed("grader", build_service)
            service.warmup("default")
            enc = service.encoder
            log.info("grader %s loaded in %.1fs (device %s, encoder %s variant %s, batch %d)",
                     service.registry.get("default").version, LOAD_SECONDS["grader"], enc.device, enc.precision,
                     enc.variant, enc.batch_size)
            asap = _timed("asap", lambda: service.registry.get("asap-1"))
            # the shipped per-prompt graders (~1 s), so an 'asap-N' job never waits on a load
            service.warmup("asap-1", asap.rubric("1"))
            log.info("asap graders %s loaded in %.1fs", asap.version, LOAD_SECONDS["asap"])
            t0 = time.perf_counter()
            shapes = enc.warm_shapes()
            log.info("grading models ready: encoder kernels built for %d input shapes in %.1fs", shapes,
                     time.perf_counter() - t0)
            _service = service
    return _service


def lessons():
    global _lessons
    with _lock:
        if _lessons is None:
            from workers.ml.lessons import LessonEngine

            _lessons = _timed("lessons", LessonEngine.load)
            _lessons.warm_up()  # fails loudly at start, not on a teacher's first plan
            log.info("lesson engine %s loaded and warmed up in %.1fs", _lessons.model_version, LOAD_SECONDS["lessons"])
    return _lessons


def preload(queues: set[str]) -> None:
    """Load what this worker's queues need (called after fork)."""
    if "grading" in queues:
        grading()
    if "lessons" in queues:
        lessons()
