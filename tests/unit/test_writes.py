"""Planning of one batch of Redis writes: attribution, holds, spend, minute buckets, lateness."""
import orjson

from models.catalog import Catalog
from stream_app.writes import BatchPlanner, KeySpace

T0 = 1_764_748_800_000
KEYS = KeySpace("sv:")


def catalog() -> Catalog:
    c = Catalog()
    c.upsert("video", {"video_id": "v1", "creator_id": "cr1", "campaign_id": "c1", "duration_ms": 3000,
                       "tags": ["food", "diy"]})
    c.upsert("campaign", {"campaign_id": "c1", "pricing": {"model": "cpv", "rate": 0.25}})
    c.upsert("user", {"user_id": "u1", "age_band": "18-24"})
    return c


def planner(**kw) -> BatchPlanner:
    return BatchPlanner(KEYS, catalog(), watermark_ms=kw.pop("watermark_ms", 0), late_grace_ms=600_000,
                        minute_ttl_s=176_400, **kw)


def increments(writes) -> dict:
    out = {}
    for key, field, delta in writes.hi + writes.hf:
        out[(key, field)] = float(delta) if "." in delta else int(delta)
    return out


def test_view_is_counted_everywhere_with_spend_and_minute_bucket():
    p = planner()
    p.add({"event_id": "e1", "type": "view", "ts": T0 + 61_000, "user_id": "u1", "video_id": "v1",
           "watch_ms": 3000}, now_ms=T0)
    w = p.writes()
    inc = increments(w)
    minute = "sv:campaign:c1:m:1764748860000"
    for key in ("sv:video:v1", "sv:creator:cr1", "sv:campaign:c1", minute):
        assert inc[(key, "views")] == 1
        assert inc[(key, "views_2s")] == 1
        assert inc[(key, "completions")] == 1  # 3000 >= catalog duration 3000
        assert inc[(key, "watch_ms")] == 3000
        assert inc[(key, "spend")] == 0.25
    assert inc[("sv:insights:tag:food", "views")] == 1
    assert inc[("sv:insights:age_band:18-24:tag:diy", "completions")] == 1
    assert ("sv:stats:ingest", "applied") in inc
    assert [minute, 176_400] in w.ex and ["sv:hll:campaign:c1:m:1764748860000", 176_400] in w.ex
    assert ["sv:hll:campaign:c1", "sv:campaign:c1", "u1"] in w.pfr
    assert p.touched_campaigns == {"c1"}


def test_unknown_video_or_campaign_is_held_not_counted():
    p = planner()
    p.add({"event_id": "e2", "type": "like", "ts": T0, "user_id": "u1", "video_id": "v9"}, now_ms=T0 + 5)
    p.add({"event_id": "e3", "type": "like", "ts": T0, "user_id": "u1", "video_id": "v1",
           "campaign_id": "c9"}, now_ms=T0 + 5)
    w = p.writes()
    assert [key for key, _ in w.rp] == ["sv:pending:video:v9", "sv:pending:campaign:c9"]
    assert orjson.loads(w.rp[0][1]) == {"e": {"event_id": "e2", "type": "like", "ts": T0, "user_id": "u1",
                                              "video_id": "v9"}, "h": T0 + 5}
    assert not w.hf and [k for k, f, _ in w.hi] == ["sv:stats:ingest"]
    assert increments(w)[("sv:stats:ingest", "held")] == 2


def test_late_event_counts_in_totals_but_no_minute_bucket():
    p = planner(watermark_ms=T0 + 3_600_000)
    p.add({"event_id": "e4", "type": "impression", "ts": T0, "user_id": "u1", "video_id": "v1"}, now_ms=T0)
    inc = increments(p.writes())
    assert inc[("sv:campaign:c1", "impressions")] == 1
    assert inc[("sv:campaign:c1", "late")] == 1
    assert not any(":m:" in key for key, _ in inc)


def test_increments_are_summed_per_key():
    p = planner()
    for i in range(3):
        p.add({"event_id": f"e{i}", "type": "conversion", "ts": T0, "user_id": "u1", "video_id": "v1",
               "revenue": 0.1}, now_ms=T0)
    w = p.writes()
    assert [op for op in w.hf if op[:2] == ["sv:video:v1", "revenue"]] == [["sv:video:v1", "revenue", repr(0.1 + 0.1 + 0.1)]]
    assert [op for op in w.hi if op[:2] == ["sv:video:v1", "conversions"]] == [["sv:video:v1", "conversions", "3"]]
