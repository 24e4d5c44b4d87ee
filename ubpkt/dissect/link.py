"""Data-link control blocks found in packet captures (UB 2.0 §4.3.3)."""
from __future__ import annotations

from ..formats import enums as E
from ..link.crc30 import block_crc
from .frame import ERROR, H, WARNING, Frame


def _dllcb(fr: Frame) -> None:
    p = fr.profile
    ctrl_byte = fr.peek(1, 2)
    if ctrl_byte is None:
        fr.issue(ERROR, "ub.lch", None, 0, "truncated LCH")
        return
    ctrl, sub = ctrl_byte >> 4, ctrl_byte & 0xF
    kind = E.DLLCB_TYPES.get((ctrl, sub))
    lch = {"Crd_Ack": H["ub.lch_crd_ack"], "Block_Mode_Chg": H["ub.lch_block_mode_chg"]}.get(
        kind, H["ub.lch"])
    v = fr.take(lch)
    if v is None:
        return
    flits = v[1] + 1
    fr.fields["ub.lch.block"] = kind or f"unknown_{ctrl}_{sub}"
    if kind is None:
        fr.issue(WARNING, lch.layer, "ub.lch.ctrl", 2, f"reserved CTRL/SUB_CTRL {ctrl}/{sub}")
    size = flits * 20
    if size != fr.end:
        sev = WARNING if p.ns3_layouts else ERROR
        fr.issue(sev, lch.layer, "ub.lch.clength", 0,
                 f"CLENGTH says {flits} flits ({size} bytes), the block has {fr.end} bytes")
    has_bcrc = p.dllcb_bcrc
    body_end = min(size, fr.end) - (4 if has_bcrc else 0)
    saved = fr.end
    fr.end = max(body_end, fr.pos)
    if kind == "Crd_Ack":
        h = H["ub.crd_ack_ns3"] if p.crd_ack_vl0_first else H["ub.crd_ack"]
        c = fr.take(h)
        if c is not None:
            raw = c[1]
            credits = [(raw >> (6 * (15 - i))) & 0x3F for i in range(16)]
            if not p.crd_ack_vl0_first:
                credits = credits[::-1]
            for vl in range(16):
                fr.fields[f"ub.crd_ack.crd_vl{vl}"] = credits[vl]
    elif kind in ("Retry_Req", "Retry_Ack", "Lane_Manage"):
        fr.take(H["ub." + kind.lower()])
    elif kind == "Init":
        fr.take(H["ub.init"])
    elif kind == "Param_Exchg":
        if fr.take(H["ub.param_exchg"]) is not None:
            while fr.end - fr.pos >= 20:
                fr.take(H["ub.param_exchg_flit"])
    elif kind in ("Null", "NOB", "Retry_Idle", "Block_Mode_Chg"):
        fr.take(H["ub.cb_rsvd"])
    if fr.pos < fr.end:
        fr.take_bytes("ub.cb_body", fr.end - fr.pos, zero=True)
    fr.end = saved
    if has_bcrc and fr.end - fr.pos >= 4 and size <= saved:
        b = fr.take(H["ub.bcrc"])
        if b is not None:
            calc = block_crc(bytes(fr.buf[:fr.pos - 4]), b[0] << 1 | b[1], p.bcrc_covers_info)
            if calc == b[2]:
                fr.fields["ub.bcrc.status"] = "good"
            else:
                fr.fields["ub.bcrc.status"] = "bad"
                fr.fields["ub.bcrc.computed"] = calc
                fr.issue(ERROR, "ub.bcrc", "ub.bcrc.crc30", fr.pos - 4,
                         f"CRC30 {b[2]:#010x}, computed {calc:#010x}")
