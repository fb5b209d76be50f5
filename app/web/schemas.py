"""Marshmallow schemas: they validate requests and generate /api/v1/openapi.json (flask-smorest)."""
from __future__ import annotations

import math

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from app.lifecycle.callback_policy import refusal
from app.settings import settings


def public_callback(url: str | None) -> None:
    """A callback goes to a public http(s) address only (app/lifecycle/callback_policy.py)."""
    why = refusal(url) if url else None
    if why:
        raise ValidationError(f"The {why}.")

class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class ScaleSchema(StrictSchema):
    min = fields.Float(required=True, allow_nan=False)
    max = fields.Float(required=True, allow_nan=False)
    step = fields.Float(load_default=1.0, validate=validate.Range(min=0, min_inclusive=False), allow_nan=False)

    @validates_schema
    def _check(self, data, **_):
        lo, hi, step = data["min"], data["max"], data.get("step", 1.0)
        if any(math.isinf(v) for v in (lo, hi)):
            raise ValidationError("Scale bounds must be finite.", "min")
        if not hi > lo:
            raise ValidationError("The scale's max must be greater than its min.", "max")
        points = (hi - lo) / step
        # checked before rounding: huge bounds or a tiny step overflow (hi - lo) / step to inf
        if not math.isfinite(points) or points > 1000.5:
            raise ValidationError("A scale may have at most 1000 steps.", "step")
        if abs(points - round(points)) > 1e-6:
            raise ValidationError("The scale's range (max - min) must be a whole number of steps.", "step")


class TraitSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    scale = fields.Nested(ScaleSchema, load_default=None, metadata={"description": "Defaults to the rubric's scale."})
    description = fields.String(load_default=None, validate=validate.Length(max=2000))


class RubricSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    prompt = fields.String(load_default="", validate=validate.Length(max=10_000))
    scale = fields.Nested(ScaleSchema, required=True)
    traits = fields.List(fields.Nested(TraitSchema), load_default=list, validate=validate.Length(max=12))
    always_score = fields.Boolean(metadata={"description": (
        "Give a score even where a review flag says it would be meaningless (empty, too short, word salad, "
        "nonsense, off-topic, copied prompt). Unset or false: such an essay's score and trait scores are null, "
        "with the reason first in review_reasons, and exports leave them blank.")})

    @validates_schema
    def _unique_traits(self, data, **_):
        names = [t["name"].strip().lower() for t in data.get("traits") or []]
        if len(names) != len(set(names)):
            raise ValidationError("Trait names must be unique.", "traits")


class EssaySchema(StrictSchema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=200),
                       metadata={"description": "Your id for the essay, unique within the job."})
    text = fields.String(required=True, metadata={
        "description": ("The essay. Empty or very short text is flagged for review and gets no score "
                        "(null) unless the rubric sets always_score.")})
    student_ref = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    assignment = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "The assignment the essay answers. With a student_ref, a later essay of the same student and "
                       "assignment is a new draft linked to the earlier one (results: previous_draft)."})

    @validates_schema
    def _length(self, data, **_):
        limit = settings().max_essay_chars
        if len(data.get("text") or "") > limit:
            raise ValidationError(f"The essay is {len(data['text'])} characters long; the limit is {limit}.", "text")


class ScoredExampleSchema(StrictSchema):
    text = fields.String(required=True, validate=validate.Length(min=1))
    score = fields.Float(required=True, allow_nan=False, metadata={"description": "On the rubric's scale and step."})
    traits = fields.Dict(keys=fields.String(), values=fields.Float(allow_nan=False), load_default=dict,
                         metadata={"description": "Trait name -> score on that trait's scale (any subset of the traits)."})

    @validates_schema
    def _length(self, data, **_):
        limit = settings().max_essay_chars
        if len(data.get("text") or "") > limit:
            raise ValidationError(f"The text is {len(data['text'])} characters long; the limit is {limit}.", "text")


def _scored_examples_field():
    return fields.List(fields.Nested(ScoredExampleSchema), load_default=list, metadata={
        "description": "Essays you scored yourself (not graded by this job): the default grader is calibrated with "
                       "them (docs/grading.md, 'Calibration by example'). At most EDUQ_CALIBRATION_MAX_EXAMPLES (500)."})


class GradingJobRequestSchema(StrictSchema):
    rubric = fields.Nested(RubricSchema, load_default=None,
                           metadata={"description": "Required with model 'default' unless rubric_id names a stored "
                                                    "rubric; a fine-tuned model brings its own."})
    rubric_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=40), metadata={
        "description": "A stored rubric (POST /api/v1/rubrics) instead of `rubric`: its scored examples calibrate "
                       "the default grader from the start, and this job's scores join them."})
    scored_examples = _scored_examples_field()
    follow_up = fields.Boolean(load_default=False, metadata={
        "description": "When the job has finished, make each student's next steps too (a follow_up job, linked from "
                       "this job's view as links.follow_ups)."})
    model = fields.String(load_default="default", validate=validate.Length(min=1, max=80), metadata={
        "description": "'default' (any rubric), a shipped per-prompt ASAP grader 'asap-1'..'asap-8' (brings its "
                       "own rubric: the prompt's score range and traits), or the id of a fine-tuned model; 'noop' (benchmark "
                       "only) where EDUQ_BENCH_MODE=1 is set."})
    essays = fields.List(fields.Nested(EssaySchema), required=True)
    callback_url = fields.Url(load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False,
                              validate=public_callback)

    @validates_schema
    def _check(self, data, **_):
        essays = data.get("essays") or []
        limit = settings().max_essays_per_job
        if not essays:
            raise ValidationError("A grading job needs at least one essay.", "essays")
        if len(essays) > limit:
            raise ValidationError(f"The job has {len(essays)} essays; the limit is {limit} per job.", "essays")
        seen: dict[str, int] = {}
        for i, e in enumerate(essays):
            if e["id"] in seen:
                raise ValidationError(f"Essay id {e['id']!r} appears at positions {seen[e['id']]} and {i}; "
                                      "ids must be unique in a job.", "essays")
            seen[e["id"]] = i
        if data.get("model", "default") == "default" and data.get("rubric") is None and not data.get("rubric_id"):
            raise ValidationError("A rubric (or a rubric_id) is required with the default model.", "rubric")
        if data.get("rubric") is not None and data.get("rubric_id"):
            raise ValidationError("Send either rubric or rubric_id, not both.", "rubric_id")
        cap = settings().calibration_max_examples
        if len(data.get("scored_examples") or []) > cap:
            raise ValidationError(f"{len(data['scored_examples'])} scored examples; the limit is {cap}.", "scored_examples")


class GradingMultipartSchema(Schema):
    """multipart/form-data: a CSV file with a header row (id, text, optional student_ref and assignment)."""

    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})
    rubric = fields.String(metadata={"description": "The rubric as JSON text (or rubric_id)."})
    rubric_id = fields.String(metadata={"description": "A stored rubric's id instead of rubric."})
    model = fields.String(load_default="default")
    callback_url = fields.String(load_default=None)
    follow_up = fields.String(metadata={"description": "true: each student's next steps when the job has finished."})


# ---- responses -------------------------------------------------------------------------

class ProgressSchema(Schema):
    done = fields.Integer()
    total = fields.Integer()
    failed = fields.Integer(metadata={"description": "Items that could not be processed (also counted in done)."})
    detail = fields.Dict(allow_none=True, metadata={"description": "Fine-tune jobs: stage (preparing, embedding, "
                         "training, evaluating, saving, done), epoch, step, loss, val_loss, val_qwk, best_val_qwk."})


class JobErrorSchema(Schema):
    code = fields.String()
    message = fields.String()


class JobLinksSchema(Schema):
    self = fields.String(data_key="self")
    results = fields.String()
    calibration_suggestions = fields.String(metadata={"description": "Grading jobs: GET, the essays to score first."})
    recalibrate = fields.String(metadata={"description": "Grading jobs: POST, regrade the class with your scores."})
    insights = fields.String(metadata={"description": "Grading jobs: GET, what the class needs."})
    reteach = fields.String(metadata={"description": "Grading jobs: POST, a lesson on the class's weakest trait."})
    feedback_sheets = fields.String(metadata={"description": "Grading jobs: GET, a .docx of every student's feedback."})
    follow_ups = fields.String(metadata={"description": "Grading jobs submitted with follow_up: the follow-up job."})
    grading_job = fields.String(metadata={"description": "Follow-up jobs: the grading job they follow."})


class JobViewSchema(Schema):
    id = fields.String()
    kind = fields.String(metadata={"enum": ["grading", "lesson", "fine_tune", "follow_up"]})
    status = fields.String(metadata={"enum": ["queued", "running", "succeeded", "failed", "cancelled"]})
    progress = fields.Nested(ProgressSchema)
    created_at = fields.String(metadata={"format": "date-time"})
    started_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    finished_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    error = fields.Nested(JobErrorSchema, allow_none=True)
    model = fields.String(allow_none=True)
    stage = fields.String(allow_none=True, metadata={"description": "Fine-tune jobs: the current stage."})
    rubric_id = fields.String(allow_none=True, metadata={"description": "Grading jobs on a stored rubric: its id."})
    grading_job = fields.String(allow_none=True, metadata={"description": "Follow-up jobs: the grading job they follow."})
    calibration = fields.Dict(allow_none=True, metadata={"description": (
        "Grading jobs calibrated by a teacher's scored examples: {id, examples, scored_holistic, recalibrates "
        "(the job this one regrades)}; null otherwise. Results name it in model_version.")})
    links = fields.Nested(JobLinksSchema)


class JobEnvelopeSchema(Schema):
    job = fields.Nested(JobViewSchema)


class JobListSchema(Schema):
    jobs = fields.List(fields.Nested(JobViewSchema))
    next_cursor = fields.String(allow_none=True)


class JobListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    kind = fields.String(validate=validate.OneOf(["grading", "lesson", "fine_tune", "follow_up"]))
    status = fields.String(validate=validate.OneOf(["queued", "running", "succeeded", "failed", "cancelled"]))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String()


class JobGetQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    # any N >= 0 is accepted and capped at EDUQ_LONG_POLL_MAX_S (jobs.get_job); negative, NaN or not a number: 422
    wait = fields.Float(validate=validate.Range(min=0, error="The wait must be a number of seconds, 0 or more."),
                        allow_nan=False, metadata={
                            "description": "Hold the request up to N seconds until the job changes or finishes. "
                                           "Any N >= 0 is accepted; the wait is capped at EDUQ_LONG_POLL_MAX_S "
                                           "(30 s by default)."})


class ResultsQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    cursor = fields.String()
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv", "docx", "canvas", "classroom"]),
                           metadata={"description": "json; csv (every column); docx (lesson plans); canvas or classroom "
                                                    "(grading jobs: a gradebook import CSV in that LMS's layout, the "
                                                    "scores that count)."})


class FeedbackSchema(Schema):
    trait = fields.String()
    comment = fields.String()
    evidence = fields.String(allow_none=True, metadata={
        "description": "The place in the essay the comment is about: an exact excerpt of its text."})


class GradingResultSchema(Schema):
    essay_id = fields.String()
    student_ref = fields.String(allow_none=True)
    text = fields.String(metadata={"description": "The essay as submitted (JSON results only; not in CSV)."})
    status = fields.String(metadata={"enum": ["graded", "failed"]})
    score = fields.Float(allow_none=True, metadata={"description": (
        "On the rubric's scale; null where a score would be meaningless (the reason is first in "
        "review_reasons) or the essay failed.")})
    traits = fields.Dict(keys=fields.String(), values=fields.Float(allow_none=True))
    confidence = fields.Float(allow_none=True)
    needs_review = fields.Boolean()
    review_reasons = fields.List(fields.String())
    feedback = fields.List(fields.Nested(FeedbackSchema))
    model_version = fields.String(allow_none=True)
    error = fields.String(allow_none=True)


class ResultsPageSchema(Schema):
    job = fields.Nested(JobViewSchema)
    results = fields.List(fields.Dict(), metadata={"description": "GradingResult or LessonResult objects, by job kind."})
    next_cursor = fields.String(allow_none=True)


class ErrorDetailSchema(Schema):
    field = fields.String()
    message = fields.String()
    line = fields.Integer()


class ErrorBodySchema(Schema):
    code = fields.String()
    message = fields.String()
    details = fields.List(fields.Dict())


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema)


# ---- lessons ------------------------------------------------------------------------------

GRADES = ["K"] + [str(i) for i in range(1, 13)]
LANGUAGES = ["en"]


class GradeLevel(fields.Field):
    """K-12 as "K", "k", "0"..."12" or a number; normalised to "K" or "1".."12"."""

    def _deserialize(self, value, attr, data, **kwargs):
        v = str(value).strip().upper() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
        if v in ("0", "K", "KG", "KINDERGARTEN"):
            return "K"
        if v and v.isdigit() and 1 <= int(v) <= 12:
            return str(int(v))
        raise ValidationError("The grade level must be K or a grade from 1 to 12.")

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class LessonRequestSchema(StrictSchema):
    topic = fields.String(required=True, validate=validate.Length(min=1, max=200))
    subject = fields.String(required=True, validate=validate.Length(min=1, max=100))
    grade_level = GradeLevel(required=True, metadata={"type": "string", "enum": GRADES})
    duration_minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=10, max=240))
    objectives = fields.List(fields.String(validate=validate.Length(min=1, max=300)), load_default=list,
                             validate=validate.Length(max=10))
    standards = fields.List(fields.String(validate=validate.Length(min=1, max=100)), load_default=list,
                            validate=validate.Length(max=20),
                            metadata={"description": "Copied into the plan as given; never invented."})
    language = fields.String(load_default="en", validate=validate.OneOf(LANGUAGES))
    notes = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))

    @validates_schema
    def _not_blank(self, data, **_):
        for name in ("topic", "subject"):
            if name in data and not data[name].strip():
                raise ValidationError(f"The {name} must not be blank.", name)


class SingleLessonJobSchema(LessonRequestSchema):
    callback_url = fields.Url(load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False,
                              validate=public_callback)


class LessonBatchJobSchema(StrictSchema):
    lessons = fields.List(fields.Nested(LessonRequestSchema), required=True)
    callback_url = fields.Url(load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False,
                              validate=public_callback)

    @validates_schema
    def _count(self, data, **_):
        n, limit = len(data.get("lessons") or []), settings().max_lessons_per_job
        if n == 0:
            raise ValidationError("A lesson job needs at least one plan.", "lessons")
        if n > limit:
            raise ValidationError(f"The job has {n} plans; the limit is {limit} per job.", "lessons")


# ---- fine-tuning and models ------------------------------------------------------------

class TrainingExampleSchema(StrictSchema):
    text = fields.String(required=True)
    score = fields.Float(required=True, allow_nan=False)
    traits = fields.Dict(keys=fields.String(), values=fields.Float(allow_nan=False), load_default=dict)
    demographics = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=40)),
                               values=fields.String(allow_none=True, validate=validate.Length(max=100)),
                               load_default=dict,
                               metadata={"description": "Optional subgroup labels (e.g. gender, ell, race_ethnicity) "
                                                        "for per-subgroup SMD on the validation split."})


class HyperparametersSchema(StrictSchema):
    epochs = fields.Integer(validate=validate.Range(min=1, max=500))
    learning_rate = fields.Float(validate=validate.Range(min=1e-7, max=1.0))
    batch_size = fields.Integer(validate=validate.Range(min=1, max=512))
    patience = fields.Integer(validate=validate.Range(min=1, max=100))
    max_steps = fields.Integer(validate=validate.Range(min=1, max=1_000_000))
    max_length = fields.Integer(validate=validate.Range(min=16, max=512))


FINE_TUNE_METHODS = ("auto", "stack", "head", "lora", "full")


class FineTuneJobRequestSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    rubric = fields.Nested(RubricSchema, load_default=None, metadata={"description": "Required unless rubric_id."})
    rubric_id = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=40),
                              metadata={"description": "A stored rubric (POST /api/v1/rubrics) instead of `rubric`."})
    examples = fields.List(fields.Nested(TrainingExampleSchema), required=True)
    base_model = fields.String(load_default="default", validate=validate.OneOf(["default"]))
    method = fields.String(load_default="auto", validate=validate.OneOf(list(FINE_TUNE_METHODS)), metadata={
        "description": "auto (default): stack on a CPU worker (head above EDUQ_STACK_MAX_EXAMPLES examples), the best "
                       "of stack, lora and full by validation QWK on a CUDA worker; stack: the ASAP graders' stacked "
                       "recipe; head: an MLP on frozen MiniLM embeddings; lora, full: encoder fine-tuning (GPUs)."})
    validation_fraction = fields.Float(load_default=0.2, validate=validate.Range(min=0.05, max=0.5))
    seed = fields.Integer(load_default=13, validate=validate.Range(min=0, max=2**31 - 1))
    hyperparameters = fields.Nested(HyperparametersSchema, load_default=dict)
    callback_url = fields.Url(load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False,
                              validate=public_callback)

    @validates_schema
    def _one_rubric(self, data, **_):
        if data.get("rubric") is None and not data.get("rubric_id"):
            raise ValidationError("A rubric (or a rubric_id) is required.", "rubric")
        if data.get("rubric") is not None and data.get("rubric_id"):
            raise ValidationError("Send either rubric or rubric_id, not both.", "rubric_id")


class FineTuneMultipartSchema(Schema):
    """multipart/form-data: a CSV (text, score, one column per trait, optional demographic columns)."""

    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})
    rubric = fields.String(required=True, metadata={"description": "The rubric as JSON text."})
    name = fields.String(required=True)
    method = fields.String(load_default="auto")
    base_model = fields.String(load_default="default")
    validation_fraction = fields.String(load_default="0.2")
    seed = fields.String(load_default="13")
    hyperparameters = fields.String(load_default=None, metadata={"description": "JSON object."})
    callback_url = fields.String(load_default=None)


class ModelViewSchema(Schema):
    id = fields.String()
    name = fields.String()
    status = fields.String(metadata={"enum": ["candidate", "active", "retired"]})
    rubric = fields.Dict()
    base_model = fields.String()
    method = fields.String()
    metrics = fields.Dict(allow_none=True)
    created_at = fields.String(metadata={"format": "date-time"})
    activated_at = fields.String(allow_none=True, metadata={"format": "date-time"})
    job_id = fields.String(allow_none=True)
    checksum = fields.String(allow_none=True)
    gate = fields.Dict(metadata={"description": "Whether the activation gate passes, and why."})


class ModelEnvelopeSchema(Schema):
    model = fields.Nested(ModelViewSchema)


class ModelListSchema(Schema):
    models = fields.List(fields.Nested(ModelViewSchema))
    next_cursor = fields.String(allow_none=True)


class ModelListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(validate=validate.OneOf(["candidate", "active", "retired"]))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String()


class ActivateSchema(StrictSchema):
    force = fields.Boolean(load_default=False)


# ---- stored rubrics and calibration ------------------------------------------------------

class RubricCreateSchema(RubricSchema):
    scored_examples = _scored_examples_field()

    @validates_schema
    def _cap(self, data, **_):
        cap = settings().calibration_max_examples
        if len(data.get("scored_examples") or []) > cap:
            raise ValidationError(f"{len(data['scored_examples'])} scored examples; the limit is {cap}.", "scored_examples")


class RubricCalibrationSchema(Schema):
    examples = fields.Integer(metadata={"description": "Scored essays kept with the rubric (scored examples and "
                                                       "teachers' scores of essays graded on it)."})
    fine_tune_suggested = fields.Boolean(metadata={"description": "True from EDUQ_CALIBRATION_FINE_TUNE_AT (150) "
                                                                  "examples: POST links.fine_tune trains a model on them."})
    fine_tune_at = fields.Integer()


class RubricViewSchema(Schema):
    id = fields.String()
    name = fields.String()
    prompt = fields.String()
    scale = fields.Nested(ScaleSchema)
    traits = fields.List(fields.Dict())
    always_score = fields.Boolean()
    calibration = fields.Nested(RubricCalibrationSchema)
    created_at = fields.String(metadata={"format": "date-time"})
    links = fields.Dict(keys=fields.String(), values=fields.String())


class RubricEnvelopeSchema(Schema):
    rubric = fields.Nested(RubricViewSchema)


class RubricListSchema(Schema):
    rubrics = fields.List(fields.Nested(RubricViewSchema))


class RubricFineTuneSchema(StrictSchema):
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=200))
    method = fields.String(load_default="auto", validate=validate.OneOf(list(FINE_TUNE_METHODS)))
    validation_fraction = fields.Float(load_default=0.2, validate=validate.Range(min=0.05, max=0.5))


class SuggestionQuerySchema(Schema):
    n = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class SuggestionSchema(Schema):
    essay_id = fields.String()
    why = fields.String()
    score = fields.Float(allow_none=True, metadata={"description": "The score the job gave it."})
    confidence = fields.Float(allow_none=True)


class SuggestionsSchema(Schema):
    job = fields.Dict()
    scored = fields.Integer(metadata={"description": "Essays of the job the teacher has scored already (left out)."})
    suggestions = fields.List(fields.Nested(SuggestionSchema))


class InsightsSchema(Schema):
    job = fields.Dict()
    graded = fields.Integer()
    holistic = fields.Dict(metadata={"description": "{scale, distribution: {score: count}, mean}"})
    traits = fields.Dict(metadata={"description": "trait -> {scale, distribution, mean}"})
    weakest = fields.List(fields.Dict(), metadata={"description": "[{trait, mean_level, students, of}], weakest first"})
    groups = fields.List(fields.Dict(), metadata={"description": "[{next_step, essay_ids, source}]"})
    review = fields.Dict()


class ProgressSchema_(Schema):
    student_ref = fields.String()
    assignments = fields.List(fields.Dict(), metadata={
        "description": "[{assignment, drafts: [{job_id, essay_id, score, traits, graded_at}]}], oldest draft first"})
