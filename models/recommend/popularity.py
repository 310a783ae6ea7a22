"""Time-decayed popularity with forward decay, stored in one growable numpy array.

Each engagement of weight ``w`` at time ``t`` adds ``w * exp((t - L) / tau)`` to the item's
score, where ``L`` is a landmark time (Cormode et al., *forward decay*).  The true decayed value
at ``now`` is ``score * exp(-(now - L) / tau)``: the same factor for every item, so rankings
are read straight from the array, without touching every item at each event.  When the
exponent grows large the array is rescaled and the landmark moved (no overflow).

``half_life_s=None`` gives plain (undecayed) counts.

>>> p = DecayedPopularity(half_life_s=3600)
>>> p.add(0, 1.0, ts_ms=0); p.add(1, 1.0, ts_ms=3_600_000); p.add(1, 0.0, ts_ms=3_600_000)
>>> round(p.value(0, now_ms=3_600_000), 6), round(p.value(1, now_ms=3_600_000), 6)
(0.5, 1.0)
>>> p.top(2).tolist()
[1, 0]
"""

from __future__ import annotations

import math

import numpy as np

_RESCALE_AT = 40.0  # rescale when exp argument exceeds this


class DecayedPopularity:
    def __init__(self, half_life_s: float | None = 6 * 3600, capacity: int = 64):
        self.half_life_s = half_life_s
        self.tau_ms = (half_life_s * 1000.0 / math.log(2)) if half_life_s else None
        self.landmark_ms: int | None = None
        self.scores = np.zeros(capacity, dtype=np.float64)
        self.size = 0  # highest index + 1 seen

    def _grow(self, idx: int) -> None:
        if idx >= len(self.scores):
            new = np.zeros(max(idx + 1, 2 * len(self.scores)), dtype=np.float64)
            new[: len(self.scores)] = self.scores
            self.scores = new
        if idx >= self.size:
            self.size = idx + 1

    def _factor(self, ts_ms: int) -> float:
        if self.tau_ms is None:
            return 1.0
        if self.landmark_ms is None:
            self.landmark_ms = int(ts_ms)
        x = (ts_ms - self.landmark_ms) / self.tau_ms
        if x > _RESCALE_AT:
            self.scores *= math.exp(-x)
            self.landmark_ms = int(ts_ms)
            x = 0.0
        return math.exp(x)

    def add(self, idx: int, weight: float, ts_ms: int) -> None:
        self._grow(idx)
        if weight:
            self.scores[idx] += weight * self._factor(ts_ms)

    def value(self, idx: int, now_ms: int | None = None) -> float:
        """Decayed value at ``now_ms`` (in units of 'events at now')."""
        if idx >= self.size:
            return 0.0
        s = float(self.scores[idx])
        if self.tau_ms is None or self.landmark_ms is None or now_ms is None:
            return s
        return s * math.exp(-(now_ms - self.landmark_ms) / self.tau_ms)

    def top(self, k: int, among: np.ndarray | None = None, keep_zero: bool = False) -> np.ndarray:
        """Indices of the ``k`` highest scores (optionally only ``among`` these indices), best first.

        Items with a zero score are left out unless ``keep_zero`` (then only when ``among`` is
        given: items never engaged with, e.g. to cover a tag's new videos).
        """
        if among is None:
            s = self.scores[: self.size]
            ids = None
        else:
            ids = among
            s = np.zeros(len(among))
            ok = among < self.size
            s[ok] = self.scores[among[ok]]
        if len(s) == 0:
            return np.zeros(0, dtype=np.int64)
        if k < len(s):
            part = np.argpartition(-s, k)[:k]
        else:
            part = np.arange(len(s))
        if not (keep_zero and ids is not None):
            part = part[s[part] > 0]
        order = part[np.argsort(-s[part], kind="stable")]
        return order if ids is None else ids[order]

    def state(self) -> dict:
        return {
            "half_life_s": self.half_life_s,
            "landmark_ms": self.landmark_ms,
            "scores": self.scores[: self.size].copy(),
        }

    @classmethod
    def from_state(cls, st: dict) -> "DecayedPopularity":
        p = cls(st["half_life_s"], capacity=max(64, len(st["scores"])))
        p.landmark_ms = st["landmark_ms"]
        sc = np.asarray(st["scores"], dtype=np.float64)
        p.scores[: len(sc)] = sc
        p.size = len(sc)
        return p

    def rebased(self, landmark_ms: int | None) -> np.ndarray:
        """Scores expressed relative to another landmark (for merging two workers)."""
        s = self.scores[: self.size]
        if self.tau_ms is None or self.landmark_ms is None or landmark_ms is None:
            return s.copy()
        return s * math.exp((self.landmark_ms - landmark_ms) / self.tau_ms)
