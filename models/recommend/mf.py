"""Online matrix factorisation for implicit feedback, one SGD step per event.

Model: ``p(u likes i) = sigmoid(b_i + x_u . y_i)``.  A positive event (target ``r > 0``) is a
logistic-loss step towards 1 with weight ``r`` on the item, plus ``n_negatives`` steps towards
0 on items drawn from a ring buffer of recently engaged items: sampling negatives in
proportion to recent popularity makes the factors learn *personal* deviations from popularity
(the popularity part is served by :mod:`.popularity`), and costs O(1) per event.  A negative
event (dislike, swipe-away, unviewed impression) is a step towards 0 with weight ``|r|``.

Item parameters (``Y``, ``b``) live in growable numpy arrays indexed by an integer item index
that the caller owns; user vectors live in a dict, so the wiring can checkpoint them per user
and share the item side across workers.  User vectors start as small deterministic noise
derived from the user id (crc32), so that learning is reproducible.

>>> mf = OnlineMF(n_factors=8, seed=1)
>>> for _ in range(200):
...     mf.learn("alice", 0, 1.0, negatives=[1])
>>> s = mf.score("alice", np.array([0, 1])); bool(s[0] > s[1])
True
"""

from __future__ import annotations

import math
import zlib

import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class OnlineMF:
    def __init__(
        self,
        n_factors: int = 32,
        lr: float = 0.05,
        reg: float = 0.002,
        init_std: float = 0.1,
        seed: int = 0,
        capacity: int = 64,
    ):
        self.k = n_factors
        self.lr = lr
        self.reg = reg
        self.init_std = init_std
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.Y = np.zeros((capacity, n_factors), dtype=np.float32)
        self.b = np.zeros(capacity, dtype=np.float32)
        self.item_n = np.zeros(capacity, dtype=np.float32)  # updates received (merge weight)
        self.size = 0
        self.users: dict[str, np.ndarray] = {}

    # -- items ------------------------------------------------------------------------------
    def ensure_item(self, idx: int) -> None:
        if idx < self.size:
            return
        if idx >= len(self.b):
            cap = max(idx + 1, 2 * len(self.b))
            Y = np.zeros((cap, self.k), dtype=np.float32)
            Y[: len(self.b)] = self.Y
            b = np.zeros(cap, dtype=np.float32)
            b[: len(self.b)] = self.b
            n = np.zeros(cap, dtype=np.float32)
            n[: len(self.b)] = self.item_n
            self.Y, self.b, self.item_n = Y, b, n
        new = idx + 1 - self.size
        self.Y[self.size : idx + 1] = self._rng.normal(0, self.init_std, (new, self.k))
        self.size = idx + 1

    # -- users ------------------------------------------------------------------------------
    def user_vector(self, user: str, create: bool = False) -> np.ndarray | None:
        x = self.users.get(user)
        if x is None and create:
            rng = np.random.default_rng(zlib.crc32(user.encode()) ^ self.seed)
            x = self.users[user] = rng.normal(0, self.init_std, self.k).astype(np.float32)
        return x

    def forget_user(self, user: str) -> None:
        self.users.pop(user, None)

    # -- learning ---------------------------------------------------------------------------
    def _step(self, x: np.ndarray, idx: int, label: float, weight: float) -> None:
        y = self.Y[idx]
        z = float(self.b[idx]) + float(x @ y)
        p = 1.0 / (1.0 + math.exp(-z)) if z > -30 else 0.0
        g = (p - label) * weight * self.lr
        gx = g * y + self.lr * self.reg * x
        y -= g * x + self.lr * self.reg * y
        x -= gx
        self.b[idx] -= g
        self.item_n[idx] += 1

    def learn(self, user: str, idx: int, target: float, negatives=()) -> None:
        """One SGD update for ``target`` in [-1, 1] (positive: towards 1, negative: towards 0)."""
        if target == 0:
            return
        self.ensure_item(idx)
        x = self.user_vector(user, create=True)
        if target > 0:
            self._step(x, idx, 1.0, target)
            for j in negatives:
                if j != idx and j < self.size:
                    self._step(x, j, 0.0, 1.0)
        else:
            self._step(x, idx, 0.0, -target)
        # keep vectors bounded (norm clip) so a burst of events cannot blow them up
        n = float(np.sqrt(x @ x))
        if n > 5.0:
            x *= 5.0 / n

    def score(self, user: str, idxs: np.ndarray) -> np.ndarray:
        """Logits for ``idxs`` (zeros beyond known items; only the bias for unknown users)."""
        out = np.zeros(len(idxs), dtype=np.float64)
        ok = idxs < self.size
        if not ok.any():
            return out
        sel = idxs[ok]
        x = self.users.get(user)
        v = self.b[sel].astype(np.float64)
        if x is not None:
            v = v + self.Y[sel] @ x
        out[ok] = v
        return out

    # -- state ------------------------------------------------------------------------------
    def user_state(self, user: str) -> list[float] | None:
        x = self.users.get(user)
        return None if x is None else [float(v) for v in x]

    def load_user_state(self, user: str, vec) -> None:
        if vec is None:
            self.users.pop(user, None)
        else:
            self.users[user] = np.asarray(vec, dtype=np.float32).copy()
