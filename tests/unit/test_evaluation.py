import math

import pytest

from models.evaluation import (DecayedPopularityBaseline, PopularityBaseline, detect_format, evaluate_simulated,
                               format_results_table, read_catalog, read_log, run_evaluation)


def write(tmp_path, name, text, enc="utf-8"):
    p = tmp_path / name
    p.write_text(text, encoding=enc)
    return str(p)


def test_movielens_reader_exact(tmp_path):
    p = write(tmp_path, "u.data", "1\t10\t5\t200\n2\t11\t1\t100\n1\t11\t4\t300\n")
    write(tmp_path, "u.item", "10|Toy Story|01-Jan-1995||url|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                              "11|Heat|01-Jan-1995||url|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|1|0|0\n", enc="latin-1")
    assert detect_format(p) == "movielens"
    assert list(read_log(p)) == [
        {"ts": 100_000, "user_id": "2", "video_id": "11", "type": "view", "watch_ms": 20_000, "duration_ms": 100_000,
         "event_id": "ml-1-0"},
        {"ts": 100_000, "user_id": "2", "video_id": "11", "type": "dislike", "event_id": "ml-1-1"},
        {"ts": 200_000, "user_id": "1", "video_id": "10", "type": "view", "watch_ms": 100_000, "duration_ms": 100_000,
         "event_id": "ml-0-0"},
        {"ts": 200_000, "user_id": "1", "video_id": "10", "type": "like", "event_id": "ml-0-1"},
        {"ts": 300_000, "user_id": "1", "video_id": "11", "type": "view", "watch_ms": 80_000, "duration_ms": 100_000,
         "event_id": "ml-2"},
    ]
    cat = read_catalog(p)
    assert cat["10"]["tags"] == ["Animation", "Children's", "Comedy"]
    assert cat["11"]["tags"] == ["Action", "Thriller"]


def test_recbole_inter_header_and_item(tmp_path):
    p = write(tmp_path, "ml.inter", "user_id:token\titem_id:token\trating:float\ttimestamp:float\n7\t3\t4\t10\n")
    write(tmp_path, "ml.item", "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
                               "3\tToy Story\t1995\tAnimation Comedy\n")
    assert detect_format(p) == "movielens"
    assert [(e["type"], e["user_id"], e["video_id"], e["ts"]) for e in read_log(p)] == [("view", "7", "3", 10_000)]
    assert read_catalog(p)["3"]["tags"] == ["Animation", "Comedy"]


def test_kuairand_reader_exact(tmp_path):
    p = write(tmp_path, "log_standard.csv",
              "user_id,video_id,time_ms,is_click,is_like,is_follow,is_comment,is_forward,is_hate,play_time_ms,duration_ms\n"
              "5,900,2000,1,1,0,0,1,0,7000,10000\n"
              "5,901,1000,0,0,0,0,0,0,0,15000\n")
    assert detect_format(p) == "kuairand"
    ev = list(read_log(p))
    assert [(e["type"], e["video_id"], e["ts"]) for e in ev] == [
        ("impression", "901", 1000), ("impression", "900", 2000), ("view", "900", 2000), ("like", "900", 2000),
        ("share", "900", 2000)]
    assert ev[2] == {"ts": 2000, "user_id": "5", "video_id": "900", "type": "view", "watch_ms": 7000,
                     "duration_ms": 10000, "event_id": "kr-1-1"}
    assert ev[0]["event_id"] == "kr-2"
    cat = read_catalog(p)
    assert cat["900"]["duration_ms"] == 10000 and cat["901"]["tags"] == []


def test_mapping_reader(tmp_path):
    p = write(tmp_path, "x.csv", "who;what;when;kind;secs\na;v1;5;view;3000\nb;v2;1;like;\n")
    m = {"delimiter": ";", "header": True, "user_id": "who", "video_id": "what", "ts": "when", "ts_unit": "s",
         "type": "kind", "watch_ms": "secs"}
    assert list(read_log(p, mapping=m)) == [
        {"ts": 1000, "user_id": "b", "video_id": "v2", "type": "like", "event_id": "log-2"},
        {"ts": 5000, "user_id": "a", "video_id": "v1", "type": "view", "watch_ms": 3000, "event_id": "log-1"},
    ]
    with pytest.raises(ValueError):
        detect_format(p)


class Fixed:
    """A model that always recommends the same list."""

    def __init__(self, items):
        self.items = items
        self.observed = []

    def observe(self, event, video_record=None, segment=None):
        self.observed.append(event["event_id"])

    def recommend(self, user_id, n=10, now_ms=None, user_tags=None, segment=None, exclude=None):
        return [(v, 1.0, "") for v in self.items if v not in (exclude or ())][:n]


def ev(i, etype, user, vid, **kw):
    return dict({"event_id": str(i), "type": etype, "ts": i, "user_id": user, "video_id": vid}, **kw)


def test_hit_rate_and_ndcg_exact():
    log = [
        ev(1, "view", "u1", "a", watch_ms=10, duration_ms=10),   # positive, a at rank 0 -> hit, ndcg 1
        ev(2, "like", "u1", "a"),                                 # already engaged: not evaluated
        ev(3, "view", "u1", "b", watch_ms=9, duration_ms=10),     # positive; a excluded -> b at rank 0
        ev(4, "view", "u2", "c", watch_ms=2, duration_ms=10),     # not positive
        ev(5, "share", "u2", "b"),                                # positive: list [a, b, c] -> rank 1
        ev(6, "impression", "u2", "z"),                           # not positive
        ev(7, "comment", "u2", "z"),                              # positive, z not in list -> miss
    ]
    models = {"fixed": Fixed(["a", "b", "c"]), "popularity": PopularityBaseline()}
    res = run_evaluation(log, {}, models=models, k=10)
    assert res["events"] == 7 and res["evaluated"] == 4
    f = res["models"]["fixed"]
    assert f["hits"] == 3
    assert f["hit_rate"] == pytest.approx(0.75)
    assert f["ndcg"] == pytest.approx((1 + 1 + 1 / math.log2(3) + 0) / 4)
    assert models["fixed"].observed == [str(i) for i in range(1, 8)]
    # popularity before event 5: a=1+1 (view, like), b=0.9 -> exclude c (seen) -> [a, b] -> b at rank 1
    p = res["models"]["popularity"]
    assert p["hits"] == 1 and p["ndcg"] == pytest.approx(1 / math.log2(3) / 4)
    assert "HitRate@10" in format_results_table(res)


def test_decayed_baseline_prefers_recent():
    m = DecayedPopularityBaseline(half_life_s=1)
    m.observe(ev(0, "like", "u", "old"))
    m.observe(ev(1, "like", "u", "old"))
    m.observe(ev(10_000, "like", "u", "new"))
    assert [v for v, _, _ in m.recommend("x", n=2)] == ["new", "old"]
    p = PopularityBaseline()
    for e in [ev(0, "like", "u", "old"), ev(1, "like", "u", "old"), ev(10_000, "like", "u", "new")]:
        p.observe(e)
    assert [v for v, _, _ in p.recommend("x", n=2)] == ["old", "new"]


def test_evaluate_simulated_small_runs():
    res = evaluate_simulated(seed=1, n_events=3000,
                             model_kwargs=dict(n_users=100, n_videos=80, n_creators=8, n_campaigns=3))
    assert res["evaluated"] > 50
    assert set(res["models"]) >= {"recommender", "popularity"}
    assert 0 <= res["models"]["recommender"]["hit_rate"] <= 1
    assert res["ratio_hit_rate"] > 0
