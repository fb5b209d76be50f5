"""workers/ml/device.py: the CPU precision is chosen by measurement, and the environment overrides it."""
import torch

from workers.ml import device


def test_bf16_probe_times_both_precisions_and_decides_by_the_margin():
    out = device.bf16_probe.__wrapped__(rows=256, seconds=0.01)
    assert out["fp32_ms"] > 0 and out["bf16_ms"] > 0
    assert out["bf16_faster"] == (out["bf16_ms"] <= 0.85 * out["fp32_ms"])


def test_precision_env_overrides_the_probe(monkeypatch):
    monkeypatch.setenv("EDUQ_PRECISION", "bf16")
    assert device.inference_dtype("cpu") is torch.bfloat16
    monkeypatch.setenv("EDUQ_PRECISION", "fp32")
    assert device.inference_dtype("cpu") is None


def test_auto_on_cpu_follows_flags_and_probe(monkeypatch):
    monkeypatch.setenv("EDUQ_PRECISION", "auto")
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    assert device.inference_dtype("cpu") is None
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(device, "bf16_probe", lambda: {"bf16_faster": False})
    assert device.inference_dtype("cpu") is None
    monkeypatch.setattr(device, "bf16_probe", lambda: {"bf16_faster": True})
    assert device.inference_dtype("cpu") is torch.bfloat16
    assert device.inference_dtype("cuda") is torch.bfloat16
