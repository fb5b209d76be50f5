"""The shipped per-prompt ASAP graders (workers/ml/grading/asap.py) with the real encoder and artifacts (no mocks).

Reads ../shared/data/asap at run time (the agreement and smoke-training checks); no essay is stored here."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.graders import grade_asap, service_for
from tests.paths import ASAP_DATA
from workers.ml import stats
from workers.ml.grading import asap as A
from workers.ml.grading.interface import RESULT_KEYS
from workers.ml.grading.review import withheld_by
from workers.ml.stats import qwk

DATA = ASAP_DATA
ESSAY = ("Computers help people in many ways. First, they let students find information quickly for school "
         "projects. Second, families can talk to relatives who live far away.\n\nHowever, some people spend too "
         "much time in front of a screen and do not exercise. In conclusion, computers are useful when people "
         "use them wisely and still go outside.")
needs_data = pytest.mark.skipif(not (DATA / "train.jsonl").exists(), reason="needs ../shared/data/asap")


@pytest.fixture(scope="module")
def grader():
    g = A.AsapGrader.load()
    service_for(g).warmup("asap-1", g.rubric("1"))
    return g


def test_shipped_artifacts_are_listed_with_checksums_and_small():
    manifest = json.loads((A.ARTIFACTS / "manifest.json").read_text())
    meta = json.loads((A.ARTIFACTS / "meta.json").read_text())
    assert meta["prompts"] == [str(p) for p in range(1, 9)]
    assert set(manifest["files"]) == {"meta.json", *meta["model_files"].values()}
    for name, digest in manifest["files"].items():
        assert A.sha256_file(A.ARTIFACTS / name) == digest
    assert sum(f.stat().st_size for f in A.ARTIFACTS.iterdir()) < 20e6


def test_rubrics_and_results_for_every_prompt(grader):
    assert grader.prompts() == [str(p) for p in range(1, 9)]
    pids = grader.prompts()
    out = grade_asap(grader, [ESSAY] * len(pids), pids, always_score=True)
    plain = grade_asap(grader, [ESSAY] * len(pids), pids)
    assert len(out) == len(pids)
    for a, b in zip(out, plain):  # one essay on every prompt: off-topic on most, so withheld there
        assert (b["score"] is None) == (withheld_by(b["review_reasons"]) is not None), b
        assert b["score"] in (None, a["score"]) and set(b["review_reasons"]) <= set(a["review_reasons"]) | {
            r for r in b["review_reasons"] if r.startswith("low confidence")}
    for p, res in zip(pids, out):
        rb = grader.rubric(p)
        assert rb["name"] == f"ASAP prompt {p}" and rb["scale"]["step"] == 1 and rb["traits"]
        assert set(res) == set(RESULT_KEYS)
        sc = rb["scale"]
        assert res["score"] == int(res["score"]) and sc["min"] <= res["score"] <= sc["max"]
        assert set(res["traits"]) == {t["name"] for t in rb["traits"]}
        for t in rb["traits"]:
            v = res["traits"][t["name"]]
            assert v == int(v) and t["scale"]["min"] <= v <= t["scale"]["max"]
        assert 0.0 <= res["confidence"] <= 1.0
        assert isinstance(res["needs_review"], bool) and res["needs_review"] == bool(res["review_reasons"])
        assert res["feedback"] and all(set(f) == {"trait", "comment", "evidence"} for f in res["feedback"])
        assert res["model_version"].startswith("asap-stack-v3+") and len(res["model_version"]) > 20
    with pytest.raises(KeyError):
        grade_asap(grader, [ESSAY], ["9"])


def test_empty_essay_gets_no_score_zero_confidence_and_review(grader):
    res = grade_asap(grader, ["", ESSAY], ["8", "8"])
    assert res[0]["score"] is None and res[0]["confidence"] == 0.0
    assert set(res[0]["traits"].values()) == {None} and res[0]["needs_review"]
    assert (res[1]["score"] is None) == (withheld_by(res[1]["review_reasons"]) is not None)


def test_low_confidence_threshold_keeps_the_flag_budget():
    meta = json.loads((A.ARTIFACTS / "meta.json").read_text())
    assert set(meta["low_confidence"]) == set(meta["prompts"])  # one cut per prompt
    assert all(0.0 < v < 1.0 for v in meta["low_confidence"].values())
    assert meta["cv_summary"]["oof_low_confidence_share"] <= 0.02


def test_thresholds_and_tolerance():
    assert A.tolerance(2, 12) == 0 and A.tolerance(0, 3) == 0
    assert A.tolerance(0, 30) == 3 and A.tolerance(0, 60) == 6
    t = np.array([0.5, 1.7, 2.2])
    assert A.apply_thresholds(np.array([-3.0, 0.6, 1.69, 1.71, 9.0]), t, 0, 3).tolist() == [0, 1, 1, 2, 3]
    assert A.apply_thresholds(np.array([-3.0, 1.4, 9.0]), None, 0, 3).tolist() == [0, 1, 3]
    assert stats.ece([0.9, 0.9, 0.1, 0.1], [1, 1, 0, 0]) == pytest.approx(0.1)


def test_stretch_gives_predictions_the_human_spread():
    from workers.ml.training.asap_stack import fit_stretch

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 500).astype(float)
    pred = 1.5 + 0.25 * (y - y.mean()) + rng.normal(0, 0.1, 500)  # shrunk towards the middle, as ridge does
    st = fit_stretch(pred, y)
    out = A.stretch({"stretch": st}, pred, 0, 3)
    inside = (out > -0.49) & (out < 3.49)
    assert out.min() >= -0.49 and out.max() <= 3.49 and inside.mean() > 0.9
    assert np.mean(out) == pytest.approx(y.mean(), abs=0.05) and np.std(out) == pytest.approx(y.std(), rel=0.05)
    # plain rounding of the shrunk prediction never gives the extremes; the stretched one does
    assert set(A.apply_thresholds(pred, None, 0, 3)) < {0, 1, 2, 3} == set(A.apply_thresholds(out, None, 0, 3))
    # heads from before asap-stack-v3 have no stretch: only the clip
    assert A.stretch({}, np.array([-2.0, 1.2, 7.0]), 0, 3).tolist() == [-0.49, 1.2, 3.49]


def test_holistic_score_is_the_mean_of_the_bag(grader):
    """asap-stack-v3: each shipped prompt model carries 2 extra stage-1 + stage-2 members; the holistic
    prediction is the mean of the three members' stretched predictions, and the members do differ."""
    texts = [ESSAY, ESSAY.replace("\n\n", " ") + " It is also fun to play games with friends after school."]
    emb = grader.embedder.embed(texts) * grader.emb_scale
    for p in ("1", "5"):
        m = grader.models[p]
        assert len(m["bag"]) == 2 and all("stretch" in mem["holistic"] for mem in [m, *m["bag"]])
        full = A.predict_prompt(m, texts, emb)
        singles = [A.predict_prompt({**m, **mem, "bag": []}, texts, emb)["pred"] for mem in [m, *m["bag"]]]
        assert np.allclose(full["pred"], np.mean(singles, axis=0))
        assert np.ptp(np.array(singles), axis=0).max() > 1e-6  # three different fits, not one copied


@needs_data
def test_agreement_with_humans_on_dev_essays(grader):
    """First 150 dev essays of prompts 4 and 6 (short essays: quick to embed; cached after the first run)."""
    from workers.ml.embedding_cache import cached_embed

    rows = [json.loads(line) for line in open(DATA / "dev.jsonl") if line.strip()]
    for p in ("4", "6"):
        sel = [r for r in rows if str(r["prompt"]) == p][:150]
        texts = [r["essay"] for r in sel]
        emb = cached_embed(grader.embedder, texts, "dev", verbose=False)
        res = grade_asap(grader, texts, [p] * len(sel), emb, always_score=True)
        lo, hi = grader.meta["ranges"][p]
        k = qwk([r["score"] for r in sel], [x["score"] for x in res], lo, hi)
        assert k > 0.6, f"prompt {p}: QWK {k:.3f}"
        tk = [qwk([r["traits"][t] for r in sel], [x["traits"][t] for x in res]) for t in grader.meta["trait_ranges"][p]]
        assert np.mean(tk) > 0.45, f"prompt {p}: trait QWKs {tk}"


@needs_data
def test_smoke_training_writes_loadable_artifacts_and_tampering_is_refused(grader, tmp_path):
    from threadpoolctl import threadpool_limits

    from workers.ml.training.asap_stack import train

    out = tmp_path / "asap"
    with threadpool_limits(limits=1, user_api="openmp"):
        meta = train(str(DATA / "train.jsonl"), str(out), prompts=["1"], limit=60, folds=3,
                     encoder=grader.encoder, log=lambda *_: None)
    assert meta["prompts"] == ["1"] and (out / "manifest.json").exists()
    g = A.AsapGrader.load(encoder=grader.encoder, artifacts_dir=out)
    res = grade_asap(g, [ESSAY], ["1"])[0]
    assert 2 <= res["score"] <= 12 and res["score"] == int(res["score"])
    # any changed byte of a model file: refused before unpickling
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    f = bad / "prompt1.joblib"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(A.ChecksumError):
        A.AsapGrader.load(encoder=grader.encoder, artifacts_dir=bad)
    # a file dropped from the manifest's view (meta names a file the manifest does not list): refused too
    man = json.loads((out / "manifest.json").read_text())
    man["files"].pop("prompt1.joblib")
    (out / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(A.ChecksumError):
        A.AsapGrader.load(encoder=grader.encoder, artifacts_dir=out)
