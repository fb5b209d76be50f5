"""From grades to learning, read from Postgres: class insights, a re-teach request, each student's progress,
drafts linked to the earlier one, the gradebook exports and the class's feedback sheets.

Every score here is the one that counts: the teacher's override wherever she gave one, else the model's.
Nothing here runs a model (the patterns a re-teach lesson is told about come from feedback.analyse, the
same text measures the feedback comments quote).
"""
from __future__ import annotations

import io
import statistics
from collections import Counter

from sqlalchemy import select

from app.errors import ApiError
from app.lifecycle.followups import final_scores
from app.lifecycle.jobs import get_job, scoped
from app.store.accounts import Principal
from app.store.db import session_scope
from app.store.overrides import latest as latest_overrides
from app.store.tables import Essay, FollowUp, GradingResult, Job, utcnow
from app.store.views import iso, job_view
from app.web.csvio import write_csv
from workers.ml.grading.feedback import scale_level, trait_kind

WEAK = 0.5  # a trait score below the middle of its scale is a need


def graded(s, job: Job) -> list[tuple[Essay, GradingResult, dict]]:
    """(essay, result, the scores that count) of every graded essay of a grading job, in its order."""
    rows = s.execute(select(Essay, GradingResult).join(GradingResult, GradingResult.essay_id == Essay.id)
                     .where(Essay.job_id == job.id, Essay.status == "done").order_by(Essay.position)).all()
    ovr = latest_overrides(s, [e.id for e, _ in rows])
    return [(e, r, final_scores(r, ovr.get(e.id))) for e, r in rows]


def latest_follow_ups(s, essay_ids: list[str]) -> dict[str, dict]:
    """essay row id -> the newest finished follow-up result of it."""
    out: dict[str, dict] = {}
    if essay_ids:
        for f in s.scalars(select(FollowUp).where(FollowUp.essay_id.in_(essay_ids), FollowUp.status == "done")
                           .order_by(FollowUp.finished_at, FollowUp.id)):
            out[f.essay_id] = f.result or {}
    return out


def _grading_job(s, who: Principal, job_id: str) -> Job:
    job = get_job(s, job_id, who)
    if job.kind != "grading":
        raise ApiError(409, f"Job {job_id!r} is a {job.kind.replace('_', '-')} job; this needs a grading job.",
                       "not_a_grading_job")
    return job


def _dist(values: list[float]) -> dict[str, int]:
    c = Counter(values)
    return {f"{k:g}": c[k] for k in sorted(c)}


def _scale_of(rubric: dict, trait: str | None) -> dict:
    if trait is None:
        return rubric.get("scale") or {}
    return next((t.get("scale") for t in rubric.get("traits") or [] if t["name"] == trait), None) or rubric.get("scale") or {}


def patterns(texts: list[str]) -> dict:
    """What the class's essays show, counted (never a name or a sentence of anyone's), and their median
    reading grade (the follow-ups' measure, workers/ml/followups/build.py:writing_grade)."""
    from workers.ml.followups.build import writing_grade
    from workers.ml.grading.feedback import analyse

    n = len(texts)
    if not n:
        return {"essays": 0}
    a = [analyse(t) for t in texts]
    grades = [g for g in (writing_grade(t) for t in texts) if g is not None]
    miss = Counter()
    for e in a:
        miss.update({w: 1 for w, _c, _f in e["misspelled_examples"]})
    return {"essays": n,
            "with_misspellings": sum(1 for e in a if e["misspelled_total"]),
            "common_misspellings": [w for w, _ in miss.most_common(5) if miss[w] >= 2],
            "without_closing_sentence": sum(1 for e in a if not e["conclusion_cue"]),
            "few_linking_words": sum(1 for e in a if len(e["transitions"]) < 2),
            "without_examples": sum(1 for e in a if not sum(e["example_cues"].values())),
            "with_lowercase_sentence_starts": sum(1 for e in a if e["lowercase_starts"]),
            "with_very_long_sentences": sum(1 for e in a if e["long_sentences"]),
            "median_words": int(statistics.median(e["n_words"] for e in a)),
            "median_grade": statistics.median(grades) if grades else None}


def _read_class(who: Principal, job_id: str):
    """(the grading job's view, its rubric, its graded rows, their newest follow-ups): one read."""
    with session_scope() as s:
        job = _grading_job(s, who, job_id)
        rows = graded(s, job)
        return job_view(job), job.rubric or {}, rows, latest_follow_ups(s, [e.id for e, _, _ in rows])


def insights(who: Principal, job_id: str) -> dict:
    return _insights(*_read_class(who, job_id))


def _insights(view: dict, rubric: dict, rows: list, fus: dict) -> dict:
    traits = [t["name"] for t in rubric.get("traits") or []]
    hol = [f["score"] for _, _, f in rows if f["score"] is not None]
    out: dict = {"job": view, "graded": len(rows),
                 "holistic": {"scale": rubric.get("scale"), "distribution": _dist(hol),
                              "mean": round(statistics.fmean(hol), 2) if hol else None}, "traits": {}}
    levels: dict[str, list[tuple[str, float]]] = {}
    for t in traits:
        vals = [(e.client_id, f["traits"].get(t)) for e, _, f in rows if f["traits"].get(t) is not None]
        sc = _scale_of(rubric, t)
        out["traits"][t] = {"scale": sc, "distribution": _dist([v for _, v in vals]),
                            "mean": round(statistics.fmean(v for _, v in vals), 2) if vals else None}
        levels[t] = [(eid, scale_level(v, sc)) for eid, v in vals]
    weakest = []
    for t, lv in levels.items():
        if lv:
            weakest.append({"trait": t, "mean_level": round(statistics.fmean(x for _, x in lv), 3),
                            "students": sum(1 for _, x in lv if x < WEAK), "of": len(lv)})
    out["weakest"] = sorted(weakest, key=lambda w: (w["mean_level"], -w["students"]))
    groups: dict[str, list[str]] = {}
    for e, _, f in rows:
        fu = (fus.get(e.id) or {}).get("follow_up") or {}
        target = (fu.get("revision_target") or {}).get("trait")
        if target is None and traits:
            have = [(scale_level(f["traits"][t], _scale_of(rubric, t)), t) for t in traits if f["traits"].get(t) is not None]
            target = min(have)[1] if have else None
        groups.setdefault(target or "overall", []).append(e.client_id)
    out["groups"] = [{"next_step": k, "essay_ids": v, "source": "follow_ups" if fus else "lowest_trait"}
                     for k, v in sorted(groups.items(), key=lambda kv: -len(kv[1]))]
    reasons = Counter()
    flagged = 0
    for _, r, _ in rows:
        if r.needs_review:
            flagged += 1
            reasons.update({(x.split(":", 1)[0]).strip(): 1 for x in r.review_reasons or []})
    failed = view["progress"].get("failed", 0)
    out["review"] = {"needs_review": flagged, "reasons": dict(reasons.most_common()), "not_graded": failed,
                     "overridden": sum(1 for _, _, f in rows if f["source"] == "teacher")}
    return out


RETEACH_DURATION = 45


def reteach_request(who: Principal, job_id: str) -> dict:
    """A lesson-plan request aimed at the class's weakest trait, its notes the patterns the essays show."""
    view, rubric, rows, fus = _read_class(who, job_id)
    ins = _insights(view, rubric, rows, fus)
    if not ins["graded"]:
        raise ApiError(409, f"Job {job_id!r} has no graded essay yet.", "nothing_graded")
    texts = [e.text for e, _, _ in rows]
    weakest = ins["weakest"][0]["trait"] if ins["weakest"] else None
    kind = trait_kind(weakest) if weakest else None
    focus = (weakest or "the rubric's criteria").replace("_", " ")
    p = patterns(texts)
    notes = [f"Re-teach for a class of {p['essays']} graded essays on '{rubric.get('name', 'this task')}'."]
    if weakest:
        w = ins["weakest"][0]
        notes.append(f"Weakest trait: {focus} ({w['students']} of {w['of']} students in the lower half of its scale).")
    notes.append("What the essays show: " + "; ".join(x for x in (
        f"{p['with_misspellings']} with misspellings" + (f" (common: {', '.join(p['common_misspellings'])})"
                                                         if p["common_misspellings"] else ""),
        f"{p['without_closing_sentence']} without a closing sentence",
        f"{p['few_linking_words']} with few linking words",
        f"{p['without_examples']} without an example or reason cue",
        f"{p['with_lowercase_sentence_starts']} with sentences starting in lower case",
        f"{p['with_very_long_sentences']} with run-on sentences",
        f"median length {p['median_words']} words") if x) + ".")
    objective = {"conventions": "correct spelling, capitals and end punctuation in their own sentences",
                 "organization": "link ideas with transition words and end with a closing sentence",
                 "content": "support a claim with a reason and a specific example",
                 "sentence_fluency": "split run-on sentences and vary how sentences begin",
                 "word_choice": "replace vague words with exact ones",
                 "voice": "write with a clear personal view and a reason for it"}.get(kind or "", f"improve {focus}")
    grade = int(min(12, max(3, round(p["median_grade"])))) if p["median_grade"] is not None else 8
    return {"topic": f"Improving {focus} in our writing", "subject": "English Language Arts",
            "grade_level": str(grade), "duration_minutes": RETEACH_DURATION,
            "objectives": [f"Students will {objective}."], "notes": " ".join(notes)[:2000]}


def previous_drafts(s, essays: list[Essay]) -> dict[str, dict]:
    """essay row id -> its earlier draft's scores and the change per trait since (the revision loop)."""
    prev_ids = {e.id: e.previous_draft_id for e in essays if e.previous_draft_id}
    if not prev_ids:
        return {}
    rows = s.execute(select(Essay, GradingResult).outerjoin(GradingResult, GradingResult.essay_id == Essay.id)
                     .where(Essay.id.in_(list(prev_ids.values())))).all()
    got = {e.id: (e, r) for e, r in rows}
    ovr = latest_overrides(s, list(got) + list(prev_ids))
    fus = latest_follow_ups(s, list(got))
    this = {e.id: e for e in essays}
    cur_res = {r.essay_id: r for r in s.scalars(select(GradingResult).where(GradingResult.essay_id.in_(list(prev_ids))))}
    out = {}
    for eid, pid in prev_ids.items():
        if pid not in got:
            continue
        pe, pr = got[pid]
        before = final_scores(pr, ovr.get(pid))
        now = final_scores(cur_res.get(eid), ovr.get(eid))
        change = {t: round(now["traits"][t] - v, 4) for t, v in before["traits"].items()
                  if v is not None and now["traits"].get(t) is not None}
        if before["score"] is not None and now["score"] is not None:
            change["score"] = round(now["score"] - before["score"], 4)
        target = (((fus.get(pid) or {}).get("follow_up") or {}).get("revision_target") or {}).get("trait")
        out[eid] = {"essay_id": pe.client_id, "job_id": pe.job_id, "assignment": this[eid].assignment,
                    "score": before["score"], "traits": before["traits"], "change": change, "target_trait": target,
                    "target_improved": (change[target] > 0) if target in change else None}
    return out


def link_drafts(s, who: Principal, essays: list[dict]) -> dict[tuple[str, str], str]:
    """(student_ref, assignment) -> the id of that student's latest earlier essay of the assignment,
    among the submitting teacher's jobs (an admin: the school's)."""
    pairs = {(e["student_ref"], e["assignment"]) for e in essays if e.get("student_ref") and e.get("assignment")}
    if not pairs:
        return {}
    refs = sorted({p[0] for p in pairs})
    q = scoped(select(Essay.id, Essay.student_ref, Essay.assignment, Essay.created_at).join(Job, Job.id == Essay.job_id)
               .where(Job.kind == "grading", Essay.student_ref.in_(refs), Essay.assignment.isnot(None)), who) \
        .order_by(Essay.created_at, Essay.id)
    out: dict[tuple[str, str], str] = {}
    for eid, ref, assignment, _ in s.execute(q):
        if (ref, assignment) in pairs:
            out[(ref, assignment)] = eid  # oldest first: the latest wins
    return out


def progress(who: Principal, student_ref: str) -> dict:
    with session_scope() as s:
        q = scoped(select(Essay, GradingResult, Job.finished_at).join(Job, Job.id == Essay.job_id)
                   .join(GradingResult, GradingResult.essay_id == Essay.id)
                   .where(Job.kind == "grading", Essay.student_ref == student_ref, Essay.status == "done"), who) \
            .order_by(GradingResult.created_at, Essay.id)
        rows = s.execute(q).all()
        ovr = latest_overrides(s, [e.id for e, _, _ in rows])
        by: dict[str | None, list] = {}
        for e, r, _fin in rows:
            f = final_scores(r, ovr.get(e.id))
            by.setdefault(e.assignment, []).append({"job_id": e.job_id, "essay_id": e.client_id, "score": f["score"],
                                                    "traits": f["traits"], "graded_at": iso(r.created_at)})
    order = sorted(by.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    return {"student_ref": student_ref, "assignments": [{"assignment": a, "drafts": d} for a, d in order]}


# ---------------------------------------------------------------- exports

def _rows_for_export(who: Principal, job_id: str):
    with session_scope() as s:
        job = _grading_job(s, who, job_id)
        rows = [(e.client_id, e.student_ref, f) for e, _, f in graded(s, job)]
        return job, rows


def _num(v) -> str:
    return "" if v is None else f"{v:g}"


def canvas_csv(who: Principal, job_id: str) -> tuple[str, str]:
    """Canvas's gradebook import layout: Student, ID, SIS User ID, SIS Login ID, Section, then one column per
    assignment ("<name> (<id>)"), a "Points Possible" row first. student_ref goes in SIS User ID (Canvas
    matches students on it); an essay without one is named by its essay id."""
    job, rows = _rows_for_export(who, job_id)
    rubric = job.rubric or {}
    column = f"{rubric.get('name', 'Essay')} ({job.id})"
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column]
    out = [["Points Possible", "", "", "", "", _num((rubric.get("scale") or {}).get("max"))]]
    for essay_id, ref, f in rows:
        out.append([ref or essay_id, "", ref or "", "", "", _num(f["score"])])
    return f"{job.id}-canvas.csv", write_csv(header, out)


def classroom_csv(who: Principal, job_id: str) -> tuple[str, str]:
    """Google Classroom's grade layout: Last Name, First Name, Email Address, then the assignment's points
    (a "Points" row first). A student_ref with an @ is the email address; any other names the row as Last Name."""
    job, rows = _rows_for_export(who, job_id)
    rubric = job.rubric or {}
    title = rubric.get("name", "Essay")
    header = ["Last Name", "First Name", "Email Address", title]
    out = [["Points", "", "", _num((rubric.get("scale") or {}).get("max"))]]
    for essay_id, ref, f in rows:
        email = ref if ref and "@" in ref else ""
        out.append([(ref or essay_id) if not email else "", "", email, _num(f["score"])])
    return f"{job.id}-classroom.csv", write_csv(header, out)


def feedback_sheets(who: Principal, job_id: str) -> tuple[str, bytes]:
    """One .docx for the class: a page per student with the score and trait scores that count, strengths,
    next steps and exercises (the newest follow-ups; the grading feedback where there are none)."""
    from docx import Document
    from docx.enum.text import WD_BREAK

    with session_scope() as s:
        job = _grading_job(s, who, job_id)
        rows = graded(s, job)
        fus = latest_follow_ups(s, [e.id for e, _, _ in rows])
        rubric = job.rubric or {}
        data = [(e.client_id, e.student_ref, f, r.feedback or [], (fus.get(e.id) or {}).get("follow_up")) for e, r, f in rows]
    doc = Document()
    for n, (essay_id, ref, f, feedback, fu) in enumerate(data):
        doc.add_heading(f"{rubric.get('name', 'Essay')}: feedback for {ref or essay_id}", level=1)
        sc = rubric.get("scale") or {}
        doc.add_paragraph(f"Score: {_num(f['score']) or 'not scored'} (scale {_num(sc.get('min'))}-{_num(sc.get('max'))})"
                          + ("; given by your teacher" if f["source"] == "teacher" else ""))
        for t, v in f["traits"].items():
            doc.add_paragraph(f"{t.replace('_', ' ')}: {_num(v) or 'not scored'}", style="List Bullet")
        if fu:
            doc.add_heading("What you did well", level=2)
            for x in fu.get("strengths") or []:
                doc.add_paragraph(x["comment"], style="List Bullet")
            doc.add_heading("Your next steps", level=2)
            for x in fu.get("next_steps") or []:
                doc.add_paragraph(x["target"], style="List Bullet")
            doc.add_heading("Practice", level=2)
            for i, x in enumerate(fu.get("exercises") or [], 1):
                doc.add_paragraph(f"{i}. {x['instructions']}")
        else:
            doc.add_heading("Feedback", level=2)
            for x in feedback:
                doc.add_paragraph(f"{x.get('trait')}: {x.get('comment')}", style="List Bullet")
        if n < len(data) - 1:
            doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    if data and any(d[4] for d in data):
        doc.add_page_break()
        doc.add_heading("Answer key (for the teacher)", level=1)
        for essay_id, ref, _f, _fb, fu in data:
            for i, x in enumerate((fu or {}).get("exercises") or [], 1):
                doc.add_paragraph(f"{ref or essay_id}, practice {i}: {x['answer']}")
    buf = io.BytesIO()
    doc.core_properties.title = f"Feedback sheets, {job_id}"
    doc.core_properties.created = utcnow()
    doc.save(buf)
    return f"{job_id}-feedback.docx", buf.getvalue()
