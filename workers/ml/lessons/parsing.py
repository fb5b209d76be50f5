"""Text measures the lesson checks share: words, the objective-verb check and the repetition guard."""
from __future__ import annotations

import re
from collections import Counter

# Measurable (Bloom's taxonomy) verbs, lower case, base form.
BLOOM_VERBS = frozenset(
    """
    remember recall recognize recognise list name identify define label locate match memorize
    state repeat record select underline count quote
    understand explain describe summarize summarise classify compare contrast discuss
    distinguish estimate interpret paraphrase predict report restate review translate
    illustrate outline give relate retell sort group order sequence express
    apply use demonstrate solve calculate compute complete construct modify operate
    practice practise show sketch write measure model perform graph map read plot
    analyze analyse examine investigate categorize categorise differentiate infer
    test question diagram experiment observe research connect organize organise
    evaluate assess judge justify critique argue defend support rate rank choose decide
    prioritize prioritise recommend conclude appraise prove verify
    create design develop compose formulate plan produce invent build generate propose
    combine devise draw make present prepare construct revise rewrite
    determine apply articulate collaborate convert simplify add subtract multiply divide
    pronounce spell recite narrate edit control execute
    """.split()
)

_WORD = re.compile(r"[A-Za-z0-9']+")


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


# ------------------------------------------------------------------ objectives
def leading_verb(objective: str) -> str:
    w = words(objective)
    return w[0] if w else ""


def _base(verb: str) -> str:
    for suf, rep in (("ies", "y"), ("es", ""), ("s", ""), ("ing", ""), ("ed", "")):
        if verb.endswith(suf) and len(verb) > len(suf) + 2:
            cand = verb[: -len(suf)] + rep
            if cand in BLOOM_VERBS:
                return cand
            if cand + "e" in BLOOM_VERBS:
                return cand + "e"
    return verb


def starts_with_measurable_verb(objective: str) -> bool:
    v = leading_verb(objective)
    return v in BLOOM_VERBS or _base(v) in BLOOM_VERBS


# ------------------------------------------------------------------ repetition
def repeated_ngrams(text: str, n: int = 4) -> Counter:
    w = words(text)
    return Counter(tuple(w[i: i + n]) for i in range(len(w) - n + 1))


def has_degenerate_repetition(text: str, n: int = 4, max_count: int = 3, min_unique_ratio: float = 0.5) -> bool:
    """True for looping text: one word n-gram more than ``max_count`` times, or (for 12+
    n-grams) fewer than ``min_unique_ratio`` of the n-grams distinct. Also catches a
    single token repeated 6+ times in a row."""
    w = words(text)
    for i in range(len(w) - 5):
        if len(set(w[i: i + 6])) == 1:
            return True
    c = repeated_ngrams(text, n)
    if not c:
        return False
    if max(c.values()) > max_count:
        return True
    total = sum(c.values())
    return total >= 12 and len(c) / total < min_unique_ratio
