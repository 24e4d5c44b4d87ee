"""The UB packet grammar as data: which header follows which, ICRC coverage, padding, the
auto-filled fields and the request/response pairs (UB 2.0 App B, §5.3.7, §6.2, §7.4).

The headers themselves are declared in the sibling modules; this module says how they chain.
Every consumer reads these tables rather than keeping its own copy: the dissector walks them
(``ubpkt.dissect``), the encoder fills from the same rules (``ubpkt.encode``), the fast path
derives its guards from the selectors (``ubpkt.dissect.fastpath``), the scapy layers bind and
dispatch from them (``ubpkt.scapy``) and ``dissectors/gen_lua.py`` emits them as Lua tables.

Vocabulary
----------
*Logical layers* name a header regardless of the form a profile selects (``ub.lph`` is the LPH;
the ns-3-UB dialect's ``ub.lph_ns3`` is one of its :data:`VARIANTS`).  A *target* says what comes
next: a logical layer, a procedure (``"@name"``: a step whose length or repetition is computed,
implemented by each consumer and listed in :data:`PROCEDURES`), a rule, or :data:`END` (what is
left is payload).  Rules choose a target:

* :class:`Switch` by the value of a field: a field of the header just read (``"cfg"``) or a record
  key of an earlier one (``"ub.lph.cfg"``);
* :class:`Peek` by bits of the bytes that follow (before the next header is read);
* :class:`Knob` by a reference-profile choice (``ubpkt.profile``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

from . import enums as E

__all__ = ["END", "RESERVED", "Switch", "Peek", "Knob", "Target", "VARIANTS", "resolve",
           "logical", "START", "NEXT", "peeks", "selectors", "select", "PROCEDURES", "TPH",
           "COMPACT_TAH", "TA_REQUEST_HEADERS", "TA_RESPONSE_HEADERS", "TA_REQUEST_PREFIX",
           "TA_FLAGS", "ta_sequence", "ATOMIC_SUBOP_OPCODES", "TP_RESPONSE_ATAH_BYTES",
           "TP_RESPONSES_NS3", "MGMT_PDUS", "mgmt_pdu", "ICRC_COVERAGE", "icrc_start",
           "covered_from", "PADDING", "AUTO_FILL", "MGMT_PDU_FORMS", "TA_PAIRS", "TA_MATCH", "TP_PAIRS", "TP_MATCH",
           "ta_response_opcode", "TRANSPORT_OVER_UDP", "BE_SIZES", "be_bits", "SCAN_TLV_VALUES",
           "MGMT_PAYLOADS", "MGMT_PDU_PROCS", "ATOMIC_OPERAND_BYTES", "ATOMIC_RESPONSE",
           "PduList", "PDU_LISTS", "pdu_list_count", "pdu_list_values"]

#: The rest of the frame (up to the padding and the ICRC) is payload.
END = None
#: No case matches: the value is reserved (the consumer reports it and stops the walk).
RESERVED = "!reserved"


@dataclass(frozen=True)
class Switch:
    """Choose by a field value.  ``key``: a field of the header just read, or the record key
    (``ub.<prefix>.<field>``) of one read earlier."""
    key: str
    cases: Mapping[int, "Target"]
    default: "Target" = RESERVED
    spec: str = ""


@dataclass(frozen=True)
class Peek:
    """Choose by ``(byte at offset & mask) >> shift`` of the bytes not read yet; ``missing``
    when there is no such byte."""
    offset: int
    mask: int
    shift: int
    cases: Mapping[int, "Target"]
    default: "Target" = RESERVED
    missing: "Target" = END
    spec: str = ""


@dataclass(frozen=True)
class Knob:
    """Choose by a reference-profile attribute (``ubpkt.profile.Profile``)."""
    name: str
    cases: Mapping[Any, "Target"]
    default: "Target" = END
    spec: str = ""


Target = Union[str, None, Switch, Peek, Knob]


# ------------------------------------------------------------------------------------------------
# variants: the concrete header a profile (and the TAH form of the packet) selects

#: logical layer -> ((conditions, concrete layer), ...), first match wins; no match: the logical
#: layer itself.  Conditions are (name, value) pairs: a profile attribute, or ``compact`` (the
#: packet uses the compact TAH forms: CFG 9 always, CFG 6/7 CTP per ``cna_tah_form``).
VARIANTS: dict[str, tuple] = {
    "ub.lph": (((("lph_rt_swapped", True),), "ub.lph_ns3"),),
    "ub.cna16": (((("cna_little_endian", True),), "ub.cna16_ns3"),),
    "ub.cna24": (((("cna_little_endian", True),), "ub.cna24_ns3"),),
    # UB 2.0 §6.2.2: the CETPH variant is a per-channel choice
    "ub.cetph": (((("ns3_layouts", True),), "ub.cetph_caqm_ns3"),
                 ((("cetph_variant", "ldcp"),), "ub.cetph_ldcp"),
                 ((), "ub.cetph_caqm")),
    # UB 2.0 §7.2.1-3: full and compact forms
    "ub.btah": (((("compact", True),), "ub.btah_c"),),
    "ub.atah": (((("compact", True),), "ub.atah_c"),
                ((("ns3_layouts", True),), "ub.atah_ns3")),
    "ub.maetah": (((("compact", True), ("ns3_layouts", True)), "ub.maetah_c_ns3"),
                  ((("compact", True),), "ub.maetah_c")),
    # UB 2.0 §4.3.3.5: CRD_NUM order (ns-3-UB puts VL0 first)
    "ub.crd_ack": (((("crd_ack_vl0_first", True),), "ub.crd_ack_ns3"),),
}

_LOGICAL = {concrete: lay for lay, choices in VARIANTS.items() for _, concrete in choices}


def resolve(layer: str, profile, compact: bool = False) -> str:
    """The concrete layer id of logical ``layer`` under ``profile``."""
    choices = VARIANTS.get(layer)
    if choices is None:
        return layer
    for conds, concrete in choices:
        for name, value in conds:
            have = compact if name == "compact" else getattr(profile, name)
            if have != value:
                break
        else:
            return concrete
    return layer


def logical(layer: str) -> str:
    """The logical layer of a concrete one (``ub.lph_ns3`` -> ``ub.lph``)."""
    return _LOGICAL.get(layer, layer)


# ------------------------------------------------------------------------------------------------
# which header follows which

#: What starts a frame, per pcap link type (``ubpkt.record``): Ethernet (UBoE, UB 2.0 §5.2.3),
#: or a UB network packet, whose byte 1 low nibble (the LPH CFG, UB 2.0 §4.3.2.2) is 0 only
#: for a DLL control block's LCH (§4.3.3.1).
START: dict[int, Target] = {
    1: "eth",
    147: Peek(1, 0x0F, 0, {0: "@dllcb"}, default="ub.lph", missing="ub.lph",
              spec="UB 2.0 §4.3.2.2, §4.3.3.1"),
    148: Peek(1, 0x0F, 0, {0: "@dllcb"}, default="ub.lph", missing="ub.lph",
              spec="UB 2.0 §4.3.2.2, §4.3.3.1"),
    # what a UB host's own tools write for UB over IP (UB 2.0 §5.2.3): raw IP (101, the IP
    # version nibble picks v4 or v6), raw IPv4 (228), raw IPv6 (229), and the Linux cooked
    # captures of `tcpdump -i any` (SLL 113, SLL2 276) in place of the Ethernet header
    101: Peek(0, 0xF0, 4, {4: "@ipv4", 6: "@ipv6"}, default=END, missing=END,
              spec="pcap LINKTYPE_RAW"),
    228: "@ipv4",
    229: "@ipv6",
    113: "sll",
    276: "sll2",
    # a capture on a Linux UB link netdev (record.LINKTYPE_UBL, a profile choice): the kernel's
    # software header (CFG byte, then CC and NPI for IP) in place of the LPH and NTH
    150: "ub.ubl",
}

#: The LLDP nearest-bridge group address (IEEE 802.1AB), 01:80:c2:00:00:0e: at the start of a
#: CFG-5 LLDP payload it marks ub-lldpd's Ethernet header (profile ``cfg5_lldp_eth``).
LLDP_GROUP_MAC = bytes.fromhex("0180c200000e")


def _bytes_are(value: bytes, then: "Target", otherwise: "Target") -> "Target":
    """A chain of :class:`Peek` rules: ``then`` when the bytes ahead start with ``value``."""
    rule = then
    for i in reversed(range(len(value))):
        rule = Peek(i, 0xFF, 0, {value[i]: rule}, default=otherwise, missing=otherwise)
    return rule

_ETHERTYPES = {0x8100: "vlan", 0x88A8: "vlan", 0x0800: "@ipv4", 0x86DD: "@ipv6"}

#: After a TPACK, TPNAK or TPSACK (and their extension headers): an ATAH when the profile says
#: TP responses carry one and 8 bytes remain (reference profile G10).
_TP_RESPONSE_TAIL = Knob("tp_response_atah", {True: "@tp_response_atah"}, END,
                         spec="UB 2.0 §6.2.1; profile G10")

#: What follows an RTPH/UTPH data packet (UB 2.0 §6.2.1 Table 6-2, NLP).
_RTPH_NLP = Switch("nlp", {0: "@tah", 1: "ub.upih32", 3: "ub.ciph"}, spec="UB 2.0 §6.2.1")
#: What follows a CTPH (same table, CTPH column).
_CTPH_NLP = Switch("nlp", {0: "@tah", 1: "ub.upih32", 2: "ub.upih16", 3: "ub.ciph"},
                   spec="UB 2.0 §6.2.1")
#: RTPH or UTPH: TPOpcode[6:0] is 0 only for UTP (Table 6-2).  What follows a CNA NTH with
#: NLP 2 and what UDP carries to a UB port (``@udp``).
TPH = Peek(0, 0x7F, 0, {0: "ub.utph"}, default="ub.rtph", missing="ub.rtph",
           spec="UB 2.0 §6.2.1")

#: layer -> what follows it.  Layers absent here end the walk (payload follows).
NEXT: dict[str, Target] = {
    "eth": Switch("type", _ETHERTYPES, END, spec="IEEE 802.3; UB 2.0 §5.2.3"),
    "vlan": Switch("etype", _ETHERTYPES, END, spec="IEEE 802.1Q"),
    "sll": Switch("etype", _ETHERTYPES, END, spec="pcap LINKTYPE_LINUX_SLL"),
    "sll2": Switch("etype", _ETHERTYPES, END, spec="pcap LINKTYPE_LINUX_SLL2"),
    # UB 2.0 §4.3.2.2 Table 4-2, App B Table B-1
    "ub.lph": Switch("cfg", {3: "ub.nth", 4: "ub.nth", 5: "ub.cfg5", 6: "ub.cna16",
                             7: "ub.cna24", 9: "ub.cna16"}, spec="UB 2.0 §4.3.2.2 Table 4-2"),
    # UB 2.0 §5.2.3: an IP packet follows the IP-form NTH, IPv4 for CFG 3, IPv6 for CFG 4
    "ub.nth": Switch("ub.lph.cfg", {3: "@ipv4", 4: "@ipv6"}, END),
    # RFC 791/8200: UDP (the procedures @ipv4/@ipv6 read the IP header and follow these)
    "ip": Switch("proto", {17: "udp"}, END),
    "ipv6": Switch("nxt", {17: "udp"}, END),
    # UB 2.0 §5.2.1 NLP; CFG 9 (TP bypass) goes straight to the compact TAH (App B Table B-1)
    "ub.cna16": Switch("ub.lph.cfg", {9: "@tah"},
                       Switch("nlp", {0: "ub.ctph", 1: "ub.upih16", 2: TPH}),
                       spec="UB 2.0 §5.2.1, App B"),
    "ub.cna24": Switch("nlp", {0: "ub.ctph", 2: TPH}, spec="UB 2.0 §5.2.1"),
    # UB 2.0 §5.2.3: UB over UDP port 4792 (profile: the ports, ns-3-UB takes any port)
    "udp": "@udp",
    # UB 2.0 §6.2.1 Table 6-2
    "ub.rtph": Switch("tpopcode", {
        1: _RTPH_NLP, 2: _TP_RESPONSE_TAIL, 3: "ub.cetph", 5: "ub.saetph", 6: "ub.cetph",
        8: "ub.cetph_cnp",
        # ns-3-UB 1.2 sends TPNAK as the reserved TPOpcode 4 (ns3-ub dialect)
        4: Knob("ns3_layouts", {True: _TP_RESPONSE_TAIL}, RESERVED)}, spec="UB 2.0 §6.2.1"),
    "ub.utph": _RTPH_NLP,
    "ub.ctph": Switch("tpopcode", {1: Knob("ctp_cnp_cetph", {True: "ub.cetph_cnp"}, END),
                                   0: _CTPH_NLP}, _CTPH_NLP, spec="UB 2.0 §6.2.1"),
    # UB 2.0 §6.2.2-3: TPACK_CC and TPSACK_CC carry a CETPH, TPSACK(_CC) a SAETPH and bitmap
    "ub.cetph": Switch("ub.rtph.tpopcode", {6: "ub.saetph"}, _TP_RESPONSE_TAIL),
    "ub.saetph": "@saetph_bitmap",
    "ub.saetph_bitmap": _TP_RESPONSE_TAIL,
    # App B.3/B.4: UPIH + EIDH, then the TAH; after a CNA16 NTH with NLP 1, enumeration
    # after a CIPH with NLP 0/1 the UPIH and EIDH stay in clear text (the receiver finds the CIP
    # policy by the DEID, UB 2.0 §11.5.2.3; App B Figures B-4, B-6, B-8): the protected part
    # follows them instead of the TAH
    "ub.upih32": "ub.eidh256",
    "ub.eidh256": Switch("ub.ciph.nlp", {0: "@ciph_body"}, "@tah", spec="UB 2.0 §11.5.2.3"),
    "ub.upih16": Switch("ub.cna16.nlp", {1: "ub.enum_pad"}, "ub.eidh40",
                        spec="App B.3; UB 2.0 §10.4.3.1"),
    "ub.eidh40": Switch("ub.ciph.nlp", {1: "@ciph_body"}, "@tah", spec="UB 2.0 §11.5.2.3"),
    # UB 2.0 §11.5.2.3 CIPH NLP: 0 UPI32 + EID128 pair + TAH, 1 UPI16 + EID20 pair + TAH, 2 TAH
    "ub.ciph": Switch("nlp", {0: "ub.upih32", 1: "ub.upih16"}, "@ciph_body",
                      spec="UB 2.0 §11.5.2.3"),
    # UB 2.0 §10.4.3.1-2: enumeration
    "ub.enum_pad": "ub.scan",
    "ub.scan": "@scan_paths",
    "ub.scan_pdu": Switch("cmd", {
        1: Switch("opcode", {2: "ub.scan_cna_cfg", 3: "ub.scan_cna_cfg", 4: "ub.scan_cna_cfg"},
                  END),
        0: Switch("opcode", {0: "@scan_tlvs"}, END),
        2: Switch("opcode", {2: "ub.scan_cna_query", 3: "ub.scan_cna_query",
                             0: "ub.scan_cna_query_rsp"}, END)}, END, spec="UB 2.0 §10.4.3.2"),
    # UB 2.0 App F.2: CFG-5 frames by protocol
    "ub.cfg5": Switch("protocol", {
        0x0102: Peek(0, 0xF0, 4, {2: "ub.ip_notify6"}, "ub.ip_notify"),
        0x0106: "ub.npic",
        0x0100: Peek(0, 0xF0, 4, {4: "@ipv4", 6: "@ipv6"}, END),
        0x0101: Peek(0, 0xF0, 4, {4: "@ipv4", 6: "@ipv6"}, END),
        0x0109: Knob("cfg5_lldp_eth", {True: _bytes_are(LLDP_GROUP_MAC, "ub.lldp_eth",
                                                          "@lldp_tlvs")}, "@lldp_tlvs"),
        0x0104: "ub.lacp"}, END, spec="UB 2.0 App F.2 Table F-2"),
    "ub.lldp_eth": Switch("etype", {0x88CC: "@lldp_tlvs"}, END, spec="IEEE 802.1AB"),
    "ub.npic": "@npic_entries",
    # the Linux UB link netdev header (record.LINKTYPE_UBL): CFG 3/4 IP, CFG 5 App F.2 frames
    "ub.ubl": Switch("cfg", {3: "ub.ubl_ip", 4: "ub.ubl_ip", 5: "ub.cfg5"},
                     spec="Linux ubl netdev; UB 2.0 §4.3.2.2 Table 4-2"),
    "ub.ubl_ip": Switch("ub.ubl.cfg", {3: "@ipv4", 4: "@ipv6"}, END, spec="UB 2.0 §5.2.3"),
    "ub.lacp": "@lacp_tlvs",
    # UB 2.0 §10.4.3.1: the management PDU after the MGMTETAH (MGMT_PDUS)
    "ub.mgmtetah": "@mgmt_pdu",
}

#: Procedures: steps whose lengths or repetitions are computed.  Each consumer implements them.
PROCEDURES: dict[str, str] = {
    "@ipv4": "the IPv4 header, options, total length (bytes after it: Ethernet trailer), "
             "fragments (not reassembled: payload); then NEXT['ip'] (RFC 791; UB 2.0 §5.2.3)",
    "@ipv6": "the IPv6 header and payload length; then NEXT['ipv6'] (RFC 8200; UB 2.0 §5.2.3)",
    "@udp": "UB transport (TPH) when the UDP destination port is a UB port, BOOTP on ports "
            "67/68 of a CFG-5 frame; the ICRC coverage starts at the IP header (ICRC_COVERAGE)",
    "@tah": "the TAH by TAOpcode (request: BTAH; TA_RESPONSES: ATAH), full or compact, then "
            "ta_sequence() (UB 2.0 §7.4 Tables 7-2/7-4)",
    "@tp_response_atah": "an ATAH after a TP response when 8 bytes remain (profile G10)",
    "@saetph_bitmap": "the SACK bitmap, 8 << BitMapSize bytes (UB 2.0 §6.2.3)",
    "@ciph_body": "the protected part and the ICV (profile G9), after the CIPH or, for CIPH NLP "
                  "0/1, after the clear-text UPIH and EIDH",
    "@scan_paths": "forward (and with R, return) path entries, padded to 4 bytes, then the Scan "
                   "PDU (UB 2.0 §10.4.3.2)",
    "@scan_tlvs": "topology TLVs to the end: by the Type byte the TLV header SCAN_TLV_VALUES "
                  "declares when Length covers it, else ub.scan_tlv; the rest of Length as bytes "
                  "(UB 2.0 §10.4.3.2 Table 10-9)",
    "@npic_entries": "SUM NPIC entries (UB 2.0 App F.2.5)",
    "@lldp_tlvs": "LLDP TLVs to the End TLV (IEEE 802.1AB)",
    "@lacp_tlvs": "LACP TLVs to the Terminator (IEEE 802.1AX)",
    "@mgmt_pdu": "the PDU header chosen by MGMT_PDUS (its PDU_LISTS entries as list fields), the "
                 "rest of PDU_Length as bytes (MGMT_PAYLOADS: another protocol's layer); "
                 "MGMT_PDU_PROCS: a procedure reads the PDU",
    "@beetah": "the BEETAH: BE_SIZES bits, the largest not above the MAETAH Length (64 below "
               "it); a payload longer than the bitmap is valid beyond it (UB 2.0 §7.2.10, "
               "§7.4.2.1.3).  Without a MAETAH Length: 9/8 of the payload",
    "@dllcb": "a DLL control block: the LCH form and body by CTRL/SUB_CTRL, the BCRC "
              "(UB 2.0 §4.3.3)",
}

#: How each procedure's choices depend on the bytes left in the frame (the fast path's length
#: classes, ``ubpkt.dissect.fastpath``): ``0``: not at all (lengths it reads are fields the
#: templates check as relations, see :data:`LENGTH_RULES`); a layer name: it reads that header
#: only when at least its size remains (otherwise the rest is payload); a number: the same with
#: that many bytes.  A procedure absent here depends on the length in other ways (repetitions,
#: byte runs sized by what is left): the fast path keeps such layouts at one frame length.
#: ``tests/test_fastpath_layouts.py`` checks every procedure of :data:`PROCEDURES` is either here
#: or deliberately absent (:data:`LENGTH_EXACT_PROCEDURES`).
PROCEDURE_ROOM: dict[str, object] = {
    "@ipv4": 0, "@ipv6": 0, "@tah": 0,
    "@udp": "bootp",                       # BOOTP only when its header fits
    "@tp_response_atah": None,             # set below: TP_RESPONSE_ATAH_BYTES
}
#: Procedures whose steps follow the bytes left (the fast path keeps their layouts exact).
LENGTH_EXACT_PROCEDURES = ("@saetph_bitmap", "@ciph_body", "@scan_paths", "@scan_tlvs",
                           "@npic_entries", "@lldp_tlvs", "@lacp_tlvs", "@mgmt_pdu", "@dllcb")
#: Procedures whose byte run is sized by a record field read before them when the record has
#: it (else by the bytes left, as LENGTH_EXACT_PROCEDURES): procedure -> (the byte-run layer it
#: reads, that field's record key).  The BEETAH's width follows the MAETAH Length (be_bits; UB
#: 2.0 §7.2.10, §7.4.2.1.3), a steering field the fast path guards, so one template serves
#: every payload length after it.
FIELD_SIZED_PROCEDURES: dict[str, tuple] = {"@beetah": ("ub.beetah", "ub.maetah.length")}
#: AUTO_FILL rules that count the bytes from a header to the end of the packet: the fast path
#: checks such a field as ``value == frame length - constant`` instead of one value, so one
#: template serves every payload length.  Other length rules (PLENGTH's encoding, PDU_Length)
#: keep a layout at one frame length.
LENGTH_RULES = ("ipv4_total_length", "ipv6_payload_length", "udp_length")
#: AUTO_FILL rules whose field encodes the packet's length from the first header on (PLENGTH,
#: UB 2.0 §4.3.2.2.2 Table 4-1, checked by the dissector when the profile's check_plength is
#: set): the fast path checks it as ``value == encoding(frame length)`` (or, unchecked, reads
#: it as a value), so one template serves every payload length.
LENGTH_ENCODED_RULES = ("plength",)
LENGTH_EXACT_RULES = ("mgmt_pdu_length",)

#: Topology TLV Type -> the header of the whole TLV (Type, Length and the value's fields; UB 2.0
#: §10.4.3.2 Table 10-9, Fig 10-27..30), read when Length covers it; value bytes past it, and other
#: types (reserved, vendor defined), are ``ub.scan_tlv`` plus bytes.
SCAN_TLV_VALUES: dict[int, str] = {0: "ub.scan_slice_info", 1: "ub.scan_port_num",
                                   2: "ub.scan_port_info", 4: "ub.scan_cap_info"}

#: BEETAH widths in bits, one per payload byte of a 64..1024-byte write (UB 2.0 §7.2.10).
BE_SIZES = (64, 128, 256, 512, 1024)


def be_bits(length: int) -> int:
    """The BEETAH width for a Write_with_be/Writeback_with_be of ``length`` bytes (MAETAH
    Length): the widest of :data:`BE_SIZES` not above it, at least the narrowest.  A longer
    payload is allowed and valid past the bitmap (UB 2.0 §7.4.2.1.3)."""
    bits = BE_SIZES[0]
    for b in BE_SIZES:
        if b <= length:
            bits = b
    return bits


#: The UB transport headers that UDP carries (UB 2.0 §5.2.3).
TRANSPORT_OVER_UDP = ("ub.rtph", "ub.utph")


def select(rule: Target, own: Callable[[str], Any], earlier: Callable[[str], Any],
           peek: Callable[[int], int | None], profile) -> Target:
    """Follow rules until a layer, a procedure, END or RESERVED is reached.  ``own(name)``: a
    field of the header just read; ``earlier(key)``: a record key of an earlier header (None if
    absent); ``peek(offset)``: a byte not read yet (None past the end)."""
    while True:
        if isinstance(rule, Switch):
            v = earlier(rule.key) if "." in rule.key else own(rule.key)
            rule = rule.cases.get(v, rule.default) if isinstance(v, int) else rule.default
        elif isinstance(rule, Peek):
            b = peek(rule.offset)
            rule = rule.missing if b is None else \
                rule.cases.get((b & rule.mask) >> rule.shift, rule.default)
        elif isinstance(rule, Knob):
            rule = rule.cases.get(getattr(profile, rule.name), rule.default)
        else:
            return rule


def peeks(layer: str) -> tuple[tuple[int, int], ...]:
    """The ``(offset, mask)`` of every byte after ``layer`` (logical) that a :class:`Peek` in its
    rule reads, offsets counted from the end of the header: the fast path guards them too."""
    out: list = []

    def visit(rule):
        if isinstance(rule, Peek):
            if (rule.offset, rule.mask) not in out:
                out.append((rule.offset, rule.mask))
        if isinstance(rule, (Switch, Peek, Knob)):
            for t in list(rule.cases.values()) + [rule.default]:
                visit(t)

    visit(NEXT.get(layer))
    return tuple(out)


def selectors(layer: str) -> tuple[str, ...]:
    """The fields of ``layer`` (logical) that steer the walk after it: the fast path guards
    them."""
    out: list[str] = []

    def visit(rule):
        if isinstance(rule, Switch):
            if "." not in rule.key and rule.key not in out:
                out.append(rule.key)
            for t in list(rule.cases.values()) + [rule.default]:
                visit(t)
        elif isinstance(rule, (Peek, Knob)):
            for t in list(rule.cases.values()) + [rule.default]:
                visit(t)

    visit(NEXT.get(layer))
    return tuple(out)


#: Which TAH form follows (App B figures; reference profile G13): after these layers the packet
#: uses the compact TAH forms (``compact`` in VARIANTS) when the rule gives True.  TP bypass
#: (CFG 9) always does, a CTP packet as the profile says, RTP and UTP never.
COMPACT_TAH: dict[str, Target] = {
    "ub.cna16": Switch("ub.lph.cfg", {9: True}, Knob("cna_tah_form", {"compact": True}, False)),
    "ub.cna24": Knob("cna_tah_form", {"compact": True}, False),
    "ub.rtph": False,
    "ub.utph": False,
}


# ------------------------------------------------------------------------------------------------
# transaction headers: the extension headers per TAOpcode (UB 2.0 §7.4)

#: Steps after a request's BTAH (and its UDETAH when UD_Flag), in order, per TAOpcode (UB 2.0
#: §7.4 Table 7-2).  A step is a logical layer, ``("flag", field, layer)``: present when the
#: BTAH field is set, or ``("knob", attribute, layer)``: present when the profile says so (the
#: optional headers no flag announces; reference profile).
_TV = ("flag", "tv_en", "ub.tvetah")
#: Before every request's steps: the UDETAH when UD_Flag is set (UB 2.0 §7.2.11, §7.4).
TA_REQUEST_PREFIX = (("flag", "ud_flag", "ub.udetah"),)
#: BTAH flags that announce an extension header (UB 2.0 §7.2.1): a flag set without its header
#: in the opcode's sequence (or the reverse) is reported.  MT_EN is carried by the full BTAH only.
TA_FLAGS = {"tv_en": "ub.tvetah", "ud_flag": "ub.udetah", "mt_en": "ub.mtetah"}
TA_REQUEST_HEADERS: dict[int, tuple] = {
    0x00: ("ub.mtetah", "ub.ofstetah", _TV),
    0x01: ("ub.mtetah", "ub.ofstetah", "ub.immetah", _TV),
    0x03: ("ub.maetah", _TV),
    0x04: ("ub.mtetah", "ub.maetah", "ub.immetah", _TV),
    0x05: ("ub.maetah", "ub.ntfetah", _TV),
    0x06: (("knob", "read_taidetah", "ub.taidetah"), ("knob", "read_ofstetah", "ub.ofstetah"),
           "ub.maetah", _TV),
    0x10: ("ub.mgmtetah",),
    0x14: ("ub.maetah", _TV, "@beetah"),
    0x15: ("ub.maetah",),
    0x17: ("ub.maetah", _TV),
    0x18: ("ub.maetah", _TV, "@beetah"),
}
for _op in E.ATOMICS:
    TA_REQUEST_HEADERS[_op] = (("knob", "atomic_taidetah", "ub.taidetah"), "ub.maetah", _TV)
#: Steps after a response's ATAH (UB 2.0 §7.4 Table 7-4).
TA_RESPONSE_HEADERS: dict[int, tuple] = {
    0x11: (),
    0x12: (("knob", "read_response_taidetah", "ub.taidetah"),
           ("knob", "read_response_ofstetah", "ub.ofstetah")),
    0x13: (("knob", "atomic_response_taidetah", "ub.taidetah"),),
}
#: ns-3-UB sends TA responses inside RTP data packets as a full BTAH plus MAETAH (dialect).
TA_RESPONSE_IN_DATA_NS3 = ("ub.maetah",)
#: Operand sizes of an atomic request (two equal operands) and of an Atomic_response's original
#: data, in bytes (UB 2.0 §7.4.2.3.2-3); the TAOpcode of Atomic_response.
ATOMIC_OPERAND_BYTES = (1, 2, 4, 8, 16, 32, 64)
ATOMIC_RESPONSE = 0x13
#: TAOpcodes whose UDETAH[23:20] is an atomic sub-operation (UB 2.0 §7.4.2.3.2).
ATOMIC_SUBOP_OPCODES = (0x09, 0x0A)
#: An ATAH after a TP response (profile G10) is read when at least this many bytes remain: the
#: full ATAH (UB 2.0 §7.2.2).
TP_RESPONSE_ATAH_BYTES = 8
PROCEDURE_ROOM["@tp_response_atah"] = TP_RESPONSE_ATAH_BYTES
#: TAOpcodes whose payload @tah reads as numbers when its length is an operand size (atomic
#: operands, an Atomic_response's original data: UB 2.0 §7.4.2.3.2-3): the payload length
#: changes the record, so the fast path keeps such layouts at one frame length.
ATOMIC_PAYLOAD_OPCODES = tuple(E.ATOMICS) + (ATOMIC_RESPONSE,)


def ta_sequence(opcode: int, response: bool, flags: Mapping[str, int], profile,
                compact: bool = False) -> list[str]:
    """Concrete layer ids (and ``@beetah``) after the TAH of ``opcode``, in wire order.
    ``flags``: the BTAH fields ``tv_en`` and ``ud_flag`` (a request's UDETAH comes first).
    The result is shared (cached per profile): do not modify it."""
    key = (opcode, response, bool(flags.get("tv_en")), bool(flags.get("ud_flag")),
           id(profile), compact)
    hit = _TA_CACHE.get(key)
    if hit is not None and hit[0] is profile:
        return hit[1]
    if response:
        steps = TA_RESPONSE_HEADERS.get(opcode, ())
    else:
        steps = TA_REQUEST_HEADERS.get(opcode)
        if steps is None:
            return []
        steps = TA_REQUEST_PREFIX + steps
    out = []
    for step in steps:
        if isinstance(step, tuple):
            kind, name, layer = step
            on = flags.get(name) if kind == "flag" else getattr(profile, name)
            if not on:
                continue
            step = layer
        out.append(step if step.startswith("@") else resolve(step, profile, compact))
    if len(_TA_CACHE) > 4096:
        _TA_CACHE.clear()
    _TA_CACHE[key] = (profile, out)
    return out


_TA_CACHE: dict = {}


#: UB 2.0 §10.4.3.1 Table 10-10/10-11: the PDU header per (code, sub code, response); None for
#: any sub code.  Absent: the PDU is opaque bytes.
MGMT_PDUS: dict[tuple, str] = {
    (2, None, 0): "ub.cfg_req", (2, None, 1): "ub.cfg_rsp",
    (0, None, 0): "ub.error_msg",
    (1, 0, 0): "ub.link_msg", (1, 1, 0): "ub.link_msg",
    (1, 2, 0): "ub.hotplug_msg", (1, 3, 0): "ub.hotplug_msg",
    (5, 2, 0): "ub.token_check_req", (5, 2, 1): "ub.token_check_rsp",
    (4, 7, 0): "ub.neighbour_query",
    (6, 0, 0): "ub.entity_reg", (6, 1, 0): "ub.entity_dereg", (6, 2, 0): "ub.bus_create",
    (6, 3, 0): "ub.bus_destroy", (6, 4, 0): "ub.cfg_complete", (6, 5, 0): "ub.port_reset",
    (4, 2, 1): "ub.entity_info", (4, 1, 0): "ub.rs_info_req", (4, 1, 1): "ub.rs_info_rsp",
    (3, 15, 0): "ub.vdm_vendor", (3, 15, 1): "ub.vdm_vendor",
}

#: (code, sub code) -> the byte-run layer of a PDU that belongs to another protocol, request and
#: response alike: MCTP over UB (DMTF DSP0236, carried unmodified) and Device Authentication
#: (SPDM, DMTF DSP0274) (UB 2.0 §10.4.3.3 Table 10-11).  The Lua plugin hands the bytes to
#: Wireshark's mctp/spdm dissectors when it has them.
MGMT_PAYLOADS: dict[tuple, str] = {(3, 0): "ub.mctp", (5, 1): "ub.spdm"}

#: (code, sub code, rsp) -> the procedure that reads a PDU made of repeated structures: the Link
#: Neighbor Query response carries Port_info TLVs of the topology query (UB 2.0 §10.4.3.3 Fig
#: 10-46, §10.4.3.2 Fig 10-29).  What the procedure leaves of PDU_Length is ``ub.pdu``.
MGMT_PDU_PROCS: dict[tuple, str] = {(4, 7, 1): "@scan_tlvs"}


@dataclass(frozen=True)
class PduList:
    """Entries of ``entry_bits`` after a PDU header, shown as list fields: ``fields`` are
    (record key, bit offset in the entry, bits); ``count``: the header field giving how many
    entries, or ``(field, value, n)`` overrides: n entries when the field has that value."""
    count: str
    entry_bits: int
    fields: tuple
    fixed: tuple = ()
    spec: str = ""


#: PDU header -> the list its body carries (read from the PDU bytes, which stay ``ub.pdu``).
PDU_LISTS: dict[str, PduList] = {
    # Fig 10-45: D 0 asks for the range Port_idx0..Port_idx1, D 1 for Port_num listed ports
    "ub.neighbour_query": PduList("port_num", 16, (("ub.neighbour_query.port_idx", 0, 16),),
                                  fixed=(("d", 0, 2),), spec="UB 2.0 §10.4.3.3"),
    # Fig 10-44: per MUE its end and start UE index
    "ub.entity_info": PduList("mue_nums", 32, (("ub.entity_info.mue_end_ue_idx", 0, 16),
                                               ("ub.entity_info.mue_start_ue_idx", 16, 16)),
                              spec="UB 2.0 §10.4.3.3"),
}


def pdu_list_count(lst: PduList, value) -> int:
    """How many entries ``lst`` announces; ``value(name)``: a field of its PDU header."""
    for name, v, n in lst.fixed:
        if value(name) == v:
            return n
    return value(lst.count)


def pdu_list_values(lst: PduList, value, body: bytes) -> dict:
    """The list fields of ``lst`` read from ``body`` (the PDU bytes after its header): as many
    entries as the header announces and the body holds."""
    size = lst.entry_bits // 8
    n = min(pdu_list_count(lst, value), len(body) // size)
    out: dict = {key: [] for key, _, _ in lst.fields}
    for k in range(n):
        e = int.from_bytes(body[k * size:(k + 1) * size], "big")
        for key, off, bits in lst.fields:
            out[key].append((e >> (lst.entry_bits - off - bits)) & ((1 << bits) - 1))
    return out if n else {}


#: PDU headers with a longer form, chosen by PDU_Length (the form's size): the Resource Space
#: Information Exchange request is 4 bytes for Obtain and 28 for Configure (UB 2.0 §10.4.3.3).
MGMT_PDU_FORMS: dict[str, dict[int, str]] = {"ub.rs_info_req": {28: "ub.rs_info_cfg"}}


def mgmt_pdu(code: int, sub: int, rsp: int, pdu_len: int | None = None) -> str | None:
    """The PDU header layer of a management message (its longer form for ``pdu_len`` when
    :data:`MGMT_PDU_FORMS` lists one), or None (opaque)."""
    layer = MGMT_PDUS.get((code, sub, rsp)) or MGMT_PDUS.get((code, None, rsp))
    if layer is not None and pdu_len is not None:
        layer = MGMT_PDU_FORMS.get(layer, {}).get(pdu_len, layer)
    return layer


# ------------------------------------------------------------------------------------------------
# ICRC coverage (UB 2.0 §5.3.7): where it starts; the masked fields are flagged ``icrc_mask``
# on the declarations (Header.icrc_masks).

@dataclass(frozen=True)
class IcrcCoverage:
    """The ICRC covers from ``start`` (logical layer) to the end of the packet when every
    condition holds: ``knobs`` (profile attribute, value) pairs and ``unless``: (record key,
    value) pairs of which none may hold."""
    start: str
    knobs: tuple = ()
    unless: tuple = ()
    needs_ub_udp: bool = False
    #: (own field, value, knob): no coverage when the starting header's field has that value,
    #: unless the profile knob is on
    exempt: tuple = ()
    spec: str = ""


ICRC_COVERAGE: tuple[IcrcCoverage, ...] = (
    IcrcCoverage("ip", (("icrc", True),), needs_ub_udp=True, spec="UB 2.0 §5.3.7 (CFG 3/4, UBoE)"),
    IcrcCoverage("ipv6", (("icrc", True),), needs_ub_udp=True,
                 spec="UB 2.0 §5.3.7 (CFG 3/4, UBoE)"),
    # CFG 6/7 from the NTH at byte 4 (the LPH is never covered); CFG 9 has none; enumeration
    # packets carry one only where the administrator says so (§10.4.3.1, profile enum_icrc)
    IcrcCoverage("ub.cna16", (("icrc", True),), unless=(("ub.lph.cfg", 9),),
                 exempt=(("nlp", 1, "enum_icrc"),), spec="UB 2.0 §5.3.7, App B, §10.4.3.1"),
    IcrcCoverage("ub.cna24", (("icrc", True),), spec="UB 2.0 §5.3.7"),
    # App F.2 describes no ICRC for CFG-5 frames: a profile choice, covering from byte 4
    # (the software frame of a UB link netdev, LINKTYPE_UBL, never has one: the hardware adds it)
    IcrcCoverage("ub.cfg5", (("icrc", True), ("cfg5_icrc", True)), unless=(("ub.ubl.cfg", 5),),
                 spec="App F.2; profile"),
)
_ICRC_BY_START = {c.start: c for c in ICRC_COVERAGE}


def covered_from(layers) -> int | None:
    """Index in ``layers`` (layer ids in wire order of a packet known to carry an ICRC) of the
    header where the coverage starts: the first one that can start it."""
    for i, lay in enumerate(layers):
        if logical(lay) in _ICRC_BY_START:
            return i
    return None


def icrc_start(layer: str, earlier: Callable[[str], Any], profile, *, nlp: int | None = None,
               ub_udp: bool = False, own: Callable[[str], Any] | None = None) -> bool:
    """Whether the ICRC coverage starts at ``layer`` (logical) in this packet.  ``earlier``: a
    record-key getter for the headers before it; ``own``: a getter for the starting header's
    fields (``nlp``: shorthand for its NLP); ``ub_udp``: for IP starts, whether UDP carries
    UB."""
    c = _ICRC_BY_START.get(layer)
    if c is None:
        return False
    if any(getattr(profile, k) != v for k, v in c.knobs):
        return False
    if any(earlier(k) == v for k, v in c.unless):
        return False
    if c.needs_ub_udp and not ub_udp:
        return False
    for name, value, knob in c.exempt:
        have = own(name) if own is not None else (nlp if name == "nlp" else None)
        if have == value and not getattr(profile, knob):
            return False
    return True


# ------------------------------------------------------------------------------------------------
# padding and the other fields an encoder fills

@dataclass(frozen=True)
class PaddingRule:
    """``field`` of each of ``headers`` counts the zero bytes (layer ``pad_layer``) that make
    the bytes from the header to the end of the payload a multiple of ``align``."""
    headers: tuple
    field: str
    align: int
    pad_layer: str
    ends_before: tuple
    spec: str


PADDING = PaddingRule(("ub.rtph", "ub.utph", "ub.ctph"), "padding", 4, "ub.pad",
                      ("ub.icrc", "ub.pad", "eth.trailer"), "UB 2.0 §6.2.1")

#: (layer, field) of every ``auto`` field -> the rule that computes it when left unset.
AUTO_FILL: dict[tuple, str] = {
    ("ip", "hdr_len"): "ipv4_ihl",            # 5 + option words (RFC 791)
    ("ip", "len"): "ipv4_total_length",       # IP header to the end of the IP packet
    ("ip", "checksum"): "ipv4_checksum",      # RFC 791 header checksum
    ("ipv6", "plen"): "ipv6_payload_length",  # RFC 8200
    ("udp", "length"): "udp_length",          # RFC 768
    ("udp", "dstport"): "ub_udp_port",        # 4792 when UB follows (UB 2.0 §5.2.3), else 0
    # the field NEXT switches on, from the layer that follows (next_protocol_value)
    ("eth", "type"): "next_protocol",
    ("vlan", "etype"): "next_protocol",
    ("ip", "proto"): "next_protocol",         # 17 before UDP (UB 2.0 §5.2.3 Table 5-4)
    ("ipv6", "nxt"): "next_protocol",
    ("ip", "flags"): "ub_ip_flags",           # DF (0b010) for UB over IP (§5.2.3 Table 5-4)
    ("ub.rtph", "padding"): "tp_padding",     # PADDING (UB 2.0 §6.2.1)
    ("ub.utph", "padding"): "tp_padding",
    ("ub.ctph", "padding"): "tp_padding",
    ("ub.mgmtetah", "pdu_length"): "mgmt_pdu_length",   # bytes after the MGMTETAH (§10.4.3.1)
    ("ub.lph", "plength"): "plength",         # UB 2.0 §4.3.2.2.2 (profile check_plength)
    ("ub.lph_ns3", "plength"): "plength",
    ("ub.bcrc", "crc30"): "bcrc",             # UB 2.0 §4.7.2
    ("ub.icrc", "value"): "icrc",             # UB 2.0 §5.3.7
}


#: Procedures that begin by reading a known header (NEXT names the procedure, the encoder and
#: next_protocol_value need the header).
PROCEDURE_ENTERS: dict[str, str] = {"@ipv4": "ip", "@ipv6": "ipv6", "@udp": "udp"}


def next_protocol_value(layer: str, following: str):
    """The value of the field ``NEXT[layer]`` switches on that selects ``following`` (its
    first case, in declaration order), or None when no case leads there: the
    ``next_protocol`` rule of :data:`AUTO_FILL` (``eth.type`` 0x0800 before IPv4,
    ``ip.proto`` 17 before UDP...)."""
    rule = NEXT.get(layer)
    if not isinstance(rule, Switch) or "." in rule.key:
        return None
    for value, target in rule.cases.items():
        if target == following or PROCEDURE_ENTERS.get(target) == following:
            return value
    return None


# ------------------------------------------------------------------------------------------------
# requests and responses

@dataclass(frozen=True)
class Pair:
    """A request and the response it asks for, matched on ``keys`` (fields named on both)."""
    request: str
    response: str
    keys: tuple
    spec: str


#: TAOpcode of a request -> TAOpcode of its response (UB 2.0 §7.1 Tables 7-1/7-3, §7.3.1).
#: Write-like and Send-like requests are answered by TAACK (unless No_TAACK), Read by
#: Read_response, atomics by Atomic_response; Management has its own response message and
#: Prefetch_tgt asks for none.
TA_PAIRS: dict[int, int] = {op: 0x11 for op in (0x00, 0x01, 0x03, 0x04, 0x05, 0x14, 0x17, 0x18)}
TA_PAIRS[0x06] = 0x12
TA_PAIRS.update({op: 0x13 for op in E.ATOMICS})
#: Request and response are matched on the initiator's TASSN and requester context
#: (BTAH/ATAH INI_TASSN, INI_RC_Type, INI_RC_ID; UB 2.0 §7.2.1-2).
TA_MATCH = ("ini_tassn", "ini_rc_type", "ini_rc_id")
#: TPOpcode of an RTP data packet -> the TP responses that acknowledge it (UB 2.0 §6.2.1,
#: §6.4): TPACK/TPNAK (plain or _CC) and TPSACK (plain or _CC), matched on the TP channel
#: (a response's SrcTPN/DstTPN are the request's DstTPN/SrcTPN) and the PSN.
TP_PAIRS: dict[int, tuple] = {1: (2, 3, 5, 6)}
#: ns-3-UB 1.2 also answers with the reserved TPOpcode 4 (its TPNAK; ns3-ub dialect).
TP_RESPONSES_NS3 = (4,)
TP_MATCH = (("srctpn", "dsttpn"), ("dsttpn", "srctpn"))


def ta_response_opcode(opcode: int, no_taack: int = 0) -> int | None:
    """The TAOpcode that answers request ``opcode`` (None: no response expected)."""
    if opcode in (0x00, 0x01, 0x03, 0x04, 0x05, 0x14, 0x17, 0x18) and no_taack:
        return None
    return TA_PAIRS.get(opcode)
