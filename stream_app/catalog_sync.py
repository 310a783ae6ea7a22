"""Every worker's replica of the catalog, read from the compacted catalog topics.

Each worker reads ALL partitions of ``sv.videos``, ``sv.campaigns`` and ``sv.users`` with its
own group-less consumer, from the beginning: the compacted topics are the catalog's changelog,
so a restarted worker rebuilds the same catalog without any table changelog of its own.
``catalog_ready`` is set once the consumer has caught up with the end offsets it saw at start;
the ingest stage waits for it so that events are not held needlessly after a restart.
Invalid records go to the dead-letter topic like invalid events.
"""
from __future__ import annotations

import asyncio
import logging
import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from models.catalog import ID_FIELD, Catalog, validate_record
from models.events import Rejection
from stream_app.app import app, dlq_topic, settings
from stream_app.dead_letters import dead_letter_value

log = logging.getLogger(__name__)

catalog = Catalog()
catalog_ready = asyncio.Event()
#: Called with (kind, record_id) after a record is added or replaced.
LISTENERS: list = []


def _topic_kinds() -> dict[str, str]:
    return {settings.videos_topic: "video", settings.campaigns_topic: "campaign",
            settings.users_topic: "user"}


async def _dead_letter(message, rejection: Rejection) -> None:
    await dlq_topic.send(key=message.key,
                         value=dead_letter_value(message, rejection, int(time.time() * 1000)))


def apply_record(kind: str, key: bytes | None, value: bytes | None) -> Rejection | None:
    """Apply one catalog message to :data:`catalog`; return why it was refused, if it was."""
    if value is None:  # tombstone: the record is deleted
        if key:
            catalog.delete(kind, key.decode())
        return None
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Rejection("bad_json", f"the {kind} record is not valid JSON: {exc}")
    checked = validate_record(kind, record)
    if isinstance(checked, Rejection):
        return checked
    catalog.upsert(kind, checked)
    for listener in LISTENERS:
        listener(kind, checked[ID_FIELD[kind]])
    return None


@app.task
async def follow_catalog() -> None:
    """Follow the catalog topics for the life of the worker; restart the reader on errors."""
    while True:
        try:
            await _read_catalog()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - re-reading the compacted topics is idempotent
            log.exception("catalog reader failed; restarting it")
            await asyncio.sleep(1.0)


async def _partitions(topics: list[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, asked of the cluster (the topics may have any count)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    out = []
    for topic in described:
        if topic.get("error_code"):
            raise RuntimeError(f"catalog topic {topic.get('topic')} is unavailable: {topic}")
        out += [TopicPartition(topic["topic"], p["partition"]) for p in topic["partitions"]]
    return out


async def _read_catalog() -> None:
    kinds = _topic_kinds()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = await _partitions(list(kinds))
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        targets = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in targets.items() if end > 0}
        if not remaining:
            catalog_ready.set()
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, messages in batch.items():
                kind = kinds[tp.topic]
                for message in messages:
                    rejection = apply_record(kind, message.key, message.value)
                    if rejection is not None:
                        log.warning("refused %s record at %s:%d: %s", kind, tp.topic, message.offset,
                                    rejection.reason)
                        await _dead_letter(message, rejection)
            if remaining:
                for tp in list(remaining):
                    if await consumer.position(tp) >= targets[tp]:
                        remaining.discard(tp)
                if not remaining:
                    log.info("catalog loaded: %d videos, %d campaigns, %d users", len(catalog.videos),
                             len(catalog.campaigns), len(catalog.users))
                    catalog_ready.set()
    finally:
        await consumer.stop()
