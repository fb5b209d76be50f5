"""The degradation suite (workers/ml/evaluation/degradation.py) on real dev essays, read at run time:
the default grader, through the grading service, on real essays made worse in one known way.

With `always_score` on the rubric, so the model's own scores are compared (a withheld score could
not be "raised"); the second test checks what a teacher sees without it."""
from __future__ import annotations

import pytest

from tests.graders import service_for
from tests.paths import ASAP_DATA
from workers.ml.evaluation import degradation as D
from workers.ml.grading.default import DefaultGrader

PER_PROMPT = 5  # 40 essays, each in five versions


@pytest.fixture(scope="module")
def result():
    dev = ASAP_DATA / "dev.jsonl"
    assert dev.exists(), f"the shared ASAP data is missing: {dev}"
    grader = DefaultGrader.load()
    essays = D.sample(dev, PER_PROMPT)
    assert len(essays) == 8 * PER_PROMPT
    return D.run(service_for(grader), essays)


def _table(d: D.Degradation) -> str:
    return "\n".join(f"{k}: {v}" for k, v in d.summary().items())


@pytest.mark.parametrize("kind", D.KINDS)
def test_no_damage_raises_the_holistic_score(result, kind):
    raised = [(i, c) for i, c in enumerate(result.change(kind)) if c > 0]
    assert not raised, f"{kind} raised the holistic score of essays {raised}\n{_table(result)}"


@pytest.mark.parametrize("kind", ("no_punct", "no_caps"))
def test_mechanics_damage_lowers_conventions_more_than_ideas(result, kind):
    """Mechanics only: the words and their order are the student's own. (A shuffled essay has lost its
    ideas' order too: it is word salad, floored to the minimum under always_score, both traits alike.)"""
    ideas, conv = result.change(kind, D.IDEAS), result.change(kind, D.CONVENTIONS)
    n = len(ideas)
    assert sum(conv) / n < sum(ideas) / n, f"{kind}: conventions fell less than ideas on average\n{_table(result)}"
    worse = [i for i, (a, c) in enumerate(zip(ideas, conv)) if a < c]
    assert not worse, f"{kind}: ideas fell more than conventions on essays {worse}\n{_table(result)}"
    assert sum(c < 0 for c in conv) >= n // 2, f"{kind}: conventions fell on too few essays\n{_table(result)}"


def test_removing_punctuation_moves_ideas_by_at_most_one_point(result):
    moved = [(i, c) for i, c in enumerate(result.change("no_punct", D.IDEAS)) if abs(c) > 1]
    assert not moved, f"no_punct moved {D.IDEAS} by more than a point: {moved}\n{_table(result)}"


def test_cutting_to_a_fifth_lowers_the_score_of_most_essays(result):
    change = result.change("fifth")
    assert sum(c < 0 for c in change) >= 0.9 * len(change), _table(result)


def test_without_always_score_damaged_essays_are_withheld_or_not_raised():
    """What a teacher sees: a shuffled or cut essay is flagged; a flag that makes the score meaningless
    gives null, any other score is at most the original's."""
    grader = DefaultGrader.load()
    essays = D.sample(ASAP_DATA / "dev.jsonl", 2)
    rubric = {k: v for k, v in D.RUBRIC.items() if k != "always_score"}
    texts = [e["essay"] for e in essays]
    import random

    rng = random.Random(D.SEED)
    shuffled = [D.damage(t, "shuffled", rng) for t in texts]
    svc = service_for(grader)
    orig = svc.grade_with("default", texts, [rubric] * len(texts))
    dam = svc.grade_with("default", shuffled, [rubric] * len(texts))
    withheld = 0
    for o, d in zip(orig, dam):
        assert d["needs_review"], d
        if d["score"] is None:
            withheld += 1
            assert all(v is None for v in d["traits"].values()), d
            assert d["review_reasons"][0].split(":")[0] in {"word salad", "nonsense", "off-topic", "too short"}, d
        else:
            assert o["score"] is not None and d["score"] <= o["score"], (o, d)
    assert withheld >= len(texts) // 2, f"only {withheld} of {len(texts)} shuffled essays were withheld"
