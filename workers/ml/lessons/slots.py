"""What the language model writes: a few short, topic-specific slots, under a JSON schema.

The schema is the constraint the engine decodes under (llama.cpp grammar, vLLM guided decoding,
``response_format`` over HTTP), so the reply is a JSON object of exactly these fields by construction.
Its string patterns keep the slots short and keep out what a small model invents: no digits (no
numbers, years or dates; a maths lesson's example problem may hold digits, but never an ``=`` and so
never a wrong answer), no markup, no lists inside a field. Objectives are asked for only when the
teacher gave none, and each must begin with a measurable verb (an enum in the pattern).
"""
from __future__ import annotations

import re

from workers.ml.llm.base import GenRequest

SYSTEM = "You help teachers plan lessons. Reply with JSON only."

OBJECTIVE_VERBS = ("Identify", "Explain", "Describe", "Compare", "Write", "Solve", "Use", "Apply", "Create",
                   "Analyze", "Evaluate", "Classify", "Summarize", "Predict", "Construct", "Design", "Recognize")
_MATH = re.compile(r"math|algebra|geometr|calcul|arithmetic|statistic|numera", re.I)


def _str(pattern: str) -> dict:
    return {"type": "string", "pattern": pattern}


def schema_for(req: dict) -> dict:
    digits = "0-9" if _MATH.search(req["subject"]) or _MATH.search(req["topic"]) else ""
    props = {
        "title": _str(r"^[A-Z][A-Za-z ,:'-]{4,50}$"),
        "guiding_question": _str(r"^[A-Z][a-z]+ [A-Za-z ,'-]{8,100}[?]$"),
        "vocabulary": {"type": "array", "items": _str(r"^[a-zA-Z][a-z -]{1,24}[a-z]$"), "minItems": 3, "maxItems": 5},
        "example": _str(rf"^[A-Z][A-Za-z{digits} ,;:'()/+-]{{15,150}}[.?]$"),
        "task": _str(r"^[A-Z][a-z]+ [A-Za-z ,;'-]{15,150}[.]$"),
    }
    if not req["objectives"]:
        verbs = "|".join(OBJECTIVE_VERBS)
        props["objectives"] = {"type": "array", "items": _str(rf"^({verbs}) [a-z][A-Za-z ,'-]{{10,90}}[.]$"),
                               "minItems": 2, "maxItems": 3}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _plain(text: str) -> str:
    """A teacher's words as plain text in the prompt: no chat-template markers (``<|im_start|>``...)."""
    return text.replace("<|", "<").replace("|>", ">")


def _ask(req: dict) -> str:
    """The same instructions for every plan, then the lesson (so every prompt shares all but its last
    few tokens: the engine's prefix cache computes the rest once)."""
    g = "kindergarten" if req["grade_level"] == "K" else f"grade {req['grade_level']}"
    ask = ("Fill in the parts of a lesson. title: a short title. guiding_question: the question students can "
           "answer by the end. vocabulary: 3 to 5 key words of the topic. example: one example the teacher models, "
           "in one sentence. task: what each student makes on their own, in one sentence.")
    if not req["objectives"]:
        ask += " objectives: 2 or 3 things students will be able to do, each starting with a verb."
    return f"{ask}\nLesson: {g} {_plain(req['subject'])}, on {_plain(req['topic'])}."


_SHOT_REQ = {"grade_level": "6", "subject": "Science", "topic": "food chains", "objectives": []}
_SHOT_REPLY = (
    '{"title": "Who Eats Whom", "guiding_question": "How does energy move from one living thing to another?", '
    '"vocabulary": ["producer", "consumer", "decomposer", "energy"], '
    '"example": "Grass is eaten by a rabbit, and the rabbit is eaten by a fox.", '
    '"task": "Draw a food chain from a habitat you know and label each living thing.", '
    '"objectives": ["Identify producers, consumers and decomposers in a food chain.", '
    '"Explain how energy moves along a food chain."]}'
)


def shot_reply() -> dict:
    """The worked example's reply, parsed (a slot that copies it is screened out)."""
    import json

    return json.loads(_SHOT_REPLY)


def request_for(req: dict, seed: int, max_tokens: int = 220, temperature: float = 0.7) -> GenRequest:
    """The engine request for one plan's slots: a worked example turn (the same for every plan, so its KV
    cache is shared), then this plan's."""
    return GenRequest(
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": _ask(_SHOT_REQ)},
            {"role": "assistant", "content": _SHOT_REPLY},
            {"role": "user", "content": _ask(req)},
        ],
        schema=schema_for(req),
        max_tokens=max_tokens,
        seed=seed,
        temperature=temperature,
    )


def clean(data: dict) -> dict:
    """Whitespace tidied, duplicate terms dropped (the schema already fixed the shape)."""
    out = {k: " ".join(v.split()) if isinstance(v, str) else v for k, v in data.items()}
    seen, terms = set(), []
    for t in data.get("vocabulary") or []:
        t = " ".join(t.split()).lower()
        if t and t not in seen:
            seen.add(t)
            terms.append(t)
    out["vocabulary"] = terms
    if "objectives" in data:
        out["objectives"] = [" ".join(o.split()) for o in data["objectives"]]
    return out
