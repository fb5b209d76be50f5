"""How stored rows are shown: the contract's JobView, timestamps, list cursors, ETags."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any

from app.errors import ApiError
from app.store.tables import Job


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:  # SQLite drops the zone; everything is stored in UTC
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def job_view(job: Job) -> dict[str, Any]:
    base = f"/api/v1/jobs/{job.id}"
    return {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": {"done": job.done, "total": job.total, "failed": job.failed},
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "error": job.error,
        "model": job.model,
        "links": {"self": base, "results": f"{base}/results"},
    } | _training_detail(job) | _grading_detail(job) | _follow_up_detail(job)


def _grading_detail(job: Job) -> dict:
    """Grading jobs: the stored rubric and the calibration they were graded with, and the calibration links."""
    if job.kind != "grading":
        return {}
    base = f"/api/v1/jobs/{job.id}"
    links = {"self": base, "results": f"{base}/results", "calibration_suggestions": f"{base}/calibration-suggestions",
             "recalibrate": f"{base}/recalibrate", "insights": f"{base}/insights", "reteach": f"{base}/reteach",
             "feedback_sheets": f"{base}/feedback-sheets"}
    fu = (job.params or {}).get("follow_up_job")
    if fu:
        links["follow_ups"] = f"/api/v1/jobs/{fu}"
    return {"rubric_id": job.rubric_id, "calibration": (job.params or {}).get("calibration"), "links": links}


def _follow_up_detail(job: Job) -> dict:
    """Follow-up jobs: the grading job they follow."""
    if job.kind != "follow_up":
        return {}
    src = (job.params or {}).get("grading_job")
    base = f"/api/v1/jobs/{job.id}"
    return {"grading_job": src, "links": {"self": base, "results": f"{base}/results",
                                          **({"grading_job": f"/api/v1/jobs/{src}"} if src else {})}}


def _training_detail(job: Job) -> dict:
    """Fine-tune jobs: progress.detail (stage, epoch, loss, val_qwk…) and a top-level stage."""
    if job.kind != "fine_tune":
        return {}
    detail = (job.params or {}).get("progress")
    stage = (detail or {}).get("stage") or ("queued" if job.status == "queued" else None)
    return {"progress": {"done": job.done, "total": job.total, "failed": job.failed, "detail": detail},
            "stage": stage}


def etag(job: Job) -> str:
    return etag_of(job.id, job.version)


def etag_of(job_id: str, version: int) -> str:
    return f'"{job_id}.{version}"'


def encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list:
    try:
        pad = "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(cursor + pad))
        if not isinstance(parts, list):
            raise ValueError
        return parts
    except Exception:
        raise ApiError(422, "The cursor is not valid; use next_cursor from a previous page.",
                       "validation_error", [{"field": "cursor", "message": "Not a valid cursor."}]) from None
