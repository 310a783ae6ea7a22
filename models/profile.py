"""The per-user profile P = f(X, Y, Z), updated one event at a time.

* X -- basic attributes from the ``sv.users`` record (age band, gender, region, signup time).
* Y -- behaviour: River running statistics and counts (sessions, events per day, watch ratio,
  completion rate, like/comment/share/dislike propensity per view, last active time).
* Z -- interests: one exponentially decayed weight per video tag.

Why a *landmark* for the decay: decaying every tag weight on every event would cost O(all tags).
Instead each weight is stored relative to a fixed landmark time ``L``: the true weight at time
``t`` is ``s * 2 ** (-(t - L) / half_life)``. Adding ``delta`` at event time ``t`` is
``s += delta * 2 ** ((t - L) / half_life)``, which touches only the tags of that video; all weights
share the same factor, so comparing stored values compares current weights. When the scale grows
large the landmark is moved forward (rare, O(k)). An event older than the landmark simply gets a
factor below 1: out-of-order events are decayed correctly and never produce negative time deltas.

Interest increments per tag of the video (each tag gets the full amount, see :data:`TAG_WEIGHTS`):

============ ==========================================================================
view         the watch ratio ``min(watch_ms / duration_ms, 1)`` (``unknown_ratio`` if no duration)
like         +1.0
comment      +1.5
share        +2.0
follow       +2.0 (only when the event names a video)
conversion   +3.0
dislike      -2.0
impression   0 (shown is not interest)
============ ==========================================================================

>>> p = UserProfile("u1")
>>> food = {"video_id": "v1", "tags": ["food"], "duration_ms": 10_000}
>>> p.apply({"type": "view", "ts": 0, "user_id": "u1", "video_id": "v1", "watch_ms": 10_000}, food)
>>> p.apply({"type": "like", "ts": 0, "user_id": "u1", "video_id": "v1"}, food)
>>> p.top_tags(now_ms=0)
[('food', 2.0)]
>>> p.top_tags(now_ms=7 * 86_400_000)  # one half-life later
[('food', 1.0)]
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import orjson
from river import stats

DAY_MS = 86_400_000

#: Interest added to every tag of the video, per event type (views use the watch ratio).
TAG_WEIGHTS: dict[str, float] = {
    "like": 1.0,
    "comment": 1.5,
    "share": 2.0,
    "follow": 2.0,
    "conversion": 3.0,
    "dislike": -2.0,
}

#: Move the landmark forward once the scale factor exceeds 2 ** this (keeps floats well scaled).
_REBASE_HALF_LIVES = 32.0


@dataclass(frozen=True)
class ProfileConfig:
    """Knobs of :class:`UserProfile`. The same config must be used to restore a saved state."""

    #: Interest weights halve after this much event time.
    tag_half_life_ms: int = 7 * DAY_MS
    #: At most this many tags are kept per user (the lowest current weight is evicted).
    top_k_tags: int = 32
    #: A gap of more than this between events starts a new session.
    session_gap_ms: int = 30 * 60_000
    #: Half-life of the decayed activity score (events, decayed in event time).
    activity_half_life_ms: int = DAY_MS
    #: Fading factor of the River EWMean of the watch ratio (weight of the newest view).
    watch_ratio_alpha: float = 0.1
    #: Interest a view adds when no duration is known (neither in the event nor the catalog).
    unknown_ratio: float = 0.5
    #: Fixed tag vocabulary for :meth:`UserProfile.features`; when empty, tags are hashed into
    #: ``n_tag_buckets`` buckets with CRC-32 (stable across processes, unlike ``hash``).
    tag_vocab: tuple[str, ...] = ()
    n_tag_buckets: int = 16
    #: Number of tags written to the Redis hash.
    redis_top_tags: int = 10


class Landmark:
    """Exponential decay in event time with a landmark, shared by several stored values."""

    __slots__ = ("half_life", "landmark")

    def __init__(self, half_life: float, landmark: int | None = None):
        self.half_life = float(half_life)
        self.landmark = landmark

    def up(self, ts: int) -> float:
        """Factor turning an amount added at ``ts`` into landmark units."""
        if self.landmark is None:
            self.landmark = ts
        return 2.0 ** ((ts - self.landmark) / self.half_life)

    def down(self, now_ms: int) -> float:
        """Factor turning landmark units into current weights at ``now_ms``."""
        if self.landmark is None:
            return 0.0
        return 2.0 ** (-(now_ms - self.landmark) / self.half_life)

    def needs_rebase(self, ts: int) -> bool:
        return self.landmark is not None and (ts - self.landmark) / self.half_life > _REBASE_HALF_LIVES

    def rebase(self, ts: int) -> float:
        """Move the landmark to ``ts``; returns the factor stored values must be multiplied by."""
        factor = self.down(ts)
        self.landmark = ts
        return factor


def _ewmean(alpha: float, n: int, value: float) -> stats.EWMean:
    """Rebuild a River EWMean (a Rust object without accessible state): its first update sets
    the mean to the value, so one update with the saved mean restores it exactly."""
    m = stats.EWMean(fading_factor=alpha)
    if n:
        m.update(value)
    return m


def _mean(n: float, value: float) -> stats.Mean:
    m = stats.Mean()
    m.n, m._mean = float(n), float(value)
    return m


def _num(v: float | int) -> str:
    """A decimal string as Redis stores numbers (no exponent, at most 6 decimals)."""
    if isinstance(v, int):
        return str(v)
    s = f"{v:.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


class UserProfile:
    """One user's profile, updated by :meth:`apply`; bounded memory (``top_k_tags`` tags)."""

    ATTRIBUTES = ("age_band", "gender", "region", "signup_ts")

    def __init__(self, user_id: str, config: ProfileConfig | None = None):
        self.user_id = user_id
        self.config = config or ProfileConfig()
        cfg = self.config
        # X
        self.attributes: dict[str, str | int | None] = {}
        # Y
        self.events = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self.sessions = 0
        self.counts: dict[str, int] = {}
        self._ratio_n = 0
        self.watch_ratio = _ewmean(cfg.watch_ratio_alpha, 0, 0.0)
        self.completion = stats.Mean()
        self._activity_clock = Landmark(cfg.activity_half_life_ms)
        self._activity = 0.0
        # Z
        self._tag_clock = Landmark(cfg.tag_half_life_ms)
        self._tags: dict[str, float] = {}
        # idempotence for the wiring
        self.last_applied: dict[str, int] = {}

    # -- X ------------------------------------------------------------------------------------
    def set_attributes(self, record: dict) -> None:
        """Take the known basic attributes from a ``sv.users`` record (unknown ones are kept)."""
        for key in self.ATTRIBUTES:
            value = record.get(key)
            if value is not None:
                self.attributes[key] = value

    # -- updates ------------------------------------------------------------------------------
    def apply(self, event: dict, video: dict | None = None) -> None:
        """Fold one validated event in. ``video`` is the catalog record (tags, duration)."""
        etype = event["type"]
        if etype == "erase":  # the wiring deletes the whole profile; nothing to learn
            return
        ts = int(event["ts"])
        self._touch(ts)
        self.counts[etype] = self.counts.get(etype, 0) + 1

        delta = TAG_WEIGHTS.get(etype, 0.0)
        if etype == "view":
            duration = event.get("duration_ms") or (video or {}).get("duration_ms")
            if duration:
                watch = event.get("watch_ms") or 0
                ratio = min(watch / duration, 1.0)
                self.watch_ratio.update(ratio)
                self._ratio_n += 1
                self.completion.update(1.0 if watch >= duration else 0.0)
                delta = ratio
            else:
                delta = self.config.unknown_ratio
        if delta and video:
            tags = video.get("tags") or ()
            if tags:
                self._add_tags(tags, delta, ts)

    def _touch(self, ts: int) -> None:
        """Activity bookkeeping: counts, active span, sessions, decayed activity."""
        self.events += 1
        if self.last_ts is None:
            self.sessions = 1
            self.first_ts = self.last_ts = ts
        else:
            if ts - self.last_ts > self.config.session_gap_ms:
                self.sessions += 1
            # late events never start a session nor move last_ts backwards
            self.last_ts = max(self.last_ts, ts)
            self.first_ts = min(self.first_ts, ts)
        clock = self._activity_clock
        if clock.needs_rebase(ts):
            self._activity *= clock.rebase(ts)
        self._activity += clock.up(ts)

    def _add_tags(self, tags, delta: float, ts: int) -> None:
        clock = self._tag_clock
        if clock.needs_rebase(ts):
            factor = clock.rebase(ts)
            self._tags = {t: s * factor for t, s in self._tags.items()}
        amount = delta * clock.up(ts)
        weights = self._tags
        for tag in dict.fromkeys(tags):  # a tag listed twice counts once
            weights[tag] = weights.get(tag, 0.0) + amount
        # bound memory: drop the lowest current weights (same factor for all, so compare stored)
        while len(weights) > self.config.top_k_tags:
            del weights[min(weights, key=lambda t: (weights[t], t))]

    # -- idempotence ----------------------------------------------------------------------------
    def seen_offset(self, partition: int, offset: int) -> bool:
        """True when this source offset was already applied (a redelivery to skip)."""
        return offset <= self.last_applied.get(str(partition), -1)

    def mark_offset(self, partition: int, offset: int) -> None:
        key = str(partition)
        if offset > self.last_applied.get(key, -1):
            self.last_applied[key] = int(offset)

    # -- reads ----------------------------------------------------------------------------------
    def tag_weights(self, now_ms: int) -> dict[str, float]:
        """All kept tags with their weight decayed to ``now_ms`` (may be negative)."""
        f = self._tag_clock.down(now_ms)
        return {t: s * f for t, s in self._tags.items()}

    def top_tags(self, now_ms: int | None = None, n: int | None = None) -> list[tuple[str, float]]:
        """The ``n`` tags of highest positive weight at ``now_ms`` (default: last event time),
        highest first; ties by tag name so the order is deterministic."""
        if now_ms is None:
            now_ms = self.last_ts or 0
        items = [(t, w) for t, w in self.tag_weights(now_ms).items() if w > 0]
        items.sort(key=lambda tw: (-tw[1], tw[0]))
        return items if n is None else items[:n]

    def activity(self, now_ms: int) -> float:
        """Events decayed with ``activity_half_life_ms`` to ``now_ms`` (a recency-weighted count)."""
        return self._activity * self._activity_clock.down(now_ms)

    @property
    def views(self) -> int:
        return self.counts.get("view", 0)

    def events_per_day(self) -> float:
        """Events over the active span (first to last event), the span being at least one day
        so that a brand-new user does not look like a bot."""
        if not self.events:
            return 0.0
        span = max(self.last_ts - self.first_ts, DAY_MS)
        return self.events * DAY_MS / span

    def rate(self, etype: str) -> float:
        """``etype`` events per view (0 without views; may exceed 1 if views were missed)."""
        return self.counts.get(etype, 0) / self.views if self.views else 0.0

    def mean_watch_ratio(self) -> float:
        return self.watch_ratio.get() if self._ratio_n else 0.0

    def completion_rate(self) -> float:
        return self.completion.get() if self.completion.n else 0.0

    def features(self) -> dict[str, float]:
        """A fixed-length numeric vector for clustering, every value in [0, 1].

        Interest: positive tag weights normalised to sum 1, over ``config.tag_vocab`` (keys
        ``tag:<name>``, other tags ignored) or CRC-32 buckets (keys ``tb00``...). Normalising
        cancels the common decay factor, so the features do not depend on the wall clock.
        Behaviour: watch ratio, completion rate, capped per-view propensities and
        ``log1p(events_per_day) / log1p(100)`` capped at 1.
        """
        cfg = self.config
        if cfg.tag_vocab:
            keys = [f"tag:{t}" for t in cfg.tag_vocab]
            bucket = {t: f"tag:{t}" for t in cfg.tag_vocab}.get
        else:
            keys = [f"tb{i:02d}" for i in range(cfg.n_tag_buckets)]

            def bucket(t: str) -> str:
                return keys[zlib.crc32(t.encode()) % cfg.n_tag_buckets]

        x = dict.fromkeys(keys, 0.0)
        for tag, s in self._tags.items():
            k = bucket(tag)
            if s > 0 and k is not None:
                x[k] += s
        total = math.fsum(x.values())
        if total > 0:
            x = {k: v / total for k, v in x.items()}
        x["watch_ratio"] = self.mean_watch_ratio()
        x["completion_rate"] = self.completion_rate()
        for etype in ("like", "comment", "share", "dislike"):
            x[f"{etype}_rate"] = min(self.rate(etype), 1.0)
        x["intensity"] = min(math.log1p(self.events_per_day()) / math.log1p(100), 1.0)
        return x

    def to_redis_hash(self, now_ms: int, segment: str | None) -> dict[str, str]:
        """The ``sv:profile:{user_id}`` hash, every value a string (see the README table)."""
        tags = [[t, round(w, 6)] for t, w in self.top_tags(now_ms, self.config.redis_top_tags)]
        h = {
            "segment": segment or "",
            "top_tags": orjson.dumps(tags).decode(),
            "events": str(self.events),
            "last_ts": str(self.last_ts) if self.last_ts is not None else "",
            "first_ts": str(self.first_ts) if self.first_ts is not None else "",
            "sessions": str(self.sessions),
            "events_per_day": _num(self.events_per_day()),
            "activity": _num(self.activity(now_ms)),
            "views": str(self.views),
            "watch_ratio": _num(self.mean_watch_ratio()),
            "completion_rate": _num(self.completion_rate()),
            "like_rate": _num(self.rate("like")),
            "comment_rate": _num(self.rate("comment")),
            "share_rate": _num(self.rate("share")),
            "dislike_rate": _num(self.rate("dislike")),
            "conversions": str(self.counts.get("conversion", 0)),
        }
        for key, value in self.attributes.items():
            h[key] = str(value)
        return h

    # -- persistence ----------------------------------------------------------------------------
    def to_state(self) -> dict:
        """A JSON-serialisable snapshot; :meth:`from_state` continues exactly from it."""
        return {
            "v": 1,
            "user_id": self.user_id,
            "attributes": dict(self.attributes),
            "events": self.events,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "sessions": self.sessions,
            "counts": dict(self.counts),
            "watch_ratio": [self._ratio_n, self.watch_ratio.get()],
            "completion": [self.completion.n, self.completion.get()],
            "activity": [self._activity_clock.landmark, self._activity],
            "tags": [self._tag_clock.landmark, dict(self._tags)],
            "last_applied": dict(self.last_applied),
        }

    @classmethod
    def from_state(cls, state: dict, config: ProfileConfig | None = None) -> UserProfile:
        p = cls(state["user_id"], config)
        p.attributes = dict(state["attributes"])
        p.events = state["events"]
        p.first_ts, p.last_ts = state["first_ts"], state["last_ts"]
        p.sessions = state["sessions"]
        p.counts = dict(state["counts"])
        p._ratio_n, ratio = state["watch_ratio"]
        p.watch_ratio = _ewmean(p.config.watch_ratio_alpha, p._ratio_n, ratio)
        p.completion = _mean(*state["completion"])
        p._activity_clock.landmark, p._activity = state["activity"]
        p._tag_clock.landmark, tags = state["tags"]
        p._tags = dict(tags)
        p.last_applied = {str(k): int(v) for k, v in state["last_applied"].items()}
        return p

    def __repr__(self) -> str:
        return f"UserProfile({self.user_id!r}, events={self.events}, tags={len(self._tags)})"
