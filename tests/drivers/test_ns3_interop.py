"""The ns-3-UB interop check: ``serve --dialect ns3 --learn`` answers the requests captured
from the ns-3-UB simulator (``/work/shared/interop/ns3-ub``) and its answers, dissected under the
NS3 profile, agree field by field with the simulator's own answers in the other capture
(``ubpkt.drivers.compare``, ``ignore_for("ns3")``: carrier fields, link credits, congestion
values and load balancing/routing are not compared; see docs/drivers.md "ns-3-UB interop").

Run A: the server plays host1 and takes host0's requests from caseA (the RTP Write data packets
on one socket, the LDST stores and loads on another: each socket is a session, whose answering
path comes from its first frame); its answers are paired with caseC's (TPACKs by PSN, the Write
TAACK by TASSN, LDST answers by TASSN).  host1 had sent its READ request (PSN 0, TPMSN 0) on that
channel first, so its transmit side starts at PSN 1, TPMSN 1.
Run B: the server plays host0 and takes host1's READ request from caseC; its TPACK and READ
response are compared with caseA's.  host0 had sent the 8 KiB Write (PSN 0, 1; TPMSN 0) first,
so its transmit side starts at PSN 2, TPMSN 1 (``--psn 2:0``).
Both servers have one region at address 0 with TokenID 0 (ns-3-UB's requests carry VA 0 and
token 0); capture payloads are zero, so are the regions: read data compare equal.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from ubpkt import NS3, decode, open_capture
from ubpkt.drivers.compare import field_differences, ignore_for
from ubpkt.drivers.serve import ServeConfig, Server
from ubpkt.record import LINKTYPE_UB

_ROOT = Path(__file__).resolve().parents[2]
HERE = str(_ROOT.parent / "shared" / "interop" / "ns3-ub")
if not os.path.isdir(HERE):
    HERE = "/work/shared/interop/ns3-ub"
CASE_A = os.path.join(HERE, "caseA_host0_port0_tx.pcap")
CASE_C = os.path.join(HERE, "caseC_switch2_port0_tx.pcap")

pytestmark = pytest.mark.skipif(not (os.path.exists(CASE_A) and os.path.exists(CASE_C)),
                                reason="the ns-3-UB sample captures are not on this machine")


def _frames(path):
    return [bytes(p.data) for p in open_capture(path)]


def _rec(frame):
    return decode(frame, LINKTYPE_UB, NS3)


def _kind(rec) -> tuple:
    """A pairing key: ('tpack', PSN), ('taack', TASSN), ('read_rsp', TASSN), ('ldst', op,
    TASSN) or ('req', ...) for requests."""
    f = rec["fields"]
    if f.get("ub.lph.cfg") == 9:
        op = f.get("ub.atah.taopcode", f.get("ub.btah.taopcode"))
        tassn = f.get("ub.atah.ini_tassn", f.get("ub.btah.ini_tassn"))
        return ("ldst", op, tassn)
    opc = f.get("ub.rtph.tpopcode")
    if opc in (2, 3):
        return ("tpack", f["ub.rtph.psn"])
    op = f.get("ub.btah.taopcode")
    if op == 0x11:
        return ("taack", f["ub.btah.ini_tassn"])
    if op == 0x12:
        return ("read_rsp", f["ub.btah.ini_tassn"])
    return ("req", opc, op, f.get("ub.rtph.psn"))


class _Running:
    """A Server on 127.0.0.1:0 in a thread."""

    def __init__(self, **kw):
        self.server = Server(ServeConfig(bind=("127.0.0.1", 0), profile=NS3, dialect="ns3",
                                         learn=True, regions=["ns3:64KiB@0/0"], **kw))
        self.report = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.report = self.server.run()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()
        self.thread.join(10)
        self.server.close()


def _exchange(addr, frames, want: set, timeout_s: float = 10.0) -> dict:
    """Send ``frames`` (one datagram each) from a fresh socket; collect answers until every
    key of ``want`` was seen (first copy kept: a later one is a retransmission)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    got: dict = {}
    try:
        for f in frames:
            s.sendto(f, addr)
        end = time.monotonic() + timeout_s
        while not want <= got.keys() and time.monotonic() < end:
            try:
                data, _ = s.recvfrom(65536)
            except socket.timeout:
                continue
            rec = _rec(data)
            got.setdefault(_kind(rec), rec)
    finally:
        s.close()
    return got


def _check(pairs):
    diffs = []
    for key, expected, got in pairs:
        diffs += field_differences(expected, got, ignore=ignore_for("ns3"), packet=str(key))
    return diffs


def test_run_a_serve_answers_host0_requests_as_ns3_ub_does():
    a = [_rec(f) for f in _frames(CASE_A)]
    fa = _frames(CASE_A)
    c = {_kind(r): r for r in (_rec(f) for f in _frames(CASE_C))}
    write = [fa[i] for i, r in enumerate(a) if _kind(r)[:3] == ("req", 1, 0x03)]
    ldst = [fa[i] for i, r in enumerate(a) if _kind(r)[0] == "ldst"]
    assert len(write) == 2 and len(ldst) == 4      # the capture as described
    want_rtp = {("tpack", 0), ("tpack", 1), ("taack", 0)}
    want_ldst = {("ldst", 0x11, 0), ("ldst", 0x11, 1), ("ldst", 0x12, 2), ("ldst", 0x12, 3)}
    # host1 had used PSN 0 / TPMSN 0 for its READ request on this channel
    with _Running(tx_psn=1, tx_msn=1) as run:
        addr = run.server.local
        got = _exchange(addr, write, want_rtp)
        got_ldst = _exchange(addr, ldst, want_ldst)
        learned = list(run.server.learned)
    assert want_rtp <= got.keys(), sorted(got)
    assert want_ldst <= got_ldst.keys(), sorted(got_ldst)
    assert learned == [{"source": learned[0]["source"], "local_tpn": 0, "peer_tpn": 0,
                        "rx_psn": 0}]
    pairs = [(k, c[k], got[k]) for k in sorted(want_rtp)]
    pairs += [(k, c[k], got_ldst[k]) for k in sorted(want_ldst)]
    assert _check(pairs) == []


def test_run_b_serve_answers_host1_read_as_ns3_ub_does():
    a = {_kind(r): r for r in (_rec(f) for f in _frames(CASE_A))}
    fc = _frames(CASE_C)
    read = [f for f in fc if _kind(_rec(f))[:3] == ("req", 1, 0x06)]
    assert len(read) == 1
    want = {("tpack", 0), ("read_rsp", 0)}
    # host0 had sent the 8 KiB Write first: PSN 0, 1 and TPMSN 0 (--psn 2:0)
    with _Running(tx_psn=2, tx_msn=1) as run:
        got = _exchange(run.server.local, read, want)
    assert want <= got.keys(), sorted(got)
    assert got[("read_rsp", 0)]["fields"]["ub.rtph.psn"] == 2
    assert _check([(k, a[k], got[k]) for k in sorted(want)]) == []


def test_ignore_list_hides_no_protocol_field():
    # the comparison is not vacuous: a changed PSN, TASSN or payload length is found
    c = [_rec(f) for f in _frames(CASE_C)]
    tpack = next(r for r in c if _kind(r) == ("tpack", 1))
    other = next(r for r in c if _kind(r) == ("tpack", 2))
    names = {d["field"] for d in _check([("x", tpack, other)])}
    assert "ub.rtph.psn" in names and "ub.rtph.tpmsn" in names


def test_serve_cli_rejects_a_bad_region_placement():
    from click.testing import CliRunner
    from ubpkt_cli.main import main
    r = CliRunner().invoke(main, ["serve", "--udp", "127.0.0.1:0", "--dialect", "ns3",
                                  "--region", "m:4KiB@zero"])
    assert r.exit_code == 2 and "BASE" in r.output and "Traceback" not in r.output


def test_parse_region_places_a_region():
    from ubpkt.drivers.serve import parse_region
    r = parse_region("ns3:64KiB@0/0", 3)
    assert (r.base, r.tokenid, r.size) == (0, 0, 64 * 1024)
    assert parse_region("m:1KiB", 1).base == 2 << 32


# -- the same check from the command line: ubpkt replay --as-initiator --answers ----------------

def _cli_replay(srv, pcap, answers, tmp_path):
    import json

    from click.testing import CliRunner

    from ubpkt_cli.main import main
    rep = tmp_path / "replay.json"
    res = CliRunner().invoke(main, ["replay", pcap, "--answers", answers, "--as-initiator",
                                    "--dialect", "ns3", "--to",
                                    f"{srv.local[0]}:{srv.local[1]}", "--timeout", "2",
                                    "--report", str(rep), "-q"])
    return res.exit_code, json.loads(rep.read_text())


@pytest.mark.parametrize("pcap,answers,psn", [(CASE_A, CASE_C, 1), (CASE_C, CASE_A, 2)],
                         ids=["host0-requests", "host1-read"])
def test_cli_replay_against_serve_matches_ns3_ub(pcap, answers, psn, tmp_path):
    """Run A and run B as a user types them: one serve (one socket: URMA and load/store from
    the same source, the session learns the CNAs and the RTP channel from the first packet of
    each kind), the two captures merged by time, every answer compared."""
    with _Running(tx_psn=psn, tx_msn=1) as srv:
        code, rep = _cli_replay(srv.server, pcap, answers, tmp_path)
    assert code == 0, {k: rep[k] for k in ("answered", "unanswered", "unexpected", "differences", "missing_answers", "received")}
    assert rep["requests"] == rep["answered"] > 0
    assert rep["differences"] == [] and rep["unanswered"] == [] and rep["unexpected"] == []
    assert rep["skipped"].get("link_control", 0) > 0          # the credit frames


def test_cli_replay_reports_a_wrong_psn_by_field(tmp_path):
    with _Running(tx_psn=0, tx_msn=1) as srv:
        code, rep = _cli_replay(srv.server, CASE_A, CASE_C, tmp_path)
    assert code == 1
    assert {d["field"] for d in rep["differences"]} == {"ub.rtph.psn"}
