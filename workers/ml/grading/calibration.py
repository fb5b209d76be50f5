"""Calibration by example: the default grader on a teacher's own prompt, taught by the essays she scored.

    recipe = Recipe.load()                                   artifacts/calibration.json
    fit = Calibration.fit(recipe, base_e, Z_e, y_e)          k scored examples of one target
    mean, sd = fit.predict(base_t, Z_t)                      any essay, in normalised units (0 = min, 1 = max)

Every number is on the rubric's normalised scale (y = (score - min) / (max - min)), one fit per target
(the holistic score, and each trait the teacher scored on enough examples). Three inputs per essay:

  p    the default grader's continuous prediction, after its spread law for the rubric's scale;
  zm   the mean normalised prediction of the eight shipped ASAP graders (each trained on one prompt's
       essays; on a new prompt none of them knows the topic, but together they rank its essays better
       than the pooled head does: r 0.70-0.84 against 0.62-0.78 on held-out prompts, docs/grading.md);
  Z    every MiniLM hidden state, mean-pooled and L2-normalised, over sqrt(7) (unit norm).

The base of an essay: p while the teacher has scored fewer than `min_shape` essays; from then on
p + (t1 - 1)(p - c) + t2 (zm - zc), the within-prompt combination of the two rankings fitted on the
eight ASAP prompts, each prompt's inputs from models that never saw it (`theta`). Around that base a
Gaussian process on the residuals of the scored examples: a shared level (sd `level_sd`) and, from
`min_shape` examples on, a linear kernel on Z (sd `emb_sd`), noise `noise_sd`. With 1-2 examples a
calibration shifts the level only. From `min_shape` on, the posterior means are put on the examples'
spread: the leave-one-out predictions of the examples are mapped onto their human mean and sd, the sd
ratio shrunk towards 1 by k / (k + link_n0) and kept in [0.5, 2] (a few inconsistent examples cannot
blow a scale up or collapse it).

Scores depend only on the essay, the rubric and the scored examples: never on the other essays of a job.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ARTIFACT = Path(__file__).resolve().parent / "artifacts" / "calibration.json"
RATIO_RANGE = (0.5, 2.0)


@dataclass(frozen=True)
class Recipe:
    version: str = "cal-gp-v1"
    level_sd: float = 0.1
    emb_sd: float = 0.2
    noise_sd: float = 0.12
    link_n0: float = 5.0
    min_shape: int = 3
    slope_sd: float = 0.0  # from slope_from examples on, a slope on the base as well (prior sd of its change)
    slope_from: int = 20
    sd_scale: float = 1.0  # the predictive sd's factor from min_shape examples on, chosen by ECE on train
    sd_scale_level: float = 1.0  # the same below min_shape (a level shift only: the base's own errors remain)
    resid_n0: float = 0.0  # > 0: the sd also follows the examples' own leave-one-out errors, this many prior pseudo-examples
    theta: dict = field(default_factory=lambda: {"c": 0.5, "zc": 0.5, "t1": 1.0, "t2": 0.0})

    @classmethod
    def load(cls, path: str | Path | None = None) -> Recipe:
        meta = json.loads(Path(path or ARTIFACT).read_text())
        return cls(**{k: meta[k] for k in cls.__dataclass_fields__ if k in meta})

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True).encode()).hexdigest()[:8]

    def base(self, p: np.ndarray, zm: np.ndarray | None, k: int) -> np.ndarray:
        """The base each essay's residual is taken from, for a calibration of k examples."""
        p = np.asarray(p, dtype=np.float64)
        if k < self.min_shape or zm is None:
            return p
        t = self.theta
        return p + (t["t1"] - 1.0) * (p - t["c"]) + t["t2"] * (np.asarray(zm, dtype=np.float64) - t["zc"])


@dataclass
class Calibration:
    """A fitted calibration of one target. predict() gives the normalised mean and sd of any essay."""

    recipe: Recipe
    Z_e: np.ndarray
    alpha: np.ndarray
    Kinv: np.ndarray
    emb_sd: float
    base_e: np.ndarray | None = None
    slope_sd: float = 0.0
    ratio: float = 1.0
    y_mean: float = 0.0
    loo_mean: float = 0.0
    linked: bool = False
    resid_factor: float = 1.0

    @property
    def k(self) -> int:
        return len(self.alpha)

    @classmethod
    def fit(cls, recipe: Recipe, base_e, Z_e, y_e) -> Calibration:
        base_e = np.asarray(base_e, dtype=np.float64)
        y_e = np.asarray(y_e, dtype=np.float64)
        Z_e = np.asarray(Z_e, dtype=np.float64)
        Z_e = Z_e.reshape(len(y_e), -1) if len(y_e) else Z_e.reshape(0, Z_e.shape[-1] if Z_e.ndim > 1 else 0)
        k = len(y_e)
        shape = k >= recipe.min_shape
        emb_sd = recipe.emb_sd if shape else 0.0
        slope_sd = recipe.slope_sd if k >= recipe.slope_from else 0.0
        b = base_e - base_e.mean() if k else base_e
        K = (recipe.level_sd ** 2 + emb_sd ** 2 * (Z_e @ Z_e.T) + slope_sd ** 2 * np.outer(b, b)
             + recipe.noise_sd ** 2 * np.eye(k))
        Kinv = np.linalg.inv(K) if k else np.zeros((0, 0))
        alpha = Kinv @ (y_e - base_e)
        out = cls(recipe, Z_e, alpha, Kinv, emb_sd, base_e, slope_sd)
        if k and recipe.resid_n0 > 0:  # standardised leave-one-out errors: are the examples as noisy as assumed?
            z2 = float(np.sum(alpha ** 2 / np.diag(Kinv)))  # sum of (y - loo)^2 / loo variance
            out.resid_factor = math.sqrt((recipe.resid_n0 + z2) / (recipe.resid_n0 + k))
        if shape:
            loo = y_e - alpha / np.diag(Kinv)
            ratio = float(np.std(y_e)) / max(float(np.std(loo)), 1e-6)
            w = k / (k + recipe.link_n0)
            out.ratio = float(math.exp(w * math.log(min(max(ratio, RATIO_RANGE[0]), RATIO_RANGE[1]))))
            out.y_mean, out.loo_mean, out.linked = float(y_e.mean()), float(loo.mean()), True
        return out

    def predict(self, base_t, Z_t) -> tuple[np.ndarray, np.ndarray]:
        base_t = np.asarray(base_t, dtype=np.float64)
        Z_t = np.asarray(Z_t, dtype=np.float64).reshape(len(base_t), -1) if len(base_t) else np.zeros((0, self.Z_e.shape[1]))
        r = self.recipe
        if self.k == 0:
            return base_t, np.full(len(base_t), r.noise_sd)
        c = self.base_e.mean()
        kx = (r.level_sd ** 2 + self.emb_sd ** 2 * (Z_t @ self.Z_e.T)
              + self.slope_sd ** 2 * np.outer(base_t - c, self.base_e - c))
        mean = base_t + kx @ self.alpha
        prior = (r.level_sd ** 2 + self.emb_sd ** 2 * np.einsum("ij,ij->i", Z_t, Z_t)
                 + self.slope_sd ** 2 * (base_t - c) ** 2)
        var = np.clip(prior - np.einsum("ij,ij->i", kx @ self.Kinv, kx), 0.0, None) + r.noise_sd ** 2
        sd = np.sqrt(var) * (r.sd_scale if self.emb_sd > 0 or self.linked else r.sd_scale_level) * self.resid_factor
        if self.linked:
            mean = self.y_mean + self.ratio * (mean - self.loo_mean)
            sd = sd * self.ratio
        return mean, sd


def normalise(score: float, scale: dict) -> float:
    lo, hi = float(scale["min"]), float(scale["max"])
    return (float(score) - lo) / (hi - lo) if hi > lo else 0.0


def tolerance_steps(scale: dict) -> int:
    """Steps within which a score agrees with the teacher's: exact on scales of up to 12 steps, else
    max(1, round(steps / 10)) (the ASAP graders' convention, asap.tolerance)."""
    step = float(scale.get("step") or 1.0)
    steps = int(round((float(scale["max"]) - float(scale["min"])) / step))
    return 0 if steps <= 12 else max(1, int(round(steps / 10)))


def scale_agreement(mean, sd, scale: dict, tol_steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the score given: the normalised mean rounded onto the scale, the confidence: P(the teacher's score
    lies within the tolerance of it) under N(mean, sd), the scale's ends open beyond)."""
    from scipy.stats import norm

    lo, hi = float(scale["min"]), float(scale["max"])
    step = float(scale.get("step") or 1.0)
    tol = (tolerance_steps(scale) if tol_steps is None else tol_steps) * step
    rng = hi - lo
    n_steps = math.floor(rng / step + 1e-9)
    mean = np.asarray(mean, dtype=np.float64)
    k = np.clip(np.rint(np.clip(mean, 0.0, 1.0) * rng / step), 0, n_steps)
    given = np.round(lo + k * step, 6)
    mu, sigma = lo + mean * rng, np.maximum(np.asarray(sd, dtype=np.float64) * rng, 1e-9)
    a = np.where(given - tol <= lo + 1e-9, -np.inf, given - tol - step / 2)
    b = np.where(given + tol >= lo + n_steps * step - 1e-9, np.inf, given + tol + step / 2)
    conf = norm.cdf((b - mu) / sigma) - norm.cdf((a - mu) / sigma)
    return given, np.round(np.clip(conf, 0.0, 1.0), 3)
