"""What fine-tuning MiniLM would cost on this machine: forward + backward + AdamW step of ONE of its 6
transformer layers (the last one, a trainable copy) on a batch of 16 sequences of 384 tokens, fp32 and under
bf16 autocast, and what that means for one epoch over 4/5 of train.jsonl (6,230 essays, cross-fitting's
training part). Random hidden states stand in for the frozen lower layers' output: the cost of one layer
does not depend on the values. Not part of `make bench`.

    python bench/finetune_cost.py [--steps 4] [--tokens 384] [--batch 16]
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    import torch

    from workers.ml.encoder import Encoder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=384)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    enc = Encoder(max_length=512, precision="fp32")
    layer = copy.deepcopy(enc.model.encoder.layer[-1]).train()
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-4)
    x = torch.randn(args.batch, args.tokens, enc.dim)
    print(f"torch threads {torch.get_num_threads()}; one layer, batch {args.batch} x {args.tokens} tokens")
    for bf16 in (False, True):
        rates = []
        for step in range(args.steps + 1):
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = layer(x)  # every token real: no padding mask
                h = out[0] if isinstance(out, tuple) else out
                loss = h.float().mean(1).pow(2).mean()
            loss.backward()
            opt.step()
            opt.zero_grad()
            if step:  # the first step warms the kernels up
                rates.append(args.batch / (time.perf_counter() - t))
        r = sorted(rates)[len(rates) // 2]
        print(f"{'bf16 autocast' if bf16 else 'fp32'}: median {r:.1f} essays/s for one layer "
              f"(steps {', '.join(f'{v:.1f}' for v in rates)}); one epoch over 6,230 essays: "
              f"{6230 / r / 60:.1f} min for one layer, ~{6 * 6230 / r / 60:.0f} min for all 6 (6 x one layer)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
