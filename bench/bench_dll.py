"""DLL engine pair throughput: payload MB/s per direction through two engines joined by flit
wires (ubpkt.sim.flitwire, optional bit errors), driven the way the simulator's DLL link mode
drives them (:class:`ubpkt.sim.dll_link.DllLinkPair` without the simulator around it).
Not run by the tests.

    python bench/bench_dll.py [--mb 5] [--ber 1e-6] [--both] [--slot 512] [--reference]
                              [--repeat 3] [--delay 50] [--gbps 850]

Time: each engine gets one transmit call of up to ``--slot`` flits per slot; a slot lasts 10 ns
(default: 512 flits per 10 ns is 8.2 Tbit/s, ten times UB's fastest link, so the 2048-flit
retry buffer, not the engines, paces a both-ways run: about 170 flits per call), or with
``--gbps R`` the time ``--slot`` flits take at R Gbit/s (as the simulator's DLL link mode
times its slots; 850 = x8 lanes at 106.25 Gbit/s).  Flits arrive one slot plus ``--delay``
after they were transmitted.

``--reference`` takes received flits one at a time and schedules transmitted blocks one at a
time (the engine's reference paths).  Printed: the best of ``--repeat`` runs in wall-clock
MB/s, and MB/s per CPU second of the process (less disturbed by other load on the machine), and the
CRC30 engine in use (``UBPKT_CRC30=anycrc`` / ``python`` to compare).
To compare with another checkout's engine (``--engine-from DIR``: a directory holding an
older ``ubpkt`` with ``ubpkt/link/engine.py``), the same driver runs that engine class.
"""
from __future__ import annotations

import argparse
import importlib
import random
import sys
import time


def packets(mb: float, seed: int = 1) -> list:
    from ubpkt.link import fill_plength
    rng = random.Random(seed)
    out, total = [], 0
    while total < mb * 1e6:
        n = rng.choice((64, 256, 1024, 4096, 10146))
        out.append(fill_plength(bytes((0, 6, 0, 0)) + rng.randbytes(n - 4)))
        total += n
    return out


def slot_time_ns(slot: int, gbps: float) -> int:
    """How long ``slot`` flits take on the wire at ``gbps`` Gbit/s (at least 1 ns), as
    :class:`ubpkt.sim.dll_link.DllLinkPair` times its slots; ``gbps`` 0: the fixed 10 ns grid
    of the earlier bench (512 flits per 10 ns is 8.2 Tbit/s, beyond any UB link)."""
    if not gbps:
        return 10
    return max(1, round(slot * FLIT_BITS / gbps))


#: bits per flit (20 bytes)
FLIT_BITS = 160
#: UB's fastest link: 8 lanes at 106.25 Gbit/s (UB 2.0 §3, PHY Mode-2 data rates; x1-x8 lanes)
FASTEST_LINK_GBPS = 8 * 106.25


def run(engine_cls, pkts, *, ber: float, both: bool, slot: int, delay: int, gbps: float = 0,
        **kw) -> float:
    from ubpkt.sim.flitwire import FlitWire
    a, b = engine_cls(name="a", **kw), engine_cls(name="b", **kw)
    wires = {id(a): FlitWire(ber, "a"), id(b): FlitWire(ber, "b")}
    got = {id(a): [], id(b): []}
    t = 0
    step_ns = slot_time_ns(slot, gbps)
    # engines before the split returned received events instead of queueing them
    queued = hasattr(engine_cls, "fast_rx")

    def step():
        nonlocal t
        for e, peer in ((a, b), (b, a)):
            evs = []
            for data, fec in wires[id(peer)].take(t):
                evs += e.receive(data, t, fec)
            evs += e.handle_timeout(t)
            # the flits arrive after their serialisation (one slot) and the wire's delay
            wires[id(e)].put(e.transmit(t, slot), t + step_ns + delay)
            evs = e.pop_events() if queued else evs + e.pop_events()
            for ev in evs:
                if ev["event"] == "packet":
                    got[id(e)].append(ev["packet"])
                elif ev["event"] == "phy_retrain":
                    e.phy_retrained(t)
        t += step_ns
    a.link_up(0)
    b.link_up(0)
    while not (a.status_up and b.status_up):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for p in pkts:
        assert a.send(p, t)
        if both:
            assert b.send(p, t)
    while len(got[id(b)]) < len(pkts) or (both and len(got[id(a)]) < len(pkts)):
        step()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    assert got[id(b)] == pkts and (not both or got[id(a)] == pkts)
    size = sum(map(len, pkts)) / 1e6
    return size / dt, size / dc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=5.0)
    ap.add_argument("--ber", type=float, default=0.0)
    ap.add_argument("--both", action="store_true", help="traffic both ways")
    ap.add_argument("--slot", type=int, default=512, help="flits per transmit call")
    ap.add_argument("--delay", type=int, default=50, help="wire delay, ns")
    ap.add_argument("--gbps", type=float, default=0.0,
                    help="link rate: one transmit call per slot of --slot flits, timed at this "
                         "rate (e.g. 850 = x8 at 106.25 Gbit/s, UB's fastest link); 0 (default): "
                         "the fixed 10 ns grid (8.2 Tbit/s with 512-flit slots)")
    ap.add_argument("--reference", action="store_true",
                    help="the reference paths: flits received one at a time, blocks scheduled "
                         "one at a time")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best is printed (the "
                    "machine is shared: the best run is the least disturbed one)")
    ap.add_argument("--engine-from", help="run the DLLEngine of another checkout")
    a = ap.parse_args()
    if a.engine_from:
        sys.path.insert(0, a.engine_from)
    from ubpkt.link.engine import DLLEngine
    kw = {"fast_rx": False} if a.reference else {}
    if a.reference and "fast_tx" in getattr(DLLEngine.__init__, "__code__").co_varnames:
        kw["fast_tx"] = False
    pkts = packets(a.mb)
    run(DLLEngine, packets(0.3, 2), ber=0, both=False, slot=a.slot, delay=a.delay,
        gbps=a.gbps, **kw)  # warm
    best = (0.0, 0.0)
    for _ in range(a.repeat):
        r = run(DLLEngine, pkts, ber=a.ber, both=a.both, slot=a.slot, delay=a.delay,
                gbps=a.gbps, **kw)
        best = max(best, r)
    crc = sys.modules.get("ubpkt.link.crc30")
    engine = f", CRC30 engine {crc.BACKEND}" if hasattr(crc, "BACKEND") else ""
    print(f"DLL engine pair ({sys.modules['ubpkt'].__file__}{engine}), ber {a.ber}, "
          f"{'both ways' if a.both else 'one way'}, {a.slot}-flit calls every "
          f"{slot_time_ns(a.slot, a.gbps)} ns, wire delay {a.delay} ns: {best[0]:.1f} MB/s of payload per direction "
          f"({best[1]:.1f} MB/s per CPU second; best of {a.repeat})")


if __name__ == "__main__":
    main()
