"""A tiny fine-tuned `head` grader trained in process in a few seconds, for tests of the grading
service and the worker runtime. Its examples are made up here (not ASAP text)."""
from __future__ import annotations

import random
from pathlib import Path

FT_RUBRIC = {"name": "Fine-tuned test rubric", "prompt": "Write a letter about a place in your town you would improve.",
             "scale": {"min": 1, "max": 6, "step": 1},
             "traits": [{"name": "organization", "scale": {"min": 1, "max": 6, "step": 1}},
                        {"name": "conventions", "scale": {"min": 1, "max": 6, "step": 1}}]}
# an essay written for these tests
NORMAL = (
    "My favorite place in town is the old library next to the river. When I walk inside, the tall windows "
    "let in warm light and the rooms are quiet, so I can read for hours without anyone bothering me.\n\n"
    "First, the library has books about every subject I care about, from space travel to cooking. The "
    "librarians know me by name and often suggest stories I would never have found on my own. For example, "
    "last winter they gave me a mystery novel that I finished in two days.\n\n"
    "Second, the building itself is beautiful. It was built more than a hundred years ago, and the wooden "
    "shelves still smell like history. In conclusion, the library is the place where I feel calm and "
    "curious at the same time, and that is why I love it."
)
_WORDS = ("the park near our school needs more trees because children play there every day and the benches "
          "are broken so families cannot sit first we should plant shade trees second the town could fix the "
          "paths finally a small garden would help everyone").split()


def examples(n: int = 48, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        score = rng.randint(1, 6)
        words = [rng.choice(_WORDS) for _ in range(12 + 18 * score)]
        text = f"Letter {i}. " + ". ".join(" ".join(words[k:k + 9]).capitalize() for k in range(0, len(words), 9)) + "."
        out.append({"text": text, "score": float(score),
                    "traits": {"organization": float(max(1, min(6, score + rng.choice((-1, 0, 0, 1))))),
                               "conventions": float(max(1, min(6, score + rng.choice((-1, 0, 1)))))}})
    return out


def train_head(out_dir: Path, encoder, model_id: str = "mdl_x") -> Path:
    """Train and save a `head` fine-tune on FT_RUBRIC with `encoder` (the process's shared MiniLM: the
    training code's encoder cache is handed this one, so no second MiniLM is loaded)."""
    from workers.ml.training import finetune
    from workers.ml.training.trainer import TrainConfig

    cfg = TrainConfig.make("head", {"epochs": 6, "batch_size": 16, "max_length": encoder.max_length}, seed=7)
    finetune._encoders.setdefault(cfg.max_length, encoder)
    prep, info = finetune.prepare(examples(), FT_RUBRIC, cfg, 0.25)
    model, _hist = finetune.fit(prep, cfg)
    return finetune.save(model, cfg, info, FT_RUBRIC, Path(out_dir), {"model_id": model_id})
