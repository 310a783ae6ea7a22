"""HTTP edge of the worker (Faust's aiohttp web server, default http://127.0.0.1:6066).

Endpoints follow ``CONTRACT.md``. Every error is JSON ``{"error", "reason"}`` with the right
status, never a stack trace; with ``SV_API_TOKEN`` set, ``/api/*`` needs a bearer token.
"""
from __future__ import annotations

import functools
import hmac
import logging
import time

from faust.web import View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream_app.app import app, keys, settings

log = logging.getLogger(__name__)


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
        except Exception as exc:  # noqa: BLE001 - the client gets JSON, the log gets the trace
            log.exception("error serving %s", request.path)
            return error(web, 503, "unavailable", f"{type(exc).__name__} while serving the request")

    return wrapped


def decode_hash(raw: dict) -> dict:
    """Redis HASH (bytes) to JSON-ready values: numbers where the text is a number."""
    out = {}
    for field, value in raw.items():
        text = value.decode()
        try:
            number = float(text)
            out[field.decode()] = int(number) if number.is_integer() and "." not in text and "e" not in text else number
        except ValueError:
            out[field.decode()] = text
    return out


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
                              "app_id": settings.app_id, "events_topic": settings.events_topic})


@app.page("/api/videos/{video_id}")
class VideoCounters(View):
    @api
    async def get(self, request, video_id):
        raw = await _redis().hgetall(keys.video(video_id))
        if not raw:
            return error(self.web, 404, "not_found", f"no counters for video {video_id!r}")
        return self.web.json({"video_id": video_id, **decode_hash(raw)})


@app.page("/api/campaigns/{campaign_id}")
class CampaignCounters(View):
    @api
    async def get(self, request, campaign_id):
        raw = await _redis().hgetall(keys.campaign(campaign_id))
        if not raw:
            return error(self.web, 404, "not_found", f"no counters for campaign {campaign_id!r}")
        return self.web.json({"campaign_id": campaign_id, **decode_hash(raw)})


@app.page("/metrics")
class Metrics(View):
    async def get(self, request):
        return self.web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
