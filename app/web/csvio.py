"""CSV in and out with the standard library's csv module, errors reported by line number."""
from __future__ import annotations

import csv
import io
from typing import Iterable

from app.errors import ApiError


def decode_upload(raw: bytes, what: str = "file") -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ApiError(422, f"The CSV {what} is not UTF-8 text (first bad byte on line {line}).", "invalid_csv",
                       [{"field": what, "line": line, "message": "not valid UTF-8"}]) from e


def read_rows(text: str, required: Iterable[str], optional: Iterable[str] = (),
              what: str = "file", extra_ok: bool = True) -> list[tuple[int, dict[str, str]]]:
    """Parse a CSV with a header row. Returns [(line_number, row)] with header names lower-cased.

    Raises a 422 naming every unreadable row by its line number; nothing is accepted then.
    """
    required = [c.lower() for c in required]
    optional = [c.lower() for c in optional]
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ApiError(422, "The CSV file is empty; it needs a header row.", "invalid_csv",
                       [{"field": what, "line": 1, "message": "empty file"}]) from None
    except csv.Error as e:
        raise ApiError(422, f"The CSV header row cannot be read: {e}.", "invalid_csv",
                       [{"field": what, "line": 1, "message": str(e)}]) from e
    names = [h.strip().lower() for h in header]
    missing = [c for c in required if c not in names]
    if missing:
        raise ApiError(422, f"The CSV header row lacks the column(s): {', '.join(missing)}.", "invalid_csv",
                       [{"field": what, "line": 1, "message": f"missing column {c!r}"} for c in missing])
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    if dupes:
        raise ApiError(422, f"The CSV header repeats column(s): {', '.join(dupes)}.", "invalid_csv",
                       [{"field": what, "line": 1, "message": f"repeated column {c!r}"} for c in dupes])
    rows: list[tuple[int, dict[str, str]]] = []
    errors: list[dict] = []
    while True:
        start = reader.line_num + 1
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            errors.append({"field": what, "line": start, "message": f"cannot be read: {e}"})
            break  # the reader cannot resynchronise after a broken quote
        if not rec or all(not c.strip() for c in rec):
            continue  # blank line
        if len(rec) != len(names):
            errors.append({"field": what, "line": start,
                           "message": f"has {len(rec)} fields; the header has {len(names)}"})
            continue
        rows.append((start, {n: v for n, v in zip(names, rec) if n}))
    if errors:
        raise ApiError(422, f"{len(errors)} CSV row(s) cannot be read; nothing was queued. First: line "
                            f"{errors[0]['line']} {errors[0]['message']}.", "invalid_csv", errors)
    return rows


def write_csv(header: list[str], rows: Iterable[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    return buf.getvalue()
