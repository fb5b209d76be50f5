"""The default grader with the real MiniLM encoder and the shipped head (no mocks)."""
from __future__ import annotations

import numpy as np
import pytest

from workers.grader.default import DefaultGrader, confidence, map_to_scale
from workers.grader.metrics import agreement, qwk

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
    g.warmup()
    return g


def test_map_to_scale_steps_and_ranges():
    assert map_to_scale(0.0, {"min": 1, "max": 6, "step": 1}) == 1
    assert map_to_scale(1.0, {"min": 1, "max": 6, "step": 1}) == 6
    assert map_to_scale(1.7, {"min": 1, "max": 6, "step": 1}) == 6  # clipped
    assert map_to_scale(0.5, {"min": 1, "max": 5, "step": 0.5}) == 3.0
    assert map_to_scale(0.55, {"min": 1, "max": 5, "step": 0.5}) == 3.0
    assert map_to_scale(0.6, {"min": 1, "max": 5, "step": 0.5}) == 3.5
    assert map_to_scale(0.333, {"min": 0, "max": 60, "step": 1}) == 20
    v = map_to_scale(0.41, {"min": 0, "max": 60, "step": 1})
    assert v == int(v) and 0 <= v <= 60


def test_confidence_is_a_probability_and_falls_with_uncertainty():
    s = {"min": 1, "max": 6, "step": 1}
    assert 0 <= confidence(0.5, 0.05, s) <= 1
    assert confidence(0.5, 0.05, s) > confidence(0.5, 0.3, s)


def test_grade_returns_one_complete_result_per_text_on_each_scale(grader):
    half = {**RUBRIC, "scale": {"min": 1, "max": 5, "step": 0.5}, "traits": []}
    wide = {**RUBRIC, "scale": {"min": 0, "max": 60, "step": 1}, "traits": []}
    out = grader.grade([GOOD, GOOD, GOOD], [RUBRIC, half, wide])
    assert len(out) == 3
    for res, rb in zip(out, [RUBRIC, half, wide]):
        assert set(res) >= {"score", "traits", "confidence", "needs_review", "review_reasons", "feedback", "model_version"}
        sc = rb["scale"]
        k = (res["score"] - sc["min"]) / sc["step"]
        assert sc["min"] <= res["score"] <= sc["max"] and abs(k - round(k)) < 1e-9
        assert 0 <= res["confidence"] <= 1
    assert set(out[0]["traits"]) == {"organization", "Voice and tone"}
    assert all(1 <= v <= 6 for v in out[0]["traits"].values())
    assert out[0]["model_version"].startswith("default-")


def test_review_flags(grader):
    texts = ["", "   ", "Uniforms are good.", "xq zzkv bbrt plmn qwrtp " * 20, GOOD,
             (GOOD.split("\n\n")[0] + "\n\n") * 3]
    out = grader.grade(texts, [RUBRIC] * len(texts))
    assert out[0]["needs_review"] and out[0]["review_reasons"][0].startswith("empty")
    assert out[1]["review_reasons"][0].startswith("empty")
    assert any(r.startswith("too short") for r in out[2]["review_reasons"])
    assert any(r.startswith("nonsense") for r in out[3]["review_reasons"])
    assert not any(r.startswith(("empty", "too short", "nonsense", "repeated")) for r in out[4]["review_reasons"])
    assert any(r.startswith("repeated") for r in out[5]["review_reasons"])


def test_off_topic_is_flagged(grader):
    game = ("My favourite video game is a racing game where you build your own cars. You unlock new engines by "
            "winning races and then you paint the cars any colour you like. Last weekend I beat the hardest track "
            "with my cousin and we played until midnight. The graphics are amazing and the music is loud. I want "
            "the next version to have more tracks in the mountains and a better multiplayer mode with friends.")
    out = grader.grade([game, GOOD], [RUBRIC, RUBRIC])
    assert any(r.startswith("off-topic") for r in out[0]["review_reasons"])
    assert not any(r.startswith("off-topic") for r in out[1]["review_reasons"])


def test_feedback_is_grounded_in_counts(grader):
    one_block = " ".join(["Uniforms help because they save money and time every morning for busy families."] * 15)
    out = grader.grade([one_block], [RUBRIC])[0]
    comments = " ".join(f["comment"] for f in out["feedback"])
    assert "single paragraph" in comments and str(len(one_block.split())) in comments
    assert {f["trait"] for f in out["feedback"]} >= {"organization"}


def test_embed_restores_order_with_mixed_lengths(grader):
    texts = ["short one", GOOD, "a medium length sentence about uniforms and money", GOOD[:200]]
    together = grader.encoder.embed(texts)
    alone = np.stack([grader.encoder.embed([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=2e-2)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-3)


def test_longer_better_essays_score_higher(grader):
    weak = "uniforms r bad. i dont like them. they are ugly"
    out = grader.grade([weak, GOOD], [RUBRIC, RUBRIC])
    assert out[1]["score"] > out[0]["score"]


def test_qwk_and_agreement():
    assert qwk([1, 2, 3, 4], [1, 2, 3, 4], 1, 4) == pytest.approx(1.0)
    assert qwk([1, 2, 3, 4], [4, 3, 2, 1], 1, 4) < 0
    a = agreement([1, 2, 3, 4], [1, 2, 4, 4], 1, 4)
    assert a["exact_agreement"] == 0.75 and a["adjacent_agreement"] == 1.0 and a["n"] == 4
