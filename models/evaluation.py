"""Prequential (test-then-learn) evaluation of recommenders on event logs, and log readers.

Protocol
--------
Events are replayed in time order.  For every *evaluated positive* -- an event with implicit
target >= 0.75 (:func:`models.recommend.target.is_positive`: a view watched >= 75 %, a like,
share, follow, comment or conversion; for MovieLens a rating >= 4) on a video the user has not
engaged with before -- each model is first asked for the user's top-``k`` (``exclude`` = the
videos the user already engaged with), we record a hit when the video is in the list and
NDCG@k = 1 / log2(rank + 2) (one relevant item, so the ideal DCG is 1).  Then *every* event,
positive or not, is learnt by every model.  Later positives on an already-engaged video (a
like after a completed view) are learnt but not evaluated: no feed would show that video again.
All models run in the same pass over the same events, so the figures compare like with like.

Log formats (all yield contract events in time order, so the same readers drive ``replay``)
-----------------------------------------------------------------------------------------------
* ``movielens``: ``u.data`` (``user \\t item \\t rating \\t unix seconds``, no header) or a RecBole
  ``.inter`` file (same columns, typed header).  A rating r becomes a ``view`` of a nominal
  100 s video watched r/5 of the way (so rating >= 4 <=> positive), plus a ``like`` for 5 and a
  ``dislike`` for 1.  Tags come from ``u.item`` genres (or RecBole ``.item`` ``class``) when
  that file sits beside the log.
* ``kuairand``: CSV with header ``user_id, video_id, time_ms, is_click, is_like, is_follow,
  is_comment, is_forward, is_hate, play_time_ms, duration_ms``.  Each row is an exposure:
  an ``impression``, then when clicked a ``view`` (watch_ms = play_time_ms), then ``like``,
  ``comment``, ``share`` (forward), ``follow``, ``dislike`` (hate) for the flags set.
* any other delimited log through a column ``mapping`` (see :func:`read_log`).

>>> import os, tempfile
>>> d = tempfile.mkdtemp(); p = os.path.join(d, "u.data")
>>> _ = open(p, "w").write("1\\t10\\t5\\t100\\n2\\t10\\t3\\t50\\n")
>>> detect_format(p)
'movielens'
>>> [(e["type"], e["user_id"], e["video_id"], e["ts"], e.get("watch_ms")) for e in read_log(p)]
[('view', '2', '10', 50000, 60000), ('view', '1', '10', 100000, 100000), ('like', '1', '10', 100000, None)]
"""

from __future__ import annotations

import csv
import math
import os
import time
from typing import Callable, Iterable, Iterator

import numpy as np

from models.recommend import Recommender, RecommenderConfig
from models.recommend.popularity import DecayedPopularity
from models.recommend.target import implicit_target, is_positive

ML_DURATION_MS = 100_000
ML_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
)
KUAIRAND_COLUMNS = ("user_id", "video_id", "time_ms", "is_click", "is_like", "is_follow", "is_comment",
                    "is_forward", "is_hate", "play_time_ms", "duration_ms")

MOVIELENS_MAPPING = {"delimiter": "\t", "header": "auto", "user_id": 0, "video_id": 1, "rating": 2,
                     "ts": 3, "ts_unit": "s", "rating_max": 5}
KUAIRAND_MAPPING = {"delimiter": ",", "header": True, "user_id": "user_id", "video_id": "video_id",
                    "ts": "time_ms", "ts_unit": "ms", "impression": True, "click": "is_click",
                    "watch_ms": "play_time_ms", "duration_ms": "duration_ms", "like": "is_like",
                    "follow": "is_follow", "comment": "is_comment", "share": "is_forward",
                    "dislike": "is_hate"}
_FLAG_TYPES = ("like", "comment", "share", "follow", "dislike")


# ---------------------------------------------------------------------------------- readers
def detect_format(path: str) -> str:
    """``'movielens'`` or ``'kuairand'`` from the file name and first line; ValueError otherwise."""
    name = os.path.basename(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    cols = [c.strip().lower() for c in first.replace("\t", ",").split(",")]
    if "is_click" in cols and "user_id" in cols:
        return "kuairand"
    if name == "u.data" or name.endswith(".inter"):
        return "movielens"
    parts = first.split("\t")
    if len(parts) == 4 and all(p.strip().lstrip("-").replace(".", "", 1).isdigit() for p in parts):
        return "movielens"
    raise ValueError(f"cannot tell the log format of {path!r}: pass fmt= or a mapping")


def _num(x, default=0.0) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return default


def read_log(path: str, fmt: str | None = None, mapping: dict | None = None) -> Iterator[dict]:
    """Yield contract events from a log file, sorted by time (stable for equal times).

    ``fmt`` is ``'movielens'``, ``'kuairand'`` or None (detect, unless ``mapping`` is given).
    ``mapping`` describes any other delimited log, columns by header name or 0-based position:
    ``user_id``, ``video_id``, ``ts`` (required), ``ts_unit`` ('ms' or 's'), ``delimiter``,
    ``header`` (True, False or 'auto'), and either ``type`` (a column holding contract types,
    with ``watch_ms``/``duration_ms``/``revenue``/``text`` columns), or ``rating`` (+ ``rating_max``),
    or flag columns ``click``, ``like``, ``comment``, ``share``, ``follow``, ``dislike``
    (+ ``watch_ms``, ``duration_ms``, ``impression``: True when every row is an exposure).
    A mapping given with ``fmt`` updates that format's mapping.

    The whole log is read and sorted in memory (rows, not events): fine for logs of a few
    million rows.
    """
    if mapping is None or fmt is not None:
        fmt = fmt or detect_format(path)
        base = {"movielens": MOVIELENS_MAPPING, "kuairand": KUAIRAND_MAPPING}.get(fmt)
        if base is None:
            raise ValueError(f"unknown log format {fmt!r}")
        mapping = {**base, **(mapping or {})}
    prefix = {"movielens": "ml", "kuairand": "kr"}.get(fmt or "", "log")
    rows = []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f, delimiter=mapping.get("delimiter", ","))
        header = mapping.get("header", True)
        names: dict[str, int] = {}
        for lineno, row in enumerate(reader):
            if not row or not "".join(row).strip():
                continue
            if lineno == 0 and header:
                ts_col = mapping["ts"]
                is_header = header is True or (isinstance(ts_col, int) and not row[ts_col].strip().replace(".", "", 1).isdigit())
                if is_header:
                    names = {c.strip().split(":")[0]: k for k, c in enumerate(row)}
                    continue
            rows.append((lineno, row))

    def col(key):
        c = mapping.get(key)
        if c is None:
            return None
        if isinstance(c, int):
            return c
        if c not in names:
            raise ValueError(f"column {c!r} (for {key}) not in the header of {path}")
        return names[c]

    cu, cv, ct = col("user_id"), col("video_id"), col("ts")
    unit = 1000 if mapping.get("ts_unit", "ms") == "s" else 1
    keyed = []
    for lineno, row in rows:
        keyed.append((int(_num(row[ct]) * unit), lineno, row))
    keyed.sort(key=lambda x: (x[0], x[1]))

    c_type, c_rating = col("type"), col("rating")
    c_watch, c_dur, c_click = col("watch_ms"), col("duration_ms"), col("click")
    c_rev, c_text = col("revenue"), col("text")
    c_flags = {t: col(t) for t in _FLAG_TYPES}
    rmax = float(mapping.get("rating_max", 5))
    every_impression = bool(mapping.get("impression"))
    for ts, lineno, row in keyed:
        base = {"ts": ts, "user_id": row[cu].strip(), "video_id": row[cv].strip()}
        eid = f"{prefix}-{lineno}"
        out = []
        if c_type is not None:
            e = dict(base, type=row[c_type].strip())
            if c_watch is not None and e["type"] == "view":
                e["watch_ms"] = int(_num(row[c_watch]))
            if c_dur is not None and _num(row[c_dur]) > 0:
                e["duration_ms"] = int(_num(row[c_dur]))
            if c_rev is not None and e["type"] == "conversion":
                e["revenue"] = _num(row[c_rev])
            if c_text is not None and e["type"] == "comment":
                e["text"] = row[c_text]
            out.append(e)
        elif c_rating is not None:
            r = _num(row[c_rating])
            dur = ML_DURATION_MS
            out.append(dict(base, type="view", watch_ms=int(round(dur * r / rmax)), duration_ms=dur))
            if r >= rmax:
                out.append(dict(base, type="like"))
            elif r <= 1:
                out.append(dict(base, type="dislike"))
        else:
            if every_impression:
                out.append(dict(base, type="impression"))
            clicked = c_click is None or _num(row[c_click]) > 0
            if clicked and c_watch is not None:
                e = dict(base, type="view", watch_ms=int(_num(row[c_watch])))
                if c_dur is not None and _num(row[c_dur]) > 0:
                    e["duration_ms"] = int(_num(row[c_dur]))
                out.append(e)
            for t in _FLAG_TYPES:
                c = c_flags[t]
                if c is not None and _num(row[c]) > 0:
                    out.append(dict(base, type=t))
        for k, e in enumerate(out):
            e["event_id"] = f"{eid}-{k}" if len(out) > 1 else eid
            yield e


def read_catalog(path: str, fmt: str | None = None, mapping: dict | None = None) -> dict[str, dict]:
    """Video records for a log: genres of ``u.item`` / RecBole ``.item`` for MovieLens, durations
    from the log for KuaiRand-style logs (no tags), ``{}`` tags otherwise."""
    fmt = fmt or (None if mapping else detect_format(path))
    cat: dict[str, dict] = {}
    if fmt == "movielens":
        d = os.path.dirname(path) or "."
        stem = os.path.splitext(os.path.basename(path))[0]
        uitem, ritem = os.path.join(d, "u.item"), os.path.join(d, stem + ".item")
        if os.path.exists(uitem):
            genres = list(ML_GENRES)
            ug = os.path.join(d, "u.genre")
            if os.path.exists(ug):
                with open(ug, encoding="latin-1") as f:
                    g = [ln.split("|")[0] for ln in f if ln.strip()]
                    genres = g or genres
            with open(uitem, encoding="latin-1") as f:
                for ln in f:
                    p = ln.rstrip("\n").split("|")
                    if len(p) < 6:
                        continue
                    flags = p[-len(genres):]
                    tags = [genres[k] for k, x in enumerate(flags) if x.strip() == "1"]
                    cat[p[0]] = _ml_record(p[0], tags)
        elif os.path.exists(ritem):
            with open(ritem, encoding="utf-8", errors="replace") as f:
                head = f.readline().rstrip("\n").split("\t")
                names = [h.split(":")[0] for h in head]
                ci, cc = names.index("item_id"), names.index("class") if "class" in names else None
                for ln in f:
                    p = ln.rstrip("\n").split("\t")
                    tags = p[cc].split() if cc is not None and cc < len(p) else []
                    cat[p[ci]] = _ml_record(p[ci], tags)
    for e in read_log(path, fmt, mapping):
        v = e["video_id"]
        if v not in cat:
            cat[v] = {"video_id": v, "creator_id": None, "duration_ms": e.get("duration_ms"), "tags": [],
                      "campaign_id": None, "published_ts": None}
        elif e.get("duration_ms") and not cat[v].get("duration_ms"):
            cat[v]["duration_ms"] = e["duration_ms"]
    return cat


def _ml_record(vid: str, tags: list[str]) -> dict:
    return {"video_id": vid, "creator_id": None, "duration_ms": ML_DURATION_MS, "tags": tags,
            "campaign_id": None, "published_ts": None}


# ---------------------------------------------------------------------------------- baselines
class PopularityBaseline:
    """Most engaged videos overall (sum of positive implicit targets), same interface as
    :class:`~models.recommend.Recommender` (``observe`` / ``recommend``).

    >>> p = PopularityBaseline()
    >>> for v in ["a", "b", "b"]:
    ...     p.observe({"type": "like", "ts": 1, "user_id": "u", "video_id": v})
    >>> p.recommend("x", n=2), p.recommend("x", n=2, exclude={"b"})
    ([('b', 2.0, 'popular'), ('a', 1.0, 'popular')], [('a', 1.0, 'popular')])
    """

    reason = "popular"

    def __init__(self, half_life_s: float | None = None):
        self.pop = DecayedPopularity(half_life_s)
        self.ids: list[str] = []
        self.idx: dict[str, int] = {}
        self.duration: dict[str, int] = {}

    def observe(self, event: dict, video_record: dict | None = None, segment: str | None = None) -> None:
        v = event.get("video_id")
        if v is None:
            return
        i = self.idx.get(v)
        if i is None:
            i = self.idx[v] = len(self.ids)
            self.ids.append(v)
        if video_record and video_record.get("duration_ms"):
            self.duration[v] = video_record["duration_ms"]
        t = implicit_target(event, self.duration.get(v))
        self.pop.add(i, max(0.0, t), int(event.get("ts") or 0))

    def recommend(self, user_id: str, n: int = 20, now_ms: int | None = None, user_tags=None,
                  segment: str | None = None, exclude=None) -> list[tuple[str, float, str]]:
        exclude = exclude or ()
        top = self.pop.top(n + len(exclude))
        out = []
        for j in top.tolist():
            v = self.ids[j]
            if v in exclude:
                continue
            out.append((v, float(self.pop.scores[j]), self.reason))
            if len(out) >= n:
                break
        return out


class DecayedPopularityBaseline(PopularityBaseline):
    """Most engaged videos with exponential time decay (half-life in seconds)."""

    reason = "trending"

    def __init__(self, half_life_s: float = 6 * 3600):
        super().__init__(half_life_s)


# ---------------------------------------------------------------------------------- evaluation
def _default_models(config: RecommenderConfig | None) -> dict:
    return {
        "recommender": Recommender(config),
        "popularity": PopularityBaseline(),
        "decayed_pop_1h": DecayedPopularityBaseline(3600),
        "decayed_pop_1d": DecayedPopularityBaseline(86400),
    }


def run_evaluation(
    events: Iterable[dict],
    catalog: dict[str, dict] | None = None,
    models: dict | None = None,
    k: int = 10,
    segments: dict | Callable[[str], str | None] | None = None,
    config: RecommenderConfig | None = None,
    progress: bool = False,
    total: int | None = None,
) -> dict:
    """Prequential evaluation of ``models`` (default: our recommender + popularity baselines).

    ``catalog`` maps video_id -> video record (passed to ``observe`` and added up-front to models
    that have ``add_video``); ``segments`` maps a user to a segment (dict or function).  Returns
    ``{"k", "events", "evaluated", "models": {name: {"hit_rate", "ndcg", "hits", "seconds",
    "events_per_s", "rec_ms_p50", "rec_ms_p99"}}, "best_baseline", "ratio_hit_rate", "ratio_ndcg"}``.
    """
    catalog = catalog or {}
    models = models if models is not None else _default_models(config)
    for m in models.values():
        if hasattr(m, "add_video"):
            for rec in catalog.values():
                m.add_video(rec)
    seg_of = segments if callable(segments) else ((lambda u: segments.get(u)) if segments else (lambda u: None))
    names = list(models)
    hits = dict.fromkeys(names, 0)
    ndcg = dict.fromkeys(names, 0.0)
    secs = dict.fromkeys(names, 0.0)
    lat: dict[str, list[float]] = {m: [] for m in names}
    seen: dict[str, set] = {}
    n_events = n_eval = 0
    it = events
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="ev", mininterval=1.0)
        except ImportError:  # tqdm is optional at run time
            bar = None
    clock = time.perf_counter
    for e in it:
        n_events += 1
        if bar is not None and n_events % 1000 == 0:
            bar.update(1000)
        u, v = e.get("user_id"), e.get("video_id")
        rec = catalog.get(v) if v is not None else None
        seg = seg_of(u) if u is not None else None
        useen = seen.get(u)
        if v is not None and u is not None and (useen is None or v not in useen) and \
                is_positive(e, rec.get("duration_ms") if rec else None):
            n_eval += 1
            excl = useen or set()
            for name in names:
                t0 = clock()
                top = models[name].recommend(u, n=k, now_ms=e.get("ts"), segment=seg, exclude=excl)
                dt = clock() - t0
                secs[name] += dt
                lat[name].append(dt)
                for rank, item in enumerate(top[:k]):
                    if item[0] == v:
                        hits[name] += 1
                        ndcg[name] += 1.0 / math.log2(rank + 2)
                        break
        for name in names:
            t0 = clock()
            models[name].observe(e, rec, segment=seg)
            secs[name] += clock() - t0
        if v is not None and u is not None and e.get("type") not in ("impression", "erase"):
            seen.setdefault(u, set()).add(v)
        if e.get("type") == "erase" and u is not None:
            seen.pop(u, None)
    if bar is not None:
        bar.close()
    res = {"k": k, "events": n_events, "evaluated": n_eval, "models": {}}
    for name in names:
        la = np.asarray(lat[name]) * 1000 if lat[name] else np.zeros(1)
        res["models"][name] = {
            "hit_rate": hits[name] / n_eval if n_eval else 0.0,
            "ndcg": ndcg[name] / n_eval if n_eval else 0.0,
            "hits": hits[name],
            "seconds": secs[name],
            "events_per_s": n_events / secs[name] if secs[name] > 0 else float("inf"),
            "rec_ms_p50": float(np.percentile(la, 50)),
            "rec_ms_p99": float(np.percentile(la, 99)),
        }
    base = [nm for nm in names if nm != "recommender"]
    if "recommender" in res["models"] and base:
        best = max(base, key=lambda nm: res["models"][nm]["hit_rate"])
        ours, b = res["models"]["recommender"], res["models"][best]
        res["best_baseline"] = best
        res["ratio_hit_rate"] = ours["hit_rate"] / b["hit_rate"] if b["hit_rate"] else float("inf")
        best_nd = max(res["models"][nm]["ndcg"] for nm in base)
        res["ratio_ndcg"] = ours["ndcg"] / best_nd if best_nd else float("inf")
    return res


def format_results_table(results: dict, title: str | None = None) -> str:
    """A plain-text table of :func:`run_evaluation` results.

    >>> r = {"k": 10, "events": 4, "evaluated": 2, "models": {
    ...   "recommender": {"hit_rate": 1.0, "ndcg": 0.75, "events_per_s": 1000.0, "rec_ms_p50": 0.5, "rec_ms_p99": 1.0},
    ...   "popularity": {"hit_rate": 0.5, "ndcg": 0.5, "events_per_s": 9000.0, "rec_ms_p50": 0.1, "rec_ms_p99": 0.2}},
    ...   "best_baseline": "popularity", "ratio_hit_rate": 2.0, "ratio_ndcg": 1.5}
    >>> print(format_results_table(r))
    model           HitRate@10  NDCG@10  vs best HR  events/s  rec p50 ms  rec p99 ms
    recommender         1.0000   0.7500       2.00x      1000       0.500       1.000
    popularity          0.5000   0.5000       1.00x      9000       0.100       0.200
    events=4 evaluated positives=2 best baseline=popularity HR ratio=2.00x NDCG ratio=1.50x
    """
    k = results.get("k", 10)
    lines = []
    if title:
        lines.append(title)
    lines.append(f"{'model':<14} {'HitRate@' + str(k):>11}  {'NDCG@' + str(k):>7}  {'vs best HR':>10}  "
                 f"{'events/s':>8}  {'rec p50 ms':>10}  {'rec p99 ms':>10}")
    best = results.get("best_baseline")
    bhr = results["models"][best]["hit_rate"] if best else 0.0
    for name, m in results["models"].items():
        rel = f"{m['hit_rate'] / bhr:.2f}x" if bhr else "-"
        lines.append(f"{name:<14} {m['hit_rate']:>11.4f}  {m['ndcg']:>7.4f}  {rel:>10}  {m['events_per_s']:>8.0f}  "
                     f"{m['rec_ms_p50']:>10.3f}  {m['rec_ms_p99']:>10.3f}")
    tail = f"events={results['events']} evaluated positives={results['evaluated']}"
    if best:
        tail += f" best baseline={best} HR ratio={results['ratio_hit_rate']:.2f}x NDCG ratio={results['ratio_ndcg']:.2f}x"
    lines.append(tail)
    return "\n".join(lines)


def evaluate_simulated(
    seed: int = 7,
    n_events: int = 200_000,
    k: int = 10,
    config: RecommenderConfig | None = None,
    progress: bool = False,
    model_kwargs: dict | None = None,
    rate_per_s: float = 20.0,
) -> dict:
    """Generate ``n_events`` of :class:`models.simulation.TrafficModel` traffic and evaluate."""
    from models.simulation import TrafficModel

    tm = TrafficModel(seed=seed, **(model_kwargs or {}))
    catalog = {v["video_id"]: v for v in tm.videos()}
    res = run_evaluation(tm.events(n_events, rate_per_s=rate_per_s), catalog, k=k, segments=tm.segment,
                         config=config, progress=progress, total=n_events)
    res["source"] = f"simulation seed={seed} n_events={n_events}"
    return res


def evaluate_log(path: str, fmt: str | None = None, mapping: dict | None = None, k: int = 10,
                 config: RecommenderConfig | None = None, progress: bool = False,
                 max_events: int | None = None) -> dict:
    """Read a log (and its catalogue) and evaluate."""
    catalog = read_catalog(path, fmt, mapping)
    events = read_log(path, fmt, mapping)
    if max_events:
        import itertools

        events = itertools.islice(events, max_events)
    res = run_evaluation(events, catalog, k=k, config=config, progress=progress, total=max_events)
    res["source"] = f"{fmt or detect_format(path)} {path}"
    return res
