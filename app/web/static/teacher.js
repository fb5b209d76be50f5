// EduQueue teacher page: vanilla JS, no build step, no CDN. Talks to /api/v1 on this origin.
// The bearer token lives in sessionStorage only (gone when the tab closes or on sign out).
// Everything a user or the model wrote is put on the page with textContent, never as HTML.
"use strict";

(function () {
  var PREFIX = "eduq.";
  var TOKEN_KEY = PREFIX + "token";
  var JOB_KEY = PREFIX + "gradingJob";          // the job being followed: {job, rubric}
  var JOBDATA_KEY = PREFIX + "job.";            // + job id: {rubric, texts: {essay id: text}} for the reading view
  var FINISHED = ["succeeded", "failed", "cancelled"];
  var SEPARATOR = /^[ \t]*---[ \t]*$/;          // bulk paste: a line holding only ---
  var state = { job: null, rubric: null, results: [], texts: {}, reading: null, drafts: {}, suggested: {}, followups: {} };
  var boxSeq = 0;

  function $(id) { return document.getElementById(id); }
  function token() { return sessionStorage.getItem(TOKEN_KEY); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = text; }
    if (cls) { e.className = cls; }
    return e;
  }

  // ---------------------------------------------------------------- messages (aria-live)
  function say(msg) { $("alert").textContent = ""; $("status").textContent = msg; }
  function fail(err) {
    var box = $("alert");
    box.textContent = "";
    box.appendChild(el("p", err.message || String(err)));
    if (err.details && err.details.length) {
      var ul = el("ul");
      err.details.forEach(function (d) {
        ul.appendChild(el("li", (d.line ? "line " + d.line + ", " : "") + (d.field ? fieldName(d.field) + ": " : "") +
          (d.message || "")));
      });
      box.appendChild(ul);
    }
    $("status").textContent = "";
  }

  // "essays[2].text" -> the box that essay came from, as the teacher sees it
  function fieldName(field) {
    var m = /^essays\[(\d+)\]\.?(.*)$/.exec(field);
    if (m && state.sentBoxes && state.sentBoxes[+m[1]] !== undefined) {
      return "Essay " + state.sentBoxes[+m[1]] + (m[2] ? " (" + m[2] + ")" : "");
    }
    return field;
  }

  function ApiFailure(status, body) {
    var e = (body && body.error) || {};
    var err = new Error(e.message || ("The server answered " + status + "."));
    err.status = status; err.code = e.code; err.details = e.details || [];
    return err;
  }

  // ---------------------------------------------------------------- API
  function api(path, opts) {
    opts = opts || {};
    var headers = opts.headers || {};
    headers["Authorization"] = "Bearer " + token();
    var init = { method: opts.method || "GET", headers: headers, cache: "no-store" };
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.json);
    } else if (opts.form) {
      init.body = opts.form;
    }
    return fetch(path, init).then(function (resp) {
      if (resp.status === 304) { return { status: 304, headers: resp.headers, body: null }; }
      var type = resp.headers.get("Content-Type") || "";
      var read = opts.raw && resp.ok ? resp.blob() : (type.indexOf("json") >= 0 ? resp.json() : resp.text());
      return read.then(function (body) {
        if (!resp.ok) {
          if (resp.status === 401) { signOut(true); }
          if (resp.status === 429) {
            var after = resp.headers.get("Retry-After");
            var err = ApiFailure(resp.status, body);
            if (after) { err.message += " (retry after " + after + " s)"; }
            throw err;
          }
          throw ApiFailure(resp.status, typeof body === "object" ? body : null);
        }
        return { status: resp.status, headers: resp.headers, body: body };
      });
    });
  }

  function busy(button, on) { if (button) { button.disabled = on; button.setAttribute("aria-busy", on ? "true" : "false"); } }

  // ---------------------------------------------------------------- per-job data kept in this tab
  function saveJobData(jobId, data) {
    try { sessionStorage.setItem(JOBDATA_KEY + jobId, JSON.stringify(data)); } catch (e) { /* quota: memory only */ }
  }
  function loadJobData(jobId) {
    try { return JSON.parse(sessionStorage.getItem(JOBDATA_KEY + jobId) || "null"); } catch (e) { return null; }
  }

  // ---------------------------------------------------------------- sign in / out
  function showSignedIn(on) {
    $("signin-section").hidden = on;
    $("account-section").hidden = !on;
    $("app").hidden = !on;
    if (on && !$("essay-boxes").children.length) { addBox(); }
  }

  function signOut(expired) {
    // the token, the followed job and the essay texts kept for the reading view all go
    Object.keys(sessionStorage).forEach(function (k) { if (k.indexOf(PREFIX) === 0) { sessionStorage.removeItem(k); } });
    closeReader(false);
    state = { job: null, rubric: null, results: [], texts: {}, reading: null, drafts: {}, suggested: {}, followups: {} };
    // and the students' essays leave the page too
    $("essay-boxes").textContent = "";
    $("bulk-text").value = "";
    $("essays-file").value = "";
    $("file-summary").textContent = "";
    $("essays-file-clear").hidden = true;
    $("results-body").textContent = "";
    $("reader-text").textContent = "";
    $("results-section").hidden = true;
    $("job-section").hidden = true;
    $("lesson-output").textContent = "";
    $("lesson-output").hidden = true;
    $("jobs-list").textContent = "";
    showSignedIn(false);
    $("token").value = "";
    if (expired) { fail(new Error("Your token was not accepted; sign in again.")); }
    else { say("Signed out."); }
    $("token").focus();
  }

  function signIn(ev) {
    ev.preventDefault();
    var value = $("token").value.trim();
    if (!value) { fail(new Error("Enter your API token.")); $("token").focus(); return; }
    sessionStorage.setItem(TOKEN_KEY, value);
    busy($("signin-button"), true);
    api("/api/v1/jobs?limit=1").then(function () {
      $("token").value = "";
      showSignedIn(true);
      // "Signed in." stands once, beside the sign-out button; the live region says what comes next
      say("Welcome. Set up the rubric and the essays below, or open one of your recent jobs.");
      $("rubric-name").focus();
    }).catch(function (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      fail(err.status === 401 ? new Error("That token was not accepted.") : err);
    }).then(function () { busy($("signin-button"), false); });
  }

  // ---------------------------------------------------------------- the rubric
  function num(id) { return parseFloat($(id).value); }

  function readRubric() {
    var traits = $("rubric-traits").value.split(",").map(function (t) { return t.trim(); })
      .filter(function (t) { return t.length; });
    return {
      name: $("rubric-name").value.trim(),
      prompt: $("rubric-prompt").value,
      scale: { min: num("scale-min"), max: num("scale-max"), step: num("scale-step") },
      traits: traits.map(function (t) { return { name: t }; })
    };
  }

  // ---------------------------------------------------------------- essay boxes: one essay per box
  function boxes() { return Array.prototype.slice.call($("essay-boxes").children); }

  function field(labelText, control, hint) {
    var div = el("div", null, "field");
    var label = el("label", labelText);
    label.htmlFor = control.id;
    div.appendChild(label);
    div.appendChild(control);
    if (hint) { div.appendChild(hint); }
    return div;
  }

  function addBox(values) {
    values = values || {};
    var k = ++boxSeq;
    var li = el("li", null, "essay-box");
    var fs = el("fieldset");
    var legend = el("legend");
    fs.appendChild(legend);

    var row = el("div", null, "row");
    var id = el("input", null, "essay-id");
    id.type = "text"; id.id = "essay-id-" + k; id.maxLength = 200; id.autocomplete = "off"; id.spellcheck = false;
    id.value = values.id || "";
    var ref = el("input", null, "essay-ref");
    ref.type = "text"; ref.id = "essay-ref-" + k; ref.maxLength = 200; ref.autocomplete = "off"; ref.spellcheck = false;
    ref.value = values.student_ref || "";
    row.appendChild(field("Essay id (optional)", id));
    row.appendChild(field("Student ref (optional)", ref));
    fs.appendChild(row);

    var text = el("textarea", null, "essay-text");
    text.id = "essay-text-" + k; text.rows = 8;
    text.value = values.text || "";
    fs.appendChild(field("Essay text", text));

    var remove = el("button", null, "remove-essay");
    remove.type = "button";
    remove.addEventListener("click", function () { removeBox(li); });
    fs.appendChild(remove);

    li.appendChild(fs);
    $("essay-boxes").appendChild(li);
    renumberBoxes();
    return li;
  }

  function removeBox(li) {
    var all = boxes();
    var i = all.indexOf(li);
    var n = i + 1;
    li.remove();
    renumberBoxes();
    var rest = boxes();
    var next = rest[Math.min(i, rest.length - 1)];
    say("Essay box " + n + " removed; " + countText(rest.length) + ".");
    if (next) { next.querySelector(".essay-text").focus(); } else { $("add-essay").focus(); }
  }

  function countText(n) { return n + " essay box" + (n === 1 ? "" : "es"); }

  function renumberBoxes() {
    var all = boxes();
    all.forEach(function (li, i) {
      var n = i + 1;
      li.querySelector("legend").textContent = "Essay " + n;
      li.querySelector(".essay-id").placeholder = "essay-" + n;
      li.querySelector('label[for="' + li.querySelector(".essay-text").id + '"]').textContent = "Essay " + n + " text";
      var rm = li.querySelector(".remove-essay");
      rm.textContent = "Remove essay " + n;
    });
    $("essay-count").textContent = countText(all.length);
  }

  // Bulk paste: essays separated by a line holding only "---". Blank lines never split.
  function splitBulk(raw) {
    var out = [], cur = [];
    raw.replace(/\r\n?/g, "\n").split("\n").forEach(function (line) {
      if (SEPARATOR.test(line)) { out.push(cur.join("\n")); cur = []; } else { cur.push(line); }
    });
    out.push(cur.join("\n"));
    return out.map(function (t) { return t.replace(/^\s*\n/, "").replace(/\s+$/, ""); })
      .filter(function (t) { return t.trim().length; });
  }

  function bulkToBoxes() {
    var essays = splitBulk($("bulk-text").value);
    if (!essays.length) { fail(new Error("Paste essays first, with a line holding only --- between two essays.")); $("bulk-text").focus(); return; }
    var empty = boxes().filter(function (li) {
      return !li.querySelector(".essay-text").value.trim() && !li.querySelector(".essay-id").value.trim() &&
        !li.querySelector(".essay-ref").value.trim();
    });
    var first = null;
    essays.forEach(function (t) {
      var li = empty.shift();
      if (li) { li.querySelector(".essay-text").value = t; } else { li = addBox({ text: t }); }
      if (!first) { first = li; }
    });
    $("bulk-text").value = "";
    var n = boxes().indexOf(first) + 1;
    say(essays.length + " essay(s) put into boxes " + n + "–" + (n + essays.length - 1) + "; " + countText(boxes().length) + " in all.");
    first.querySelector(".essay-text").focus();
  }

  // The essays of the boxes: [{id, text, student_ref}], with the box number of each (for error messages).
  function readBoxes() {
    var all = boxes(), essays = [], from = [], used = {};
    all.forEach(function (li) {
      var id = li.querySelector(".essay-id").value.trim();
      if (id) { used[id] = true; }
    });
    var problems = [];
    var seen = {};
    all.forEach(function (li, i) {
      var text = li.querySelector(".essay-text").value;
      var id = li.querySelector(".essay-id").value.trim();
      var ref = li.querySelector(".essay-ref").value.trim();
      if (!text.trim()) {
        if (id || ref) { problems.push({ box: li, message: "Essay " + (i + 1) + " has an id or student but no text." }); }
        return;
      }
      if (!id) {
        id = "essay-" + (i + 1);
        for (var j = 2; used[id]; j++) { id = "essay-" + (i + 1) + "-" + j; }
        used[id] = true;
      }
      if (seen[id]) { problems.push({ box: li, message: "Essays " + seen[id] + " and " + (i + 1) + " have the same id " + id + "." }); }
      seen[id] = i + 1;
      var e = { id: id, text: text.replace(/\r\n?/g, "\n") };
      if (ref) { e.student_ref = ref; }
      essays.push(e); from.push(i + 1);
    });
    return { essays: essays, from: from, problems: problems, skipped: all.length - essays.length - problems.length };
  }

  // ---------------------------------------------------------------- CSV upload (read here too, for the reading view)
  function parseCsv(text) {
    // RFC 4180: quoted cells may hold commas, doubled quotes and line breaks.
    var rows = [], row = [], cell = "", q = false, i = 0;
    text = text.replace(/^\uFEFF/, "");
    for (; i < text.length; i++) {
      var c = text[i];
      if (q) {
        if (c === '"') { if (text[i + 1] === '"') { cell += '"'; i++; } else { q = false; } } else { cell += c; }
      } else if (c === '"') { q = true; }
      else if (c === ",") { row.push(cell); cell = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") { i++; }
        row.push(cell); rows.push(row); row = []; cell = "";
      } else { cell += c; }
    }
    if (cell.length || row.length) { row.push(cell); rows.push(row); }
    rows = rows.filter(function (r) { return r.some(function (x) { return x.trim().length; }); });
    if (!rows.length) { return []; }
    var head = rows[0].map(function (h) { return h.trim().toLowerCase(); });
    var ci = head.indexOf("id"), ct = head.indexOf("text"), cr = head.indexOf("student_ref");
    if (ci < 0 || ct < 0) { return null; }
    return rows.slice(1).map(function (r) {
      return { id: (r[ci] || "").trim(), text: (r[ct] || "").replace(/\r\n?/g, "\n"), student_ref: cr >= 0 ? (r[cr] || "").trim() : "" };
    });
  }

  function readFile(file) {
    return new Promise(function (resolve) {
      var fr = new FileReader();
      fr.onload = function () { resolve(String(fr.result || "")); };
      fr.onerror = function () { resolve(""); };
      fr.readAsText(file);
    });
  }

  function fileChosen() {
    var file = $("essays-file").files[0];
    $("essays-file-clear").hidden = !file;
    $("file-summary").textContent = "";
    if (!file) { return; }
    readFile(file).then(function (text) {
      var rows = parseCsv(text);
      var msg = rows === null ? file.name + ": no header row with id and text was found; the server will say what it makes of it."
        : file.name + ": " + rows.length + " essay(s). The file is sent instead of the boxes.";
      $("file-summary").textContent = msg;
      say(msg);
    });
  }

  function clearFile() {
    $("essays-file").value = "";
    fileChosen();
    say("The file is no longer used; the boxes are sent.");
    $("essays-file").focus();
  }

  // ---------------------------------------------------------------- submitting
  function submitGrading(ev) {
    ev.preventDefault();
    var rubric = readRubric();
    if (!rubric.name) { fail(new Error("Give the rubric a name.")); $("rubric-name").focus(); return; }
    var file = $("essays-file").files[0];
    var prepared;
    if (file) {
      prepared = readFile(file).then(function (text) {
        var texts = {};
        (parseCsv(text) || []).forEach(function (r) { texts[r.id] = r.text; });
        var form = new FormData();
        form.append("file", file);
        form.append("rubric", JSON.stringify(rubric));
        state.sentBoxes = null;
        return { request: { method: "POST", form: form }, texts: texts };
      });
    } else {
      var read = readBoxes();
      if (read.problems.length) {
        fail(new Error(read.problems[0].message));
        read.problems[0].box.querySelector(".essay-text").focus();
        return;
      }
      if (!read.essays.length) {
        fail(new Error("Write or paste at least one essay into a box, or choose a CSV file."));
        var firstBox = boxes()[0];
        (firstBox ? firstBox.querySelector(".essay-text") : $("add-essay")).focus();
        return;
      }
      state.sentBoxes = read.from;
      var texts = {};
      read.essays.forEach(function (e) { texts[e.id] = e.text; });
      prepared = Promise.resolve({ request: { method: "POST", json: { rubric: rubric, essays: read.essays } },
                                   texts: texts, skipped: read.skipped });
    }
    busy($("grade-submit"), true);
    say("Submitting…");
    prepared.then(function (p) {
      return api("/api/v1/grading-jobs", p.request).then(function (r) {
        saveJobData(r.body.job.id, { rubric: rubric, texts: p.texts });
        startFollowing(r.body.job, rubric, p.texts);
        say("Submitted " + r.body.job.progress.total + " essay(s)" +
            (p.skipped ? " (" + p.skipped + " empty box" + (p.skipped === 1 ? "" : "es") + " left out)" : "") + ". Grading…");
      });
    }).catch(fail).then(function () { busy($("grade-submit"), false); });
  }

  // ---------------------------------------------------------------- progress (long poll)
  function showJob(job) {
    $("job-section").hidden = false;
    $("job-id").textContent = job.id;
    $("job-status").textContent = job.status;
    var total = job.progress.total || 0, done = job.progress.done || 0;
    $("job-progress").max = Math.max(total, 1);
    $("job-progress").value = done;
    $("job-progress-text").textContent = done + " of " + total + (job.progress.failed ? " (" + job.progress.failed + " failed)" : "");
  }

  function follow(job, onChange) {
    var etag = null;
    function poll() {
      var headers = {};
      if (etag) { headers["If-None-Match"] = etag; }
      return api(job.links.self + "?wait=10", { headers: headers }).then(function (r) {
        if (r.status === 200) {
          etag = r.headers.get("ETag");
          job = r.body.job;
          onChange(job);
        }
        if (FINISHED.indexOf(job.status) >= 0) { return job; }
        return poll();
      });
    }
    return poll();
  }

  function startFollowing(job, rubric, texts) {
    var changed = !state.job || state.job.id !== job.id;
    var kept = loadJobData(job.id) || {};
    if (changed) {
      closeReader(false); state.results = []; state.drafts = {}; state.suggested = {}; state.followups = {};
      $("insights").hidden = true; $("personal-info").textContent = "";
    }
    state.job = job;
    state.rubric = rubric || kept.rubric || null;
    state.texts = texts || kept.texts || {};
    sessionStorage.setItem(JOB_KEY, JSON.stringify({ job: job, rubric: state.rubric }));
    showJob(job);
    var lastDone = -1;
    var followed = job.id;
    follow(job, function (j) {
      if (!state.job || state.job.id !== followed) { return; }
      state.job = j;
      showJob(j);
      if (j.progress.done !== lastDone) {
        lastDone = j.progress.done;
        say("Grading: " + j.progress.done + " of " + j.progress.total + " essays done.");
        loadResults();
      }
    }).then(function (j) {
      if (!state.job || state.job.id !== followed) { return; }
      say("Grading " + j.status + ": " + j.progress.done + " of " + j.progress.total + " essays." +
          (j.error && j.error.message ? " " + j.error.message : ""));
      return loadResults();
    }).catch(fail);
  }

  // ---------------------------------------------------------------- results table
  function loadResults() {
    var job = state.job;
    if (!job) { return Promise.resolve(); }
    var out = [];
    function page(cursor) {
      return api(job.links.results + "?limit=200" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""))
        .then(function (r) {
          out = out.concat(r.body.results);
          return r.body.next_cursor ? page(r.body.next_cursor) : out;
        });
    }
    // aria-busy on the table while a read is under way (what assistive technology and the tests wait for)
    state.loading = (state.loading || 0) + 1;
    $("results-table").setAttribute("aria-busy", "true");
    return page(null).then(function (rows) {
      if (!state.job || state.job.id !== job.id) { return; }
      state.results = rows;
      renderResults();
    }).catch(fail).then(function () {
      state.loading -= 1;
      $("results-table").setAttribute("aria-busy", state.loading > 0 ? "true" : "false");
    });
  }

  function fmt(x) { return x === null || x === undefined ? "" : String(Math.round(x * 100) / 100); }
  function isNum(x) { return typeof x === "number" && isFinite(x); }
  function reasons(r) { return (r.review_reasons || []).filter(function (x) { return x; }); }
  function notScoredText(r) {
    var why = reasons(r);
    return "not scored" + (why.length ? ": " + why.join("; ") : " (no reason given)");
  }
  function modelScoreText(r) {
    if (r.status === "failed") { return "not graded"; }
    return isNum(r.score) ? fmt(r.score) : "not scored";
  }
  function when(iso) {
    var d = new Date(iso);
    return isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
  }
  function traitText(v) { return isNum(v) ? fmt(v) : "not scored"; }
  function textOf(r) {
    if (typeof r.text === "string") { return r.text; }   // where the API sends the text itself
    return Object.prototype.hasOwnProperty.call(state.texts, r.essay_id) ? state.texts[r.essay_id] : null;
  }

  function cell(tr, content, cls) {
    var td = document.createElement("td");
    if (content instanceof Node) { td.appendChild(content); } else { td.textContent = content; }
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function list(items) {
    var ul = el("ul");
    items.forEach(function (t) { ul.appendChild(el("li", t)); });
    return ul;
  }

  function frag(parts) {
    var f = document.createDocumentFragment();
    parts.forEach(function (p) { f.appendChild(typeof p === "string" ? document.createTextNode(p) : p); });
    return f;
  }

  function renderResults() {
    var rows = state.results;
    $("results-section").hidden = false;
    showCalibration();
    var body = $("results-body");
    // keep the keyboard focus on the same essay's control across a redraw
    var active = document.activeElement;
    var focusEssay = active && body.contains(active) ? active.closest("tr").getAttribute("data-essay") : null;
    var focusCls = focusEssay ? active.className : null;
    body.textContent = "";
    rows.forEach(function (r, i) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-essay", r.essay_id);
      if (state.reading === r.essay_id) { tr.setAttribute("aria-current", "true"); tr.className = "current"; }
      var th = document.createElement("th");
      th.scope = "row";
      var read = el("button", r.essay_id, "read-button");
      read.type = "button";
      read.setAttribute("aria-label", "Read " + r.essay_id);
      read.addEventListener("click", function (e) { e.stopPropagation(); openReader(i, "title"); });
      th.appendChild(read);
      tr.appendChild(th);
      cell(tr, r.student_ref || "", "wide-only");
      var sc = cell(tr, modelScoreText(r), "score" + (isNum(r.score) ? "" : " not-scored"));
      if (r.previous) {  // a recalibrated class: the earlier score beside the new one
        sc.appendChild(el("span", " (before: " + (isNum(r.previous.score) ? fmt(r.previous.score) : "not scored") + ")", "before"));
      }
      var why = state.suggested[r.essay_id];
      if (why) {
        tr.classList.add("suggested");
        tr.setAttribute("data-suggested", "true");
        th.appendChild(el("span", "Suggested: " + why, "suggest-why"));
      }
      cell(tr, list(traitNames(r).filter(function (k) { return r.traits && k in r.traits; })
        .map(function (k) { return k + ": " + traitText(r.traits[k]); })), "wide-only");
      cell(tr, fmt(r.confidence), "wide-only");
      var flags = reasons(r);
      cell(tr, r.needs_review ? frag([el("span", "Review"), el("span", (flags.length ? ": " + flags.join("; ") : ""), "wide-only")]) : "OK",
           r.needs_review ? "flag" : "");
      cell(tr, list((r.feedback || []).map(function (f) { return (f.trait ? f.trait + ": " : "") + (f.comment || ""); })),
           "wide-only feedback");
      var o = r.override;
      var oc = cell(tr, o ? frag([el("span", fmt(o.score)), el("span", " by " + o.by + " at " + o.at + (o.note ? " — " + o.note : ""), "wide-only")]) : "",
           "override");
      if (why && !o) { oc.appendChild(inlineScore(r)); }
      var btn = el("button", "Override", "override-button");
      btn.type = "button";
      btn.setAttribute("aria-label", "Override the score of essay " + r.essay_id);
      btn.addEventListener("click", function (e) { e.stopPropagation(); openReader(i, "score"); });
      cell(tr, btn, "wide-only");
      tr.addEventListener("click", function () { openReader(i, "title"); });
      body.appendChild(tr);
    });
    if (focusEssay) {
      var again = body.querySelector('tr[data-essay="' + CSS.escape(focusEssay) + '"] .' + focusCls.split(" ")[0]);
      if (again) { again.focus(); }
    }
    if (state.reading !== null) { renderReader(false); }
  }

  // ---------------------------------------------------------------- calibration by example
  // A suggested essay is scored in its row: a number and Save (an override, as from the reading view).
  function inlineScore(r) {
    var f = document.createElement("span");
    f.className = "inline-score";
    var id = "inline-" + r.essay_id.replace(/[^A-Za-z0-9_-]/g, "_");
    var label = el("label", "Your score for " + r.essay_id, "visually-hidden");
    label.htmlFor = id;
    var input = document.createElement("input");
    input.type = "number";
    input.id = id;
    input.className = "inline-input";
    input.setAttribute("data-essay", r.essay_id);
    var sc = (state.rubric && state.rubric.scale) || null;
    if (sc) { input.min = sc.min; input.max = sc.max; input.step = sc.step || 1; }
    var save = el("button", "Save", "inline-save");
    save.type = "button";
    save.setAttribute("aria-label", "Save your score for " + r.essay_id);
    function go(e) {
      if (e) { e.preventDefault(); e.stopPropagation(); }
      var v = parseFloat(input.value);
      if (!isFinite(v)) { fail(new Error("Type a score for " + r.essay_id + " first.")); input.focus(); return; }
      busy(save, true);
      api(state.job.links.self + "/results/" + encodeURIComponent(r.essay_id) + "/override",
          { method: "POST", json: { score: v } }).then(function () {
        say("Your score " + fmt(v) + " for " + r.essay_id + " is saved.");
        return loadResults();
      }).catch(fail).then(function () { busy(save, false); });
    }
    save.addEventListener("click", go);
    input.addEventListener("click", function (e) { e.stopPropagation(); });
    input.addEventListener("keydown", function (e) { if (e.key === "Enter") { go(e); } });
    f.appendChild(label);
    f.appendChild(input);
    f.appendChild(save);
    return f;
  }

  function suggestEssays() {
    if (!state.job) { return; }
    var n = parseInt($("suggest-n").value, 10) || 5;
    busy($("suggest-button"), true);
    api(state.job.links.calibration_suggestions + "?n=" + n).then(function (r) {
      state.suggested = {};
      r.body.suggestions.forEach(function (x) { state.suggested[x.essay_id] = x.why; });
      renderResults();
      say(r.body.suggestions.length + " essay(s) suggested to score first" +
          (r.body.scored ? " (" + r.body.scored + " you scored already are left out)" : "") + ".");
      var first = $("results-body").querySelector("tr.suggested .inline-input");
      if (first) { first.focus(); }
    }).catch(fail).then(function () { busy($("suggest-button"), false); });
  }

  function recalibrate() {
    if (!state.job) { return; }
    busy($("recalibrate-button"), true);
    api(state.job.links.recalibrate, { method: "POST" }).then(function (r) {
      var job = r.body.job;
      say("Regrading the class with your " + job.calibration.examples + " score(s) as job " + job.id + "…");
      startFollowing(job, state.rubric, state.texts);
    }).catch(fail).then(function () { busy($("recalibrate-button"), false); });
  }

  function showCalibration() {
    var job = state.job, info = $("calibration-info");
    var grading = job && job.kind === "grading";
    $("calibration").hidden = !grading;
    if (!grading) { return; }
    var c = job.calibration;
    info.textContent = c ? ("Graded with " + c.examples + " essay(s) you scored (calibration " + c.id + ")" +
      (c.recalibrates ? "; each score shows the one job " + c.recalibrates + " gave beside it." : ".")) :
      "Graded by the default grader alone.";
  }

  // ---------------------------------------------------------------- from grades to learning
  function download(path, fallback) {
    return api(path, { raw: true }).then(function (r) {
      var name = fallback;
      var m = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
      if (m) { name = m[1]; }
      var url = URL.createObjectURL(r.body);
      var a = document.createElement("a");
      a.href = url; a.download = name;
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
      say("Downloaded " + name + ".");
    }).catch(fail);
  }

  function makeFollowUps() {
    if (!state.job) { return; }
    var grading = state.job;
    busy($("followups-button"), true);
    api(grading.links.self + "/follow-ups", { method: "POST" }).then(function (r) {
      var job = r.body.job;
      $("personal-info").textContent = "Writing next steps for " + job.progress.total + " student(s) (job " + job.id + ")…";
      return follow(job, function (j) {
        $("personal-info").textContent = "Next steps: " + j.progress.done + " of " + j.progress.total + " students.";
      }).then(function (j) {
        return api(j.links.results + "?limit=1000").then(function (res) {
          if (!state.job || state.job.id !== grading.id) { return; }
          state.followups = {};
          res.body.results.forEach(function (x) { state.followups[x.essay_id] = x; });
          var flagged = res.body.results.filter(function (x) { return x.needs_review; }).length;
          $("personal-info").textContent = "Next steps are ready for " + res.body.results.length + " student(s)" +
            (flagged ? " (" + flagged + " to look over: see each one's notes)" : "") + ". Open an essay to read them.";
          say("Next steps ready.");
          if (state.reading !== null) { renderReader(false); }
        });
      });
    }).catch(fail).then(function () { busy($("followups-button"), false); });
  }

  function renderFollowUp(r) {
    var box = $("reader-followup");
    box.textContent = "";
    var x = state.followups[r.essay_id];
    if (!x || !x.follow_up) {
      box.appendChild(el("p", "None yet: “Make each student's next steps” writes them.", "hint"));
      return;
    }
    var fu = x.follow_up;
    if (fu.strengths && fu.strengths.length) {
      box.appendChild(el("h5", "What you did well"));
      box.appendChild(list(fu.strengths.map(function (s) { return s.comment; })));
    }
    if (fu.next_steps && fu.next_steps.length) {
      box.appendChild(el("h5", "Next steps"));
      box.appendChild(list(fu.next_steps.map(function (s) { return s.target; })));
    }
    if (fu.exercises && fu.exercises.length) {
      box.appendChild(el("h5", "Practice"));
      var ol = el("ol", null, "exercises");
      fu.exercises.forEach(function (e) {
        var li = el("li", e.instructions);
        var det = document.createElement("details");
        det.appendChild(el("summary", "Answer for the teacher"));
        det.appendChild(el("p", e.answer));
        li.appendChild(det);
        ol.appendChild(li);
      });
      box.appendChild(ol);
    }
    if (x.needs_review) {
      box.appendChild(el("p", "To look over: " + (x.review_reasons || []).join("; "), "flag"));
    }
  }

  function bars(target, dist, scale, label) {
    target.textContent = "";
    var keys = Object.keys(dist || {});
    var max = Math.max.apply(null, keys.map(function (k) { return dist[k]; }).concat([1]));
    var summary = [];
    keys.forEach(function (k) {
      var row = el("div", null, "bar-row");
      row.appendChild(el("span", k, "bar-label"));
      var bar = el("span", null, "bar");
      bar.style.width = Math.round(100 * dist[k] / max) + "%";
      bar.setAttribute("aria-hidden", "true");
      row.appendChild(bar);
      row.appendChild(el("span", String(dist[k]), "bar-count"));
      target.appendChild(row);
      summary.push(dist[k] + " at " + k);
    });
    target.setAttribute("aria-label", label + (scale ? " (" + scale.min + "-" + scale.max + ")" : "") + ": " +
                        (summary.join(", ") || "no scores"));
  }

  function showInsights() {
    if (!state.job) { return; }
    busy($("insights-button"), true);
    api(state.job.links.self + "/insights").then(function (r) {
      var ins = r.body;
      $("insights").hidden = false;
      bars($("chart-holistic"), ins.holistic.distribution, ins.holistic.scale, "Holistic scores");
      var traits = $("chart-traits");
      traits.textContent = "";
      Object.keys(ins.traits).forEach(function (t) {
        traits.appendChild(el("h4", "Trait: " + t + (ins.traits[t].mean !== null ? " (mean " + fmt(ins.traits[t].mean) + ")" : "")));
        var c = el("div", null, "chart");
        c.setAttribute("role", "img");
        traits.appendChild(c);
        bars(c, ins.traits[t].distribution, ins.traits[t].scale, "Trait " + t);
      });
      $("weakest").textContent = "";
      ins.weakest.forEach(function (w) {
        $("weakest").appendChild(el("li", w.trait + ": " + w.students + " of " + w.of + " students in the lower half"));
      });
      $("groups").textContent = "";
      ins.groups.forEach(function (g) {
        $("groups").appendChild(el("li", g.next_step + ": " + g.essay_ids.join(", ")));
      });
      var rv = ins.review;
      $("review-summary").textContent = rv.needs_review + " essay(s) to review" +
        (Object.keys(rv.reasons).length ? " (" + Object.keys(rv.reasons).map(function (k) { return k + ": " + rv.reasons[k]; }).join(", ") + ")" : "") +
        "; " + rv.overridden + " scored by you.";
      say("Class insights for " + ins.graded + " graded essay(s).");
    }).catch(fail).then(function () { busy($("insights-button"), false); });
  }

  function reteach() {
    if (!state.job) { return; }
    busy($("reteach-button"), true);
    api(state.job.links.self + "/reteach", { method: "POST" }).then(function (r) {
      var job = r.body.job;
      $("personal-info").textContent = "A lesson plan on the weakest trait is being written (job " + job.id + ")…";
      return follow(job, function () {}).then(function (j) {
        return api(j.links.results).then(function (res) {
          var plan = res.body.results[0] || {};
          $("personal-info").textContent = "Lesson plan ready: " + ((plan.lesson && plan.lesson.title) || j.status) +
            " (job " + j.id + "; read it in Lesson plans below or through the API).";
          if (plan.markdown) { renderMarkdown(plan.markdown, $("lesson-output")); $("lesson-output").hidden = false; }
        });
      });
    }).catch(fail).then(function () { busy($("reteach-button"), false); });
  }

  // In the table: up / down (and Home / End) move between the essays' buttons;
  // while the reading view is open it follows.
  function tableKeys(e) {
    var t = e.target;
    if (!t.classList || !(t.classList.contains("read-button") || t.classList.contains("override-button"))) { return; }
    var rows = Array.prototype.slice.call($("results-body").children);
    var i = rows.indexOf(t.closest("tr"));
    var j = null;
    if (e.key === "ArrowDown") { j = i + 1; } else if (e.key === "ArrowUp") { j = i - 1; }
    else if (e.key === "Home") { j = 0; } else if (e.key === "End") { j = rows.length - 1; }
    if (j === null) { return; }
    e.preventDefault();
    j = Math.max(0, Math.min(rows.length - 1, j));
    rows[j].querySelector(".read-button").focus();
    if (state.reading !== null) { showEssay(j); }
  }

  // ---------------------------------------------------------------- the reading view
  function indexOfEssay(id) {
    for (var i = 0; i < state.results.length; i++) { if (state.results[i].essay_id === id) { return i; } }
    return -1;
  }

  function openReader(i, focus) {
    showEssay(i);
    if (focus === "score") { $("override-score").focus(); }
    else { $("reader-title").focus(); }
    var reader = $("reader");
    if (reader.scrollIntoView) { reader.scrollIntoView({ block: "nearest" }); }
  }

  function showEssay(i) {
    var r = state.results[i];
    if (!r) { return; }
    rememberDraft();
    state.reading = r.essay_id;
    $("reader").hidden = false;
    $("results-layout").classList.add("reading");
    Array.prototype.forEach.call($("results-body").children, function (tr) {
      var on = tr.getAttribute("data-essay") === r.essay_id;
      tr.className = on ? "current" : "";
      if (on) { tr.setAttribute("aria-current", "true"); } else { tr.removeAttribute("aria-current"); }
    });
    renderReader(true);
    var counted = countedScore(r);
    say("Essay " + (i + 1) + " of " + state.results.length + ": " + r.essay_id + ", " +
        (counted ? "score " + fmt(counted.score) + (counted.mine ? " (yours)" : "") : notScoredText(r)) + ".");
  }

  function move(delta) {
    var i = indexOfEssay(state.reading);
    var j = i + delta;
    if (j < 0 || j >= state.results.length) {
      say(delta > 0 ? "This is the last essay." : "This is the first essay.");
      return;
    }
    showEssay(j);
  }

  function closeReader(focusBack) {
    if (state.reading === null) { return; }
    rememberDraft();
    var id = state.reading;
    state.reading = null;
    $("reader").hidden = true;
    $("results-layout").classList.remove("reading");
    Array.prototype.forEach.call($("results-body").children, function (tr) { tr.className = ""; tr.removeAttribute("aria-current"); });
    if (focusBack) {
      var btn = document.querySelector('#results-body tr[data-essay="' + CSS.escape(id) + '"] .read-button');
      if (btn) { btn.focus(); }
      say("Reading view closed.");
    }
  }

  function countedScore(r) {
    if (r.override && isNum(r.override.score)) { return { score: r.override.score, mine: true }; }
    if (isNum(r.score)) { return { score: r.score, mine: false }; }
    return null;
  }

  function dlRow(dl, term, value, cls) {
    var dt = el("dt", term);
    var dd = document.createElement("dd");
    if (value instanceof Node) { dd.appendChild(value); } else { dd.textContent = value; }
    if (cls) { dd.className = cls; }
    dl.appendChild(dt); dl.appendChild(dd);
    return dd;
  }

  // the rubric's traits in the rubric's order, then any other trait the result has
  function traitNames(r) {
    var names = (rubricOf(r).traits || []).map(function (t) { return t.name; });
    Object.keys(r.traits || {}).forEach(function (k) { if (names.indexOf(k) < 0) { names.push(k); } });
    return names;
  }

  function rubricOf(r) {
    return state.rubric || { scale: null, traits: Object.keys(r.traits || {}).map(function (n) { return { name: n }; }) };
  }

  // refill: the override form is filled anew (another essay, or after a save); otherwise left as typed
  function renderReader(refill) {
    var i = indexOfEssay(state.reading);
    if (i < 0) { closeReader(false); return; }
    var r = state.results[i];
    $("reader-essay").textContent = r.essay_id;
    $("reader-position").textContent = (i + 1) + " of " + state.results.length;
    $("reader-prev").setAttribute("aria-disabled", i === 0 ? "true" : "false");
    $("reader-next").setAttribute("aria-disabled", i === state.results.length - 1 ? "true" : "false");
    $("reader-student").textContent = r.student_ref ? "(student " + r.student_ref + ")" : "";

    var text = textOf(r);
    var view = $("reader-text");
    view.textContent = "";
    view.classList.toggle("missing", text === null);
    if (text === null) {
      view.textContent = "The text of this essay is not in this browser tab: the results the server sends do not " +
        "include it, and this tab did not submit the job. Submit a class from this tab to read the essays here.";
    } else if (!text.trim()) {
      view.textContent = "(This essay is empty.)";
      view.classList.add("missing");
    } else {
      view.textContent = text;   // white-space: pre-wrap keeps its paragraphs
    }
    view.scrollTop = 0;

    // the scores
    var dl = $("reader-scores");
    dl.textContent = "";
    var counted = countedScore(r);
    var o = r.override;
    if (counted) {
      dlRow(dl, "Score that counts", fmt(counted.score) + (counted.mine ? " — your override" : " — the model's"),
            "counts" + (counted.mine ? " mine" : ""));
    } else {
      dlRow(dl, "Score that counts", "none yet — give a score below", "counts none");
    }
    if (r.status === "failed") {
      dlRow(dl, "Model's score", "not graded" + (r.error ? ": " + r.error : ""), "not-scored");
    } else if (isNum(r.score)) {
      dlRow(dl, "Model's score", fmt(r.score) + (o ? " (replaced by your override)" : ""), "model-score");
    } else {
      dlRow(dl, "Model's score", notScoredText(r), "not-scored");
    }
    traitNames(r).forEach(function (k) {
      var model = r.traits ? r.traits[k] : undefined;
      var mine = o && o.traits && isNum(o.traits[k]) ? o.traits[k] : null;
      dlRow(dl, "Trait: " + k, (mine !== null ? fmt(mine) + " — your override; model " : "") +
            (model === undefined ? "—" : traitText(model)), "trait");
    });
    dlRow(dl, "Confidence", isNum(r.confidence) ? fmt(r.confidence) : "—", "confidence");
    if (o) {
      dlRow(dl, "Overridden", "by " + o.by + ", " + when(o.at) + (o.note ? " — " + o.note : ""), "override-by");
    }

    renderFollowUp(r);
    var review = $("reader-review");
    review.textContent = "";
    var why = reasons(r);
    if (r.needs_review) {
      review.appendChild(el("p", "Needs review" + (why.length ? ":" : " (no reason given)."), "flag"));
      if (why.length) { var ul = list(why); ul.className = "reasons"; review.appendChild(ul); }
    } else {
      review.appendChild(el("p", "No review flags."));
    }

    var fb = $("reader-feedback");
    fb.textContent = "";
    var items = (r.feedback || []).map(function (f) { return (f.trait ? f.trait + ": " : "") + (f.comment || ""); });
    fb.appendChild(items.length ? list(items) : el("p", "No feedback."));

    if (refill || $("override-essay").value !== r.essay_id) { fillOverride(r); }
  }

  // ---------------------------------------------------------------- overrides (in the reading view)
  function formValues() {
    var traits = {};
    Array.prototype.forEach.call(document.querySelectorAll("#override-traits input"), function (inp) {
      traits[inp.getAttribute("data-trait")] = inp.value;
    });
    return { score: $("override-score").value, traits: traits, note: $("override-note").value };
  }

  function storedValues(r) {
    var o = r.override, traits = {};
    (rubricOf(r).traits || []).forEach(function (t) {
      var v = o && o.traits ? o.traits[t.name] : undefined;
      traits[t.name] = v === undefined || v === null ? "" : String(v);
    });
    return { score: o ? String(o.score) : (isNum(r.score) ? String(r.score) : ""), traits: traits,
             note: o && o.note ? o.note : "" };
  }

  function rememberDraft() {
    var id = $("override-essay").value;
    var i = indexOfEssay(id);
    if (!id || i < 0) { return; }
    var now = formValues(), was = storedValues(state.results[i]);
    if (JSON.stringify(now) !== JSON.stringify(was)) { state.drafts[id] = now; } else { delete state.drafts[id]; }
  }

  function fillOverride(r, fresh) {
    var rubric = rubricOf(r);
    var s = rubric.scale;
    var v = (!fresh && state.drafts[r.essay_id]) || storedValues(r);
    $("override-legend").textContent = "Your score for essay " + r.essay_id;
    $("override-essay").value = r.essay_id;
    var score = $("override-score");
    if (s) { score.min = s.min; score.max = s.max; score.step = s.step || 1; }
    score.value = v.score;
    $("override-hint").textContent = (s ? "From " + s.min + " to " + s.max + " in steps of " + (s.step || 1) + ". "
      : "On the rubric's scale. ") + "The model gave " + (isNum(r.score) ? fmt(r.score) : "no score") + ".";
    var box = $("override-traits");
    box.textContent = "";
    box.hidden = !(rubric.traits || []).length;
    box.appendChild(el("legend", "Trait scores (optional)"));
    (rubric.traits || []).forEach(function (t, i) {
      var input = document.createElement("input");
      input.type = "number"; input.step = "any"; input.id = "override-trait-" + i; input.name = input.id;
      if (s) { input.min = s.min; input.max = s.max; input.step = s.step || 1; }
      input.setAttribute("data-trait", t.name);
      input.value = v.traits[t.name] === undefined ? "" : v.traits[t.name];
      box.appendChild(field(t.name, input));
    });
    $("override-note").value = v.note;
    $("override-draft").hidden = !state.drafts[r.essay_id] || !!fresh;
  }

  function undoOverride() {
    var i = indexOfEssay($("override-essay").value);
    if (i < 0) { return; }
    delete state.drafts[state.results[i].essay_id];
    fillOverride(state.results[i], true);
    say("Changes undone.");
    $("override-score").focus();
  }

  function saveOverride(ev) {
    ev.preventDefault();
    var essay = $("override-essay").value;
    var traits = {};
    Array.prototype.forEach.call(document.querySelectorAll("#override-traits input"), function (inp) {
      if (inp.value.trim() !== "") { traits[inp.getAttribute("data-trait")] = parseFloat(inp.value); }
    });
    var body = { score: parseFloat($("override-score").value), traits: traits };
    var note = $("override-note").value.trim();
    if (note) { body.note = note; }
    if (isNaN(body.score)) { fail(new Error("Enter a score.")); $("override-score").focus(); return; }
    var save = $("override-save");
    busy(save, true);
    var url = state.job.links.results + "/" + encodeURIComponent(essay) + "/override";
    api(url, { method: "POST", json: body }).then(function (resp) {
      var i = indexOfEssay(essay);
      if (i >= 0) {
        var res = resp.body.result || state.results[i];
        res.override = resp.body.override || res.override;
        state.results[i] = res;
      }
      delete state.drafts[essay];
      renderResults();
      if (i >= 0 && state.reading === essay) { fillOverride(state.results[i], true); }
      say("Override saved for essay " + essay + ": " + fmt(body.score) + ". Your score is the one that counts now.");
    }).catch(fail).then(function () {
      busy(save, false);
      if (!$("reader").hidden) { save.focus(); }
    });
  }

  function readerKeys(e) {
    if (e.key === "Escape") { e.preventDefault(); closeReader(true); return; }
    if (e.ctrlKey || e.altKey || e.metaKey) { return; }
    var t = e.target, tag = t.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || t.isContentEditable) { return; }
    if (e.key === "j" || e.key === "ArrowRight") { e.preventDefault(); move(1); }
    else if (e.key === "k" || e.key === "ArrowLeft") { e.preventDefault(); move(-1); }
  }

  // ---------------------------------------------------------------- CSV download
  function downloadCsv() {
    if (state.job) { download(state.job.links.results + "?format=csv", state.job.id + "-results.csv"); }
  }

  // ---------------------------------------------------------------- lesson plans
  function renderMarkdown(md, target) {
    // A small, safe renderer: headings, bullet and numbered lists, paragraphs. Text only, no HTML.
    target.textContent = "";
    var listEl = null;
    md.replace(/\r\n?/g, "\n").split("\n").forEach(function (line) {
      var h = /^(#{1,6})\s+(.*)$/.exec(line);
      var li = /^\s*(?:[-*]|\d+[.)])\s+(.*)$/.exec(line);
      if (h) {
        listEl = null;
        target.appendChild(el("h" + Math.min(6, h[1].length + 2), h[2]));
      } else if (li) {
        if (!listEl) { listEl = document.createElement(/^\s*\d/.test(line) ? "ol" : "ul"); target.appendChild(listEl); }
        listEl.appendChild(el("li", li[1].replace(/\*\*/g, "")));
      } else if (line.trim()) {
        listEl = null;
        target.appendChild(el("p", line.replace(/\*\*/g, "")));
      } else {
        listEl = null;
      }
    });
  }

  function submitLesson(ev) {
    ev.preventDefault();
    var body = {
      topic: $("lesson-topic").value.trim(),
      subject: $("lesson-subject").value.trim(),
      grade_level: $("lesson-grade").value.trim(),
      duration_minutes: parseInt($("lesson-minutes").value, 10),
      objectives: $("lesson-objectives").value.split("\n").map(function (s) { return s.trim(); })
        .filter(function (s) { return s.length; })
    };
    var notes = $("lesson-notes").value.trim();
    if (notes) { body.notes = notes; }
    if (!body.topic) { fail(new Error("Enter a topic.")); $("lesson-topic").focus(); return; }
    if (!body.subject) { fail(new Error("Enter a subject.")); $("lesson-subject").focus(); return; }
    busy($("lesson-submit"), true);
    var progress = $("lesson-progress");
    api("/api/v1/lesson-jobs", { method: "POST", json: body }).then(function (r) {
      progress.hidden = false;
      progress.textContent = "Writing the plan (job " + r.body.job.id + ")…";
      say("Lesson plan requested; writing it…");
      return follow(r.body.job, function (j) { progress.textContent = "Lesson job " + j.id + ": " + j.status + "."; });
    }).then(function (job) {
      return api(job.links.results).then(function (r) {
        var res = r.body.results[0];
        if (!res || !res.markdown) { throw new Error("The lesson job " + job.status + " without a plan."); }
        var out = $("lesson-output");
        out.hidden = false;
        renderMarkdown(res.markdown, out);
        var title = (res.lesson && res.lesson.title) || body.topic;
        say(res.needs_review
          ? "Lesson plan ready, but it needs your review: " + (res.review_reasons || []).join("; ") + "."
          : "Lesson plan ready: " + title + ". Built from the " + ((res.lesson && res.lesson.structure) || "lesson") +
            " structure; the small model wrote only its short parts, so check them before you teach.");
      });
    }).catch(fail).then(function () { busy($("lesson-submit"), false); });
  }

  // ---------------------------------------------------------------- recent jobs
  function loadJobs() {
    api("/api/v1/jobs?limit=10").then(function (r) {
      var ul = $("jobs-list");
      ul.textContent = "";
      r.body.jobs.forEach(function (j) {
        var li = document.createElement("li");
        li.appendChild(document.createTextNode(j.kind + " " + j.id + " — " + j.status + ", " + j.progress.done + "/" +
          j.progress.total + ", " + j.created_at + " "));
        if (j.kind === "grading") {
          var b = el("button", "Open");
          b.type = "button";
          b.setAttribute("aria-label", "Open the results of job " + j.id);
          b.addEventListener("click", function () { startFollowing(j, null, null); $("job-title").focus(); });
          li.appendChild(b);
        }
        ul.appendChild(li);
      });
      say(r.body.jobs.length + " recent job(s).");
    }).catch(fail);
  }

  // ---------------------------------------------------------------- start
  document.addEventListener("DOMContentLoaded", function () {
    $("signin-form").addEventListener("submit", signIn);
    $("signout-button").addEventListener("click", function () { signOut(false); });
    $("grade-form").addEventListener("submit", submitGrading);
    $("add-essay").addEventListener("click", function () {
      var li = addBox();
      li.querySelector(".essay-text").focus();
      say("Essay box " + boxes().length + " added.");
    });
    $("bulk-split").addEventListener("click", bulkToBoxes);
    $("essays-file").addEventListener("change", fileChosen);
    $("essays-file-clear").addEventListener("click", clearFile);
    $("override-form").addEventListener("submit", saveOverride);
    $("override-form").addEventListener("input", function () { $("override-draft").hidden = false; });
    $("override-cancel").addEventListener("click", undoOverride);
    $("reader").addEventListener("keydown", readerKeys);
    $("reader-prev").addEventListener("click", function () { move(-1); });
    $("reader-next").addEventListener("click", function () { move(1); });
    $("reader-close").addEventListener("click", function () { closeReader(true); });
    $("results-body").addEventListener("keydown", tableKeys);
    $("download-csv").addEventListener("click", downloadCsv);
    $("refresh-results").addEventListener("click", loadResults);
    $("suggest-button").addEventListener("click", suggestEssays);
    $("followups-button").addEventListener("click", makeFollowUps);
    $("insights-button").addEventListener("click", showInsights);
    $("reteach-button").addEventListener("click", reteach);
    $("export-canvas").addEventListener("click", function () {
      if (state.job) { download(state.job.links.results + "?format=canvas", state.job.id + "-canvas.csv"); }
    });
    $("export-classroom").addEventListener("click", function () {
      if (state.job) { download(state.job.links.results + "?format=classroom", state.job.id + "-classroom.csv"); }
    });
    $("export-sheets").addEventListener("click", function () {
      if (state.job) { download(state.job.links.self + "/feedback-sheets", state.job.id + "-feedback.docx"); }
    });
    $("recalibrate-button").addEventListener("click", recalibrate);
    $("lesson-form").addEventListener("submit", submitLesson);
    $("jobs-refresh").addEventListener("click", loadJobs);
    $("job-title").tabIndex = -1;
    if (token()) {
      showSignedIn(true);
      var saved = sessionStorage.getItem(JOB_KEY);
      if (saved) {
        try { var s = JSON.parse(saved); startFollowing(s.job, s.rubric, null); } catch (e) { sessionStorage.removeItem(JOB_KEY); }
      }
    } else {
      showSignedIn(false);
    }
  });
})();
