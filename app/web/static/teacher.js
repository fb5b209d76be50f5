// EduQueue teacher page: vanilla JS, no build step, no CDN. Talks to /api/v1 on this origin.
// The bearer token lives in sessionStorage only (gone when the tab closes).
"use strict";

(function () {
  var TOKEN_KEY = "eduq.token";
  var JOB_KEY = "eduq.gradingJob";
  var FINISHED = ["succeeded", "failed", "cancelled"];
  var state = { job: null, rubric: null, results: [] };

  function $(id) { return document.getElementById(id); }
  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  // ---------------------------------------------------------------- messages (aria-live)
  function say(msg) { $("alert").textContent = ""; $("status").textContent = msg; }
  function fail(err) {
    var box = $("alert");
    box.textContent = "";
    var p = document.createElement("p");
    p.textContent = err.message || String(err);
    box.appendChild(p);
    if (err.details && err.details.length) {
      var ul = document.createElement("ul");
      err.details.forEach(function (d) {
        var li = document.createElement("li");
        li.textContent = (d.line ? "line " + d.line + ", " : "") + (d.field ? d.field + ": " : "") + (d.message || "");
        ul.appendChild(li);
      });
      box.appendChild(ul);
    }
    $("status").textContent = "";
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
      var read = opts.raw ? resp.blob() : (type.indexOf("json") >= 0 ? resp.json() : resp.text());
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

  // ---------------------------------------------------------------- sign in / out
  function showSignedIn(on) {
    $("signin-section").hidden = on;
    $("account-section").hidden = !on;
    $("app").hidden = !on;
  }

  function signOut(expired) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(JOB_KEY);
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
      say("Signed in.");
      $("rubric-name").focus();
    }).catch(function (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      fail(err.status === 401 ? new Error("That token was not accepted.") : err);
    }).then(function () { busy($("signin-button"), false); });
  }

  // ---------------------------------------------------------------- the class and rubric
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

  // Pasted essays: a tab-separated table (id, text, student_ref; header optional) or
  // blank-line-separated blocks, one essay per block.
  function parseEssays(raw) {
    var text = raw.replace(/\r\n?/g, "\n");
    if (text.indexOf("\t") >= 0) {
      var rows = text.split("\n").filter(function (l) { return l.trim().length; })
        .map(function (l) { return l.split("\t"); });
      var cols = { id: 0, text: 1, student_ref: 2 };
      var first = rows[0].map(function (c) { return c.trim().toLowerCase(); });
      if (first.indexOf("text") >= 0) {
        cols = { id: first.indexOf("id"), text: first.indexOf("text"), student_ref: first.indexOf("student_ref") };
        rows = rows.slice(1);
      }
      return rows.map(function (r, i) {
        var e = { id: (cols.id >= 0 && r[cols.id] || "").trim() || ("essay-" + (i + 1)), text: (r[cols.text] || "").trim() };
        var ref = cols.student_ref >= 0 ? (r[cols.student_ref] || "").trim() : "";
        if (ref) { e.student_ref = ref; }
        return e;
      });
    }
    return text.split(/\n\s*\n/).map(function (b) { return b.trim(); }).filter(function (b) { return b.length; })
      .map(function (b, i) { return { id: "essay-" + (i + 1), text: b }; });
  }

  function submitGrading(ev) {
    ev.preventDefault();
    var rubric = readRubric();
    if (!rubric.name) { fail(new Error("Give the rubric a name.")); $("rubric-name").focus(); return; }
    var file = $("essays-file").files[0];
    var request;
    if (file) {
      var form = new FormData();
      form.append("file", file);
      form.append("rubric", JSON.stringify(rubric));
      request = { method: "POST", form: form };
    } else {
      var essays = parseEssays($("essays-text").value);
      if (!essays.length) { fail(new Error("Paste at least one essay or choose a CSV file.")); $("essays-text").focus(); return; }
      request = { method: "POST", json: { rubric: rubric, essays: essays } };
    }
    busy($("grade-submit"), true);
    say("Submitting…");
    api("/api/v1/grading-jobs", request).then(function (r) {
      startFollowing(r.body.job, rubric);
      say("Submitted " + r.body.job.progress.total + " essay(s). Grading…");
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

  function startFollowing(job, rubric) {
    state.job = job;
    state.rubric = rubric || state.rubric;
    sessionStorage.setItem(JOB_KEY, JSON.stringify({ job: job, rubric: state.rubric }));
    showJob(job);
    var lastDone = -1;
    follow(job, function (j) {
      state.job = j;
      showJob(j);
      if (j.progress.done !== lastDone) {
        lastDone = j.progress.done;
        say("Grading: " + j.progress.done + " of " + j.progress.total + " essays done.");
        loadResults();
      }
    }).then(function (j) {
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
    return page(null).then(function (rows) { state.results = rows; renderResults(rows); }).catch(fail);
  }

  function fmt(x) { return x === null || x === undefined ? "" : String(Math.round(x * 100) / 100); }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    if (text instanceof Node) { td.appendChild(text); } else { td.textContent = text; }
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }

  function list(items) {
    var ul = document.createElement("ul");
    items.forEach(function (t) { var li = document.createElement("li"); li.textContent = t; ul.appendChild(li); });
    return ul;
  }

  function renderResults(rows) {
    $("results-section").hidden = false;
    var body = $("results-body");
    body.textContent = "";
    rows.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-essay", r.essay_id);
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = r.essay_id;
      tr.appendChild(th);
      cell(tr, r.student_ref || "");
      cell(tr, r.status === "failed" ? "not graded" : fmt(r.score), "score");
      cell(tr, list(Object.keys(r.traits || {}).map(function (k) { return k + ": " + fmt(r.traits[k]); })));
      cell(tr, fmt(r.confidence));
      cell(tr, r.needs_review ? "Review: " + (r.review_reasons || []).join("; ") : "OK", r.needs_review ? "flag" : "");
      cell(tr, list((r.feedback || []).map(function (f) { return (f.trait ? f.trait + ": " : "") + f.comment; })));
      var o = r.override;
      cell(tr, o ? fmt(o.score) + " by " + o.by + " at " + o.at + (o.note ? " — " + o.note : "") : "", "override");
      var btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = "Override";
      btn.className = "override-button";
      btn.setAttribute("aria-label", "Override the score of essay " + r.essay_id);
      btn.addEventListener("click", function () { openOverride(r, btn); });
      cell(tr, btn);
      body.appendChild(tr);
    });
  }

  // ---------------------------------------------------------------- overrides
  var overrideOpener = null;

  function openOverride(r, opener) {
    overrideOpener = opener;
    // A job opened from the list has no rubric here: the traits come from its results then,
    // and the server checks the scale.
    var rubric = state.rubric || { scale: null, traits: Object.keys(r.traits || {}).map(function (n) { return { name: n }; }) };
    var s = rubric.scale;
    $("override-form").hidden = false;
    $("override-legend").textContent = "Override the score of essay " + r.essay_id;
    $("override-essay").value = r.essay_id;
    var score = $("override-score");
    if (s) { score.min = s.min; score.max = s.max; score.step = s.step || 1; }
    score.value = r.override ? r.override.score : (r.score === null ? "" : r.score);
    $("override-hint").textContent = (s ? "From " + s.min + " to " + s.max + " in steps of " + (s.step || 1) + ". "
      : "On the rubric's scale. ") + "The model gave " + (r.score === null ? "no score" : fmt(r.score)) + ".";
    var box = $("override-traits");
    box.textContent = "";
    (rubric.traits || []).forEach(function (t, i) {
      var div = document.createElement("div");
      div.className = "field";
      var id = "override-trait-" + i;
      var label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = "Trait: " + t.name + " (optional)";
      var input = document.createElement("input");
      input.type = "number"; input.step = "any"; input.id = id; input.name = id;
      input.setAttribute("data-trait", t.name);
      var prev = r.override && r.override.traits ? r.override.traits[t.name] : undefined;
      input.value = prev === undefined ? "" : prev;
      div.appendChild(label); div.appendChild(input); box.appendChild(div);
    });
    $("override-note").value = r.override && r.override.note ? r.override.note : "";
    score.focus();
  }

  function closeOverride() {
    $("override-form").hidden = true;
    if (overrideOpener && document.body.contains(overrideOpener)) { overrideOpener.focus(); }
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
    busy($("override-save"), true);
    var url = state.job.links.results + "/" + encodeURIComponent(essay) + "/override";
    api(url, { method: "POST", json: body }).then(function () {
      say("Override saved for essay " + essay + ": " + body.score + ".");
      return loadResults();
    }).then(function () {
      $("override-form").hidden = true;
      var btn = document.querySelector('tr[data-essay="' + CSS.escape(essay) + '"] .override-button');
      if (btn) { btn.focus(); }
    }).catch(fail).then(function () { busy($("override-save"), false); });
  }

  // ---------------------------------------------------------------- CSV download
  function downloadCsv() {
    if (!state.job) { return; }
    api(state.job.links.results + "?format=csv", { raw: true }).then(function (r) {
      var name = state.job.id + "-results.csv";
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
        var el = document.createElement("h" + Math.min(6, h[1].length + 2));
        el.textContent = h[2]; target.appendChild(el);
      } else if (li) {
        if (!listEl) { listEl = document.createElement(/^\s*\d/.test(line) ? "ol" : "ul"); target.appendChild(listEl); }
        var item = document.createElement("li"); item.textContent = li[1].replace(/\*\*/g, ""); listEl.appendChild(item);
      } else if (line.trim()) {
        listEl = null;
        var p = document.createElement("p"); p.textContent = line.replace(/\*\*/g, ""); target.appendChild(p);
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
        say("Lesson plan ready: " + ((res.lesson && res.lesson.title) || body.topic) + ".");
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
          var b = document.createElement("button");
          b.type = "button"; b.textContent = "Open";
          b.setAttribute("aria-label", "Open the results of job " + j.id);
          b.addEventListener("click", function () { startFollowing(j, null); $("job-title").focus(); });
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
    $("override-form").addEventListener("submit", saveOverride);
    $("override-cancel").addEventListener("click", closeOverride);
    $("override-form").addEventListener("keydown", function (e) { if (e.key === "Escape") { closeOverride(); } });
    $("download-csv").addEventListener("click", downloadCsv);
    $("refresh-results").addEventListener("click", loadResults);
    $("lesson-form").addEventListener("submit", submitLesson);
    $("jobs-refresh").addEventListener("click", loadJobs);
    $("job-title").tabIndex = -1;
    if (token()) {
      showSignedIn(true);
      var saved = sessionStorage.getItem(JOB_KEY);
      if (saved) {
        try { var s = JSON.parse(saved); startFollowing(s.job, s.rubric); } catch (e) { sessionStorage.removeItem(JOB_KEY); }
      }
    } else {
      showSignedIn(false);
    }
  });
})();
