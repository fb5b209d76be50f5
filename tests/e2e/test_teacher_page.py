"""The teacher page in headless Chromium (selenium + Debian's chromium/chromium-driver, offline),
against a real gunicorn API and a real Celery grading worker with the real grader model.

Install the browser with `bash scripts/ensure_browser.sh`. Without it this test FAILS (never skips).
Screenshots are saved under the pytest tmp dir; their paths are printed.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import time
from html.parser import HTMLParser

import pytest
import requests

from tests.conftest import make_teacher

pytestmark = pytest.mark.e2e

CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                "--window-size=1400,2200"]

# Three short essays, written for this test.
ESSAYS = [
    ("I think school uniforms are a good idea. When everyone wears the same clothes, nobody gets teased "
     "for not having expensive brands. Mornings are also faster because you do not have to choose an outfit. "
     "For these reasons our school should keep uniforms."),
    ("Uniforms take away our freedom to express who we are. Clothes are one way students show their "
     "personality, and a uniform hides that. They also cost money that some families do not have. "
     "I believe the school should let us choose what to wear."),
    "uniforms r ok i guess. sometimes itchy.",
]


def _find(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


@pytest.fixture()
def browser(tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:  # pragma: no cover - the dev extra installs it
        pytest.fail(f"selenium is not installed ({e}); run `.venv/bin/pip install -e '.[dev]'`.")
    chrome = _find("chromium", "chromium-browser", "google-chrome")
    driver_bin = _find("chromedriver")
    if not chrome or not driver_bin:
        pytest.fail("Headless Chromium is required for the teacher-page test but was not found "
                    f"(chromium: {chrome}, chromedriver: {driver_bin}). Install it with "
                    "`bash scripts/ensure_browser.sh` (apt-get install chromium chromium-driver, as root).")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium manager is never needed: paths are given
    try:
        drv = webdriver.Chrome(service=Service(executable_path=driver_bin), options=opts)
    except Exception as e:  # noqa: BLE001 - any start failure is reported as a failure
        pytest.fail(f"Chromium could not be started by chromedriver: {e}")
    drv.downloads = downloads
    yield drv
    drv.quit()


def shot(drv, tmp_path, name):
    path = tmp_path / f"{name}.png"
    drv.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def wait_until(fn, timeout, what, drv=None, tmp_path=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - element not there yet / stale
            last = e
        time.sleep(0.3)
    if drv is not None and tmp_path is not None:
        shot(drv, tmp_path, "timeout")
        status = drv.find_element("id", "status").text
        alert = drv.find_element("id", "alert").text
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; status={status!r} alert={alert!r} last={last!r}")
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last={last!r}")


class _Fields(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields, self.labels = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.labels.add(a["for"])
        if tag in ("input", "textarea", "select") and a.get("type") != "hidden":
            self.fields.append(a.get("id"))


def test_page_is_served_offline_with_every_field_labelled(client):
    for path in ("/", "/app"):
        r = client.get(path)
        assert r.status_code == 200 and r.mimetype == "text/html"
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    html = client.get("/").get_data(as_text=True)
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "no CDN or remote assets"
    p = _Fields()
    p.feed(html)
    assert p.fields and all(f and f in p.labels for f in p.fields), (p.fields, p.labels)
    assert 'aria-live="polite"' in html and 'role="alert"' in html
    js = client.get("/app/static/teacher.js")
    assert js.status_code == 200 and "sessionStorage" in js.get_data(as_text=True)
    assert client.get("/app/static/teacher.css").status_code == 200


def test_teacher_signs_in_grades_a_class_overrides_and_exports(live_api, grading_worker, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    drv = browser
    _, token = make_teacher()
    drv.get(live_api + "/")
    assert "EduQueue" in drv.title

    # sign in with the keyboard
    tok = drv.find_element(By.ID, "token")
    tok.send_keys(token)
    tok.send_keys(Keys.ENTER)
    wait_until(lambda: drv.find_element(By.ID, "app").is_displayed(), 20, "the signed-in page", drv, tmp_path)
    assert drv.execute_script("return sessionStorage.getItem('eduq.token')") == token
    # every visible form control has a <label>, checked in the browser too
    unlabelled = drv.execute_script(
        "return Array.from(document.querySelectorAll('input,textarea,select'))"
        ".filter(e => e.type !== 'hidden' && e.labels.length === 0).map(e => e.id)")
    assert unlabelled == []
    shot(drv, tmp_path, "1-signed-in")

    # paste three essays, blank-line separated, and submit
    box = drv.find_element(By.ID, "essays-text")
    box.send_keys("\n\n".join(ESSAYS))
    drv.find_element(By.ID, "grade-submit").send_keys(Keys.ENTER)
    wait_until(lambda: drv.find_element(By.ID, "job-id").text, 30, "the job id", drv, tmp_path)
    job_id = drv.find_element(By.ID, "job-id").text
    print(f"job: {job_id}")

    # progress comes by long polling; wait for the scores
    wait_until(lambda: drv.find_element(By.ID, "job-status").text in ("succeeded", "failed", "cancelled"),
               300, "the job to finish", drv, tmp_path)
    assert drv.find_element(By.ID, "job-status").text == "succeeded"
    rows = wait_until(lambda: (r := drv.find_elements(By.CSS_SELECTOR, "#results-body tr")) and len(r) == 3 and r,
                      30, "three result rows", drv, tmp_path)
    scores = {r.get_attribute("data-essay"): r.find_element(By.CSS_SELECTOR, "td.score").text for r in rows}
    assert set(scores) == {"essay-1", "essay-2", "essay-3"}
    assert all(re.fullmatch(r"\d+(\.\d+)?", s) for s in scores.values()), scores
    assert "succeeded" in drv.find_element(By.ID, "status").text
    shot(drv, tmp_path, "2-scores")

    # override essay-2 through the keyboard-usable form
    model = float(scores["essay-2"])
    new = 5.0 if model != 5 else 4.0
    button = drv.find_element(By.CSS_SELECTOR, 'tr[data-essay="essay-2"] .override-button')
    button.send_keys(Keys.ENTER)
    score = wait_until(lambda: (e := drv.find_element(By.ID, "override-score")).is_displayed() and e, 10,
                       "the override form", drv, tmp_path)
    assert drv.switch_to.active_element == score  # focus moved into the form
    score.clear()
    score.send_keys(f"{new:g}")
    drv.find_element(By.ID, "override-note").send_keys("Clear position and two reasons.")
    drv.find_element(By.ID, "override-save").send_keys(Keys.ENTER)
    cell = wait_until(lambda: drv.find_element(By.CSS_SELECTOR, 'tr[data-essay="essay-2"] td.override').text,
                      20, "the override in the table", drv, tmp_path)
    assert cell.startswith(f"{new:g} by ") and "Clear position" in cell
    assert "Override saved" in drv.find_element(By.ID, "status").text
    shot(drv, tmp_path, "3-override")

    # the CSV: downloaded by the page, and read through the API
    drv.find_element(By.ID, "download-csv").click()
    files = wait_until(lambda: [p for p in drv.downloads.glob("*.csv")], 20, "the CSV download", drv, tmp_path)
    print(f"downloaded: {files[0]}")
    r = requests.get(f"{live_api}/api/v1/jobs/{job_id}/results?format=csv",
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200
    for text in (r.text, files[0].read_text(encoding="utf-8")):
        rows = {row["essay_id"]: row for row in csv.DictReader(io.StringIO(text))}
        assert float(rows["essay-2"]["override_score"]) == new
        assert rows["essay-2"]["override_by"].endswith("@example.org") and rows["essay-2"]["override_at"]
        assert float(rows["essay-2"]["score"]) == model  # the model's score stays beside it
        assert rows["essay-1"]["override_score"] == ""
    shot(drv, tmp_path, "4-downloaded")

    # sign out clears the token
    drv.find_element(By.ID, "signout-button").send_keys(Keys.ENTER)
    assert drv.execute_script("return sessionStorage.getItem('eduq.token')") is None
