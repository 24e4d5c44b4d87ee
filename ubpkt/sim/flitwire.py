"""One direction of a simulated flit wire: whole flits, a propagation delay, and bit errors at a
bit error rate (seeded), for the DLL link mode of the simulator (:mod:`ubpkt.sim.dll_link`).

Bit errors are drawn as a Bernoulli process over the wire's bit stream: the distance to the next
error is geometric, so a chunk costs work per error, not per bit.  A flit with at least one
flipped bit is a *flit error*.  There is no PHY under this wire: what the receiver is told about
a damaged flit is a named choice, ``fec_flags``: False (CRC mode: the flit arrives damaged with
``fec_ok`` True and the BCRC must catch it) or True (the wire reports every damaged flit as an FEC
decoding failure, the way a PCS whose FEC detects but cannot correct it would: what non-CRC
mode relies on, UB 2.0 §4.7.1).
"""
from __future__ import annotations

import math
import random
from collections import deque

__all__ = ["FlitWire"]

FLIT = 20
_FLIT_BITS = FLIT * 8


class FlitWire:
    """``put(data, arrival)`` whole flits due at ``arrival`` (ns); ``take(now)`` -> (flits,
    fec list or True) of everything due by ``now``.  ``stats``: ``flits``, ``bit_errors``,
    ``flit_errors``."""

    def __init__(self, ber: float = 0.0, seed=0, *, fec_flags: bool = False):
        if not 0 <= ber < 1:
            raise ValueError(f"bit error rate {ber} outside [0, 1)")
        self.ber = ber
        self.fec_flags = fec_flags
        self.rng = random.Random(seed)
        self._log1m = math.log1p(-ber) if ber > 0 else None
        self._gap = self._draw()        # bits before the next error
        self.q: deque = deque()
        self.stats = {"flits": 0, "bit_errors": 0, "flit_errors": 0}

    def _draw(self) -> int | None:
        if self._log1m is None:
            return None
        u = self.rng.random()
        return int(math.log1p(-u) / self._log1m)

    def put(self, data: bytes, arrival: int) -> None:
        if not data:
            return
        nbits = len(data) * 8
        self.stats["flits"] += len(data) // FLIT
        fec = True
        gap = self._gap
        if gap is not None and gap < nbits:
            buf = bytearray(data)
            bad = set()
            pos = gap
            while pos < nbits:
                buf[pos >> 3] ^= 0x80 >> (pos & 7)
                self.stats["bit_errors"] += 1
                bad.add(pos // _FLIT_BITS)
                pos += 1 + self._draw()
            gap = pos - nbits
            self.stats["flit_errors"] += len(bad)
            data = bytes(buf)
            if self.fec_flags:
                fec = [i not in bad for i in range(len(data) // FLIT)]
        elif gap is not None:
            gap -= nbits
        self._gap = gap
        self.q.append((arrival, data, fec))

    def take(self, now: int) -> list:
        """[(flits, fec)] due by ``now``, in order."""
        q = self.q
        out = []
        while q and q[0][0] <= now:
            _, data, fec = q.popleft()
            out.append((data, fec))
        return out

    def next_arrival(self) -> int | None:
        return self.q[0][0] if self.q else None
