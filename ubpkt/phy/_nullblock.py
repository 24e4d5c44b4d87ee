"""Null Block (UB 2.0 §4.3.3.2), as much as the PHY needs to fill and to drop idle flits.

The PHY fills idle time and partial codewords with Null Blocks (§3.2.5.4) and drops them on
receive, recognised by LCH ``02 00 00 00`` and a valid BCRC (byte 16 bit 7 reserved, bit 6
ERROR_FLAG, then CRC30; §4.7.2).  The CRC30 itself is the link layer's (:mod:`ubpkt.link.crc30`).
"""
from __future__ import annotations

import numpy as np

from ubpkt.link.crc30 import bcrc_crc30, crc30_batch

__all__ = ["null_block", "NULL_BLOCK", "is_null_block_many", "FLIT"]

FLIT = 20


def null_block(error_flag: bool = False) -> bytes:
    head = b"\x02\x00\x00\x00" + bytes(12)
    info = 1 if error_flag else 0
    bcrc = (info << 30) | bcrc_crc30(head, info)
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
        out[idx] = crc30_batch(sub[:, :16], info) == got
    return out
