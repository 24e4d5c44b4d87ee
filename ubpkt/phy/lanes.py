"""Pre-/post-FEC distribution over x1/x2/x4/x8 lanes and the inverse gathering.

UB 2.0 §3.2.2.2 (pre-FEC: with two encoders even bytes go to A, odd to B), §3.2.2.3 (post-FEC lane
formulas, implemented as index maps over whole arrays), §3.2.5.4 (FEC bypass: bytes round-robin
from lane 0), §3.2.3.3 (reordering by AMCTL.LID), §3.4.2.7 (lane reversal).
Codeword arrays are (M,128) with column t = C<127-t> (column 0 sent first).
"""
from __future__ import annotations

import numpy as np

from .rsfec import K, N

__all__ = [
    "WIDTHS", "distribute_codewords", "gather_codewords", "distribute_bypass", "gather_bypass",
    "split_pre_fec", "join_pre_fec", "lane_order_from_ids", "quick_degrade_width",
    "standard_width",
]

WIDTHS = (1, 2, 4, 8)


def _check(lanes: int) -> None:
    if lanes not in WIDTHS:
        raise ValueError(f"lane count must be 1, 2, 4 or 8, not {lanes}")


def split_pre_fec(data: np.ndarray, codecs: int) -> list[np.ndarray]:
    """DLL byte stream (multiple of K*codecs) -> per-encoder message arrays (M,120)."""
    d = np.asarray(data, dtype=np.uint8)
    if codecs == 1:
        return [d.reshape(-1, K)]
    blk = d.reshape(-1, 2 * K)
    return [np.ascontiguousarray(blk[:, 0::2]), np.ascontiguousarray(blk[:, 1::2])]


def join_pre_fec(msgs: list[np.ndarray]) -> np.ndarray:
    if len(msgs) == 1:
        return msgs[0].reshape(-1)
    a, b = msgs
    out = np.empty((a.shape[0], 2 * K), dtype=np.uint8)
    out[:, 0::2] = a
    out[:, 1::2] = b
    return out.reshape(-1)


def distribute_codewords(cws: list[np.ndarray], lanes: int) -> np.ndarray:
    """Codewords of 1 (CA) or 2 (CA, CB) encoders -> (lanes, symbols) per the §3.2.2.3 formulas."""
    _check(lanes)
    if len(cws) == 1:
        a = cws[0]
        M = a.shape[0]
        # Lane<j,i> = CA<(N-1) - i*L - j>  ->  column t = i*L + j
        return a.reshape(M, N // lanes, lanes).transpose(2, 0, 1).reshape(lanes, -1)
    a, b = cws
    M = a.shape[0]
    if lanes == 1:
        out = np.empty((M, 2 * N), dtype=a.dtype)
        out[:, 0::2] = a  # i even: CA<(N-1) - i/2>
        out[:, 1::2] = b  # i odd:  CB<(N-1) - (i-1)/2>
        return out.reshape(1, -1)
    h = lanes // 2
    steps = 2 * N // lanes
    A = a.reshape(M, steps, h)
    B = b.reshape(M, steps, h)
    out = np.empty((M, steps, lanes), dtype=a.dtype)
    out[:, 0::2, 0::2] = A[:, 0::2]
    out[:, 0::2, 1::2] = B[:, 0::2]
    out[:, 1::2, 0::2] = B[:, 1::2]
    out[:, 1::2, 1::2] = A[:, 1::2]
    return out.transpose(2, 0, 1).reshape(lanes, -1)


def gather_codewords(lane_syms: np.ndarray, codecs: int) -> list[np.ndarray]:
    """Inverse of :func:`distribute_codewords`; ``lane_syms`` is (lanes, symbols) in logical
    lane order, trimmed to whole codeword groups."""
    L = lane_syms.shape[0]
    _check(L)
    per = N * codecs // L  # symbols per lane per codeword group
    M = lane_syms.shape[1] // per
    x = lane_syms[:, :M * per].reshape(L, M, per).transpose(1, 2, 0)  # (M, per, L)
    if codecs == 1:
        return [np.ascontiguousarray(x.reshape(M, N))]
    if L == 1:
        y = x.reshape(M, 2 * N)
        return [np.ascontiguousarray(y[:, 0::2]), np.ascontiguousarray(y[:, 1::2])]
    A = np.empty((M, per, L // 2), dtype=lane_syms.dtype)
    B = np.empty_like(A)
    A[:, 0::2] = x[:, 0::2, 0::2]
    B[:, 0::2] = x[:, 0::2, 1::2]
    B[:, 1::2] = x[:, 1::2, 0::2]
    A[:, 1::2] = x[:, 1::2, 1::2]
    return [A.reshape(M, N), B.reshape(M, N)]


def distribute_bypass(data: np.ndarray, lanes: int) -> np.ndarray:
    """FEC bypass (§3.2.5.4): byte k goes to lane k mod L (length must be a multiple of L)."""
    _check(lanes)
    return np.asarray(data, dtype=np.uint8).reshape(-1, lanes).T.copy()


def gather_bypass(lane_syms: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(lane_syms.T).reshape(-1)


def lane_order_from_ids(lane_ids: list[int | None]) -> list[int] | None:
    """Physical RX lane index per logical lane 0..L-1 from the AMCTL.LIDs seen (None if the IDs
    are not a permutation of 0..L-1)."""
    L = len(lane_ids)
    if sorted(x for x in lane_ids if x is not None) != list(range(L)):
        return None
    return [lane_ids.index(i) for i in range(L)]


def standard_width(n: int) -> int:
    """Largest standard width (1/2/4/8) not above n (0 if n < 1)."""
    for w in (8, 4, 2, 1):
        if n >= w:
            return w
    return 0


def quick_degrade_width(active: int, failed: set[int]) -> int:
    """§3.4.2.4 rule 4: count working lanes from lane 0 up to the first failed one, excluding
    failed lanes, and take the largest standard width that fits."""
    n = 0
    while n < active and n not in failed:
        n += 1
    return standard_width(n)
