"""Scapy layers for UnifiedBus, generated from the format registry (``ubpkt.formats``) and the
packet grammar (:mod:`ubpkt.formats.grammar`).

One :class:`~scapy.packet.Packet` subclass per registered UB header, named ``UB`` + the CamelCase
of its layer id (``ub.btah_c`` -> ``UBBtahC``), plus one small layer per run of bytes
(``ubpkt.formats.derived.BYTE_RUNS``).  Nothing here restates the packet grammar:

* which layer follows which is ``grammar.NEXT`` evaluated by ``grammar.select()`` (own fields from
  the layer, earlier record keys from the layers below it, ``Peek`` from the payload bytes,
  ``Knob`` from :func:`profile_of`), concrete forms by ``grammar.resolve()``; the steps the grammar
  names as procedures (``"@tah"``, ``"@mgmt_pdu"``...) are the small functions of
  :data:`_PROCEDURES`;
* the build-time defaults (``bind_top_down``) are generated from the same rules;
* the ICRC from ``grammar.icrc_start()`` and ``Header.icrc_masks()`` (UB 2.0 §5.3.7), transport
  padding from ``grammar.PADDING`` (§6.2.1), auto fields per ``grammar.AUTO_FILL``;
* request/response matching (``answers``/``hashret``, for ``sr()``) from ``grammar.TA_PAIRS``,
  ``TA_MATCH``, ``TP_PAIRS`` and ``TP_MATCH`` (§6.2.1, §7.1).

The spec gaps are settled by a :class:`ubpkt.profile.Profile` (the module default,
:func:`set_profile`, or ``NS3`` under any ns-3-UB variant layer).
"""
from __future__ import annotations

import struct

from scapy.error import log_runtime

from scapy.config import conf
from scapy.fields import StrField
import scapy.layers.dhcp  # noqa: F401  (BOOTP/DHCP over CFG 5, UB 2.0 App F.2.2)
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import (Packet, Padding, bind_bottom_up, bind_top_down, split_bottom_up,
                          split_top_down)

from ..formats import HEADERS
from ..formats import enums as E
from ..formats import grammar as G
from ..formats.core import Header
from ..formats.derived import BYTE_LAYER_TITLES, BYTE_RUNS
from ..link.crc30 import block_crc
from ..link.plength import plength as _plength
from ..network.icrc import icrc as _icrc
from ..profile import NS3, SPEC, Profile
from ..record import LINKTYPE_NS3, LINKTYPE_UB
from .fields import TrailerBytes, TrailerInt, make_field

__all__ = ["CLASSES", "LAYER_CLASSES", "UBPacket", "set_profile", "get_profile", "profile_of",
           "layer_ids", "class_name", "tah_sequence"]


class _State:
    profile: Profile = SPEC
    udp_ports: tuple = ()


def set_profile(profile: Profile) -> None:
    """Profile used by layers that have no ns-3-UB variant below them (default: SPEC).  The UDP
    ports that carry UB (``ub_udp_ports``) are re-bound to it."""
    _State.profile = profile
    if LAYER_CLASSES:
        _bind_udp(profile)


def get_profile() -> Profile:
    return _State.profile


def class_name(layer: str) -> str:
    """``ub.btah_c`` -> ``UBBtahC``."""
    name = layer.split(".", 1)[-1]
    return "UB" + "".join(p[:1].upper() + p[1:] for p in name.split("_"))


# ------------------------------------------------------------------------------------------------
# context helpers

def _below(pkt):
    while pkt is not None:
        yield pkt
        pkt = pkt.underlayer


def _lid(pkt) -> str | None:
    return getattr(pkt, "ub_layer", None)


#: The LCH forms (UB 2.0 §4.3.3.1) are one grammar node, ``ub.lch``, read by the @dllcb step.
_LCH_FORMS = frozenset({"ub.lch", "ub.lch_crd_ack", "ub.lch_block_mode_chg"})


def _node(pkt) -> str | None:
    """The grammar's (logical) name of a layer: ``ub.lph_ns3`` -> ``ub.lph``."""
    lid = _lid(pkt)
    if not lid:
        return None
    return "ub.lch" if lid in _LCH_FORMS else G.logical(lid)


def profile_of(pkt) -> Profile:
    """The profile governing ``pkt``: NS3 above any ns-3-UB variant layer, else the default."""
    for layer in _below(pkt):
        p = getattr(type(layer), "ub_profile", None)
        if p is not None:
            return p
    return _State.profile


def _earlier(pkt, key: str):
    """The value of record key ``ub.<prefix>.<field>`` in ``pkt`` or the nearest layer below it
    that declares it (None: no such layer)."""
    base, _, name = key.rpartition(".")
    for layer in _below(pkt):
        h = getattr(layer, "ub_header", None)
        if h is not None and h.base == base and name in h.index:
            return _value(layer, name)
    return None


def _value(layer, name: str):
    """Field ``name`` of ``layer``: as set (or dissected), else as the layer above implies it.
    The grammar lets a header's rule look back at a field of the one below (``ub.nth`` after
    ``ub.lph.cfg``, ``ub.cetph`` after ``ub.rtph.tpopcode``...): when that field is left unset,
    the value whose case leads to the layers actually stacked is used (CFG 4 under an NTH and
    IPv6, CFG 9 under a CNA16 and a TAH, TPSACK_CC under a CETPH and a SAETPH)."""
    value = layer.getfieldval(name)
    if name in layer.fields or layer.ub_header is None:
        return value
    upper = layer.payload
    rule = G.NEXT.get(_node(upper)) if isinstance(upper, UBPacket) else None
    if not isinstance(rule, G.Switch) or not upper.payload:
        return value
    key = f"{layer.ub_header.base}.{name}"
    if rule.key != key:
        return value
    above = upper.payload

    def leads(v) -> bool:
        t = G.select(rule, upper.getfieldval, lambda k: v if k == key else _earlier(upper, k),
                     _peeker(b""), profile_of(upper))
        return _target_matches(t, above)

    if leads(value):
        return value
    for v in rule.cases:
        if leads(v):
            return v
    return value


def _find_below(pkt, node: str):
    for layer in _below(pkt):
        if _node(layer) == node:
            return layer
    return None


def _peeker(data: bytes):
    return lambda off: data[off] if 0 <= off < len(data) else None


def _select(pkt, rule, data: bytes):
    """``grammar.select`` of ``rule`` after layer ``pkt``, ``data`` being the bytes after it."""
    return G.select(rule, lambda name: _value(pkt, name), lambda key: _earlier(pkt, key),
                    _peeker(data), profile_of(pkt))


#: layer id -> class, filled below
CLASSES: dict[str, type] = {}          # class name -> class
LAYER_CLASSES: dict[str, type] = {}    # layer id -> class
L = LAYER_CLASSES


def _layer_class(layer: str, prof: Profile, compact: bool = False):
    return L.get(G.resolve(layer, prof, compact))


#: The transport headers (those that carry padding, UB 2.0 §6.2.1).
_TPH_NODES = frozenset(G.PADDING.headers)
#: The concrete forms that only a compact-TAH packet uses (VARIANTS condition ``compact``).
_COMPACT_FORMS = frozenset(c for choices in G.VARIANTS.values() for conds, c in choices
                           if ("compact", True) in conds)


def _tah_context(under) -> tuple[bool, bool]:
    """(compact TAH forms, in an RTP data packet) for a transaction header above ``under``: the
    ``grammar.COMPACT_TAH`` rule of the nearest layer below that has one (the CNA NTH, RTPH or
    UTPH; App B, G13), full when there is none; an RTP data packet is one whose RTPH TPOpcode
    ``TP_PAIRS`` acknowledges."""
    compact = tp_data = False
    for layer in _below(under):
        rule = G.COMPACT_TAH.get(_node(layer))
        if rule is not None:
            compact = bool(_select(layer, rule, b""))
            break
    for layer in _below(under):
        if _node(layer) in _TPH_NODES:
            tp_data = _node(layer) == "ub.rtph" and layer.tpopcode in G.TP_PAIRS
            break
    return compact, tp_data


# ------------------------------------------------------------------------------------------------
# the base class

class UBPacket(Packet):
    """Base of every generated UB layer."""

    ub_header: Header | None = None
    ub_layer: str = ""
    ub_profile: Profile | None = None
    #: (field, AUTO_FILL rule) of the fields built when left unset
    ub_auto: tuple = ()
    #: transport padding (grammar.PADDING) and ICRC (grammar.ICRC_COVERAGE) owners
    ub_has_pad: bool = False
    ub_icrc_owner: bool = False

    # -- dissection -------------------------------------------------------------------------------
    def guess_payload_class(self, payload):
        cls = _next_class(self, payload)
        return cls if cls is not None else conf.raw_layer

    def pre_dissect(self, s):
        if type(self).ub_icrc_owner:
            self._ub_icrc_raw = None
            h = self.ub_header
            nlp = h.unpack(s)[h.index["nlp"]] if "nlp" in h.index and len(s) >= h.size else None
            if _icrc_here(self, nlp, s):
                need = (0 if _node(self) in G.TRANSPORT_OVER_UDP else h.size) + 4
                if len(s) >= need:
                    self._ub_icrc_raw = s[-4:]
                    s = s[:-4]
                else:
                    self._ub_icrc_raw = False       # expected, but no room: none
        return s

    def post_dissect(self, s):
        cls = type(self)
        if not (cls.ub_has_pad or cls.ub_icrc_owner):
            return s
        if cls.ub_has_pad:
            n = self.getfieldval(G.PADDING.field) or 0
            if n and len(s) >= n:
                self.fields["pad"] = s[-n:]
                s = s[:-n]
            else:
                self.fields["pad"] = b""
                if n:
                    # as ubpkt.dissect and the Lua plugin report it (UB 2.0 §6.2.1)
                    log_runtime.warning("%s: Padding %d points into the headers (%d bytes "
                                        "after them)", cls.__name__, n, len(s))
        raw_icrc = getattr(self, "_ub_icrc_raw", None)
        if raw_icrc is False:
            self.fields["icrc"] = False
        elif raw_icrc is not None:
            self.fields["icrc"] = int.from_bytes(raw_icrc, profile_of(self).icrc_byteorder)
        # the trailers are re-appended by post_build, which scapy skips for cached layers
        self.raw_packet_cache = None
        return s

    # -- building ---------------------------------------------------------------------------------
    def post_build(self, pkt, pay):
        # a field the layer above looks back at, left unset: the value the stack implies
        upper = self.payload
        rule = G.NEXT.get(_node(upper)) if isinstance(upper, UBPacket) else None
        if isinstance(rule, G.Switch) and "." in rule.key and self.ub_header is not None:
            base, _, name = rule.key.rpartition(".")
            if base == self.ub_header.base and name not in self.fields:
                v = _value(self, name)
                if v != self.getfieldval(name):
                    pkt = self._patch(pkt, name, v)
        for name, rule in type(self).ub_auto:
            if self.getfieldval(name) is None:
                pkt, pay = _FILL[rule](self, name, pkt, pay)
        if not type(self).ub_has_pad and not type(self).ub_icrc_owner:
            return pkt + pay
        if type(self).ub_has_pad:
            pad = self.getfieldval("pad")
            if pad is None:
                h = self.ub_header
                pad = b"\0" * h.unpack(pkt[:h.size])[h.index[G.PADDING.field]]
            pay = pay + bytes(pad)
        body = pkt + pay
        value = self.getfieldval("icrc")
        if value is False:                      # icrc=False: no ICRC at all
            return body
        if value is None:
            if not _icrc_here(self, None, body):
                return body
            value = _icrc_value(self, body)
        return body + (value & 0xFFFFFFFF).to_bytes(4, profile_of(self).icrc_byteorder)

    def _patch(self, pkt: bytes, name: str, value: int) -> bytes:
        """``pkt`` (this layer's header bytes first) with field ``name`` set to ``value``."""
        h = self.ub_header
        i = h.index[name]
        f, off = h.fields[i], h.offsets[i]
        shift = h.bits - off - f.bits
        mask = (1 << f.bits) - 1
        v = int.from_bytes(pkt[:h.size], "big")
        v = (v & ~(mask << shift)) | ((value & mask) << shift)
        return v.to_bytes(h.size, "big") + pkt[h.size:]

    # -- requests and responses (scapy sr()) ------------------------------------------------------
    def hashret(self):
        node = _node(self)
        if node in ("ub.btah", "ub.atah"):
            return _ta_hashret(self)
        if node == "ub.rtph":
            return _tp_hashret(self)
        return self.payload.hashret()

    def answers(self, other):
        node = _node(self)
        if node in ("ub.btah", "ub.atah"):
            return _ta_answers(self, other)
        if node == "ub.rtph":
            return _tp_answers(self, other)
        if node == "ub.lch":            # a DLL control block answers no packet
            return 0
        swap = _ADDRESS_SWAP.get(node)
        if swap is not None and conf.checkIPaddr and isinstance(other, UBPacket) and \
                _node(other) == node:
            a, b = swap
            if self.getfieldval(a) != other.getfieldval(b) or \
                    self.getfieldval(b) != other.getfieldval(a):
                return 0
        return super().answers(other)

    def mysummary(self):
        """The layer, its opcode (first enum field) and the sequence number that identifies the
        packet: PSN on a TP header, TASSN on a transaction header (what Wireshark's Info shows)."""
        h = self.ub_header
        parts = [type(self).__name__]
        if h is not None and h.enum_fields:
            name = h.enum_fields[0][1]
            parts.append(self.sprintf(f"%{type(self).__name__}.{name}%"))
        tp = None
        if h is not None:
            for fld, label in _SUMMARY_NUMBERS:
                if fld in h.index:
                    parts.append(f"{label}={self.getfieldval(fld)}")
                    if label == "tassn":
                        tp = self.underlayer
                        while tp is not None and not (isinstance(tp, UBPacket) and
                                                      tp.ub_header is not None and
                                                      "psn" in tp.ub_header.index):
                            tp = tp.underlayer
        # scapy shows only the innermost summary unless it names the layers it needs: a
        # transaction header asks for its TP header's (opcode and PSN) too
        return (" ".join(parts), [type(tp)]) if tp is not None else " ".join(parts)

    def add_underlayer(self, underlayer):
        super().add_underlayer(underlayer)
        # stacked on UDP (UDP()/UBRtph()): UDP's unset source port comes from the flow, as RoCEv2
        # stacks do, instead of scapy's 53 (which opens as DNS in Wireshark)
        if isinstance(underlayer, UDP) and _node(self) in G.TRANSPORT_OVER_UDP:
            base = type(self)._overload_fields.get(UDP)
            if base is not None:
                over = dict(type(self)._overload_fields)
                over[UDP] = dict(base, sport=flow_source_port(self))
                object.__setattr__(self, "overload_fields", over)


# ------------------------------------------------------------------------------------------------
# dispatch: grammar.NEXT, then the procedures

def _next_class(pkt, payload: bytes):
    node = _node(pkt)
    rule = G.NEXT.get(node, _NOT_IN_NEXT)
    if rule is not _NOT_IN_NEXT:
        return _target_class(pkt, _select(pkt, rule, payload), payload)
    cont = _CONTINUE.get(pkt.ub_layer)
    return cont(pkt, payload) if cont is not None else None


_NOT_IN_NEXT = object()


def _target_class(pkt, target, payload: bytes):
    if target is G.END or target == G.RESERVED:
        return None
    if target.startswith("@"):
        proc = _PROCEDURES.get(target)
        return proc(pkt, payload) if proc is not None else None
    return _layer_class(target, profile_of(pkt))


# -- @ipv4, @ipv6 (RFC 791/8200) -----------------------------------------------------------------

def _ip_version(version: int):
    # the IP header the rule names, when its version nibble agrees (else: payload)
    cls = IP if version == 4 else IPv6
    return lambda pkt, pay: cls if pay and pay[0] >> 4 == version else None


# -- @tah and the extension headers (UB 2.0 §7.2, §7.4) ------------------------------------------

def _tah_class(under, pay):
    """The TAH by TAOpcode: a request's BTAH or a response's ATAH, full or compact."""
    if not pay:
        return None
    op = pay[0]
    prof = profile_of(under)
    compact, tp_data = _tah_context(under)
    lay = "ub.btah"
    if op in E.TA_RESPONSES and not (tp_data and not compact and prof.ns3_layouts):
        lay = "ub.atah"
    return _layer_class(lay, prof, compact)


def _tp_response_atah(pkt, pay):
    # profile G10: an ATAH after a TP response when there is room for one
    if len(pay) >= G.TP_RESPONSE_ATAH_BYTES:
        return _tah_class(pkt, pay)
    return None


def tah_sequence(tah) -> list[str]:
    """Layer ids (and ``@beetah``) of the extension headers that follow the transaction header
    ``tah``: ``grammar.ta_sequence`` for its TAOpcode and flags (UB 2.0 §7.4 Tables 7-2/7-4)."""
    prof = profile_of(tah)
    lid = _lid(tah)
    compact = lid in _COMPACT_FORMS
    op = tah.taopcode
    if G.logical(lid) == "ub.atah":
        return G.ta_sequence(op, True, {}, prof, compact)
    if op in E.TA_RESPONSES:
        # ns-3-UB dialect: a TA response inside an RTP data packet, as a full BTAH + MAETAH
        return [G.resolve(s, prof, compact) for s in G.TA_RESPONSE_IN_DATA_NS3]
    return G.ta_sequence(op, False, {"tv_en": tah.tv_en, "ud_flag": tah.ud_flag}, prof,
                         compact)


def _beetah_len(avail: int):
    # UB 2.0 §7.2.10: one BE bit per payload byte of a 64..1024-byte payload
    n = avail * 8 // 9
    if n * 9 != avail * 8 or n not in (64, 128, 256, 512, 1024):
        return None
    return n // 8


_STEPS = {"@beetah": lambda pkt, pay: L["ub.beetah"] if _beetah_len(len(pay)) is not None
          else None}


def _seq_next(pkt, pay):
    n = 0
    tah = pkt
    while tah is not None and _node(tah) not in ("ub.btah", "ub.atah"):
        n += 1
        tah = tah.underlayer
    if tah is None:
        return None
    seq = tah_sequence(tah)
    if n >= len(seq):
        return None
    step = seq[n]
    if step.startswith("@"):
        proc = _STEPS.get(step)
        return proc(pkt, pay) if proc is not None else None
    return L.get(step)


# -- @mgmt_pdu (UB 2.0 §10.4.3.1) -----------------------------------------------------------------

def _mgmt_next(pkt, pay):
    n = pkt.pdu_length or 0
    if n > len(pay):
        return None
    proc = G.MGMT_PDU_PROCS.get((pkt.code, pkt.sub_code, pkt.rsp))
    if proc is not None:
        return _PROCEDURES[proc](pkt, pay[:n]) or (L["ub.pdu"] if n else None)
    lay = G.mgmt_pdu(pkt.code, pkt.sub_code, pkt.rsp, n)
    if lay is not None and lay in L and n >= HEADERS[lay].size:
        return L[lay]
    return L[_pdu_bytes_layer(pkt)] if n else None


def _pdu_bytes_layer(mgmt) -> str:
    """The byte-run layer of a management PDU's body: another protocol's (grammar.MGMT_PAYLOADS)
    or ``ub.pdu``."""
    return G.MGMT_PAYLOADS.get((mgmt.code, mgmt.sub_code), "ub.pdu")


def _pdu_rest(pkt) -> int:
    m = pkt.underlayer
    if _node(m) == "ub.mgmtetah":
        return m.pdu_length or 0
    if m is not None and _node(m.underlayer) == "ub.mgmtetah":
        return (m.underlayer.pdu_length or 0) - m.ub_header.size
    return 0


def _pdu_header_next(pkt, pay):
    return L[_pdu_bytes_layer(pkt.underlayer)] if _pdu_rest(pkt) > 0 and pay else None


# -- enumeration (UB 2.0 §10.4.3.2) ---------------------------------------------------------------

def _scan_path_len(scan) -> int | None:
    width = {0: 4, 1: 8, 2: 16}.get(scan.type)
    if width is None:
        return None
    return -(-(scan.hops * width) // 32) * 4


def _scan_paths(pkt, pay):
    return L["ub.scan_fwd"] if _scan_path_len(pkt) is not None else None


# -- DLL control blocks (UB 2.0 §4.3.3) -----------------------------------------------------------

def _lch_class(buf, ns3: bool):
    kind = E.DLLCB_TYPES.get((buf[2] >> 4, buf[2] & 0xF))
    lay = {"Crd_Ack": "ub.lch_crd_ack", "Block_Mode_Chg": "ub.lch_block_mode_chg"}.get(kind,
                                                                                      "ub.lch")
    return _LCH_NS3[lay] if ns3 else L[lay]


def _dllcb_bounds(pkt, remaining: int):
    """(offset of ``remaining`` bytes from the LCH, body end, BCRC expected) or None."""
    lch = _find_below(pkt, "ub.lch")
    total = getattr(lch, "_ub_total", None)
    if total is None:
        return None
    prof = profile_of(lch)
    size = ((lch.clength or 0) + 1) * 20
    body_end = min(size, total) - (4 if prof.dllcb_bcrc else 0)
    return total - remaining, body_end, prof.dllcb_bcrc and size <= total


def _dllcb_tail(pkt, pay):
    b = _dllcb_bounds(pkt, len(pay))
    if b is None:
        return None
    off, body_end, bcrc = b
    if off < body_end:
        return L["ub.cb_body"]
    if bcrc and len(pay) >= 4:
        return L["ub.bcrc"]
    return None


def _dllcb(pkt, pay):
    prof = profile_of(pkt)
    kind = E.DLLCB_TYPES.get((pkt.ctrl, pkt.sub_ctrl))
    if kind == "Crd_Ack":
        return _layer_class("ub.crd_ack", prof)
    if kind in ("Retry_Req", "Retry_Ack", "Lane_Manage", "Init", "Param_Exchg"):
        return L["ub." + kind.lower()]
    if kind in ("Null", "NOB", "Retry_Idle", "Block_Mode_Chg"):
        return L["ub.cb_rsvd"]
    return _dllcb_tail(pkt, pay)


def _param_next(pkt, pay):
    b = _dllcb_bounds(pkt, len(pay))
    if b is not None and b[1] - b[0] >= 20:
        return L["ub.param_exchg_flit"]
    return _dllcb_tail(pkt, pay)


def _cb_body_len(pkt, s):
    b = _dllcb_bounds(pkt.underlayer, len(s))
    return 0 if b is None else b[1] - b[0]


# -- TLV runs: LLDP (0x0109), ULAP/LACP (0x0104) over CFG 5 (App F.2); topology TLVs --------------

def _tlv_start(tlv_layer):
    return lambda pkt, pay: L.get(tlv_layer) if len(pay) >= 2 else None


def _tlv_value_next(tlv_layer):
    def nxt(pkt, pay):
        under = pkt.underlayer
        if _lid(under) == tlv_layer and under.tlv_type == 0:
            return None
        return L.get(tlv_layer) if len(pay) >= 2 else None
    return nxt


def _tlv_next(value_layer, value_len):
    def nxt(pkt, pay):
        n = value_len(pkt)
        if n > 0:
            return L.get(value_layer)
        if n < 0 or pkt.tlv_type == 0:
            return None
        return type(pkt) if len(pay) >= 2 else None
    return nxt


# -- the rest ------------------------------------------------------------------------------------

def _ciph_icv(pkt):
    return profile_of(pkt).ciph_icv_len


def _npic_next(pkt, pay):
    n = 0
    layer = pkt
    while _lid(layer) == "ub.npic_entry":
        n += 1
        layer = layer.underlayer
    if _node(layer) == "ub.npic" and n < (layer.sum or 0):
        return L["ub.npic_entry"]
    return None


def _scan_tlv_start(pkt, pay):
    """A topology TLV: by its Type byte the TLV header grammar.SCAN_TLV_VALUES declares when its
    Length covers it, else the generic Type/Length (UB 2.0 §10.4.3.2 Table 10-9)."""
    if len(pay) < 2:
        return None
    value = G.SCAN_TLV_VALUES.get(pay[0])
    if value is not None and HEADERS[value].size <= pay[1] <= len(pay):
        return L[value]
    return L["ub.scan_tlv"]


def _scan_tlv_rest(pkt) -> int:
    """Bytes of a topology TLV's value after its declared fields."""
    under = pkt.underlayer
    return max(0, (under.length or 0) - HEADERS[_lid(under)].size)


def _scan_tlv_done(pkt, pay):
    """After a declared topology TLV: the rest of its Length as bytes, or the next TLV."""
    if (pkt.length or 0) > HEADERS[_lid(pkt)].size:
        return L["ub.scan_tlv_value"]
    return _scan_tlv_start(pkt, pay)


#: The grammar's procedures (grammar.PROCEDURES), as scapy dispatch: (layer just read, the bytes
#: after it) -> the class of the next layer or None (payload).  ``@udp`` is scapy's UDP
#: dispatch, bound to the profile's UB ports (:func:`_bind_udp`).
_PROCEDURES = {
    "@ipv4": _ip_version(4), "@ipv6": _ip_version(6),
    "@tah": _tah_class,
    "@tp_response_atah": _tp_response_atah,
    "@saetph_bitmap": lambda p, pay: L["ub.saetph_bitmap"] if p.bitmapsize in
    E.SACK_BITMAP_BITS else None,
    "@ciph_body": lambda p, pay: L["ub.ciph_protected"] if len(pay) >= _ciph_icv(p) else None,
    "@scan_paths": _scan_paths,
    "@scan_tlvs": _scan_tlv_start,
    "@npic_entries": _npic_next,
    "@lldp_tlvs": _tlv_start("ub.lldp_tlv"),
    "@lacp_tlvs": _tlv_start("ub.lacp_tlv"),
    "@mgmt_pdu": _mgmt_next,
    "@dllcb": _dllcb,
}
#: The layers a procedure starts with (bind_top_down targets of rules that lead to it).
_PROCEDURE_FIRST = {
    "@tah": ("ub.btah", "ub.atah"), "@saetph_bitmap": ("ub.saetph_bitmap",),
    "@ciph_body": ("ub.ciph_protected",), "@scan_paths": ("ub.scan_fwd",),
    "@scan_tlvs": ("ub.scan_tlv", *G.SCAN_TLV_VALUES.values()), "@npic_entries": ("ub.npic_entry",),
    "@lldp_tlvs": ("ub.lldp_tlv",), "@lacp_tlvs": ("ub.lacp_tlv",),
}

#: Layers inside a procedure (absent from grammar.NEXT): what follows them.
_CONTINUE: dict = {
    "ub.npic_entry": _npic_next,
    "ub.scan_fwd": lambda p, pay: L["ub.scan_ret"] if p.underlayer.r else L["ub.scan_pdu"],
    "ub.scan_ret": lambda p, pay: L["ub.scan_pdu"],
    "ub.scan_tlv": lambda p, pay: L["ub.scan_tlv_value"] if (p.length or 0) >= 2 else None,
    "ub.scan_tlv_value": _scan_tlv_start,
    "ub.lldp_tlv": _tlv_next("ub.lldp_value", lambda t: t.tlv_len or 0),
    "ub.lldp_value": _tlv_value_next("ub.lldp_tlv"),
    "ub.lacp_tlv": _tlv_next("ub.lacp_value", lambda t: (t.tlv_len or 0) - 2),
    "ub.lacp_value": _tlv_value_next("ub.lacp_tlv"),
    "ub.ciph_protected": lambda p, pay: L["ub.ciph_icv"],
    "ub.param_exchg": _param_next, "ub.param_exchg_flit": _param_next,
    "ub.cb_body": _dllcb_tail,
    "ub.lch": _dllcb, "ub.lch_crd_ack": _dllcb, "ub.lch_block_mode_chg": _dllcb,
}
for _lay in ("ub.crd_ack", "ub.crd_ack_ns3", "ub.retry_req", "ub.retry_ack", "ub.lane_manage",
             "ub.init", "ub.cb_rsvd"):
    _CONTINUE[_lay] = _dllcb_tail
for _lay in set(G.MGMT_PDUS.values()):
    _CONTINUE[_lay] = _pdu_header_next
for _lay in G.SCAN_TLV_VALUES.values():
    _CONTINUE[_lay] = _scan_tlv_done


def _ta_layers() -> set:
    """Every concrete layer of a TA sequence (UB 2.0 §7.4), the TAHs included."""
    logical = {"ub.btah", "ub.atah", "ub.udetah", *G.TA_RESPONSE_IN_DATA_NS3}
    for table in (G.TA_REQUEST_HEADERS, G.TA_RESPONSE_HEADERS):
        for steps in table.values():
            for st in steps:
                st = st[2] if isinstance(st, tuple) else st
                logical.add("ub.beetah" if st == "@beetah" else st)
    out = set()
    for lay in logical:
        out.add(lay)
        out.update(c for _, c in G.VARIANTS.get(lay, ()))
    return out


for _lay in _ta_layers():
    if _lay not in G.NEXT:
        _CONTINUE[_lay] = _seq_next


def _target_matches(target, layer) -> bool:
    """Whether ``layer`` is what ``target`` (a grammar target) reads first."""
    if not isinstance(target, str) or target == G.RESERVED:
        return False
    if target in ("@ipv4", "@ipv6"):
        return isinstance(layer, IPv6 if target == "@ipv6" else IP)
    if target.startswith("@"):
        return _lid(layer) is not None and any(
            _node(layer) == G.logical(first) for first in _PROCEDURE_FIRST.get(target, ()))
    if isinstance(layer, UBPacket):
        return _node(layer) == target
    return _SCAPY_IDS.get(type(layer).__name__) == target


# ------------------------------------------------------------------------------------------------
# ICRC (UB 2.0 §5.3.7): where grammar.icrc_start says the coverage starts; masks from the
# declarations (Header.icrc_masks)

def _declared(layer) -> Header | None:
    h = getattr(layer, "ub_header", None)
    if h is not None:
        return h
    return HEADERS.get(_SCAPY_IDS.get(type(layer).__name__, ""))


def _udp_carries_ub(udp, prof: Profile) -> bool:
    return udp.dport in prof.ub_udp_ports or prof.any_udp_port_is_ub


def _leads_to(under, pkt, data: bytes) -> bool:
    """Whether the grammar reaches ``pkt`` from the layer ``under`` it (a layer crafted where
    the grammar does not put it owns no ICRC)."""
    rule = G.NEXT.get(_node(under))
    if rule is None:
        return False
    target = _select(under, rule, data)
    return isinstance(target, str) and target == _node(pkt)


def _icrc_here(pkt, nlp, data: bytes) -> bool:
    """Whether the ICRC coverage of this packet starts at ``pkt`` (at the IP header below it for
    a transport header over UDP): the ICRC then closes ``pkt`` and its payload.  ``nlp``: the
    NTH's NLP when read ahead of the dissection; ``data``: this layer's bytes onwards."""
    prof = profile_of(pkt)
    node = _node(pkt)
    under = pkt.underlayer
    if node in G.TRANSPORT_OVER_UDP:
        if not isinstance(under, UDP):
            return False
        ip = under.underlayer
        start = "ip" if isinstance(ip, IP) else "ipv6" if isinstance(ip, IPv6) else None
        return start is not None and not _outer_icrc(ip) and G.icrc_start(
            start, lambda key: _earlier(ip, key), prof, ub_udp=_udp_carries_ub(under, prof))
    if under is None or not _leads_to(under, pkt, data):
        return False
    if nlp is None and "nlp" in pkt.ub_header.index:
        nlp = pkt.nlp
    return G.icrc_start(node, lambda key: _earlier(under, key), prof, nlp=nlp)


def _outer_icrc(ip) -> bool:
    """Whether a UB header below the IP header ``ip`` already covers it (a CFG-5 frame carrying
    IP under ``cfg5_icrc``): that ICRC is the frame's only one; the inner IP/UDP open no
    second section (UB 2.0 §5.3.7)."""
    for layer in _below(ip.underlayer):
        if isinstance(layer, UBPacket) and type(layer).ub_icrc_owner:
            if hasattr(layer, "_ub_icrc_raw"):         # dissected: what pre_dissect found
                return layer._ub_icrc_raw is not None
            return layer.getfieldval("icrc") is not False and _icrc_here(layer, None, b"")
    return False


def _inner_masks(owner, body: bytes) -> list:
    """The masks of the IP and UDP headers inside the section ``owner`` opens (right after its
    header, as a CFG-5 frame carries them): hop-varying fields are masked wherever they are."""
    masks, off, layer = [], owner.ub_header.size, owner.payload
    while isinstance(layer, (IP, IPv6, UDP)) and off < len(body):
        masks += _declared(layer).icrc_masks(off)
        if isinstance(layer, IP):
            off += (body[off] & 0x0F) * 4
        else:
            off += 40 if isinstance(layer, IPv6) else 8
        layer = layer.payload
    return masks


def _icrc_value(owner, body: bytes) -> int:
    if _node(owner) in G.TRANSPORT_OVER_UDP:
        return _ip_icrc(owner, body)
    masks = owner.ub_header.icrc_masks(0) + _inner_masks(owner, body)
    return _icrc(body, 0, len(body), masks)


def _ip_icrc(tph, body: bytes) -> int:
    """ICRC of an IP-carried UB packet whose transport part (up to its padding) is ``body``:
    the IP and UDP headers are built the way their own layers will build them."""
    inner = body + b"\0\0\0\0"
    layer = tph.underlayer
    placed = []             # (layer, bytes from it to the end)
    while layer is not None and not isinstance(layer, (IP, IPv6)):
        inner = layer.post_build(layer.self_build(), inner)
        placed.append((layer, len(inner)))
        layer = layer.underlayer
    if layer is None:
        return 0
    whole = layer.post_build(layer.self_build(), inner)
    placed.append((layer, len(whole)))
    masks = []
    for lay, size in placed:
        h = _declared(lay)
        if h is not None:
            masks += h.icrc_masks(len(whole) - size)
    return _icrc(whole, 0, len(whole) - 4, masks)


# ------------------------------------------------------------------------------------------------
# auto fields (grammar.AUTO_FILL): rule name -> (layer, field, header bytes, payload bytes) ->
# (header bytes, payload bytes).  The IP/UDP rules are scapy's own; ``ub_udp_port`` is the UDP
# binding; ``icrc`` is the trailer built by UBPacket.post_build.

def _fill_tp_padding(layer, name, pkt, pay):
    pad = layer.getfieldval("pad")
    n = (len(pad) if pad is not None else -(len(pkt) + len(pay))) % G.PADDING.align
    return layer._patch(pkt, name, n), pay


def _fill_pdu_length(layer, name, pkt, pay):
    return layer._patch(pkt, name, len(pay)), pay


def _fill_plength(layer, name, pkt, pay):
    """PLENGTH from the packet length (UB 2.0 §4.3.2.2.2), or 0 where the profile does not use
    it (check_plength off: ns-3-UB), as the encoder does."""
    prof = profile_of(layer)
    if not prof.check_plength:
        return layer._patch(pkt, name, 0), pay
    try:
        value = _plength(len(pkt) + len(pay), prof.crc_mode)
    except ValueError:
        value = 0
    return layer._patch(pkt, name, value), pay


def _fill_bcrc(layer, name, pkt, pay):
    """CRC30 over the block bytes before the BCRC (UB 2.0 §4.7.2), from the LCH up."""
    lch = _find_below(layer, "ub.lch")
    if lch is None:
        return pkt, pay
    parts, x = [], layer.underlayer
    while x is not None:
        parts.append(x.self_build())
        if x is lch:
            break
        x = x.underlayer
    info = (layer.rsvd1 or 0) << 1 | (layer.error_flag or 0)
    value = block_crc(b"".join(reversed(parts)), info, profile_of(lch).bcrc_covers_info)
    return layer._patch(pkt, name, value), pay


_FILL = {"tp_padding": _fill_tp_padding, "mgmt_pdu_length": _fill_pdu_length,
         "plength": _fill_plength, "bcrc": _fill_bcrc}
#: AUTO_FILL rules carried out elsewhere: by scapy's IP/UDP layers, the UDP binding, the trailer
_FILL_ELSEWHERE = {"ipv4_ihl", "ipv4_total_length", "ipv4_checksum", "ipv6_payload_length",
                   "udp_length", "ub_udp_port", "icrc"}


# ------------------------------------------------------------------------------------------------
# requests and responses (scapy sr(), PacketList.sr()): UB 2.0 §7.1 (TA), §6.2.1 (TP)

_MANAGEMENT = next(op for op, steps in G.TA_REQUEST_HEADERS.items()
                   if steps and steps[0] == "ub.mgmtetah")
#: Hop-by-hop address pairs a response swaps (checked when conf.checkIPaddr, as scapy's IP does).
_ADDRESS_SWAP = {"ub.cna16": ("scna", "dcna"), "ub.cna24": ("scna", "dcna"),
                 "ub.eidh40": ("seid", "deid"), "ub.eidh256": ("seid", "deid")}


def _ta_hashret(tah) -> bytes:
    return struct.pack("!H", tah.ini_tassn or 0)


def _ta_keys_match(rsp, req) -> bool:
    """TA_MATCH fields that both headers carry agree (on the narrower width, for the ns-3-UB
    ATAH's shorter INI_RC_ID)."""
    hr, hq = rsp.ub_header, req.ub_header
    for name in G.TA_MATCH:
        if name in hr.index and name in hq.index:
            bits = min(hr.by_name[name].bits, hq.by_name[name].bits)
            if ((rsp.getfieldval(name) or 0) ^ (req.getfieldval(name) or 0)) & ((1 << bits) - 1):
                return False
    return True


def _ta_answers(rsp, req) -> int:
    """A TA response answers the request whose TAOpcode asks for it (``ta_response_opcode``)
    with the same TA_MATCH fields; a Management response (MGMTETAH RSP set) answers the request
    of the same code and sub code."""
    if not isinstance(req, UBPacket) or _node(req) != "ub.btah" or \
            req.taopcode in E.TA_RESPONSES:
        return 0
    if rsp.taopcode in E.TA_RESPONSES:
        no_taack = req.getfieldval("no_taack") if "no_taack" in req.ub_header.index else 0
        if rsp.taopcode != G.ta_response_opcode(req.taopcode, no_taack or 0):
            return 0
    elif rsp.taopcode == req.taopcode == _MANAGEMENT and _node(rsp) == "ub.btah":
        mq, mr = req.getlayer(L["ub.mgmtetah"]), rsp.getlayer(L["ub.mgmtetah"])
        if mq is None or mr is None or not mr.rsp or mq.rsp or \
                (mr.code, mr.sub_code) != (mq.code, mq.sub_code):
            return 0
    else:
        return 0
    return int(_ta_keys_match(rsp, req))


def _tp_hashret(tph) -> bytes:
    # the channel, either way round: a response swaps SrcTPN and DstTPN (TP_MATCH)
    a, b = sorted((tph.srctpn or 0, tph.dsttpn or 0))
    return struct.pack("!II", a, b)


def _tp_answers(rsp, req) -> int:
    """On the swapped channel (TP_MATCH): a TP response (TP_PAIRS: TPACK/TPNAK/TPSACK, plain or
    _CC; under the ns-3-UB dialect also TP_RESPONSES_NS3) answers the RTP data packet of the same
    PSN; an RTP data packet answers one when its transaction layer does (a TA response)."""
    if not isinstance(req, UBPacket) or _node(req) != "ub.rtph":
        return 0
    for mine, theirs in G.TP_MATCH:
        if rsp.getfieldval(mine) != req.getfieldval(theirs):
            return 0
    responses = G.TP_PAIRS.get(req.tpopcode, ())
    if responses and profile_of(rsp).ns3_layouts:
        responses += G.TP_RESPONSES_NS3         # ns-3-UB's TPNAK, the reserved TPOpcode 4
    if rsp.tpopcode in responses:
        return int(rsp.psn == req.psn)
    if rsp.tpopcode == req.tpopcode and req.tpopcode in G.TP_PAIRS:
        return rsp.payload.answers(req.payload)
    return 0


# ------------------------------------------------------------------------------------------------
# mixins of a few layers

class _LphMixin:
    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kargs):
        # grammar.START: a DLL control block's LCH has CFG 0 where an LPH has its CFG
        if _pkt is not None and len(_pkt) >= 3:
            start = G.START[LINKTYPE_NS3 if cls.ub_profile is not None else LINKTYPE_UB]
            if G.select(start, None, None, _peeker(_pkt), cls.ub_profile or _State.profile) \
                    in ("@dllcb", "ub.lch"):
                return _lch_class(_pkt, ns3=cls.ub_profile is not None)
        return cls


class _TphMixin:
    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kargs):
        # grammar.TPH: RTPH or UTPH by the TPOpcode (UB 2.0 §6.2.1), as UDP carries them
        if _pkt:
            target = G.select(G.TPH, None, None, _peeker(_pkt), _State.profile)
            if isinstance(target, str) and target in L:
                return L[target]
        return cls


class _LchMixin:
    def pre_dissect(self, s):
        self._ub_total = len(s)
        return s


class _NthMixin:
    def do_dissect_payload(self, s):
        super().do_dissect_payload(s)
        # @udp: ns-3-UB takes every UDP datagram of a native IP packet for UB, whatever its port
        if not profile_of(self).any_udp_port_is_ub:
            return
        udp = self.getlayer(UDP)
        if udp is None or isinstance(udp.payload, UBPacket):
            return
        data = bytes(udp.payload) if not isinstance(udp.payload, Padding) else b""
        if not data:
            return
        udp.remove_payload()
        udp.add_payload(L[G.TRANSPORT_OVER_UDP[0]](data, _internal=1, _underlayer=udp))


# ------------------------------------------------------------------------------------------------
# class generation

_MIXINS = {"ub.lph": _LphMixin, "ub.lph_ns3": _LphMixin, "ub.lch": _LchMixin,
           "ub.lch_crd_ack": _LchMixin, "ub.lch_block_mode_chg": _LchMixin, "ub.nth": _NthMixin,
           G.TRANSPORT_OVER_UDP[0]: _TphMixin}
_NS3_LAYERS = frozenset(h.layer for h in HEADERS.values() if h.name.endswith("_ns3"))
#: defaults that make a bare layer meaningful (not part of the declarations)
_DEFAULTS = {"ub.rtph": {"tpopcode": 1}, "ub.atah": {"taopcode": 0x11},
             "ub.atah_c": {"taopcode": 0x11}, "ub.atah_ns3": {"taopcode": 0x11},
             "ub.lldp_eth": {"etype": 0x88CC}}
#: the layers that own an ICRC: where the coverage starts, or the transport header over UDP
#: for the IP starts (scapy's IP layers are not ours)
_ICRC_NODES = frozenset(c.start for c in G.ICRC_COVERAGE if c.start.startswith("ub.")) | (
    frozenset(G.TRANSPORT_OVER_UDP) if any(c.needs_ub_udp for c in G.ICRC_COVERAGE)
    else frozenset())


def _peek_defaults() -> dict:
    """layer -> {field: value}: a layer that a Peek case picks by the bits of one of its own
    fields defaults to that value (``UBIpNotify6()`` builds with version 2, App F.2.3); a chain
    of whole-byte Peeks sets the field those bytes make up (``UBLldpEth()`` builds with the LLDP
    group address, profile ``cfg5_lldp_eth``)."""
    out: dict = {}
    stack = [(r, ()) for r in list(G.NEXT.values()) + list(G.START.values())]
    while stack:
        rule, path = stack.pop()
        if isinstance(rule, G.Peek) and rule.mask:
            for value, target in rule.cases.items():
                stack.append((target, path + ((rule.offset, rule.mask, rule.shift, value),)))
            stack.append((rule.default, ()))
            continue
        if isinstance(rule, (G.Switch, G.Knob)):
            stack.extend((t, ()) for t in list(rule.cases.values()) + [rule.default])
            continue
        if not path or not isinstance(rule, str) or rule.startswith("@"):
            continue
        whole = {off: v for off, mask, shift, v in path if mask == 0xFF}
        for lay in [rule] + [c for _, c in G.VARIANTS.get(rule, ())]:
            h = HEADERS.get(lay)
            if h is None:
                continue
            for f, off in zip(h.fields, h.offsets):
                for p_off, mask, shift, value in path:
                    width = bin(mask).count("1")
                    if off == p_off * 8 + 8 - shift - width and f.bits == width:
                        out.setdefault(lay, {})[f.name] = value
                if off % 8 == 0 and f.bits % 8 == 0 and f.bits > 8 and not f.le:
                    nbytes = range(off // 8, (off + f.bits) // 8)
                    if all(b in whole for b in nbytes):
                        out.setdefault(lay, {})[f.name] = int.from_bytes(
                            bytes(whole[b] for b in nbytes), "big")
    return out


_PEEK_DEFAULTS = _peek_defaults()


def _make_class(h: Header, name: str | None = None, profile: Profile | None = None):
    defaults = {**_PEEK_DEFAULTS.get(h.layer, {}), **_DEFAULTS.get(h.layer, {})}
    fields = [make_field(f, defaults.get(f.name, 0)) for f in h.fields]
    bases: list = [UBPacket]
    node = G.logical(h.layer)
    attrs = {"name": h.title, "ub_header": h, "ub_layer": h.layer, "__module__": __name__,
             "__doc__": f"{h.title} ({h.spec}), generated from ubpkt.formats {h.layer}.",
             "ub_auto": tuple((f, rule) for (lay, f), rule in G.AUTO_FILL.items()
                              if lay == h.layer and rule in _FILL)}
    if h.layer in _NS3_LAYERS or profile is not None:
        attrs["ub_profile"] = profile or NS3
    if node in _TPH_NODES:
        attrs["ub_has_pad"] = True
        fields.append(TrailerBytes("pad"))
    if node in _ICRC_NODES:
        attrs["ub_icrc_owner"] = True
    if attrs.get("ub_has_pad") or attrs.get("ub_icrc_owner"):
        fields.append(TrailerInt("icrc"))
    if h.layer in _MIXINS:
        bases.insert(0, _MIXINS[h.layer])
    attrs["fields_desc"] = fields
    for base in bases:
        # scapy only honours a dispatch_hook found in the class's own namespace
        if "dispatch_hook" in vars(base):
            attrs["dispatch_hook"] = vars(base)["dispatch_hook"]
    return type(name or class_name(h.layer), tuple(bases), attrs)


for _h in HEADERS.values():
    if _h.ns != "ub":
        continue
    _cls = _make_class(_h)
    CLASSES[_cls.__name__] = _cls
    LAYER_CLASSES[_h.layer] = _cls

# data-link control blocks seen through linktype 147 follow the ns-3-UB profile
_LCH_NS3 = {}
for _lay in sorted(_LCH_FORMS):
    _cls = _make_class(HEADERS[_lay], class_name(_lay) + "Ns3", NS3)
    CLASSES[_cls.__name__] = _cls
    _LCH_NS3[_lay] = _cls


# -- runs of bytes (derived.BYTE_RUNS): each with its length procedure ----------------------------

class _VarBytes(StrField):
    """Bytes whose length the layer computes from its context when dissecting."""

    def getfield(self, pkt, s):
        n = max(0, min(len(s), pkt.ub_length(s)))
        return s[n:], s[:n]


def _bitmap_len(pkt, s):
    under = pkt.underlayer
    bits = E.SACK_BITMAP_BITS.get(under.bitmapsize) if _node(under) == "ub.saetph" else None
    return (bits or 0) // 8


_RUN_LENGTH = {
    "ub.saetph_bitmap": _bitmap_len,
    "ub.beetah": lambda p, s: _beetah_len(len(s)) or 0,
    "ub.pdu": lambda p, s: _pdu_rest(p),
    "ub.mctp": lambda p, s: _pdu_rest(p),
    "ub.spdm": lambda p, s: _pdu_rest(p),
    "ub.scan_fwd": lambda p, s: _scan_path_len(p.underlayer) or 0,
    "ub.scan_ret": lambda p, s: _scan_path_len(p.underlayer.underlayer) or 0,
    "ub.scan_tlv_value": lambda p, s: _scan_tlv_rest(p),
    "ub.ciph_protected": lambda p, s: len(s) - _ciph_icv(p),
    "ub.ciph_icv": lambda p, s: _ciph_icv(p),
    "ub.cb_body": _cb_body_len,
    "ub.lldp_value": lambda p, s: p.underlayer.tlv_len or 0,
    "ub.lacp_value": lambda p, s: max(0, (p.underlayer.tlv_len or 0) - 2),
}

for _lay, _key in BYTE_RUNS.items():
    if not _lay.startswith("ub.") or _lay == G.PADDING.pad_layer or _lay not in _RUN_LENGTH:
        continue
    _cls = type(class_name(_lay), (UBPacket,), {
        "name": BYTE_LAYER_TITLES.get(_lay, _lay), "ub_layer": _lay, "__module__": __name__,
        "fields_desc": [_VarBytes(_key.rsplit(".", 1)[1], b"")],
        "ub_length": (lambda f: lambda self, s: f(self, s))(_RUN_LENGTH[_lay]),
        "__doc__": f"{BYTE_LAYER_TITLES.get(_lay, _lay)}: a run of bytes ({_key})."})
    LAYER_CLASSES[_lay] = _cls
    CLASSES[_cls.__name__] = _cls


# ------------------------------------------------------------------------------------------------
# bindings (build-time defaults; dissection goes through guess_payload_class above)

def _concretes(layer: str) -> list:
    """The classes of a logical layer and its variants."""
    names = [layer] + [c for _, c in G.VARIANTS.get(layer, ())]
    return [L[n] for n in dict.fromkeys(names) if n in L]


def _switch_targets(rule, fields=None):
    """(field values, target) of a rule: every case of a Switch on an own field adds its value;
    Switches on earlier headers, Peeks and Knobs add nothing (every branch is followed)."""
    fields = fields or {}
    if isinstance(rule, G.Switch):
        if "." in rule.key:
            for t in list(rule.cases.values()) + [rule.default]:
                yield from _switch_targets(t, fields)
        else:
            for value, t in rule.cases.items():
                yield from _switch_targets(t, {**fields, rule.key: value})
            yield from _switch_targets(rule.default, fields)
    elif isinstance(rule, (G.Peek, G.Knob)):
        for t in list(rule.cases.values()) + [rule.default]:
            yield from _switch_targets(t, fields)
    elif isinstance(rule, str) and rule != G.RESERVED and fields:
        for layer in _PROCEDURE_FIRST.get(rule, ()) if rule.startswith("@") else (rule,):
            yield fields, layer


def _bind():
    bound = set()

    def bind(lower, upper, fields):
        if (lower, upper) not in bound:
            bound.add((lower, upper))
            bind_top_down(lower, upper, **fields)

    # grammar.NEXT: the first case of a Switch that leads to a layer sets the selector fields
    for node, rule in G.NEXT.items():
        for fields, target in _switch_targets(rule):
            for upper in _concretes(target):
                for lower in _concretes(node):
                    bind(lower, upper, fields)
    # the first extension header a TAOpcode's request carries (UB 2.0 §7.4 Table 7-2); the
    # headers of TA_REQUEST_PREFIX come first when their BTAH flag is set (UDETAH: UD_Flag), and
    # a header the opcode always carries sets the flag that announces it (TA_FLAGS: MT_EN)
    tahs = _concretes("ub.btah")
    for kind, flag, layer in G.TA_REQUEST_PREFIX:
        if kind == "flag":
            for upper in _concretes(layer):
                for lower in tahs:
                    bind(lower, upper, {flag: 1})
    for op, steps in G.TA_REQUEST_HEADERS.items():
        if not steps or not isinstance(steps[0], str) or steps[0].startswith("@"):
            continue
        for upper in _concretes(steps[0]):
            for lower in tahs:
                fields = {"taopcode": op}
                fields.update({flag: 1 for flag, lay in G.TA_FLAGS.items()
                               if lay in steps and flag in lower.ub_header.index})
                bind(lower, upper, fields)
    # the management PDU header per code, sub code and response bit (UB 2.0 §10.4.3.1)
    for (code, sub, rsp), lay in G.MGMT_PDUS.items():
        fields = {"code": code, "rsp": rsp}
        if sub is not None:
            fields["sub_code"] = sub
        for upper in _concretes(lay):
            for lower in _concretes("ub.mgmtetah"):
                bind(lower, upper, fields)
    _bind_udp(_State.profile)
    conf.l2types.register(LINKTYPE_UB, _layer_class("ub.lph", SPEC))
    conf.l2types.register(LINKTYPE_NS3, _layer_class("ub.lph", NS3))


#: fields a layer's summary line shows after its opcode, where the header has them
_SUMMARY_NUMBERS = (("psn", "psn"), ("ini_tassn", "tassn"), ("tassn", "tassn"))

#: The default UDP source port of a UB transport header over UDP: ``FLOW_SPORT_BASE`` plus
#: ``FLOW_SPORT_BITS`` bits of entropy from the flow (a CRC-32 of the RTPH's source and
#: destination TPN; a UTPH, which names no TP channel, hashes to the same value for all), so that
#: every TP channel keeps one port (ECMP spreads channels, not packets) and the port is never a
#: well-known one.  The spec leaves the source port free (UB 2.0 §5.2.3); the rule is RoCEv2's
#: (IANA dynamic range 49152-65535).  An explicit ``UDP(sport=...)`` is kept.
FLOW_SPORT_BASE = 0xC000
FLOW_SPORT_BITS = 14


def flow_source_port(layer) -> int:
    """The default UDP source port for transport header ``layer`` (see :data:`FLOW_SPORT_BASE`)."""
    import zlib
    key = []
    for f in ("srctpn", "dsttpn"):
        v = layer.getfieldval(f) if f in layer.ub_header.index else None
        key.append(int(v or 0))
    entropy = zlib.crc32(struct.pack(">QQ", *key)) & ((1 << FLOW_SPORT_BITS) - 1)
    return FLOW_SPORT_BASE | entropy


def _bind_udp(prof: Profile) -> None:
    """@udp: UDP carries UB on the profile's ports (UB 2.0 §5.2.3), checksum 0 (§5.3)."""
    classes = [L[t] for t in G.TRANSPORT_OVER_UDP if t in L]
    for port in _State.udp_ports:
        for cls in classes:
            split_bottom_up(UDP, cls, dport=port)
    for cls in classes:
        split_top_down(UDP, cls)
    ports = tuple(prof.ub_udp_ports)
    for port in ports:
        for cls in classes:
            bind_bottom_up(UDP, cls, dport=port)
    # the destination port decides (as ubpkt.dissect reads it), before scapy's bindings on
    # either port (a source port of 53 is no DNS here)
    ours = [g for g in UDP.payload_guess if g[1] in classes]
    UDP.payload_guess = ours + [g for g in UDP.payload_guess if g[1] not in classes]
    if ports:
        for cls in classes:
            bind_top_down(UDP, cls, dport=ports[0], chksum=0)
    _State.udp_ports = ports


_bind()


def unfilled_auto_fields() -> list:
    """AUTO_FILL entries of UB layers that no scapy rule carries out (expected: none)."""
    return [(lay, f, rule) for (lay, f), rule in G.AUTO_FILL.items()
            if lay in L and rule not in _FILL and rule not in _FILL_ELSEWHERE]


# ------------------------------------------------------------------------------------------------
# layer ids of a dissected packet (the names ubpkt.dissect uses)

_SCAPY_IDS = {"Ether": "eth", "Dot1Q": "vlan", "Dot1AD": "vlan", "IP": "ip", "IPv6": "ipv6",
              "UDP": "udp", "Raw": "data", "Padding": "eth.trailer", "BOOTP": "bootp",
              "DHCP": "bootp.options"}


def layer_ids(pkt) -> list[str]:
    """The layer sequence of ``pkt`` as ``ubpkt.dissect`` names it (``ub.pad``/``ub.icrc``
    for the trailers the UB layers hold)."""
    ids, trailers, tail = [], [], []
    layer = pkt
    while layer is not None and not layer.__class__.__name__ == "NoPayload":
        lid = _lid(layer)
        if lid:
            ids.append(lid)
            if "pad" in layer.fields and layer.fields["pad"]:
                trailers.insert(0, "ub.pad")
            if layer.fields.get("icrc") is not None and layer.fields["icrc"] is not False:
                trailers.append("ub.icrc")
        else:
            name = _SCAPY_IDS.get(type(layer).__name__, type(layer).__name__)
            (tail if name == "eth.trailer" else ids).append(name)
        layer = layer.payload if layer.payload else None
    return ids + trailers + tail
