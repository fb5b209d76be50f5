"""Feedback (workers/ml/grading/feedback.py): comments consistent with the scores, each pointing at a
quoted place in the essay; the withheld-score comment; the spell check's dictionary (lexicon.known_word).

The essays here were written for these tests; 40 ASAP dev essays are read at run time (never stored)."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.paths import ASAP_DATA, ROOT
from workers.ml.grading import feedback as FB
from workers.ml.grading.lexicon import english_words, known_word

GOOD = (
    "Should our town build a skate park? I believe it should, for three reasons.\n\n"
    "First, young people need a safe place to practise. Right now they ride on the steps of the library, "
    "and last month a boy broke his wrist there. A park with smooth ramps would protect riders and walkers. "
    "For example, the park in Millbrook cut injuries by half in its first year.\n\n"
    "Second, a skate park brings the community together. My older sister says, \"The ramps are where I met "
    "half my friends.\" Parents watch from benches, and younger children learn by watching older ones.\n\n"
    "However, some neighbours worry about noise. This is a fair concern, so the council could choose a site "
    "near the sports field, away from houses, and close it at nine in the evening.\n\n"
    "In conclusion, a skate park would keep riders safe, connect families and fit our town if it is planned "
    "carefully. That is why I hope the council votes yes!")
WEAK = ("Sports are good. I like sports a lot. Sports are really fun and good for you. My favorite sport is "
        "soccer. Soccer is a good thing to do. It is very fun. You can play it with friends. Friends are nice. "
        "Sports are good for kids.")
NO_PUNCT = ("i think school should start later in the morning students are tired when they come to class and they "
            "cannot focus on the teacher my friends and i stay up late doing homework and then we have to wake up "
            "early so we are sleepy all day if school started later we would learn more and be happier")
LOWER = ("my summer trip was to the lake with my cousins. we swam every morning and fished in the afternoon. "
         "one day a storm came and we had to run back to the cabin. my uncle made hot soup and we played cards "
         "until the rain stopped. it was the best week of the summer.")
TYPOS = ("On saturday I went to teh park with my freinds and we threw frisbees for hours. Thier dog was definately "
         "the best player, it would recieve every throw and run back. We were texting our parents on our "
         "smartphones untill it got dark, and alot of teenagers were there too. I dont want summer to end "
         "because the park is recycling old tires into a new playground.")
LETTER = (
    "Dear Principal,\n\n"
    "I am writing to you about the lunch time at our school. Lunch is twenty minutes long and most students "
    "think that is not enough. The line is long and the tables are full. Some students only have a few minutes "
    "to eat their food. Then the bell rings and they have to go to class. Many of my classmates are hungry in "
    "the afternoon because they did not finish their lunch. The teachers can see that students are tired after "
    "lunch. I talked to my friends and they all want a longer lunch. We also want more tables in the hall. "
    "The cafeteria could open the side room too. It is a small change but it would help a lot of people. I "
    "hope you will think about it and talk to the other teachers. The students would be very happy. Please "
    "make lunch longer next year.\n\n"
    "Thank you for reading my letter.\n\n"
    "Sincerely,\n"
    "Jordan")
CLEAN_301 = (
    "Many students in our school walk home every afternoon, and the roads near the main gate are busy. "
    "Cars park on both sides of the street, buses stop in the middle of the road and bicycles weave between "
    "them. Parents and teachers have talked about this problem for years, but nothing has changed. I think "
    "the town should build a crossing with lights in front of the school. "
    "A crossing would make the walk home safer for everyone. Younger students are small, and drivers cannot "
    "always see them between parked cars. When the lights turn red, the traffic would stop and children "
    "could cross together. "
    "The crossing would also help the drivers. Today they never know when someone will run across the "
    "street, so they brake suddenly and the cars behind them honk. With lights, everyone would know when to "
    "stop and when to go. The mornings would be calmer for the whole street. "
    "Some people say that a crossing costs too much money. It is true that lights are not cheap, but an "
    "accident would cost much more, and nobody wants to see a child hurt. The town could also ask local "
    "businesses to help pay, since their customers use the same road. "
    "Others say that students should simply be more careful. Of course we should look both ways and wait "
    "for a gap, but even careful walkers can be surprised by a fast car. A safe crossing does not replace "
    "good habits. It supports them. "
    "The town council meets next month, and I hope the members will listen to the students, parents and "
    "teachers who walk this road every day. A crossing with lights is a simple idea that would protect the "
    "people of our town for many years to come, and now is the time to build it.")
MINE = {"good": GOOD, "weak": WEAK, "no_punct": NO_PUNCT, "lower": LOWER, "typos": TYPOS, "letter": LETTER,
        "clean_301": CLEAN_301}
TASK = "Write a letter to your town council about a change that would make your school day better."
SCALE = {"min": 1, "max": 6, "step": 1}
RUBRIC = {"name": "every kind", "prompt": TASK, "scale": SCALE, "traits": [{"name": k} for k in FB.KINDS]}
# every issue sentence (and the located next step) says what to improve in one of these words; no
# strength sentence does, so a lower-half comment without one of them is praise only
IMPROVE = re.compile(r"To raise this|would|could|need|room for|check|\d+ likely misspelling|Capitalisation|has no|"
                     r"hard to hear|over \d+ words|without|[Oo]nly \d+ of|[Mm]ost sentences are very short")
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


def _dev_essays(n: int = 40) -> list[tuple[str, str]]:
    """(essay, its prompt's task text) for n dev essays spread over the file (all prompts), read now."""
    path = ASAP_DATA / "dev.jsonl"
    assert path.exists(), f"the shared ASAP data is missing: {path}"
    tasks = {k: v["task"] for k, v in json.loads((ASAP_DATA / "rubrics.json").read_text())["prompts"].items()}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["essay"], tasks.get(str(r["prompt"]))) for r in rows[::max(1, len(rows) // n)][:n]]


def quoted(comment: str, ev: str) -> bool:
    """The comment quotes the evidence: whole, or its first words followed by '...'."""
    if ev in comment:
        return True
    cuts = [m.start() for m in re.finditer(r"\s", ev)]
    return any(ev[:k].rstrip(",;:") + "..." in comment for k in cuts if ev[:k].strip())


def check_item(item: dict, text: str) -> None:
    assert set(item) == {"trait", "comment", "evidence"}, item
    ev, c = item["evidence"], item["comment"]
    assert isinstance(c, str) and c.strip(), item
    assert isinstance(ev, str) and ev.strip() and ev in text, item
    assert ev == ev.strip(), item
    assert len(WORD.findall(re.sub(r"@[A-Z]+[0-9]*", " ", ev))) <= FB.MAX_EVIDENCE, item
    assert quoted(c, ev), item
    # cut at word boundaries: the evidence neither starts nor ends inside a word of the text
    at = text.index(ev)
    assert not (at > 0 and text[at - 1].isalnum() and ev[0].isalnum()), item
    end = at + len(ev)
    assert not (end < len(text) and text[end].isalnum() and ev[-1].isalnum()), item
    # at most two sentences of ours (a quoted sentence never holds ". X": evidence is one sentence or part of one)
    assert len(re.findall(r"[.!?]['\")]*\s+(?=[A-Z])", c)) <= 1, item


@pytest.fixture(scope="module")
def corpus():
    dev = _dev_essays()
    return [(name, text, TASK) for name, text in MINE.items()] + [(f"dev{i}", t, task) for i, (t, task) in enumerate(dev)]


# ----------------------------------------------------------------------------- consistency and evidence

def test_every_kind_and_score_quotes_its_evidence_and_lower_half_says_what_to_improve(corpus):
    scales = FB.trait_scales(RUBRIC)
    for name, text, task in corpus:
        e = FB.analyse(text)
        for kind in FB.KINDS:
            for s in range(1, 7):
                level = FB.scale_level(s, SCALE)
                items = FB.feedback(text, {kind: float(s)}, stats=e, scales=scales, prompt_text=task, score=float(s))
                for it in items:
                    check_item(it, text)
                if level < FB.LOW:
                    assert [it["trait"] for it in items] == [kind], (name, kind, s, items)
                    c = items[0]["comment"]
                    assert IMPROVE.search(c), (name, kind, s, c)
                    strength, issue = FB.comment_parts(kind, e, level, prompt_text=task)
                    assert issue is not None and c.startswith(issue[0]), (name, kind, s, issue, c)
                    assert items[0]["evidence"] == issue[1]
                else:
                    # (a kind with nothing to say in the upper half: the holistic comment, as before)
                    assert len(items) <= 1 and all(it["trait"] in (kind, "overall") for it in items)
        # the holistic comment when no trait maps: the same rule
        for s in range(1, 7):
            items = FB.feedback(text, {"creativity": float(s)}, stats=e, scales=scales, prompt_text=task,
                                score=float(s))
            for it in items:
                check_item(it, text)
                assert it["trait"] == "overall"
            if FB.scale_level(s, SCALE) < FB.LOW:
                assert len(items) == 1 and IMPROVE.search(items[0]["comment"]), (name, s, items)


def test_no_score_known_keeps_the_old_call_and_quotes_evidence():
    for text in MINE.values():
        for it in FB.feedback(text, ["Organization", "Grammar", "Ideas", "Voice and tone", "creativity"]):
            check_item(it, text)
        assert FB.feedback(text, ["Organization"]) == FB.feedback(text, {"Organization": None})
    assert [it["trait"] for it in FB.feedback(GOOD, [])] == ["overall"]
    assert FB.feedback("", ["organization"]) == [
        {"trait": "overall", "comment": "No text was submitted, so there is nothing to give feedback on.",
         "evidence": None}]


def test_the_testers_cases():
    scales = FB.trait_scales({"scale": SCALE, "traits": [{"name": "Conventions"}, {"name": "Ideas"}]})
    # 1. a clean 301-word essay with conventions 3/6: not the 'no misspellings' praise alone
    e = FB.analyse(CLEAN_301)
    assert e["n_words"] == 301 and e["misspelled_total"] == 0 and e["lowercase_starts"] == 0
    [c] = FB.feedback(CLEAN_301, {"Conventions": 3.0}, scales=scales, score=3.0)
    assert not c["comment"].startswith("No likely misspellings") and IMPROVE.search(c["comment"]), c
    assert c["comment"].startswith("To raise this, revise '"), c
    [hi] = FB.feedback(CLEAN_301, {"Conventions": 5.0}, scales=scales, score=5.0)
    assert hi["comment"].startswith("No likely misspellings were found in 301 words"), hi
    # 2. a weak letter with one 'because': no "Points are backed with reasons", whatever the score
    assert FB.analyse(LETTER)["example_cues"] == {"because": 1}
    for s in (None, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0):
        for it in FB.feedback(LETTER, {"Ideas": s}, scales=scales, score=s):
            assert "Points are backed" not in it["comment"], (s, it)
            check_item(it, LETTER)
    low = FB.feedback(LETTER, {"Ideas": 2.0}, scales=scales, score=2.0)[0]["comment"]
    assert "Only one point is backed with a reason ('because' x1" in low, low
    # the letter's salutation and sign-off are not quoted as its content
    for s in range(1, 7):
        for kind in FB.KINDS:
            for it in FB.feedback(LETTER, {kind: float(s)}, scales=scales, prompt_text=TASK, score=float(s)):
                assert it["evidence"] not in ("Dear Principal,", "Sincerely,", "Jordan"), it
    # 3. 'frisbees' (and texting, smartphones, recycling, teenagers) are not misspellings
    conv = FB.feedback(TYPOS, {"Conventions": 2.0}, scales=scales)[0]["comment"]
    for w in ("frisbees", "texting", "smartphones", "recycling", "teenagers"):
        assert f"'{w}'" not in conv.split(", as in")[0], conv
    assert "'teh' (the?)" in conv and "'freinds' (friends?)" in conv, conv


def test_a_strong_essay_gets_strengths_with_real_evidence():
    e = FB.analyse(GOOD)
    by = {it["trait"]: it for it in FB.feedback(GOOD, {k: 6.0 for k in FB.KINDS}, stats=e,
                                                scales=FB.trait_scales(RUBRIC), prompt_text=TASK, score=6.0)}
    assert by["content"]["comment"].startswith("Points are backed with reasons or details ('for example' x1, "
                                               "1 quotation(s))"), by["content"]
    assert "'first'" in by["organization"]["comment"] and "('in conclusion')" in by["organization"]["comment"]
    assert "In conclusion" in by["organization"]["evidence"]
    assert by["voice"]["comment"].startswith("The writer's own voice shows in first-person words")
    # a weak essay's content at the top of the scale still gets no strength from a single cue
    assert "Points are backed" not in (FB.comment_for("content", FB.analyse(TYPOS), level=1.0) or "")


def test_located_next_steps_name_the_sentence_to_revise():
    e = FB.analyse(GOOD)
    for kind in FB.KINDS:
        strength, issue = FB.comment_parts(kind, e, 0.0, prompt_text=TASK)
        assert issue is not None and issue[1] in GOOD
        if issue[0].startswith("To raise this"):
            assert issue[0].startswith("To raise this, revise " + FB.quote(issue[1]) + ": "), issue
    # in the upper half a kind with nothing to fix gets no invented issue
    assert FB.comment_parts("conventions", FB.analyse(CLEAN_301), 0.8)[1] is None


def test_evidence_windows_cut_long_sentences_at_word_boundaries():
    text = NO_PUNCT  # one 58-word sentence
    for kind in ("conventions", "sentence_fluency", "organization"):
        [it] = FB.feedback(text, {kind: 1.0}, scales={kind: SCALE})
        check_item(it, text)
        assert it["evidence"] != text and text.startswith(it["evidence"])
        assert len(it["evidence"].split()) == FB.MAX_EVIDENCE
    conv = FB.feedback(text, {"conventions": 1.0}, scales={"conventions": SCALE})[0]["comment"]
    assert "'i' is written in lower case 2 time(s)" in conv and "no comma or full stop" in conv, conv
    # a misspelling deep in a long sentence: the window holds it
    long = "We went " + "very far along the old road " * 6 + "and saw teh lake at last."
    [it] = FB.feedback(long, {"conventions": 2.0}, scales={"conventions": SCALE})
    check_item(it, long)
    assert "teh" in it["evidence"] and "'teh' (the?)" in it["comment"]


def test_anonymisation_tokens_are_avoided_where_another_sentence_will_do():
    text = ("Dear @CAPS1 @CAPS2, computers help people learn. They let students read about faraway places. "
            "They also let families talk to each other every day.")
    for kind in FB.KINDS:
        for s in (1.0, 5.0):
            for it in FB.feedback(text, {kind: s}, scales={kind: SCALE}, prompt_text=TASK):
                check_item(it, text)
                assert "@" not in it["evidence"], it
    only = "@PERSON1 @CAPS2"
    [it] = FB.feedback(only, {"organization": 1.0}, scales={"organization": SCALE},
                       withheld="too short: 2 words (under 20), too little text to grade reliably")
    assert it["evidence"] == only and FB.quote(only) in it["comment"]


def test_trait_scales_and_levels():
    rb = {"name": "r", "scale": {"min": 0, "max": 10, "step": 1},
          "traits": [{"name": "Organization", "scale": {"min": 1, "max": 4, "step": 1}}, {"name": "Voice"}]}
    assert FB.trait_scales(rb) == {FB.HOLISTIC: rb["scale"], "Organization": {"min": 1, "max": 4, "step": 1},
                                   "Voice": rb["scale"]}
    assert FB.trait_scales(None) == {}
    assert FB.scale_level(2.0, {"min": 1, "max": 4}) == pytest.approx(1 / 3)
    assert FB.scale_level(None, SCALE) is None and FB.scale_level(3, {"min": 2, "max": 2}) is None
    # the trait's own scale decides: 2 of 1-4 is the lower half, 2 of 0-10 too, 6 of 0-10 not
    e = FB.analyse(CLEAN_301)
    sc = FB.trait_scales(rb)
    [org] = FB.feedback(CLEAN_301, {"Organization": 2.0}, stats=e, scales=sc)
    assert IMPROVE.search(org["comment"])
    assert FB.feedback(CLEAN_301, {"Voice": 6.0}, stats=e, scales=sc) == FB.feedback(CLEAN_301, ["Voice"], stats=e)


def test_same_text_same_feedback_in_any_process():
    code = ("import json,sys; sys.path.insert(0, %r); from workers.ml.grading import feedback as FB; "
            "from tests.fast.ml.grading.test_feedback import MINE, RUBRIC, TASK; "
            "print(json.dumps([FB.feedback(t, {k: 2.0 for k in FB.KINDS}, scales=FB.trait_scales(RUBRIC), "
            "prompt_text=TASK, score=2.0) for t in MINE.values()]))") % str(ROOT)
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                           env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}).stdout for seed in ("1", "2")}
    assert len(outs) == 1
    here = [FB.feedback(t, {k: 2.0 for k in FB.KINDS}, scales=FB.trait_scales(RUBRIC), prompt_text=TASK, score=2.0)
            for t in MINE.values()]
    assert json.loads(outs.pop()) == here


# ----------------------------------------------------------------------------- withheld scores

WITHHELD = {
    "too short": ("I like rivers.", "too short: 3 words (under 20), too little text to grade reliably",
                  ("write more", "answers the task")),
    "nonsense": ("xq zzkv bbrt plmn qwrtp vvb nnq zzkv xq bbrt plmn qwrtp vvb nnq zzkv xq bbrt plmn qwrtp vvb nnq.",
                 "nonsense: only 4% of the words are English dictionary words", ("real words", "full sentences")),
    "word salad": ("Park the to we went the I and dog ran the of with ball my a green big the under tree sat we "
                   "the for lunch.", "word salad: 5 of 12 word pairs around words like 'the', 'of', 'they' are "
                   "impossible in English (e.g. 'the I'); the word order looks scrambled", ("full sentences",)),
    "off-topic": (GOOD, "off-topic: the essay seems unrelated to the prompt (similarity 0.02, essays on topic are "
                  "usually above 0.15)", ("answer this task", "Read the task again")),
    "copied prompt": (TASK + " " + TASK.lower() + " I agree.", "copied prompt: 30 of the essay's 33 words copy the "
                      "prompt text word for word (100% of the prompt); most of the essay is the prompt",
                      ("own words",)),
}


@pytest.mark.parametrize("tag", sorted(WITHHELD))
def test_withheld_scores_get_one_kind_overall_item_with_advice_and_a_quote(tag):
    text, reason, advice = WITHHELD[tag]
    items = FB.feedback(text, {k: None for k in FB.KINDS}, scales=FB.trait_scales(RUBRIC), prompt_text=TASK,
                        score=None, withheld=reason)
    assert len(items) == 1 and items[0]["trait"] == "overall", items
    it = items[0]
    check_item(it, text)
    c = it["comment"]
    assert c.startswith("There is no score yet") and all(a.lower() in c.lower() for a in advice), c
    assert "your" in c.lower()  # spoken to the student
    if tag == "word salad":
        assert "the I" in it["evidence"], it
    if tag == "copied prompt":
        assert it["evidence"].startswith("Write a letter to your town council"), it
    if tag == "off-topic":
        assert "'Write a letter to your town council about a change...'" in c, c


def test_withheld_empty_essay_says_nothing_was_submitted():
    for text in ("", "   \n "):
        [it] = FB.feedback(text, {"organization": None}, scales=FB.trait_scales(RUBRIC), withheld="empty: the essay "
                           "has no words")
        assert it == {"trait": "overall", "evidence": None, "comment": it["comment"]}
        assert "Nothing was submitted" in it["comment"] and "hand it in" in it["comment"]


# ----------------------------------------------------------------------------- the spell check's dictionary

def test_known_word_knows_inflections_and_frequent_words_and_english_words_is_unchanged():
    for w in ("frisbees", "texting", "smartphones", "recycling", "teenagers", "googled", "selfies", "wifi",
              "stories", "carried", "happier", "running", "Frisbees", "frisbee's"):
        assert known_word(w), w
    for w in ("teh", "thier", "recieve", "definately", "untill", "begining", "occured", "writting", "truely",
              "tryed", "boxs", "lifes", "sayed", "todays", "childs", "makeing"):
        assert not known_word(w), w
    vocab = english_words()
    assert "frisbees" not in vocab and "smartphones" not in vocab and "frisbee" in vocab  # pyspellchecker's list only


def test_spelling_catches_slips_before_the_frequency_list():
    for w, sug in (("teh", "the"), ("thier", "their"), ("recieve", "receive"), ("definately", "definitely"),
                   ("alot", "a lot"), ("dont", "don't"), ("im", "i'm"), ("thats", "that's")):
        assert FB.spelling(w) == (True, sug), (w, FB.spelling(w))
    for w in ("frisbees", "texting", "smartphones", "recycling", "teenagers", "its", "well", "were"):
        assert FB.spelling(w) == (False, None), w
    flagged = {w for w in WORD.findall(TYPOS) if w[:1].islower() and FB.spelling(w)[0]}
    assert flagged == {"teh", "freinds", "definately", "recieve", "untill", "alot", "dont"}, flagged
