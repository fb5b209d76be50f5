"""Fault injection for chaos tests. OFF by default: nothing here changes behaviour unless an
EDUQ_FAULT_* environment variable is set on the worker process.

- EDUQ_FAULT_POISON_MARKER=<text>: the grader raises `PoisonEssay` for any batch holding an essay
  whose text contains <text>, as a model that chokes on one input would. The rest of the batch is
  then graded one by one by `GradingService` (workers/ml/grading/service.py), and the poison essay fails for good
  after EDUQ_GRADING_MAX_ATTEMPTS (tests/chaos/test_poison_essay.py).

Never set these in production; `docs/reliability.md` lists them.
"""
from __future__ import annotations

import logging
from typing import Any

from app.settings import settings

log = logging.getLogger("eduq.faults")


class PoisonEssay(RuntimeError):
    """Raised by the fault-injecting grader for an essay holding the poison marker."""


class _PoisonGrader:
    def __init__(self, inner: Any, marker: str):
        self._inner, self._marker = inner, marker

    def score(self, requests, *args, **kwargs):
        for r in requests:
            if self._marker in r.text:
                raise PoisonEssay(f"injected fault: essay contains the poison marker {self._marker!r}")
        return self._inner.score(requests, *args, **kwargs)

    def __getattr__(self, name):  # everything else is the real grader's
        return getattr(self._inner, name)


def wrap_grader(grader: Any) -> Any:
    """The chaos-testing hook around every grader (workers/runtime/grading.py): the grader itself unless a fault is configured."""
    marker = settings().fault_poison_marker
    if not marker:
        return grader
    return _PoisonGrader(grader, marker)
