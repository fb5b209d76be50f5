"""SQLAlchemy 2 typed mappings. Postgres is the source of truth for every job and result."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class Base(DeclarativeBase):
    pass


class School(Base):
    __tablename__ = "schools"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sch"))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the school's share of the workers when schools compete for them (app/lifecycle/fair_share.py)
    share_weight: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")


class Teacher(Base):
    __tablename__ = "teachers"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("tch"))
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="teacher")  # teacher | admin
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    school: Mapped[School] = relationship()


class ApiToken(Base):
    """Only the SHA-256 of a token is stored; the token itself is shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("tok"))
    teacher_id: Mapped[str] = mapped_column(ForeignKey("teachers.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    teacher: Mapped[Teacher] = relationship()


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("teacher_id", "idempotency_key", name="uq_jobs_teacher_idempotency_key"),
        Index("ix_jobs_school_created", "school_id", "created_at"),
        Index("ix_jobs_teacher_created", "teacher_id", "created_at"),
        Index("ix_jobs_status_published", "status", "published_at"),
        # the fair claim's active jobs (app/lifecycle/claims.py:_active_jobs): only queued and running ones
        Index("ix_jobs_active", "kind", "teacher_id", "created_at",
              postgresql_where=text("status IN ('queued', 'running')"), sqlite_where=text("status IN ('queued', 'running')")),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("job"))
    kind: Mapped[str] = mapped_column(String(16))  # grading | lesson | fine_tune | follow_up
    status: Mapped[str] = mapped_column(String(16), default="queued")
    teacher_id: Mapped[str] = mapped_column(ForeignKey("teachers.id", ondelete="CASCADE"))
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"))
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every visible change (ETag)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[dict | None] = mapped_column(JSONType)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(80))
    rubric: Mapped[dict | None] = mapped_column(JSONType)
    params: Mapped[dict | None] = mapped_column(JSONType)
    callback_url: Mapped[str | None] = mapped_column(Text)
    # long jobs (training): a lease with heartbeat, so a redelivered message never runs them twice
    # a grading job on a stored rubric (POST /api/v1/rubrics): its calibration accumulates there
    rubric_id: Mapped[str | None] = mapped_column(ForeignKey("rubrics.id", ondelete="SET NULL"), index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Essay(Base):
    """One essay of a grading job; also the unit of work a grading worker claims."""

    __tablename__ = "essays"
    __table_args__ = (
        UniqueConstraint("job_id", "client_id", name="uq_essays_job_client_id"),
        Index("ix_essays_status_claim", "status", "claimed_until"),
        Index("ix_essays_job_position", "job_id", "position"),
        Index("ix_essays_job_status_position", "job_id", "status", "position"),  # a job's pending essays
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ess"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    client_id: Mapped[str] = mapped_column(String(200))
    student_ref: Mapped[str | None] = mapped_column(String(200), index=True)
    text: Mapped[str] = mapped_column(Text)
    # pending -> claimed -> done | failed ; pending/claimed -> cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # a recalibrated job's copy of an essay: the essay it was copied from (its earlier result stays readable)
    previous_essay_id: Mapped[str | None] = mapped_column(ForeignKey("essays.id", ondelete="SET NULL"))
    # the revision loop: the assignment an essay answers, and the same student's earlier draft of it
    assignment: Mapped[str | None] = mapped_column(String(200))
    previous_draft_id: Mapped[str | None] = mapped_column(ForeignKey("essays.id", ondelete="SET NULL"))


class GradingResult(Base):
    __tablename__ = "grading_results"
    __table_args__ = (
        UniqueConstraint("essay_id", name="uq_grading_results_essay_id"),
        Index("ix_grading_results_job_position", "job_id", "position"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("res"))
    essay_id: Mapped[str] = mapped_column(ForeignKey("essays.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # null: a score would be meaningless
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    confidence: Mapped[float] = mapped_column(Float)
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    review_reasons: Mapped[list[str]] = mapped_column(JSONType, default=list)
    feedback: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    model_version: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LessonPlan(Base):
    """One requested plan of a lesson job: the unit a lessons worker claims, and its result."""

    __tablename__ = "lesson_plans"
    __table_args__ = (
        UniqueConstraint("job_id", "position", name="uq_lesson_plans_job_position"),
        Index("ix_lesson_plans_status_claim", "status", "claimed_until"),
        Index("ix_lesson_plans_job_status_position", "job_id", "status", "position"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("les"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    request: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FollowUp(Base):
    """One student's next steps from a graded essay: the unit a lessons worker claims, and its result."""

    __tablename__ = "follow_ups"
    __table_args__ = (
        UniqueConstraint("job_id", "position", name="uq_follow_ups_job_position"),
        Index("ix_follow_ups_status_claim", "status", "claimed_until"),
        Index("ix_follow_ups_job_status_position", "job_id", "status", "position"),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("fup"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    essay_id: Mapped[str] = mapped_column(ForeignKey("essays.id", ondelete="CASCADE"), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    """One attempt to deliver a job's callback."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("whd"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScoreOverride(Base):
    """A teacher's own score for an essay, kept beside the model's (who and when), exported too."""

    __tablename__ = "score_overrides"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ovr"))
    essay_id: Mapped[str] = mapped_column(ForeignKey("essays.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    teacher_id: Mapped[str] = mapped_column(ForeignKey("teachers.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(Float)
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    """Who read or changed what: results reads and exports, overrides, deletions."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_school_created", "school_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("aud"))
    teacher_id: Mapped[str | None] = mapped_column(String(40))
    school_id: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str | None] = mapped_column(String(40), index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GraderModel(Base):
    """A fine-tuned grader version: artifacts in the model store, metrics on its held-out split."""

    __tablename__ = "grader_models"
    __table_args__ = (Index("ix_grader_models_school_rubric", "school_id", "rubric_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mdl"))
    teacher_id: Mapped[str] = mapped_column(ForeignKey("teachers.id", ondelete="CASCADE"), index=True)
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="candidate")  # candidate | active | retired
    rubric: Mapped[dict[str, Any]] = mapped_column(JSONType)
    rubric_key: Mapped[str] = mapped_column(String(64))  # hash of the rubric: one active model per rubric
    base_model: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    artifact_uri: Mapped[str | None] = mapped_column(Text)
    checksum: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrainingExample(Base):
    """One scored essay of a fine-tune job (its training data, kept with the job)."""

    __tablename__ = "training_examples"
    __table_args__ = (UniqueConstraint("job_id", "position", name="uq_training_examples_job_position"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("tex"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    demographics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Rubric(Base):
    """A teacher's named rubric (name, prompt, scale, traits), kept with its calibration."""

    __tablename__ = "rubrics"
    __table_args__ = (Index("ix_rubrics_teacher_created", "teacher_id", "created_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("rub"))
    teacher_id: Mapped[str] = mapped_column(ForeignKey("teachers.id", ondelete="CASCADE"))
    school_id: Mapped[str] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    rubric: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RubricExample(Base):
    """One essay scored by a teacher on a stored rubric: a scored example sent with a job or the rubric,
    or a teacher's override of an essay graded on it (then essay_id: the newest override wins, and the
    row goes with the essay when a student's data is deleted or the job's content expires)."""

    __tablename__ = "rubric_examples"
    __table_args__ = (UniqueConstraint("rubric_id", "essay_id", name="uq_rubric_examples_rubric_essay"),
                      Index("ix_rubric_examples_rubric_created", "rubric_id", "created_at"))
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("rex"))
    rubric_id: Mapped[str] = mapped_column(ForeignKey("rubrics.id", ondelete="CASCADE"))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    essay_id: Mapped[str | None] = mapped_column(ForeignKey("essays.id", ondelete="CASCADE"))
    teacher_id: Mapped[str | None] = mapped_column(ForeignKey("teachers.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    source: Mapped[str] = mapped_column(String(16))  # scored_example | override
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CalibrationSet(Base):
    """The scored examples one grading job is calibrated with, frozen when the job is made (a job's
    scores depend only on its essays, its rubric and these). Goes with its job."""

    __tablename__ = "calibration_sets"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cal"))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    rubric_id: Mapped[str | None] = mapped_column(ForeignKey("rubrics.id", ondelete="SET NULL"))
    rubric: Mapped[dict[str, Any]] = mapped_column(JSONType)
    examples: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)  # [{text, score, traits, source, essay_id}]
    n: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
