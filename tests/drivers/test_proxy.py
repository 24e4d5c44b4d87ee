"""``ubpkt inject --proxy`` (the UDP man in the middle) and ``ubpkt inject FILE.pcap`` on
127.0.0.1 only, ports the kernel picks."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

from ubpkt.drivers.capture_requests import requests_from_capture
from ubpkt.drivers.inject import InjectConfig, run_inject
from ubpkt.drivers.proxy import Proxy, ProxyConfig
from ubpkt.drivers.proxy_path import ProxyDirection
from ubpkt.drivers.udp import HEADER_LEN, UdpPath, pseudo_header, udp_profile
from ubpkt.drivers.wire_events import WireObserver
from ubpkt.profile import SPEC
from ubpkt.sim.faults import FaultInjector
from ubpkt.sim.ledger import Ledger
from ubpkt.stack.engine import ResponseSent, Retransmitted
from ubpkt.stack.network import Framer, _icrc_uboe
from ubpkt_cli.main import main

from test_udp import LO, _clean, serving

FAULTS = "loss=0.05,duplicate=0.03,reorder=0.03,corrupt=0.02"


def _done(r: dict, n: int) -> None:
    """The initiator's side of a run through a faulty proxy: everything completed, the memory
    read back identical.  (Its own ledger is empty: the faults are the proxy's, and so is the
    ledger that explains them.)"""
    assert r["outcome"] == "done", r["outcome"]
    assert r["completions"] == {"success": n}
    assert r["data_verified"] is True, r["verify"]


@contextmanager
def proxying(peer, **kw):
    kw.setdefault("listen", (LO, 0))
    px = Proxy(ProxyConfig(peer=peer, **kw))
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("report", px.run()), daemon=True)
    t.start()
    try:
        yield px, out
    finally:
        px.stop()
        t.join(5)
        px.close()
        assert not t.is_alive()


def _settle(srv, limit_s: float = 2.0) -> None:
    """Let serve finish what it still owes before the proxy stops and resolves its ledger: the
    initiator may be done (a later TAACK covered a lost one) while serve still has to send a
    lost packet again (its timer); the proxy's ledger ends at the proxy's stop."""
    end = time.monotonic() + limit_s
    while not srv._idle() and time.monotonic() < end:
        time.sleep(0.02)


def _icrc_ok(dgram: bytes, src: tuple, dst: tuple) -> bool:
    frame = pseudo_header(*src, *dst, len(dgram)) + dgram
    return _icrc_uboe(memoryview(frame), len(frame) - 4) == \
        int.from_bytes(frame[-4:], SPEC.icrc_byteorder)


def _frames(src: tuple, dst: tuple, n: int = 30) -> list[bytes]:
    """Request datagrams (RTPH onward) from ``src`` to ``dst``, PSN 0..n-1."""
    from ubpkt.stack.transaction.initiator import Initiator
    from ubpkt.stack.transaction.ops import WorkRequest
    fr = Framer(UdpPath(src_ip=src[0], dst_ip=dst[0], udp_sport=src[1], udp_dport=dst[1]),
                udp_profile(SPEC, dst[1]))
    segs = []
    ini = Initiator(rc_id=1, tuning=SPEC.tuning.transaction, submit=segs.append, profile=SPEC)
    for i in range(n):
        ini.post(WorkRequest(i, "write", local=bytearray(100 + i), remote_addr=(1 << 32) + 256 * i,
                             tokenid=1), 0)
    return [bytes(fr.rtp_data(0x10, 0x20, psn, s.ta, s.payload, last=1, a=1))[HEADER_LEN:]
            for psn, s in enumerate(segs)]


CLIENT, LISTEN, UP, PEER = (LO, 40001), (LO, 4793), (LO, 40002), (LO, 4792)


# -- one direction, sans-IO ------------------------------------------------------------------------
def test_the_icrc_moves_to_the_new_addresses_and_a_corrupted_frame_stays_corrupted():
    d = ProxyDirection("ab", "c", "p", (*CLIENT, *LISTEN), (*UP, *PEER))
    good = _frames(CLIENT, LISTEN, 3)
    assert all(_icrc_ok(g, CLIENT, LISTEN) for g in good)
    bad = bytearray(good[1])
    bad[30] ^= 0x10                                 # a payload bit, flipped before the proxy
    for g in (good[0], bytes(bad), good[2], b"\x01\x02\x03", b"\x7f" * 40):
        d.push(g, 0)
    out = d.pop(0)
    assert len(out) == 5
    # valid for the header the receiver sees, not for the old one
    assert _icrc_ok(out[0], UP, PEER) and not _icrc_ok(out[0], CLIENT, LISTEN)
    assert _icrc_ok(out[2], UP, PEER)
    # the corrupted one still fails, with the syndrome it arrived with
    assert not _icrc_ok(out[1], UP, PEER)

    def syndrome(dg, src, dst):
        f = pseudo_header(*src, *dst, len(dg)) + dg
        return int.from_bytes(f[-4:], "little") ^ _icrc_uboe(memoryview(f), len(f) - 4)
    assert syndrome(out[1], UP, PEER) == syndrome(bytes(bad), CLIENT, LISTEN) != 0
    # what it cannot parse passes untouched (a runt; a first byte that is no TPOpcode)
    assert out[3] == b"\x01\x02\x03" and out[4] == b"\x7f" * 40
    st = d.stats
    assert st["unparsed"] == 2 and st["icrc_bad_in"] == 1 and st["icrc_bad_out"] == 1
    assert st["datagrams_in"] == st["datagrams_out"] == 5


def _run_direction(seed, frames):
    ledger = Ledger()
    inj = FaultInjector("loss=0.1,duplicate=0.1,reorder=0.1,corrupt=0.1", seed=seed,
                        link="c->p", src="c", dst="p", ledger=ledger)
    d = ProxyDirection("ab", "c", "p", (*CLIENT, *LISTEN), (*UP, *PEER), injector=inj)
    out = []
    for i, f in enumerate(frames):
        d.push(f, i * 1000)
        out += d.pop(i * 1000)
    out += d.pop(10**12)
    return [(f.kind, f.summary.get("psn"), f.detail.get("bits")) for f in ledger.faults], out


def test_a_seed_gives_the_same_fault_decisions_twice():
    frames = _frames(CLIENT, LISTEN, 200)
    a, out_a = _run_direction(7, frames)
    b, out_b = _run_direction(7, frames)
    assert a == b and out_a == out_b
    assert {k for k, _, _ in a} == {"loss", "duplicate", "reorder", "corrupt"}
    c, _ = _run_direction(8, frames)
    assert c != a
    # every frame left with an ICRC for the new header, except the corrupted ones
    n_bad = sum(not _icrc_ok(o, UP, PEER) for o in out_a)
    assert n_bad == sum(1 for k, _, _ in a if k == "corrupt")


def test_the_wire_observer_derives_retransmissions_and_responses():
    obs = WireObserver()
    data = lambda psn: (1, 0x10, 0x20, psn, 0)     # noqa: E731  (opcode, src, dst, psn, rspst)
    for psn in range(5):
        obs.ingress("c", data(psn), psn)
    obs.ingress("c", data(2), 10)                   # again, no response in between: its timer
    obs.ingress("p", (2, 0x20, 0x10, 1, 3), 11)     # a TPNAK for PSN 1 from the receiver
    obs.egress("c", (2, 0x20, 0x10, 1, 3), 12)      # ... forwarded to the sender
    obs.ingress("c", data(1), 13)                   # go-back-N from 1
    obs.ingress("c", data(5), 14)                   # new
    obs.ingress("p", (3, 0x20, 0x10, 5, 0), 15)     # TPACK_CC
    ev = [(n, e) for n, e in obs.events]
    assert ev[0] == ("c", Retransmitted(10, 0x10, 2, "rto"))
    assert ev[1] == ("p", ResponseSent(11, 0x20, 1, "tpnak"))
    assert ev[2] == ("c", Retransmitted(13, 0x10, 1, "nak"))
    assert [e.kind for _, e in ev[3:]] == ["tpack", "tpack_cc"]
    assert obs.report()["retransmissions"] == {"rto": 1, "nak": 1}


# -- live, through the proxy ----------------------------------------------------------------------
def test_proxy_without_faults_is_transparent_one_flow_per_client():
    with serving() as (srv, _), proxying(srv.local) as (px, out):
        r1 = run_inject(InjectConfig(peer=px.local, workload="write:8KiB*6,read:4KiB*3",
                                     verify=True))
        r2 = run_inject(InjectConfig(peer=px.local, workload="atomic:cas*3", verify=True))
        _clean(r1, 9)
        _clean(r2, 3)
        assert srv.counters["sessions"] == 2
        assert {p[1] for p in srv.driver.peers} == {f.sock.getsockname()[1]
                                                    for f in px.flows.values()}
    rep = out["report"]
    assert rep["schema"] == "ubpkt.proxy/1" and len(rep["flows"]) == 2
    for d in rep["directions"].values():
        assert d["datagrams_in"] == d["datagrams_out"] > 0
        assert d["icrc_bad_in"] == d["unparsed"] == 0
    assert srv.driver.stats["bad_icrc"] == 0
    assert rep["faults"]["injected"] == 0


@pytest.mark.parametrize("retrans", ["gbn", "sr"])
def test_faults_both_ways_rtp_recovers_everything(retrans):
    with serving() as (srv, _), proxying(srv.local, faults=FAULTS, seed=3) as (px, out):
        r = run_inject(InjectConfig(peer=px.local, workload="write:4KiB*120,read:4KiB*30,"
                                    "atomic:fetch_add*10,send:1KiB*4", verify=True,
                                    retrans=retrans, timeout_s=60))
        _done(r, 164)
        _settle(srv)
    rep = out["report"]
    f = rep["faults"]
    assert f["unrecovered"] == 0, [x for x in f["faults"] if x["outcome"] == "unrecovered"]
    assert f["recovered"] > 0
    assert f["recovered"] + f["benign"] + f["expected_loss"] == f["injected"]
    assert all(u["event"] == "Retransmitted" and u["reason"] == "rto"
               for u in f["unattributed_events"]), f["unattributed_events"]
    for which in ("ab", "ba"):
        kinds = rep["directions"][which]["faults_applied"]
        assert kinds.get("loss", 0) > 0 and kinds.get("duplicate", 0) > 0, kinds
    assert sum(rep["directions"][w]["faults_applied"].get("corrupt", 0)
               for w in ("ab", "ba")) > 0
    # the corrupted frames were caught by the endpoints' ICRC checks
    assert srv.driver.stats["bad_icrc"] + r["driver"]["stats"]["bad_icrc"] > 0
    obs = rep["flows"][0]["observed"]
    assert sum(obs["retransmissions"].values()) > 0 and obs["responses"].get("tpack", 0) > 0


def test_faults_one_direction_only():
    with serving() as (srv, _), proxying(srv.local, faults="loss=0.05", direction="ba",
                                         seed=2) as (px, out):
        _done(run_inject(InjectConfig(peer=px.local, workload="read:4KiB*60", verify=True,
                                      timeout_s=30)), 60)
        _settle(srv)
    d = out["report"]["directions"]
    assert d["ab"]["faults_applied"] == {} and not d["ab"]["faulted"]
    assert d["ba"]["faults_applied"].get("loss", 0) > 0
    assert out["report"]["faults"]["unrecovered"] == 0


def _proc_proxy(tmp_path, *args):
    p = subprocess.Popen([sys.executable, "-m", "ubpkt_cli", "inject", "--proxy", f"{LO}:0",
                          "--report", str(tmp_path / "proxy.json"), *args],
                         stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    assert "listening on" in line, line
    port = int(line.split("listening on ")[1].split(" ")[0].rsplit(":", 1)[1])
    return p, port


def test_cli_proxy(tmp_path):
    with serving() as (srv, _):
        p, port = _proc_proxy(tmp_path, "--to", f"{LO}:{srv.local[1]}", "--loss", "0.03",
                              "--reorder", "0.03", "--seed", "4")
        try:
            r = run_inject(InjectConfig(peer=(LO, port), workload="write:4KiB*40,read:1KiB*10",
                                        verify=True, timeout_s=30))
            _settle(srv)
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
        _done(r, 50)
    assert p.returncode == 0 and "Traceback" not in err, err
    rep = json.loads((tmp_path / "proxy.json").read_text())
    assert rep["schema"] == "ubpkt.proxy/1" and rep["stopped_by"] == "signal"
    assert rep["config"]["faults"] == "loss=0.03,reorder=0.03" and rep["config"]["seed"] == 4
    assert rep["faults"]["injected"] > 0 and rep["faults"]["unrecovered"] == 0
    assert "stopped (signal)" in err


def test_cli_proxy_options(tmp_path):
    rep = tmp_path / "p.json"
    res = CliRunner().invoke(main, ["inject", "--proxy", f"{LO}:0", "--to", f"{LO}:9",
                                    "--duration", "0.2", "--dialect", "ns3", "--report",
                                    str(rep), "-q"])
    assert res.exit_code == 0, res.output
    r = json.loads(rep.read_text())
    assert r["stopped_by"] == "duration" and r["config"]["dialect"] == "ns3"
    bad = CliRunner().invoke(main, ["inject", "--proxy", "--workload", "write:1"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    bad = CliRunner().invoke(main, ["inject", "--workload", "write:1", "--duration", "1"])
    assert bad.exit_code == 2
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((LO, 0))
    try:
        busy = CliRunner().invoke(main, ["inject", "--proxy", f"{LO}:{s.getsockname()[1]}",
                                         "--duration", "0.1"])
    finally:
        s.close()
    assert busy.exit_code == 1 and "cannot bind" in busy.output


# -- inject FILE.pcap -----------------------------------------------------------------------------
def _generate(tmp_path, workload: str, name: str = "g.pcap", *extra) -> str:
    path = str(tmp_path / name)
    res = CliRunner().invoke(main, ["generate", "--workload", workload, "-o", path,
                                    "--report", str(tmp_path / "gen.json"), *extra])
    assert res.exit_code == 0, res.output
    return path


def test_capture_requests_merge_segments(tmp_path):
    path = _generate(tmp_path, "write:3000,read:100,send:2500,write_with_immediate:2000,"
                     "atomic:cas,write:10", "g.pcap", "--mtu", "1024")
    scan = requests_from_capture(path)
    ops = [(r.op, r.length, len(r.frames)) for r in scan.requests]
    assert ops == [("write", 3000, 3), ("read", 100, 1), ("send", 2500, 3),
                   ("write_with_immediate", 2000, 2), ("compare_swap", 8, 1),
                   ("write", 10, 1)]
    assert scan.stats["merged_packets"] == 5 and scan.stats["incomplete"] == 0
    assert scan.requests[0].address == 1 << 32 and scan.requests[0].tokenid == 1


def test_inject_capture_verified_against_serve(tmp_path):
    path = _generate(tmp_path, "write:64KiB*3,write:3000*4,read:4KiB*2,send:1KiB*2,"
                     "atomic:fetch_add*2,write:8", "g.pcap", "--mtu", "1024")
    with serving() as (srv, _):
        rep = tmp_path / "r.json"
        res = CliRunner().invoke(main, ["inject", "--to", f"{LO}:{srv.local[1]}", path,
                                        "--verify", "--loss", "0.03", "--report", str(rep)])
        assert res.exit_code == 0, res.output
        r = json.loads(rep.read_text())
        assert r["source"]["kind"] == "capture" and r["requests"] == 14
        assert r["source"]["merged_packets"] == 3 * 63 + 4 * 2
        assert r["data_verified"] is True and r["all_completed"]
        assert r["completions"] == {"success": 14}
        assert r["faults"]["unrecovered"] == 0
        # the bytes of the capture (not its 1 KiB segments: inject cuts at its own MTU)
        assert r["sent_bytes"] == 3 * 65536 + 4 * 3000 + 2 * 1024 + 2 * 8 + 8
        assert r["verify"]["reads_checked"] == 2


def test_inject_capture_outside_the_region_says_so(tmp_path):
    # a loopback capture: retransmissions and responses in it, a segment serve does not have
    path = str(tmp_path / "lb.pcap")
    res = CliRunner().invoke(main, ["loopback", "--op", "write", "--count", "6", "--size",
                                    "3000", "--mtu", "1024", "--loss", "0.1", "--pcap", path,
                                    "-q", "--report", str(tmp_path / "lb.json")])
    assert res.exit_code == 0, res.output
    with serving() as (srv, _):
        res = CliRunner().invoke(main, ["inject", "--to", f"{LO}:{srv.local[1]}", path,
                                        "--verify", "-q"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    r = json.loads(res.stdout)
    assert r["requests"] == 6 and r["source"]["responses"] > 0
    assert r["access_errors"]["count"] == 6
    assert r["completions"] == {"remote_access_error": 6} and r["data_verified"] is False
    assert any("refused" in w for w in r["warnings"])


def test_inject_capture_bad_file(tmp_path):
    p = tmp_path / "x.pcap"
    p.write_bytes(b"not a capture at all")
    res = CliRunner().invoke(main, ["inject", "--to", f"{LO}:9", str(p)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    res = CliRunner().invoke(main, ["inject", "--to", f"{LO}:9"])
    assert res.exit_code == 2 and "FILE.pcap" in res.output
