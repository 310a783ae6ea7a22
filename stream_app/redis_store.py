"""Exactly-once effects in Redis for an at-least-once Kafka stream.

Kafka redelivers (rebalances, crashes between processing and the offset commit) and producers
re-send. Instead of relying on Faust's ``exactly_once`` guarantee (reported to duplicate on
rebalance, faust-streaming #323 and #517) every batch is applied by ONE Lua script that,
atomically:

1. looks up a *delivery marker* ``{prefix}eid:{event_id}`` for every event of the batch;
2. if any marker exists, writes nothing and returns which events were already applied
   (same marker value: this exact Kafka message was applied before a crash or a rebalance)
   or are duplicates (another message with the same event_id was applied);
3. otherwise sets all markers (value ``topic:partition:offset`` of the delivery, expiring
   after the dedup horizon) and applies all the batch's pre-aggregated increments.

The caller drops the reported events, re-aggregates and calls again. Because markers and
counters change in the same atomic step, a crash at any point leaves Redis either before or
after the whole batch; replaying the batch after a restart is therefore harmless, and a Redis
outage only delays the batch (it is retried until Redis answers, and its Kafka offsets are not
committed meanwhile).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import orjson
import redis.asyncio as aioredis
from redis.exceptions import BusyLoadingError, ConnectionError, ReadOnlyError, TimeoutError

from stream_app.metrics import REDIS_RETRIES

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (ConnectionError, TimeoutError, BusyLoadingError, ReadOnlyError, OSError)

ALREADY_APPLIED = 1
DUPLICATE = 2

# ARGV[1] is a JSON document; every number in it travels as a string so that cjson's
# 14-digit number formatting can never round a delta.
APPLY_BATCH_LUA = r"""
local batch = cjson.decode(ARGV[1])
if batch.guard then
  -- Resolving held events: apply only if the list still starts with what the caller read.
  local g = batch.guard
  local n = tonumber(g[2])
  if redis.call('LLEN', g[1]) < n or redis.call('LINDEX', g[1], 0) ~= g[3]
     or redis.call('LINDEX', g[1], n - 1) ~= g[4] then
    return {-1}
  end
end
local conflicts = {}
for i, m in ipairs(batch.ids or {}) do
  local seen = redis.call('GET', m[1])
  if seen then
    table.insert(conflicts, i - 1)
    if seen == m[2] then table.insert(conflicts, 1) else table.insert(conflicts, 2) end
  end
end
if #conflicts > 0 then return conflicts end
for _, m in ipairs(batch.ids or {}) do
  redis.call('SET', m[1], m[2], 'PXAT', m[3])
end
for _, op in ipairs(batch.hi or {}) do redis.call('HINCRBY', op[1], op[2], op[3]) end
for _, op in ipairs(batch.hf or {}) do redis.call('HINCRBYFLOAT', op[1], op[2], op[3]) end
for _, op in ipairs(batch.hs or {}) do redis.call('HSET', op[1], op[2], op[3]) end
for _, op in ipairs(batch.hmax or {}) do
  local cur = tonumber(redis.call('HGET', op[1], op[2]) or '-1')
  if tonumber(op[3]) > cur then redis.call('HSET', op[1], op[2], op[3]) end
end
for _, op in ipairs(batch.pfr or {}) do
  -- op = {hll_key, counters_hash, user...}: add the users, then store the estimate as reach.
  redis.call('PFADD', op[1], unpack(op, 3))
  redis.call('HSET', op[2], 'reach', redis.call('PFCOUNT', op[1]))
end
for _, op in ipairs(batch.rp or {}) do redis.call('RPUSH', op[1], op[2]) end
for _, op in ipairs(batch.sa or {}) do redis.call('SADD', op[1], op[2]) end
for _, op in ipairs(batch.zi or {}) do redis.call('ZINCRBY', op[1], op[3], op[2]) end
for _, op in ipairs(batch.ex or {}) do redis.call('EXPIRE', op[1], op[2]) end
if batch.zt then
  -- Forward-decayed trending scores, relative to a landmark shared by all workers; a planner
  -- that used an older landmark is corrected by 2^((its landmark - current) / half-life).
  local meta = batch.zt_meta
  local current = redis.call('GET', meta[2])
  if not current then redis.call('SET', meta[2], meta[3]); current = meta[3] end
  local factor = math.pow(2, (tonumber(meta[3]) - tonumber(current)) / tonumber(meta[4]))
  for _, op in ipairs(batch.zt) do
    redis.call('ZINCRBY', meta[1], string.format('%.17g', tonumber(op[2]) * factor), op[1])
  end
end
if batch.guard then
  local g = batch.guard
  redis.call('LTRIM', g[1], tonumber(g[2]), -1)
  if redis.call('LLEN', g[1]) == 0 then redis.call('SREM', g[5], g[1]) end
end
return {}
"""


def number_text(value: int | float, as_float: bool = False) -> str:
    """Exact decimal text of a delta: ints as is, floats by shortest round-trip repr."""
    return repr(float(value)) if as_float or isinstance(value, float) else str(value)


@dataclass
class RedisWrites:
    """All the writes of one batch, in the shape the Lua script reads."""

    ids: list[list] = field(default_factory=list)  # [marker_key, marker_value, expire_at_ms]
    hi: list[list] = field(default_factory=list)  # HINCRBY key field delta
    hf: list[list] = field(default_factory=list)  # HINCRBYFLOAT key field delta
    hs: list[list] = field(default_factory=list)  # HSET key field value
    hmax: list[list] = field(default_factory=list)  # HSET key field value if value > current
    pfr: list[list] = field(default_factory=list)  # PFADD hll user...; HSET hash reach PFCOUNT
    rp: list[list] = field(default_factory=list)  # RPUSH key value (held events)
    sa: list[list] = field(default_factory=list)  # SADD key member
    zi: list[list] = field(default_factory=list)  # ZINCRBY key member delta
    ex: list[list] = field(default_factory=list)  # EXPIRE key seconds
    zt: list[list] = field(default_factory=list)  # [video_id, forward-decayed delta] for trending
    #: [trending_key, landmark_key, landmark_ms used for zt, half_life_ms]
    zt_meta: list | None = None
    #: [list_key, n, first, last, index_key]: apply only if the held-events list still starts
    #: with these n entries, then drop them from it.
    guard: list | None = None

    def to_json(self) -> bytes:
        doc = {name: ops for name, ops in vars(self).items() if ops}
        return orjson.dumps(doc)

    def extend(self, other: "RedisWrites") -> None:
        for name, ops in vars(other).items():
            if isinstance(ops, list) and name not in ("guard", "zt_meta"):
                getattr(self, name).extend(ops)


class BatchConflict(Exception):
    """Some events of the batch were applied before; ``verdicts`` maps index -> reason."""

    def __init__(self, verdicts: dict[int, int]):
        super().__init__(f"{len(verdicts)} events already applied")
        self.verdicts = verdicts


class RedisStore:
    """The one connection pool and the scripts of a worker."""

    def __init__(self, url: str):
        self.client = aioredis.from_url(url, decode_responses=False, health_check_interval=10,
                                        socket_timeout=10, socket_connect_timeout=5)
        self._apply = self.client.register_script(APPLY_BATCH_LUA)

    async def close(self) -> None:
        await self.client.aclose()

    async def apply(self, writes: RedisWrites) -> bool:
        """Apply a batch atomically, or raise :class:`BatchConflict` having written nothing.

        Returns False (nothing written) when the batch has a ``guard`` that no longer holds.
        """
        result = await self._apply(keys=[], args=[writes.to_json()])
        if result and int(result[0]) == -1:
            return False
        if result:
            raise BatchConflict({int(result[i]): int(result[i + 1]) for i in range(0, len(result), 2)})
        return True


async def retry_forever(what: str, call, *, should_stop=lambda: False, max_backoff_s: float = 5.0):
    """Await ``call()`` until it succeeds, backing off on transient Redis errors.

    An outage holds the stream back instead of dropping events: the batch is not acknowledged
    to Kafka until it has been applied.
    """
    backoff = 0.1
    while True:
        try:
            return await call()
        except TRANSIENT_ERRORS as exc:
            if should_stop():
                raise
            log.warning("%s: Redis unavailable (%s); retrying in %.1fs", what, exc, backoff)
            REDIS_RETRIES.inc()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
