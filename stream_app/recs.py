"""The worker's online recommender: learning per event, top-N per user, checkpoints and sync.

* Per-user model state travels with the user's profile in the ``profiles`` table (see
  :mod:`stream_app.per_user`), so it survives restarts and moves with its partition.
* Item-side state (catalogue, item factors, popularity, co-occurrence) is checkpointed to
  Redis by every worker in the HASH ``{p}model:items`` (field = worker id) every
  ``SV_ITEM_SYNC_S`` seconds;
  each worker then folds the other workers' item states into its own
  (:meth:`models.recommend.Recommender.load_item_state` with ``merge=True``: factors averaged by
  update counts, popularity and co-occurrence by element-wise maximum, so repeated syncs never
  double count). A starting worker loads every saved item state first, so it does not start cold.
"""
from __future__ import annotations

import asyncio
import logging
import time

import orjson

from models.recommend import Recommender, RecommenderConfig
from stream_app.app import app, keys, settings
from stream_app.catalog_sync import LISTENERS, catalog, catalog_ready

log = logging.getLogger(__name__)

_state: dict = {"model": None, "loaded": False}


def model() -> Recommender:
    if _state["model"] is None:
        rec = Recommender(RecommenderConfig())
        for record in catalog.videos.values():
            rec.add_video(record)
        _state["model"] = rec
    return _state["model"]


def _on_catalog(kind: str, record_id: str) -> None:
    if kind == "video" and _state["model"] is not None:
        _state["model"].add_video(catalog.videos[record_id])


LISTENERS.append(_on_catalog)


#: Item-state checkpoints never expire by themselves: a worker that was down for a day must
#: still find them. A worker's checkpoint unused for this long is dropped by the others.
STALE_CHECKPOINT_MS = 7 * 86_400_000


def items_key() -> str:
    """HASH worker_id -> item-state JSON (a HASH, so finding checkpoints is not a key scan)."""
    return f"{keys.prefix}model:items"


def items_stamp_key() -> str:
    return f"{keys.prefix}model:items:ts"


async def load_checkpoints(client) -> int:
    """Fold every saved item state into this worker's model; return how many were loaded."""
    rec = model()
    loaded = 0
    for raw in (await client.hgetall(items_key())).values():
        rec.load_item_state(orjson.loads(raw), merge=True)
        loaded += 1
    _state["loaded"] = True
    return loaded


def restore_user(user_id: str, state: dict | None) -> None:
    """Give the model a user's saved state unless it already holds a fresher one."""
    rec = model()
    if state is not None and user_id not in rec.users:
        rec.load_user_state(user_id, state)


def user_state(user_id: str) -> dict | None:
    return model().user_state(user_id)


def forget_user(user_id: str) -> None:
    model().forget_user(user_id)


def observe(learned: list[tuple[dict, dict | None, str | None]]) -> None:
    rec = model()
    for event, video, segment in learned:
        rec.observe(event, video, segment=segment)


def recommend(user_id: str, *, now_ms: int, user_tags: dict, segment: str | None) -> list:
    return model().recommend(user_id, n=settings.recs_n, now_ms=now_ms, user_tags=user_tags,
                             segment=segment)


# -- refreshing top-N lists -------------------------------------------------------------------
#
# Scoring a user's candidates costs milliseconds, far more than folding an event into the
# profile. Doing it inside the stage-2 batch would let a burst of users stall the whole worker
# (stage 1 included, it shares the event loop). Instead a batch marks its users dirty and this
# refresher rescores them in small slices, yielding to the event loop between users: under
# normal load a list is refreshed within a few batch windows of the event; under overload the
# lists lag while counting keeps up.

#: user_id -> (now_ms, segment, tag weights), oldest first.
_dirty: dict[str, tuple[int, str | None, dict]] = {}
#: Users erased recently: a refresh computed before the erase must not write their list back.
_erased: dict[str, float] = {}
#: Serialises list writes with erasures.
write_lock = asyncio.Lock()
REFRESH_SLICE = 50


def mark_dirty(user_id: str, *, now_ms: int, segment: str | None, user_tags: dict) -> None:
    _dirty.pop(user_id, None)
    _dirty[user_id] = (now_ms, segment, user_tags)
    _erased.pop(user_id, None)


def mark_erased(user_id: str) -> None:
    _dirty.pop(user_id, None)
    _erased[user_id] = time.monotonic()
    forget_user(user_id)


def _take_slice() -> list[tuple[str, tuple]]:
    taken = []
    for user_id in list(_dirty)[:REFRESH_SLICE]:
        taken.append((user_id, _dirty.pop(user_id)))
    return taken


async def refresh_once(client) -> int:
    """Rescore one slice of dirty users and write their lists; return how many."""
    work = _take_slice()
    if not work:
        return 0
    lists = {}
    for done, (user_id, (now_ms, segment, tags)) in enumerate(work, 1):
        lists[user_id] = recommend(user_id, now_ms=now_ms, segment=segment, user_tags=tags)
        if done % 10 == 0:
            await asyncio.sleep(0)
    async with write_lock:
        cutoff = time.monotonic() - 300
        for user_id in [u for u, at in _erased.items() if at < cutoff]:
            del _erased[user_id]
        async with client.pipeline(transaction=False) as pipe:
            for user_id, items in lists.items():
                if user_id in _erased:
                    continue
                key = keys.recs(user_id)
                pipe.delete(key, f"{key}:why")
                if items:
                    pipe.zadd(key, {video_id: score for video_id, score, _ in items})
                    pipe.hset(f"{key}:why", mapping={video_id: why for video_id, _, why in items})
                    pipe.expire(key, settings.profile_ttl_s)
                    pipe.expire(f"{key}:why", settings.profile_ttl_s)
            await pipe.execute()
    return len(work)


@app.task
async def refresh_recommendations() -> None:
    from stream_app.ingest import redis_store
    from stream_app.redis_store import retry_forever

    while True:
        try:
            if not _dirty:
                await asyncio.sleep(0.02)
                continue
            await retry_forever("write recommendations", lambda: refresh_once(redis_store().client))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - lists are derived state; the next event rescores
            log.exception("recommendation refresh failed")
            await asyncio.sleep(1.0)


@app.timer(settings.item_sync_s)
async def sync_item_state() -> None:
    """Publish this worker's item side and fold in the other workers' (Monolith-style sync)."""
    from stream_app.ingest import redis_store

    if not catalog_ready.is_set() or _state["model"] is None:
        return
    client = redis_store().client
    started = time.perf_counter()
    rec = model()
    now_ms = int(time.time() * 1000)
    me = settings.worker_id
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(items_key(), me, orjson.dumps(rec.item_state(), option=orjson.OPT_SERIALIZE_NUMPY))
        pipe.hset(items_stamp_key(), me, now_ms)
        await pipe.execute()
    stamps = await client.hgetall(items_stamp_key())
    stale = [w for w, ts in stamps.items() if int(ts) < now_ms - STALE_CHECKPOINT_MS]
    if stale:
        await client.hdel(items_key(), *stale)
        await client.hdel(items_stamp_key(), *stale)
    merged = 0
    for worker, raw in (await client.hgetall(items_key())).items():
        if worker.decode() != me:
            rec.load_item_state(orjson.loads(raw), merge=True)
            merged += 1
    log.info("item state synced (merged %d peers) in %.0f ms", merged, (time.perf_counter() - started) * 1000)
