"""Null Block (UB 2.0 §4.3.3.2), as much as the PHY needs to fill and to drop idle flits.

The PHY fills idle time and partial codewords with Null Blocks (§3.2.5.4) and drops them on
receive.  The Null Block has the DLLCB header ``02 00 00 00`` and a trailer that depends on the
data link's CRC mode:

* CRC mode: bytes 16..19 are the BCRC (byte 16 bit 7 reserved, bit 6 ERROR_FLAG, then CRC30;
  §4.7.2).  Recognised by the header and a valid BCRC.
* non-CRC mode (§4.3.2.3): no BCRC; byte 19 is the END field (Table 4-4: bit 6 ERROR_FLAG, the
  other bits reserved) and the FEC is mandatory, so a successful FEC decode is the integrity
  check.  Recognised as the whole 20-byte pattern (header, zero reserved bytes, END with
  ERROR_FLAG clear) in a flit that decoded cleanly; a flit that failed FEC is never dropped here
  (the data link sees it, flagged).  Where Null Blocks are dropped is left open by §4.3.3.2; a
  DLLDP middle flit that happens to equal this pattern would be dropped too (see docs/phy.md).

The CRC30 itself is the link layer's (:mod:`ubpkt.link.crc30`).
"""
from __future__ import annotations

import numpy as np

from ubpkt.link.crc30 import bcrc_crc30, crc30_batch

__all__ = ["null_block", "NULL_BLOCK", "NULL_BLOCK_NONCRC", "is_null_block_many", "FLIT"]

FLIT = 20
_HEADER = b"\x02\x00\x00\x00"


def null_block(error_flag: bool = False, crc_mode: bool = True) -> bytes:
    """One Null Block flit in the CRC-mode (BCRC) or non-CRC-mode (END byte) form."""
    head = _HEADER + bytes(12)
    if not crc_mode:
        return head + bytes(3) + (b"\x40" if error_flag else b"\x00")
    info = 1 if error_flag else 0
    bcrc = (info << 30) | bcrc_crc30(head, info)
    return head + bcrc.to_bytes(4, "big")


NULL_BLOCK = null_block()
NULL_BLOCK_NONCRC = null_block(crc_mode=False)
_NONCRC_ROW = np.frombuffer(NULL_BLOCK_NONCRC, np.uint8)
_CRC_ROW = np.frombuffer(NULL_BLOCK, np.uint8)


def is_null_block_many(flits: np.ndarray, crc_mode: bool = True,
                       fec_ok: np.ndarray | None = None) -> np.ndarray:
    """(M,20) uint8 -> bool mask of Null Blocks of the given CRC mode.  ``fec_ok`` (one bool per
    flit, non-CRC mode only): flits that failed FEC decoding are never taken for Null Blocks."""
    f = np.asarray(flits, dtype=np.uint8).reshape(-1, FLIT)
    if not crc_mode:
        out = (f == _NONCRC_ROW).all(axis=1)
        if fec_ok is not None:
            out &= np.asarray(fec_ok, dtype=bool)
        return out
    if f.flags.c_contiguous:  # the header 02 00 00 00 as one little-endian word per flit
        lch = f.view("<u4")[:, 0] == 2
    else:
        lch = (f[:, 0] == 2) & (f[:, 1] == 0) & (f[:, 2] == 0) & (f[:, 3] == 0)
    out = np.zeros(f.shape[0], dtype=bool)
    idx = np.flatnonzero(lch)
    if idx.size:  # the usual Null Block, byte for byte, needs no CRC30 (its BCRC is valid)
        same = (f[idx] == _CRC_ROW).all(axis=1)
        out[idx[same]] = True
        idx = idx[~same]
    if idx.size:
        sub = f[idx]
        info = (sub[:, 16] >> 6).astype(np.uint32)
        got = ((sub[:, 16].astype(np.uint32) & 0x3F) << 24) | (sub[:, 17].astype(np.uint32) << 16) \
            | (sub[:, 18].astype(np.uint32) << 8) | sub[:, 19].astype(np.uint32)
        out[idx] = crc30_batch(sub[:, :16], info) == got
    return out
