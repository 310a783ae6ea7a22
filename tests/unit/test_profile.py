"""UserProfile: scripted histories with hand-computed expectations."""
import math

import orjson
import pytest

from models.profile import DAY_MS, ProfileConfig, UserProfile

H = 7 * DAY_MS  # default tag half-life
HOUR = 3_600_000
MIN = 60_000

FOOD = [{"video_id": f"f{i}", "creator_id": "c1", "duration_ms": 10_000, "tags": ["food"]}
        for i in range(3)]
TRAVEL = {"video_id": "t1", "creator_id": "c2", "duration_ms": 20_000, "tags": ["travel"]}
VIDEOS = {v["video_id"]: v for v in [*FOOD, TRAVEL]}


def ev(etype, ts, video_id=None, **kw):
    return {"event_id": f"{etype}-{ts}", "type": etype, "ts": ts, "user_id": "u1",
            "video_id": video_id, **kw}


HISTORY = [
    ev("view", 0, "f0", watch_ms=10_000),
    ev("view", 1 * HOUR, "f1", watch_ms=10_000),
    ev("view", 2 * HOUR, "f2", watch_ms=12_000),  # over the duration: ratio capped at 1
    ev("like", 2 * HOUR + MIN, "f2"),
    ev("view", 5 * HOUR, "t1", watch_ms=2_000),  # 10 % of 20 s
]


def run(history, profile=None):
    p = profile or UserProfile("u1")
    for e in history:
        p.apply(e, VIDEOS.get(e["video_id"]))
    return p


def decay(now, ts, half_life=H):
    return 2.0 ** (-(now - ts) / half_life)


def test_scripted_history_top_tags_and_weights():
    p = run(HISTORY)
    now = 5 * HOUR
    food = (decay(now, 0) + decay(now, HOUR) + decay(now, 2 * HOUR)
            + 1.0 * decay(now, 2 * HOUR + MIN))
    tags = p.top_tags(now)
    assert [t for t, _ in tags] == ["food", "travel"]
    assert tags[0][1] == pytest.approx(food, abs=1e-9)
    assert tags[1][1] == pytest.approx(0.1, abs=1e-9)
    # later the same weights, decayed one more half-life
    later = p.top_tags(now + H)
    assert later[0][1] == pytest.approx(food / 2, abs=1e-9)
    assert later[1][1] == pytest.approx(0.05, abs=1e-9)
    assert p.top_tags(now, n=1) == [tags[0]]


def test_behaviour_figures():
    p = run(HISTORY)
    assert p.events == 5
    assert p.views == 4
    assert p.sessions == 4  # gaps of 1 h, 1 h, 1 min, 2 h59: sessions start at 0, 1h, 2h, 5h
    assert p.rate("like") == 0.25
    assert p.rate("share") == 0.0
    # EWMean alpha 0.1 over ratios 1, 1, 1, 0.1: the last step is 0.1*0.1 + 0.9*1
    assert p.mean_watch_ratio() == pytest.approx(0.91, abs=1e-12)
    assert p.completion_rate() == 0.75  # f0, f1, f2 complete; t1 not
    assert p.events_per_day() == 5.0  # span under a day counts as one day
    assert p.first_ts == 0 and p.last_ts == 5 * HOUR


def test_sessions_with_gaps_and_late_events():
    p = UserProfile("u1")
    for ts in (0, 10 * MIN, 40 * MIN, 45 * MIN, 76 * MIN, 3 * HOUR):
        p.apply(ev("impression", ts, "f0"), FOOD[0])
    # 10->40 is exactly 30 min (not a new session), 45->76 is 31 min, 76->180 is 104 min
    assert p.sessions == 3
    p.apply(ev("impression", 1 * HOUR, "f0"), FOOD[0])  # late: no new session, no rewind
    assert p.sessions == 3
    assert p.last_ts == 3 * HOUR
    assert p.events == 7


def test_events_per_day_over_the_active_span():
    p = UserProfile("u1")
    for ts in (0, DAY_MS, 2 * DAY_MS, 2 * DAY_MS + 5):
        p.apply(ev("impression", ts), None)
    assert p.events_per_day() == pytest.approx(4 / ((2 * DAY_MS + 5) / DAY_MS), abs=1e-12)


def test_weight_after_one_half_life_is_half():
    p = UserProfile("u1")
    p.apply(ev("view", 1_000, "f0", watch_ms=10_000), FOOD[0])
    assert p.top_tags(1_000) == [("food", 1.0)]
    assert p.top_tags(1_000 + H) == [("food", 0.5)]
    assert p.top_tags(1_000 + 2 * H) == [("food", 0.25)]


def test_out_of_order_event_is_decayed_from_its_own_time():
    p = UserProfile("u1")
    p.apply(ev("view", H, "f0", watch_ms=10_000), FOOD[0])
    p.apply(ev("view", 0, "f1", watch_ms=10_000), FOOD[1])  # late by one half-life
    assert p.top_tags(2 * H) == [("food", 0.75)]
    assert p.last_ts == H and p.first_ts == 0


def test_view_without_duration_uses_unknown_ratio_and_skips_ratio_stats():
    p = UserProfile("u1")
    p.apply(ev("view", 0, "x", watch_ms=3_000), {"video_id": "x", "tags": ["a"]})
    assert p.top_tags(0) == [("a", 0.5)]
    assert p.mean_watch_ratio() == 0.0 and p.completion_rate() == 0.0
    p.apply(ev("view", 0, "x", watch_ms=3_000, duration_ms=4_000), {"video_id": "x", "tags": ["a"]})
    assert p.top_tags(0) == [("a", 1.25)]
    assert p.mean_watch_ratio() == 0.75


def test_dislike_subtracts_and_negative_tags_are_not_top():
    p = UserProfile("u1")
    v = {"video_id": "x", "duration_ms": 1000, "tags": ["a", "b"]}
    p.apply(ev("like", 0, "x"), v)
    p.apply(ev("dislike", 0, "x"), v)
    p.apply(ev("share", 0, "y"), {"video_id": "y", "tags": ["b"]})
    assert p.tag_weights(0) == {"a": -1.0, "b": 1.0}
    assert p.top_tags(0) == [("b", 1.0)]


def test_eviction_keeps_top_k_by_current_decayed_weight():
    p = UserProfile("u1", ProfileConfig(top_k_tags=2))
    p.apply(ev("like", 0, "a"), {"video_id": "a", "tags": ["a"]})  # 1.0, 0.5 at H
    p.apply(ev("view", H, "b", watch_ms=600, duration_ms=1000), {"video_id": "b", "tags": ["b"]})
    p.apply(ev("view", H, "c", watch_ms=550, duration_ms=1000), {"video_id": "c", "tags": ["c"]})
    # at H: a=0.5 < c=0.55 < b=0.6 -> a is evicted although its raw increment was the largest
    weights = p.tag_weights(H)
    assert sorted(weights) == ["b", "c"]
    assert weights["b"] == pytest.approx(0.6, abs=1e-12)
    assert weights["c"] == pytest.approx(0.55, abs=1e-12)


def test_landmark_rebase_keeps_weights():
    cfg = ProfileConfig(tag_half_life_ms=1_000)
    p = UserProfile("u1", cfg)
    v = {"video_id": "x", "duration_ms": 1000, "tags": ["a"]}
    p.apply(ev("view", 0, "x", watch_ms=1000), v)
    p.apply(ev("view", 100_000, "x", watch_ms=1000), v)  # 100 half-lives: landmark moves
    assert p._tag_clock.landmark == 100_000
    assert p.top_tags(100_000)[0][1] == pytest.approx(1.0 + 2.0 ** -100, abs=1e-12)
    assert p.top_tags(101_000)[0][1] == pytest.approx(0.5, abs=1e-12)


def test_activity_score_decays():
    p = UserProfile("u1")
    p.apply(ev("impression", 0), None)
    p.apply(ev("impression", DAY_MS), None)
    assert p.activity(DAY_MS) == 1.5
    assert p.activity(2 * DAY_MS) == 0.75


def test_offsets_for_idempotent_replays():
    p = UserProfile("u1")
    assert p.seen_offset(0, 5) is False
    p.mark_offset(0, 5)
    assert p.seen_offset(0, 5) is True
    assert p.seen_offset(0, 4) is True
    assert p.seen_offset(0, 6) is False
    assert p.seen_offset(1, 0) is False
    p.mark_offset(0, 3)
    assert p.last_applied == {"0": 5}


def test_state_round_trip_continues_identically():
    cfg = ProfileConfig(tag_half_life_ms=HOUR)  # rebase inside the second half
    history = HISTORY + [ev("share", 60 * HOUR, "t1"), ev("view", 61 * HOUR, "f0", watch_ms=1)]
    full = run(history, UserProfile("u1", cfg))
    full.set_attributes({"user_id": "u1", "region": "CN-31", "age_band": "18-24"})
    full.mark_offset(3, 17)

    half = run(history[:3], UserProfile("u1", cfg))
    half.set_attributes({"user_id": "u1", "region": "CN-31", "age_band": "18-24"})
    half.mark_offset(3, 17)
    restored = UserProfile.from_state(orjson.loads(orjson.dumps(half.to_state())), cfg)
    assert restored.to_state() == half.to_state()
    run(history[3:], restored)

    assert restored.to_state() == full.to_state()
    now = 62 * HOUR
    assert restored.to_redis_hash(now, "s1") == full.to_redis_hash(now, "s1")
    assert restored.features() == full.features()
    assert restored.mean_watch_ratio() == full.mean_watch_ratio()


def test_redis_hash_fields_are_strings_with_contract_fields():
    p = run(HISTORY)
    p.set_attributes({"user_id": "u1", "gender": "f", "region": None})
    now = 5 * HOUR
    h = p.to_redis_hash(now, "s3")
    assert all(isinstance(v, str) for v in h.values())
    food = round(sum(decay(now, t) for t in (0, HOUR, 2 * HOUR, 2 * HOUR + MIN)), 6)
    assert orjson.loads(h["top_tags"]) == [["food", food], ["travel", 0.1]]
    assert {k: h[k] for k in ("segment", "events", "last_ts", "sessions", "events_per_day",
                              "watch_ratio", "completion_rate", "like_rate", "comment_rate",
                              "share_rate", "dislike_rate", "views", "gender")} == {
        "segment": "s3", "events": "5", "last_ts": str(5 * HOUR), "sessions": "4",
        "events_per_day": "5", "watch_ratio": "0.91", "completion_rate": "0.75",
        "like_rate": "0.25", "comment_rate": "0", "share_rate": "0", "dislike_rate": "0",
        "views": "4", "gender": "f",
    }
    assert "region" not in h


def test_features_fixed_vocabulary():
    cfg = ProfileConfig(tag_vocab=("food", "game", "travel"))
    p = run(HISTORY, UserProfile("u1", cfg))
    x = p.features()
    assert list(x) == ["tag:food", "tag:game", "tag:travel", "watch_ratio", "completion_rate",
                       "like_rate", "comment_rate", "share_rate", "dislike_rate", "intensity"]
    # normalising cancels the shared decay: shares are of the raw (landmark) weights
    now = 5 * HOUR
    food = sum(decay(now, t) for t in (0, HOUR, 2 * HOUR, 2 * HOUR + MIN))
    assert x["tag:food"] == pytest.approx(food / (food + 0.1), abs=1e-12)
    assert x["tag:travel"] == pytest.approx(0.1 / (food + 0.1), abs=1e-12)
    assert x["tag:game"] == 0.0
    assert x["like_rate"] == 0.25
    assert x["intensity"] == pytest.approx(math.log1p(5) / math.log1p(100), abs=1e-12)


def test_features_hashed_buckets_are_fixed_length():
    p = run(HISTORY)
    x = p.features()
    assert len(x) == 16 + 7
    assert sum(v for k, v in x.items() if k.startswith("tb")) == pytest.approx(1.0, abs=1e-12)
    assert list(UserProfile("u2").features()) == list(x)


def test_erase_is_ignored_and_follow_without_video_counts_activity_only():
    p = UserProfile("u1")
    p.apply(ev("erase", 0), None)
    assert p.events == 0
    p.apply({**ev("follow", 0), "creator_id": "c1"}, None)
    assert p.events == 1 and p.top_tags(0) == []
