"""Fit the calibration recipe (workers/ml/grading/calibration.py) and write artifacts/calibration.json.

    python -m workers.ml.training.calibration_fit [--data ../shared/data/asap/train.jsonl] [--out PATH]

What is fitted is `theta`: how the default grader's prediction p and the ASAP graders' mean zm combine
into one ranking inside a prompt. Honestly, as on a prompt nobody trained on: for each ASAP prompt Q,
p comes from the default recipe fitted without Q's essays and zm averages the ASAP graders of the
other prompts; the regression is within prompts (each prompt's means removed), pooled. The Gaussian
process's scales (level_sd, emb_sd, noise_sd, link_n0, min_shape, slope_sd, slope_from, sd_scale, resid_n0,
sd_scale_level) were chosen by the leave-one-prompt-out
learning curve on train.jsonl (workers/ml/evaluation/calibration_curve.py; docs/grading.md) and are
constants here. Data: train.jsonl only.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workers.ml.grading.calibration import ARTIFACT, Recipe

RECIPE = Recipe(version="cal-gp-v1", level_sd=0.1, emb_sd=0.2, noise_sd=0.12, link_n0=5.0, min_shape=3,
                slope_sd=0.4, slope_from=30, sd_scale=0.8, sd_scale_level=1.3, resid_n0=10.0)


@dataclass
class Split:
    rows: list[dict]
    prompts: np.ndarray   # the ASAP prompt of each row, as a string
    E: np.ndarray         # plain MiniLM embeddings (what the default head reads)
    Z: np.ndarray         # every hidden state, unit norm (what the calibration's kernel reads)
    F: np.ndarray         # rater-v1 features
    zoo: dict             # "hol_Q" and "tr_Q_trait" -> each ASAP grader's normalised prediction


def load_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def prepare(path: str, tag: str, encoder=None, asap=None, log=print) -> Split:
    """Embeddings (cached in var/cache), features and the eight ASAP graders' predictions of a file."""
    from workers.ml.embedding_cache import cached_embed
    from workers.ml.encoder import AllLayers, Encoder
    from workers.ml.grading import asap as A
    from workers.ml.grading import features as F

    t0 = time.time()
    rows = load_jsonl(path)
    texts = [r["essay"] for r in rows]
    encoder = encoder or Encoder(max_length=512)
    asap = asap or A.AsapGrader.load(encoder=encoder)
    allz = cached_embed(AllLayers(encoder), texts, tag, verbose=False)
    plain = allz[:, -encoder.dim:]
    feats = F.rater_matrix(texts)
    Xa, Xng = A.feature_matrix(texts, asap.feature_set), A.ngram_matrix(texts)
    zoo = {}
    for q, m in asap.models.items():
        lo, hi = m["range"]
        r = A.predict_prompt(m, texts, allz * asap.emb_scale, Xa, Xng)
        zoo[f"hol_{q}"] = (r["pred"] - lo) / (hi - lo)
        for t, v in r["trait_pred"].items():
            tlo, thi = m["traits"][t]["range"]
            zoo[f"tr_{q}_{t}"] = (v - tlo) / (thi - tlo)
    log(f"prepared {tag}: {len(rows)} essays in {time.time() - t0:.0f}s")
    return Split(rows, np.array([str(r["prompt"]) for r in rows]), plain.astype(np.float64),
                 (allz / np.sqrt(encoder.n_states)).astype(np.float64), feats, zoo)


def zoo_mean(split: Split, graders: list[str], idx=None) -> np.ndarray:
    cols = np.stack([split.zoo[f"hol_{q}"] for q in graders], 1)
    return (cols if idx is None else cols[idx]).mean(1)


def rubrics_of(path: str) -> dict:
    return json.loads(Path(path).with_name("rubrics.json").read_text())["prompts"]


def normalised_scores(split: Split, rubrics: dict, trait: str | None = None) -> np.ndarray:
    out = []
    for r in split.rows:
        p = str(r["prompt"])
        if trait is None:
            lo, hi = rubrics[p]["score"]
            out.append((float(r["score"]) - lo) / (hi - lo))
        else:
            rng = (rubrics[p].get("traits") or {}).get(trait)
            v = (r.get("traits") or {}).get(trait)
            out.append(np.nan if rng is None or v is None else (float(v) - rng[0]) / (rng[1] - rng[0]))
    return np.array(out, dtype=np.float64)


def default_model(split: Split, rubrics: dict, without: set[str], trait: str | None = None):
    """The default grader's recipe (default_head.fit_recipe) fitted on the train essays of every prompt
    not in `without` (for a trait: the prompts that have it); None where no such prompt is left."""
    from workers.ml.training import default_head as T

    y = normalised_scores(split, rubrics, trait)
    m = ~np.isin(split.prompts, list(without)) & ~np.isnan(y)
    if not m.any():
        return None
    key = "score" if trait is None else None
    points = {p: T.scale_points({"min": (v[key] if key else v["traits"][trait])[0],
                                 "max": (v[key] if key else v["traits"][trait])[1], "step": 1})
              for p, v in rubrics.items() if key or trait in (v.get("traits") or {})}
    keep = T.feature_keep(ideas=trait in T.IDEAS_TRAITS) if trait else T.feature_keep()
    model = T.fit_recipe(split.E[m], split.F[m], y[m], split.prompts[m], points, T.ALPHA, keep=keep)
    model["points"] = points
    return model


def default_predict(model, split: Split, idx, points: float) -> np.ndarray:
    from workers.ml.training import default_head as T

    return T.apply_recipe(model, split.E[idx], split.F[idx], points)


def scale_points_of(lo_hi) -> float:
    from workers.ml.training import default_head as T

    return T.scale_points({"min": lo_hi[0], "max": lo_hi[1], "step": 1})


def fit_theta(split: Split, rubrics: dict, prompts: list[str], log=print) -> dict:
    """theta over `prompts` (each one's p from the default recipe fitted on the others of `prompts`,
    its zm from the other prompts' ASAP graders): within-prompt least squares of y on (p, zm)."""
    X, Y, P, ZM = [], [], [], []
    y = normalised_scores(split, rubrics)
    for q in prompts:
        others = [o for o in prompts if o != q]
        model = default_model(split, rubrics, set(rubrics) - set(others))
        idx = np.where(split.prompts == q)[0]
        p = default_predict(model, split, idx, scale_points_of(rubrics[q]["score"]))
        zm = zoo_mean(split, others, idx)
        X.append(np.stack([p - p.mean(), zm - zm.mean()], 1))
        Y.append(y[idx] - y[idx].mean())
        P.append(p)
        ZM.append(zm)
    t1, t2 = np.linalg.lstsq(np.concatenate(X), np.concatenate(Y), rcond=None)[0]
    theta = {"c": round(float(np.concatenate(P).mean()), 5), "zc": round(float(np.concatenate(ZM).mean()), 5),
             "t1": round(float(t1), 5), "t2": round(float(t2), 5)}
    log(f"theta over prompts {','.join(prompts)}: {theta}")
    return theta


def main(argv: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[3].parent / "shared/data/asap/train.jsonl"))
    ap.add_argument("--out", default=str(ARTIFACT))
    args = ap.parse_args(argv)
    t0 = time.time()
    with threadpool_limits(limits=2):
        rubrics = rubrics_of(args.data)
        split = prepare(args.data, "train")
        theta = fit_theta(split, rubrics, sorted(rubrics, key=int))
    meta = dict(RECIPE.__dict__, theta=theta, trained_on=Path(args.data).name,
                note="scales chosen by workers/ml/evaluation/calibration_curve.py on train.jsonl (docs/grading.md)")
    Path(args.out).write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {args.out} in {time.time() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
