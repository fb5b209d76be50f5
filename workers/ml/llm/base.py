"""The language-engine interface: requests in, structured results out, batched by the engine.

An engine (``llamacpp``, ``vllm`` or ``http``, picked by ``registry.get_engine``) takes a list of
``GenRequest`` (chat messages, an optional JSON schema the output must match, a token budget and a
seed) and returns one ``GenResult`` per request, in order. Where a request has a schema the engine
constrains generation to it (a grammar on llama.cpp, guided decoding on vLLM, ``response_format`` on
an OpenAI-compatible server), so ``data`` is the parsed JSON object whenever ``finish_reason`` is
``"stop"``; the caller still validates it (``jsonschema``) because a budget can run out mid-object.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class GenRequest:
    messages: list[dict]  # [{"role": "system"|"user"|"assistant", "content": str}]
    schema: dict | None = None  # JSON schema the reply must match (constrained decoding)
    max_tokens: int = 256
    seed: int = 0
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    repeat_penalty: float = 1.1


@dataclass
class GenResult:
    text: str
    finish_reason: str  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    data: Any = field(default=None)  # the parsed JSON when the request had a schema and it parsed

    @classmethod
    def parsed(cls, text: str, finish_reason: str, schema: dict | None, **kw) -> "GenResult":
        out = cls(text=text, finish_reason=finish_reason, **kw)
        if schema is not None:
            try:
                out.data = json.loads(text)
            except ValueError:
                out.data = None
        return out


@dataclass
class EngineStats:
    calls: int = 0
    sequences: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, results: list[GenResult], seconds: float) -> None:
        self.calls += 1
        self.sequences += len(results)
        self.prompt_tokens += sum(r.prompt_tokens for r in results)
        self.completion_tokens += sum(r.completion_tokens for r in results)
        self.seconds += seconds

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Engine(Protocol):
    name: str  # "llamacpp" | "vllm" | "http"
    model_version: str
    stats: EngineStats

    def generate(self, requests: list[GenRequest]) -> list[GenResult]: ...
