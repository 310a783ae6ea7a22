"""Validation of engagement events: every error code, and what a valid event becomes."""
import orjson
import pytest

from models.events import ERROR_CODES, MAX_VALUE_BYTES, Rejection, parse_event

BASE = {"event_id": "e1", "type": "view", "ts": 1764748800000, "user_id": "u1", "video_id": "v1",
        "watch_ms": 2500}


def raw(**changes):
    doc = {**BASE, **changes}
    return orjson.dumps({k: v for k, v in doc.items() if v is not ...})


@pytest.mark.parametrize("value, code", [
    (b"{not json", "bad_json"),
    (b"\xff\xfe", "bad_json"),
    (None, "bad_json"),
    (b"[1, 2]", "not_object"),
    (b'"text"', "not_object"),
    (raw(event_id=...), "missing_field"),
    (raw(user_id=None), "missing_field"),
    (raw(watch_ms=...), "missing_field"),
    (raw(type="conversion", revenue=...), "missing_field"),
    (raw(type="like", video_id=...), "missing_field"),
    (raw(watch_ms="2500"), "wrong_type"),
    (raw(watch_ms=2.5), "wrong_type"),
    (raw(user_id=42), "wrong_type"),
    (raw(type=7), "wrong_type"),
    (raw(type="conversion", revenue="9"), "wrong_type"),
    (raw(type="comment", text=5), "wrong_type"),
    (raw(type="superlike"), "unknown_type"),
    (raw(watch_ms=-1), "invalid_value"),
    (raw(duration_ms=0), "invalid_value"),
    (raw(user_id=""), "invalid_value"),
    (raw(event_id="x" * 129), "invalid_value"),
    (raw(type="conversion", revenue=-0.01), "invalid_value"),
    (raw(type="comment", text="x" * 2001), "invalid_value"),
    (raw(ts="yesterday"), "bad_timestamp"),
    (raw(ts="2025-12-03T08:00:00"), "bad_timestamp"),  # no offset
    (raw(ts=1764748800), "bad_timestamp"),  # seconds, not ms
    (raw(ts=True), "bad_timestamp"),
    (raw(pad="x" * MAX_VALUE_BYTES), "oversize"),
])
def test_rejections(value, code):
    result = parse_event(value)
    assert isinstance(result, Rejection), result
    assert result.error == code
    assert result.error in ERROR_CODES and result.reason


def test_valid_events_are_normalised():
    event = parse_event(raw(ts="2025-12-03T09:00:00+01:00"))
    assert event == {**BASE, "ts": 1764748800000}
    assert parse_event(raw(type="follow", video_id=..., watch_ms=..., creator_id="cr1"))["creator_id"] == "cr1"
    assert parse_event(raw(type="erase", video_id=..., watch_ms=...))["type"] == "erase"
    assert parse_event(raw(type="conversion", revenue=0, watch_ms=...))["revenue"] == 0
    assert parse_event(raw(type="comment", text="x" * 2000))["text"] == "x" * 2000
