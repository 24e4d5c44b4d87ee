"""Configuration-management PDUs and enumeration (UB 2.0 §10.4.3).  The PDU header per message
code is the grammar's (:func:`ubpkt.formats.grammar.mgmt_pdu`)."""
from __future__ import annotations

from ..formats import enums as E
from ..formats.core import Header
from ..formats.grammar import (MGMT_PAYLOADS, MGMT_PDU_PROCS, NEXT, PDU_LISTS, SCAN_TLV_VALUES,
                               mgmt_pdu, pdu_list_values)
from .frame import ERROR, H, WARNING, Frame
from .walk import AFTER, PROCS, reads, run


def _mgmtetah(fr: Frame, h: Header, v, start: int):
    ix = h.index
    code, sub = v[ix["code"]], v[ix["sub_code"]]
    fr.fields["ub.mgmtetah.sub_code_name"] = E.MGMT_SUB_CODE.get(code, {}).get(
        sub, f"unknown_{sub}")
    return None


def _mgmt_pdu(fr: Frame, h: Header, v) -> bool:
    ix = h.index
    start = fr.pos - h.size
    code, sub, rsp, pdu_len = (v[ix["code"]], v[ix["sub_code"]], v[ix["rsp"]],
                               v[ix["pdu_length"]])
    avail = fr.end - fr.pos - fr.pad
    if pdu_len > avail:
        fr.issue(ERROR, "ub.mgmtetah", "ub.mgmtetah.pdu_length", start,
                 f"PDU length {pdu_len} points past the packet ({avail} bytes)")
        return True
    if pdu_len > 1024:
        fr.issue(WARNING, "ub.mgmtetah", "ub.mgmtetah.pdu_length", start,
                 f"PDU length {pdu_len} exceeds 1024")
    body_end = fr.pos + pdu_len
    layer = mgmt_pdu(code, sub, rsp, pdu_len)
    saved_end = fr.end
    fr.end = body_end
    proc = MGMT_PDU_PROCS.get((code, sub, rsp))
    if proc is not None:
        # a PDU of repeated structures, read inside PDU_Length (no transport padding there)
        saved_pad, fr.pad = fr.pad, 0
        _PDU_RUNS[proc](fr)
        fr.pad = saved_pad
    elif layer is not None and pdu_len >= H[layer].size:
        hv = fr.take(H[layer])
        lst = PDU_LISTS.get(layer)
        if lst is not None and hv is not None:
            ix = H[layer].index
            fr.fields.update(pdu_list_values(lst, lambda n: hv[ix[n]],
                                             bytes(fr.buf[fr.pos:body_end])))
    fr.end = saved_end
    if fr.pos < body_end:
        fr.take_bytes(MGMT_PAYLOADS.get((code, sub), "ub.pdu"), body_end - fr.pos)
    return True


def _scan_paths(fr: Frame, h: Header, s) -> bool:
    # UB 2.0 §10.4.3.2: the forward path, and with R the return path, each padded to 4 bytes
    ix = h.index
    r, typ, hops = s[ix["r"]], s[ix["type"]], s[ix["hops"]]
    width = {0: 4, 1: 8, 2: 16}.get(typ)
    if width is None:
        fr.issue(ERROR, "ub.scan", "ub.scan.type", fr.pos - h.size, f"reserved path type {typ}")
        fr.rest_as_data()
        return True
    path_len = -(-(hops * width) // 32) * 4
    for name, present in (("fwd", True), ("ret", bool(r))):
        if not present:
            continue
        raw = fr.take_bytes(f"ub.scan_{name}", path_len)
        if raw is None:
            return False
        fr.fields[f"ub.scan.{name}_ports"] = _path_entries(raw, width, hops)
    return run(fr, "ub.scan_pdu")


def _scan_tlvs(fr: Frame, h: Header, v) -> bool:
    ok = _scan_tlv_run(fr)
    if ok:
        fr.rest_as_data()
    return ok


def _scan_tlv_run(fr: Frame) -> bool:
    """Topology TLVs while two bytes remain (UB 2.0 §10.4.3.2 Table 10-9); False when one was
    malformed or truncated (reported)."""
    tlv = H["ub.scan_tlv"]
    while fr.end - fr.pos - fr.pad >= 2:
        typ, length = fr.buf[fr.pos], fr.buf[fr.pos + 1]
        value = SCAN_TLV_VALUES.get(typ)
        room = fr.end - fr.pos - fr.pad
        hdr = H[value] if value is not None and H[value].size <= length <= room else tlv
        if fr.take(hdr) is None:
            return False
        if length < 2:
            fr.issue(ERROR, "ub.scan_tlv", "ub.scan_tlv.length", fr.pos - 2,
                     f"TLV length {length} < 2")
            return True
        n = length - hdr.size
        if (n or hdr is tlv) and fr.take_bytes("ub.scan_tlv_value", n) is None:
            return False
    return True


def _path_entries(raw: bytes, width: int, hops: int) -> list[int]:
    # Reference profile G15b: entry k sits at the least-significant end of its DW.
    per_dw = 32 // width
    out = []
    for k in range(hops):
        dw = int.from_bytes(raw[(k // per_dw) * 4:(k // per_dw) * 4 + 4], "big")
        out.append((dw >> ((k % per_dw) * width)) & ((1 << width) - 1))
    return out


#: MGMT_PDU_PROCS procedure -> the reader of its structures (what it leaves is ub.pdu)
_PDU_RUNS = {"@scan_tlvs": _scan_tlv_run}

assert NEXT["ub.mgmtetah"] == "@mgmt_pdu"
reads("ub.mgmtetah", "sub_code", "code", "rsp", "pdu_length")
reads("ub.scan", "r", "type", "hops")
reads("ub.neighbour_query", "d", "port_num")
reads("ub.entity_info", "mue_nums")
reads("ub.scan_pdu", "cmd", "opcode")
reads("ub.scan_tlv", "type", "length")
AFTER["ub.mgmtetah"] = _mgmtetah
PROCS.update({"@mgmt_pdu": _mgmt_pdu, "@scan_paths": _scan_paths, "@scan_tlvs": _scan_tlvs})
