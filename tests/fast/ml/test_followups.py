"""Each student's next steps (workers/ml/followups): on classes written for the tests and the demo class,
every quote is the student's own text, every exercise names its trait, nothing of another student's essay
appears, no score is touched, and the checks catch what they are for."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from workers.ml.followups.build import build, writing_grade
from workers.ml.followups.checks import problems

ROOT = Path(__file__).resolve().parents[3]
CLASSES = [json.loads(p.read_text()) for p in sorted((ROOT / "tests" / "fixtures" / "classes").glob("*.json"))]
DEMO = json.loads((ROOT / "app" / "demo" / "class_8b.json").read_text())
SETS = [(c["rubric"], [e["text"] for e in c["essays"]]) for c in [*CLASSES, DEMO]]


def _scores(rubric, i):
    """Trait scores that vary across the class: each trait low for some essays, high for others."""
    sc = rubric["scale"]
    span = sc["max"] - sc["min"]
    return {"score": sc["min"] + (i % 3) * span / 2,
            "traits": {t["name"]: sc["min"] + ((i + k) % 4) * span / 3 for k, t in enumerate(rubric.get("traits") or [])}}


@pytest.mark.parametrize("which", range(len(SETS)))
def test_every_quote_is_hers_and_every_exercise_names_its_trait(which):
    rubric, texts = SETS[which]
    passed = 0
    for i, text in enumerate(texts):
        scores = _scores(rubric, i)
        before = copy.deepcopy(scores)
        fu = build(text, rubric, scores)
        assert scores == before, "no score is invented or changed"
        if len(text.split()) < 20:  # too short to work with: still a next step, never a fake quote
            assert all(x["evidence"] in text for x in fu.get("next_steps") or [])
            continue
        assert len(fu["strengths"]) in (1, 2) and len(fu["next_steps"]) in (1, 2), fu
        assert 2 <= len(fu["exercises"]) <= 3, fu["exercises"]
        assert fu["revision_target"] == fu["next_steps"][0]
        for x in fu["strengths"] + fu["next_steps"]:
            assert x["evidence"] in text
        names = {t["name"] for t in rubric.get("traits") or []}
        for x in fu["exercises"]:
            assert x["trait"] in names and x["source"] in text and x["answer"]
        weakest = min(names, key=lambda t: (scores["traits"][t], [n["name"] for n in rubric["traits"]].index(t)))
        assert fu["next_steps"][0]["trait"] == weakest
        others = [t for t in texts if t != text]
        found = problems(fu, text, rubric, others)
        assert not [p for p in found if "quote" in p or "trait" in p or "another student" in p or "schema" in p], found
        passed += not found
    assert passed >= 0.7 * sum(1 for t in texts if len(t.split()) >= 20), passed


def test_the_checks_catch_what_they_are_for():
    rubric, texts = SETS[-1]
    text = texts[0]
    fu = build(text, rubric, _scores(rubric, 1))
    assert problems(fu, text, rubric) == [] or all("reading level" in p for p in problems(fu, text, rubric))
    bad = copy.deepcopy(fu)
    bad["next_steps"][0]["evidence"] = "a sentence the student never wrote at all"
    assert any("not in the essay" in p for p in problems(bad, text, rubric))
    bad = copy.deepcopy(fu)
    bad["exercises"][0]["instructions"] = "Do something."
    assert any("does not name its trait" in p for p in problems(bad, text, rubric))
    bad = copy.deepcopy(fu)
    bad["exercises"][0]["trait"] = "voice_of_god"
    assert any("not a trait of the rubric" in p for p in problems(bad, text, rubric))
    bad = copy.deepcopy(fu)
    del bad["strengths"]
    assert problems(bad, text, rubric)[0].startswith("not the follow-up schema")
    other = texts[2]
    leak = copy.deepcopy(fu)
    leak["exercises"][0]["answer"] = "For example: " + " ".join(other.split()[10:40])
    leak["strengths"][0]["comment"] += " Compare: " + " ".join(other.split()[10:40])
    assert any("another student" in p for p in problems(leak, text, rubric, [other]))
    hard = copy.deepcopy(fu)
    hard["strengths"][0]["comment"] = ("Notwithstanding considerable organisational sophistication, the argumentative "
                                       "architecture demonstrates insufficiently substantiated epistemological "
                                       "presuppositions regarding institutional volunteerism's multidimensional "
                                       "ramifications. ") * 3
    assert writing_grade(texts[1]) is not None
    assert any("reading level" in p for p in problems(hard, texts[1], rubric))


def test_a_rubric_without_traits_and_an_empty_essay():
    rubric = {"name": "Free writing", "scale": {"min": 0, "max": 10, "step": 1}}
    text = SETS[-1][1][1]
    fu = build(text, rubric, {"score": 3, "traits": {}})
    assert fu["next_steps"] and fu["exercises"]
    assert problems(fu, text, rubric) == [] or all("reading level" in p for p in problems(fu, text, rubric))
    empty = build("", rubric, {"score": None, "traits": {}})
    assert empty["exercises"] == [] and empty["note"]


def test_misspelled_words_become_an_exercise_with_the_corrections():
    rubric = {"name": "r", "scale": {"min": 1, "max": 6}, "traits": [{"name": "conventions"}, {"name": "organization"}]}
    text = ("i think everyone should recieve a freind at school becuase it is importent. we go there every day and we "
            "learn alot. my teacher says that reading is the best thing. i agree with her and i read every night.")
    fu = build(text, rubric, {"score": 2, "traits": {"conventions": 1, "organization": 4}})
    spell = next(x for x in fu["exercises"] if "spelled wrong" in x["instructions"])
    assert spell["trait"] == "conventions" and "receive" in spell["answer"] and "friend" in spell["answer"]
    cap = next(x for x in fu["exercises"] if "capital letters" in x["instructions"])
    assert cap["answer"].startswith("I ") and cap["source"] in text
