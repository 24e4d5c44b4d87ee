"""eBCH-16 code of the AMCTL: BCH(15,5) with g(x) = x^10+x^8+x^5+x^4+x^2+x+1 plus even parity.

UB 2.0 §3.2.4.1.  Word layout (unpermuted): message value in bits 15..11, BCH remainder in bits
10..1, even parity over bits 15..1 in bit 0; Byte_A = bits 15..8, Byte_B = bits 7..0.
The decoder corrects up to 3 bit errors in the 15-bit BCH part whatever the parity bit says (so
1, 2 or 3 errors anywhere, or 3 in the BCH part plus a parity error).  A full 65536-entry table
makes decoding one lookup.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "G_BCH", "ebch16_encode", "ebch16_decode", "CODEWORDS", "permute_dc", "unpermute_dc",
    "AMCTL_CW", "decode_table",
]

G_BCH = 0x537


def _bch_rem(value: int) -> int:
    r = value << 10
    for bit in range(14, 9, -1):
        if r & (1 << bit):
            r ^= G_BCH << (bit - 10)
    return r & 0x3FF


def ebch16_encode(value: int) -> int:
    """5-bit value -> 16-bit eBCH codeword before the DC-balance permutation."""
    if not 0 <= value < 32:
        raise ValueError("eBCH-16 carries a 5-bit value")
    w15 = (value << 10) | _bch_rem(value)
    parity = bin(w15).count("1") & 1
    return (w15 << 1) | parity


CODEWORDS: tuple[int, ...] = tuple(ebch16_encode(k) for k in range(32))

# Codewords the AMCTL uses (UB 2.0 Table 3-6), the DC-balanced subset.
AMCTL_CW = (8, 28, 3, 23, 9, 21, 10, 22)

# DC-balance bit permutation (UB 2.0 §3.2.4.1): new bit i <- orig bit SRC[i].
_SRC_A = (0, 6, 1, 5, 7, 2, 3, 4)  # new bit 0..7 from orig bit
_SRC_B = (0, 6, 1, 2, 3, 4, 5, 7)


def _perm_byte(b: int, src: tuple[int, ...]) -> int:
    return sum(((b >> src[i]) & 1) << i for i in range(8))


def _unperm_byte(b: int, src: tuple[int, ...]) -> int:
    return sum(((b >> i) & 1) << src[i] for i in range(8))


_PA = np.array([_perm_byte(b, _SRC_A) for b in range(256)], dtype=np.uint16)
_PB = np.array([_perm_byte(b, _SRC_B) for b in range(256)], dtype=np.uint16)
_UA = np.array([_unperm_byte(b, _SRC_A) for b in range(256)], dtype=np.uint16)
_UB = np.array([_unperm_byte(b, _SRC_B) for b in range(256)], dtype=np.uint16)


def permute_dc(word: int) -> int:
    """Apply the DC-balance permutation to a 16-bit word (Byte_A in bits 15..8)."""
    return (int(_PA[(word >> 8) & 0xFF]) << 8) | int(_PB[word & 0xFF])


def unpermute_dc(word: int) -> int:
    return (int(_UA[(word >> 8) & 0xFF]) << 8) | int(_UB[word & 0xFF])


def _build_table() -> tuple[np.ndarray, np.ndarray]:
    """Every word within BCH-part distance 3 of a codeword (any parity bit) maps to it; the
    radius-3 balls of BCH(15,5) (distance 7) are disjoint, so the table is unambiguous."""
    from itertools import combinations
    pats = [0]
    for n in (1, 2, 3):
        pats += [sum(1 << b for b in c) for c in combinations(range(1, 16), n)]
    pats = np.array(pats + [p | 1 for p in pats], dtype=np.int64)  # with a parity-bit error
    weight = np.array([bin(int(p)).count("1") for p in pats], dtype=np.int8)
    value = np.full(65536, -1, dtype=np.int8)
    nbits = np.full(65536, -1, dtype=np.int8)
    for k, cw in enumerate(CODEWORDS):
        words = cw ^ pats
        value[words] = k
        nbits[words] = weight
    return value, nbits


_VALUE, _NBITS = _build_table()


def decode_table() -> tuple[np.ndarray, np.ndarray]:
    """(value, corrected_bits) arrays indexed by the unpermuted 16-bit word (-1 = uncorrectable)."""
    return _VALUE, _NBITS


def ebch16_decode(word: int) -> tuple[int, int] | None:
    """Unpermuted 16-bit word -> (value, corrected_bits), or None when uncorrectable."""
    v = int(_VALUE[word & 0xFFFF])
    if v < 0:
        return None
    return v, int(_NBITS[word & 0xFFFF])
