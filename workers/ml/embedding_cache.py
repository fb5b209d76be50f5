"""On-disk cache of encoder embeddings (var/cache/embeddings, gitignored), in chunks so an
interrupted run keeps its progress. Keyed by the chunk's texts and the encoder's name, max_length
and precision, so a changed encoder never reuses stale vectors. Never holds any text."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from app.settings import settings

ROOT = Path(__file__).resolve().parents[2]
CHUNK = 256


def cache_dir() -> Path:
    d = Path(settings().cache_dir) / "embeddings"
    d.mkdir(parents=True, exist_ok=True)
    return d


def cached_embed(encoder, texts: list[str], tag: str = "emb", verbose: bool = True) -> np.ndarray:
    parts = []
    t0 = time.perf_counter()
    cfg = f"|{encoder.name}|{encoder.max_length}|{encoder.precision}"
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start:start + CHUNK]
        key = hashlib.sha256(("\x00".join(chunk) + cfg).encode()).hexdigest()[:20]
        f = cache_dir() / f"{tag}-{key}.npy"
        if f.exists():
            parts.append(np.load(f))
            continue
        e = encoder.embed(chunk)
        np.save(f, e)
        parts.append(e)
        if verbose:
            done = min(start + CHUNK, len(texts))
            print(f"  embedded {done}/{len(texts)} ({tag}) {time.perf_counter() - t0:.0f}s", flush=True)
    if not parts:
        return np.zeros((0, getattr(encoder, "dim", 384)), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32)
