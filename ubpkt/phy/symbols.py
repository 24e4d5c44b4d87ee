"""Symbols on a lane: bit order, NRZ/PAM4 unit intervals, Gray coding and precoding.

UB 2.0 §3.2.5.1: each 8-bit symbol goes out bit 0 first.  NRZ: one bit per UI.  PAM4: two bits per
UI; profile (gap G20, same as Table 3-6): UI k of a symbol carries the pair (bit 2k+1, bit 2k), odd
bit as MSB.  §3.3.1 Table 3-11: Gray map 00->0, 01->1, 11->2, 10->3.  §3.3.2 precoders:
NRZ T_n = P_n ^ T_(n-1) (T_-1 = 1), PAM4 T_n = (P_n - T_(n-1)) mod 4 (T_-1 = 0); receivers
P'_n = R_n ^ R_(n-1) and (R_n + R_(n-1)) mod 4.  Everything works on whole numpy arrays.

Packed form: one byte per symbol, the UIs of the symbol in its bits in sending order (NRZ: UI k
= bit k; PAM4: UI k = bits 2k+1..2k, the level).  The ``*_bytes`` functions Gray-map, precode
and de-precode packed arrays directly (one table look-up per symbol, not per UI), giving the
same values as the one-byte-per-UI functions; :func:`pack_ui`/:func:`unpack_ui` convert.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "UI_PER_SYMBOL", "GRAY", "GRAY_INV", "bytes_to_ui", "ui_to_bytes", "precode", "deprecode",
    "invert_polarity", "precode_nrz_bytes", "deprecode_nrz_bytes", "gray_pam4_bytes",
    "precode_pam4_bytes", "deprecode_pam4_bytes", "pack_ui", "unpack_ui",
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
# PAM4 UIs of a packed byte as one little-endian-ordered 32-bit word: one gather per symbol
_PAM4_RAW_U32 = np.ascontiguousarray(_PAM4_RAW_LUT).view(np.uint32).reshape(256)


def bytes_to_ui(symbols: np.ndarray, modulation: str, gray: bool = True) -> np.ndarray:
    """Symbol bytes -> UI values (0/1 for NRZ, levels 0..3 for PAM4), UI of bit 0 first."""
    s = np.asarray(symbols, dtype=np.uint8)
    if modulation == "nrz":
        return np.unpackbits(s.reshape(-1), bitorder="little")
    if modulation == "pam4":
        return unpack_ui(gray_pam4_bytes(s) if gray else s, "pam4")
    raise ValueError(f"unknown modulation {modulation!r}")


def ui_to_bytes(ui: np.ndarray, modulation: str, gray: bool = True) -> np.ndarray:
    """Inverse of :func:`bytes_to_ui` (the UI count must be a whole number of symbols)."""
    u = np.asarray(ui, dtype=np.uint8)
    if modulation == "nrz":
        return np.packbits(u.reshape(-1), bitorder="little")
    if modulation == "pam4":
        b = pack_ui(u & 3, "pam4")
        return gray_pam4_bytes(b) if gray else b
    raise ValueError(f"unknown modulation {modulation!r}")


def unpack_ui(packed: np.ndarray, modulation: str) -> np.ndarray:
    """Packed symbols -> one UI value per byte (no Gray mapping: the bits as they are)."""
    b = np.ascontiguousarray(packed, dtype=np.uint8).reshape(-1)
    if modulation == "nrz":
        return np.unpackbits(b, bitorder="little")
    return np.take(_PAM4_RAW_U32, b).view(np.uint8)   # np.take: ~2x a fancy index


def pack_ui(ui: np.ndarray, modulation: str) -> np.ndarray:
    """UI values (a whole number of symbols, each value in range) -> packed symbol bytes."""
    u = np.ascontiguousarray(ui, dtype=np.uint8).reshape(-1)
    if modulation == "nrz":
        return np.packbits(u, bitorder="little")
    # four UIs as one 32-bit word, byte k = UI k on little-endian machines; folded into 8 bits
    w = u.view("<u4")
    return ((w | (w >> 6) | (w >> 12) | (w >> 18)) & 0xFF).astype(np.uint8)


#: Gray map of the four PAM4 pairs of a byte (level = x ^ (x >> 1) per pair; self-inverse)
_GRAY_BYTE = (_b ^ ((_b >> 1) & 0x55)).astype(np.uint8)


def gray_pam4_bytes(sym: np.ndarray) -> np.ndarray:
    """§3.3.1 Table 3-11 Gray map (and its inverse, the same map) on packed PAM4 bytes."""
    return np.take(_GRAY_BYTE, np.asarray(sym, dtype=np.uint8))


def _pam4_precode_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alt, pre, dep): alt[b] = P3 - P2 + P1 - P0 mod 4 (what a byte adds to the precoder
    state, an even number of UIs); pre[t, b] = the byte precoded after state t; dep[r, b] =
    the byte de-precoded after a previous received level r."""
    alt = np.zeros(256, dtype=np.uint8)
    pre = np.zeros((4, 256), dtype=np.uint8)
    dep = np.zeros((4, 256), dtype=np.uint8)
    for b in range(256):
        p = [(b >> (2 * k)) & 3 for k in range(4)]
        alt[b] = (p[3] - p[2] + p[1] - p[0]) & 3
        for t0 in range(4):
            t, out = t0, 0
            for k in range(4):
                t = (p[k] - t) & 3
                out |= t << (2 * k)
            pre[t0, b] = out
            r, out = t0, 0
            for k in range(4):
                out |= ((p[k] + r) & 3) << (2 * k)
                r = p[k]
            dep[t0, b] = out
    return alt, pre, dep


_PAM4_ALT, _PAM4_PRE, _PAM4_DEP = _pam4_precode_tables()
# flat tables indexed by (state << 8) | byte: one gather instead of a 2-D fancy index
_PAM4_PRE_FLAT = _PAM4_PRE.reshape(-1)
_PAM4_DEP_FLAT = _PAM4_DEP.reshape(-1)
_PAM4_DEP_GRAY_FLAT = _GRAY_BYTE[_PAM4_DEP].reshape(-1)


def precode_pam4_bytes(sym: np.ndarray) -> np.ndarray:
    """PAM4 precoder on packed level bytes (rows are independent runs, T_-1 = 0): the same as
    ``pack_ui(precode(unpack_ui(sym)))``.  The state before each byte is the running sum of
    the bytes' alternating sums (uint8 wraps keep it exact mod 4)."""
    b = np.asarray(sym, dtype=np.uint8)
    a = np.take(_PAM4_ALT, b)
    state = np.cumsum(a, axis=-1, dtype=np.uint8) - a   # exclusive running sum
    idx = (state & 3).astype(np.uint16) << 8
    idx |= b
    return np.take(_PAM4_PRE_FLAT, idx)


def deprecode_pam4_bytes(sym: np.ndarray, gray: bool = False) -> np.ndarray:
    """PAM4 de-precoding on packed received level bytes (one run per row, previous level 0);
    ``gray``: the Gray map undone in the same look-up (raw symbol bits out)."""
    r = np.asarray(sym, dtype=np.uint8)
    idx = r.astype(np.uint16)
    idx[..., 1:] |= (r[..., :-1] >> 6).astype(np.uint16) << 8
    return np.take(_PAM4_DEP_GRAY_FLAT if gray else _PAM4_DEP_FLAT, idx)


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
