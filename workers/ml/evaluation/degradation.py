"""Degradation suite: what a grader does to a real essay made worse in one known way.

    python -m workers.ml.evaluation.degradation --data ../shared/data/asap/dev.jsonl [--per-prompt 10] [--out F]

For a seeded sample of essays of each prompt, four damaged copies:
  shuffled   the essay's words in random order (punctuation stays attached to its word)
  fifth      the essay's first fifth of its words
  no_punct   every punctuation mark removed (apostrophes inside words kept)
  no_caps    every letter in lower case
Each copy and the original are graded by the default grader through the grading service with the
tester's rubric (1-6, traits `claim_evidence` and `conventions`) and `always_score` set, so the
model's own scores are compared, never a withheld one. What must hold (tests/fast/ml/grading/
test_degradation.py):
  - no damage ever raises the holistic score;
  - no_punct and no_caps (mechanics only: the words and their order stay the student's) lower the
    conventions-like trait more than the ideas-like one (on average, and on no essay does the
    ideas-like trait fall by more than the conventions-like one);
  - no_punct moves the ideas-like trait by at most one point.
The essays are read at run time (never copied into the repository).
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

RUBRIC = {"name": "letter to the editor", "scale": {"min": 1, "max": 6, "step": 1}, "always_score": True,
          "traits": [{"name": "claim_evidence"}, {"name": "conventions"}]}
IDEAS, CONVENTIONS = "claim_evidence", "conventions"
KINDS = ("shuffled", "fifth", "no_punct", "no_caps")
SEED = 19
_PUNCT = re.compile(r"(?<![A-Za-z])'|'(?![A-Za-z])|[^\w\s']")


_ANON = re.compile(r"@[A-Z]+[0-9]*")  # ASAP's anonymisation tokens: not the student's writing, kept as they are


def damage(text: str, kind: str, rng: random.Random) -> str:
    if kind in ("no_punct", "no_caps"):  # damage the text between the anonymisation tokens only
        parts = _ANON.split(text)
        tokens = _ANON.findall(text) + [""]
        out = "".join(_damage(p, kind, rng) + t for p, t in zip(parts, tokens))
        return out.strip() if kind == "no_punct" else out
    return _damage(text, kind, rng)


def _damage(text: str, kind: str, rng: random.Random) -> str:
    if kind == "shuffled":
        words = text.split()
        rng.shuffle(words)
        return " ".join(words)
    if kind == "fifth":
        words = text.split()
        return " ".join(words[: max(1, len(words) // 5)])
    if kind == "no_punct":
        return re.sub(r"[ \t]+", " ", _PUNCT.sub(" ", text))
    if kind == "no_caps":
        return text.lower()
    raise ValueError(f"unknown damage {kind!r}")


def sample(jsonl_path: str | Path, per_prompt: int, min_words: int = 150, seed: int = SEED) -> list[dict]:
    """Up to per_prompt essays of each prompt with at least min_words words (a fifth of a shorter one is
    too short to be scored at all), in a seeded order."""
    by_prompt: dict[str, list[dict]] = {}
    with open(jsonl_path) as f:
        for line in f:
            r = json.loads(line)
            if len(r["essay"].split()) >= min_words:
                by_prompt.setdefault(str(r["prompt"]), []).append(r)
    rng = random.Random(seed)
    out = []
    for p in sorted(by_prompt):
        rows = by_prompt[p]
        rng.shuffle(rows)
        out += rows[:per_prompt]
    return out


@dataclass
class Degradation:
    original: list[dict]            # per essay: {"score", "traits"}
    damaged: dict[str, list[dict]]  # kind -> per essay

    def change(self, kind: str, key: str | None = None) -> list[float]:
        """damaged minus original, per essay: holistic (key None) or one trait."""
        def get(r):
            return r["score"] if key is None else r["traits"][key]
        return [get(d) - get(o) for o, d in zip(self.original, self.damaged[kind])]

    def summary(self) -> dict:
        out = {"n": len(self.original)}
        for kind in KINDS:
            hol, ide, con = self.change(kind), self.change(kind, IDEAS), self.change(kind, CONVENTIONS)
            n = max(len(hol), 1)
            out[kind] = {"holistic_raised": sum(x > 0 for x in hol), "holistic_mean_change": sum(hol) / n,
                         "ideas_mean_change": sum(ide) / n, "conventions_mean_change": sum(con) / n,
                         "ideas_fell_more": sum(i < c for i, c in zip(ide, con)),
                         "ideas_moved_over_1": sum(abs(i) > 1 for i in ide)}
        return out


def run(service, essays: list[dict], model: str = "default", rubric: dict = RUBRIC, seed: int = SEED) -> Degradation:
    rng = random.Random(seed)
    texts = [r["essay"] for r in essays]
    variants = {k: [damage(t, k, rng) for t in texts] for k in KINDS}

    def grade(ts):
        res = service.grade_with(model, ts, [rubric] * len(ts))
        return [{"score": r["score"], "traits": r["traits"]} for r in res]

    return Degradation(grade(texts), {k: grade(v) for k, v in variants.items()})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data/asap/dev.jsonl")
    ap.add_argument("--per-prompt", type=int, default=10)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    from workers.ml.grading.default import DefaultGrader
    from workers.ml.grading.service import GradingService

    grader = DefaultGrader.load()
    d = run(GradingService.over(grader.encoder, {"default": grader}), sample(a.data, a.per_prompt))
    s = d.summary()
    print(json.dumps(s, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(s, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
