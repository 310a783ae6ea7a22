"""Stage 1 of the pipeline: validate, dead-letter, de-duplicate and count.

Batches of raw ``sv.events`` messages are:

1. parsed and validated (:func:`models.events.parse_event`); rejects are produced to the
   dead-letter topic with their reason, and the produce is awaited before anything else;
2. applied to Redis in one atomic, idempotent script (:mod:`stream_app.redis_store`): delivery
   markers, counter increments, and per-error-code reject counts;
3. forwarded, keyed by user_id, to the internal per-user topic, for profiles and
   recommendations (only canonical deliveries: never a duplicate event_id).

Only then does the batch end and Faust acknowledge its offsets, so a crash anywhere replays
the batch, and the replay changes nothing that was already applied.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

import orjson

from models.events import Rejection, parse_event
from stream_app import metrics
from stream_app.app import app, dlq_topic, events_topic, keys, settings
from stream_app.redis_store import (ALREADY_APPLIED, BatchConflict, RedisStore, RedisWrites,
                                    retry_forever)
from stream_app.writes import Delivery, plan_counter_writes

log = logging.getLogger(__name__)

_store: RedisStore | None = None


def redis_store() -> RedisStore:
    """The worker's Redis client, created in the worker's event loop on first use."""
    global _store
    if _store is None:
        _store = RedisStore(settings.redis_url)
    return _store


def dead_letter_value(message, rejection: Rejection, received_ts: int) -> bytes:
    raw: bytes = message.value or b""
    doc = {
        "error": rejection.error,
        "reason": rejection.reason,
        "raw": raw.decode("utf-8", errors="backslashreplace"),
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "received_ts": received_ts,
    }
    return orjson.dumps(doc)


def _rejection_writes(rejected: list[tuple[object, Rejection]]) -> RedisWrites:
    """Per-code reject counters, idempotent per Kafka delivery like the events themselves."""
    writes = RedisWrites()
    for message, rejection in rejected:
        marker = f"{message.topic}:{message.partition}:{message.offset}"
        writes.ids.append([f"{keys.prefix}rej:{marker}", marker,
                           int(time.time() * 1000) + settings.dedup_horizon_ms])
        writes.hi.append([keys.stats(), f"rejected:{rejection.error}", "1"])
    return writes


async def apply_idempotently(deliveries: list[Delivery], rejected: list) -> list[Delivery]:
    """Apply the batch; return the deliveries that are canonical (applied now or earlier).

    Events another message already applied (duplicate event_id) are dropped; events whose
    own delivery was applied before a crash are kept (they still have to be forwarded).
    """
    store = redis_store()
    pending = list(deliveries)
    pending_rejects = list(rejected)
    canonical_before: list[Delivery] = []
    while pending or pending_rejects:
        writes = plan_counter_writes(pending, keys, now_ms=int(time.time() * 1000),
                                     dedup_horizon_ms=settings.dedup_horizon_ms)
        reject_writes = _rejection_writes(pending_rejects)
        writes.ids.extend(reject_writes.ids)
        writes.hi.extend(reject_writes.hi)
        if pending:
            writes.hmax.append([keys.stats(), "last_event_ts",
                                str(max(d.event["ts"] for d in pending))])
            writes.hi.append([keys.stats(), "applied", str(len(pending))])
        try:
            await retry_forever("apply batch", lambda: store.apply(writes))
            break
        except BatchConflict as conflict:
            keep, keep_rejects = [], []
            for index, delivery in enumerate(pending):
                verdict = conflict.verdicts.get(index)
                if verdict is None:
                    keep.append(delivery)
                elif verdict == ALREADY_APPLIED:
                    canonical_before.append(delivery)
                    metrics.EVENTS_SKIPPED.labels("redelivery").inc()
                else:
                    metrics.EVENTS_SKIPPED.labels("duplicate").inc()
            for index, item in enumerate(pending_rejects, start=len(pending)):
                if index not in conflict.verdicts:
                    keep_rejects.append(item)
            pending, pending_rejects = keep, keep_rejects
    metrics.EVENTS_APPLIED.inc(len(pending))
    return canonical_before + pending


async def process_batch(messages: list) -> None:
    received_ts = int(time.time() * 1000)
    deliveries: list[Delivery] = []
    rejected: list[tuple[object, Rejection]] = []
    seen_in_batch: set[str] = set()
    for message in messages:
        parsed = parse_event(message.value)
        if isinstance(parsed, Rejection):
            rejected.append((message, parsed))
            continue
        event_id = parsed["event_id"]
        if event_id in seen_in_batch:
            metrics.EVENTS_SKIPPED.labels("duplicate").inc()
            continue
        seen_in_batch.add(event_id)
        deliveries.append(Delivery(parsed, message.topic, message.partition, message.offset))

    if rejected:
        # Dead letters first: once they are durably in Kafka the batch may be applied.
        sent = [await dlq_topic.send(key=message.key,
                                     value=dead_letter_value(message, rejection, received_ts))
                for message, rejection in rejected]
        await asyncio.gather(*sent)
        for _, rejection in rejected:
            metrics.EVENTS_REJECTED.labels(rejection.error).inc()

    canonical = await apply_idempotently(deliveries, rejected)
    if canonical:
        metrics.LAST_EVENT_TS.set(max(d.event["ts"] for d in canonical))
    await forward_canonical(canonical)


async def forward_canonical(canonical: list[Delivery]) -> None:
    """Hand the canonical events to stage 2 (per-user state). Registered by later stages."""
    for handler in FORWARD_HANDLERS:
        await handler(canonical)


#: Coroutines ``handler(deliveries)`` run after a batch is applied, before it is acknowledged.
FORWARD_HANDLERS: list = []


@app.agent(events_topic)
async def ingest(stream):
    """Consume ``sv.events`` in batches; see the module docstring for the guarantees."""
    async for events in stream.take_events(settings.batch_size, within=settings.batch_window_s):
        started = time.perf_counter()
        messages = [event.message for event in events]
        metrics.EVENTS_CONSUMED.inc(len(messages))
        metrics.BATCH_SIZE.observe(len(messages))
        await process_batch_or_die(messages)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)


#: Exit status when a batch cannot be processed: the supervisor restarts the worker.
EXIT_BATCH_FAILED = 70


async def process_batch_or_die(messages: list) -> None:
    """Process a batch, retrying unexpected errors a few times, else exit WITHOUT acking.

    Faust acknowledges a ``take_events`` batch even when the loop body raises, and would
    then commit offsets of events that were never applied. Transient Redis errors are
    retried forever inside; anything else is a bug: after three attempts the process exits
    at once (no ack, no commit), so the batch is replayed by the restarted worker.
    """
    for attempt in range(1, 4):
        try:
            await process_batch(messages)
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - see docstring
            log.exception("batch of %d messages failed (attempt %d/3)", len(messages), attempt)
            await asyncio.sleep(0.5 * attempt)
    log.critical("giving up on a batch; exiting without acknowledging it")
    logging.shutdown()
    os._exit(EXIT_BATCH_FAILED)
