"""Classes of essays written for these tests (tests/fixtures/classes/*.json), ranked by the default grader.

Each class answers one prompt on a 1-6 rubric with traits claim_evidence and conventions: eight essays
of known kinds (strong, good, poor_spelling, average, rambling, weak, off_topic, six_words) and the
order a teacher would give them (intended_rank, 1 = best). The default grader, through the grading
service, must put each class roughly in that order (Spearman >= 0.7 between the holistic score and
the intended order), withhold the score of the six-word and the off-topic essay when the rubric does
not ask for every score, and mark the badly spelled essay down on conventions."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from scipy.stats import spearmanr

from tests.graders import grade, service_for
from workers.ml.grading.default import DefaultGrader
from workers.ml.grading.review import tag

pytestmark = pytest.mark.timeout(600)

CLASSES_DIR = Path(__file__).resolve().parents[3] / "fixtures" / "classes"
CLASSES = sorted(p.stem for p in CLASSES_DIR.glob("*.json"))
KINDS = ("strong", "good", "poor_spelling", "average", "rambling", "weak", "off_topic", "six_words")  # best first
MIN_SPEARMAN = 0.7
TRAITS = ("claim_evidence", "conventions")


def load_class(slug: str) -> dict:
    return json.loads((CLASSES_DIR / f"{slug}.json").read_text())


@pytest.fixture(scope="module")
def grader():
    g = DefaultGrader.load()
    service_for(g).warmup("default")
    return g


class Graded(dict):
    def __repr__(self):  # keeps failure reports short: the tables say what was graded
        return f"<graded classes {sorted(self)}>"


@pytest.fixture(scope="module")
def graded(grader):
    """{slug: (class, results with always_score, results with the rubric as given)}, graded once."""
    out = Graded()
    for slug in CLASSES:
        c = load_class(slug)
        texts = [e["text"] for e in c["essays"]]
        always = grade(grader, texts, [{**c["rubric"], "always_score": True}] * len(texts))
        plain = grade(grader, texts, [c["rubric"]] * len(texts))
        out[slug] = (c, always, plain)
    return out


def by_kind(c: dict, results: list[dict]) -> dict[str, dict]:
    return {e["kind"]: r for e, r in zip(c["essays"], results)}


def table(slug: str, c: dict, results: list[dict]) -> str:
    rows = [f"{slug}: {c['rubric']['prompt']}",
            f"  {'id':24s} {'kind':14s} {'rank':>4s} {'score':>5s} {'claim_evidence':>14s} {'conventions':>11s}  reasons"]
    for e, r in sorted(zip(c["essays"], results), key=lambda p: p[0]["intended_rank"]):
        t = r["traits"]
        rows.append(f"  {e['id']:24s} {e['kind']:14s} {e['intended_rank']:4d} {fmt(r['score']):>5s} "
                    f"{fmt(t.get('claim_evidence')):>14s} {fmt(t.get('conventions')):>11s}  "
                    f"{'; '.join(tag(x) for x in r['review_reasons']) or '-'}")
    return "\n".join(rows)


def fmt(v) -> str:
    return "None" if v is None else f"{v:g}"


def test_the_classes_are_what_they_claim_to_be():
    """The fixtures themselves: four or more classes, each with its eight kinds in the intended order."""
    assert len(CLASSES) >= 4, CLASSES
    for slug in CLASSES:
        c = load_class(slug)
        rb = c["rubric"]
        assert rb["prompt"].strip() and rb["scale"] == {"min": 1, "max": 6, "step": 1}
        assert [t["name"] for t in rb["traits"]] == list(TRAITS)
        assert sorted(e["kind"] for e in c["essays"]) == sorted(KINDS), slug
        assert len({e["id"] for e in c["essays"]}) == len(KINDS), slug
        for e in c["essays"]:
            assert e["intended_rank"] == KINDS.index(e["kind"]) + 1, (slug, e["id"])
            n = len(e["text"].split())
            assert n == 6 if e["kind"] == "six_words" else n >= 80, (slug, e["id"], n)


@pytest.mark.parametrize("slug", CLASSES)
def test_default_grader_ranks_the_class_in_the_intended_order(graded, slug):
    c, results, _ = graded[slug]
    print("\n" + table(slug, c, results))
    scores = [r["score"] for r in results]
    assert all(s is not None for s in scores), "always_score: every essay gets the model's score"
    rho = spearmanr(scores, [-e["intended_rank"] for e in c["essays"]])[0]
    print(f"  Spearman(score, intended order) = {rho:.3f}")
    assert not math.isnan(rho) and rho >= MIN_SPEARMAN, f"{slug}: Spearman {rho:.3f} < {MIN_SPEARMAN}"


@pytest.mark.parametrize("slug", CLASSES)
def test_six_word_and_off_topic_essays_get_no_score(graded, slug):
    """The rubric as given (no always_score): the score is withheld, the reason first."""
    c, _, results = graded[slug]
    k = by_kind(c, results)
    for kind, reason in (("six_words", "too short"), ("off_topic", "off-topic")):
        r = k[kind]
        assert r["score"] is None, (slug, kind, r["score"], r["review_reasons"])
        assert r["review_reasons"] and tag(r["review_reasons"][0]) == reason, (slug, kind, r["review_reasons"])


@pytest.mark.parametrize("slug", CLASSES)
def test_on_topic_essays_keep_their_score(graded, slug):
    """The rubric as given: the six on-topic essays of a real length are scored, none withheld."""
    c, _, results = graded[slug]
    for kind, r in by_kind(c, results).items():
        if kind not in ("six_words", "off_topic"):
            assert r["score"] is not None, (slug, kind, r["review_reasons"])


@pytest.mark.parametrize("slug", CLASSES)
def test_poor_spelling_is_marked_down_on_conventions(graded, slug):
    """Good ideas, bad spelling: its conventions below its own claim_evidence, or below the good essay's
    conventions."""
    c, results, _ = graded[slug]
    k = by_kind(c, results)
    ps, good = k["poor_spelling"]["traits"], k["good"]["traits"]
    assert ps["conventions"] < ps["claim_evidence"] or ps["conventions"] < good["conventions"], (slug, ps, good)


@pytest.mark.parametrize("slug", CLASSES)
def test_the_strong_letter_without_punctuation_keeps_its_ideas(grader, graded, slug):
    """The tester's case: the strong letter with its punctuation removed. claim_evidence moves by at most
    a point, conventions falls further than claim_evidence, the holistic score does not rise; and it is
    still scored (an unpunctuated essay is not word salad)."""
    import random

    from workers.ml.evaluation.degradation import damage

    c, results, _ = graded[slug]
    strong = next(i for i, e in enumerate(c["essays"]) if e["kind"] == "strong")
    bare = damage(c["essays"][strong]["text"], "no_punct", random.Random(0))
    assert "." not in bare and "," not in bare
    before = results[strong]
    after = grade(grader, [bare], [{**c["rubric"], "always_score": True}])[0]
    plain = grade(grader, [bare], [c["rubric"]])[0]
    d_ideas = after["traits"]["claim_evidence"] - before["traits"]["claim_evidence"]
    d_conv = after["traits"]["conventions"] - before["traits"]["conventions"]
    assert abs(d_ideas) <= 1 and d_conv <= d_ideas and after["score"] <= before["score"], (slug, before, after)
    assert plain["score"] is not None and "word salad" not in {tag(r) for r in plain["review_reasons"]}, plain
