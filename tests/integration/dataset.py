"""A known mix of valid, duplicate and malformed events with independently computed totals.

The expected totals are computed here from first principles (not with models.counters), so a
bug in the production counting code cannot hide in its own expectation.
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import orjson

BASE_TS = 1_764_748_800_000  # 2025-12-03T08:00:00Z


CPA_RATE = 2.5


@dataclass
class Dataset:
    videos: list[dict] = field(default_factory=list)
    campaigns: list[dict] = field(default_factory=list)
    messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)  # in produce order
    valid: list[dict] = field(default_factory=list)  # distinct valid events
    malformed: dict[bytes, str] = field(default_factory=dict)  # raw value -> expected error code
    duplicates: int = 0

    def expected_counters(self) -> dict[str, dict[str, float]]:
        """``{"video:v1": {"views": 3, ...}, "creator:..": .., "campaign:..": ..}``."""
        totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(int))
        simple = {"impression": "impressions", "like": "likes", "comment": "comments",
                  "share": "shares", "follow": "follows", "dislike": "dislikes"}
        for event in self.valid:
            adds: dict[str, float] = {}
            kind = event["type"]
            if kind in simple:
                adds[simple[kind]] = 1
            elif kind == "view":
                adds["views"] = 1
                adds["watch_ms"] = event["watch_ms"]
                if event["watch_ms"] >= 2000:
                    adds["views_2s"] = 1
                if event.get("duration_ms") and event["watch_ms"] >= event["duration_ms"]:
                    adds["completions"] = 1
            elif kind == "conversion":
                adds["conversions"] = 1
                adds["revenue"] = event["revenue"]
                if event.get("campaign_id"):  # every campaign here is cpa at CPA_RATE
                    adds["spend"] = CPA_RATE
            for scope in ("video", "creator", "campaign"):
                scope_id = event.get(f"{scope}_id")
                if scope_id and adds:
                    for name, value in adds.items():
                        totals[f"{scope}:{scope_id}"][name] += value
        return {key: dict(value) for key, value in totals.items()}

    def expected_reach(self) -> dict[str, int]:
        users: dict[str, set] = defaultdict(set)
        for event in self.valid:
            for scope in ("video", "creator", "campaign"):
                if scope_id := event.get(f"{scope}_id"):
                    users[f"{scope}:{scope_id}"].add(event["user_id"])
        return {key: len(members) for key, members in users.items()}


MALFORMED_KINDS = [
    ("bad_json", lambda i: b'{"event_id": "m%d", "type": "view", ' % i),
    ("not_object", lambda i: orjson.dumps(["m%d" % i, "view"])),
    ("missing_field", lambda i: orjson.dumps({"event_id": f"m{i}", "type": "like", "ts": BASE_TS,
                                              "video_id": "v1"})),
    ("wrong_type", lambda i: orjson.dumps({"event_id": f"m{i}", "type": "view", "ts": BASE_TS,
                                           "user_id": "u1", "video_id": "v1", "watch_ms": "long"})),
    ("unknown_type", lambda i: orjson.dumps({"event_id": f"m{i}", "type": "superlike", "ts": BASE_TS,
                                             "user_id": "u1", "video_id": "v1"})),
    ("invalid_value", lambda i: orjson.dumps({"event_id": f"m{i}", "type": "view", "ts": BASE_TS,
                                              "user_id": "u1", "video_id": "v1", "watch_ms": -i - 1})),
    ("bad_timestamp", lambda i: orjson.dumps({"event_id": f"m{i}", "type": "like", "ts": "yesterday",
                                              "user_id": "u1", "video_id": "v1"})),
    ("oversize", lambda i: orjson.dumps({"event_id": f"m{i}", "type": "comment", "ts": BASE_TS,
                                         "user_id": "u1", "video_id": "v1", "pad": "x" * 70_000})),
]


def build_dataset(n_valid: int = 10_000, dup_share: float = 0.05, bad_share: float = 0.02,
                  seed: int = 11) -> Dataset:
    rng = random.Random(seed)
    data = Dataset()
    videos = [f"v{i}" for i in range(60)]
    creator_of = {v: f"cr{i % 12}" for i, v in enumerate(videos)}
    campaign_of = {v: (f"c{i % 6}" if i % 4 else None) for i, v in enumerate(videos)}
    data.videos = [{"video_id": v, "creator_id": creator_of[v], "campaign_id": campaign_of[v],
                    "tags": ["food" if i % 2 else "travel"], "published_ts": BASE_TS}
                   for i, v in enumerate(videos)]
    data.campaigns = [{"campaign_id": f"c{i}", "name": f"Campaign {i}",
                       "pricing": {"model": "cpa", "rate": CPA_RATE}, "budget": 10_000.0,
                       "currency": "CNY", "start_ts": BASE_TS, "end_ts": BASE_TS + 86_400_000}
                      for i in range(6)]
    kinds = ["impression"] * 40 + ["view"] * 35 + ["like"] * 8 + ["comment"] * 4 + ["share"] * 3 \
        + ["follow"] * 2 + ["dislike"] * 3 + ["conversion"] * 5
    for i in range(n_valid):
        video = videos[min(int(rng.paretovariate(1.1)) - 1, len(videos) - 1)]
        kind = rng.choice(kinds)
        event = {"event_id": f"e-{seed}-{i}", "type": kind, "ts": BASE_TS + i * 37,
                 "user_id": f"u{rng.randrange(500)}", "video_id": video,
                 "creator_id": creator_of[video]}
        if campaign_of[video]:
            event["campaign_id"] = campaign_of[video]
        if kind == "view":
            event["watch_ms"] = rng.choice([0, 500, 1999, 2000, 2500, 8000, 15000])
            if rng.random() < 0.7:
                event["duration_ms"] = 8000
        elif kind == "conversion":
            event["revenue"] = round(rng.uniform(1, 300), 2)
        elif kind == "comment":
            event["text"] = rng.choice(["太棒了", "love it", "meh"])
        if i % 10 == 0:
            event["ts"] = "2025-12-03T08:00:00.500+00:00"  # ISO form, same instant for all
        data.valid.append(event)

    messages = [(e["user_id"].encode(), orjson.dumps(e)) for e in data.valid]
    n_dups = int(n_valid * dup_share)
    for event in rng.sample(data.valid, n_dups):
        # Re-sent by the producer, sometimes unkeyed, later in the stream.
        key = None if rng.random() < 0.3 else event["user_id"].encode()
        position = rng.randrange(len(messages) + 1)
        messages.insert(position, (key, orjson.dumps(event)))
    data.duplicates = n_dups
    n_bad = int(n_valid * bad_share)
    for i in range(n_bad):
        code, make = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        raw = make(i)
        data.malformed[raw] = code
        messages.insert(rng.randrange(len(messages) + 1), (b"bad", raw))
    data.messages = messages
    # ts normalisation for the expectation: ISO strings become epoch ms.
    for event in data.valid:
        if isinstance(event["ts"], str):
            event["ts"] = BASE_TS + 500
    return data
