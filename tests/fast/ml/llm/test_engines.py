"""The language engines: llama.cpp for real (the shipped GGUF), the engine choice, the vLLM adapter (a
stand-in vllm module: no GPU here), and the HTTP client's retries and response-format fallback against
a local stub (the real OpenAI-compatible server: tests/e2e/test_llm_server.py)."""
from __future__ import annotations

import json
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest

from workers.ml.lessons import slots
from workers.ml.lessons.schema import normalize_request
from workers.ml.llm import registry
from workers.ml.llm.base import GenRequest

REQ = normalize_request({"topic": "Volcanoes", "subject": "Geography", "grade_level": "7", "duration_minutes": 45})


@pytest.fixture(scope="module")
def llama():
    from workers.ml.llm.llamacpp import LlamaCppEngine

    return LlamaCppEngine(registry.default_gguf(), n_parallel=4, n_ctx=4096)


def test_llamacpp_output_matches_the_schema_in_a_batch(llama):
    reqs = [slots.request_for({**REQ, "topic": t}, seed=i) for i, t in
            enumerate(["Volcanoes", "Rivers", "Deserts", "Earthquakes", "Glaciers", "Coral reefs"])]
    out = llama.generate(reqs)  # six requests through four slots: slots are refilled
    assert len(out) == 6
    for r, o in zip(reqs, out):
        assert o.finish_reason == "stop", o.text
        jsonschema.validate(o.data, r.schema)
        assert list(o.data)[:2] == ["title", "guiding_question"]  # the schema's order, not sorted
        assert o.completion_tokens > 10 and o.prompt_tokens > 50
    assert llama.prefix_tokens_reused >= 0 and llama.timing["decode_calls"] > 0


def test_llamacpp_follow_up_schema(llama):
    """Any schema: the follow-ups' own (workers/ml/followups/checks.py) constrains a reply the same way."""
    from workers.ml.followups.checks import SCHEMA as FOLLOW_UP_SCHEMA

    req = GenRequest(messages=[{"role": "user", "content": "Give feedback on a student's essay about volcanoes."}],
                     schema=FOLLOW_UP_SCHEMA, max_tokens=400, seed=3)
    o = llama.generate([req])[0]
    if o.finish_reason == "stop":
        jsonschema.validate(o.data, FOLLOW_UP_SCHEMA)
    else:  # the budget ran out mid-object: the text is still a prefix the grammar allowed
        assert o.finish_reason == "length" and o.text.startswith("{")


def test_llamacpp_greedy_is_reproducible_and_budget_is_kept(llama):
    req = GenRequest(messages=[{"role": "user", "content": "Name three rivers."}], max_tokens=12, temperature=0)
    a, b = llama.generate([req])[0], llama.generate([req, req])[1]
    assert a.text == b.text and a.completion_tokens <= 13
    long = GenRequest(messages=[{"role": "user", "content": "word " * 5000}], max_tokens=10)
    bad = llama.generate([long, req])
    assert bad[0].finish_reason == "error" and "too long" in bad[0].error and bad[1].text == a.text


# ------------------------------------------------------------------ the choice
def _cfg(**kw):
    base = dict(llm_engine="auto", llm_url=None, lesson_model=None)
    base.update(kw)
    return types.SimpleNamespace(**base)


def test_engine_choice(monkeypatch):
    monkeypatch.setattr(registry, "_cuda", lambda: False)
    assert registry.choose(_cfg())[0] == "llamacpp"
    assert registry.choose(_cfg(llm_url="http://127.0.0.1:8080/v1"))[0] == "http"
    assert registry.choose(_cfg(llm_engine="vllm"))[0] == "vllm"
    monkeypatch.setattr(registry, "_cuda", lambda: True)
    monkeypatch.setattr(registry.importlib.util, "find_spec",
                        lambda name: object() if name == "vllm" else None)
    assert registry.choose(_cfg(lesson_model="/models/llama-3-8b"))[0] == "vllm"
    name, why = registry.choose(_cfg())  # a GPU and vLLM, but the model is the default GGUF
    assert name == "llamacpp" and "EDUQ_LESSON_MODEL" in why
    with pytest.raises(ValueError, match="EDUQ_LLM_ENGINE"):
        registry.choose(_cfg(llm_engine="tgi"))


def test_vllm_adapter_passes_the_schema_as_structured_output(monkeypatch):
    seen = {}

    class SamplingParams:
        def __init__(self, **kw):
            seen.setdefault("params", []).append(kw)

    class StructuredOutputsParams:
        def __init__(self, json):
            self.json = json

    class LLM:
        def __init__(self, **kw):
            seen["llm"] = kw

        def chat(self, messages, params, use_tqdm=False):
            seen["chat"] = (messages, params)
            out = types.SimpleNamespace(text='{"title": "Volcanoes"}', finish_reason="stop", token_ids=[1, 2, 3])
            return [types.SimpleNamespace(outputs=[out], prompt_token_ids=[1] * 7) for _ in messages]

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams, vllm.__version__ = LLM, SamplingParams, "0.0-test"
    sp = types.ModuleType("vllm.sampling_params")
    sp.StructuredOutputsParams = StructuredOutputsParams
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    from workers.ml.llm.vllm_engine import VllmEngine

    eng = VllmEngine("/models/m")
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    out = eng.generate([GenRequest(messages=[{"role": "user", "content": "hi"}], schema=schema, seed=5)] * 2)
    assert seen["llm"]["enable_prefix_caching"] is True
    assert all(p["structured_outputs"].json == schema and p["seed"] == 5 for p in seen["params"])
    assert [o.data for o in out] == [{"title": "Volcanoes"}] * 2 and out[0].completion_tokens == 3


# ------------------------------------------------------------------ the HTTP client
class _Stub(BaseHTTPRequestHandler):
    script: list = []
    bodies: list = []

    def log_message(self, *a):
        pass

    def _send(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(200, {"data": [{"id": "stub-model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.bodies.append(body)
        code = _Stub.script.pop(0) if _Stub.script else 200
        if code == 422 and body.get("response_format", {}).get("type") == "json_schema":
            return self._send(422, {"detail": "response_format: json_schema is not one of text, json_object"})
        if code not in (200, 422):
            return self._send(code, {"error": "busy"})
        self._send(200, {"choices": [{"message": {"content": '{"title": "Rivers"}'}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": 9, "completion_tokens": 4}})


@pytest.fixture()
def stub():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Stub.script, _Stub.bodies = [], []
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}


def test_http_retries_busy_server_then_parses(stub):
    from workers.ml.llm.openai_http import HttpEngine

    eng = HttpEngine(stub, retries=3, timeout_s=5)
    assert eng.model == "stub-model"
    _Stub.script = [503, 503]
    out = eng.generate([GenRequest(messages=[{"role": "user", "content": "x"}], schema=SCHEMA, seed=2)])
    assert out[0].data == {"title": "Rivers"} and out[0].completion_tokens == 4
    assert len(_Stub.bodies) == 3  # two refusals retried
    assert _Stub.bodies[-1]["response_format"]["type"] == "json_schema"
    assert _Stub.bodies[-1]["response_format"]["json_schema"]["schema"] == SCHEMA


def test_http_falls_back_to_json_object_schema(stub):
    from workers.ml.llm.openai_http import HttpEngine

    eng = HttpEngine(stub, retries=0, timeout_s=5)
    _Stub.script = [422]
    out = eng.generate([GenRequest(messages=[{"role": "user", "content": "x"}], schema=SCHEMA)])
    assert out[0].data == {"title": "Rivers"}
    assert [b["response_format"]["type"] for b in _Stub.bodies] == ["json_schema", "json_object"]
    assert _Stub.bodies[1]["response_format"]["schema"] == SCHEMA
    eng.generate([GenRequest(messages=[{"role": "user", "content": "y"}], schema=SCHEMA)])
    assert _Stub.bodies[-1]["response_format"]["type"] == "json_object"  # remembered


def test_http_unreachable_server_is_an_error_result_not_an_exception(stub):
    from workers.ml.llm.openai_http import HttpEngine

    eng = HttpEngine(stub, model="m", retries=1, timeout_s=2)
    eng.base_url = "http://127.0.0.1:9/v1"  # nothing listens there
    out = eng.generate([GenRequest(messages=[{"role": "user", "content": "x"}], schema=SCHEMA)])
    assert out[0].finish_reason == "error" and out[0].error
