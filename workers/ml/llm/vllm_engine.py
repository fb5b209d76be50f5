"""vLLM on CUDA machines: its continuous batching and paged KV cache, and guided decoding to the schema.

Chosen by ``registry.get_engine`` when a GPU is present and the optional extra is installed
(``pip install -e '.[vllm]'``). The whole list of requests goes to one ``LLM.chat`` call: vLLM owns the
batching; each request carries its own ``SamplingParams`` (seed, budget, and the JSON schema as
structured-output / guided-decoding parameters: ``StructuredOutputsParams`` in current vLLM,
``GuidedDecodingParams`` in older releases).
"""
from __future__ import annotations

import time

from workers.ml.llm.base import EngineStats, GenRequest, GenResult


def _structured(schema: dict) -> dict:
    """The SamplingParams keyword that carries a JSON schema, for the installed vLLM."""
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(json=schema)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}


class VllmEngine:
    name = "vllm"

    def __init__(self, model: str, *, max_num_seqs: int = 64, dtype: str = "auto"):
        import vllm

        self._vllm = vllm
        self.llm = vllm.LLM(model=model, max_num_seqs=max_num_seqs, dtype=dtype, enable_prefix_caching=True)
        self.model_version = f"{model}+vllm-{vllm.__version__}"
        self.stats = EngineStats()

    def params(self, req: GenRequest):
        kw = _structured(req.schema) if req.schema is not None else {}
        return self._vllm.SamplingParams(max_tokens=req.max_tokens, seed=req.seed, temperature=req.temperature,
                                         top_p=req.top_p, top_k=req.top_k, repetition_penalty=req.repeat_penalty, **kw)

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        t0 = time.perf_counter()
        outs = self.llm.chat([r.messages for r in requests], [self.params(r) for r in requests], use_tqdm=False)
        results = []
        for req, o in zip(requests, outs):
            c = o.outputs[0]
            results.append(GenResult.parsed(c.text, "length" if c.finish_reason == "length" else "stop", req.schema,
                                            prompt_tokens=len(o.prompt_token_ids or []),
                                            completion_tokens=len(c.token_ids)))
        self.stats.add(results, time.perf_counter() - t0)
        return results
