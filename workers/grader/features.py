"""Cheap, explainable text measurements: model features, review flags and feedback evidence."""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_SENT = re.compile(r"[^.!?]+[.!?]*")
_PARA = re.compile(r"\n\s*\n")
TRANSITIONS = {"first", "second", "third", "finally", "however", "therefore", "furthermore", "moreover",
               "also", "because", "although", "for example", "in conclusion", "in addition", "on the other hand",
               "as a result", "to sum up", "overall", "for instance", "consequently", "meanwhile"}
CONCLUSION_CUES = ("in conclusion", "to conclude", "in summary", "to sum up", "overall", "all in all", "that is why",
                   "for these reasons", "in the end")


@dataclass
class TextStats:
    words: list[str]
    n_words: int
    n_sentences: int
    n_paragraphs: int
    sentence_lengths: list[int]
    avg_word_len: float
    type_token: float
    long_sentences: int
    lowercase_i: int
    lowercase_starts: int
    transitions: int
    has_conclusion: bool
    repeated_paragraphs: int
    vowel_ratio: float
    alpha_ratio: float
    max_word_share: float


def stats(text: str) -> TextStats:
    text = text or ""
    words = _WORD.findall(text)
    lower = [w.lower() for w in words]
    sentences = [s.strip() for s in _SENT.findall(text) if _WORD.search(s)]
    sent_lens = [len(_WORD.findall(s)) for s in sentences]
    paragraphs = [p.strip() for p in _PARA.split(text.strip()) if p.strip()]
    norm_paras = [re.sub(r"\W+", " ", p.lower()).strip() for p in paragraphs]
    repeated = sum(c - 1 for c in Counter(p for p in norm_paras if len(p) > 40).values() if c > 1)
    letters = [c for c in text if c.isalpha()]
    non_space = [c for c in text if not c.isspace()]
    joined = " ".join(lower)
    counts = Counter(lower)
    last = paragraphs[-1].lower() if paragraphs else ""
    return TextStats(
        words=words,
        n_words=len(words),
        n_sentences=len(sentences),
        n_paragraphs=len(paragraphs),
        sentence_lengths=sent_lens,
        avg_word_len=(sum(len(w) for w in words) / len(words)) if words else 0.0,
        type_token=(len(counts) / len(words)) if words else 0.0,
        long_sentences=sum(1 for n in sent_lens if n > 35),
        lowercase_i=sum(1 for w in words if w == "i"),
        lowercase_starts=sum(1 for s in sentences if s[:1].islower()),
        transitions=sum(joined.count(t) for t in TRANSITIONS),
        has_conclusion=any(c in last for c in CONCLUSION_CUES) or (len(paragraphs) >= 3 and 15 <= len(_WORD.findall(last)) <= 200),
        repeated_paragraphs=repeated,
        vowel_ratio=(sum(1 for c in letters if c.lower() in "aeiouy") / len(letters)) if letters else 0.0,
        alpha_ratio=(len(letters) / len(non_space)) if non_space else 0.0,
        max_word_share=(counts.most_common(1)[0][1] / len(words)) if words else 0.0,
    )


FEATURE_NAMES = ["log_words", "log_sentences", "avg_sentence_len", "avg_word_len", "type_token",
                 "paragraphs", "long_sentence_share", "transitions_per_100", "lowercase_i"]


def feature_vector(s: TextStats) -> list[float]:
    n = max(s.n_words, 1)
    return [
        math.log1p(s.n_words),
        math.log1p(s.n_sentences),
        min(s.n_words / max(s.n_sentences, 1), 80.0),
        s.avg_word_len,
        s.type_token,
        math.log1p(s.n_paragraphs),
        s.long_sentences / max(s.n_sentences, 1),
        100.0 * s.transitions / n,
        math.log1p(s.lowercase_i),
    ]


SHORT_WORDS = 50


def review_reasons(s: TextStats, vocab_share: float) -> list[str]:
    """Reasons a teacher should read this essay before trusting its score (text-only checks)."""
    if s.n_words == 0:
        return ["empty: the essay has no words"]
    reasons = []
    if s.n_words < SHORT_WORDS:
        reasons.append(f"too short: {s.n_words} words")
    if s.alpha_ratio < 0.6 or s.vowel_ratio < 0.2 or s.vowel_ratio > 0.65 or vocab_share < 0.55:
        reasons.append("nonsense: much of the text is not recognisable words")
    elif s.n_words >= 30 and s.max_word_share > 0.25:
        reasons.append("nonsense: one word makes up a quarter of the text")
    if s.repeated_paragraphs:
        reasons.append(f"repeated text: {s.repeated_paragraphs} paragraph(s) appear more than once")
    return reasons


def feedback(s: TextStats, trait_names: list[str]) -> list[dict]:
    """Comments grounded in what was counted in the essay; one or two per trait."""
    out: list[dict] = []
    if s.n_words == 0:
        return [{"trait": "overall", "comment": "No text was submitted, so there is nothing to give feedback on."}]
    avg = s.n_words / max(s.n_sentences, 1)
    org = []
    if s.n_paragraphs <= 1 and s.n_words > 150:
        org.append(f"The essay is {s.n_words} words in a single paragraph; breaking it into an introduction, "
                   f"body paragraphs and a conclusion would make the argument easier to follow.")
    elif s.n_paragraphs >= 3:
        org.append(f"The essay is organised into {s.n_paragraphs} paragraphs.")
    if not s.has_conclusion and s.n_words > 120:
        org.append("The last paragraph does not read as a conclusion; end by restating the main point.")
    if s.transitions == 0 and s.n_words > 100:
        org.append("No linking words (for example, however, in addition) were found between ideas.")
    conv = []
    if s.long_sentences:
        conv.append(f"{s.long_sentences} sentence(s) run longer than 35 words; splitting them would help the reader.")
    if s.lowercase_i:
        conv.append(f"The word 'I' is written in lower case {s.lowercase_i} time(s).")
    if s.lowercase_starts:
        conv.append(f"{s.lowercase_starts} sentence(s) begin with a lower-case letter.")
    if not conv:
        conv.append(f"Sentences average {avg:.0f} words; no run-on sentences or capitalisation slips were found.")
    dev = [f"The essay has {s.n_words} words in {s.n_sentences} sentence(s)"
           + (" — a short response; more reasons and examples would develop it." if s.n_words < 150 else ".")]
    if s.repeated_paragraphs:
        dev.append(f"{s.repeated_paragraphs} paragraph(s) repeat earlier text word for word.")
    buckets = {"organization": org, "conventions": conv, "development": dev}
    aliases = {"organisation": "organization", "structure": "organization", "grammar": "conventions",
               "mechanics": "conventions", "sentence_fluency": "conventions", "language": "conventions",
               "style": "conventions", "word_choice": "development", "content": "development", "ideas": "development"}
    used = set()
    for t in trait_names:
        key = aliases.get(t.strip().lower().replace(" ", "_"), t.strip().lower())
        comments = buckets.get(key) or dev
        for c in comments[:2]:
            out.append({"trait": t, "comment": c})
        used.add(key if key in buckets else "development")
    if "development" not in used:
        out.append({"trait": "overall", "comment": dev[0]})
    if "organization" not in used and org:
        out.append({"trait": "overall", "comment": org[0]})
    return out
