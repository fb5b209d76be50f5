"""The validity report of a grader evaluation: one self-contained HTML file (plots embedded as PNG)
that a district reviewer can open, mail or print, written next to the JSON report.

    render_html(report: dict, path) -> path

`report` is what `eduq grader eval` writes as JSON (see app/cli.py): per prompt the agreement
statistics (QWK, exact and adjacent agreement, standardised mean difference, confusion matrix,
per-trait QWK, confidence vs observed agreement, ECE) and the per-essay arrays the plots are
drawn from (human score, model score, confidence, whether they agree within tolerance).
Optional sections: the stress set of the review flags, leave-one-prompt-out figures of the
rubric-agnostic default grader. Plots use matplotlib's Agg backend (no display needed).
"""
from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np

from workers.ml.stats import ece  # the report's ECE is the grader evaluation's

TARGET_MEAN, TARGET_EACH = 0.80, 0.70
HUMAN_HUMAN = 0.754  # rater 1 vs rater 2 on these essays (ASAP README)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _f(x, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{nd}f}"


def _table(head: list[str], rows: list[list], cls: str = "") -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _arrays(report: dict) -> dict[str, np.ndarray]:
    a = report.get("arrays") or {}
    out = {k: np.asarray(a[k]) for k in ("prompt", "human", "pred", "confidence", "agree") if k in a}
    if "prompt" in out:
        out["prompt"] = out["prompt"].astype(str)
    if "agree" not in out and {"prompt", "human", "pred"} <= set(out):  # within each prompt's tolerance
        tol = np.array([float((report["per_prompt"].get(p) or {}).get("tolerance", 0)) for p in out["prompt"]])
        out["agree"] = (np.abs(out["human"].astype(float) - out["pred"].astype(float)) <= tol).astype(int)
    return out


def plot_distributions(report: dict, arr: dict) -> str | None:
    if not {"prompt", "human", "pred"} <= set(arr):
        return None
    plt = _plt()
    prompts = sorted(report["per_prompt"], key=lambda p: (len(p), p))
    cols = 4
    rows = math.ceil(len(prompts) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
    for ax, p in zip(axes.ravel(), prompts):
        m = arr["prompt"] == p
        h, y = arr["human"][m].astype(float), arr["pred"][m].astype(float)
        lo, hi = _range(report["per_prompt"][p], h, y)
        if hi - lo <= 12:
            xs = np.arange(lo, hi + 1)
            ax.bar(xs - 0.2, [np.sum(h == x) for x in xs], width=0.4, label="human", color="#4c72b0")
            ax.bar(xs + 0.2, [np.sum(y == x) for x in xs], width=0.4, label="model", color="#dd8452")
        else:
            edges = np.linspace(lo - 0.5, hi + 0.5, 13)
            ax.hist([h, y], bins=edges, label=["human", "model"], color=["#4c72b0", "#dd8452"])
        ax.set_title(f"prompt {p} (n={int(m.sum())})", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(prompts):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle("Score distributions: human (resolved) vs model", fontsize=10)
    return _png(fig)


def plot_calibration(arr: dict, bins: int = 10) -> str | None:
    if not {"confidence", "agree"} <= set(arr) or not len(arr["confidence"]):
        return None
    plt = _plt()
    conf, agree = arr["confidence"].astype(float), arr["agree"].astype(float)
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    xs, ys, ns = [], [], []
    for b in range(bins):
        m = idx == b
        if m.sum() >= 5:
            xs.append(conf[m].mean())
            ys.append(agree[m].mean())
            ns.append(int(m.sum()))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    a1.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    a1.plot(xs, ys, "o-", color="#c44e52", label="model")
    for x, y, n in zip(xs, ys, ns):
        a1.annotate(str(n), (x, y), fontsize=6, xytext=(3, -8), textcoords="offset points")
    a1.set_xlabel("stated confidence")
    a1.set_ylabel("observed agreement with the human score")
    a1.set_xlim(0, 1)
    a1.set_ylim(0, 1)
    a1.legend(fontsize=7)
    a1.set_title(f"Calibration (ECE {ece(conf, agree, bins):.3f})", fontsize=10)
    a2.hist(conf, bins=20, range=(0, 1), color="#55a868")
    a2.set_xlabel("stated confidence")
    a2.set_ylabel("essays")
    a2.set_title("Confidence given", fontsize=10)
    return _png(fig)


def plot_confusions(report: dict) -> str | None:
    prompts = [p for p in sorted(report["per_prompt"], key=lambda p: (len(p), p))
               if report["per_prompt"][p].get("confusion")]
    if not prompts:
        return None
    plt = _plt()
    cols = 4
    rows = math.ceil(len(prompts) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, p in zip(axes.ravel(), prompts):
        cm = np.asarray(report["per_prompt"][p]["confusion"], float)
        lo = _range(report["per_prompt"][p])[0]
        ax.imshow(cm, cmap="Blues")
        n = cm.shape[0]
        if n <= 7:
            for i in range(n):
                for j in range(n):
                    if cm[i, j]:
                        ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if cm[i, j] > cm.max() / 2 else "black")
        ticks = range(0, n, max(1, n // 6))
        ax.set_xticks(list(ticks), [str(int(lo + t)) for t in ticks], fontsize=7)
        ax.set_yticks(list(ticks), [str(int(lo + t)) for t in ticks], fontsize=7)
        ax.set_xlabel("model", fontsize=7)
        ax.set_ylabel("human", fontsize=7)
        ax.set_title(f"prompt {p}", fontsize=9)
    for ax in axes.ravel()[len(prompts):]:
        ax.axis("off")
    fig.suptitle("Confusion matrices (rows: human score, columns: model score)", fontsize=10)
    return _png(fig)


def _range(pp: dict, *arrays) -> tuple[int, int]:
    r = pp.get("range") or pp.get("score_range")
    if r:
        return int(r[0]), int(r[1])
    vals = np.concatenate([np.asarray(a, float) for a in arrays]) if arrays else np.array([0.0])
    return int(vals.min()), int(vals.max())


def _img(src: str | None, alt: str) -> str:
    return f'<p><img alt="{html.escape(alt)}" src="{src}"></p>' if src else ""


def render_html(report: dict, path: str | Path) -> Path:
    path = Path(path)
    per = report["per_prompt"]
    prompts = sorted(per, key=lambda p: (len(p), p))
    arr = _arrays(report)
    mean = report.get("mean_qwk")
    worst = min((per[p]["qwk"] for p in prompts), default=float("nan"))
    ok_mean = mean is not None and mean >= TARGET_MEAN
    ok_each = worst >= TARGET_EACH
    each_cls, each_txt = ('ok', 'every prompt') if ok_each else ('bad', 'not every prompt')
    rows = []
    for p in prompts:
        v = per[p]
        lo, hi = _range(v)
        rows.append([p, f"{lo}–{hi}", _f(v.get("n")), _f(v.get("qwk")), _f(v.get("exact")), _f(v.get("adjacent")),
                     _f(v.get("smd")), _f(v.get("mean_confidence")), _f(v.get("observed_agreement")),
                     _f(v.get("ece"))])
    rows.append(["<b>mean</b>", "", _f(report.get("n")), f"<b>{_f(mean)}</b>", "", "", "", "", "", _f(report.get("ece"))])
    trait_rows = []
    for p in prompts:
        for t, q in (per[p].get("trait_qwk") or per[p].get("traits") or {}).items():
            q = q.get("qwk") if isinstance(q, dict) else q
            trait_rows.append([p, html.escape(t), _f(q)])
    parts = [f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Validity report: {html.escape(str(report.get('model', '')))}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.45}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
th{{background:#f3f3f3}}td:first-child,th:first-child{{text-align:left}}.ok{{color:#1a7f37}}.bad{{color:#b42318}}
img{{max-width:100%}}code{{background:#f6f6f6;padding:0 3px}}</style></head><body>
<h1>Validity report</h1>
<p>Model <code>{html.escape(str(report.get('model', '')))}</code>
(version <code>{html.escape(str(report.get('model_version', '')))}</code>)
on <code>{html.escape(str(report.get('data', '')))}</code>: {_f(report.get('n'))} essays scored by human raters, each graded
against its own prompt's rubric. The model never saw these essays while it was trained or tuned
(trained on <code>train.jsonl</code>; every choice made by cross-validation there).</p>
<h2>Summary</h2>
<ul>
<li>Mean quadratic weighted kappa (QWK) over prompts: <b>{_f(mean)}</b> —
<span class="{'ok' if ok_mean else 'bad'}">{'meets' if ok_mean else 'below'} the target of {TARGET_MEAN}</span>;
two human raters agree at {HUMAN_HUMAN} on these essays.</li>
<li>Lowest prompt: {_f(worst)} —
<span class="{each_cls}">{each_txt} at or above {TARGET_EACH}</span>.</li>
<li>Mean trait QWK: {_f(report.get('mean_trait_qwk'))}.
Share of essays flagged for review: {_f(report.get('needs_review_share'))}.</li>
</ul>
<h2>Agreement with human raters, per prompt</h2>
<p>QWK: agreement beyond chance, penalising large disagreements more (1 = perfect, 0 = chance).
Exact / adjacent: share of essays where the model's score equals the human score / is within one
point (for the wide 0–30 and 0–60 scales of prompts 7 and 8: within the tolerance stated below).
SMD: standardised mean difference, (mean model − mean human) / pooled SD; |SMD| &gt; 0.15 means the
model is systematically harsher or more lenient. Confidence: the model's stated probability of
agreeing with the human score; observed: how often it did; ECE: the gap between the two.</p>
{_table(["prompt", "range", "n", "QWK", "exact", "adjacent", "SMD", "mean confidence", "observed agreement", "ECE"], rows)}
"""]
    if report.get("tolerance_note"):
        parts.append(f"<p>{html.escape(report['tolerance_note'])}</p>")
    parts.append(_img(plot_distributions(report, arr), "score distributions"))
    parts.append(_img(plot_confusions(report), "confusion matrices"))
    parts.append("<h2>Calibration of the confidence</h2>"
                 "<p>Essays grouped by stated confidence; each point is a group's mean confidence against how "
                 "often the model's score agreed with the human score in that group (numbers: essays). Points on "
                 "the diagonal mean a teacher can take the confidence at its word.</p>")
    parts.append(_img(plot_calibration(arr), "calibration"))
    if trait_rows:
        parts.append("<h2>Trait scores</h2><p>QWK of each trait score against the human trait score "
                     "(ASAP++ annotations for prompts 1–6; the two raters' summed trait scores for prompts 7–8).</p>")
        parts.append(_table(["prompt", "trait", "QWK"], trait_rows))
    stress = report.get("stress")
    if stress:
        parts.append("<h2>Review flags: stress set</h2><p>Real dev essays altered the way careless or gaming "
                     "submissions look; a flag should catch them while leaving real essays alone.</p>")
        kinds = stress.get("kinds") or stress.get("per_kind") or {}
        srows = []
        for k, v in kinds.items():
            if isinstance(v, dict):
                srows.append([html.escape(k), _f(v.get("n")), _f(v.get("caught") if "caught" in v else v.get("catch_rate"))])
            else:
                srows.append([html.escape(k), "", _f(v)])
        if srows:
            parts.append(_table(["altered essays", "n", "caught (share flagged)"], srows))
        parts.append(f"<p>Overall catch rate: <b>{_f(stress.get('catch_rate') or stress.get('overall'))}</b> (target ≥ 0.90); "
                     f"real dev essays flagged: <b>{_f(stress.get('real_flag_rate') or stress.get('false_positive_rate'))}</b>"
                     " (target ≤ 0.05).</p>")
    lopo = report.get("lopo")
    if lopo:
        parts.append("<h2>Rubric-agnostic default grader, leave one prompt out</h2><p>The grader used for a "
                     "teacher's own rubric, trained on seven prompts and measured on the eighth, as it meets a new rubric.</p>")
        lrows = [[p, _f(q.get("qwk") if isinstance(q, dict) else q)] for p, q in (lopo.get("per_prompt") or {}).items()]
        lrows.append(["<b>mean</b>", f"<b>{_f(lopo.get('mean_qwk'))}</b>"])
        parts.append(_table(["held-out prompt", "QWK"], lrows))
    parts.append("<h2>How to read this</h2><ul><li>The scores of a machine grader are a second reader, not a "
                 "verdict: essays flagged <i>needs review</i> (low confidence, off-topic, word salad, copied prompt, "
                 "repeated text, very short, not English) should be read by a teacher.</li>"
                 "<li>Agreement is measured against the resolved human score of the ASAP data set; a district's own "
                 "students, prompts and raters may differ — fine-tune on a district's own scored essays and re-run "
                 "this report (<code>eduq grader eval</code>).</li></ul></body></html>")
    path.write_text("\n".join(parts))
    return path
