"""The body of the `eduq.train` task: take the job's lease (app/lifecycle/training.py), fit the model
(workers/ml/training/), store its artifacts and register the new version, all under the lease."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from app.lifecycle.training import Lease, Progress, acquire, finish, load_job
from app.settings import settings
from app.store.db import session_scope
from app.store.tables import GraderModel, Job, new_id, utcnow

log = logging.getLogger("eduq.worker")


def train_processes() -> int:
    return settings().train_processes


def run_training(job_id: str) -> dict:
    from app.lifecycle.claims import worker_id
    from app.store import model_store
    from workers.ml.training.methods import train
    from workers.ml.training.trainer import Stopped, threads_hint

    owner = worker_id()
    state = acquire(job_id, owner)
    if state != "acquired":
        log.info("training job %s not run here: %s", job_id, state, extra={"job_id": job_id})
        return {"skipped": state}
    threads_hint()
    lease = Lease(job_id, owner).start()
    progress = Progress(job_id, lease)
    workdir = Path(settings().var_dir) / "training" / job_id
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    uri = None
    try:
        params, rubric, examples = load_job(job_id)
        model_id = new_id("mdl")
        trained = train(params, examples, rubric, workdir, model_id, report=progress, should_stop=lease.should_stop,
                        nproc=train_processes())
        if not lease.beat():
            raise Stopped()
        method, out, metrics = trained.method, trained.out_dir, trained.metrics
        uri, checksum = model_store.put(model_id, out)
        with session_scope() as s:
            job = s.get(Job, job_id)
            teacher_id, school_id = job.teacher_id, job.school_id
        from app.store.grader_models import rubric_key

        m = GraderModel(id=model_id, teacher_id=teacher_id, school_id=school_id, job_id=job_id,
                        name=params.get("name") or f"Fine-tuned {rubric.get('name', '')}"[:200], status="candidate",
                        rubric=rubric, rubric_key=rubric_key(rubric), base_model=params.get("base_model", "default"),
                        method=method, metrics=metrics, artifact_uri=uri, checksum=checksum, created_at=utcnow())
        if not finish(job_id, owner, status="succeeded", model=m):
            model_store.delete(uri)  # cancelled or reaped at the last moment: keep nothing
            return {"stopped": True}
        log.info("training job %s produced %s (%s) qwk=%.3f in %.1fs", job_id, model_id, method, metrics["qwk"],
                 time.monotonic() - t0, extra={"job_id": job_id})
        return {"model": model_id, "metrics": metrics}
    except Stopped:
        log.info("training job %s stopped (%s)", job_id, "cancelled" if lease.cancelled.is_set() else "lease lost",
                 extra={"job_id": job_id})
        if uri:
            model_store.delete(uri)
        return {"stopped": True}
    except Exception as exc:
        log.exception("training job %s failed", job_id, extra={"job_id": job_id})
        if uri:
            model_store.delete(uri)
        finish(job_id, owner, status="failed",
                error={"code": "training_failed", "message": f"{type(exc).__name__}: {exc}"[:1000]})
        return {"failed": True}
    finally:
        lease.stop()
        shutil.rmtree(workdir, ignore_errors=True)
