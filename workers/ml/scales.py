"""Rubric scales as grids of points: any min/max/step (half points, 0-60 ranges)."""
from __future__ import annotations

import math

import numpy as np


class Scale:
    def __init__(self, lo: float, hi: float, step: float = 1.0):
        self.lo, self.hi, self.step = float(lo), float(hi), float(step or 1.0)
        self.n = int(round((self.hi - self.lo) / self.step)) + 1  # number of points

    @classmethod
    def of(cls, d: dict) -> "Scale":
        return cls(d["min"], d["max"], d.get("step", 1.0) or 1.0)

    def as_dict(self) -> dict:
        return {"min": self.lo, "max": self.hi, "step": self.step}

    def contains(self, x: float) -> bool:
        if not (self.lo - 1e-9 <= x <= self.hi + 1e-9):
            return False
        k = (x - self.lo) / self.step
        return abs(k - round(k)) < 1e-6

    def index(self, x) -> np.ndarray:
        """Score(s) -> integer point index 0..n-1 (for QWK and agreement)."""
        k = np.rint((np.asarray(x, dtype=np.float64) - self.lo) / self.step)
        return np.clip(k, 0, self.n - 1).astype(np.int64)

    def norm(self, x) -> np.ndarray:
        return (np.asarray(x, dtype=np.float64) - self.lo) / (self.hi - self.lo)

    def denorm(self, z) -> np.ndarray:
        return self.lo + np.asarray(z, dtype=np.float64) * (self.hi - self.lo)

    def snap(self, x) -> np.ndarray:
        """Raw prediction(s) on the scale -> nearest point of the scale, clipped to the range."""
        return self.lo + self.index(x) * self.step


def rubric_scales(rubric: dict) -> tuple[Scale, list[tuple[str, Scale]]]:
    main = Scale.of(rubric["scale"])
    traits = [(t["name"], Scale.of(t.get("scale") or rubric["scale"])) for t in rubric.get("traits") or []]
    return main, traits


# --- the default grader's spread law (fitted in workers/ml/training/default_head.py) ---------------

POINTS_RANGE = (3.0, 60.0)  # a scale's number of points is clipped to the ASAP range (3..60) before the law
K_RANGE = (0.5, 2.0)  # and k is bounded (leave-one-prompt-out on train.jsonl used 0.56..1.88)


def scale_points(scale: dict) -> float:
    """How many steps a scale has ((max - min) / step), clipped to the range the spread law was fitted on."""
    lo, hi = float(scale["min"]), float(scale["max"])
    step = float(scale.get("step") or 1.0)
    n = (hi - lo) / step if step > 0 and hi > lo else POINTS_RANGE[0]
    return float(min(max(n, POINTS_RANGE[0]), POINTS_RANGE[1]))


def spread_factor(law, points: float) -> float:
    """k = exp(a log(points) + b), bounded to K_RANGE (a law fitted on few scales must not explode)."""
    a, b = float(law[0]), float(law[1])
    return float(min(max(math.exp(a * math.log(points) + b), K_RANGE[0]), K_RANGE[1]))
