"""Null Block (UB 2.0 §4.3.3.2) and the CRC30 BCRC it carries, as much as the PHY needs.

The PHY fills idle time and partial codewords with Null Blocks (§3.2.5.4) and drops them on receive,
recognised by LCH ``02 00 00 00`` and a valid BCRC.  BCRC (§4.7.2, Table 4-3): byte 16 bit 7
reserved, bit 6 ERROR_FLAG, then CRC30[29:0]; CRC30 polynomial 0x15A94AD5 (x^30 implicit), init all
ones, MSB first over the 16 bytes before it and the two info bits, no final XOR.
Table driven and vectorised over many flits at once.
"""
from __future__ import annotations

import numpy as np

__all__ = ["crc30", "crc30_many", "null_block", "NULL_BLOCK", "is_null_block_many", "FLIT"]

FLIT = 20
POLY = 0x15A94AD5
MASK = (1 << 30) - 1


def _table() -> np.ndarray:
    t = np.zeros(256, dtype=np.uint32)
    for b in range(256):
        c = b << 22
        for _ in range(8):
            c = ((c << 1) ^ POLY) if c & (1 << 29) else (c << 1)
        t[b] = c & MASK
    return t


_T = _table()
_TL = [int(x) for x in _T]


def crc30(data: bytes, info_bits: int = 0) -> int:
    """CRC30 over ``data`` then the two info bits (reserved, ERROR_FLAG) MSB first."""
    c = MASK
    for b in data:
        c = ((c << 8) & MASK) ^ _TL[((c >> 22) ^ b) & 0xFF]
    for k in (1, 0):
        fb = ((c >> 29) & 1) ^ ((info_bits >> k) & 1)
        c = (c << 1) & MASK
        if fb:
            c ^= POLY
    return c


def crc30_many(blocks: np.ndarray, info_bits: np.ndarray) -> np.ndarray:
    """Vectorised :func:`crc30` over rows of ``blocks`` (M,16) with per-row info bits."""
    c = np.full(blocks.shape[0], MASK, dtype=np.uint32)
    for i in range(blocks.shape[1]):
        c = ((c << 8) & MASK) ^ _T[((c >> 22) ^ blocks[:, i]) & 0xFF]
    for k in (1, 0):
        fb = ((c >> 29) & 1) ^ ((info_bits >> k) & 1).astype(np.uint32)
        c = ((c << 1) & MASK) ^ (fb * POLY).astype(np.uint32)
    return c


def null_block(error_flag: bool = False) -> bytes:
    head = b"\x02\x00\x00\x00" + bytes(12)
    info = 1 if error_flag else 0
    crc = crc30(head, info)
    bcrc = (info << 30) | crc
    return head + bcrc.to_bytes(4, "big")


NULL_BLOCK = null_block()


def is_null_block_many(flits: np.ndarray) -> np.ndarray:
    """(M,20) uint8 -> bool mask of Null Blocks (LCH 02 00 00 00 and a valid BCRC)."""
    f = np.asarray(flits, dtype=np.uint8)
    lch = (f[:, 0] == 2) & (f[:, 1] == 0) & (f[:, 2] == 0) & (f[:, 3] == 0)
    out = np.zeros(f.shape[0], dtype=bool)
    idx = np.nonzero(lch)[0]
    if idx.size:
        sub = f[idx]
        info = (sub[:, 16] >> 6).astype(np.uint32)
        got = ((sub[:, 16].astype(np.uint32) & 0x3F) << 24) | (sub[:, 17].astype(np.uint32) << 16) \
            | (sub[:, 18].astype(np.uint32) << 8) | sub[:, 19].astype(np.uint32)
        out[idx] = crc30_many(sub[:, :16], info) == got
    return out
