"""Lesson engine: pure functions (fast) and one real batched generation with the default model."""
from __future__ import annotations

import io
import zipfile

import pytest

from workers.ml.lessons import section_minutes, to_docx, to_markdown, validate_lesson_request
from workers.ml.lessons.parsing import (
    clean_item,
    has_degenerate_repetition,
    parse_list,
    parse_title,
    repair_objective,
    starts_with_measurable_verb,
)
from workers.ml.lessons.schema import SECTIONS, normalize_grade, normalize_request

GOOD = {"topic": "Photosynthesis", "subject": "Science", "grade_level": "5", "duration_minutes": 45}


# ------------------------------------------------------------------ minutes
@pytest.mark.parametrize("duration", list(range(10, 241)))
def test_section_minutes_always_sum(duration):
    parts = section_minutes(duration)
    assert [n for n, _ in parts] == [n for n, _ in SECTIONS]
    assert sum(m for _, m in parts) == duration
    assert all(m >= 2 for _, m in parts)


def test_section_minutes_proportions():
    assert section_minutes(45) == [("Warm-up", 5), ("Direct instruction", 11), ("Guided practice", 11),
                                   ("Independent practice", 11), ("Closure", 7)]
    assert [m for _, m in section_minutes(10)] == [2, 2, 2, 2, 2]
    m = dict(section_minutes(240))
    assert m["Direct instruction"] > m["Closure"] > m["Warm-up"]


@pytest.mark.parametrize("bad", [9, 241, 0, -5, "45", 45.0, True, None])
def test_section_minutes_rejects(bad):
    with pytest.raises(ValueError):
        section_minutes(bad)


# --------------------------------------------------------------- validation
def test_validate_ok_and_grades():
    assert validate_lesson_request(GOOD) == []
    for g in ["K", "k", "0", "1", "12", 5, "05"]:
        assert validate_lesson_request({**GOOD, "grade_level": g}) == [], g
    assert normalize_grade("k") == "K" and normalize_grade("0") == "K" and normalize_grade("05") == "5"


@pytest.mark.parametrize(
    "patch,field",
    [
        ({"topic": "  "}, "topic"),
        ({"topic": None}, "topic"),
        ({"subject": ""}, "subject"),
        ({"grade_level": "13"}, "grade_level"),
        ({"grade_level": "-1"}, "grade_level"),
        ({"grade_level": "Pre-K"}, "grade_level"),
        ({"duration_minutes": 9}, "duration_minutes"),
        ({"duration_minutes": 241}, "duration_minutes"),
        ({"duration_minutes": "45"}, "duration_minutes"),
        ({"language": "fr"}, "language"),
        ({"objectives": "learn"}, "objectives"),
        ({"standards": [""]}, "standards[0]"),
        ({"notes": 3}, "notes"),
    ],
)
def test_validate_errors(patch, field):
    errs = validate_lesson_request({**GOOD, **patch})
    assert any(e["field"] == field for e in errs), errs
    assert all(set(e) == {"field", "message"} for e in errs)


def test_validate_not_a_dict():
    assert validate_lesson_request([1]) and validate_lesson_request(None)


def test_language_variants_accepted():
    assert validate_lesson_request({**GOOD, "language": "en-US"}) == []
    assert normalize_request({**GOOD})["language"] == "en"


# ------------------------------------------------------------- repair/parse
def test_clean_item_strips_numbering_bullets_labels_and_junk():
    assert clean_item("1. **Identify** the parts of a plant.") == "Identify the parts of a plant."
    assert clean_item("  - Step 2: draw a leaf") == "Draw a leaf"
    assert clean_item("3) Students will be able to: explain light") == "Explain light"
    assert clean_item("Label the diagram <|im_end|> garbage") == "Label the diagram"
    assert clean_item("Sort cards. I hope this helps!") == "Sort cards."


def test_parse_list_dedupes_and_splits_inline():
    text = "1. Draw a plant cell.\n2. Draw a plant cell.\n3. label the leaf parts 4. Share answers with a partner"
    assert parse_list(text) == ["Draw a plant cell.", "Label the leaf parts", "Share answers with a partner"]


def test_parse_list_drops_cut_off_stub_and_fragments():
    text = "1. Observe a leaf under a lens.\n2. ok\n3. Write down what"
    assert parse_list(text, truncated=True) == ["Observe a leaf under a lens."]


def test_parse_title():
    assert parse_title('Title: "Sunlight Snacks: How Plants Eat"\nMore text') == "Sunlight Snacks: How Plants Eat"
    assert parse_title("10-Inclusive Learning: Photosynthesis!") == "Inclusive Learning: Photosynthesis!"
    assert parse_title("") == ""


# --------------------------------------------------------------- repetition
def test_repetition_guard():
    loop = "the plant makes food " * 8
    assert has_degenerate_repetition(loop)
    assert has_degenerate_repetition("food food food food food food")
    ok = "Students observe a leaf, draw its parts, and explain how light helps the plant make food."
    assert not has_degenerate_repetition(ok)
    assert parse_list("1. " + loop + "\n2. Students draw a leaf and label it.") == ["Students draw a leaf and label it."]


# ---------------------------------------------------------------- objectives
def test_objective_verbs():
    assert starts_with_measurable_verb("Identify the parts of a flower.")
    assert starts_with_measurable_verb("Explains the water cycle")
    assert not starts_with_measurable_verb("Understandings of stuff")
    assert not starts_with_measurable_verb("Learn about plants")  # not measurable
    assert not starts_with_measurable_verb("Know the planets")
    assert repair_objective("Students will be able to describe the water cycle") == "Describe the water cycle"
    assert repair_objective("1. Students can compare two fractions") == "Compare two fractions"
    assert repair_objective("Have fun with plants") is None


# ---------------------------------------------------------------- rendering
LESSON = {
    "title": "Sunlight Snacks",
    "grade_level": "5",
    "subject": "Science",
    "duration_minutes": 45,
    "objectives": ["Identify the inputs of photosynthesis."],
    "materials": ["Leaves", "Hand lenses"],
    "sections": [{"name": n, "minutes": m, "activities": [f"Do {n.lower()} things."]} for n, m in section_minutes(45)],
    "assessment": ["Exit ticket with two questions."],
    "differentiation": ["Word bank for English learners."],
    "standards": ["NGSS 5-LS1-1"],
}


def test_markdown():
    md = to_markdown(LESSON)
    assert md.startswith("# Sunlight Snacks\n")
    assert "### Warm-up (5 min)" in md and "### Closure (7 min)" in md
    assert "- NGSS 5-LS1-1" in md and "1. Do guided practice things." in md
    assert "## Differentiation" in md


def test_docx():
    data = to_docx(LESSON)
    assert data[:2] == b"PK"
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml").decode()
    for s in ("Sunlight Snacks", "Warm-up (5 min)", "NGSS 5-LS1-1", "Hand lenses", "Word bank for English learners."):
        assert s in xml


# ------------------------------------------------------- engine (no model)
class _FakeLM:
    """Returns canned text: exercises assembly, standards and fallback without a model."""

    model_version = "fake"

    def __init__(self, text):
        self.text = text
        from workers.ml.lessons.model import GenStats

        self.stats = GenStats()

    def chat_prompt(self, system, user, prefill=""):
        return user

    def generate(self, rows, sampling=None, max_batch=None, prefix=None):
        from workers.ml.lessons.model import GenResult

        self.calls = getattr(self, "calls", []) + [(len(rows), max_batch)]
        return [GenResult(self.text, 5, "eos") for _ in rows]


class _FakeEncoder:
    def embed(self, texts):
        import numpy as np

        return np.ones((len(texts), 4), dtype=np.float32)


def test_engine_fallback_reported_and_standards_copied():
    from workers.ml.lessons.engine import LessonEngine

    eng = LessonEngine(_FakeLM("??"), _FakeEncoder(), max_plan_attempts=2)
    req = {**GOOD, "standards": ["CCSS.MATH.5.NF.1"], "objectives": ["Explain how plants make food."]}
    bad = {**GOOD, "duration_minutes": 5}
    out = eng.generate([req, bad])
    res = out[0]
    lesson = res["lesson"]
    assert lesson["standards"] == ["CCSS.MATH.5.NF.1"]
    assert lesson["objectives"] == ["Explain how plants make food."]
    assert sum(s["minutes"] for s in lesson["sections"]) == 45
    assert all(s["activities"] for s in lesson["sections"])
    assert "title" in res["checks"]["fallback_parts"]
    assert any("fallback" in w for w in res["warnings"])
    assert out[1]["lesson"] is None and out[1]["errors"][0]["field"] == "duration_minutes"


def test_engine_never_invents_standards():
    from workers.ml.lessons.engine import LessonEngine

    eng = LessonEngine(_FakeLM("1. Standard NGSS 5-PS1-1 applies here to students."), _FakeEncoder())
    res = eng.generate([GOOD])[0]
    assert res["lesson"]["standards"] == []
    assert "standards_from_request" in res["checks"]


# ----------------------------------------------------- real model, batched
@pytest.fixture(scope="module")
def engine():
    from workers.ml.lessons.engine import LessonEngine

    return LessonEngine.load(budget_scale=0.6, max_part_attempts=1, max_plan_attempts=1)


def test_real_batch_of_two_complete_plans(engine):
    reqs = [
        {**GOOD, "standards": ["NGSS 5-LS1-1"]},
        {"topic": "Adding fractions", "subject": "Math", "grade_level": "K", "duration_minutes": 30},
    ]
    out = engine.generate(reqs, seed=0)
    assert len(out) == 2
    for req, res in zip(reqs, out):
        lesson = res["lesson"]
        assert lesson["title"]
        assert [s["name"] for s in lesson["sections"]] == [n for n, _ in SECTIONS]
        assert sum(s["minutes"] for s in lesson["sections"]) == req["duration_minutes"]
        assert all(s["activities"] for s in lesson["sections"])
        for k in ("objectives", "materials", "assessment", "differentiation"):
            assert lesson[k], k
        assert lesson["standards"] == req.get("standards", [])
        assert res["markdown"].startswith("# ")
        assert res["model_version"].startswith("SmolLM2")
        for k in ("sections_complete", "repetition", "on_topic", "objective_verbs", "reading_level"):
            assert "ok" in res["checks"][k]
        assert isinstance(res["warnings"], list)
    assert engine.last_stats["plans"] == 2 and engine.last_stats["new_tokens"] > 0


def test_real_batched_matches_single(engine):
    """Per-row seeds do not depend on batch position: a plan generated alone and in a
    batch are (near) identical -- finished rows leaving the batch do not disturb others."""
    from workers.ml.lessons.model import GenRequest

    lm = engine.lm
    p1 = lm.chat_prompt("You are a teacher.", "Name one fruit.", "1. ")
    p2 = lm.chat_prompt("You are a teacher.", "Write two sentences about volcanoes for grade 7.", "1. ")
    rows = [GenRequest(p1, 6, 1), GenRequest(p2, 20, 2)]
    both = lm.generate(rows)
    alone = lm.generate([rows[1]])
    assert both[0].n_tokens <= 6 and both[1].n_tokens <= 20
    assert both[1].text.split()[:5] == alone[0].text.split()[:5]


def test_engine_generates_all_parts_in_one_call_then_retries_together():
    """Every part of every plan is one row of a single generation (retries in a second one),
    with the engine's max_batch unless the call overrides it."""
    from workers.ml.lessons.engine import PARTS, LessonEngine

    lm = _FakeLM("??")  # unparseable: every part fails, is retried once, then falls back
    eng = LessonEngine(lm, _FakeEncoder(), max_part_attempts=2, max_plan_attempts=1, max_batch=4)
    eng.generate([GOOD, {**GOOD, "objectives": ["Explain how plants make food."]}])
    n_rows = 2 * len(PARTS) - 1  # the second request brings its own objectives
    assert lm.calls == [(n_rows, 4), (n_rows, 4)]
    eng.generate([GOOD], max_batch=1)
    assert lm.calls[-1] == (len(PARTS), 1)


def test_real_slot_refill_matches_one_at_a_time(engine):
    """Rows joining a running batch (KV cache padded and appended), rows leaving it and the
    shared system-prompt KV cache leave each row's tokens as when it decodes alone without
    any sharing: greedy decoding, 5 rows of different prompt lengths and budgets through 2
    slots vs one at a time."""
    from workers.ml.lessons.model import GenRequest, SamplingConfig

    lm = engine.lm
    greedy = SamplingConfig(temperature=0, repetition_penalty=1.15, no_repeat_ngram_size=4)
    system = "You are a teacher."
    prompts = ["Name one fruit.", "Write two sentences about volcanoes for grade 7.",
               "List three materials for a science lesson on magnets for grade 2 students.",
               "Say hello.", "Explain photosynthesis in one sentence."]
    rows = [GenRequest(lm.chat_prompt(system, p, "1. "), b, i, ("\n\n",))
            for i, (p, b) in enumerate(zip(prompts, [5, 16, 12, 3, 14]))]
    s0 = lm.stats.steps
    slots = lm.generate(rows, greedy, max_batch=2, prefix=lm.chat_prefix(system))
    steps_batched = lm.stats.steps - s0
    alone = [lm.generate([r], greedy, max_batch=1)[0] for r in rows]
    steps_alone = lm.stats.steps - s0 - steps_batched
    same = sum(a.text == b.text and a.n_tokens == b.n_tokens for a, b in zip(slots, alone))
    assert same >= 4, [(a.text, b.text) for a, b in zip(slots, alone)]  # fp noise may flip one late token
    for a, b in zip(slots, alone):
        assert a.n_tokens >= 1 and a.text.split()[:3] == b.text.split()[:3], (a.text, b.text)
    assert steps_batched < steps_alone
