from collections import Counter

import numpy as np

from models.simulation import TrafficModel

SMALL = dict(n_users=200, n_videos=120, n_creators=10, n_campaigns=6)
TYPES = {"impression", "view", "like", "share", "dislike", "comment", "follow", "conversion"}


def test_deterministic_for_a_seed():
    a, b = TrafficModel(seed=5, **SMALL), TrafficModel(seed=5, **SMALL)
    assert a.videos() == b.videos() and a.campaigns() == b.campaigns() and a.users() == b.users()
    assert list(a.events(3000)) == list(b.events(3000))
    assert list(TrafficModel(seed=6, **SMALL).events(300)) != list(a.events(300))


def test_catalogue_shapes():
    m = TrafficModel(seed=1, **SMALL)
    vids = m.videos()
    assert len(vids) == 120 and len(m.users()) == 200 and len(m.campaigns()) == 6
    assert all(1 <= len(v["tags"]) <= 3 and set(v["tags"]) <= set(m.tags) for v in vids)
    assert all(v["creator_id"].startswith("cr") and v["duration_ms"] > 0 for v in vids)
    share = sum(v["campaign_id"] is not None for v in vids) / len(vids)
    assert 0.3 < share < 0.7
    camps = m.campaigns()
    assert {c["pricing"]["model"] for c in camps} == {"cpm", "cpv", "cpa"}
    assert all(c["start_ts"] < c["end_ts"] and c["budget"] > 0 for c in camps)
    assert set(m.taste("u3")) == set(m.tags)


def test_events_follow_contract_and_clock():
    m = TrafficModel(seed=2, **SMALL)
    ev = list(m.events(5000, start_ts=1_000_000, rate_per_s=100))
    assert [e["event_id"] for e in ev] == [f"e-{k}" for k in range(1, 5001)]
    assert ev[0]["ts"] == 1_000_000 and ev[-1]["ts"] == 1_000_000 + 4999 * 10
    assert all(b["ts"] > a["ts"] for a, b in zip(ev, ev[1:]))
    assert {e["type"] for e in ev} <= TYPES
    c = Counter(e["type"] for e in ev)
    assert c["impression"] > c["view"] > c["like"] > 0
    for e in ev:
        if e["type"] == "view":
            assert 0 <= e["watch_ms"] <= e["duration_ms"]
        if e["type"] == "conversion":
            assert e["revenue"] >= 0 and e["campaign_id"]
        if e["type"] == "comment":
            assert isinstance(e["text"], str) and e["text"]


def test_popularity_is_skewed_and_taste_matters():
    m = TrafficModel(seed=3, n_users=2000, n_videos=300, n_creators=20, n_campaigns=4)
    ev = list(m.events(40_000))
    views = Counter(e["video_id"] for e in ev if e["type"] == "view")
    counts = np.array(sorted(views.values(), reverse=True))
    assert counts[:10].sum() / counts.sum() > 0.25  # top 10 of 300 videos (3 %) carry > 25 % of views
    # watched ratio is higher on high-affinity videos
    hi, lo = [], []
    dur = {v["video_id"]: v["duration_ms"] for v in m.videos()}
    for e in ev:
        if e["type"] == "view":
            (hi if m.affinity(e["user_id"], e["video_id"]) > 0.5 else lo).append(e["watch_ms"] / dur[e["video_id"]])
    assert np.mean(hi) > np.mean(lo) + 0.3
