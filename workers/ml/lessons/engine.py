"""LessonEngine: plans built by code from the lesson library, the model filling short slots under a schema.

For each request: a structure is chosen from the library (``library.choose_structure``) and its phases
get their minutes by arithmetic; the language engine (``workers.ml.llm``: llama.cpp, vLLM or an
OpenAI-compatible server) fills the slots (title, guiding question, key vocabulary, an example, the
students' task, objectives when the teacher gave none) in one batched call for every plan, constrained to
the slots' JSON schema; each slot is then screened (on topic by MiniLM similarity, English words, nothing
unsuited to school, not copied from the prompt's worked example) and a slot that fails is repaired with
generic text built from the request (reported in ``checks.repaired_slots``). The plan is assembled from
the library's activity templates, the teacher's notes become differentiation, and the checks
(``checks.py``) run on it. A plan that fails a check is regenerated (another seed); one still failing
comes back with ``needs_review: true`` and the reasons, never as passed.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field

import numpy as np

from workers.ml.lessons import checks as chk
from workers.ml.lessons import library, needs, slots
from workers.ml.lessons.render import to_markdown
from workers.ml.lessons.schema import normalize_request, validate_lesson_request

log = logging.getLogger(__name__)

ENGINE_VERSION = "lessons-2"
# a slot is kept when its MiniLM cosine to the topic is at least this (vocabulary terms: the lower one)
SLOT_MIN_SIMILARITY = 0.25
TERM_MIN_SIMILARITY = 0.15
MAX_UNKNOWN_WORDS = 0.15
# a space before punctuation, an empty clause, or a sentence ending on a word that cannot end one
_MALFORMED = re.compile(r"\s[,.;:?]|,\s*[,.?]|\b(?:a|an|the|of|in|on|to|and|or|with|for|by|from|at|as|is|are|that)[.?]?$",
                        re.I)


def _seed(*parts) -> int:
    h = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:4], "big")


_KEEP_CAPITAL = re.compile(r"^(?:[A-Z]{2,}|[A-Z][a-z]+'s|English|French|Spanish|German|Italian|Chinese|Japanese|"
                           r"Latin|Greek|Roman|American|British|European|African|Asian|Native|Arabic|Russian|"
                           r"January|February|March|April|May|June|July|August|September|October|November|"
                           r"December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)$")


def _topic_phrase(topic: str) -> str:
    """The topic as it reads mid-sentence: "Photosynthesis" -> "photosynthesis", "The water cycle" -> "the water
    cycle"; kept as typed where another word is capitalised ("Causes of World War I") or the first word is a
    name, a language or a date word ("French greetings", "Newton's laws")."""
    first, *rest = topic.split(" ")
    if _KEEP_CAPITAL.match(first) or any(w[:1].isupper() for w in rest):
        return topic
    return first[:1].lower() + first[1:] + "".join(" " + w for w in rest)


def fallback_slots(req: dict) -> dict:
    """Generic slot text built from the request alone: what a repaired slot becomes."""
    t = _topic_phrase(req["topic"])
    g = "kindergarten" if req["grade_level"] == "K" else f"grade {req['grade_level']}"
    words = [w for w in chk.words(req["topic"]) if len(w) > 3 and not w.isdigit()][:3]
    return {
        "title": f"{req['topic']}: a {g} {req['subject']} lesson",
        "guiding_question": f"What are the key ideas of {t}, and how can we explain them?",
        "vocabulary": words or ["key idea"],
        "example": f"Choose one clear example of {t} from the class's textbook and work through it step by step.",
        "task": f"Complete a short task on {t} that shows the key ideas in their own words.",
        "objectives": [f"Explain the key ideas of {t} in their own words.",
                       f"Apply what they learned about {t} to a short task."],
    }


@dataclass
class _Plan:
    idx: int
    req: dict
    attempt: int = 0
    slots: dict = field(default_factory=dict)
    repaired: list = field(default_factory=list)
    engine_error: str | None = None


class LessonEngine:
    """``generate(requests, seed)`` returns one result dict per request, in order."""

    def __init__(self, llm, encoder=None, *, max_attempts: int = 2, temperature: float = 0.7,
                 on_topic_threshold: float | None = None):
        self.llm = llm
        self._encoder = encoder
        self.max_attempts = max(1, max_attempts)
        self.temperature = temperature
        self.on_topic_threshold = on_topic_threshold
        self.model_version = f"{llm.model_version}+{ENGINE_VERSION}"
        self.last_stats: dict = {}

    @classmethod
    def load(cls, **kw) -> "LessonEngine":
        from workers.ml.llm.registry import get_engine

        return cls(get_engine(), **kw)

    def warm_up(self) -> None:
        """One short plan through the engine, the checks and the encoder; raises when any part is broken
        (a worker then fails at start, not on a teacher's first plan)."""
        out = self.generate([{"topic": "Warm-up", "subject": "Science", "grade_level": "5", "duration_minutes": 30}],
                            seed=1)[0]
        if out.get("lesson") is None:
            raise RuntimeError(f"lesson engine warm-up failed: {out.get('warnings')}")

    @property
    def encoder(self):
        if self._encoder is None:
            from workers.ml.lessons.topic_encoder import load_encoder

            self._encoder = load_encoder()
        return self._encoder

    # ------------------------------------------------------------------ public
    def generate(self, requests: list[dict], seed: int = 0) -> list[dict]:
        t0 = time.perf_counter()
        s0 = self.llm.stats.as_dict()
        results: list[dict | None] = [None] * len(requests)
        plans = []
        for i, raw in enumerate(requests):
            errs = validate_lesson_request(raw)
            if errs:
                results[i] = {"lesson": None, "markdown": "", "model_version": self.model_version,
                              "warnings": ["invalid request: " + "; ".join(f"{e['field']}: {e['message']}" for e in errs)],
                              "checks": {"passed": False}, "needs_review": True, "errors": errs}
            else:
                plans.append(_Plan(idx=i, req=normalize_request(raw)))
        best: dict[int, tuple] = {}
        tries: dict[int, int] = {}
        todo = plans
        first_pass = 0
        for attempt in range(self.max_attempts):
            if not todo:
                break
            for p in todo:
                p.attempt, p.repaired, p.engine_error = attempt, [], None
            self._fill_slots(todo, seed)
            again = []
            for p in todo:
                lesson = assemble(p.req, p.slots)
                checks, reasons = chk.run_checks(lesson, p.req, self.encoder, self.on_topic_threshold)
                n_failed = sum(1 for k in chk.CHECK_NAMES if not checks[k]["ok"])
                tries[p.idx] = attempt + 1
                if attempt == 0 and not n_failed:
                    first_pass += 1
                if p.idx not in best or n_failed < best[p.idx][0]:
                    best[p.idx] = (n_failed, lesson, checks, reasons, list(p.repaired), attempt, p.engine_error)
                if n_failed:
                    again.append(p)
            todo = again
        for idx, (n_failed, lesson, checks, reasons, repaired, attempt, err) in best.items():
            checks.update(attempts=tries[idx], kept_attempt=attempt + 1, repaired_slots=repaired, engine=self.llm.name)
            warns = []
            if repaired:
                warns.append("generic text used for: " + ", ".join(repaired))
            if err:
                warns.append(f"the language engine failed ({err}); every slot is generic text")
            if n_failed:
                warns.append(f"checks still failing after {tries[idx]} attempt(s): " + "; ".join(reasons))
            results[idx] = {"lesson": lesson, "markdown": to_markdown(lesson, review=reasons if n_failed else None),
                            "model_version": self.model_version, "warnings": warns, "checks": checks,
                            "needs_review": bool(n_failed), "review_reasons": reasons if n_failed else []}
        s1 = self.llm.stats.as_dict()
        self.last_stats = {"seconds": time.perf_counter() - t0, "plans": len(plans),
                           "passed_first_attempt": first_pass,
                           "new_tokens": s1["completion_tokens"] - s0["completion_tokens"],
                           "prompt_tokens": s1["prompt_tokens"] - s0["prompt_tokens"],
                           "engine_seconds": s1["seconds"] - s0["seconds"]}
        return results  # type: ignore[return-value]

    # --------------------------------------------------------------- internals
    def _fill_slots(self, plans: list[_Plan], seed: int) -> None:
        """One engine call for every plan's slots, then the screen; a failed slot is repaired."""
        import jsonschema

        reqs = [slots.request_for(p.req, _seed(seed, p.attempt, p.req["topic"], p.req["subject"], p.req["grade_level"],
                                               p.req["duration_minutes"]), temperature=self.temperature)
                for p in plans]
        outs = self.llm.generate(reqs)
        for p, gr, out in zip(plans, reqs, outs):
            data = out.data if isinstance(out.data, dict) else None
            if data is not None and list(jsonschema.Draft202012Validator(gr.schema).iter_errors(data)):
                data = None
            if data is None:
                p.engine_error = out.error or f"no valid reply ({out.finish_reason})"
                data = {}
            p.slots = slots.clean(data) if data else {}
        self._screen(plans)

    def _screen(self, plans: list[_Plan]) -> None:
        texts: list[str] = []
        spans = []
        for p in plans:
            fb = fallback_slots(p.req)
            s = p.slots
            items = [("title", s.get("title")), ("guiding_question", s.get("guiding_question")),
                     ("example", s.get("example")), ("task", s.get("task"))]
            items += [("vocabulary", t) for t in s.get("vocabulary") or []]
            items += [("objectives", o) for o in s.get("objectives") or []]
            start = len(texts)
            texts.append(f"{p.req['topic']} ({p.req['subject']})")
            texts += [v or "" for _, v in items]
            spans.append((p, fb, items, start))
        embs = np.asarray(self.encoder.embed(texts), dtype=np.float64) if texts else np.zeros((0, 1))
        embs /= np.maximum(np.linalg.norm(embs, axis=1, keepdims=True), 1e-9)
        shot = slots.shot_reply()
        for p, fb, items, start in spans:
            topic = embs[start]
            kept: dict = {"vocabulary": [], "objectives": []}
            for k, (key, value) in enumerate(items):
                sim = float(embs[start + 1 + k] @ topic)
                ok = bool(value) and self._slot_ok(key, value, sim, p.req, shot)
                if key in ("vocabulary", "objectives"):
                    if ok:
                        kept[key].append(value)
                elif ok:
                    kept[key] = value
            for key in ("title", "guiding_question", "example", "task"):
                if key not in kept:
                    kept[key] = fb[key]
                    p.repaired.append(key)
            if len(kept["vocabulary"]) < 2:
                kept["vocabulary"] = list(dict.fromkeys(kept["vocabulary"] + fb["vocabulary"]))
                p.repaired.append("vocabulary")
            if p.req["objectives"]:
                kept.pop("objectives")
            elif len(kept["objectives"]) < 2:
                kept["objectives"] = list(dict.fromkeys(kept["objectives"] + fb["objectives"]))[:3]
                p.repaired.append("objectives")
            p.slots = kept

    @staticmethod
    def _slot_ok(key: str, value: str, sim: float, req: dict, shot: dict) -> bool:
        given = chk.request_text(req).lower()
        copied = value in (shot.get(key) if isinstance(shot.get(key), list) else [shot.get(key)])
        if copied and value.lower() not in given:
            return False
        if sim < (TERM_MIN_SIMILARITY if key == "vocabulary" else SLOT_MIN_SIMILARITY):
            return False
        if _MALFORMED.search(value):
            return False
        ws = [w for w in chk.words(value) if w.isalpha()]
        unknown = [w for w in ws if not chk.known_word(w, given)]
        if ws and len(unknown) / len(ws) > MAX_UNKNOWN_WORDS:
            return False
        return not chk.unsuitable(value, req)


def assemble(req: dict, s: dict) -> dict:
    """The plan, from the library and the slots; minutes by arithmetic, standards as given."""
    structure = library.choose_structure(req)
    topic = _topic_phrase(req["topic"])
    values = {"topic": topic, "question": s["guiding_question"], "terms": ", ".join(s["vocabulary"]),
              "example": s["example"], "task": s["task"],
              "grade": "kindergarten" if req["grade_level"] == "K" else f"grade {req['grade_level']}"}
    sections, materials = [], []
    for phase, (name, minutes) in zip(structure.phases, library.phase_minutes(structure, req["duration_minutes"])):
        acts = library.activities_for(phase, minutes)
        sections.append({"name": name, "minutes": minutes, "activities": [library.fill(a.text, values) for a in acts]})
        materials += [library.fill(m, values) for a in acts for m in a.materials]
    objectives = list(req["objectives"]) or list(s["objectives"])
    first = objectives[0].rstrip(".")
    return {
        "title": s["title"],
        "grade_level": req["grade_level"],
        "subject": req["subject"],
        "duration_minutes": req["duration_minutes"],
        "structure": structure.name,
        "guiding_question": s["guiding_question"],
        "vocabulary": list(s["vocabulary"]),
        "example": s["example"],
        "task": s["task"],
        "objectives": objectives,
        "materials": list(dict.fromkeys(materials)),
        "sections": sections,
        "assessment": [
            f"Exit ticket on \"{s['guiding_question']}\": sort the answers into secure, nearly there and not yet, "
            "and plan the next lesson from them.",
            f"During practice, note which students can already do this: {first[0].lower() + first[1:]}.",
        ],
        "differentiation": needs.differentiation(req, values),
        "standards": list(req["standards"]),  # copied from the request, never generated
    }
