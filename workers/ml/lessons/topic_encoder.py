"""Sentence embeddings for the on-topic check: the project's shared MiniLM encoder
(workers/ml/encoder.py), with a shorter window since plans are compared to a topic."""
from __future__ import annotations


def load_encoder():
    from workers.ml.encoder import Encoder

    return Encoder(max_length=256)
