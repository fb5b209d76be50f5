"""The compute ceiling under the speed table: how fast could ANY fp32 path be on this machine?

The encoder's work per essay is fixed by its shape and the essay's length (L tokens, at most
max_length): each of the `layers` transformer layers does 2*L*(4*h*h + 2*h*i) floating-point
operations in its linear layers and 4*L*L*h in attention (Q K^T and the weighted sum of V), with
h = hidden size and i = feed-forward size (MiniLM-L6: 6 layers, h 384, i 1536). Dividing those
operations by a path's run time gives its GFLOP/s; dividing by the best rate this CPU reaches on a
single large fp32 matmul (`matmul_peak`, measured in the same process and the same threads) gives the
share of the machine it already uses. A path that keeps fp32 arithmetic cannot beat the naive loop by
more than peak / naive-rate, however it batches (padding only adds work).

    python bench/ceiling.py [--n 120]      # the naive loop's share of this CPU's fp32 peak
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def encoder_flops(lengths: list[int], config) -> float:
    """Floating-point operations of one forward pass over essays of these token lengths (no padding)."""
    h, i, layers = int(config.hidden_size), int(config.intermediate_size), int(config.num_hidden_layers)
    total = 0.0
    for n in lengths:
        total += layers * (2.0 * n * (4 * h * h + 2 * h * i) + 4.0 * n * n * h)
    return total


def token_lengths(tokenizer, texts: list[str], max_length: int = 512) -> list[int]:
    enc = tokenizer([t if (t and t.strip()) else " " for t in texts], truncation=True, max_length=max_length)
    return [len(ids) for ids in enc["input_ids"]]


def matmul_peak(rows: int = 2048, d_in: int = 384, d_out: int = 1536, seconds: float = 1.5) -> float:
    """Best fp32 GFLOP/s of x W^T over `seconds` (the encoder's feed-forward shape, torch's own threads)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(rows, d_in, generator=gen), torch.randn(d_out, d_in, generator=gen)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(3):
            torch.nn.functional.linear(x, w)
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            torch.nn.functional.linear(x, w)
            best = min(best, time.perf_counter() - t0)
    return 2.0 * rows * d_in * d_out / best / 1e9


def report(flops: float, seconds: dict[str, float], peak: float) -> list[str]:
    """Lines for the bench: each path's GFLOP/s, its share of the peak, and the bound on its speed-up."""
    lines = [f"fp32 matmul peak on this CPU (best of 1.5 s, same threads): {peak:.1f} GFLOP/s; "
             f"encoder work {flops / 1e9:.1f} GFLOP for these essays"]
    base = seconds.get("naive")
    for name, secs in seconds.items():
        rate = flops / secs / 1e9
        lines.append(f"  {name:10} {rate:6.1f} GFLOP/s = {rate / peak:5.1%} of peak")
    if base:
        lines.append(f"  ceiling for any fp32 path at 100% of peak: {peak / (flops / base / 1e9):.2f}x the naive loop")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=120, help="dev essays (every 20th line)")
    args = ap.parse_args(argv)
    import torch

    from bench.grading_paths import NaiveLoop
    from bench.run import DATA

    texts = [json.loads(line)["essay"] for line in open(DATA / "dev.jsonl")][::20][: args.n]
    naive = NaiveLoop()
    flops = encoder_flops(token_lengths(naive.tok, texts), naive.model.config)
    naive.embed_one(texts[0])
    t0 = time.perf_counter()
    for t in texts:
        naive.embed_one(t)
    secs = time.perf_counter() - t0
    peak = matmul_peak()
    print(f"{len(texts)} dev essays, torch threads {torch.get_num_threads()}; naive encoder {len(texts) / secs:.1f} essays/s")
    print("\n".join(report(flops, {"naive": secs}, peak)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
