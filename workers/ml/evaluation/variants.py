"""Build and measure a compressed encoder variant (workers/ml/variants.py) in one reproducible command: its
weights and refit heads (workers/ml/training/variants.py), then its dev quality beside the full model's
and the gate's verdict, written to the variant's quality.json.

    python -m workers.ml.evaluation.variants build l4 [--data ../shared/data/asap/train.jsonl]
    python -m workers.ml.evaluation.variants evaluate l4      # quality.json only (weights and heads as stored)
    python -m workers.ml.evaluation.variants choose           # what this machine would serve, and why

quality.json: the refit ASAP graders' dev QWK per prompt beside the shipped full graders', and the default
recipe's leave-one-prompt-out dev QWK on both encoders (fitted on train.jsonl, measured on dev.jsonl, in the
same run); the gate (workers/ml/variants.py GATE) reads it when a worker chooses its variant.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from workers.ml.training.variants import build_weights, refit
from workers.ml.variants import VARIANTS, choose_variant, gate, get_variant, heads_dir, model_size_bytes

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT.parent / "shared" / "data" / "asap" / "train.jsonl"


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
        "command": f"python -m workers.ml.evaluation.variants build {name}",
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
