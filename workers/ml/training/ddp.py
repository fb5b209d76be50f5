"""Several processes (GPUs): EDUQ_TRAIN_PROCESSES=N launches `torchrun --standalone
--nproc_per_node N -m workers.ml.training.ddp_main WORKDIR` as a subprocess. The task prepares the
inputs (embeddings for `head`, texts for lora/full) in WORKDIR, follows rank 0's progress file,
keeps heartbeating, kills the process group on cancel, then loads rank 0's best weights.
Backend: nccl on CUDA, gloo on CPU (EDUQ_DDP_BACKEND overrides)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from app.settings import settings
from workers.ml.scales import Scale
from workers.ml.training.trainer import Prepared, Stopped, TrainConfig


def dump(prep: Prepared, cfg: TrainConfig, workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    np.savez(workdir / "prep.npz", targets=prep.targets, mask=prep.mask, train_idx=prep.train_idx,
             val_idx=prep.val_idx, val_human=prep.val_human,
             x=prep.x if prep.x is not None else np.zeros((0, 0), np.float32),
             feats=prep.feats if prep.feats is not None else np.zeros((0, 0), np.float32))
    (workdir / "job.json").write_text(json.dumps({"cfg": asdict(cfg), "scale": prep.main_scale.as_dict(),
                                                  "texts": prep.texts}))


def load(workdir: Path) -> tuple[Prepared, TrainConfig]:
    z = np.load(workdir / "prep.npz")
    j = json.loads((workdir / "job.json").read_text())
    cfg = TrainConfig(**j["cfg"])
    prep = Prepared(z["targets"], z["mask"], z["train_idx"], z["val_idx"], Scale.of(j["scale"]), z["val_human"],
                    x=z["x"] if z["x"].size else None, texts=j["texts"], feats=z["feats"] if z["feats"].size else None)
    return prep, cfg


def run_ddp(prep: Prepared, cfg: TrainConfig, workdir: Path, nproc: int, report=None, should_stop=None):
    from workers.ml.training.finetune import rebuild

    dump(prep, cfg, workdir)
    env = dict(os.environ, OMP_NUM_THREADS=str(settings().ddp_threads))  # the child processes' environment
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "workers.ml.training.ddp_main", str(workdir)]
    logf = open(workdir / "torchrun.log", "wb")
    p = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                         cwd=str(Path(__file__).resolve().parents[3]))
    seen = 0
    prog = workdir / "progress.jsonl"
    try:
        while p.poll() is None:
            time.sleep(0.5)
            if should_stop and should_stop():
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                raise Stopped()
            if prog.exists() and report:
                lines = prog.read_text().splitlines()
                for line in lines[seen:]:
                    report(json.loads(line))
                seen = len(lines)
    finally:
        logf.close()
    if p.returncode != 0:
        tail = (workdir / "torchrun.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"torchrun exited with {p.returncode}: {tail}")
    hist = json.loads((workdir / "history.json").read_text())
    model = rebuild(cfg, prep.x.shape[1] if prep.x is not None else 0, prep.targets.shape[1])
    model.load_state_dict(torch.load(workdir / "model.pt", map_location="cpu"))
    model.eval()
    return model, hist
