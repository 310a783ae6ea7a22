"""Implicit-feedback target: how much an event says the user wants *more videos like this one*.

Short-video feeds give no ratings, only behaviour. We map each contract event to a number in
[-1, 1]:

============================  =========  ====================================================
event                         target     why
============================  =========  ====================================================
view, watch ratio r           r (<=1)    watch time is the densest, least biased signal;
                                         finishing the video (r >= 0.95) counts as 1.0
view, r < 0.1 (a swipe-away)  -0.2       skipping within the first tenth is mild rejection
like, share, follow           1.0        explicit, costly positive actions
comment                       0.8        engagement, but comments can be negative
conversion                    1.0        the user paid: strongest business signal
dislike ("not interested")    -1.0       explicit negative
impression never viewed       -0.05      weak negative (it may simply not have been noticed);
                                         the recommender applies it only when the *next*
                                         event of that user shows the impression was skipped
erase                         0          not feedback (privacy request)
============================  =========  ====================================================

An event is *positive* when its target is >= :data:`POSITIVE_THRESHOLD` (0.75): a view watched
to at least three quarters, or any like / share / follow / comment / conversion.  MovieLens
ratings map to watch ratio = rating / 5, so "rating >= 4" is exactly "positive".

>>> implicit_target({"type": "view", "watch_ms": 9000}, 10000)
0.9
>>> implicit_target({"type": "view", "watch_ms": 12000}, 10000)
1.0
>>> implicit_target({"type": "view", "watch_ms": 500}, 10000)
-0.2
>>> implicit_target({"type": "dislike"}, None)
-1.0
>>> is_positive({"type": "view", "watch_ms": 7000, "duration_ms": 10000})
False
>>> is_positive({"type": "like"})
True
"""

from __future__ import annotations

POSITIVE_THRESHOLD = 0.75
COMPLETION_RATIO = 0.95
SKIP_RATIO = 0.1
SKIP_TARGET = -0.2
IMPRESSION_TARGET = -0.05
# a view whose duration is unknown: assume this duration (ms) to compute a ratio
DEFAULT_DURATION_MS = 15_000

EVENT_TARGETS = {
    "like": 1.0,
    "share": 1.0,
    "follow": 1.0,
    "conversion": 1.0,
    "comment": 0.8,
    "dislike": -1.0,
    "impression": IMPRESSION_TARGET,
    "erase": 0.0,
}


def watch_ratio(event: dict, duration_ms: int | None = None) -> float:
    """Watched fraction of a view, capped at 1.0 (replays count as a completion).

    The duration comes from the event, else ``duration_ms``, else :data:`DEFAULT_DURATION_MS`.

    >>> watch_ratio({"watch_ms": 3000, "duration_ms": 6000})
    0.5
    >>> watch_ratio({"watch_ms": 3000}, 12000)
    0.25
    """
    d = event.get("duration_ms") or duration_ms or DEFAULT_DURATION_MS
    w = event.get("watch_ms") or 0
    if d <= 0:
        return 0.0
    return min(1.0, max(0.0, w / d))


def implicit_target(event: dict, duration_ms: int | None = None) -> float:
    """Target in [-1, 1] for one event (see the module docstring for the table)."""
    t = event.get("type")
    if t == "view":
        r = watch_ratio(event, duration_ms)
        if r >= COMPLETION_RATIO:
            return 1.0
        if r < SKIP_RATIO:
            return SKIP_TARGET
        return round(r, 6)
    return EVENT_TARGETS.get(t, 0.0)


def is_positive(event: dict, duration_ms: int | None = None) -> bool:
    """True when the event is a positive signal (target >= :data:`POSITIVE_THRESHOLD`)."""
    return implicit_target(event, duration_ms) >= POSITIVE_THRESHOLD
