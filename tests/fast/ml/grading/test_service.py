"""GradingService, the one grading path (workers/ml/grading/service.py), with real graders, no database:
a fine-tuned model's results carry the same review flags and feedback as the other graders', one bad
essay fails alone for every grader kind, and the registry (unknown ids, the shared ASAP grader, one
encoder for every grader of a worker process)."""
from __future__ import annotations

import random

import pytest

from tests.finetuned_fixture import FT_RUBRIC, NORMAL, train_head
from workers.ml.grading import feedback as FB
from workers.ml.grading.interface import RESULT_KEYS, GradeFailure, GradeRequest
from workers.ml.grading.review import tag, withheld_by
from workers.ml.grading.service import GraderRegistry, GradingService, UnknownModel

pytestmark = pytest.mark.timeout(600)

SHORT = "I like rivers."
EMPTY = ""
TRAITS_KNOWN = ("organization", "conventions")


def word_salad(seed: int = 7) -> str:
    """The normal essay's words (real dictionary words) in a random order."""
    words = NORMAL.replace("\n", " ").replace(".", "").replace(",", "").split()
    random.Random(seed).shuffle(words)
    return " ".join(words) + "."


# ----------------------------------------------------------------------------- fixtures (loaded once)

@pytest.fixture(scope="module")
def loaded():
    """build_service() as a worker process builds it, counting every Encoder constructed meanwhile."""
    from workers.ml import encoder as E
    from workers.runtime.models import build_service

    made = []
    orig = E.Encoder.__init__

    def counting(self, *a, **kw):
        made.append(self)
        orig(self, *a, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(E.Encoder, "__init__", counting)
        service = build_service()
        default = service.registry.get("default")
        asap = service.registry.get("asap-1")
        service.warmup("default")
        service.warmup("asap-1", asap.rubric("1"))
    return {"service": service, "encoder": service.encoder, "default": default, "asap": asap, "encoders_made": made}


@pytest.fixture(scope="module")
def finetuned(loaded, tmp_path_factory):
    from workers.ml.grading.finetuned import FineTunedGrader

    path = train_head(tmp_path_factory.mktemp("ft") / "model", loaded["encoder"], model_id="mdl_x")
    return FineTunedGrader("mdl_x", path, encoder=loaded["encoder"])


def _check_result(res, rubric_traits=TRAITS_KNOWN):
    assert not isinstance(res, GradeFailure), res
    assert set(RESULT_KEYS) <= set(res), sorted(res)
    assert res["needs_review"] == bool(res["review_reasons"]), res
    assert isinstance(res["review_reasons"], list)
    for c in res["feedback"]:
        assert set(c) == {"trait", "comment", "evidence"} and c["comment"].strip()
        assert "by the fine-tuned model" not in c["comment"] and not c["comment"].startswith("Estimated"), c


# ----------------------------------------------------------------------------- the fine-tuned grader's results

def test_finetuned_results_carry_review_flags_and_trait_feedback(loaded, finetuned):
    g = finetuned
    assert g.method == "head" and g.encoder is loaded["encoder"]
    svc = GradingService.over(loaded["encoder"], {"mdl_x": g})
    salad = word_salad()
    texts = [EMPTY, SHORT, salad, NORMAL]
    out = svc.grade([GradeRequest(t, FT_RUBRIC, "mdl_x") for t in texts])
    assert len(out) == 4
    for res in out:
        _check_result(res)
        assert res["model_version"] == "mdl_x"
        assert set(res["traits"]) == set(TRAITS_KNOWN)
    empty, short, sal, normal = out

    # meaningless essays get no score: null score and traits, confidence 0, the reason first
    assert empty["score"] is None and empty["confidence"] == 0.0
    assert empty["traits"] == {"organization": None, "conventions": None}
    assert tag(empty["review_reasons"][0]) == "empty" and empty["needs_review"], empty["review_reasons"]
    assert empty["feedback"] and empty["feedback"][0]["trait"] == "overall"

    # the 3-word essay: 'too short', withheld
    assert short["review_reasons"][0].startswith("too short: 3 words"), short["review_reasons"]
    assert short["score"] is None and set(short["traits"].values()) == {None}

    # the shuffled dictionary words: flagged, and withheld by that flag
    assert {"word salad", "nonsense"} & {tag(sal["review_reasons"][0])}, sal
    assert sal["score"] is None and sal["needs_review"]
    assert [c["trait"] for c in sal["feedback"]] == ["overall"], sal["feedback"]

    # with always_score, the same essays get the model's scores (the scale's minimum for the empty one)
    always = {**FT_RUBRIC, "always_score": True}
    e2, s2, sal2, n2 = svc.grade([GradeRequest(t, always, "mdl_x") for t in texts])
    assert e2["score"] == FT_RUBRIC["scale"]["min"] and e2["traits"] == {"organization": 1.0, "conventions": 1.0}
    assert e2["confidence"] == 0.0 and tag(e2["review_reasons"][0]) == "empty"
    for res in (s2, sal2, n2):
        assert FT_RUBRIC["scale"]["min"] <= res["score"] <= FT_RUBRIC["scale"]["max"], res
    assert s2["review_reasons"] == short["review_reasons"] and n2["score"] == normal["score"]

    # feedback per rubric trait (one entry per trait feedback.py knows), evidence-based comments
    assert [c["trait"] for c in normal["feedback"]] == list(TRAITS_KNOWN), normal["feedback"]
    for res in out[3:]:
        lo, hi = FT_RUBRIC["scale"]["min"], FT_RUBRIC["scale"]["max"]
        assert lo <= res["score"] <= hi and 0.0 <= res["confidence"] <= 1.0


def test_empty_essay_gets_only_the_empty_reason_from_every_grader(loaded, finetuned):
    """An empty essay's only review reason is 'empty' (review.py stops there; the service drops the
    low-confidence doubt for it): no model doubt about an essay that has no text, for any grader."""
    asap = loaded["asap"]
    cases = [({"mdl_x": finetuned}, "mdl_x", FT_RUBRIC), ({"default": loaded["default"]}, "default", FT_RUBRIC),
             ({"asap-": asap}, "asap-1", asap.rubric("1"))]
    for graders, model, rubric in cases:
        [res] = GradingService.over(loaded["encoder"], graders).grade([GradeRequest(EMPTY, rubric, model)])
        _check_result(res)
        assert res["score"] is None and res["confidence"] == 0.0
        assert res["review_reasons"] == ["empty: the essay has no words"], (model, res["review_reasons"])


def test_finetuned_review_flags_and_feedback_match_the_default_graders(loaded, finetuned):
    """The shared step is the same for every grader: on the same texts and rubric, the text flags
    (everything but the models' own doubts) are the default grader's, and each result's feedback is
    feedback.py's for that text with that result's own scores (it follows the scores: a trait in the
    lower half of its scale always gets a thing to improve)."""
    texts = [EMPTY, SHORT, word_salad(), NORMAL]
    own = ("low confidence", "far from the essays the model was trained on")
    ft = GradingService.over(loaded["encoder"], {"mdl_x": finetuned}).grade(
        [GradeRequest(t, FT_RUBRIC, "mdl_x") for t in texts])
    df = GradingService.over(loaded["encoder"], {"default": loaded["default"]}).grade(
        [GradeRequest(t, FT_RUBRIC, "default") for t in texts])
    for a, b in zip(ft, df):
        _check_result(a)
        _check_result(b)
        ra = [r for r in a["review_reasons"] if not r.startswith(own)]
        rb = [r for r in b["review_reasons"] if not r.startswith(own)]
        assert [tag(r) for r in ra] == [tag(r) for r in rb], (ra, rb)
    for t, a, b in zip(texts, ft, df):
        for res in (a, b):
            withheld = withheld_by(res["review_reasons"]) if res["score"] is None else None
            assert res["feedback"] == FB.feedback(t, res["traits"], scales=FB.trait_scales(FT_RUBRIC),
                                                  score=res["score"], withheld=withheld), res
        if a["traits"] == b["traits"] and a["score"] == b["score"]:
            assert a["feedback"] == b["feedback"]


# ----------------------------------------------------------------------------- one bad essay fails alone

def _poison_cases(loaded, finetuned):
    asap = loaded["asap"]
    return {
        "default": ({"default": loaded["default"]}, "default", FT_RUBRIC),
        "asap-1": ({"asap-": asap}, "asap-1", asap.rubric("1")),
        "mdl_x": ({"mdl_x": finetuned}, "mdl_x", FT_RUBRIC),
    }


@pytest.mark.parametrize("kind", ["default", "asap-1", "mdl_x"])
def test_poison_essay_fails_alone_for_every_grader_kind(loaded, finetuned, kind):
    from workers.runtime.faults import _PoisonGrader

    graders, model, rubric = _poison_cases(loaded, finetuned)[kind]
    svc = GradingService.over(loaded["encoder"], graders)
    texts = [NORMAL, "Computers help students learn because they can search for facts and write drafts quickly. " * 3,
             "This essay contains POISON and the grader chokes on it, as a model would on a bad input.",
             "Friends are important. They help you when you are sad and they laugh with you when you are happy. " * 2]
    wrap = lambda g: _PoisonGrader(g, "POISON")  # noqa: E731
    out = svc.grade([GradeRequest(t, rubric, model) for t in texts], wrap=wrap)
    assert len(out) == 4
    fails = [i for i, r in enumerate(out) if isinstance(r, GradeFailure)]
    assert fails == [2], out
    assert "PoisonEssay" in out[2].error and not out[2].final
    clean = [t for t in texts if "POISON" not in t]
    alone = svc.grade([GradeRequest(t, rubric, model) for t in clean], wrap=wrap)
    for got, want in zip([out[0], out[1], out[3]], alone):
        _check_result(got)
        # the same scores, feedback and flags; the confidence may move in its third decimal where the encoder
        # runs in bf16 (AMX or AVX512-BF16 CPUs): a batch of other lengths is padded and blocked differently
        assert {k: v for k, v in got.items() if k != "confidence"} == {k: v for k, v in want.items() if k != "confidence"}
        assert got["confidence"] == pytest.approx(want["confidence"], abs=0.005)


def test_poison_marker_from_the_environment(loaded, monkeypatch):
    from workers.runtime import faults

    svc = GradingService.over(loaded["encoder"], {"default": loaded["default"]})
    reqs = [GradeRequest(NORMAL, FT_RUBRIC), GradeRequest(NORMAL + " <<bad>>", FT_RUBRIC)]
    monkeypatch.delenv("EDUQ_FAULT_POISON_MARKER", raising=False)
    assert faults.wrap_grader(loaded["default"]) is loaded["default"]
    assert not any(isinstance(r, GradeFailure) for r in svc.grade(reqs, wrap=faults.wrap_grader))
    monkeypatch.setenv("EDUQ_FAULT_POISON_MARKER", "<<bad>>")
    out = svc.grade(reqs, wrap=faults.wrap_grader)
    assert not isinstance(out[0], GradeFailure) and isinstance(out[1], GradeFailure)
    assert "PoisonEssay" in out[1].error


# ----------------------------------------------------------------------------- the registry

def test_unknown_model_fails_for_good_and_the_rest_is_graded(loaded):
    svc = GradingService.over(loaded["encoder"], {"default": loaded["default"]})
    out = svc.grade([GradeRequest(NORMAL, FT_RUBRIC, "default"), GradeRequest(NORMAL, FT_RUBRIC, "mdl_nope")])
    _check_result(out[0])
    assert isinstance(out[1], GradeFailure) and out[1].final and "mdl_nope" in out[1].error
    with pytest.raises(UnknownModel):
        svc.registry.get("mdl_nope")
    with pytest.raises(UnknownModel):
        svc.grade_with("mdl_nope", [NORMAL], [FT_RUBRIC])


def test_registry_prefix_and_exact_factories_make_one_grader(loaded):
    calls = {"exact": 0, "prefix": []}
    made = object()

    def exact():
        calls["exact"] += 1
        return object()

    def prefix(model_id):
        calls["prefix"].append(model_id)
        return made

    reg = GraderRegistry()
    reg.register("default", exact)
    reg.register_prefix("asap-", prefix)
    first = reg.get("default")
    assert reg.get("default") is first and reg.get("") is first and calls["exact"] == 1
    got = [reg.get(f"asap-{p}") for p in range(1, 9)] + [reg.get(f"asap-{p}") for p in range(1, 9)]
    assert all(g is made for g in got)
    assert sorted(set(calls["prefix"])) == sorted(f"asap-{p}" for p in range(1, 9))
    assert len(calls["prefix"]) == 8, "each id's grader is made once, then kept"
    with pytest.raises(UnknownModel):
        reg.get("asap")  # not the prefix itself


def test_build_service_shares_one_asap_grader_and_loads_it_once(loaded, monkeypatch):
    from workers.ml.grading.asap import AsapGrader
    from workers.runtime.models import build_service

    loads = []
    orig = AsapGrader.load.__func__

    def counting(cls, *a, **kw):
        g = orig(cls, *a, **kw)
        loads.append(g)
        return g

    monkeypatch.setattr(AsapGrader, "load", classmethod(counting))
    svc = build_service(encoder=loaded["encoder"])
    graders = [svc.registry.get(f"asap-{p}") for p in range(1, 9)]
    assert len(loads) == 1 and all(g is loads[0] for g in graders)
    assert graders[0].encoder is loaded["encoder"]


def test_one_encoder_for_every_grader(loaded, finetuned):
    from workers.ml.grading.finetuned import FineTunedGrader

    svc, enc = loaded["service"], loaded["encoder"]
    assert len(loaded["encoders_made"]) == 1 and loaded["encoders_made"][0] is enc, "a second MiniLM was loaded"
    assert loaded["default"].encoder is enc
    asap = loaded["asap"]
    assert asap.encoder is enc and getattr(asap.embedder, "encoder", asap.embedder) is enc
    assert svc.reviewer.encoder is enc
    assert all(svc.registry.get(f"asap-{p}") is asap for p in range(1, 9))
    # the fine-tuned versions' loader hands the process's encoder to every version it loads
    cache = svc.registry._fallback.__self__
    assert cache.encoder is enc
    # a `head` version loaded with it keeps it (no MiniLM of its own)
    assert isinstance(finetuned, FineTunedGrader) and finetuned.method == "head" and finetuned.encoder is enc


def test_the_benchmark_only_noop_grader_gives_valid_results_without_a_model():
    from workers.ml.grading.interface import RESULT_KEYS, GradeRequest
    from workers.ml.grading.noop import NoopGrader
    from workers.ml.grading.service import GradingService

    rubric = {"name": "r", "scale": {"min": 1, "max": 5, "step": 0.5},
              "traits": [{"name": "voice", "scale": {"min": 0, "max": 3, "step": 1}}]}
    svc = GradingService.over(None, {"noop": NoopGrader()}, reviewer=object())  # the reviewer is never read
    out = svc.grade([GradeRequest("Any text at all.", rubric, "noop"), GradeRequest("", rubric, "noop")])
    assert [o["score"] for o in out] == [3.0, 3.0] and out[0]["traits"] == {"voice": 1.0}
    assert set(RESULT_KEYS) <= set(out[0]) and out[0]["model_version"] == "noop" and out[0]["feedback"] == []
