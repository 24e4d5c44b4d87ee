"""Record fields that no single declared header position holds: verdicts (ICRC/BCRC status),
values derived from several bits (block counts, credits per VL), enum names and byte runs.

Declared once here, like the headers, so that ``ubpkt fields``, the Lua ProtoFields and the JSON
records agree.  Each :class:`Derived` names its record key, its kind (``uint``, ``string``,
``bytes``, ``list``), a title, the layer that produces it and, for enums, the value names.
Every ``<field>_name`` of an enum field is derived as well (:func:`enum_name_keys`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from . import enums as E

__all__ = ["Derived", "DERIVED", "BYTE_RUNS", "BYTE_LAYER_TITLES", "derived_rows",
           "enum_name_keys", "Interpretation", "INTERPRETATIONS", "interpret"]


@dataclass(frozen=True)
class Derived:
    key: str
    kind: str            # uint, string, bytes, list
    title: str
    layer: str
    enum: Mapping[int, str] | None = None
    bits: int = 0        # width of a uint (0: not a wire width)
    spec: str = ""


#: Layers that are runs of raw bytes: (layer, the one hex field it carries, title).
_BYTE_RUN_TABLE = (
    ("data", "data.data", "Payload"),
    ("trailer", "frame.trailer", "Frame trailer"),
    ("eth.trailer", "eth.trailer", "Ethernet trailer"),
    ("ip.options", "ip.options", "IPv4 options"),
    ("ub.pad", "ub.pad.data", "Transport padding"),
    ("ub.saetph_bitmap", "ub.saetph.bitmap", "SACK bitmap"),
    ("ub.beetah", "ub.beetah.be", "Byte Enable Extended TAH"),
    ("ub.cb_body", "ub.cb.body", "Control block body"),
    ("ub.pdu", "ub.pdu.data", "Management PDU body"),
    ("ub.mctp", "ub.mctp.data", "MCTP message (DMTF DSP0236)"),
    ("ub.spdm", "ub.spdm.data", "SPDM message (DMTF DSP0274)"),
    ("ub.scan_fwd", "ub.scan.fwd_path", "Forward path"),
    ("ub.scan_ret", "ub.scan.ret_path", "Return path"),
    ("ub.scan_tlv_value", "ub.scan_tlv.value", "TLV value"),
    ("ub.ciph_protected", "ub.ciph.protected", "Protected part"),
    ("ub.ciph_icv", "ub.ciph.icv", "Integrity check value"),
    ("ub.lldp_value", "ub.lldp.tlv_value", "LLDP TLV value"),
    ("ub.lacp_value", "ub.lacp.tlv_value", "LACP TLV value"),
    ("bootp.options", "bootp.options", "BOOTP/DHCP options"),
)
BYTE_RUNS: dict[str, str] = {layer: key for layer, key, _ in _BYTE_RUN_TABLE}
#: Titles of the layers that are not declared headers (byte runs and the ICRC trailer).
BYTE_LAYER_TITLES: dict[str, str] = {layer: title for layer, _, title in _BYTE_RUN_TABLE[:4]}
BYTE_LAYER_TITLES["ub.icrc"] = "Invariant CRC"
BYTE_LAYER_TITLES.update((layer, title) for layer, _, title in _BYTE_RUN_TABLE[4:])

DERIVED: tuple[Derived, ...] = (
    Derived("ub.lph.blocks", "uint", "DLLDBs", "ub.lph", bits=8, spec="UB 2.0 §4.3.2.2.2"),
    Derived("ub.lph.last_flits", "uint", "Flits in the last DLLDB", "ub.lph", bits=8,
            spec="UB 2.0 §4.3.2.2.2"),
    Derived("ub.lph.rt", "uint", "RT (from the ns-3-UB swapped bits)", "ub.lph_ns3", E.RT, 2,
            spec="UB 2.0 §4.3.2.2"),
    Derived("ub.icrc.value", "uint", "ICRC", "ub.icrc", bits=32, spec="UB 2.0 §5.3.7"),
    Derived("ub.icrc.status", "string", "ICRC status (good/bad)", "ub.icrc",
            spec="UB 2.0 §5.3.7"),
    Derived("ub.icrc.computed", "uint", "ICRC computed (when bad)", "ub.icrc", bits=32,
            spec="UB 2.0 §5.3.7"),
    Derived("ub.bcrc.status", "string", "BCRC status (good/bad)", "ub.bcrc",
            spec="UB 2.0 §4.7.2"),
    Derived("ub.bcrc.computed", "uint", "CRC30 computed (when bad)", "ub.bcrc", bits=32,
            spec="UB 2.0 §4.7.2"),
    Derived("ub.lch.block", "string", "Control block type", "ub.lch", spec="UB 2.0 Table 4-6"),
    Derived("ub.maetah.length", "uint", "Length in bytes (compact: 64 << len_code)",
            "ub.maetah_c", bits=32, spec="UB 2.0 §7.2.3"),
    Derived("ub.udetah.atomic_op", "uint", "Atomic sub-operation", "ub.udetah", E.ATOMIC_SUBOP,
            4, spec="UB 2.0 §7.4.2.3.2"),
    Derived("ub.mgmtetah.sub_code_name", "string", "Sub code", "ub.mgmtetah",
            spec="UB 2.0 Table 10-11"),
    Derived("ub.scan.fwd_ports", "list", "Forward path ports", "ub.scan_fwd", bits=16,
            spec="UB 2.0 §10.4.3.2"),
    Derived("ub.scan.ret_ports", "list", "Return path ports", "ub.scan_ret", bits=16,
            spec="UB 2.0 §10.4.3.2"),
    Derived("ub.neighbour_query.port_idx", "list", "Port_idx", "ub.neighbour_query", bits=16,
            spec="UB 2.0 §10.4.3.3"),
    Derived("ub.entity_info.mue_end_ue_idx", "list", "MUE's end UE idx", "ub.entity_info",
            bits=16, spec="UB 2.0 §10.4.3.3"),
    Derived("ub.entity_info.mue_start_ue_idx", "list", "MUE's start UE idx", "ub.entity_info",
            bits=16, spec="UB 2.0 §10.4.3.3"),
    Derived("ub.saetph.acked_psns", "list", "PSNs reported received (BitMap[i] = RTPH.PSN + i)",
            "ub.saetph_bitmap", bits=24, spec="UB 2.0 §6.2.3"),
    Derived("ub.atomic.operand1", "string", "Operand 1 (hex, read least significant byte first)",
            "ub.btah", spec="UB 2.0 §7.4.2.3.2"),
    Derived("ub.atomic.operand2", "string", "Operand 2 (hex, read least significant byte first)",
            "ub.btah", spec="UB 2.0 §7.4.2.3.2"),
    Derived("ub.atomic.origin_data", "string", "Original data (hex, most significant byte first)",
            "ub.atah", spec="UB 2.0 §7.4.2.3.3"),
    Derived("ub.nth.npi_permission", "uint", "NPI Permission (0 high, 1 low privilege)", "ub.nth",
            bits=1, spec="UB 2.0 §5.3.3.1"),
    Derived("ub.nth.npi_id", "uint", "NPI partition ID", "ub.nth", bits=24,
            spec="UB 2.0 §5.3.3.1"),
    Derived("ub.ubl.npi_permission", "uint", "NPI Permission (0 high, 1 low privilege)",
            "ub.ubl_ip", bits=1, spec="UB 2.0 §5.3.3.1"),
    Derived("ub.ubl.npi_id", "uint", "NPI partition ID", "ub.ubl_ip", bits=24,
            spec="UB 2.0 §5.3.3.1"),
    Derived("ub.npic.npi_permission", "uint", "NPI Permission (0 high, 1 low privilege)",
            "ub.npic_entry", bits=1, spec="UB 2.0 §5.3.3.1"),
    Derived("ub.npic.npi_id", "uint", "NPI partition ID", "ub.npic_entry", bits=24,
            spec="UB 2.0 §5.3.3.1"),
    # RNR_Timer is 5 bits: 2 us x 2^31 needs 33 bits
    Derived("ub.rtph.rnr_timeout_us", "uint", "RNR timeout (us, 2 x 2^RNR_Timer)", "ub.rtph",
            bits=33, spec="UB 2.0 §6.2.1"),
    Derived("ub.rtph.rspinfo_name", "string", "RSPINFO meaning", "ub.rtph",
            spec="UB 2.0 §6.2.1"),
    # RNR_Timer is 5 bits: 2 us x 2^31 needs 33 bits
    Derived("ub.atah.rnr_timeout_us", "uint", "RNR timeout (us, 2 x 2^RNR_Timer)", "ub.atah",
            bits=33, spec="UB 2.0 §7.2.2"),
    Derived("ub.atah.taack_count", "uint", "TAACKs in this one (1 + aggregated)", "ub.atah",
            bits=8, spec="UB 2.0 §7.2.2"),
    Derived("ub.atah.rspinfo_name", "string", "RSPINFO meaning", "ub.atah",
            spec="UB 2.0 §7.2.2"),
    Derived("data.len", "uint", "Payload length", "data", bits=32),
    # flit streams (linktype 151, record.LINKTYPE_FLITS)
    Derived("ub.flit.offset", "uint", "Stream offset of the unit's first flit", "ub.flits",
            bits=64, spec="UB 2.0 §4.3.4"),
    Derived("ub.flit.index", "uint", "Index of the unit's first flit", "ub.flits", bits=64),
    Derived("ub.flit.count", "uint", "Flits in the unit", "ub.flits", bits=16),
    Derived("ub.dll.kind", "string", "DLLDP, DLLCB or undelimited", "ub.flits",
            spec="UB 2.0 §4.3"),
    Derived("ub.dlldp.blocks", "uint", "Blocks of the DLLDP", "ub.dlldp", bits=8),
    Derived("ub.dlldp.flits", "uint", "Flits of the DLLDP", "ub.dlldp", bits=16),
    Derived("ub.dlldp.error_flag", "uint", "ERROR_FLAG of the last block", "ub.dlldp", bits=1,
            spec="UB 2.0 §4.7.2"),
    # analysis over several frames (ubpkt.views.analysis; decode -2 / -V, stats)
    Derived("ub.analysis.request_in", "uint", "Request in frame", "ub.analysis", bits=64,
            spec="UB 2.0 §7.2.1"),
    Derived("ub.analysis.response_in", "uint", "Response in frame", "ub.analysis", bits=64,
            spec="UB 2.0 §7.2.1"),
    Derived("ub.analysis.response_time", "float", "Response time (seconds)", "ub.analysis"),
    Derived("ub.analysis.response_time_ns", "uint", "Response time (ns)", "ub.analysis",
            bits=64),
    Derived("ub.analysis.no_response", "uint", "Request without a response (missing TAACK)",
            "ub.analysis", bits=1, spec="UB 2.0 §7.2.1"),
    Derived("ub.analysis.psn_gap", "uint", "PSNs missing before this one", "ub.analysis",
            bits=24, spec="UB 2.0 §6.2.1"),
    Derived("ub.analysis.out_of_order", "uint", "Fills an earlier PSN gap", "ub.analysis",
            bits=1, spec="UB 2.0 §6.2.1"),
    Derived("ub.analysis.retransmission", "uint", "PSN seen before", "ub.analysis", bits=1,
            spec="UB 2.0 §6.2.1"),
    Derived("ub.analysis.duplicate", "uint", "Same PSN as the previous packet", "ub.analysis",
            bits=1, spec="UB 2.0 §6.2.1"),
    Derived("ub.analysis.psn_backwards", "uint", "PSN behind the highest by", "ub.analysis",
            bits=24, spec="UB 2.0 §6.2.1"),
    Derived("ub.analysis.tpnak", "uint", "TPNAK (negative TP acknowledgement)", "ub.analysis",
            bits=1, spec="UB 2.0 §6.2.1"),
    Derived("ub.analysis.ack_in", "uint", "Acknowledged by the TP response in frame",
            "ub.analysis", bits=64, spec="UB 2.0 §6.4.1"),
    Derived("ub.analysis.ack_to", "uint", "Acknowledges the data packet in frame",
            "ub.analysis", bits=64, spec="UB 2.0 §6.4.1"),
    Derived("ub.analysis.acked_frames", "uint", "Data frames this response acknowledges first",
            "ub.analysis", bits=32, spec="UB 2.0 §6.4.1"),
    Derived("ub.analysis.ack_time", "float", "Acknowledgement time (seconds)", "ub.analysis"),
    Derived("ub.analysis.ack_time_ns", "uint", "Acknowledgement time (ns)", "ub.analysis",
            bits=64),
) + tuple(Derived(key, "bytes", BYTE_LAYER_TITLES[layer], layer) for layer, key in
          BYTE_RUNS.items()) + tuple(
    Derived(f"ub.crd_ack.crd_vl{i}", "uint", f"Credits returned for VL{i}", "ub.crd_ack", bits=6,
            spec="UB 2.0 §4.3.3.5") for i in range(16))


@dataclass(frozen=True)
class Interpretation:
    """A record field computed from one header field, as data so that the dissector, the fast
    path's generated templates and the Lua plugin compute it alike.  Present when every
    ``when`` (field of the same header, allowed values) holds; those fields steer the record
    (the fast path guards them), ``field`` does not.  ``kind``: ``bits`` (``arg`` = (shift,
    mask)), ``pow2`` (``arg`` << value), ``plus`` (value + ``arg``), ``names`` (``arg`` a dict;
    other values ``reserved_<n>``)."""
    key: str
    layer: str            # logical layer
    field: str
    kind: str
    arg: object
    when: tuple = ()
    spec: str = ""


_TP_ERRORS = {0: "PSN_Error", 1: "Unsupported_Request", 2: "Remote_Abort"}
_TP_TAACK = {0: "TAACK_Retransmission_Recovery", 1: "TAACK_Unrecoverable", 2: "TAACK_Correct"}
_TA_ERRORS = {1: "Unsupported_Request", 2: "Remote_Abort"}

#: UB 2.0 §5.3.3.1 (NPI: the top bit is the Permission bit, 0 high and 1 low privilege, then the
#: 24-bit partition ID), §6.2.1 RTPH and §7.2.2 ATAH RSPINFO by RSPST (RNR: RNR_Timeout = 2 us x
#: 2^RNR_Timer; Completer Error: the error; TAACK kinds; a successful ATAH: 1 + the TAACKs
#: aggregated into it).
INTERPRETATIONS: tuple[Interpretation, ...] = (
    Interpretation("ub.nth.npi_permission", "ub.nth", "npi", "bits", (24, 1),
                   spec="UB 2.0 §5.3.3.1"),
    Interpretation("ub.nth.npi_id", "ub.nth", "npi", "bits", (0, 0xFFFFFF),
                   spec="UB 2.0 §5.3.3.1"),
    # the Linux UB link netdev header carries the same NPI in 32 bits
    Interpretation("ub.ubl.npi_permission", "ub.ubl_ip", "npi", "bits", (24, 1),
                   spec="UB 2.0 §5.3.3.1"),
    Interpretation("ub.ubl.npi_id", "ub.ubl_ip", "npi", "bits", (0, 0xFFFFFF),
                   spec="UB 2.0 §5.3.3.1"),
    Interpretation("ub.npic.npi_permission", "ub.npic_entry", "npi", "bits", (24, 1),
                   spec="UB 2.0 §5.3.3.1"),
    Interpretation("ub.npic.npi_id", "ub.npic_entry", "npi", "bits", (0, 0xFFFFFF),
                   spec="UB 2.0 §5.3.3.1"),
    Interpretation("ub.rtph.rnr_timeout_us", "ub.rtph", "rspinfo", "pow2", 2,
                   (("rspst", (1, 2)),), spec="UB 2.0 §6.2.1"),
    Interpretation("ub.rtph.rspinfo_name", "ub.rtph", "rspinfo", "names", _TP_ERRORS,
                   (("rspst", (3,)),), spec="UB 2.0 §6.2.1"),
    Interpretation("ub.rtph.rspinfo_name", "ub.rtph", "rspinfo", "names", _TP_TAACK,
                   (("rspst", (5,)),), spec="UB 2.0 §6.2.1"),
    Interpretation("ub.atah.rnr_timeout_us", "ub.atah", "rspinfo", "pow2", 2,
                   (("rspst", (1, 2)),), spec="UB 2.0 §7.2.2"),
    Interpretation("ub.atah.taack_count", "ub.atah", "rspinfo", "plus", 1,
                   (("rspst", (0, 5)),), spec="UB 2.0 §7.2.2"),
    Interpretation("ub.atah.rspinfo_name", "ub.atah", "rspinfo", "names", _TA_ERRORS,
                   (("rspst", (3,)),), spec="UB 2.0 §7.2.2"),
)


def interpret(it: Interpretation, v: int):
    """The value of interpretation ``it`` for field value ``v``."""
    if it.kind == "bits":
        shift, mask = it.arg
        return (v >> shift) & mask
    if it.kind == "pow2":
        return it.arg << v
    if it.kind == "plus":
        return v + it.arg
    return it.arg.get(v, f"reserved_{v}")


def enum_name_keys(headers) -> list[Derived]:
    """The ``<field>_name`` key of every enum field of ``headers`` (dedup by key)."""
    out, seen = [], set()
    for h in headers:
        for key, f in zip(h.keys, h.fields):
            if f.enum and key + "_name" not in seen:
                seen.add(key + "_name")
                out.append(Derived(key + "_name", "string", f"{f.name} name", h.layer, f.enum,
                                   spec=h.spec))
    return out


def derived_rows(headers) -> list[Derived]:
    """Every derived record key: :data:`DERIVED` (with the names of its enums) and the enum
    names of ``headers``."""
    names = [Derived(d.key + "_name", "string", d.title + " name", d.layer, d.enum, spec=d.spec)
             for d in DERIVED if d.enum]
    return list(DERIVED) + names + enum_name_keys(headers)
