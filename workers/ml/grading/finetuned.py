"""A fine-tuned grader version (trained by workers/ml/training/finetune.py), served like any grader.

    g = FineTunedGrader("mdl_...", artifacts_dir, encoder=shared_encoder)
    g.score([GradeRequest(text, rubric, "mdl_..."), ...]) -> ModelScores

It scores on its own rubric (the one it was trained for). Method `stack` is served by
stacked.StackedGrader (load_version picks by the version's method). Method `head` reads the process's shared
encoder (one MiniLM per process); `lora` and `full` carry their own fine-tuned encoder. Review
flags and feedback come from GradingService, as for every grader; the model adds its own doubts:
confidence under REVIEW_CONFIDENCE is its low-confidence verdict, and an essay far from its training
essays gets a reason of its own.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from workers.ml.grading.interface import FAR_FROM_TRAINING, GradeRequest, ModelScores
from workers.ml.grading.nets import EncoderRegressor, Head
from workers.ml.grading.surface_features import N_FEATURES, surface_matrix
from workers.ml.scales import rubric_scales


def load_version(model_id: str, path: str | Path, encoder=None):
    """The grader of a stored fine-tuned version, by the method its config.json names."""
    method = json.loads((Path(path) / "config.json").read_text()).get("method")
    if method == "stack":
        from workers.ml.grading.stacked import StackedGrader

        return StackedGrader(model_id, path, encoder=encoder)
    return FineTunedGrader(model_id, path, encoder=encoder)


class FineTunedGrader:
    REVIEW_CONFIDENCE = 0.55

    def __init__(self, model_id: str, path: str | Path, encoder=None):
        from safetensors.torch import load_file

        self.model_id = model_id
        self.version = model_id
        path = Path(path)
        self.conf = json.loads((path / "config.json").read_text())
        cfg = self.conf["config"]
        self.max_length, hidden, dropout = int(cfg.get("max_length", 512)), int(cfg["hidden"]), float(cfg["dropout"])
        self.method = self.conf["method"]
        self.rubric = self.conf["rubric"]
        self.main, self.traits = rubric_scales(self.rubric)
        self.mu = np.asarray(self.conf["feat_mean"], np.float32)
        self.sd = np.asarray(self.conf["feat_std"], np.float32)
        n_out = len(self.conf["targets"])
        self.tokenizer = None
        self.encoder = encoder
        if self.method == "head":
            from workers.ml.variants import variant_of

            fitted = self.conf.get("encoder_variant", "full")  # served only on the variant it was fitted on
            if self.encoder is None or self.encoder.max_length != self.max_length or variant_of(self.encoder) != fitted:
                from workers.ml.encoder import Encoder

                self.encoder = Encoder(max_length=self.max_length, variant=fitted)
            self.model = Head(self.conf["n_in"], n_out, hidden, dropout)
            self.model.load_state_dict(load_file(str(path / "head.safetensors")))
            self.device = torch.device("cpu")
            self.centroid = np.asarray(self.conf["centroid"], np.float32)
        else:
            from transformers import AutoModel, AutoTokenizer

            from workers.ml.device import choose_device
            from workers.ml.encoder import default_model_dir

            mdir = default_model_dir()
            enc = AutoModel.from_pretrained(mdir, local_files_only=True)
            if self.method == "lora":
                from peft import PeftModel

                enc = PeftModel.from_pretrained(enc, str(path / "adapter")).merge_and_unload()
            else:
                enc.load_state_dict(load_file(str(path / "encoder.safetensors")))
            self.model = EncoderRegressor(enc, N_FEATURES, n_out, hidden, dropout)
            self.model.head.load_state_dict(load_file(str(path / "head.safetensors")))
            self.device = choose_device()
            self.tokenizer = AutoTokenizer.from_pretrained(mdir, local_files_only=True)
            self.centroid = None
        self.model.to(self.device).eval()

    def _raw(self, texts: list[str], emb: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        fz = ((surface_matrix(texts) - self.mu) / self.sd).astype(np.float32)
        with torch.no_grad():
            if self.method == "head":
                emb = self.encoder.embed(texts) if emb is None else emb
                x = torch.tensor(np.concatenate([np.asarray(emb, np.float32), fz], 1))
                return self.model(x).numpy(), emb
            out = []
            for s in range(0, len(texts), 16):
                enc = self.tokenizer([t or " " for t in texts[s:s + 16]], truncation=True,
                                     max_length=self.max_length, padding=True, return_tensors="pt").to(self.device)
                out.append(self.model(enc["input_ids"], enc["attention_mask"],
                                      torch.tensor(fz[s:s + 16]).to(self.device)).float().cpu().numpy())
            return np.concatenate(out), None

    def score(self, requests: Sequence[GradeRequest], emb: np.ndarray | None = None) -> ModelScores:
        texts = [r.text for r in requests]
        if not texts:
            return ModelScores([], [], [], [], self.version)
        raw, emb = self._raw(texts, emb)
        scores, traits, confs, unsure, reasons = [], [], [], [], []
        for i in range(len(texts)):
            r = float(self.main.denorm(raw[i, 0]))
            score = float(self.main.snap(r))
            # 1.0 on a scale point, 0.5 half-way between two points
            conf = round(float(np.clip(1.0 - abs(r - score) / self.main.step, 0.0, 1.0)), 3)
            scores.append(score)
            confs.append(conf)
            unsure.append(conf < self.REVIEW_CONFIDENCE)
            far = emb is not None and float(np.asarray(emb[i]) @ self.centroid) < self.conf.get("ood_threshold", -1.0)
            reasons.append([FAR_FROM_TRAINING] if far else [])
            traits.append({name: float(sc.snap(sc.denorm(raw[i, j]))) for j, (name, sc) in enumerate(self.traits, start=1)})
        return ModelScores(scores, traits, confs, unsure, self.version, emb, None, {}, reasons)
