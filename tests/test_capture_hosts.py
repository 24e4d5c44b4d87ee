"""Captures a UB host really writes decode to the same UB records as the Ethernet (UBoE) form:
Linux cooked captures (SLL 113, SLL2 276: ``tcpdump -i any``), raw IP (101, 228, 229),
gzip-compressed pcap and pcapng, and standard input (``decode -``)."""
import gzip
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from capture_fixtures import cooked, epb, idb, pcap, sample_frames, shb
from ubpkt.capture import open_capture
from ubpkt.capture.stream import iter_ndjson, iter_records
from ubpkt_cli.main import main

CARRIER = {"eth", "sll", "sll2"}


def _ub_view(rec):
    """What must not depend on the link header: UB/IP/UDP fields, layers and issue messages."""
    fields = {k: v for k, v in rec["fields"].items() if k.split(".")[0] not in CARRIER}
    return ([lay for lay in rec["layers"] if lay not in CARRIER], fields,
            [(i["severity"], i["message"]) for i in rec["issues"]], rec["time"])


@pytest.fixture(scope="module")
def frames():
    fr = sample_frames()
    assert len(fr) > 10
    return fr


def _forms(frames):
    """linktype -> pcap records of the same packets in that link type's form."""
    def secs(t):
        return divmod(t, 1_000_000_000)

    ip_only = [(*secs(t), f[14:]) for t, f in frames]
    v4 = [(*secs(t), f[14:]) for t, f in frames if f[12:14] == b"\x08\x00"]
    return {
        1: [(*secs(t), f) for t, f in frames],
        113: [(*secs(t), cooked(f, 1)) for t, f in frames],
        276: [(*secs(t), cooked(f, 2)) for t, f in frames],
        101: ip_only,
        228: v4,
    }


@pytest.mark.parametrize("linktype", [113, 276, 101, 228])
def test_host_link_types_decode_like_ethernet(tmp_path, frames, linktype):
    forms = _forms(frames)
    eth = tmp_path / "eth.pcap"
    eth.write_bytes(pcap(forms[1], 1))
    other = tmp_path / f"lt{linktype}.pcap"
    other.write_bytes(pcap(forms[linktype], linktype))
    want = [_ub_view(r) for r in iter_records(eth)]
    if linktype == 228:
        want = [w for w, (_t, f) in zip(want, frames) if f[12:14] == b"\x08\x00"]
    got = list(iter_records(other))
    assert [_ub_view(r) for r in got] == want
    assert all(r["linktype"] == linktype for r in got)
    assert any(lay.startswith("ub.") for lay in got[0]["layers"])
    # the template fast path (ndjson) gives the same records as the full decoder
    # (with the exact time, as the JSON views write records: ubpkt.views.timefmt.json_view)
    from ubpkt.views.timefmt import FrameClock, json_view
    clock = FrameClock()
    exact = list(iter_records(other, exact_time=True))
    for r in exact:
        clock.stamp(r)
    lines = b"".join(iter_ndjson(other)).splitlines()
    assert [json.loads(x) for x in lines] == [json.loads(json.dumps(json_view(r)))
                                              for r in exact]


def test_cooked_header_fields(tmp_path, frames):
    t, f = frames[0]
    p = tmp_path / "sll2.pcap"
    p.write_bytes(pcap([(0, 0, cooked(f, 2))], 276))
    (rec,) = list(iter_records(p))
    assert rec["layers"][:2] == ["sll2", "ip" if f[12:14] == b"\x08\x00" else "ipv6"]
    assert rec["fields"]["sll.ifindex"] == 2 and rec["fields"]["sll.pkttype"] == 4


def test_raw_ipv6_link_type(tmp_path):
    from ubpkt.dissect import decode
    from scapy.layers.inet6 import IPv6
    from scapy.layers.inet import UDP
    import ubpkt.scapy as us
    pkt = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=50000, dport=4792)
                / us.UBRtph(psn=7) / us.UBBtah(taopcode="Write"))
    for lt in (101, 229):
        rec = decode(pkt, lt)
        assert rec["layers"][:3] == ["ipv6", "udp", "ub.rtph"], rec
        assert rec["fields"]["ub.rtph.psn"] == 7


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_gzip_captures(tmp_path, frames, kind):
    forms = _forms(frames)
    if kind == "pcap":
        plain = pcap(forms[113], 113)
    else:
        plain = shb() + idb(1, 9) + idb(113, 6) + b"".join(
            epb(i % 2, t if i % 2 == 0 else t // 1000, f if i % 2 == 0 else cooked(f, 1))
            for i, (t, f) in enumerate(frames))
    p, z = tmp_path / f"x.{kind}", tmp_path / f"x.{kind}.gz"
    p.write_bytes(plain)
    z.write_bytes(gzip.compress(plain))
    want = list(iter_records(p))
    assert len(want) == len(frames)
    assert list(iter_records(z)) == want
    assert b"".join(iter_ndjson(z)) == b"".join(iter_ndjson(p))
    with open_capture(z) as cap:
        assert cap.compressed and cap.format == kind


def test_gzip_cut_short_reports(tmp_path, frames):
    z = tmp_path / "cut.pcap.gz"
    z.write_bytes(gzip.compress(pcap(_forms(frames)[1], 1))[:-40])
    r = CliRunner().invoke(main, ["decode", "-T", "ndjson", str(z)])
    assert r.exit_code in (1, 2) and "Traceback" not in r.output


def test_decode_from_stdin(tmp_path, frames):
    data = pcap(_forms(frames)[276], 276)
    p = tmp_path / "x.pcap"
    p.write_bytes(data)
    runner = CliRunner()
    from_file = runner.invoke(main, ["decode", "-T", "ndjson", str(p)])
    for fmt in ("ndjson", "summary"):
        a = runner.invoke(main, ["decode", "-T", fmt, str(p)])
        b = runner.invoke(main, ["decode", "-T", fmt, "-"], input=data)
        assert a.exit_code == b.exit_code == 0, b.output
        assert a.output == b.output
    gz = runner.invoke(main, ["decode", "-T", "ndjson", "-"], input=gzip.compress(data))
    assert gz.exit_code == 0 and gz.output == from_file.output


def test_decode_from_a_real_pipe(tmp_path, frames):
    """A pipe cannot seek: the stream is read once, gzip detected from its first bytes."""
    data = gzip.compress(pcap(_forms(frames)[113], 113))
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "ubpkt_cli", "decode", "-T", "ndjson", "-j", "2",
                        "-"], input=data, capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == len(frames)
