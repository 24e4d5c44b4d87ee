"""The plan of a common receive call (UB 2.0 §4.3.4, §4.6.3, §4.7.3.2), in one pass.

A receive call in DLL_Normal whose complete blocks are all good (BCRC right, in CRC mode) and
all plain - DLLDBs, Crd_Ack blocks with T=0 and Null blocks - needs only a few bulk steps from
the engine: the flits counted for RcvPtr and the ACKs owed, and an ordered list of actions
(CRD/ACK bits of a DLLDB header, the ACK_NUM and CRD_NUM of a Crd_Ack, one stretch of a DLLDP's
payload).  :func:`rx_plan` finds them; ``ubpkt._linkc.rx_plan`` is the same in one compiled
call (``tests/link/test_rx_plan.py`` compares them; the engine's results are compared flit by
flit with the reference path by ``tests/link/test_dll_contract.py`` and ``soak_fastpaths.py``).
Any other block (Retry, Init, NOB, Param_Exchg, Crd_Ack T=1, ...) or a bad BCRC makes the call
not common: the caller then takes its block-by-block path with the delimiting returned.

Actions, in the order the block-by-block path acts:

* ``(0, b0)``: byte 0 of a DLLDB's LPH/LBH with CRD or ACK set;
* ``(1, ack_num, credits, flits)``: a Crd_Ack T=0 (credits: CRD_NUM per VL);
* ``(2, head, body, blocks, flits, last4)``: consecutive DLLDBs of one DLLDP (head: its LPH's
  4 bytes when the stretch opens the DLLDP, else None; body: their payload bytes joined; last4:
  the last 4 bytes of the stretch's last block, where ERROR_FLAG is read).
"""
from __future__ import annotations

from .. import control as C
from ..blocks import FLIT, next_block
from ..crc30 import block_crc_many
from ..plength import MAX_FLITS

__all__ = ["rx_plan", "delimit_blocks", "CRD_ACK_CODE", "NULL_CODE"]

#: LCH byte 2 (CTRL << 4 | SUB_CTRL) of the two control blocks a common call may hold
CRD_ACK_CODE = C.KINDS["Crd_Ack"][0] << 4 | C.KINDS["Crd_Ack"][1]
NULL_CODE = C.KINDS["Null"][0] << 4 | C.KINDS["Null"][1]


def delimit_blocks(rx, total: int, pending, crc_mode: bool, covers: bool) -> tuple:
    """(spans, kinds, crc_ok) of the complete blocks at the start of ``rx``: (start flit,
    flits) and kind of each (the one delimiter, UB 2.0 §4.3.4.1), their BCRC checks (None in
    non-CRC mode).  ``ubpkt._linkc.delimit`` does the same in C."""
    spans = []
    kinds = []
    pos = 0
    while pos < total:
        o = pos * FLIT
        if rx[o + 1] & 0x0F and pending is not None and pending[0] > 1:
            kind, flits, pending = "lbh", MAX_FLITS, (pending[0] - 1, pending[1])
        else:
            kind, flits, pending = next_block(rx, o, pending)
        if pos + flits > total:
            break
        spans.append((pos, flits))
        kinds.append(kind)
        pos += flits
    if not crc_mode:
        return spans, kinds, None
    crcs = block_crc_many(rx, [(s * FLIT, (s + f) * FLIT) for s, f in spans], covers) \
        if spans else []
    return spans, kinds, crcs


def _gather(rx, spans, skip_first: int, tail: int) -> tuple:
    with memoryview(rx) as mv:
        parts = [mv[s * FLIT + (2 if k else skip_first):(s + f) * FLIT - tail]
                 for k, (s, f) in enumerate(spans)]
        body = b"".join(parts)
        del parts
    return body, [rx[s * FLIT] for s, _ in spans if rx[s * FLIT] & 0xC0]


def rx_plan(rx, total: int, pending, crc_mode: bool, covers: bool, crd_code: int = CRD_ACK_CODE,
            null_code: int = NULL_CODE) -> tuple:
    """``(actions, counted, worthy, done)`` of the complete blocks at the start of ``rx`` (``total``
    flits held; ``pending`` as for the delimiter: None between DLLDPs, else (blocks still to
    come, flits of the last block)), when the call is common; else ``(None, spans, kinds,
    crc_ok)``, the delimiting.  counted: flits of DLLDBs and Crd_Acks (RcvPtr and ACKs owed);
    worthy: the same less the flits of Crd_Acks carrying only ACK_NUM (ACKed lazily); done:
    flits of the complete blocks."""
    spans, kinds, crcs = delimit_blocks(rx, total, pending, crc_mode, covers)
    if crcs is not None and not all(crcs):
        return None, spans, kinds, crcs
    tail = 4 if crc_mode else 0
    actions = []
    counted = worthy = 0
    left = pending[0] if pending is not None else 0
    run = []                                    # the DLLDB stretch being collected
    head = False

    def flush():
        s0 = run[0][0]
        last_s, last_f = run[-1]
        body, marks = _gather(rx, run, 4 if head else 2, tail)
        actions.extend((0, b0) for b0 in marks)
        e = (last_s + last_f) * FLIT
        actions.append((2, bytes(rx[s0 * FLIT:s0 * FLIT + 4]) if head else None, body,
                        len(run), last_s + last_f - s0, bytes(rx[e - 4:e])))
        run.clear()

    for (start, flits), kind in zip(spans, kinds):
        o = start * FLIT
        if kind == "cb":
            code = rx[o + 2]
            if not (code == null_code and flits == 1) and (
                    code != crd_code or rx[o + 3] & 1 or flits * FLIT < 18 + tail):
                return None, spans, kinds, crcs
            if run:
                flush()                         # a DLLCB ends a stretch of DLLDBs
            if code == null_code:
                continue
            crd_num = int.from_bytes(rx[o + 6:o + 18], "big")
            credits = [(crd_num >> (6 * vl)) & 0x3F for vl in range(16)]
            counted += flits
            worthy += flits if crd_num else 0
            actions.append((1, rx[o + 4] << 8 | rx[o + 5], credits, flits))
            continue
        if kind == "lph":
            left = ((rx[o + 2] & 0x3F) >> 2) + 1
            head = True
        elif not run:
            head = False
        run.append((start, flits))
        counted += flits
        worthy += flits
        left -= 1
        if left == 0:
            flush()
    if run:
        flush()
    return actions, counted, worthy, (spans[-1][0] + spans[-1][1]) if spans else 0
