"""Drive the live system with a real interaction log: catalog first, then its events.

The log is read with :func:`models.evaluation.read_log` (the same reader the offline evaluation
uses), so replayed events are exactly the ones evaluated. Event times are kept; ``speed``
scales the pauses between them (0 = no pauses).
"""
from __future__ import annotations

import asyncio
import itertools

import orjson
from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from models.evaluation import read_catalog, read_log
from stream_app.settings import Settings
from stream_app.topics import ensure_topics


async def replay_log(settings: Settings, path: str, *, fmt: str | None, mapping: dict | None,
                     speed: float, max_events: int | None) -> int:
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_idempotence=True, linger_ms=20)
    await producer.start()
    sent = 0
    try:
        for video in read_catalog(path, fmt, mapping).values():
            await producer.send(settings.videos_topic, orjson.dumps(video), key=video["video_id"].encode())
        events = read_log(path, fmt, mapping)
        if max_events:
            events = itertools.islice(events, max_events)
        previous_ts = None
        with tqdm(total=max_events, unit="ev", desc="replay") as bar:
            for event in events:
                if speed > 0 and previous_ts is not None and event["ts"] > previous_ts:
                    await asyncio.sleep((event["ts"] - previous_ts) / 1000.0 / speed)
                previous_ts = event["ts"]
                await producer.send(settings.events_topic, orjson.dumps(event),
                                    key=event["user_id"].encode())
                sent += 1
                bar.update()
        await producer.flush()
    finally:
        await producer.stop()
    return sent
