"""Feedback comments per rubric trait, each grounded in evidence counted or quoted from THIS essay.

    feedback(text, trait_names, stats=None, prompt_text=None) -> [{"trait": name, "comment": "..."}]

One comment per rubric trait whose name maps to a kind we can give evidence for (organization,
conventions, word choice, sentence fluency, content/ideas, voice, prompt adherence, narrativity,
language, style; synonyms as in default.TRAIT_SYNONYMS), or one "overall" comment when the rubric has
no traits (or none of its traits maps). A comment is at most two sentences: what was done well (with
its evidence) and/or the most useful thing to fix (with its evidence). A comment with no evidence
behind it is not emitted. `stats` is an `analyse(text)` result when the caller already has one.
How each comment is produced: docs/grading_feedback.md.
"""
from __future__ import annotations

import re
import statistics
from collections import Counter

from workers.ml.grading.lexicon import english_words, speller
from workers.ml.grading.review import EN_STOP

_ANON = re.compile(r"@[A-Z]+[0-9]*")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_SENT = re.compile(r"[^.!?\n]+[.!?]*")
_PARA = re.compile(r"\n\s*\n")
LONG_SENTENCE = 35
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


def _q(words: list[str], n: int = 8) -> str:
    """The first n words, quoted without punctuation that could end our own sentence."""
    s = " ".join(re.sub(r"[.!?\"]", "", w) for w in words[:n]).strip()
    return f"'{s}{'...' if len(words) > n else ''}'"


def _phrase_count(joined: str, phrase: str) -> int:
    """Occurrences of a word sequence in " w1 w2 ... " (lower-case words joined by single spaces)."""
    return joined.count(f" {phrase} ")


_SIGNOFF = re.compile(r"^\s*(sincerely|yours|regards|best|thank you|thanks|from|love|respectfully)\b", re.I)
_FIXED = {"alot": "a lot", "u": "you", "ur": "your", "becuz": "because", "cuz": "because"}
_S_BASES = frozenset("that what there here it he she who let everyone someone everybody somebody nobody".split())


def _strip_signoff(text: str) -> str:
    """Drop trailing lines that are a sign-off or a signature (<= 4 words, or 'Sincerely', 'Thank you...')."""
    lines = text.rstrip().split("\n")
    while len(lines) > 1 and (len(_WORD.findall(lines[-1])) <= 4 or _SIGNOFF.match(lines[-1])):
        lines.pop()
    return "\n".join(lines)


def _suggest(w: str, vocab, sp) -> str | None:
    """A likely intended word: a missing apostrophe (dont -> don't), a known slip, else pyspellchecker at
    edit distance 1 (None when it has no candidate)."""
    if w in _FIXED:
        return _FIXED[w]
    for end, k in (("nt", 1), ("re", 2), ("ve", 2), ("ll", 2), ("m", 1), ("d", 1), ("s", 1)):
        if w.endswith(end) and (end != "s" or w[:-1] in _S_BASES) and (cand := w[:-k] + "'" + w[-k:]) in vocab:
            return cand  # a contraction or possessive without its apostrophe
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
    """Everything the comments cite, measured once."""
    text = text or ""
    clean = _ANON.sub(" ", text)
    paragraphs = [p for p in _PARA.split(text.strip()) if p.strip()]
    sentences = [s.strip() for s in _SENT.findall(clean) if _WORD.search(s)]
    sent_words = [_WORD.findall(s) for s in sentences]
    words = _WORD.findall(clean)
    lower = [w.lower() for w in words]
    joined = " " + " ".join(lower) + " "
    n = len(words) + len(_ANON.findall(text))
    vocab = english_words()
    # likely misspellings: lower-case words not in the dictionary (capitalised words may be names)
    miss = Counter(w for w in words if w[:1].islower() and len(w) >= 2 and w not in vocab)
    sp = speller()
    miss_examples = []
    for w, c in miss.most_common(3):
        sug = _suggest(w, vocab, sp)
        miss_examples.append((w, c, sug))
    content = [w for w in lower if w not in EN_STOP and len(w) > 2]
    cc = Counter(content)
    top_word, top_count = cc.most_common(1)[0] if cc else ("", 0)
    long_idx = [i for i, ws in enumerate(sent_words) if len(ws) > LONG_SENTENCE]
    longest = max(range(len(sent_words)), key=lambda i: len(sent_words[i])) if sent_words else None
    starters = Counter(ws[0].lower() for ws in sent_words if ws)
    # the body's ending: a letter's sign-off ("Sincerely, / Jordan", "Thank you for reading") is not its conclusion
    body = _strip_signoff(clean)
    body_par = [p for p in _PARA.split(body.strip()) if p.strip()]
    body_sents = [x for x in _SENT.findall(body) if _WORD.search(x)]
    while len(body_sents) > 1 and _SIGNOFF.match(body_sents[-1]):
        body_sents.pop()  # "Thank you for reading."
    body_sents = [_WORD.findall(x) for x in body_sents]
    last_par = " " + " ".join(_WORD.findall(body_par[-1].lower())) + " " if body_par else ""
    tail = " " + " ".join(" ".join(ws) for ws in body_sents[-3:]).lower() + " "
    precise = []
    for w in lower:
        if len(w) >= 9 and w in vocab and w not in precise:
            precise.append(w)
    return {
        "n_words": n,
        "n_sentences": len(sentences),
        "n_paragraphs": len(paragraphs),
        "sent_lens": [len(ws) for ws in sent_words],
        "long_sentences": len(long_idx),
        "longest_len": len(sent_words[longest]) if longest is not None else 0,
        "longest_start": _q(sent_words[longest]) if longest is not None else "",
        "last_start": _q(body_sents[-1], 7) if body_sents else "",
        "misspelled_total": sum(miss.values()),
        "misspelled_distinct": len(miss),
        "misspelled_examples": miss_examples,
        "lowercase_i": sum(1 for w in words if w == "i" or w.startswith("i'")),
        "lowercase_starts": sum(1 for s in sentences if s[:1].islower()),
        "ends_with_punct": bool(re.search(r"[.!?][\"')\s]*$", text.strip())),
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
        "quotes": len(re.findall(r"[\"\u201c][^\"\u201d]{3,}[\"\u201d]", text)),
        "time_words": _counts(joined, TIME_WORDS),
        "_lower_set": frozenset(lower),
    }


def _join(parts: list[str | None]) -> str | None:
    parts = [p for p in parts if p][:2]
    return " ".join(parts) if parts else None


def _list(xs, n=3) -> str:
    return ", ".join(f"'{x}'" for x in list(xs)[:n])


# --- one function per kind: (strength or None, issue or None), each a full sentence with evidence ------
def _organization(e: dict) -> tuple[str | None, str | None]:
    n, p = e["n_words"], e["n_paragraphs"]
    good = None
    if e["conclusion_cue"] and len(e["transitions"]) >= 2:
        good = (f"Linking words such as {_list(e['transitions'])} guide the reader, and the ending signals a "
                f"conclusion ('{e['conclusion_cue']}').")
    elif len(e["transitions"]) >= 2:
        good = f"Linking words such as {_list(e['transitions'])} connect the ideas."
    elif p >= 3:
        good = f"The essay is divided into {p} paragraphs."
    issue = None
    if p <= 1 and n > 150:
        issue = (f"The essay is {n} words in a single paragraph; breaking it into an introduction, body "
                 f"paragraphs and a conclusion would make it easier to follow.")
    elif n >= 120 and not e["conclusion_cue"]:
        issue = (f"It stops at {e['last_start']} without a closing sentence that sums up the main point "
                 f"(no 'In conclusion', 'Overall' or similar).")
    elif n > 100 and not e["transitions"]:
        issue = f"None of the {e['n_sentences']} sentences uses a linking word such as 'however', 'first' or 'for example'."
    return good, issue


def _conventions(e: dict) -> tuple[str | None, str | None]:
    issues = []
    if e["misspelled_examples"]:
        ex = ", ".join(f"'{w}'" + (f" ({s}?)" if s else "") for w, c, s in e["misspelled_examples"])
        issues.append(f"{e['misspelled_total']} likely misspelling(s) were found, e.g. {ex}.")
    caps = []
    if e["lowercase_i"]:
        caps.append(f"'i' is written in lower case {e['lowercase_i']} time(s)")
    if e["lowercase_starts"]:
        caps.append(f"{e['lowercase_starts']} of {e['n_sentences']} sentences start with a lower-case letter")
    if caps:
        issues.append("Capitalisation: " + " and ".join(caps) + ".")
    if not issues and e["n_words"] >= 50:
        return (f"No likely misspellings were found in {e['n_words']} words, and every sentence starts with a "
                f"capital letter."), None
    return None, _join(issues)


def _word_choice(e: dict) -> tuple[str | None, str | None]:
    good = None
    if e["n_precise"] >= 3:
        good = (f"The vocabulary is varied: {e['distinct_words']} different words in {e['n_words']}, including "
                f"longer words such as {_list(e['precise'])}.")
    issue = None
    share = e["top_count"] / max(e["n_words"], 1)
    if e["top_count"] >= 5 and share >= 0.03:
        issue = (f"The word '{e['top_word']}' is used {e['top_count']} times ({share:.0%} of the words); "
                 f"a synonym or pronoun would vary it.")
    elif sum(e["vague"].values()) >= 4:
        top = sorted(e["vague"].items(), key=lambda kv: -kv[1])[:3]
        issue = (f"General words appear {sum(e['vague'].values())} times ("
                 + ", ".join(f"'{w}' x{c}" for w, c in top) + "); a more exact word would say more.")
    return good, issue


def _sentence_fluency(e: dict) -> tuple[str | None, str | None]:
    lens = e["sent_lens"]
    if not lens:
        return None, None
    good = None
    if len(lens) >= 4 and not e["long_sentences"] and statistics.pstdev(lens) >= 4:
        good = f"Sentence lengths vary from {min(lens)} to {max(lens)} words and none runs on."
    issue = None
    w, c = e["starters"]
    if e["long_sentences"]:
        verb = "runs" if e["long_sentences"] == 1 else "run"
        issue = (f"{e['long_sentences']} of {len(lens)} sentences {verb} over {LONG_SENTENCE} words; the longest "
                 f"({e['longest_len']} words) starts {e['longest_start']}.")
    elif len(lens) >= 5 and statistics.mean(lens) < 8:
        issue = f"Most sentences are very short (on average {statistics.mean(lens):.0f} words); joining some would help the flow."
    elif len(lens) >= 5 and c >= max(3, 0.4 * len(lens)):
        issue = f"{c} of {len(lens)} sentences begin with '{w}'; varying the openings would help the flow."
    return good, issue


def _content(e: dict) -> tuple[str | None, str | None]:
    good = None
    cues = e["example_cues"]
    if cues or e["quotes"]:
        bits = [f"'{c}' x{k}" for c, k in sorted(cues.items(), key=lambda kv: -kv[1])[:3]]
        if e["quotes"]:
            bits.append(f"{e['quotes']} quotation(s)")
        good = f"Points are backed with reasons or details ({', '.join(bits)})."
    issue = None
    if e["n_words"] < 150:
        issue = (f"At {e['n_words']} words in {e['n_sentences']} sentence(s), there is room for more reasons, "
                 f"examples or details.")
    elif not cues and not e["quotes"]:
        issue = ("No example or reason is signalled ('for example', 'such as', 'because'); "
                 "specific details would support the points.")
    return good, issue


def _voice(e: dict) -> tuple[str | None, str | None]:
    fp, q, x = e["first_person"], e["questions"], e["exclamations"]
    if fp or q or x:
        bits = [f"first-person words {fp} times"] if fp else []
        bits += [f"{q} question(s)"] if q else []
        bits += [f"{x} exclamation(s)"] if x else []
        return f"The writer's own voice shows in {', '.join(bits)}.", None
    if e["n_words"] >= 80:
        return None, "The essay never uses 'I', a question or an exclamation, so the writer's own voice is hard to hear."
    return None, None


def _prompt_adherence(e: dict, prompt_text: str | None) -> tuple[str | None, str | None]:
    if not prompt_text:
        return None, None
    keys = []
    for w in _WORD.findall(prompt_text.lower()):
        if w not in EN_STOP and len(w) > 3 and w not in keys and w not in {"write", "essay", "explain", "describe",
                                                                           "story", "letter", "support", "details"}:
            keys.append(w)
    if not keys:
        return None, None
    used = [k for k in keys if k in e["_lower_set"] or k.rstrip("s") in e["_lower_set"]]
    if len(used) >= max(1, len(keys) // 2):
        return f"The essay stays with the task: it uses {len(used)} of the prompt's {len(keys)} key words ({_list(used)}).", None
    missing = [k for k in keys if k not in used]
    return None, (f"Only {len(used)} of the prompt's {len(keys)} key words appear (missing {_list(missing)}); "
                  f"check that the essay answers the task.")


def _narrativity(e: dict) -> tuple[str | None, str | None]:
    """Narrativity (ASAP++): how the events or ideas are connected into a coherent account."""
    links = dict(e["time_words"])
    for t in e["transitions"]:
        links.setdefault(t, 1)
    n_links = sum(links.values())
    if n_links >= 3 or e["quotes"]:
        bits = [f"linking and time words such as {_list(sorted(links, key=lambda k: -links[k]))} ({n_links} in all)"] \
            if n_links else []
        bits += [f"{e['quotes']} quoted line(s)"] if e["quotes"] else []
        return f"The events and ideas are connected with {' and '.join(bits)}.", None
    if e["n_sentences"] >= 4:
        used = f" (only {_list(links)})" if links else ""
        return None, (f"Few words link the {e['n_sentences']} sentences{used}; words such as 'then', 'because' "
                      f"or 'after that' would connect the events.")
    return None, None


def _language(e: dict) -> tuple[str | None, str | None]:
    g1, i1 = _conventions(e)
    g2, i2 = _word_choice(e)
    return g2 or g1, i1 or i2


def _style(e: dict) -> tuple[str | None, str | None]:
    g1, i1 = _word_choice(e)
    g2, i2 = _sentence_fluency(e)
    return g1 or g2, i2 or i1


_GEN = {"organization": _organization, "conventions": _conventions, "word_choice": _word_choice,
        "sentence_fluency": _sentence_fluency, "content": _content, "voice": _voice,
        "narrativity": _narrativity, "language": _language, "style": _style}


def comment_for(kind: str, e: dict, prompt_text: str | None = None) -> str | None:
    good, issue = _prompt_adherence(e, prompt_text) if kind == "prompt_adherence" else _GEN[kind](e)
    return _join([good, issue])


def _overall(e: dict, prompt_text: str | None) -> str | None:
    first = (f"{e['n_words']} words in {e['n_sentences']} sentence(s) and {e['n_paragraphs']} paragraph(s).")
    for kind in ("organization", "conventions", "sentence_fluency", "content", "word_choice"):
        issue = _GEN[kind](e)[1]
        if issue:
            return f"{first} {issue}"
    for kind in ("organization", "conventions", "word_choice"):
        good = _GEN[kind](e)[0]
        if good:
            return f"{first} {good}"
    return None


def feedback(text: str, trait_names: list[str], stats: dict | None = None,
             prompt_text: str | None = None) -> list[dict]:
    """[{"trait": rubric trait name or "overall", "comment": evidence-grounded text}], one per trait that
    maps to a kind with evidence; "overall" when the rubric has no traits or none maps."""
    e = stats if stats is not None else analyse(text)
    if e["n_words"] == 0:
        return [{"trait": "overall", "comment": "No text was submitted, so there is nothing to give feedback on."}]
    out = []
    for name in trait_names or []:
        kind = trait_kind(name)
        if kind is None:
            continue
        c = comment_for(kind, e, prompt_text)
        if c:
            out.append({"trait": name, "comment": c})
    if not out:
        c = _overall(e, prompt_text)
        if c:
            out.append({"trait": "overall", "comment": c})
    return out
