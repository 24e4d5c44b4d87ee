"""Two LMSM ports wired lane by lane (UB 2.0 §3.4.3), for tests and ``ubpkt phy train``."""
from __future__ import annotations

import random

from ..profile import DEFAULT_PROFILE, PhyProfile
from .engine import Lmsm
from .states import BLOCK, PortConfig, Unit, _inv

__all__ = ["LinkSim"]


class LinkSim:
    """Two LMSM ports wired lane by lane, with optional lane reversal, polarity swaps and lane
    failures (a failed lane carries nothing and shows no receiver termination)."""

    def __init__(self, a: PortConfig, b: PortConfig, profile: PhyProfile = DEFAULT_PROFILE,
                 seed: int = 1, reverse: bool = False, invert: set[int] | None = None):
        rng = random.Random(seed)
        self.a = Lmsm(a, profile, random.Random(rng.random()), "A")
        self.b = Lmsm(b, profile, random.Random(rng.random()), "B")
        self.lanes = max(a.lanes, b.lanes)
        self.reverse = reverse
        self.invert = set(invert or ())
        self.failed: set[int] = set()
        self.ticks = 0

    def _wire(self, units: list[Unit | None]) -> list[Unit | None]:
        L = self.lanes
        out: list[Unit | None] = [None] * L
        for p, u in enumerate(units):
            if u is None or p in self.failed:
                continue
            q = L - 1 - p if self.reverse else p
            out[q] = Unit(u.kind, _inv(u.sym)) if p in self.invert else u
        return out

    def _term(self) -> list[bool]:
        return [p not in self.failed for p in range(self.lanes)]

    def step(self) -> None:
        self.ticks += 1
        ta = self.a.step(self._rx_a, self._term())
        tb = self.b.step(self._rx_b, self._term())
        self._rx_b = self._wire(ta)
        self._rx_a = self._wire(tb)

    def run_until(self, pred, max_ticks: int) -> bool:
        for _ in range(max_ticks):
            if pred():
                return True
            self.step()
        return pred()

    def _active(self) -> bool:
        return self.a.state == "Link_Active" and self.b.state == "Link_Active"

    def _settled(self) -> bool:
        a, b = self.a, self.b
        return (self._active() and not a.change_speed and not b.change_speed
                and a.rate == b.rate and a.rate >= a._common_max_rate()
                and a.tx_width == b.rx_width and b.tx_width == a.rx_width
                and not a.pending_ctrl and not b.pending_ctrl)

    def run(self, fail_lane: int | None = None, fec_toggle: bool = False,
            max_ticks: int = 60000) -> dict:
        self._rx_a = [None] * self.lanes
        self._rx_b = [None] * self.lanes
        self.a.start()
        self.b.start()
        up = self.run_until(self._settled, max_ticks)
        first_up = {"tick": self.ticks, "tx_width": self.a.tx_width, "rx_width": self.a.rx_width,
                    "rate": self.a.rate} if up else None
        if up:
            self.run_until(lambda: False, 64)
        if up and fec_toggle:
            self.a.request_fec(False)
            self.run_until(lambda: not self.b.fec_active, 2000)
            self.run_until(lambda: False, 64)
            self.a.request_fec(True)
            self.run_until(lambda: self.b.fec_active, 2000)
            self.run_until(lambda: False, 64)
        if up and fail_lane is not None:
            self.failed.add(fail_lane)
            self._rx_a = [None if p in self.failed else u for p, u in enumerate(self._rx_a)]
            start = self.ticks
            period = DEFAULT_PROFILE.period0 // BLOCK + 1
            self.run_until(lambda: self.ticks - start > period * 4 and self._settled(), max_ticks)
            self.run_until(lambda: False, period + 64)
        a = self.a
        return {
            "final_state": a.state if a.state == self.b.state else f"{a.state}/{self.b.state}",
            "link_up": bool(self._active()),
            "tx_width": a.tx_width, "rx_width": a.rx_width,
            "peer_tx_width": self.b.tx_width, "peer_rx_width": self.b.rx_width,
            "fec_mode": a.fec_mode, "peer_fec_mode": self.b.fec_mode,
            "fec_interleave": a.fec_interleave, "fec_active": a.fec_active and self.b.fec_active,
            "rate": a.rate, "primary": "A" if a.primary else "B",
            "eq_mode": {0: "full_eq", 1: "only_highest_rate_eq", 2: "skip_eq"}[a.eq_negotiated],
            "null_blocks_received": {"A": a.rx_nulls_total, "B": self.b.rx_nulls_total},
            "first_link_active": first_up, "failed_lanes": sorted(self.failed),
            "ticks": self.ticks,
            "trace": sorted(a.trace + self.b.trace, key=lambda e: (e["tick"], e["port"])),
            "events": sorted(a.events + self.b.events, key=lambda e: (e["tick"], e["port"])),
        }
