"""The fine-tuned graders' networks: a head on frozen embeddings + surface features, or an encoder
with that head (LoRA / full). Trained by workers/ml/training/trainer.py, served by finetuned.py."""
from __future__ import annotations

import torch
from torch import nn


class Head(nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: int = 256, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, n_out))

    def forward(self, x):
        return torch.sigmoid(self.net(x))


class EncoderRegressor(nn.Module):
    """Encoder (mean-pooled, L2-normalised like the frozen path) + surface features + head."""

    def __init__(self, encoder: nn.Module, n_feat: int, n_out: int, hidden: int, dropout: float):
        super().__init__()
        self.encoder = encoder
        self.head = Head(int(encoder.config.hidden_size) + n_feat, n_out, hidden, dropout)

    def forward(self, input_ids, attention_mask, feats, **kw):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kw).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        pooled = nn.functional.normalize(pooled, dim=-1)
        return self.head(torch.cat([pooled, feats], dim=-1))
