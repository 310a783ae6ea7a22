"""Produce simulated live traffic to Kafka: the catalog first, then paced engagement events.

The traffic itself (users with hidden tastes, Zipf-like video popularity, sessions) comes from
:class:`models.simulation.TrafficModel`; this module only paces it on the wall clock and
produces it.
"""
from __future__ import annotations

import asyncio
import logging
import time

import orjson
from aiokafka import AIOKafkaProducer

from models.simulation import TrafficModel
from stream_app.settings import Settings
from stream_app.topics import ensure_topics

log = logging.getLogger(__name__)


async def produce_catalog(producer: AIOKafkaProducer, settings: Settings, model: TrafficModel) -> None:
    for topic, records, id_field in (
        (settings.campaigns_topic, model.campaigns(), "campaign_id"),
        (settings.videos_topic, model.videos(), "video_id"),
        (settings.users_topic, model.users(), "user_id"),
    ):
        for record in records:
            await producer.send(topic, orjson.dumps(record), key=record[id_field].encode())
    await producer.flush()


async def run_simulation(settings: Settings, *, rate: float, duration: float, seed: int,
                         n_users: int, n_videos: int) -> int:
    """Produce ``rate`` events/s for ``duration`` seconds (0 = forever); return the count."""
    await ensure_topics(settings)
    now_ms = int(time.time() * 1000)
    model = TrafficModel(seed=seed, n_users=n_users, n_videos=n_videos, start_ts=now_ms)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_idempotence=True, linger_ms=20)
    await producer.start()
    sent = 0
    run_id = f"sim{now_ms:x}"
    try:
        await produce_catalog(producer, settings, model)
        started = time.monotonic()
        for event in model.events(start_ts=now_ms, rate_per_s=rate):
            elapsed = time.monotonic() - started
            if duration and elapsed >= duration:
                break
            ahead = sent / rate - elapsed
            if ahead > 0:
                await asyncio.sleep(ahead)
            # Live traffic: stamp events with the wall clock, not the model's clock, and make
            # event ids unique per run (the model's ids repeat for a seed, and a repeated id
            # within the dedup horizon is, rightly, a duplicate).
            event["ts"] = int(time.time() * 1000)
            event["event_id"] = f"{run_id}-{event['event_id']}"
            await producer.send(settings.events_topic, orjson.dumps(event), key=event["user_id"].encode())
            sent += 1
            if sent % max(int(rate) * 10, 1) == 0:
                log.info("produced %d events (%.0f/s)", sent, sent / max(elapsed, 1e-9))
        await producer.flush()
    finally:
        await producer.stop()
    return sent
