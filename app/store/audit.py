"""The audit trail: who read or changed which results (AuditEvent rows).

Recorded actions
- results.read       GET /jobs/{id}/results (JSON page; detail: count, cursor)
- results.export     GET /jobs/{id}/results?format=csv|docx (detail: format, rows)
- result.override    POST /jobs/{id}/results/{essay_id}/override (detail: essay_id, score)
- student.delete     DELETE /students/{ref} (detail: sha256 of the ref, counts)
- retention.purge    the periodic purge (no teacher; detail: cutoff, counts)

An event is written in the same transaction as the read or change it records, so there is
never a read without its record. A deleted student's ref is stored only as a hash.
"""
from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session

from app.store.accounts import Principal
from app.store.tables import AuditEvent, utcnow


def ref_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def record(s: Session, who: Principal | None, action: str, job_id: str | None = None,
           detail: dict[str, Any] | None = None) -> AuditEvent:
    ev = AuditEvent(teacher_id=who.teacher_id if who else None, school_id=who.school_id if who else None,
                    action=action, job_id=job_id, detail=detail or {}, created_at=utcnow())
    s.add(ev)
    return ev
