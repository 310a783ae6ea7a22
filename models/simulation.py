"""Seeded synthetic short-video traffic with a known ground truth.

Used by the live simulator (produce the events into Kafka) and by the evaluation, because the
hidden tastes are known.  The world:

* ``n_videos`` videos with 1-3 tags (biased to their creator's favourite tags), a duration of
  5-120 s and a Zipf-like *base popularity* (exponent ``zipf_s``, default 1.1: the top 1% of
  videos draw a large share of the traffic, as in real feeds).  About half belong to a campaign.
  A share ``fresh_share`` of the videos are published *during* the stream (``horizon_s``) and get
  a freshness boost that decays with a half-life of ``fresh_half_life_s``: a trend to catch.
* ``n_users`` users with age band, gender and region.  Each user has hidden tag preferences
  (:meth:`TrafficModel.taste`): 2-3 favourite tags, drawn mostly from a prior that depends on
  the (age band, gender) segment, plus a small background interest in every tag.
* Traffic comes in sessions of one user (activity is Zipf-skewed too).  Each feed slot shows a
  video the user has not watched, drawn by popularity x (``taste_mix`` of affinity): an
  ``impression``; then a ``view`` with probability growing with affinity and popularity, watched
  for a ratio driven by affinity (completions for loved tags, swipes for disliked ones); then
  likes, comments (short English or Chinese texts), shares, follows, conversions (with revenue,
  campaign videos only) and dislikes, all driven by affinity.

Deterministic for a seed: the same arguments give the same catalogue and the same events.

>>> m = TrafficModel(seed=3, n_users=50, n_videos=40, n_creators=5, n_campaigns=3)
>>> ev = list(m.events(200))
>>> len(ev), ev[0]["type"], ev[0]["event_id"]
(200, 'impression', 'e-1')
>>> ev == list(TrafficModel(seed=3, n_users=50, n_videos=40, n_creators=5, n_campaigns=3).events(200))
True
>>> sorted({c["pricing"]["model"] for c in m.campaigns()})
['cpa', 'cpm', 'cpv']
"""

from __future__ import annotations

import math
import random
from typing import Iterator

import numpy as np

DEFAULT_TAGS = (
    "food", "travel", "beauty", "gaming", "fitness", "music", "dance", "comedy", "pets", "fashion",
    "tech", "cars", "education", "sports", "diy", "parenting", "finance", "movies", "art", "outdoors",
)
AGE_BANDS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55+")
GENDERS = ("f", "m", "x")
REGIONS = ("north", "south", "east", "west", "central")
COMMENTS_POS = (
    "love this!", "so good", "need to try this", "amazing", "haha this is great", "where is this?",
    "太棒了", "好看", "学到了", "哈哈哈笑死", "求链接", "收藏了",
)
COMMENTS_NEG = ("meh", "not for me", "boring", "无聊", "不喜欢")
DAY_MS = 86_400_000


class TrafficModel:
    def __init__(
        self,
        seed: int = 7,
        n_users: int = 2000,
        n_videos: int = 500,
        n_creators: int = 60,
        n_campaigns: int = 12,
        tags=DEFAULT_TAGS,
        start_ts: int = 1_764_748_800_000,
        zipf_s: float = 1.1,
        taste_mix: float = 0.5,
        fresh_share: float = 0.2,
        horizon_s: float = 6 * 3600,
        fresh_half_life_s: float = 3600,
        user_zipf_s: float = 0.6,
    ):
        self.seed = seed
        self.tags = tuple(tags)
        self.start_ts = int(start_ts)
        self.zipf_s = zipf_s
        self.taste_mix = taste_mix
        self.horizon_ms = int(horizon_s * 1000)
        self.fresh_tau_ms = fresh_half_life_s * 1000 / math.log(2)
        rng = np.random.default_rng(seed)
        T = len(self.tags)

        # segments: each (age band, gender) prefers a few tags
        self._seg_prior = {}
        for a in AGE_BANDS:
            for g in GENDERS:
                w = rng.gamma(0.4, 1.0, T) + 0.02
                self._seg_prior[(a, g)] = w / w.sum()

        # creators with favourite tags
        creator_tags = [rng.choice(T, size=3, replace=False) for _ in range(n_creators)]

        # campaigns
        self._campaigns = []
        models = ("cpm", "cpv", "cpa")
        for c in range(n_campaigns):
            model = models[c % 3]
            rate = {"cpm": round(float(rng.uniform(4, 20)), 2), "cpv": round(float(rng.uniform(0.01, 0.05)), 3),
                    "cpa": round(float(rng.uniform(2, 15)), 2)}[model]
            budget = round(float(rng.uniform(500, 20_000)), 2)
            self._campaigns.append({
                "campaign_id": f"c{c}",
                "name": f"Campaign {c} ({self.tags[c % T]})",
                "pricing": {"model": model, "rate": rate},
                "budget": budget,
                "currency": "USD",
                "start_ts": self.start_ts - int(rng.integers(0, 2)) * DAY_MS,
                "end_ts": self.start_ts + int(rng.integers(1, 8)) * DAY_MS,
                "target": {"roas": round(float(rng.uniform(1.0, 3.0)), 2), "cpa": round(float(rng.uniform(5, 40)), 2)},
                "baseline_revenue_per_hour": round(float(rng.uniform(20, 400)), 2),
                "target_segments": [f"{AGE_BANDS[int(rng.integers(len(AGE_BANDS)))]}"],
            })

        # videos
        ranks = rng.permutation(n_videos)
        self._base_pop = 1.0 / (ranks + 1.0) ** zipf_s
        self._videos = []
        self._vtags = []
        self._published = np.zeros(n_videos, dtype=np.int64)
        for v in range(n_videos):
            cr = int(rng.integers(n_creators))
            k = int(rng.integers(1, 4))
            pool = list(creator_tags[cr])
            vt = []
            for _ in range(k):
                t = int(pool.pop(int(rng.integers(len(pool))))) if (pool and rng.random() < 0.7) else int(rng.integers(T))
                if t not in vt:
                    vt.append(t)
            fresh = rng.random() < fresh_share
            pub = (self.start_ts + int(rng.uniform(0, self.horizon_ms)) if fresh
                   else self.start_ts - int(rng.uniform(0.05, 30) * DAY_MS))
            self._published[v] = pub
            camp = f"c{int(rng.integers(n_campaigns))}" if (n_campaigns and rng.random() < 0.5) else None
            self._vtags.append(vt)
            self._videos.append({
                "video_id": f"v{v}",
                "creator_id": f"cr{cr}",
                "duration_ms": int(rng.integers(5, 121)) * 1000,
                "tags": [self.tags[t] for t in vt],
                "campaign_id": camp,
                "published_ts": pub,
            })
        self._fresh = self._published > self.start_ts

        # users with hidden tastes
        self._users = []
        self._taste = np.zeros((n_users, T))
        for u in range(n_users):
            a = AGE_BANDS[int(rng.integers(len(AGE_BANDS)))]
            g = GENDERS[int(rng.choice(3, p=[0.48, 0.48, 0.04]))]
            r = REGIONS[int(rng.integers(len(REGIONS)))]
            prior = self._seg_prior[(a, g)]
            n_fav = int(rng.integers(2, 4))
            favs = set()
            while len(favs) < n_fav:
                favs.add(int(rng.choice(T, p=prior)) if rng.random() < 0.7 else int(rng.integers(T)))
            taste = rng.uniform(0.0, 0.08, T)
            for f in favs:
                taste[f] = rng.uniform(0.6, 1.0)
            self._taste[u] = taste
            self._users.append({"user_id": f"u{u}", "age_band": a, "gender": g, "region": r,
                                "signup_ts": self.start_ts - int(rng.integers(1, 700)) * DAY_MS})
        act = 1.0 / (rng.permutation(n_users) + 1.0) ** user_zipf_s
        self._activity = act / act.sum()
        # affinity user x video = max taste over the video's tags, with a bonus for several matches
        M = np.zeros((n_videos, T))
        for v, vt in enumerate(self._vtags):
            M[v, vt] = 1.0
        tv = self._taste[:, None, :] * M[None, :, :]
        self._aff = np.clip(tv.max(axis=2) + 0.15 * (tv.sum(axis=2) - tv.max(axis=2)), 0.0, 1.0)

    # ------------------------------------------------------------------ catalogue
    def videos(self) -> list[dict]:
        return [dict(v, tags=list(v["tags"])) for v in self._videos]

    def campaigns(self) -> list[dict]:
        return [dict(c) for c in self._campaigns]

    def users(self) -> list[dict]:
        return [dict(u) for u in self._users]

    def segment(self, user_id: str) -> str:
        u = self._users[int(user_id[1:])]
        return f"{u['age_band']}|{u['gender']}"

    def taste(self, user_id: str) -> dict[str, float]:
        """Hidden ground-truth tag preferences of a user, in [0, 1]."""
        row = self._taste[int(user_id[1:])]
        return {t: round(float(row[k]), 4) for k, t in enumerate(self.tags)}

    def affinity(self, user_id: str, video_id: str) -> float:
        return float(self._aff[int(user_id[1:]), int(video_id[1:])])

    def popularity(self, ts: int) -> np.ndarray:
        """Effective popularity at time ``ts`` (base x freshness boost, 0 before publication)."""
        age = ts - self._published
        boost = np.where(self._fresh, 1.0 + 4.0 * np.exp(-np.maximum(age, 0) / self.fresh_tau_ms), 1.0)
        return np.where(age >= 0, self._base_pop * boost, 0.0)

    # ------------------------------------------------------------------ traffic
    def events(self, n: int | None = None, start_ts: int | None = None, rate_per_s: float = 20.0) -> Iterator[dict]:
        """Yield contract events in sessions; ``n=None`` streams forever.

        ``ts`` advances by ``1000 / rate_per_s`` ms per event from ``start_ts`` (default the
        model's ``start_ts``).
        """
        rnd = random.Random(self.seed * 1_000_003 + 17)
        rng = np.random.default_rng(self.seed + 101)
        t0 = self.start_ts if start_ts is None else int(start_ts)
        step = 1000.0 / rate_per_s
        count = 0
        seen: dict[int, set] = {}
        n_users = len(self._users)
        pop_cache_ts = None
        pop = None
        idle = 0
        while n is None or count < n:
            u = int(rng.choice(n_users, p=self._activity))
            useen = seen.setdefault(u, set())
            session_len = rnd.randint(3, 12)
            for _ in range(session_len):
                ts = t0 + int(count * step)
                if pop_cache_ts is None or ts - pop_cache_ts > 60_000:
                    # popularity follows the model's clock (publication times are absolute)
                    pop = self.popularity(self.start_ts + (ts - t0))
                    pop_cache_ts = ts
                w = pop * ((1 - self.taste_mix) + self.taste_mix * self._aff[u])
                if useen:
                    w = w.copy()
                    w[list(useen)] = 0.0
                tot = w.sum()
                if tot <= 0:
                    idle += 1
                    if idle > 10 * n_users:
                        return  # every user has watched everything published
                    break
                idle = 0
                v = int(rng.choice(len(w), p=w / tot))
                for ev in self._engage(u, v, rnd):
                    count += 1
                    ev["event_id"] = f"e-{count}"
                    ev["ts"] = t0 + int((count - 1) * step)
                    yield ev
                    if n is not None and count >= n:
                        return
                useen.add(v)

    def _engage(self, u: int, v: int, rnd: random.Random) -> list[dict]:
        video = self._videos[v]
        a = float(self._aff[u, v])
        p_rel = float(self._base_pop[v] / self._base_pop.max())
        base = {"user_id": f"u{u}", "video_id": video["video_id"], "campaign_id": video["campaign_id"],
                "creator_id": video["creator_id"], "text": None}
        out = [dict(base, type="impression")]
        if rnd.random() >= min(0.95, 0.15 + 0.7 * a + 0.2 * p_rel ** 0.3):
            if a < 0.1 and rnd.random() < 0.05:
                out.append(dict(base, type="dislike"))
            return out
        d = video["duration_ms"]
        ratio = min(1.0, max(0.02, rnd.gauss(0.15 + 0.9 * a, 0.2)))
        out.append(dict(base, type="view", watch_ms=int(ratio * d), duration_ms=d))
        if rnd.random() < 0.02 + 0.35 * a * ratio:
            out.append(dict(base, type="like"))
        if rnd.random() < 0.01 + 0.08 * a:
            txt = rnd.choice(COMMENTS_POS if a >= 0.3 else COMMENTS_NEG)
            out.append(dict(base, type="comment", text=txt))
        if rnd.random() < 0.005 + 0.06 * a * ratio:
            out.append(dict(base, type="share"))
        if rnd.random() < 0.002 + 0.03 * a:
            out.append(dict(base, type="follow"))
        if a < 0.1 and ratio < 0.3 and rnd.random() < 0.15:
            out.append(dict(base, type="dislike"))
        if video["campaign_id"] and rnd.random() < 0.003 + 0.04 * a * ratio:
            rev = round(math.exp(rnd.gauss(3.0, 0.8)), 2)
            out.append(dict(base, type="conversion", revenue=rev, order_id=f"o-{u}-{v}"))
        return out
