"""Build and measure a compressed encoder variant (workers/ml/variants.py) in one reproducible command: its
weights and refit heads (workers/ml/training/variants.py), then its dev quality beside the full model's
and the gate's verdict, written to the variant's quality.json.

    python -m workers.ml.evaluation.variants build l4 [--data ../shared/data/asap/train.jsonl]
    python -m workers.ml.evaluation.variants evaluate l4      # quality.json only (weights and heads as stored)
    python -m workers.ml.evaluation.variants choose           # what this machine would serve, and why
    python -m workers.ml.evaluation.variants table            # the built variants' quality, as docs/compression.md

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
    from workers.ml.evaluation.asap_eval import asap_target, default_target, evaluate_asap
    from workers.ml.grading.asap import AsapGrader
    from workers.ml.grading.default import DefaultGrader
    from workers.ml.training.asap_stack import lopo

    dev = str(Path(data).with_name("dev.jsonl"))
    rubrics = json.loads(Path(data).with_name("rubrics.json").read_text())["prompts"]
    res = {}
    for v in ("full", name):
        enc = Encoder(max_length=512, variant=v)
        t0 = time.time()
        asap = evaluate_asap(asap_target(AsapGrader.load(encoder=enc)), dev)
        lp = lopo(data, dev, encoder=enc, log=lambda *_: None)
        # the shipped default head (fitted on all eight prompts) on dev: reported, not gated (its use is a
        # teacher's own prompt, which the leave-one-prompt-out figure measures)
        dflt = evaluate_asap(default_target(DefaultGrader.load(encoder=enc), rubrics), dev)
        res[v] = {"asap": {p: d["qwk"] for p, d in asap["per_prompt"].items()}, "asap_mean": asap["mean_qwk"],
                  "asap_trait_mean": asap["mean_trait_qwk"], "lopo": lp["mean_qwk"], "lopo_per_prompt": lp["per_prompt"],
                  "precision": enc.precision, "encoder": enc.name, "default_dev": dflt["mean_qwk"]}
        log(f"[{v}] ASAP dev mean QWK {asap['mean_qwk']:.4f} (traits {asap['mean_trait_qwk']:.4f}); default LOPO dev "
            f"{lp['mean_qwk']:.4f}; default head on dev {dflt['mean_qwk']:.4f} ({time.time() - t0:.0f}s, {enc.precision})")
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
        "default_dev": {"full": full["default_dev"], "variant": var["default_dev"],
                        "delta": round(var["default_dev"] - full["default_dev"], 4)},
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


def quality_table() -> str:
    """The committed variants' quality.json side by side (markdown): what docs/compression.md shows."""
    from workers.ml.variants import quality

    names = [n for n, v in VARIANTS.items() if n != "full" and v.built and quality(n)]
    if not names:
        return "no variant built"
    q0 = quality(names[0])
    dd = lambda q, k: f"{q['default_dev'][k]:+.4f}" if "default_dev" in q else "n/a"  # noqa: E731
    lines = ["| variant | ASAP mean QWK | dQWK | worst prompt dQWK | traits mean QWK | default LOPO QWK | dQWK | "
             "default head on dev, dQWK (not gated) | stored MB | eligible |", "|---|---|---|---|---|---|---|---|---|---|",
             f"| full | {q0['asap']['mean_full']:.4f} | | | {q0['asap']['trait_mean_full']:.4f} | "
             f"{q0['default_lopo']['full']:.4f} | | {q0['default_dev']['full'] if 'default_dev' in q0 else 'n/a'} | "
             f"{q0['full_size_bytes'] / 1e6:.1f} | reference |"]
    for n in names:
        q = quality(n)
        a, d = q["asap"], q["default_lopo"]
        lines.append(f"| {n} | {a['mean_variant']:.4f} | {a['mean_delta']:+.4f} | {a['worst_delta']:+.4f} "
                     f"(prompt {a['worst_prompt']}) | {a['trait_mean_variant']:.4f} | {d['variant']:.4f} | "
                     f"{d['delta']:+.4f} | {dd(q, 'delta')} | {q['size_bytes'] / 1e6:.1f} | "
                     f"{'yes' if gate(q)[0] else 'no: ' + gate(q)[1]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="compressed encoder variants: build, evaluate, choose")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for cmd in ("build", "evaluate"):
        b = sub.add_parser(cmd)
        b.add_argument("name", choices=[n for n in VARIANTS if n != "full"])
        b.add_argument("--data", default=str(DATA))
    sub.add_parser("choose")
    sub.add_parser("table", help="the built variants' quality.json as a markdown table")
    args = ap.parse_args(argv)
    if args.cmd == "choose":
        v, why = choose_variant()
        print(f"{v.name}: {why}")
        return 0
    if args.cmd == "table":
        print(quality_table())
        return 0
    if args.cmd == "evaluate":
        evaluate(args.name, args.data)
        return 0
    return build_variant(args.name, args.data)


if __name__ == "__main__":
    sys.exit(main())
