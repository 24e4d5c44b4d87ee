"""Property: whatever RTP can recover from, every segment arrives exactly once, in order, and the
sender ends idle (UB 2.0 §6.3.1)."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tp_harness import US, Pair, seg

from ubpkt.profile import TransportTuning
from ubpkt.stack.engine import ChannelError
from ubpkt.stack.transport.psn import PSN_MASK

# faults hit only the first FAULTY frames of each direction (data and responses alike), so
# every loss is eventually repaired; each frame: pass, drop, duplicate or delay (reorders)
FAULTY = 80
fate = st.one_of(st.just(("ok",)), st.just(("drop",)), st.just(("dup",)),
                 st.tuples(st.just("delay"), st.integers(1, 3000)))


@st.composite
def scenarios(draw):
    mode, fast = draw(st.sampled_from([("gbn", True), ("gbn", False), ("sr", True),
                                       ("sr", False)]))
    tuning = TransportTuning(
        retransmission=mode, fast_retransmit=fast,
        window=draw(st.sampled_from([1, 4, 16, 512])),
        ack_every=draw(st.sampled_from([1, 3, 16])),
        sack_bitmap_bits=draw(st.sampled_from([64, 256])),
        oor_window=128, rto_static_ns=50 * US, retry_limit=10_000)
    n = draw(st.integers(1, 40))
    lasts = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    ab = draw(st.lists(fate, max_size=FAULTY))
    ba = draw(st.lists(fate, max_size=FAULTY))
    # start near the wrap now and then
    a_psn = draw(st.sampled_from([0, 100, PSN_MASK - 5]))
    gap = draw(st.sampled_from([None, 100]))
    refuse = draw(st.lists(st.integers(0, n - 1), max_size=3))
    return tuning, n, lasts, ab, ba, a_psn, gap, refuse


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_exactly_once_in_order_and_idle(sc):
    tuning, n, lasts, ab, ba, a_psn, gap, refuse = sc
    seen = {"ab": 0, "ba": 0}

    def tap(s):
        i = seen[s.dir]
        seen[s.dir] += 1
        plan = ab if s.dir == "ab" else ba
        f = plan[i] if i < len(plan) else ("ok",)
        return {"ok": [0], "drop": [], "dup": [0, 0]}.get(f[0]) if f[0] != "delay" else [f[1]]

    refusals = list(refuse)

    def refuse_fn(pkt, now):        # the transaction layer says "not ready" a few times
        idx = int.from_bytes(bytes(pkt.ta)[-4:], "big")
        if idx in refusals:
            refusals.remove(idx)
            return True
        return False
    p = Pair(tuning, a_psn=a_psn, gap=gap, tap=tap, refuse=refuse_fn)
    for i in range(n):
        p.a.send(seg(i, last=lasts[i] or i == n - 1))
    p.run()
    assert not p.ev("a", ChannelError)
    assert p.got_b == list(range(n))
    assert p.a.idle() and p.a.in_flight() == 0 and p.a.next_deadline() is None
    assert p.b.stats["rx_packets"] == n
