"""HTTP edge of the worker (Faust's aiohttp web server, default http://127.0.0.1:6066).

Endpoints follow ``CONTRACT.md``. Every error is JSON ``{"error", "reason"}`` with the right
status, never a stack trace; with ``SV_API_TOKEN`` set, ``/api/*`` needs a bearer token.
"""
from __future__ import annotations

import functools
import hmac
import logging
import time

import orjson
from faust.web import View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from models.metrics import MINUTE_MS, derived_metrics
from models.privacy import pseudonymize
from stream_app.app import app, keys, settings
from stream_app.catalog_sync import catalog

log = logging.getLogger(__name__)

WINDOWS_MIN = {"1m": 1, "5m": 5, "1h": 60, "24h": 1440}


def error(web, status: int, code: str, reason: str):
    return web.json({"error": code, "reason": reason}, status=status)


def api(handler):
    """Wrap an ``/api`` handler: bearer-token check and JSON errors instead of tracebacks."""

    @functools.wraps(handler)
    async def wrapped(view, request, **kwargs):
        web = view.web
        if settings.api_token:
            expected = f"Bearer {settings.api_token}"
            if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
                return error(web, 401, "unauthorized", "missing or wrong bearer token")
        try:
            return await handler(view, request, **kwargs)
        except BadRequest as exc:
            return error(web, 400, "bad_request", str(exc))
        except Exception as exc:  # noqa: BLE001 - the client gets JSON, the log gets the trace
            log.exception("error serving %s", request.path)
            return error(web, 503, "unavailable", f"{type(exc).__name__} while serving the request")

    return wrapped


class BadRequest(ValueError):
    pass


def int_param(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def parse_number(text: str):
    try:
        number = float(text)
    except ValueError:
        return text
    if number.is_integer() and "." not in text and "e" not in text.lower():
        return int(number)
    return number


def decode_hash(raw: dict) -> dict:
    """Redis HASH (bytes) to JSON-ready values: numbers where the text is a number."""
    return {field.decode(): parse_number(value.decode()) for field, value in raw.items()}


def user_key_id(user_id: str) -> str:
    """The id under which the system stores a user (pseudonymised when configured)."""
    return pseudonymize(user_id, settings.pseudonymize_key) if settings.pseudonymize_key else user_id


def _redis():
    from stream_app.ingest import redis_store

    return redis_store().client


@app.page("/api/health")
class Health(View):
    @api
    async def get(self, request):
        started = time.perf_counter()
        await _redis().ping()
        return self.web.json({"status": "ok", "redis_ms": round((time.perf_counter() - started) * 1000, 3),
                              "app_id": settings.app_id, "catalog": {
                                  "videos": len(catalog.videos), "campaigns": len(catalog.campaigns),
                                  "users": len(catalog.users)}})


@app.page("/api/videos/{video_id}")
class VideoCounters(View):
    @api
    async def get(self, request, video_id):
        raw = await _redis().hgetall(keys.video(video_id))
        if not raw:
            return error(self.web, 404, "not_found", f"no counters for video {video_id!r}")
        return self.web.json({"video_id": video_id, "catalog": catalog.videos.get(video_id),
                              **decode_hash(raw)})


@app.page("/api/creators/{creator_id}")
class CreatorCounters(View):
    @api
    async def get(self, request, creator_id):
        raw = await _redis().hgetall(keys.creator(creator_id))
        if not raw:
            return error(self.web, 404, "not_found", f"no counters for creator {creator_id!r}")
        community = await community_snapshot("creator", creator_id)
        return self.web.json({"creator_id": creator_id, **decode_hash(raw), "community": community})


@app.page("/api/campaigns")
class CampaignList(View):
    @api
    async def get(self, request):
        client = _redis()
        ids = sorted(catalog.campaigns)
        async with client.pipeline(transaction=False) as pipe:
            for campaign_id in ids:
                pipe.hgetall(keys.campaign(campaign_id))
            hashes = await pipe.execute()
        items = [{"campaign_id": cid, "name": catalog.campaigns[cid].get("name"), **decode_hash(raw)}
                 for cid, raw in zip(ids, hashes)]
        return self.web.json({"items": items, "generated_ts": int(time.time() * 1000)})


async def window_figures(campaign_id: str, minutes: int) -> dict:
    """Sum the minute buckets of the last ``minutes`` minutes up to the newest event minute."""
    client = _redis()
    newest = await client.hget(keys.campaign(campaign_id), "last_event_ts")
    if newest is None:
        return {}
    end = int(newest) - int(newest) % MINUTE_MS
    starts = [end - i * MINUTE_MS for i in range(minutes)]
    async with client.pipeline(transaction=False) as pipe:
        for start in starts:
            pipe.hgetall(keys.campaign_minute(campaign_id, start))
        buckets = await pipe.execute()
    totals: dict[str, float] = {}
    for bucket in buckets:
        for field, value in bucket.items():
            name = field.decode()
            if name in ("reach", "last_event_ts"):
                continue
            totals[name] = totals.get(name, 0) + parse_number(value.decode())
    hll_keys = [keys.hll(keys.campaign_minute(campaign_id, start)) for start in starts]
    totals["reach"] = await client.pfcount(*hll_keys)
    campaign = catalog.campaigns.get(campaign_id)
    if campaign and campaign.get("start_ts") is not None:
        # Within a window, lift compares with the baseline of the window's hours and the pace
        # with the window's share of the flight: the same formulas on a flight that starts at
        # the window's start.
        flight = (campaign.get("end_ts") or 0) - campaign["start_ts"]
        campaign = {**campaign, "start_ts": starts[-1],
                    "end_ts": starts[-1] + flight if flight > 0 else None}
    figures = {**totals, **derived_metrics(totals, campaign, end + MINUTE_MS)}
    figures.update({"window_start_ms": starts[-1], "window_end_ms": end + MINUTE_MS})
    return figures


@app.page("/api/campaigns/{campaign_id}")
class CampaignCounters(View):
    @api
    async def get(self, request, campaign_id):
        window = request.query.get("window", "total")
        if window != "total" and window not in WINDOWS_MIN:
            raise BadRequest(f"window must be one of 1m, 5m, 1h, 24h, total; got {window!r}")
        raw = await _redis().hgetall(keys.campaign(campaign_id))
        if not raw:
            return error(self.web, 404, "not_found", f"no counters for campaign {campaign_id!r}")
        totals = decode_hash(raw)
        body = {"campaign_id": campaign_id, "window": window, "campaign": catalog.campaigns.get(campaign_id)}
        if window == "total":
            for name in ("play_rate", "completion_rate", "avg_watch_ms", "engagement_rate", "cvr", "cpm",
                         "cpa", "roas", "roi", "lift", "budget_pace"):
                totals.setdefault(name, None)
            body.update(totals)
        else:
            body.update(await window_figures(campaign_id, WINDOWS_MIN[window]))
        body["community"] = await community_snapshot("campaign", campaign_id)
        return self.web.json(body)


@app.page("/api/users/{user_id}/profile")
class UserProfileView(View):
    @api
    async def get(self, request, user_id):
        raw = await _redis().hgetall(keys.profile(user_key_id(user_id)))
        if not raw:
            return error(self.web, 404, "not_found", f"no profile for user {user_id!r}")
        profile = decode_hash(raw)
        if isinstance(profile.get("top_tags"), str):
            profile["top_tags"] = orjson.loads(profile["top_tags"])
        return self.web.json({"user_id": user_id, **profile})


@app.page("/api/users/{user_id}/recommendations")
class UserRecommendations(View):
    @api
    async def get(self, request, user_id):
        n = int_param(request, "n", 10, 1, settings.recs_n)
        key = keys.recs(user_key_id(user_id))
        client = _redis()
        items = await client.zrevrange(key, 0, n - 1, withscores=True)
        reasons = await client.hmget(f"{key}:why", [video for video, _ in items]) if items else []
        if not items:
            # Cold start: nothing learned about this user yet, so trending videos.
            items = await client.zrevrange(keys.trending(), 0, n - 1, withscores=True)
            reasons = [b"trending now"] * len(items)
        return self.web.json({
            "user_id": user_id,
            "items": [{"video_id": video.decode(), "score": score,
                       "reason": (why or b"").decode() or "recommended for you"}
                      for (video, score), why in zip(items, reasons)],
            "generated_ts": int(time.time() * 1000)})


@app.page("/api/trending")
class Trending(View):
    @api
    async def get(self, request):
        n = int_param(request, "n", 20, 1, 500)
        client = _redis()
        items = await client.zrevrange(keys.trending(), 0, n - 1, withscores=True)
        landmark = await client.get(keys.trending() + ":landmark")
        watermark = await client.hget(keys.stats(), "last_event_ts")
        # Stored scores are forward-decayed from the landmark; shown decayed to the watermark.
        factor = 2.0 ** (-(int(watermark or 0) - int(landmark or 0)) / settings.trending_half_life_ms)
        return self.web.json({"items": [{"video_id": v.decode(), "score": s * factor,
                                         "catalog": catalog.videos.get(v.decode())} for v, s in items]})


@app.page("/api/insights")
class Insights(View):
    @api
    async def get(self, request):
        """Content insights per tag, or per (dimension=value x tag) with ?dimension=&value=."""
        dimension, value = request.query.get("dimension"), request.query.get("value")
        if (dimension is None) != (value is None):
            raise BadRequest("give both dimension and value, or neither")
        pattern = keys.insight("*", dimension, value) if dimension else keys.insight("*")
        client = _redis()
        out = []
        async for key in client.scan_iter(match=pattern, count=500):
            figures = decode_hash(await client.hgetall(key))
            views = figures.get("views", 0)
            tag = key.decode().rsplit(":tag:", 1)[1]
            out.append({"tag": tag, **figures,
                        "hook_rate": figures.get("views_2s", 0) / views if views else None,
                        "completion_rate": figures.get("completions", 0) / views if views else None,
                        "engagement_rate": (figures.get("likes", 0) + figures.get("comments", 0)
                                            + figures.get("shares", 0)) / views if views else None})
        out.sort(key=lambda row: -row.get("views", 0))
        return self.web.json({"dimension": dimension, "value": value, "items": out})


async def community_snapshot(kind: str, scope_id: str) -> dict | None:
    """Merge the per-partition community snapshots of one creator or campaign.

    Users are partitioned, so partial snapshots hold disjoint users: superfans are a union,
    counts add up, and sentiment is the comment-weighted mean of the partial means.
    """
    client = _redis()
    parts = []
    async for key in client.scan_iter(match=f"{keys.prefix}community:{kind}:{scope_id}:p*", count=100):
        raw = await client.get(key)
        if raw:
            parts.extend(orjson.loads(raw).values())
    if not parts:
        return None
    fans = sorted((fan for part in parts for fan in part.get("superfans", [])), key=lambda f: -f["score"])[:10]
    follows: dict[int, int] = {}
    for part in parts:
        for minute, count in part.get("follows_per_minute", []):
            follows[minute] = follows.get(minute, 0) + count
    engagements = sum(p.get("engagements", 0) for p in parts)
    repeats = sum(p.get("repeat_engagements", 0) for p in parts)
    scored = sum(p.get("comments_scored", 0) for p in parts)
    sentiment = (sum((p.get("sentiment") or 0) * p.get("comments_scored", 0) for p in parts) / scored
                 if scored else None)
    return {"superfans": fans, "follows_per_minute": sorted(follows.items())[-60:],
            "follows_total": sum(p.get("follows_total", 0) for p in parts),
            "engagements": engagements, "repeat_engagements": repeats,
            "repeat_share": repeats / engagements if engagements else None,
            "sentiment": sentiment, "comments_scored": scored}


@app.page("/api/community/{kind}/{scope_id}")
class Community(View):
    @api
    async def get(self, request, kind, scope_id):
        if kind not in ("creator", "campaign"):
            raise BadRequest("kind must be creator or campaign")
        snapshot = await community_snapshot(kind, scope_id)
        if snapshot is None:
            return error(self.web, 404, "not_found", f"no community figures for {kind} {scope_id!r}")
        return self.web.json({kind + "_id": scope_id, **snapshot})


@app.page("/api/segments")
class Segments(View):
    @api
    async def get(self, request):
        raw = await _redis().get(f"{keys.prefix}segments")
        return self.web.json({"segments": orjson.loads(raw) if raw else {}})


@app.page("/metrics")
class Metrics(View):
    async def get(self, request):
        return self.web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
