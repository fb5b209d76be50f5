"""The device and inference precision, decided once per process.

EDUQ_DEVICE     auto (default: CUDA when available, else CPU) | cpu | cuda
EDUQ_PRECISION  auto (default) | fp32 | bf16
    auto = bf16 on CUDA. On CPU: fp32 where the processor has no native bf16 (no AMX, no
    AVX512-BF16); where it has, a short probe (`bf16_probe`, ~0.3 s, once per process) times the
    encoder's largest matmul shape in fp32 and in bf16 and takes bf16 only if it is at least 15 %
    faster. inference_dtype() returns torch.bfloat16, or None for plain fp32. The encoder casts its
    weights to that dtype (see workers/ml/encoder.py for why not autocast).

EDUQ_TORCH_THREADS  optional: torch intra-op threads for this process (set once, with the device).
    Leave unset for torch's default (one per core); with several worker processes per machine
    give each cores/processes.

Why a probe and not the CPU flags alone: the same flag means opposite things on different
processors. Encoder.embed alone on ASAP dev essays (max_length 512, 2 torch threads, 2-core machines):
    Xeon with AMX (amx_bf16):          bf16 weights b16 2.64-2.72 s vs fp32 ~2x slower (134 essays)
    AMD EPYC, avx512_bf16, no AMX:     fp32 16.0 essays/s, bf16 27.8 (batch 8)
    Xeon, avx512_bf16, no AMX (2026-11-29, `python bench/encoder_modes.py`, 134 essays):
        fp32 b1 14.3-15.1, b4 16.1, b8 15.9-16.1 essays/s; bf16 b1 10.6-10.8, b8 10.9-11.1
    and on that last machine one Linear(384->1536) over 3,072 rows: fp32 15.9 ms (228 GFLOPS),
    bf16 26.8-27.5 ms (132 GFLOPS). The probe sees the same as the model: bf16 is a loss there.
bf16 keeps every embedding within cosine 0.9999 of fp32 (`make bench` checks the scores).
"""
from __future__ import annotations

import functools
import logging
import time

import torch

from app.settings import settings

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def choose_device() -> torch.device:
    cfg = settings()
    if cfg.torch_threads is not None:
        torch.set_num_threads(max(1, cfg.torch_threads))
    want = cfg.device
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
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (/proc/cpuinfo; empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_bf16() -> bool:
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def inference_dtype(device: torch.device | str | None = None) -> torch.dtype | None:
    """torch.bfloat16 (run under autocast to it) or None (plain fp32)."""
    device = torch.device(device) if device is not None else choose_device()
    want = settings().precision
    if want == "fp32":
        return None
    if want == "bf16":
        return torch.bfloat16
    if want != "auto":
        raise ValueError(f"EDUQ_PRECISION must be auto, fp32 or bf16, not {want!r}")
    if device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_bf16() and bf16_probe()["bf16_faster"] else None


@functools.lru_cache(maxsize=1)
def bf16_probe(rows: int = 3072, d_in: int = 384, d_out: int = 1536, seconds: float = 0.08) -> dict:
    """Times y = x W^T + b (the encoder's feed-forward shape: batch 8 x 384 tokens) in fp32 and bf16 on
    the CPU, best of several calls each, alternating; bf16 counts as faster at >= 15 % less time."""
    gen = torch.Generator().manual_seed(0)
    x32 = torch.randn(rows, d_in, generator=gen)
    lin32 = torch.nn.Linear(d_in, d_out)
    x16, lin16 = x32.to(torch.bfloat16), torch.nn.Linear(d_in, d_out).to(torch.bfloat16)
    best = {"fp32": float("inf"), "bf16": float("inf")}
    with torch.inference_mode():
        for x, lin in ((x32, lin32), (x16, lin16)):
            lin(x)  # first call builds the kernels
        for _ in range(2):
            for name, x, lin in (("fp32", x32, lin32), ("bf16", x16, lin16)):
                t_end = time.perf_counter() + seconds
                while True:
                    t0 = time.perf_counter()
                    lin(x)
                    now = time.perf_counter()
                    best[name] = min(best[name], now - t0)
                    if now >= t_end:
                        break
    out = {"fp32_ms": round(best["fp32"] * 1e3, 2), "bf16_ms": round(best["bf16"] * 1e3, 2),
           "bf16_faster": best["bf16"] <= 0.85 * best["fp32"]}
    log.info("CPU precision probe: fp32 %.2f ms, bf16 %.2f ms -> %s", out["fp32_ms"], out["bf16_ms"],
             "bf16" if out["bf16_faster"] else "fp32")
    return out
