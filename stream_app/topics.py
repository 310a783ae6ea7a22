"""Create the contract's topics (idempotently) before the worker subscribes to them."""
from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from stream_app.settings import Settings

log = logging.getLogger(__name__)

COMPACTED = {"cleanup.policy": "compact"}


def contract_topics(settings: Settings) -> list[NewTopic]:
    """Every topic of CONTRACT.md plus the internal per-user topic."""
    parts = settings.partitions
    return [
        NewTopic(settings.events_topic, parts, 1),
        NewTopic(settings.dlq_topic, parts, 1),
        NewTopic(settings.alerts_topic, parts, 1),
        NewTopic(settings.videos_topic, parts, 1, topic_configs=COMPACTED),
        NewTopic(settings.campaigns_topic, parts, 1, topic_configs=COMPACTED),
        NewTopic(settings.users_topic, parts, 1, topic_configs=COMPACTED),
        NewTopic(settings.by_user_topic, parts, 1),
    ]


async def ensure_topics(settings: Settings, timeout_s: float = 60.0) -> list[str]:
    """Create missing topics; return the names created. Waits for the broker up to ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            await admin.close()
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1)
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in contract_topics(settings) if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
            log.info("created topics %s", [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()
