"""Validation of engagement events against the contract (``CONTRACT.md``, ``sv.events``).

:func:`parse_event` turns the raw bytes of one Kafka message into either a normalised event
(a plain ``dict`` whose ``ts`` is always int epoch ms) or a :class:`Rejection` with a stable
error code and a sentence a person can act on. It never raises, so one bad message can never
stop the pipeline.

>>> parse_event(b'{"event_id":"e1","type":"like","ts":1764748800000,"user_id":"u1","video_id":"v1"}')["type"]
'like'
>>> parse_event(b'{"event_id":"e1"}').error
'missing_field'
>>> parse_event(b'[1]').error
'not_object'
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

MAX_VALUE_BYTES = 64 * 1024
MAX_ID_CHARS = 128
MAX_TEXT_CHARS = 2000
#: Timestamps outside [2000-01-01, 2100-01-01) are treated as garbage (seconds instead of
#: milliseconds, or a sentinel), not as real event times.
MIN_TS_MS = 946_684_800_000
MAX_TS_MS = 4_102_444_800_000

EVENT_TYPES = frozenset(
    {"impression", "view", "like", "share", "dislike", "comment", "follow", "conversion", "erase"}
)

#: Every error code a rejection can carry, with what it means (also listed in the README).
ERROR_CODES = {
    "oversize": "the message value is larger than 64 KiB",
    "bad_json": "the message value is not valid UTF-8 JSON",
    "not_object": "the JSON value is not an object",
    "missing_field": "a required field is absent or null",
    "wrong_type": "a field has the wrong JSON type",
    "unknown_type": "the event type is not one of the contract's types",
    "invalid_value": "a field has the right type but an impossible value (negative, too long, empty)",
    "bad_timestamp": "ts is neither int epoch ms nor an ISO-8601 string with offset, or is out of range",
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused; ``error`` is one of :data:`ERROR_CODES`."""

    error: str
    reason: str


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def parse_timestamp(value: Any) -> int | Rejection:
    """Event time as int epoch milliseconds.

    >>> parse_timestamp(1764748800000)
    1764748800000
    >>> parse_timestamp("2025-12-03T08:00:00+00:00")
    1764748800000
    >>> parse_timestamp("2025-12-03T08:00:00").error
    'bad_timestamp'
    """
    if _is_int(value):
        ts = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return Rejection("bad_timestamp", f"ts {value[:40]!r} is not an ISO-8601 timestamp")
        if parsed.tzinfo is None:
            return Rejection("bad_timestamp", f"ts {value[:40]!r} has no UTC offset")
        ts = int(parsed.timestamp() * 1000)
    else:
        return Rejection("bad_timestamp", f"ts must be int epoch ms or ISO-8601, got {type(value).__name__}")
    if not MIN_TS_MS <= ts < MAX_TS_MS:
        return Rejection("bad_timestamp", f"ts {ts} is outside 2000..2100 (seconds instead of ms?)")
    return ts


def _check_id(event: dict, field: str, required: bool) -> Rejection | None:
    value = event.get(field)
    if value is None:
        return Rejection("missing_field", f"required field {field!r} is missing") if required else None
    if not isinstance(value, str):
        return Rejection("wrong_type", f"{field} must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_ID_CHARS:
        return Rejection("invalid_value", f"{field} must be 1-{MAX_ID_CHARS} characters, got {len(value)}")
    return None


def validate_event(event: Any) -> dict | Rejection:
    """Check one decoded JSON value; return the normalised event or why it is refused."""
    if not isinstance(event, dict):
        return Rejection("not_object", f"an event must be a JSON object, got {type(event).__name__}")
    for field in ("event_id", "type", "ts", "user_id"):
        if event.get(field) is None:
            return Rejection("missing_field", f"required field {field!r} is missing")
    etype = event["type"]
    if not isinstance(etype, str):
        return Rejection("wrong_type", f"type must be a string, got {type(etype).__name__}")
    if etype not in EVENT_TYPES:
        return Rejection("unknown_type", f"unknown event type {etype[:40]!r}")
    for field in ("event_id", "user_id"):
        if (problem := _check_id(event, field, required=True)) is not None:
            return problem
    ts = parse_timestamp(event["ts"])
    if isinstance(ts, Rejection):
        return ts

    needs_video = not (etype == "erase" or (etype == "follow" and event.get("creator_id") is not None))
    for field, required in (("video_id", needs_video), ("campaign_id", False), ("creator_id", False)):
        if (problem := _check_id(event, field, required)) is not None:
            return problem

    if (problem := _check_type_fields(event, etype)) is not None:
        return problem

    normalised = dict(event)
    normalised["ts"] = ts
    return normalised


def _check_type_fields(event: dict, etype: str) -> Rejection | None:
    if etype == "view":
        watch = event.get("watch_ms")
        if watch is None:
            return Rejection("missing_field", "a view needs watch_ms")
        if not _is_int(watch):
            return Rejection("wrong_type", f"watch_ms must be an integer, got {type(watch).__name__}")
        if watch < 0:
            return Rejection("invalid_value", f"watch_ms must be >= 0, got {watch}")
        duration = event.get("duration_ms")
        if duration is not None:
            if not _is_int(duration):
                return Rejection("wrong_type", f"duration_ms must be an integer, got {type(duration).__name__}")
            if duration <= 0:
                return Rejection("invalid_value", f"duration_ms must be > 0, got {duration}")
    elif etype == "conversion":
        revenue = event.get("revenue")
        if revenue is None:
            return Rejection("missing_field", "a conversion needs revenue")
        if not _is_number(revenue):
            return Rejection("wrong_type", f"revenue must be a finite number, got {type(revenue).__name__}")
        if revenue < 0:
            return Rejection("invalid_value", f"revenue must be >= 0, got {revenue}")
        order_id = event.get("order_id")
        if order_id is not None and not isinstance(order_id, str):
            return Rejection("wrong_type", f"order_id must be a string, got {type(order_id).__name__}")
    elif etype == "comment":
        text = event.get("text")
        if text is not None:
            if not isinstance(text, str):
                return Rejection("wrong_type", f"text must be a string, got {type(text).__name__}")
            if len(text) > MAX_TEXT_CHARS:
                return Rejection("invalid_value", f"comment text is {len(text)} characters, over {MAX_TEXT_CHARS}")
    return None


def parse_event(raw: bytes | None) -> dict | Rejection:
    """Decode and validate the value of one ``sv.events`` message. Never raises."""
    if raw is None:
        return Rejection("bad_json", "the message has no value (null / tombstone)")
    if len(raw) > MAX_VALUE_BYTES:
        return Rejection("oversize", f"the value is {len(raw)} bytes, over the {MAX_VALUE_BYTES}-byte limit")
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("bad_json", f"the value is not valid JSON: {exc}")
    return validate_event(decoded)
