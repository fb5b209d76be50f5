"""The on-topic check's encoder: MiniLM served by llama.cpp from the GGUF that `make install` makes
(scripts/build_topic_gguf.py), so the lessons worker never loads torch. It must give the torch encoder's
embeddings (the fitted threshold is shared), the same check verdicts on the labelled plans, and the
lessons worker must come up without torch or transformers."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from workers.ml.evaluation import lesson_checks
from workers.ml.lessons import checks as chk
from workers.ml.lessons import topic_encoder
from workers.ml.lessons.schema import normalize_request


@pytest.fixture(scope="module")
def both():
    assert topic_encoder.DEFAULT_GGUF.exists(), "make install makes the GGUF (scripts/build_topic_gguf.py)"
    from workers.ml.encoder import Encoder

    return topic_encoder.GgufEncoder(topic_encoder.DEFAULT_GGUF), Encoder(max_length=topic_encoder.MAX_TOKENS)


def _texts() -> list[str]:
    out = []
    for p in lesson_checks.load():
        out.append(f"{p['request']['topic']} ({p['request']['subject']})")
        out += [" ".join(s["activities"]) for s in p["lesson"].get("sections") or [] if s.get("activities")]
    return out


def test_the_gguf_encoder_gives_the_torch_encoders_embeddings(both):
    gguf, torch_enc = both
    texts = _texts()
    a, b = gguf.embed(texts), torch_enc.embed(texts)
    assert a.shape == b.shape == (len(texts), 384)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() >= 0.9995, f"min cosine {cos.min():.5f}"
    assert gguf.embed([]).shape == (0, 384)


def test_the_on_topic_verdicts_are_the_same_on_the_labelled_plans(both):
    gguf, torch_enc = both
    for p in lesson_checks.load():
        req = normalize_request(p["request"])
        x = chk.section_similarities(p["lesson"], req, gguf)
        y = chk.section_similarities(p["lesson"], req, torch_enc)
        assert [n for n, _ in x] == [n for n, _ in y]
        assert max((abs(s - t) for (_, s), (_, t) in zip(x, y)), default=0.0) < 0.005, p["id"]
        assert chk.check_on_topic(p["lesson"], req, gguf)["ok"] == chk.check_on_topic(p["lesson"], req, torch_enc)["ok"]


@pytest.fixture()
def env(monkeypatch):
    from app.settings import reset_settings

    def set_(name: str, value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
        reset_settings()

    yield set_
    monkeypatch.undo()
    reset_settings()


def test_load_encoder_prefers_the_gguf_and_falls_back_to_torch(env, tmp_path, caplog):
    assert isinstance(topic_encoder.load_encoder(), topic_encoder.GgufEncoder)
    env("EDUQ_TOPIC_ENCODER_GGUF", str(tmp_path / "missing.gguf"))
    enc = topic_encoder.load_encoder()
    assert not isinstance(enc, topic_encoder.GgufEncoder) and "missing.gguf" in caplog.text
    env("EDUQ_TOPIC_ENCODER_GGUF", None)
    env("EDUQ_TOPIC_ENCODER", "torch")
    assert not isinstance(topic_encoder.load_encoder(), topic_encoder.GgufEncoder)


def test_a_broken_file_is_refused(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF not really")
    with pytest.raises(ValueError, match="Failed to load model"):
        topic_encoder.check_gguf(bad)


def test_the_lessons_worker_comes_up_without_torch():
    code = ("import json, sys\n"
            "from workers.runtime import models\n"
            "eng = models.lessons()\n"  # loads, warms up (a plan through the engine, the checks, the encoder)
            "print(json.dumps({'torch': 'torch' in sys.modules, 'transformers': 'transformers' in sys.modules,"
            " 'encoder': type(eng.encoder).__name__}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"torch": False, "transformers": False, "encoder": "GgufEncoder"}, got
