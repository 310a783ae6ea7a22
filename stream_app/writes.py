"""Turn a batch of validated events into the Redis writes of :mod:`stream_app.redis_store`.

Pure: no I/O, so it is unit-tested directly. Keys follow ``CONTRACT.md`` (``{prefix}video:{id}``,
``{prefix}creator:{id}``, ``{prefix}campaign:{id}``); a delivery marker per event makes the
batch idempotent.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.counters import DeltaBatch, counter_deltas
from stream_app.redis_store import RedisWrites, number_text


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

    def profile(self, user_id: str) -> str:
        return f"{self.prefix}profile:{user_id}"

    def recs(self, user_id: str) -> str:
        return f"{self.prefix}recs:{user_id}"

    def stats(self) -> str:
        return f"{self.prefix}stats:ingest"


def plan_counter_writes(deliveries: list[Delivery], keys: KeySpace, *, now_ms: int,
                        dedup_horizon_ms: int) -> RedisWrites:
    """Markers for every delivery plus the summed counter increments of all of them."""
    writes = RedisWrites()
    deltas = DeltaBatch()
    for delivery in deliveries:
        event = delivery.event
        writes.ids.append([keys.marker(event["event_id"]), delivery.marker,
                           max(event["ts"], now_ms) + dedup_horizon_ms])
        increments = counter_deltas(event)
        if not increments:
            continue
        if video_id := event.get("video_id"):
            deltas.add(keys.video(video_id), increments)
        if creator_id := event.get("creator_id"):
            deltas.add(keys.creator(creator_id), increments)
        if campaign_id := event.get("campaign_id"):
            deltas.add(keys.campaign(campaign_id), increments)
    for key, field, delta, is_float in deltas.hash_increments():
        (writes.hf if is_float else writes.hi).append([key, field, number_text(delta)])
    return writes
