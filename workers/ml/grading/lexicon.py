"""The English word list every grader part reads, loaded once per process: pyspellchecker's English
dictionary (word -> frequency), the set of its words, and a speller for suggestions (edit distance 1:
a suggestion in well under a millisecond)."""
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
