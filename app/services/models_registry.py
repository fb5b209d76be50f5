"""Which grader a grading job uses. 'default' is the general grader for any rubric."""
from __future__ import annotations

from ..auth import Principal
from ..errors import ApiError

BUILTIN_GRADERS = {"default"}


def resolve_grading_model(who: Principal, model: str, rubric: dict | None) -> tuple[str, dict]:
    """Return (model id, rubric to grade against) or a 422 naming the problem."""
    if model in BUILTIN_GRADERS:
        if rubric is None:
            raise ApiError(422, "A rubric is required with the default model.", "validation_error",
                           [{"field": "rubric", "message": "Missing data for required field."}])
        return model, rubric
    raise ApiError(422, f"Unknown model {model!r}: use 'default' or the id of one of your fine-tuned models.",
                   "validation_error", [{"field": "model", "message": f"unknown model {model!r}"}])
