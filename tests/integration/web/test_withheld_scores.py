"""A withheld score end to end below the model: submitted through the API, claimed and written as a
worker writes it (score and traits null), read back as JSON (null, the reason first, the essay's text)
and as CSV (blank cells, never a number); an override gives the teacher's score, which counts."""
from __future__ import annotations

import csv
import io

from app.lifecycle import claims
from app.store.db import session_scope
from app.store.tables import Essay
from tests.conftest import RUBRIC

REASON = "too short: 3 words (under 20), too little text to grade reliably"


def test_a_withheld_score_is_null_in_json_blank_in_csv_and_an_override_counts(client, teacher, clean_queue):
    trait = RUBRIC["traits"][0]["name"]
    essays = [{"id": "short", "text": "Uniforms are good."},
              {"id": "full", "text": "Uniforms help families because they cost less than new clothes every term."}]
    job = client.post("/api/v1/grading-jobs", json={"rubric": RUBRIC, "essays": essays},
                      headers=teacher["headers"]).get_json()["job"]
    batch = claims.claim("grading", 10, 60, 3, worker="W")
    assert len(batch) == 2
    by_client = {}
    with session_scope() as s:
        for item in batch.items:
            by_client[s.get(Essay, item.id).client_id] = item.id
    results = {
        by_client["short"]: {"score": None, "traits": {trait: None}, "confidence": 0.0, "needs_review": True,
                             "review_reasons": [REASON], "feedback": [], "model_version": "unit"},
        by_client["full"]: {"score": 4.0, "traits": {trait: 3.0}, "confidence": 0.6, "needs_review": False,
                            "review_reasons": [], "feedback": [], "model_version": "unit"},
    }
    assert claims.write_grading_results(batch.items, results, worker="W") == 2

    page = client.get(job["links"]["results"], headers=teacher["headers"]).get_json()
    assert page["job"]["status"] == "succeeded"
    short, full = page["results"]
    assert short["essay_id"] == "short" and short["score"] is None and short["traits"] == {trait: None}
    assert short["review_reasons"][0] == REASON and short["needs_review"] and short["text"] == essays[0]["text"]
    assert full["score"] == 4.0 and full["text"] == essays[1]["text"]

    rows = list(csv.DictReader(io.StringIO(client.get(job["links"]["results"] + "?format=csv",
                                                      headers=teacher["headers"]).get_data(as_text=True))))
    assert rows[0]["score"] == "" and rows[0][f"trait_{trait}"] == "" and rows[0]["status"] == "graded"
    assert rows[1]["score"] == "4" and "text" not in rows[0]

    r = client.post(f"/api/v1/jobs/{job['id']}/results/short/override", json={"score": 2, "note": "read it"},
                    headers=teacher["headers"])
    assert r.status_code in (200, 201), r.get_data(as_text=True)
    again = client.get(job["links"]["results"], headers=teacher["headers"]).get_json()["results"][0]
    assert again["score"] is None and again["override"]["score"] == 2.0  # the model's null is kept beside it
    rows = list(csv.DictReader(io.StringIO(client.get(job["links"]["results"] + "?format=csv",
                                                      headers=teacher["headers"]).get_data(as_text=True))))
    assert rows[0]["score"] == "" and rows[0]["override_score"] == "2"
