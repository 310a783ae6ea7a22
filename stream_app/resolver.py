"""Apply held events once the catalog record they wait for has arrived (docs/live-roi.md).

Every second each worker looks at the index of pending lists. For a list whose missing record
is now in its catalog (or whose oldest event waited longer than ``SV_HOLD_MAX_S``), it plans the
first events of the list and applies them with a *guard*: the Lua script writes only if the list
still starts with exactly those entries, and then trims them, atomically. Two workers racing on
the same list therefore apply each held event once; the loser simply retries next time.
"""
from __future__ import annotations

import logging

import orjson

from stream_app.app import app, keys, settings
from stream_app.catalog_sync import catalog, catalog_ready
from stream_app.ingest import (batch_lock, current_watermark, new_planner, now_ms, redis_store,
                               refresh_campaign_metrics)
from stream_app.redis_store import retry_forever

log = logging.getLogger(__name__)

CHUNK = 500


def _blocker_known(pending_key: str) -> bool:
    kind, record_id = pending_key[len(keys.prefix) + len("pending:"):].split(":", 1)
    return record_id in catalog.table(kind)


async def resolve_list(pending_key: str) -> int:
    """Apply the first events of one pending list if they can be; return how many."""
    client = redis_store().client
    entries = await client.lrange(pending_key, 0, CHUNK - 1)
    if not entries:
        await client.srem(keys.pending_index(), pending_key)
        return 0
    stamp = now_ms()
    held = [orjson.loads(entry) for entry in entries]
    known = _blocker_known(pending_key)
    overdue = stamp - held[0]["h"] > settings.hold_max_s * 1000
    if not known and not overdue:
        return 0
    planner = new_planner(await current_watermark())
    unresolved = 0
    for item in held:
        give_up = stamp - item["h"] > settings.hold_max_s * 1000
        planner.add(item["e"], now_ms=item["h"], allow_missing=give_up)
        unresolved += give_up
    writes = planner.writes()
    if unresolved:
        writes.hi.append([keys.stats(), "unresolved", str(unresolved)])
    writes.guard = [pending_key, len(entries), entries[0].decode(), entries[-1].decode(),
                    keys.pending_index()]
    if await redis_store().apply(writes):
        await refresh_campaign_metrics(planner.touched_campaigns)
        return len(entries)
    return 0


@app.timer(settings.resolve_interval_s)
async def resolve_held_events() -> None:
    if not catalog_ready.is_set():
        return
    client = redis_store().client
    members = await retry_forever("read pending index", lambda: client.smembers(keys.pending_index()))
    for member in sorted(m.decode() for m in members):
        try:
            # Under the ingest lock: the derived metrics it refreshes are then never overwritten
            # by an ingest batch's older reading of the same campaign (within this worker).
            async with batch_lock:
                while await resolve_list(member) == CHUNK:
                    pass
        except Exception:  # noqa: BLE001 - retried on the next tick; nothing was half-written
            log.exception("could not resolve held events of %s", member)
