"""Fine-tuning without services: scales and metrics, the split, the LRU cache, a tiny head/LoRA/full run
and a 2-process DDP run."""
from __future__ import annotations

import numpy as np
import pytest

from tests.finetune_data import RUBRIC, fake_examples


def test_scale_half_points_and_wide_ranges():
    from workers.ml.scales import Scale

    s = Scale(1, 5, 0.5)
    assert s.n == 9 and s.contains(3.5) and not s.contains(3.25) and not s.contains(5.5)
    assert list(s.snap([0.2, 3.3, 3.26, 9])) == [1.0, 3.5, 3.5, 5.0]
    wide = Scale(0, 60)
    assert wide.n == 61 and wide.snap(47.4) == 47


def test_metrics_match_definitions():
    from sklearn.metrics import cohen_kappa_score

    from workers.ml.scales import Scale
    from workers.ml.stats import qwk_points as qwk
    from workers.ml.stats import scale_agreement as agreement
    from workers.ml.stats import smd

    rng = np.random.default_rng(0)
    a = rng.integers(0, 7, 300)
    b = np.clip(a + rng.integers(-1, 2, 300), 0, 6)
    assert abs(qwk(a, b, 7) - cohen_kappa_score(a, b, weights="quadratic")) < 1e-9
    assert smd([1, 2, 3], [1, 2, 3]) == 0.0
    m = agreement(a.astype(float), b.astype(float), Scale(0, 6),
                  [{"gender": "f" if i % 2 else "m"} for i in range(300)])
    assert 0 <= m["exact_agreement"] <= m["adjacent_agreement"] == 1.0
    assert set(m["subgroups"]["gender"]) == {"f", "m"}
    biased = b + (np.arange(300) % 2) * 1.0
    m2 = agreement(a.astype(float), biased, Scale(0, 8), [{"gender": "f" if i % 2 else "m"} for i in range(300)])
    assert m2["subgroups"]["gender"]["f"]["flagged"] and "gender=f" in m2["flagged_subgroups"]


def test_split_is_stratified_and_reproducible():
    from workers.ml.training.finetune import split

    idx = np.array([0] * 50 + [1] * 30 + [2] * 20)
    t1, v1 = split(idx, 0.2, 7)
    t2, v2 = split(idx, 0.2, 7)
    assert (v1 == v2).all() and len(v1) == 20 and sorted(np.concatenate([t1, v1])) == list(range(100))
    assert sorted(np.bincount(idx[v1]).tolist()) == [4, 6, 10]


def test_lru_cache_is_bounded(monkeypatch):
    from workers.runtime.finetuned_cache import GraderCache

    loads = []
    monkeypatch.setattr(GraderCache, "_load", lambda self, mid: loads.append(mid) or object())
    c = GraderCache(size=2)
    for mid in ["a", "b", "a", "c", "a", "b"]:
        c.get(mid)
    assert loads == ["a", "b", "c", "b"] and "a" in c and "c" not in c


def _prep(method, n=24):
    from workers.ml.training.finetune import prepare
    from workers.ml.training.trainer import TrainConfig

    cfg = TrainConfig.make(method, {"epochs": 1, "max_steps": 2, "batch_size": 4, "max_length": 64}, seed=1)
    prep, info = prepare(fake_examples(n), RUBRIC, cfg, 0.25)
    return prep, info, cfg


@pytest.mark.parametrize("method", ["lora", "full"])
def test_lora_and_full_take_tiny_steps_and_reload(method, tmp_path):
    from workers.ml.grading.finetuned import FineTunedGrader
    from workers.ml.grading.review import Reviewer
    from workers.ml.grading.service import GradingService
    from workers.ml.training.finetune import evaluate, fit, save

    prep, info, cfg = _prep(method)
    model, hist = fit(prep, cfg, device=__import__("torch").device("cpu"))
    assert hist["steps"] == 2
    m = evaluate(model, prep, cfg, RUBRIC, fake_examples(24))
    assert {"qwk", "exact_agreement", "adjacent_agreement", "smd", "n_validation"} <= set(m), sorted(m)
    out = save(model, cfg, info, RUBRIC, tmp_path / method, {"model_id": "mdl_x"})
    g = FineTunedGrader("mdl_x", out)
    texts = ["A short essay about a river and a garden."] * 2
    always = {**g.rubric, "always_score": True}  # a 9-word essay is otherwise withheld as too short
    res = GradingService.over(None, {"mdl_x": g}, reviewer=Reviewer.load()).grade_with("mdl_x", texts, [always] * 2)
    assert res[0] == res[1] and res[0]["score"] in [x / 2 for x in range(13)] and res[0]["model_version"] == "mdl_x"


def test_ddp_two_cpu_processes_gloo(tmp_path):
    import torch

    from workers.ml.scales import Scale
    from workers.ml.training.ddp import run_ddp
    from workers.ml.training.trainer import Prepared, TrainConfig

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    y = (1 / (1 + np.exp(-x[:, :1]))).astype(np.float32)
    sc = Scale(0, 6)
    prep = Prepared(y, np.ones_like(y), np.arange(45), np.arange(45, 60), sc, sc.snap(sc.denorm(y[45:, 0])), x=x)
    cfg = TrainConfig.make("head", {"epochs": 3, "batch_size": 8}, seed=5)
    seen = []
    model, hist = run_ddp(prep, cfg, tmp_path / "ddp", 2, report=seen.append, should_stop=lambda: False)
    assert hist["world_size"] == 2 and len(hist["history"]) >= 1
    assert seen and seen[-1]["world_size"] == 2
    assert isinstance(model(torch.tensor(x[:2])), torch.Tensor)
