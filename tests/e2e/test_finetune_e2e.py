"""Fine-tuning over HTTP with real workers: gunicorn API, a training worker and a grading worker,
Postgres and Redis. ASAP essays are read from ../shared/data/asap/ at test time, never copied."""
from __future__ import annotations

import csv
import io
import json
import random
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import make_teacher
from tests.e2e.test_grading_e2e import all_results, wait_finished

pytestmark = pytest.mark.e2e
ASAP = Path(__file__).resolve().parents[3] / "shared" / "data" / "asap"
if not ASAP.exists():
    ASAP = Path("/work/shared/data/asap")
PROMPT = 1


def asap_rubric(p: int) -> dict:
    r = json.loads((ASAP / "rubrics.json").read_text())["prompts"][str(p)]
    return {"name": f"ASAP prompt {p} (e2e)", "prompt": r["task"],
            "scale": {"min": r["score"][0], "max": r["score"][1], "step": 1},
            "traits": [{"name": k, "scale": {"min": v[0], "max": v[1], "step": 1}} for k, v in r["traits"].items()]}


def essays(split: str, p: int, n: int) -> list[dict]:
    out = []
    with open(ASAP / f"{split}.jsonl") as f:
        for line in f:
            e = json.loads(line)
            if e["prompt"] == p:
                out.append(e)
                if len(out) == n:
                    break
    return out


def to_csv(rows: list[dict], traits: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["text", "score", *traits, "gender"])
    for i, e in enumerate(rows):
        w.writerow([e["essay"], e["score"], *[e["traits"].get(t, "") for t in traits], "f" if i % 2 else "m"])
    return buf.getvalue().encode()


def submit(base, headers, rows, rubric, name, **form):
    fields = {"rubric": json.dumps(rubric), "name": name, **{k: str(v) for k, v in form.items()}}
    return requests.post(base + "/api/v1/fine-tune-jobs", headers=headers, data=fields, timeout=60,
                         files={"file": ("train.csv", to_csv(rows, [t["name"] for t in rubric["traits"]]), "text/csv")})


@pytest.fixture()
def auth(pg_url):
    _, token = make_teacher()
    return {"Authorization": f"Bearer {token}"}


def test_fine_tune_activate_grade_gate_cancel_tenancy(live_api, training_worker, grading_worker, auth):
    rubric = asap_rubric(PROMPT)
    train = essays("train", PROMPT, 300)
    # a bad CSV: named by line, nothing queued
    bad = [dict(e) for e in train[:40]]
    bad[6] = dict(bad[6], score=99)
    r = submit(live_api, auth, bad, rubric, "bad")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["line"] == 8, r.text
    assert requests.get(live_api + "/api/v1/jobs?kind=fine_tune", headers=auth, timeout=10).json()["jobs"] == []

    t0 = time.time()
    r = submit(live_api, auth, train, rubric, "ASAP 1")  # no method: auto, which is stack on a CPU worker
    assert r.status_code == 202, r.text
    job = r.json()["job"]
    stages = set()
    deadline = t0 + 900  # a hang guard, not a speed check: the job's status below is what is tested
    while job["status"] in ("queued", "running") and time.time() < deadline:
        job = requests.get(live_api + job["links"]["self"] + "?wait=5", headers=auth, timeout=30).json()["job"]
        if job.get("stage"):
            stages.add(job["stage"])
    assert job["status"] == "succeeded", job
    assert {"embedding", "training"} <= stages or "done" in stages, stages
    res = requests.get(live_api + job["links"]["results"], headers=auth, timeout=10).json()["results"]
    model = res[0]["model"]
    m = model["metrics"]
    assert model["method"] == "stack" and m["auto"]["chosen"] == "stack", (model["method"], m.get("auto"))
    assert m["n_train"] + m["n_validation"] == 300 and m["qwk"] > 0.6, m
    assert {"exact_agreement", "adjacent_agreement", "smd", "subgroups", "ece", "cv"} <= set(m)
    # every trait is a target of its own: QWK, SMD and confidence calibration on the validation split
    names = {t["name"] for t in rubric["traits"]}
    assert set(m["traits"]) == names and all({"qwk", "smd", "ece"} <= set(v) for v in m["traits"].values()), m
    assert m["mean_trait_qwk"] > 0.4 and set(m["cv"]["traits"]) == names, m
    assert requests.get(live_api + f"/api/v1/models/{model['id']}", headers=auth, timeout=10).json()["model"]["id"] == model["id"]

    # activation: through the gate (or refused, then forced, where this sample falls short)
    r = requests.post(live_api + f"/api/v1/models/{model['id']}/activate", json={}, headers=auth, timeout=10)
    if r.status_code == 409:
        r = requests.post(live_api + f"/api/v1/models/{model['id']}/activate", json={"force": True}, headers=auth, timeout=10)
    assert r.status_code == 200 and r.json()["model"]["status"] == "active"

    # grading with it, the rubric left out; every score names the version; flags and feedback as for
    # every grader (a six-word essay is not scored, and says why)
    dev = essays("dev", PROMPT, 12)
    sent = [{"id": str(e["essay_id"]), "text": e["essay"]} for e in dev] + [{"id": "short", "text": "Computers are good for us."}]
    r = requests.post(live_api + "/api/v1/grading-jobs", headers=auth, timeout=30,
                      json={"model": model["id"], "essays": sent})
    assert r.status_code == 202, r.text
    gj = wait_finished(live_api, r.json()["job"], auth, timeout=120)
    assert gj["status"] == "succeeded", gj
    results = all_results(live_api, gj, auth)
    assert len(results) == 13 and all(x["model_version"] == model["id"] for x in results)
    short = next(x for x in results if x["essay_id"] == "short")
    assert short["score"] is None and short["review_reasons"][0].startswith("too short"), short
    scored = [x for x in results if x["essay_id"] != "short"]
    assert all(2 <= x["score"] <= 12 and set(x["traits"]) == names for x in scored)
    assert all(v in range(1, 7) for x in scored for v in x["traits"].values())
    assert all(x["feedback"] and {"trait", "comment", "evidence"} <= set(x["feedback"][0]) for x in scored)
    human = {str(e["essay_id"]): e["score"] for e in dev}
    pairs = [(x["score"], human[x["essay_id"]]) for x in scored]
    assert sum(abs(a - b) <= 1 for a, b in pairs) >= 8, pairs
    # the default model with this rubric now uses the activated version
    r = requests.post(live_api + "/api/v1/grading-jobs", headers=auth, timeout=30,
                      json={"rubric": rubric, "essays": [{"id": "x", "text": dev[0]["essay"]}]})
    assert r.json()["job"]["model"] == model["id"]

    # tenancy
    _, other = make_teacher(school="Other School")
    oh = {"Authorization": f"Bearer {other}"}
    assert requests.get(live_api + f"/api/v1/models/{model['id']}", headers=oh, timeout=10).status_code == 404
    assert requests.get(live_api + job["links"]["self"], headers=oh, timeout=10).status_code == 404
    assert requests.post(live_api + "/api/v1/grading-jobs", headers=oh, timeout=10,
                         json={"model": model["id"], "essays": [{"id": "x", "text": "t"}]}).status_code == 422

    # a weak model (30 essays, shuffled scores) is refused by the gate
    weak = [dict(e) for e in essays("train", PROMPT, 330)[300:]]
    scores = [e["score"] for e in weak]
    random.Random(1).shuffle(scores)
    for e, s in zip(weak, scores):
        e["score"] = s
    r = submit(live_api, auth, weak, rubric, "weak", method="head")
    wj = wait_finished(live_api, r.json()["job"], auth, timeout=120)
    assert wj["status"] == "succeeded", wj
    weak_model = requests.get(live_api + wj["links"]["results"], headers=auth, timeout=10).json()["results"][0]["model"]
    r = requests.post(live_api + f"/api/v1/models/{weak_model['id']}/activate", json={}, headers=auth, timeout=10)
    assert r.status_code == 409 and r.json()["error"]["code"] == "below_gate"

    # cancel in the middle of training
    # (full fine-tuning of the encoder: seconds per step on a CPU, so the job is surely mid-training)
    r = submit(live_api, auth, essays("train", PROMPT, 40), rubric, "long", method="full",
               hyperparameters=json.dumps({"epochs": 50, "patience": 50, "batch_size": 8}))
    assert r.status_code == 202, r.text
    cj = r.json()["job"]
    deadline = time.time() + 240

    def started(job):
        d = job["progress"].get("detail") or {}
        return job.get("stage") == "training" and (d.get("epoch") or 0) + (d.get("step") or 0) >= 1

    while not started(cj):
        cj = requests.get(live_api + cj["links"]["self"] + "?wait=2", headers=auth, timeout=30).json()["job"]
        assert time.time() < deadline and cj["status"] in ("queued", "running"), cj
    assert "loss" in cj["progress"]["detail"]
    r = requests.delete(live_api + cj["links"]["self"], headers=auth, timeout=10)
    assert r.status_code == 200 and r.json()["job"]["status"] == "cancelled"
    training_worker.wait_for("stopped (cancelled)", timeout=30)
    models = requests.get(live_api + "/api/v1/models", headers=auth, timeout=10).json()["models"]
    assert {x["id"] for x in models} == {model["id"], weak_model["id"]}

    # delete: the artifacts go too
    r = requests.delete(live_api + f"/api/v1/models/{weak_model['id']}", headers=auth, timeout=10)
    assert r.status_code == 204
    assert requests.get(live_api + f"/api/v1/models/{weak_model['id']}", headers=auth, timeout=10).status_code == 404
