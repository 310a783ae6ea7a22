"""Stage 2 of the pipeline: per-user state (profiles, segments, community, recommendations).

Consumes the canonical events that stage 1 forwards, keyed by user_id, so all events of a user
reach the same worker in order. State lives in Faust tables (changelog-backed: it survives a
restart and moves with its partition) and is served from Redis (``{p}profile:{user}``,
``{p}recs:{user}``, ``{p}community:...``) right after each batch.

Idempotence: each profile remembers, per origin partition of ``sv.events``, the highest origin
offset it has applied (:meth:`models.profile.UserProfile.seen_offset`). Stage 1 forwards in
origin order and re-forwards only after a crash, so an event at or below that offset has been
applied already and is skipped; a duplicate event_id is never forwarded at all.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict

import orjson

from models.community import CommunityStats
from models.profile import ProfileConfig, UserProfile
from models.segments import Segmenter, SegmentStats
from stream_app.app import app, by_user_topic, keys, settings
from stream_app.catalog_sync import catalog, catalog_ready
from stream_app.gaps import (SWEEP_INTERVAL_S, GapFetcher, OffsetLedger, fill_gaps, highest_offsets,
                             sweep)
from stream_app.ingest import redis_store, run_or_die
from stream_app.redis_store import retry_forever
from stream_app import recs

log = logging.getLogger(__name__)

PROFILE_CONFIG = ProfileConfig(tag_half_life_ms=settings.tag_half_life_ms)
COMMUNITY_SCOPES = ("creator", "campaign")

# Keys and values are raw bytes on the wire (the app's serializers); values are orjson documents.
profiles = app.Table("profiles", partitions=settings.partitions, key_type=str, value_type=bytes)
community = app.Table("community", partitions=settings.partitions, key_type=str, value_type=bytes)

segmenter_state: dict = {"model": None, "stats": SegmentStats()}
user_ledger = OffsetLedger(f"{keys.prefix}offsets:{settings.app_id}:by-user")
gap_fetcher = GapFetcher(settings)
#: One stage-2 batch at a time: the agent's and the sweeper's never interleave.
batch_lock = asyncio.Lock()


#: Changelog writes of the current batch; awaited before the batch is acknowledged, so that
#: no offset is committed for state that is not durable in Kafka yet.
_pending_changelog: list = []


def table_put(table, partition: int, key: str, value: bytes) -> None:
    """Set ``key`` and log it to the changelog partition of the user's events.

    Faust would pick the changelog partition of the *last* event of a ``take_events`` batch,
    which can be another partition than this key's; so the partition is given explicitly.
    """
    table.data[key] = value
    _pending_changelog.append(table.send_changelog(partition, key, value))


def table_delete(table, partition: int, key: str) -> None:
    if key in table.data:
        del table.data[key]
    _pending_changelog.append(table.send_changelog(partition, key, None, value_serializer="raw"))


async def flush_changelog() -> None:
    pending = list(_pending_changelog)
    _pending_changelog.clear()
    if pending:
        await asyncio.gather(*pending)


def community_key(kind: str, scope_id: str, partition: int) -> str:
    """Community state is kept per scope *and partition*: users are partitioned, so the
    partial states of different partitions hold disjoint users and merge exactly on read."""
    return f"{kind}:{scope_id}:{partition}"


def load_profile(user_id: str) -> tuple[UserProfile, str | None]:
    raw = profiles.get(user_id)
    if raw is None:
        return UserProfile(user_id, PROFILE_CONFIG), None
    state = orjson.loads(raw)
    recs.restore_user(user_id, state.get("rec"))
    return UserProfile.from_state(state["profile"], PROFILE_CONFIG), state.get("segment")


def load_community(key: str) -> CommunityStats:
    raw = community.get(key)
    return CommunityStats() if raw is None else CommunityStats.from_state(orjson.loads(raw))


async def segmenter() -> Segmenter:
    """The worker's segmenter, restored from its Redis checkpoint on first use."""
    if segmenter_state["model"] is None:
        saved = await retry_forever("load segmenter",
                                    lambda: redis_store().client.get(f"{keys.prefix}model:segmenter"))
        segmenter_state["model"] = Segmenter.loads(saved) if saved else Segmenter()
    return segmenter_state["model"]


async def ensure_models_loaded() -> None:
    """Before the first batch: the recommender's item side from the Redis checkpoints."""
    if not recs._state["loaded"]:
        loaded = await retry_forever("load item checkpoints", lambda: recs.load_checkpoints(redis_store().client))
        log.info("recommender item state: %d checkpoint(s) loaded", loaded)


async def erase_user(user_id: str, partition: int) -> None:
    """Privacy erase: profile, recommendations and per-user model state; aggregates stay."""
    table_delete(profiles, partition, user_id)
    suffix = f":{partition}"
    touched = []
    for key in [k for k in community.data.keys() if k.endswith(suffix)]:
        stats = load_community(key)
        if any(user_id in scope.superfans.items for scope in stats.scopes.values()):
            stats.forget_user(user_id)
            table_put(community, partition, key, orjson.dumps(stats.to_state()))
            touched.append(key)
    recs.mark_erased(user_id)
    client = redis_store().client

    async def delete():
        async with client.pipeline(transaction=True) as pipe:
            pipe.delete(keys.profile(user_id), keys.recs(user_id), keys.recs(user_id) + ":why")
            for key in touched:
                stats = load_community(key)
                pipe.set(community_snapshot_key(key), orjson.dumps(stats.snapshot(scope_now(stats))))
            await pipe.execute()

    async with recs.write_lock:
        await retry_forever("erase user", delete)


def scope_now(stats: CommunityStats) -> int:
    """Community figures are decayed to the scope's newest event time (event time, as every
    figure of the system), not to the wall clock."""
    return max((scope.last_ts or 0 for scope in stats.scopes.values()), default=0)


def community_snapshot_key(table_key: str) -> str:
    kind, rest = table_key.split(":", 1)
    scope_id, partition = rest.rsplit(":", 1)
    return f"{keys.prefix}community:{kind}:{scope_id}:p{partition}"


async def process_user_batch(messages: list) -> None:
    users: dict[str, tuple[UserProfile, str | None, int]] = {}
    communities: dict[str, tuple[CommunityStats, int]] = {}
    insight_deltas: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    learned: list[tuple[dict, dict | None, str | None]] = []
    model = await segmenter()
    await ensure_models_loaded()
    for message in messages:
        doc = orjson.loads(message.value)
        event, (_, origin_partition, origin_offset) = doc["e"], doc["o"]
        user_id = event["user_id"]
        partition = message.partition
        if event["type"] == "erase":
            users.pop(user_id, None)
            await erase_user(user_id, partition)
            continue
        if user_id in users:
            profile, segment, _ = users[user_id]
        else:
            profile, segment = load_profile(user_id)
        if profile.seen_offset(origin_partition, origin_offset):
            continue
        video = catalog.videos.get(event.get("video_id") or "")
        if (attrs := catalog.users.get(user_id)) is not None:
            profile.set_attributes(attrs)
        profile.apply(event, video)
        profile.mark_offset(origin_partition, origin_offset)
        # One learning step per event (not per batch), so that a replay of the same history
        # gives the same segments whatever the batch boundaries.
        previous, segment = segment, model.learn(profile.features())
        segmenter_state["stats"].observe(segment, previous, profile.top_tags(profile.last_ts, 5))
        users[user_id] = (profile, segment, partition)
        learned.append((event, video, segment))
        for kind in COMMUNITY_SCOPES:
            scope_id = event.get(f"{kind}_id") or (video or {}).get(f"{kind}_id")
            if not scope_id:
                continue
            key = community_key(kind, scope_id, partition)
            if key not in communities:
                communities[key] = (load_community(key), partition)
            communities[key][0].apply(event, scope_id)
        if segment and video and event["type"] in ("view", "like", "comment", "share"):
            for tag in video.get("tags") or ():
                deltas = insight_deltas[keys.insight(tag, "segment", segment)]
                if event["type"] == "view":
                    deltas["views"] += 1
                    deltas["watch_ms"] += event["watch_ms"]
                    deltas["views_2s"] += event["watch_ms"] >= 2000
                    duration = event.get("duration_ms") or video.get("duration_ms")
                    deltas["completions"] += bool(duration and event["watch_ms"] >= duration)
                else:
                    deltas[event["type"] + "s"] += 1

    if not users and not communities:
        return
    recs.observe(learned)
    now = int(time.time() * 1000)
    profile_hashes = {}
    for user_id, (profile, segment, partition) in users.items():
        table_put(profiles, partition, user_id, orjson.dumps(
            {"profile": profile.to_state(), "segment": segment, "touched_ms": now,
             "partition": partition, "rec": recs.user_state(user_id)}))
        profile_hashes[user_id] = profile.to_redis_hash(now_ms=profile.last_ts or now, segment=segment)
        recs.mark_dirty(user_id, now_ms=profile.last_ts or now, segment=segment,
                        user_tags=dict(profile.top_tags(profile.last_ts or now, 10)))
    for key, (stats, partition) in communities.items():
        table_put(community, partition, key, orjson.dumps(stats.to_state()))

    client = redis_store().client

    async def write():
        async with client.pipeline(transaction=False) as pipe:
            for user_id, mapping in profile_hashes.items():
                key = keys.profile(user_id)
                pipe.delete(key)
                pipe.hset(key, mapping=mapping)
                pipe.expire(key, settings.profile_ttl_s)
            for key, (stats, _) in communities.items():
                pipe.set(community_snapshot_key(key), orjson.dumps(stats.snapshot(scope_now(stats))))
            for key, deltas in insight_deltas.items():
                for field, delta in deltas.items():
                    pipe.hincrby(key, field, int(delta))
            await pipe.execute()

    await retry_forever("write profiles", write)
    await flush_changelog()


@app.agent(by_user_topic)
async def per_user(stream):
    """Consume canonical events by user; see the module docstring for the guarantees."""
    if not catalog_ready.is_set():
        await catalog_ready.wait()
    async for events in stream.take_events(settings.batch_size, within=settings.batch_window_s):
        await process_user_messages_or_die([event.message for event in events])


async def process_user_messages(messages: list) -> None:
    """One stage-2 batch, with any records the consumer skipped put in front (gaps.py).

    The applied offsets are recorded only after the batch's table changelog and Redis writes
    are durable, so the record never runs ahead of the state; re-reading records that were in
    fact applied is harmless (each profile's origin watermark skips them).
    """
    client = redis_store().client
    async with batch_lock:
        messages = await fill_gaps(messages, user_ledger, gap_fetcher, client)
        await process_user_batch(messages)
        await flush_changelog()
        offsets = highest_offsets(messages)
        if offsets:
            await retry_forever("record applied offsets", lambda: client.hset(
                user_ledger.redis_key, mapping={user_ledger.field(*tp): o for tp, o in offsets.items()}))
            for tp, offset in offsets.items():
                user_ledger.record(tp, offset)


async def process_user_messages_or_die(messages: list) -> None:
    """Stage 2's batch under :func:`stream_app.ingest.run_or_die`, like stage 1's."""
    await run_or_die("stage-2 batch", process_user_messages, messages)


@app.timer(SWEEP_INTERVAL_S)
async def sweep_skipped_user_offsets() -> None:
    """Stage 2's guard against records the consumer skipped (see gaps.py)."""
    if not catalog_ready.is_set():
        return
    assigned = [(tp.topic, tp.partition) for tp in app.consumer.assignment()
                if tp.topic == settings.by_user_topic]
    await sweep(user_ledger, gap_fetcher, redis_store().client, assigned, settings.batch_size,
                process_user_messages_or_die)


@app.timer(30.0)
async def checkpoint_segmenter() -> None:
    """Save the segmenter so that a restarted worker keeps the same segment ids."""
    model = segmenter_state["model"]
    if model is not None:
        await retry_forever("save segmenter", lambda: redis_store().client.set(
            f"{keys.prefix}model:segmenter", model.dumps()))
        await redis_store().client.set(f"{keys.prefix}segments", orjson.dumps(segmenter_state["stats"].summary()))


@app.timer(60.0)
async def expire_idle_users() -> None:
    """Users idle longer than the TTL expire from the tables too (Redis keys expire by TTL)."""
    cutoff = int(time.time() * 1000) - settings.profile_ttl_s * 1000
    for user_id, raw in list(profiles.data.items()):
        state = orjson.loads(raw)
        if state.get("touched_ms", 0) < cutoff:
            partition = state.get("partition")
            table_delete(profiles, partition if partition is not None else 0, user_id)
            recs.mark_erased(user_id)
