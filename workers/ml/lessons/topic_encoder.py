"""Sentence embeddings for the on-topic check: the shipped MiniLM (all-MiniLM-L6-v2), mean-pooled over a
256-token window, as the grading encoder computes it.

Served by llama.cpp from a GGUF of the package's own weights (scripts/build_topic_gguf.py, run by
`make install`), so the lessons worker, which already runs llama.cpp for the plans, never loads torch or
transformers (about 560 MiB of its memory). Its embeddings match the torch encoder's (cosine >= 0.9999 on
the labelled plans' sections, tests/fast/ml/lessons/test_topic_encoder.py), so the fitted threshold holds
for both. Where the file is missing (a checkout without `make install`), the torch encoder is used and a
warning says so. EDUQ_TOPIC_ENCODER=torch forces the torch one.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("eduq.lessons")
DEFAULT_GGUF = Path(sys.prefix) / "share" / "eduq" / "all-minilm-l6-v2.f16.gguf"
MAX_TOKENS = 256


def minilm_dir() -> str:
    """The shipped MiniLM's folder (the grading encoder's default weights)."""
    from workers.ml.variants import default_model_dir

    return default_model_dir()


class GgufEncoder:
    """MiniLM on llama.cpp: `embed(texts) -> (n, 384)` float32, mean-pooled, not normalised (as Encoder.embed)."""

    def __init__(self, path: Path | str, threads: int | None = None):
        from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama

        self.path = str(path)
        self.name = "all-MiniLM-L6-v2.gguf@llama.cpp"
        self.llm = Llama(self.path, embedding=True, n_ctx=MAX_TOKENS, n_batch=MAX_TOKENS, n_ubatch=MAX_TOKENS,
                         pooling_type=LLAMA_POOLING_TYPE_MEAN, n_threads=threads or max(1, os.cpu_count() or 1),
                         verbose=False)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.llm.n_embd()), dtype=np.float32)
        return np.asarray(self.llm.embed(list(texts), normalize=False, truncate=True), dtype=np.float32)


def check_gguf(path: Path | str) -> None:
    """Load the file and embed one sentence; raises unless it gives one 384-dimensional vector."""
    out = GgufEncoder(path, threads=1).embed(["A check of the encoder."])
    if out.shape != (1, 384) or not np.isfinite(out).all():
        raise RuntimeError(f"{path}: not a MiniLM embedding model (got {out.shape})")


def load_encoder():
    """The GGUF encoder where `make install` made its file; the torch encoder otherwise (or when asked)."""
    from app.settings import settings

    cfg = settings()
    path = Path(cfg.topic_encoder_gguf or DEFAULT_GGUF)
    if cfg.topic_encoder != "torch":
        if path.exists():
            return GgufEncoder(path)
        log.warning("on-topic check: %s is missing (make install makes it); using the torch encoder", path)
    from workers.ml.encoder import Encoder

    return Encoder(max_length=MAX_TOKENS)
