"""Cheap, explainable text measurements: the default grader's model features and the vocabulary share."""
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


def vocab_share(words: list[str], vocab) -> float:
    """Share of words that are whole entries of the encoder's English word-piece vocabulary."""
    if not words:
        return 0.0
    return sum(1 for w in words if w.lower() in vocab) / len(words)
