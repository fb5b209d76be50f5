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


def vocab_share(words: list[str], vocab) -> float:
    """Share of words that are whole entries of the encoder's English word-piece vocabulary."""
    if not words:
        return 0.0
    return sum(1 for w in words if w.lower() in vocab) / len(words)


_ORG_TRAITS = {"organization", "organisation", "structure", "coherence"}
_CONV_TRAITS = {"conventions", "grammar", "mechanics", "sentence_fluency", "fluency", "language", "style",
                "punctuation", "spelling", "usage"}
_DEV_TRAITS = {"content", "ideas", "ideas_content", "development", "word_choice", "evidence", "argument"}


def _trait_for(kind: set[str], trait_names: list[str]) -> str:
    for t in trait_names:
        n = re.sub(r"[^a-z0-9]+", "_", t.strip().lower()).strip("_")
        if n in kind or any(tok in kind for tok in n.split("_")):
            return t
    return "overall"


def feedback(s: TextStats, trait_names: list[str]) -> list[dict]:
    """One or two short comments, each grounded in something counted in the essay.

    Candidates in priority order (length, paragraphing, run-on sentences, capitalisation, linking
    words); the first two that apply are returned, tagged with the rubric trait they concern
    (or "overall")."""
    if s.n_words == 0:
        return [{"trait": "overall", "comment": "No text was submitted, so there is nothing to give feedback on."}]
    avg = s.n_words / max(s.n_sentences, 1)
    org, conv, dev = (_trait_for(k, trait_names) for k in (_ORG_TRAITS, _CONV_TRAITS, _DEV_TRAITS))
    cands: list[tuple[str, str]] = []
    if s.n_words < 150:
        cands.append((dev, (f"The essay has {s.n_words} words in {s.n_sentences} sentence(s); "
                           f"more reasons and examples would develop it.")))
    if s.n_paragraphs <= 1 and s.n_words > 150:
        cands.append((org, (f"The essay is {s.n_words} words in a single paragraph; splitting it into an "
                           f"introduction, body paragraphs and a conclusion would make it easier to follow.")))
    if s.repeated_paragraphs:
        cands.append((dev, f"{s.repeated_paragraphs} paragraph(s) repeat earlier text word for word."))
    if s.long_sentences:
        cands.append((conv, (f"{s.long_sentences} of {s.n_sentences} sentences run longer than 35 words; "
                            f"splitting them would help the reader.")))
    if s.lowercase_i or s.lowercase_starts:
        cands.append((conv, (f"Capitalisation: 'I' is written in lower case {s.lowercase_i} time(s) and "
                            f"{s.lowercase_starts} sentence(s) start with a lower-case letter.")))
    if s.transitions == 0 and s.n_words > 100:
        cands.append((org, "No linking words (for example, however, in addition) were found between ideas."))
    if len(cands) < 2:
        cands.append((org if s.n_paragraphs >= 3 else dev,
                      f"{s.n_words} words in {s.n_paragraphs} paragraph(s); sentences average {avg:.0f} words "
                      f"and no run-on sentences were found." if not s.long_sentences else
                      f"{s.n_words} words in {s.n_paragraphs} paragraph(s); sentences average {avg:.0f} words."))
    return [{"trait": t, "comment": c} for t, c in cands[:2]]
