"""Scored examples for fine-tuning tests (made up here, not ASAP text)."""
from __future__ import annotations

import random

RUBRIC = {"name": "Unit fine-tune rubric", "prompt": "Describe a place you love.",
          "scale": {"min": 0, "max": 6, "step": 0.5},
          "traits": [{"name": "ideas", "scale": {"min": 1, "max": 4, "step": 1}}]}


WORDS = "river mountain garden library kitchen market school forest harbor station".split()


def fake_examples(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        q = rng.randint(0, 12) / 2
        words = [rng.choice(WORDS) for _ in range(int(10 + q * 25))]
        out.append({"text": f"Essay {i}. " + " ".join(words) + ".", "score": q,
                    "traits": {"ideas": float(min(4, 1 + int(q // 1.6)))},
                    "demographics": {"gender": rng.choice(["f", "m"])}})
    return out
