"""RtpChannel pairwise on an explicit clock, with scripted losses (UB 2.0 §6.4)."""
from __future__ import annotations

import pytest
from tp_harness import TA, US, Pair, seg

from ubpkt import SPEC
from ubpkt.profile import TransportTuning
from ubpkt.stack.engine import ChannelError, Discarded, ResponseSent, Retransmitted
from ubpkt.stack.network import Framer, Path
from ubpkt.stack.transport import TaSegment
from ubpkt.stack.transport.psn import (MAX_OUTSTANDING, PSN_HALF, PSN_MASK, psn_add, psn_diff,
                                       psn_lt, unwrap)
from ubpkt.stack.transport.rto import RtoPolicy, rnr_timeout_ns
from ubpkt.stack.transport.rtp import RtpChannel

GBN = TransportTuning()                                     # Go-Back-N + fast retransmit
GBN_SLOW = TransportTuning(fast_retransmit=False)           # Go-Back-N, timeouts only
SR = TransportTuning(retransmission="sr")                   # selective + fast retransmit
SR_SLOW = TransportTuning(retransmission="sr", fast_retransmit=False)
ALL = {"gbn": GBN, "gbn_slow": GBN_SLOW, "sr": SR, "sr_slow": SR_SLOW}


def drop_data(*ns, direction="ab"):
    """A tap dropping the first transmissions number ``ns`` (0-based) of data frames."""
    def tap(s):
        return [] if s.dir == direction and s.kind == "data" and s.n in ns else [0]
    return tap


def rtx(p: Pair, side="a"):
    return [(e.at, e.psn, e.reason) for e in p.ev(side, Retransmitted)]


def run_segments(p: Pair, n: int, last=True):
    for i in range(n):
        p.a.send(seg(i, last=last or i == n - 1))
    p.run()
    assert p.got_b == list(range(n))
    assert p.a.idle() and p.a.in_flight() == 0
    assert not p.ev("a", ChannelError)
    return p


# -- PSN and timer helpers ----------------------------------------------------------------------
def test_psn_serial_arithmetic():
    assert psn_add(PSN_MASK, 1) == 0 and psn_add(5, -6) == PSN_MASK
    assert psn_diff(0, PSN_MASK) == 1 and psn_diff(PSN_MASK, 0) == -1
    assert psn_diff(PSN_HALF, 0) == -PSN_HALF and psn_diff(PSN_HALF - 1, 0) == PSN_HALF - 1
    assert psn_lt(PSN_MASK, 0) and not psn_lt(0, PSN_MASK)
    assert unwrap(2, PSN_MASK + 10) == (1 << 24) + 2       # just after a wrap
    assert unwrap(PSN_MASK, 1 << 24) == PSN_MASK             # just before it
    assert MAX_OUTSTANDING == 8 * 1024 * 1024 - 1


def test_rto_policy_and_rnr_timer():
    dyn = RtoPolicy(TransportTuning(rto_mode="dynamic", rto_base_ns=20 * US, rto_exp_n=3))
    # UB 2.0 §6.4.2.1 Table 6-8: 20, 160, 1280 ... 5242880 us for retransmissions 1..7
    assert [dyn.interval(k) // US for k in range(7)] == [20, 160, 1280, 10240, 81920, 655360,
                                                         5242880]
    assert RtoPolicy(TransportTuning()).interval(5) == 512 * US
    assert [rnr_timeout_ns(c) for c in (0, 3, 19)] == [2 * US, 16 * US, 2 * US << 19]


# -- no loss ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ALL)
def test_no_loss_in_order_and_coalesced(mode):
    p = run_segments(Pair(ALL[mode], gap=100), 100, last=False)
    assert p.a.stats["retransmissions"] == 0 and p.a.stats["tx_packets"] == 100
    assert p.b.stats["rx_packets"] == 100 and p.b.stats["duplicates"] == 0
    # the A bit: every 16th packet, and the one that empties the queue
    a_bits = [s.n for s in p.sent() if s.a]
    assert a_bits == [15, 31, 47, 63, 79, 95, 99]
    acks = p.sent("ba", "tpack")
    assert [s.psn for s in acks] == [100 + n for n in a_bits]
    assert not p.ev("a", Retransmitted) and not p.ev("b", Discarded)


def test_both_directions_share_nothing_but_the_channel():
    p = Pair(GBN, gap=100)
    for i in range(20):
        p.a.send(seg(i))
        p.b.send(seg(1000 + i))
    p.run()
    assert p.got_b == list(range(20)) and p.got_a == list(range(1000, 1020))
    assert [s.psn for s in p.sent("ab")] == list(range(100, 120))
    assert [s.psn for s in p.sent("ba")] == list(range(5000, 5020))
    assert p.a.idle() and p.b.idle()


def test_window_bounds_packets_in_flight():
    t = TransportTuning(window=8, ack_every=100)
    seen = []
    p = Pair(t, gap=100, tap=lambda s: seen.append(p.a.in_flight()) or [0])
    run_segments(p, 30, last=False)
    assert max(seen) == 8
    # the packet that fills the window asks for a response, so the sender is never stuck
    assert p.sent()[7].a == 1 and p.sent()[6].a == 0


# -- Go-Back-N with fast retransmission (§6.4.2.2.1) --------------------------------------------
def test_gbn_drop_nth_data_one_tpnak_then_go_back():
    p = run_segments(Pair(GBN, gap=100, tap=drop_data(3)), 10)
    naks = p.sent("ba", "tpnak")
    assert [s.psn for s in naks] == [103]                   # one TPNAK, PSN = EPSN
    # everything from the NAKed PSN goes again, reason "nak"
    assert [(psn, r) for _, psn, r in rtx(p)] == [(q, "nak") for q in range(103, 110)]
    ooo = [e.psn for e in p.ev("b", Discarded) if e.reason == "ooo"]
    assert ooo and ooo[0] == 104
    assert p.b.stats["naks"] == 1 and p.a.stats["rtx_nak"] == 7


def test_gbn_no_second_tpnak_until_a_tpack():
    # lose 101 and the TPNAK: the receiver stays quiet about later gaps until a TPACK goes out;
    # the RTO brings the lost packets back (§6.4.2.2.1, TPNAK loss)
    def tap(s):
        if s.dir == "ab" and s.kind == "data" and s.n == 1:
            return []
        if s.dir == "ba" and s.kind == "tpnak" and s.n == 0:
            return []
        return [0]
    p = run_segments(Pair(GBN, gap=100, tap=tap), 5)
    assert len(p.sent("ba", "tpnak")) == 1
    ack100 = next(s for s in p.sent("ba", "tpack") if s.psn == 100)
    # the RTO restarted when TPACK(100) arrived, and expired 512 us later
    t_rto = ack100.t + p.delay + 512 * US
    assert rtx(p) == [(t_rto + 100 * k, 101 + k, "rto") for k in range(4)]   # paced 100 ns


def test_gbn_first_tpack_lost_is_covered_by_the_next():
    t = TransportTuning(ack_every=2)
    p = run_segments(Pair(t, gap=100, tap=lambda s: [] if (s.kind == "tpack" and s.n == 0)
                          else [0]), 6, last=False)
    acks = p.sent("ba", "tpack")
    assert acks[0].fate == "drop" and len(acks) == 3
    assert p.a.stats["retransmissions"] == 0 and p.a.stats["acked"] == 6


def test_gbn_tail_loss_static_rto():
    p = run_segments(Pair(GBN, tap=drop_data(3)), 4)
    # 0..2 are acknowledged at t = 2 us, which restarts the timer; 103 goes again 512 us later
    assert rtx(p) == [(2 * US + 512 * US, 103, "rto")]
    assert p.a.stats["timeouts"] == 1 and p.now == 516 * US


def test_gbn_tail_tpack_lost_duplicate_answered():
    p = run_segments(Pair(GBN, tap=lambda s: [] if (s.kind == "tpack" and s.n == 0) else [0]), 3)
    assert rtx(p) == [(512 * US, q, "rto") for q in (100, 101, 102)]
    assert [e.reason for e in p.ev("b", Discarded)] == ["duplicate"] * 3
    assert [(e.psn, e.kind) for e in p.ev("b", ResponseSent)] == [(102, "tpack")]
    assert p.got_b == [0, 1, 2]


def test_gbn_reordering_spurious_retransmit_delivers_once():
    p = run_segments(Pair(GBN, gap=100, tap=lambda s: [350] if (s.kind == "data" and s.n == 2)
                          else [0]), 8)
    # 103 finds EPSN 102: TPNAK(102); 102 comes, then 106 finds EPSN 103: a TPACK went out
    # in between, so a second TPNAK(103) is allowed.  It reaches the sender 350 ns after its
    # go-back from 102, sooner than half the 2 us round trip it measured: it is about the
    # first 103 (dropped out of order), which that go-back resends already; one go-back
    assert [s.psn for s in p.sent("ba", "tpnak")] == [102, 103]
    assert [(e.psn, e.reason) for e in p.ev("a", Retransmitted)] == [
        (q, "nak") for q in range(102, 108)]
    assert p.a.stats["rx_nak_ignored"] == 1 and p.b.stats["duplicates"] == 1


def test_duplicated_frames_are_discarded_and_acknowledged():
    p = run_segments(Pair(GBN, gap=100, tap=lambda s: [0, 50] if s.kind == "data" else [0]), 10)
    assert p.b.stats["duplicates"] == 10
    assert len([e for e in p.ev("b", ResponseSent) if e.kind == "tpack"]) == 10
    assert p.a.stats["retransmissions"] == 0


# -- Go-Back-N without fast retransmission (§6.4.2.2.2) ------------------------------------------
def test_gbn_without_fast_retransmit_keeps_out_of_order_and_waits_for_rto():
    p = run_segments(Pair(GBN_SLOW, gap=100, tap=drop_data(2)), 6)
    assert not p.sent("ba", "tpnak") and not p.sent("ba", "tpsack")
    assert p.b.stats["ooo_kept"] == 3
    t = rtx(p)[0][0]
    assert rtx(p) == [(t + 100 * k, 102 + k, "rto") for k in range(4)]
    # the kept ones come back as duplicates and are dropped; each delivered once
    assert [e.psn for e in p.ev("b", Discarded)] == [103, 104, 105]


def test_gbn_without_fast_retransmit_reordering_costs_nothing():
    p = run_segments(Pair(GBN_SLOW, gap=100, tap=lambda s: [350] if (s.kind == "data" and
                                                                     s.n == 2) else [0]), 8)
    assert p.a.stats["retransmissions"] == 0 and p.b.stats["ooo_kept"] == 3


# -- selective retransmission (§6.4.2.3) ---------------------------------------------------------
def test_sr_resends_only_the_holes():
    p = run_segments(Pair(SR, gap=100, tap=drop_data(2, 5)), 10)
    assert [(psn, r) for _, psn, r in rtx(p)] == [(102, "sack"), (105, "sack")]
    first = p.sent("ba", "tpsack")[0].pkt
    # PSN = highest in-order (101) = BitMap[0]; BitMap[1] (102) missing, BitMap[2] (103) here
    assert first.psn == 101 and first.maxrcvpsn == 103
    # the reference profile's sack_bit_order (field_lsb, UB 2.0 §6.2.3): BitMap[i] is bit i of
    # the bitmap read as one big-endian number, so BitMap[0] and [2] are the last byte's bits 0, 2
    assert len(first.bitmap) == 256 // 8 and first.bitmap[-1] == 0b00000101
    assert not any(first.bitmap[:-1])
    assert p.b.stats["duplicates"] == 0 and p.a.stats["timeouts"] == 0


def test_sr_markpsn_resends_a_lost_resend_before_the_rto():
    sent = {}

    def tap(s):     # 101 is lost on its first transmission and on its first resend
        if s.dir == "ab" and s.kind == "data":
            sent[s.psn] = sent.get(s.psn, 0) + 1
            if s.psn == 101 and sent[101] <= 2:
                return []
        return [0]
    p = run_segments(Pair(SR, gap=300, tap=tap), 12)
    assert [(psn, r) for _, psn, r in rtx(p)] == [(101, "sack"), (101, "sack")]
    assert p.a.stats["timeouts"] == 0


def test_sr_without_fast_retransmit_waits_for_rto_and_skips_sacked():
    p = run_segments(Pair(SR_SLOW, gap=100, tap=drop_data(2, 5)), 10)
    t = rtx(p)[0][0]
    assert rtx(p) == [(t, 102, "rto"), (t + 100, 105, "rto")]
    assert p.b.stats["sacks"] > 0


def test_sr_reordering_without_fast_retransmit_costs_nothing():
    p = run_segments(Pair(SR_SLOW, gap=100, tap=lambda s: [350] if (s.kind == "data" and
                                                                    s.n == 2) else [0]), 8)
    assert p.a.stats["retransmissions"] == 0 and p.b.stats["sacks"] >= 1


def test_sr_tail_loss_rto_resends_the_tail_only():
    p = run_segments(Pair(SR, gap=100, tap=drop_data(1, 5)), 6)
    assert [(psn, r) for _, psn, r in rtx(p)] == [(101, "sack"), (105, "rto")]


def test_sr_out_of_order_beyond_the_bitmap_is_dropped_but_counted_in_maxrcvpsn():
    t = TransportTuning(retransmission="sr", sack_bitmap_bits=64, oor_window=128)
    p = run_segments(Pair(t, tap=drop_data(0)), 80)
    assert p.b.stats["ooo_kept"] == 62 and p.b.stats["ooo_dropped"] == 17
    sacks = p.sent("ba", "tpsack")
    assert sacks[0].pkt.maxrcvpsn == 179


# -- RTO: static, dynamic, retry limit (§6.4.2.1) ------------------------------------------------
def test_dynamic_rto_follows_table_6_8_then_retry_exceeded():
    t = TransportTuning(rto_mode="dynamic", rto_base_ns=20 * US, rto_exp_n=3, retry_limit=7)
    p = Pair(t, tap=lambda s: [] if s.dir == "ab" else [0])
    p.a.send(seg(0))
    p.run()
    times = [at for at, _, r in rtx(p)]
    expected, at = [], 0
    for k in range(7):
        at += 20 * US * 8 ** k
        expected.append(at)
    assert times == expected                              # 20, 180, 1460 ... us
    err = p.ev("a", ChannelError)
    assert len(err) == 1 and err[0].status == "retry_exceeded"
    assert err[0].at == expected[-1] + 20 * US * 8 ** 7
    assert p.a.next_deadline() is None and p.a.transmit(err[0].at + 1) == []
    assert [s.tag for s in p.a.abandon()] == [0] and p.a.idle()


def test_static_rto_retry_limit():
    p = Pair(TransportTuning(retry_limit=3), tap=lambda s: [] if s.dir == "ab" else [0])
    p.a.send(seg(0))
    p.a.send(seg(1))
    p.run()
    assert [(at, psn) for at, psn, _ in rtx(p)] == [(k * 512 * US, q) for k in (1, 2, 3)
                                                   for q in (100, 101)]
    assert [(e.at, e.status) for e in p.ev("a", ChannelError)] == [(4 * 512 * US,
                                                                   "retry_exceeded")]
    assert p.a.stats["timeouts"] == 4


def test_progress_resets_the_retry_count():
    # every packet is lost twice, then passes: never three timeouts in a row without progress
    lost = {}

    def tap(s):
        if s.dir == "ab" and s.kind == "data":
            lost[s.psn] = lost.get(s.psn, 0) + 1
            return [] if lost[s.psn] <= 2 else [0]
        return [0]
    t = TransportTuning(retry_limit=2, window=1)
    p = run_segments(Pair(t, tap=tap), 4)
    assert p.a.stats["timeouts"] == 8


# -- RNR (§6.2.1 RSPST/RSPINFO) -------------------------------------------------------------------
def test_rnr_timer_exact_and_resend_from_the_refused_psn():
    refused = []

    def refuse(pkt, now):
        if len(refused) < 2 and pkt.psn == 100:
            refused.append(now)
            return True
        return False
    p = run_segments(Pair(GBN, refuse=refuse), 3)
    rnrs = p.sent("ba", "rnr")
    assert [(s.t, s.psn, s.pkt.rspst, s.pkt.rspinfo) for s in rnrs] == [
        (1 * US, 100, 1, 3), (19 * US, 100, 1, 3)]
    # 2 us x 2^3 after each RNR TPNAK arrives, everything from 100 goes again
    assert rtx(p) == [(t, q, "rnr") for t in (18 * US, 36 * US) for q in (100, 101, 102)]
    assert p.a.stats["rx_rnr"] == 2 and p.b.stats["rnr_refused"] == 2
    assert not p.sent("ba", "tpnak")                     # the RNR counts as the one TPNAK


def test_rnr_retry_exceeded():
    p = Pair(TransportTuning(rnr_retry=2), refuse=lambda pkt, now: True)
    p.a.send(seg(0))
    p.run()
    assert [(e.at, e.status) for e in p.ev("a", ChannelError)] == [(38 * US,
                                                                   "rnr_retry_exceeded")]
    assert len(p.sent("ba", "rnr")) == 3


def test_rnr_retry_7_is_for_ever():
    p = Pair(TransportTuning(rnr_retry=7, rnr_timer_code=0), refuse=lambda pkt, now: True)
    p.a.send(seg(0))
    p.run(until=1000 * US)
    assert len(p.sent("ba", "rnr")) > 100 and not p.ev("a", ChannelError)


@pytest.mark.parametrize("mode", ["sr", "gbn_slow"])
def test_rnr_while_out_of_order_packets_are_held(mode):
    refused = []

    def refuse(pkt, now):
        if not refused and pkt.psn == 103:
            refused.append(now)
            return True
        return False
    # 102 is lost, 103..105 are held; when 102 comes back, 103 is refused on the way up
    p = run_segments(Pair(ALL[mode], gap=100, tap=drop_data(2), refuse=refuse), 6)
    assert len(refused) == 1 and [s.psn for s in p.sent("ba", "rnr")] == [103]


# -- PSN ranges (§6.4.1) --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ALL)
def test_psn_wraparound(mode):
    start = (1 << 24) - 3
    p = run_segments(Pair(ALL[mode], a_psn=start, gap=100, tap=drop_data(4)), 10)
    first = [s.psn for s in p.sent() if s.n < 10]
    assert first == [(start + i) & PSN_MASK for i in range(10)]
    assert {psn for _, psn, _ in rtx(p)} >= {1}            # PSN 1 (the 5th) lost and resent


def test_invalid_range_is_silent_and_duplicate_range_answered():
    fa, fb = Framer(Path(), SPEC), Framer(Path().reverse(), SPEC)
    got = []
    b = RtpChannel(channel_id=2, local_tpn=2, peer_tpn=1, tx_psn=0, rx_psn=10, framer=fb,
                   tuning=GBN, deliver=lambda pkt, now: got.append(pkt.psn))

    def feed(psn):
        b.receive(fb.parse(fa.rtp_data(1, 2, psn & PSN_MASK, TA, b"x", a=1)), 0)
        return [fa.parse(f) for f in b.transmit(0)]
    assert feed(10 + 1024 + 1) == []                        # beyond the out-of-order range
    assert feed(10 + PSN_HALF - 1) == []
    r = feed(10 - PSN_HALF)                                 # the oldest duplicate
    assert [(x.psn, x.rspst) for x in r] == [(9, 0)]
    assert [(x.psn, x.rspst) for x in feed(10 + 1024)] == [(10, 3)]    # last out-of-order PSN
    assert [e.reason for e in b.pop_events() if isinstance(e, Discarded)] == [
        "out_of_window", "out_of_window", "duplicate", "ooo"]
    assert got == [] and b.stats["out_of_window"] == 2


def test_responses_naming_unsent_or_old_psns_are_ignored():
    p = Pair(GBN)
    for i in range(4):
        p.a.send(seg(i))
    p.a.transmit(0)
    fb = p.fb
    p.a.receive(p.fa.parse(fb.tp_response(2, 1, 200)), 1)       # acks what was never sent
    p.a.receive(p.fa.parse(fb.tp_response(2, 1, 50)), 1)        # older than the window
    assert p.a.in_flight() == 4
    assert p.a.stats["rx_bad_response"] == 1 and p.a.stats["rx_stale"] == 1
    p.a.receive(p.fa.parse(fb.tp_response(2, 1, 101)), 1)
    assert p.a.in_flight() == 2
    p.a.receive(p.fa.parse(fb.tp_response(2, 1, 1, rspst=3)), 1)  # a stale TPNAK
    assert p.a.stats["rx_stale"] == 2 and not p.a.pop_events()


def test_frames_and_wrong_channel():
    p = Pair(GBN)
    frame = p.fa.rtp_data(1, 2, 100, TA, b"abcd", a=1, last=1)
    p.b.receive(frame, 0)                                   # a frame is parsed first
    assert p.got_b == [int.from_bytes(b"abcd", "big")]
    p.b.receive(p.fa.rtp_data(1, 9, 101, TA, b"abcd"), 0)
    bad = bytearray(p.fa.rtp_data(1, 2, 101, TA, b"abcd"))
    bad[-1] ^= 1
    p.b.receive(bytes(bad), 0)
    assert [e.reason for e in p.b.pop_events()] == ["no_channel", "bad_icrc"]


def test_tuning_is_checked():
    for bad in (dict(retransmission="x"), dict(oor_window=100), dict(sack_bitmap_bits=100),
                dict(window=0), dict(rto_mode="x")):
        with pytest.raises(ValueError):
            RtpChannel(channel_id=1, local_tpn=1, peer_tpn=2, tx_psn=0, rx_psn=0,
                       framer=Framer(Path()), tuning=TransportTuning(**bad),
                       deliver=lambda p, n: None)


def test_segments_are_kept_not_frames():
    p = Pair(GBN, tap=drop_data(0))
    payload = bytearray(b"\x00\x00\x00\x07" * 2)
    p.a.send(TaSegment(TA, memoryview(payload), True, tag="x"))
    p.run()
    assert p.got_b == [7] and p.a.stats["rtx_rto"] == 1


def test_budget_is_respected_responses_included():
    p = Pair(GBN)
    for i in range(5):
        p.a.send(seg(i))
    assert p.a.transmit(0, 0) == []
    frames = p.a.transmit(0, 3) + p.a.transmit(0, 3)
    assert len(frames) == 5
    # b: 100 in order (TPACK due), 102 out of order (TPNAK due): one frame per call
    p.b.receive(p.fb.parse(frames[0]), 1)
    p.b.receive(p.fb.parse(frames[2]), 1)
    r1, r2 = p.b.transmit(1, 1), p.b.transmit(1, 1)
    assert [(x.psn, x.rspst) for x in map(p.fa.parse, r1 + r2)] == [(100, 0), (101, 3)]
    assert p.b.transmit(1) == []
