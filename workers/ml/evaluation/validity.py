"""`eduq grader eval`: a grader's agreement with human raters on an ASAP-style file, as a JSON report
and an HTML validity report (workers/ml/evaluation/report.py).

    run_eval("asap" | "default" | PATH, "../shared/data/asap/dev.jsonl", stress=True) -> report dict

The statistics are `asap.evaluate_asap`'s for every model: the shipped per-prompt graders directly;
the rubric-agnostic default grader through `DefaultOnPrompts`, which grades each essay against its
prompt's rubric (range and traits read from rubrics.json beside the data, at run time), so both are
measured the same way. With `stress`, the review flags' stress set (workers/ml/evaluation/stress.py) built
from the same file is added; with `lopo`, the default grader's leave-one-prompt-out figures.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


class DefaultOnPrompts:
    """The default grader behind the interface evaluate_asap measures (embedder/predict/prompts/meta)."""

    def __init__(self, grader, rubrics: dict):
        from workers.ml.grading.service import GradingService

        self.grader, self.encoder, self.version = grader, grader.encoder, grader.version
        self.service = GradingService.over(grader.encoder, {"default": grader})
        self.embedder = grader.encoder  # what predict() reads: the plain embedding
        self.meta = {"ranges": {p: list(r["score"]) for p, r in rubrics.items()},
                     "trait_ranges": {p: {t: list(v) for t, v in (r.get("traits") or {}).items()}
                                      for p, r in rubrics.items()}}
        self.tasks = {p: r.get("task") or "" for p, r in rubrics.items()}

    def prompts(self) -> list[str]:
        return sorted(self.meta["ranges"], key=int)

    def rubric(self, p: str) -> dict:
        lo, hi = self.meta["ranges"][p]
        return {"name": f"ASAP prompt {p}", "prompt": self.tasks[p], "scale": {"min": lo, "max": hi, "step": 1},
                "traits": [{"name": t, "scale": {"min": a, "max": b, "step": 1}}
                           for t, (a, b) in self.meta["trait_ranges"][p].items()]}

    def predict(self, texts: list[str], prompt_ids: list[str], emb: np.ndarray) -> list[dict]:
        rubrics = [self.rubric(p) for p in prompt_ids]
        out = self.service.grade_with("default", texts, rubrics, emb)
        for o in out:
            o["raw_confidence"] = o["confidence"]  # the default grader's confidence is not recalibrated
            # its low-confidence flag is a cut on the error sd, not on confidence (default.py)
            o["low_confidence"] = any(r.startswith("low confidence") for r in o["review_reasons"])
        return out


def load_rubrics(data_path: str) -> dict:
    return json.loads((Path(data_path).parent / "rubrics.json").read_text())["prompts"]


def load_grader(model: str, data_path: str):
    """'asap' or an asap artifacts folder -> AsapGrader; 'default' or a head .npz -> DefaultOnPrompts."""
    from workers.ml.grading.asap import AsapGrader
    from workers.ml.grading.default import DefaultGrader

    path = Path(model)
    if model == "asap" or (path.is_dir() and (path / "manifest.json").is_file()):
        return AsapGrader.load(artifacts_dir=None if model == "asap" else path)
    if model == "default" or (path.is_file() and path.suffix == ".npz"):
        return DefaultOnPrompts(DefaultGrader.load(head_path=None if model == "default" else str(path)),
                                load_rubrics(data_path))
    raise ValueError(f"unknown model {model!r}: use asap, default, an asap artifacts folder or a head .npz file")


def run_eval(model: str, data_path: str, limit: int | None = None, stress: bool = True,
             stress_per_prompt: int = 40, lopo: str | None = None, cache: bool = True) -> dict:
    from workers.ml.evaluation.asap_eval import evaluate_asap

    g = load_grader(model, data_path)
    rep = evaluate_asap(g, data_path, limit=limit, cache=cache)
    rep["model"] = model
    rep["prompts"] = {p: {"qwk": v["qwk"], "n": v["n"]} for p, v in rep["per_prompt"].items()}  # the contract's shape
    if any("tolerance" in v for v in rep["per_prompt"].values()):
        rep["tolerance_note"] = ("Agreement counts a score as agreeing when it is within the prompt's tolerance of the "
                                 "human score: exact for ranges of up to 12 points, within 3 points on prompt 7 (0-30) "
                                 "and 6 on prompt 8 (0-60).")
    if stress:
        from workers.ml.embedding_cache import cached_embed
        from workers.ml.grading.review import Reviewer
        from workers.ml.evaluation.stress import run_stress

        enc = g.encoder
        tag = Path(data_path).stem
        st = run_stress(Reviewer.load(encoder=enc), enc.embed, data_path, per_prompt=stress_per_prompt,
                        real_embed_fn=(lambda t: cached_embed(enc, t, tag, verbose=False)) if cache else None,
                        limit=limit, verbose=False)
        rep["stress"] = st
        rep["needs_review_share"] = st.get("real_flag_rate")
    if lopo:
        rep["lopo"] = json.loads(Path(lopo).read_text())
    return rep
