"""Build a compressed encoder variant (workers/ml/variants.py): its weights, every head refit on its own
outputs, and its measured quality beside the full model's, in one reproducible command.

    python -m workers.ml.training.variants build l4 [--data ../shared/data/asap/train.jsonl]
    python -m workers.ml.training.variants evaluate l4      # quality.json only (weights and heads as stored)
    python -m workers.ml.training.variants choose           # what this machine would serve, and why

`build` writes workers/ml/grading/artifacts/variants/<name>/:
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

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from workers.ml.variants import (VARIANTS, choose_variant, gate, get_variant, heads_dir, model_size_bytes)

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data" / "asap" / "train.jsonl"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def build_weights(name: str) -> Path:
    """The variant's encoder folder from the package's model: layers pruned, weights stored in `store`."""
    import torch
    from transformers import AutoModel

    from workers.ml.encoder import default_model_dir

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
        model.encoder.layer = model.encoder.layer[:v.layers]
        model.config.num_hidden_layers = v.layers
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


def evaluate(name: str, data: str, log=print) -> dict:
    """quality.json: the refit graders on dev beside the full model's, and the gate's verdict."""
    from workers.ml.encoder import Encoder
    from workers.ml.evaluation.asap_eval import asap_target, evaluate_asap
    from workers.ml.grading.asap import AsapGrader
    from workers.ml.training.asap_stack import lopo

    dev = str(Path(data).with_name("dev.jsonl"))
    res = {}
    for v in ("full", name):
        enc = Encoder(max_length=512, variant=v)
        t0 = time.time()
        asap = evaluate_asap(asap_target(AsapGrader.load(encoder=enc)), dev)
        lp = lopo(data, dev, encoder=enc, log=lambda *_: None)
        res[v] = {"asap": {p: d["qwk"] for p, d in asap["per_prompt"].items()}, "asap_mean": asap["mean_qwk"],
                  "asap_trait_mean": asap["mean_trait_qwk"], "lopo": lp["mean_qwk"], "lopo_per_prompt": lp["per_prompt"],
                  "precision": enc.precision, "encoder": enc.name}
        log(f"[{v}] ASAP dev mean QWK {asap['mean_qwk']:.4f} (traits {asap['mean_trait_qwk']:.4f}); default LOPO dev "
            f"{lp['mean_qwk']:.4f} ({time.time() - t0:.0f}s, {enc.precision})")
    full, var = res["full"], res[name]
    deltas = {p: round(var["asap"][p] - full["asap"][p], 4) for p in full["asap"]}
    worst = min(deltas, key=deltas.get)
    q = {
        "variant": name, "description": VARIANTS[name].describe(),
        "command": f"python -m workers.ml.training.variants build {name}",
        "measured_on": "dev.jsonl", "fitted_on": Path(data).name,
        "asap": {"full": full["asap"], "variant": var["asap"], "delta": deltas,
                 "mean_full": full["asap_mean"], "mean_variant": var["asap_mean"],
                 "mean_delta": round(var["asap_mean"] - full["asap_mean"], 4),
                 "trait_mean_full": full["asap_trait_mean"], "trait_mean_variant": var["asap_trait_mean"],
                 "worst_prompt": worst, "worst_delta": deltas[worst]},
        "default_lopo": {"full": full["lopo"], "variant": var["lopo"], "delta": round(var["lopo"] - full["lopo"], 4),
                         "per_prompt_full": full["lopo_per_prompt"], "per_prompt_variant": var["lopo_per_prompt"]},
        "precision": {"full": full["precision"], "variant": var["precision"]},
        "size_bytes": model_size_bytes(name), "full_size_bytes": model_size_bytes("full"),
    }
    q["eligible"], q["why"] = gate(q)
    (heads_dir(name) / "quality.json").write_text(json.dumps(q, indent=1) + "\n")
    log(f"[{name}] ASAP mean dQWK {q['asap']['mean_delta']:+.4f}, worst prompt {worst} {deltas[worst]:+.4f}; "
        f"default LOPO dQWK {q['default_lopo']['delta']:+.4f}; size {q['size_bytes'] / 1e6:.1f} MB vs "
        f"{q['full_size_bytes'] / 1e6:.1f} MB; eligible: {q['eligible']} ({q['why']})")
    return q


def build_variant(name: str, data: str, skip_weights: bool = False) -> int:
    t0 = time.time()
    if not skip_weights and not get_variant(name).weights:
        print(f"[{name}] weights -> {build_weights(name)}", flush=True)
    refit(name, data)
    evaluate(name, data)
    print(f"[{name}] built in {time.time() - t0:.0f}s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="compressed encoder variants: build, evaluate, choose")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for cmd in ("build", "evaluate"):
        b = sub.add_parser(cmd)
        b.add_argument("name", choices=[n for n in VARIANTS if n != "full"])
        b.add_argument("--data", default=str(DATA))
    sub.add_parser("choose")
    args = ap.parse_args(argv)
    if args.cmd == "choose":
        v, why = choose_variant()
        print(f"{v.name}: {why}")
        return 0
    if args.cmd == "evaluate":
        evaluate(args.name, args.data)
        return 0
    return build_variant(args.name, args.data)


if __name__ == "__main__":
    sys.exit(main())
