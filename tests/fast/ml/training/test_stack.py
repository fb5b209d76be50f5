"""Fine-tune method `stack` without services: any scale (half points, 0-60, traits on their own scales),
the validation report per trait, the stored version served through the grading service, cancel, and
what `auto` chooses (workers/ml/training/stack.py, methods.py; workers/ml/grading/stacked.py)."""
from __future__ import annotations

import random

import numpy as np
import pytest

from tests.finetune_data import RUBRIC, fake_examples

WIDE = {"name": "Wide rubric", "prompt": "Describe a place you love.", "scale": {"min": 0, "max": 60, "step": 1},
        "traits": [{"name": "style", "scale": {"min": 1, "max": 5, "step": 0.5}},
                   {"name": "voice", "scale": {"min": 0, "max": 3, "step": 1}}]}


def wide_examples(n: int = 70, seed: int = 4) -> list[dict]:
    """0-60 holistic, `style` on 1-5 by half points for every essay, `voice` for only 6 of them."""
    rng = random.Random(seed)
    out = []
    for i, e in enumerate(fake_examples(n, seed)):
        q = e["score"] / 6  # 0..1, what the text's length follows
        tr = {"style": 1 + round(q * 8) / 2}
        if i < 6:
            tr["voice"] = float(min(3, int(q * 4)))
        out.append({"text": e["text"], "score": float(min(60, max(0, round(q * 60) + rng.choice((-2, 0, 2))))),
                    "traits": tr})
    return out


def _train(tmp_path, examples, rubric, method="stack", stop=None, seed=3):
    from workers.ml.training.methods import train

    seen = []
    t = train({"method": method, "validation_fraction": 0.25, "seed": seed}, examples, rubric, tmp_path / "work",
              "mdl_stack", report=lambda d, force=False: seen.append(dict(d)), should_stop=stop)
    return t, seen


@pytest.fixture(scope="module")
def half_point(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("stack"), fake_examples(64), RUBRIC)


def _service(trained, encoder=None):
    from workers.ml.grading.finetuned import load_version
    from workers.ml.grading.review import Reviewer
    from workers.ml.grading.service import GradingService
    from workers.ml.training.finetune import get_encoder

    enc = encoder or get_encoder(512)
    g = load_version("mdl_stack", trained.out_dir, encoder=enc)
    return g, GradingService.over(enc, {"mdl_stack": g}, reviewer=Reviewer.load(encoder=enc))


def test_stack_on_half_points_reports_each_trait_and_serves(half_point):
    from workers.ml.grading.stacked import StackedGrader

    trained, seen = half_point
    m = trained.metrics
    assert trained.method == "stack"
    assert {"qwk", "smd", "ece", "exact_agreement", "adjacent_agreement", "n_train", "n_validation", "cv",
            "subgroups", "train_seconds"} <= set(m), sorted(m)
    assert m["n_train"] + m["n_validation"] == 64
    # the fake essays' length follows their score: the recipe must find it, on validation and in CV
    assert m["qwk"] > 0.6 and m["cv"]["holistic"]["cv_qwk"] > 0.6, m
    assert set(m["traits"]) == {"ideas"} and {"qwk", "smd", "ece", "n"} <= set(m["traits"]["ideas"])
    assert m["trait_qwk"]["ideas"] == m["traits"]["ideas"]["qwk"] > 0.4
    assert 0 <= m["ece"] < 0.5 and "ideas" in m["cv"]["traits"]
    stages = [d.get("stage") for d in seen]
    assert stages.index("embedding") < stages.index("training") < stages.index("evaluating") < stages.index("saving")

    g, service = _service(trained)
    assert isinstance(g, StackedGrader)
    texts = [e["text"] for e in fake_examples(6, seed=99)]
    always = {**g.rubric, "always_score": True}
    res = service.grade_with("mdl_stack", texts, [always] * 6)
    again = service.grade_with("mdl_stack", texts, [always] * 6)
    assert res == again  # deterministic
    for r in res:
        assert r["model_version"] == "mdl_stack" and r["score"] in [x / 2 for x in range(13)]
        assert set(r["traits"]) == {"ideas"} and r["traits"]["ideas"] in (1.0, 2.0, 3.0, 4.0)
        assert 0 <= r["confidence"] <= 1 and isinstance(r["feedback"], list) and r["feedback"]
    # the longest text scores at least as high as the shortest (what the examples teach)
    by_len = sorted(zip(texts, res), key=lambda tr: len(tr[0]))
    assert by_len[-1][1]["score"] >= by_len[0][1]["score"]


def test_stack_on_a_wide_scale_with_a_sparse_trait(tmp_path):
    trained, _ = _train(tmp_path, wide_examples(), WIDE)
    m = trained.metrics
    assert m["qwk"] > 0.6, m
    # `voice` had 6 scored essays: no model of its own, it follows the holistic score (and says so)
    assert m["cv"]["traits_following_holistic"] == ["voice"] and "style" in m["cv"]["traits"]
    g, service = _service(trained)
    texts = [e["text"] for e in wide_examples(5, seed=11)]
    res = service.grade_with("mdl_stack", texts, [{**g.rubric, "always_score": True}] * 5)
    for r in res:
        assert r["score"] == int(r["score"]) and 0 <= r["score"] <= 60
        assert r["traits"]["style"] in [1 + k / 2 for k in range(9)] and r["traits"]["voice"] in (0.0, 1.0, 2.0, 3.0)


def test_stack_stops_when_the_job_is_cancelled(tmp_path):
    from workers.ml.training.trainer import Stopped

    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 3  # past the embedding: inside the stacking

    with pytest.raises(Stopped):
        _train(tmp_path, fake_examples(40), RUBRIC, stop=stop)
    assert calls["n"] > 3


def test_auto_without_cuda_is_stack_and_head_above_the_cap(monkeypatch, tmp_path):
    from workers.ml.training import methods

    monkeypatch.setattr(methods, "cuda_available", lambda: False)
    ran = []
    monkeypatch.setattr(methods, "_train_one", lambda m, *a: ran.append(m) or methods.Trained(m, tmp_path, {"qwk": 0.5}))
    monkeypatch.setenv("EDUQ_STACK_MAX_EXAMPLES", "30")
    t = methods.train({"method": "auto"}, fake_examples(30), RUBRIC, tmp_path, "mdl_a")
    assert t.method == "stack" and t.metrics["auto"]["chosen"] == "stack"
    t = methods.train({"method": "auto"}, fake_examples(31), RUBRIC, tmp_path, "mdl_b")
    assert t.method == "head" and "30" in t.metrics["auto"]["why"]
    assert ran == ["stack", "head"]


def test_auto_on_cuda_keeps_the_best_validation_qwk_within_the_budget(monkeypatch, tmp_path):
    from workers.ml.training import methods
    from workers.ml.training.trainer import Stopped

    monkeypatch.setattr(methods, "cuda_available", lambda: True)
    clock = {"t": 0.0}
    monkeypatch.setattr(methods.time, "monotonic", lambda: clock["t"])
    qwk = {"stack": 0.80, "lora": 0.83, "full": 0.81}
    cost = {"stack": 100.0, "lora": 300.0, "full": 900.0}

    def fake(m, params, examples, rubric, workdir, model_id, report, should_stop, nproc):
        clock["t"] += cost[m]
        if should_stop():
            raise Stopped()
        return methods.Trained(m, workdir, {"qwk": qwk[m]})

    monkeypatch.setattr(methods, "_train_one", fake)
    monkeypatch.setenv("EDUQ_TRAIN_BUDGET_S", "2000")
    t = methods.train({"method": "auto"}, fake_examples(30), RUBRIC, tmp_path, "mdl_c", should_stop=lambda: False)
    assert t.method == "lora" and t.metrics["auto"]["chosen"] == "lora"
    assert set(t.metrics["auto"]["candidates"]) == {"stack", "lora", "full"}
    # a smaller budget: full runs past it and is dropped; stack (the first) always finishes
    monkeypatch.setenv("EDUQ_TRAIN_BUDGET_S", "500")
    clock["t"] = 0.0
    t = methods.train({"method": "auto"}, fake_examples(30), RUBRIC, tmp_path, "mdl_d", should_stop=lambda: False)
    cands = t.metrics["auto"]["candidates"]
    assert t.method == "lora" and "skipped" in cands["full"] and cands["stack"]["qwk"] == 0.80
    monkeypatch.setenv("EDUQ_TRAIN_BUDGET_S", "50")
    clock["t"] = 0.0
    t = methods.train({"method": "auto"}, fake_examples(30), RUBRIC, tmp_path, "mdl_e", should_stop=lambda: False)
    assert t.method == "stack" and "skipped" in t.metrics["auto"]["candidates"]["lora"]
    # a cancel is not a budget stop: it ends the job
    clock["t"] = 0.0
    with pytest.raises(Stopped):
        methods.train({"method": "auto"}, fake_examples(30), RUBRIC, tmp_path, "mdl_f", should_stop=lambda: True)


def test_unknown_method_is_refused(tmp_path):
    from workers.ml.training.methods import train

    with pytest.raises(ValueError, match="unknown fine-tune method"):
        train({"method": "boost"}, fake_examples(20), RUBRIC, tmp_path, "mdl_x")


def test_index_rows_maps_any_scale_to_points():
    from workers.ml.training.stack import index_rows

    rows, rub = index_rows(wide_examples(8), WIDE)
    assert rub == {"score": [0, 60], "traits": {"style": [0, 8], "voice": [0, 3]}}
    assert all(0 <= r["score"] <= 60 and 0 <= r["traits"]["style"] <= 8 for r in rows)
    assert sum("voice" in r["traits"] for r in rows) == 6
    assert np.array_equal([r["traits"]["style"] for r in rows],
                          [int(round((e["traits"]["style"] - 1) / 0.5)) for e in wide_examples(8)])


def test_a_batch_mixing_asap_and_stack_models_encodes_once(half_point):
    """A batch claimed across jobs mixes models: graders that read every hidden state of the shared
    encoder (ASAP graders, stack versions) share one pass (GradingService._shared_pass)."""
    from workers.ml.grading.asap import AsapGrader
    from workers.ml.grading.interface import GradeRequest
    from workers.ml.grading.review import Reviewer
    from workers.ml.grading.service import GradingService
    from workers.ml.training.finetune import get_encoder

    enc = get_encoder(512)
    from workers.ml.grading.finetuned import load_version

    stack = load_version("mdl_stack", half_point[0].out_dir, encoder=enc)
    asap = AsapGrader.load(encoder=enc)
    service = GradingService.over(enc, {"mdl_stack": stack, "asap-": asap}, reviewer=Reviewer.load(encoder=enc))
    calls = []
    real = enc.embed

    def counting(texts, layers=False):
        calls.append((len(texts), layers))
        return real(texts, layers=layers)

    enc.embed = counting
    try:
        texts = [e["text"] for e in fake_examples(4, seed=5)]
        reqs = [GradeRequest(texts[0], {**stack.rubric, "always_score": True}, "mdl_stack"),
                GradeRequest(texts[1], {**asap.rubric("3"), "always_score": True}, "asap-3"),
                GradeRequest(texts[2], {**stack.rubric, "always_score": True}, "mdl_stack"),
                GradeRequest(texts[3], {**asap.rubric("5"), "always_score": True}, "asap-5")]
        out = service.grade(reqs)
    finally:
        del enc.embed
    # one pass over the four essays; besides it only the stack rubric's prompt is embedded (the off-topic check)
    assert calls[0] == (4, True) and calls[1:] in ([], [(1, False)]), calls
    assert [r["model_version"] == "mdl_stack" for r in out] == [True, False, True, False]
    assert out[1]["score"] in (0, 1, 2, 3) and out[3]["score"] in (0, 1, 2, 3, 4)
