"""Configuration, read once from environment variables (prefix ``SV_``).

Every name and default in ``CONTRACT.md`` can be overridden here; two variables keep their
conventional names without the prefix: ``KAFKA_BOOTSTRAP_SERVERS`` and ``REDIS_URL``.
"""
from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SV_", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "SV_KAFKA_BOOTSTRAP_SERVERS"),
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "SV_REDIS_URL")
    )

    app_id: str = "sv-stream"
    partitions: int = 4

    events_topic: str = "sv.events"
    videos_topic: str = "sv.videos"
    campaigns_topic: str = "sv.campaigns"
    users_topic: str = "sv.users"
    alerts_topic: str = "sv.alerts"
    dlq_topic: str = "sv.events.dlq"
    #: Internal: canonical (validated, de-duplicated) events keyed by user_id, for stage 2.
    by_user_topic_name: str | None = None

    @property
    def by_user_topic(self) -> str:
        return self.by_user_topic_name or f"{self.app_id}.events-by-user"

    key_prefix: str = "sv:"

    #: Events are applied to Redis in batches of at most this many, or whatever arrived
    #: within ``batch_window_s`` seconds.
    batch_size: int = 1000
    batch_window_s: float = 0.05

    #: An event_id seen again within this much time is a duplicate (CONTRACT: 24 h).
    dedup_horizon_ms: int = 24 * 3600 * 1000
    #: Per-minute campaign buckets live at least this long (CONTRACT: >= 48 h).
    minute_bucket_ttl_s: int = 49 * 3600
    #: Events older than the watermark minus this are late: totals only, no minute bucket.
    late_grace_ms: int = 10 * 60 * 1000
    #: Events held for a missing catalog record are applied without it after this long.
    hold_max_s: float = 900.0
    #: Trending scores (sv:trending) halve after this much event time.
    trending_half_life_ms: int = 6 * 3_600_000
    #: How often held events are re-examined.
    resolve_interval_s: float = 1.0

    #: A worker that stops heart-beating loses its partitions after this long (failover time).
    session_timeout_s: float = 10.0

    #: Profiles and recommendations of users idle longer than this expire everywhere.
    profile_ttl_s: int = 30 * 24 * 3600
    #: When set, user ids are replaced by a keyed hash (HMAC-SHA256) right after validation,
    #: so that no raw user id reaches Redis, Kafka topics we write, or logs.
    pseudonymize_key: str | None = None
    #: Recommendations kept per user (CONTRACT: N, default 20).
    recs_n: int = 20
    #: Interest tag weights halve after this much event time.
    tag_half_life_ms: int = 7 * 24 * 3600 * 1000

    #: This worker's name in shared model state (item-side sync); unique per worker.
    worker_id: str = Field(default_factory=lambda: f"{__import__('socket').gethostname()}-{__import__('os').getpid()}")
    #: How often item-side recommender state is checkpointed and merged between workers.
    item_sync_s: float = 30.0

    web_host: str = "127.0.0.1"
    web_port: int = 6066
    api_token: str | None = None

    log_level: str = "info"
    #: Faust's local data directory (table stores, checkpoints).
    data_dir: str = ".state/worker-data"

    def key(self, *parts: str) -> str:
        """Redis key under the configured prefix: ``key("video", "v7") == "sv:video:v7"``."""
        return self.key_prefix + ":".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
