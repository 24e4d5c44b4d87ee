"""UTP, CTP and TP bypass channels: no PSN, no response, no retransmission (UB 2.0 §6.3.2,
§6.3.3, App B)."""
from __future__ import annotations

import pytest
from tp_harness import TA

from ubpkt import SPEC, encode_layers
from ubpkt.stack.engine import Discarded
from ubpkt.stack.network import Framer, Path
from ubpkt.stack.transport import TaSegment
from ubpkt.stack.transport.bypass import BypassChannel
from ubpkt.stack.transport.ctp import CtpChannel
from ubpkt.stack.transport.utp import UtpChannel

TA_C = encode_layers([("ub.btah_c", {"taopcode": "Write", "ini_tassn": 1}),
                      ("ub.maetah_c", {"address": 0x1000, "len_code": 0})])
CASES = {"utp": (UtpChannel, "uboe", TA), "ctp": (CtpChannel, "cna16", TA),
         "ctp24": (CtpChannel, "cna24", TA), "bypass": (BypassChannel, "cna16", TA_C)}


def pair(name):
    cls, kind, ta = CASES[name]
    got = {"a": [], "b": []}
    fa, fb = Framer(Path(kind=kind), SPEC), Framer(Path(kind=kind).reverse(), SPEC)

    def deliver(side):
        return lambda pkt, now: got[side].append(bytes(pkt.ta)[len(ta):])
    a = cls(channel_id=1, framer=fa, deliver=deliver("a"))
    b = cls(channel_id=2, framer=fb, deliver=deliver("b"))
    return a, b, got, ta


@pytest.mark.parametrize("name", CASES)
def test_loss_is_simply_absent(name):
    a, b, got, ta = pair(name)
    for i in range(10):
        a.send(TaSegment(ta, bytes([i]) * 4, True))
    assert a.backlog() == 10 and not a.idle()
    frames = a.transmit(0, budget=4) + a.transmit(0)
    assert len(frames) == 10 and a.idle()
    for i, f in enumerate(frames):
        if i != 3:
            b.receive(f, 1)                      # frames are parsed by the channel's framer
    assert got["b"] == [bytes([i]) * 4 for i in range(10) if i != 3]
    assert b.transmit(1) == [] and b.next_deadline() is None     # nothing to answer
    b.handle_timeout(10**12)
    assert a.stats["tx_packets"] == 10 and b.stats["rx_packets"] == 9
    assert a.pop_events() == [] and b.pop_events() == []


def test_refused_and_wrong_mode_and_bad_frames():
    a, b, got, ta = pair("utp")
    b._deliver = lambda pkt, now: "rnr"
    a.send(TaSegment(ta, b"abcd"))
    f = a.transmit(0)[0]
    b.receive(f, 1)
    bad = bytearray(f)
    bad[-1] ^= 1
    b.receive(bytes(bad), 2)
    rtp = Framer(Path().reverse(), SPEC)
    b.receive(rtp.parse(rtp.rtp_data(1, 2, 0, TA, b"abcd")), 3)
    assert [e.reason for e in b.pop_events() if isinstance(e, Discarded)] == [
        "rnr", "bad_icrc", "malformed"]
    assert b.stats["rx_refused"] == 1 and b.stats["wrong_mode"] == 1


def test_ctp_carries_a_whole_operation_per_packet():
    a, *_ = pair("ctp")
    with pytest.raises(ValueError):
        a.send(TaSegment(TA, b"x", last=False))


def test_ctp_is_not_carried_over_udp():
    ta = TA
    ctp_over_udp = CtpChannel(channel_id=1, framer=Framer(Path(), SPEC),
                              deliver=lambda p, n: None)
    ctp_over_udp.send(TaSegment(ta, b"abcd"))
    with pytest.raises(ValueError):
        ctp_over_udp.transmit(0)
