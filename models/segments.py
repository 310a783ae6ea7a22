"""Online segmentation of users from :meth:`models.profile.UserProfile.features`.

The model is River's incremental k-means (:class:`river.cluster.KMeans`) with a fixed number of
clusters and a fixed seed. Why k-means: segment ids must stay stable while the model learns, and
a k-means cluster index never gets renumbered -- "s3" is always the third center, only its position
moves. Clusters that appear/merge (DenStream, CluStream) would renumber ids under marketing ops.

Two details make the result reproducible across processes, so that a replay of the same
histories in the same order gives the same segments:

* River draws the initial value of a center coordinate lazily, the first time a feature key is
  seen, and its ``predict_one`` walks a *set* of keys (order depends on ``PYTHONHASHSEED``). Here
  every new key is drawn for centers 0..n-1 in sorted key order, before any distance is taken.
* Distances are computed here over sorted keys with ``math.fsum`` (ties go to the lowest index);
  the center update is River's: ``c[k] += halflife * (x[k] - c[k])`` for the closest center.

Seeding (``seed_from_data=True``, the default): random Gaussian centers far from the data leave
most clusters dead (sequential k-means only ever moves the winner). So center ``i`` is set to the
``i``-th learned point that lies farther than ``min_seed_dist`` (squared Euclidean) from the centers
seeded so far; until all are seeded, only seeded centers compete. Ids still never renumber.

>>> seg = Segmenter(n_segments=2, seed=42)
>>> a = seg.learn({"x": 0.0, "y": 0.0})
>>> b = seg.learn({"x": 1.0, "y": 1.0})
>>> seg.assign({"x": 0.05, "y": 0.0}) == a
True
>>> Segmenter.loads(seg.dumps()).assign({"x": 1.0, "y": 0.9}) == seg.assign({"x": 1.0, "y": 0.9})
True
"""
from __future__ import annotations

import math
import random
from collections.abc import Iterable

import orjson
from river import cluster


class Segmenter:
    """Stable online segments: ``assign`` reads, ``learn`` moves the closest center."""

    def __init__(self, n_segments: int = 8, seed: int = 42, halflife: float = 0.1,
                 mu: float = 0.3, sigma: float = 0.2, seed_from_data: bool = True,
                 min_seed_dist: float = 0.05):
        self.n_segments = n_segments
        self.seed = seed
        self.model = cluster.KMeans(n_clusters=n_segments, halflife=halflife, mu=mu,
                                    sigma=sigma, seed=seed)
        self.learned = 0
        self.min_seed_dist = min_seed_dist
        #: centers 0..seeded-1 hold real data; the others are not used until seeded
        self.seeded = 0 if seed_from_data else n_segments

    def _ensure_keys(self, x: dict) -> None:
        centers = self.model.centers
        for k in sorted(k for k in x if k not in centers[0]):
            for i in range(self.n_segments):
                centers[i][k]  # noqa: B018 -- the defaultdict draws the initial coordinate

    def _distances(self, x: dict) -> list[float]:
        self._ensure_keys(x)
        out = []
        for i in range(max(self.seeded, 1)):
            c = self.model.centers[i]
            out.append(math.fsum((c[k] - x.get(k, 0.0)) ** 2 for k in sorted(c)))
        return out

    def _closest(self, x: dict) -> int:
        d = self._distances(x)
        return d.index(min(d))  # ties: lowest index

    @staticmethod
    def segment_id(index: int) -> str:
        return f"s{index}"

    def assign(self, features: dict) -> str:
        """The segment of ``features`` under the current model (the model is not moved)."""
        return self.segment_id(self._closest(features))

    def learn(self, features: dict) -> str:
        """Assign, then move that segment's center toward ``features``; returns the segment."""
        if self.seeded < self.n_segments:
            d = self._distances(features)
            if self.seeded == 0 or min(d) > self.min_seed_dist:
                i = self.seeded
                c = self.model.centers[i]
                for k in sorted(features):
                    c[k] = float(features[k])
                for k in c:  # keys this point lacks (River treats them as 0)
                    if k not in features:
                        c[k] = 0.0
                self.seeded += 1
                self.learned += 1
                return self.segment_id(i)
        i = self._closest(features)
        c, h = self.model.centers[i], self.model.halflife
        for k in sorted(features):
            c[k] += h * (features[k] - c[k])
        self.learned += 1
        return self.segment_id(i)

    def centers(self) -> dict[str, dict[str, float]]:
        return {self.segment_id(i): dict(c) for i, c in self.model.centers.items()}

    # -- persistence: plain JSON (no pickle to trust), exact floats with orjson ----------------
    def to_state(self) -> dict:
        version, internal, gauss_next = self.model._rng.getstate()
        m = self.model
        return {
            "n_segments": self.n_segments, "seed": self.seed, "halflife": m.halflife,
            "mu": m.mu, "sigma": m.sigma, "learned": self.learned, "seeded": self.seeded,
            "min_seed_dist": self.min_seed_dist,
            "centers": [dict(m.centers[i]) for i in range(self.n_segments)],
            "rng": [version, list(internal), gauss_next],
        }

    @classmethod
    def from_state(cls, state: dict) -> Segmenter:
        s = cls(state["n_segments"], state["seed"], state["halflife"], state["mu"], state["sigma"],
                min_seed_dist=state["min_seed_dist"])
        s.learned, s.seeded = state["learned"], state["seeded"]
        for i, values in enumerate(state["centers"]):
            s.model.centers[i].update(values)  # keeps River's defaultdict and its factory
        version, internal, gauss_next = state["rng"]
        s.model._rng.setstate((version, tuple(internal), gauss_next))
        return s

    def dumps(self) -> bytes:
        return orjson.dumps(self.to_state())

    @classmethod
    def loads(cls, data: bytes) -> Segmenter:
        return cls.from_state(orjson.loads(data))


def _normalise(tags: Iterable) -> list[tuple[str, float]]:
    tags = [(t, float(w)) for t, w in tags if w > 0]
    total = math.fsum(w for _, w in tags)
    return [(t, w / total) for t, w in tags] if total > 0 else []


def summarize(members: Iterable[tuple[str, Iterable]], n_tags: int = 10) -> dict[str, dict]:
    """Exact per-segment summary from ``(segment, top_tags)`` pairs, one per user.

    Each user's tag weights are normalised to sum 1 (one user, one vote); a segment's top tags
    are the tags with the largest mean share among its members.

    >>> summarize([("s0", [("food", 3.0), ("travel", 1.0)]), ("s0", [("food", 1.0)]),
    ...            ("s1", [("game", 2.0)])])
    {'s0': {'size': 2, 'top_tags': [['food', 0.875], ['travel', 0.125]]}, 's1': {'size': 1, 'top_tags': [['game', 1.0]]}}
    """
    sizes: dict[str, int] = {}
    mass: dict[str, dict[str, float]] = {}
    for segment, tags in members:
        sizes[segment] = sizes.get(segment, 0) + 1
        bucket = mass.setdefault(segment, {})
        for t, share in _normalise(tags):
            bucket[t] = bucket.get(t, 0.0) + share
    return {
        s: {"size": sizes[s],
            "top_tags": [[t, round(m / sizes[s], 6)] for t, m in
                         sorted(mass[s].items(), key=lambda tm: (-tm[1], tm[0]))[:n_tags]]}
        for s in sorted(sizes)
    }


class SegmentStats:
    """Streaming per-segment figures for ops: size and top tags, in bounded memory.

    ``size`` is exact when the wiring reports every move (``observe`` with the previous segment
    of the user, ``forget`` on erase). ``top_tags`` is an approximation: each observation adds the
    user's normalised top tags to the segment, so it reflects the tags of recently *updated*
    members weighted by update volume; at most ``max_tags`` tags per segment are kept (the
    smallest are dropped).

    >>> st = SegmentStats()
    >>> st.observe("s1", None, [("food", 1.0)])
    >>> st.observe("s2", "s1", [("food", 1.0), ("pets", 1.0)])
    >>> st.summary()
    {'s1': {'size': 0, 'top_tags': [['food', 1.0]]}, 's2': {'size': 1, 'top_tags': [['food', 0.5], ['pets', 0.5]]}}
    """

    def __init__(self, n_tags: int = 10, max_tags: int = 64):
        self.n_tags = n_tags
        self.max_tags = max_tags
        self.sizes: dict[str, int] = {}
        self.mass: dict[str, dict[str, float]] = {}

    def observe(self, segment: str, previous: str | None, top_tags: Iterable) -> None:
        if previous != segment:
            if previous is not None:
                self.sizes[previous] = max(self.sizes.get(previous, 0) - 1, 0)
            self.sizes[segment] = self.sizes.get(segment, 0) + 1
        bucket = self.mass.setdefault(segment, {})
        for t, share in _normalise(top_tags):
            bucket[t] = bucket.get(t, 0.0) + share
        while len(bucket) > self.max_tags:
            del bucket[min(bucket, key=lambda t: (bucket[t], t))]

    def forget(self, segment: str | None) -> None:
        """A member left for good (privacy erase)."""
        if segment is not None and self.sizes.get(segment):
            self.sizes[segment] -= 1

    def summary(self) -> dict[str, dict]:
        out = {}
        for s in sorted(set(self.sizes) | set(self.mass)):
            bucket = self.mass.get(s, {})
            total = math.fsum(bucket.values())
            top = sorted(bucket.items(), key=lambda tm: (-tm[1], tm[0]))[:self.n_tags]
            out[s] = {"size": self.sizes.get(s, 0),
                      "top_tags": [[t, round(m / total, 6)] for t, m in top] if total else []}
        return out

    def to_state(self) -> dict:
        return {"n_tags": self.n_tags, "max_tags": self.max_tags, "sizes": dict(self.sizes),
                "mass": {s: dict(b) for s, b in self.mass.items()}}

    @classmethod
    def from_state(cls, state: dict) -> SegmentStats:
        st = cls(state["n_tags"], state["max_tags"])
        st.sizes = dict(state["sizes"])
        st.mass = {s: dict(b) for s, b in state["mass"].items()}
        return st
