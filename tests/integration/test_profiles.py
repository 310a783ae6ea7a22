"""Issue 4 acceptance: profiles, community, erasure, restarts and pseudonyms on real Kafka/Redis.

Every expectation below is computed by hand from the scripted histories (documented inline),
not by calling the profile code.
"""
from __future__ import annotations

import math

import orjson
import pytest
import pytest_asyncio

from models.privacy import pseudonymize
from stream_app.topics import ensure_topics
from tests.integration.conftest import delete_prefix
from tests.integration.harness import Namespace, consume_all, produce, wait_until

pytestmark = pytest.mark.services

T0 = 1_764_748_800_000
HALF_LIFE = 7 * 86_400_000  # the default tag half-life
VIDEOS = [
    {"video_id": "vf1", "creator_id": "cr1", "duration_ms": 10_000, "tags": ["food"], "campaign_id": None},
    {"video_id": "vf2", "creator_id": "cr1", "duration_ms": 10_000, "tags": ["food"], "campaign_id": None},
    {"video_id": "vt1", "creator_id": "cr1", "duration_ms": 10_000, "tags": ["travel"], "campaign_id": None},
    {"video_id": "vc1", "creator_id": "cr1", "duration_ms": 10_000, "tags": ["cars"], "campaign_id": None},
]


def ev(event_id, etype, ts, user, video=None, **extra):
    doc = {"event_id": event_id, "type": etype, "ts": ts, "user_id": user, **extra}
    if video:
        doc["video_id"] = video
    return doc


ALICE = [  # one session, everything within 4 s
    ev("a1", "view", T0, "alice", "vf1", watch_ms=10_000),          # food +1.0 (full watch)
    ev("a2", "like", T0 + 1000, "alice", "vf1"),                     # food +1.0
    ev("a3", "view", T0 + 2000, "alice", "vt1", watch_ms=1_000),     # travel +0.1
    ev("a4", "view", T0 + 3000, "alice", "vf2", watch_ms=5_000),     # food +0.5
    ev("a5", "comment", T0 + 4000, "alice", "vf2", text="太棒了"),   # food +1.5, sentiment +1.0
]
BOB = [  # two sessions one half-life apart
    ev("b1", "view", T0, "bob", "vf1", watch_ms=10_000),             # food +1.0
    ev("b2", "view", T0 + HALF_LIFE, "bob", "vc1", watch_ms=10_000),  # cars +1.0
]
CAROL = [ev("c1", "comment", T0 + 5000, "carol", "vt1", text="垃圾")]  # travel +1.5, sentiment -1.0


def decayed(weight, ts, now):
    return weight * 2 ** (-(now - ts) / HALF_LIFE)


def messages(events):
    return [(e["user_id"].encode(), orjson.dumps(e)) for e in events]


@pytest_asyncio.fixture
async def single_partition(redis_client):
    """One partition, so that community state and segment learning see one total order."""
    made = []

    async def make(label: str) -> Namespace:
        ns = Namespace(label, partitions=1)
        await ensure_topics(ns.settings(), timeout_s=30)
        await produce(ns.videos, [(v["video_id"].encode(), orjson.dumps(v)) for v in VIDEOS])
        made.append(ns)
        return ns

    yield make
    for ns in made:
        await delete_prefix(redis_client, ns.prefix)


async def wait_profile_events(redis_client, ns, user, count, worker, timeout=60):
    key = f"{ns.prefix}profile:{user}"

    async def ready():
        return (await redis_client.hget(key, "events")) == str(count)

    await wait_until(ready, timeout, f"{user}'s profile to show {count} events", worker=worker)
    return await redis_client.hgetall(key)


async def test_profiles_community_restart_and_erase(single_partition, workers, redis_client):
    ns = await single_partition("profiles")
    worker = workers(ns)
    await produce(ns.events, messages(ALICE + BOB + CAROL))

    alice = await wait_profile_events(redis_client, ns, "alice", 5, worker)
    now = T0 + 4000  # top tags are decayed to the user's newest event
    food = (decayed(1.0, T0, now) + decayed(1.0, T0 + 1000, now) + decayed(0.5, T0 + 3000, now)
            + decayed(1.5, T0 + 4000, now))
    travel = decayed(0.1, T0 + 2000, now)
    assert orjson.loads(alice["top_tags"]) == [["food", round(food, 6)], ["travel", round(travel, 6)]]
    assert (alice["events"], alice["sessions"], alice["views"], alice["last_ts"]) == ("5", "1", "3", str(T0 + 4000))
    assert math.isclose(float(alice["like_rate"]), 1 / 3, abs_tol=1e-6)
    assert math.isclose(float(alice["comment_rate"]), 1 / 3, abs_tol=1e-6)
    assert math.isclose(float(alice["completion_rate"]), 1 / 3, abs_tol=1e-6)  # 1 of 3 views complete
    assert alice["segment"].startswith("s")

    bob = await wait_profile_events(redis_client, ns, "bob", 2, worker)
    # food was watched one half-life before bob's newest event: it weighs half of cars.
    assert orjson.loads(bob["top_tags"]) == [["cars", 1.0], ["food", 0.5]]
    assert (bob["sessions"], bob["events"]) == ("2", "2")
    assert math.isclose(float(bob["events_per_day"]), 2 / 7, abs_tol=1e-6)

    # Community of creator cr1, decayed to its newest event (bob's, T0 + one half-life).
    # Engagement weights: view 0.5, like 1, comment 2.
    last = T0 + HALF_LIFE
    alice_score = sum(decayed(w, ts, last) for w, ts in
                      [(0.5, T0), (1, T0 + 1000), (0.5, T0 + 2000), (0.5, T0 + 3000), (2, T0 + 4000)])
    carol_score = decayed(2, T0 + 5000, last)
    bob_score = decayed(0.5, T0, last) + 0.5
    snapshot_key = f"{ns.prefix}community:creator:cr1:p0"

    async def community_complete():
        raw = await redis_client.get(snapshot_key)
        return raw is not None and orjson.loads(raw)["cr1"]["comments_scored"] == 2

    await wait_until(community_complete, 30, "cr1's community snapshot", worker=worker)
    cr1 = orjson.loads(await redis_client.get(snapshot_key))["cr1"]
    assert [(f["user_id"], f["score"]) for f in cr1["superfans"]] == [
        ("alice", round(alice_score, 6)), ("carol", round(carol_score, 6)), ("bob", round(bob_score, 6))]
    # Repeat engagers: alice's like is new, her comment a repeat; carol's comment is new.
    assert (cr1["engagements"], cr1["repeat_engagements"]) == (3, 1)
    assert math.isclose(cr1["repeat_share"], 1 / 3, abs_tol=1e-6)
    # Sentiment: EW mean (weight 0.05 on the newest) of +1.0 (太棒了) then -1.0 (垃圾).
    assert math.isclose(cr1["sentiment"], 0.95 * 1.0 + 0.05 * -1.0, abs_tol=1e-6)

    # A restart keeps the profiles (Faust table changelog): one more event is the 3rd, not the 1st.
    worker.stop()
    worker = workers(ns, "restarted")
    await produce(ns.events, messages([ev("b3", "impression", T0 + HALF_LIFE + 1000, "bob", "vf2")]))
    bob = await wait_profile_events(redis_client, ns, "bob", 3, worker)
    assert (bob["sessions"], orjson.loads(bob["top_tags"])[0][0]) == ("2", "cars")

    # Erase: alice vanishes from Redis and from the tables within 5 s; aggregates stay.
    video_before = await redis_client.hgetall(f"{ns.prefix}video:vf1")
    await produce(ns.events, messages([ev("a-erase", "erase", T0 + HALF_LIFE + 2000, "alice")]))

    async def alice_gone():
        keys = [k async for k in redis_client.scan_iter(match=f"{ns.prefix}*alice*")]
        snapshot = orjson.loads(await redis_client.get(snapshot_key))["cr1"]
        return not keys and all(f["user_id"] != "alice" for f in snapshot["superfans"])

    await wait_until(alice_gone, 5, "alice to be erased from Redis", worker=worker, interval=0.1)
    assert await redis_client.hgetall(f"{ns.prefix}video:vf1") == video_before
    changelog = await consume_all(f"{ns.tag}-app-profiles-changelog")
    last_alice = [r for r in changelog if r.key == b'"alice"'][-1]  # Faust JSON-encodes str keys
    assert last_alice.value is None, "the profiles table still holds alice"


HISTORY_USERS = [f"u{i}" for i in range(24)]


def replay_history():
    """A fixed mixed history: users with different tastes and activity."""
    events, n = [], 0
    for round_ in range(6):
        for i, user in enumerate(HISTORY_USERS):
            video = VIDEOS[(i + round_ * (i % 3)) % len(VIDEOS)]["video_id"]
            n += 1
            events.append(ev(f"h{n}", "view", T0 + n * 1000, user, video, watch_ms=(i * 1700) % 10_001))
            if i % 4 == 0:
                n += 1
                events.append(ev(f"h{n}", "like", T0 + n * 1000, user, video))
    return events


async def test_segments_are_stable_under_replay(single_partition, workers, redis_client):
    history = replay_history()
    segments = []
    for run in range(2):
        ns = await single_partition(f"replay{run}")
        worker = workers(ns, f"replay{run}")
        await produce(ns.events, messages(history))
        counts = {}
        for event in history:
            counts[event["user_id"]] = counts.get(event["user_id"], 0) + 1
        for user in HISTORY_USERS:
            await wait_profile_events(redis_client, ns, user, counts[user], worker)
        segments.append({u: await redis_client.hget(f"{ns.prefix}profile:{u}", "segment") for u in HISTORY_USERS})
        worker.stop()
    assert segments[0] == segments[1]
    assert len(set(segments[0].values())) >= 2, "a replay that puts everyone in one segment proves nothing"


async def test_pseudonymised_user_ids(single_partition, workers, redis_client):
    ns = await single_partition("pseudo")
    worker = workers(ns, SV_PSEUDONYMIZE_KEY="k-test")
    await produce(ns.events, messages([ev("d1", "view", T0, "dave", "vf1", watch_ms=10_000)]))
    alias = pseudonymize("dave", "k-test")
    await wait_profile_events(redis_client, ns, alias, 1, worker)
    assert [k async for k in redis_client.scan_iter(match=f"{ns.prefix}*dave*")] == []
    by_user = await consume_all(f"{ns.tag}-app.events-by-user")
    assert b"dave" not in b"".join((r.key or b"") + r.value for r in by_user)
