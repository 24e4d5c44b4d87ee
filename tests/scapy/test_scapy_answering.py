"""The UB AnsweringMachine (crafted packets, and a real sniff on ``lo`` as root) and scapy
sessions against a live ``ubpkt serve`` (a UDP socket with :class:`UdpSession`; scapy's own L3
``sr()`` as root).  Only 127.0.0.1 and ports the kernel picks."""
from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager

import pytest
from scapy.all import IP, UDP, Ether, Raw, conf, raw, sr

from ubpkt.dissect import dissect
from ubpkt.drivers.serve import ServeConfig, Server
from ubpkt.profile import SPEC
from ubpkt.scapy import UBAtah, UBBtah, UBMaetah, UBRtph
from ubpkt.scapy.answering import UBAnsweringMachine, ub_ports
from ubpkt.scapy.udpsession import UdpSession, pair
from ubpkt.stack.network import _icrc_uboe

LO = "127.0.0.1"
BASE = 1 << 32
ROOT = os.geteuid() == 0


def _req(psn, op, tassn, length, addr=BASE, payload=b"", tokenid=1, sport=4792, dsttpn=0x20):
    p = (Ether() / IP(src="10.0.0.1", dst="10.0.0.2", flags="DF") / UDP(sport=sport)
         / UBRtph(psn=psn, srctpn=0x10, dsttpn=dsttpn, a=1, last=1)
         / UBBtah(taopcode=op, ini_tassn=tassn)
         / UBMaetah(address=addr, tokenid=tokenid, length=length))
    return Ether(raw(p / Raw(payload) if payload else p))


def _icrc_good(frame: bytes) -> bool:
    return _icrc_uboe(memoryview(frame), len(frame) - 4) == \
        int.from_bytes(frame[-4:], SPEC.icrc_byteorder)


def _atah(p):
    return p.getlayer(UBAtah)


def test_write_read_atomic_answered_by_the_stack():
    am = UBAnsweringMachine(verbose=0)
    w = _req(5, "Write", 1, 5, BASE + 64, b"hello")
    assert am.is_request(w)
    rep = am.make_reply(w)
    # a TPACK of the request's PSN on the swapped channel, then the TAACK in an RTP data packet
    assert [p.sprintf("%UBRtph.tpopcode%") for p in rep] == ["TPACK/TPNAK", "RTP_Data"]
    assert rep[0][UBRtph].psn == 5 and rep[0][UBRtph].srctpn == 0x20
    assert _atah(rep[1]).taopcode == 17 and _atah(rep[1]).ini_tassn == 1
    assert all(p.answers(w) for p in rep)
    assert all(_icrc_good(raw(p)) for p in rep)
    assert bytes(am.mem.read(BASE + 64, 5)) == b"hello"

    r = _req(6, "Read", 2, 5, BASE + 64)
    rep = am.make_reply(r)
    rsp = [p for p in rep if _atah(p) is not None]
    assert len(rsp) == 1 and rsp[0][Raw].load == b"hello" and rsp[0].answers(r)
    assert _atah(rsp[0]).rspst == 0

    # fetch_add of 3 on the 8 bytes at BASE: the old value back, the new one in memory
    am.mem.write(BASE, (40).to_bytes(8, "little"))
    a = _req(7, "Atomic_fetch_add", 3, 8, BASE, (3).to_bytes(8, "little"))
    rsp = [p for p in am.make_reply(a) if _atah(p) is not None]
    assert len(rsp) == 1 and rsp[0].answers(a) and _atah(rsp[0]).taopcode == 19
    assert int.from_bytes(rsp[0][Raw].load, "big") == 40
    assert int.from_bytes(am.mem.read(BASE, 8), "little") == 43
    assert am.stats["requests"] == 3 and am.stats["sessions"] == 1


def test_access_errors_and_bounds():
    am = UBAnsweringMachine(verbose=0)
    size = am.mem.region(1).size
    cases = [_req(0, "Write", 1, 4, BASE, b"abcd", tokenid=9),          # no such TokenID
             _req(1, "Read", 2, 64, BASE + size - 8),                    # runs past the end
             _req(2, "Read", 3, size + 4096, BASE)]                      # more than the region
    for q in cases:
        rep = am.make_reply(q)
        rsp = [p for p in rep if _atah(p) is not None]
        assert len(rsp) == 1 and rsp[0].answers(q)
        assert _atah(rsp[0]).rspst == 3            # Completer_Error: the access error
        # no answer is larger than the request it answers (a refused Read carries no data)
        assert all(len(p) <= len(q) for p in rep)
    assert bytes(am.mem.read(BASE, 4)) == bytes(4)


def test_not_answered():
    am = UBAnsweringMachine(verbose=0, tpn=0x20)
    w = _req(0, "Write", 1, 4, BASE, b"abcd")
    bad = Ether(raw(w)[:-1] + bytes([raw(w)[-1] ^ 0xFF]))         # a wrong ICRC
    assert am.is_request(bad) and len(am.make_reply(bad)) == 0
    assert am.stats["bad_icrc"] == 1 and am.stats["sessions"] == 0
    other = Ether(raw(Ether() / IP() / UDP(sport=5, dport=53) / Raw(b"x" * 30)))
    assert not am.is_request(other)
    wrong_tpn = _req(0, "Write", 1, 4, BASE, b"abcd", dsttpn=0x21)
    assert len(am.make_reply(wrong_tpn)) == 0 and am.stats["ignored"] == 1
    # a TPACK for no session is nothing to answer
    ack = Ether(raw(Ether() / IP(flags="DF") / UDP(sport=4792)
                    / UBRtph(tpopcode="TPACK", psn=3, srctpn=0x10, dsttpn=0x20)))
    assert len(am.make_reply(ack)) == 0
    # its own reply, seen again by a sniffer (a requester on port 4792 gets replies to 4792)
    rep = am.make_reply(w)
    assert len(rep) == 2 and not am.is_request(rep[0]) and am.stats["own_replies"] == 1
    # a retransmitted request (same PSN) is acknowledged again, not executed again
    am.mem.write(BASE, b"zzzz")
    again = am.make_reply(w)
    assert [p.sprintf("%UBRtph.tpopcode%") for p in again] == ["TPACK/TPNAK"]
    assert bytes(am.mem.read(BASE, 4)) == b"zzzz"


def test_sessions_are_capped():
    am = UBAnsweringMachine(verbose=0, max_sessions=3)
    for port in range(40000, 40010):
        assert len(am.make_reply(_req(0, "Read", 0, 8, sport=port))) == 2
    assert len(am.sessions) == 3 and am.stats["evicted"] == 7


@pytest.mark.skipif(not ROOT, reason="sniffing on lo needs root (AF_PACKET)")
def test_answering_machine_sniffing_lo():
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)     # holds the port the AM answers
    sink.bind((LO, 0))
    port = sink.getsockname()[1]
    try:
        am = UBAnsweringMachine(ports=(port,), verbose=0)
        try:
            am.bg(iface="lo")
        except (OSError, PermissionError) as exc:
            pytest.skip(f"cannot sniff on lo: {exc}")
        try:
            deadline = time.monotonic() + 5
            while not getattr(am.sniffer, "running", False) and time.monotonic() < deadline:
                time.sleep(0.01)
            with UdpSession((LO, port)) as s:
                w = (s.ip() / UBRtph(psn=9, srctpn=0x10, dsttpn=0x20, a=1, last=1)
                     / UBBtah(taopcode="Write", ini_tassn=4)
                     / UBMaetah(address=BASE, tokenid=1, length=5) / Raw(b"hello"))
                ans = []
                for _ in range(10):             # until the sniffer is really reading
                    ans, _ = s.sr(w, timeout=0.5)
                    if len(ans) >= 2:
                        break
                got = sorted(a.answer.sprintf("%UBRtph.tpopcode%") for a in ans)
                assert got[:2] == ["RTP_Data", "TPACK/TPNAK"], ans.summary()
                assert any(_atah(a.answer) is not None and _atah(a.answer).taopcode == 17
                           for a in ans)
        finally:
            am.stop()
    finally:
        sink.close()
    assert bytes(am.mem.read(BASE, 5)) == b"hello"
    assert am.stats["sessions"] == 1 and am.stats["engine_errors"] == 0


# -- sessions against ubpkt serve ---------------------------------------------------------------
@contextmanager
def _serve(**kw):
    srv = Server(ServeConfig(bind=(LO, 0), **kw))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.stop()
        t.join(5)
        srv.close()


def test_doc_session_against_serve():
    """The session of docs/scapy.md ("A session against ubpkt serve"), step by step."""
    with _serve() as srv:
        with UdpSession(srv.local) as s:
            # serve's defaults: TPN 0x20 answering 0x10, PSNs from 0, region mem at 1 << 32
            # with TokenID 1 and no TokenValue
            w = (s.ip() / UBRtph(psn=0, srctpn=0x10, dsttpn=0x20, a=1, last=1)
                 / UBBtah(taopcode="Write", ini_tassn=0)
                 / UBMaetah(address=1 << 32, tokenid=1, length=5) / Raw(b"hello"))
            ans, unans = s.sr(w)
            got = [a.answer.summary() for a in ans]
            assert got[0] == "IP / UDP / UBRtph TPACK/TPNAK psn=0"
            assert got[1].startswith("IP / UDP / UBRtph RTP_Data psn=") and \
                got[1].endswith(" / UBAtah TAACK tassn=0")
            assert not unans
            r = (s.ip() / UBRtph(psn=1, srctpn=0x10, dsttpn=0x20, a=1, last=1)
                 / UBBtah(taopcode="Read", ini_tassn=1)
                 / UBMaetah(address=1 << 32, tokenid=1, length=5))
            ans, unans = s.sr(r)
            rsp = [a.answer for a in ans if _atah(a.answer) is not None]
            assert len(rsp) == 1 and rsp[0][Raw].load == b"hello"
            assert rsp[0][UBAtah].sprintf("%taopcode%") == "Read_response"
            # every answer's ICRC holds over the header the kernel sent
            for p in s.received:
                assert _icrc_good(raw(Ether() / p)), p.summary()
            # the session acknowledged serve's data packets (TAACK, Read response)
            assert len(s.acks) == 2
            # a Read for more than the region: the access error, no data
            big = (s.ip() / UBRtph(psn=2, srctpn=0x10, dsttpn=0x20, a=1, last=1)
                   / UBBtah(taopcode="Read", ini_tassn=2)
                   / UBMaetah(address=1 << 32, tokenid=1, length=(16 << 20) + 1))
            ans, _ = s.sr(big)
            rsp = [a.answer for a in ans if _atah(a.answer) is not None]
            assert len(rsp) == 1 and rsp[0][UBAtah].rspst == 3 and Raw not in rsp[0]
        time.sleep(0.1)
        rep = srv.report("test", 0)
        assert rep["requests"] == 3 and rep["errors"] == 1
        assert rep["transport"]["retransmissions"] == 0     # every answer was acknowledged
        assert srv.driver.stats["bad_icrc"] == 0


def test_pairing_helper_matches_scapy_rules():
    q = _req(3, "Write", 7, 4, BASE, b"abcd")
    other = _req(4, "Write", 8, 4, BASE, b"abcd")
    am = UBAnsweringMachine(verbose=0)
    rep = list(am.make_reply(q))
    ans, unans = pair([q, other], rep)
    assert len(ans) == 2 and all(a.query is q for a in ans) and list(unans) == [other]
    ans, _ = pair([q], rep, multi=False)
    assert len(ans) == 1


@pytest.mark.skipif(not ROOT, reason="scapy's L3 socket needs root")
def test_scapy_sr_l3_against_serve():
    """scapy's own sr() at layer 3 on 127.0.0.1 (root): the kernel keeps scapy's IPv4 header
    (DF, IP id 0), so serve's ICRC check passes; a socket holds the source port."""
    with _serve() as srv:
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.bind((LO, 0))
        sp = sink.getsockname()[1]
        try:
            with ub_ports(srv.local[1], sp):
                w = (IP(src=LO, dst=LO, flags="DF", id=0) / UDP(sport=sp, dport=srv.local[1])
                     / UBRtph(psn=0, srctpn=0x10, dsttpn=0x20, a=1, last=1)
                     / UBBtah(taopcode="Write", ini_tassn=0)
                     / UBMaetah(address=1 << 32, tokenid=1, length=5) / Raw(b"hello"))
                try:
                    ans, _ = sr(w, timeout=0.3, multi=True, verbose=0)
                except (OSError, PermissionError) as exc:
                    pytest.skip(f"scapy L3 socket ({conf.L3socket.__name__}): {exc}")
        finally:
            sink.close()
        if not ans:
            pytest.skip(f"{conf.L3socket.__name__} on lo saw no answer on this kernel")
        kinds = {a.answer.sprintf("%UBRtph.tpopcode%") for a in ans}
        assert kinds == {"TPACK/TPNAK", "RTP_Data"}, ans.summary()
        assert srv.driver.stats["bad_icrc"] == 0
        assert bytes(srv.memory.read(1 << 32, 5)) == b"hello"
