"""Community stats: superfans, follower growth, repeat engagers and sentiment by hand."""
import orjson
import pytest

from models.community import (
    BloomSet, CommunityConfig, CommunityStats, DecayedSpaceSaving, MinuteCounter, ScopeStats,
)
from models.profile import DAY_MS

H = 7 * DAY_MS
MIN = 60_000


def ev(etype, ts, user, **kw):
    return {"event_id": f"{etype}-{ts}-{user}", "type": etype, "ts": ts, "user_id": user,
            "video_id": "v1", **kw}


def test_space_saving_replaces_the_minimum_and_inherits_its_score_as_error():
    s = DecayedSpaceSaving(capacity=3, half_life_ms=1_000)
    s.update("a", 5.0, 0)
    s.update("b", 2.0, 0)
    s.update("c", 1.0, 0)
    s.update("a", 1.0, 0)
    s.update("d", 0.5, 0)  # table full: c (1.0) goes, d = 1.0 + 0.5 with error 1.0
    assert s.top(0) == [("a", 6.0, 0.0), ("b", 2.0, 0.0), ("d", 1.5, 1.0)]
    s.update("b", 8.0, 1_000)  # 8 at one half-life later = 16 in t=0 units
    assert s.top(1_000) == [("b", 9.0, 0.0), ("a", 3.0, 0.0), ("d", 0.75, 0.5)]
    assert s.top(1_000, n=1) == [("b", 9.0, 0.0)]


def test_space_saving_eviction_uses_decayed_scores():
    s = DecayedSpaceSaving(capacity=2, half_life_ms=1_000)
    s.update("old", 3.0, 0)       # 0.75 at t=2000
    s.update("new", 1.0, 2_000)   # 1.0 at t=2000
    s.update("x", 0.5, 2_000)     # evicts "old": x = 0.75 + 0.5, error 0.75
    assert s.top(2_000) == [("x", 1.25, 0.75), ("new", 1.0, 0.0)]


def test_space_saving_rebase_and_late_events():
    s = DecayedSpaceSaving(capacity=4, half_life_ms=1_000)
    s.update("a", 1.0, 0)
    s.update("a", 1.0, 40_000)  # 40 half-lives later: landmark moves
    assert s.clock.landmark == 40_000
    s.update("b", 4.0, 39_000)  # late by one half-life: counts 2.0 at 40 000
    top = s.top(40_000)
    assert top[0] == ("b", 2.0, 0.0)
    assert top[1][0] == "a" and top[1][1] == pytest.approx(1.0 + 2.0 ** -40, abs=1e-15)


def test_superfans_in_scope_snapshot():
    c = CommunityStats(CommunityConfig(superfan_half_life_ms=H))
    c.apply(ev("view", 0, "u1", watch_ms=1000), "cr1")      # 0.5
    c.apply(ev("like", 0, "u1"), "cr1")                     # 1
    c.apply(ev("share", 0, "u2"), "cr1")                    # 3
    c.apply(ev("impression", 0, "u3"), "cr1")               # 0
    c.apply(ev("dislike", 0, "u3"), "cr1")                  # 0
    c.apply(ev("conversion", H, "u3", revenue=9.9), "cr1")  # 5 at H
    fans = c.snapshot(H)["cr1"]["superfans"]
    assert fans == [{"user_id": "u3", "score": 5.0, "error": 0.0},
                    {"user_id": "u2", "score": 1.5, "error": 0.0},
                    {"user_id": "u1", "score": 0.75, "error": 0.0}]
    c.forget_user("u3")
    assert [f["user_id"] for f in c.snapshot(H)["cr1"]["superfans"]] == ["u2", "u1"]


def test_follows_per_minute_window():
    m = MinuteCounter(n_minutes=3)
    for ts in (5_000, 59_999, 60_000, 3 * MIN + 1, 3 * MIN + 2, 4 * MIN):
        m.add(ts)
    # the window is the 3 minutes ending with the newest one: (1 min, 4 min]
    assert m.series(4 * MIN) == [[3 * MIN, 2], [4 * MIN, 1]]
    assert m.counts == {3 * MIN: 2, 4 * MIN: 1}
    m.add(0)  # too late for the window: only the total
    m.add(2 * MIN + 7)  # late but inside the window
    assert m.series(4 * MIN + 30_000) == [[2 * MIN, 1], [3 * MIN, 2], [4 * MIN, 1]]
    assert m.series(6 * MIN) == [[4 * MIN, 1]]
    assert m.total == 8


def test_repeat_engagement_share():
    c = CommunityStats()
    c.apply(ev("like", 0, "u1"), "camp")      # first
    c.apply(ev("view", 1, "u2"), "camp")      # views are not engagement here
    c.apply(ev("comment", 2, "u2"), "camp")   # first for u2
    c.apply(ev("share", 3, "u1"), "camp")     # repeat
    c.apply(ev("follow", 4, "u1"), "camp")    # repeat
    c.apply(ev("like", 5, "u3"), "other")     # another scope
    snap = c.snapshot(5)
    assert (snap["camp"]["engagements"], snap["camp"]["repeat_engagements"]) == (4, 2)
    assert snap["camp"]["repeat_share"] == 0.5
    assert snap["other"]["repeat_share"] == 0.0
    assert c.snapshot(5, "nope") == {}
    assert ScopeStats().snapshot(0)["repeat_share"] is None


def test_bloom_set_has_no_false_negatives():
    b = BloomSet(bits=1 << 12, hashes=4)
    users = [f"u{i}" for i in range(200)]
    assert sum(b.check_and_add(u) for u in users) <= 2  # false positives are rare at this load
    assert all(b.check_and_add(u) for u in users)


def test_comment_sentiment_ew_mean():
    c = CommunityStats(CommunityConfig(sentiment_alpha=0.05))
    c.apply(ev("comment", 0, "u1", text="love it"), "cr")   # 1.0
    c.apply(ev("comment", 1, "u2", text="垃圾"), "cr")       # -1.0
    c.apply(ev("comment", 2, "u2"), "cr")                   # no text: not scored
    snap = c.snapshot(2)["cr"]
    assert snap["comments_scored"] == 2
    assert snap["sentiment"] == 0.9  # 0.05 * -1 + 0.95 * 1


def test_state_round_trip_continues_identically():
    events = [ev(t, i * 20_000, f"u{i % 4}", text="好看" if t == "comment" else None)
              for i, t in enumerate(["view", "like", "comment", "follow", "share", "follow",
                                     "conversion", "comment", "like", "follow"] * 3)]
    cfg = CommunityConfig(superfan_capacity=3, n_minutes=5, bloom_bits=256)
    full = CommunityStats(cfg)
    for e in events:
        full.apply(e, "cr")
    half = CommunityStats(cfg)
    for e in events[:13]:
        half.apply(e, "cr")
    restored = CommunityStats.from_state(orjson.loads(orjson.dumps(half.to_state())), cfg)
    for e in events[13:]:
        restored.apply(e, "cr")
    assert restored.to_state() == full.to_state()
    now = events[-1]["ts"]
    assert restored.snapshot(now) == full.snapshot(now)
    orjson.dumps(full.snapshot(now))  # JSON-serialisable
