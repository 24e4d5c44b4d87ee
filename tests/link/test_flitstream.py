import io
import random

import pytest

from click.testing import CliRunner

from ubpkt.record import LINKTYPE_FLITS, RECORD_KEYS
from ubpkt.capture import PcapWriter, open_capture
from ubpkt.link import control as C
from ubpkt.link import fill_plength, frame_packet
from ubpkt.dissect.flitstream import decode_flit_stream
from ubpkt.profile import SPEC

KEYS = set(RECORD_KEYS)


def packets(n=30, seed=1):
    rng = random.Random(seed)
    return [fill_plength(bytes((0, 6, 0, 0)) + rng.randbytes(rng.randrange(30, 2500)))
            for _ in range(n)]


def test_records_for_blocks_and_packets():
    ps = packets(5)
    stream = C.null() + b"".join(frame_packet(p) + C.crd_ack(1, [1] * 16) for p in ps)
    recs = list(decode_flit_stream(stream))
    assert all(set(r) == KEYS for r in recs)
    kinds = [r["fields"]["ub.dll.kind"] for r in recs]
    assert kinds == ["DLLCB"] + ["DLLDP", "DLLCB"] * 5
    assert [r["frame"] for r in recs] == list(range(1, 12))
    d = recs[1]
    assert d["layers"][:2] == ["ub.flits", "ub.dlldp"] and "ub.lph" in d["layers"]
    assert d["fields"]["ub.bcrc.status"] in ("good", ["good"] * d["fields"]["ub.dlldp.blocks"])
    assert not [i for i in d["issues"] if i["layer"] in ("ub.bcrc", "ub.lbh", "ub.dlldp")]
    assert recs[2]["fields"]["ub.crd_ack.crd_vl0"] == 1


def test_sources_and_times(tmp_path):
    ps = packets(10)
    path = tmp_path / "f.pcap"
    with PcapWriter(path, LINKTYPE_FLITS) as w:
        for i, p in enumerate(ps):
            f = frame_packet(p)
            w.write(f[:40], 1000 * i)          # split a DLLDP over two records
            w.write(f[40:], 1000 * i + 500)
    recs = list(decode_flit_stream(str(path)))
    assert [r["time"] for r in recs] == pytest.approx([1e-6 * i for i in range(10)])
    assert len(list(decode_flit_stream(open_capture(path)))) == 10
    raw = b"".join(frame_packet(p) for p in ps)
    (tmp_path / "f.raw").write_bytes(raw)
    assert len(list(decode_flit_stream(str(tmp_path / "f.raw")))) == 10
    assert len(list(decode_flit_stream(io.BytesIO(raw), chunk_size=333))) == 10


def test_bad_streams_do_not_raise():
    rng = random.Random(3)
    raw = bytearray(b"".join(frame_packet(p) for p in packets(5)))
    for _ in range(40):
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    recs = list(decode_flit_stream(bytes(raw) + b"\x01\x02\x03"))
    assert recs and any(i["severity"] == "error" for r in recs for i in r["issues"])
    list(decode_flit_stream(bytes(raw), SPEC.with_(crc_mode=False)))
    list(decode_flit_stream(b""))


def test_cli_frame_deframe(tmp_path):
    from ubpkt_cli.main import main
    ps = packets(20, 5)
    src = tmp_path / "in.pcap"
    with PcapWriter(src, 148) as w:
        for i, p in enumerate(ps):
            w.write(p, i)
    r = CliRunner()
    for extra in ([], ["--controls"], ["--non-crc"]):
        out = tmp_path / "f.pcap"
        res = r.invoke(main, ["link", "frame", str(src), "-o", str(out)] + extra)
        assert res.exit_code == 0, res.output
        back = tmp_path / "b.pcap"
        res = r.invoke(main, ["link", "deframe", str(out), "-o", str(back)]
                       + (["--non-crc"] if "--non-crc" in extra else []))
        assert res.exit_code == 0, res.output
        got = [p.data for p in open_capture(back)]
        if "--controls" in extra:             # the engine owns the LPH CRD/ACK bits
            got = [bytes((g[0] & 3,)) + g[1:] for g in got]
        assert got == [fill_plength(p, "--non-crc" not in extra) for p in ps]
    res = r.invoke(main, ["link", "show", str(tmp_path / "f.pcap"), "--non-crc", "-c", "3"])
    assert res.exit_code == 0 and len(res.output.splitlines()) == 3
