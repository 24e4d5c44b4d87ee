"""Capture reading: pcap in micro- and nanoseconds, both byte orders, pcapng, damaged files."""
import struct

import pytest

from ubpkt.capture import CaptureError, PcapWriter, open_capture
from ubpkt.capture.stream import iter_records

FRAME = bytes.fromhex("00090000000100100000000003000001")  # CFG 9 compact TAACK-ish bytes


def _pcap(endian: str, nano: bool, records) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, 148)
    for sec, frac, data in records:
        out += struct.pack(endian + "IIII", sec, frac, len(data), len(data) + 2) + data
    return out


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_variants(tmp_path, endian, nano):
    p = tmp_path / "x.pcap"
    p.write_bytes(_pcap(endian, nano, [(1, 5, FRAME), (2, 7, FRAME[:6])]))
    with open_capture(p) as cap:
        pkts = list(cap)
    assert cap.linktype == 148 and len(pkts) == 2
    assert pkts[0].time_ns == 1_000_000_000 + (5 if nano else 5000)
    assert pkts[0].data == FRAME and pkts[0].orig_len == len(FRAME) + 2
    assert pkts[1].data == FRAME[:6]


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def test_pcapng(tmp_path):
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    # interface with if_tsresol = 9 (nanoseconds)
    idb = _block(1, struct.pack("<HHI", 148, 0, 65535) + struct.pack("<HHB3x", 9, 1, 9)
                 + struct.pack("<HH", 0, 0))
    ts = 1_500_000_123
    epb = _block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(FRAME), 40) + FRAME)
    p = tmp_path / "x.pcapng"
    p.write_bytes(shb + idb + epb + epb)
    with open_capture(p) as cap:
        pkts = list(cap)
    assert cap.format == "pcapng" and cap.linktype == 148
    assert [(q.time_ns, q.data, q.orig_len) for q in pkts] == [(ts, FRAME, 40)] * 2
    recs = list(iter_records(p))
    assert recs[0]["layers"][0] == "ub.lph" and recs[0]["len"] == 40


def test_truncated_and_garbage_files(tmp_path):
    p = tmp_path / "t.pcap"
    p.write_bytes(_pcap("<", True, [(1, 1, FRAME)])[:-3])
    with open_capture(p) as cap:
        assert list(cap) == [] and cap.truncated
    g = tmp_path / "g.pcap"
    g.write_bytes(b"\x00" * 40)
    with pytest.raises(CaptureError):
        open_capture(g)


def test_writer_round_trip(tmp_path):
    p = tmp_path / "w.pcap"
    with PcapWriter(p, 1, nanosecond=False) as w:
        w.write(b"abc", 3_000_001_000)
    with open_capture(p) as cap:
        (pkt,) = list(cap)
    assert (pkt.time_ns, pkt.data, cap.linktype) == (3_000_001_000, b"abc", 1)
