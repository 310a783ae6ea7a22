"""The skipped-offset guard's logic (stream_app/gaps.py) without Kafka: which ranges it re-reads."""
from types import SimpleNamespace

from stream_app.gaps import OffsetLedger, fill_gaps, highest_offsets


def rec(partition, offset):
    return SimpleNamespace(topic="ev", partition=partition, offset=offset, key=None, value=b"{}")


class RecordingFetcher:
    """Stands in for Kafka: returns the requested offsets and remembers each request."""

    def __init__(self):
        self.requests = []

    async def fetch(self, topic, partition, start, stop):
        self.requests.append((topic, partition, start, stop))
        return [rec(partition, o) for o in range(start, stop)]


def ledger_with(applied: dict) -> OffsetLedger:
    ledger = OffsetLedger("k")
    for tp, offset in applied.items():
        ledger.record(tp, offset)
        ledger._loaded.add(tp)
    return ledger


async def test_skipped_offsets_are_read_and_put_in_front():
    ledger = ledger_with({("ev", 0): 9, ("ev", 1): 20})
    fetcher = RecordingFetcher()
    batch = [rec(0, 13), rec(0, 14), rec(1, 21)]  # 10..12 of partition 0 never arrived
    out = await fill_gaps(batch, ledger, fetcher, client=None)
    assert fetcher.requests == [("ev", 0, 10, 13)]
    assert [(m.partition, m.offset) for m in out] == [(0, 10), (0, 11), (0, 12), (0, 13), (0, 14), (1, 21)]


async def test_no_reread_without_a_gap_or_a_recorded_offset():
    ledger = ledger_with({("ev", 0): 12})
    ledger._loaded.add(("ev", 2))  # looked up in Redis: nothing recorded for it
    fetcher = RecordingFetcher()
    batch = [rec(0, 13), rec(2, 500)]  # partition 2 has no recorded offset yet
    assert await fill_gaps(batch, ledger, fetcher, client=None) == batch
    assert fetcher.requests == []


def test_ledger_only_moves_forward_and_highest_offsets():
    ledger = OffsetLedger("k")
    ledger.record(("ev", 0), 5)
    ledger.record(("ev", 0), 3)
    assert ledger.applied == {("ev", 0): 5}
    assert highest_offsets([rec(0, 4), rec(0, 9), rec(1, 2)]) == {("ev", 0): 9, ("ev", 1): 2}
