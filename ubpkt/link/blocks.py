"""Data-link blocks: the pieces shared by framing, control blocks and the DLL engine.

* :func:`next_block` - the one block delimiter (UB 2.0 §4.3.4.1): a block's kind and length
  from its first bytes;
* :func:`seal` / :func:`check_tail` - a block's trailer: the BCRC in CRC mode (UB 2.0 §4.7.2,
  Table 4-3) or the END byte in non-CRC mode (Table 4-4).

This module imports nothing else of ``ubpkt.link`` but :mod:`.crc30` and :mod:`.plength`, so
that :mod:`.framing`, :mod:`.control` and :mod:`.engine` can all build on it.
"""
from __future__ import annotations

from ..formats import HEADERS as H
from ..record import ERROR, WARNING, make_issue
from .crc30 import block_crc
from .plength import FLIT, MAX_FLITS

__all__ = ["FLIT", "next_block", "seal", "check_tail"]

_BCRC, _END = H["ub.bcrc"], H["ub.end"]


# ------------------------------------------------------------------------------------------------
# delimiting

def next_block(buf, pos: int = 0, pending: tuple | None = None) -> tuple:
    """``(kind, flits, pending)`` of the block starting at ``buf[pos]`` (at least 4 bytes there):
    the one block delimiter of the Deframer and the DLL engine (UB 2.0 §4.3.4.1).

    ``kind`` is ``"cb"`` (LPH/LCH CFG 0: a DLLCB of CLENGTH + 1 flits, §4.3.3.1), ``"lph"`` (the
    first DLLDB of a DLLDP: PLENGTH gives its block count and last-block flits, §4.3.2.2
    Table 4-1) or ``"lbh"`` (a later DLLDB).  ``pending`` describes the DLLDP being delimited:
    None between DLLDPs, else ``(blocks still to come, flits of its last block)``; pass the
    returned one with the next block (a DLLCB between DLLDBs leaves it unchanged).
    """
    b1 = buf[pos + 1]
    if b1 & 0x0F == 0:
        return "cb", ((buf[pos] >> 2) & 0x1F) + 1, pending
    if pending is None:
        plen = ((buf[pos + 2] & 0x3F) << 8) | buf[pos + 3]
        nblocks = (plen >> 10) + 1
        last = ((plen >> 5) & 0x1F) + 1
        if nblocks == 1:
            return "lph", last, None
        return "lph", MAX_FLITS, (nblocks - 1, last)
    left, last = pending
    if left <= 1:
        return "lbh", last, None
    return "lbh", MAX_FLITS, (left - 1, last)


# ------------------------------------------------------------------------------------------------
# trailers

def seal(block: bytearray, crc_mode: bool = True, *, error_flag: bool = False, end: bool = True,
         covers_info: bool = True) -> bytearray:
    """Fill the trailer of a block of whole flits in place: the BCRC at bytes 16..19 of its last
    flit (CRC mode, UB 2.0 Table 4-3), or the END byte at byte 19 (non-CRC mode, Table 4-4; only
    when ``end``: the last block of a DLLDP, or a DLLCB)."""
    if crc_mode:
        info = 1 if error_flag else 0          # reserved bit 0, ERROR_FLAG
        crc = block_crc(bytes(block[:-4]), info, covers_info)
        block[-4:] = ((info << 30) | crc).to_bytes(4, "big")
    elif end:
        block[-1] = 0x40 if error_flag else 0
    return block


def check_tail(block, crc_mode: bool, offset: int, issues: list, *, end: bool = True,
               covers_info: bool = True, crc_ok: bool | None = None, last: bool = True) -> dict:
    """Check a DLLDB's BCRC (or END); append issues; return its record fields.  (DLLCBs are
    read, trailer included, by :func:`ubpkt.link.control.read_control`.)"""
    out = {}
    if crc_mode:
        rsvd, eflag, crc = _BCRC.unpack(block, len(block) - 4)
        out = {"ub.bcrc.rsvd1": rsvd, "ub.bcrc.error_flag": eflag, "ub.bcrc.crc30": crc}
        if crc_ok is None:
            crc_ok = block_crc(bytes(block[:-4]), (rsvd << 1) | eflag, covers_info) == crc
        out["ub.bcrc.status"] = "good" if crc_ok else "bad"
        pos = offset + len(block) - 4
        if not crc_ok:
            # the value expected, as a DLLCB's record and the Lua plugin show it
            calc = block_crc(bytes(block[:-4]), (rsvd << 1) | eflag, covers_info)
            out["ub.bcrc.computed"] = calc
            issues.append(make_issue(ERROR, "ub.bcrc", "ub.bcrc.crc30", pos,
                                     f"BCRC mismatch (CRC30 {crc:#010x}, computed "
                                     f"{calc:#010x})"))
        if rsvd:
            issues.append(make_issue(WARNING, "ub.bcrc", "ub.bcrc.rsvd1", pos,
                                     "reserved bit of the BCRC is set"))
        if eflag and not last:
            issues.append(make_issue(WARNING, "ub.bcrc", "ub.bcrc.error_flag", pos,
                                     "ERROR_FLAG set in a block that is not a DLLDP's last "
                                     "block (only meaningful in the last, UB 2.0 Table 4-3)"))
    elif end:
        rsvd1, eflag, rsvd2 = _END.unpack(block, len(block) - 1)
        out = {"ub.end.rsvd1": rsvd1, "ub.end.error_flag": eflag, "ub.end.rsvd2": rsvd2}
        if rsvd1 or rsvd2:
            issues.append(make_issue(WARNING, "ub.end", "ub.end.rsvd1", offset + len(block) - 1,
                                     "reserved bits of END are set"))
    return out
