"""Per-process model holders. Models are loaded after fork (worker_process_init), never in the
parent, so CUDA is only ever initialised in the child that uses it."""
from __future__ import annotations

import logging
import os
import threading
import time

from workers import metrics

log = logging.getLogger("eduq.worker")
_lock = threading.Lock()
_grader = None
_asap = None
_lessons = None
LOAD_SECONDS: dict[str, float] = {}


def grader():
    global _grader
    with _lock:
        if _grader is None:
            from workers.grader.default import DefaultGrader

            t0 = time.perf_counter()
            g = DefaultGrader.load()
            g.warmup()  # fails loudly (e.g. out of memory) before any job is touched
            LOAD_SECONDS["grader"] = time.perf_counter() - t0
            metrics.MODEL_LOAD.labels("grader").set(LOAD_SECONDS["grader"])
            log.info("grader %s loaded in %.1fs (device %s, encoder %s, batch %d)", g.version, LOAD_SECONDS["grader"],
                     g.encoder.device, g.encoder.precision, g.encoder.batch_size)
            _grader = g
    return _grader


def asap_grader():
    """The shipped per-prompt ASAP graders (models 'asap-1'..'asap-8'), sharing the default grader's encoder."""
    global _asap
    enc = grader().encoder
    with _lock:
        if _asap is None:
            from workers.grader.asap import AsapGrader

            t0 = time.perf_counter()
            g = AsapGrader.load(encoder=enc)  # every artifact's sha256 checked before it is unpickled
            g.warmup()
            LOAD_SECONDS["asap"] = time.perf_counter() - t0
            metrics.MODEL_LOAD.labels("asap").set(LOAD_SECONDS["asap"])
            log.info("asap graders %s loaded in %.1fs", g.version, LOAD_SECONDS["asap"])
            _asap = g
    return _asap


def lessons():
    global _lessons
    with _lock:
        if _lessons is None:
            from workers.lessons import LessonEngine

            t0 = time.perf_counter()
            _lessons = LessonEngine.load(budget_scale=float(os.environ.get("EDUQ_LESSON_BUDGET_SCALE", 1.0)))
            LOAD_SECONDS["lessons"] = time.perf_counter() - t0
            metrics.MODEL_LOAD.labels("lessons").set(LOAD_SECONDS["lessons"])
            log.info("lesson model loaded in %.1fs", LOAD_SECONDS["lessons"])
    return _lessons
