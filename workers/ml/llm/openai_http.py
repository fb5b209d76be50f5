"""Any OpenAI-compatible chat-completions server as the engine (``EDUQ_LLM_URL``): a vLLM or llama.cpp
server, or a service an operator already runs.

Requests go out concurrently (the server batches them: continuous batching is its job), each with the
schema as ``response_format`` so the server constrains decoding: OpenAI's ``{"type": "json_schema"}``
first; a server that refuses it (llama-cpp-python's server knows only ``{"type": "json_object",
"schema": ...}``, and answers the other with a 500 naming it) gets that form, remembered for the rest of the
process. Timeouts per request
(``EDUQ_LLM_TIMEOUT_S``) and retries with backoff on connection errors, 429, 502, 503 and 504 (urllib3's
``Retry``, ``EDUQ_LLM_RETRIES``); a request that still fails comes back as a ``GenResult`` with
``finish_reason == "error"``, never as an exception that would sink its neighbours.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

from workers.ml.llm.base import EngineStats, GenRequest, GenResult

log = logging.getLogger(__name__)


class HttpEngine:
    name = "http"

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str | None = None,
                 timeout_s: float = 120.0, retries: int = 3, concurrency: int = 8):
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.concurrency = max(1, concurrency)
        self.session = requests.Session()
        retry = Retry(total=retries, connect=retries, read=retries, backoff_factor=0.5,
                      status_forcelist=(429, 502, 503, 504), allowed_methods=frozenset({"GET", "POST"}),
                      raise_on_status=False)
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=self.concurrency)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.model = model or self._first_model()
        self.model_version = f"{self.model}@{self.base_url}"
        self.stats = EngineStats()
        self._format = "json_schema"  # until the server refuses it

    def _first_model(self) -> str:
        r = self.session.get(f"{self.base_url}/models", timeout=self.timeout_s)
        r.raise_for_status()
        data = r.json().get("data") or []
        if not data:
            raise RuntimeError(f"{self.base_url}/models lists no model; set EDUQ_LLM_MODEL_NAME")
        return data[0]["id"]

    def _response_format(self, schema: dict) -> dict:
        if self._format == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema, "strict": True}}
        return {"type": "json_object", "schema": schema}

    def _one(self, req: GenRequest) -> GenResult:
        body = {"model": self.model, "messages": req.messages, "max_tokens": req.max_tokens, "seed": req.seed,
                "temperature": req.temperature, "top_p": req.top_p}
        for _ in range(2):
            if req.schema is not None:
                body["response_format"] = self._response_format(req.schema)
            try:
                r = self.session.post(f"{self.base_url}/chat/completions", json=body, timeout=self.timeout_s)
            except Exception as exc:  # connection refused or timed out after the retries
                return GenResult(text="", finish_reason="error", error=f"{type(exc).__name__}: {exc}"[:300])
            # llama-cpp-python's server answers an unknown response_format with a 500 holding its validation error
            sent = (body.get("response_format") or {}).get("type")
            if r.status_code >= 400 and sent == "json_schema" and "response_format" in r.text and "json_schema" in r.text:
                log.info("%s refuses response_format json_schema; using json_object with a schema", self.base_url)
                self._format = "json_object"
                continue
            break
        if r.status_code != 200:
            return GenResult(text="", finish_reason="error", error=f"HTTP {r.status_code}: {r.text[:200]}")
        data = r.json()
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        reason = "length" if choice.get("finish_reason") == "length" else "stop"
        return GenResult.parsed(choice["message"].get("content") or "", reason, req.schema,
                                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                                completion_tokens=int(usage.get("completion_tokens") or 0))

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(requests)))) as pool:
            out = list(pool.map(self._one, requests))
        self.stats.add(out, time.perf_counter() - t0)
        return out
