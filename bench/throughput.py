#!/usr/bin/env python3
"""Events/s of the full pipeline against a bare Faust agent, measured in the same run.

    python3 bench/throughput.py [--events 50000]

Needs Kafka and Redis (scripts/services.sh start). The same simulated events are produced once
to a fresh topic; then (1) a bare Faust agent that only iterates them and (2) the real worker
(validation, catalog joins, the Redis batch script, stage 2 profiles and recommendations)
each consume them from the beginning. Time is measured from the first message seen to the last
one processed (bare: the agent's count; pipeline: ``stats:ingest applied`` and every profile
update of stage 2 through the ``by-user`` offsets).
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import click
import orjson
import redis

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from models.simulation import TrafficModel  # noqa: E402
from stream_app.settings import Settings  # noqa: E402
from stream_app.topics import ensure_topics  # noqa: E402
from tests.integration.harness import Namespace, produce  # noqa: E402


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


@click.command()
@click.option("--events", "n_events", default=50_000, show_default=True)
def main(n_events: int) -> None:
    ns = Namespace("bench", partitions=4)
    settings: Settings = ns.settings()
    asyncio.run(ensure_topics(settings))
    model = TrafficModel(seed=7)
    start_ts = int(time.time() * 1000)
    events = list(model.events(n_events, start_ts=start_ts, rate_per_s=1000))
    asyncio.run(produce(ns.campaigns, [(c["campaign_id"].encode(), orjson.dumps(c)) for c in model.campaigns()]))
    asyncio.run(produce(ns.videos, [(v["video_id"].encode(), orjson.dumps(v)) for v in model.videos()]))
    asyncio.run(produce(ns.users, [(u["user_id"].encode(), orjson.dumps(u)) for u in model.users()]))
    asyncio.run(produce(ns.events, [(e["user_id"].encode(), orjson.dumps(e)) for e in events]))
    r = redis.Redis()

    # 1. bare agent
    key = f"{ns.prefix}bench:bare"
    env = dict(os.environ, BENCH_TOPIC=ns.events, BENCH_EXPECTED=str(n_events), BENCH_KEY=key,
               BENCH_APP_ID=f"{ns.tag}-bare")
    bare = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "bare_agent.py"), "worker", "-l", "warn"],
                            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: r.hget(key, "done"), 600, "the bare agent")
    finally:
        bare.terminate()
        bare.wait()
    bare_s = float(r.hget(key, "done")) - float(r.hget(key, "first"))

    # 2. the full pipeline
    stats = f"{ns.prefix}stats:ingest"
    worker = subprocess.Popen([sys.executable, "-m", "stream_app.cli", "worker"], env=ns.env(), cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: r.hget(stats, "applied") is not None, 600, "the first applied batch")
        first = time.time()
        wait(lambda: int(r.hget(stats, "applied") or 0) >= n_events, 1200, "stage 1")
        stage1_s = time.time() - first
        by_user = f"{ns.prefix}offsets:{ns.tag}-app:by-user"
        wait(lambda: sum(int(v) + 1 for v in r.hvals(by_user)) >= n_events, 1200, "stage 2")
        both_s = time.time() - first
    finally:
        worker.terminate()
        worker.wait()
    for key_ in r.scan_iter(match=f"{ns.prefix}*", count=1000):
        r.unlink(key_)

    print(f"events: {n_events} (4 partitions, simulated traffic)")
    print(f"bare Faust agent:          {n_events / bare_s:9.0f} events/s  ({bare_s:.1f} s)")
    print(f"pipeline, stage 1 applied: {n_events / stage1_s:9.0f} events/s  ({stage1_s:.1f} s)  "
          f"ratio {bare_s / stage1_s:.2f}x of bare")
    print(f"pipeline, stages 1 and 2:  {n_events / both_s:9.0f} events/s  ({both_s:.1f} s)  "
          f"ratio {bare_s / both_s:.2f}x of bare")


if __name__ == "__main__":
    main()
