"""Which grader a grading job uses, and the registry of fine-tuned versions.

'default' is the general grader for any rubric, unless the teacher has activated a fine-tuned
model for that same rubric: then that model grades it. Any other value is the id of one of the
caller's fine-tuned models (a school admin may use the school's), which brings its own rubric.

Activation gate (docs/finetuning.md): validation QWK >= EDUQ_GATE_MIN_QWK (0.70) and
|SMD| <= EDUQ_GATE_MAX_ABS_SMD (0.15); below it, activate answers 409 unless {"force": true}.
"""
from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache

from sqlalchemy import select

from app.errors import ApiError
from app.settings import settings
from app.store import model_store
from app.store.accounts import Principal
from app.store.db import session_scope
from app.store.tables import GraderModel, utcnow
from app.store.views import decode_cursor, encode_cursor, iso
from workers.ml.grading.asap import ARTIFACTS, rubric_from_meta

BUILTIN_GRADERS = {"default"}
NOOP = "noop"  # the benchmark-only grader (EDUQ_BENCH_MODE=1)
ASAP_MODEL = re.compile(r"^asap-([0-9]{1,2})$")


@lru_cache(maxsize=1)
def _asap_meta() -> dict | None:
    """meta.json of the shipped ASAP graders (ranges and trait names only; the worker verifies checksums)."""

    path = ARTIFACTS / "meta.json"
    return json.loads(path.read_text()) if path.is_file() else None


def builtin_rubric(model: str) -> dict | None:
    """The rubric a built-in per-prompt grader ('asap-1'..'asap-8') brings, or None for any other name."""
    m = ASAP_MODEL.match(model or "")
    meta = _asap_meta() if m else None
    if not meta or m.group(1) not in meta["ranges"]:
        return None

    return rubric_from_meta(meta, m.group(1))


def builtin_models() -> list[str]:
    meta = _asap_meta()
    return ["default"] + ([f"asap-{p}" for p in meta["prompts"]] if meta else [])


def rubric_key(rubric: dict) -> str:
    return hashlib.sha256(json.dumps(rubric, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def gate_settings() -> tuple[float, float]:
    cfg = settings()
    return cfg.gate_min_qwk, cfg.gate_max_abs_smd


def gate(metrics: dict | None) -> dict:
    min_qwk, max_smd = gate_settings()
    m = metrics or {}
    reasons = []
    if m.get("qwk") is None:
        reasons.append(f"The model has no validation QWK; the gate needs at least {min_qwk}.")
    elif m["qwk"] < min_qwk:
        reasons.append(f"The validation QWK {m['qwk']:.3g} is below the gate's {min_qwk}.")
    if m.get("smd") is None:
        reasons.append(f"The model has no validation SMD; the gate needs |SMD| at most {max_smd}.")
    elif abs(m["smd"]) > max_smd:
        reasons.append(f"The validation |SMD| {abs(m['smd']):.3g} is above the gate's {max_smd}.")
    return {"passed": not reasons, "min_qwk": min_qwk, "max_abs_smd": max_smd, "reasons": reasons}


def scoped(stmt, who: Principal):
    if who.is_admin:
        return stmt.where(GraderModel.school_id == who.school_id)
    return stmt.where(GraderModel.teacher_id == who.teacher_id)


def get_model(s, model_id: str, who: Principal, for_update: bool = False) -> GraderModel:
    stmt = scoped(select(GraderModel).where(GraderModel.id == model_id), who)
    if for_update:
        stmt = stmt.with_for_update()
    m = s.scalar(stmt)
    if m is None:
        raise ApiError(404, f"No model {model_id!r} is visible to you.", "not_found")
    return m


def model_view(m: GraderModel) -> dict:
    return {"id": m.id, "name": m.name, "status": m.status, "rubric": m.rubric, "base_model": m.base_model,
            "method": m.method, "metrics": m.metrics, "created_at": iso(m.created_at),
            "activated_at": iso(m.activated_at), "job_id": m.job_id, "checksum": m.checksum, "gate": gate(m.metrics)}


def _same_scale(a: dict, b: dict) -> bool:
    def norm(r):
        sc = lambda d: (float(d["min"]), float(d["max"]), float(d.get("step", 1.0) or 1.0))  # noqa: E731
        return sc(r["scale"]), sorted((t["name"].lower(), sc(t.get("scale") or r["scale"])) for t in r.get("traits") or [])
    return norm(a) == norm(b)


def resolve_grading_model(who: Principal, model: str, rubric: dict | None) -> tuple[str, dict]:
    """Return (model id, rubric to grade against) or a 422/404 naming the problem."""
    if model == NOOP:
        if not settings().bench_mode:
            raise ApiError(422, "Model 'noop' is a benchmark-only grader; it is accepted only when EDUQ_BENCH_MODE=1 "
                                "is set on the API and the workers.", "validation_error",
                           [{"field": "model", "message": "'noop' needs EDUQ_BENCH_MODE=1."}])
        if rubric is None:
            raise ApiError(422, "A rubric is required with the model 'noop'.", "validation_error",
                           [{"field": "rubric", "message": "Missing data for required field."}])
        return model, rubric
    if model in BUILTIN_GRADERS:
        if rubric is None:
            raise ApiError(422, "A rubric is required with the default model.", "validation_error",
                           [{"field": "rubric", "message": "Missing data for required field."}])
        with session_scope() as s:
            active = s.scalar(select(GraderModel.id).where(
                GraderModel.teacher_id == who.teacher_id, GraderModel.status == "active",
                GraderModel.rubric_key == rubric_key(rubric)))
        return (active or model), rubric
    builtin = builtin_rubric(model)
    if builtin is not None:  # a shipped per-prompt grader: its own scale and traits
        if rubric is not None and not _same_scale(rubric, builtin):
            raise ApiError(422, f"Model {model!r} grades on its own scale and traits; leave the rubric out or send "
                                "one with the same scale and trait names.", "validation_error",
                           [{"field": "rubric", "message": "The scale or traits differ from the model's rubric."}])
        return model, (rubric if rubric is not None else builtin)
    with session_scope() as s:
        m = s.scalar(scoped(select(GraderModel).where(GraderModel.id == model), who))
        if m is None:
            raise ApiError(422, f"There is no model {model!r}; use 'default', one of "
                                f"{', '.join(builtin_models()[1:]) or 'asap-N'} or the id of one of your fine-tuned models.",
                           "validation_error", [{"field": "model", "message": f"There is no model {model!r}."}])
        own = m.rubric
    if rubric is not None and not _same_scale(rubric, own):
        raise ApiError(422, f"Model {model!r} was trained on another scale or other traits than this rubric; "
                            "leave the rubric out to use the model's own.", "validation_error",
                       [{"field": "rubric", "message": "The scale or traits differ from the model's rubric."}])
    return model, (rubric if rubric is not None else own)  # the same scale: its prompt and always_score count


def list_models(who: Principal, status: str | None, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    with session_scope() as s:
        stmt = scoped(select(GraderModel), who)
        if status:
            stmt = stmt.where(GraderModel.status == status)
        if cursor:
            (after_id,) = decode_cursor(cursor)
            stmt = stmt.where(GraderModel.id < after_id)
        rows = s.scalars(stmt.order_by(GraderModel.id.desc()).limit(limit + 1)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return [model_view(m) for m in rows], (encode_cursor(rows[-1].id) if more else None)


def read(who: Principal, model_id: str) -> dict:
    with session_scope() as s:
        return model_view(get_model(s, model_id, who))


def activate(who: Principal, model_id: str, force: bool) -> dict:
    with session_scope() as s:
        m = get_model(s, model_id, who, for_update=True)
        g = gate(m.metrics)
        if not g["passed"] and not force:
            raise ApiError(409, "The model does not pass the activation gate. " + " ".join(g["reasons"])
                           + " Send {\"force\": true} to activate it anyway.", "below_gate",
                           [{"field": "metrics", "message": r} for r in g["reasons"]])
        for other in s.scalars(select(GraderModel).where(
                GraderModel.teacher_id == m.teacher_id, GraderModel.rubric_key == m.rubric_key,
                GraderModel.status == "active", GraderModel.id != m.id).with_for_update()):
            other.status = "retired"
        m.status = "active"
        m.activated_at = utcnow()
        s.flush()
        return model_view(m)


def delete(who: Principal, model_id: str) -> None:
    with session_scope() as s:
        m = get_model(s, model_id, who, for_update=True)
        uri = m.artifact_uri
        s.delete(m)
    model_store.delete(uri)
