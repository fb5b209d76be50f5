"""llama.cpp (through llama-cpp-python) as the CPU engine: the GGUF served as shipped, several sequences
decoded together, output constrained to a JSON schema by llama.cpp's own grammar sampler.

One ``llama_context`` with a unified KV cache holds up to ``n_parallel`` sequences. ``generate`` is the
loop of llama.cpp's ``batched`` example and of its server's slots: a free slot takes the next request
(its prompt prefilled in chunks of ``n_batch`` tokens, after the prefix every prompt of the call shares
is copied in from one prefilled sequence, not recomputed), then each ``llama_decode`` carries one new
token of every running sequence; a sequence that ends (end-of-generation token, grammar complete, budget)
frees its slot and its KV cells at once, so the batch stays full while requests wait. Sampling is a
llama.cpp sampler chain per sequence (repetition penalty, the JSON-schema grammar, top-k, top-p,
temperature, then a draw seeded by the request), so a sequence's text depends on its own request and
seed, not on who shares the batch (up to the float rounding of different batch shapes).

Built from source by ``make install`` (``llama-cpp-python`` pinned: this module uses its thin wrappers
``llama_cpp._internals`` over the C API; the pin keeps them stable).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field

from workers.ml.llm.base import EngineStats, GenRequest, GenResult

log = logging.getLogger(__name__)


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


@dataclass
class _Slot:
    seq: int
    index: int = -1  # the request's position in the call
    req: GenRequest | None = None
    sampler: object = None
    tokens: list = field(default_factory=list)
    n_past: int = 0
    n_prompt: int = 0
    batch_pos: int = -1  # where this sequence's logits are in the last decoded batch


class LlamaCppEngine:
    name = "llamacpp"

    def __init__(self, model_path: str, *, n_parallel: int = 8, n_ctx: int = 4096, n_batch: int = 512,
                 n_threads: int | None = None, flash_attn: bool = False):
        import llama_cpp
        from llama_cpp import _internals as li
        from llama_cpp import _logger
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        _logger.set_verbose(False)  # llama.cpp's own log: errors only (it prints every graph node otherwise)

        self._lc, self._li = llama_cpp, li
        self.model_path = model_path
        self.n_parallel = max(1, n_parallel)
        self.n_batch = n_batch
        threads = n_threads or os.cpu_count() or 1
        llama_cpp.llama_backend_init()
        mparams = llama_cpp.llama_model_default_params()
        self.model = li.LlamaModel(path_model=model_path, params=mparams, verbose=False)
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = self.n_parallel + 1  # the slots, and one for the shared prefix
        cparams.kv_unified = True  # one cache for every sequence: a shared prefix is stored once
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.no_perf = True
        # flash attention: off by default on CPU (measured slower here for this model size); on where asked
        cparams.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                                   else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
        self.ctx = li.LlamaContext(model=self.model, params=cparams, verbose=False)
        self.n_ctx = self.ctx.n_ctx()
        self.vocab = llama_cpp.llama_model_get_vocab(self.model.model)
        meta = self.model.metadata()
        self._template = Jinja2ChatFormatter(
            template=meta["tokenizer.chat_template"],
            eos_token=self.model.token_get_text(self.model.token_eos()),
            bos_token=self.model.token_get_text(self.model.token_bos()),
        )
        self._grammars: dict[str, object] = {}
        self._prefix: list[int] = []  # the tokens the spare sequence holds
        self.prefix_tokens_reused = 0
        self.timing = {"decode_s": 0.0, "decode_calls": 0, "decoded_tokens": 0}
        name = os.path.basename(model_path).removesuffix(".gguf")
        self.model_version = f"{name}@sha256:{file_digest(model_path)}+llama.cpp-{llama_cpp.__version__}"
        self.stats = EngineStats()
        self.threads = threads

    # ------------------------------------------------------------------ helpers
    def prompt_text(self, messages: list[dict]) -> str:
        return self._template(messages=messages).prompt

    def tokenize(self, text: str) -> list[int]:
        return self.model.tokenize(text.encode("utf-8"), add_bos=self.model.add_bos_token(), special=True)

    def _grammar(self, schema: dict):
        from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:  # properties in the schema's own order (the prompt's), not sorted
            gbnf = json_schema_to_gbnf(json.dumps(schema), prop_order=list(schema.get("properties") or []))
            self._grammars[key] = LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[key]

    def _sampler(self, req: GenRequest) -> "_Sampler":
        return _Sampler(self, req)

    def _decode(self, batch, entries: list[tuple[int, int, int, bool]]) -> None:
        """entries: (token, position, seq, wants_logits), at most n_batch of them."""
        b = batch.batch
        t = time.perf_counter()
        b.n_tokens = len(entries)
        for i, (tok, pos, seq, logits) in enumerate(entries):
            b.token[i] = tok
            b.pos[i] = pos
            b.seq_id[i][0] = seq
            b.n_seq_id[i] = 1
            b.logits[i] = logits
        self.ctx.decode(batch)
        self.timing["decode_s"] += time.perf_counter() - t
        self.timing["decode_calls"] += 1
        self.timing["decoded_tokens"] += len(entries)

    def _prefill(self, batch, tokens: list[int], start: int, seq: int) -> None:
        """Prompt tokens from position ``start``, in chunks; logits for the last one only."""
        for lo in range(0, len(tokens), self.n_batch):
            chunk = tokens[lo: lo + self.n_batch]
            last = lo + len(chunk) == len(tokens)
            self._decode(batch, [(t, start + lo + i, seq, last and i == len(chunk) - 1)
                                 for i, t in enumerate(chunk)])

    # ------------------------------------------------------------------ public
    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        t0 = time.perf_counter()
        mem = self.ctx.memory
        lc = self._lc
        prompts = [self.tokenize(self.prompt_text(r.messages)) for r in requests]
        results: list[GenResult | None] = [None] * len(requests)
        for i, (r, p) in enumerate(zip(requests, prompts)):
            if len(p) + r.max_tokens > self.n_ctx:
                results[i] = GenResult(text="", finish_reason="error", prompt_tokens=len(p),
                                       error=f"prompt ({len(p)} tokens) + budget ({r.max_tokens}) too long for the "
                                             f"context ({self.n_ctx})")
        todo = deque(i for i in range(len(requests)) if results[i] is None)
        batch = self._li.LlamaBatch(n_tokens=max(self.n_batch, self.n_parallel), embd=0, n_seq_max=1, verbose=False)
        # the prefix every prompt shares (the system turn, the worked example) is prefilled once into the spare
        # sequence and copied into each slot's (a unified cache shares the cells); it is kept between calls
        # and only its changed tail recomputed: automatic prefix caching, as vLLM and llama.cpp's server do
        waiting = [prompts[i] for i in todo]
        shared = (_common_prefix(waiting) if len(waiting) > 1 else waiting[0])[:-1] if waiting else []
        shared = self._cache_prefix(batch, shared if len(shared) >= 16 else [])
        slots = [_Slot(seq=s) for s in range(self.n_parallel)]
        running: list[_Slot] = []
        try:
            while todo or running:
                for slot in slots:  # admit waiting requests into free slots while their KV cells fit
                    if slot.req is None and todo and (not running or self._fits(prompts[todo[0]], requests[todo[0]],
                                                                                 shared, running, prompts)):
                        i = todo.popleft()
                        slot.index, slot.req, slot.tokens = i, requests[i], []
                        slot.sampler = self._sampler(slot.req)
                        p = prompts[i]
                        lc.llama_memory_seq_rm(mem, slot.seq, -1, -1)
                        if shared:
                            lc.llama_memory_seq_cp(mem, self.n_parallel, slot.seq, 0, len(shared))
                        self._prefill(batch, p[len(shared):], len(shared), slot.seq)
                        slot.n_past, slot.n_prompt, slot.batch_pos = len(p), len(p), -1
                        running.append(slot)
                        tok = slot.sampler.sample(self.ctx, -1)  # logits of its last prompt token
                        self._take(slot, tok, results)
                running = [s for s in running if s.req is not None]
                if not running:
                    continue
                entries = []
                for k, slot in enumerate(running):
                    entries.append((slot.tokens[-1], slot.n_past, slot.seq, True))
                    slot.batch_pos, slot.n_past = k, slot.n_past + 1
                self._decode(batch, entries)
                for slot in running:
                    tok = slot.sampler.sample(self.ctx, slot.batch_pos)
                    self._take(slot, tok, results)
                running = [s for s in running if s.req is not None]
        except BaseException:
            lc.llama_memory_clear(mem, True)  # a failed decode leaves the cache unknown: start clean next time
            self._prefix = []
            raise
        finally:
            for slot in slots:
                if slot.sampler is not None:
                    slot.sampler.close()
                    lc.llama_memory_seq_rm(mem, slot.seq, -1, -1)
            batch.close()
        out = [r for r in results if r is not None]
        assert len(out) == len(requests)
        self.stats.add(out, time.perf_counter() - t0)
        return out

    def _fits(self, prompt: list[int], req: GenRequest, shared: list[int], running: list[_Slot],
              prompts: list[list[int]]) -> bool:
        """Whether one more sequence's cells (its own prompt tail and its whole budget) fit in the cache beside
        the shared prefix and what the running sequences may still need."""
        need = len(shared) + len(prompt) - len(shared) + req.max_tokens
        for s in running:
            if s.req is not None:
                need += len(prompts[s.index]) - len(shared) + s.req.max_tokens
        return need <= self.n_ctx

    def _cache_prefix(self, batch, want: list[int]) -> list[int]:
        """Make the spare sequence hold ``want``: keep what it shares with what is cached, prefill the rest."""
        keep = len(_common_prefix([self._prefix, want])) if self._prefix and want else 0
        self._lc.llama_memory_seq_rm(self.ctx.memory, self.n_parallel, keep, -1)
        if len(want) > keep:
            self._prefill(batch, want[keep:], keep, self.n_parallel)
        self.prefix_tokens_reused += keep
        self._prefix = list(want)
        return self._prefix

    def _take(self, slot: _Slot, tok: int, results: list) -> None:
        """Append a sampled token; finish the sequence at end-of-generation or at its budget."""
        req = slot.req
        eog = self._lc.llama_vocab_is_eog(self.vocab, tok)
        if not eog:
            slot.tokens.append(tok)
        if eog or len(slot.tokens) >= req.max_tokens:
            text = self.model.detokenize(slot.tokens, special=False).decode("utf-8", errors="replace")
            results[slot.index] = GenResult.parsed(
                text, "stop" if eog else "length", req.schema,
                prompt_tokens=slot.n_prompt, completion_tokens=len(slot.tokens) + (1 if eog else 0))
            self._lc.llama_memory_seq_rm(self.ctx.memory, slot.seq, -1, -1)
            slot.sampler.close()
            slot.req, slot.sampler = None, None


class _Sampler:
    """One sequence's sampling: a llama.cpp chain (repetition penalty, top-k, top-p, temperature, a draw seeded
    by the request) and, for a schema, the grammar, applied as llama.cpp's ``common_sampler`` does: the chain
    draws a token, the grammar checks only that token, and only when it is refused does the grammar filter
    the whole vocabulary before the chain draws again (checking 49k tokens at every step costs as much as
    the forward pass of this small model)."""

    def __init__(self, engine: "LlamaCppEngine", req: GenRequest):
        import ctypes

        import numpy as np

        lc, li = engine._lc, engine._li
        self._lc, self._np, self._ctypes = lc, np, ctypes
        self.n_vocab = engine.model.n_vocab()
        self.chain = li.LlamaSampler()
        if req.repeat_penalty and req.repeat_penalty != 1.0:
            self.chain.add_penalties(self.n_vocab, 64, req.repeat_penalty, 0.0, 0.0)
        if req.temperature <= 0:
            self.chain.add_greedy()
        else:
            self.chain.add_top_k(req.top_k)
            self.chain.add_top_p(req.top_p, 1)
            self.chain.add_temp(req.temperature)
            self.chain.add_dist(req.seed & 0xFFFFFFFF)
        self.grammar = None
        if req.schema is not None:
            self.grammar = li.LlamaSampler()
            self.grammar.add_grammar(engine.model, engine._grammar(req.schema))
            self.cands = li.LlamaTokenDataArray(n_vocab=self.n_vocab)
            self.one_data = (lc.llama_token_data * 1)()
            self.one = lc.llama_token_data_array(data=self.one_data, size=1, selected=-1, sorted=False)

    def sample(self, ctx, idx: int) -> int:
        lc = self._lc
        if self.grammar is None:
            return lc.llama_sampler_sample(self.chain.sampler, ctx.ctx, idx)  # draws and accepts
        logits = self._np.ctypeslib.as_array(lc.llama_get_logits_ith(ctx.ctx, idx), shape=(self.n_vocab,))
        c = self.cands
        c.copy_logits(logits)
        lc.llama_sampler_apply(self.chain.sampler, self._ctypes.byref(c.candidates))
        tok = int(c.candidates_data.id[c.candidates.selected])
        self.one_data[0].id, self.one_data[0].logit, self.one_data[0].p = tok, 1.0, 0.0
        self.one.size, self.one.selected = 1, -1
        lc.llama_sampler_apply(self.grammar.sampler, self._ctypes.byref(self.one))
        if self.one_data[0].logit == float("-inf"):  # refused: filter the whole vocabulary, draw again
            c.copy_logits(logits)
            lc.llama_sampler_apply(self.grammar.sampler, self._ctypes.byref(c.candidates))
            lc.llama_sampler_apply(self.chain.sampler, self._ctypes.byref(c.candidates))
            tok = int(c.candidates_data.id[c.candidates.selected])
        self.grammar.accept(tok)
        self.chain.accept(tok)
        return tok

    def close(self) -> None:
        self.chain.close()
        if self.grammar is not None:
            self.grammar.close()


def _common_prefix(seqs: list[list[int]]) -> list[int]:
    if not seqs:
        return []
    first = seqs[0]
    n = min(len(s) for s in seqs)
    k = 0
    while k < n and all(s[k] == first[k] for s in seqs):
        k += 1
    return first[:k]
