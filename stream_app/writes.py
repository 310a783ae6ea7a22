"""Turn validated events into the Redis writes of :mod:`stream_app.redis_store`.

Pure: no I/O, so it is unit-tested directly. Keys follow ``CONTRACT.md``; what each key holds is
described in ``docs/live-roi.md``. One :class:`BatchPlanner` collects a whole batch so that
every key gets one summed increment per batch.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import orjson

from models.attribution import Attribution, Hold, attribute
from models.catalog import Catalog
from models.counters import DeltaBatch, counter_deltas
from models.metrics import event_spend, minute_start
from stream_app.redis_store import RedisWrites, number_text

#: Engagement weight of each event type in the trending score (a >= 2 s view counts 1).
TRENDING_WEIGHTS = {"like": 2.0, "comment": 3.0, "share": 4.0, "follow": 3.0, "conversion": 5.0,
                    "dislike": -2.0}

#: Counters kept per content-insight key (per tag, per group x tag).
INSIGHT_FIELDS = frozenset({"impressions", "views", "views_2s", "completions", "watch_ms", "likes",
                            "comments", "shares"})
DEMOGRAPHIC_DIMENSIONS = ("age_band", "gender", "region")


@dataclass(frozen=True, slots=True)
class Delivery:
    """A validated event and where Kafka delivered it from."""

    event: dict
    topic: str
    partition: int
    offset: int

    @property
    def marker(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


class KeySpace:
    """Redis key names under one prefix (default ``sv:``)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def marker(self, event_id: str) -> str:
        return f"{self.prefix}eid:{event_id}"

    def video(self, video_id: str) -> str:
        return f"{self.prefix}video:{video_id}"

    def creator(self, creator_id: str) -> str:
        return f"{self.prefix}creator:{creator_id}"

    def campaign(self, campaign_id: str) -> str:
        return f"{self.prefix}campaign:{campaign_id}"

    def campaign_minute(self, campaign_id: str, minute_ms: int) -> str:
        return f"{self.prefix}campaign:{campaign_id}:m:{minute_ms}"

    def hll(self, scope_key: str) -> str:
        """The HyperLogLog of distinct users behind the ``reach`` of a counters HASH."""
        return f"{self.prefix}hll:{scope_key[len(self.prefix):]}"

    def pending(self, kind: str, record_id: str) -> str:
        return f"{self.prefix}pending:{kind}:{record_id}"

    def pending_index(self) -> str:
        return f"{self.prefix}pending:index"

    def insight(self, tag: str, dimension: str | None = None, value: str | None = None) -> str:
        if dimension is None:
            return f"{self.prefix}insights:tag:{tag}"
        return f"{self.prefix}insights:{dimension}:{value}:tag:{tag}"

    def profile(self, user_id: str) -> str:
        return f"{self.prefix}profile:{user_id}"

    def recs(self, user_id: str) -> str:
        return f"{self.prefix}recs:{user_id}"

    def stats(self) -> str:
        return f"{self.prefix}stats:ingest"

    def trending(self) -> str:
        return f"{self.prefix}trending"


def pending_entry(event: dict, held_at_ms: int) -> bytes:
    return orjson.dumps({"e": event, "h": held_at_ms})


class BatchPlanner:
    """Accumulates the writes of many events; :meth:`writes` renders them once."""

    def __init__(self, keys: KeySpace, catalog: Catalog, *, watermark_ms: int, late_grace_ms: int,
                 minute_ttl_s: int, trending_landmark_ms: int | None = None,
                 trending_half_life_ms: int = 6 * 3_600_000):
        self.keys = keys
        self.catalog = catalog
        self.late_before_ms = watermark_ms - late_grace_ms if watermark_ms else None
        self.minute_ttl_s = minute_ttl_s
        self.deltas = DeltaBatch()
        self.reach: dict[str, tuple[str, set[str]]] = {}
        self.expiring: set[str] = set()
        self.newest: dict[str, int] = {}
        self.out = RedisWrites()
        self.touched_campaigns: set[str] = set()
        self.applied = 0
        self.held = 0
        self.late = 0
        self.trending_landmark_ms = trending_landmark_ms
        self.trending_half_life_ms = trending_half_life_ms
        self.trending: dict[str, float] = defaultdict(float)

    # -- one event -----------------------------------------------------------------------
    def add_marker(self, delivery: Delivery, expire_at_ms: int) -> None:
        self.out.ids.append([self.keys.marker(delivery.event["event_id"]), delivery.marker, expire_at_ms])

    def add(self, event: dict, *, now_ms: int, allow_missing: bool = False) -> Attribution | Hold:
        """Plan one event: hold it, or count it everywhere it belongs."""
        attribution = attribute(event, self.catalog, allow_missing=allow_missing)
        if isinstance(attribution, Hold):
            key = self.keys.pending(attribution.kind, attribution.id)
            self.out.rp.append([key, pending_entry(event, now_ms).decode()])
            self.out.sa.append([self.keys.pending_index(), key])
            self.held += 1
            return attribution
        self.applied += 1
        if event["type"] == "erase":
            return attribution
        self._count(event, attribution)
        return attribution

    def _count(self, event: dict, attribution: Attribution) -> None:
        keys = self.keys
        increments = counter_deltas(event, attribution.duration_ms)
        spend = event_spend(event, attribution.campaign)
        if spend:
            increments["spend"] = spend
        late = self.late_before_ms is not None and event["ts"] < self.late_before_ms
        if late:
            self.late += 1
        user_id = event["user_id"]
        scopes = []
        if video_id := event.get("video_id"):
            scopes.append(keys.video(video_id))
        if attribution.creator_id:
            scopes.append(keys.creator(attribution.creator_id))
        if attribution.campaign_id:
            campaign_key = keys.campaign(attribution.campaign_id)
            scopes.append(campaign_key)
            self.touched_campaigns.add(attribution.campaign_id)
            if late:
                self.deltas.add(campaign_key, {"late": 1})
            else:
                minute_key = keys.campaign_minute(attribution.campaign_id, minute_start(event["ts"]))
                scopes.append(minute_key)
                self.expiring.add(minute_key)
                self.expiring.add(keys.hll(minute_key))
        for scope in scopes:
            if increments:
                self.deltas.add(scope, increments)
            self._add_reach(scope, user_id)
            if self.newest.get(scope, -1) < event["ts"]:
                self.newest[scope] = event["ts"]
        self._add_insights(attribution, increments)
        self._add_trending(event)

    def _add_trending(self, event: dict) -> None:
        """Forward decay: weight x 2^((ts - landmark) / half-life), so old scores need no update."""
        video_id = event.get("video_id")
        if not video_id:
            return
        etype = event["type"]
        weight = 1.0 if etype == "view" and event["watch_ms"] >= 2000 else TRENDING_WEIGHTS.get(etype, 0.0)
        if not weight:
            return
        if self.trending_landmark_ms is None:
            self.trending_landmark_ms = event["ts"]
        exponent = (event["ts"] - self.trending_landmark_ms) / self.trending_half_life_ms
        self.trending[video_id] += weight * 2.0 ** min(exponent, 60.0)

    def _add_reach(self, scope_key: str, user_id: str) -> None:
        entry = self.reach.get(scope_key)
        if entry is None:
            entry = self.reach[scope_key] = (self.keys.hll(scope_key), set())
        entry[1].add(user_id)

    def _add_insights(self, attribution: Attribution, increments: dict) -> None:
        if not attribution.tags:
            return
        insight = {k: v for k, v in increments.items() if k in INSIGHT_FIELDS}
        if not insight:
            return
        user = attribution.user or {}
        groups = [(dim, user[dim]) for dim in DEMOGRAPHIC_DIMENSIONS if user.get(dim)]
        for tag in attribution.tags:
            self.deltas.add(self.keys.insight(tag), insight)
            for dimension, value in groups:
                self.deltas.add(self.keys.insight(tag, dimension, str(value)), insight)

    # -- the batch -----------------------------------------------------------------------
    def writes(self) -> RedisWrites:
        out = self.out
        for key, field, delta, is_float in self.deltas.hash_increments():
            (out.hf if is_float else out.hi).append([key, field, number_text(delta, is_float)])
        for scope_key, (hll_key, users) in self.reach.items():
            out.pfr.append([hll_key, scope_key, *sorted(users)])
        for key, ts in self.newest.items():
            out.hmax.append([key, "last_event_ts", str(ts)])
        for key in sorted(self.expiring):
            out.ex.append([key, self.minute_ttl_s])
        if self.trending:
            out.zt = [[video, repr(delta)] for video, delta in self.trending.items()]
            out.zt_meta = [self.keys.trending(), self.keys.trending() + ":landmark",
                           str(self.trending_landmark_ms), str(self.trending_half_life_ms)]
        stats = self.keys.stats()
        for name, count in (("applied", self.applied), ("held", self.held), ("late", self.late)):
            if count:
                out.hi.append([stats, name, str(count)])
        return out
