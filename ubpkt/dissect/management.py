"""Configuration-management PDUs and enumeration (UB 2.0 §10.4.3)."""
from __future__ import annotations

from ..formats import enums as E
from .frame import ERROR, H, WARNING, Frame


def _management(fr: Frame) -> None:
    start = fr.pos
    v = fr.take(H["ub.mgmtetah"])
    if v is None:
        return
    sub, code, rsp, status, _, pdu_len = v
    name = E.MGMT_SUB_CODE.get(code, {}).get(sub, f"unknown_{sub}")
    fr.fields["ub.mgmtetah.sub_code_name"] = name
    avail = fr.end - fr.pos - fr.pad
    if pdu_len > avail:
        fr.issue(ERROR, "ub.mgmtetah", "ub.mgmtetah.pdu_length", start,
                 f"PDU length {pdu_len} points past the packet ({avail} bytes)")
        return
    if pdu_len > 1024:
        fr.issue(WARNING, "ub.mgmtetah", "ub.mgmtetah.pdu_length", start,
                 f"PDU length {pdu_len} exceeds 1024")
    body_end = fr.pos + pdu_len
    h = None
    if code == 2:
        h = H["ub.cfg_rsp"] if rsp else H["ub.cfg_req"]
    elif code == 0 and not rsp:
        h = H["ub.error_msg"]
    elif code == 1 and not rsp:
        h = H["ub.link_msg"] if sub in (0, 1) else H["ub.hotplug_msg"]
    elif code == 5 and sub == 2:
        h = H["ub.token_check_rsp"] if rsp else H["ub.token_check_req"]
    elif code == 4 and sub == 7 and not rsp:
        h = H["ub.neighbour_query"]
    elif code == 6 and not rsp:
        h = {0: H["ub.entity_reg"], 1: H["ub.entity_dereg"], 2: H["ub.bus_create"],
             3: H["ub.bus_destroy"], 4: H["ub.cfg_complete"], 5: H["ub.port_reset"]}.get(sub)
    saved_end = fr.end
    fr.end = body_end
    if h is not None and pdu_len >= h.size:
        fr.take(h)
    fr.end = saved_end
    if fr.pos < body_end:
        fr.take_bytes("ub.pdu", body_end - fr.pos)


def _enumeration(fr: Frame) -> None:
    # UB 2.0 §10.4.3.1-2: UPIH16, two zero bytes, Scan Header, paths, Scan PDU.
    if fr.take(H["ub.upih16"]) is None or fr.take(H["ub.enum_pad"]) is None:
        return
    s = fr.take(H["ub.scan"])
    if s is None:
        return
    r, typ, hops = s[1], s[2], s[3]
    width = {0: 4, 1: 8, 2: 16}.get(typ)
    if width is None:
        fr.issue(ERROR, "ub.scan", "ub.scan.type", fr.pos - 4, f"reserved path type {typ}")
        return
    path_len = -(-(hops * width) // 32) * 4
    for name, present in (("fwd", True), ("ret", bool(r))):
        if not present:
            continue
        raw = fr.take_bytes(f"ub.scan_{name}", path_len)
        if raw is None:
            return
        fr.fields[f"ub.scan.{name}_ports"] = _path_entries(raw, width, hops)
    if fr.take(H["ub.scan_pdu"]) is None:
        return
    cmd = fr.fields["ub.scan_pdu.cmd"]
    opcode = fr.fields["ub.scan_pdu.opcode"]
    if cmd == 1 and opcode in (2, 3, 4):
        fr.take(H["ub.scan_cna_cfg"])
    elif cmd == 0 and opcode == 0:
        while fr.end - fr.pos - fr.pad >= 2:
            t = fr.take(H["ub.scan_tlv"])
            if t is None:
                return
            if t[1] < 2:
                fr.issue(ERROR, "ub.scan_tlv", "ub.scan_tlv.length", fr.pos - 2,
                         f"TLV length {t[1]} < 2")
                return
            if fr.take_bytes("ub.scan_tlv_value", t[1] - 2) is None:
                return
    fr.rest_as_data()


def _path_entries(raw: bytes, width: int, hops: int) -> list[int]:
    # Reference profile G15b: entry k sits at the least-significant end of its DW.
    per_dw = 32 // width
    out = []
    for k in range(hops):
        dw = int.from_bytes(raw[(k // per_dw) * 4:(k // per_dw) * 4 + 4], "big")
        out.append((dw >> ((k % per_dw) * width)) & ((1 << width) - 1))
    return out
