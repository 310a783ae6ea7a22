"""The catalog (videos, campaigns, users) that events are joined with, and its validation.

Records come from compacted topics; a later record for the same id replaces the earlier one,
and a tombstone (no value) deletes it.

>>> catalog = Catalog()
>>> catalog.upsert("video", {"video_id": "v1", "creator_id": "cr1", "duration_ms": 9000, "tags": ["food"]})
>>> catalog.videos["v1"]["tags"]
['food']
>>> validate_record("campaign", {"campaign_id": "c1", "pricing": {"model": "cpx", "rate": 1}}).error
'invalid_value'
"""
from __future__ import annotations

from dataclasses import dataclass, field

from models.events import Rejection, _is_int, _is_number

ID_FIELD = {"video": "video_id", "campaign": "campaign_id", "user": "user_id"}
PRICING_MODELS = frozenset({"cpm", "cpv", "cpa"})


def _check_video(record: dict) -> Rejection | None:
    duration = record.get("duration_ms")
    if duration is not None and (not _is_int(duration) or duration <= 0):
        return Rejection("invalid_value", f"duration_ms must be a positive integer, got {duration!r}")
    tags = record.get("tags", [])
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        return Rejection("wrong_type", "tags must be a list of strings")
    for name in ("creator_id", "campaign_id"):
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            return Rejection("wrong_type", f"{name} must be a string or null")
    return None


def _check_campaign(record: dict) -> Rejection | None:
    pricing = record.get("pricing")
    if not isinstance(pricing, dict):
        return Rejection("missing_field", "a campaign needs pricing {model, rate}")
    if pricing.get("model") not in PRICING_MODELS:
        return Rejection("invalid_value", f"pricing.model must be cpm, cpv or cpa, got {pricing.get('model')!r}")
    rate = pricing.get("rate")
    if not _is_number(rate) or rate < 0:
        return Rejection("invalid_value", f"pricing.rate must be a number >= 0, got {rate!r}")
    for name in ("budget", "baseline_revenue_per_hour"):
        value = record.get(name)
        if value is not None and (not _is_number(value) or value < 0):
            return Rejection("invalid_value", f"{name} must be a number >= 0, got {value!r}")
    for name in ("start_ts", "end_ts"):
        value = record.get(name)
        if value is not None and not _is_int(value):
            return Rejection("wrong_type", f"{name} must be int epoch ms, got {value!r}")
    return None


_CHECKS = {"video": _check_video, "campaign": _check_campaign, "user": lambda record: None}


def validate_record(kind: str, record) -> dict | Rejection:
    """Check a catalog record of ``kind`` (video, campaign, user)."""
    if not isinstance(record, dict):
        return Rejection("not_object", f"a {kind} record must be a JSON object")
    id_field = ID_FIELD[kind]
    if not isinstance(record.get(id_field), str) or not record[id_field]:
        return Rejection("missing_field", f"a {kind} record needs a string {id_field}")
    problem = _CHECKS[kind](record)
    return problem if problem is not None else record


@dataclass
class Catalog:
    """Latest record per id, per kind. Read by the ingest and per-user stages of a worker."""

    videos: dict[str, dict] = field(default_factory=dict)
    campaigns: dict[str, dict] = field(default_factory=dict)
    users: dict[str, dict] = field(default_factory=dict)

    def table(self, kind: str) -> dict[str, dict]:
        return {"video": self.videos, "campaign": self.campaigns, "user": self.users}[kind]

    def upsert(self, kind: str, record: dict) -> None:
        self.table(kind)[record[ID_FIELD[kind]]] = record

    def delete(self, kind: str, record_id: str) -> None:
        self.table(kind).pop(record_id, None)
