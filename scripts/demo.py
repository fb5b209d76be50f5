"""`make demo`: the main job end to end on the embedded default (SQLite + a file-system broker).

Starts the real API (gunicorn) and a real Celery worker process, creates a teacher, submits a class
of 20 sample essays (app/demo/, written for this project) and a lesson request, waits, prints results.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEMO = ROOT / "app" / "demo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    var = ROOT / "var" / "demo"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(EDUQ_VAR_DIR=str(var), PYTHONUNBUFFERED="1")
    print(f"== EduQueue demo: SQLite at {var/'eduq.db'}, file-system broker under {var/'broker'}")
    subprocess.run([str(BIN / "eduq"), "db", "upgrade"], env=env, check=True, cwd=ROOT)
    out = subprocess.run([str(BIN / "eduq"), "teachers", "create", "--email", "demo@example.org", "--name", "Demo Teacher",
                          "--school", "Demo Middle School"], env=env, check=True, cwd=ROOT, capture_output=True, text=True)
    token = out.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = var / "logs"
    logs.mkdir()
    procs = [
        subprocess.Popen([str(BIN / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "4", "-b", f"127.0.0.1:{port}",
                          "app.wsgi:app"], env=env, cwd=ROOT, stdout=open(logs / "api.log", "wb"),
                         stderr=subprocess.STDOUT, start_new_session=True),
        subprocess.Popen([str(BIN / "celery"), "-A", "workers.celery_app", "worker", "-Q", "grading,lessons,maintenance",
                          "-c", "1", "-P", "prefork", "-n", "demo@%h", "--without-gossip", "--without-mingle", "-l", "INFO"],
                         env=env, cwd=ROOT, stdout=open(logs / "worker.log", "wb"), stderr=subprocess.STDOUT,
                         start_new_session=True),
    ]
    try:
        for _ in range(100):
            try:
                if requests.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        print(f"== API on {base} (logs in {logs})")
        klass = json.loads((DEMO / "class_8b.json").read_text())
        lesson = json.loads((DEMO / "lesson_request.json").read_text())
        t0 = time.time()
        grading = requests.post(base + "/api/v1/grading-jobs", json=klass, headers=headers, timeout=30).json()["job"]
        print(f"== grading job {grading['id']}: {grading['progress']['total']} essays queued")
        lesson_job = requests.post(base + "/api/v1/lesson-jobs", json=lesson, headers=headers, timeout=30).json()["job"]
        print(f"== lesson job {lesson_job['id']}: 1 plan queued")
        grading = wait(base, grading, headers)
        print(f"== grading job {grading['status']} in {time.time() - t0:.1f}s")
        print_grades(base, grading, headers, klass)
        recalibrated = calibrate(base, grading, headers)
        lesson_job = wait(base, lesson_job, headers, timeout=900)
        print(f"== lesson job {lesson_job['status']} in {time.time() - t0:.1f}s")
        res = requests.get(base + lesson_job["links"]["results"], headers=headers, timeout=30).json()["results"]
        for r in res:
            print(r.get("markdown") or json.dumps(r, indent=2))
            if r.get("warnings"):
                print("warnings:", "; ".join(r["warnings"]))
        ok = all(j["status"] == "succeeded" for j in (grading, recalibrated, lesson_job))
        return 0 if ok else 1
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def calibrate(base, job, headers, n=5):
    """Calibration by example: the demo teacher scores the essays the API suggests, then the rest of the
    class is regraded with her scores (a job of its own); before and after, side by side."""
    mine = json.loads((DEMO / "teacher_scores_8b.json").read_text())["scores"]
    sug = requests.get(base + job["links"]["calibration_suggestions"] + f"?n={n}", headers=headers,
                       timeout=30).json()["suggestions"]
    print(f"== calibration by example: the teacher scores the {len(sug)} essays the API suggests")
    for s in sug:
        print(textwrap.fill(f"   {s['essay_id']}: she gives {mine[s['essay_id']]} ({s['why']})", 100, subsequent_indent="      "))
        r = requests.post(base + job["links"]["self"] + f"/results/{s['essay_id']}/override",
                          json={"score": mine[s["essay_id"]]}, headers=headers, timeout=30)
        r.raise_for_status()
    new = requests.post(base + job["links"]["recalibrate"], headers=headers, timeout=30).json()["job"]
    print(f"== recalibrated job {new['id']}: the class regraded with her {new['calibration']['examples']} scores")
    new = wait(base, new, headers)
    res = requests.get(base + new["links"]["results"] + "?limit=200", headers=headers, timeout=30).json()["results"]
    print(f"{'essay':7} {'before':>6} {'after':>6} {'teacher':>7}")
    for r in res:
        before, after = r["previous"]["score"], r["score"]
        flag = "  (scored by her: hers counts)" if r["final"]["source"] == "teacher" else ""
        print(f"{r['essay_id']:7} {'-' if before is None else f'{before:g}':>6} {'-' if after is None else f'{after:g}':>6} "
              f"{mine[r['essay_id']]:>7}{flag}")
    print("== (the teacher column is this demo's invented teacher; how much calibration gains on real essays and\n"
          "   prompts the grader never saw, by number of scored essays: docs/grading.md, 'Calibration by example')\n")
    return new


def wait(base, job, headers, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = requests.get(base + job["links"]["self"] + "?wait=20", headers=headers, timeout=40).json()["job"]
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        print(f"   {job['kind']}: {job['status']} {job['progress']['done']}/{job['progress']['total']}")
    raise SystemExit(f"timed out waiting for {job['id']}")


def print_grades(base, job, headers, klass):
    results = requests.get(base + job["links"]["results"] + "?limit=1000", headers=headers, timeout=30).json()["results"]
    traits = [t["name"] for t in klass["rubric"].get("traits", [])]
    head = f"{'essay':7} {'student':11} {'score':>5} " + " ".join(f"{t[:12]:>12}" for t in traits) + f" {'conf':>5}  review"
    print(f"\nRubric: {klass['rubric']['name']} (scale {klass['rubric']['scale']['min']:g}-{klass['rubric']['scale']['max']:g})")
    print(head)
    print("-" * len(head))
    def num(v, width):  # a withheld score (null) prints as a dash: the reason is in the review column
        return f"{'-':>{width}}" if v is None else f"{v:>{width}g}"

    for r in results:
        tr = " ".join(num(r["traits"].get(t), 12) for t in traits)
        review = "; ".join(r["review_reasons"]) if r["needs_review"] else ""
        ref = str(r.get("student_ref") or "")
        print(f"{r['essay_id']:7} {ref:11} {num(r['score'], 5)} {tr} {r['confidence']:>5.2f}  {review}")
    first = next((r for r in results if r["feedback"]), None)
    if first:
        print(f"\nFeedback for {first['essay_id']}:")
        for f in first["feedback"]:
            print(textwrap.fill(f"- [{f['trait']}] {f['comment']}", 100, subsequent_indent="  "))
    print()


if __name__ == "__main__":
    sys.exit(main())
