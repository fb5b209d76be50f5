"""The validity report renderer: tables, the three plots and the target verdicts, from a report
dict shaped like `eduq grader eval` output (synthetic figures here; the real command is exercised
in tests/fast/ml/grading/test_asap.py)."""
from __future__ import annotations

import re

import numpy as np

from workers.ml.evaluation.report import ece, render_html


def fake_report(seed: int = 0, noise: float = 0.6) -> dict:
    rng = np.random.default_rng(seed)
    per, arrays = {}, {"prompt": [], "human": [], "pred": [], "confidence": [], "agree": []}
    for p, (lo, hi) in {"1": (2, 12), "3": (0, 3), "8": (0, 60)}.items():
        h = rng.integers(lo, hi + 1, 80)
        y = np.clip(np.rint(h + rng.normal(0, noise * (hi - lo) / 6, 80)), lo, hi).astype(int)
        conf = rng.uniform(0.2, 0.9, 80)
        agree = (np.abs(h - y) <= (0 if hi - lo <= 12 else 6)).astype(int)
        n = hi - lo + 1
        cm = np.zeros((n, n), int)
        np.add.at(cm, (h - lo, y - lo), 1)
        per[p] = {"n": 80, "qwk": 0.65 + 0.1 * int(p == "1"), "exact": float(np.mean(h == y)),
                  "adjacent": float(np.mean(np.abs(h - y) <= 1)), "smd": 0.02, "confusion": cm.tolist(),
                  "range": [lo, hi], "traits": {"content": 0.66}, "mean_confidence": float(conf.mean()),
                  "observed_agreement": float(agree.mean()), "ece": ece(conf, agree)}
        for k, v in (("prompt", [p] * 80), ("human", h), ("pred", y), ("confidence", conf), ("agree", agree)):
            arrays[k].extend(list(v))
    return {"model": "asap", "model_version": "test+0", "data": "synthetic", "n": 240, "mean_qwk": 0.7167,
            "mean_trait_qwk": 0.66, "per_prompt": per, "arrays": arrays,
            "stress": {"kinds": {"shuffled words": {"n": 10, "caught": 0.9}}, "catch_rate": 0.93, "real_flag_rate": 0.03},
            "lopo": {"per_prompt": {"1": 0.61}, "mean_qwk": 0.61}}


def test_report_has_tables_plots_and_verdicts(tmp_path):
    out = render_html(fake_report(), tmp_path / "r.html")
    doc = out.read_text()
    assert doc.count("data:image/png;base64,") == 3  # distributions, confusion matrices, calibration
    assert "below the target of 0.8" in doc and "not every prompt" in doc  # 0.7167 mean, 0.65 lowest: honest verdicts
    for p in ("1", "3", "8"):
        assert re.search(rf"<td>{p}</td><td>", doc)
    assert "shuffled words" in doc and "held-out prompt" in doc and "content" in doc


def test_verdict_flips_with_the_figures(tmp_path):
    rep = fake_report()
    rep["mean_qwk"] = 0.81
    for v in rep["per_prompt"].values():
        v["qwk"] = 0.75
    doc = render_html(rep, tmp_path / "r.html").read_text()
    assert "meets the target of 0.8" in doc and "every prompt at or above 0.7</span>" in doc and "not every" not in doc


def test_ece():
    conf = np.array([0.9] * 10 + [0.5] * 10)
    agree = np.array([1] * 9 + [0] + [1] * 5 + [0] * 5)
    assert abs(ece(conf, agree)) < 1e-9
    assert abs(ece(np.array([1.0, 1.0]), np.array([0, 0])) - 1.0) < 1e-9
