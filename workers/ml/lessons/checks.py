"""Checks every plan passes before it is returned as passed, whatever wrote it (the library and a small
model, a bigger configured model, or a person: the labelled set in ``workers/ml/evaluation/data``).

Each check gives ``{"ok": bool, ...details}``; ``run_checks`` returns them with a list of reasons a
teacher can read. The thresholds that are fitted (the on-topic similarity) live in
``check_thresholds.json``, written by ``python -m workers.ml.evaluation.lesson_checks --fit``.
"""
from __future__ import annotations

import functools
import json
import os
import re

import numpy as np

from workers.ml.lessons import needs as needs_mod
from workers.ml.lessons.parsing import has_degenerate_repetition, starts_with_measurable_verb, words
from workers.ml.lessons.schema import LESSON_SCHEMA, grade_number

THRESHOLDS_PATH = os.path.join(os.path.dirname(__file__), "check_thresholds.json")
CHECK_NAMES = ("schema", "complete", "numbers", "dates_debris", "suitable", "on_topic", "needs", "repetition",
               "sourced_facts", "objective_verbs")

_END = re.compile(r"[.!?]['\")]?$")
_TIME = re.compile(r"\b(\d+)(?:\s*|-)(minutes?|mins?|hours?|hrs?)\b", re.I)
_GRADE = re.compile(r"\b(?:grade|year)\s+(\d{1,2}|K)\b|\b(\d{1,2})(?:st|nd|rd|th)[- ]grade", re.I)
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b(?:-\d{2}\b)?")
_MONTH_DAY = re.compile(r"\b(?:January|February|March|April|May|June|July|August|September|October|November|"
                        r"December)\s+\d{1,2}\b")
_DEBRIS = re.compile(
    r"(?:^|\s)\d+[.)](?:\s+\d+[.)])+|\bStep\s+\d+\s*:\s*(?:Step\s+\d+\s*:|$)|^[\s\-*•–—]+$|(?:[-*•]\s*){3,}|"
    r"<\|[^|]*\|>|</?s>|\bassistant\s*:|^\s*(?:Sure|Certainly|Of course)\b[!,.]|\bHere(?:'s| is) (?:the|a|your)\b|"
    r"I hope this helps|Let me know if|As an AI\b|```|\[INST\]|#{2,}", re.I)
_CLAIM = re.compile(r"\b(?:explains?|learns?|tells?(?: \w+)?|teach(?:es)?|adds?|shows?|notes?|reminds?(?: \w+)?) "
                    r"that\s+([^.;]+)", re.I)

# Words unsuited to a school plan unless the teacher's own request is about them: per category, so a
# health lesson on alcohol may say "beer", and a history lesson on a war may say "weapons".
SENSITIVE: dict[str, tuple[str, ...]] = {
    "alcohol": ("alcohol", "alcoholic", "beer", "beers", "wine", "vodka", "whiskey", "whisky", "rum", "liquor",
                "drunk", "tequila", "cocktail", "cocktails"),
    "drugs": ("drug", "drugs", "cocaine", "heroin", "marijuana", "cannabis", "weed", "meth", "overdose", "vape",
              "vaping", "cigarette", "cigarettes", "tobacco", "nicotine"),
    "gambling": ("gamble", "gambling", "casino", "roulette", "bet", "bets", "betting", "poker", "jackpot", "wager"),
    "violence": ("gory", "gore", "goriest", "bloody", "blood", "violent", "violence", "murder", "stab", "injuries",
                 "torture", "weapon", "weapons", "gun", "guns"),
    "sexual": ("sexy", "sexual", "nude", "naked", "porn"),
}


# ordinary classroom words that better-profanity's list also holds (its list is blunt); the library's own
# text must pass the check (tests/fast/ml/lessons/test_planner.py), so a new one shows up there
NOT_PROFANE = frozenset({"orally", "oral"})


@functools.lru_cache(maxsize=1)
def thresholds() -> dict:
    with open(THRESHOLDS_PATH) as fh:
        return json.load(fh)


@functools.lru_cache(maxsize=1)
def _profane() -> tuple[frozenset, tuple]:
    """better-profanity's word list (single words, and phrases), matched on whole words. Its own censor()
    builds every character variant of every word per call: about 0.1 s a sentence, 3 s a plan, measured."""
    import better_profanity

    path = os.path.join(os.path.dirname(better_profanity.__file__), "profanity_wordlist.txt")
    with open(path, encoding="utf-8") as fh:
        entries = [" ".join(words(line)) for line in fh if line.strip()]
    return (frozenset(e for e in entries if e and " " not in e) - NOT_PROFANE,
            tuple(f" {e} " for e in entries if " " in e))


def request_text(req: dict) -> str:
    return " ".join([req.get("topic") or "", req.get("subject") or "", req.get("notes") or "",
                     *(req.get("objectives") or []), *(req.get("standards") or [])])


def _sentences(lesson: dict) -> list[tuple[str, str]]:
    """(where, text) for every sentence-like field."""
    out = [(f"objectives[{i}]", o) for i, o in enumerate(lesson.get("objectives") or [])]
    for s in lesson.get("sections") or []:
        out += [(s.get("name", "?"), a) for a in s.get("activities") or []]
    out += [(f"assessment[{i}]", a) for i, a in enumerate(lesson.get("assessment") or [])]
    out += [(f"differentiation[{i}]", d) for i, d in enumerate(lesson.get("differentiation") or [])]
    for k in ("example", "task"):
        if lesson.get(k):
            out.append((k, lesson[k]))
    return out


def _all_text(lesson: dict) -> list[tuple[str, str]]:
    out = [("title", lesson.get("title") or "")] + [(f"materials[{i}]", m) for i, m in
                                                    enumerate(lesson.get("materials") or [])]
    if lesson.get("guiding_question"):
        out.append(("guiding_question", lesson["guiding_question"]))
    out += [(f"vocabulary[{i}]", v) for i, v in enumerate(lesson.get("vocabulary") or [])]
    return out + _sentences(lesson)


def known_word(word: str, allowed: str) -> bool:
    w = word.lower().strip("'")
    return not w or w in allowed or w.isdigit() or _common(w)


@functools.lru_cache(maxsize=65536)
def _common(w: str) -> bool:
    """An English word (wordfreq's Zipf frequency >= 2, itself or without a plural ending)."""
    from wordfreq import zipf_frequency

    stems = {w, w[:-1] if w.endswith("s") else w, w[:-2] if w.endswith("es") else w}
    return max(zipf_frequency(x, "en") for x in stems) >= 2.0


def check_schema(lesson: dict, req: dict) -> dict:
    import jsonschema

    errs = sorted(jsonschema.Draft202012Validator(LESSON_SCHEMA).iter_errors(lesson), key=lambda e: list(e.path))
    msgs = [f"{'/'.join(map(str, e.path)) or '(plan)'}: {e.message}"[:200] for e in errs[:5]]
    total = sum(s.get("minutes", 0) for s in lesson.get("sections") or [] if isinstance(s, dict))
    if total != req["duration_minutes"]:
        msgs.append(f"the sections' minutes add up to {total}, not {req['duration_minutes']}")
    if list(lesson.get("standards") or []) != list(req.get("standards") or []):
        msgs.append("standards differ from the request's")
    return {"ok": not msgs, "errors": msgs}


def check_complete(lesson: dict, req: dict) -> dict:
    """Nothing cut off: every sentence ends as a sentence does, every short item ends on a known word."""
    allowed = request_text(req).lower()
    cut = [w for w, t in _sentences(lesson) if not _END.search(t.strip())]
    for w, t in [("title", lesson.get("title") or "")] + [(f"materials[{i}]", m) for i, m in
                                                          enumerate(lesson.get("materials") or [])]:
        last = re.findall(r"[A-Za-z']+", t)
        if not t.strip() or (last and not known_word(last[-1], allowed)):
            cut.append(w)
    empty = [s.get("name", "?") for s in lesson.get("sections") or [] if not s.get("activities")]
    empty += [k for k in ("objectives", "materials", "assessment", "differentiation") if not lesson.get(k)]
    return {"ok": not cut and not empty, "cut_off": cut, "empty": empty}


def check_numbers(lesson: dict, req: dict) -> dict:
    """Times and grades in the text agree with the request: a time named in a section fits that section,
    one named anywhere fits the lesson, a grade named is the lesson's."""
    bad = []
    dur = req["duration_minutes"]
    for s in lesson.get("sections") or []:
        for a in s.get("activities") or []:
            for n, unit in _TIME.findall(a):
                mins = int(n) * (60 if unit.lower().startswith("h") else 1)
                if mins > s.get("minutes", 0):
                    bad.append(f"{s.get('name')}: '{n} {unit}' in a {s.get('minutes')}-minute section")
    for where, t in _all_text(lesson):
        if where in ("title",) or where.startswith(("objectives", "assessment", "differentiation", "materials")):
            for n, unit in _TIME.findall(t):
                if int(n) * (60 if unit.lower().startswith("h") else 1) > dur:
                    bad.append(f"{where}: '{n} {unit}' in a {dur}-minute lesson")
        for a, b in _GRADE.findall(t):
            g = (a or b).upper()
            if g != "K" and int(g) != grade_number(req["grade_level"]) and g not in request_text(req):
                bad.append(f"{where}: grade {g} named in a grade {req['grade_level']} lesson")
    return {"ok": not bad, "contradictions": bad[:10]}


def check_dates_debris(lesson: dict, req: dict) -> dict:
    """No year or date the teacher did not give, and no list numbering, bullets or chat debris in the text."""
    given = request_text(req)
    dates, debris = [], []
    for where, t in _all_text(lesson):
        for m in _YEAR.finditer(t):
            if m.group(1) not in given:
                dates.append(f"{where}: '{m.group(0)}'")
        for m in _MONTH_DAY.finditer(t):
            if m.group(0) not in given:
                dates.append(f"{where}: '{m.group(0)}'")
        m = _DEBRIS.search(t)
        if m:
            debris.append(f"{where}: '{m.group(0).strip()[:30]}'")
    return {"ok": not dates and not debris, "dates": dates[:10], "debris": debris[:10]}


def unsuitable(text: str, req: dict) -> list[str]:
    """What in ``text`` is not suited to school: better-profanity's word list, and alcohol, drugs, gambling,
    violence or sexual words unless the teacher's request is about that subject."""
    given = set(words(request_text(req)))
    ws = set(words(text))
    found = [f"{cat} ({', '.join(sorted(ws & set(bad)))})" for cat, bad in SENSITIVE.items()
             if ws & set(bad) and not given & set(bad)]
    single, phrases = _profane()
    allowed = {w for cat, bad in SENSITIVE.items() if given & set(bad) for w in bad}
    own = [w for w in words(text) if w not in given and w not in allowed]
    joined = f" {' '.join(own)} "
    hit = sorted(set(own) & single) + [p.strip() for p in phrases if p in joined]
    if hit:
        found.append(f"profanity ({', '.join(hit[:3])})")
    return found


def check_suitable(lesson: dict, req: dict) -> dict:
    found = [f"{where}: {f}" for where, t in _all_text(lesson) for f in unsuitable(t, req)]
    return {"ok": not found, "found": found[:10]}


def section_similarities(lesson: dict, req: dict, encoder) -> list[tuple[str, float]]:
    secs = [s for s in lesson.get("sections") or [] if s.get("activities")]
    if not secs:
        return []
    topic = f"{req['topic']} ({req['subject']})"
    embs = np.asarray(encoder.embed([topic] + [" ".join(s["activities"]) for s in secs]), dtype=np.float64)
    embs /= np.maximum(np.linalg.norm(embs, axis=1, keepdims=True), 1e-9)
    sims = embs[1:] @ embs[0]
    return [(s["name"], float(x)) for s, x in zip(secs, sims)]


def check_on_topic(lesson: dict, req: dict, encoder, threshold: float | None = None) -> dict:
    """Every section about the topic: the MiniLM cosine of each section's text to the topic, at least the
    threshold fitted on the labelled set."""
    th = thresholds()["on_topic_min_section"] if threshold is None else threshold
    sims = section_similarities(lesson, req, encoder)
    off = [f"{n} ({s:.2f})" for n, s in sims if s < th]
    low = min(sims, key=lambda x: x[1]) if sims else ("", 0.0)
    return {"ok": bool(sims) and not off, "off_topic": off, "lowest": {"section": low[0], "similarity": round(low[1], 3)},
            "threshold": th}


def check_needs(lesson: dict, req: dict) -> dict:
    missing = needs_mod.unaddressed(req.get("notes") or "", list(lesson.get("differentiation") or []))
    return {"ok": not missing, "named": [n.label for n in needs_mod.needs_in(req.get("notes") or "")],
            "not_addressed": missing}


def check_repetition(lesson: dict, req: dict) -> dict:
    """No looping text in any part, no sentence twice, and across the plan no 6-word run more than three
    times once the names a plan rightly repeats (the topic, the guiding question, the vocabulary) are set
    aside."""
    parts = [w for w, t in _all_text(lesson) if has_degenerate_repetition(t)]
    every = [t for _, t in _sentences(lesson)]
    dupes = sorted({t for t in every if every.count(t) > 1})
    whole = " ".join(every)
    names = [req.get("topic") or "", lesson.get("guiding_question") or "", ", ".join(lesson.get("vocabulary") or [])]
    for n in sorted((x for x in names if len(x) > 3), key=len, reverse=True):
        whole = re.sub(re.escape(n), " ", whole, flags=re.I)
    if has_degenerate_repetition(whole, n=6, max_count=3, min_unique_ratio=0.0):
        parts.append("plan")
    return {"ok": not parts and not dupes, "parts": parts, "duplicates": dupes[:5]}


def check_sourced_facts(lesson: dict, req: dict) -> dict:
    """Facts come from the teacher's input or stay generic: a stated claim ("explains that ...", "learn that
    ...") naming something the request does not (a proper name, a number) is an invented fact."""
    given = request_text(req) + " " + (lesson.get("title") or "")
    given_l = given.lower()
    found = []
    for where, t in _sentences(lesson):
        for m in _CLAIM.finditer(t):
            clause = m.group(1)
            names = [n for n in re.findall(r"\b([A-Z][a-z]{2,})\b", clause) if n.lower() not in given_l]
            nums = [n for n in re.findall(r"\b\d[\d,.]*\b", clause) if n not in given]
            if names or nums:
                found.append(f"{where}: '{clause[:60]}' ({', '.join(names + nums)})")
    return {"ok": not found, "unsourced": found[:10]}


def check_objective_verbs(lesson: dict, req: dict) -> dict:
    bad = [o for o in lesson.get("objectives") or [] if not starts_with_measurable_verb(o)]
    return {"ok": not bad, "failing": bad}


REASONS = {
    "schema": "the plan does not match the lesson schema",
    "complete": "text is cut off or a part is empty",
    "numbers": "times or grades contradict the request",
    "dates_debris": "invented dates or list/chat debris",
    "suitable": "content not suitable for school",
    "on_topic": "a section is off the topic",
    "needs": "needs in the notes are not addressed",
    "repetition": "repetitive text",
    "sourced_facts": "facts not given by the teacher",
    "objective_verbs": "an objective does not start with a measurable verb",
}


def run_checks(lesson: dict, req: dict, encoder, on_topic_threshold: float | None = None) -> tuple[dict, list[str]]:
    """Every check on one plan: (checks, reasons); ``checks["passed"]`` is True only when all hold."""
    checks = {
        "schema": check_schema(lesson, req),
        "complete": check_complete(lesson, req),
        "numbers": check_numbers(lesson, req),
        "dates_debris": check_dates_debris(lesson, req),
        "suitable": check_suitable(lesson, req),
        "on_topic": check_on_topic(lesson, req, encoder, on_topic_threshold),
        "needs": check_needs(lesson, req),
        "repetition": check_repetition(lesson, req),
        "sourced_facts": check_sourced_facts(lesson, req),
        "objective_verbs": check_objective_verbs(lesson, req),
    }
    reasons = [REASONS[k] for k in CHECK_NAMES if not checks[k]["ok"]]
    for k, detail in (("needs", "not_addressed"), ("on_topic", "off_topic"), ("suitable", "found")):
        if not checks[k]["ok"] and checks[k].get(detail):
            reasons.append(f"{k}: " + "; ".join(checks[k][detail])[:200])
    checks["passed"] = not any(not checks[k]["ok"] for k in CHECK_NAMES)
    return checks, reasons
