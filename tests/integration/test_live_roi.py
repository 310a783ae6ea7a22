"""Live ROI acceptance on real Kafka and Redis: campaign, minute-bucket, video and creator figures.

>= 50,000 valid events over 24 campaigns (cpm, cpv, cpa), out of order within the grace, late
ones, events before their catalog records (held, then resolved), duplicates; every figure is
checked against :mod:`tests.integration.roi_reference`, an independent recomputation from the
raw events that follows ``docs/live-roi.md``.
"""
from __future__ import annotations

import math
import time

import orjson
import pytest

from tests.integration.harness import produce, wait_until
from tests.integration.roi_reference import (COUNTERS, DERIVED, INT_COUNTERS, MINUTE_MS, Expected,
                                             Scope, build_scenario, expected_state)

pytestmark = pytest.mark.services

MIN_BUCKET_TTL_S = 48 * 3600


def records(docs: list[dict], id_field: str) -> list[tuple[bytes, bytes]]:
    return [(doc[id_field].encode(), orjson.dumps(doc)) for doc in docs]


async def stats(redis_client, ns) -> dict[str, str]:
    return await redis_client.hgetall(f"{ns.prefix}stats:ingest")


async def pending_lengths(redis_client, ns) -> int:
    lists = await redis_client.smembers(f"{ns.prefix}pending:index")
    return sum([await redis_client.llen(key) for key in lists])


async def hashes(redis_client, keys: list[str]) -> dict[str, dict[str, str]]:
    async with redis_client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
        values = await pipe.execute()
    return dict(zip(keys, values))


async def scan(redis_client, pattern: str) -> set[str]:
    return {key async for key in redis_client.scan_iter(match=pattern, count=1000)}


def close(actual: str, expected) -> bool:
    return math.isclose(float(actual), float(expected), rel_tol=1e-9)


def counter_problems(key: str, got: dict[str, str], want: Scope) -> list[str]:
    """Every counter exact (money to 1e-9 relative); an absent field only where the sum is 0."""
    problems = []
    for name in COUNTERS:
        value = want.counters.get(name, 0)
        if name not in got:
            if value:
                problems.append(f"{key}: {name} absent, expected {value}")
            continue
        if name in INT_COUNTERS:
            if got[name] != str(value):
                problems.append(f"{key}: {name}={got[name]}, expected {value}")
        elif not close(got[name], value):
            problems.append(f"{key}: {name}={got[name]}, expected {float(value)!r}")
    if got.get("last_event_ts") != str(want.last_event_ts):
        problems.append(f"{key}: last_event_ts={got.get('last_event_ts')}, expected {want.last_event_ts}")
    distinct = len(want.users)
    reach = int(got.get("reach", -1))
    if abs(reach - distinct) > max(1, 0.03 * distinct):
        problems.append(f"{key}: reach={reach}, exact distinct users {distinct}")
    return problems


async def reach_is_estimate(redis_client, ns, problems: list[str], table: dict, key_of) -> list[str]:
    """Keep a reach mismatch only if reach is not Redis's own HyperLogLog estimate of the exact
    set of users either: for ~100 users that estimate can itself be 3 % off."""
    scratch = f"{ns.prefix}test:hll"
    kept = []
    for problem in problems:
        key = problem.split(": reach=")[0]
        if ": reach=" in problem and key in key_of:
            users = sorted(table[key_of[key]].users)
            await redis_client.delete(scratch)
            await redis_client.pfadd(scratch, *users)
            if int(problem.split(": reach=")[1].split(",")[0]) == await redis_client.pfcount(scratch):
                continue
        kept.append(problem)
    await redis_client.delete(scratch)
    return kept


def derived_problems(key: str, got: dict[str, str], want: dict[str, float | None]) -> list[str]:
    problems = []
    for name in DERIVED:
        if want[name] is None:
            if name in got:
                problems.append(f"{key}: {name}={got[name]} but its denominator is 0 (must be absent)")
        elif name not in got:
            problems.append(f"{key}: {name} absent, expected {want[name]!r}")
        elif not close(got[name], want[name]):
            problems.append(f"{key}: {name}={got[name]}, expected {want[name]!r}")
    return problems


def report(problems: list[str], limit: int = 40) -> str:
    more = f"\n... and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"{len(problems)} mismatches:\n" + "\n".join(problems[:limit]) + more


async def wait_or_explain(check, what: str, redis_client, ns, worker, *, stall_s: float = 60,
                          cap_s: float = 300) -> None:
    """:func:`wait_until` ``check``, failing when the worker makes no progress (``applied`` and
    ``held`` unchanged) for ``stall_s`` or after ``cap_s``, with the statistics and held lists."""
    progress = {"mark": None, "since": time.monotonic()}

    async def check_or_stall() -> bool:
        if await check():
            return True
        stat = await stats(redis_client, ns)
        mark = (stat.get("applied"), stat.get("held"))
        if mark != progress["mark"]:
            progress.update(mark=mark, since=time.monotonic())
        elif time.monotonic() - progress["since"] > stall_s:
            raise AssertionError(f"no progress for {stall_s}s waiting for {what}")
        return False

    try:
        await wait_until(check_or_stall, cap_s, what, worker=worker)
    except AssertionError as exc:
        held = {key: await redis_client.llen(key)
                for key in await redis_client.smembers(f"{ns.prefix}pending:index")}
        raise AssertionError(f"{exc}\nstats: {await stats(redis_client, ns)}\nheld: {held}\n"
                             f"worker log:\n{worker.log_tail(20)}") from None


async def run_phases(ns, redis_client, worker, scenario) -> None:
    """Produce phase after phase; a phase's missing records only once its events are held."""
    applied_before = 0
    for number, phase in enumerate(scenario.phases):
        await produce(ns.events, phase.messages)
        direct = applied_before + len(phase.events) - phase.held
        if phase.held:
            async def all_held() -> bool:
                applied = int((await stats(redis_client, ns)).get("applied", 0))
                return applied == direct and await pending_lengths(redis_client, ns) == phase.held

            await wait_or_explain(all_held, f"phase {number}: {direct} applied and {phase.held} held",
                                  redis_client, ns, worker)
            await produce(ns.videos, records(phase.late_videos, "video_id"))
            await produce(ns.campaigns, records(phase.late_campaigns, "campaign_id"))
        applied_before += len(phase.events)

        async def all_applied() -> bool:
            applied = int((await stats(redis_client, ns)).get("applied", 0))
            pending = await redis_client.scard(f"{ns.prefix}pending:index")
            return applied >= applied_before and pending == 0

        await wait_or_explain(all_applied, f"phase {number}: {applied_before} applied, nothing held",
                              redis_client, ns, worker)
        applied = int((await stats(redis_client, ns)).get("applied", 0))
        assert applied == applied_before, f"phase {number}: applied {applied} != {applied_before}"


async def test_live_roi_exact(namespace, workers, redis_client):
    ns = namespace
    scenario = build_scenario()
    expected: Expected = expected_state(scenario)
    # The acceptance volume and mix.
    assert expected.applied >= 50_000 and len(expected.campaigns) >= 20
    assert {c["pricing"]["model"] for c in scenario.campaigns} == {"cpm", "cpv", "cpa"}
    assert expected.late >= 500 and expected.held_at_least >= 1_000 and scenario.duplicates >= 1_500

    await produce(ns.videos, records(scenario.initial_videos, "video_id"))
    await produce(ns.campaigns, records(scenario.initial_campaigns, "campaign_id"))
    started = int(time.time() * 1000)
    worker = workers(ns)
    await run_phases(ns, redis_client, worker, scenario)

    # Totals are in; the derived metrics follow each batch's apply: wait until they settle.
    campaign_keys = {f"{ns.prefix}campaign:{cid}": cid for cid in expected.campaigns}

    async def derived_settled() -> bool:
        got = await hashes(redis_client, list(campaign_keys))
        return not any(derived_problems(key, got[key], expected.derived[cid])
                       for key, cid in campaign_keys.items())

    try:
        await wait_until(derived_settled, 15, "the derived metrics to settle", worker=worker)
    except AssertionError:
        pass  # reported in detail below

    problems: list[str] = []
    # -- ingest statistics ---------------------------------------------------------------
    stat = await stats(redis_client, ns)
    if int(stat.get("applied", 0)) != expected.applied:
        problems.append(f"stats applied={stat.get('applied')}, expected {expected.applied}")
    if int(stat.get("late", 0)) != expected.late:
        problems.append(f"stats late={stat.get('late')}, expected {expected.late}")
    if int(stat.get("held", 0)) < expected.held_at_least:
        problems.append(f"stats held={stat.get('held')}, expected >= {expected.held_at_least}")
    if int(stat.get("unresolved", 0)):
        problems.append(f"stats unresolved={stat.get('unresolved')}: no event should give up waiting")
    if stat.get("last_event_ts") != str(expected.newest):
        problems.append(f"stats last_event_ts={stat.get('last_event_ts')}, expected {expected.newest}")
    if any(k.startswith("rejected:") for k in stat):
        problems.append(f"valid events were rejected: {stat}")

    # -- campaigns: counters, late, reach, derived, updated_ts ---------------------------
    got = await hashes(redis_client, list(campaign_keys))
    finished = int(time.time() * 1000)
    for key, cid in campaign_keys.items():
        want = expected.campaigns[cid]
        problems += counter_problems(key, got[key], want)
        if int(got[key].get("late", 0)) != want.late:
            problems.append(f"{key}: late={got[key].get('late')}, expected {want.late}")
        problems += derived_problems(key, got[key], expected.derived[cid])
        updated = got[key].get("updated_ts")
        if updated is None or not started <= int(updated) <= finished:
            problems.append(f"{key}: updated_ts={updated}, expected wall-clock ms of this run")
    stored_campaigns = {k for k in await scan(redis_client, f"{ns.prefix}campaign:*") if ":m:" not in k}
    if stored_campaigns != set(campaign_keys):
        problems.append(f"campaign keys differ: extra {sorted(stored_campaigns - set(campaign_keys))}, "
                        f"missing {sorted(set(campaign_keys) - stored_campaigns)}")

    # -- minute buckets: exactly the expected keys, exact counters, TTL > 48 h -----------
    bucket_keys = {f"{ns.prefix}campaign:{cid}:m:{minute}": (cid, minute) for cid, minute in expected.minutes}
    assert all(minute % MINUTE_MS == 0 for _, minute in expected.minutes)
    stored_buckets = await scan(redis_client, f"{ns.prefix}campaign:*:m:*")
    if stored_buckets != set(bucket_keys):
        problems.append(f"minute bucket keys differ: extra {sorted(stored_buckets - set(bucket_keys))[:10]}, "
                        f"missing {sorted(set(bucket_keys) - stored_buckets)[:10]}")
    got = await hashes(redis_client, sorted(bucket_keys))
    bucket_problems = []
    for key, ident in bucket_keys.items():
        bucket_problems += counter_problems(key, got[key], expected.minutes[ident])
    problems += await reach_is_estimate(redis_client, ns, bucket_problems, expected.minutes, bucket_keys)
    for key in bucket_keys:
        if "late" in got[key]:
            problems.append(f"{key}: a minute bucket counts late={got[key]['late']}")
    async with redis_client.pipeline(transaction=False) as pipe:
        for key in sorted(bucket_keys):
            pipe.ttl(key)
            pipe.ttl(f"{ns.prefix}hll:{key[len(ns.prefix):]}")
        ttls = await pipe.execute()
    for key, ttl in zip([k for k in sorted(bucket_keys) for _ in (0, 1)], ttls):
        if ttl <= MIN_BUCKET_TTL_S:
            problems.append(f"{key} (or its HyperLogLog): TTL {ttl}s, expected > 48 h")

    # -- every video and every creator ---------------------------------------------------
    for scope, table in (("video", expected.videos), ("creator", expected.creators)):
        keys = {f"{ns.prefix}{scope}:{sid}": sid for sid in table}
        got = await hashes(redis_client, list(keys))
        scope_problems = []
        for key, sid in keys.items():
            scope_problems += counter_problems(key, got[key], table[sid])
        problems += await reach_is_estimate(redis_client, ns, scope_problems, table, keys)
        stored = await scan(redis_client, f"{ns.prefix}{scope}:*")
        if stored != set(keys):
            problems.append(f"{scope} keys differ: extra {sorted(stored - set(keys))[:10]}, "
                            f"missing {sorted(set(keys) - stored)[:10]}")

    assert not problems, report(problems)


async def test_integer_revenue_after_float_revenue(namespace, workers, redis_client):
    """``revenue`` is a JSON number: an integer revenue must add to a fractional total."""
    ns = namespace
    await produce(ns.videos, records([{"video_id": "v1", "creator_id": "cr1", "campaign_id": "c1",
                                       "duration_ms": 9000, "tags": ["food"]}], "video_id"))
    await produce(ns.campaigns, records([{"campaign_id": "c1", "name": "C1", "budget": 100.0,
                                          "pricing": {"model": "cpa", "rate": 1.5}, "currency": "CNY",
                                          "start_ts": 1_764_748_800_000, "end_ts": 1_764_835_200_000}],
                                        "campaign_id"))
    worker = workers(ns)
    base = {"type": "conversion", "user_id": "u1", "video_id": "v1"}
    await produce(ns.events, [(b"u1", orjson.dumps({**base, "event_id": "a", "ts": 1_764_748_860_000,
                                                    "revenue": 12.5}))])

    def applied(n: int):
        async def check() -> bool:
            return int((await stats(redis_client, ns)).get("applied", 0)) >= n
        return check

    await wait_until(applied(1), 60, "the first conversion", worker=worker)
    await produce(ns.events, [(b"u1", orjson.dumps({**base, "event_id": "b", "ts": 1_764_748_861_000,
                                                    "revenue": 10}))])
    try:
        await wait_until(applied(2), 20, "the second conversion", worker=worker)
        timed_out = ""
    except AssertionError as exc:
        timed_out = str(exc).splitlines()[0]
    got = await hashes(redis_client, [f"{ns.prefix}{k}" for k in ("video:v1", "creator:cr1", "campaign:c1")])
    detail = f"{timed_out}\nstats={await stats(redis_client, ns)}\nhashes={got}\n" \
             f"worker log:\n{worker.log_tail(12)}"
    assert not timed_out, detail
    for key, fields in got.items():
        assert fields.get("conversions") == "2", detail
        assert close(fields.get("revenue", "nan"), 22.5), detail
    assert close(got[f"{ns.prefix}campaign:c1"]["spend"], 3.0), detail
