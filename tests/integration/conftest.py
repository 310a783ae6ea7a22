"""Fixtures for tests against the real Kafka and Redis started by scripts/test.sh."""
from __future__ import annotations

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from tests.integration.harness import REDIS_URL, Namespace, Worker
from stream_app.topics import ensure_topics

pytestmark = pytest.mark.services


@pytest_asyncio.fixture
async def redis_client():
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        await client.ping()
    except Exception as exc:  # the services are part of the test, not optional
        pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); run the tests with scripts/test.sh")
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def namespace(redis_client, request):
    ns = Namespace(request.node.name)
    await ensure_topics(ns.settings(), timeout_s=30)
    yield ns
    # Leave Kafka topics (cheap) but remove this test's Redis keys, a thousand at a time.
    await delete_prefix(redis_client, ns.prefix)


async def delete_prefix(redis_client, prefix: str) -> None:
    chunk = []
    async for key in redis_client.scan_iter(match=f"{prefix}*", count=1000):
        chunk.append(key)
        if len(chunk) == 1000:
            await redis_client.unlink(*chunk)
            chunk = []
    if chunk:
        await redis_client.unlink(*chunk)


@pytest.fixture
def workers():
    """Start workers with ``workers(ns)``; all are stopped at the end of the test."""
    started: list[Worker] = []

    def start(ns: Namespace, name: str = "worker", **env: str) -> Worker:
        worker = Worker(ns, name=f"{name}{len(started)}", **env).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
