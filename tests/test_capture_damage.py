"""Damaged captures (the fuzzing campaign's matrix of issue 12) as fixtures: each says what is
wrong and where (record or block number, byte offset), every readable frame is decoded, and the
command exits 2 as tshark does, on the record, ndjson and ``-j`` paths alike; no length in a file
sizes an allocation."""
import json
import resource
import struct
import subprocess
import sys

import pytest
from click.testing import CliRunner

from capture_fixtures import block, epb, idb, pcap, shb
from ubpkt.capture import CaptureError, open_capture
from ubpkt.capture.pcap import MAX_RECORD_BYTES
from ubpkt.capture.stream import DamagedCapture, iter_ndjson, iter_records
import ubpkt_cli.decode_cmd as decode_cmd
from ubpkt_cli.main import main

UB = bytes.fromhex("00090000000100100000000003000001")   # a raw UB packet (linktype 148)


def run(*args, input=None):
    return CliRunner().invoke(main, list(map(str, args)), input=input)   # click 8.2: .stderr


def _records(n, **kw):
    return [(i, i, UB) for i in range(n)]


def _offset(k: int) -> int:
    """Byte offset of record k (1-based) in a pcap of UB records."""
    return 24 + (k - 1) * (16 + len(UB))


def _lying(n_before=5, n_after=19, incl=0x7FFFFFFF):
    recs = _records(n_before) + [(9, 9, UB, incl)] + _records(n_after)
    return pcap(recs, 148)


# --- classic pcap ---------------------------------------------------------------------------

def test_lying_caplen_mid_file_every_path(tmp_path, monkeypatch):
    p = tmp_path / "lying.pcap"
    p.write_bytes(_lying())
    want = f"record 6 at byte offset {_offset(6)}: captured length 2147483647"
    # the record API: 5 frames, then the problem
    recs = list(iter_records(p))
    assert [r["frame"] for r in recs[:-1]] == [1, 2, 3, 4, 5]
    assert recs[-1]["truncated"] and want in str(recs[-1]["problems"][0])
    for fmt in ("summary", "ndjson", "json"):
        r = run("decode", "-T", fmt, p)
        assert r.exit_code == 2, (fmt, r.stderr)
        assert want in r.stderr and "Traceback" not in r.stderr
    r = run("decode", "-T", "ndjson", p)
    assert len(r.stdout.splitlines()) == 5
    r = run("decode", "-T", "json", p)
    assert len(json.loads(r.stdout)) == 5       # a whole JSON document, then exit 2
    # -j: the segmenter reports the same record, the frames before it are decoded
    monkeypatch.setattr(decode_cmd, "_FORCE_SMALL_PARALLEL", True)
    out = tmp_path / "out.ndjson"
    r = subprocess.run([sys.executable, "-c",
                        "import sys, ubpkt_cli.decode_cmd as d; d._FORCE_SMALL_PARALLEL = True; "
                        "from ubpkt_cli.main import main; main()",
                        "decode", "-T", "ndjson", "-j", "2", str(p)],
                       stdout=open(out, "wb"), stderr=subprocess.PIPE, timeout=120)
    assert r.returncode == 2 and want.encode() in r.stderr and b"Traceback" not in r.stderr
    assert len(out.read_bytes().splitlines()) == 5


def test_truncated_record_and_header(tmp_path):
    full = pcap(_records(4), 148)
    cut_body = tmp_path / "body.pcap"
    cut_body.write_bytes(full[:-5])
    r = run("decode", "-T", "ndjson", cut_body)
    assert r.exit_code == 2 and len(r.stdout.splitlines()) == 3
    assert (f"record 4 at byte offset {_offset(4)}: the file ends inside the record: captured "
            f"length {len(UB)}, {len(UB) - 5} bytes left") in r.stderr
    cut_head = tmp_path / "head.pcap"
    cut_head.write_bytes(full + b"\x01" * 7)
    r = run("decode", cut_head)
    assert r.exit_code == 2 and len(r.stdout.splitlines()) == 4
    assert f"record 5 at byte offset {_offset(5)}: the file ends inside the record header " \
           "(7 of 16 bytes)" in r.stderr
    short = tmp_path / "short.pcap"
    short.write_bytes(full[:20])
    r = run("decode", short)
    assert r.exit_code == 2 and "truncated pcap file header" in r.stderr and not r.stdout


def test_bad_magic_and_missing_file_exit_2(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\x00\x01\x02\x03" + b"\0" * 40)
    for cmd in (["decode"], ["decode", "-T", "ndjson"], ["decode", "-T", "json"], ["stats"]):
        r = run(*cmd, bad)
        assert r.exit_code == 2 and "not a pcap or pcapng file" in r.stderr, (cmd, r.stderr)
        assert r.stdout == ""          # -T json: no stray "[" before failing
        r = run(*cmd, tmp_path / "nope.pcap")
        assert r.exit_code == 2 and "no such file" in r.stderr and r.stdout == ""


def test_fraction_of_a_second_too_large(tmp_path):
    p = tmp_path / "frac.pcap"
    p.write_bytes(pcap([(1, 0, UB), (2, 1_000_000_000, UB), (3, 0, UB)], 148, nano=True))
    r = run("decode", "-T", "ndjson", p)
    assert r.exit_code == 2 and len(r.stdout.splitlines()) == 3     # reported, still decoded
    assert (f"record 2 at byte offset {_offset(2)}: nanosecond fraction 1000000000 is not below "
            "1000000000") in r.stderr
    us = tmp_path / "frac_us.pcap"
    us.write_bytes(pcap([(1, 1_000_000, UB)], 148, nano=False))
    r = run("decode", us)
    assert r.exit_code == 2 and "microsecond fraction 1000000" in r.stderr


def test_caplen_ffffffff_on_the_ndjson_path_allocates_nothing(tmp_path):
    """Under a 1 GiB address-space limit a 4 GiB length must not even be attempted."""
    p = tmp_path / "ff.pcap"
    p.write_bytes(_lying(2, 3, 0xFFFFFFFF))
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "from ubpkt_cli.main import main; main()")
    for fmt in ("ndjson", "summary"):
        r = subprocess.run([sys.executable, "-c", code, "decode", "-T", fmt, str(p)],
                           capture_output=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert b"MemoryError" not in r.stderr and b"captured length 4294967295" in r.stderr
        assert len(r.stdout.splitlines()) == 2


def test_segmenter_skips_a_long_record_without_buffering_it(tmp_path):
    """-j: a record length inside the bound but longer than a read chunk is skipped by seeking
    (the segmenter keeps one chunk), and one running past the end of the file is reported."""
    from ubpkt.capture.parallel import _segments
    big = b"\0" * (5 << 20)
    p = tmp_path / "big.pcap"
    p.write_bytes(pcap(_records(3) + [(7, 7, big)] + _records(2), 148))
    problems = []
    segs = list(_segments(p, problems))
    assert problems == [] and sum(s[1] for s in segs) == p.stat().st_size - 24
    lie = tmp_path / "lie.pcap"
    lie.write_bytes(pcap(_records(3) + [(7, 7, UB, MAX_RECORD_BYTES)] + _records(2), 148))
    problems = []
    segs = list(_segments(lie, problems))
    assert sum(s[1] for s in segs) == _offset(4) - 24
    assert str(problems[0]).startswith(f"record 4 at byte offset {_offset(4)}: the file ends "
                                       f"inside the record: captured length {MAX_RECORD_BYTES}")


# --- pcapng ---------------------------------------------------------------------------------

def _ng(*blocks) -> bytes:
    return shb() + idb(148, 9) + b"".join(blocks)


def _epb(k=0):
    return epb(0, 1_000_000_000 + k, UB)


OFF_EPB = len(shb()) + len(idb(148, 9))     # offset of the first block after SHB + IDB


@pytest.mark.parametrize("name,data,message,frames", [
    ("idb-short", shb() + block(1, b"\x01\x00") + _epb(),
     f"block 2 at byte offset {len(shb())}: interface description body of 4 bytes is under "
     "the minimum of 8", 0),
    ("epb-short", _ng(_epb(), block(6, b"\0" * 12), _epb()),
     f"block 4 at byte offset {OFF_EPB + len(_epb())}: enhanced packet block body of 12 bytes "
     "is under the minimum of 20", 2),
    ("huge-block", _ng(_epb(), struct.pack("<II", 6, 0xFFFFFFFC) + b"\0" * 64),
     f"block 4 at byte offset {OFF_EPB + len(_epb())}: block total length 4294967292 is larger "
     "than the maximum", 1),
    ("under-minimum", _ng(_epb(), struct.pack("<II", 6, 8) + b"\0" * 8),
     "block total length 8 is under the minimum of 12", 1),
    ("trailer-mismatch", _ng(_epb(), block(6, _epb()[8:-4], trailer=999)),
     "trailing block length 999 differs from the leading one", 1),
    ("missing-interface", _ng(_epb(), epb(3, 5, UB), _epb()),
     f"block 4 at byte offset {OFF_EPB + len(_epb())}: enhanced packet block names interface "
     "3, but the section describes 1", 2),
    ("caplen-past-block", _ng(epb(0, 5, UB, caplen=4000), _epb()),
     "captured length 4000 is more than the 16 bytes the block holds", 1),
    ("truncated-block", _ng(_epb(), _epb())[:-6],
     f"block 4 at byte offset {OFF_EPB + len(_epb())}: the file ends inside the block", 1),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "")
def test_pcapng_damage_matrix(tmp_path, name, data, message, frames):
    p = tmp_path / f"{name}.pcapng"
    p.write_bytes(data)
    for fmt in ("ndjson", "summary"):
        r = run("decode", "-T", fmt, p)
        assert r.exit_code == 2, (name, r.stderr, r.exception)
        assert message in r.stderr, (name, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stdout.splitlines()) == frames


def test_pcapng_byte_order_magic(tmp_path):
    p = tmp_path / "bom.pcapng"
    p.write_bytes(shb(bom=0x11223344) + idb(148) + _epb())
    with pytest.raises(CaptureError, match="byte-order magic"):
        open_capture(p)
    r = run("decode", p)
    assert r.exit_code == 2 and "byte-order magic 44332211" in r.stderr
    # a second section with a bad one: the first section's frames, then the problem
    p.write_bytes(_ng(_epb()) + shb(bom=0x11223344) + idb(148) + _epb())
    r = run("decode", p)
    assert r.exit_code == 2 and len(r.stdout.splitlines()) == 1
    assert f"block 4 at byte offset {OFF_EPB + len(_epb())}: section header byte-order magic" \
           in r.stderr


def test_big_endian_pcapng_and_timestamps_past_2_32_seconds(tmp_path):
    t = (1 << 32) * 1_000_000_000 + 123_456_789      # 2^32 s and then some
    p = tmp_path / "be.pcapng"
    p.write_bytes(shb(">") + idb(148, 9, ">") + epb(0, t, UB, ">")
                  + idb(148, 0x80 | 30, ">") + epb(1, 3 << 30, UB, ">"))
    with open_capture(p) as cap:
        pkts = list(cap)
    assert cap.problems == []
    assert pkts[0].time_ns == t and pkts[1].time_ns == 3_000_000_000   # 2^-30 s units, exact
    assert [p.iface for p in pkts] == [0, 1]
    r = run("decode", "-T", "ndjson", p)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 2


def test_problems_are_bounded(tmp_path):
    from ubpkt.capture.pcap import MAX_PROBLEMS_KEPT
    p = tmp_path / "many.pcap"
    p.write_bytes(pcap([(1, 2_000_000_000, UB)] * (MAX_PROBLEMS_KEPT + 50), 148))
    with pytest.raises(DamagedCapture) as e:
        b"".join(iter_ndjson(p))
    assert len(e.value.problems) == MAX_PROBLEMS_KEPT and e.value.count == MAX_PROBLEMS_KEPT + 50
    r = run("decode", p)
    assert r.exit_code == 2 and "and 50 more problems" in r.stderr
