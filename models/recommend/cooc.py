"""Incremental item-to-item co-occurrence: "people who finished v also finished ...".

When a user has a positive event on item ``i``, every item ``j`` among that user's recent
positives (the caller keeps that short list, newest last) gets its link to ``i`` strengthened
by ``1 / (1 + distance)`` in both directions, so items consumed close together in a session
count more.  Each item keeps at most ``max_neighbours`` links: when its dict doubles past that
size the weakest half is dropped, so memory is bounded by ``n_items * 2 * max_neighbours``.

>>> c = CoOccurrence(max_neighbours=10)
>>> c.add([1, 2], 3)          # the user finished 1, then 2, now 3
>>> sorted(c.neighbours(3, 5))
[(1, 0.5), (2, 1.0)]
>>> c.neighbours(1, 5)
[(3, 0.5)]
"""

from __future__ import annotations


class CoOccurrence:
    def __init__(self, max_neighbours: int = 100):
        self.max_neighbours = max_neighbours
        self.links: dict[int, dict[int, float]] = {}
        self.counts: dict[int, float] = {}

    def _bump(self, a: int, b: int, w: float) -> None:
        d = self.links.get(a)
        if d is None:
            d = self.links[a] = {}
        d[b] = d.get(b, 0.0) + w
        if len(d) > 2 * self.max_neighbours:
            keep = sorted(d.items(), key=lambda kv: -kv[1])[: self.max_neighbours]
            self.links[a] = dict(keep)

    def add(self, recent: list[int], item: int) -> None:
        """Record that ``item`` followed the user's ``recent`` positives (oldest first)."""
        self.counts[item] = self.counts.get(item, 0.0) + 1.0
        n = len(recent)
        for pos, j in enumerate(recent):
            if j == item:
                continue
            w = 1.0 / (1 + (n - 1 - pos))
            self._bump(j, item, w)
            self._bump(item, j, w)

    def neighbours(self, item: int, k: int) -> list[tuple[int, float]]:
        d = self.links.get(item)
        if not d:
            return []
        if len(d) <= k:
            return list(d.items())
        return sorted(d.items(), key=lambda kv: -kv[1])[:k]

    def get(self, item: int) -> dict[int, float]:
        return self.links.get(item) or {}
