"""The recommender facade used by the stream wiring and by :mod:`models.evaluation`.

``Recommender.observe(event, video_record)`` learns from one contract event;
``Recommender.recommend(user_id, n, now_ms, user_tags, segment)`` returns
``[(video_id, score, reason), ...]`` best first.  It never scores the whole catalogue: it
gathers a few hundred candidates from

* trending (time-decayed engagement, global top-K),
* per-tag trending top-K for the user's strongest tags (from ``user_tags`` or its own profile),
* co-occurrence neighbours of the user's recent positives,
* popular-in-segment top-K (cold start; the segment comes from the caller),
* a bounded exploration share of new videos (recently published, few engagements),

drops what the user has already viewed or disliked, and ranks them with a weighted blend of
normalised features: trend, segment popularity, content match, co-occurrence and the online
matrix-factorisation logit.  The reason of each item is the feature that contributed most.

>>> rec = Recommender(RecommenderConfig(explore_share=0.0))
>>> for v, tags in [("v1", ["food"]), ("v2", ["food"]), ("v3", ["cars"]), ("v4", ["cars"])]:
...     _ = rec.add_video({"video_id": v, "creator_id": "c", "duration_ms": 10_000, "tags": tags,
...                    "campaign_id": None, "published_ts": 0})
>>> t = 1_000
>>> for u in ["a", "b", "c"]:
...     for v in ["v3", "v4"]:
...         t += 1; _ = rec.observe({"type": "view", "ts": t, "user_id": u, "video_id": v, "watch_ms": 10_000})
>>> t += 1; _ = rec.observe({"type": "view", "ts": t, "user_id": "d", "video_id": "v2", "watch_ms": 10_000})
>>> t += 1; _ = rec.observe({"type": "view", "ts": t, "user_id": "me", "video_id": "v1", "watch_ms": 10_000})
>>> recs = rec.recommend("me", n=3)
>>> recs[0][0], recs[0][2]
('v2', 'matches your interest in #food')
>>> sorted((v, r) for v, _, r in recs[1:])
[('v3', 'trending now'), ('v4', 'trending now')]
"""

from __future__ import annotations

import math
import pickle
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field

import numpy as np

from .content import content_score, normalise_interests
from .cooc import CoOccurrence
from .mf import OnlineMF
from .popularity import DecayedPopularity
from .target import IMPRESSION_TARGET, POSITIVE_THRESHOLD, implicit_target

FEATURES = ("trend", "segment", "content", "cooc", "mf")
# log-linear blend: feature = log(x + floor) - log(floor), x normalised to [0, 1] (content up to ~1.7)
_FLOOR = {"trend": 1e-3, "segment": 0.02, "content": 0.1, "cooc": 0.05}


@dataclass
class RecommenderConfig:
    # online matrix factorisation
    n_factors: int = 32
    lr: float = 0.05
    reg: float = 0.002
    n_negatives: int = 4
    negative_buffer: int = 2000
    seed: int = 0
    # popularity priors
    trend_half_life_s: float = 6 * 3600
    segment_half_life_s: float = 24 * 3600
    max_segments: int = 512
    # co-occurrence
    cooc_max_neighbours: int = 100
    recent_positives: int = 20
    cooc_query_items: int = 10
    cooc_k: int = 30
    # candidate generation
    trending_k: int = 100
    tag_k: int = 30
    top_tags: int = 5
    segment_k: int = 50
    # exploration of new videos
    explore_share: float = 0.1
    explore_window_s: float = 24 * 3600
    explore_max_events: int = 20
    explore_pool: int = 500
    # per-user bounds
    max_seen: int = 2000
    max_users: int = 500_000
    max_items: int = 1_000_000
    user_tags_max: int = 32
    user_tag_decay: float = 0.98
    # a personal signal is named as the reason when its contribution is at least this
    reason_min_boost: float = 0.5
    # blend weights (feature -> weight) of the log-linear blend
    weights: dict = field(
        default_factory=lambda: {"trend": 1.0, "segment": 0.5, "content": 1.5, "cooc": 1.5, "mf": 0.2}
    )


class _User:
    __slots__ = ("seen", "disliked", "recent", "tags", "pending", "segment", "last_ts")

    def __init__(self):
        self.seen: OrderedDict[int, None] = OrderedDict()
        self.disliked: set[int] = set()
        self.recent: list[int] = []
        self.tags: dict[str, float] = {}
        self.pending: int | None = None
        self.segment: str | None = None
        self.last_ts: int = 0


def _norm_by_max(a: np.ndarray) -> np.ndarray:
    m = float(a.max()) if len(a) else 0.0
    return a / m if m > 0 else a


class Recommender:
    """Online recommender: learn with :meth:`observe`, serve with :meth:`recommend`."""

    def __init__(self, config: RecommenderConfig | None = None, **overrides):
        cfg = config or RecommenderConfig()
        if overrides:
            cfg = RecommenderConfig(**{**asdict(cfg), **overrides})
        self.config = cfg
        self._init_items()
        self.users: OrderedDict[str, _User] = OrderedDict()
        self.clock_ms = 0
        self.dropped_items = 0

    def _init_items(self) -> None:
        cfg = self.config
        self.ids: list[str] = []
        self.idx: dict[str, int] = {}
        self.tags: list[tuple] = []
        self.duration: list[int | None] = []
        self.published: list[int | None] = []
        self.events = np.zeros(64, dtype=np.int64)  # non-impression events per item
        self.impressions = np.zeros(64, dtype=np.int64)
        self.tag_items: dict[str, list[int]] = {}
        self._tag_arrays: dict[str, np.ndarray] = {}
        self.mf = OnlineMF(cfg.n_factors, cfg.lr, cfg.reg, seed=cfg.seed)
        self.trend = DecayedPopularity(cfg.trend_half_life_s)
        self.segments: OrderedDict[str, DecayedPopularity] = OrderedDict()
        self.cooc = CoOccurrence(cfg.cooc_max_neighbours)
        self.neg_ring = np.full(cfg.negative_buffer, -1, dtype=np.int64)
        self.neg_pos = 0
        self.rng = np.random.default_rng(cfg.seed)
        self.fresh: deque[int] = deque(maxlen=cfg.explore_pool)

    # ------------------------------------------------------------------ catalogue
    def add_video(self, record: dict) -> int | None:
        """Add or update a catalogue record; returns the internal index (None when full)."""
        vid = str(record["video_id"])
        tags = tuple(dict.fromkeys(str(t) for t in (record.get("tags") or ())))
        i = self.idx.get(vid)
        if i is None:
            if len(self.ids) >= self.config.max_items:
                self.dropped_items += 1
                return None
            i = len(self.ids)
            self.ids.append(vid)
            self.idx[vid] = i
            self.tags.append(())
            self.duration.append(None)
            self.published.append(None)
            if i >= len(self.events):
                self.events = np.concatenate([self.events, np.zeros(len(self.events), np.int64)])
                self.impressions = np.concatenate([self.impressions, np.zeros(len(self.impressions), np.int64)])
            self.mf.ensure_item(i)
            self.trend.add(i, 0.0, 0)
        if tags != self.tags[i]:
            for t in self.tags[i]:
                if t in self.tag_items:
                    self.tag_items[t] = [j for j in self.tag_items[t] if j != i]
                    self._tag_arrays.pop(t, None)
            for t in tags:
                self.tag_items.setdefault(t, []).append(i)
                self._tag_arrays.pop(t, None)
            self.tags[i] = tags
        if record.get("duration_ms"):
            self.duration[i] = int(record["duration_ms"])
        pub = record.get("published_ts")
        if pub is not None and pub != self.published[i]:
            self.published[i] = int(pub)
            self.fresh.append(i)
        return i

    def _item(self, vid: str, record: dict | None) -> int | None:
        i = self.idx.get(vid)
        if record is not None and (i is None or record.get("tags") is not None and tuple(record.get("tags")) != self.tags[i]):
            return self.add_video(record)
        if i is None:
            return self.add_video({"video_id": vid})
        return i

    # ------------------------------------------------------------------ users
    def _user(self, uid: str) -> _User:
        u = self.users.get(uid)
        if u is None:
            u = self.users[uid] = _User()
            while len(self.users) > self.config.max_users:
                old, _ = self.users.popitem(last=False)
                self.mf.forget_user(old)
        else:
            self.users.move_to_end(uid)
        return u

    def forget_user(self, user_id: str) -> None:
        """Erase every per-user trace (privacy request). Item-side aggregates are kept."""
        self.users.pop(user_id, None)
        self.mf.forget_user(user_id)

    # ------------------------------------------------------------------ learning
    def _negatives(self) -> list[int]:
        k = self.config.n_negatives
        if k <= 0 or self.neg_ring[0] < 0:
            return []
        filled = len(self.neg_ring) if self.neg_ring[-1] >= 0 else self.neg_pos
        return [int(self.neg_ring[j]) for j in self.rng.integers(0, filled, k)]

    def observe(self, event: dict, video_record: dict | None = None, segment: str | None = None) -> float | None:
        """Learn from one contract event; returns its implicit target (None if ignored)."""
        etype = event.get("type")
        uid = event.get("user_id")
        if etype == "erase":
            if uid is not None:
                self.forget_user(str(uid))
            return None
        vid = event.get("video_id")
        if uid is None or vid is None:
            return None
        uid, vid = str(uid), str(vid)
        i = self._item(vid, video_record)
        if i is None:
            return None
        ts = int(event.get("ts") or self.clock_ms)
        if ts > self.clock_ms:
            self.clock_ms = ts
        u = self._user(uid)
        u.last_ts = ts
        if segment:
            u.segment = segment
        # an impression that was not followed by a view of the same video is a weak negative
        if u.pending is not None and u.pending != i:
            self.mf.learn(uid, u.pending, IMPRESSION_TARGET)
            u.pending = None
        if etype == "impression":
            u.pending = i
            self.impressions[i] += 1
            return IMPRESSION_TARGET
        if u.pending == i:
            u.pending = None
        target = implicit_target(event, self.duration[i])
        self.events[i] += 1
        if i in u.seen:
            u.seen.move_to_end(i)
        else:
            u.seen[i] = None
            if len(u.seen) > self.config.max_seen:
                u.seen.popitem(last=False)
        if etype == "dislike":
            u.disliked.add(i)
            if len(u.disliked) > self.config.max_seen:
                u.disliked.pop()
        if target:
            self.mf.learn(uid, i, target, self._negatives() if target > 0 else ())
            tags = self.tags[i]
            if tags:
                d = self.config.user_tag_decay
                ut = u.tags
                for t in ut:
                    ut[t] *= d
                for t in tags:
                    ut[t] = ut.get(t, 0.0) + target
                if len(ut) > self.config.user_tags_max:
                    for t, _ in sorted(ut.items(), key=lambda kv: abs(kv[1]))[: len(ut) - self.config.user_tags_max]:
                        del ut[t]
        if target > 0:
            self.trend.add(i, target, ts)
            seg = u.segment
            if seg:
                sp = self.segments.get(seg)
                if sp is None:
                    sp = self.segments[seg] = DecayedPopularity(self.config.segment_half_life_s)
                    while len(self.segments) > self.config.max_segments:
                        self.segments.popitem(last=False)
                sp.add(i, target, ts)
        if target >= POSITIVE_THRESHOLD and i not in u.recent:
            self.cooc.add(u.recent, i)
            u.recent.append(i)
            if len(u.recent) > self.config.recent_positives:
                del u.recent[0]
            self.neg_ring[self.neg_pos] = i
            self.neg_pos = (self.neg_pos + 1) % len(self.neg_ring)
        return target

    # ------------------------------------------------------------------ serving
    def _tag_array(self, tag: str) -> np.ndarray:
        a = self._tag_arrays.get(tag)
        if a is None:
            a = self._tag_arrays[tag] = np.asarray(self.tag_items.get(tag, ()), dtype=np.int64)
        return a

    def recommend(
        self,
        user_id: str,
        n: int = 20,
        now_ms: int | None = None,
        user_tags=None,
        segment: str | None = None,
        exclude=None,
    ) -> list[tuple[str, float, str]]:
        """Top-``n`` ``(video_id, score, reason)`` for ``user_id``, best first.

        ``user_tags`` (``{tag: weight}`` or ``[(tag, weight)]``) overrides the recommender's own
        tag profile of the user; ``segment`` overrides the last segment seen in ``observe``;
        ``exclude`` is an extra iterable of video ids never to return.  Videos the user viewed
        or disliked and videos published after ``now_ms`` are never returned.
        """
        cfg = self.config
        now = int(now_ms) if now_ms is not None else self.clock_ms
        u = self.users.get(str(user_id))
        excl: set[int] = set()
        if u is not None:
            excl.update(u.seen)
            excl.update(u.disliked)
        if exclude:
            for v in exclude:
                j = self.idx.get(v)
                if j is not None:
                    excl.add(j)
        n_ex = len(excl)
        interests = normalise_interests(user_tags) if user_tags else normalise_interests(u.tags if u else None)
        seg = segment or (u.segment if u else None)

        cands: dict[int, None] = {}
        for j in self.trend.top(cfg.trending_k + n_ex).tolist():
            cands[j] = None
        if interests:
            for t, _ in sorted(interests.items(), key=lambda kv: -kv[1])[: cfg.top_tags]:
                arr = self._tag_array(t)
                if len(arr):
                    for j in self.trend.top(cfg.tag_k + n_ex, among=arr, keep_zero=True).tolist():
                        cands[j] = None
        cooc_score: dict[int, float] = {}
        cooc_src: dict[int, tuple[float, int]] = {}
        if u is not None and u.recent:
            recent = u.recent[-cfg.cooc_query_items :]
            m = len(recent)
            for pos, j in enumerate(recent):
                rw = 1.0 / math.sqrt(m - pos)
                cj = self.cooc.counts.get(j, 1.0)
                for c, w in self.cooc.neighbours(j, cfg.cooc_k):
                    s = rw * w / math.sqrt(cj * self.cooc.counts.get(c, 1.0))
                    cooc_score[c] = cooc_score.get(c, 0.0) + s
                    if s > cooc_src.get(c, (0.0, -1))[0]:
                        cooc_src[c] = (s, j)
                    cands[c] = None
        segpop = self.segments.get(seg) if seg else None
        if segpop is not None:
            for j in segpop.top(cfg.segment_k + n_ex).tolist():
                cands[j] = None

        pub = self.published
        idxs = [j for j in cands if j not in excl and (pub[j] is None or pub[j] <= now)]
        out: list[tuple[str, float, str]] = []
        if idxs:
            arr = np.asarray(idxs, dtype=np.int64)
            feats = {}
            top1 = self.trend.top(1)
            tmax = float(self.trend.scores[top1[0]]) if len(top1) else 0.0
            tr = self.trend.scores[arr] / tmax if tmax > 0 else np.zeros(len(arr))
            feats["trend"] = np.log(tr + _FLOOR["trend"]) - math.log(_FLOOR["trend"])
            sc = np.zeros(len(arr))
            if segpop is not None:
                s1 = segpop.top(1)
                smax = float(segpop.scores[s1[0]]) if len(s1) else 0.0
                ok = arr < segpop.size
                if smax > 0:
                    sc[ok] = segpop.scores[arr[ok]] / smax
            feats["segment"] = np.log(sc + _FLOOR["segment"]) - math.log(_FLOOR["segment"])
            best_tag: list[str | None] = [None] * len(arr)
            cs = np.zeros(len(arr))
            if interests:
                for k, j in enumerate(idxs):
                    cs[k], best_tag[k] = content_score(interests, self.tags[j])
            feats["content"] = np.log(cs + _FLOOR["content"]) - math.log(_FLOOR["content"])
            co = _norm_by_max(np.array([cooc_score.get(j, 0.0) for j in idxs]))
            feats["cooc"] = np.log(co + _FLOOR["cooc"]) - math.log(_FLOOR["cooc"])
            if u is not None and self.mf.user_vector(str(user_id)) is not None:
                logit = self.mf.score(str(user_id), arr)
                feats["mf"] = logit - float(logit.min())
            else:
                feats["mf"] = np.zeros(len(arr))
            w = cfg.weights
            contrib = np.vstack([w.get(f, 0.0) * feats[f] for f in FEATURES])
            total = contrib.sum(axis=0)
            order = np.argsort(-total, kind="stable")[:n]
            # the reason is the strongest personal signal when it is clearly there, else trend
            personal = contrib[1:]
            why = personal.argmax(axis=0) + 1
            for k in order.tolist():
                j = idxs[k]
                f = FEATURES[why[k]] if personal[why[k] - 1, k] >= cfg.reason_min_boost else "trend"
                out.append((self.ids[j], float(total[k]), self._reason(f, best_tag[k], cooc_src.get(j))))

        n_explore = int(n * cfg.explore_share)
        if n_explore > 0:
            chosen = set(v for v, _, _ in out)
            fresh = self._explore(now, excl, chosen, interests, n_explore)
            if fresh:
                keep = max(0, min(len(out), n - len(fresh)))
                floor = out[keep - 1][1] if keep else 0.0
                out = out[:keep] + [(v, floor, "new video, exploring") for v in fresh]
        return out[:n]

    def _explore(self, now: int, excl: set, chosen: set, interests: dict, k: int) -> list[str]:
        cfg = self.config
        window = cfg.explore_window_s * 1000
        pool = []
        for j in self.fresh:
            p = self.published[j]
            if p is None or p > now or now - p > window or j in excl or self.events[j] >= cfg.explore_max_events:
                continue
            if self.ids[j] in chosen:
                continue
            cs, _ = content_score(interests, self.tags[j]) if interests else (0.0, None)
            pool.append((-cs, int(self.events[j] + self.impressions[j]), -p, j))
        pool = sorted(set(pool))[:k]
        return [self.ids[j] for *_, j in pool]

    def _reason(self, feature: str, tag: str | None, src) -> str:
        if feature == "content" and tag:
            return f"matches your interest in #{tag}"
        if feature == "cooc" and src:
            return f"people who finished {self.ids[src[1]]} also finished this"
        if feature == "segment":
            return "popular in your segment"
        if feature == "mf":
            return "viewers with similar taste liked this"
        return "trending now"

    # ------------------------------------------------------------------ state
    def user_state(self, user_id: str) -> dict | None:
        """JSON-serialisable per-user state (video ids, not internal indices)."""
        u = self.users.get(user_id)
        if u is None:
            return None
        ids = self.ids
        return {
            "seen": [ids[j] for j in u.seen],
            "disliked": [ids[j] for j in u.disliked],
            "recent": [ids[j] for j in u.recent],
            "tags": dict(u.tags),
            "pending": ids[u.pending] if u.pending is not None else None,
            "segment": u.segment,
            "last_ts": u.last_ts,
            "mf": self.mf.user_state(user_id),
        }

    def load_user_state(self, user_id: str, state: dict | None) -> None:
        if state is None:
            self.forget_user(user_id)
            return
        u = self._user(user_id)
        ix = lambda v: self._item(v, None)  # noqa: E731
        u.seen = OrderedDict((ix(v), None) for v in state.get("seen", ()))
        u.disliked = {ix(v) for v in state.get("disliked", ())}
        u.recent = [ix(v) for v in state.get("recent", ())]
        u.tags = dict(state.get("tags") or {})
        u.pending = ix(state["pending"]) if state.get("pending") else None
        u.segment = state.get("segment")
        u.last_ts = int(state.get("last_ts") or 0)
        self.mf.load_user_state(user_id, state.get("mf"))

    def item_state(self) -> dict:
        """JSON-serialisable item-side state (catalogue, factors, popularity, co-occurrence)."""
        n = len(self.ids)
        ids = self.ids
        return {
            "ids": list(ids),
            "tags": [list(t) for t in self.tags],
            "duration": list(self.duration),
            "published": list(self.published),
            "events": self.events[:n].tolist(),
            "impressions": self.impressions[:n].tolist(),
            "Y": self.mf.Y[:n].tolist(),
            "b": self.mf.b[:n].tolist(),
            "item_n": self.mf.item_n[:n].tolist(),
            "trend": {"landmark_ms": self.trend.landmark_ms, "scores": self.trend.scores[: self.trend.size].tolist()},
            "segments": {
                s: {"landmark_ms": p.landmark_ms, "scores": p.scores[: p.size].tolist()} for s, p in self.segments.items()
            },
            "cooc": {ids[a]: {ids[b]: w for b, w in d.items()} for a, d in self.cooc.links.items()},
            "cooc_counts": {ids[a]: c for a, c in self.cooc.counts.items()},
        }

    def load_item_state(self, state: dict, merge: bool = False) -> None:
        """Load item-side state from :meth:`item_state`.

        ``merge=False`` replaces this worker's item side.  ``merge=True`` folds another worker's
        state in: factors are averaged weighted by their update counts; popularity, counts and
        co-occurrence take the element-wise maximum (idempotent, so repeated syncs never double
        count, at the price of under-counting traffic split across workers).
        """
        if not merge:
            users = self.users
            self._init_items()
            self.users = users
        mapping = []
        for k, vid in enumerate(state["ids"]):
            i = self.add_video(
                {"video_id": vid, "tags": state["tags"][k], "duration_ms": state["duration"][k],
                 "published_ts": state["published"][k]}
            )
            mapping.append(-1 if i is None else i)
        m = np.asarray(mapping, dtype=np.int64)
        ok = m >= 0
        mi = m[ok]
        Y = np.asarray(state["Y"], dtype=np.float32).reshape(-1, self.mf.k)[ok]
        b = np.asarray(state["b"], dtype=np.float32)[ok]
        nn = np.asarray(state["item_n"], dtype=np.float32)[ok]
        if merge:
            n0 = self.mf.item_n[mi]
            tot = np.maximum(n0 + nn, 1e-9)
            self.mf.Y[mi] = (self.mf.Y[mi] * n0[:, None] + Y * nn[:, None]) / tot[:, None]
            self.mf.b[mi] = (self.mf.b[mi] * n0 + b * nn) / tot
            self.mf.item_n[mi] = np.maximum(n0, nn)
            self.events[mi] = np.maximum(self.events[mi], np.asarray(state["events"])[ok])
            self.impressions[mi] = np.maximum(self.impressions[mi], np.asarray(state["impressions"])[ok])
        else:
            self.mf.Y[mi], self.mf.b[mi], self.mf.item_n[mi] = Y, b, nn
            self.events[mi] = np.asarray(state["events"])[ok]
            self.impressions[mi] = np.asarray(state["impressions"])[ok]

        def fold(pop: DecayedPopularity, st: dict) -> None:
            sc = np.asarray(st["scores"], dtype=np.float64)
            src = DecayedPopularity(pop.half_life_s)
            src.landmark_ms = st["landmark_ms"]
            if pop.landmark_ms is None:
                pop.landmark_ms = st["landmark_ms"]
            src.scores, src.size = sc, len(sc)
            sc = src.rebased(pop.landmark_ms)
            sel = np.arange(len(sc)) < len(m)
            for k in np.nonzero(sel & (sc > 0))[0].tolist():
                j = m[k]
                if j >= 0:
                    pop._grow(j)
                    pop.scores[j] = max(pop.scores[j], sc[k])

        fold(self.trend, state["trend"])
        for s, st in state.get("segments", {}).items():
            sp = self.segments.get(s)
            if sp is None:
                sp = self.segments[s] = DecayedPopularity(self.config.segment_half_life_s)
            fold(sp, st)
        idx = self.idx
        for a, d in state.get("cooc", {}).items():
            ia = idx.get(a)
            if ia is None:
                continue
            cur = self.cooc.links.setdefault(ia, {})
            for bv, w in d.items():
                ib = idx.get(bv)
                if ib is not None and w > cur.get(ib, 0.0):
                    cur[ib] = w
        for a, c in state.get("cooc_counts", {}).items():
            ia = idx.get(a)
            if ia is not None:
                self.cooc.counts[ia] = max(self.cooc.counts.get(ia, 0.0), c)

    def dumps(self) -> bytes:
        """Checkpoint of all state (bounded by ``max_users``/``max_items``/``max_seen``)."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def loads(cls, data: bytes) -> "Recommender":
        obj = pickle.loads(data)
        if not isinstance(obj, cls):
            raise TypeError("not a Recommender checkpoint")
        return obj

    def __getstate__(self):
        d = self.__dict__.copy()
        d["users"] = OrderedDict(
            (k, {s: getattr(u, s) for s in _User.__slots__}) for k, u in self.users.items()
        )
        d["config"] = asdict(self.config)
        return d

    def __setstate__(self, d):
        users = OrderedDict()
        for k, st in d["users"].items():
            u = _User()
            for s, v in st.items():
                setattr(u, s, v)
            users[k] = u
        d["users"] = users
        d["config"] = RecommenderConfig(**d["config"])
        self.__dict__.update(d)
