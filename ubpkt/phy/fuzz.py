"""Bit-error injection on lane files (UIs), flit streams and pcap records, with an exact log.

Error model: each UI (lanes) or bit (flits, pcap) starts an error event with probability ``ber``;
an event corrupts ``burst`` consecutive UIs/bits (bursts are clipped at the end of the lane or
record).  A NRZ UI error flips the bit; a PAM4 UI error moves the level by one (0->1, 3->2,
otherwise up or down at random).  Every change is reported.
"""
from __future__ import annotations

import numpy as np

__all__ = ["error_positions", "fuzz_lanes", "fuzz_bytes", "fuzz_flits", "fuzz_records"]


def error_positions(n: int, ber: float, burst: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted unique positions in [0, n) hit by error events of ``burst`` consecutive units.
    Memory is O(n) whatever ``burst`` is (events are marked as runs, not expanded)."""
    if not 0.0 <= ber <= 1.0:           # also refuses NaN
        raise ValueError("ber must be between 0 and 1")
    if burst < 1:
        raise ValueError("burst must be >= 1")
    if n == 0 or ber == 0:
        return np.zeros(0, dtype=np.int64)
    count = int(rng.binomial(n, ber))
    starts = np.unique(rng.integers(0, n, size=count))
    if burst == 1:
        return starts.astype(np.int64)
    # +1 where a run starts, -1 where it ends: a position is hit where the running sum is > 0
    edges = np.zeros(n + 1, dtype=np.int32)
    np.add.at(edges, starts, 1)
    np.add.at(edges, np.minimum(starts + burst, n), -1)
    return np.flatnonzero(np.cumsum(edges[:n]) > 0).astype(np.int64)


def fuzz_lanes(lanes: list[np.ndarray], modulation: str, ber: float, burst: int = 1,
               seed: int | None = None) -> tuple[list[np.ndarray], list[dict]]:
    rng = np.random.default_rng(seed)
    out, changes = [], []
    for li, lane in enumerate(lanes):
        u = np.array(lane, dtype=np.uint8, copy=True)
        pos = error_positions(u.size, ber, burst, rng)
        old = u[pos].copy()
        if modulation == "nrz":
            new = old ^ 1
        else:
            step = np.where(rng.random(pos.size) < 0.5, -1, 1)
            step = np.where(old == 0, 1, np.where(old == 3, -1, step))
            new = (old.astype(np.int16) + step).astype(np.uint8)
        u[pos] = new
        out.append(u)
        changes.extend({"lane": li, "ui": int(p), "old": int(o), "new": int(n)}
                       for p, o, n in zip(pos.tolist(), old.tolist(), new.tolist()))
    return out, changes


def fuzz_bytes(data: bytes, ber: float, burst: int, rng: np.random.Generator
               ) -> tuple[bytes, np.ndarray]:
    """Flip bits of ``data``; bit index b = byte*8 + (7 - bit), i.e. MSB first within a byte."""
    arr = np.frombuffer(data, dtype=np.uint8).copy()
    pos = error_positions(arr.size * 8, ber, burst, rng)
    byte = pos // 8
    bit = 7 - (pos % 8)
    np.bitwise_xor.at(arr, byte, (1 << bit).astype(np.uint8))
    return arr.tobytes(), pos


def fuzz_flits(data: bytes, ber: float, burst: int = 1, seed: int | None = None,
               flit_size: int = 20) -> tuple[bytes, list[dict]]:
    rng = np.random.default_rng(seed)
    new, pos = fuzz_bytes(data, ber, burst, rng)
    changes = []
    for p in pos.tolist():
        byte, bit = p // 8, 7 - p % 8
        old = (data[byte] >> bit) & 1
        changes.append({"flit": byte // flit_size, "byte": byte % flit_size, "bit": bit,
                        "old": old, "new": old ^ 1})
    return new, changes


def fuzz_records(records: list[bytes], ber: float, burst: int = 1, seed: int | None = None
                 ) -> tuple[list[bytes], list[dict]]:
    rng = np.random.default_rng(seed)
    out, changes = [], []
    for ri, rec in enumerate(records):
        new, pos = fuzz_bytes(rec, ber, burst, rng)
        out.append(new)
        for p in pos.tolist():
            byte, bit = p // 8, 7 - p % 8
            old = (rec[byte] >> bit) & 1
            changes.append({"record": ri, "byte": byte, "bit": bit, "old": old, "new": old ^ 1})
    return out, changes
