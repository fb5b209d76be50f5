"""Review flags a teacher can act on: why an essay should be read by a person before its score is trusted.

    reviewer = Reviewer.load()
    reviewer.reasons(texts, emb, prompt_ids=["1", ...] | None, prompt_texts=[task text, ...] | None)
        -> [["too short: ...", ...], [], ...]          one list of reasons per text

Every reason is one short sentence that starts with a stable tag (TAGS). Detectors (all cheap: a few
dictionary look-ups and hashes per word, one 8x384 matrix product per essay; see docs/grading_feedback.md):

- empty / too short: word count under `short_words` (chosen from the data: see the doc).
- nonsense: random characters: share of words found in pyspellchecker's English dictionary, share of
  letters among non-space characters, vowel share; or one word making up most of the text.
- not English: few English words and English function words, and many function words of another
  language (hand-listed Spanish, French, German, Italian, Portuguese lists), or a non-Latin script.
- word salad: hand-listed English function-word rules: a determiner ("the", "a", "my"...) cannot be
  followed by another determiner, an auxiliary/modal, a preposition, a conjunction or a personal
  pronoun; a subject pronoun cannot be followed by a determiner; a preposition cannot be followed by
  an auxiliary; a modal cannot be followed by a finite "be". The share of such broken pairs among
  the pairs checked.
- repeated text: repeated paragraphs, and long repeated word spans (8-word shingles, hashed) for
  the many essays without paragraph breaks.
- copied prompt: word 6-grams of the prompt text found in the essay (share of the prompt copied,
  number of essay words inside copied spans).
- off-topic: ASAP prompts ("1".."8"): a multinomial logistic regression over the 384-d MiniLM
  embedding (trained on train.jsonl) -> flag when the probability of the rubric's prompt is low.
  Teacher rubrics: cosine between the essay and its embedded prompt text.

Thresholds live in artifacts/review/review.json, fitted on train.jsonl and synthetic stress built
from it (`python -m workers.ml.training.review_flags fit`); dev.jsonl is only used to report
(`python -m workers.ml.evaluation.stress`).
"""
from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

from workers.ml.grading.lexicon import english_words

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "review"
TAGS = ("empty", "too short", "nonsense", "not English", "word salad", "repeated text", "copied prompt", "off-topic")
# flags that make a score meaningless: such an essay gets no score (null) unless its rubric says
# "always_score"; "not English" and "repeated text" are scored and flagged (a teacher may teach in
# another language; a repeated passage still has the rest of the essay around it)
WITHHOLD_TAGS = frozenset({"empty", "too short", "nonsense", "word salad", "off-topic"})
COPY_WITHHOLD_SHARE = 0.5  # a copied prompt withholds the score when it is at least half of the essay's words
MOSTLY_COPIED = "most of the essay is the prompt"

_ANON = re.compile(r"@[A-Z]+[0-9]*")  # ASAP anonymisation tokens (@CAPS1, @PERSON2, @NUM3)
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|[0-9]+|[.!?;:,\"()/&-]")
_PARA = re.compile(r"\n\s*\n")
SHINGLE = 8        # repeated text: word span length
UNPUNCTUATED_WORDS = 40  # under one sentence-ending mark per this many words: the text is unpunctuated
COPY_NGRAM = 6     # copied prompt: word n-gram length

# --- hand-listed English function words (no essay text) ------------------------------------------
DETERMINERS = frozenset("the a an my your our their every each".split())  # not "its": often written for "it's"
SUBJECTS = frozenset("i he she we they".split())
PREPOSITIONS = frozenset("of to in on at for with from into by about".split())
MODALS = frozenset("will would can could should must might shall".split())
AUXILIARIES = frozenset("is are was were am be been being do does did has have had".split()) | MODALS
CONJUNCTIONS = frozenset("and or but because if so when than although while".split())
PRONOUNS = frozenset("i he she we they me him us them".split())
# what may not follow each class (pairs inside one sentence)
_AFTER_DET = DETERMINERS | AUXILIARIES | PREPOSITIONS | (CONJUNCTIONS - {"while", "so"}) | PRONOUNS | {"not", "to"}
_AFTER_SUBJ = DETERMINERS | {"of", "i", "he", "she", "we", "they"}
_AFTER_PREP = frozenset("is are was were am has does will would could should must shall".split())
_AFTER_MODAL = frozenset("is are was were am".split())
_BE = frozenset("is are was were am".split())
_AFTER_BE = _BE | MODALS
_AFTER_VERY = DETERMINERS | PREPOSITIONS | PRONOUNS | AUXILIARIES
EN_STOP = frozenset((
    "the a an and or but if because so of to in on at for with from by about as into than then that this these "
    "those it its is are was were be been am do does did have has had will would can could should not no i me my "
    "we our you your he him his she her they them their there here what which who when where why how all some "
    "any more most very just also only up out over after before").split())
_OPENERS = EN_STOP - {"i"}  # capitalised mid-sentence: a sentence opener out of place
# common function words of other languages that are not also common English words
FOREIGN_STOP = {
    "Spanish": "el la los las del un una unos unas y que en es por para con pero muy como su sus se lo le les "
               "al mi tu yo nosotros ellos ella esta este estos estas tiene hay ser fue porque cuando donde".split(),
    "French": "le la les des du un une et est que qui dans pour pas sur avec mais ou je tu il elle nous vous ils "
              "sont ce cette ces mon ton son leur aux au tres bien parce quand".split(),
    "German": "der die das und ist nicht ich du er sie wir ihr es ein eine einen dem den des mit auf fur von zu "
              "auch aber wenn weil sehr sind war haben hat wird kann".split(),
    "Italian": "il lo la gli le di del della che e non un una per con sono molto anche ma come questo questa "
               "perche quando io tu lui lei noi loro".split(),
    "Portuguese": "o os as um uma uns umas e que em no na nos nas do da dos das por para com mas muito como seu "
                  "sua eu ele ela nao sao esta este porque quando".split(),
}
_FOREIGN = {lang: frozenset(w for w in ws if w not in EN_STOP) for lang, ws in FOREIGN_STOP.items()}
_FOREIGN_ALL = frozenset().union(*_FOREIGN.values())

DEFAULTS = {  # used only when review.json lacks a key; fit() writes the fitted values
    "short_words": 20, "nonsense_dict_share": 0.6, "nonsense_alpha_ratio": 0.6, "vowel_low": 0.2,
    "vowel_high": 0.65, "one_word_share": 0.25, "foreign_stop_rate": 0.12, "english_stop_rate": 0.15,
    "nonlatin_share": 0.5, "salad_rate": 0.12, "salad_min_checked": 8, "repeat_share": 0.2, "repeat_min_words": 24,
    "copy_prompt_share": 0.8, "copy_min_prompt_words": 6, "copy_essay_words": 40, "offtopic_prob": 0.05,
    "offtopic_cosine": 0.149, "offtopic_min_words": 20,
}


def words_of(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(_ANON.sub(" ", text or ""))]


def _h(s: str) -> int:
    return zlib.crc32(s.encode())


def measure(text: str, prompt_text: str | None = None) -> dict:
    """Every text measure the flags use (cheap; no model)."""
    text = text or ""
    n_anon = len(_ANON.findall(text))
    clean = _ANON.sub(" ", text)
    raw_words = _WORD.findall(clean)
    lw = [w.lower() for w in raw_words]
    letters = [c for c in clean if c.isalpha()]
    non_space = [c for c in clean if not c.isspace()]
    nonlatin = sum(1 for c in letters if not ("a" <= c.lower() <= "z"))
    ascii_letters = [c for c in letters if "a" <= c.lower() <= "z"]
    vocab = english_words()
    counts = Counter(lw)
    n = len(lw)
    uw = [t.lower() for t in re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", clean)]  # any script, accents kept
    m = {
        "n_words": max(n, len(uw)) + n_anon,
        "dict_share": (sum(c for w, c in counts.items() if w in vocab) / n) if n else 0.0,
        "en_stop_rate": (sum(c for w, c in counts.items() if w in EN_STOP) / n) if n else 0.0,
        "alpha_ratio": (len(letters) / len(non_space)) if non_space else 0.0,
        "vowel_ratio": (sum(1 for c in ascii_letters if c.lower() in "aeiouy") / len(ascii_letters))
        if ascii_letters else 0.0,
        "nonlatin_share": (nonlatin / len(letters)) if letters else 0.0,
        "one_word_share": (counts.most_common(1)[0][1] / n) if n else 0.0,
        "one_word": counts.most_common(1)[0][0] if n else "",
    }
    # foreign function words: accented letters matter here (très, für, não), so a Unicode tokenizer
    fstop = {lang: sum(1 for w in uw if _fold(w) in ws) for lang, ws in _FOREIGN.items()}
    lang, best = max(fstop.items(), key=lambda kv: kv[1]) if uw else ("", 0)
    m["foreign_stop_rate"], m["foreign_lang"] = (best / len(uw)) if uw else 0.0, lang
    m.update(_salad(_ANON.sub(" Name ", text)))  # an anonymised name stays a noun between its neighbours
    m.update(_repeats(text, lw))
    if prompt_text:
        m.update(_copied(lw, words_of(prompt_text)))
    return m


@lru_cache(maxsize=4096)
def _fold(w: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", w) if not unicodedata.combining(c))


def _salad(clean: str) -> dict:
    """Function-word pairs checked inside sentences, how many are impossible in English (one example),
    and sentence-opening words (a capitalised "The", "When", "My"...) sitting mid-sentence after a
    lower-case word, as shuffled sentences leave them."""
    toks = _TOKEN.findall(clean)
    checked = broken = caps = 0
    example = ""
    for a, b, c in zip(toks, toks[1:], toks[2:] + [""]):
        la, lb = a.lower(), b.lower()
        if not lb[:1].isalpha() or not la[:1].isalpha():
            continue  # punctuation between them: a sentence or clause boundary
        if a[:1].islower() and b[:1].isupper() and b[1:].islower() and lb in _OPENERS and not c[:1].isupper():
            caps += 1  # (an opener followed by a capitalised word starts a title: "the story The Mooring Mast")
        if la in DETERMINERS:
            bad = lb in _AFTER_DET
        elif la in SUBJECTS:
            bad = lb in _AFTER_SUBJ
        elif la in PREPOSITIONS:
            bad = lb in _AFTER_PREP
        elif la in MODALS:
            bad = lb in _AFTER_MODAL
        elif la in _BE:
            bad = lb in _AFTER_BE
        elif la == "very":
            bad = lb in _AFTER_VERY
        else:
            continue
        checked += 1
        if bad:
            broken += 1
            example = example or f"{a} {b}"
    # a text with (almost) no sentence punctuation: its mid-sentence capitalised openers are missing
    # full stops, not shuffled words ("we went to school The next day"), so they are not counted
    words = sum(1 for t in toks if t[:1].isalpha())
    if sum(1 for t in toks if t in (".", "!", "?")) * UNPUNCTUATED_WORDS < words:
        caps = 0
    return {"salad_checked": checked, "salad_broken": broken, "salad_caps": caps,
            "salad_rate": ((broken + caps) / checked) if checked else 0.0, "salad_example": example}


def _repeats(text: str, lw: list[str]) -> dict:
    paras = [re.sub(r"\W+", " ", p.lower()).strip() for p in _PARA.split(text.strip()) if p.strip()]
    rep_paras = sum(c - 1 for c in Counter(p for p in paras if len(p) > 40).values() if c > 1)
    seen: dict[int, int] = {}
    covered = bytearray(len(lw))
    for i in range(len(lw) - SHINGLE + 1):
        h = _h(" ".join(lw[i:i + SHINGLE]))
        j = seen.get(h)
        if j is None:
            seen[h] = i
        elif j + SHINGLE <= i:  # a second, non-overlapping occurrence of the same 8 words
            covered[i:i + SHINGLE] = b"\x01" * SHINGLE
    rep = sum(covered)
    return {"repeated_paragraphs": rep_paras, "repeated_words": rep,
            "repeat_share": (rep / len(lw)) if lw else 0.0}


def _copied(lw: list[str], pw: list[str]) -> dict:
    k = min(COPY_NGRAM, len(pw))
    if not k or len(lw) < k:
        return {"prompt_words": len(pw), "copy_prompt_share": 0.0, "copy_essay_words": 0}
    pgrams = {_h(" ".join(pw[i:i + k])): i for i in range(len(pw) - k + 1)}
    ecov, pcov = bytearray(len(lw)), bytearray(len(pw))
    for i in range(len(lw) - k + 1):
        j = pgrams.get(_h(" ".join(lw[i:i + k])))
        if j is not None:
            ecov[i:i + k] = b"\x01" * k
            pcov[j:j + k] = b"\x01" * k
    return {"prompt_words": len(pw), "copy_prompt_share": sum(pcov) / len(pw), "copy_essay_words": sum(ecov)}


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


class Reviewer:
    def __init__(self, cfg: dict, clf: dict | None = None, encoder=None):
        self.cfg = {**DEFAULTS, **cfg}
        self.clf = clf  # {"W": (8, 384), "b": (8,), "classes": ["1".."8"]}
        self.encoder = encoder
        self.version = cfg.get("version", "review-v1")
        self._pemb: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, path: str | Path | None = None, encoder=None) -> Reviewer:
        from workers.ml.variants import check_fitted_on, heads_dir, variant_of

        d = Path(path) if path else heads_dir(variant_of(encoder)) / "review"
        cfg = json.loads((d / "review.json").read_text())
        if encoder is not None:
            check_fitted_on(cfg, encoder, f"review flags {d}")
        clf = None
        if (d / "prompt_clf.npz").exists():
            with np.load(d / "prompt_clf.npz") as z:
                clf = {"W": z["W"].astype(np.float64), "b": z["b"].astype(np.float64),
                       "classes": [str(c) for c in z["classes"]]}
        return cls(cfg, clf, encoder)

    # -- off-topic --------------------------------------------------------------------------------
    def prompt_probs(self, emb: np.ndarray) -> np.ndarray:
        z = np.asarray(emb, dtype=np.float64) @ self.clf["W"].T + self.clf["b"]
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(1, keepdims=True)

    def embed_prompts(self, prompts: list[str]) -> dict[str, np.ndarray]:
        todo = sorted({p for p in prompts if p and p not in self._pemb})
        if todo:
            if self.encoder is None:
                from workers.ml.encoder import Encoder

                self.encoder = Encoder(max_length=512)
            for p, e in zip(todo, self.encoder.embed(todo)):
                self._pemb[p] = e
        return self._pemb

    # -- all flags --------------------------------------------------------------------------------
    def reasons(self, texts: list[str], emb: np.ndarray | None, prompt_ids: list | None = None,
                prompt_texts: list | None = None, prompt_emb: dict[str, np.ndarray] | None = None,
                measures: list[dict] | None = None) -> list[list[str]]:
        """One list of reasons per text ([] = nothing to review). prompt_ids: ASAP prompt ids ("1".."8")
        of the shipped per-prompt graders, or None (teacher rubric; per item None also works);
        prompt_texts: each rubric's prompt/task text or None; prompt_emb: {prompt text: embedding}
        when the caller already embedded them (else they are embedded here, once per distinct text)."""
        n = len(texts)
        pids = list(prompt_ids) if prompt_ids is not None else [None] * n
        ptxt = [(p or "").strip() or None for p in prompt_texts] if prompt_texts is not None else [None] * n
        if len(pids) != n or len(ptxt) != n:
            raise ValueError("texts, prompt_ids and prompt_texts differ in length")
        ms = measures or [measure(t, p) for t, p in zip(texts, ptxt)]
        c = self.cfg
        probs = None
        if emb is not None and self.clf is not None and any(p is not None for p in pids):
            probs = self.prompt_probs(emb)
        need_cos = [i for i in range(n) if emb is not None and pids[i] is None and ptxt[i]
                    and ms[i]["n_words"] >= c["offtopic_min_words"]]
        pe = dict(prompt_emb or {})
        if need_cos and any(ptxt[i] not in pe for i in need_cos):
            pe.update(self.embed_prompts([ptxt[i] for i in need_cos if ptxt[i] not in pe]))
        out = []
        for i, m in enumerate(ms):
            r = self._text_reasons(m)
            if r and r[0].startswith("empty"):
                out.append(r)
                continue
            if m["n_words"] >= c["offtopic_min_words"] and not any(x.startswith(("nonsense", "not English"))
                                                                   for x in r):
                pid = None if pids[i] is None else str(pids[i])
                if probs is not None and pid is not None and pid in self.clf["classes"]:
                    k = self.clf["classes"].index(pid)
                    if probs[i, k] < c["offtopic_prob"]:
                        best = self.clf["classes"][int(probs[i].argmax())]
                        r.append(f"off-topic: the essay does not look like an answer to prompt {pid} (probability "
                                 f"{probs[i, k]:.2f}; the closest prompt is {best})")
                elif pid is None and i in need_cos and ptxt[i] in pe:
                    sim = float(np.dot(emb[i], pe[ptxt[i]]))
                    if sim < c["offtopic_cosine"]:
                        r.append(f"off-topic: the essay seems unrelated to the prompt "
                                 f"(similarity {sim:.2f}, essays on topic are usually above {c['offtopic_cosine']:.2f})")
            out.append(r)
        return out

    def _text_reasons(self, m: dict) -> list[str]:
        c = self.cfg
        n = m["n_words"]
        if n == 0:
            return ["empty: the essay has no words"]
        r = []
        if n < c["short_words"]:
            r.append(f"too short: {n} words (under {c['short_words']}), too little text to grade reliably")
        foreign = (m["nonlatin_share"] >= c["nonlatin_share"]
                   or (m["foreign_stop_rate"] >= c["foreign_stop_rate"] and m["en_stop_rate"] < c["english_stop_rate"]))
        if foreign:
            what = ("written mostly in a non-Latin script" if m["nonlatin_share"] >= c["nonlatin_share"] else
                    f"looks like {m['foreign_lang']}: {_pct(m['foreign_stop_rate'])} of words are {m['foreign_lang']} "
                    f"function words, only {_pct(m['en_stop_rate'])} English ones")
            r.append(f"not English: {what}")
        elif m["alpha_ratio"] < c["nonsense_alpha_ratio"]:
            r.append(f"nonsense: only {_pct(m['alpha_ratio'])} of the characters are letters")
        elif m["dict_share"] < c["nonsense_dict_share"] or not c["vowel_low"] <= m["vowel_ratio"] <= c["vowel_high"]:
            r.append(f"nonsense: only {_pct(m['dict_share'])} of the words are English dictionary words")
        elif n >= 30 and m["one_word_share"] > c["one_word_share"]:
            r.append(f"nonsense: the word '{m['one_word']}' makes up {_pct(m['one_word_share'])} of the text")
        elif m["salad_checked"] >= c["salad_min_checked"] and m["salad_rate"] >= c["salad_rate"]:
            ex = f" (e.g. '{m['salad_example']}')" if m["salad_example"] else ""
            caps = (f" and {m['salad_caps']} sentence-opening word(s) sit mid-sentence" if m["salad_caps"] else "")
            r.append(f"word salad: {m['salad_broken']} of {m['salad_checked']} word pairs around words like "
                     f"'the', 'of', 'they' are impossible in English{ex}{caps}; the word order looks scrambled")
        if m["repeated_paragraphs"]:
            r.append(f"repeated text: {m['repeated_paragraphs']} paragraph(s) appear more than once")
        elif m["repeated_words"] >= c["repeat_min_words"] and m["repeat_share"] >= c["repeat_share"]:
            r.append(f"repeated text: {m['repeated_words']} of {n} words ({_pct(m['repeat_share'])}) repeat "
                     f"an earlier passage word for word")
        if m.get("prompt_words", 0) >= c["copy_min_prompt_words"] and (
                m["copy_prompt_share"] >= c["copy_prompt_share"] or m["copy_essay_words"] >= c["copy_essay_words"]):
            most = f"; {MOSTLY_COPIED}" if m["copy_essay_words"] >= COPY_WITHHOLD_SHARE * n else ""
            r.append(f"copied prompt: {m['copy_essay_words']} of the essay's {n} words copy the prompt text word for "
                     f"word ({_pct(m['copy_prompt_share'])} of the prompt){most}")
        return r


def tag(reason: str) -> str:
    return reason.split(":", 1)[0]


def withheld_by(reasons: list[str]) -> str | None:
    """The first reason that makes a score meaningless (WITHHOLD_TAGS; a copied prompt only where it is
    most of the essay), or None: the essay is scored, flagged or not."""
    for r in reasons:
        t = tag(r)
        if t in WITHHOLD_TAGS or (t == "copied prompt" and r.endswith(MOSTLY_COPIED)):
            return r
    return None

