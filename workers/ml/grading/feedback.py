"""Feedback comments per rubric trait, each grounded in evidence quoted from THIS essay.

    feedback(text, traits, stats=None, prompt_text=None, *, scales=None, score=None, withheld=None)
        -> [{"trait": name, "comment": "...", "evidence": "<exact substring of text>"}]
    trait_scales(rubric) -> {HOLISTIC: the rubric's scale, trait name: its scale (the rubric's when unset)}

`traits`: trait name -> its score (None: withheld), or a plain list of names (no scores known).
One comment per rubric trait whose name maps to a kind we can give evidence for (organization,
conventions, word choice, sentence fluency, content/ideas, voice, prompt adherence, narrativity,
language, style; synonyms as in default.TRAIT_SYNONYMS), or one "overall" comment when the rubric has
no traits (or none of its traits maps). Rules (docs/grading_feedback.md):
- every comment quotes its evidence, a sentence of the essay or a window of at most MAX_EVIDENCE
  words of one, cut at word boundaries: `evidence` is an exact substring of `text`, and the comment
  contains it (or its first words and "..."). Only an empty essay has evidence None;
- a score in the lower half of its scale ((score - min) / (max - min) < 0.5) always gets something
  to improve: the kind's own issue, else a located next step ("To raise this, revise '...': ...");
- otherwise (upper half, or no score known) a strength and/or an issue, at most two sentences;
- a withheld score (`withheld`: the review reason) gets one "overall" item telling the student why
  there is no score yet and what to do.
No model calls; the same text always gets the same feedback. `stats`: an `analyse(text)` result when
the caller already has one.
"""
from __future__ import annotations

import bisect
import re
import statistics
from collections import Counter
from functools import lru_cache

from workers.ml.grading.lexicon import english_words, known_word, speller
from workers.ml.grading.review import EN_STOP
from workers.ml.grading.review import tag as review_tag

_ANON = re.compile(r"@[A-Z]+[0-9]*")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_SENT = re.compile(r"[^.!?\n]+[.!?]*")
_PARA = re.compile(r"\n\s*\n")
_TOK = re.compile(r"\S+")
_LEAD = ",;:)]}\u201d\u2019-"  # never the first character of a quoted sentence
LONG_SENTENCE = 35
UNPUNCTUATED = 40  # conventions: a sentence this long without a comma, semicolon or colon
MAX_EVIDENCE = 25  # words of an evidence window
QUOTE_WORDS = 12   # evidence up to this many words is quoted whole; longer: its first QUOTE_PREFIX words + "..."
QUOTE_PREFIX = 10
LOW = 0.5          # (score - min) / (max - min) below this: the lower half of the scale
HOLISTIC = "__holistic__"  # trait_scales(): the key of the rubric's own scale
TRANSITIONS = ("first", "second", "third", "finally", "however", "therefore", "furthermore", "moreover",
               "in addition", "for example", "for instance", "on the other hand", "as a result", "in conclusion",
               "to sum up", "overall", "consequently", "meanwhile", "also", "because", "although", "instead",
               "another", "lastly", "in the end")
CONCLUSION_CUES = ("in conclusion", "to conclude", "in summary", "to sum up", "overall", "all in all", "that is why",
                   "for these reasons", "in the end", "this is why", "that's why", "in short", "finally")
EXAMPLE_CUES = ("for example", "for instance", "such as", "because", "this shows", "according to")
VAGUE = ("good", "bad", "thing", "things", "stuff", "nice", "lot", "really", "very", "big", "okay", "ok")
TIME_WORDS = ("then", "after", "later", "finally", "suddenly", "next", "before", "when", "once", "soon", "first",
              "that day", "the next day", "afterwards", "meanwhile", "while")
FIRST_PERSON = frozenset("i me my mine myself we us our".split())
KINDS = ("organization", "conventions", "word_choice", "sentence_fluency", "content", "voice", "prompt_adherence",
         "narrativity", "language", "style")
_KIND_SYNONYMS = {"ideas": "content", "ideas_content": "content", "ideas_and_content": "content", "idea": "content",
                  "content": "content", "language": "language", "style": "style", "word": "word_choice",
                  "sentence": "sentence_fluency", "sentences": "sentence_fluency", "spelling": "conventions"}


def trait_kind(name: str) -> str | None:
    """The feedback kind of a rubric trait name: exact, synonym, then any word of the name."""
    from workers.ml.grading.default import TRAIT_SYNONYMS, norm_name

    n = norm_name(name)

    def one(x):
        x = _KIND_SYNONYMS.get(x, TRAIT_SYNONYMS.get(x, x))
        x = _KIND_SYNONYMS.get(x, x)
        return x if x in KINDS else None

    if one(n):
        return one(n)
    for tok in n.split("_"):
        if one(tok):
            return one(tok)
    return None


def trait_scales(rubric: dict | None) -> dict:
    """{HOLISTIC: the rubric's scale, trait name: the trait's scale}; a trait without its own scale
    uses the rubric's."""
    rubric = rubric or {}
    base = rubric.get("scale")
    out = {HOLISTIC: base} if base else {}
    for t in rubric.get("traits") or []:
        if isinstance(t, dict) and t.get("name") and (t.get("scale") or base):
            out[t["name"]] = t.get("scale") or base
    return out


def scale_level(score, scale: dict | None) -> float | None:
    """Where a score sits on its scale, 0 (min) .. 1 (max); None when the score or the scale is unknown."""
    if score is None or not scale:
        return None
    try:
        lo, hi = float(scale["min"]), float(scale["max"])
    except (KeyError, TypeError, ValueError):
        return None
    return (float(score) - lo) / (hi - lo) if hi > lo else None


def quote(evidence: str) -> str:
    """How a comment quotes its evidence: whole up to QUOTE_WORDS words, else its first QUOTE_PREFIX
    words (an exact prefix) and '...'."""
    toks = list(_TOK.finditer(evidence))
    if len(toks) <= QUOTE_WORDS:
        return f"'{evidence}'"
    return f"'{evidence[:toks[QUOTE_PREFIX - 1].end()].rstrip(',;:')}...'"


def _phrase_count(joined: str, phrase: str) -> int:
    """Occurrences of a word sequence in " w1 w2 ... " (lower-case words joined by single spaces)."""
    return joined.count(f" {phrase} ")


_SALUTATION = re.compile(r"^\W*(dear|to whom|hello|hi|greetings)\b", re.I)
_SIGNOFF = re.compile(r"^\s*(sincerely|yours|regards|best|thank you|thanks|from|love|respectfully)\b", re.I)
_FIXED = {"alot": "a lot", "u": "you", "ur": "your", "becuz": "because", "cuz": "because",
          "everytime": "every time", "atleast": "at least", "infront": "in front", "eachother": "each other"}
_S_BASES = frozenset("that what there here it he she who let everyone someone everybody somebody nobody".split())


def _strip_signoff(text: str) -> str:
    """Drop trailing lines that are a sign-off or a signature (<= 4 words, or 'Sincerely', 'Thank you...')."""
    lines = text.rstrip().split("\n")
    while len(lines) > 1 and (len(_WORD.findall(lines[-1])) <= 4 or _SIGNOFF.match(lines[-1])):
        lines.pop()
    return "\n".join(lines)


def _apostrophe(w: str, vocab) -> str | None:
    """A contraction or possessive written without its apostrophe (dont -> don't, thats -> that's)."""
    for end, k in (("nt", 1), ("re", 2), ("ve", 2), ("ll", 2), ("m", 1), ("d", 1), ("s", 1)):
        if w.endswith(end) and (end != "s" or w[:-1] in _S_BASES) and (cand := w[:-k] + "'" + w[-k:]) in vocab:
            return cand
    return None


@lru_cache(maxsize=1 << 15)
def misspelt(w: str) -> bool:
    """A likely misspelling, the word as written. In this order: a pyspellchecker word is fine; a known
    slip (alot) or a missing apostrophe (dont) is caught, even where wordfreq lists it as frequent; then
    lexicon.known_word (regular inflections: frisbees, texting; wordfreq's frequent words:
    smartphones) is fine; anything else is likely misspelt."""
    vocab = english_words()
    if w in vocab:
        return False
    if w in _FIXED or _apostrophe(w, vocab) is not None:
        return True
    return not known_word(w)


def spelling(w: str) -> tuple[bool, str | None]:
    """(likely misspelt, a suggestion or None): the slip's fix (alot -> a lot), the apostrophe (dont ->
    don't), else pyspellchecker's most frequent candidate at edit distance 1 (ties alphabetical)."""
    if not misspelt(w):
        return False, None
    return True, _suggestion(w)


@lru_cache(maxsize=1 << 12)
def _suggestion(w: str) -> str | None:
    if w in _FIXED:
        return _FIXED[w]
    if (a := _apostrophe(w, english_words())) is not None:
        return a
    sp = speller()
    # pyspellchecker's correction() takes the most frequent candidate from a set, so ties went to the
    # process's hash seed; the most frequent, ties broken alphabetically, gives every run the same word
    cands = sorted(sp.candidates(w) or ())
    sug = max(cands, key=sp.word_usage_frequency) if cands else None
    return sug if sug and sug != w else None


def _counts(joined: str, phrases) -> dict:
    out = {}
    for p in phrases:
        k = _phrase_count(joined, p)
        if k:
            out[p] = k
    return out


def analyse(text: str) -> dict:
    """Everything the comments cite, measured once. Keys starting with "_" locate the evidence: the
    text, its sentences ((start, end) in the text, their words' spans and lower-case words)."""
    text = text or ""
    # anonymisation tokens blanked to spaces of the same length, so every offset is one in `text`
    clean = _ANON.sub(lambda m: " " * len(m.group()), text)
    paragraphs = [p for p in _PARA.split(text.strip()) if p.strip()]
    sents, spans, slower = [], [], []
    for m in _SENT.finditer(clean):
        ws = list(_WORD.finditer(clean, m.start(), m.end()))
        if not ws:
            continue
        a, b = m.start(), m.end() - (len(m.group()) - len(m.group().rstrip()))
        # a sentence starts at its first word or opening quote, not at the previous one's closing quote
        while a < b and (text[a].isspace() or text[a] in _LEAD or text[a] in "\"'" and text[a + 1:a + 2].isspace()):
            a += 1
        sents.append((a, b))
        spans.append([w.span() for w in ws])
        slower.append([w.group().lower() for w in ws])
    sentences = [clean[a:b] for a, b in sents]
    sent_words = [[clean[a:b] for a, b in sp] for sp in spans]
    words = _WORD.findall(clean)
    lower = [w.lower() for w in words]
    joined = " " + " ".join(lower) + " "
    anon = [m.start() for m in _ANON.finditer(text)]
    n = len(words) + len(anon)
    vocab = english_words()
    # likely misspellings: lower-case words (capitalised words may be names)
    miss = Counter(w for w in words if w[:1].islower() and len(w) >= 2 and misspelt(w))
    miss_examples = [(w, c, _suggestion(w)) for w, c in miss.most_common(3)]
    content = [w for w in lower if w not in EN_STOP and len(w) > 2]
    cc = Counter(content)
    top_word, top_count = cc.most_common(1)[0] if cc else ("", 0)
    long_idx = [i for i, ws in enumerate(sent_words) if len(ws) > LONG_SENTENCE]
    longest = max(range(len(sent_words)), key=lambda i: len(sent_words[i])) if sent_words else None
    starters = Counter(ws[0].lower() for ws in sent_words if ws)
    # the body's ending: a letter's sign-off ("Sincerely, / Jordan", "Thank you for reading") is not its conclusion
    body = _strip_signoff(clean)
    n_body = sum(1 for a, _ in sents if a < len(body))
    while n_body > 1 and _SIGNOFF.match(sentences[n_body - 1]):
        n_body -= 1  # "Thank you for reading."
    body_sents = sent_words[:n_body]
    body_par = [p for p in _PARA.split(body.strip()) if p.strip()]
    last_par = " " + " ".join(_WORD.findall(body_par[-1].lower())) + " " if body_par else ""
    tail = " " + " ".join(" ".join(ws) for ws in body_sents[-3:]).lower() + " "
    para_starts = [0] + [m.end() for m in _PARA.finditer(text)]
    # a letter's salutation ("Dear Principal,") and sign-off lines: quoted only where nothing else would do
    para_of = [bisect.bisect_right(para_starts, a) - 1 for a, _ in sents]
    aside = [i >= n_body or (i < 2 and len(spans[i]) <= 6 and bool(_SALUTATION.match(sentences[i])))
             for i in range(len(sents))]
    last_body = clean[sents[n_body - 1][0]:sents[n_body - 1][1]] if n_body else ""
    precise = []
    for w in lower:
        if len(w) >= 9 and w in vocab and w not in precise:
            precise.append(w)
    quotes = list(re.finditer(r"[\"\u201c][^\"\u201d]{3,}[\"\u201d]", text))
    return {
        "n_words": n,
        "n_sentences": len(sentences),
        "n_paragraphs": len(paragraphs),
        "sent_lens": [len(ws) for ws in sent_words],
        "long_sentences": len(long_idx),
        "longest_len": len(sent_words[longest]) if longest is not None else 0,
        "misspelled_total": sum(miss.values()),
        "misspelled_distinct": len(miss),
        "misspelled_examples": miss_examples,
        "lowercase_i": sum(1 for w in words if w == "i" or w.startswith("i'")),
        "lowercase_starts": sum(1 for s in sentences if s[:1].islower()),
        "unpunctuated": [i for i, (a, b) in enumerate(sents)
                         if len(spans[i]) >= UNPUNCTUATED and not re.search(r"[,;:]", clean[a:b])],
        "transitions": [t for t in TRANSITIONS if _phrase_count(joined, t)],
        "conclusion_cue": next((c for c in CONCLUSION_CUES if _phrase_count(tail, c)
                                or (len(paragraphs) >= 3 and _phrase_count(last_par, c))), None),
        "example_cues": _counts(joined, EXAMPLE_CUES),
        "top_word": top_word, "top_count": top_count,
        "distinct_words": len(set(lower)),
        "precise": precise[:3], "n_precise": len(precise),
        "vague": _counts(joined, VAGUE),
        "starters": starters.most_common(1)[0] if starters else ("", 0),
        "first_person": sum(1 for w in lower if w in FIRST_PERSON),
        "questions": text.count("?"),
        "exclamations": text.count("!"),
        "quotes": len(quotes),
        "time_words": _counts(joined, TIME_WORDS),
        "_lower_set": frozenset(lower),
        "_text": text,
        "_sents": sents,
        "_spans": spans,
        "_slower": slower,
        "_n_body": n_body,
        "_aside": aside,
        "_body_paragraphs": sorted({para_of[i] for i in range(len(sents)) if not aside[i]}),
        "_body_ends_with_punct": bool(re.search(r"[.!?][\"')\u201d]*$", last_body)),
        "_para_of": para_of,
        "_anon": anon,
        "_quote_at": [m.start() for m in quotes],
    }


# --- evidence: exact substrings of the text --------------------------------------------------------
def _has_anon(e: dict, a: int, b: int) -> bool:
    i = bisect.bisect_left(e["_anon"], a)
    return i < len(e["_anon"]) and e["_anon"][i] < b


def _ev(e: dict, i: int | None, lo: int = 0, hi: int | None = None) -> str | None:
    """Sentence i, or (over MAX_EVIDENCE words) a window of MAX_EVIDENCE of its words that holds words
    lo..hi-1, cut at word boundaries; an exact substring of the text."""
    if i is None or not 0 <= i < len(e["_sents"]):
        return None
    (a, b), sp = e["_sents"][i], e["_spans"][i]
    if len(sp) <= MAX_EVIDENCE:
        return e["_text"][a:b]
    hi = lo + 1 if hi is None else hi
    first = min(max(0, lo - 5, hi - MAX_EVIDENCE), len(sp) - MAX_EVIDENCE)  # from 5 words before the thing
    last = first + MAX_EVIDENCE
    return e["_text"][a if first == 0 else sp[first][0]:b if last == len(sp) else sp[last - 1][1]]


def _prefer_plain(e: dict, idx) -> list[int]:
    """Sentence indices in their order, the plain ones first: a sentence with an anonymisation token
    (@CAPS1) or a letter's salutation or sign-off is quoted only where no other sentence would do."""
    idx = list(idx)
    rank = [(_rank(e, i), k) for k, i in enumerate(idx)]
    return [idx[k] for _, k in sorted(rank)]


def _rank(e: dict, i: int) -> int:
    return int(_has_anon(e, *e["_sents"][i])) + 2 * int(e["_aside"][i])


def _tier(e: dict, idx) -> list[int]:
    """The sentences of idx in the best rank present (plain, else with @-tokens, else salutation/sign-off)."""
    idx = list(idx)
    best = min((_rank(e, i) for i in idx), default=0)
    return [i for i in idx if _rank(e, i) == best]


def _where(e: dict, phrase: str, case: bool = False) -> list[tuple[int, int, int]]:
    """(sentence, first word, end word) of each occurrence of a word sequence (lower case unless case)."""
    ph = phrase.split() if case else phrase.lower().split()
    out = []
    for i, ws in enumerate(e["_slower"]):
        if case:
            ws = [e["_text"][x:y] for x, y in e["_spans"][i]]
        for j in range(len(ws) - len(ph) + 1):
            if ws[j:j + len(ph)] == ph:
                out.append((i, j, j + len(ph)))
    return out


def _ev_of(e: dict, phrases, case: bool = False, last: bool = False) -> str | None:
    """Evidence around the first (or last) occurrence of a phrase (or of the first of several phrases
    that has one), in a plain sentence where there is one (_prefer_plain)."""
    phrases = [phrases] if isinstance(phrases, str) else list(phrases)
    hits = []
    for k, ph in enumerate(phrases):
        hits += [(_rank(e, i), k, -i if last else i, i, lo, hi) for i, lo, hi in _where(e, ph, case)]
    if not hits:
        return None
    *_, i, lo, hi = min(hits)
    return _ev(e, i, lo, hi)


def _first_sentence(e: dict) -> int | None:
    order = _prefer_plain(e, range(len(e["_sents"])))
    return order[0] if order else None


def _any_evidence(text: str) -> str | None:
    """The first sentence of a text, or its first MAX_EVIDENCE words (a text of @-tokens only); None for
    an empty one."""
    e = analyse(text) if text else None
    if e and e["_sents"]:
        return _ev(e, _first_sentence(e))
    s = (text or "").strip().split("\n")[0].strip()
    toks = list(_TOK.finditer(s))
    return s[:toks[min(len(toks), MAX_EVIDENCE) - 1].end()] if toks else None


def _part(template: str, ev: str | None):
    """One sentence of a comment with its evidence quoted where the template says {q}; None without
    evidence (a comment with nothing to point at is not made)."""
    return (template.replace("{q}", quote(ev)), ev) if ev else None


def _list(xs, n=3) -> str:
    return ", ".join(f"'{x}'" for x in list(xs)[:n])


def _longest(e: dict, cap: int | None = None) -> int | None:
    lens = e["sent_lens"]
    idx = _tier(e, range(len(lens)))
    idx = [i for i in idx if cap is None or lens[i] <= cap] or idx
    return max(idx, key=lambda i: lens[i]) if idx else None


def _last_body(e: dict) -> int | None:
    return e["_n_body"] - 1 if e["_n_body"] else None


# --- one function per kind: ([strength parts], [issue parts]); a part is (sentence, evidence) ----------
def _organization(e: dict) -> tuple[list, list]:
    n, bp = e["n_words"], e["_body_paragraphs"]
    p = len(bp)  # paragraphs of the body: a letter's salutation and sign-off are not its structure
    good, issues = [], []
    tr = e["transitions"]
    if e["conclusion_cue"] and len(tr) >= 2:
        good.append(_part(f"Linking words such as {_list(tr)} guide the reader, and the ending signals a "
                          f"conclusion ('{e['conclusion_cue']}'): {{q}}.", _ev_of(e, e["conclusion_cue"], last=True)))
    elif len(tr) >= 2:
        good.append(_part(f"Linking words such as {_list(tr)} connect the ideas, as in {{q}}.", _ev_of(e, tr)))
    elif p >= 3:
        second = next((i for i, k in enumerate(e["_para_of"]) if k == bp[1] and not e["_aside"][i]), None)
        good.append(_part(f"The essay is divided into {p} paragraphs; the second begins {{q}}.", _ev(e, second)))
    if p <= 1 and n > 150:
        # where a new paragraph could start: a sentence opening with a linking word, else one a third in
        opener = next((i for i, ws in enumerate(e["_slower"]) if i > 0 and ws and ws[0] in TRANSITIONS), None)
        at = opener if opener is not None else max(1, len(e["_sents"]) // 3)
        issues.append(_part(f"The essay is {n} words in a single paragraph; breaking it into an introduction, body "
                            f"paragraphs and a conclusion would make it easier to follow (a new paragraph could "
                            f"start at {{q}}).", _ev(e, min(at, len(e["_sents"]) - 1))))
    elif n >= 120 and not e["conclusion_cue"]:
        issues.append(_part("It stops at {q} without a closing sentence that sums up the main point "
                            "(no 'In conclusion', 'Overall' or similar).", _ev(e, _last_body(e))))
    elif n > 100 and not tr:
        issues.append(_part(f"None of the {e['n_sentences']} sentences uses a linking word such as 'however', "
                            f"'first' or 'for example'; one would connect {{q}} to the point before it.",
                            _ev(e, 1 if len(e["_sents"]) > 1 else 0)))
    return good, issues


def _conventions(e: dict) -> tuple[list, list]:
    issues = []
    if e["misspelled_examples"]:
        ex = ", ".join(f"'{w}'" + (f" ({s}?)" if s else "") for w, c, s in e["misspelled_examples"])
        issues.append(_part(f"{e['misspelled_total']} likely misspelling(s) were found, e.g. {ex}, as in {{q}}.",
                            _ev_of(e, e["misspelled_examples"][0][0], case=True)))
    caps = []
    if e["lowercase_i"]:
        caps.append(f"'i' is written in lower case {e['lowercase_i']} time(s)")
    if e["lowercase_starts"]:
        caps.append(f"{e['lowercase_starts']} of {e['n_sentences']} sentences start with a lower-case letter")
    if caps:
        low = next((i for i, (a, _) in enumerate(e["_sents"]) if e["_text"][a:a + 1].islower()), None)
        ev = _ev(e, low) if low is not None else (_ev_of(e, "i", case=True) or _ev_of(e, "i'm", case=True))
        issues.append(_part("Capitalisation: " + " and ".join(caps) + ", e.g. {q}.", ev))
    if e["unpunctuated"]:
        i = e["unpunctuated"][0]
        issues.append(_part(f"A sentence of {e['sent_lens'][i]} words has no comma or full stop inside it: {{q}}; "
                            f"punctuation would show where each idea ends.", _ev(e, i)))
    elif not e["_body_ends_with_punct"] and e["n_words"] >= 20 and e["_sents"]:
        issues.append(_part("The last sentence has no full stop: {q}.", _ev(e, _last_body(e))))
    good = []
    if not e["misspelled_examples"] and e["n_words"] >= 50:
        lead = f"No likely misspellings were found in {e['n_words']} words"
        if not issues:
            good.append(_part(f"{lead}, and every sentence starts with a capital letter, as in {{q}}.",
                              _ev(e, _longest(e, MAX_EVIDENCE))))
        else:
            good.append(_part(f"{lead}, as in {{q}}.", _ev(e, _longest(e, MAX_EVIDENCE))))
    return good, issues


def _most(e: dict, words) -> int | None:
    """The sentence with the most occurrences of these lower-case words (the first of equals)."""
    words = set(words)
    counts = [sum(1 for w in ws if w in words) for ws in e["_slower"]]
    hits = _tier(e, [i for i, c in enumerate(counts) if c])
    return max(hits, key=lambda i: counts[i]) if hits else None


def _word_choice(e: dict) -> tuple[list, list]:
    good, issues = [], []
    if e["n_precise"] >= 3:
        good.append(_part(f"The vocabulary is varied: {e['distinct_words']} different words in {e['n_words']}, "
                          f"including longer words such as {_list(e['precise'])}, as in {{q}}.",
                          _ev_of(e, e["precise"])))
    share = e["top_count"] / max(e["n_words"], 1)
    vague = [w for w in VAGUE if " " not in w and w in e["vague"]]
    if e["top_count"] >= 5 and share >= 0.03:
        issues.append(_part(f"The word '{e['top_word']}' is used {e['top_count']} times ({share:.0%} of the words); "
                            f"a synonym or pronoun would vary it, e.g. in {{q}}.", _ev(e, _most(e, [e["top_word"]]))))
    elif sum(e["vague"].values()) >= 4:
        top = sorted(e["vague"].items(), key=lambda kv: -kv[1])[:3]
        issues.append(_part(f"General words appear {sum(e['vague'].values())} times ("
                            + ", ".join(f"'{w}' x{c}" for w, c in top)
                            + "); a more exact word would say more, e.g. in {q}.", _ev(e, _most(e, vague))))
    return good, issues


def _sentence_fluency(e: dict) -> tuple[list, list]:
    lens = e["sent_lens"]
    if not lens:
        return [], []
    good, issues = [], []
    if len(lens) >= 4 and not e["long_sentences"] and statistics.pstdev(lens) >= 4:
        good.append(_part(f"Sentence lengths vary from {min(lens)} to {max(lens)} words and none runs on, as in "
                          f"{{q}}.", _ev(e, _longest(e, MAX_EVIDENCE))))
    w, c = e["starters"]
    if e["long_sentences"]:
        verb = "runs" if e["long_sentences"] == 1 else "run"
        i = max(_tier(e, [k for k, n in enumerate(lens) if n > LONG_SENTENCE]), key=lambda k: lens[k])
        which = "the longest" if lens[i] == max(lens) else "one of them"
        issues.append(_part(f"{e['long_sentences']} of {len(lens)} sentences {verb} over {LONG_SENTENCE} words; "
                            f"{which} ({lens[i]} words) starts {{q}}.", _ev(e, i)))
    elif len(lens) >= 5 and statistics.mean(lens) < 8:
        short = next((i for i in range(len(lens) - 1) if lens[i] < 8 and lens[i + 1] < 8), 0)
        issues.append(_part(f"Most sentences are very short (on average {statistics.mean(lens):.0f} words), as in "
                            f"{{q}}; joining some would help the flow.", _ev(e, short)))
    elif len(lens) >= 5 and c >= max(3, 0.4 * len(lens)):
        same = [i for i, ws in enumerate(e["_slower"]) if ws and ws[0] == w]
        issues.append(_part(f"{c} of {len(lens)} sentences begin with '{w}'; varying the openings would help the "
                            f"flow, e.g. in {{q}}.", _ev(e, same[1] if len(same) > 1 else same[0])))
    return good, issues


def _cue_sentence(e: dict) -> str | None:
    cues = sorted(e["example_cues"].items(), key=lambda kv: -kv[1])
    if cues:
        return _ev_of(e, [c for c, _ in cues])
    if e["_quote_at"]:
        at = e["_quote_at"][0]
        i = next((k for k, (a, b) in enumerate(e["_sents"]) if a <= at < b or at < a), None)
        return _ev(e, i)
    return None


def _content(e: dict) -> tuple[list, list]:
    good, issues = [], []
    cues = e["example_cues"]
    n_cues = sum(cues.values())
    bits = [f"'{c}' x{k}" for c, k in sorted(cues.items(), key=lambda kv: -kv[1])[:3]]
    if e["quotes"]:
        bits.append(f"{e['quotes']} quotation(s)")
    # a strength needs real support: two reasons or examples, or a quotation (one 'because' is not a case)
    if n_cues >= 2 or e["quotes"]:
        good.append(_part(f"Points are backed with reasons or details ({', '.join(bits)}), as in {{q}}.",
                          _cue_sentence(e)))
    if e["n_words"] < 150:
        issues.append(_part(f"At {e['n_words']} words in {e['n_sentences']} sentence(s), there is room for more "
                            f"reasons, examples or details, e.g. after {{q}}.", _ev(e, _unsupported(e))))
    elif not cues and not e["quotes"]:
        issues.append(_part("No example or reason is signalled ('for example', 'such as', 'because'); a specific "
                            "detail would support {q}.", _ev(e, _unsupported(e))))
    elif n_cues == 1 and not e["quotes"]:
        issues.append(_part(f"Only one point is backed with a reason ({bits[0]}, in {{q}}); the other points need "
                            f"reasons or examples too.", _cue_sentence(e)))
    return good, issues


def _unsupported(e: dict) -> int | None:
    """The first sentence (a claim, usually) without a reason or example cue."""
    for i in _prefer_plain(e, range(len(e["_slower"]))):
        j = " " + " ".join(e["_slower"][i]) + " "
        if not any(_phrase_count(j, c) for c in EXAMPLE_CUES):
            return i
    return _first_sentence(e)


def _voice(e: dict) -> tuple[list, list]:
    fp, q, x = e["first_person"], e["questions"], e["exclamations"]
    if fp >= 3 or q or x:
        bits = [f"first-person words {fp} times"] if fp else []
        bits += [f"{q} question(s)"] if q else []
        bits += [f"{x} exclamation(s)"] if x else []
        ev = _ev(e, next((i for i, (a, b) in enumerate(e["_sents"]) if e["_text"][b - 1:b] in "?!"), None)) \
            if q or x else None
        ev = ev or _ev(e, _most(e, FIRST_PERSON))
        return [_part(f"The writer's own voice shows in {', '.join(bits)}, as in {{q}}.", ev)], []
    if fp:
        return [], [_part(f"The writer's own voice shows only briefly ({fp} first-person word(s), in {{q}}); saying "
                          f"what you think and why would make it stronger.", _ev(e, _most(e, FIRST_PERSON)))]
    if e["n_words"] >= 80:
        return [], [_part("The essay never uses 'I', a question or an exclamation, so the writer's own voice is hard "
                          "to hear; {q} could say what you think.", _ev(e, _first_sentence(e)))]
    return [], []


def _prompt_keys(prompt_text: str | None) -> list[str]:
    keys = []
    for w in _WORD.findall((prompt_text or "").lower()):
        if w not in EN_STOP and len(w) > 3 and w not in keys and w not in {"write", "essay", "explain", "describe",
                                                                           "story", "letter", "support", "details"}:
            keys.append(w)
    return keys


def _prompt_adherence(e: dict, prompt_text: str | None) -> tuple[list, list]:
    keys = _prompt_keys(prompt_text)
    if not keys:
        return [], []
    used = [k for k in keys if k in e["_lower_set"] or k.rstrip("s") in e["_lower_set"]]
    if len(used) >= max(1, len(keys) // 2):
        forms = set(used) | {k.rstrip("s") for k in used}
        return [_part(f"The essay stays with the task: it uses {len(used)} of the prompt's {len(keys)} key words "
                      f"({_list(used)}), as in {{q}}.", _ev(e, _most(e, forms)))], []
    missing = [k for k in keys if k not in used]
    return [], [_part(f"Only {len(used)} of the prompt's {len(keys)} key words appear (missing {_list(missing)}); "
                      f"check that the essay answers the task, starting with {{q}}.", _ev(e, _first_sentence(e)))]


def _links_in(ws: list[str]) -> bool:
    j = " " + " ".join(ws) + " "
    return any(_phrase_count(j, t) for t in TIME_WORDS + TRANSITIONS)


def _narrativity(e: dict) -> tuple[list, list]:
    """Narrativity (ASAP++): how the events or ideas are connected into a coherent account."""
    links = dict(e["time_words"])
    for t in e["transitions"]:
        links.setdefault(t, 1)
    n_links = sum(links.values())
    if n_links >= 3 or e["quotes"]:
        order = sorted(links, key=lambda k: -links[k])
        bits = [f"linking and time words such as {_list(order)} ({n_links} in all)"] if n_links else []
        bits += [f"{e['quotes']} quoted line(s)"] if e["quotes"] else []
        ev = _ev_of(e, order) if order else _cue_sentence(e)
        return [_part(f"The events and ideas are connected with {' and '.join(bits)}, as in {{q}}.", ev)], []
    if e["n_sentences"] >= 4:
        used = f" (only {_list(links)})" if links else ""
        bare = next((i for i in range(1, len(e["_slower"])) if not _links_in(e["_slower"][i])), 1)
        return [], [_part(f"Few words link the {e['n_sentences']} sentences{used}; words such as 'then', 'because' "
                          f"or 'after that' would connect the events, e.g. before {{q}}.", _ev(e, bare))]
    return [], []


def _language(e: dict) -> tuple[list, list]:
    g1, i1 = _conventions(e)
    g2, i2 = _word_choice(e)
    return g2 + g1, i1 + i2


def _style(e: dict) -> tuple[list, list]:
    g1, i1 = _word_choice(e)
    g2, i2 = _sentence_fluency(e)
    return g1 + g2, i2 + i1


_GEN = {"organization": _organization, "conventions": _conventions, "word_choice": _word_choice,
        "sentence_fluency": _sentence_fluency, "content": _content, "voice": _voice,
        "narrativity": _narrativity, "language": _language, "style": _style}


# --- the located next step: what a lower-half score gets when its kind found no issue ----------------
def _next_step(kind: str, e: dict):
    """'To raise this, revise <quoted sentence>: <what to do>', the sentence chosen for the kind."""
    if not e["_sents"]:
        return None
    kind = {"language": "conventions", "style": "sentence_fluency"}.get(kind, kind)
    lens = e["sent_lens"]
    if kind == "organization":
        if not e["conclusion_cue"]:
            i, todo = _last_body(e), "follow it with a closing sentence that sums up your main point"
        elif len(e["transitions"]) < 3 and len(lens) > 2:
            i = next((k for k in range(1, len(lens)) if not _links_in(e["_slower"][k][:3])), len(lens) // 2)
            todo = "link it to the point before it with a word such as 'however', 'also' or 'as a result'"
        else:
            i, todo = _first_sentence(e), "make it state your main point, so that every paragraph follows from it"
    elif kind == "conventions":
        i, todo = _longest(e), "read it aloud and check each comma, full stop, capital letter and spelling"
    elif kind == "word_choice":
        vague = [w for w in VAGUE if " " not in w and w in e["vague"]]
        i = _most(e, vague)
        if i is not None:
            w = next(x for x in e["_slower"][i] if x in vague)
            todo = f"replace '{w}' with a word that says exactly what you mean"
        else:
            i = _most(e, [e["top_word"]]) if e["top_word"] else _first_sentence(e)
            todo = "replace a general or repeated word with a more exact one"
    elif kind == "sentence_fluency":
        i = _longest(e)
        if lens[i] >= 25:
            todo = "split it into two clear sentences"
        else:
            i = min(_tier(e, range(len(lens))), key=lambda k: lens[k])
            todo = "join it to the sentence next to it with a word such as 'because', 'which' or 'but'"
    elif kind == "content":
        i, todo = _unsupported(e), "add a reason or a specific example that supports it ('because...', 'for example...')"
    elif kind == "voice":
        i, todo = _first_sentence(e), "say it the way you would say it to your reader, with your own view and why"
    elif kind == "prompt_adherence":
        i, todo = _first_sentence(e), "make it answer the task directly, in your own words"
    else:  # narrativity
        i = next((k for k in range(1, len(lens)) if not _links_in(e["_slower"][k])), _first_sentence(e))
        todo = "connect it to what came before with a word such as 'then', 'after that' or 'because'"
    return _part(f"To raise this, revise {{q}}: {todo}.", _ev(e, i))


def _parts(kind: str, e: dict, prompt_text: str | None = None) -> tuple[list, list]:
    good, issues = _prompt_adherence(e, prompt_text) if kind == "prompt_adherence" else _GEN[kind](e)
    return [p for p in good if p], [p for p in issues if p]


def comment_parts(kind: str, e: dict, level: float | None = None, prompt_text: str | None = None):
    """(strength, issue) for one kind, each (sentence, evidence) or None. level: the score's place on its
    scale (scale_level); in the lower half (< LOW) the issue is never None (the kind's own, else a
    located next step)."""
    good, issues = _parts(kind, e, prompt_text)
    issue = issues[0] if issues else None
    if issue is None and level is not None and level < LOW:
        issue = _next_step(kind, e)
    return (good[0] if good else None), issue


def _chosen(kind: str, e: dict, level: float | None, prompt_text: str | None) -> list:
    """The parts a comment is made of, the one whose evidence it carries first: lower half: the issue,
    then a second issue (else a strength); otherwise a strength, then an issue (else up to two issues)."""
    good, issues = _parts(kind, e, prompt_text)
    if level is not None and level < LOW:
        issue = issues[0] if issues else _next_step(kind, e)
        if issue is None:
            return []
        return [issue] + (issues[1:2] or good[:1])
    return good[:1] + issues[:1] if good else issues[:2]


def comment_for(kind: str, e: dict, prompt_text: str | None = None, level: float | None = None) -> str | None:
    parts = _chosen(kind, e, level, prompt_text)
    return " ".join(p[0] for p in parts) if parts else None


def _overall(e: dict, prompt_text: str | None, level: float | None = None):
    """(comment, evidence) for the essay as a whole, or None."""
    first = f"{e['n_words']} words in {e['n_sentences']} sentence(s) and {e['n_paragraphs']} paragraph(s)."
    part = None
    for kind in ("organization", "conventions", "sentence_fluency", "content", "word_choice"):
        issues = _parts(kind, e)[1]
        if issues:
            part = issues[0]
            break
    if part is None and level is not None and level < LOW:
        part = _next_step("content", e)
    if part is None:
        for kind in ("organization", "conventions", "word_choice"):
            good = _parts(kind, e)[0]
            if good:
                part = good[0]
                break
    return (f"{first} {part[0]}", part[1]) if part else None


# --- a withheld score: why there is none yet, and what to do ------------------------------------------
def _copied_sentence(e: dict, prompt_text: str | None) -> int | None:
    """The first sentence sharing 6 words in a row with the prompt (the copied part)."""
    pw = [w.lower() for w in _WORD.findall(_ANON.sub(" ", prompt_text or ""))]
    grams = {tuple(pw[i:i + 6]) for i in range(len(pw) - 5)}
    for i, ws in enumerate(e["_slower"]):
        if any(tuple(ws[j:j + 6]) in grams for j in range(len(ws) - 5)):
            return i
    return None


def withheld_comment(text: str, reason: str, prompt_text: str | None = None, stats: dict | None = None) -> dict:
    """The one "overall" item of an essay whose score was withheld (reason: its review reason, see
    review.WITHHOLD_TAGS): to the student, why there is no score yet and what to do, quoting the text."""
    e = stats if stats is not None and "_sents" in stats else analyse(text)
    t = review_tag(reason or "")
    if t == "empty" or not (text or "").strip():
        return {"trait": "overall", "evidence": None,
                "comment": "Nothing was submitted yet, so there is no score. Write your answer to the task and "
                           "hand it in again."}
    ev = None
    if t == "word salad":
        m = re.search(r"e\.g\. '([^']+)'", reason)
        pair = m.group(1).split() if m else []
        if len(pair) == 2:
            ev = _ev_of(e, " ".join(pair), case=True) or _ev_of(e, " ".join(pair))
    elif t == "copied prompt":
        ev = _ev(e, _copied_sentence(e, prompt_text))
    ev = ev or _any_evidence(text)
    n = e["n_words"]
    task = ""
    if toks := _TOK.findall(prompt_text or ""):
        task = " ('" + " ".join(toks[:QUOTE_PREFIX]).rstrip(",;:.") + ("...'" if len(toks) > QUOTE_PREFIX else "'") + ")"
    c = WITHHELD_ADVICE.get(t, "There is no score yet: a teacher will read your essay first ({tag}), starting with {q}.")
    c = c.replace("{n}", str(n)).replace("{task}", task).replace("{tag}", t)
    return {"trait": "overall", "comment": c.replace("{q}", quote(ev)) if ev else c.replace(" {q}", ""),
            "evidence": ev}


# what a student is told when the score is withheld, per review tag ({q}: the quoted evidence)
WITHHELD_ADVICE = {
    "too short": ("There is no score yet: your answer, {q}, has only {n} word(s), too few to grade fairly. Write more "
                  "that answers the task: your main point, then the reasons and examples that support it."),
    "nonsense": ("There is no score yet: {q} does not read as English words and sentences. Write your answer in real "
                 "words and full sentences, then hand it in again."),
    "word salad": ("There is no score yet: the words in {q} are not in an order that makes sentences. Write your answer "
                   "in full sentences, the way you would explain it to someone."),
    "off-topic": ("There is no score yet: your essay, starting {q}, does not seem to answer this task. Read the task "
                  "again{task} and write about what it asks."),
    "copied prompt": ("There is no score yet: most of your essay repeats the task's own words, as in {q}. Answer the "
                      "task in your own words: say what you think and why."),
}


def feedback(text: str, traits, stats: dict | None = None, prompt_text: str | None = None, *,
             scales: dict | None = None, score: float | None = None, withheld: str | None = None) -> list[dict]:
    """[{"trait": rubric trait name or "overall", "comment": text quoting the evidence, "evidence": exact
    substring of text (None only for an empty essay)}], one per trait that maps to a kind with evidence;
    "overall" when the rubric has no traits or none maps. traits: name -> score (None: unknown) or a
    list of names; scales: trait_scales(rubric); score: the holistic score; withheld: the review reason
    that made the scores meaningless (then one "overall" item saying so)."""
    if withheld:
        return [withheld_comment(text, withheld, prompt_text, stats)]
    e = stats if stats is not None and "_sents" in stats else analyse(text)
    if e["n_words"] == 0:
        return [{"trait": "overall", "comment": "No text was submitted, so there is nothing to give feedback on.",
                 "evidence": None}]
    scales = scales or {}
    scored = traits if isinstance(traits, dict) else {name: None for name in traits or []}
    out = []
    for name, value in scored.items():
        kind = trait_kind(name)
        if kind is None:
            continue
        level = scale_level(value, scales.get(name) or scales.get(HOLISTIC))
        parts = _chosen(kind, e, level, prompt_text)
        if parts:
            out.append({"trait": name, "comment": " ".join(p[0] for p in parts), "evidence": parts[0][1]})
    if not out:
        c = _overall(e, prompt_text, scale_level(score, scales.get(HOLISTIC)))
        if c:
            out.append({"trait": "overall", "comment": c[0], "evidence": c[1]})
    return out
