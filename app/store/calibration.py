"""Calibration data in Postgres: stored rubrics' scored examples and each job's frozen calibration set.

    accumulate_override(s, job, essay, score, traits, teacher_id)   a teacher's score joins the job's rubric
    add_scored_examples(s, rubric_id, examples, job_id, teacher_id)  scored examples sent with a job or rubric
    freeze(s, job, rubric, examples, rubric_id, ...) -> calibration id   what a job is graded with
    load_set(cal_id) -> {"rubric", "examples"}                       the worker's read (LookupError if gone)

A job's calibration set is a copy taken when the job is made: later scores never change a job's grades.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.settings import settings
from app.store.db import session_scope
from app.store.tables import CalibrationSet, Essay, Job, RubricExample, utcnow


def example(text: str, score, traits: dict | None, source: str, essay_id: str | None = None) -> dict[str, Any]:
    return {"text": text, "score": None if score is None else float(score),
            "traits": {k: float(v) for k, v in (traits or {}).items() if v is not None},
            "source": source, "essay_id": essay_id}


def rubric_examples(s, rubric_id: str) -> list[dict]:
    """The rubric's scored examples, newest last, at most EDUQ_CALIBRATION_MAX_EXAMPLES (the newest)."""
    cap = settings().calibration_max_examples
    rows = s.scalars(select(RubricExample).where(RubricExample.rubric_id == rubric_id)
                     .order_by(RubricExample.created_at.desc(), RubricExample.id.desc()).limit(cap)).all()
    return [example(r.text, r.score, r.traits, r.source, r.essay_id) for r in reversed(rows)]


def count_examples(s, rubric_ids: list[str]) -> dict[str, int]:
    if not rubric_ids:
        return {}
    rows = s.execute(select(RubricExample.rubric_id, func.count()).where(RubricExample.rubric_id.in_(rubric_ids))
                     .group_by(RubricExample.rubric_id)).all()
    return {r: int(n) for r, n in rows}


def add_scored_examples(s, rubric_id: str, examples: list[dict], job_id: str | None, teacher_id: str) -> None:
    now = utcnow()
    for e in examples:
        s.add(RubricExample(rubric_id=rubric_id, job_id=job_id, teacher_id=teacher_id, text=e["text"],
                            score=e.get("score"), traits=e.get("traits") or {}, source="scored_example",
                            created_at=now))


def _lineage(s, essay: Essay, depth: int = 10) -> list[str]:
    """The essay and the essays it regrades (a recalibrated job's copy -> the original), newest first."""
    out, e = [essay.id], essay
    while e.previous_essay_id and len(out) < depth:
        out.append(e.previous_essay_id)
        e = s.get(Essay, e.previous_essay_id)
        if e is None:
            break
    return out


def accumulate_override(s, job: Job, essay: Essay, score: float, traits: dict, teacher_id: str) -> bool:
    """A teacher's score of an essay graded on a stored rubric becomes one of the rubric's examples
    (the newest score of an essay replaces its earlier one, also one given to the essay a recalibrated
    job regrades). False where the job has no stored rubric."""
    if not job.rubric_id:
        return False
    row = s.scalars(select(RubricExample).where(RubricExample.rubric_id == job.rubric_id,
                                                RubricExample.essay_id.in_(_lineage(s, essay)))
                    .order_by(RubricExample.created_at.desc())).first()
    if row is None:
        s.add(RubricExample(rubric_id=job.rubric_id, job_id=job.id, essay_id=essay.id, teacher_id=teacher_id,
                            text=essay.text, score=score, traits=traits or {}, source="override",
                            created_at=utcnow()))
    else:
        row.score, row.traits, row.teacher_id, row.created_at = score, traits or {}, teacher_id, utcnow()
        row.essay_id, row.job_id, row.text = essay.id, job.id, essay.text  # it follows the newest copy
    return True


def merge(*lists: list[dict]) -> list[dict]:
    """Examples from several sources, each text once (a recalibrated job's copy of an essay is the same
    text under another id; the later list wins), at most EDUQ_CALIBRATION_MAX_EXAMPLES (the last ones)."""
    out: dict[str, dict] = {}
    for lst in lists:
        for e in lst:
            key = " ".join((e.get("text") or "").split())
            out.pop(key, None)
            out[key] = e
    return list(out.values())[-settings().calibration_max_examples:]


def freeze(s, job: Job, rubric: dict, examples: list[dict], rubric_id: str | None = None,
           recalibrates: str | None = None) -> str:
    """The job's calibration set (its id is what the job's essays are graded under) and the job's
    params["calibration"] summary (what its JobView shows)."""
    cal = CalibrationSet(job_id=job.id, rubric_id=rubric_id, rubric=rubric, examples=examples, n=len(examples),
                         created_at=utcnow())
    s.add(cal)
    s.flush()
    summary = {"id": cal.id, "examples": len(examples),
               "scored_holistic": sum(1 for e in examples if e.get("score") is not None)}
    if recalibrates:
        summary["recalibrates"] = recalibrates
    job.params = {**(job.params or {}), "calibration": summary}
    return cal.id


def examples_of_job(s, job_id: str) -> list[dict]:
    cal = s.scalar(select(CalibrationSet).where(CalibrationSet.job_id == job_id))
    return list(cal.examples) if cal is not None else []


def load_set(cal_id: str) -> dict:
    with session_scope() as s:
        cal = s.get(CalibrationSet, cal_id)
        if cal is None:
            raise LookupError(f"calibration {cal_id!r} does not exist (its job was deleted)")
        return {"rubric": cal.rubric, "examples": list(cal.examples)}


def scrub_essays(s, essay_ids: list[str], school_ids: list[str]) -> int:
    """Remove deleted essays' copies from the calibration sets of those schools' jobs; returns how many."""
    if not essay_ids or not school_ids:
        return 0
    gone, n = set(essay_ids), 0
    for cal in s.scalars(select(CalibrationSet).join(Job, Job.id == CalibrationSet.job_id)
                         .where(Job.school_id.in_(school_ids)).with_for_update(of=CalibrationSet)):
        keep = [e for e in cal.examples if e.get("essay_id") not in gone]
        if len(keep) != len(cal.examples):
            n += len(cal.examples) - len(keep)
            cal.examples, cal.n = keep, len(keep)
    return n
