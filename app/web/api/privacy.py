"""DELETE /api/v1/students/{student_ref}: erase what is stored for one student (right to erasure)."""
from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.errors import ApiError
from app.lifecycle.retention import delete_student
from app.web.auth import current, login_required

blp = Blueprint("privacy", __name__, url_prefix="/api/v1",
                description="Delete a student's essays, results and overrides.")


class DeletedCountsSchema(Schema):
    essays = fields.Integer()
    results = fields.Integer()
    overrides = fields.Integer()
    calibration_examples = fields.Integer(metadata={"description": "Copies of the student's essays in calibrations."})
    jobs_affected = fields.Integer()


class StudentDeletionSchema(Schema):
    student_ref = fields.String()
    deleted = fields.Nested(DeletedCountsSchema)


@blp.route("/students/<path:student_ref>", methods=["DELETE"])
@login_required
@blp.response(200, StudentDeletionSchema)
@blp.doc(summary="Delete everything stored for a student_ref within your tenancy (teacher: your jobs; "
                 "admin: your school's), returning counts. Deleting again answers zeros.",
         security=[{"bearerAuth": []}])
def delete_student_data(student_ref: str):
    if not student_ref.strip() or len(student_ref) > 200:
        raise ApiError(422, "student_ref must be 1 to 200 characters.", "validation_error",
                       [{"field": "student_ref", "message": "A student_ref must be 1 to 200 characters long."}])
    return delete_student(current(), student_ref)


def init_app(api) -> None:
    api.register_blueprint(blp)
