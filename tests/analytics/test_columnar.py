"""The columnar fast path (issue 15) against the record path, row by row: varied traffic with
corrupted frames, the grammar samples of every link type, the bundled and interop captures, row
groups and blocks of odd sizes; the numpy bit cut against int.from_bytes."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from .conftest import assert_same_rows, dataset_records

pytest.importorskip("pyarrow")

from ubpkt.analytics import columnar  # noqa: E402
from ubpkt.analytics.export import export_capture  # noqa: E402
from ubpkt.analytics.rows import BatchBuilder  # noqa: E402
from ubpkt.analytics.traffic import write_samples, write_varied  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _both(cap, tmp_path, **kw):
    fast = dataset_records(export_capture(cap, tmp_path / "fast", **kw))
    slow = dataset_records(export_capture(cap, tmp_path / "slow", columnar=False, **kw))
    return fast, slow


@pytest.fixture
def record_path_frames(monkeypatch):
    """Counts the frames whose fields went through the record path (dicts, not cut in bulk)."""
    count = [0]
    orig = BatchBuilder.add_fields

    def add_fields(self, row, fields):
        count[0] += 1
        return orig(self, row, fields)
    monkeypatch.setattr(BatchBuilder, "add_fields", add_fields)
    return count


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_varied_traffic_with_corruption(tmp_path, seed, record_path_frames):
    cap = tmp_path / "v.pcap"
    write_varied(cap, 2500, seed=seed, corrupt=0.15)
    fast = dataset_records(export_capture(str(cap), tmp_path / "fast", payload=True,
                                          row_group=1000))
    via_records = record_path_frames[0]
    slow = dataset_records(export_capture(str(cap), tmp_path / "slow", payload=True,
                                          row_group=1000, columnar=False))
    assert_same_rows(fast, slow)
    # most frames were cut in bulk, corrupted ones (and first sightings) were not
    assert via_records < 0.25 * len(fast), via_records
    assert via_records > 0.1 * len(fast) * 0.5


@pytest.mark.parametrize("block, block_bytes", [(37, columnar.BLOCK_BYTES), (100000, 5000)])
def test_small_blocks_and_row_groups(tmp_path, monkeypatch, block, block_bytes):
    cap = tmp_path / "v.pcap"
    write_varied(cap, 1500, seed=9)
    monkeypatch.setattr(columnar, "BLOCK", block)
    monkeypatch.setattr(columnar, "BLOCK_BYTES", block_bytes)
    fast, slow = _both(str(cap), tmp_path, row_group=101)
    assert_same_rows(fast, slow)


def test_samples_of_every_link_type(tmp_path):
    for cap in write_samples(tmp_path / "caps", copies=4):
        fast, slow = _both(cap, tmp_path)
        assert_same_rows(fast, slow)


def test_bundled_and_interop(tmp_path):
    caps = sorted(str(p) for p in (ROOT / "captures").glob("*.pcap"))
    ns3 = Path("/work/shared/interop/ns3-ub")
    if (ROOT.parent / "shared" / "interop" / "ns3-ub").exists():
        ns3 = ROOT.parent / "shared" / "interop" / "ns3-ub"
    caps += sorted(str(p) for p in ns3.glob("*.pcap"))
    for cap in caps:
        fast, slow = _both(cap, tmp_path, payload=True)
        assert_same_rows(fast, slow)


def test_analysis_columns_the_same(tmp_path):
    cap = str(ROOT / "captures" / "uboe_transactions.pcap")
    fast, slow = _both(cap, tmp_path, analysis=True)
    assert_same_rows(fast, slow)


def test_cut_field_against_int_from_bytes():
    rnd = random.Random(5)
    rows = [rnd.randbytes(24) for _ in range(200)]
    m = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(200, 24)
    for _ in range(300):
        bits = rnd.randint(1, 64)
        bit = rnd.randrange(0, 24 * 8 - bits)
        got = columnar.cut_field(m, bit, bits)
        if (bit + bits + 7) // 8 - bit // 8 > 8:
            assert got is None
            continue
        want = [(int.from_bytes(r, "big") >> (24 * 8 - bit - bits)) & ((1 << bits) - 1)
                for r in rows]
        assert got.tolist() == want, (bit, bits)
