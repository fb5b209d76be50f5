"""The device and inference precision, decided once per process.

EDUQ_DEVICE     auto (default: CUDA when available, else CPU) | cpu | cuda
EDUQ_PRECISION  auto (default) | fp32 | bf16
    auto = bf16 autocast on CUDA; on CPU, bf16 autocast where the processor has native bf16
    (AMX / AVX512-BF16), else fp32. inference_dtype() returns torch.bfloat16 for autocast, or
    None for plain fp32 (no autocast).

Measured on the dev box (2 cores, Xeon with amx_bf16 + avx512_bf16, torch 2.13 CPU, 2 torch
threads, machine shared with other jobs so absolute figures are pessimistic), all-MiniLM-L6-v2,
max_length 512, the same 64 ASAP dev essays, Encoder.embed (`python /tmp/speed.py`, see README of
bench/grading_paths.py for the end-to-end figure):
    fp32, one essay at a time       55.5 s   1.2 essays/s
    fp32, sorted batches of 8       20.5 s
    fp32, sorted batches of 32      19.4 s   3.3 essays/s
    bf16 autocast, one at a time    45.0 s
    bf16 autocast, batches of 16    14.2 s
    bf16 autocast, batches of 32    12.0 s   5.4 essays/s   <- default (Encoder batch_size=32)
bf16 autocast keeps every embedding within cosine 0.99997 of fp32; the end-to-end check
(bench/grading_paths.py, 300 dev essays) found the scores unchanged within the QWK budget, so
CPU auto = bf16 on AMX machines. Force EDUQ_PRECISION=fp32 to turn it off.
"""
from __future__ import annotations

import functools
import os

import torch


@functools.lru_cache(maxsize=1)
def choose_device() -> torch.device:
    want = os.environ.get("EDUQ_DEVICE", "auto").strip().lower()
    if want not in ("auto", "cpu", "cuda"):
        raise ValueError(f"EDUQ_DEVICE must be auto, cpu or cuda, not {want!r}")
    if want == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("EDUQ_DEVICE=cuda but no CUDA device is available")
        return torch.device("cuda")
    if want == "auto" and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def inference_dtype(device: torch.device | str | None = None) -> torch.dtype | None:
    """torch.bfloat16 (run under autocast to it) or None (plain fp32)."""
    device = torch.device(device) if device is not None else choose_device()
    want = os.environ.get("EDUQ_PRECISION", "auto").strip().lower()
    if want == "fp32":
        return None
    if want == "bf16":
        return torch.bfloat16
    if want != "auto":
        raise ValueError(f"EDUQ_PRECISION must be auto, fp32 or bf16, not {want!r}")
    if device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_bf16() else None
