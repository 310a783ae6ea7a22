"""Repair of offsets that the Faust consumer skipped (a guard against silent loss).

Faust's consumer can skip a record around a rebalance (a message fetched while the flow is
suspended never reaches the agent; the next record then looks like a "gap", which Faust marks
acknowledged, and the offset commit moves past the lost record; compare faust-streaming #34,
#216, #221). Our batches are idempotent, so replaying a record is harmless, but a record that is
never delivered would be lost. So every batch also records, atomically with its effects, the
highest offset applied per partition (``{p}offsets:{app_id}``, field ``topic:partition``), and:

* before a batch is applied, any offsets between the recorded one and the batch's first offset
  are fetched directly from Kafka (a group-less consumer) and put in front of the batch;
* a sweeper looks every 5 s for assigned partitions whose end offset is ahead of the recorded
  one while nothing has been applied from them for 30 s, and processes the next batch-size of
  missing records the same way.
"""
from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream_app.settings import Settings

log = logging.getLogger(__name__)


class OffsetLedger:
    """The highest applied offset per (topic, partition), mirrored from Redis."""

    def __init__(self, redis_key: str):
        self.redis_key = redis_key
        self.applied: dict[tuple[str, int], int] = {}
        self.changed_at: dict[tuple[str, int], float] = {}
        self._loaded: set[tuple[str, int]] = set()

    @staticmethod
    def field(topic: str, partition: int) -> str:
        return f"{topic}:{partition}"

    async def load(self, client, tps: list[tuple[str, int]]) -> None:
        missing = [tp for tp in tps if tp not in self._loaded]
        if not missing:
            return
        values = await client.hmget(self.redis_key, [self.field(*tp) for tp in missing])
        for tp, value in zip(missing, values):
            if value is not None:
                self.record(tp, int(value))
            self._loaded.add(tp)

    def record(self, tp: tuple[str, int], offset: int) -> None:
        if offset > self.applied.get(tp, -1):
            self.applied[tp] = offset
            self.changed_at[tp] = time.monotonic()


class GapFetcher:
    """Reads given offset ranges straight from Kafka, outside the consumer group."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def _client(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap_servers,
                                              group_id=None, enable_auto_commit=False,
                                              auto_offset_reset="earliest")
            await self._consumer.start()
        return self._consumer

    async def end_offsets(self, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        async with self._lock:
            consumer = await self._client()
            ends = await consumer.end_offsets([TopicPartition(t, p) for t, p in tps])
            return {(tp.topic, tp.partition): end for tp, end in ends.items()}

    async def fetch(self, topic: str, partition: int, start: int, stop: int, timeout_s: float = 15.0) -> list:
        """Records with start <= offset < stop (fewer if some were deleted by retention)."""
        async with self._lock:
            consumer = await self._client()
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, start)
            out, deadline = [], time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                position = await consumer.position(tp)
                if position >= stop:
                    break
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=5000)
                out.extend(r for r in batch.get(tp, []) if start <= r.offset < stop)
            else:
                log.warning("could only read %d of offsets %d..%d of %s:%d", len(out), start, stop - 1,
                            topic, partition)
            return out

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def fill_gaps(messages: list, ledger: OffsetLedger, fetcher: GapFetcher, client) -> list:
    """``messages`` with any skipped offsets before them (per partition) put in front."""
    first: dict[tuple[str, int], int] = {}
    for message in messages:
        tp = (message.topic, message.partition)
        if message.offset < first.get(tp, message.offset + 1):
            first[tp] = message.offset
    await ledger.load(client, list(first))
    repaired = []
    for tp, offset in first.items():
        applied = ledger.applied.get(tp)
        if applied is not None and offset > applied + 1:
            found = await fetcher.fetch(tp[0], tp[1], applied + 1, offset)
            log.warning("offsets %d..%d of %s:%d were skipped by the consumer; %d re-read from Kafka",
                        applied + 1, offset - 1, tp[0], tp[1], len(found))
            repaired.extend(found)
    return repaired + list(messages) if repaired else list(messages)


#: How often each stage's sweeper looks for stuck partitions.
SWEEP_INTERVAL_S = 5.0
#: A partition counts as stuck when nothing of it was applied for this long while Kafka holds
#: records beyond the recorded offset (a merely busy agent keeps making progress).
SWEEP_QUIET_S = 30.0


async def sweep(ledger: OffsetLedger, fetcher: GapFetcher, client, assigned: list[tuple[str, int]],
                batch_size: int, process) -> None:
    """For each assigned partition stuck behind its end offset, ``await process(records)`` with
    the next ``batch_size`` records after the recorded offset."""
    if not assigned:
        return
    await ledger.load(client, assigned)
    known = [tp for tp in assigned if tp in ledger.applied]
    if not known:
        return
    ends = await fetcher.end_offsets(known)
    quiet_since = time.monotonic() - SWEEP_QUIET_S
    for tp in known:
        applied = ledger.applied[tp]
        if ends[tp] - 1 > applied and ledger.changed_at.get(tp, 0) < quiet_since:
            stop = min(ends[tp], applied + 1 + batch_size)
            missing = await fetcher.fetch(tp[0], tp[1], applied + 1, stop)
            if missing:
                log.warning("%s:%d: %d records after offset %d were not delivered; processing them",
                            tp[0], tp[1], len(missing), applied)
                await process(missing)


def highest_offsets(messages: list) -> dict[tuple[str, int], int]:
    """The highest offset per (topic, partition) among ``messages``."""
    out: dict[tuple[str, int], int] = {}
    for message in messages:
        tp = (message.topic, message.partition)
        if message.offset > out.get(tp, -1):
            out[tp] = message.offset
    return out
