"""Prometheus metrics of the worker, exported at ``GET /metrics``."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter("sv_events_consumed_total", "Messages read from the events topic")
EVENTS_APPLIED = Counter("sv_events_applied_total", "Distinct valid events applied to Redis")
EVENTS_REJECTED = Counter("sv_events_rejected_total", "Messages sent to the dead-letter topic", ["error"])
EVENTS_SKIPPED = Counter(
    "sv_events_skipped_total", "Deliveries not applied again", ["why"]  # duplicate | redelivery
)
BATCH_SECONDS = Histogram(
    "sv_batch_seconds", "Time to process one ingest batch",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram("sv_batch_events", "Messages per ingest batch",
                       buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000))
REDIS_RETRIES = Counter("sv_redis_retries_total", "Redis calls retried after a transient error")
LAST_EVENT_TS = Gauge("sv_last_event_ts_ms", "Event time of the newest applied event")
