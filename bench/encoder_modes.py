"""Encoder alone, fp32 vs bf16 weights at several batch sizes, on the same ASAP dev essays.

    python bench/encoder_modes.py [--n 134] [--rounds 2] [--batches 1,4,8,16]

Prints essays/s and the lowest cosine similarity to the fp32 one-at-a-time embeddings for every mode,
plus what workers/ml/device.py's probe decides on this machine: the numbers behind EDUQ_PRECISION=auto
and the CPU batch size (EDUQ_ENCODER_BATCH).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=134, help="dev essays (every third line from the top)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batches", default="1,4,8,16")
    args = ap.parse_args()
    import torch

    from bench.run import DATA
    from workers.ml.device import bf16_probe, cpu_has_bf16
    from workers.ml.encoder import Encoder

    rows = [json.loads(line) for line in open(DATA / "dev.jsonl")][::3][:args.n]
    texts = [r["essay"] for r in rows]
    print(f"{len(texts)} dev essays; torch threads {torch.get_num_threads()}; CPU flags bf16: {cpu_has_bf16()}; "
          f"probe: {bf16_probe()}", flush=True)
    encs = {(p, b): Encoder(batch_size=b, precision=p) for p in ("fp32", "bf16")
            for b in (int(x) for x in args.batches.split(","))}
    ref = encs[next(iter(encs))].embed(texts)
    for r in range(args.rounds):
        for (p, b), enc in encs.items():
            t0 = time.perf_counter()
            e = enc.embed(texts)
            dt = time.perf_counter() - t0
            print(f"round {r + 1}  {p:4} batch {b:3}  {len(texts) / dt:6.1f} essays/s  "
                  f"min cosine to fp32 {float((e * ref).sum(1).min()):.5f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
