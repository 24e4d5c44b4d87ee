"""A small in-process channel driver: two DLL engines joined by a lossy, delayed link."""
from __future__ import annotations

import random
from collections import deque

from ubpkt.link.engine import DLLEngine

FLIT = 20


class Wire:
    """One direction: flits arrive ``delay`` ticks after they were sent; each flit may be
    corrupted (one random bit flipped, FEC says OK) or lost (the PHY reports an FEC failure)."""

    def __init__(self, rng, delay=3, p_flip=0.0, p_fec=0.0):
        self.rng, self.delay, self.p_flip, self.p_fec = rng, delay, p_flip, p_fec
        self.q = deque()
        self.errors = 0

    def put(self, t, data):
        rng = self.rng
        for i in range(0, len(data), FLIT):
            flit = bytearray(data[i:i + FLIT])
            ok = True
            r = rng.random()
            if r < self.p_flip:
                bit = rng.randrange(FLIT * 8)
                flit[bit >> 3] ^= 0x80 >> (bit & 7)
                self.errors += 1
            elif r < self.p_flip + self.p_fec:
                flit = bytearray(rng.randbytes(FLIT))
                ok = False
                self.errors += 1
            self.q.append((t + self.delay, bytes(flit), ok))

    def take(self, t):
        data, fec = bytearray(), []
        while self.q and self.q[0][0] <= t:
            _, flit, ok = self.q.popleft()
            data += flit
            fec.append(ok)
        return bytes(data), fec


class Link:
    """Two engines a and b; ``step`` advances one tick (= ``tick_ns``) moving ``rate`` flits per
    direction."""

    def __init__(self, a: DLLEngine, b: DLLEngine, *, seed=1, rate=8, delay=3, p_flip=0.0,
                 p_fec=0.0, tick_ns=10, fill=False):
        rng = random.Random(seed)
        self.a, self.b = a, b
        self.ab = Wire(rng, delay, p_flip, p_fec)
        self.ba = Wire(rng, delay, p_flip, p_fec)
        self.rate, self.tick_ns, self.fill = rate, tick_ns, fill
        self.t = 0
        self.events = {id(a): [], id(b): []}
        self.retrain_due = {}

    def up(self):
        now = self.t * self.tick_ns
        self.a.link_up(now)
        self.b.link_up(now)

    def step(self):
        now = self.t * self.tick_ns
        for eng, out, inp in ((self.a, self.ab, self.ba), (self.b, self.ba, self.ab)):
            data, fec = inp.take(self.t)
            if data:
                eng.receive(data, now, fec)
            out.put(self.t, eng.transmit(now, self.rate, fill=self.fill))
            eng.handle_timeout(now)
            ev = eng.pop_events()       # every event, once (the calls' return values too)
            self.events[id(eng)] += ev
            for e in ev:
                if e.get("event") == "phy_retrain":
                    self.retrain_due[id(eng)] = (self.t + 5, eng)
        for key, (due, eng) in list(self.retrain_due.items()):
            if due <= self.t:
                del self.retrain_due[key]
                eng.phy_retrained(now)
                self.events[key] += eng.pop_events()
        self.t += 1

    def run(self, ticks, until=None):
        for _ in range(ticks):
            self.step()
            if until is not None and until():
                return True
        return until() if until else True

    def delivered(self, eng):
        return [e for e in self.events[id(eng)] if e.get("event") == "packet"]

    def errors(self, eng):
        return [e for e in self.events[id(eng)] if e.get("event") == "error"]
