"""One DDP rank (started by torchrun): python -m workers.ml.training.ddp_main WORKDIR"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from app.settings import settings


def main(workdir: str) -> None:
    from workers.ml.training.ddp import load
    from workers.ml.training.finetune import encoder_dir, tokenizer_for
    from workers.ml.training.trainer import train

    wd = Path(workdir)
    cfg = settings()
    use_cuda = torch.cuda.is_available() and cfg.device != "cpu"
    backend = cfg.ddp_backend or ("nccl" if use_cuda else "gloo")
    dist.init_process_group(backend)
    rank = dist.get_rank()
    local = int(os.environ.get("LOCAL_RANK", 0))  # torchrun's variable, not ours
    device = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    prep, cfg = load(wd)
    mdir = encoder_dir() if cfg.method != "head" else None

    def report(d: dict) -> None:
        with open(wd / "progress.jsonl", "a") as f:
            f.write(json.dumps({**d, "world_size": dist.get_world_size()}) + "\n")

    model, hist = train(prep, cfg, model_dir=mdir, tokenizer=tokenizer_for(mdir) if mdir else None,
                        report=report if rank == 0 else None, device=device)
    if rank == 0:
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, wd / "model.pt")
        (wd / "history.json").write_text(json.dumps(hist))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
