"""The learning curve of calibration by example: a teacher's own prompt, k essays scored by her.

    python -m workers.ml.evaluation.calibration_curve [--data ../shared/data/asap/train.jsonl]
        [--dev ../shared/data/asap/dev.jsonl] [--draws 10] [--ks 0,1,2,5,10,20,50] [--out var/calibration_curve.json]

Leave one prompt out over the eight ASAP prompts, nested: for held-out prompt P, everything the grader
knows comes from the other seven prompts' train essays (the default recipe fitted without P, the ASAP
graders of the other prompts, theta fitted on the other prompts with each of them held out in turn).
Then on P's essays of one file (train: what the recipe was chosen by; dev: the report), per draw: a
class is a random half of P's essays; k of them are scored by the "teacher" (the human scores), chosen
at random or by the suggestions (workers/ml/grading/suggest.py, from the k=0 scores and confidences
the teacher would see); every other essay of P is graded with the calibration and compared with its
human score. Reported per k: mean holistic QWK over the prompts (random and suggested choice), mean
trait QWK over the prompt-trait pairs (the teacher scored the traits of the same k essays), and the
ECE of the holistic confidence.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from workers.ml import stats
from workers.ml.grading import asap as A
from workers.ml.grading import suggest as S
from workers.ml.grading.calibration import Calibration, Recipe
from workers.ml.training import calibration_fit as CF

KS = (0, 1, 2, 5, 10, 20, 50)


def agreement_probability(mean: np.ndarray, sd: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """(the score given, P(the human score within the prompt's tolerance of it)) from normalised mean and sd."""
    from workers.ml.grading.calibration import scale_agreement

    return scale_agreement(mean, sd, {"min": lo, "max": hi, "step": 1}, A.tolerance(lo, hi))


def prompt_inputs(P: str, split: CF.Split, train: CF.Split, rubrics: dict, theta: dict) -> dict:
    """Everything the curve needs for held-out prompt P on one file's essays."""
    idx = np.where(split.prompts == P)[0]
    others = [q for q in sorted(rubrics, key=int) if q != P]
    model = CF.default_model(train, rubrics, {P})
    out = {"idx": idx, "zm": CF.zoo_mean(split, others, idx), "Z": split.Z[idx],
           "p": CF.default_predict(model, split, idx, CF.scale_points_of(rubrics[P]["score"])),
           "y": CF.normalised_scores(split, rubrics)[idx], "range": rubrics[P]["score"], "traits": {}}
    for t, rng in (rubrics[P].get("traits") or {}).items():
        tm = CF.default_model(train, rubrics, {P}, trait=t)
        pt = out["p"] if tm is None else CF.default_predict(tm, split, idx, CF.scale_points_of(rng))
        out["traits"][t] = {"p": pt, "y": CF.normalised_scores(split, rubrics, t)[idx], "range": rng}
    # what the teacher sees at k = 0: the default scores, with a confidence from the fitted noise alone
    lo, hi = out["range"]
    out["shown"], out["shown_conf"] = agreement_probability(out["p"], np.full(len(idx), 0.12), lo, hi)
    out["texts"] = [split.rows[i]["essay"] for i in idx]
    out["vectors"] = S.text_vectors(out["texts"])
    return out


def calibrated(recipe: Recipe, d: dict, e: np.ndarray, t: np.ndarray, p, y):
    k = len(e)
    base = recipe.base(p, d["zm"], k)
    fit = Calibration.fit(recipe, base[e], d["Z"][e], y[e])
    return fit.predict(base[t], d["Z"][t])


def curve(recipe: Recipe, d: dict, ks, draws: int, seed: int) -> dict:
    """{choice: {k: {"qwk", "traits": {t: qwk}, "conf": [...], "hit": [...]}}} for one prompt's essays."""
    n = len(d["y"])
    lo, hi = d["range"]
    out: dict = {"random": {}, "suggested": {}}
    for k in ks:
        for choice in ("random", "suggested"):
            qs, tq, confs, hits = [], {t: [] for t in d["traits"]}, [], []
            for r in range(draws if k else 1):
                rng = np.random.default_rng(seed + 7919 * r + k)
                klass = np.sort(rng.choice(n, n // 2, replace=False))
                if choice == "random" or k == 0:
                    e = np.sort(rng.choice(klass, min(k, len(klass)), replace=False))
                else:
                    sug = S.suggest([d["shown"][i] for i in klass], [d["shown_conf"][i] for i in klass],
                                    [d["texts"][i] for i in klass], k, vectors=d["vectors"][klass])
                    e = np.sort(klass[[s.index for s in sug]])
                t = np.setdiff1d(np.arange(n), e)
                mean, sd = calibrated(recipe, d, e, t, d["p"], d["y"])
                given, conf = agreement_probability(mean, sd, lo, hi)
                human = d["y"][t] * (hi - lo) + lo
                qs.append(stats.qwk(np.rint(human), given, lo, hi))
                confs.append(conf)
                hits.append(np.abs(np.rint(human) - given) <= A.tolerance(lo, hi))
                for tn, td in d["traits"].items():
                    ok = ~np.isnan(td["y"])
                    ee = e[ok[e]]
                    tt = t[ok[t]]
                    tm, _ = calibrated(recipe, d, ee, tt, td["p"], td["y"])
                    tlo, thi = td["range"]
                    tg = np.clip(np.rint(np.clip(tm, 0, 1) * (thi - tlo)) + tlo, tlo, thi)
                    tq[tn].append(stats.qwk(np.rint(td["y"][tt] * (thi - tlo) + tlo), tg, tlo, thi))
            out[choice][k] = {"qwk": float(np.mean(qs)), "traits": {t: float(np.mean(v)) for t, v in tq.items()},
                              "conf": np.concatenate(confs), "hit": np.concatenate(hits)}
    return out


def run(data: str, dev: str, draws: int = 10, ks=KS, recipe: Recipe | None = None, log=print,
        variant: str = "full") -> dict:
    t0 = time.time()
    rubrics = CF.rubrics_of(data)
    from workers.ml.encoder import Encoder

    enc = Encoder(max_length=512, variant=variant)  # the graders and heads refit on that encoder variant
    asap = A.AsapGrader.load(encoder=enc)
    train = CF.prepare(data, "train", enc, asap, log)
    splits = {"train": train, "dev": CF.prepare(dev, "dev", enc, asap, log)}
    base_recipe = recipe or CF.RECIPE
    per: dict = {s: {} for s in splits}
    for P in sorted(rubrics, key=int):
        theta = CF.fit_theta(train, rubrics, [q for q in sorted(rubrics, key=int) if q != P], log=lambda *_: None)
        rec = Recipe(**{**base_recipe.__dict__, "theta": theta})
        for name, split in splits.items():
            d = prompt_inputs(P, split, train, rubrics, theta)
            per[name][P] = curve(rec, d, ks, draws, seed=int(P) * 1000)
        log(f"held-out prompt {P}: dev QWK by k " + ", ".join(
            f"{k}: {per['dev'][P]['random'][k]['qwk']:.3f}" for k in ks) + f" ({time.time() - t0:.0f}s)")
    report: dict = {"ks": list(ks), "draws": draws, "recipe": {k: v for k, v in base_recipe.__dict__.items() if k != "theta"}}
    for name in splits:
        rows = {}
        for choice in ("random", "suggested"):
            for k in ks:
                cells = [per[name][P][choice][k] for P in per[name]]
                trait_q = [q for c in cells for q in c["traits"].values()]
                conf = np.concatenate([c["conf"] for c in cells])
                hit = np.concatenate([c["hit"] for c in cells])
                rows.setdefault(choice, {})[k] = {
                    "qwk": round(float(np.mean([c["qwk"] for c in cells])), 4),
                    "per_prompt": [round(c["qwk"], 3) for c in cells],
                    "trait_qwk": round(float(np.mean(trait_q)), 4),
                    "ece": round(stats.ece(conf, hit), 4), "mean_confidence": round(float(conf.mean()), 3),
                    "hit_rate": round(float(hit.mean()), 3)}
        report[name] = rows
    report["seconds"] = round(time.time() - t0)
    return report


def table(report: dict) -> str:
    ks = report["ks"]
    lines = ["| | " + " | ".join(f"k={k}" for k in ks) + " |", "|---" * (len(ks) + 1) + "|"]
    for name in ("train", "dev"):
        for label, choice, key in (("holistic QWK, random", "random", "qwk"), ("holistic QWK, suggested", "suggested", "qwk"),
                                   ("trait QWK, random", "random", "trait_qwk"), ("ECE, random", "random", "ece")):
            lines.append(f"| {name}: {label} | " + " | ".join(f"{report[name][choice][k][key]:.3f}" for k in ks) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from threadpoolctl import threadpool_limits

    root = Path(__file__).resolve().parents[3]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(root.parent / "shared/data/asap/train.jsonl"))
    ap.add_argument("--dev", default=None)
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--ks", default=",".join(map(str, KS)))
    ap.add_argument("--out", default=str(root / "var/calibration_curve.json"))
    ap.add_argument("--variant", default="full", help="the encoder variant (workers/ml/variants.py)")
    args = ap.parse_args(argv)
    with threadpool_limits(limits=2):
        rep = run(args.data, args.dev or str(Path(args.data).with_name("dev.jsonl")), args.draws,
                  [int(k) for k in args.ks.split(",")], variant=args.variant)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rep, indent=1))
    print(table(rep))
    print(f"wrote {args.out} ({rep['seconds']}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
