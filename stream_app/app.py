"""The Faust application: one place that knows the settings, topics and shared clients.

Agents live in their own modules and register themselves on import (see the bottom of this
file); the CLI starts the worker with ``stream-app worker``.
"""
from __future__ import annotations

from pathlib import Path

import faust

from stream_app.settings import get_settings
from stream_app.writes import KeySpace

settings = get_settings()
datadir = Path(settings.data_dir) / settings.app_id
datadir.mkdir(parents=True, exist_ok=True)

app = faust.App(
    settings.app_id,
    broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap_servers.split(",")],
    store="memory://",
    value_serializer="raw",
    key_serializer="raw",
    topic_partitions=settings.partitions,
    topic_disable_leader=True,
    consumer_auto_offset_reset="earliest",
    web_host=settings.web_host,
    web_port=settings.web_port,
    web_in_thread=False,
    datadir=str(datadir),
    # Our batches are idempotent (see stream_app/redis_store.py); Faust's own
    # exactly-once mode is not used.
    processing_guarantee="at_least_once",
    producer_acks=-1,
    broker_session_timeout=settings.session_timeout_s,
    broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    stream_buffer_maxsize=max(4096, settings.batch_size * 2),
)

keys = KeySpace(settings.key_prefix)

events_topic = app.topic(settings.events_topic, value_type=bytes, key_type=bytes,
                         partitions=settings.partitions)
dlq_topic = app.topic(settings.dlq_topic, value_type=bytes, key_type=bytes,
                      partitions=settings.partitions)
by_user_topic = app.topic(settings.by_user_topic, value_type=bytes, key_type=bytes,
                          partitions=settings.partitions)

# Register agents, tasks and pages.
from stream_app import catalog_sync  # noqa: E402,F401  (imports register agents and tasks)
from stream_app import ingest  # noqa: E402,F401
from stream_app import resolver  # noqa: E402,F401
from stream_app import per_user  # noqa: E402,F401
from stream_app import web  # noqa: E402,F401
