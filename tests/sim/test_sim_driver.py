"""The Simulator: exact timing over links, budgets, timers, routing, the link seam, and whole
runs of a toy Go-Back-N pair under faults resolved by the ledger."""
from __future__ import annotations

import pytest

from ubpkt.sim import FaultInjector, LinkParams, SimLink, Simulator
from ubpkt.stack.engine import FaultInjected, Retransmitted

from sim_helpers import Sink, Source, gbn_pair, write_ta


def frames(n, size=100):
    return [i.to_bytes(4, "big") + bytes(size - 4) for i in range(n)]


def test_delay_and_rate_timing_exact():
    src, dst = Source(frames(3)), Sink()
    sim = Simulator()
    sim.add("src", src)
    sim.add("dst", dst)
    sim.connect("src", "dst", {"delay": 1000, "rate": 8_000_000_000})
    assert sim.run() == "idle"
    assert [t for t, _ in dst.received] == [1100, 1200, 1300]
    assert [f for _, f in dst.received] == frames(3)


def test_paced_source_and_budget():
    src, dst = Source(frames(4), start=10, interval=500), Sink()
    sim = Simulator(budget=1)
    sim.connect(src, dst, LinkParams(delay=7))
    sim.run()
    assert [t for t, _ in dst.received] == [17, 517, 1017, 1517]
    # a budget smaller than the burst: several passes in the same instant
    src, dst = Source(frames(10)), Sink()
    sim = Simulator(budget=3)
    sim.connect(src, dst, {"delay": 5})
    sim.run()
    assert [t for t, _ in dst.received] == [5] * 10


class Timers(Sink):
    def __init__(self, deadlines):
        super().__init__()
        self.deadlines = list(deadlines)
        self.calls = []

    def next_deadline(self):
        return self.deadlines[0] if self.deadlines else None

    def handle_timeout(self, now):
        self.calls.append(now)
        while self.deadlines and self.deadlines[0] <= now:
            self.deadlines.pop(0)


def test_timeouts_at_their_deadline_and_until_ns():
    eng = Timers([100, 250, 4000])
    sim = Simulator()
    sim.add("t", eng)
    assert sim.run(until_ns=1000) == "time" and sim.now == 1000
    assert eng.calls == [100, 250]
    assert sim.run() == "idle" and eng.calls == [100, 250, 4000]


def test_until_predicate():
    src, dst = Source(frames(5), interval=100), Sink()
    sim = Simulator()
    sim.connect(src, dst, {"delay": 10})
    assert sim.run(until=lambda: len(dst.received) == 2) == "until"
    assert sim.now == 110 and len(dst.received) == 2


def test_routing_between_three_nodes():
    hub = Source([b"to-b" + bytes(60), b"to-c" + bytes(60), b"to-b" + bytes(60)])
    b, c = Sink(), Sink()
    sim = Simulator()
    sim.add("hub", hub, route=lambda f: f[3:4].decode())
    sim.add("b", b)
    sim.add("c", c)
    sim.connect("hub", "b", {"delay": 10})
    sim.connect("hub", "c", {"delay": 20})
    sim.run()
    assert [t for t, _ in b.received] == [10, 10] and [t for t, _ in c.received] == [20]
    sim2 = Simulator()
    sim2.add("hub", Source([bytes(64)]))
    sim2.add("b", Sink())
    sim2.add("c", Sink())
    sim2.connect("hub", "b")
    sim2.connect("hub", "c")
    with pytest.raises(ValueError, match="route"):
        sim2.run()


class CountingLink(SimLink):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.pushed = 0

    def push(self, frame, now):
        self.pushed += 1
        return super().push(frame, now)


def test_a_link_is_an_interface():
    ab, ba = CountingLink(delay=3), CountingLink(delay=3)
    src, dst = Source(frames(4)), Sink()
    sim = Simulator()
    sim.connect(src, dst, links=(ab, ba))
    sim.run()
    assert ab.pushed == 4 and ba.pushed == 0 and [t for t, _ in dst.received] == [3] * 4


class PingPong(Sink):
    def __init__(self, start):
        super().__init__()
        self.queue = [b"ball" + bytes(60)] if start else []

    def receive(self, data, now):
        self.queue.append(data)

    def transmit(self, now, budget=1 << 30):
        out, self.queue = self.queue, []
        return out


def test_zero_delay_livelock_is_reported():
    sim = Simulator(max_passes=50)
    sim.connect(PingPong(True), PingPong(False))
    with pytest.raises(RuntimeError, match="no progress"):
        sim.run()


# -- whole runs ------------------------------------------------------------------------------
FAULTS_AB = "loss=0.03,duplicate=0.02,reorder=0.02:2,corrupt=0.02:3,jitter=200"
FAULTS_BA = "loss=0.05,drop='ub.rtph.tpopcode == 2'@3"


def gbn_run(seed, n=150, ab=FAULTS_AB, ba=FAULTS_BA, link=None, **kw):
    snd, rcv = gbn_pair(n=n, start_psn=(1 << 24) - 40, **kw)
    sim = Simulator(seed=seed)
    sim.add("a", snd)
    sim.add("b", rcv)
    sim.connect("a", "b", link or {"delay": 1000, "rate": "10G"}, faults_ab=ab, faults_ba=ba)
    why = sim.run(until=lambda: snd.done)
    return sim, snd, rcv, why


def test_gbn_under_faults_all_recovered_and_attributed():
    sim, snd, rcv, why = gbn_run(1)
    assert why == "until" and not snd.failed
    assert rcv.delivered == [write_ta(i + 1) + snd.payload for i in range(150)]
    rep = sim.report()
    assert rep["injected"] > 20
    assert rep["unrecovered"] == 0 and rep["unattributed"] == 0, rep["unattributed_events"]
    assert rep["recovered"] > 0 and rep["benign"] > 0
    assert rep["recovered"] + rep["benign"] == rep["injected"]
    kinds = set(rep["by_kind"])
    assert {"loss", "corrupt", "duplicate", "reorder", "drop"} <= kinds
    # every fault is also an event of the run
    assert len(sim.events_of(FaultInjected)) == rep["injected"]


def test_gbn_runs_are_deterministic():
    def digest(seed):
        sim, *_ = gbn_run(seed, n=60)
        return [(n, repr(e)) for n, e in sim.events], sim.report()
    a, b, c = digest(4), digest(4), digest(5)
    assert a == b
    assert a != c


def test_spurious_retransmissions_are_unattributed():
    sim, snd, rcv, _ = gbn_run(0, n=20, ab=None, ba=None, rto=1500)
    rep = sim.report()
    assert rep["injected"] == 0 and rep["unattributed"] >= 1
    assert all(u["event"] == "Retransmitted" for u in rep["unattributed_events"])


def test_tail_drops_are_in_the_ledger():
    sim, snd, rcv, _ = gbn_run(0, n=60, ab=None, ba=None, window=16,
                               link={"delay": 1000, "rate": "1G", "queue_frames": 4})
    rep = sim.report()
    assert len(rcv.delivered) == 60
    assert rep["by_kind"] == {"tail_drop": rep["injected"]} and rep["injected"] > 0
    assert rep["recovered"] == rep["injected"] and rep["unattributed"] == 0
    assert sim.direction("a", "b").stats["tail_drops"] == rep["injected"]


def test_channel_error_after_a_long_blackout():
    sim, snd, rcv, _ = gbn_run(0, n=40, ab="blackout=0:10ms", ba=None, retries=2)
    assert snd.failed
    rep = sim.report()
    assert rep["unrecovered"] >= 1 and rep["unattributed"] == 0
    errs = {f["error"] for f in rep["faults"] if f["outcome"] == "unrecovered"}
    assert errs == {"retry_exceeded"}


def test_given_injector_joins_the_ledger():
    inj = FaultInjector(script={"loss": [1]})
    snd, rcv = gbn_pair(n=5)
    sim = Simulator()
    sim.connect(snd, rcv, {"delay": 100}, faults_ab=inj)
    sim.run(until=lambda: snd.done)
    rep = sim.report()
    assert inj.ledger is sim.ledger and inj.link == "n0->n1"
    assert rep["injected"] == 1 and rep["recovered_by"] == {"rto": 1}
    assert [e.psn for _, e in sim.events_of(Retransmitted)][0] == 0
