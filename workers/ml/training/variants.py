"""A compressed encoder variant's weights and every head refit on its own outputs (workers/ml/variants.py).
Run through `python -m workers.ml.evaluation.variants build <name>`, which then measures it (quality.json).

Writes workers/ml/grading/artifacts/variants/<name>/:
  encoder/        the package's MiniLM with layers pruned (`layers`), weights stored in bf16
  minilm_head.*   the default grader: workers.ml.training.default_head on this variant's train embeddings
  asap/           the ASAP graders: workers.ml.training.asap_stack.train with this variant's encoder
  review/         the review flags' prompt classifier and thresholds (workers.ml.training.review_flags.fit)
  quality.json    `evaluate`: dev QWK of the refit ASAP graders per prompt beside the shipped full graders',
                  and the default recipe's leave-one-prompt-out dev QWK on both encoders; the gate's verdict
Every fit is the one the full model's artifacts came from (same seeds, same folds, same hyperparameter
search inside), only the encoder differs; the embeddings are cached in var/cache under the variant's name.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from workers.ml.variants import get_variant, heads_dir

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def build_weights(name: str) -> Path:
    """The variant's encoder folder from the package's model: layers pruned, weights stored in `store`."""
    import torch
    from transformers import AutoModel

    from workers.ml.encoder import default_model_dir, keep_layers

    v = get_variant(name)
    if v.weights:
        raise ValueError(f"{name} loads {v.weights}'s weights; nothing to store")
    src = Path(default_model_dir())
    out = heads_dir(name) / "encoder"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model = AutoModel.from_pretrained(str(src), local_files_only=True).float().eval()
    if v.layers:
        keep_layers(model, v.layers)
    model = model.to(torch.bfloat16 if v.store == "bf16" else torch.float32)
    model.save_pretrained(str(out), safe_serialization=True)
    for f in TOKENIZER_FILES:
        if (src / f).exists():
            shutil.copy2(src / f, out / f)
    return out


def refit(name: str, data: str, log=print) -> None:
    """Every head the worker serves, fitted on this variant's own embeddings of the train file."""
    from workers.ml.encoder import Encoder
    from workers.ml.training import asap_stack, default_head, review_flags

    out = heads_dir(name)
    t0 = time.time()
    default_head.main(["--data", data, "--out", str(out), "--variant", name])
    log(f"[{name}] default head refit at {time.time() - t0:.0f}s")
    enc = Encoder(max_length=512, variant=name)
    asap_stack.train(data, str(out / "asap"), encoder=enc, log=log)
    log(f"[{name}] ASAP graders refit at {time.time() - t0:.0f}s")
    review_flags.fit(data, out / "review", encoder=enc)
    log(f"[{name}] review flags refit at {time.time() - t0:.0f}s")
