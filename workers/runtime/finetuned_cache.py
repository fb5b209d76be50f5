"""Fine-tuned graders held in memory per worker process: loaded on first use, at most
EDUQ_MODEL_CACHE_SIZE (default 4) at once, least recently used dropped first. Never a load per batch."""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from app.settings import settings
from app.store.db import session_scope
from app.store.model_store import fetch_verified
from app.store.tables import GraderModel
from workers.ml.grading.finetuned import load_version
from workers.ml.grading.service import UnknownModel

log = logging.getLogger("eduq.worker")


class ModelGone(UnknownModel):
    """The model version was deleted (or never existed): its essays cannot be graded."""


class GraderCache:
    def __init__(self, size: int | None = None, encoder=None):
        self.encoder = encoder  # the process's shared encoder (method `head` reads it)
        self.size = max(1, size or settings().model_cache_size)
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, model_id: str):
        with self._lock:
            g = self._items.get(model_id)
            if g is not None:
                self._items.move_to_end(model_id)
                return g
            g = self._load(model_id)
            self._items[model_id] = g
            self.loads += 1
            while len(self._items) > self.size:
                old, _ = self._items.popitem(last=False)
                log.info("model %s dropped from the cache (size %d)", old, self.size)
            return g

    def drop(self, model_id: str) -> None:
        with self._lock:
            self._items.pop(model_id, None)

    def __contains__(self, model_id: str) -> bool:
        return model_id in self._items

    def _load(self, model_id: str):
        with session_scope() as s:
            m = s.get(GraderModel, model_id)
            if m is None or not m.artifact_uri:
                raise ModelGone(f"model {model_id} no longer exists")
            uri, checksum = m.artifact_uri, m.checksum
        t0 = time.perf_counter()
        g = load_version(model_id, fetch_verified(uri, model_id, checksum), encoder=self.encoder)
        log.info("fine-tuned model %s loaded in %.2fs", model_id, time.perf_counter() - t0)
        return g
