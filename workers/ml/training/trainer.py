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
from workers.ml.grading.nets import EncoderRegressor, Head
from workers.ml.scales import Scale
from workers.ml.stats import qwk

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
    return _Run(prep, cfg, model_dir, tokenizer, report, should_stop, device).run()


def _dist_info() -> tuple[bool, int, int]:
    """(DDP in use, this rank, world size) from the default process group."""
    dist = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank = torch.distributed.get_rank() if dist else 0
    world = torch.distributed.get_world_size() if dist else 1
    return dist, rank, world


def _build_model(prep: Prepared, cfg: TrainConfig, model_dir: str | None, K: int) -> tuple[nn.Module, list[dict]]:
    """The model for ``cfg.method`` and its optimiser parameter groups (lora/full: the head learns faster)."""
    if cfg.method == "head":
        model = Head(prep.x.shape[1], K, cfg.hidden, cfg.dropout)
        params = [{"params": model.parameters(), "lr": cfg.learning_rate}]
    else:
        model = build_encoder_model(cfg.method, model_dir, prep.feats.shape[1], K, cfg)
        enc_params = [p for p in model.encoder.parameters() if p.requires_grad]
        params = [{"params": enc_params, "lr": cfg.learning_rate},
                  {"params": model.head.parameters(), "lr": cfg.learning_rate * cfg.head_lr_multiplier}]
    return model, params


def _total_steps(cfg: TrainConfig, per_rank: int) -> int:
    """Optimiser steps of the whole run: steps per epoch times epochs, capped by ``max_steps``."""
    steps_per_epoch = max(1, int(math.ceil(per_rank / cfg.batch_size)))
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    return total


class _Run:
    """One ``train`` call: model, optimiser, schedule and data, the epoch loop and the best epoch so far."""

    def __init__(self, prep: Prepared, cfg: TrainConfig, model_dir: str | None, tokenizer,
                 report: Callable[[dict], None] | None, should_stop: Callable[[], bool] | None,
                 device: torch.device | None):
        set_seed(cfg.seed)
        self.prep, self.cfg, self.tokenizer, self.report, self.should_stop = prep, cfg, tokenizer, report, should_stop
        self.device = device or torch.device("cpu")
        self.dist, self.rank, self.world = _dist_info()
        self.K = prep.targets.shape[1]
        self.model, params = _build_model(prep, cfg, model_dir, self.K)
        self.model.to(self.device)
        self.opt = torch.optim.AdamW(params, weight_decay=cfg.weight_decay)
        self.train_idx = np.asarray(prep.train_idx)
        self.per_rank = int(math.ceil(len(self.train_idx) / self.world))
        self.total = _total_steps(cfg, self.per_rank)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_lambda(self.total, int(self.total * cfg.warmup_fraction)))
        self.net = self.model
        if self.dist:
            self.net = torch.nn.parallel.DistributedDataParallel(self.model)
        self.Y = torch.tensor(prep.targets, dtype=torch.float32)
        self.M = torch.tensor(prep.mask, dtype=torch.float32)
        self.X = torch.tensor(prep.x, dtype=torch.float32) if prep.x is not None else None
        self.F = torch.tensor(prep.feats, dtype=torch.float32) if prep.feats is not None else None
        self.history: list[dict] = []
        self.best = {"val_qwk": -2.0, "epoch": 0, "state": None, "val_loss": float("inf")}
        self.bad_epochs = 0
        self.step = 0

    def forward(self, idx):
        """The net's output for rows ``idx``: precomputed inputs (head) or tokenized texts plus features."""
        if self.X is not None:
            return self.net(self.X[idx].to(self.device))
        enc = self.tokenizer([self.prep.texts[i] or " " for i in idx], truncation=True, max_length=self.cfg.max_length,
                             padding=True, return_tensors="pt").to(self.device)
        return self.net(enc["input_ids"], enc["attention_mask"], self.F[idx].to(self.device))

    def predict(self, idx) -> np.ndarray:
        """Outputs for rows ``idx`` in eval mode, batch by batch (the net is back in train mode after)."""
        self.net.eval()
        out = []
        bs = max(self.cfg.batch_size, 64) if self.X is not None else self.cfg.batch_size
        with torch.no_grad():
            for s in range(0, len(idx), bs):
                out.append(self.forward(list(idx[s:s + bs])).float().cpu().numpy())
        self.net.train()
        return np.concatenate(out) if out else np.zeros((0, self.K), np.float32)

    def run(self) -> tuple[nn.Module, dict]:
        """Epochs until patience or ``max_steps`` runs out; then the best epoch's weights and the history."""
        self.net.train()
        for epoch in range(1, self.cfg.epochs + 1):
            losses = self._epoch(epoch)
            stop = self._validate(epoch, losses)
            if self.dist:  # every rank sees the same validation numbers, but make the decision explicit
                flag = torch.tensor([1 if stop else 0])
                torch.distributed.broadcast(flag, 0)
                stop = bool(flag.item())
            if stop:
                break
        if self.best["state"] is not None:
            self.model.load_state_dict(self.best["state"])
        self.model.eval()
        return self.model, {"history": self.history, "best_epoch": self.best["epoch"],
                            "best_val_qwk": round(self.best["val_qwk"], 4), "steps": self.step, "world_size": self.world}

    def _order(self, epoch: int) -> np.ndarray:
        """This epoch's shuffled training rows (seeded by epoch), this rank's shard under DDP."""
        g = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)
        perm = self.train_idx[torch.randperm(len(self.train_idx), generator=g).numpy()]
        if self.world > 1:  # pad to a multiple of world, then this rank's shard (DistributedSampler's way)
            pad = self.per_rank * self.world - len(perm)
            perm = np.concatenate([perm, perm[:pad]])[self.rank::self.world]
        return perm

    def _epoch(self, epoch: int) -> list[float]:
        """One epoch of optimiser steps (stops early at ``max_steps``); returns the batch losses."""
        cfg = self.cfg
        perm = self._order(epoch)
        losses = []
        for s in range(0, len(perm), cfg.batch_size):
            if self.should_stop and self.should_stop():
                raise Stopped()
            losses.append(self._step(list(perm[s:s + cfg.batch_size])))
            if cfg.method != "head" and self.report and self.rank == 0 and self.step % 10 == 0:
                self.report({"stage": "training", "epoch": epoch, "epochs": cfg.epochs, "step": self.step,
                             "steps": self.total, "loss": round(float(np.mean(losses)), 5)})
            if cfg.max_steps and self.step >= cfg.max_steps:
                break
        return losses

    def _step(self, idx: list) -> float:
        """One optimiser step on rows ``idx`` (masked MSE, clipped gradients, schedule step); returns the loss."""
        pred = self.forward(idx)
        y, m = self.Y[idx].to(self.device), self.M[idx].to(self.device)
        loss = (((pred.float() - y) ** 2) * m).sum() / m.sum().clamp(min=1.0)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        self.step += 1
        return float(loss.detach())

    def _validate(self, epoch: int, losses: list[float]) -> bool:
        """Validation QWK and loss of this epoch: history, best weights, report; True when training should stop."""
        prep, cfg, best = self.prep, self.cfg, self.best
        pv = self.predict(prep.val_idx)
        val_pred = prep.main_scale.snap(prep.main_scale.denorm(pv[:, 0]))
        vq = qwk(prep.main_scale.index(prep.val_human), prep.main_scale.index(val_pred), 0, prep.main_scale.n - 1)
        yv, mv = prep.targets[prep.val_idx], prep.mask[prep.val_idx]
        vloss = float((((pv - yv) ** 2) * mv).sum() / max(mv.sum(), 1.0))
        rec = {"epoch": epoch, "step": self.step, "loss": round(float(np.mean(losses)) if losses else 0.0, 5),
               "val_loss": round(vloss, 5), "val_qwk": round(vq, 4)}
        self.history.append(rec)
        improved = vq > best["val_qwk"] + 1e-6 or (abs(vq - best["val_qwk"]) <= 1e-6 and vloss < best["val_loss"])
        if improved:
            best.update(val_qwk=vq, epoch=epoch, val_loss=vloss,
                        state={k: v.detach().clone() for k, v in self.model.state_dict().items()})
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        stop = self.bad_epochs >= cfg.patience or bool(cfg.max_steps and self.step >= cfg.max_steps)
        if self.report and self.rank == 0:
            self.report({"stage": "training", "epoch": epoch, "epochs": cfg.epochs, "step": self.step, "steps": self.total,
                         "loss": rec["loss"], "val_loss": rec["val_loss"], "val_qwk": rec["val_qwk"],
                         "best_val_qwk": round(best["val_qwk"], 4), "best_epoch": best["epoch"]})
        return stop


def copy_model(m: nn.Module) -> nn.Module:
    return copy.deepcopy(m)


def threads_hint() -> None:
    n = settings().train_threads
    if n:
        torch.set_num_threads(n)
