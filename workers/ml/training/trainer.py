"""The training loop shared by every method, in process or under torchrun (DDP).

Targets are the holistic score (column 0) and each trait, each mapped to [0, 1] on its own scale,
with a mask where a trait score is missing; the loss is a masked MSE. AdamW, linear warm-up then
cosine decay, early stopping on the validation QWK of the holistic score (the best epoch's weights
are kept), fixed seeds. Methods:

- head: the encoder is frozen; its embeddings (plus a few surface features) are computed once in
  batches and a small MLP is trained on them. Seconds per epoch on a CPU.
- lora: LoRA adapters (peft) on the encoder's attention query/value, trained with the head.
- full: every encoder weight trained with the head.
"""
from __future__ import annotations

import copy
import math
import random
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from app.settings import settings
from workers.ml.stats import qwk
from workers.ml.grading.nets import EncoderRegressor, Head
from workers.ml.scales import Scale

DEFAULTS = {
    "head": {"epochs": 80, "learning_rate": 2e-3, "batch_size": 32, "patience": 12},
    "lora": {"epochs": 4, "learning_rate": 5e-4, "batch_size": 8, "patience": 2},
    "full": {"epochs": 3, "learning_rate": 3e-5, "batch_size": 8, "patience": 2},
}


@dataclass
class TrainConfig:
    method: str = "head"
    seed: int = 13
    epochs: int = 80
    learning_rate: float = 2e-3
    batch_size: int = 32
    patience: int = 12
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    hidden: int = 256
    dropout: float = 0.1
    max_length: int = 512
    max_steps: int | None = None  # stop after this many optimiser steps (tests, smoke runs)
    head_lr_multiplier: float = 20.0  # lora/full: the fresh head learns faster than the encoder
    lora_r: int = 8
    lora_alpha: int = 16
    extra: dict = field(default_factory=dict)

    @classmethod
    def make(cls, method: str, overrides: dict | None = None, seed: int = 13) -> "TrainConfig":
        vals = dict(DEFAULTS[method])
        vals.update({k: v for k, v in (overrides or {}).items() if v is not None})
        known = {f for f in cls.__dataclass_fields__}
        return cls(method=method, seed=seed, **{k: v for k, v in vals.items() if k in known})

    def as_dict(self) -> dict:
        return asdict(self)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_encoder_model(method: str, model_dir: str, n_feat: int, n_out: int, cfg: TrainConfig):
    from transformers import AutoModel

    enc = AutoModel.from_pretrained(model_dir, local_files_only=True)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        enc = get_peft_model(enc, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.1,
                                             target_modules=["query", "value"], bias="none"))
    return EncoderRegressor(enc, n_feat, n_out, cfg.hidden, cfg.dropout)


@dataclass
class Prepared:
    """What the loop trains on. `x` is the head's input (head) or None (lora/full use texts)."""

    targets: np.ndarray  # N x K in [0, 1]
    mask: np.ndarray  # N x K, 1 where the target is known
    train_idx: np.ndarray
    val_idx: np.ndarray
    main_scale: Scale
    val_human: np.ndarray  # holistic scores of the validation split, on the scale
    x: np.ndarray | None = None
    texts: list[str] | None = None
    feats: np.ndarray | None = None  # standardised surface features (lora/full)


def _lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return f


class Stopped(Exception):
    """Raised inside the loop when should_stop() says so (cancelled, lease lost)."""


def train(prep: Prepared, cfg: TrainConfig, *, model_dir: str | None = None, tokenizer=None,
          report: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
          device: torch.device | None = None) -> tuple[nn.Module, dict]:
    """Train; returns (model with the best epoch's weights, history). DDP when the default
    process group is initialised (torchrun): each rank takes its shard of every epoch."""
    set_seed(cfg.seed)
    device = device or torch.device("cpu")
    dist = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank = torch.distributed.get_rank() if dist else 0
    world = torch.distributed.get_world_size() if dist else 1
    K = prep.targets.shape[1]
    if cfg.method == "head":
        model = Head(prep.x.shape[1], K, cfg.hidden, cfg.dropout)
        params = [{"params": model.parameters(), "lr": cfg.learning_rate}]
    else:
        model = build_encoder_model(cfg.method, model_dir, prep.feats.shape[1], K, cfg)
        enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
        params = [{"params": enc_params, "lr": cfg.learning_rate},
                  {"params": model.head.parameters(), "lr": cfg.learning_rate * cfg.head_lr_multiplier}]
    model.to(device)
    opt = torch.optim.AdamW(params, weight_decay=cfg.weight_decay)
    train_idx = np.asarray(prep.train_idx)
    per_rank = int(math.ceil(len(train_idx) / world))
    steps_per_epoch = max(1, int(math.ceil(per_rank / cfg.batch_size)))
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total, int(total * cfg.warmup_fraction)))
    net = model
    if dist:
        net = torch.nn.parallel.DistributedDataParallel(model)
    Y = torch.tensor(prep.targets, dtype=torch.float32)
    M = torch.tensor(prep.mask, dtype=torch.float32)
    X = torch.tensor(prep.x, dtype=torch.float32) if prep.x is not None else None
    F = torch.tensor(prep.feats, dtype=torch.float32) if prep.feats is not None else None

    def forward(idx):
        if X is not None:
            return net(X[idx].to(device))
        enc = tokenizer([prep.texts[i] or " " for i in idx], truncation=True, max_length=cfg.max_length,
                        padding=True, return_tensors="pt").to(device)
        return net(enc["input_ids"], enc["attention_mask"], F[idx].to(device))

    def predict(idx) -> np.ndarray:
        net.eval()
        out = []
        bs = max(cfg.batch_size, 64) if X is not None else cfg.batch_size
        with torch.no_grad():
            for s in range(0, len(idx), bs):
                out.append(forward(list(idx[s:s + bs])).float().cpu().numpy())
        net.train()
        return np.concatenate(out) if out else np.zeros((0, K), np.float32)

    history: list[dict] = []
    best = {"val_qwk": -2.0, "epoch": 0, "state": None, "val_loss": float("inf")}
    bad_epochs = 0
    step = 0
    net.train()
    for epoch in range(1, cfg.epochs + 1):
        g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        perm = train_idx[torch.randperm(len(train_idx), generator=g).numpy()]
        if world > 1:  # pad to a multiple of world, then this rank's shard (DistributedSampler's way)
            pad = per_rank * world - len(perm)
            perm = np.concatenate([perm, perm[:pad]])[rank::world]
        losses = []
        for s in range(0, len(perm), cfg.batch_size):
            if should_stop and should_stop():
                raise Stopped()
            idx = list(perm[s:s + cfg.batch_size])
            pred = forward(idx)
            y, m = Y[idx].to(device), M[idx].to(device)
            loss = (((pred.float() - y) ** 2) * m).sum() / m.sum().clamp(min=1.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            if cfg.method != "head" and report and rank == 0 and step % 10 == 0:
                report({"stage": "training", "epoch": epoch, "epochs": cfg.epochs, "step": step,
                        "steps": total, "loss": round(float(np.mean(losses)), 5)})
            if cfg.max_steps and step >= cfg.max_steps:
                break
        pv = predict(prep.val_idx)
        val_pred = prep.main_scale.snap(prep.main_scale.denorm(pv[:, 0]))
        vq = qwk(prep.main_scale.index(prep.val_human), prep.main_scale.index(val_pred), 0, prep.main_scale.n - 1)
        yv, mv = prep.targets[prep.val_idx], prep.mask[prep.val_idx]
        vloss = float((((pv - yv) ** 2) * mv).sum() / max(mv.sum(), 1.0))
        rec = {"epoch": epoch, "step": step, "loss": round(float(np.mean(losses)) if losses else 0.0, 5),
               "val_loss": round(vloss, 5), "val_qwk": round(vq, 4)}
        history.append(rec)
        improved = vq > best["val_qwk"] + 1e-6 or (abs(vq - best["val_qwk"]) <= 1e-6 and vloss < best["val_loss"])
        if improved:
            best.update(val_qwk=vq, epoch=epoch, val_loss=vloss,
                        state={k: v.detach().clone() for k, v in model.state_dict().items()})
            bad_epochs = 0
        else:
            bad_epochs += 1
        stop = bad_epochs >= cfg.patience or bool(cfg.max_steps and step >= cfg.max_steps)
        if report and rank == 0:
            report({"stage": "training", "epoch": epoch, "epochs": cfg.epochs, "step": step, "steps": total,
                    "loss": rec["loss"], "val_loss": rec["val_loss"], "val_qwk": rec["val_qwk"],
                    "best_val_qwk": round(best["val_qwk"], 4), "best_epoch": best["epoch"]})
        if dist:  # every rank sees the same validation numbers, but make the decision explicit
            flag = torch.tensor([1 if stop else 0])
            torch.distributed.broadcast(flag, 0)
            stop = bool(flag.item())
        if stop:
            break
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return model, {"history": history, "best_epoch": best["epoch"], "best_val_qwk": round(best["val_qwk"], 4),
                   "steps": step, "world_size": world}


def copy_model(m: nn.Module) -> nn.Module:
    return copy.deepcopy(m)


def threads_hint() -> None:
    n = settings().train_threads
    if n:
        torch.set_num_threads(n)
