"""The teacher page in headless Chromium (selenium + Debian's chromium/chromium-driver, offline),
against a real gunicorn API and a real Celery grading worker with the real grader model.

Install the browser with `bash scripts/ensure_browser.sh`. Without it this test FAILS (never skips).
Screenshots are saved under the pytest tmp dir (each test's tmp_path); their paths are printed
(`pytest -s` or `-rA` shows them) and each is checked: a PNG of the window's size, not blank.
"""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import struct
import time
import zlib
from html.parser import HTMLParser

import pytest
import requests

from tests.conftest import make_teacher

pytestmark = pytest.mark.e2e

WINDOW = (1400, 2200)
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1"]

# A class of four, written for this test: three letters of several paragraphs each (blank lines between
# the paragraphs: one essay per box, never one per paragraph) and one of three words.
LETTER_A = (
    "Dear Editor,\n\n"
    "I am writing because our school board wants to end the uniform rule, and I think that would be a "
    "mistake. When everyone wears the same navy sweater, nobody is judged for wearing cheap shoes or the "
    "same jacket three days in a row.\n\n"
    "Uniforms also save time. My little brother used to change his shirt four times before the bus came. "
    "Now he gets dressed in two minutes and we are never late.\n\n"
    "Finally, a uniform makes us feel like one team when we travel to games and concerts. Please keep the "
    "rule.\n\n"
    "Yours, a grade 8 student")
LETTER_B = (
    "To the newspaper:\n\n"
    "Students should be allowed to choose their own clothes. What we wear is one of the few ways we can "
    "show who we are, and a uniform takes that away at the age when we are figuring it out.\n\n"
    "Uniforms are not cheap either. A family with three children has to buy a full set for each of them "
    "every year, and the school shop charges much more than a normal store.\n\n"
    "A simple dress code that bans offensive slogans would solve the real problems without making "
    "everybody look the same.")
LETTER_C = (
    "Some people say uniforms stop bullying, but I do <em>not</em> agree & here is why.\n\n"
    "Bullies always find something else to pick on, like your hair, your phone or your lunch. Changing "
    "the clothes does not change the people.\n"
    "In my old school we had uniforms and the teasing was just as bad.\n\n"
    "So the money would be better spent on a counsellor and on clubs where students get to know each other.")
SHORT = "Uniforms are bad."  # three words: too short to grade meaningfully
CLASS = [  # (essay id expected, student ref typed, text)
    ("essay-1", "S-01", LETTER_A),
    ("letter-b", "S-02", LETTER_B),
    ("essay-3", "", LETTER_C),
    ("essay-4", "", SHORT),
]
IDS = [c[0] for c in CLASS]


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


def png_size_and_pixels(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, the decompressed scanlines) of a PNG, read with the standard library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, width, height, idat = 8, 0, 0, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def check_screenshot(drv, path):
    """The PNG exists, is not a trivial or blank image, and is exactly the browser window's viewport."""
    assert path.is_file(), path
    data = path.read_bytes()
    assert len(data) > 30_000, f"{path} is only {len(data)} bytes"
    width, height, pixels = png_size_and_pixels(data)
    vw, vh, dpr = drv.execute_script("return [window.innerWidth, window.innerHeight, window.devicePixelRatio]")
    assert (width, height) == (round(vw * dpr), round(vh * dpr)), ((width, height), (vw, vh, dpr))
    # the viewport is the window less what headless Chromium keeps for its (invisible) toolbar
    assert width == WINDOW[0] and WINDOW[1] - 300 < height <= WINDOW[1], ((width, height), WINDOW)
    assert len(set(pixels[::101])) > 20, f"{path} looks blank"


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


def fmt(x) -> str:
    """A number as the page writes it (rounded to 2 places, no trailing zeros)."""
    return f"{round(x * 100) / 100:g}"


def check_reader(drv, r, text):
    """The reading view shows essay r (an API result): its full text (as text), scores, flags, feedback."""
    from selenium.webdriver.common.by import By

    eid = r["essay_id"]
    assert drv.find_element(By.ID, "reader-essay").text == eid
    assert drv.execute_script("return document.getElementById('reader-text').textContent") == text
    assert drv.execute_script("return document.getElementById('reader-text').childElementCount") == 0
    assert drv.find_element(By.CSS_SELECTOR, f'tr[data-essay="{eid}"]').get_attribute("aria-current") == "true"
    scores_text = drv.find_element(By.ID, "reader-scores").text
    if r["score"] is None:
        assert "not scored" in scores_text, scores_text
    else:
        assert f"Model's score\n{fmt(r['score'])}" in scores_text, scores_text
    for name, value in r["traits"].items():
        assert f"Trait: {name}\n" in scores_text and (fmt(value) if value is not None else "not scored") in scores_text
    if r["confidence"] is not None:
        assert f"Confidence\n{fmt(r['confidence'])}" in scores_text, scores_text
    review = drv.find_element(By.ID, "reader-review").text
    if r["needs_review"]:
        assert "Needs review" in review
        for reason in r["review_reasons"]:
            assert reason in review, (reason, review)
    else:
        assert review == "No review flags."
    feedback = drv.find_element(By.ID, "reader-feedback").text
    for f in r["feedback"]:
        assert f["comment"] in feedback, (f, feedback)
    assert drv.find_element(By.ID, "override-legend").text == f"Your score for essay {eid}"
    return scores_text


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
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script"
    assert not re.search(r"\son[a-z]+=", html, re.I), "no inline event handlers"
    assert "style=" not in html, "no inline styles"
    p = _Fields()
    p.feed(html)
    assert p.fields and all(f and f in p.labels for f in p.fields), (p.fields, p.labels)
    assert 'aria-live="polite"' in html and 'role="alert"' in html
    assert html.count("Signed in.") == 1
    js = client.get("/app/static/teacher.js")
    body = js.get_data(as_text=True)
    assert js.status_code == 200 and "sessionStorage" in body
    assert "innerHTML" not in body and "insertAdjacentHTML" not in body, "text goes in with textContent only"
    assert client.get("/app/static/teacher.css").status_code == 200


def test_teacher_grades_a_class_reads_each_essay_overrides_and_exports(live_api, grading_worker, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    drv = browser
    _, token = make_teacher()
    auth = {"Authorization": f"Bearer {token}"}
    drv.get(live_api + "/")
    assert "EduQueue" in drv.title

    def active():
        return drv.switch_to.active_element

    def signed_in_count():
        return drv.execute_script("return document.body.innerText.split('Signed in.').length - 1")

    # sign in with the keyboard
    tok = drv.find_element(By.ID, "token")
    tok.send_keys(token)
    tok.send_keys(Keys.ENTER)
    wait_until(lambda: drv.find_element(By.ID, "app").is_displayed(), 20, "the signed-in page", drv, tmp_path)
    assert drv.execute_script("return sessionStorage.getItem('eduq.token')") == token
    assert signed_in_count() == 1, drv.find_element(By.TAG_NAME, "body").text[:500]
    assert active().get_attribute("id") == "rubric-name"
    shot(drv, tmp_path, "1-signed-in")

    # ---- the class, one essay per box
    boxes = lambda: drv.find_elements(By.CSS_SELECTOR, "#essay-boxes > li")  # noqa: E731
    assert len(boxes()) == 1
    first = boxes()[0]
    first.find_element(By.CSS_SELECTOR, ".essay-ref").send_keys(CLASS[0][1])
    first.find_element(By.CSS_SELECTOR, ".essay-text").send_keys(LETTER_A)

    drv.find_element(By.ID, "add-essay").send_keys(Keys.ENTER)  # a <button>, used from the keyboard
    wait_until(lambda: len(boxes()) == 2, 5, "a second box", drv, tmp_path)
    second = boxes()[1]
    assert active() == second.find_element(By.CSS_SELECTOR, ".essay-text"), "focus goes to the new box"
    active().send_keys(LETTER_B)
    second.find_element(By.CSS_SELECTOR, ".essay-id").send_keys(CLASS[1][0])
    second.find_element(By.CSS_SELECTOR, ".essay-ref").send_keys(CLASS[1][1])

    # a box added by mistake is removed with its own button
    drv.find_element(By.ID, "add-essay").send_keys(Keys.ENTER)
    wait_until(lambda: len(boxes()) == 3, 5, "a third box", drv, tmp_path)
    active().send_keys("oops, wrong box")
    remove = boxes()[2].find_element(By.CSS_SELECTOR, ".remove-essay")
    assert remove.tag_name == "button" and remove.text == "Remove essay 3"
    remove.send_keys(Keys.ENTER)
    wait_until(lambda: len(boxes()) == 2, 5, "the third box removed", drv, tmp_path)
    assert "removed" in drv.find_element(By.ID, "status").text

    # bulk paste: a line holding only --- separates essays; the blank lines inside stay
    summary = drv.find_element(By.CSS_SELECTOR, "#bulk summary")
    summary.send_keys(Keys.ENTER)
    bulk = wait_until(lambda: (e := drv.find_element(By.ID, "bulk-text")).is_displayed() and e, 5,
                      "the bulk paste box", drv, tmp_path)
    assert "---" in drv.find_element(By.ID, "bulk-hint").text
    bulk.send_keys(LETTER_C + "\n---\n" + SHORT)
    drv.find_element(By.ID, "bulk-split").send_keys(Keys.ENTER)
    wait_until(lambda: len(boxes()) == 4, 5, "four boxes", drv, tmp_path)
    values = [b.find_element(By.CSS_SELECTOR, ".essay-text").get_attribute("value") for b in boxes()]
    assert values == [LETTER_A, LETTER_B, LETTER_C, SHORT]
    assert drv.find_element(By.ID, "essay-count").text == "4 essay boxes"

    # every control of the boxes has its label, checked in the browser (the boxes are made by the script)
    unlabelled = drv.execute_script(
        "return Array.from(document.querySelectorAll('input,textarea,select'))"
        ".filter(e => e.type !== 'hidden' && e.labels.length === 0).map(e => e.id)")
    assert unlabelled == []
    drv.execute_script("document.getElementById('essays-fieldset').scrollIntoView({block: 'start'})")
    check_screenshot(drv, shot(drv, tmp_path, "2-essay-boxes"))

    drv.find_element(By.ID, "grade-submit").send_keys(Keys.ENTER)
    wait_until(lambda: drv.find_element(By.ID, "job-id").text, 30, "the job id", drv, tmp_path)
    job_id = drv.find_element(By.ID, "job-id").text
    print(f"job: {job_id}")

    # exactly one essay per box, with the ids and student refs typed (read through the API)
    job = requests.get(f"{live_api}/api/v1/jobs/{job_id}", headers=auth, timeout=30).json()["job"]
    assert job["progress"]["total"] == len(CLASS)

    # progress comes by long polling; wait for the scores
    wait_until(lambda: drv.find_element(By.ID, "job-status").text in ("succeeded", "failed", "cancelled"),
               300, "the job to finish", drv, tmp_path)
    assert drv.find_element(By.ID, "job-status").text == "succeeded"
    # the last read of the results is over once the status says so and the table is no longer busy
    rows = wait_until(lambda: "succeeded" in drv.find_element(By.ID, "status").text
                      and drv.find_element(By.ID, "results-table").get_attribute("aria-busy") == "false"
                      and (r := drv.find_elements(By.CSS_SELECTOR, "#results-body tr")) and len(r) == 4 and r,
                      30, "four result rows", drv, tmp_path)
    api_rows = requests.get(f"{live_api}/api/v1/jobs/{job_id}/results", headers=auth, timeout=30).json()["results"]
    assert [r["essay_id"] for r in api_rows] == IDS
    assert [r["student_ref"] or "" for r in api_rows] == [c[1] for c in CLASS]
    res = {r["essay_id"]: r for r in api_rows}
    scores = {r.get_attribute("data-essay"): r.find_element(By.CSS_SELECTOR, "td.score").text for r in rows}
    assert list(scores) == IDS
    for eid in IDS[:3]:  # the three letters get a number, on the page as in the API
        assert isinstance(res[eid]["score"], (int, float)), res[eid]
        assert scores[eid] == fmt(res[eid]["score"]), (eid, scores[eid], res[eid]["score"])
    short = res["essay-4"]
    # a three-word essay: "not scored" where the API gives null, otherwise a number; flagged either way
    assert short["score"] is None or isinstance(short["score"], (int, float)), short
    assert short["needs_review"] and short["review_reasons"], short
    assert scores["essay-4"] == ("not scored" if short["score"] is None else fmt(short["score"]))
    # the full table: one cell per column, feedback and flags in theirs
    heads = [th.get_attribute("textContent").strip() for th in drv.find_elements(By.CSS_SELECTOR, "#results-table thead th")]
    assert heads == ["Essay", "Student", "Score", "Traits", "Confidence", "Review", "Feedback", "Your override", "Actions"]
    for row in rows:
        assert len(row.find_elements(By.CSS_SELECTOR, "th, td")) == len(heads)
        r = res[row.get_attribute("data-essay")]
        for f in r["feedback"]:
            assert f["comment"] in row.find_element(By.CSS_SELECTOR, "td.feedback").text
        review = row.find_element(By.CSS_SELECTOR, "td:nth-of-type(5)").text
        assert review == ("Review: " + "; ".join(r["review_reasons"]) if r["needs_review"] else "OK"), review
    shot(drv, tmp_path, "3-scores")

    # ---- the reading view: Enter on an essay in the table opens it beside its scores
    drv.find_element(By.CSS_SELECTOR, 'tr[data-essay="essay-1"] .read-button').send_keys(Keys.ENTER)
    reader = wait_until(lambda: (e := drv.find_element(By.ID, "reader")).is_displayed() and e, 10,
                        "the reading view", drv, tmp_path)
    assert active().get_attribute("id") == "reader-title"

    def reading():
        return drv.find_element(By.ID, "reader-essay").text

    check_reader(drv, res["essay-1"], LETTER_A)
    assert f"Score that counts\n{fmt(res['essay-1']['score'])} — the model's" in drv.find_element(By.ID, "reader-scores").text

    # keys: j / k and the arrows move essay to essay; Tab reaches the reader's buttons
    active().send_keys("j")
    wait_until(lambda: reading() == "letter-b", 5, "j to the next essay", drv, tmp_path)
    check_reader(drv, res["letter-b"], LETTER_B)
    active().send_keys("k")
    wait_until(lambda: reading() == "essay-1", 5, "k to the previous essay", drv, tmp_path)
    active().send_keys(Keys.ARROW_RIGHT)
    wait_until(lambda: reading() == "letter-b", 5, "→ to the next essay", drv, tmp_path)
    active().send_keys(Keys.TAB)
    assert active().get_attribute("id") == "reader-prev"
    active().send_keys(Keys.TAB)
    assert active().get_attribute("id") == "reader-next"
    active().send_keys(Keys.SHIFT, Keys.TAB)
    assert active().get_attribute("id") == "reader-prev"
    active().send_keys(Keys.ENTER)
    wait_until(lambda: reading() == "essay-1", 5, "the previous-essay button", drv, tmp_path)
    drv.find_element(By.ID, "reader-next").send_keys(Keys.ENTER)
    wait_until(lambda: reading() == "letter-b", 5, "the next-essay button", drv, tmp_path)
    # typing j in a form field types it, and does not move
    note = drv.find_element(By.ID, "override-note")
    note.send_keys("j")
    assert reading() == "letter-b" and note.get_attribute("value") == "j"
    note.clear()

    # ---- override letter-b from the reading view: the form stands beside the essay
    model = float(res["letter-b"]["score"])
    new = 5.0 if model != 5 else 4.0
    org = 3.0 if res["letter-b"]["traits"].get("organization") != 3 else 4.0
    score = drv.find_element(By.ID, "override-score")
    score.clear()
    score.send_keys(f"{new:g}")
    trait = drv.find_element(By.CSS_SELECTOR, '#override-traits input[data-trait="organization"]')
    trait.clear()
    trait.send_keys(f"{org:g}")
    note = drv.find_element(By.ID, "override-note")
    note.send_keys("Clear position and two reasons.")
    assert drv.find_element(By.ID, "override-draft").is_displayed()
    drv.find_element(By.ID, "override-save").send_keys(Keys.ENTER)
    counts = wait_until(lambda: (t := drv.find_element(By.CSS_SELECTOR, "#reader-scores dd.counts").text)
                        .startswith(f"{new:g} ") and t, 20, "the override in the reading view", drv, tmp_path)
    assert counts == f"{new:g} — your override"
    scores_text = drv.find_element(By.ID, "reader-scores").text
    assert f"Model's score\n{fmt(model)} (replaced by your override)" in scores_text
    assert f"Trait: organization\n{org:g} — your override" in scores_text
    assert "Override saved" in drv.find_element(By.ID, "status").text
    assert active().get_attribute("id") == "override-save"
    assert reading() == "letter-b" and reader.is_displayed()
    stored = {r["essay_id"]: r for r in requests.get(f"{live_api}/api/v1/jobs/{job_id}/results", headers=auth,
                                                     timeout=30).json()["results"]}["letter-b"]["override"]
    assert stored["score"] == new and stored["traits"] == {"organization": org}
    assert stored["note"] == "Clear position and two reasons." and stored["by"].endswith("@example.org")

    # the layout: the essay text and the override form side by side, the reading view beside the table
    rect = lambda i: drv.find_element(By.ID, i).rect  # noqa: E731
    text_r, form_r, table_r, reader_r = rect("reader-text"), rect("override-form"), rect("results-table"), rect("reader")
    assert form_r["x"] >= text_r["x"] + text_r["width"], (text_r, form_r)  # the form is to the right of the text
    assert form_r["y"] < text_r["y"] + text_r["height"], (text_r, form_r)  # ... and level with it, not below
    assert reader_r["x"] >= table_r["x"] + table_r["width"], (table_r, reader_r)
    assert form_r["y"] + form_r["height"] <= drv.execute_script("return window.innerHeight + window.scrollY")
    assert drv.execute_script("const r = document.getElementById('reader'); return r.scrollWidth <= r.clientWidth"), \
        "nothing in the reading view sticks out sideways"
    drv.execute_script("document.getElementById('results-section').scrollIntoView({block: 'start'})")
    check_screenshot(drv, shot(drv, tmp_path, "4-reading-view"))

    # on to the next essays: its markup is shown as text, never as HTML
    drv.find_element(By.ID, "reader-title").send_keys("j")
    wait_until(lambda: reading() == "essay-3", 5, "j to essay-3", drv, tmp_path)
    check_reader(drv, res["essay-3"], LETTER_C)
    assert "<em>not</em> agree &" in drv.find_element(By.ID, "reader-text").text

    # the three-word essay: the reason from review_reasons is on the page; the teacher can still score it
    active().send_keys("j")
    wait_until(lambda: reading() == "essay-4", 5, "j to essay-4", drv, tmp_path)
    scores_text = check_reader(drv, res["essay-4"], SHORT)
    if short["score"] is None:
        assert "Score that counts\nnone yet — give a score below" in scores_text
        assert f"not scored: {'; '.join(short['review_reasons'])}" in scores_text
    check_screenshot(drv, shot(drv, tmp_path, "5-not-scored"))
    score = drv.find_element(By.ID, "override-score")
    score.clear()
    score.send_keys("1")
    score.send_keys(Keys.ENTER)  # Enter in the form submits it
    wait_until(lambda: drv.find_element(By.CSS_SELECTOR, "#reader-scores dd.counts").text == "1 — your override",
               20, "the override of the short essay", drv, tmp_path)
    active().send_keys("j")  # the last essay: j stays there and says so
    assert reading() == "essay-4"
    wait_until(lambda: "last essay" in drv.find_element(By.ID, "status").text, 5, "the last-essay message", drv, tmp_path)

    # Escape closes the view and puts the focus back on the essay in the table; the arrows move there
    active().send_keys(Keys.ESCAPE)
    wait_until(lambda: not reader.is_displayed(), 5, "the reading view to close", drv, tmp_path)
    assert active() == drv.find_element(By.CSS_SELECTOR, 'tr[data-essay="essay-4"] .read-button')
    active().send_keys(Keys.ARROW_UP)
    assert active() == drv.find_element(By.CSS_SELECTOR, 'tr[data-essay="essay-3"] .read-button')
    active().send_keys(Keys.ENTER)
    wait_until(lambda: reader.is_displayed() and reading() == "essay-3", 5, "essay-3 opened by Enter", drv, tmp_path)
    active().send_keys(Keys.ESCAPE)
    wait_until(lambda: not reader.is_displayed(), 5, "the reading view to close again", drv, tmp_path)
    # a click on a row opens it too
    drv.find_element(By.CSS_SELECTOR, 'tr[data-essay="letter-b"] td.score').click()
    wait_until(lambda: reader.is_displayed() and reading() == "letter-b", 5, "a click on a row", drv, tmp_path)
    active().send_keys(Keys.ESCAPE)
    wait_until(lambda: not reader.is_displayed(), 5, "closed", drv, tmp_path)

    # the full table shows the override beside the model's score
    cell = drv.find_element(By.CSS_SELECTOR, 'tr[data-essay="letter-b"] td.override').text
    assert cell.startswith(f"{new:g} by ") and "Clear position" in cell
    assert drv.find_element(By.CSS_SELECTOR, 'tr[data-essay="letter-b"] td.score').text == fmt(model)
    assert signed_in_count() == 1

    # the CSV: downloaded by the page, and read through the API
    drv.find_element(By.ID, "download-csv").click()
    files = wait_until(lambda: [p for p in drv.downloads.glob("*.csv")], 20, "the CSV download", drv, tmp_path)
    print(f"downloaded: {files[0]}")
    r = requests.get(f"{live_api}/api/v1/jobs/{job_id}/results?format=csv", headers=auth, timeout=30)
    assert r.status_code == 200
    for text in (r.text, files[0].read_text(encoding="utf-8")):
        rows = {row["essay_id"]: row for row in csv.DictReader(io.StringIO(text))}
        assert list(rows) == IDS
        assert float(rows["letter-b"]["override_score"]) == new
        assert float(rows["letter-b"]["override_trait_organization"]) == org
        assert rows["letter-b"]["override_by"].endswith("@example.org") and rows["letter-b"]["override_at"]
        assert float(rows["letter-b"]["score"]) == model  # the model's score stays beside it
        assert rows["essay-1"]["override_score"] == ""
        assert float(rows["essay-4"]["override_score"]) == 1
    shot(drv, tmp_path, "6-downloaded")

    # sign out clears the token and the essay texts kept for the reading view
    drv.find_element(By.ID, "signout-button").send_keys(Keys.ENTER)
    assert drv.execute_script("return sessionStorage.getItem('eduq.token')") is None
    assert drv.execute_script("return Object.keys(sessionStorage).filter(k => k.startsWith('eduq.'))") == []
    assert "Uniforms" not in drv.execute_script("return document.body.textContent"), "no essay is left on the page"
    assert drv.execute_script("return document.querySelectorAll('#essay-boxes textarea, #results-body tr').length") == 0


DEMO_CLASS = "app/demo/class_8b.json"


def grade_demo_class(live_api, drv, tmp_path, n_essays=None):
    """Sign a new teacher in, grade the demo class (our own writing) on its prompt from the page, and wait
    for every row. Returns (auth headers, the job id, the essays graded)."""
    import json
    from pathlib import Path

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    demo = json.loads((Path(__file__).resolve().parents[2] / DEMO_CLASS).read_text())
    essays = demo["essays"][:n_essays] if n_essays else demo["essays"]
    _, token = make_teacher()
    drv.get(live_api + "/")
    tok = drv.find_element(By.ID, "token")
    tok.send_keys(token)
    tok.send_keys(Keys.ENTER)
    wait_until(lambda: drv.find_element(By.ID, "app").is_displayed(), 20, "the signed-in page", drv, tmp_path)
    prompt = drv.find_element(By.ID, "rubric-prompt")
    prompt.clear()
    prompt.send_keys(demo["rubric"]["prompt"])
    drv.find_element(By.CSS_SELECTOR, "#bulk summary").send_keys(Keys.ENTER)
    bulk = wait_until(lambda: (e := drv.find_element(By.ID, "bulk-text")).is_displayed() and e, 5, "bulk", drv, tmp_path)
    drv.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));", bulk,
                       "\n---\n".join(e["text"] for e in essays))
    drv.find_element(By.ID, "bulk-split").send_keys(Keys.ENTER)
    n = len(essays)
    wait_until(lambda: len(drv.find_elements(By.CSS_SELECTOR, "#essay-boxes > li")) >= n, 10, "the boxes", drv, tmp_path)
    drv.find_element(By.ID, "grade-submit").send_keys(Keys.ENTER)
    wait_until(lambda: drv.find_element(By.ID, "job-id").text, 30, "the job id", drv, tmp_path)
    job_id = drv.find_element(By.ID, "job-id").text
    wait_until(lambda: drv.find_element(By.ID, "job-status").text == "succeeded", 300, "the class graded", drv, tmp_path)
    wait_until(lambda: drv.find_element(By.ID, "results-table").get_attribute("aria-busy") == "false"
               and len(drv.find_elements(By.CSS_SELECTOR, "#results-body tr")) == n, 30, "the rows", drv, tmp_path)
    return {"Authorization": f"Bearer {token}"}, job_id, essays


def test_teacher_scores_the_suggested_essays_and_regrades_the_rest(live_api, grading_worker, browser, tmp_path):
    """Calibration by example on the page: suggested essays highlighted, scored inline, the rest regraded
    with the teacher's scores, the earlier score shown beside each new one."""

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    drv = browser
    auth, first_id, essays = grade_demo_class(live_api, drv, tmp_path)
    n = len(essays)
    assert drv.find_element(By.ID, "calibration-info").text == "Graded by the default grader alone."

    # suggested essays are highlighted, each with why, and scored in its row
    n_input = drv.find_element(By.ID, "suggest-n")
    n_input.clear()
    n_input.send_keys("4")
    drv.find_element(By.ID, "suggest-button").send_keys(Keys.ENTER)
    rows = wait_until(lambda: (r := drv.find_elements(By.CSS_SELECTOR, "#results-body tr.suggested")) and len(r) == 4 and r,
                      20, "four suggested rows", drv, tmp_path)
    api_sug = requests.get(f"{live_api}/api/v1/jobs/{first_id}/calibration-suggestions?n=4", headers=auth,
                           timeout=30).json()["suggestions"]
    assert {r.get_attribute("data-essay") for r in rows} == {s["essay_id"] for s in api_sug}
    for r in rows:
        assert r.find_element(By.CSS_SELECTOR, ".suggest-why").text.startswith("Suggested: predicted ")
    assert drv.switch_to.active_element.get_attribute("class") == "inline-input"
    check_screenshot(drv, shot(drv, tmp_path, "7-suggested"))
    model = {x["essay_id"]: x for x in requests.get(f"{live_api}/api/v1/jobs/{first_id}/results", headers=auth,
                                                   timeout=30).json()["results"]}
    mine = {}
    for eid in [s["essay_id"] for s in api_sug]:
        mine[eid] = max(1.0, model[eid]["score"] - 1)
        box = drv.find_element(By.CSS_SELECTOR, f'tr[data-essay="{eid}"] .inline-input')
        box.send_keys(f"{mine[eid]:g}")
        box.send_keys(Keys.ENTER)
        wait_until(lambda eid=eid: drv.find_element(By.CSS_SELECTOR, f'tr[data-essay="{eid}"] td.override').text
                   .startswith(f"{mine[eid]:g} by "), 20, f"the inline score of {eid}", drv, tmp_path)
    stored = {x["essay_id"]: x for x in requests.get(f"{live_api}/api/v1/jobs/{first_id}/results", headers=auth,
                                                    timeout=30).json()["results"]}
    assert {e: stored[e]["override"]["score"] for e in mine} == mine

    # regrade the rest with those scores: a new job, the before beside the after
    drv.find_element(By.ID, "recalibrate-button").send_keys(Keys.ENTER)
    wait_until(lambda: drv.find_element(By.ID, "job-id").text not in ("", first_id), 30, "the new job", drv, tmp_path)
    second_id = drv.find_element(By.ID, "job-id").text
    wait_until(lambda: drv.find_element(By.ID, "job-status").text == "succeeded", 300, "the regrade", drv, tmp_path)
    wait_until(lambda: drv.find_element(By.ID, "results-table").get_attribute("aria-busy") == "false"
               and len(drv.find_elements(By.CSS_SELECTOR, "#results-body td.score .before")) >= n - 2, 30,
               "the before scores", drv, tmp_path)
    info = drv.find_element(By.ID, "calibration-info").text
    assert "Graded with 4 essay(s) you scored" in info and first_id in info
    res = {x["essay_id"]: x for x in requests.get(f"{live_api}/api/v1/jobs/{second_id}/results", headers=auth,
                                                 timeout=30).json()["results"]}
    for row in drv.find_elements(By.CSS_SELECTOR, "#results-body tr"):
        x = res[row.get_attribute("data-essay")]
        cell = row.find_element(By.CSS_SELECTOR, "td.score").text
        before = x["previous"]["score"]
        assert cell.endswith(f"(before: {fmt(before) if before is not None else 'not scored'})"), (cell, x["previous"])
        if x["essay_id"] in mine:  # her score is carried over and counts
            assert row.find_element(By.CSS_SELECTOR, "td.override").text.startswith(f"{mine[x['essay_id']]:g} by ")
    check_screenshot(drv, shot(drv, tmp_path, "8-regraded"))


@pytest.fixture(scope="module")
def page_lessons_worker(pg_url, redis_client, log_dir):
    from tests.conftest import start_worker

    proc = start_worker(log_dir, "lessons", "page-lessons")
    yield proc
    proc.stop()


def test_teacher_sees_next_steps_insights_reteach_and_exports(live_api, grading_worker, page_lessons_worker, browser,
                                                              tmp_path):
    """From grades to learning on the page: each student's next steps in the reading view, the class's
    insights as charts, a re-teach lesson, the gradebook exports and the feedback sheets downloaded."""

    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    drv = browser
    auth, job_id, essays = grade_demo_class(live_api, drv, tmp_path, n_essays=8)

    # each student's next steps, read beside the essay
    drv.find_element(By.ID, "followups-button").send_keys(Keys.ENTER)
    wait_until(lambda: "Next steps are ready" in drv.find_element(By.ID, "personal-info").text, 120,
               "the next steps", drv, tmp_path)
    drv.find_element(By.CSS_SELECTOR, 'tr[data-essay="essay-2"] .read-button').send_keys(Keys.ENTER)
    wait_until(lambda: drv.find_element(By.ID, "reader").is_displayed(), 10, "the reading view", drv, tmp_path)
    box = drv.find_element(By.ID, "reader-followup")
    text = box.text
    assert "What you did well" in text and "Next steps" in text and "Practice" in text, text
    steps = box.find_elements(By.CSS_SELECTOR, "ol.exercises > li")
    assert 2 <= len(steps) <= 3
    api_fu = {x["essay_id"]: x for x in requests.get(
        f"{live_api}/api/v1/jobs/{job_id}/results", headers=auth, timeout=30).json()["results"]}
    fu_job = requests.get(f"{live_api}/api/v1/jobs?kind=follow_up&limit=1", headers=auth, timeout=30).json()["jobs"][0]
    fus = {x["essay_id"]: x for x in requests.get(f"{live_api}{fu_job['links']['results']}", headers=auth,
                                                  timeout=30).json()["results"]}
    for x in fus["essay-2"]["follow_up"]["exercises"]:
        assert x["instructions"] in text
    assert api_fu["essay-2"]["score"] == fus["essay-2"]["scores"]["score"]
    drv.execute_script("document.getElementById('reader-followup').scrollIntoView({block: 'start'})")
    check_screenshot(drv, shot(drv, tmp_path, "9-next-steps"))
    drv.find_element(By.ID, "reader-close").send_keys(Keys.ENTER)

    # the class's insights as charts
    drv.find_element(By.ID, "insights-button").send_keys(Keys.ENTER)
    wait_until(lambda: drv.find_element(By.ID, "insights").is_displayed(), 20, "the insights", drv, tmp_path)
    ins = requests.get(f"{live_api}/api/v1/jobs/{job_id}/insights", headers=auth, timeout=30).json()
    bars_ = drv.find_elements(By.CSS_SELECTOR, "#chart-holistic .bar-row")
    assert [b.find_element(By.CSS_SELECTOR, ".bar-label").text for b in bars_] == list(ins["holistic"]["distribution"])
    assert [b.find_element(By.CSS_SELECTOR, ".bar-count").text for b in bars_] == [
        str(v) for v in ins["holistic"]["distribution"].values()]
    label = drv.find_element(By.ID, "chart-holistic").get_attribute("aria-label")
    assert label.startswith("Holistic scores (1-6): ")
    assert len(drv.find_elements(By.CSS_SELECTOR, "#chart-traits .chart")) == 2
    assert drv.find_element(By.CSS_SELECTOR, "#weakest li").text.startswith(ins["weakest"][0]["trait"] + ": ")
    drv.execute_script("document.getElementById('personal').scrollIntoView({block: 'start'})")
    check_screenshot(drv, shot(drv, tmp_path, "10-insights"))

    # the exports, downloaded by the page
    for button, suffix in (("export-canvas", "-canvas.csv"), ("export-classroom", "-classroom.csv"),
                           ("export-sheets", "-feedback.docx")):
        drv.find_element(By.ID, button).click()
        wait_until(lambda s=suffix: [p for p in drv.downloads.glob(f"*{s}")], 20, f"the {suffix} download", drv, tmp_path)
    canvas = next(drv.downloads.glob("*-canvas.csv")).read_text(encoding="utf-8").splitlines()
    assert canvas[0].startswith("Student,ID,SIS User ID,SIS Login ID,Section,") and canvas[1].startswith("Points Possible")
    assert next(drv.downloads.glob("*-feedback.docx")).read_bytes()[:2] == b"PK"

    # a lesson that re-teaches the weakest trait
    drv.find_element(By.ID, "reteach-button").send_keys(Keys.ENTER)
    wait_until(lambda: "Lesson plan ready" in drv.find_element(By.ID, "personal-info").text, 600, "the lesson", drv, tmp_path)
    assert drv.find_element(By.ID, "lesson-output").is_displayed()
