"""Real Kafka and Redis for integration tests: isolated names, a worker subprocess, polling.

Each test gets its own topic names, consumer group (app id), Redis key prefix and HTTP port,
so tests never see each other's data and need no cleanup between them. Nothing here is
mocked: the services are the ones ``scripts/test.sh`` started (or ``KAFKA_BOOTSTRAP_SERVERS``
/ ``REDIS_URL``).
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Awaitable, Callable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Namespace:
    """Topic names, group id and key prefix unique to one test."""

    def __init__(self, label: str, partitions: int = 4):
        self.tag = f"t{uuid.uuid4().hex[:10]}"
        self.label = label
        self.partitions = partitions
        self.prefix = f"{self.tag}:"
        self.events = f"{self.tag}.events"
        self.dlq = f"{self.tag}.events.dlq"
        self.videos = f"{self.tag}.videos"
        self.campaigns = f"{self.tag}.campaigns"
        self.users = f"{self.tag}.users"
        self.alerts = f"{self.tag}.alerts"
        self.web_port = free_port()

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
            "REDIS_URL": REDIS_URL,
            "SV_APP_ID": f"{self.tag}-app",
            "SV_PARTITIONS": str(self.partitions),
            "SV_EVENTS_TOPIC": self.events,
            "SV_DLQ_TOPIC": self.dlq,
            "SV_VIDEOS_TOPIC": self.videos,
            "SV_CAMPAIGNS_TOPIC": self.campaigns,
            "SV_USERS_TOPIC": self.users,
            "SV_ALERTS_TOPIC": self.alerts,
            "SV_KEY_PREFIX": self.prefix,
            "SV_WEB_PORT": str(self.web_port),
            "SV_LOG_LEVEL": "warning",
        })
        env.update(extra)
        return env

    def settings(self):
        """The worker's :class:`Settings`, for helpers that create topics or read keys."""
        from stream_app.settings import Settings

        return Settings(
            kafka_bootstrap_servers=BOOTSTRAP, redis_url=REDIS_URL, app_id=f"{self.tag}-app",
            partitions=self.partitions, events_topic=self.events, dlq_topic=self.dlq,
            videos_topic=self.videos, campaigns_topic=self.campaigns, users_topic=self.users,
            alerts_topic=self.alerts, key_prefix=self.prefix, web_port=self.web_port,
        )


class Worker:
    """``stream-app worker`` in a subprocess, logging to a file under .state/test-logs."""

    def __init__(self, ns: Namespace, name: str = "worker", **env: str):
        self.ns = ns
        self.env = ns.env(**env)
        log_dir = ROOT / ".state" / "test-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{ns.tag}-{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Worker":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "stream_app.cli", "worker"], cwd=ROOT,
                                     env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no offset commit, no flush."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"

    def assert_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, what: str,
                     interval: float = 0.2, worker: Worker | None = None) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if worker is not None:
            worker.assert_alive()
        if await check():
            return
        if time.monotonic() > deadline:
            tail = f"\nworker log:\n{worker.log_tail()}" if worker else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")
        await asyncio.sleep(interval)


async def produce(topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    """Produce ``(key, value)`` pairs in order, waiting until every one is acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_all(topic: str, timeout: float = 60.0) -> list:
    """Every message of ``topic`` from the beginning up to its end offsets as of now."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)
    await consumer.start()
    out = []
    deadline = time.monotonic() + timeout
    try:
        partitions = list(consumer.assignment())
        while not partitions and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            partitions = list(consumer.assignment())
        end = await consumer.end_offsets(partitions)
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= end[tp] for pos, tp in zip(positions, partitions)):
                return out
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(records)
        raise AssertionError(f"could not read {topic} to its end within {timeout}s")
    finally:
        await consumer.stop()


def dumps(doc) -> bytes:
    return orjson.dumps(doc)
