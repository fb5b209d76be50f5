"""The retired engine's repair of raw model text into clean items (its shared measures: workers/ml/lessons/parsing.py)."""
from __future__ import annotations

import re

from workers.ml.lessons.parsing import (  # noqa: F401  (the legacy engine imports them from here)
    BLOOM_VERBS,
    _base,
    has_degenerate_repetition,
    leading_verb,
    starts_with_measurable_verb,
    words,
)

_NUM_PREFIX = re.compile(
    r"^\s*(?:(?:step|activity|objective|item|part)\s*\d+\s*[:.)-]\s*|\(?\d{1,2}[.):]\s*|\(?[a-hA-H][.)]\s+|[-*•·–—>#]+\s*)+",
    re.I,
)
_LABEL_PREFIX = re.compile(
    r"^\s*(?:students will be able to|students will|swbat|the students will|learners will|"
    r"by the end of (?:the|this) lesson,? students will(?: be able to)?|objective|materials?|"
    r"assessment|activity|title|answer|warm-up|closure)\s*[:\-–]\s*",
    re.I,
)
_MD = re.compile(r"\*\*|__|`")
_JUNK = re.compile(
    r"(<\|[^|]*\|>|</?s>|\bassistant\b\s*:|\buser\b\s*:|https?://|www\.|\[INST\]|###|```|"
    r"I hope this helps|As an AI|I'm sorry|I am sorry|Let me know if|Note:|Here's|Here is|"
    r"In this (?:warm-?up )?(?:sentence|response|answer|example)|I added|I have added|Feel free)",
    re.I,
)
def clean_item(line: str, max_chars: int = 240) -> str:
    """Strip numbering/bullets/markdown/labels, cut at junk, trim to a sentence boundary."""
    s = _MD.sub("", line).strip()
    m = _JUNK.search(s)
    if m:
        s = s[: m.start()]
    for _ in range(3):
        s2 = _LABEL_PREFIX.sub("", _NUM_PREFIX.sub("", s)).strip()
        if s2 == s:
            break
        s = s2
    s = s.strip(" \t\"'“”‘’:;,-–—")
    if len(s) > max_chars:
        cut = s[:max_chars]
        dot = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
        s = cut[: dot + 1] if dot > max_chars // 3 else cut.rsplit(" ", 1)[0].rstrip(",;:") + "…"
    if s and s[0].islower():
        s = s[0].upper() + s[1:]
    return s


def _drop_unfinished_tail(s: str) -> str:
    """A budget-cut item ends mid-sentence: keep the complete sentences when there are any."""
    if not s or s[-1] in ".!?…)\"'":
        return s
    dot = max(s.rfind(". "), s.rfind("! "), s.rfind("? "))
    if dot > 20:
        return s[: dot + 1]
    return s


def split_items(text: str) -> list[str]:
    """Split a list-like answer into raw item strings (lines, or inline '1. ... 2. ...')."""
    text = text.replace("\r", "")
    # inline numbering "... 2. Next" -> new line
    text = re.sub(r"\s+(?=(?:\(?\d{1,2}[.)]|[-*•])\s+[A-Z])", "\n", text)
    return [ln for ln in text.split("\n") if ln.strip()]


def parse_list(
    text: str,
    *,
    max_items: int = 5,
    min_words: int = 2,
    max_chars: int = 240,
    truncated: bool = False,
) -> list[str]:
    """Repair a list answer: clean each item, drop fragments, dedupe (case/space-insensitive)."""
    raw = split_items(text)
    items: list[str] = []
    seen: set[str] = set()
    for i, line in enumerate(raw):
        s = clean_item(line, max_chars=max_chars)
        if truncated and i == len(raw) - 1:
            s = _drop_unfinished_tail(s)
            if s and s[-1] not in ".!?…" and len(words(s)) < 6:
                continue  # a cut-off stub
        if sum(1 for w in words(s) if any(c.isalpha() for c in w)) < min_words:
            continue
        if s.endswith(":"):
            continue  # a heading, not an item
        key = " ".join(words(s))
        if key in seen or any(key in k or k in key for k in seen if len(k) > 20 and len(key) > 20):
            continue
        if has_degenerate_repetition(s):
            continue
        seen.add(key)
        items.append(s)
        if len(items) >= max_items:
            break
    return items


def parse_title(text: str, max_chars: int = 90) -> str:
    for line in split_items(text):
        s = clean_item(line, max_chars=max_chars).rstrip(".")
        s = re.sub(r"^\d+\s*[-–:.]\s*", "", s).strip(" \"'“”")
        if 2 <= len(words(s)) <= 14 and not has_degenerate_repetition(s):
            return s
    return ""


# ------------------------------------------------------------------ objectives
def repair_objective(objective: str) -> str | None:
    """Make an objective start with its measurable verb ('Students can identify x' ->
    'Identify x'); None when no Bloom verb appears in its first words."""
    s = clean_item(objective)
    if starts_with_measurable_verb(s):
        v = leading_verb(s)
        b = _base(v)
        if b != v and b in BLOOM_VERBS:
            s = b.capitalize() + s[len(v):]
        return s
    toks = s.split()
    for i, t in enumerate(toks[:6]):
        w = re.sub(r"[^A-Za-z]", "", t).lower()
        if w in BLOOM_VERBS or _base(w) in BLOOM_VERBS:
            rest = " ".join(toks[i + 1:])
            if len(words(rest)) < 2:
                return None
            return _base(w).capitalize() + " " + rest
    return None
