"""ubpkt replay: the schedule (capture gaps, multiplier, pps, mbps, loop, limit), the pacing on
the wall clock measured by a UDP sink on 127.0.0.1 from kernel receive timestamps, the
dialect carriage, the CLI and its errors."""
from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ubpkt.capture.pcap import PcapWriter, open_capture
from ubpkt.dissect import decode
from ubpkt.drivers.generate import Stream, write_pcap
from ubpkt.drivers.replay import (RAW_UNAVAILABLE, ReplayConfig, UdpSender, load,
                                  open_sender, run_replay, schedule)
from ubpkt.drivers.rewrite import RewriteSpec
from ubpkt.drivers.udp import pseudo_header, udp_profile
from ubpkt.profile import SPEC

LO = "127.0.0.1"
CAPS = Path(__file__).resolve().parents[2] / "captures"
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class Sink:
    """A UDP socket on 127.0.0.1 recording (kernel arrival time ns, datagram) in a thread."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # room for the whole run (a Python reader on a loaded machine falls behind; the kernel
        # timestamps keep the arrival times): SO_RCVBUFFORCE passes rmem_max when root
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33),
                                 64 << 20)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        self.sock.bind((LO, 0))
        self.sock.settimeout(0.5)
        self.addr = self.sock.getsockname()
        self.got: list = []
        self._stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self._stop:
            try:
                data, anc, _fl, _a = self.sock.recvmsg(65536, 64)
            except socket.timeout:
                continue
            except OSError:
                return
            ts = None
            for level, typ, c in anc:
                if level == socket.SOL_SOCKET and typ == _SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", c[:16])
                    ts = sec * 1_000_000_000 + nsec
            self.got.append((ts, data))

    def wait(self, n, timeout=10.0):
        import time
        end = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < end:
            time.sleep(0.02)
        return self.got

    def close(self):
        self._stop = True
        self.t.join(2)
        self.sock.close()


@pytest.fixture
def sink():
    s = Sink()
    yield s
    s.close()


def _pcap(tmp_path, workload, count, name="g.pcap", pps=1000.0):
    path = tmp_path / name
    write_pcap(Stream(workload, count=count, field_engine={"sport": "fixed"}), path, pps=pps)
    return path


# -- the schedule (no clock) -------------------------------------------------------------------
def test_schedule_capture_gaps_multiplier_loop_limit():
    times = [1000, 3000, 7000]          # gaps 2 us, 4 us; mean gap 3 us
    out = list(schedule(times, [10] * 3))
    assert out == [(0, 0), (1, 2000), (2, 6000)]
    assert list(schedule(times, [10] * 3, multiplier=2)) == [(0, 0), (1, 1000), (2, 3000)]
    # loop: the next pass follows the last frame by the mean gap (span 6 us + 3 us)
    assert list(schedule(times, [10] * 3, loop=2)) == \
        [(0, 0), (1, 2000), (2, 6000), (0, 9000), (1, 11000), (2, 15000)]
    assert [i for i, _ in schedule(times, [10] * 3, loop=3, limit=7)] == [0, 1, 2, 0, 1, 2, 0]
    assert list(schedule(times, [10] * 3, limit=0)) == []
    # a timestamp going backwards sends at once
    assert list(schedule([5000, 4000], [1, 1])) == [(0, 0), (1, 0)]


def test_schedule_pps_mbps_topspeed():
    assert [o for _, o in schedule([0, 0, 0], [1] * 3, pps=4, loop=2)] == \
        [0, 250_000_000, 500_000_000, 750_000_000, 1_000_000_000, 1_250_000_000]
    # 1 Mbit/s: a 125-byte frame takes 1 ms, the next one leaves when it has
    assert [o for _, o in schedule([0, 0, 0], [125, 250, 1], mbps=1)] == \
        [0, 1_000_000, 3_000_000]
    assert {o for _, o in schedule([0, 10**9], [1, 1], topspeed=True)} == {0}
    for kw in ({"pps": 1, "mbps": 1}, {"pps": 0}, {"multiplier": 0}, {"loop": 0}):
        with pytest.raises(ValueError):
            list(schedule([0], [1], **kw))


# -- loading and carriage ----------------------------------------------------------------------
def test_load_skips_what_the_dialect_does_not_carry():
    ld = load(CAPS / "uboe_transactions.pcap")
    assert ld.frames_read == 23 and len(ld.data) == 23 and not ld.skipped
    with open_capture(CAPS / "uboe_transactions.pcap") as cap:
        frames = [bytes(p.data) for p in cap]
    ipv4 = [f for f in frames if decode(f, 1)["fields"].get("ip.version") == 4]
    assert set(ld.data) >= {f[42:] for f in ipv4}
    nat = load(CAPS / "ub_native.pcap")
    assert not nat.data and nat.skipped == {"linktype_148": nat.frames_read}
    ns3 = load(CAPS / "uboe_transactions.pcap", dialect="ns3")
    assert ns3.skipped == {"linktype_1": 23}


def test_ns3_dialect_carries_whole_native_frames(tmp_path, sink):
    from ubpkt.formats.samples import generate
    from ubpkt.profile import NS3
    from ubpkt.encode import encode_layers
    frames = [s.data for s in generate(NS3, linktypes=(147,)).samples][:20]
    assert frames
    path = tmp_path / "ns3.pcap"
    with PcapWriter(path, 147) as w:
        for i, f in enumerate(frames):
            w.write(f, i * 1000)
    rep = run_replay(ReplayConfig(str(path), to=sink.addr, topspeed=True, dialect="ns3"))
    assert rep["frames"] == len(frames) and not rep["skipped"]
    got = sink.wait(len(frames))
    assert [d for _, d in got] == frames


def test_rewritten_frames_arrive_with_a_good_icrc(tmp_path, sink):
    path = _pcap(tmp_path, "write:256*4", None)
    for fix, status in ((True, "good"), (False, "bad")):
        sink.got.clear()
        rep = run_replay(ReplayConfig(str(path), to=sink.addr, topspeed=True,
                                      rewrite=RewriteSpec(tpnmap={0x10: 0x11},
                                                          psn_rebase=100, fix_icrc=fix)))
        assert rep["frames"] == 4
        assert rep["rewrite"]["icrc_wrong"] == (0 if fix else 4)
        got = sink.wait(4)
        prof = udp_profile(SPEC, 4792)
        for k, (_, dg) in enumerate(got):
            # the generated frames' header, the datagram from the capture's UDP payload
            f = decode(pseudo_header("10.0.0.1", 49152, "10.0.0.2", 4792, len(dg)) + dg, 1,
                       prof)["fields"]
            assert f["ub.rtph.srctpn"] == 0x11 and f["ub.rtph.psn"] == 100 + k
            assert f["ub.icrc.status"] == status


# -- pacing on the wall clock ------------------------------------------------------------------
def _measured(got):
    t = [ts for ts, _ in got]
    span = (t[-1] - t[0]) / 1e9
    nbytes = sum(len(d) for _, d in got[:-1])
    return (len(got) - 1) / span, nbytes * 8 / span / 1e6


@pytest.mark.parametrize("kw,workload", [({"pps": 20000.0}, "atomic:cas"),
                                         ({"mbps": 100.0}, "write:1KiB")], ids=["pps", "mbps"])
def test_rate_within_5_percent_over_10k_frames(tmp_path, sink, kw, workload):
    path = _pcap(tmp_path, workload, 1000)
    rep = run_replay(ReplayConfig(str(path), to=sink.addr, loop=10, **kw))
    assert rep["frames"] == 10000 and rep["send_errors"] == 0
    got = sink.wait(10000)
    assert len(got) == 10000, f"the sink got {len(got)} of 10000 datagrams"
    assert all(ts is not None for ts, _ in got)
    pps, mbps = _measured(got)
    if "pps" in kw:
        assert abs(pps / kw["pps"] - 1) < 0.05, pps
        assert abs(rep["pps"] / kw["pps"] - 1) < 0.05
    else:
        assert abs(mbps / kw["mbps"] - 1) < 0.05, mbps
        assert abs(rep["mbps"] / kw["mbps"] - 1) < 0.05
    assert rep["requested"] == {"mode": next(iter(kw)), **kw}


def test_capture_timing_and_multiplier(tmp_path, sink):
    # 200 frames 1 ms apart: 199 ms as captured, about 50 ms at --multiplier 4
    path = _pcap(tmp_path, "atomic:cas", 200, pps=1000.0)
    for mult, want in ((1.0, 0.199), (4.0, 0.199 / 4)):
        sink.got.clear()
        rep = run_replay(ReplayConfig(str(path), to=sink.addr, multiplier=mult))
        got = sink.wait(200)
        assert len(got) == 200
        span = (got[-1][0] - got[0][0]) / 1e9
        assert abs(span / want - 1) < 0.05, (mult, span)
        assert rep["requested"] == {"mode": "capture", "multiplier": mult}


def test_limit_and_loop_count_frames_sent(tmp_path, sink):
    path = _pcap(tmp_path, "atomic:cas", 7)
    rep = run_replay(ReplayConfig(str(path), to=sink.addr, topspeed=True, loop=3, limit=16))
    assert rep["frames"] == 16
    got = sink.wait(16)
    with open_capture(path) as cap:
        pay = [bytes(p.data)[42:] for p in cap]
    assert [d for _, d in got] == (pay * 3)[:16]


def test_udp_sender_binds_loopback():
    s = open_sender(to=(LO, 9))
    assert isinstance(s, UdpSender) and s.local[0] == LO
    s.close()


# -- the CLI -----------------------------------------------------------------------------------
def _cli(*args):
    return subprocess.run([sys.executable, "-m", "ubpkt_cli", "replay", *args],
                          capture_output=True, text=True, env=dict(os.environ), timeout=60)


def test_cli_report_and_errors(tmp_path, sink):
    path = _pcap(tmp_path, "atomic:cas", 50)
    rpt = tmp_path / "r.json"
    p = _cli(str(path), "--to", f"{LO}:{sink.addr[1]}", "--pps", "5000", "--limit", "20",
             "--tpnmap", "0x10:0x30", "--report", str(rpt))
    assert p.returncode == 0, p.stderr
    rep = json.loads(rpt.read_text())
    assert rep["schema"] == "ubpkt.replay/1" and rep["frames"] == 20
    assert rep["rewrite"]["icrc_wrong"] == 50 and "wrong ICRC" in p.stderr
    assert p.stdout == ""
    bad = [
        ((str(path),), "give one destination"),
        ((str(path), "--to", "127.0.0.1:9", "--iface", "lo"), "give one destination"),
        ((str(path), "--to", "127.0.0.1:9", "--pps", "1", "--topspeed"), "exclude"),
        ((str(path), "--to", "127.0.0.1:9", "--tpnmap", "1:x"), "integers"),
        ((str(path), "--to", "127.0.0.1:9", "--dmac", "zz"), "MAC"),
        ((str(path), "--to", "127.0.0.1:9", "--srcip", "1.2.3"), "IPv4"),
        ((str(path), "--to", "127.0.0.1:9", "--psn-rebase", "0x1000000"), "24 bits"),
        ((str(path), "--to", "127.0.0.1:x"), "port"),
        ((str(path), "--to", "127.0.0.1:9", "--side", "1.2.3.4"), "--as-initiator"),
    ]
    for args, msg in bad:
        p = _cli(*args)
        assert p.returncode == 2 and msg in p.stderr and "Traceback" not in p.stderr, \
            (args, p.stderr)
    p = _cli(str(path), "--iface", "lo", "--topspeed")
    try:
        import ubpkt.drivers.raw  # noqa: F401
    except ImportError:
        assert p.returncode == 1 and RAW_UNAVAILABLE in p.stderr
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    p = _cli(str(junk), "--to", "127.0.0.1:9")
    assert p.returncode == 1 and "Traceback" not in p.stderr and "junk.pcap" in p.stderr
