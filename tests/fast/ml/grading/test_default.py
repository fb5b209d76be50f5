"""The default grader with the real MiniLM encoder and the shipped head (no mocks)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.graders import grade, service_for
from tests.paths import ASAP_DATA
from tests.paths import ROOT as REPO
from workers.ml.grading.default import DefaultGrader, confidence, map_to_scale
from workers.ml.grading.interface import RESULT_KEYS
from workers.ml.stats import agreement, qwk

GOOD = ("Many people think that school uniforms limit how students express themselves, but I believe uniforms "
        "help schools more than they hurt. First, uniforms save families money because parents do not have to buy "
        "the newest fashions every season. Second, they reduce bullying about clothes, which distracts students "
        "from learning.\n\nSome students say they cannot show who they are. However, students can still express "
        "themselves through their ideas, their art and the clubs they join. In conclusion, our school should keep "
        "uniforms because they save money and help everyone focus on learning.")
RUBRIC = {"name": "Argument", "prompt": "Write a letter to your principal arguing for or against school uniforms.",
          "scale": {"min": 1, "max": 6, "step": 1},
          "traits": [{"name": "organization", "scale": {"min": 1, "max": 6, "step": 1}},
                     {"name": "Voice and tone"}]}


@pytest.fixture(scope="module")
def grader():
    g = DefaultGrader.load()
    service_for(g).warmup("default")
    return g


def test_map_to_scale_steps_and_ranges():
    assert map_to_scale(0.0, {"min": 1, "max": 6, "step": 1}) == 1
    assert map_to_scale(1.0, {"min": 1, "max": 6, "step": 1}) == 6
    assert map_to_scale(1.7, {"min": 1, "max": 6, "step": 1}) == 6  # clipped
    assert map_to_scale(0.5, {"min": 1, "max": 5, "step": 0.5}) == 3.0
    assert map_to_scale(0.55, {"min": 1, "max": 5, "step": 0.5}) == 3.0
    assert map_to_scale(0.6, {"min": 1, "max": 5, "step": 0.5}) == 3.5
    assert map_to_scale(0.333, {"min": 0, "max": 60, "step": 1}) == 20
    assert map_to_scale(0.41, {"min": 0, "max": 60, "step": 1}) == 25  # 24.6 -> 25
    assert map_to_scale(-0.2, {"min": 0, "max": 60, "step": 1}) == 0
    assert map_to_scale(0.5, {"min": 0, "max": 60, "step": 5}) == 30
    assert map_to_scale(0.99, {"min": 0, "max": 10, "step": 4}) == 8  # 4 does not divide 10: stay <= max
    assert map_to_scale(0.5, {"min": 0, "max": 3, "step": 0.5}) == 1.5


def test_confidence_is_a_probability_and_falls_with_uncertainty():
    s = {"min": 1, "max": 6, "step": 1}
    assert 0 <= confidence(0.5, 0.05, s) <= 1
    assert confidence(0.5, 0.05, s) > confidence(0.5, 0.3, s)


def test_grade_returns_one_complete_result_per_text_on_each_scale(grader):
    half = {**RUBRIC, "scale": {"min": 1, "max": 5, "step": 0.5}, "traits": []}
    wide = {**RUBRIC, "scale": {"min": 0, "max": 60, "step": 1}, "traits": []}
    out = grade(grader, [GOOD, GOOD, GOOD], [RUBRIC, half, wide])
    assert len(out) == 3
    for res, rb in zip(out, [RUBRIC, half, wide]):
        assert set(res) == set(RESULT_KEYS)
        assert isinstance(res["needs_review"], bool) and isinstance(res["review_reasons"], list)
        assert 1 <= len(res["feedback"]) <= 2, res["feedback"]
        for f in res["feedback"]:
            assert set(f) == {"trait", "comment", "evidence"} and f["evidence"] in GOOD, f
        sc = rb["scale"]
        k = (res["score"] - sc["min"]) / sc["step"]
        assert sc["min"] <= res["score"] <= sc["max"] and abs(k - round(k)) < 1e-9
        assert 0 <= res["confidence"] <= 1
    assert set(out[0]["traits"]) == {"organization", "Voice and tone"}
    assert all(1 <= v <= 6 for v in out[0]["traits"].values())
    assert out[0]["model_version"].startswith("default-")


def test_review_flags(grader):
    texts = ["", "   ", "Uniforms are good.", "xq zzkv bbrt plmn qwrtp " * 20, GOOD,
             (GOOD.split("\n\n")[0] + "\n\n") * 3, "money " * 80]
    out = grade(grader, texts, [RUBRIC] * len(texts))
    assert out[0]["needs_review"] and out[0]["review_reasons"][0].startswith("empty")
    assert out[1]["review_reasons"][0].startswith("empty")
    assert any(r.startswith("too short") for r in out[2]["review_reasons"])
    assert any(r.startswith("nonsense") for r in out[3]["review_reasons"])
    assert not any(r.startswith(("empty", "too short", "nonsense", "repeated")) for r in out[4]["review_reasons"])
    assert any(r.startswith("repeated") for r in out[5]["review_reasons"])
    assert any(r.startswith("nonsense") for r in out[6]["review_reasons"])
    assert out[0]["score"] is None and out[0]["confidence"] == 0.0  # meaningless: no score
    for i in (1, 2, 3, 6):
        assert out[i]["score"] is None and set(out[i]["traits"].values()) == {None}, out[i]
    assert out[4]["score"] is not None and out[5]["score"] is not None  # repeated text is scored, flagged
    assert not out[4]["needs_review"] or out[4]["review_reasons"]


def test_trait_names_map_to_trained_traits(grader):
    col = grader.trait_column
    names = grader.trait_names
    assert names[col("organization")] == "organization"
    assert names[col("Organisation")] == "organization"
    assert names[col("Structure")] == "organization"
    assert names[col("grammar")] == "conventions"
    assert names[col("Word Choice")] == "word_choice"
    assert names[col("Voice and tone")] == "voice"
    assert names[col("ideas")] == "ideas"  # a trained name wins over any synonym
    assert col("creativity") is None and col("") is None  # -> holistic
    rb = {"name": "t", "scale": {"min": 0, "max": 3, "step": 0.5},
          "traits": [{"name": "Grammar", "scale": {"min": 1, "max": 4, "step": 1}}, {"name": "creativity"}]}
    res = grade(grader, [GOOD], [rb])[0]
    assert set(res["traits"]) == {"Grammar", "creativity"}
    assert res["traits"]["Grammar"] in {1, 2, 3, 4}
    assert res["traits"]["creativity"] in {0, 0.5, 1, 1.5, 2, 2.5, 3}

def test_off_topic_is_flagged(grader):
    game = ("My favourite video game is a racing game where you build your own cars. You unlock new engines by "
            "winning races and then you paint the cars any colour you like. Last weekend I beat the hardest track "
            "with my cousin and we played until midnight. The graphics are amazing and the music is loud. I want "
            "the next version to have more tracks in the mountains and a better multiplayer mode with friends.")
    out = grade(grader, [game, GOOD], [RUBRIC, RUBRIC])
    assert any(r.startswith("off-topic") for r in out[0]["review_reasons"])
    assert not any(r.startswith("off-topic") for r in out[1]["review_reasons"])


def test_feedback_is_grounded_in_counts(grader):
    one_block = " ".join(["Uniforms help because they save money and time every morning for busy families."] * 15)
    out = grade(grader, [one_block], [RUBRIC])[0]
    comments = " ".join(f["comment"] for f in out["feedback"])
    assert "single paragraph" in comments and str(len(one_block.split())) in comments
    assert {f["trait"] for f in out["feedback"]} >= {"organization"}


def test_embed_restores_order_with_mixed_lengths(grader):
    enc = grader.encoder
    texts = ["short one", GOOD, "", "a medium length sentence about uniforms and money", GOOD[:200],
             "Cats sleep most of the day."]
    old = enc.batch_size
    enc.batch_size = 2  # several length-sorted batches
    try:
        together = enc.embed(texts)
    finally:
        enc.batch_size = old
    alone = np.stack([enc.embed([t])[0] for t in texts])
    assert together.shape == (len(texts), enc.dim) and together.dtype == np.float32
    cos = together @ alone.T
    assert (cos.argmax(1) == np.arange(len(texts))).all()
    assert np.diag(cos).min() > 0.995
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-3)
    assert enc.embed([]).shape == (0, enc.dim)


def test_embed_every_layer_is_one_pass_whose_last_block_is_the_plain_embedding(grader):
    """What the ASAP graders read (Encoder.embed(layers=True)): each hidden state pooled and normalised."""
    enc = grader.encoder
    texts = [GOOD, "short one", "", GOOD[:300]]
    plain = enc.embed(texts)
    layers = enc.embed(texts, layers=True)
    assert layers.shape == (len(texts), enc.n_states * enc.dim) and layers.dtype == np.float32
    blocks = layers.reshape(len(texts), enc.n_states, enc.dim)
    assert np.allclose(np.linalg.norm(blocks, axis=2), 1.0, atol=1e-3)
    assert np.allclose(blocks[:, -1], plain, atol=1e-5)
    # the states differ from one another (not one vector repeated): the embedding layer vs the last layer
    assert (blocks[:, 0] * blocks[:, -1]).sum(1).max() < 0.95
    assert enc.embed([], layers=True).shape == (0, enc.n_states * enc.dim)


def test_low_confidence_flags_the_essays_whose_error_sd_passes_the_heads_cut(grader):
    """The demo class (app/demo, our own writing): 'low confidence' exactly where the normalised error sd
    exceeds the 98th-percentile cut stored with the head, not wherever P(exact) is small on a 1-6 scale."""
    import json

    from workers.ml.training.default_head import low_confidence_sd

    klass = json.loads((REPO / "app" / "demo" / "class_8b.json").read_text())
    texts = [e["text"] for e in klass["essays"]]
    rubric = {"name": "r", "scale": {"min": 1, "max": 6, "step": 1}, "always_score": True}
    emb = grader.encoder.embed(texts)
    X = grader.inputs(texts, emb)
    sd = np.sqrt(grader.error_sd(texts, emb, None, X) ** 2 + (X @ grader.W_hol.T).std(1) ** 2)

    def flagged_at(cut):
        saved = grader.low_confidence_sd
        grader.low_confidence_sd = cut
        try:
            out = grade(grader, texts, [rubric] * len(texts))
        finally:
            grader.low_confidence_sd = saved
        return np.array([any(r.startswith("low confidence") for r in o["review_reasons"]) for o in out]), out

    cut = grader.meta["low_confidence_sd"]
    flagged, out = flagged_at(cut)
    assert flagged.tolist() == (sd > cut).tolist()
    assert flagged.sum() < len(texts) // 2
    half, _ = flagged_at(float(np.median(sd)))  # the rule itself, at a cut half the class passes
    assert half.tolist() == (sd > np.median(sd)).tolist() and half.sum() == len(texts) // 2
    conf = np.array([o["confidence"] for o in out])
    assert (conf[~flagged] < 0.3).any()  # the old cut (confidence < 0.3) would have flagged these too
    # the training-side function: its quantile 1.0 is the largest sd, 0.0 the smallest
    assert low_confidence_sd(X, grader.W_hol, grader.W_err, 1.0) == pytest.approx(sd.max(), abs=1e-5)
    assert low_confidence_sd(X, grader.W_hol, grader.W_err, 0.0) == pytest.approx(sd.min(), abs=1e-5)


def test_longer_better_essays_score_higher(grader):
    weak = "uniforms r bad. i dont like them. they are ugly"
    always = {**RUBRIC, "always_score": True}  # the 10-word essay is otherwise withheld as too short
    out = grade(grader, [weak, GOOD], [always, always])
    assert out[1]["score"] > out[0]["score"]
    assert grade(grader, [weak], [RUBRIC])[0]["score"] is None


def test_qwk_and_agreement():
    assert qwk([1, 2, 3, 4], [1, 2, 3, 4], 1, 4) == pytest.approx(1.0)
    # the same number as scikit-learn's quadratic-weighted Cohen kappa
    from sklearn.metrics import cohen_kappa_score
    a, b = [0, 1, 2, 3, 3, 2, 1, 0, 2], [0, 2, 2, 3, 1, 2, 0, 0, 3]
    assert qwk(a, b, 0, 3) == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))
    assert qwk([1, 2, 3, 4], [4, 3, 2, 1], 1, 4) < 0
    a = agreement([1, 2, 3, 4], [1, 2, 4, 4], 1, 4)
    assert a["exact_agreement"] == 0.75 and a["adjacent_agreement"] == 1.0 and a["n"] == 4


def test_eduq_grader_eval_writes_the_contract_report(tmp_path):
    """`eduq grader eval` on a few real dev lines (read from ../shared at test time)."""
    import json

    from click.testing import CliRunner

    from app.cli import main

    data = ASAP_DATA / "dev.jsonl"
    assert data.exists(), f"the shared ASAP data is missing at {data}"
    out = tmp_path / "report.json"
    r = CliRunner().invoke(main, ["grader", "eval", "--model", "asap", "--data", str(data), "--out", str(out),
                                  "--limit", "40", "--stress-per-prompt", "3"])
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    assert set(rep) >= {"mean_qwk", "prompts", "per_prompt", "stress"} and rep["n"] == 40
    assert all({"qwk", "n"} <= set(v) for v in rep["prompts"].values())
    for v in rep["per_prompt"].values():
        assert {"exact", "adjacent", "smd", "confusion", "trait_qwk", "ece"} <= set(v)
        assert sum(map(sum, v["confusion"])) == v["n"]
    assert rep["stress"]["catch_rate"] > 0.5, rep["stress"]  # the flags catch most altered essays
    html = out.with_suffix(".html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "Validity report" in html
    # the default grader is measured the same way
    r = CliRunner().invoke(main, ["grader", "eval", "--model", "default", "--data", str(data), "--out",
                                  str(tmp_path / "d.json"), "--limit", "20", "--no-stress"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "d.json").read_text())["per_prompt"]


def test_score_does_not_depend_on_the_other_essays_in_the_job(grader):
    """No transductive tricks: one essay graded alone gets what it gets in a class."""
    weak = "uniforms r bad. i dont like them. they are ugly"
    other = ("School uniforms are a topic many students argue about. Some think they are unfair and others "
             "think they help everyone feel equal in class.")
    alone = grade(grader, [GOOD], [RUBRIC])[0]
    together = grade(grader, [weak, GOOD, other, weak * 3], [RUBRIC] * 4)[1]
    assert alone["score"] == together["score"] and alone["traits"] == together["traits"]
    assert abs(alone["confidence"] - together["confidence"]) < 0.02


def test_spread_law_is_bounded_and_widens_coarse_scales(grader):
    def k(lo, hi, step=1):
        return grader.spread_factor(grader.hol_law, {"min": lo, "max": hi, "step": step})

    assert grader.feature_set == "rater-v1" and len(grader.meta["feature_names"]) == 38
    assert 0.5 <= k(0, 60) < k(0, 30) < k(1, 6) < k(0, 3) <= 2.0
    assert k(0, 3) == k(0, 1, 0.5) == k(0, 2)  # fewer than 3 points: the 3-point factor
    assert 0.5 <= k(0, 1e6) <= 2.0 and 0.5 <= k(0, 1, 1e-4) <= 2.0
    for law in list(grader.trait_law):
        assert 0.5 <= grader.spread_factor(law, {"min": 1, "max": 4, "step": 1}) <= 2.0
