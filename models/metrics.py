"""Spend and the derived campaign metrics of ``CONTRACT.md``, as pure functions.

A ratio whose denominator is 0 is ``None`` (absent from Redis, ``null`` in JSON): never 0 or NaN.

>>> event_spend({"type": "impression"}, {"pricing": {"model": "cpm", "rate": 12.0}})
0.012
>>> event_spend({"type": "view", "watch_ms": 1999}, {"pricing": {"model": "cpv", "rate": 0.05}})
0.0
>>> m = derived_metrics({"impressions": 1000, "views": 400, "spend": 50.0, "revenue": 80.0}, None, 0)
>>> m["play_rate"], m["roas"], m["roi"], m["cpa"]
(0.4, 1.6, 0.6, None)
"""
from __future__ import annotations

HOUR_MS = 3_600_000
MINUTE_MS = 60_000

DERIVED_FIELDS = ("play_rate", "completion_rate", "avg_watch_ms", "engagement_rate", "cvr", "cpm",
                  "cpa", "roas", "roi", "lift", "budget_pace")


def minute_start(ts: int) -> int:
    """Start of the event-time minute of ``ts``.

    >>> minute_start(1764748859999)
    1764748800000
    """
    return ts - ts % MINUTE_MS


def event_spend(event: dict, campaign: dict | None) -> float:
    """What one event costs the campaign under its pricing model (0.0 if it is not billable)."""
    if not campaign:
        return 0.0
    pricing = campaign.get("pricing") or {}
    model, rate = pricing.get("model"), float(pricing.get("rate") or 0.0)
    etype = event["type"]
    if model == "cpm" and etype == "impression":
        return rate / 1000.0
    if model == "cpv" and etype == "view" and event["watch_ms"] >= 2000:
        return rate
    if model == "cpa" and etype == "conversion":
        return rate
    return 0.0


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def elapsed_fraction(campaign: dict | None, now_ms: int) -> tuple[float | None, float | None]:
    """``(hours elapsed, fraction of the flight elapsed)`` at event time ``now_ms``."""
    if not campaign or campaign.get("start_ts") is None:
        return None, None
    start, end = campaign["start_ts"], campaign.get("end_ts")
    until = min(now_ms, end) if end is not None else now_ms
    elapsed = max(until - start, 0)
    hours = elapsed / HOUR_MS
    fraction = elapsed / (end - start) if end is not None and end > start else None
    return hours, fraction


def derived_metrics(counters: dict, campaign: dict | None, now_ms: int) -> dict[str, float | None]:
    """Every derived metric from summed counters (a HASH, a minute bucket or a window)."""
    get = lambda name: float(counters.get(name) or 0)  # noqa: E731
    impressions, views, spend, revenue = get("impressions"), get("views"), get("spend"), get("revenue")
    out = {
        "play_rate": _ratio(views, impressions),
        "completion_rate": _ratio(get("completions"), views),
        "avg_watch_ms": _ratio(get("watch_ms"), views),
        "engagement_rate": _ratio(get("likes") + get("comments") + get("shares"), views),
        "cvr": _ratio(get("conversions"), views),
        "cpm": _ratio(spend * 1000.0, impressions),
        "cpa": _ratio(spend, get("conversions")),
        "roas": _ratio(revenue, spend),
        "roi": _ratio(revenue - spend, spend),
        "lift": None,
        "budget_pace": None,
    }
    hours, fraction = elapsed_fraction(campaign, now_ms)
    if campaign and hours is not None:
        baseline = float(campaign.get("baseline_revenue_per_hour") or 0.0) * hours
        out["lift"] = _ratio(revenue - baseline, baseline)
        budget = float(campaign.get("budget") or 0.0)
        if fraction is not None:
            out["budget_pace"] = _ratio(spend, budget * fraction)
    return out
