"""The dead-letter record of ``CONTRACT.md``: what was refused, why, and where it came from."""
from __future__ import annotations

import orjson

from models.events import Rejection


def dead_letter_value(message, rejection: Rejection, received_ts: int) -> bytes:
    """``{"error", "reason", "raw", "topic", "partition", "offset", "received_ts"}`` as JSON.

    ``raw`` is the original value as text (bytes that are not UTF-8 are escaped, never dropped).
    """
    raw: bytes = message.value or b""
    return orjson.dumps({
        "error": rejection.error,
        "reason": rejection.reason,
        "raw": raw.decode("utf-8", errors="backslashreplace"),
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "received_ts": received_ts,
    })
