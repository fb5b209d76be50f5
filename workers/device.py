"""The device and precision, chosen once per process.

EDUQ_DEVICE: auto (CUDA when available) | cpu | cuda.  EDUQ_PRECISION: auto | fp32 | bf16.
auto = bf16 on CUDA; on CPU, bf16 where the processor has native bf16 (AMX or AVX512-BF16), else fp32.

Measured here (2 cores, Xeon with AMX; `python /tmp/enc_speed2.py`, 64 ASAP dev essays, MiniLM-L6,
max 512 tokens): one essay at a time fp32 4.1 s; length-sorted batches of 16 fp32 4.6-4.7 s (the
padding mask costs more than batching saves on CPU); bf16 autocast 1.7-1.9 s; bf16 weights 1.5-1.8 s;
dynamic int8 3.4-3.7 s with embeddings moved (cosine 0.87, rejected). bf16 weights keep every
embedding within cosine 0.9999 of fp32; `make bench` checks that scores are unchanged (QWK).
"""
from __future__ import annotations

import functools
import os

import torch


@functools.lru_cache(maxsize=1)
def choose_device() -> torch.device:
    want = os.environ.get("EDUQ_DEVICE", "auto").lower()
    if want == "cuda" or (want == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def inference_dtype(device: torch.device | None = None) -> torch.dtype:
    device = device or choose_device()
    want = os.environ.get("EDUQ_PRECISION", "auto").lower()
    if want == "fp32":
        return torch.float32
    if want == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32
