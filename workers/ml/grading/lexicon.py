"""The English word list every grader part reads, loaded once per process: pyspellchecker's English
dictionary (word -> frequency), the set of its words, and a speller for suggestions (edit distance 1:
a suggestion in well under a millisecond).

english_words() is exactly pyspellchecker's list: the review flags' thresholds were fitted on it.
known_word(w) is the feedback's wider test of a correctly spelled word: that list, regular inflections
of its words (frisbees, texting, recycling, googled) and wordfreq's frequent English words (smartphones,
wifi); every look-up is cached."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def speller():
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


@lru_cache(maxsize=1)
def word_frequency() -> dict:
    """word (lower case) -> its frequency in pyspellchecker's English corpus."""
    return dict(speller().word_frequency.dictionary)


@lru_cache(maxsize=1)
def english_words() -> frozenset:
    return frozenset(word_frequency())


# --- known_word: the feedback's misspelling check (review.py keeps english_words() as it is) ------------
WORDFREQ_MIN_ZIPF = 3.3  # wordfreq's zipf scale: 3 = once per million words. Measured: texting 3.71,
# smartphones 3.69, selfies 3.5, wifi 3.94 pass; teh 3.04, thier 2.99, untill 2.97, definately 2.87,
# recieve 2.75 stay unknown. (alot 3.93, dont 4.74, im 4.69 pass too: the feedback catches those with its
# table of known slips and its missing-apostrophe rule, which it runs before this check.)
NEAR_SLIP_ZIPF = 1.5  # regular_inflection: a word one edit away this much more frequent marks a slip
_VOWELS = frozenset("aeiou")
# bases that take no regular suffix in English: closed-class words (todays, elses, anothers: a missing
# apostrophe or a slip), nouns without a plural (informations, softwares) and irregular ones (childs)
NO_INFLECTION = frozenset((
    "i me my mine you your yours he him his she her hers it its we us our ours they them their theirs "
    "myself yourself himself herself itself ourself ourselves yourselves themselves this that these those "
    "who whom whose which what whatever whoever whichever everyone anyone someone noone everybody anybody "
    "somebody nobody everything anything something nothing everywhere anywhere somewhere nowhere another "
    "other else such same and but or nor yet so if than then because though although unless until while "
    "since whether also very much many more most less least few again away already almost always never "
    "often just even still there here where when why how today tonight tomorrow yesterday about above across "
    "after against along among around before behind below beneath beside between beyond during except "
    "inside into near onto outside over past through throughout toward towards under upon within without "
    "different information music software homework knowledge advice furniture equipment research evidence "
    "news luggage weather health traffic transportation patience importance courage violence "
    "child children man men woman women people foot feet tooth teeth mouse mice goose geese criteria data "
    "media phenomena bacteria").split())
_APOS_TAILS = ("s", "ll", "re", "ve", "d", "m")


def _cvc(b: str) -> bool:
    """Ends consonant-vowel-consonant (stop, begin, visit): such a base may double its last letter."""
    return (len(b) >= 3 and b[-1] not in _VOWELS and b[-1] not in "wxy" and b[-2] in _VOWELS
            and b[-3] not in _VOWELS)


def _cons_y(b: str) -> bool:
    return len(b) >= 2 and b[-1] == "y" and b[-2] not in _VOWELS


def _forms(b: str, fam: str) -> frozenset:
    """The regular forms of base b for one suffix family (s, ed, ing, er, est, ly); a CVC base gets both
    its plain and its doubled form, and look-ups decide which one English uses."""
    if fam == "s":
        out = {b[:-1] + "ies"} if _cons_y(b) else {b + "s"}
        if b.endswith(("s", "x", "z", "ch", "sh", "o")):
            out.add(b + "es")
        return frozenset(out)
    if fam == "ly":
        out = {b + "ly"}
        if _cons_y(b):
            out = {b[:-1] + "ily"}
        elif b.endswith("le") and len(b) >= 3 and b[-3] not in _VOWELS:
            out = {b[:-1] + "y"}  # gentle -> gently
        elif b.endswith("ic"):
            out.add(b + "ally")  # basic -> basically (and publicly)
        elif b.endswith("ue"):
            out.add(b[:-1] + "ly")  # true -> truly
        return frozenset(out)
    suf = {"ed": "ed", "ing": "ing", "er": "er", "est": "est"}[fam]
    if fam == "ing":
        if b.endswith("ie"):
            return frozenset({b[:-2] + "ying"})
        if b.endswith("e") and not b.endswith(("ee", "oe", "ye")):
            return frozenset({b[:-1] + "ing"})
        return frozenset({b + "ing"} | ({b + b[-1] + "ing"} if _cvc(b) else set()))
    if b.endswith("e"):
        return frozenset({b + suf[1:]})  # liked, nicer, nicest
    if _cons_y(b):
        return frozenset({b[:-1] + "i" + suf})  # carried, happier, happiest
    return frozenset({b + suf} | ({b + b[-1] + suf} if _cvc(b) else set()))


def _bases(w: str):
    """(base, suffix family) pairs whose regular forms could include w."""
    n = len(w)
    if w.endswith("s") and not w.endswith("ss"):
        yield w[:-1], "s"
        if w.endswith("es"):
            yield w[:-2], "s"
        if w.endswith("ies") and n >= 6:
            yield w[:-3] + "y", "s"  # stories (three-letter y-bases: skies, cries are dictionary words)
    for suf, fam in (("ed", "ed"), ("er", "er"), ("est", "est"), ("ing", "ing")):
        if not w.endswith(suf):
            continue
        k = len(suf)
        stem = w[:-k]
        yield stem, fam
        yield stem + "e", fam  # liked, nicer, making
        if stem.endswith("i") and len(stem) >= 4:
            yield stem[:-1] + "y", fam  # carried, happier (not thy -> 'thier': tried, drier are listed)
        if fam == "ing" and stem.endswith("y"):
            yield stem[:-1] + "ie", fam  # lying
        if n - k >= 2 and stem[-1] == stem[-2]:
            yield stem[:-1], fam  # stopped, running
    if w.endswith("ly"):
        yield w[:-2], "ly"
        yield w[:-2] + "e", "ly"  # truly
        yield w[:-1] + "e", "ly"  # gently
        if w.endswith("ily") and n >= 6:
            yield w[:-3] + "y", "ly"
        if w.endswith("ally"):
            yield w[:-4], "ly"


@lru_cache(maxsize=1 << 14)
def regular_inflection(w: str) -> str | None:
    """The dictionary base of w when w is a regular inflection of a pyspellchecker word (frisbees ->
    frisbee, texting -> text, recycling -> recycle, googled -> google), else None. Not one:
    - a wrong variant: the base's other regular form is the dictionary word (begining / beginning,
      occured / occurred, truely / truly, boxs / boxes);
    - a likely slip for another word: a dictionary word one edit away (not the base or its forms) is
      far more frequent than w (wordfreq zipf + NEAR_SLIP_ZIPF): lifes / lives, beeing / being,
      lastest / latest, personaly / personal, ther / the. Students misspell more often than they coin
      plurals, so suffix rules alone would wave through many slips (sayed, thos, aways)."""
    vocab = english_words()
    found, forms_all = None, set()
    for b, fam in _bases(w):
        if len(b) < 3 or b not in vocab or b in NO_INFLECTION or b.endswith(("ed", "est", "ly")):
            continue  # (an inflected base takes no second suffix: seemeds, nicestly)
        if b.endswith("ing") and fam != "s" or b.endswith("s") and not b.endswith("ss") and w != b + "es":
            continue  # speeching; awnser, scaresly (gases, buses: the -es plural of an -s word)
        if fam == "s" and (b.endswith("man") and b[:-3] + "men" in vocab
                           or b.endswith("f") and b[:-1] + "ves" in vocab
                           or b.endswith("fe") and b[:-2] + "ves" in vocab):
            return None  # fishermans, lifes, shelfs, knifes: the plural is irregular
        forms = _forms(b, fam)
        if w not in forms:
            continue
        if any(f != w and f in vocab for f in forms):
            return None
        found = found or b
        forms_all |= forms | {b}
    if found is None:
        return None
    zw = _zipf()(w, "en")
    if zw <= 0:
        return None  # never seen in wordfreq's corpora: a coinage of the rules (developmenting), not a word
    for c in sorted(speller().candidates(w) or ()):
        if c != w and c not in forms_all and c in vocab and _zipf()(c, "en") >= zw + NEAR_SLIP_ZIPF:
            return None
    return found


@lru_cache(maxsize=1)
def _zipf():
    from wordfreq import zipf_frequency

    return zipf_frequency


@lru_cache(maxsize=1 << 16)
def known_word(w: str) -> bool:
    """w (any case) is an English word: in pyspellchecker's dictionary, a regular inflection of one
    (regular_inflection), a possessive or contraction of a known word ("frisbee's"), or frequent in
    wordfreq's English list (zipf >= WORDFREQ_MIN_ZIPF: texting, smartphones, wifi)."""
    w = w.lower()
    if w in english_words():
        return True
    if "'" in w:
        head, _, tail = w.partition("'")
        return tail in _APOS_TAILS and bool(head) and known_word(head)
    if regular_inflection(w):
        return True
    return _zipf()(w, "en") >= WORDFREQ_MIN_ZIPF
