"""Fine-tune jobs against Postgres: API validation (nothing queued on bad input), the lease, the
registry's tenancy and gate, a training run in process and its cancel."""
from __future__ import annotations

import io
import json
import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import make_teacher
from tests.finetune_data import RUBRIC, fake_examples


def _count_jobs(kind="fine_tune"):
    from app.store.db import session_scope
    from app.store.tables import Job

    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(Job).where(Job.kind == kind))


def _csv(rows, header=("text", "score", "ideas")):
    buf = io.StringIO()
    buf.write(",".join(header) + "\n")
    for r in rows:
        buf.write(",".join('"' + str(c).replace('"', '""') + '"' for c in r) + "\n")
    return buf.getvalue().encode()


def _post_csv(client, teacher, data: bytes, **form):
    fields = {"file": (io.BytesIO(data), "train.csv"), "rubric": json.dumps(RUBRIC), "name": "m"}
    fields.update(form)
    return client.post("/api/v1/fine-tune-jobs", data=fields, headers=teacher["headers"],
                       content_type="multipart/form-data")


@pytest.fixture()
def no_publish(monkeypatch):
    sent = []
    monkeypatch.setattr("app.lifecycle.jobs.publish", lambda job_id, kind: sent.append((job_id, kind)) or True)
    return sent


def test_bad_csvs_name_the_line_and_queue_nothing(client, teacher, no_publish):
    good = [(e["text"], e["score"], e["traits"]["ideas"]) for e in fake_examples(30)]
    before = _count_jobs()
    r = _post_csv(client, teacher, _csv([(t, s) for t, s, _ in good], header=("text", "score")))
    assert r.status_code == 422 and "ideas" in r.json["error"]["message"]
    assert r.json["error"]["details"][0]["line"] == 1
    bad = list(good)
    bad[4] = (bad[4][0], 7.5, 2)  # out of range
    r = _post_csv(client, teacher, _csv(bad))
    assert r.status_code == 422 and r.json["error"]["details"][0]["line"] == 6, r.json
    bad = list(good)
    bad[2] = (bad[2][0], 2.25, 2)  # not on the half-point grid
    assert _post_csv(client, teacher, _csv(bad)).json["error"]["details"][0]["line"] == 4
    bad = list(good)
    bad[9] = ("   ", 3, 2)  # empty text
    r = _post_csv(client, teacher, _csv(bad))
    assert r.status_code == 422
    assert r.json["error"]["details"][0] == {"line": 11, "field": "text", "message": "The text is empty."}
    bad = list(good)
    bad[0] = (bad[0][0], "four", 2)
    assert _post_csv(client, teacher, _csv(bad)).json["error"]["details"][0]["line"] == 2
    assert _count_jobs() == before and not no_publish


def test_json_and_csv_submissions_are_queued_on_training(client, teacher, no_publish):
    ex = fake_examples(30)
    r = client.post("/api/v1/fine-tune-jobs", json={"name": "j", "rubric": RUBRIC, "examples": ex},
                    headers=teacher["headers"])
    assert r.status_code == 202, r.json
    job = r.json["job"]
    assert job["kind"] == "fine_tune" and job["status"] == "queued" and job["stage"] == "queued"
    assert no_publish[-1] == (job["id"], "fine_tune")
    from app.lifecycle.broker import TASK_ROUTES

    assert TASK_ROUTES["eduq.train"]["queue"] == "training"
    rows = [(e["text"], e["score"], e["traits"]["ideas"], e["demographics"]["gender"]) for e in ex]
    r = _post_csv(client, teacher, _csv(rows, header=("text", "score", "ideas", "gender")), method="lora")
    assert r.status_code == 202, r.json
    r = client.post("/api/v1/fine-tune-jobs", json={"name": "j", "rubric": RUBRIC, "examples": ex[:3]},
                    headers=teacher["headers"])
    assert r.status_code == 422
    r = client.post("/api/v1/fine-tune-jobs", json={"name": "j", "rubric": RUBRIC, "examples": ex, "method": "magic"},
                    headers=teacher["headers"])
    assert r.status_code == 422 and "method" in r.json["error"]["message"]


def test_method_defaults_to_auto_and_stack_has_a_size_cap(client, teacher, no_publish, monkeypatch):
    from app.store.db import session_scope
    from app.store.tables import Job

    ex = fake_examples(30)
    r = client.post("/api/v1/fine-tune-jobs", json={"name": "j", "rubric": RUBRIC, "examples": ex},
                    headers=teacher["headers"])
    assert r.status_code == 202, r.json
    rows = [(e["text"], e["score"], e["traits"]["ideas"]) for e in ex]
    r2 = _post_csv(client, teacher, _csv(rows))
    r3 = _post_csv(client, teacher, _csv(rows), method="stack")
    assert r2.status_code == r3.status_code == 202, (r2.json, r3.json)
    with session_scope() as s:
        got = [s.get(Job, x.json["job"]["id"]).params["method"] for x in (r, r2, r3)]
    assert got == ["auto", "auto", "stack"]
    monkeypatch.setenv("EDUQ_STACK_MAX_EXAMPLES", "25")
    before = _count_jobs()
    r = client.post("/api/v1/fine-tune-jobs", json={"name": "j", "rubric": RUBRIC, "examples": ex, "method": "stack"},
                    headers=teacher["headers"])
    assert r.status_code == 422 and r.json["error"]["details"][0]["field"] == "method", r.json
    assert "at most 25 examples" in r.json["error"]["message"]
    # auto is not capped: it takes head above the cap (workers/ml/training/methods.py)
    r = client.post("/api/v1/fine-tune-jobs", json={"name": "j", "rubric": RUBRIC, "examples": ex},
                    headers=teacher["headers"])
    assert r.status_code == 202 and _count_jobs() == before + 1


def _queued_job(teacher_id: str, n: int = 30, method: str = "head", hp: dict | None = None) -> str:
    from app.lifecycle import jobs as jobsvc
    from app.store.accounts import Principal
    from app.store.db import session_scope
    from app.store.tables import Teacher, TrainingExample

    with session_scope() as s:
        t = s.get(Teacher, teacher_id)
        who = Principal(t.id, t.school_id, t.role, t.email)
    ex = fake_examples(n)

    def fill(s, job):
        s.add_all(TrainingExample(job_id=job.id, position=i, text=e["text"], score=e["score"], traits=e["traits"],
                                  demographics=e["demographics"]) for i, e in enumerate(ex))

    import app.lifecycle.jobs as J

    orig = J.publish
    J.publish = lambda *a: True
    try:
        view, _ = jobsvc.create_job(who, "fine_tune", body_hash="x" + str(random.random()), idempotency_key=None,
                                    fill=fill, rubric=RUBRIC,
                                    params={"name": "t", "method": method, "validation_fraction": 0.2, "seed": 3,
                                            "hyperparameters": hp or {"epochs": 3}})
    finally:
        J.publish = orig
    return view["id"]


def test_lease_is_taken_once_and_an_expired_one_fails_the_job(pg_url):
    from app.lifecycle.training import acquire, reap_training_leases
    from app.store.db import session_scope
    from app.store.tables import Job, utcnow

    tid, _ = make_teacher()
    job_id = _queued_job(tid)
    assert acquire(job_id, "a") == "acquired"
    assert acquire(job_id, "b") == "busy"  # a redelivered message finds a live lease
    with session_scope() as s:
        s.get(Job, job_id).lease_until = utcnow() - timedelta(seconds=1)
    assert acquire(job_id, "c") == "expired"
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job.status == "failed" and job.error["code"] == "worker_lost"
    assert acquire(job_id, "d") == "finished"
    assert job_id not in reap_training_leases()["reaped"]


def test_training_job_end_to_end_in_process_and_cancel(pg_url, monkeypatch, tmp_path):
    """The task body without a broker: trains `head` on fake essays, stores a version with a checksum."""
    from app.store.db import session_scope
    from app.store.model_store import dir_checksum
    from app.store.tables import GraderModel, Job
    from workers.runtime import training as runner

    monkeypatch.setenv("EDUQ_MODEL_STORE", str(tmp_path / "store"))
    monkeypatch.setattr("app.lifecycle.claims.after_finish", lambda f: None)
    tid, _ = make_teacher()
    job_id = _queued_job(tid, 40, hp={"epochs": 4})
    out = runner.run_training(job_id)
    assert "model" in out, out
    with session_scope() as s:
        job = s.get(Job, job_id)
        m = s.get(GraderModel, out["model"])
        assert job.status == "succeeded" and job.params["result"]["model"]["id"] == m.id
        assert job.params["progress"]["stage"] == "done" and job.total == 4
        assert set(m.metrics) >= {"qwk", "exact_agreement", "adjacent_agreement", "smd", "n_train", "n_validation",
                                  "subgroups"}
        assert m.metrics["n_train"] + m.metrics["n_validation"] == 40
        uri, checksum = m.artifact_uri, m.checksum
    path = uri[len("file://"):]
    assert dir_checksum(path) == checksum
    # same seed, same data: the same model
    job2 = _queued_job(tid, 40, hp={"epochs": 4})
    out2 = runner.run_training(job2)
    assert out2["metrics"]["qwk"] == out["metrics"]["qwk"]
    # cancel in the middle: the lease's status check stops the loop
    job3 = _queued_job(tid, 40, hp={"epochs": 200, "patience": 200})
    orig = runner.Lease.should_stop
    calls = {"n": 0}

    def stop_after_some(self):
        calls["n"] += 1
        if calls["n"] == 30:
            with session_scope() as s:
                s.get(Job, job3).status = "cancelled"
            self.beat()
        return orig(self)

    monkeypatch.setattr(runner.Lease, "should_stop", stop_after_some)
    assert runner.run_training(job3) == {"stopped": True}
    with session_scope() as s:
        assert s.get(Job, job3).status == "cancelled"
        assert s.scalar(select(func.count()).select_from(GraderModel).where(GraderModel.job_id == job3)) == 0


def test_stack_training_job_in_process_stores_a_version_the_cache_serves(pg_url, monkeypatch, tmp_path):
    """The task body with method stack: a version with per-trait metrics, its artifacts checksummed, and
    the grading process's cache loads it as a StackedGrader."""
    from app.store.db import session_scope
    from app.store.model_store import dir_checksum
    from app.store.tables import GraderModel, Job
    from workers.ml.grading.stacked import StackedGrader
    from workers.runtime import training as runner
    from workers.runtime.finetuned_cache import GraderCache

    monkeypatch.setenv("EDUQ_MODEL_STORE", str(tmp_path / "store"))
    monkeypatch.setattr("app.lifecycle.claims.after_finish", lambda f: None)
    tid, _ = make_teacher()
    job_id = _queued_job(tid, 48, method="stack")
    out = runner.run_training(job_id)
    assert "model" in out, out
    with session_scope() as s:
        job = s.get(Job, job_id)
        m = s.get(GraderModel, out["model"])
        assert job.status == "succeeded" and m.method == "stack" and job.params["progress"]["stage"] == "done"
        assert set(m.metrics["traits"]) == {"ideas"} and {"qwk", "smd", "ece"} <= set(m.metrics["traits"]["ideas"])
        assert m.metrics["n_train"] + m.metrics["n_validation"] == 48 and "cv" in m.metrics
        uri, checksum = m.artifact_uri, m.checksum
    path = uri[len("file://"):]
    assert dir_checksum(path) == checksum
    assert sorted(p.name for p in __import__("pathlib").Path(path).iterdir()) == ["config.json", "stack.joblib"]
    g = GraderCache(size=2).get(out["model"])
    assert isinstance(g, StackedGrader) and g.version == out["model"]


def _model(teacher_id: str, qwk: float, smd: float = 0.0, status: str = "candidate"):
    from app.store.db import session_scope
    from app.store.grader_models import rubric_key
    from app.store.tables import GraderModel, Teacher

    with session_scope() as s:
        t = s.get(Teacher, teacher_id)
        m = GraderModel(teacher_id=t.id, school_id=t.school_id, name="m", status=status, rubric=RUBRIC,
                        rubric_key=rubric_key(RUBRIC), base_model="default", method="head",
                        metrics={"qwk": qwk, "smd": smd}, artifact_uri=None, checksum=None)
        s.add(m)
        s.flush()
        return m.id


def test_registry_gate_tenancy_and_activation(client, teacher, other_teacher):
    weak = _model(teacher["id"], 0.3)
    good = _model(teacher["id"], 0.8, 0.05)
    h = teacher["headers"]
    r = client.post(f"/api/v1/models/{weak}/activate", json={}, headers=h)
    assert r.status_code == 409 and r.json["error"]["code"] == "below_gate"
    assert client.post(f"/api/v1/models/{good}/activate", headers=h).status_code == 200
    r = client.post(f"/api/v1/models/{weak}/activate", json={"force": True}, headers=h)
    assert r.status_code == 200 and r.json["model"]["status"] == "active"
    assert client.get(f"/api/v1/models/{good}", headers=h).json["model"]["status"] == "retired"
    ids = [m["id"] for m in client.get("/api/v1/models", headers=h).json["models"]]
    assert {weak, good} <= set(ids)
    o = other_teacher["headers"]
    for path in (f"/api/v1/models/{good}",):
        assert client.get(path, headers=o).status_code == 404
    assert client.post(f"/api/v1/models/{good}/activate", json={"force": True}, headers=o).status_code == 404
    assert client.delete(f"/api/v1/models/{good}", headers=o).status_code == 404
    assert good not in [m["id"] for m in client.get("/api/v1/models", headers=o).json["models"]]
    # a school admin sees the school's
    _, admin_token = make_teacher(school="Test School", role="admin")
    assert client.get(f"/api/v1/models/{good}", headers={"Authorization": f"Bearer {admin_token}"}).status_code == 200
    # grading with another teacher's model is refused; with your own, the rubric may be left out
    essays = [{"id": "a", "text": "An essay."}]
    r = client.post("/api/v1/grading-jobs", json={"model": good, "essays": essays}, headers=o)
    assert r.status_code == 422
    assert client.delete(f"/api/v1/models/{good}", headers=h).status_code == 204
    assert client.get(f"/api/v1/models/{good}", headers=h).status_code == 404


def test_grading_with_a_version_uses_a_sent_rubric_of_the_same_scale(teacher):
    """A fine-tuned model grades on its own scale; a rubric sent with it on that scale is the one the job
    keeps (its prompt and always_score count), another scale is a 422, none gives the model's own."""
    from app.errors import ApiError
    from app.store.accounts import Principal
    from app.store.db import session_scope
    from app.store.grader_models import resolve_grading_model
    from app.store.tables import Teacher

    mid = _model(teacher["id"], 0.8)
    with session_scope() as s:
        t = s.get(Teacher, teacher["id"])
        who = Principal(t.id, t.school_id, t.role, t.email)
    assert resolve_grading_model(who, mid, None) == (mid, RUBRIC)
    mine = {**RUBRIC, "always_score": True, "prompt": "Describe a place you love, with details."}
    assert resolve_grading_model(who, mid, mine) == (mid, mine)
    with pytest.raises(ApiError) as e:
        resolve_grading_model(who, mid, {**RUBRIC, "scale": {"min": 1, "max": 4, "step": 1}})
    assert e.value.status == 422 and "another scale" in e.value.message
