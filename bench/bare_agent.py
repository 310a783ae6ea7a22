"""The baseline of bench/throughput.py: a bare Faust agent that only counts raw messages.

Run by the benchmark as ``python bench/bare_agent.py worker``; it records in Redis when it
saw the first message and when it reached the expected count.
"""
import os
import time

import faust
import redis

TOPIC = os.environ["BENCH_TOPIC"]
EXPECTED = int(os.environ["BENCH_EXPECTED"])
KEY = os.environ["BENCH_KEY"]

app = faust.App(os.environ["BENCH_APP_ID"], broker=f"kafka://{os.environ.get('KAFKA_BOOTSTRAP_SERVERS', '127.0.0.1:9092')}",
                value_serializer="raw", key_serializer="raw", consumer_auto_offset_reset="earliest",
                web_enabled=False, topic_disable_leader=True)
source = app.topic(TOPIC, value_type=bytes)
client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))


@app.agent(source)
async def count(stream):
    seen = 0
    async for _ in stream:
        if seen == 0:
            client.hset(KEY, "first", time.time())
        seen += 1
        if seen == EXPECTED:
            client.hset(KEY, "done", time.time())


if __name__ == "__main__":
    app.main()
