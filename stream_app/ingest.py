"""Stage 1 of the pipeline: validate, dead-letter, de-duplicate, join the catalog and count.

Batches of raw ``sv.events`` messages are:

1. parsed and validated (:func:`models.events.parse_event`); rejects are produced to the
   dead-letter topic with their reason, and the produce is awaited before anything else;
2. joined with the catalog and applied to Redis in one atomic, idempotent script
   (:mod:`stream_app.redis_store`): delivery markers, counters, minute buckets, reach, spend,
   content insights, held events (``docs/live-roi.md``) and per-error-code reject counts;
3. handed to stage 2 (per-user state), canonical deliveries only, never a duplicate event_id.

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
from models.metrics import DERIVED_FIELDS, derived_metrics
from models.privacy import pseudonymize
from stream_app import metrics
from stream_app.app import app, by_user_topic, dlq_topic, events_topic, keys, settings
from stream_app.catalog_sync import catalog, catalog_ready
from stream_app.dead_letters import dead_letter_value
from stream_app.gaps import (SWEEP_INTERVAL_S, GapFetcher, OffsetLedger, fill_gaps, highest_offsets,
                             sweep)
from stream_app.redis_store import (ALREADY_APPLIED, BatchConflict, RedisStore, RedisWrites,
                                    retry_forever)
from stream_app.writes import BatchPlanner, Delivery

log = logging.getLogger(__name__)

_store: RedisStore | None = None
ledger = OffsetLedger(f"{keys.prefix}offsets:{settings.app_id}")
gap_fetcher = GapFetcher(settings)
#: One batch at a time: the agent's batches and the gap sweeper's never interleave.
batch_lock = asyncio.Lock()
#: Newest event time applied by this worker (the lateness watermark), loaded from Redis.
_watermark: dict[str, int | None] = {"ts": None}


def redis_store() -> RedisStore:
    """The worker's Redis client, created in the worker's event loop on first use."""
    global _store
    if _store is None:
        _store = RedisStore(settings.redis_url)
    return _store


def now_ms() -> int:
    return int(time.time() * 1000)


def _rejection_writes(rejected: list[tuple[object, Rejection]]) -> RedisWrites:
    """Per-code reject counters, idempotent per Kafka delivery like the events themselves."""
    writes = RedisWrites()
    for message, rejection in rejected:
        marker = f"{message.topic}:{message.partition}:{message.offset}"
        writes.ids.append([f"{keys.prefix}rej:{marker}", marker, now_ms() + settings.dedup_horizon_ms])
        writes.hi.append([keys.stats(), f"rejected:{rejection.error}", "1"])
    return writes


REBASE_TRENDING_LUA = """
local current = redis.call('GET', KEYS[2])
if current and tonumber(ARGV[1]) > tonumber(current) then
  local factor = math.pow(2, -(tonumber(ARGV[1]) - tonumber(current)) / tonumber(ARGV[2]))
  redis.call('ZUNIONSTORE', KEYS[1], 1, KEYS[1], 'WEIGHTS', string.format('%.17g', factor))
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[3]) - 1)
  redis.call('SET', KEYS[2], ARGV[1])
  return 1
end
return 0
"""


@app.timer(60.0)
async def maintain_trending() -> None:
    """Keep trending scores well scaled: move the decay landmark up to the watermark once it
    lags by more than a day of half-lives, and keep the ZSET to its top 10,000 videos."""
    client = redis_store().client
    landmark_key = keys.trending() + ":landmark"
    stored = await client.get(landmark_key)
    watermark = _watermark["ts"] or 0
    if stored is not None:
        lag = (watermark - int(stored)) / settings.trending_half_life_ms
        if lag > 24:
            await client.eval(REBASE_TRENDING_LUA, 2, keys.trending(), landmark_key, watermark,
                              settings.trending_half_life_ms, 10_000)
            stored = watermark
        _trending_landmark["ms"] = int(stored)


async def current_watermark() -> int:
    if _trending_landmark["ms"] is None:
        stored = await retry_forever("read trending landmark",
                                     lambda: redis_store().client.get(keys.trending() + ":landmark"))
        _trending_landmark["ms"] = int(stored) if stored else None
    if _watermark["ts"] is None:
        stored = await retry_forever("read watermark",
                                     lambda: redis_store().client.hget(keys.stats(), "last_event_ts"))
        _watermark["ts"] = int(stored) if stored else 0
    return _watermark["ts"]


_trending_landmark: dict[str, int | None] = {"ms": None}


def new_planner(watermark: int) -> BatchPlanner:
    return BatchPlanner(keys, catalog, watermark_ms=watermark, late_grace_ms=settings.late_grace_ms,
                        minute_ttl_s=settings.minute_bucket_ttl_s,
                        trending_landmark_ms=_trending_landmark["ms"],
                        trending_half_life_ms=settings.trending_half_life_ms)


async def apply_idempotently(deliveries: list[Delivery], rejected: list,
                             batch_offsets: dict[tuple[str, int], int]) -> tuple[list[Delivery], set[str]]:
    """Apply the batch; return the canonical deliveries (applied now or before) and the
    campaigns it touched.

    Events another message already applied (duplicate event_id) are dropped; events whose
    own delivery was applied before a crash are kept (they still have to be forwarded).
    """
    store = redis_store()
    watermark = await current_watermark()
    pending, pending_rejects = list(deliveries), list(rejected)
    canonical_before: list[Delivery] = []
    while True:
        stamp = now_ms()
        planner = new_planner(watermark)
        for delivery in pending:
            planner.add_marker(delivery, max(delivery.event["ts"], stamp) + settings.dedup_horizon_ms)
            planner.add(delivery.event, now_ms=stamp)
        writes = planner.writes()
        writes.extend(_rejection_writes(pending_rejects))
        if pending:
            writes.hmax.append([keys.stats(), "last_event_ts", str(max(d.event["ts"] for d in pending))])
        # The highest offset of this batch per partition, recorded with its effects (gaps.py).
        writes.hmax.extend([ledger.redis_key, ledger.field(*tp), str(offset)]
                           for tp, offset in batch_offsets.items())
        try:
            if writes.ids or writes.hmax:
                await retry_forever("apply batch", lambda: store.apply(writes))
            break
        except BatchConflict as conflict:
            keep = []
            for index, delivery in enumerate(pending):
                verdict = conflict.verdicts.get(index)
                if verdict is None:
                    keep.append(delivery)
                elif verdict == ALREADY_APPLIED:
                    canonical_before.append(delivery)
                    metrics.EVENTS_SKIPPED.labels("redelivery").inc()
                else:
                    metrics.EVENTS_SKIPPED.labels("duplicate").inc()
            pending_rejects = [item for index, item in enumerate(pending_rejects, start=len(pending))
                               if index not in conflict.verdicts]
            pending = keep
    if pending:
        _watermark["ts"] = max(watermark, max(d.event["ts"] for d in pending))
    for tp, offset in batch_offsets.items():
        ledger.record(tp, offset)
    metrics.EVENTS_APPLIED.inc(len(pending))
    return canonical_before + pending, planner.touched_campaigns


async def refresh_campaign_metrics(campaign_ids: set[str]) -> None:
    """Recompute the derived metrics of these campaigns from their counters.

    Not part of the atomic batch: derived fields are a pure function of the counters, so a
    crash here only leaves them stale until the campaign's next batch.
    """
    if not campaign_ids:
        return
    client = redis_store().client
    ids = sorted(campaign_ids)

    async def read():
        async with client.pipeline(transaction=False) as pipe:
            for campaign_id in ids:
                pipe.hgetall(keys.campaign(campaign_id))
            return await pipe.execute()

    hashes = await retry_forever("read campaigns", read)
    stamp = now_ms()

    async def write():
        async with client.pipeline(transaction=False) as pipe:
            for campaign_id, raw in zip(ids, hashes):
                counters = {k.decode(): v.decode() for k, v in raw.items()}
                newest = int(counters.get("last_event_ts") or 0)
                derived = derived_metrics(counters, catalog.campaigns.get(campaign_id), newest)
                present = {k: repr(v) for k, v in derived.items() if v is not None}
                absent = [k for k in DERIVED_FIELDS if derived.get(k) is None]
                key = keys.campaign(campaign_id)
                pipe.hset(key, mapping={**present, "updated_ts": str(stamp)})
                if absent:
                    pipe.hdel(key, *absent)
            await pipe.execute()

    await retry_forever("write derived metrics", write)


async def process_batch(messages: list) -> None:
    messages = await fill_gaps(messages, ledger, gap_fetcher, redis_store().client)
    batch_offsets = highest_offsets(messages)
    received_ts = now_ms()
    deliveries: list[Delivery] = []
    rejected: list[tuple[object, Rejection]] = []
    seen_in_batch: set[str] = set()
    for message in messages:
        parsed = parse_event(message.value)
        if isinstance(parsed, Rejection):
            rejected.append((message, parsed))
            continue
        if settings.pseudonymize_key:
            parsed["user_id"] = pseudonymize(parsed["user_id"], settings.pseudonymize_key)
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

    canonical, campaigns = await apply_idempotently(deliveries, rejected, batch_offsets)
    await refresh_campaign_metrics(campaigns)
    if canonical:
        # Stage 2 relies on each origin partition arriving in offset order.
        canonical.sort(key=lambda d: (d.topic, d.partition, d.offset))
        metrics.LAST_EVENT_TS.set(max(d.event["ts"] for d in canonical))
        await forward_to_stage_two(canonical)


async def forward_to_stage_two(canonical: list[Delivery]) -> None:
    """Produce the canonical events, keyed by user, for profiles and recommendations.

    Each carries its origin (topic, partition, offset): stage 2 skips an origin it has already
    applied for that user, so forwarding again after a crash is harmless.
    """
    sent = [await by_user_topic.send(
        key=d.event["user_id"].encode(),
        value=orjson.dumps({"e": d.event, "o": [d.topic, d.partition, d.offset]}))
        for d in canonical]
    await asyncio.gather(*sent)

#: Exit status when a batch cannot be processed: the supervisor restarts the worker.
EXIT_BATCH_FAILED = 70


async def run_or_die(what: str, process, messages: list) -> None:
    """``await process(messages)``, retrying unexpected errors a few times, else exit WITHOUT
    acknowledging.

    Faust acknowledges a ``take_events`` batch even when the loop body raises, and would
    then commit offsets of events that were never applied. Transient Redis errors are
    retried forever inside; anything else is a bug: after three attempts the process exits
    at once (no ack, no commit), so the batch is replayed by the restarted worker.
    """
    for attempt in range(1, 4):
        try:
            await process(messages)
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - see docstring
            log.exception("%s of %d messages failed (attempt %d/3)", what, len(messages), attempt)
            await asyncio.sleep(0.5 * attempt)
    log.critical("giving up on a %s; exiting without acknowledging it", what)
    logging.shutdown()
    os._exit(EXIT_BATCH_FAILED)


async def process_locked(messages: list) -> None:
    async with batch_lock:
        await process_batch(messages)


async def process_batch_or_die(messages: list) -> None:
    """Stage 1's batch under :func:`run_or_die`."""
    await run_or_die("batch", process_locked, messages)


@app.agent(events_topic)
async def ingest(stream):
    """Consume ``sv.events`` in batches; see the module docstring for the guarantees."""
    if not catalog_ready.is_set():
        log.info("waiting for the catalog before the first batch")
        await catalog_ready.wait()
    async for events in stream.take_events(settings.batch_size, within=settings.batch_window_s):
        started = time.perf_counter()
        messages = [event.message for event in events]
        metrics.EVENTS_CONSUMED.inc(len(messages))
        metrics.BATCH_SIZE.observe(len(messages))
        await process_batch_or_die(messages)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)


@app.timer(SWEEP_INTERVAL_S)
async def sweep_skipped_offsets() -> None:
    """Process records of assigned partitions that the consumer skipped (see gaps.py)."""
    if not catalog_ready.is_set():
        return
    assigned = [(tp.topic, tp.partition) for tp in app.consumer.assignment()
                if tp.topic == settings.events_topic]
    await sweep(ledger, gap_fetcher, redis_store().client, assigned, settings.batch_size,
                process_batch_or_die)
