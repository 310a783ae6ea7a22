"""What one engagement event adds to the contract's counters.

:func:`counter_deltas` maps a validated event to ``{counter: delta}``; :class:`DeltaBatch`
sums those deltas per Redis key over a batch, so that a batch of thousands of events becomes
a few hundred ``HINCRBY`` calls in one round trip instead of one call per event.

>>> counter_deltas({"type": "view", "watch_ms": 2500})
{'views': 1, 'watch_ms': 2500, 'views_2s': 1}
>>> counter_deltas({"type": "view", "watch_ms": 900, "duration_ms": 900})
{'views': 1, 'watch_ms': 900, 'completions': 1}
>>> counter_deltas({"type": "conversion", "revenue": 12.5})
{'conversions': 1, 'revenue': 12.5}
"""
from __future__ import annotations

from collections import defaultdict

#: A view counts as a "2-second view" (cpv billing, hook rate) from this much watch time.
TWO_SECONDS_MS = 2000

#: Counters stored as integers (HINCRBY); the others are floats (HINCRBYFLOAT).
INT_COUNTERS = (
    "impressions", "views", "views_2s", "completions", "watch_ms", "likes", "comments",
    "shares", "follows", "dislikes", "conversions",
)
FLOAT_COUNTERS = ("revenue", "spend")
COUNTERS = INT_COUNTERS + FLOAT_COUNTERS

_SIMPLE_COUNTER = {
    "impression": "impressions",
    "like": "likes",
    "comment": "comments",
    "share": "shares",
    "follow": "follows",
    "dislike": "dislikes",
}


def counter_deltas(event: dict, duration_ms: int | None = None) -> dict[str, int | float]:
    """The counters one event increments. ``duration_ms`` (from the catalog) is used when the
    event carries none; without any duration a view cannot count as a completion."""
    etype = event["type"]
    simple = _SIMPLE_COUNTER.get(etype)
    if simple is not None:
        return {simple: 1}
    if etype == "view":
        watch = event["watch_ms"]
        deltas: dict[str, int | float] = {"views": 1, "watch_ms": watch}
        if watch >= TWO_SECONDS_MS:
            deltas["views_2s"] = 1
        duration = event.get("duration_ms") or duration_ms
        if duration and watch >= duration:
            deltas["completions"] = 1
        return deltas
    if etype == "conversion":
        return {"conversions": 1, "revenue": float(event["revenue"])}
    return {}


class DeltaBatch:
    """Sums of counter increments per Redis HASH key, ready for one pipelined write.

    >>> batch = DeltaBatch()
    >>> batch.add("sv:video:v1", {"views": 1, "watch_ms": 10})
    >>> batch.add("sv:video:v1", {"views": 1, "revenue": 10})
    >>> batch.hash_increments()
    [('sv:video:v1', 'views', 2, False), ('sv:video:v1', 'watch_ms', 10, False), ('sv:video:v1', 'revenue', 10, True)]
    """

    __slots__ = ("_sums",)

    def __init__(self) -> None:
        self._sums: dict[str, dict[str, int | float]] = defaultdict(lambda: defaultdict(int))

    def add(self, key: str, deltas: dict[str, int | float]) -> None:
        sums = self._sums[key]
        for field, delta in deltas.items():
            sums[field] += delta

    def __bool__(self) -> bool:
        return bool(self._sums)

    def keys(self) -> list[str]:
        return list(self._sums)

    def hash_increments(self) -> list[tuple[str, str, int | float, bool]]:
        """``(key, field, delta, is_float)`` for every sum, zeros included (so that a view
        watched for 0 ms still creates its ``watch_ms`` field).

        Whether a field is a float is decided by its *name*, never by the Python type of this
        batch's sum: revenue of 10 (an int, as JSON allows) must still be added with
        HINCRBYFLOAT, because HINCRBY fails on a field that already holds "12.5".
        """
        return [(key, field, delta, field in FLOAT_COUNTERS)
                for key, sums in self._sums.items() for field, delta in sums.items()]
