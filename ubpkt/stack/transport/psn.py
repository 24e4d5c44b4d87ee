"""24-bit PSN serial arithmetic (UB 2.0 §6.4.1).

A PSN is 24 bits and wraps from 16M-1 to 0.  The channels count PSNs internally as unbounded
integers ("absolute" PSNs, starting at the negotiated initial PSN) and put ``abs & PSN_MASK`` on
the wire; a PSN read off the wire is mapped back to the absolute number nearest a reference
(:func:`unwrap`).  Half the space, 8M, separates "behind" from "ahead": the receiver's duplicate
range is the 8M PSNs before its EPSN, and a sender keeps fewer than 8M packets unacknowledged.
"""
from __future__ import annotations

__all__ = ["PSN_BITS", "PSN_MOD", "PSN_MASK", "PSN_HALF", "MAX_OUTSTANDING", "psn_add",
           "psn_diff", "psn_lt", "unwrap"]

PSN_BITS = 24
PSN_MOD = 1 << PSN_BITS
PSN_MASK = PSN_MOD - 1
#: 8M: the duplicate range's size and the bound on unacknowledged PSNs (§6.4.1)
PSN_HALF = PSN_MOD >> 1
#: the most packets a sender keeps unacknowledged (the highest PSN sent minus the lowest one
#: awaiting a response stays below 8M, §6.4.1)
MAX_OUTSTANDING = PSN_HALF - 1


def psn_add(psn: int, n: int) -> int:
    """``psn + n`` modulo 2^24."""
    return (psn + n) & PSN_MASK


def psn_diff(a: int, b: int) -> int:
    """``a - b`` as a signed serial difference in [-8M, 8M)."""
    d = (a - b) & PSN_MASK
    return d - PSN_MOD if d >= PSN_HALF else d


def psn_lt(a: int, b: int) -> bool:
    """``a`` comes before ``b`` in serial order."""
    return psn_diff(a, b) < 0


def unwrap(psn: int, ref: int) -> int:
    """The absolute PSN nearest the absolute ``ref`` whose low 24 bits are ``psn``."""
    d = (psn - ref) & PSN_MASK
    return ref + (d - PSN_MOD if d >= PSN_HALF else d)
