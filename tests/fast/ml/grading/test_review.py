"""Review flags (review.py), the stress set (stress.py) and evidence-grounded feedback (feedback.py).

Every text here was written for these tests; the stress test reads ../shared/data/asap at run time."""
from __future__ import annotations

import random
import re

import pytest

from tests.paths import ASAP_DATA
from workers.ml.grading.feedback import analyse, feedback, trait_kind
from workers.ml.grading.review import TAGS, Reviewer, measure, tag

DATA = ASAP_DATA

PROMPT = "Write a letter to your local newspaper about the effects computers have on people and on society."
GOOD = (
    "Dear Editor,\n\n"
    "Computers have changed the way people in our town learn, work and keep in touch, and I believe the change "
    "has mostly been good. In this letter I will explain why computers help people more than they hurt them.\n\n"
    "First, computers make learning easier. A student who does not understand a math problem can watch a short "
    "lesson online and try again the same evening. My cousin taught herself to code this way, and now she builds "
    "websites for small shops downtown.\n\n"
    "Second, computers help families stay close. My grandparents live three hundred miles away, but every Sunday "
    "we talk to them on a video call. They see their grandchildren grow up even though they cannot visit often.\n\n"
    "Some people argue that computers keep children inside and away from exercise. That is a fair worry. However, "
    "parents can set limits, and many teenagers use their laptops to find sports teams, hiking trails and "
    "volunteer work in their area.\n\n"
    "In conclusion, computers are a tool, and like any tool they are as good as the way we use them. Used wisely, "
    "they help us learn more and stay connected to the people we love."
)
SPANISH = ("Las computadoras han cambiado la forma en que las personas aprenden y trabajan. Muchos estudiantes usan "
           "el internet para hacer sus tareas, pero algunos padres piensan que los jóvenes pasan demasiado tiempo "
           "frente a la pantalla. Yo creo que la tecnología es buena cuando se usa con cuidado y con límites claros "
           "para toda la familia.")
FRENCH = ("Les ordinateurs ont changé notre façon de vivre. Dans ma famille, nous utilisons un ordinateur pour "
          "parler avec mes grands-parents qui habitent loin de chez nous. Je pense que la technologie est utile, "
          "mais il ne faut pas passer toute la journée devant un écran parce que le sport et les amis sont aussi "
          "importants.")
GERMAN = ("Computer haben unser Leben sehr verändert. Ich benutze meinen Computer jeden Tag für die Schule und um "
          "mit meinen Freunden zu sprechen. Meine Eltern sagen, dass ich zu viel Zeit vor dem Bildschirm verbringe, "
          "aber ich glaube, dass der Computer mir hilft, neue Dinge zu lernen und die Welt besser zu verstehen.")
RUSSIAN = ("Компьютеры сильно изменили нашу жизнь. Я пользуюсь компьютером каждый день для учёбы и общения с "
           "друзьями, и мои родители говорят, что я провожу слишком много времени перед экраном.")
GAME = ("My favourite video game is a racing game where you build your own cars. You unlock new engines by winning "
        "races and then you paint the cars any colour you like. Last weekend I beat the hardest track with my cousin "
        "and we played until midnight. The graphics are amazing and the music is loud. I want the next version to "
        "have more tracks in the mountains and a better multiplayer mode with friends.")
DAM = ("The builders of the tall tower downtown wanted airships to dock at the very top, but they ran into many "
       "problems. The mast had to be strong enough to hold a huge ship that moved in the wind, so they had to "
       "strengthen the steel frame of the whole building. The ships were filled with hydrogen, which can explode, "
       "and a fire above a crowded city would have been a disaster. Strong winds at the top made the ships swing "
       "around, and there was no safe way to tie them down with weights like at an airfield. Laws also stopped "
       "airships from flying low over the city.")


def _shuffle(text: str, seed: int = 3) -> str:
    toks = text.split()
    random.Random(seed).shuffle(toks)
    return " ".join(toks)


def _random_chars(seed: int, n: int = 600) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz     .,") for _ in range(n))


@pytest.fixture(scope="module")
def encoder():
    from workers.ml.encoder import Encoder

    return Encoder(max_length=512)


@pytest.fixture(scope="module")
def reviewer(encoder):
    return Reviewer.load(encoder=encoder)


def _tags(reasons: list[str]) -> set[str]:
    return {tag(r) for r in reasons}


def test_every_reason_starts_with_a_stable_tag_and_the_good_essay_is_clean(reviewer, encoder):
    texts = [GOOD, "", "Computers are good.", _shuffle(GOOD), GOOD + "\n\n" + GOOD, "xq zzkv bbrt plmn qwrtp " * 20,
             PROMPT + "\n\n" + GOOD, SPANISH, GAME]
    out = reviewer.reasons(texts, encoder.embed(texts), prompt_texts=[PROMPT] * len(texts))
    assert out[0] == [], out[0]
    for rs in out:
        assert all(tag(r) in TAGS and len(r.split(":", 1)[1].strip()) > 5 for r in rs), rs
    assert _tags(out[1]) == {"empty"}
    assert "too short" in _tags(out[2])
    assert "word salad" in _tags(out[3])
    assert "repeated text" in _tags(out[4])
    assert "nonsense" in _tags(out[5])
    assert "copied prompt" in _tags(out[6]) and "copied prompt" not in _tags(out[0])
    assert "not English" in _tags(out[7])
    assert "off-topic" in _tags(out[8])  # teacher-rubric path: cosine to the embedded prompt


def test_text_detectors_each_fire_on_their_own_case_only(reviewer):
    half = " ".join(GOOD.split()[: len(GOOD.split()) // 2])
    cases = {
        "word salad": [_shuffle(GOOD, s) for s in range(5)],
        "repeated text": [GOOD + " " + half, GOOD.replace("\n\n", " ") + " " + half],
        "nonsense": [_random_chars(s) for s in range(3)] + ["money " * 80],
        "not English": [SPANISH, FRENCH, GERMAN, RUSSIAN],
        "too short": [" ".join(GOOD.split()[:k]) for k in (5, 8, 12)],
    }
    for want, texts in cases.items():
        for t in texts:
            got = _tags(reviewer.reasons([t], None)[0])
            assert want in got, (want, got, t[:80])
            if want != "too short":
                assert "too short" not in got
    for t in (GOOD, DAM, GAME):  # well-formed English: no text flag at all
        assert reviewer.reasons([t], None) == [[]]
    m = measure(_shuffle(GOOD))
    assert m["salad_rate"] >= reviewer.cfg["salad_rate"] > measure(GOOD)["salad_rate"]


def test_copied_prompt_needs_the_prompt_and_a_long_overlap(reviewer):
    restated = "Computers have effects on people, and I think most of those effects are good for our society. " + GOOD
    out = reviewer.reasons([PROMPT + " " + GOOD, GOOD + " " + PROMPT, PROMPT, restated],
                           None, prompt_texts=[PROMPT] * 4)
    assert all("copied prompt" in _tags(r) for r in out[:3]), out
    assert "copied prompt" not in _tags(out[3])
    assert reviewer.reasons([PROMPT + " " + GOOD], None) == [[]]  # no prompt text given: nothing to compare


def test_asap_prompt_classifier_flags_an_essay_on_another_prompt(reviewer, encoder):
    """Prompt 1 asks about computers, prompt 6 about docking airships on a tower."""
    emb = encoder.embed([GOOD, DAM])
    out = reviewer.reasons([GOOD, DAM, GOOD, DAM], emb[[0, 1, 0, 1]], prompt_ids=["1", "6", "6", "1"])
    assert "off-topic" not in _tags(out[0]) and "off-topic" not in _tags(out[1])
    assert "off-topic" in _tags(out[2]) and "off-topic" in _tags(out[3])
    assert "prompt 6" in next(r for r in out[2] if r.startswith("off-topic")) and "closest prompt is 1" in out[2][-1]


def test_feedback_quotes_planted_evidence():
    bad = ("i think computers are good becuase they help people. I use my computer everyday and my freinds do to. "
           "Computers help with homework and they help with talking to people and they help with games and they help "
           "with finding information about anything you want to know about when you are bored at home on the weekend "
           "with nothing to do. computers are good. " * 2)
    fb = feedback(bad, ["Conventions", "Sentence fluency", "Organization", "Word choice", "creativity"])
    by = {f["trait"]: f["comment"] for f in fb}
    assert set(by) == {"Conventions", "Sentence fluency", "Organization", "Word choice"}  # no evidence kind: skipped
    assert "'becuase'" in by["Conventions"] and "'freinds'" in by["Conventions"]
    assert re.search(r"'i' is written in lower case 2 time", by["Conventions"])
    assert "over 35 words" in by["Sentence fluency"] and "'Computers help with homework" in by["Sentence fluency"]
    assert "'help' is used" in by["Word choice"] or "'computers' is used" in by["Word choice"]
    for c in by.values():
        assert len(re.findall(r"[.!?](?:\s|$)", c)) <= 2 + c.count("...") + c.count("?)"), c
        assert re.search(r"\d|'", c), c  # a count or a quotation in every comment


def test_feedback_praises_with_evidence_and_falls_back_to_overall():
    fb = {f["trait"]: f["comment"] for f in feedback(GOOD, ["organization", "Grammar", "Voice and tone", "Ideas"])}
    assert "'in conclusion'" in fb["organization"] and "'first'" in fb["organization"]
    assert fb["Grammar"].startswith("No likely misspellings")
    assert "first-person" in fb["Voice and tone"]
    assert "Ideas" in fb
    only = feedback(GOOD, [])
    assert [f["trait"] for f in only] == ["overall"] and str(analyse(GOOD)["n_words"]) in only[0]["comment"]
    assert [f["trait"] for f in feedback(GOOD, ["creativity"])] == ["overall"]
    assert feedback("", ["organization"])[0]["trait"] == "overall"
    assert trait_kind("Ideas and Content") == "content" and trait_kind("Mechanics") == "conventions"
    assert trait_kind("prompt_adherence") == "prompt_adherence" and trait_kind("creativity") is None
    task = "Describe the obstacles the builders faced with airships."
    pa = feedback(DAM, ["prompt adherence"], prompt_text=task)[0]["comment"]
    assert "2 of the prompt's 4 key words ('builders', 'airships')" in pa
    off = feedback(GAME, ["prompt adherence"], prompt_text=task)[0]["comment"]
    assert off.startswith("Only 0 of the prompt's 4 key words appear") and "'obstacles'" in off


@pytest.mark.skipif(not (DATA / "dev.jsonl").exists(), reason="shared ASAP data missing")
def test_run_stress_on_a_dev_subset_meets_the_targets(reviewer, encoder):
    from workers.ml.embedding_cache import cached_embed
    from workers.ml.evaluation.stress import KINDS, run_stress

    # the first 100 real dev essays of each prompt (800 to embed in a fresh clone, cached in var/cache after;
    # the full dev set is `python -m workers.ml.evaluation.stress`), 4 essays per prompt and kind altered
    res = run_stress(reviewer, encoder.embed, str(DATA / "dev.jsonl"), per_prompt=4, real_per_prompt=100,
                     real_embed_fn=lambda t: cached_embed(encoder, t, "dev100", verbose=False), verbose=False)
    assert set(res["kinds"]) == set(KINDS) and res["n_real"] == 800 and res["n_stress"] == 4 * 8 * len(KINDS)
    assert res["catch_rate"] >= 0.95, res["kinds"]
    assert all(v["caught"] >= 0.85 for v in res["kinds"].values()), res["kinds"]
    assert res["real_flag_rate"] <= 0.03, res["real_reasons"]
