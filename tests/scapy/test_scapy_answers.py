"""Requests and their responses pair up in scapy (answers/hashret, sr, PacketList.sr), per the
grammar's TA_PAIRS/TA_MATCH (UB 2.0 §7.1) and TP_PAIRS/TP_MATCH (§6.2.1)."""
from __future__ import annotations

import pytest
from scapy.automaton import ObjectPipe
from scapy.config import conf
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw, raw
from scapy.plist import PacketList
from scapy.sendrecv import sndrcv

from ubpkt.formats import grammar as G
from ubpkt.scapy import (UBAtah, UBAtahC, UBBtah, UBBtahC, UBCetphCaqm, UBCfgReq, UBCfgRsp,
                         UBCna16, UBCna16Ns3, UBCtph, UBLph, UBLphNs3, UBMaetah, UBMaetahC,
                         UBMgmtetah, UBRtph, UBSaetph, UBSaetphBitmap)

A, B = "10.0.0.1", "10.0.0.2"


def _uboe(src, dst, *ub):
    # UB sends to UDP port 4792 both ways (UB 2.0 §5.2.3); scapy's UDP.answers wants the answer's
    # destination port to be the request's source port, so the requests use 4792 as well
    p = Ether() / IP(src=src, dst=dst, flags="DF") / UDP(sport=4792)
    for layer in ub:
        p = p / layer
    return Ether(raw(p))            # as received: dissected from bytes


def _request(op, tassn=9, psn=5, **kw):
    ub = [UBRtph(psn=psn, srctpn=0x11, dsttpn=0x22), UBBtah(taopcode=op, ini_tassn=tassn,
                                                            ini_rc_id=3, **kw)]
    if op in ("Write", "Read", "Atomic_fetch_add"):
        ub.append(UBMaetah(address=0x1000, length=8))
    if op in ("Write", "Atomic_fetch_add"):
        ub.append(Raw(bytes(8)))
    return _uboe(A, B, *ub)


def _response(op, tassn=9, psn=70, channel=(0x22, 0x11), rc_id=3, data=b""):
    ub = [UBRtph(psn=psn, srctpn=channel[0], dsttpn=channel[1]),
          UBAtah(taopcode=op, ini_tassn=tassn, ini_rc_id=rc_id)]
    if data:
        ub.append(Raw(data))
    return _uboe(B, A, *ub)


def _tp(opcode, psn=5, channel=(0x22, 0x11), *ext):
    return _uboe(B, A, UBRtph(tpopcode=opcode, psn=psn, srctpn=channel[0], dsttpn=channel[1]),
                 *ext)


@pytest.mark.parametrize("req,rsp", [
    ("Write", "TAACK"), ("Read", "Read_response"), ("Atomic_fetch_add", "Atomic_response"),
    ("Send", "TAACK")])
def test_ta_response_answers_its_request(req, rsp):
    q = _request(req)
    r = _response(rsp, data=b"\1" * 8 if rsp != "TAACK" else b"")
    assert G.ta_response_opcode(q[UBBtah].taopcode) == r[UBAtah].taopcode
    assert r.answers(q) and not q.answers(r)
    assert r.hashret() == q.hashret()
    # the wrong response type, TASSN or requester context does not answer
    other = {"TAACK": "Read_response"}.get(rsp, "TAACK")
    assert not _response(other).answers(q)
    assert not _response(rsp, tassn=10).answers(q)
    assert not _response(rsp, rc_id=4).answers(q)
    # nor one on another TP channel, or the same channel not swapped
    assert not _response(rsp, channel=(0x22, 0x12)).answers(q)
    assert not _response(rsp, channel=(0x11, 0x22)).answers(q)


def test_requests_and_responses_do_not_answer_themselves():
    q, r = _request("Write"), _response("TAACK")
    assert not q.answers(q) and not r.answers(r) and not q.answers(_request("Write"))


def test_no_taack_asks_for_no_response():
    q = _request("Write", no_taack=1)
    assert not _response("TAACK").answers(q)


def test_tp_ack_answers_data_on_the_swapped_channel():
    q = _request("Write", psn=5)
    for opcode, ext in (("TPACK", ()), ("TPACK_CC", (UBCetphCaqm(ack_seq=5),)),
                        ("TPSACK", (UBSaetph(bitmapsize=0, maxrcvpsn=5),
                                    UBSaetphBitmap(bitmap=bytes(8))))):
        r = _tp(opcode, 5, (0x22, 0x11), *ext)
        assert r[UBRtph].tpopcode in G.TP_PAIRS[1]
        assert r.answers(q), opcode
        assert r.hashret() == q.hashret()
        assert not q.answers(r)
    # same PSN rule (UB 2.0 §6.2.1: the ACK carries the PSN it acknowledges), swapped channel
    assert not _tp("TPACK", 6).answers(q)
    assert not _tp("TPACK", 5, (0x11, 0x22)).answers(q)
    assert not _tp("TPACK", 5, (0x22, 0x33)).answers(q)
    # a TP response answers data only, not another response
    assert not _tp("TPACK", 5).answers(_tp("TPACK", 5, (0x11, 0x22)))


def _native(lph, cna, src, dst, rtph, *more):
    p = lph() / cna(scna=src, dcna=dst, nlp=2) / rtph
    for layer in more:
        p = p / layer
    return lph(raw(p))


def test_ns3_tpnak_answers_data():
    """ns-3-UB answers with the reserved TPOpcode 4 (its TPNAK, TP_RESPONSES_NS3): a response
    under the ns-3-UB dialect, nothing under the spec."""
    assert 4 in G.TP_RESPONSES_NS3 and 4 not in G.TP_PAIRS[1]
    for lph, cna, ns3 in ((UBLphNs3, UBCna16Ns3, True), (UBLph, UBCna16, False)):
        q = _native(lph, cna, 1, 2, UBRtph(psn=5, srctpn=0x11, dsttpn=0x22),
                    UBBtah(taopcode="Write"), UBMaetah(length=8), Raw(bytes(8)))
        r = _native(lph, cna, 2, 1, UBRtph(tpopcode=4, psn=5, srctpn=0x22, dsttpn=0x11))
        assert bool(r.answers(q)) == ns3 and not q.answers(r)
        assert r.hashret() == q.hashret()
        if ns3:
            assert not _native(lph, cna, 2, 1, UBRtph(tpopcode=4, psn=6, srctpn=0x22,
                                                      dsttpn=0x11)).answers(q)


def test_packet_list_sr_pairs_a_conversation():
    reqs = [_request("Write", tassn=1, psn=1), _request("Read", tassn=2, psn=2),
            _request("Atomic_fetch_add", tassn=3, psn=3)]
    rsps = [_tp("TPACK", 1), _tp("TPACK", 2), _response("Read_response", tassn=2, psn=40,
                                                        data=b"\0" * 8),
            _tp("TPACK", 3), _response("TAACK", tassn=1, psn=41),
            _response("Atomic_response", tassn=3, psn=42, data=b"\0" * 8)]
    ans, unans = PacketList(reqs + rsps).sr(multi=True)
    pairs = {(s[UBBtah].ini_tassn, r[UBRtph].tpopcode, r[UBRtph].psn) for s, r in ans}
    assert pairs == {(1, 2, 1), (2, 2, 2), (3, 2, 3), (2, 1, 40), (1, 1, 41), (3, 1, 42)}
    assert len(unans) == 0


def test_native_cfg9_with_cna_swap():
    q = UBLph(raw(UBLph(cfg=9) / UBCna16(scna=1, dcna=2) / UBBtahC(taopcode="Read", ini_tassn=7)
                  / UBMaetahC(address=0x40, len_code=0)))
    r = UBLph(raw(UBLph(cfg=9) / UBCna16(scna=2, dcna=1) / UBAtahC(taopcode="Read_response",
                                                                  ini_tassn=7)
                  / Raw(bytes(64))))
    assert r.answers(q) and r.hashret() == q.hashret()
    stray = UBLph(raw(UBLph(cfg=9) / UBCna16(scna=3, dcna=1)
                      / UBAtahC(taopcode="Read_response", ini_tassn=7) / Raw(bytes(64))))
    assert not stray.answers(q)
    saved = conf.checkIPaddr
    conf.checkIPaddr = False
    try:
        assert stray.answers(q)
    finally:
        conf.checkIPaddr = saved


def test_management_response_answers_its_request():
    q = UBLph(raw(UBLph() / UBCna16(scna=1, dcna=2, mgmt=1) / UBCtph() / UBBtah(ini_tassn=4)
                  / UBMgmtetah(code="Configuration", sub_code=0) / UBCfgReq(req_addr=0x40)))
    r = UBLph(raw(UBLph() / UBCna16(scna=2, dcna=1, mgmt=1) / UBCtph() / UBBtah(ini_tassn=4)
                  / UBMgmtetah(code="Configuration", sub_code=0, rsp=1) / UBCfgRsp(data=1)))
    assert q[UBBtah].taopcode == r[UBBtah].taopcode == 0x10
    assert r.answers(q) and not q.answers(r) and r.hashret() == q.hashret()
    r2 = UBLph(raw(UBLph() / UBCna16(scna=2, dcna=1, mgmt=1) / UBCtph() / UBBtah(ini_tassn=5)
                   / UBMgmtetah(code="Configuration", sub_code=0, rsp=1) / UBCfgRsp(data=1)))
    assert not r2.answers(q)


class _Peer(ObjectPipe):
    """An in-memory socket whose peer answers each UB request with a TPACK and the TA
    response."""

    def send(self, x):
        rt, tah = x[UBRtph], x[UBBtah]
        back = Ether() / IP(src=x[IP].dst, dst=x[IP].src, flags="DF") / UDP(sport=4792)
        chan = {"srctpn": rt.dsttpn, "dsttpn": rt.srctpn}
        super().send(Ether(raw(back / UBRtph(tpopcode="TPACK", psn=rt.psn, **chan))))
        op = G.ta_response_opcode(tah.taopcode)
        super().send(Ether(raw(back / UBRtph(psn=1000 + rt.psn, **chan)
                               / UBAtah(taopcode=op, ini_tassn=tah.ini_tassn,
                                        ini_rc_id=tah.ini_rc_id))))
        return len(raw(x))

    def recv(self, x=None, **kw):
        return super().recv()


def test_sr_pairs_requests_with_responses():
    reqs = [_request("Write", tassn=20 + i, psn=i) for i in range(4)]
    peer = _Peer("ub-peer")
    try:
        ans, unans = sndrcv(peer, reqs, timeout=0.5, multi=True, verbose=0)
    finally:
        peer.close()
    assert len(unans) == 0
    got = sorted((s[UBRtph].psn, r[UBRtph].tpopcode) for s, r in ans)
    assert got == sorted([(i, 2) for i in range(4)] + [(i, 1) for i in range(4)])
    for s, r in ans:
        if r[UBRtph].tpopcode == 1:
            assert r[UBAtah].ini_tassn == s[UBBtah].ini_tassn
