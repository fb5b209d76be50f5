"""The two in-process grading paths `make bench` compares.

NaiveLoop: the plain Hugging Face loop — one essay at a time, fp32, no padding, torch.no_grad —
followed by the same head. batched_path: the project's path, DefaultGrader.grade over the
batches the worker would form (length-sorted inside, bf16 where the CPU has it).
Both use the same head, so a score difference comes from batching and precision alone."""
from __future__ import annotations

import numpy as np
import torch


class NaiveLoop:
    def __init__(self, max_length: int = 512):
        from transformers import AutoModel, AutoTokenizer

        from workers.grader.encoder import default_model_dir

        self.tok = AutoTokenizer.from_pretrained(default_model_dir(), local_files_only=True)
        self.model = AutoModel.from_pretrained(default_model_dir(), local_files_only=True).eval()
        self.max_length = max_length

    def embed_one(self, text: str) -> np.ndarray:
        with torch.no_grad():
            enc = self.tok(text or " ", truncation=True, max_length=self.max_length, return_tensors="pt")
            h = self.model(**enc).last_hidden_state
            return torch.nn.functional.normalize(h.mean(1), dim=-1)[0].numpy()

    def grade(self, grader, texts: list[str], rubrics: list[dict]) -> list[dict]:
        prompts = sorted({(r.get("prompt") or "").strip() for r in rubrics} - {""})
        prompt_emb = {p: self.embed_one(p) for p in prompts}
        out = []
        for t, r in zip(texts, rubrics):
            out += grader.score_embedded([t], [r], self.embed_one(t)[None, :], prompt_emb)
        return out


def batched_path(grader, texts: list[str], rubrics: list[dict], batch: int = 64) -> list[dict]:
    out = []
    for i in range(0, len(texts), batch):
        out += grader.grade(texts[i:i + batch], rubrics[i:i + batch])
    return out
