"""Rubric scales as grids of points: any min/max/step (half points, 0-60 ranges)."""
from __future__ import annotations

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
