"""Symbols on a lane: bit order, NRZ/PAM4 unit intervals, Gray coding and precoding.

UB 2.0 §3.2.5.1: each 8-bit symbol goes out bit 0 first.  NRZ: one bit per UI.  PAM4: two bits per
UI; profile (gap G20, same as Table 3-6): UI k of a symbol carries the pair (bit 2k+1, bit 2k), odd
bit as MSB.  §3.3.1 Table 3-11: Gray map 00->0, 01->1, 11->2, 10->3.  §3.3.2 precoders:
NRZ T_n = P_n ^ T_(n-1) (T_-1 = 1), PAM4 T_n = (P_n - T_(n-1)) mod 4 (T_-1 = 0); receivers
P'_n = R_n ^ R_(n-1) and (R_n + R_(n-1)) mod 4.  Everything works on whole numpy arrays.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "UI_PER_SYMBOL", "GRAY", "GRAY_INV", "bytes_to_ui", "ui_to_bytes", "precode", "deprecode",
    "invert_polarity", "precode_nrz_bytes", "deprecode_nrz_bytes",
]

UI_PER_SYMBOL = {"nrz": 8, "pam4": 4}
GRAY = np.array([0, 1, 3, 2], dtype=np.uint8)  # raw pair value -> level
GRAY_INV = np.array([0, 1, 3, 2], dtype=np.uint8)  # level -> raw pair value (self-inverse)

_b = np.arange(256, dtype=np.uint8)
_NRZ_LUT = np.unpackbits(_b[:, None], axis=1, bitorder="little")  # (256,8), bit 0 first
_PAIRS = np.stack([(_b >> (2 * k)) & 3 for k in range(4)], axis=1).astype(np.uint8)  # raw pairs
_PAM4_GRAY_LUT = GRAY[_PAIRS]
_PAM4_RAW_LUT = _PAIRS
_W4 = np.array([1, 4, 16, 64], dtype=np.uint8)


def bytes_to_ui(symbols: np.ndarray, modulation: str, gray: bool = True) -> np.ndarray:
    """Symbol bytes -> UI values (0/1 for NRZ, levels 0..3 for PAM4), UI of bit 0 first."""
    s = np.asarray(symbols, dtype=np.uint8)
    if modulation == "nrz":
        return np.unpackbits(s.reshape(-1), bitorder="little")
    if modulation == "pam4":
        lut = _PAM4_GRAY_LUT if gray else _PAM4_RAW_LUT
        return lut[s].reshape(-1)
    raise ValueError(f"unknown modulation {modulation!r}")


def ui_to_bytes(ui: np.ndarray, modulation: str, gray: bool = True) -> np.ndarray:
    """Inverse of :func:`bytes_to_ui` (the UI count must be a whole number of symbols)."""
    u = np.asarray(ui, dtype=np.uint8)
    if modulation == "nrz":
        return np.packbits(u.reshape(-1), bitorder="little")
    if modulation == "pam4":
        raw = GRAY_INV[u & 3] if gray else (u & 3)
        return (raw.reshape(-1, 4) * _W4).sum(axis=1, dtype=np.uint8)
    raise ValueError(f"unknown modulation {modulation!r}")


def precode(ui: np.ndarray, modulation: str) -> np.ndarray:
    """§3.3.2 TX precoder over one run of scrambled UIs (the previous UI was not scrambled).

    Accepts a 1-D run or a 2-D array of independent runs (one per row)."""
    p = np.asarray(ui)
    if modulation == "nrz":
        return (np.bitwise_xor.accumulate(p & 1, axis=-1) ^ 1).astype(np.uint8)
    # T_n = sum_k (-1)^(n-k) P_k mod 4  (T_-1 = 0).  uint8 arithmetic wraps mod 256, which
    # keeps every value exact mod 4, so the alternating cumulative sum stays in uint8.
    s = p.astype(np.uint8, copy=True)
    s[..., 1::2] = -s[..., 1::2]
    c = np.cumsum(s, axis=-1, dtype=np.uint8)
    c[..., 1::2] = -c[..., 1::2]
    return c & 3


def deprecode(ui: np.ndarray, modulation: str) -> np.ndarray:
    """§3.3.2 RX side over one run (or rows of runs) that follows an unscrambled UI."""
    r = np.asarray(ui).astype(np.uint8)
    prev = np.empty_like(r)
    prev[..., 1:] = r[..., :-1]
    if modulation == "nrz":
        prev[..., :1] = 1
        return r ^ prev
    prev[..., :1] = 0
    return (r + prev) & 3


_PARITY = np.array([bin(b).count("1") & 1 for b in range(256)], dtype=np.uint8)


def _prefix_xor_table() -> np.ndarray:
    t = np.zeros(256, dtype=np.uint8)
    for b in range(256):
        acc, out = 0, 0
        for k in range(8):
            acc ^= (b >> k) & 1
            out |= acc << k
        t[b] = out
    return t


_PREFIX_XOR = _prefix_xor_table()


def precode_nrz_bytes(sym: np.ndarray) -> np.ndarray:
    """NRZ precoder applied directly to symbol bytes (bit 0 = first UI); rows are independent
    runs.  Same result as ``ui_to_bytes(precode(bytes_to_ui(sym)))`` but byte-wise: prefix XOR
    inside each byte from a table, carried across bytes by a cumulative XOR of byte parities."""
    b = np.asarray(sym, dtype=np.uint8)
    par = _PARITY[b]
    carry = np.bitwise_xor.accumulate(par, axis=-1) ^ par ^ 1  # T before this byte (T_-1 = 1)
    return _PREFIX_XOR[b] ^ (carry * np.uint8(0xFF))


def deprecode_nrz_bytes(sym: np.ndarray) -> np.ndarray:
    """NRZ de-precoding on packed received bytes (one run per row, previous UI taken as 1)."""
    r = np.asarray(sym, dtype=np.uint8)
    prev_msb = np.empty_like(r)
    prev_msb[..., 1:] = r[..., :-1] >> 7
    prev_msb[..., :1] = 1
    return r ^ ((r << 1) | prev_msb)


def invert_polarity(ui: np.ndarray, modulation: str) -> np.ndarray:
    """Swap the differential pair (UB 2.0 §3.4.2.6): NRZ bit flip, PAM4 level 3-x."""
    u = np.asarray(ui, dtype=np.uint8)
    return (1 - u) if modulation == "nrz" else (3 - u)
