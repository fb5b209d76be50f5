"""Calibration by example (workers/ml/grading/calibration.py, calibrated.py) and the suggestions
(suggest.py): the math on synthetic numbers, then the real grader on classes written for the tests
(tests/fixtures/classes/), scored here by a "teacher" who is two points harsher than the default grader."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workers.ml.grading.calibration import Calibration, Recipe, scale_agreement, tolerance_steps
from workers.ml.grading.suggest import NEAR_DUPLICATE, suggest, text_vectors

pytestmark = pytest.mark.timeout(900)
CLASSES_DIR = Path(__file__).resolve().parents[3] / "fixtures" / "classes"
RECIPE = Recipe.load()


def _synthetic(n=200, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, 16))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    p = rng.uniform(0.2, 0.8, n)
    return p, Z, rng


def test_one_or_two_examples_shift_the_level_only():
    p, Z, _ = _synthetic()
    for k in (1, 2):
        y = p[:k] - 0.2  # the teacher is harsher by 0.2 of the scale
        fit = Calibration.fit(RECIPE, p[:k], Z[:k], y)
        mean, _ = fit.predict(p, Z)
        shift = mean - p
        assert np.allclose(shift, shift[0]), "a level shift moves every essay alike"
        assert -0.2 < shift[0] < -0.05, shift[0]
        assert not fit.linked and fit.emb_sd == 0


def test_many_examples_learn_level_and_spread():
    p, Z, rng = _synthetic(400)
    truth = 0.5 + 1.6 * (p - 0.5) - 0.1 + rng.normal(0, 0.03, len(p))  # wider and lower than the base
    e = rng.choice(len(p), 50, replace=False)
    fit = Calibration.fit(RECIPE, p[e], Z[e], truth[e])
    mean, sd = fit.predict(p, Z)
    assert abs((mean - truth).mean()) < 0.03
    assert np.std(mean) > 1.3 * np.std(p)
    assert np.corrcoef(mean, truth)[0, 1] > 0.95
    assert (sd > 0).all()


def test_a_score_does_not_depend_on_the_other_essays():
    p, Z, rng = _synthetic()
    fit = Calibration.fit(RECIPE, p[:10], Z[:10], p[:10] + rng.normal(0, 0.1, 10))
    together, _ = fit.predict(p[10:], Z[10:])
    alone = np.array([fit.predict(p[i:i + 1], Z[i:i + 1])[0][0] for i in range(10, len(p))])
    assert np.allclose(together, alone)


def test_inconsistent_examples_stay_on_the_scale():
    p, Z, _ = _synthetic()
    y = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])  # the same kind of essay scored at both ends
    fit = Calibration.fit(RECIPE, p[:6], Z[:6], y)
    given, conf = scale_agreement(fit.predict(p, Z)[0], fit.predict(p, Z)[1], {"min": 1, "max": 6, "step": 1})
    assert set(given) <= {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}
    assert ((conf >= 0) & (conf <= 1)).all()
    assert 0.5 <= fit.ratio <= 2.0


def test_scale_agreement_and_tolerance():
    assert tolerance_steps({"min": 1, "max": 6, "step": 1}) == 0
    assert tolerance_steps({"min": 0, "max": 60, "step": 1}) == 6
    given, conf = scale_agreement(np.array([0.0, 0.5, 1.0]), np.array([0.01, 0.01, 0.5]), {"min": 1, "max": 5, "step": 0.5})
    assert given.tolist() == [1.0, 3.0, 5.0]
    assert conf[0] > 0.99 and conf[1] > 0.99  # sure, and the scale's end is open below
    assert conf[2] < 0.8


def test_suggestions_span_the_range_and_skip_duplicates_scored_and_withheld():
    texts = [f"Essay number {i} talks about topic {i % 7} with words {' '.join(['w%d' % (i * 3 + j) for j in range(12)])}."
             for i in range(40)]
    texts[5] = texts[4]  # a near-duplicate pair
    scores = [1 + (i % 6) for i in range(40)]
    scores[7] = None  # withheld
    conf = [0.9] * 40
    conf[11] = 0.1
    out = suggest(scores, conf, texts, 8, exclude=[0, 1])
    idx = [s.index for s in out]
    assert len(idx) == 8 and len(set(idx)) == 8
    assert not {0, 1, 7} & set(idx)
    assert not {4, 5} <= set(idx)
    chosen_scores = sorted(scores[i] for i in idx)
    assert chosen_scores[0] == 1 and chosen_scores[-1] == 6
    V = text_vectors([texts[i] for i in idx])
    sims = (V @ V.T).toarray() - np.eye(len(idx))
    assert sims.max() < NEAR_DUPLICATE
    assert all(s.why.startswith("predicted ") for s in out)
    assert suggest(scores, conf, texts, 100)  # more than there are: all it can
    assert suggest([None] * 3, [None] * 3, ["a", "b", "c"], 2) == []


@pytest.fixture(scope="module")
def graders():
    from workers.ml.grading.asap import AsapGrader
    from workers.ml.grading.default import DefaultGrader

    d = DefaultGrader.load()
    return d, AsapGrader.load(encoder=d.encoder)


def test_calibrated_grader_follows_a_harsher_teacher(graders):
    from workers.ml.grading.calibrated import CalibratedGrader
    from workers.ml.grading.interface import GradeRequest
    from workers.ml.grading.service import GradingService, calibrated_id

    default, asap = graders
    classes = [json.loads(p.read_text()) for p in sorted(CLASSES_DIR.glob("*.json"))]
    rubric = classes[0]["rubric"]
    pool = [e["text"] for c in classes for e in c["essays"] if e["kind"] not in ("off_topic", "six_words")]
    base = default.score([GradeRequest(t, rubric) for t in pool])
    examples = [{"text": t, "score": max(1.0, s - 2), "traits": {"conventions": max(1.0, s - 2)}}
                for t, s in zip(pool[:12], base.scores[:12])]
    g = CalibratedGrader(default, asap, RECIPE, "cal_test", rubric, examples)
    assert g.version.endswith(":cal_test(k=12)") and RECIPE.version in g.version
    rest = [GradeRequest(t, rubric, "default@cal_test") for t in pool[12:]]
    ms = g.score(rest)
    before = np.array(base.scores[12:])
    after = np.array(ms.scores)
    assert after.mean() < before.mean() - 0.8, (before, after)
    assert np.array([r["conventions"] for r in ms.traits]).mean() < np.array(
        [r["conventions"] for r in base.traits[12:]]).mean() - 0.5
    assert all(0 <= c <= 1 for c in ms.confidence)
    alone = g.score(rest[:1])
    assert alone.scores[0] == ms.scores[0] and alone.confidence[0] == ms.confidence[0]
    # through the service and the registry, by its model id
    svc = GradingService.over(default.encoder, {"default": default})
    svc.registry.calibrations(lambda cal: g if cal == "cal_test" else (_ for _ in ()).throw(LookupError("gone")))
    out = svc.grade([GradeRequest(t, rubric, calibrated_id("default", "cal_test")) for t in pool[12:15]]
                    + [GradeRequest(pool[0], rubric, calibrated_id("default", "cal_gone"))])
    assert [r["score"] for r in out[:3]] == ms.scores[:3]
    assert out[3].final and "cal_gone" in out[3].error
