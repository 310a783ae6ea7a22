"""Community health per creator and per campaign, in bounded memory.

For each scope (a creator id or a campaign id, the wiring keeps one :class:`CommunityStats` per
kind) four figures are maintained from the event stream:

(a) **superfans** -- a decayed heavy-hitters sketch (:class:`DecayedSpaceSaving`): Space-Saving
    with ``capacity`` counters whose scores decay exponentially in event time. Why: exact
    per-user scores for a creator with millions of viewers would be unbounded; Space-Saving keeps
    every user whose decayed score exceeds total/capacity, with a known over-estimate (``error``).
(b) **follower growth** -- follows per event-time minute over the last ``n_minutes`` minutes
    (:class:`MinuteCounter`); follows older than the window are dropped.
(c) **repeat engagers** -- the share of engagement events (like, comment, share, follow,
    conversion) whose user had already engaged with the scope. "Already engaged" is remembered in
    a Bloom filter (:class:`BloomSet`): fixed memory, no false negatives, but a false positive
    rate of about ``(1 - exp(-k n / m)) ** k`` for ``n`` distinct engagers (0.5 % for 5 000
    users with the defaults), so the share is slightly over-estimated for very large scopes.
(d) **comment sentiment** -- a River EWMean of :func:`models.sentiment.score` over comments with
    text, and the count of scored comments.

Superfan score per event (:data:`ENGAGEMENT_WEIGHTS`): view 0.5, like 1, comment 2, share 3,
follow 3, conversion 5; impressions and dislikes add nothing.

>>> c = CommunityStats()
>>> c.apply({"type": "like", "ts": 0, "user_id": "u1"}, "cr1")
>>> c.apply({"type": "comment", "ts": 0, "user_id": "u1", "text": "love it"}, "cr1")
>>> c.apply({"type": "follow", "ts": 60_000, "user_id": "u2"}, "cr1")
>>> snap = c.snapshot(60_000)["cr1"]
>>> snap["superfans"][0]
{'user_id': 'u2', 'score': 3.0, 'error': 0.0}
>>> snap["repeat_share"], snap["follows_per_minute"], snap["sentiment"]
(0.333333, [[60000, 1]], 1.0)
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from river import stats

from models.profile import DAY_MS, Landmark
from models.sentiment import score as sentiment_score

MINUTE_MS = 60_000

ENGAGEMENT_WEIGHTS: dict[str, float] = {
    "view": 0.5, "like": 1.0, "comment": 2.0, "share": 3.0, "follow": 3.0, "conversion": 5.0,
}
#: Active engagement: counted by the repeat-engager share (views are passive).
REPEAT_TYPES = frozenset({"like", "comment", "share", "follow", "conversion"})


@dataclass(frozen=True)
class CommunityConfig:
    superfan_capacity: int = 64
    superfan_half_life_ms: int = 7 * DAY_MS
    n_minutes: int = 120
    bloom_bits: int = 1 << 15
    bloom_hashes: int = 4
    sentiment_alpha: float = 0.05
    top_superfans: int = 10


class DecayedSpaceSaving:
    """Space-Saving heavy hitters with exponential decay in event time (landmark form).

    Scores and errors are kept in landmark units, so decay costs nothing per update and the
    minimum can be found by comparing stored values. When a new key arrives and the table is
    full, it replaces the key with the lowest score and inherits that score as its error.

    >>> s = DecayedSpaceSaving(capacity=2, half_life_ms=1000)
    >>> s.update("a", 3.0, 0); s.update("b", 1.0, 0); s.update("c", 2.0, 0)
    >>> s.top(0)
    [('a', 3.0, 0.0), ('c', 3.0, 1.0)]
    >>> s.top(1000)
    [('a', 1.5, 0.0), ('c', 1.5, 0.5)]
    """

    def __init__(self, capacity: int = 64, half_life_ms: float = 7 * DAY_MS):
        self.capacity = capacity
        self.clock = Landmark(half_life_ms)
        self.items: dict[str, list[float]] = {}  # key -> [score, error] in landmark units

    def update(self, key: str, weight: float, ts: int) -> None:
        if self.clock.needs_rebase(ts):
            f = self.clock.rebase(ts)
            self.items = {k: [s * f, e * f] for k, (s, e) in self.items.items()}
        amount = weight * self.clock.up(ts)
        entry = self.items.get(key)
        if entry is not None:
            entry[0] += amount
        elif len(self.items) < self.capacity:
            self.items[key] = [amount, 0.0]
        else:
            victim = min(self.items, key=lambda k: (self.items[k][0], k))
            low = self.items.pop(victim)[0]
            self.items[key] = [low + amount, low]

    def top(self, now_ms: int, n: int | None = None) -> list[tuple[str, float, float]]:
        """``(key, score, error)`` decayed to ``now_ms``, highest score first (ties by key).
        The true decayed score lies in ``[score - error, score]``."""
        f = self.clock.down(now_ms)
        rows = sorted(((k, s * f, e * f) for k, (s, e) in self.items.items()),
                      key=lambda r: (-r[1], r[0]))
        return rows if n is None else rows[:n]

    def to_state(self) -> dict:
        return {"capacity": self.capacity, "half_life": self.clock.half_life,
                "landmark": self.clock.landmark, "items": {k: list(v) for k, v in self.items.items()}}

    @classmethod
    def from_state(cls, state: dict) -> DecayedSpaceSaving:
        s = cls(state["capacity"], state["half_life"])
        s.clock.landmark = state["landmark"]
        s.items = {k: list(v) for k, v in state["items"].items()}
        return s


class MinuteCounter:
    """Counts per event-time minute, keeping only the last ``n_minutes`` minutes seen.

    >>> m = MinuteCounter(n_minutes=2)
    >>> for ts in (0, 30_000, 60_000, 125_000): m.add(ts)
    >>> m.series(125_000)
    [[60000, 1], [120000, 1]]
    """

    def __init__(self, n_minutes: int = 120):
        self.n_minutes = n_minutes
        self.counts: dict[int, int] = {}
        self.newest: int | None = None
        self.total = 0

    def add(self, ts: int, k: int = 1) -> None:
        minute = ts - ts % MINUTE_MS
        self.total += k
        if self.newest is not None and minute <= self.newest - self.n_minutes * MINUTE_MS:
            return  # too late for the window; still in the total
        self.counts[minute] = self.counts.get(minute, 0) + k
        if self.newest is None or minute > self.newest:
            self.newest = minute
            oldest = minute - self.n_minutes * MINUTE_MS
            for old in [m for m in self.counts if m <= oldest]:
                del self.counts[old]

    def series(self, now_ms: int) -> list[list[int]]:
        """``[minute_start_ms, count]`` for the non-empty minutes of the window ending with the
        minute of ``now_ms``, oldest first."""
        end = now_ms - now_ms % MINUTE_MS
        start = end - self.n_minutes * MINUTE_MS
        return [[m, c] for m, c in sorted(self.counts.items()) if start < m <= end]

    def to_state(self) -> dict:
        return {"n": self.n_minutes, "newest": self.newest, "total": self.total,
                "counts": [[m, c] for m, c in sorted(self.counts.items())]}

    @classmethod
    def from_state(cls, state: dict) -> MinuteCounter:
        m = cls(state["n"])
        m.newest, m.total = state["newest"], state["total"]
        m.counts = {int(k): int(c) for k, c in state["counts"]}
        return m


class BloomSet:
    """A Bloom filter over strings: "have I seen this user?" in fixed memory.

    >>> b = BloomSet(bits=1024, hashes=3)
    >>> b.check_and_add("u1"), b.check_and_add("u1"), b.check_and_add("u2")
    (False, True, False)
    """

    def __init__(self, bits: int = 1 << 15, hashes: int = 4):
        self.bits = bits
        self.hashes = hashes
        self.array = bytearray((bits + 7) // 8)

    def _positions(self, key: str):
        # double hashing from one blake2b digest: stable across processes and restarts
        d = hashlib.blake2b(key.encode(), digest_size=16).digest()
        h1, h2 = int.from_bytes(d[:8], "little"), int.from_bytes(d[8:], "little") | 1
        return [(h1 + i * h2) % self.bits for i in range(self.hashes)]

    def check_and_add(self, key: str) -> bool:
        """True if ``key`` was (probably) present before; adds it either way."""
        present = True
        for pos in self._positions(key):
            byte, bit = divmod(pos, 8)
            if not self.array[byte] >> bit & 1:
                present = False
                self.array[byte] |= 1 << bit
        return present

    def to_state(self) -> dict:
        return {"bits": self.bits, "hashes": self.hashes,
                "array": base64.b64encode(bytes(self.array)).decode()}

    @classmethod
    def from_state(cls, state: dict) -> BloomSet:
        b = cls(state["bits"], state["hashes"])
        b.array = bytearray(base64.b64decode(state["array"]))
        return b


class ScopeStats:
    """The four community figures of one creator or campaign."""

    def __init__(self, config: CommunityConfig | None = None):
        self.config = cfg = config or CommunityConfig()
        self.superfans = DecayedSpaceSaving(cfg.superfan_capacity, cfg.superfan_half_life_ms)
        self.follows = MinuteCounter(cfg.n_minutes)
        self.engagers = BloomSet(cfg.bloom_bits, cfg.bloom_hashes)
        self.engagements = 0
        self.repeat_engagements = 0
        self.sentiment = stats.EWMean(fading_factor=cfg.sentiment_alpha)
        self.comments_scored = 0
        self.last_ts: int | None = None

    def apply(self, event: dict) -> None:
        etype, ts, user = event["type"], int(event["ts"]), event["user_id"]
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        weight = ENGAGEMENT_WEIGHTS.get(etype)
        if weight:
            self.superfans.update(user, weight, ts)
        if etype == "follow":
            self.follows.add(ts)
        if etype in REPEAT_TYPES:
            self.engagements += 1
            if self.engagers.check_and_add(user):
                self.repeat_engagements += 1
        if etype == "comment" and event.get("text"):
            self.sentiment.update(sentiment_score(event["text"]))
            self.comments_scored += 1

    def snapshot(self, now_ms: int) -> dict:
        """A JSON-serialisable view at ``now_ms``; figures rounded to 6 decimals."""
        fans = self.superfans.top(now_ms, self.config.top_superfans)
        series = self.follows.series(now_ms)
        return {
            "superfans": [{"user_id": k, "score": round(s, 6), "error": round(e, 6)}
                          for k, s, e in fans],
            "follows_per_minute": series,
            "follows_window": sum(c for _, c in series),
            "follows_total": self.follows.total,
            "engagements": self.engagements,
            "repeat_engagements": self.repeat_engagements,
            "repeat_share": (round(self.repeat_engagements / self.engagements, 6)
                             if self.engagements else None),
            "sentiment": round(self.sentiment.get(), 6) if self.comments_scored else None,
            "comments_scored": self.comments_scored,
            "last_ts": self.last_ts,
        }

    def to_state(self) -> dict:
        return {
            "superfans": self.superfans.to_state(),
            "follows": self.follows.to_state(),
            "engagers": self.engagers.to_state(),
            "engagements": self.engagements,
            "repeat_engagements": self.repeat_engagements,
            # River's EWMean is a Rust object: its first update sets the mean, so saving the
            # mean and replaying it once restores it exactly
            "sentiment": [self.comments_scored, self.sentiment.get()],
            "last_ts": self.last_ts,
        }

    @classmethod
    def from_state(cls, state: dict, config: CommunityConfig | None = None) -> ScopeStats:
        s = cls(config)
        s.superfans = DecayedSpaceSaving.from_state(state["superfans"])
        s.follows = MinuteCounter.from_state(state["follows"])
        s.engagers = BloomSet.from_state(state["engagers"])
        s.engagements = state["engagements"]
        s.repeat_engagements = state["repeat_engagements"]
        s.comments_scored, mean = state["sentiment"]
        if s.comments_scored:
            s.sentiment.update(mean)
        s.last_ts = state["last_ts"]
        return s


class CommunityStats:
    """Community figures for many scopes (e.g. all creators), keyed by ``scope_id``."""

    def __init__(self, config: CommunityConfig | None = None):
        self.config = config or CommunityConfig()
        self.scopes: dict[str, ScopeStats] = {}

    def apply(self, event: dict, scope_id: str | None) -> None:
        """Fold ``event`` into the stats of ``scope_id`` (no-op when the scope is unknown)."""
        if not scope_id or event.get("type") == "erase":
            return
        scope = self.scopes.get(scope_id)
        if scope is None:
            scope = self.scopes[scope_id] = ScopeStats(self.config)
        scope.apply(event)

    def forget_user(self, user_id: str) -> None:
        """Privacy erase: drop the user from every superfan table. The Bloom filter cannot
        forget, but it holds only hashed bits, no identifier."""
        for scope in self.scopes.values():
            scope.superfans.items.pop(user_id, None)

    def scope(self, scope_id: str) -> ScopeStats | None:
        return self.scopes.get(scope_id)

    def snapshot(self, now_ms: int, scope_id: str | None = None) -> dict:
        """``{scope_id: figures}`` for every scope, or only ``scope_id`` when given."""
        ids = [scope_id] if scope_id is not None else sorted(self.scopes)
        return {i: self.scopes[i].snapshot(now_ms) for i in ids if i in self.scopes}

    def to_state(self) -> dict:
        return {"scopes": {k: s.to_state() for k, s in self.scopes.items()}}

    @classmethod
    def from_state(cls, state: dict, config: CommunityConfig | None = None) -> CommunityStats:
        c = cls(config)
        c.scopes = {k: ScopeStats.from_state(v, c.config) for k, v in state["scopes"].items()}
        return c
