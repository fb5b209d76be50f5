"""Compressed encoder variants (workers/ml/variants.py): the per-machine choice under every CPU-feature
answer, the quality gate, and that a head is never served on another variant's outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from workers.ml import variants as V

FLAGS = {
    "amx": {"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"},
    "avx512_bf16": {"avx2", "avx512f", "avx512_bf16"},
    "avx512": {"avx2", "avx512f", "avx512_vnni"},
    "avx2": {"avx2", "fma"},
    "other": {"sse4_2"},
}


def q(mean=0.0, worst=0.0, lopo=0.0) -> dict:
    return {"asap": {"mean_delta": mean, "worst_delta": worst, "worst_prompt": "3"}, "default_lopo": {"delta": lopo}}


@pytest.fixture
def all_built(monkeypatch):
    monkeypatch.setattr(V.Variant, "built", property(lambda self: True))


@pytest.mark.parametrize("hw", sorted(FLAGS))
def test_hardware_class_from_flags(hw):
    assert V.hardware_class(FLAGS[hw], cuda=False, bf16_fast=True) == hw
    assert V.hardware_class(FLAGS[hw], cuda=True) == "cuda"


def test_bf16_flags_without_fast_bf16_count_as_avx512():
    """A Xeon with AVX512-BF16 but no AMX ran bf16 slower than fp32 (workers/ml/device.py): int8 comes first there."""
    assert V.hardware_class(FLAGS["avx512_bf16"], cuda=False, bf16_fast=False) == "avx512"
    assert V.hardware_class(FLAGS["amx"], cuda=False, bf16_fast=False) == "avx512"


@pytest.mark.parametrize("hw", ["cuda", *sorted(FLAGS)])
def test_choice_is_the_first_eligible_variant_of_the_class(hw, all_built):
    v, why = V.choose_variant(hw=hw, want="auto", quality_of=lambda n: q())
    expect = next(n for n in V.PREFERENCE[hw] if V.runs_on(V.VARIANTS[n], hw))
    assert v.name == expect and hw in why
    # the fastest one fails the gate: the next in the order, and the log says why the first was skipped
    first = V.PREFERENCE[hw][0]
    v2, why2 = V.choose_variant(hw=hw, want="auto",
                                quality_of=lambda n: q(mean=-0.02) if n == first else q())
    assert v2.name != first and f"{first} not eligible" in why2 and "ASAP mean dQWK" in why2
    # nothing passes the gate: the full model
    v3, _ = V.choose_variant(hw=hw, want="auto", quality_of=lambda n: q(lopo=-0.5))
    assert v3.name == "full"


def test_int8_never_chosen_without_the_cpu_kernels(all_built):
    for hw in ("cuda", "other"):  # only the int8 variants pass the gate: still not chosen here
        v, why = V.choose_variant(hw=hw, want="auto", quality_of=lambda n: q() if "int8" in n else q(mean=-1))
        assert v.name == "full", why
    with pytest.raises(RuntimeError, match="AVX2"):
        V.choose_variant(hw="cuda", want="l4-int8")


def test_avx2_prefers_int8_and_amx_prefers_bf16_pruning(all_built):
    assert V.choose_variant(hw="avx2", want="auto", quality_of=lambda n: q())[0].name == "l2-int8"
    assert V.choose_variant(hw="amx", want="auto", quality_of=lambda n: q())[0].name == "l2"
    # the two shallowest fail the gate: the next fastest of the same arithmetic
    fails = lambda n: q(worst=-0.02) if n[:2] in ("l2", "l3") else q()  # noqa: E731
    assert V.choose_variant(hw="avx2", want="auto", quality_of=fails)[0].name == "l4-int8"
    assert V.choose_variant(hw="amx", want="auto", quality_of=fails)[0].name == "l4"


def test_setting_overrides_and_unknown_names_fail(all_built, monkeypatch):
    v, why = V.choose_variant(hw="amx", want="full", quality_of=lambda n: q())
    assert v.name == "full" and "EDUQ_ENCODER_VARIANT=full" in why
    with pytest.raises(ValueError, match="unknown encoder variant"):
        V.choose_variant(hw="amx", want="tiny")


def test_an_operators_own_encoder_is_served_as_is(all_built, monkeypatch):
    from app.settings import reset_settings

    monkeypatch.setenv("EDUQ_ENCODER_DIR", "/models/my-encoder")
    reset_settings()
    try:
        v, why = V.choose_variant(hw="avx2", want="auto", quality_of=lambda n: q())
        assert v.name == "full" and "EDUQ_ENCODER_DIR" in why
    finally:
        monkeypatch.delenv("EDUQ_ENCODER_DIR")
        reset_settings()


def test_unbuilt_variant_is_skipped_or_refused(monkeypatch):
    monkeypatch.setattr(V.Variant, "built", property(lambda self: self.name == "full"))
    v, why = V.choose_variant(hw="amx", want="auto", quality_of=lambda n: q())
    assert v.name == "full" and "l3 eligible but not built here" in why
    with pytest.raises(RuntimeError, match="not built"):
        V.choose_variant(hw="amx", want="l4")


@pytest.mark.parametrize("qual,ok", [
    (q(), True), (q(mean=-0.005, worst=-0.015, lopo=-0.01), True),
    (q(mean=-0.0051), False), (q(worst=-0.0151), False), (q(lopo=-0.0101), False), (None, False)])
def test_gate_bounds(qual, ok):
    assert V.gate(qual)[0] is ok


def test_heads_refuse_another_variants_encoder():
    from workers.ml.grading.default import DefaultGrader

    class Fake:
        variant, dim = "l4", 384

    with pytest.raises(ValueError, match="fitted on encoder variant 'full'"):
        DefaultGrader.load(encoder=Fake(), head_path=str(V.ARTIFACTS / "minilm_head.npz"))
    with pytest.raises(ValueError, match="fitted on encoder variant"):
        V.check_fitted_on({"variant": "l4"}, None, "x")


BUILT = [n for n in V.VARIANTS if n != "full" and V.VARIANTS[n].built]


def test_at_least_one_variant_is_committed():
    assert BUILT, "no compressed variant is committed under workers/ml/grading/artifacts/variants"


@pytest.mark.parametrize("name", BUILT)
def test_committed_variant_is_consistent(name):
    """Its heads name it, its quality.json's verdict is the gate's, and its stored weights are at most half
    the full model's size."""
    d = V.heads_dir(name)
    assert json.loads((d / "minilm_head.json").read_text())["variant"] == name
    assert json.loads((d / "asap" / "meta.json").read_text())["variant"] == name
    assert json.loads((d / "review" / "review.json").read_text())["variant"] == name
    qual = json.loads((d / "quality.json").read_text())
    assert qual["eligible"] == V.gate(qual)[0]
    assert V.model_size_bytes(name) <= 0.5 * V.model_size_bytes("full")


@pytest.mark.parametrize("name", BUILT)
def test_variant_encoder_and_its_graders_load_and_grade(name):
    """The worker's path on a variant: its encoder, the graders read their refit heads, one essay graded;
    the pruned encoder's states are the full encoder's first ones (bf16-stored weights, so close, not equal)."""
    from workers.ml.encoder import Encoder
    from workers.ml.grading.asap import AsapGrader
    from workers.ml.grading.default import DefaultGrader
    from workers.ml.grading.interface import GradeRequest
    from workers.ml.grading.service import GradingService

    text = ["Our class garden taught me patience, because the beans took weeks to sprout and we watered "
            "them every morning before the bell rang."]
    enc = Encoder(variant=name, precision="fp32")
    v = V.VARIANTS[name]
    assert enc.variant == name and enc.n_states == (v.layers or 6) + 1 and name in enc.name
    g = DefaultGrader.load(encoder=enc)
    assert g.meta["variant"] == name
    a = AsapGrader.load(encoder=enc)
    assert a.meta["variant"] == name
    svc = GradingService.over(enc, {"default": g, "asap-": a})  # the review flags: this variant's too
    assert svc.reviewer.cfg["variant"] == name
    out = svc.grade([GradeRequest(text[0], {"name": "r", "scale": {"min": 1, "max": 6, "step": 1}, "always_score": True},
                                  "default"), GradeRequest(text[0], {**a.rubric("3"), "always_score": True}, "asap-3")])
    scale, asap_scale = range(1, 7), range(0, 4)
    assert out[0]["score"] in scale and out[1]["score"] in asap_scale, out
    if not v.int8:
        full = Encoder(precision="fp32").embed(text, layers=True)[:, :enc.n_states * enc.dim]
        mine = enc.embed(text, layers=True)
        per_state = (full * mine).reshape(enc.n_states, enc.dim).sum(1)
        assert np.all(per_state > 0.995), per_state
