"""A live-ROI scenario and its expected Redis state, recomputed from first principles.

The scenario (:func:`build_scenario`) is a seeded, deterministic stream over >= 20 campaigns
using the three pricing models, produced in *phases*:

* normal phases: event times advance phase after phase, shuffled out of order within the
  10-minute grace; some events arrive before their video's or campaign's catalog record
  (those records are produced only after the phase's events are consumed), some carry their
  own campaign_id / creator_id / duration_ms, some use ISO-8601 timestamps; duplicates
  (same event_id re-sent, keyed or not) go anywhere later in the stream;
* a final phase, produced once everything before it is applied (so the watermark is known),
  mixing normal events with late ones (about 3 h older than the newest event time) and
  re-sent copies of old events (duplicates: counted neither as late nor at all).

:func:`expected_state` follows ``docs/live-roi.md`` and ``CONTRACT.md`` only: it does not
import ``models.counters``, ``models.metrics``, ``models.attribution`` or ``stream_app`` so a bug
there cannot hide in its own expectation. Money is summed exactly (``fractions.Fraction``).

Lateness is decided per phase from the watermark bounds alone: during phase k the worker's
watermark lies between ``lo`` (newest event time of the phases before) and ``hi`` (newest up to
the end of phase k). An event is late iff ``ts < lo - grace``; the builder refuses to produce
an event with ``lo - grace <= ts < hi - grace`` (its lateness would depend on batching).
"""
from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import orjson

BASE_TS = 1_764_748_800_000  # 2025-12-03T08:00:00Z
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
GRACE_MS = 600_000  # SV_LATE_GRACE_MS default
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

INT_COUNTERS = ("impressions", "views", "views_2s", "completions", "watch_ms", "likes", "comments",
                "shares", "follows", "dislikes", "conversions")
MONEY_COUNTERS = ("revenue", "spend")
COUNTERS = INT_COUNTERS + MONEY_COUNTERS
DERIVED = ("play_rate", "completion_rate", "avg_watch_ms", "engagement_rate", "cvr", "cpm", "cpa",
           "roas", "roi", "lift", "budget_pace")

N_CAMPAIGNS = 24
N_VIDEOS = 160
N_USERS = 6000


# --------------------------------------------------------------------------------------
# the scenario
# --------------------------------------------------------------------------------------
@dataclass
class Phase:
    messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)  # distinct valid events, ts normalised
    #: catalog records produced once this phase's events are consumed (they were missing)
    late_videos: list[dict] = field(default_factory=list)
    late_campaigns: list[dict] = field(default_factory=list)
    held: int = 0  # distinct events of this phase that arrive before a record they need
    late: int = 0  # distinct events of this phase later than the grace


@dataclass
class Scenario:
    videos: list[dict]  # every video record (initial and late)
    campaigns: list[dict]
    initial_videos: list[dict]
    initial_campaigns: list[dict]
    phases: list[Phase]
    duplicates: int = 0

    @property
    def events(self) -> list[dict]:
        return [e for phase in self.phases for e in phase.events]


def parse_ts(value) -> int:
    """Event time in epoch ms, exactly (integer arithmetic, no float seconds)."""
    if isinstance(value, int):
        return value
    parsed = datetime.fromisoformat(value)
    return (parsed - EPOCH) // timedelta(milliseconds=1)


def iso(ts: int, rng: random.Random) -> str:
    offset = rng.choice([timedelta(0), timedelta(hours=8), timedelta(hours=-5, minutes=-30)])
    moment = (EPOCH + timedelta(milliseconds=ts)).astimezone(timezone(offset))
    text = moment.isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z") if rng.random() < 0.5 else text


def _catalog(rng: random.Random):
    models = ("cpm", "cpv", "cpa")
    campaigns = []
    for i in range(N_CAMPAIGNS):
        model = models[i % 3]
        rate = {"cpm": 6.0 + 0.75 * i, "cpv": 0.015 + 0.0025 * i, "cpa": 1.5 + 0.35 * i}[model]
        start = BASE_TS - (i % 5) * 6 * HOUR_MS
        record = {"campaign_id": f"c{i:02d}", "name": f"Campaign {i}",
                  "pricing": {"model": model, "rate": rate},
                  "budget": 0 if i == 7 else 2_000.0 + 125.5 * i, "currency": "CNY",
                  "start_ts": start, "end_ts": start + (3 + i % 4) * 24 * HOUR_MS,
                  "target": {"roas": 1.2, "cpa": 20.0}, "target_segments": ["foodies"]}
        if i % 4 != 3:  # no baseline -> lift absent
            record["baseline_revenue_per_hour"] = 40.0 + 7.25 * i
        campaigns.append(record)
    videos = []
    for i in range(N_VIDEOS):
        record = {"video_id": f"v{i:03d}", "tags": [["food", "travel", "dance", "tech"][i % 4]],
                  "published_ts": BASE_TS - i * MINUTE_MS,
                  "campaign_id": f"c{i % N_CAMPAIGNS:02d}" if i % 6 else None}
        if i % 17 != 5:
            record["creator_id"] = f"cr{i % 40:02d}"
        if i % 11:
            record["duration_ms"] = 4_000 + (i * 373) % 40_000
        videos.append(record)
    # late arrivals: phase 0 waits for v150-v154, c21, c22; phase 1 for v155-v159, c23.
    # v153 -> c22 and v158 -> c23: both of their records are missing at once.
    videos[153]["campaign_id"] = "c22"
    videos[158]["campaign_id"] = "c23"
    arrival = {("video", v["video_id"]): -1 for v in videos}
    arrival.update({("campaign", c["campaign_id"]): -1 for c in campaigns})
    for i in range(150, 155):
        arrival[("video", f"v{i:03d}")] = 0
    for i in range(155, 160):
        arrival[("video", f"v{i:03d}")] = 1
    arrival[("campaign", "c21")] = arrival[("campaign", "c22")] = 0
    arrival[("campaign", "c23")] = 1
    return videos, campaigns, arrival


KINDS = ["impression"] * 400 + ["view"] * 330 + ["like"] * 80 + ["comment"] * 40 + ["share"] * 30 \
    + ["follow"] * 30 + ["dislike"] * 30 + ["conversion"] * 48 + ["erase"] * 2


def build_scenario(seed: int = 20251203, normal_phases: int = 4, per_phase: int = 12_600,
                   final_normal: int = 1_500, final_late: int = 600, dup_share: float = 0.03) -> Scenario:
    rng = random.Random(seed)
    videos, campaigns, arrival = _catalog(rng)
    video_by_id = {v["video_id"]: v for v in videos}
    campaign_ids = [c["campaign_id"] for c in campaigns]

    def usable_video(video: dict, phase: int) -> bool:
        if arrival[("video", video["video_id"])] > phase:
            return False
        camp = video.get("campaign_id")
        return camp is None or arrival[("campaign", camp)] <= phase

    pool_cache: dict[int, tuple[list[dict], list[float]]] = {}

    def pools(phase: int) -> tuple[list[dict], list[float]]:
        """Videos an event of ``phase`` may use without waiting, with Zipf-like popularity."""
        if phase not in pool_cache:
            pool = [v for v in videos if usable_video(v, phase)]
            cum, total = [], 0.0
            for rank in range(len(pool)):
                total += 1.0 / (rank + 1) ** 0.7
                cum.append(total)
            pool_cache[phase] = (pool, cum)
        return pool_cache[phase]

    def make_event(eid: str, ts: int, phase: int, *, hot: list[str] | None) -> dict:
        kind = rng.choice(KINDS)
        event: dict = {"event_id": eid, "type": kind, "ts": ts, "user_id": f"u{rng.randrange(N_USERS)}"}
        if kind == "erase":
            return event
        if hot and rng.random() < 0.03:  # a video whose records arrive at the end of this phase
            video = video_by_id[rng.choice(hot)]
        else:
            pool, cum_weights = pools(phase)
            video = rng.choices(pool, cum_weights=cum_weights)[0]
        if kind == "follow" and rng.random() < 0.15:  # follow of a creator, no video
            event["creator_id"] = f"cr{rng.randrange(40):02d}"
            if rng.random() < 0.3:
                event["campaign_id"] = rng.choice([c for c in campaign_ids if arrival[("campaign", c)] <= phase])
        else:
            event["video_id"] = video["video_id"]
            roll = rng.random()
            if roll < 0.06:
                event["campaign_id"] = video.get("campaign_id") or "c00"
            elif roll < 0.10:  # an explicit campaign overriding the video's (may be a late one)
                event["campaign_id"] = rng.choice([c for c in campaign_ids if arrival[("campaign", c)] <= phase])
            roll = rng.random()
            if roll < 0.08 and video.get("creator_id"):
                event["creator_id"] = video["creator_id"]
            elif roll < 0.10:
                event["creator_id"] = f"cr{rng.randrange(40, 44):02d}"  # not any video's creator
        if kind == "view":
            duration = video.get("duration_ms") or 8_000
            event["watch_ms"] = rng.choice([0, 700, 1_999, 2_000, 2_001, 5_500, duration - 1, duration,
                                            duration + 1, 31_000, 75_000])
            if rng.random() < 0.2:
                event["duration_ms"] = rng.choice([3_000, 2_000, 12_000, 45_000, duration + 500])
        elif kind == "conversion":
            event["revenue"] = round(rng.uniform(0.5, 480.0), 2) if rng.random() < 0.95 else 0.0
            if rng.random() < 0.5:
                event["order_id"] = f"o-{eid}"
        elif kind == "comment" and rng.random() < 0.5:
            event["text"] = rng.choice(["太棒了", "love it", "meh", "where can I buy this?"])
        return event

    phases: list[Phase] = []
    sent: list[dict] = []  # every distinct event sent so far (raw form), for re-sends
    newest = 0  # newest event time of the phases before
    start = BASE_TS + 4 * HOUR_MS
    for k in range(normal_phases + 1):
        phase = Phase()
        final = k == normal_phases
        raw_events: list[dict] = []
        if not final:
            p0 = start + k * 6 * MINUTE_MS  # each phase spans at most 7.5 minutes of event time
            hot = [v["video_id"] for v in videos if arrival[("video", v["video_id"])] == k] or None
            for i in range(per_phase):
                ts = p0 + (i * 7 * MINUTE_MS) // per_phase + rng.randrange(30_000)
                if rng.random() < 0.15:  # out of order, within the grace
                    ts = max(p0, ts - rng.randrange(5 * MINUTE_MS))
                raw_events.append(make_event(f"r{k}-{i}", ts, k, hot=hot))
        else:
            for i in range(final_normal):
                ts = newest - 2 * MINUTE_MS + (i * 6 * MINUTE_MS) // final_normal + rng.randrange(10_000)
                raw_events.append(make_event(f"r{k}-{i}", ts, k, hot=None))
            for i in range(final_late):  # ~3 h before the newest event time
                ts = newest - 3 * HOUR_MS + rng.randrange(-20 * MINUTE_MS, 20 * MINUTE_MS)
                raw_events.append(make_event(f"late-{i}", ts, k, hot=None))
            rng.shuffle(raw_events)
        for event in raw_events:
            if isinstance(event["ts"], int) and rng.random() < 0.05:
                event["ts"] = iso(event["ts"], rng)
        messages = [(None if rng.random() < 0.1 else e["user_id"].encode(), orjson.dumps(e))
                    for e in raw_events]
        # duplicates: copies of this phase's events later in the phase, and (final phase) of
        # events of every earlier phase, which are now far older than the watermark
        n_dups = int(len(raw_events) * dup_share)
        for _ in range(n_dups):
            pos = rng.randrange(len(raw_events))
            original = raw_events[pos]
            if final and rng.random() < 0.5 and sent:
                original = rng.choice(sent)
                insert_at = rng.randrange(len(messages) + 1)
            else:
                insert_at = rng.randrange(pos + 1, len(messages) + 1)
            key = None if rng.random() < 0.3 else original["user_id"].encode()
            messages.insert(insert_at, (key, orjson.dumps(original)))
        phase.messages = messages
        sent.extend(raw_events)
        # normalised copies, lateness from the watermark bounds of this phase
        events = [dict(e, ts=parse_ts(e["ts"])) for e in raw_events]
        lo = newest
        hi = max([lo] + [e["ts"] for e in events])
        for event in events:
            is_late = bool(lo) and event["ts"] < lo - GRACE_MS
            ambiguous = not is_late and event["ts"] < hi - GRACE_MS
            assert not ambiguous, f"scenario bug: lateness of {event} depends on batching"
            event["_late"] = is_late
            event["_phase"] = k
            phase.late += is_late
            if event["type"] != "erase":
                needs = []
                if event.get("video_id"):
                    needs.append(arrival[("video", event["video_id"])])
                    camp = event.get("campaign_id") or video_by_id[event["video_id"]].get("campaign_id")
                else:
                    camp = event.get("campaign_id")
                if camp:
                    needs.append(arrival[("campaign", camp)])
                assert max(needs, default=-1) <= k, "scenario bug: an event waits for a later phase"
                phase.held += max(needs, default=-1) == k
        phase.events = events
        phase.late_videos = [v for v in videos if arrival[("video", v["video_id"])] == k]
        phase.late_campaigns = [c for c in campaigns if arrival[("campaign", c["campaign_id"])] == k]
        phases.append(phase)
        newest = hi
    initial_videos = [v for v in videos if arrival[("video", v["video_id"])] < 0]
    initial_campaigns = [c for c in campaigns if arrival[("campaign", c["campaign_id"])] < 0]
    return Scenario(videos=videos, campaigns=campaigns, initial_videos=initial_videos,
                    initial_campaigns=initial_campaigns, phases=phases,
                    duplicates=sum(len(p.messages) - len(p.events) for p in phases))


# --------------------------------------------------------------------------------------
# the expected state, from docs/live-roi.md
# --------------------------------------------------------------------------------------
@dataclass
class Scope:
    counters: dict = field(default_factory=lambda: defaultdict(int))  # ints, Fractions for money
    users: set = field(default_factory=set)
    last_event_ts: int = -1
    late: int = 0


@dataclass
class Expected:
    videos: dict[str, Scope]
    creators: dict[str, Scope]
    campaigns: dict[str, Scope]
    minutes: dict[tuple[str, int], Scope]  # (campaign_id, minute_start_ms)
    derived: dict[str, dict[str, float | None]]
    applied: int
    late: int
    held_at_least: int
    newest: int


def event_increments(event: dict, duration_ms: int | None, campaign: dict | None) -> dict:
    """What one applied event adds to the counters of every scope it belongs to."""
    kind = event["type"]
    out: dict = {}
    simple = {"impression": "impressions", "like": "likes", "comment": "comments",
              "share": "shares", "follow": "follows", "dislike": "dislikes"}
    if kind in simple:
        out[simple[kind]] = 1
    elif kind == "view":
        watch = event["watch_ms"]
        out["views"] = 1
        out["watch_ms"] = watch
        out["views_2s"] = int(watch >= 2000)
        out["completions"] = int(duration_ms is not None and watch >= duration_ms)
    elif kind == "conversion":
        out["conversions"] = 1
        out["revenue"] = Fraction(event["revenue"])
    if campaign is not None:  # spend under the campaign's pricing model
        model, rate = campaign["pricing"]["model"], Fraction(campaign["pricing"]["rate"])
        if model == "cpm" and kind == "impression":
            out["spend"] = rate / 1000
        elif model == "cpv" and kind == "view" and event["watch_ms"] >= 2000:
            out["spend"] = rate
        elif model == "cpa" and kind == "conversion":
            out["spend"] = rate
    return out


def _ratio(num, den) -> float | None:
    return float(Fraction(num) / Fraction(den)) if den else None


def derived_for(counters: dict, campaign: dict, now: int) -> dict[str, float | None]:
    c = lambda name: Fraction(counters.get(name, 0))  # noqa: E731
    spend, revenue = c("spend"), c("revenue")
    out = {
        "play_rate": _ratio(c("views"), c("impressions")),
        "completion_rate": _ratio(c("completions"), c("views")),
        "avg_watch_ms": _ratio(c("watch_ms"), c("views")),
        "engagement_rate": _ratio(c("likes") + c("comments") + c("shares"), c("views")),
        "cvr": _ratio(c("conversions"), c("views")),
        "cpm": _ratio(spend * 1000, c("impressions")),
        "cpa": _ratio(spend, c("conversions")),
        "roas": _ratio(revenue, spend),
        "roi": _ratio(revenue - spend, spend),
    }
    start, end = campaign["start_ts"], campaign["end_ts"]
    until = min(now, end)
    assert until >= start, "scenario keeps every campaign's newest event inside its flight"
    baseline = Fraction(campaign.get("baseline_revenue_per_hour", 0)) * Fraction(until - start, HOUR_MS)
    out["lift"] = _ratio(revenue - baseline, baseline)
    fraction = Fraction(until - start, end - start)
    out["budget_pace"] = _ratio(spend, Fraction(campaign["budget"]) * fraction)
    return out


def expected_state(scenario: Scenario) -> Expected:
    videos = {v["video_id"]: v for v in scenario.videos}
    campaigns = {c["campaign_id"]: c for c in scenario.campaigns}
    by_video: dict[str, Scope] = defaultdict(Scope)
    by_creator: dict[str, Scope] = defaultdict(Scope)
    by_campaign: dict[str, Scope] = defaultdict(Scope)
    by_minute: dict[tuple[str, int], Scope] = defaultdict(Scope)
    applied = late = held = 0
    newest = 0
    for phase in scenario.phases:
        held += phase.held
        for event in phase.events:
            applied += 1
            newest = max(newest, event["ts"])
            if event["type"] == "erase":
                continue
            late += event["_late"]
            video = videos.get(event.get("video_id"), {}) if event.get("video_id") else {}
            campaign_id = event.get("campaign_id") or video.get("campaign_id")
            creator_id = event.get("creator_id") or video.get("creator_id")
            duration = event.get("duration_ms") or video.get("duration_ms")
            adds = event_increments(event, duration, campaigns[campaign_id] if campaign_id else None)
            scopes = []
            if event.get("video_id"):
                scopes.append(by_video[event["video_id"]])
            if creator_id:
                scopes.append(by_creator[creator_id])
            if campaign_id:
                scopes.append(by_campaign[campaign_id])
                if event["_late"]:
                    by_campaign[campaign_id].late += 1
                else:
                    minute = event["ts"] - event["ts"] % MINUTE_MS
                    scopes.append(by_minute[(campaign_id, minute)])
            for scope in scopes:
                for name, value in adds.items():
                    scope.counters[name] += value
                scope.users.add(event["user_id"])
                scope.last_event_ts = max(scope.last_event_ts, event["ts"])
    derived = {cid: derived_for(scope.counters, campaigns[cid], scope.last_event_ts)
               for cid, scope in by_campaign.items()}
    return Expected(videos=dict(by_video), creators=dict(by_creator), campaigns=dict(by_campaign),
                    minutes=dict(by_minute), derived=derived, applied=applied, late=late,
                    held_at_least=held, newest=newest)
