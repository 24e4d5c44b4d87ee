"""Go-Back-N with fast retransmission: which TPNAKs start a go-back (UB 2.0 §6.4.2.2.1), and the
channel under persistent reordering, where the spec advises against fast retransmission
(§6.4.2.2) but the channel must still finish and never give up while the path delivers.

The sender's rule (module doc of ``ubpkt.stack.transport.rtp``, "Go-back rounds"): a TPNAK
older than the lowest unacknowledged PSN is stale; one beyond HighRtxPSN (the last go-back's
highest PSN) starts a go-back; one inside the go-back in flight goes back again only if it
names a later PSN than the last go-back started from, no TPACK answering a duplicate (a TPACK
for the PSN just below the lowest unacknowledged one) came back since, and, after a go-back on a
TPNAK, half the measured round trip has passed; otherwise it only acknowledges, and a resend
lost in turn is left to the RTO.
"""
from __future__ import annotations

import pytest
from tp_harness import US, Pair, seg

from ubpkt.profile import TransportTuning
from ubpkt.stack.engine import ChannelError, Retransmitted

GBN = TransportTuning()                     # Go-Back-N + fast retransmit, static RTO 512 us
RTO = 512 * US


def _nak(p: Pair, psn: int):
    return p.fa.parse(p.fb.tp_response(2, 1, psn, rspst=3))


def _ack(p: Pair, psn: int):
    return p.fa.parse(p.fb.tp_response(2, 1, psn))


def _sent(p: Pair, frames) -> list:
    return [p.fb.parse(f).psn for f in frames]


def _rtx(p: Pair) -> list:
    return [(e.psn, e.reason) for e in p.a.pop_events() if isinstance(e, Retransmitted)]


def test_which_tpnaks_go_back():
    p = Pair(GBN)
    a = p.a
    a.send(seg(0))
    a.send(seg(1))
    assert _sent(p, a.transmit(0)) == [100, 101]
    a.receive(_ack(p, 101), 4 * US)              # the round trip measured: 4 us
    for i in range(2, 10):
        a.send(seg(i))
    assert _sent(p, a.transmit(10 * US)) == list(range(102, 110))

    # a first loss: TPNAK(102) acknowledges 100..101, everything from 102 goes again
    a.receive(_nak(p, 102), 20 * US)
    assert a.in_flight() == 8
    assert _sent(p, a.transmit(20 * US)) == list(range(102, 110))
    assert _rtx(p) == [(q, "nak") for q in range(102, 110)]

    # the same PSN again (the receiver NAKs its EPSN anew after answering a duplicate): that
    # resend is on its way, nothing goes again
    a.receive(_nak(p, 102), 21 * US)
    assert a.transmit(21 * US) == [] and a.stats["rx_nak_ignored"] == 1
    # older than the lowest unacknowledged PSN: stale
    a.receive(_nak(p, 101), 21 * US)
    assert a.transmit(21 * US) == [] and a.stats["rx_stale"] == 1 and a.in_flight() == 8
    # a later PSN, but 1.5 us after the go-back, under half the round trip: sent before any
    # resend arrived, about the first transmission: it only acknowledges 102..103
    a.receive(_nak(p, 104), 21_500)
    assert a.in_flight() == 6 and a.transmit(21_500) == []
    assert a.stats["rx_nak_ignored"] == 2

    # a later PSN, 6 us after: the receiver moved on and found the next hole (a resend lost
    # in turn, on a lossy path): go back again from there
    a.receive(_nak(p, 105), 26 * US)
    assert _sent(p, a.transmit(26 * US)) == [105, 106, 107, 108, 109]
    assert _rtx(p) == [(q, "nak") for q in range(105, 110)]

    # TPACK(104) = the PSN below the lowest unacknowledged: the receiver answered a duplicate,
    # so the path reorders ...
    a.receive(_ack(p, 104), 40 * US)
    assert a.stats["rx_stale"] == 2 and a.in_flight() == 5
    # ... and until the next go-back a TPNAK inside this one only acknowledges
    a.receive(_nak(p, 106), 50 * US)
    assert a.in_flight() == 4 and a.transmit(50 * US) == []
    assert a.stats["rx_nak_ignored"] == 3
    # the RTO, restarted by that progress, resends from there
    t = 50 * US + RTO
    assert a.next_deadline() == t
    a.handle_timeout(t)
    assert _sent(p, a.transmit(t)) == [106, 107, 108, 109]
    assert _rtx(p) == [(q, "rto") for q in range(106, 110)]
    # a new go-back forgets the duplicate, and after a timeout nothing is in flight from
    # before: a later PSN inside it goes back again at once
    a.receive(_nak(p, 107), t + 1)
    assert _sent(p, a.transmit(t + 1)) == [107, 108, 109]

    # the go-back is over once HighRtxPSN (109) is acknowledged; a new loss is a first loss
    t += 10 * US
    a.receive(_ack(p, 109), t)
    for i in range(10, 14):
        a.send(seg(i))
    assert _sent(p, a.transmit(t)) == [110, 111, 112, 113]
    a.receive(_nak(p, 110), t)                   # names the lowest unacknowledged PSN itself
    assert _sent(p, a.transmit(t)) == [110, 111, 112, 113]
    a.receive(_nak(p, 110), t)                   # again: ignored
    assert a.transmit(t) == [] and a.stats["rx_nak_ignored"] == 4
    # rx_naks: every TPNAK but the stale one (counted in rx_stale)
    assert a.stats["rtx_nak"] == 8 + 5 + 3 + 4 and a.stats["rtx_rto"] == 4
    assert a.stats["rx_naks"] == 8 and a.stats["timeouts"] == 1
    assert not [e for e in a.pop_events() if isinstance(e, ChannelError)]


def test_lost_resend_on_a_fifo_path_goes_back_at_once():
    # 102 is lost, then the resend of 105: the receiver finds that hole after the resends
    # before it came in order, and its second TPNAK goes back at once (no RTO)
    sent: dict = {}

    def tap(s):
        if s.dir == "ab" and s.kind == "data":
            sent[s.psn] = sent.get(s.psn, 0) + 1
            if (s.psn, sent[s.psn]) in ((102, 1), (105, 2)):
                return []
        return [0]
    p = Pair(GBN, gap=100, tap=tap)
    for i in range(10):
        p.a.send(seg(i))
    p.run()
    assert p.got_b == list(range(10))
    assert [s.psn for s in p.sent("ba", "tpnak")] == [102, 105]
    assert [(e.psn, e.reason) for e in p.ev("a", Retransmitted)] == (
        [(q, "nak") for q in range(102, 110)] + [(q, "nak") for q in range(105, 110)])
    assert p.a.stats["timeouts"] == 0 and p.a.stats["rx_nak_ignored"] == 0
    assert p.now == 7100                       # done in 7.1 us, not after a 512 us RTO


@pytest.mark.parametrize("window", [16, 64])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_persistent_reordering_completes_with_bounded_retransmissions(window, seed):
    """Every burst is put on the wire in a random order, over a 10 Gbit/s FIFO link (4 KiB
    packets: 3.3 us each), as ``ubpkt loopback --retrans gbn --jitter 1us`` does.

    Before the fix every TPNAK, even one for a PSN just resent, started a go-back of the whole
    window: ~4 go-backs per packet delivered (window 64, seed 1: 35 605 retransmissions for 120
    packets), ~5 000 resends/ms against a link carrying ~300 frames/ms, a queue of ~100 ms in
    front of the acknowledgements, and ``retry_exceeded`` after 8 RTOs without an ACK.

    The bound tested: at most one go-back, i.e. at most ``window`` resends, per packet
    acknowledged, plus the first.  Each go-back now needs progress since the previous one (or a
    timeout without progress, and none happens here: a round of 64 packets takes 214 us on
    the wire, less than the RTO).  Go-Back-N cannot do much better on this path: its receiver
    drops what comes out of order, so a shuffled round delivers only about e - 1 = 1.7 packets
    in order on average; with the window at 64 this costs ~27 resends per packet (measured,
    seeds 1..5: 3 019 .. 3 397, four fifths on TPNAKs, the rest on RTOs; ~17 ms; the queue
    stays under ~1 ms).
    """
    n = 120
    t = TransportTuning(window=window)
    p = Pair(t, rate=10**10, shuffle=True, seed=seed, delay=2 * US)
    for i in range(n):
        p.a.send(seg(i, size=4096))
    p.run()
    assert not p.ev("a", ChannelError)
    assert p.got_b == list(range(n)) and p.a.idle() and p.a.next_deadline() is None
    st = p.a.stats
    assert st["retransmissions"] <= (n + 1) * window
    assert st["retransmissions"] == st["rtx_nak"] + st["rtx_rto"]
    assert st["rx_nak_ignored"] > 0
    # the queue the sender builds in front of its own acknowledgements stays far below the
    # retry limit's worth of RTO intervals (what made the old code give up)
    assert p.max_queue_ns["ab"] < t.retry_limit * RTO


@pytest.mark.parametrize("mode,fast", [("gbn", False), ("sr", True), ("sr", False)])
def test_persistent_reordering_other_modes(mode, fast):
    """The modes the spec recommends for a reordering path (§6.4.2 Table 6-7) are unaffected:
    no timeout, a few selective resends at most."""
    t = TransportTuning(retransmission=mode, fast_retransmit=fast, window=64)
    p = Pair(t, rate=10**10, shuffle=True, seed=1, delay=2 * US)
    for i in range(120):
        p.a.send(seg(i, size=4096))
    p.run()
    assert not p.ev("a", ChannelError) and p.got_b == list(range(120))
    assert p.a.stats["timeouts"] == 0 and p.a.stats["rtx_nak"] == 0
    assert p.a.stats["retransmissions"] <= (120 if mode == "sr" and fast else 0)
