"""Hand-built histories with exact expectations for models.recommend."""

import orjson
import pickle

import pytest

from models.recommend import Recommender, RecommenderConfig, implicit_target, is_positive

TAGS = {"f1": ["food"], "f2": ["food"], "f3": ["food"], "f4": ["food"],
        "g1": ["gaming"], "g2": ["gaming"], "g3": ["gaming"], "t1": ["travel"], "t2": ["travel"]}


def video(vid, tags=None, published_ts=0, duration_ms=10_000):
    return {"video_id": vid, "creator_id": "c1", "duration_ms": duration_ms, "tags": tags or TAGS.get(vid, []),
            "campaign_id": None, "published_ts": published_ts}


class Clock:
    def __init__(self):
        self.t = 1_000_000

    def __call__(self):
        self.t += 1000
        return self.t


def view(rec, clk, user, vid, ratio=1.0, **kw):
    rec.observe({"event_id": f"{user}-{vid}-{clk.t}", "type": "view", "ts": clk(), "user_id": user, "video_id": vid,
                 "watch_ms": int(10_000 * ratio)}, **kw)


def event(rec, clk, user, vid, etype, **kw):
    rec.observe({"type": etype, "ts": clk(), "user_id": user, "video_id": vid}, **kw)


@pytest.fixture
def world():
    rec = Recommender(RecommenderConfig(explore_share=0.0))
    for v in TAGS:
        rec.add_video(video(v))
    clk = Clock()
    # background traffic: gaming and travel are what is popular overall
    for u in ["b1", "b2", "b3", "b4"]:
        for v in ["g1", "g2", "g3", "t1", "t2"]:
            view(rec, clk, u, v)
    view(rec, clk, "b1", "f3")
    view(rec, clk, "b1", "f4")
    return rec, clk


def test_target_definition():
    assert implicit_target({"type": "view", "watch_ms": 10_000}, 10_000) == 1.0
    assert implicit_target({"type": "view", "watch_ms": 5_000}, 10_000) == 0.5
    assert implicit_target({"type": "view", "watch_ms": 100}, 10_000) == -0.2
    assert implicit_target({"type": "dislike"}) == -1.0
    assert implicit_target({"type": "impression"}) == -0.05
    assert is_positive({"type": "view", "watch_ms": 8_000, "duration_ms": 10_000})
    assert not is_positive({"type": "view", "watch_ms": 7_000, "duration_ms": 10_000})
    assert is_positive({"type": "share"})


def test_food_lover_gets_food_first(world):
    rec, clk = world
    view(rec, clk, "me", "f1")
    view(rec, clk, "me", "f2")
    recs = rec.recommend("me", n=5)
    ids = [v for v, _, _ in recs]
    assert ids[:2] == ["f4", "f3"] or set(ids[:2]) == {"f3", "f4"}
    assert recs[0][2] == "matches your interest in #food"
    assert all(s1 >= s2 for (_, s1, _), (_, s2, _) in zip(recs, recs[1:]))


def test_caller_tags_override_own_profile(world):
    rec, clk = world
    view(rec, clk, "me", "f1")
    recs = rec.recommend("me", n=3, user_tags={"travel": 1.0})
    assert {v for v, _, _ in recs[:2]} == {"t1", "t2"}
    assert recs[0][2] == "matches your interest in #travel"


def test_seen_and_disliked_never_recommended(world):
    rec, clk = world
    view(rec, clk, "me", "g1")
    view(rec, clk, "me", "g2", ratio=0.3)  # a partial view still counts as seen
    event(rec, clk, "me", "t1", "dislike")
    ids = [v for v, _, _ in rec.recommend("me", n=20)]
    assert "g1" not in ids and "g2" not in ids and "t1" not in ids
    assert "g3" in ids
    assert "x" not in [v for v, _, _ in rec.recommend("me", n=20, exclude={"g3"})]
    assert "g3" not in [v for v, _, _ in rec.recommend("me", n=20, exclude={"g3"})]


def test_impression_alone_does_not_mark_seen(world):
    rec, clk = world
    event(rec, clk, "me", "g1", "impression")
    assert "g1" in [v for v, _, _ in rec.recommend("me", n=20)]


def test_cooccurrence_neighbour_appears_with_reason():
    rec = Recommender(RecommenderConfig(explore_share=0.0))
    for v in ["a", "b", "c", "d", "e"]:
        rec.add_video(video(v, tags=["misc"]))
    clk = Clock()
    # popular stuff
    for u in range(6):
        view(rec, clk, f"p{u}", "d")
        view(rec, clk, f"p{u}", "e")
    # two users finished a then b
    for u in ["x1", "x2"]:
        view(rec, clk, u, "a")
        view(rec, clk, u, "b")
    view(rec, clk, "me", "a")
    recs = rec.recommend("me", n=3)
    assert recs[0][0] == "b"
    assert recs[0][2] == "people who finished a also finished this"


def test_unpublished_videos_are_not_recommended(world):
    rec, clk = world
    rec.add_video(video("f9", tags=["food"], published_ts=clk.t + 10**9))
    view(rec, clk, "me", "f1")
    assert "f9" not in [v for v, _, _ in rec.recommend("me", n=20)]


def test_exploration_share_is_bounded():
    rec = Recommender(RecommenderConfig(explore_share=0.2, explore_window_s=3600))
    clk = Clock()
    for v in ["o1", "o2", "o3", "o4", "o5", "o6"]:
        rec.add_video(video(v, tags=["misc"], published_ts=0))
    for v in ["n1", "n2", "n3"]:
        rec.add_video(video(v, tags=["misc"], published_ts=clk.t))
    for u in range(3):
        for v in ["o1", "o2", "o3", "o4", "o5", "o6"]:
            view(rec, clk, f"p{u}", v)
    recs = rec.recommend("me", n=5)
    explored = [v for v, _, r in recs if r == "new video, exploring"]
    assert len(recs) == 5 and len(explored) == 1 and explored[0].startswith("n")


def test_forget_user(world):
    rec, clk = world
    view(rec, clk, "me", "f1")
    assert rec.user_state("me") is not None
    rec.observe({"type": "erase", "ts": clk(), "user_id": "me"})
    assert rec.user_state("me") is None
    assert "me" not in rec.mf.users
    assert "f1" in [v for v, _, _ in rec.recommend("me", n=20, user_tags={"food": 1})]


def test_dumps_loads_round_trip_identical(world):
    rec, clk = world
    view(rec, clk, "me", "f1")
    view(rec, clk, "me", "g1")
    before = rec.recommend("me", n=10)
    clone = Recommender.loads(rec.dumps())
    assert clone.recommend("me", n=10) == before
    # and they keep learning identically
    for r in (rec, clone):
        c = Clock()
        c.t = clk.t
        view(r, c, "me", "f2")
        view(r, c, "other", "f3")
    assert clone.recommend("me", n=10) == rec.recommend("me", n=10)


def test_user_and_item_state_serialisable_and_transferable(world):
    rec, clk = world
    view(rec, clk, "me", "f1")
    before = rec.recommend("me", n=10)
    ust = orjson.loads(orjson.dumps(rec.user_state("me")))
    ist = orjson.loads(orjson.dumps(rec.item_state()))
    pickle.dumps(ust)
    other = Recommender(RecommenderConfig(explore_share=0.0))
    other.load_item_state(ist)
    other.load_user_state("me", ust)
    got = other.recommend("me", n=10)
    assert [v for v, _, _ in got] == [v for v, _, _ in before]
    assert [r for _, _, r in got] == [r for _, _, r in before]
    # merging the same state is idempotent for popularity
    other.load_item_state(ist, merge=True)
    assert [v for v, _, _ in other.recommend("me", n=10)] == [v for v, _, _ in before]


def test_bounded_users():
    rec = Recommender(RecommenderConfig(max_users=3, max_seen=2))
    clk = Clock()
    for k in range(5):
        view(rec, clk, f"u{k}", "a")
    assert list(rec.users) == ["u2", "u3", "u4"]
    for v in ["b", "c", "d"]:
        view(rec, clk, "u4", v)
    assert len(rec.users["u4"].seen) == 2


def test_recommend_unknown_user_is_trending(world):
    rec, _ = world
    recs = rec.recommend("nobody", n=3)
    assert len(recs) == 3 and all(r == "trending now" for _, _, r in recs)
    assert {v for v, _, _ in recs} <= {"g1", "g2", "g3", "t1", "t2"}


def test_two_workers_share_item_side_by_merging():
    """Users are partitioned across workers; items are not: after a sync each worker knows the
    videos that are popular on the other one, and syncing twice changes nothing more."""
    def worker():
        r = Recommender(RecommenderConfig(explore_share=0.0))
        for v in ("x1", "x2", "y1"):
            r.add_video({"video_id": v, "creator_id": "c", "duration_ms": 10_000, "tags": ["t"],
                         "campaign_id": None, "published_ts": 0})
        return r

    a, b = worker(), worker()
    ts = 1_000
    for k in range(5):  # x1 is a hit among worker A's users, x2 among worker B's
        ts += 1
        a.observe({"type": "view", "ts": ts, "user_id": f"a{k}", "video_id": "x1", "watch_ms": 10_000})
        b.observe({"type": "view", "ts": ts, "user_id": f"b{k}", "video_id": "x2", "watch_ms": 10_000})
    newcomer_a = [v for v, _, _ in a.recommend("new", n=2, now_ms=ts)]
    assert newcomer_a[0] == "x1" and "x2" not in newcomer_a[:1]
    state_a, state_b = orjson.loads(orjson.dumps(a.item_state())), orjson.loads(orjson.dumps(b.item_state()))
    a.load_item_state(state_b, merge=True)
    b.load_item_state(state_a, merge=True)
    for r in (a, b):
        top2 = {v for v, _, _ in r.recommend("new", n=2, now_ms=ts)}
        assert top2 == {"x1", "x2"}
    events_after_one_sync = a.item_state()["events"]
    a.load_item_state(state_b, merge=True)
    assert a.item_state()["events"] == events_after_one_sync
