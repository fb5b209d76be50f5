"""The review flags' stress set: altered copies of real essays (shuffled words, moved to another prompt,
repeated text, random characters, the prompt pasted, very short), built at run time from an ASAP-style
file. Used to fit the flags' thresholds (training/review_flags.py, on train.jsonl) and to measure them
(evaluation/stress.py, on dev.jsonl)."""
from __future__ import annotations

import json
import random
import string
from pathlib import Path

KINDS = ("shuffled", "moved", "repeated", "random_chars", "prompt_pasted", "very_short")
EXPECTED = {"shuffled": "word salad", "moved": "off-topic", "repeated": "repeated text",
            "random_chars": "nonsense", "prompt_pasted": "copied prompt", "very_short": "too short"}
SEED = 20261129


def load(data_path: str) -> tuple[list[dict], dict]:
    p = Path(data_path)
    with open(p) as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    rubrics = json.loads((p.parent / "rubrics.json").read_text())["prompts"]
    return rows, rubrics


def _random_word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(1, 9)))


def _random_text(rng: random.Random, n_chars: int) -> str:
    out, size = [], 0
    while size < max(n_chars, 40):
        w = _random_word(rng) + rng.choice(["", "", "", "", ".", ","])
        out.append(w)
        size += len(w) + 1
    return " ".join(out)


def make(kind: str, row: dict, rubrics: dict, rng: random.Random) -> dict:
    """One stress item: {"kind", "text", "prompt_id", "prompt_text", "source": essay_id, "variant"}."""
    text, pid = row["essay"], str(row["prompt"])
    task = rubrics[pid]["task"]
    variant = ""
    if kind == "shuffled":
        toks = text.split()
        rng.shuffle(toks)
        text = " ".join(toks)
    elif kind == "moved":
        pid = rng.choice([p for p in sorted(rubrics, key=int) if p != pid])
        task, variant = rubrics[pid]["task"], f"to {pid}"
    elif kind == "repeated":
        variant = rng.choice(["twice", "half"])
        if variant == "twice":
            text = text + "\n\n" + text
        else:
            toks = text.split()
            text = text + " " + " ".join(toks[: max(len(toks) // 2, 1)])
    elif kind == "random_chars":
        variant = rng.choice(["all", "share"])
        if variant == "all":
            text = _random_text(rng, len(text))
        else:
            toks = text.split()
            for i in rng.sample(range(len(toks)), k=round(0.6 * len(toks))):
                toks[i] = _random_word(rng)
            text = " ".join(toks)
    elif kind == "prompt_pasted":
        variant = rng.choice(["before", "middle", "instead"])
        if variant == "before":
            text = task + "\n\n" + text
        elif variant == "middle":
            toks = text.split()
            k = len(toks) // 2
            text = " ".join(toks[:k]) + " " + task + " " + " ".join(toks[k:])
        else:
            text = task
    elif kind == "very_short":
        text = " ".join(text.split()[: rng.randint(5, 10)])
    else:
        raise ValueError(kind)
    return {"kind": kind, "text": text, "prompt_id": pid, "prompt_text": task, "source": row["essay_id"],
            "variant": variant}


def make_stress(rows: list[dict], rubrics: dict, per_prompt: int = 40, seed: int = SEED,
                kinds=KINDS) -> list[dict]:
    """Deterministic: a separate seeded sample of `per_prompt` essays per prompt for each kind."""
    items = []
    by_prompt: dict[str, list[dict]] = {}
    for r in rows:
        by_prompt.setdefault(str(r["prompt"]), []).append(r)
    for kind in kinds:
        for p in sorted(by_prompt, key=int):
            rng = random.Random(f"{seed}-{kind}-{p}")
            pool = by_prompt[p]
            for r in rng.sample(pool, k=min(per_prompt, len(pool))):
                items.append(make(kind, r, rubrics, rng))
    return items
