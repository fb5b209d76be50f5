"""The retired lesson engine (a decode loop written on transformers, fp32, section by section with repair):
kept only as the baseline `make bench` measures the llama.cpp engine against, in the same run. Not served."""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bench.baselines.legacy_lessons.parsing import (
    has_degenerate_repetition,
    parse_list,
    parse_title,
    repair_objective,
    starts_with_measurable_verb,
    words,
)
from workers.ml.lessons.render import to_markdown
from workers.ml.lessons.schema import SECTIONS, grade_number, normalize_request, section_minutes, validate_lesson_request  # noqa: E501

log = logging.getLogger(__name__)

ENGINE_VERSION = "lessons-1"
SYSTEM = "You are an experienced teacher. Answer briefly and concretely."

# default token budgets per part (scaled by LessonEngine(budget_scale=...))
BUDGETS = {
    "title": 20,
    "objectives": 64,
    "materials": 40,
    "section": 64,
    "assessment": 56,
    "differentiation": 64,
}
ON_TOPIC_THRESHOLD = 0.30


@dataclass
class PartSpec:
    key: str  # "title", "objectives", "materials", "section:Warm-up", "assessment", "differentiation"
    budget: str
    prompt: Callable[[dict, dict], tuple[str, str]]  # (user text, assistant prefill)
    parse: Callable[[str, bool], list[str]]
    min_items: int
    stop: tuple[str, ...] = ("\n\n",)


def _g(req: dict) -> str:
    return "kindergarten" if req["grade_level"] == "K" else f"grade {req['grade_level']}"


def _ctx(req: dict) -> str:
    return f"a {_g(req)} {req['subject']} lesson on {req['topic']}"


def _parse_objectives(text: str, truncated: bool) -> list[str]:
    out = []
    for item in parse_list(text, max_items=6, min_words=3, max_chars=160, truncated=truncated):
        fixed = repair_objective(item)
        if fixed and fixed not in out:
            out.append(fixed.rstrip(".") + ".")
    return out[:4]


def _section_prompt(name: str):
    hints = {
        "Warm-up": "a short warm-up that gets students thinking",
        "Direct instruction": "how the teacher explains and models the key ideas",
        "Guided practice": "what students practise with the teacher's help",
        "Independent practice": "a task students do on their own",
        "Closure": "how the lesson is wrapped up and understanding checked",
    }

    def build(req: dict, st: dict) -> tuple[str, str]:
        return (
            f"Write 2 steps for the {name} ({st['minutes'][name]} minutes) of {_ctx(req)}: "
            f"{hints[name]}. One sentence each.",
            "1. ",
        )

    return build


def _build_parts() -> list[PartSpec]:
    parts = [
        PartSpec(
            "title",
            "title",
            lambda r, st: (f"Write a short, catchy title for {_ctx(r)}. Reply with the title only.", "Title: "),
            lambda t, tr: [x for x in [parse_title(t)] if x],
            1,
            ("\n",),
        ),
        PartSpec(
            "objectives",
            "objectives",
            lambda r, st: (
                f"List 3 learning objectives for {_ctx(r)}. Start each with a verb such as "
                "identify, explain, describe, compare.",
                "1. ",
            ),
            _parse_objectives,
            2,
        ),
        PartSpec(
            "materials",
            "materials",
            lambda r, st: (f"List the materials needed for {_ctx(r)}. Short items only.", "- "),
            lambda t, tr: [
                x.rstrip(".") for x in parse_list(t, max_items=6, min_words=1, max_chars=80, truncated=tr)
            ],
            2,
        ),
    ]
    for name, _ in SECTIONS:
        parts.append(
            PartSpec(
                f"section:{name}",
                "section",
                _section_prompt(name),
                lambda t, tr: parse_list(t, max_items=3, min_words=4, max_chars=240, truncated=tr),
                1,
            )
        )
    parts += [
        PartSpec(
            "assessment",
            "assessment",
            lambda r, st: (f"List 2 ways to check what students learned in {_ctx(r)}.", "1. "),
            lambda t, tr: parse_list(t, max_items=3, min_words=4, max_chars=200, truncated=tr),
            1,
        ),
        PartSpec(
            "differentiation",
            "differentiation",
            lambda r, st: (
                f"Give 2 ways to adapt {_ctx(r)} for students who struggle and for advanced students."
                + (f" Class notes: {r['notes'][:200]}" if r["notes"] else ""),
                "1. ",
            ),
            lambda t, tr: parse_list(t, max_items=3, min_words=4, max_chars=200, truncated=tr),
            1,
        ),
    ]
    return parts


PARTS = _build_parts()


def fallback_items(key: str, req: dict) -> list[str]:
    """Deterministic last-resort text (always reported in warnings)."""
    t, g = req["topic"], _g(req)
    table = {
        "title": [f"{t}: a {g} {req['subject']} lesson"],
        "objectives": [
            f"Identify the key ideas and vocabulary of {t}.",
            f"Explain {t} in their own words with an example.",
            f"Apply what they learned about {t} to a short task.",
        ],
        "materials": ["Whiteboard and markers", "Student notebooks and pencils", f"Handout or visuals on {t}"],
        "section:Warm-up": [f"Ask students what they already know about {t} and list their ideas on the board."],
        "section:Direct instruction": [
            f"Introduce the key ideas and vocabulary of {t} with a worked example, checking understanding as you go."
        ],
        "section:Guided practice": [f"Students work in pairs on examples about {t} "
                                    "while the teacher circulates and gives feedback."],
        "section:Independent practice": [f"Students complete a short task on {t} on their own."],
        "section:Closure": [f"Students share one thing they learned about {t} and answer an exit question."],
        "assessment": [f"Exit ticket: two short questions on {t}.", "Observe and note student answers during practice."],
        "differentiation": [
            f"Support: give struggling students a word bank and a worked example on {t}.",
            f"Extension: give advanced students a harder question or a mini research task on {t}.",
        ],
    }
    return list(table[key])


def _seed(*parts) -> int:
    h = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big") & 0x7FFFFFFFFFFFFFFF


@dataclass
class _Plan:
    req: dict
    idx: int
    attempt: int = 0
    parts: dict = field(default_factory=dict)  # key -> list[str]
    fallback: list = field(default_factory=list)
    repaired: list = field(default_factory=list)
    minutes: dict = field(default_factory=dict)


class LessonEngine:
    """Generates lesson plans for many requests together.

    ``generate(requests, seed)`` returns one result dict per request, in order.
    """

    def __init__(
        self,
        lm,
        encoder=None,
        *,
        budget_scale: float = 1.0,
        max_part_attempts: int = 2,
        max_plan_attempts: int = 2,
        on_topic_threshold: float = ON_TOPIC_THRESHOLD,
        sampling=None,
        max_batch: int | None = None,
        share_prefix: bool = True,
    ):
        from bench.baselines.legacy_lessons.model import SamplingConfig

        self.lm = lm
        self._encoder = encoder
        self.budget_scale = budget_scale
        self.max_part_attempts = max(1, max_part_attempts)
        self.max_plan_attempts = max(1, max_plan_attempts)
        self.on_topic_threshold = on_topic_threshold
        self.sampling = sampling or SamplingConfig()
        # rows (plan parts) decoded together; default: the model's (EDUQ_LESSON_DECODE_BATCH or 16)
        self.max_batch = max_batch or getattr(lm, "max_batch", None) or 8
        # all prompts start with the same system turn: its KV cache is computed once
        self._prefix = lm.chat_prefix(SYSTEM) if share_prefix and hasattr(lm, "chat_prefix") else None
        self.model_version = f"{lm.model_version}+{ENGINE_VERSION}"
        self.last_stats: dict = {}

    @classmethod
    def load(cls, model_path: str | None = None, device: str | None = None, **kw) -> "LessonEngine":
        from bench.baselines.legacy_lessons.model import CausalLM
        from workers.ml.lessons.topic_encoder import load_encoder

        lm = CausalLM.load(model_path=model_path, device=device)
        return cls(lm, load_encoder(), **kw)

    @property
    def encoder(self):
        if self._encoder is None:
            from workers.ml.lessons.topic_encoder import load_encoder

            self._encoder = load_encoder()
        return self._encoder

    # ------------------------------------------------------------------ public
    def generate(self, requests: list[dict], seed: int = 0, max_batch: int | None = None) -> list[dict]:
        """``max_batch`` overrides how many rows decode together for this call (1: one
        sequence at a time)."""
        t0 = time.perf_counter()
        gen0 = self.lm.stats.as_dict() if hasattr(self.lm.stats, "as_dict") else None
        stats0 = (self.lm.stats.new_tokens, self.lm.stats.prompt_tokens, self.lm.stats.steps)
        results: list[dict | None] = [None] * len(requests)
        plans: list[_Plan] = []
        for i, raw in enumerate(requests):
            errs = validate_lesson_request(raw)
            if errs:
                results[i] = {
                    "lesson": None,
                    "markdown": "",
                    "model_version": self.model_version,
                    "warnings": ["invalid request: " + "; ".join(f"{e['field']}: {e['message']}" for e in errs)],
                    "checks": {"passed": False},
                    "errors": errs,
                }
                continue
            req = normalize_request(raw)
            p = _Plan(req=req, idx=i)
            p.minutes = dict(section_minutes(req["duration_minutes"]))
            plans.append(p)

        best: dict[int, tuple] = {}  # idx -> (n_failed, lesson, checks, warnings, plan)
        todo = plans
        for attempt in range(self.max_plan_attempts):
            if not todo:
                break
            for p in todo:
                p.attempt = attempt
                p.parts, p.fallback, p.repaired = {}, [], []
            self._generate_parts(todo, seed, max_batch)
            again = []
            for p in todo:
                lesson = self._assemble(p)
                checks, warns = self._check(p, lesson)
                n_failed = sum(1 for k in ("sections_complete", "repetition", "on_topic", "objective_verbs")
                               if not checks[k]["ok"])
                prev = best.get(p.idx)
                if prev is None or n_failed < prev[0]:
                    best[p.idx] = (n_failed, lesson, checks, warns, p)
                if n_failed and attempt + 1 < self.max_plan_attempts:
                    again.append(p)
            todo = again

        for idx, (n_failed, lesson, checks, warns, p) in best.items():
            checks["attempts"] = p.attempt + 1
            checks["passed"] = n_failed == 0
            if n_failed:
                warns.append(f"quality checks still failing after {self.max_plan_attempts} attempt(s)")
            results[idx] = {
                "lesson": lesson,
                "markdown": to_markdown(lesson),
                "model_version": self.model_version,
                "warnings": warns,
                "checks": checks,
            }
        s = self.lm.stats
        self.last_stats = {
            "seconds": time.perf_counter() - t0,
            "new_tokens": s.new_tokens - stats0[0],
            "prompt_tokens": s.prompt_tokens - stats0[1],
            "decode_steps": s.steps - stats0[2],
            "plans": len(plans),
        }
        if gen0 is not None:
            now = s.as_dict()
            self.last_stats["generation"] = {k: now[k] - gen0[k] for k in now}
        return results  # type: ignore[return-value]

    # --------------------------------------------------------------- internals
    def _budget(self, spec: PartSpec) -> int:
        return max(4, int(round(BUDGETS[spec.budget] * self.budget_scale)))

    def _generate_parts(self, plans: list[_Plan], seed: int, max_batch: int | None = None) -> None:
        """All parts of all plans are independent rows of one continuously batched
        generation (a part's prompt depends only on its request); malformed rows are
        retried (another seed) together in a second generation, then fall back to
        deterministic text. Seeds depend on the request and part, never on the order."""
        from bench.baselines.legacy_lessons.model import GenRequest

        pending = [(p, spec) for spec in PARTS for p in plans
                   if not (spec.key == "objectives" and p.req["objectives"])]
        for part_attempt in range(self.max_part_attempts):
            if not pending:
                break
            rows = []
            for p, spec in pending:
                user, prefill = spec.prompt(p.req, {"minutes": p.minutes})
                rows.append(
                    GenRequest(
                        prompt=self.lm.chat_prompt(SYSTEM, user, prefill),
                        max_new_tokens=self._budget(spec),
                        seed=_seed(seed, p.attempt, part_attempt, spec.key, p.req["topic"],
                                   p.req["subject"], p.req["grade_level"], p.req["duration_minutes"]),
                        stop_strings=spec.stop,
                    )
                )
            outs = self.lm.generate(rows, self.sampling, max_batch=max_batch or self.max_batch,
                                    prefix=self._prefix)
            failed = []
            for (p, spec), out in zip(pending, outs):
                items = spec.parse(out.text, out.finish_reason == "length")
                if len(items) >= spec.min_items:
                    p.parts[spec.key] = items
                    if part_attempt:
                        p.repaired.append(spec.key)
                else:
                    failed.append((p, spec))
            pending = failed
        for p, spec in pending:
            p.parts[spec.key] = fallback_items(spec.key, p.req)
            p.fallback.append(spec.key)

    def _assemble(self, p: _Plan) -> dict:
        r = p.req
        return {
            "title": p.parts["title"][0],
            "grade_level": r["grade_level"],
            "subject": r["subject"],
            "duration_minutes": r["duration_minutes"],
            "objectives": list(r["objectives"]) or p.parts["objectives"],
            "materials": p.parts["materials"],
            "sections": [
                {"name": name, "minutes": p.minutes[name], "activities": p.parts[f"section:{name}"]}
                for name, _ in SECTIONS
            ],
            "assessment": p.parts["assessment"],
            "differentiation": p.parts["differentiation"],
            "standards": list(r["standards"]),  # copied from the request, never generated
        }

    def _check(self, p: _Plan, lesson: dict) -> tuple[dict, list[str]]:
        import textstat

        warns: list[str] = []
        req = p.req
        # 1. completeness
        empty = [s["name"] for s in lesson["sections"] if not s["activities"]]
        for k in ("objectives", "materials", "assessment", "differentiation"):
            if not lesson[k]:
                empty.append(k)
        if not lesson["title"]:
            empty.append("title")
        # 2. repetition
        texts = {
            "title": lesson["title"],
            "objectives": " ".join(lesson["objectives"]),
            "materials": " ".join(lesson["materials"]),
            **{s["name"]: " ".join(s["activities"]) for s in lesson["sections"]},
            "assessment": " ".join(lesson["assessment"]),
            "differentiation": " ".join(lesson["differentiation"]),
        }
        rep_parts = [k for k, v in texts.items() if has_degenerate_repetition(v)]
        whole = " ".join(texts.values())
        if has_degenerate_repetition(whole, n=6, max_count=3, min_unique_ratio=0.0):
            rep_parts.append("plan")
        # 3. on topic
        names = [k for k in texts if k != "title"]
        embs = self.encoder.embed([f"{req['topic']} ({req['subject']})"] + [texts[k] for k in names])
        topic_e, part_e = embs[0], embs[1:]
        part_e = part_e / np.maximum(np.linalg.norm(part_e, axis=1, keepdims=True), 1e-9)
        topic_e = topic_e / max(float(np.linalg.norm(topic_e)), 1e-9)
        sims = part_e @ topic_e
        mean_e = part_e.mean(0)
        sim = float(mean_e @ topic_e / max(float(np.linalg.norm(mean_e)), 1e-9))
        # 4. objective verbs
        bad_obj = [o for o in lesson["objectives"] if not starts_with_measurable_verb(o)]
        # 5. reading level (teacher-facing text: flagged, not regenerated)
        body = " ".join(a for s in lesson["sections"] for a in s["activities"])
        fk = float(textstat.flesch_kincaid_grade(body)) if words(body) else 0.0
        gnum = grade_number(req["grade_level"])
        max_fk = max(gnum, 2) + 5
        checks = {
            "sections_complete": {"ok": not empty, "empty": empty},
            "repetition": {"ok": not rep_parts, "parts": rep_parts},
            "on_topic": {
                "ok": sim >= self.on_topic_threshold,
                "similarity": round(sim, 3),
                "threshold": self.on_topic_threshold,
                "min_part": {"part": names[int(np.argmin(sims))], "similarity": round(float(sims.min()), 3)},
            },
            "objective_verbs": {"ok": not bad_obj, "failing": bad_obj},
            "reading_level": {"ok": fk <= max_fk, "fk_grade": round(fk, 1), "max_fk_grade": max_fk},
            "minutes": {
                "ok": sum(s["minutes"] for s in lesson["sections"]) == req["duration_minutes"],
                "total": sum(s["minutes"] for s in lesson["sections"]),
            },
            "standards_from_request": lesson["standards"] == req["standards"],
            "fallback_parts": list(p.fallback),
            "regenerated_parts": list(p.repaired),
        }
        if p.fallback:
            warns.append("fallback text used for: " + ", ".join(p.fallback))
        if empty:
            warns.append("empty parts: " + ", ".join(empty))
        if rep_parts:
            warns.append("repetitive text in: " + ", ".join(rep_parts))
        if not checks["on_topic"]["ok"]:
            warns.append(f"plan may be off topic (similarity {sim:.2f} < {self.on_topic_threshold})")
        if bad_obj:
            src = "request" if req["objectives"] else "generated"
            warns.append(f"{len(bad_obj)} {src} objective(s) do not start with a measurable verb")
        if not checks["reading_level"]["ok"]:
            warns.append(f"reading level FK {fk:.1f} above {max_fk} for grade {req['grade_level']}")
        return checks, warns
