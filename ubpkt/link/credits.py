"""Per-VL cell credits (UB 2.0 §4.6).

:class:`TxCredits` is the sender's view of the peer's receive buffer (exclusive or shared mode,
§4.6.1.2-3); :class:`RxCredits` is the receiver's own buffer and the credits it owes back
(§4.6.3).  Both only count; the engine decides when to send.
"""
from __future__ import annotations

__all__ = ["TxCredits", "RxCredits", "cells_for"]


def cells_for(flits: int, flow_ctrl_size: int) -> int:
    """Cells a DLLDP of ``flits`` flits consumes: rounded up (UB 2.0 §4.6.2 note 3)."""
    return -(-flits // flow_ctrl_size)


class TxCredits:
    """Credits this end may spend on the peer's receive buffer.

    Exclusive mode: one counter per VL.  Shared mode (the peer advertised RXBUF_VL_SHARE and the
    profile asks for it): every credit goes into SHARE_CRD, then each enabled VL's exclusive
    counter is topped up from it to ``reserve`` cells (VL order, lowest first); a DLLDP spends
    shared credits first, then its VL's exclusive ones (§4.6.1.3 example)."""

    def __init__(self, vls, shared: bool = False, reserve: int = 0):
        self.vls = list(vls)
        self.shared = shared
        self.reserve = reserve
        self.excl = [0] * 16
        self.share = 0
        self.initial = [0] * 16          # per-VL initial credits as advertised
        self.initial_total = 0
        self.done = False                # initial credits complete (SD seen)

    def total(self) -> int:
        return self.share + sum(self.excl)

    def available(self, vl: int) -> int:
        return self.excl[vl] + (self.share if self.shared else 0)

    def add_initial(self, vl: int, cells: int) -> None:
        self.initial[vl] += cells
        self.initial_total += cells
        self._add(vl, cells)

    def _add(self, vl: int, cells: int) -> None:
        if not self.shared:
            self.excl[vl] += cells
            return
        self.share += cells
        for v in self.vls:                # replenish exclusive reserves
            need = self.reserve - self.excl[v]
            if need > 0 and self.share:
                take = min(need, self.share)
                self.excl[v] += take
                self.share -= take

    def can_send(self, vl: int, cells: int) -> bool:
        return self.available(vl) >= cells

    def spend(self, vl: int, cells: int) -> None:
        if not self.shared:
            if self.excl[vl] < cells:
                raise ValueError("credit underflow")
            self.excl[vl] -= cells
            return
        from_share = min(self.share, cells)
        self.share -= from_share
        rest = cells - from_share
        if self.excl[vl] < rest:
            raise ValueError("credit underflow")
        self.excl[vl] -= rest

    def give_back(self, vl: int, cells: int) -> bool:
        """Credits returned by the peer; False when they exceed what was initialised (Flow
        Control Overflow, §4.8.1) - the excess is not added."""
        if self.shared:
            room = self.initial_total - self.total()
        else:
            room = self.initial[vl] - self.excl[vl]
        ok = cells <= room
        self._add(vl, min(cells, max(room, 0)))
        return ok

    def outstanding(self) -> int:
        return (self.initial_total - self.total())


class RxCredits:
    """This end's receive buffer, in cells per VL, and the credits still owed to the peer."""

    def __init__(self, alloc):
        self.alloc = list(alloc)          # cells advertised per VL
        self.used = [0] * 16              # cells held by received, unconsumed DLLDPs
        self.pending = [0] * 16           # cells freed but not yet returned
        self.shared = False

    def receive(self, vl: int, cells: int) -> bool:
        """Account a received DLLDP; False on Receive Buffer Overflow (§4.8.1)."""
        if self.shared:
            ok = sum(self.used) + cells <= sum(self.alloc)
        else:
            ok = self.used[vl] + cells <= self.alloc[vl]
        self.used[vl] += cells
        return ok

    def release(self, vl: int, cells: int) -> None:
        cells = min(cells, self.used[vl])
        self.used[vl] -= cells
        self.pending[vl] += cells

    def take_grain(self, grains) -> tuple | None:
        """(vl, cells) of one LPH/LBH CRD return: the first VL owing at least its grain."""
        for vl in range(16):
            g = grains[vl]
            if self.pending[vl] >= g:
                self.pending[vl] -= g
                return vl, g
        return None

    def take_crd_ack(self, grains) -> list:
        """CRD_NUM per VL for one Crd_Ack (6 bits each, in units of the VL's grain)."""
        out = [0] * 16
        pending = self.pending
        for vl in range(16):
            if pending[vl]:                     # most VLs owe nothing
                n = min(63, pending[vl] // grains[vl])
                out[vl] = n
                pending[vl] -= n * grains[vl]
        return out

    def owed(self) -> int:
        return sum(self.pending)
