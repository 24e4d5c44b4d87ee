"""Congestion marks carried and echoed (CETPH, UB 2.0 §6.2.2, §6.6.1.3.4): the receiver answers
marked data with TPACK_CC/TPNAK_CC/TPSACK_CC, the sender records them; the window stays fixed."""
from __future__ import annotations

from tp_harness import Pair, seg

from ubpkt import SPEC
from ubpkt.profile import TransportTuning
from ubpkt.stack.engine import ResponseSent
from ubpkt.stack.network import TPACK, TPACK_CC, TPSACK_CC, Framer, Path

GBN = TransportTuning()
SR = TransportTuning(retransmission="sr")


def marking(ns, *, ce=1, ci=0, hint=0, loc=0, drop=()):
    """A tap setting the congestion information of data frames number ``ns`` (0-based, first
    transmissions counted with the rest) and dropping those in ``drop``."""
    def tap(s):
        if s.dir == "ab" and s.kind == "data":
            if s.n in drop:
                return []
            if s.n in ns:
                s.pkt.ce, s.pkt.ci, s.pkt.hint, s.pkt.loc = ce, ci, hint, loc
        return [0]
    return tap


def responses(p: Pair):
    return [s.pkt for s in p.log if s.dir == "ba"]


def run(p: Pair, n: int, last=True):
    for i in range(n):
        p.a.send(seg(i, last=last or i == n - 1))
    p.run()
    assert p.got_b == list(range(n))
    assert p.a.idle()
    return p


def test_unmarked_traffic_gets_plain_tpacks():
    p = run(Pair(GBN), 20)
    assert {r.tpopcode for r in responses(p)} == {TPACK}
    assert all(r.cetph is None for r in responses(p))
    assert p.b.stats["cc_sent"] == p.b.stats["cc_marked"] == 0
    assert p.a.stats["cc_responses"] == p.a.stats["cc_marks"] == 0


def test_marked_packets_are_counted_and_echoed_in_tpack_cc():
    # every packet asks for a response: one TPACK_CC per marked packet, C = 1, plain otherwise
    p = run(Pair(GBN, gap=100, tap=marking({2, 5, 6})), 10)
    rsp = responses(p)
    cc = [r for r in rsp if r.tpopcode == TPACK_CC]
    assert [r.tpopcode == TPACK_CC for r in rsp] == [i in (2, 5, 6) for i in range(10)]
    assert [(r.psn, r.cetph["c"], r.cetph["i"]) for r in cc] == [(102, 1, 0), (105, 1, 0),
                                                                  (106, 1, 0)]
    assert p.b.stats["cc_marked"] == 3 and p.b.stats["cc_sent"] == 3
    assert p.a.stats["cc_responses"] == 3 and p.a.stats["cc_marks"] == 3
    assert p.a.cc_last == cc[-1].cetph
    assert [e.kind for e in p.ev("b", ResponseSent)] == ["tpack_cc"] * 3
    # Ack_Seq: the transaction bytes taken so far, in 2-byte units (§6.6.1.1.4)
    per = (len(p.sent()[0].pkt.ta) + 1) // 2
    assert [r.cetph["ack_seq"] for r in cc] == [3 * per, 6 * per, 7 * per]


def test_coalesced_responses_accumulate_c_i_and_hint():
    # no A bit until the last packet: one response for all; C counts the marked packets, an
    # unmarked packet with I adds its Hint and sets I (§6.6.1.3.4)
    t = TransportTuning(ack_every=100)
    tap1 = marking({1, 3, 4}, loc=1)
    tap2 = marking({6, 7}, ce=0, ci=1, hint=10)

    def tap(s):
        tap1(s)
        return tap2(s)
    p = run(Pair(t, gap=100, tap=tap), 9, last=False)
    rsp = responses(p)
    assert len(rsp) == 1 and rsp[0].tpopcode == TPACK_CC
    assert rsp[0].cetph == {"ack_seq": rsp[0].cetph["ack_seq"], "loc": 1, "i": 1, "c": 3,
                            "hint": 20}
    assert p.b.stats["cc_marked"] == 3 and p.a.stats["cc_marks"] == 3
    # the accumulators are cleared: the next unmarked round gets a plain TPACK
    p.tap = None
    for i in range(9, 12):
        p.a.send(seg(i, last=i == 11))
    p.run()
    assert responses(p)[-1].tpopcode == TPACK and p.a.stats["cc_responses"] == 1


def test_tpnak_cc_and_tpsack_cc():
    # Go-Back-N: the out-of-order packet after a loss is marked: the TPNAK goes out as TPNAK_CC
    p = run(Pair(GBN, gap=100, tap=marking({4}, drop={3})), 8)
    nak = [r for r in responses(p) if r.rspst == 3]
    assert nak and nak[0].tpopcode == TPACK_CC and nak[0].cetph["c"] == 1
    assert "tpnak_cc" in [e.kind for e in p.ev("b", ResponseSent)]
    assert p.a.stats["rx_naks"] >= 1 and p.a.stats["cc_marks"] == 1
    # selective: a marked packet held out of order is answered with a TPSACK_CC
    p = run(Pair(SR, gap=100, tap=marking({4}, drop={3})), 8)
    sack = [r for r in responses(p) if r.tpopcode == TPSACK_CC]
    assert len(sack) == 1 and sack[0].cetph["c"] == 1 and sack[0].bitmap[-1] & 0x05 == 0x05
    assert p.a.stats["rx_sacks"] >= 1 and p.a.stats["retransmissions"] == 1
    assert p.a.stats["cc_responses"] == 1


def test_window_stays_fixed_under_marks():
    t = TransportTuning(window=4)
    p = Pair(t, tap=marking(set(range(40))))
    for i in range(40):
        p.a.send(seg(i))
    top = 0
    while p.a.backlog() or not p.a.idle():
        p.step()
        top = max(top, p.a.in_flight())
        cands = [x for x in (p.heap[0][0] if p.heap else None, p.a.next_deadline(),
                             p.b.next_deadline()) if x is not None]
        if not cands:
            break
        p.now = min(cands)
    assert top == 4 and p.got_b == list(range(40))
    assert p.a.stats["cc_marks"] == 40


def test_ldcp_variant_carries_ce_seq():
    prof = SPEC.with_(cetph_variant="ldcp")
    p = Pair(GBN, gap=100, tap=marking({1}))
    p.fa, p.fb = Framer(Path(), prof), Framer(Path().reverse(), prof)
    p.a.framer, p.b.framer = p.fa, p.fb
    run(p, 3)
    cc = [r for r in responses(p) if r.tpopcode == TPACK_CC]
    assert len(cc) == 1 and set(cc[0].cetph) == {"ack_seq", "ce_seq"}
    per = (len(p.sent()[0].pkt.ta) + 1) // 2
    assert cc[0].cetph == {"ack_seq": 2 * per, "ce_seq": per}
    assert p.a.stats["cc_responses"] == 1
