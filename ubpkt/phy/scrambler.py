"""Per-lane additive scrambler (UB 2.0 §3.2.2.4) with the PRBS23 polynomial of §3.2.6.

Profile (gap G1, see :mod:`ubpkt.phy.profile`): sequence b[n] = b[n-23] ^ b[n-18], b[0..22] = the
seed bits (bit k of the seed), bit b[8i+k] scrambles bit k of the i-th scrambled symbol (LSB first).
Scrambling is an XOR with a precomputed keystream, so it costs one numpy XOR per block.
"""
from __future__ import annotations

import numpy as np

from .profile import DEFAULT_PROFILE, PhyProfile

__all__ = ["prbs_bits", "keystream", "scramble_block", "Scrambler", "PRBS23_PERIOD"]

PRBS23_PERIOD = (1 << 23) - 1
_bytes_cache: dict[tuple[int, int, int], np.ndarray] = {}
_raw_cache: dict[tuple[int, int, int], bytes] = {}  # the same keystreams as ``bytes``


def prbs_bits(seed: int, nbits: int, taps: tuple[int, int] = (23, 18)) -> np.ndarray:
    """First ``nbits`` bits of the LFSR sequence (uint8 0/1), built by doubling blocks.

    b[n] = b[n-a] ^ b[n-b] implies b[n] = b[n-a*2^k] ^ b[n-b*2^k] (squaring in GF(2)[x]), so each
    step fills a block of b*2^k bits with one vectorised XOR."""
    a, b = taps
    if seed & ((1 << a) - 1) == 0:
        raise ValueError("PRBS seed must be non-zero")
    out = np.zeros(max(nbits, a), dtype=np.uint8)
    out[:a] = [(seed >> k) & 1 for k in range(a)]
    n = a
    k = 0
    while n < nbits:
        while a * (2 << k) <= n:
            k += 1
        A, B = a << k, b << k
        L = min(B, nbits - n)
        out[n:n + L] = out[n - A:n - A + L] ^ out[n - B:n - B + L]
        n += L
    return out[:nbits]


def keystream(seed: int, nsymbols: int, start: int = 0, taps: tuple[int, int] = (23, 18)
              ) -> np.ndarray:
    """Keystream bytes for scrambled symbols ``start .. start+nsymbols-1`` after a seed load
    (a read-only view into a per-seed cache; the LFSR recurrence simply runs past its period)."""
    key = (seed, taps[0], taps[1])
    end = start + nsymbols
    cb = _bytes_cache.get(key)
    if cb is None or cb.size < end:
        nbytes = max(end, 1 << 14, 0 if cb is None else min(2 * cb.size, 1 << 24))
        cb = np.packbits(prbs_bits(seed, nbytes * 8, taps), bitorder="little")
        cb.flags.writeable = False
        if len(_bytes_cache) > 16:
            _bytes_cache.clear()
        _bytes_cache[key] = cb
    return cb[start:end]


def scramble_block(data: bytes, seed: int, start: int, taps: tuple[int, int] = (23, 18)
                   ) -> bytes:
    """``data`` XOR the keystream from ``start`` (scrambling and descrambling alike): the same
    bytes as ``(np.frombuffer(data, np.uint8) ^ keystream(seed, len(data), start)).tobytes()``,
    with Python integers, which for one 16-symbol block costs a fraction of the numpy calls."""
    n = len(data)
    key = (seed, taps[0], taps[1])
    raw = _raw_cache.get(key)
    if raw is None or len(raw) < start + n:
        keystream(seed, n, start, taps)  # (re)fills the array cache up to start + n
        cb = _bytes_cache[key]
        if len(_raw_cache) > 16:
            _raw_cache.clear()
        raw = _raw_cache[key] = cb.tobytes()
    ks = raw[start:start + n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(ks, "little")).to_bytes(n, "little")


class Scrambler:
    """Stateful per-lane scrambler: ``apply`` XORs the next keystream bytes (same for TX and RX)."""

    def __init__(self, lane_id: int | None, profile: PhyProfile = DEFAULT_PROFILE):
        self.profile = profile
        self.lane_id = lane_id
        self.pos = 0

    def reset(self, lane_id: int | None = None) -> None:
        """Reload the seed (§3.2.2.4: on an AMCTL with EDF outside Send_NullBlock/Link_Active)."""
        if lane_id is not None:
            self.lane_id = lane_id
        self.pos = 0

    def apply(self, symbols) -> np.ndarray:
        s = np.asarray(symbols, dtype=np.uint8)
        ks = keystream(self.profile.seed_for_lane(self.lane_id), s.size, self.pos,
                       self.profile.prbs_taps)
        self.pos = (self.pos + s.size)
        return s ^ ks
