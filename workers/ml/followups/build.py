"""Next steps for one student, from her graded essay: strengths, what to work on, practice built from her text.

    build(text, rubric, scores) -> {"strengths": [...], "next_steps": [...], "revision_target": {...},
                                    "exercises": [...]}

`scores`: the result that counts (the teacher's override wherever she gave one): {"score", "traits"}.
Everything is made by code from the essay itself (feedback.analyse: its sentences, misspellings,
linking words, vague and repeated words): no score is invented or changed, every quote is an exact
substring of the essay, and no other text than the student's and these templates ever appears. The
embedded language model (135M) is not asked to write any of it: at that size it invents facts
(docs/lessons.md); a bigger configured model could fill short slots later, under the same checks.

- strengths: the one or two traits highest on their own scales that have something good to quote;
- next_steps: the one or two lowest traits, each a concrete target on a quoted sentence
  ("Rewrite ... so that ..."); the first is the revision target;
- exercises: two or three for the first next step's trait, each made of the student's own words
  (her misspelled words to correct, her longest sentence to split, a sentence to link, her claim to
  support), with an answer or model answer for the teacher.
A rubric without traits is read as its holistic score spread over the kinds the essay shows most
need of (conventions, organization, content, sentence fluency, word choice).
"""
from __future__ import annotations

import re

from workers.ml.grading import feedback as FB

VERSION = "followup-rules-v1"
TITLES = {"organization": "Organization", "conventions": "Conventions", "word_choice": "Word choice",
          "sentence_fluency": "Sentence fluency", "content": "Ideas and evidence", "voice": "Voice",
          "prompt_adherence": "Answering the task", "narrativity": "Storytelling", "language": "Language",
          "style": "Style"}
# a few plain, exact words for the vague ones (word choice exercises); the answer offers them
BETTER = {"good": "helpful, useful, kind, strong", "bad": "harmful, unfair, careless, weak",
          "thing": "idea, reason, event, object", "things": "ideas, reasons, events, objects",
          "stuff": "belongings, tasks, materials, ideas", "nice": "friendly, pleasant, generous, calm",
          "lot": "many, much, often, plenty", "really": "truly, clearly (or leave it out)",
          "very": "(leave it out, or choose a stronger word: tiny, huge, thrilled)", "big": "large, major, huge, serious",
          "okay": "fair, acceptable, safe", "ok": "fair, acceptable, safe"}
LINKS = ("Also,", "However,", "As a result,", "For example,", "Because of this,")
# feedback's next steps (feedback._next_step) in short sentences a young writer reads easily
PLAIN_TODO = {
    "follow it with a closing sentence": "Add a last sentence after it. Sum up your main point",
    "link it to the point before it": "Start it with a linking word like 'also' or 'however'",
    "make it state your main point": "Make it say your main point clearly",
    "read it aloud and check": "Read it aloud. Check each comma, capital letter and spelling",
    "replace '": None,  # kept: it names the word to replace
    "replace a general or repeated word": "Change one general word to a more exact one",
    "split it into two clear sentences": "Split it into two clear sentences",
    "join it to the sentence next to it": "Join it to the next sentence with 'because', 'which' or 'but'",
    "add a reason or a specific example": "Add a reason or a real example after it",
    "say it the way you would say it": "Say it the way you would say it to your reader, and say why",
    "make it answer the task directly": "Make it answer the task in your own words",
    "connect it to what came before": "Connect it to what came before with 'then' or 'after that'",
}
# a strength of each kind, said simply (the evidence is feedback's: a quote of the essay)
PLAIN_STRENGTH = {
    "organization": "You use linking words. They help your reader follow your ideas, as here",
    "conventions": "Your sentences are easy to read. They start with capitals and end with a mark, as here",
    "content": "You back up your point with a reason or an example, as here",
    "word_choice": "You pick exact, strong words, as here",
    "sentence_fluency": "Your sentences have different lengths and starts, as here",
    "voice": "You sound like yourself. Your reader hears your view, as here",
    "prompt_adherence": "You answer the task, as here",
    "narrativity": "Your story moves in order, as here",
    "language": "Your sentences are easy to read, as here",
    "style": "Your sentences have different lengths and starts, as here",
}
# a strong writer (her essay reads at grade ADVANCED or above) gets feedback's own fuller sentences, and where
# what we wrote still reads more than two grades below her essay, a harder step in each exercise
ADVANCED = 9.0
CHALLENGE = ("Challenge: afterwards, explain in one sentence how your revision strengthens the logical progression, "
             "the precision and the persuasiveness of the surrounding paragraph.")
_WS = re.compile(r"\s+")
_QUOTED = re.compile(r"\"([^\"]{3,})\"")
GRADE_SLACK = 2.0  # what we write reads within this many grades of the student's own essay (checks.py)


def _name(trait: str) -> str:
    kind = FB.trait_kind(trait)
    return TITLES.get(kind or "", trait.replace("_", " ").capitalize())


def _level(value, scale) -> float | None:
    return FB.scale_level(value, scale)


def _sentence(e: dict, i: int | None) -> str | None:
    """Sentence i of the essay, exactly as written (None where there is none)."""
    if i is None or i < 0 or i >= len(e["_sents"]):
        return None
    a, b = e["_sents"][i]
    return e["_text"][a:b]


def _plain(e: dict, idx) -> int | None:
    """The first sentence in idx that is body text (not a salutation or sign-off) and 6-40 words long."""
    for i in idx:
        if not e["_aside"][i] and 6 <= e["sent_lens"][i] <= 40:
            return i
    return next((i for i in idx if not e["_aside"][i]), None)


def _first_claim(e: dict) -> int | None:
    cues = ("think", "believe", "should", "opinion", "feel", "must", "agree")
    idx = [i for i, ws in enumerate(e["_slower"]) if any(c in ws for c in cues)]
    return _plain(e, idx) if idx else _plain(e, range(len(e["_sents"])))


def _ex(trait: str, instructions: str, answer: str, source: str | None) -> dict:
    return {"trait": trait, "instructions": f"{_name(trait)}: {instructions}", "answer": answer, "source": source}


def _split_answer(sentence: str) -> str:
    """A long sentence split where a joining word or comma sits nearest its middle (a model answer)."""
    words = sentence.split()
    mid = len(words) // 2
    cands = [k for k, w in enumerate(words) if 2 <= k <= len(words) - 3
             and (w.lower() in ("and", "but", "so", "because", "which", "then") or words[k - 1].endswith(","))]
    if not cands:
        k = mid
        first, second = words[:k], words[k:]
    else:
        k = min(cands, key=lambda c: abs(c - mid))
        first, second = words[:k], words[k:]
        if second and second[0].lower() in ("and", "but", "so", "then"):
            second = second[1:]
    head = " ".join(first).rstrip(",;") + "."
    tail = " ".join(second)
    tail = tail[:1].upper() + tail[1:] if tail else tail
    return f"{head} {tail}".strip()


def _fixes(e: dict) -> dict:
    """The essay's likely misspellings with their corrections (feedback.analyse)."""
    return {w: f for w, _n, f in e["misspelled_examples"] if f}


def _lower_first(s: str) -> str:
    """A sentence continued after a linking word: its first letter lower-cased, unless it is 'I' or a name."""
    first = s.split(" ", 1)[0]
    if first in ("I", "I'm", "I've", "I'd", "I'll") or (first[1:2].isupper() if len(first) > 1 else first == "I"):
        return s
    return s[:1].lower() + s[1:]


def _fix_sentence(s: str, fixes: dict | None = None) -> str:
    for w, fix in (fixes or {}).items():
        s = re.sub(rf"\b{re.escape(w)}\b", fix, s)
    s = re.sub(r"\bi\b", "I", s)
    s = s[:1].upper() + s[1:]
    return s if re.search(r"[.!?]['\"\u201d)]*$", s) else s + "."


def conventions_exercises(trait: str, e: dict) -> list[dict]:
    out = []
    miss = [(w, fix) for w, _c, fix in e["misspelled_examples"] if fix]
    if miss:
        words = ", ".join(f"'{w}'" for w, _ in miss)
        src = next((_sentence(e, i) for i, ws in enumerate(e["_slower"]) if miss[0][0].lower() in ws), None)
        out.append(_ex(trait, f"These words from your essay are spelled wrong: {words}. Write each one the right "
                              "way. Then use one in a new sentence.", "; ".join(f"{w} -> {fix}" for w, fix in miss), src))
    low = next((i for i, (a, _b) in enumerate(e["_sents"]) if e["_text"][a:a + 1].islower() and not e["_aside"][i]), None)
    if low is None and e["lowercase_i"]:
        low = next((i for i, ws in enumerate(e["_slower"]) if "i" in ws), None)
    if low is not None:
        s = _sentence(e, low)
        out.append(_ex(trait, f"Copy this sentence. Fix the capital letters, the spelling and the end mark: \"{s}\"",
                       _fix_sentence(s, dict(miss)), s))
    i = FB._longest(e)
    s = _sentence(e, i)
    if s and len(out) < 3:
        out.append(_ex(trait, f"Read this sentence aloud. Mark where you pause. Check each comma, capital letter "
                              f"and full stop: \"{s}\"", "A comma where the reader pauses. A capital at the start. "
                              "A full stop at the end. Each word spelled right.", s))
    return out


def fluency_exercises(trait: str, e: dict) -> list[dict]:
    out = []
    i = FB._longest(e)
    s = _sentence(e, i)
    if s and e["sent_lens"][i] >= 18:
        out.append(_ex(trait, f"This sentence is long. Split it into two clear sentences: \"{s}\"",
                       _split_answer(s), s))
    lens = e["sent_lens"]
    pair = next((k for k in range(len(lens) - 1) if lens[k] <= 8 and lens[k + 1] <= 8
                 and not e["_aside"][k] and not e["_aside"][k + 1]), None)
    if pair is not None:
        a, b = _sentence(e, pair), _sentence(e, pair + 1)
        joined = a.rstrip(".!? ") + ", because " + b[:1].lower() + b[1:]
        out.append(_ex(trait, f"Join these two short sentences with 'because', 'but' or 'which': \"{a}\" \"{b}\"",
                       f"For example: {joined}", a))
    k = _plain(e, range(len(lens)))
    if k is not None and len(out) < 2:
        s2 = _sentence(e, k)
        out.append(_ex(trait, f"Write this sentence again. Start it a new way, for example with 'When', 'Because' "
                              f"or 'After': \"{s2}\"", "Any new start that keeps the meaning.", s2))
    return out


def organization_exercises(trait: str, e: dict) -> list[dict]:
    out = []
    lens = e["sent_lens"]
    body = [k for k in range(1, len(lens)) if not e["_aside"][k]]
    k = next((k for k in body if not FB._links_in(e["_slower"][k][:3]) and 5 <= lens[k] <= 35), None)
    if k is not None:
        s = _sentence(e, k)
        out.append(_ex(trait, f"Start this sentence with a word that links it to the one before, like "
                              f"{', '.join(x.rstrip(',') for x in LINKS[:2])} or So: \"{s}\"",
                       f"For example: {LINKS[0]} {_lower_first(s)}", s))
    claim = _first_claim(e)
    c = _sentence(e, claim)
    if c:
        if not e["conclusion_cue"]:
            out.append(_ex(trait, f"Your essay needs an end. Write a last sentence that says your main point once "
                                  f"more. It was: \"{c}\"",
                           "For example: In conclusion, " + _lower_first(_fix_sentence(c, _fixes(e))).rstrip(".!?")
                           + ", for the reasons above.", c))
        else:
            out.append(_ex(trait, f"Write a first sentence for your second paragraph. It should tell the reader how "
                                  f"the paragraph backs up your main point: \"{c}\"",
                           "A sentence that names one reason, such as 'One reason is that ...'.", c))
    return out


def content_exercises(trait: str, e: dict) -> list[dict]:
    out = []
    c = _sentence(e, _first_claim(e))
    if c:
        out.append(_ex(trait, f"Here is your main point: \"{c}\" Write two reasons for it. Start one with "
                              "'because'. Add one real example.",
                       "A good answer gives a reason that fits the point (because ...). It adds one real example: a "
                       "person, a place or an event the writer knows.", c))
    u = FB._unsupported(e)
    s = _sentence(e, u)
    if s and s != c:
        out.append(_ex(trait, f"This sentence needs proof. Add a sentence after it with a fact or an example: \"{s}\"",
                       "A new sentence that starts 'For example,' or 'This shows that'. It backs up the point with "
                       "something real.", s))
    if len(out) < 2 and c:
        out.append(_ex(trait, f"Some people disagree with this: \"{c}\" Write one sentence they might say. Then "
                              "write one sentence that answers them.", "A fair view from the other side. Then a "
                              "reason it does not change the writer's mind.", c))
    return out


def word_choice_exercises(trait: str, e: dict) -> list[dict]:
    out = []
    vague = [w for w in FB.VAGUE if " " not in w and w in e["vague"]]
    for w in vague[:2]:
        i = FB._most(e, [w])
        s = _sentence(e, i)
        if s:
            out.append(_ex(trait, f"Find the word '{w}' in this sentence. Change it to a more exact word: \"{s}\"",
                           f"Words that could fit: {BETTER.get(w, 'a word that says exactly what you mean')}.", s))
    top, count = e["top_word"], e["top_count"]
    if top and count >= 4 and len(out) < 3:
        i = FB._most(e, [top])
        s = _sentence(e, i)
        if s:
            out.append(_ex(trait, f"You used '{top}' {count} times. Write this sentence again without it. Use "
                                  f"another word: \"{s}\"", f"Any sentence that keeps the meaning without '{top}'.", s))
    return out


def voice_exercises(trait: str, e: dict) -> list[dict]:
    s = _sentence(e, _first_claim(e))
    if not s:
        return []
    return [_ex(trait, f"Write this sentence again so it sounds like you talking to your reader. Add why it "
                       f"matters to you: \"{s}\"", "A sentence in the writer's own words with 'I' and a reason, "
                       "such as 'I believe ... because ...'.", s)]


def narrative_exercises(trait: str, e: dict) -> list[dict]:
    lens = e["sent_lens"]
    k = next((k for k in range(1, len(lens)) if not FB._links_in(e["_slower"][k]) and not e["_aside"][k]), None)
    s = _sentence(e, k)
    if not s:
        return []
    return [_ex(trait, f"Add a time word (Then, After that, Later, Suddenly) to show when this happened: \"{s}\"",
                f"For example: After that, {_lower_first(s)}", s)]


EXERCISES = {"conventions": conventions_exercises, "language": conventions_exercises,
             "sentence_fluency": fluency_exercises, "style": fluency_exercises,
             "organization": organization_exercises, "content": content_exercises,
             "prompt_adherence": content_exercises, "word_choice": word_choice_exercises,
             "voice": voice_exercises, "narrativity": narrative_exercises}
NEED_ORDER = ("conventions", "organization", "content", "sentence_fluency", "word_choice")


def _needs(e: dict) -> list[str]:
    """Without rubric traits: the kinds this essay shows most need of, most needed first."""
    score = {"conventions": e["misspelled_total"] + e["lowercase_starts"] + 2 * len(e["unpunctuated"]),
             "organization": (0 if e["conclusion_cue"] else 3) + max(0, 3 - len(e["transitions"])),
             "content": max(0, 2 - sum(e["example_cues"].values())) * 2,
             "sentence_fluency": e["long_sentences"] * 2,
             "word_choice": sum(e["vague"].values())}
    return sorted(NEED_ORDER, key=lambda k: (-score[k], NEED_ORDER.index(k)))


def _target(trait: str, e: dict, advanced: bool = False) -> dict | None:
    """A concrete revision target on a quoted sentence, from feedback's next step for the trait's kind."""
    kind = FB.trait_kind(trait) or trait
    part = FB._next_step(kind if kind in FB.KINDS else "content", e)
    if not part:
        return None
    sentence, ev = part
    m = re.search(r"': (.*)\.$", sentence, re.S) or re.search(r"\.\.\.: (.*)\.$", sentence, re.S)
    todo = m.group(1) if m else "make it clearer and stronger"
    return {"trait": trait, "target": f"Revise this sentence from your essay: \"{ev}\" {todo[:1].upper() + todo[1:]}.",
            "evidence": ev}


def _strength(kind: str, e: dict, advanced: bool = False) -> tuple[str, str] | None:
    good, _issue = FB.comment_parts(kind, e, level=1.0)
    if not good or not good[1]:
        return None
    if advanced:  # feedback's own sentence, which names what works and quotes it
        return good[0], good[1]
    return f"{PLAIN_STRENGTH.get(kind, 'This works well, as here')}: \"{good[1]}\"", good[1]


MAX_SENTENCE = 20.0  # words: beyond this the Flesch-Kincaid sentence term measures missing full stops


def writing_grade(text: str) -> float | None:
    """The Flesch-Kincaid grade of a text of at least 20 words (textstat's counts), its average sentence length
    capped at MAX_SENTENCE words: a run-on essay without full stops is not a grade-20 text (uncapped, dev essays
    measured up to grade 26), else None."""
    import textstat

    words = textstat.lexicon_count(text)
    if words < 20:
        return None
    sentences = max(1, textstat.sentence_count(text))
    return 0.39 * min(words / sentences, MAX_SENTENCE) + 11.8 * textstat.syllable_count(text) / words - 15.59


def our_words(fu: dict) -> str:
    """What we wrote for the student to read: comments, targets and instructions, her quotes taken out
    (the exercises' answers are for the teacher)."""
    parts = [s.get("comment", "") for s in fu.get("strengths") or []]
    parts += [s.get("target", "") for s in fu.get("next_steps") or []]
    parts += [x.get("instructions", "") for x in fu.get("exercises") or []]
    out = []
    for p in parts:
        p = _QUOTED.sub(" ", p)
        p = re.sub(r"'[^']{12,}'", " ", p)  # a quoted sentence in single quotes (feedback's comments)
        p = re.sub(r"\s+", " ", p).strip(" :")
        if p:
            out.append(p if re.search(r"[.!?]$", p) else p + ".")
    return " ".join(out)


def _ranked(e: dict, rubric: dict, scores: dict) -> tuple[list[str], list[str]]:
    """(the one or two weakest traits, the traits to find strengths in), by the scores that count."""
    scale = rubric.get("scale") or {"min": 0, "max": 1}
    traits = [t["name"] for t in rubric.get("traits") or []]
    tscale = {t["name"]: t.get("scale") or scale for t in rubric.get("traits") or []}
    given = scores.get("traits") or {}
    ranked = [t for t in traits if given.get(t) is not None and FB.trait_kind(t)]
    need = _needs(e)  # a tie between traits goes to the one whose kind this essay shows most need of
    ranked.sort(key=lambda t: (_level(given[t], tscale[t]),
                               need.index(FB.trait_kind(t)) if FB.trait_kind(t) in need else len(need), traits.index(t)))
    if not ranked:  # no scored traits: the kinds the essay needs most, under names of their own
        return need[:2], list(reversed(need))[:2]
    weakest = ranked[:2] if len(ranked) > 1 else ranked
    return weakest, [t for t in reversed(ranked) if t not in weakest[:1]][:2]


def _strengths(e: dict, best: list[str], traits: list[str], advanced: bool) -> list[dict]:
    out = []
    for t in best:
        got = _strength(FB.trait_kind(t) or t, e, advanced)
        if got:
            out.append({"trait": t, "comment": got[0], "evidence": got[1]})
        if len(out) == 2:
            return out
    if out:
        return out
    for kind in ("content", "organization", "word_choice", "sentence_fluency", "conventions", "voice"):
        got = _strength(kind, e, advanced)  # something good to say, always: the first kind with a strength
        if got:
            name = next((t for t in traits if FB.trait_kind(t) == kind), kind if not traits else "overall")
            return [{"trait": name, "comment": got[0], "evidence": got[1]}]
    ev = _sentence(e, _first_claim(e))
    if not ev:
        return []
    kind = next((FB.trait_kind(t) for t in traits if FB.trait_kind(t) in ("content", "prompt_adherence", "ideas")), None)
    name = next((t for t in traits if FB.trait_kind(t) == kind), "overall" if traits else "content")
    return [{"trait": name, "comment": f"You answer the task in your own words, as here: \"{ev}\"", "evidence": ev}]


def _exercises(e: dict, weakest: list[str]) -> list[dict]:
    """Two or three exercises for the weakest trait (the next one's too where it has fewer), each once."""
    found: list[dict] = []
    for t in weakest:
        found += [x for x in EXERCISES.get(FB.trait_kind(t) or t, content_exercises)(t, e) if x["source"]]
        if len(found) >= 2:
            break
    seen, unique = set(), []
    for x in found:
        key = _WS.sub(" ", x["instructions"])
        if key not in seen:
            seen.add(key)
            unique.append(x)
    return unique[:3]


def _pitch(out: dict, grade: float | None) -> None:
    """What we wrote reads more than two grades below a strong writer's essay: a harder step in each
    exercise, kept only where it brings the level closer to hers."""
    ours = writing_grade(our_words(out))
    if grade is None or ours is None or ours >= grade - GRADE_SLACK or not out["exercises"]:
        return
    harder = [dict(x, instructions=x["instructions"] + " " + CHALLENGE) for x in out["exercises"]]
    with_challenge = writing_grade(our_words({**out, "exercises": harder}))
    if with_challenge is not None and abs(with_challenge - grade) < abs(ours - grade):
        out["exercises"] = harder


def build(text: str, rubric: dict, scores: dict) -> dict:
    e = FB.analyse(text)
    if not e["_sents"]:
        return {"strengths": [], "next_steps": [], "revision_target": None, "exercises": [],
                "note": "There is no text to work with yet: write your answer to the task first."}
    grade = writing_grade(text)
    advanced = grade is not None and grade >= ADVANCED
    traits = [t["name"] for t in rubric.get("traits") or []]
    weakest, best = _ranked(e, rubric, scores)
    next_steps = []
    for t in weakest:  # each next step on a sentence of its own
        step = _target(t, e, advanced)
        if step and all(step["evidence"] != x["evidence"] for x in next_steps):
            next_steps.append(step)
    out = {"strengths": _strengths(e, best, traits, advanced), "next_steps": next_steps,
           "revision_target": next_steps[0] if next_steps else None, "exercises": _exercises(e, weakest)}
    _pitch(out, grade)
    return out
