"""Join an event with the catalog: which campaign, creator, duration and tags it belongs to.

>>> from models.catalog import Catalog
>>> catalog = Catalog()
>>> event = {"type": "view", "user_id": "u1", "video_id": "v1", "watch_ms": 10}
>>> attribute(event, catalog)
Hold(kind='video', id='v1')
>>> catalog.upsert("video", {"video_id": "v1", "creator_id": "cr1", "campaign_id": "c1", "duration_ms": 9, "tags": ["food"]})
>>> attribute(event, catalog)
Hold(kind='campaign', id='c1')
>>> catalog.upsert("campaign", {"campaign_id": "c1", "pricing": {"model": "cpv", "rate": 0.1}})
>>> a = attribute(event, catalog)
>>> a.campaign_id, a.creator_id, a.duration_ms, a.tags
('c1', 'cr1', 9, ('food',))
"""
from __future__ import annotations

from typing import NamedTuple

from models.catalog import Catalog


class Hold(NamedTuple):
    """The event waits for the catalog record ``kind``/``id``."""

    kind: str
    id: str


class Attribution(NamedTuple):
    campaign_id: str | None
    creator_id: str | None
    duration_ms: int | None
    tags: tuple[str, ...]
    campaign: dict | None
    user: dict | None


def attribute(event: dict, catalog: Catalog, *, allow_missing: bool = False) -> Attribution | Hold:
    """The event's attribution, or what it must wait for.

    With ``allow_missing`` (a held event that waited too long) the event is attributed with
    whatever it carries itself.
    """
    video_id = event.get("video_id")
    video = catalog.videos.get(video_id) if video_id else None
    if video_id and video is None and not allow_missing:
        return Hold("video", video_id)
    video = video or {}
    campaign_id = event.get("campaign_id") or video.get("campaign_id")
    campaign = catalog.campaigns.get(campaign_id) if campaign_id else None
    if campaign_id and campaign is None and not allow_missing:
        return Hold("campaign", campaign_id)
    return Attribution(
        campaign_id=campaign_id,
        creator_id=event.get("creator_id") or video.get("creator_id"),
        duration_ms=event.get("duration_ms") or video.get("duration_ms"),
        tags=tuple(video.get("tags") or ()),
        campaign=campaign,
        user=catalog.users.get(event["user_id"]),
    )
