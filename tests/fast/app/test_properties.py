"""Property tests: CSV parsing (app/web/csvio.py), rubric scales (app/web/schemas.py ScaleSchema)
and the mapping of predictions onto a scale (workers/ml/grading/default.py:map_to_scale)."""
from __future__ import annotations

import csv
import io
import math

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.errors import ApiError
from app.web.csvio import decode_upload, read_rows, write_csv
from app.web.schemas import ScaleSchema

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@SETTINGS
@given(st.lists(st.tuples(cell, cell, cell), min_size=1, max_size=20))
def test_csv_round_trip(rows):
    assume(all(any(c.strip() for c in r) for r in rows))  # blank lines are skipped by design
    text = write_csv(["id", "text", "student_ref"], [list(r) for r in rows])
    got = read_rows(text, ["id", "text"], ["student_ref"])
    assert [tuple(r[k] for k in ("id", "text", "student_ref")) for _, r in got] == rows
    lines = [line for line, _ in got]
    assert lines == sorted(lines) and lines[0] >= 2  # line numbers point into the file, after the header


@SETTINGS
@given(st.lists(st.tuples(cell, cell), min_size=1, max_size=10), st.integers(0, 9))
def test_csv_bad_row_reported_by_line(rows, bad):
    assume(all(any(c.strip() for c in r) for r in rows) and all("\n" not in a + b and "\r" not in a + b for a, b in rows))
    bad = bad % len(rows)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "text"])
    for i, r in enumerate(rows):
        w.writerow(list(r) + (["extra"] if i == bad else []))
    with pytest.raises(ApiError) as e:
        read_rows(buf.getvalue(), ["id", "text"])
    assert e.value.status == 422
    assert e.value.details[0]["line"] == bad + 2


@SETTINGS
@given(st.binary(max_size=200))
def test_csv_any_bytes_parse_or_422(raw):
    try:
        text = decode_upload(raw)
        read_rows(text, ["id", "text"])
    except ApiError as e:
        assert e.status == 422 and e.details and all("line" in d for d in e.details)


@SETTINGS
@given(st.text(max_size=300))
def test_csv_any_text_parse_or_422(text):
    try:
        rows = read_rows(text, ["id", "text"])
    except ApiError as e:
        assert e.status == 422 and e.details
    else:
        assert all({"id", "text"} <= set(r) for _, r in rows)


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@SETTINGS
@given(finite, st.integers(1, 1000), st.sampled_from([0.25, 0.5, 1.0, 2.0, 5.0]))
def test_scale_whole_steps_accepted(lo, n, step):
    lo = round(lo, 2)
    data = ScaleSchema().load({"min": lo, "max": lo + n * step, "step": step})
    assert data["max"] > data["min"]


@SETTINGS
@given(st.one_of(finite, st.just(float("nan")), st.just(float("inf"))), st.one_of(finite, st.just(float("inf"))),
       st.one_of(st.floats(allow_nan=True), st.just(0.0), st.just(-1.0)))
@example(0.0, 1.0, 5e-324)  # (max - min) / step overflows to inf: was an OverflowError (a 500), now a 422
@example(-1e6, 1e6, 1e-300)
def test_scale_load_never_crashes_and_accepted_scales_are_sane(lo, hi, step):
    try:
        d = ScaleSchema().load({"min": lo, "max": hi, "step": step})
    except ValidationError:
        return
    assert math.isfinite(d["min"]) and math.isfinite(d["max"]) and d["max"] > d["min"] and d["step"] > 0
    points = (d["max"] - d["min"]) / d["step"]
    assert abs(points - round(points)) <= 1e-6 and round(points) <= 1000


@SETTINGS
@given(st.integers(-50, 50), st.integers(1, 200), st.sampled_from([0.5, 1.0, 0.25, 2.0]),
       st.floats(allow_nan=False, allow_infinity=False, min_value=-10, max_value=10))
def test_map_to_scale_on_scale(lo, n, step, x):
    from workers.ml.grading import default
    scale = {"min": float(lo), "max": lo + n * step, "step": step}
    y = default.map_to_scale(x, scale)
    assert scale["min"] <= y <= scale["max"]
    k = (y - scale["min"]) / step
    assert abs(k - round(k)) < 1e-6
    if x <= 0:
        assert y == scale["min"]
    if x >= 1:
        assert y == scale["max"]


@SETTINGS
@given(st.floats(0, 1), st.floats(0, 1))
def test_map_to_scale_monotone(a, b):
    from workers.ml.grading import default
    scale = {"min": 1, "max": 6, "step": 0.5}
    lo, hi = sorted((a, b))
    assert default.map_to_scale(lo, scale) <= default.map_to_scale(hi, scale)
