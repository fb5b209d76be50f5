"""POST /api/v1/fine-tune-jobs: scored examples as JSON or a CSV upload; queued on `training`."""
from __future__ import annotations

import json

from flask import request
from flask_smorest import Blueprint

from app.errors import ApiError, count_of, problems_message
from app.lifecycle import jobs as jobsvc
from app.lifecycle.calibration import get_rubric
from app.settings import settings
from app.store.db import session_scope
from app.store.tables import TrainingExample
from app.web.api.common import body_kind, form_json, idempotency_key, json_body, validate
from app.web.auth import current, login_required
from app.web.csvio import decode_upload, read_rows
from app.web.schemas import FineTuneJobRequestSchema, FineTuneMultipartSchema, JobEnvelopeSchema, RubricSchema

blp = Blueprint("finetune", __name__, url_prefix="/api/v1", description="Fine-tune a grader on your scored essays.")

DEMOGRAPHIC_COLUMNS = ("gender", "ell", "race_ethnicity", "race", "ethnicity", "disability", "sped", "frl",
                       "economically_disadvantaged", "grade_level")
IGNORED_COLUMNS = ("id", "essay_id", "student_ref")


def min_examples() -> int:
    return settings().min_training_examples


def max_examples() -> int:
    return settings().max_training_examples


def _scale_ok(x: float, sc: dict) -> bool:
    lo, hi, step = sc["min"], sc["max"], sc.get("step", 1.0) or 1.0
    k = (x - lo) / step
    return lo - 1e-9 <= x <= hi + 1e-9 and abs(k - round(k)) < 1e-6


def _check_examples(examples: list[dict], rubric: dict, lines: list[int] | None = None) -> None:
    """Every score on its scale, traits known, text present. 422 naming each bad example."""
    traits = {t["name"]: (t.get("scale") or rubric["scale"]) for t in rubric.get("traits") or []}
    limit = settings().max_essay_chars
    errors = []

    def where(i):
        return {"line": lines[i]} if lines else {"index": i}

    for i, ex in enumerate(examples):
        field = "text" if lines else f"examples.{i}.text"
        if not (ex.get("text") or "").strip():
            errors.append({**where(i), "field": field, "message": "The text is empty."})
        elif len(ex["text"]) > limit:
            errors.append({**where(i), "field": field,
                           "message": f"The text is {len(ex['text'])} characters long; the limit is {limit}."})
        sc = rubric["scale"]
        if ex.get("score") is None or not _scale_ok(ex["score"], sc):
            errors.append({**where(i), "field": "score" if lines else f"examples.{i}.score",
                           "message": f"The score {_show(ex.get('score'))} is not on the scale ({_scale_text(sc)})."})
        for name, v in (ex.get("traits") or {}).items():
            if name not in traits:
                errors.append({**where(i), "field": name if lines else f"examples.{i}.traits.{name}",
                               "message": f"The rubric has no trait {name!r} (its traits: "
                                          f"{', '.join(sorted(traits)) or 'none'})."})
            elif not _scale_ok(v, traits[name]):
                t = traits[name]
                errors.append({**where(i), "field": name if lines else f"examples.{i}.traits.{name}",
                               "message": f"The {name} score {_show(v)} is not on the trait's scale ({_scale_text(t)})."})
    if errors:
        first = errors[0]
        what, at = ("The CSV", f"on line {first['line']}") if lines else ("The examples", f"in example {first['index']}")
        raise ApiError(422, problems_message(what, errors, at), "invalid_csv" if lines else "validation_error", errors)
    n = len(examples)
    if n < min_examples() or n > max_examples():
        raise ApiError(422, f"The job has {count_of(n, 'example')}; a fine-tune job needs {min_examples()} to "
                            f"{max_examples()}.", "validation_error",
                       [{"field": "examples", "message": f"The job has {count_of(n, 'example')}."}])


def _show(x) -> str:
    return f"{x:g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else repr(x)


def _scale_text(sc: dict) -> str:
    return f"{sc['min']:g} to {sc['max']:g} in steps of {float(sc.get('step') or 1):g}"


def _number(raw: str) -> float | None:
    try:
        v = float(raw.strip())
    except (ValueError, AttributeError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def _from_csv() -> tuple[dict, dict, list[int]]:
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(422, "Upload the scored essays as a CSV in the form field 'file'.", "validation_error",
                       [{"field": "file", "message": "Missing data for required field."}])
    text = decode_upload(upload.read())
    rubric_raw = form_json("rubric")

    rubric = validate(RubricSchema(), rubric_raw)
    trait_names = [t["name"] for t in rubric.get("traits") or []]
    rows = read_rows(text, required=["text", "score"] + [t.lower() for t in trait_names],
                     optional=DEMOGRAPHIC_COLUMNS)
    header = set(rows[0][1]) if rows else set()
    known = {"text", "score", *[t.lower() for t in trait_names], *DEMOGRAPHIC_COLUMNS, *IGNORED_COLUMNS}
    unknown = sorted(c for c in header if c not in known and not c.startswith("demo_"))
    if unknown:
        what = ("a column that is neither a trait of the rubric nor a known demographic column" if len(unknown) == 1
                else "columns that are neither traits of the rubric nor known demographic columns")
        raise ApiError(422, f"The CSV has {what}: {', '.join(unknown)}; nothing was queued.", "invalid_csv",
                       [{"field": "file", "line": 1, "message": f"The column {c!r} is neither a trait of the rubric nor a "
                                                                 "known demographic column."} for c in unknown])
    examples, lines, errors = [], [], []
    for line, row in rows:
        score = _number(row.get("score", ""))
        if score is None:
            errors.append({"line": line, "field": "score", "message": f"The score {row.get('score')!r} is not a number."})
        traits = {}
        for t in trait_names:
            cell = (row.get(t.lower()) or "").strip()
            if cell == "":
                continue  # a missing trait score is allowed: that target is masked
            v = _number(cell)
            if v is None:
                errors.append({"line": line, "field": t, "message": f"The {t} score {cell!r} is not a number."})
            else:
                traits[t] = v
        demos = {c: row[c].strip() for c in row if (c in DEMOGRAPHIC_COLUMNS or c.startswith("demo_")) and row[c].strip()}
        examples.append({"text": row.get("text", ""), "score": score, "traits": traits, "demographics": demos})
        lines.append(line)
    if errors:
        raise ApiError(422, problems_message("The CSV", errors, f"on line {errors[0]['line']}"), "invalid_csv", errors)
    if not examples:
        raise ApiError(422, "The CSV has a header but no essays.", "invalid_csv",
                       [{"field": "file", "line": 2, "message": "The CSV has no essay rows."}])
    _check_examples(examples, rubric, lines)
    hp = request.form.get("hyperparameters")
    data = {"name": request.form.get("name"), "rubric": rubric_raw, "examples": examples,
            "method": request.form.get("method") or "auto", "base_model": request.form.get("base_model") or "default",
            "validation_fraction": _form_float("validation_fraction", 0.2),
            "seed": int(_form_float("seed", 13)),
            "hyperparameters": json.loads(hp) if hp else {},
            "callback_url": request.form.get("callback_url") or None}
    hash_src = {k: v for k, v in data.items() if k != "examples"} | {"csv_sha256": jobsvc.request_hash(text)}
    return data, hash_src, lines


def _form_float(name: str, default: float) -> float:
    raw = request.form.get(name)
    if raw in (None, ""):
        return default
    v = _number(raw)
    if v is None:
        raise ApiError(422, f"The form field {name!r} must be a number.", "validation_error",
                       [{"field": name, "message": "Not a valid number."}])
    return v


@blp.route("/fine-tune-jobs", methods=["POST"])
@login_required
@blp.doc(
    summary="Fine-tune a grader on scored essays (auto, stack, head, lora or full)",
    description="The result is `{\"model\": ModelView}`; follow `progress.detail` (stage, epoch, loss, val_qwk) "
                "while it runs. See docs/finetuning.md.",
    requestBody={"required": True, "content": {
        "application/json": {"schema": FineTuneJobRequestSchema},
        "multipart/form-data": {"schema": FineTuneMultipartSchema},
    }},
    parameters=[{"in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string", "maxLength": 200}}],
    security=[{"bearerAuth": []}],
)
@blp.response(202, JobEnvelopeSchema, description="Accepted and queued on the training queue.")
@blp.alt_response(200, schema=JobEnvelopeSchema, description="Replay of an Idempotency-Key: the first job.")
def submit_fine_tune():
    who = current()
    kind = body_kind(multipart_ok=True)
    if kind == "json":
        raw = json_body()
        data = validate(FineTuneJobRequestSchema(), raw)
        if data.get("rubric_id"):
            with session_scope() as s:
                data["rubric"] = dict(get_rubric(s, who, data["rubric_id"], status=422, field="rubric_id").rubric)
        _check_examples(data["examples"], data["rubric"])
        hash_src = raw
    else:
        raw, hash_src, _ = _from_csv()
        if isinstance(raw.get("hyperparameters"), dict) is False:
            raw["hyperparameters"] = {}
        data = validate(FineTuneJobRequestSchema(), raw)
    view, created = queue_fine_tune(who, data, hash_src, idempotency_key())
    return {"job": view}, (202 if created else 200)


def queue_fine_tune(who, data: dict, hash_src, key: str | None) -> tuple[dict, bool]:
    """A validated fine-tune request (examples already checked against the rubric) as a queued job."""
    examples = data["examples"]
    cap = settings().stack_max_examples
    if data["method"] == "stack" and len(examples) > cap:
        raise ApiError(422, f"Method stack takes at most {cap} examples and the job has {len(examples)}; use method "
                            "auto (it takes head above that) or head.", "validation_error",
                       [{"field": "method", "message": f"stack takes at most {cap} examples."}])
    params = {"name": data["name"], "method": data["method"], "base_model": data["base_model"],
              "validation_fraction": data["validation_fraction"], "seed": data["seed"],
              "hyperparameters": data.get("hyperparameters") or {}, "n_examples": len(examples)}

    def fill(s, job):
        job.total = 0
        s.add_all(TrainingExample(job_id=job.id, position=i, text=e["text"], score=float(e["score"]),
                                  traits=e.get("traits") or {}, demographics=e.get("demographics") or {})
                  for i, e in enumerate(examples))

    view, created = jobsvc.create_job(
        who, "fine_tune", body_hash=jobsvc.request_hash(hash_src), idempotency_key=key, fill=fill,
        rubric=data["rubric"], params=params, callback_url=data.get("callback_url"))
    return view, created


def init_app(api) -> None:
    api.register_blueprint(blp)
