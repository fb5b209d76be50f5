"""The OpenAI-compatible engine against a real local server: llama.cpp's server (llama-cpp-python's
``llama_cpp.server``, serving the shipped GGUF), started by the test on loopback."""
from __future__ import annotations

import time

import jsonschema
import pytest
import requests

from tests.conftest import BIN, Proc, free_port, proc_env

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def llm_server(log_dir):
    from workers.ml.llm.registry import default_gguf

    port = free_port()
    proc = Proc("llama-server", [str(BIN / "python"), "-m", "llama_cpp.server", "--model", default_gguf(),
                                 "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"],
                proc_env(), log_dir).start()
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(base + "/models", timeout=2).status_code == 200:
                break
        except requests.ConnectionError as exc:
            if proc.p.poll() is not None:
                raise RuntimeError(proc.output()[-3000:]) from exc
        time.sleep(0.5)
    else:
        raise TimeoutError(proc.output()[-3000:])
    yield base
    proc.stop()


@pytest.mark.timeout(300)
def test_http_engine_gets_schema_valid_slots_from_a_real_server(llm_server, monkeypatch):
    from app.settings import reset_settings
    from workers.ml.lessons import slots
    from workers.ml.lessons.schema import normalize_request
    from workers.ml.llm import registry

    monkeypatch.setenv("EDUQ_LLM_URL", llm_server)
    reset_settings()
    try:
        assert registry.choose()[0] == "http"
        eng = registry.get_engine()
    finally:
        monkeypatch.delenv("EDUQ_LLM_URL")
        reset_settings()
    assert eng.name == "http" and eng.model  # the server's own model id, read from /v1/models
    reqs = [slots.request_for(normalize_request({"topic": t, "subject": "Science", "grade_level": "5",
                                                 "duration_minutes": 45}), seed=i)
            for i, t in enumerate(["Magnets", "The phases of the moon"])]
    out = eng.generate(reqs)
    for r, o in zip(reqs, out):
        assert o.finish_reason == "stop", (o.error, o.text)
        jsonschema.validate(o.data, r.schema)
        assert o.completion_tokens > 0


@pytest.mark.timeout(300)
def test_lesson_engine_over_http_returns_checked_plans(llm_server):
    from workers.ml.lessons import LessonEngine
    from workers.ml.llm.openai_http import HttpEngine

    eng = LessonEngine(HttpEngine(llm_server, timeout_s=120, retries=1))
    res = eng.generate([{"topic": "Magnets", "subject": "Science", "grade_level": "3", "duration_minutes": 40,
                         "notes": "One student has dyslexia."}], seed=1)[0]
    lesson = res["lesson"]
    assert res["checks"]["engine"] == "http" and sum(s["minutes"] for s in lesson["sections"]) == 40
    assert res["needs_review"] == (not res["checks"]["passed"])
    assert any("dyslexia" in d for d in lesson["differentiation"])
