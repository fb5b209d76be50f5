"""Cheap, explainable text measurements: TextStats, the vocabulary share, and the rater-style feature
sets (FEATURE_SETS, by name) that the default and the ASAP graders' models read."""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from workers.ml.grading.lexicon import word_frequency

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
        has_conclusion=(any(c in last for c in CONCLUSION_CUES)
                        or (len(paragraphs) >= 3 and 15 <= len(_WORD.findall(last)) <= 200)),
        repeated_paragraphs=repeated,
        vowel_ratio=(sum(1 for c in letters if c.lower() in "aeiouy") / len(letters)) if letters else 0.0,
        alpha_ratio=(len(letters) / len(non_space)) if non_space else 0.0,
        max_word_share=(counts.most_common(1)[0][1] / len(words)) if words else 0.0,
    )


def vocab_share(words: list[str], vocab) -> float:
    """Share of words that are whole entries of the encoder's English word-piece vocabulary."""
    if not words:
        return 0.0
    return sum(1 for w in words if w.lower() in vocab) / len(words)


# --- rater-style features, versioned -------------------------------------------------------------------
# The one implementation of the 38 rater-style measurements, read by the default grader's head
# (meta "feature_set": "rater-v1") and by the shipped ASAP graders (asap.py; their meta.json names no
# set: rater-v1). A head keeps the features it was trained with: it names its set, and grading looks the
# set up in FEATURE_SETS. So these functions are frozen: a change of any feature is a NEW named set
# (its own function, added to FEATURE_SETS) together with retrained heads, never an edit of rater-v1.
RATER_FEATURE_SET = "rater-v1"
RATER_FEATURE_NAMES = [
    "log_words", "log_chars", "log_sentences", "log_paragraphs", "log_unique", "type_token", "root_ttr",
    "avg_word_len", "std_word_len", "long_word_share", "very_long_word_share", "rare_word_share",
    "mean_log_freq", "log_misspelled", "misspelled_share", "log_unique_misspelled",
    "mean_sent_len", "std_sent_len", "max_sent_len", "commas_per_sent", "clause_per_sent",
    "flesch", "fk_grade", "syllables_per_word", "polysyllable_share",
    "words_per_paragraph", "exclaim_per_100", "question_per_100", "semicolon_colon_per_100",
    "quotes_per_100", "apostrophe_per_100", "paren_per_100", "lower_start_share", "lowercase_i",
    "anon_per_100", "transitions_per_100", "has_conclusion", "caps_word_share",
]
_R_ANON = re.compile(r"@[A-Z]+[0-9]*")
_R_PARA = re.compile(r"\n\s*\n|\t|\s{4,}")
_R_CLAUSE = frozenset(("because", "although", "though", "while", "since", "when", "whenever", "if", "unless",
                       "which", "who", "whom", "whose", "that", "whereas", "where", "after", "before", "until", "so"))


def _r_syllables(w: str) -> int:
    w = w.lower()
    n = len(re.findall(r"[aeiouy]+", w))
    if w.endswith("e") and n > 1 and not w.endswith(("le", "ee")):
        n -= 1
    return max(n, 1)


def rater_features(text: str, st: TextStats | None = None) -> list[float]:
    """38 rater-style measurements: length, vocabulary, spelling, sentence structure, readability, punctuation."""
    import numpy as np

    text = text or ""
    n_anon = len(_R_ANON.findall(text))
    clean = _R_ANON.sub(" Name ", text)
    words = _WORD.findall(clean)
    lw = [w.lower() for w in words]
    n = len(lw)
    nn = max(n, 1)
    freq = word_frequency()
    real = [w for w in lw if w != "name"]
    known = [w for w in real if w in freq]
    miss = [w for w in real if w not in freq and "'" not in w]
    sentences = [s for s in _SENT.findall(clean) if _WORD.search(s)]
    slen = np.array([len(_WORD.findall(s)) for s in sentences] or [0], dtype=float)
    ns = max(len(sentences), 1)
    paras = [p for p in _R_PARA.split(text.strip()) if p.strip()]
    wl = np.array([len(w) for w in words] or [0], dtype=float)
    syl = np.array([_r_syllables(w) for w in words] or [0], dtype=float)
    logf = [math.log10(freq[w] + 1) for w in known]
    st = st if st is not None else stats(text)
    flesch = 206.835 - 1.015 * (n / ns) - 84.6 * (syl.sum() / nn)
    fk = 0.39 * (n / ns) + 11.8 * (syl.sum() / nn) - 15.59
    per100 = 100.0 / nn
    return [
        math.log1p(n), math.log1p(len(text)), math.log1p(len(sentences)), math.log1p(len(paras)),
        math.log1p(len(set(lw))), len(set(lw)) / nn, len(set(lw)) / math.sqrt(nn),
        float(wl.mean()), float(wl.std()), float((wl >= 7).mean()), float((wl >= 10).mean()),
        (sum(1 for w in known if freq[w] < 2000) / max(len(known), 1)), (float(np.mean(logf)) if logf else 0.0),
        math.log1p(len(miss)), len(miss) / max(len(real), 1), math.log1p(len(set(miss))),
        float(slen.mean()), float(slen.std()), float(min(slen.max(), 150)),
        text.count(",") / ns, sum(1 for w in lw if w in _R_CLAUSE) / ns,
        float(np.clip(flesch, -100, 150)), float(np.clip(fk, -5, 40)), float(syl.mean()), float((syl >= 3).mean()),
        n / max(len(paras), 1), text.count("!") * per100, text.count("?") * per100,
        (text.count(";") + text.count(":")) * per100, (text.count('"') + text.count("\u201c")) * per100,
        (text.count("'") + text.count("\u2019")) * per100, text.count("(") * per100,
        st.lowercase_starts / ns, math.log1p(st.lowercase_i), n_anon * per100, 100.0 * st.transitions / nn,
        float(st.has_conclusion), sum(1 for w in words if len(w) > 1 and w.isupper()) / nn,
    ]


def with_paragraphs(feats, paragraphs: int | None):
    """A rater-v1 feature matrix with its paragraph features as for essays of `paragraphs` paragraphs
    (None: unchanged): the default grader serves every essay as one paragraph (default_head.py)."""
    import numpy as np

    if paragraphs is None:
        return feats
    f = np.array(feats, dtype=np.float64, copy=True)
    f[:, RATER_FEATURE_NAMES.index("log_paragraphs")] = math.log1p(paragraphs)
    f[:, RATER_FEATURE_NAMES.index("words_per_paragraph")] = np.expm1(f[:, RATER_FEATURE_NAMES.index("log_words")]) / paragraphs
    return f


def rater_matrix(texts: list[str], st: list[TextStats] | None = None):
    """(N, 38) float64 matrix of rater_features (st: the texts' stats(), if already computed)."""
    import numpy as np

    st = st if st is not None else [None] * len(texts)
    return np.array([rater_features(t, s) for t, s in zip(texts, st)], dtype=np.float64).reshape(
        len(texts), len(RATER_FEATURE_NAMES))


# feature-set name -> (texts, stats of the texts or None) -> (N, n_features) float64 matrix
FEATURE_SETS = {RATER_FEATURE_SET: rater_matrix}


def feature_matrix(feature_set: str, texts: list[str], st: list[TextStats] | None = None):
    """The features of a named set (FEATURE_SETS) for texts; ValueError for a set this code does not have."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    return FEATURE_SETS[feature_set](texts, st)
