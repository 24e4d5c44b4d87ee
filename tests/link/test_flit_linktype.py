"""Issue 13: flit streams are written as pcap link type 151 (LINKTYPE_USER4: 149, USER2, is
Wireshark's PKTAP), and captures of the old number 149 are still read as flit streams by every
reader: the stream decoders (``ubpkt decode``), ``link show/deframe`` and ``phy tx``."""
from __future__ import annotations

import json
import random
import struct

from click.testing import CliRunner

from ubpkt.capture import PcapWriter, open_capture
from ubpkt.capture.stream import iter_ndjson, iter_records
from ubpkt.link import control as C
from ubpkt.link import fill_plength, frame_packet
from ubpkt.record import FLIT_LINKTYPES, LINKTYPE_FLITS, LINKTYPE_FLITS_OLD, LINKTYPE_NAMES
from ubpkt_cli.main import main


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def _stream():
    rng = random.Random(5)
    ps = [fill_plength(bytes((0, 9, 0, 0)) + rng.randbytes(rng.randrange(20, 1500)))
          for _ in range(6)]
    return [C.null()] + [frame_packet(p) + C.crd_ack(2, [3] * 16) for p in ps]


def _write(path, linktype, chunks):
    with PcapWriter(path, linktype) as w:
        for i, c in enumerate(chunks):
            w.write(c, 1000 * i)


def _linktype_of(path) -> int:
    with open(path, "rb") as fh:
        return struct.unpack("<I", fh.read(24)[20:24])[0]


def test_numbers():
    assert LINKTYPE_FLITS == 151 and LINKTYPE_FLITS_OLD == 149
    assert FLIT_LINKTYPES == {149, 151} and LINKTYPE_NAMES["flits"] == 151
    assert len(set(LINKTYPE_NAMES.values())) == len(LINKTYPE_NAMES)     # no number used twice


def test_old_number_decodes_like_the_new(tmp_path):
    chunks = _stream()
    new, old = tmp_path / "new.pcap", tmp_path / "old.pcap"
    _write(new, LINKTYPE_FLITS, chunks)
    _write(old, LINKTYPE_FLITS_OLD, chunks)
    a, b = list(iter_records(new)), list(iter_records(old))
    assert len(a) == 13 and a == b
    assert [r["fields"]["ub.dll.kind"] for r in a] == ["DLLCB"] + ["DLLDP", "DLLCB"] * 6
    assert all(r["linktype"] == LINKTYPE_FLITS for r in a)
    assert b"".join(iter_ndjson(new)) == b"".join(iter_ndjson(old))


def test_cli_writes_151_and_reads_149(tmp_path):
    native = tmp_path / "n.pcap"
    rng = random.Random(2)
    with PcapWriter(native, 148) as w:
        for i in range(4):
            w.write(bytes((0, 9, 0, 0)) + rng.randbytes(100 + 300 * i), i)
    flits = tmp_path / "f.pcap"
    r = run("link", "frame", native, "-o", flits)
    assert r.exit_code == 0, r.output
    assert _linktype_of(flits) == 151
    with open_capture(flits) as cap:
        recs = [p.data for p in cap]
    old = tmp_path / "old.pcap"
    _write(old, 149, recs)
    r = run("link", "show", old, "--json")
    assert r.exit_code == 0, r.output
    shown = [json.loads(line) for line in r.stdout.splitlines()]
    assert [s["fields"]["ub.dll.kind"] for s in shown] == ["DLLDP"] * 4
    out = tmp_path / "back.pcap"
    r = run("link", "deframe", old, "-o", out)
    assert r.exit_code == 0, r.output
    with open_capture(out) as cap:
        assert len(list(cap)) == 4
    r = run("decode", "-r", old, "-T", "json")
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.stdout)) == 4
    r = run("phy", "tx", old, "-o", tmp_path / "l.npz")
    assert r.exit_code == 0, r.output
    # a capture of neither number is refused
    r = run("link", "show", native)
    assert r.exit_code == 2 and "not a flit stream (151" in r.stderr
