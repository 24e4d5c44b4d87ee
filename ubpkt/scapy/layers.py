"""Scapy layers for UnifiedBus, generated from the format registry (``ubpkt.formats``).

One :class:`~scapy.packet.Packet` subclass per registered UB header, named ``UB`` + the CamelCase
of its layer id (``ub.btah_c`` -> ``UBBtahC``).  Which layer follows which mirrors
:mod:`ubpkt.dissect`; the spec gaps are settled by a :class:`ubpkt.profile.Profile` (the module
default, :func:`set_profile`, or ``NS3`` under any ns-3-UB variant layer).
"""
from __future__ import annotations

from scapy.config import conf
from scapy.fields import StrField
import scapy.layers.dhcp  # noqa: F401  (BOOTP/DHCP over CFG 5, UB 2.0 App F.2.2)
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet, Padding, bind_bottom_up, bind_top_down

from ..formats import HEADERS
from ..formats import enums as E
from ..dissect import REQUEST_HEADERS, RESPONSE_HEADERS
from ..formats.core import Header
from ..link.crc30 import bcrc_crc30, crc30
from ..link.plength import plength as _plength
from ..network.icrc import icrc as _icrc, masks_for_cna16, masks_for_cna24, masks_for_ip
from ..profile import NS3, SPEC, Profile
from .fields import TrailerBytes, TrailerInt, make_field

__all__ = ["CLASSES", "LAYER_CLASSES", "UBPacket", "set_profile", "get_profile", "profile_of",
           "layer_ids", "class_name"]

UB_UDP_PORT = 4792


class _State:
    profile: Profile = SPEC


def set_profile(profile: Profile) -> None:
    """Profile used by layers that have no ns-3-UB variant below them (default: SPEC)."""
    _State.profile = profile


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


def profile_of(pkt) -> Profile:
    """The profile governing ``pkt``: NS3 above any ns-3-UB variant layer, else the default."""
    for layer in _below(pkt):
        p = getattr(type(layer), "ub_profile", None)
        if p is not None:
            return p
    return _State.profile


def _find_below(pkt, ids):
    for layer in _below(pkt):
        if _lid(layer) in ids:
            return layer
    return None


_LPH_IDS = frozenset({"ub.lph", "ub.lph_ns3"})
_CNA16_IDS = frozenset({"ub.cna16", "ub.cna16_ns3"})
_CNA_IDS = _CNA16_IDS | {"ub.cna24", "ub.cna24_ns3"}
_TAH_IDS = frozenset({"ub.btah", "ub.btah_c", "ub.atah", "ub.atah_c", "ub.atah_ns3"})
_TPH_IDS = frozenset({"ub.rtph", "ub.utph"})


def _cfg_below(pkt):
    lph = _find_below(pkt, _LPH_IDS)
    return None if lph is None else lph.cfg


def _tah_context(under) -> tuple[bool, bool]:
    """(full TAH form, in an RTP data packet) for a transaction header right above ``under``."""
    prof = profile_of(under)
    cfg, tph, cna = None, None, False
    for layer in _below(under):
        lid = _lid(layer)
        if lid in _TPH_IDS and tph is None:
            tph = layer
        elif lid in _CNA_IDS:
            cna = True
        elif lid in _LPH_IDS:
            cfg = layer.cfg
    if cfg == 9:
        full = False
    elif cna and tph is None:
        full = prof.cna_tah_form == "full"
    else:
        full = True
    tp_data = tph is not None and _lid(tph) == "ub.rtph" and tph.tpopcode == 1
    return full, tp_data


# ------------------------------------------------------------------------------------------------
# the base class

class UBPacket(Packet):
    """Base of every generated UB layer."""

    ub_header: Header | None = None
    ub_layer: str = ""
    ub_profile: Profile | None = None

    def guess_payload_class(self, payload):
        nxt = _NEXT.get(self.ub_layer)
        if nxt is not None:
            cls = nxt(self, payload)
            if cls is not None:
                return cls
        return conf.raw_layer

    def mysummary(self):
        h = self.ub_header
        if h is None or not h.enum_fields:
            return type(self).__name__
        name = h.enum_fields[0][1]
        return f"{type(self).__name__} {self.sprintf(f'%{type(self).__name__}.{name}%')}"

    # header-bit patching for auto fields
    def _patch(self, pkt: bytes, name: str, value: int) -> bytes:
        h = self.ub_header
        i = [f.name for f in h.fields].index(name)
        f, off = h.fields[i], h.offsets[i]
        shift = h.bits - off - f.bits
        mask = (1 << f.bits) - 1
        v = int.from_bytes(pkt[:h.size], "big")
        v = (v & ~(mask << shift)) | ((value & mask) << shift)
        return v.to_bytes(h.size, "big") + pkt[h.size:]


# ------------------------------------------------------------------------------------------------
# trailers: transport padding and the ICRC

def _icrc_bytes(prof: Profile, value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, prof.icrc_byteorder)


def _tph_wants_icrc(pkt, nlp=None) -> bool:
    return _lid(pkt) in _TPH_IDS and isinstance(pkt.underlayer, UDP) and profile_of(pkt).icrc


def _cna_wants_icrc(pkt, nlp=None) -> bool:
    prof = profile_of(pkt)
    if not prof.icrc:
        return False
    under = pkt.underlayer
    if _lid(under) not in _LPH_IDS or under.cfg not in (6, 7):
        return False
    enum = _lid(pkt) in _CNA16_IDS and (pkt.nlp if nlp is None else nlp) == 1
    return not enum or prof.enum_icrc


def _cfg5_wants_icrc(pkt, nlp=None) -> bool:
    return profile_of(pkt).cfg5_icrc and _lid(pkt.underlayer) in _LPH_IDS


def _ip_icrc(tph, body: bytes) -> int:
    """ICRC of an IP-carried UB packet whose transport part (up to its padding) is ``body``:
    the IP and UDP headers are built the way their own layers will build them."""
    inner = body + b"\0\0\0\0"
    layer = tph.underlayer
    udp_size = None
    while layer is not None and not isinstance(layer, (IP, IPv6)):
        inner = layer.post_build(layer.self_build(), inner)
        if isinstance(layer, UDP):
            udp_size = len(inner)
        layer = layer.underlayer
    if layer is None or udp_size is None:
        return 0
    whole = layer.post_build(layer.self_build(), inner)
    version = 4 if isinstance(layer, IP) else 6
    masks = masks_for_ip(0, version, len(whole) - udp_size)
    return _icrc(whole, 0, len(whole) - 4, masks)


class _TrailerMixin:
    """pre/post dissection and build of the padding (TPHs) and ICRC (ICRC owners)."""

    ub_has_pad = False
    ub_icrc_rule = None     # callable(pkt) -> bool

    def pre_dissect(self, s):
        self._ub_icrc_raw = None
        rule = type(self).ub_icrc_rule
        h = self.ub_header
        need = 4 if _lid(self) in _TPH_IDS else h.size + 4
        # the header is not dissected yet: its NLP (enumeration or not) is read ahead
        nlp = None
        if "nlp" in h.by_name and len(s) >= h.size:
            nlp = h.unpack(s)[list(h.by_name).index("nlp")]
        if rule is not None and rule(self, nlp):
            if len(s) >= need:
                self._ub_icrc_raw = s[-4:]
                s = s[:-4]
            else:
                self._ub_icrc_raw = False       # expected, but no room: none
        return s

    def post_dissect(self, s):
        if type(self).ub_has_pad:
            n = self.padding or 0
            if n and len(s) >= n:
                self.fields["pad"] = s[-n:]
                s = s[:-n]
            else:
                self.fields["pad"] = b""
        raw_icrc = getattr(self, "_ub_icrc_raw", None)
        if raw_icrc is False:
            self.fields["icrc"] = False
        elif raw_icrc is not None:
            self.fields["icrc"] = int.from_bytes(raw_icrc, profile_of(self).icrc_byteorder)
        # the trailers are re-appended by post_build, which scapy skips for cached layers
        self.raw_packet_cache = None
        return s

    def post_build(self, pkt, pay):
        if type(self).ub_has_pad:
            pad = self.pad
            n = self.padding
            if n is None:
                n = (len(pad) if pad is not None else -(len(pkt) + len(pay))) % 4
                pkt = self._patch(pkt, "padding", n)
            if pad is None:
                pad = b"\0" * n
            pay = pay + bytes(pad)
        body = pkt + pay
        rule = type(self).ub_icrc_rule
        if self.icrc is False:                  # icrc=False: no ICRC at all
            return body
        if self.icrc is not None:
            return body + _icrc_bytes(profile_of(self), self.icrc)
        if rule is None or not rule(self):
            return body
        prof = profile_of(self)
        lid = _lid(self)
        if lid in _TPH_IDS:
            value = _ip_icrc(self, body)
        elif lid in _CNA_IDS:
            masks = (masks_for_cna16 if lid in _CNA16_IDS else masks_for_cna24)(0)
            value = _icrc(body, 0, len(body), masks)
        else:
            value = _icrc(body, 0, len(body), [])
        return body + _icrc_bytes(prof, value)


# ------------------------------------------------------------------------------------------------
# other build-time auto fields

class _LphMixin:
    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kargs):
        if _pkt is not None and len(_pkt) >= 3 and _pkt[1] & 0x0F == 0:
            return _lch_class(_pkt, ns3=cls.ub_profile is not None)
        return cls

    def post_build(self, pkt, pay):
        if "cfg" not in self.fields and isinstance(self.payload, UBPacket) and \
                _lid(self.payload) == "ub.nth" and isinstance(self.payload.payload, IPv6):
            pkt = self._patch(pkt, "cfg", 4)
        if self.plength is None:
            try:
                value = _plength(len(pkt) + len(pay), profile_of(self).crc_mode)
            except ValueError:
                value = 0
            pkt = self._patch(pkt, "plength", value)
        return pkt + pay


class _RtphMixin(_TrailerMixin):
    @classmethod
    def dispatch_hook(cls, _pkt=None, *args, **kargs):
        if _pkt is not None and len(_pkt) >= 1 and _pkt[0] & 0x7F == 0:
            return LAYER_CLASSES["ub.utph"]
        return cls


class _MgmtMixin:
    def post_build(self, pkt, pay):
        if self.pdu_length is None:
            pkt = self._patch(pkt, "pdu_length", len(pay))
        return pkt + pay


class _LchMixin:
    def pre_dissect(self, s):
        self._ub_total = len(s)
        return s

    def post_build(self, pkt, pay):
        whole = pkt + pay
        b = self.payload
        while b and _lid(b) != "ub.bcrc":
            b = b.payload
        if _lid(b) == "ub.bcrc" and b.crc30 is None:
            tail = len(b.do_build())
            off = len(whole) - tail
            if off >= 0:
                info = (b.rsvd1 or 0) << 1 | (b.error_flag or 0)
                prof = profile_of(self)
                value = bcrc_crc30(whole[:off], info) if prof.bcrc_covers_info else \
                    crc30(whole[:off])
                word = int.from_bytes(whole[off:off + 4], "big")
                word = (word & ~0x3FFFFFFF) | value
                whole = whole[:off] + word.to_bytes(4, "big") + whole[off + 4:]
        return whole


class _NthMixin:
    def do_dissect_payload(self, s):
        super().do_dissect_payload(s)
        # ns-3-UB: every UDP datagram of a native IP packet is UB, whatever its port
        if not profile_of(self).any_udp_port_is_ub:
            return
        udp = self.getlayer(UDP)
        if udp is None or isinstance(udp.payload, UBPacket):
            return
        data = bytes(udp.payload) if not isinstance(udp.payload, Padding) else b""
        if not data:
            return
        udp.remove_payload()
        udp.add_payload(LAYER_CLASSES["ub.rtph"](data, _internal=1, _underlayer=udp))


# ------------------------------------------------------------------------------------------------
# variable-length byte runs (layers the dissector records as hex)

class _VarBytes(StrField):
    """Bytes whose length the layer computes from its context when dissecting."""

    def getfield(self, pkt, s):
        n = max(0, min(len(s), pkt.ub_length(s)))
        return s[n:], s[:n]


def _var_layer(layer: str, field: str, title: str, length, nxt=None):
    cls = type(class_name(layer), (UBPacket,), {
        "name": title, "fields_desc": [_VarBytes(field, b"")], "ub_layer": layer,
        "ub_length": lambda self, s: length(self, s), "__module__": __name__})
    if nxt is not None:
        _NEXT[layer] = nxt
    LAYER_CLASSES[layer] = cls
    CLASSES[cls.__name__] = cls
    return cls


# ------------------------------------------------------------------------------------------------
# class generation

CLASSES: dict[str, type] = {}          # class name -> class
LAYER_CLASSES: dict[str, type] = {}    # layer id -> class
_NEXT: dict = {}

_TRAILER_ROLES = {
    "ub.rtph": (_RtphMixin, True, _tph_wants_icrc),
    "ub.utph": (_TrailerMixin, True, _tph_wants_icrc),
    "ub.ctph": (_TrailerMixin, True, None),
    "ub.cna16": (_TrailerMixin, False, _cna_wants_icrc),
    "ub.cna16_ns3": (_TrailerMixin, False, _cna_wants_icrc),
    "ub.cna24": (_TrailerMixin, False, _cna_wants_icrc),
    "ub.cna24_ns3": (_TrailerMixin, False, _cna_wants_icrc),
    "ub.cfg5": (_TrailerMixin, False, _cfg5_wants_icrc),
}
_OTHER_MIXINS = {"ub.lph": _LphMixin, "ub.lph_ns3": _LphMixin, "ub.mgmtetah": _MgmtMixin,
                 "ub.lch": _LchMixin, "ub.lch_crd_ack": _LchMixin,
                 "ub.lch_block_mode_chg": _LchMixin, "ub.nth": _NthMixin}
_NS3_LAYERS = frozenset(h.layer for h in HEADERS.values() if h.name.endswith("_ns3"))
#: defaults that make a bare layer meaningful (not part of the declarations)
_DEFAULTS = {"ub.rtph": {"tpopcode": 1}, "ub.atah": {"taopcode": 0x11},
             "ub.atah_c": {"taopcode": 0x11}, "ub.atah_ns3": {"taopcode": 0x11}}


def _make_class(h: Header, name: str | None = None, profile: Profile | None = None):
    defaults = _DEFAULTS.get(h.layer, {})
    fields = [make_field(f, defaults.get(f.name, 0)) for f in h.fields]
    bases: list = [UBPacket]
    attrs = {"name": h.title, "ub_header": h, "ub_layer": h.layer, "__module__": __name__,
             "__doc__": f"{h.title} ({h.spec}), generated from ubpkt.formats {h.layer}."}
    if h.layer in _NS3_LAYERS or profile is not None:
        attrs["ub_profile"] = profile or NS3
    role = _TRAILER_ROLES.get(h.layer)
    if role is not None:
        mixin, has_pad, rule = role
        bases.insert(0, mixin)
        attrs["ub_has_pad"] = has_pad
        attrs["ub_icrc_rule"] = staticmethod(rule) if rule else None
        if has_pad:
            fields.append(TrailerBytes("pad"))
        fields.append(TrailerInt("icrc"))
    elif h.layer in _OTHER_MIXINS:
        bases.insert(0, _OTHER_MIXINS[h.layer])
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
for _lay in ("ub.lch", "ub.lch_crd_ack", "ub.lch_block_mode_chg"):
    _cls = _make_class(HEADERS[_lay], class_name(_lay) + "Ns3", NS3)
    CLASSES[_cls.__name__] = _cls
    _LCH_NS3[_lay] = _cls

L = LAYER_CLASSES


def _lch_class(buf, ns3: bool):
    kind = E.DLLCB_TYPES.get((buf[2] >> 4, buf[2] & 0xF))
    lay = {"Crd_Ack": "ub.lch_crd_ack", "Block_Mode_Chg": "ub.lch_block_mode_chg"}.get(kind,
                                                                                      "ub.lch")
    return _LCH_NS3[lay] if ns3 else L[lay]


# ------------------------------------------------------------------------------------------------
# dispatch (mirrors ubpkt.dissect)

def _lph_next(pkt, pay):
    prof = profile_of(pkt)
    cfg = pkt.cfg
    if cfg in (3, 4):
        return L["ub.nth"]
    if cfg == 5:
        return L["ub.cfg5"]
    if cfg in (6, 9):
        return L["ub.cna16_ns3" if prof.cna_little_endian else "ub.cna16"]
    if cfg == 7:
        return L["ub.cna24_ns3" if prof.cna_little_endian else "ub.cna24"]
    return None


def _nth_next(pkt, pay):
    v = pay[0] >> 4 if pay else None
    return IP if v == 4 else IPv6 if v == 6 else None


def _cna_next(pkt, pay):
    cfg = _cfg_below(pkt.underlayer)
    if cfg == 9:
        return _tah_class(pkt, pay)
    nlp = pkt.nlp
    if nlp == 0:
        return L["ub.ctph"]
    if nlp == 1 and _lid(pkt) in _CNA16_IDS:
        return L["ub.upih16"]
    if nlp == 2:
        return L["ub.rtph"]
    return None


def _after_tph_nlp(pkt, pay, nlp, rtp: bool):
    if nlp == 0:
        return _tah_class(pkt, pay)
    if nlp == 1:
        return L["ub.upih32"]
    if nlp == 2 and not rtp:
        return L["ub.upih16"]
    if nlp == 3:
        return L["ub.ciph"]
    return None


def _cetph_class(prof):
    if prof.ns3_layouts:
        return L["ub.cetph_caqm_ns3"]
    return L["ub.cetph_ldcp" if prof.cetph_variant == "ldcp" else "ub.cetph_caqm"]


def _tp_response_tail(pkt, pay):
    prof = profile_of(pkt)
    if prof.tp_response_atah and len(pay) >= 8:
        return _tah_class(pkt, pay)
    return None


def _rtph_next(pkt, pay):
    prof = profile_of(pkt)
    opc = pkt.tpopcode
    if opc == 1:
        return _after_tph_nlp(pkt, pay, pkt.nlp, rtp=True)
    if opc in (3, 6):
        return _cetph_class(prof)
    if opc == 5:
        return L["ub.saetph"]
    if opc == 8:
        return L["ub.cetph_cnp"]
    if opc == 2 or (opc == 4 and prof.ns3_layouts):
        return _tp_response_tail(pkt, pay)
    return None


def _cetph_next(pkt, pay):
    rtph = pkt.underlayer
    if _lid(rtph) != "ub.rtph":
        return None
    if rtph.tpopcode == 6:
        return L["ub.saetph"]
    return _tp_response_tail(pkt, pay)


def _ctph_next(pkt, pay):
    if pkt.tpopcode == 1:
        return L["ub.cetph_cnp"] if profile_of(pkt).ctp_cnp_cetph else None
    return _after_tph_nlp(pkt, pay, pkt.nlp, rtp=False)


def _upih16_next(pkt, pay):
    under = pkt.underlayer
    if _lid(under) in _CNA16_IDS and under.nlp == 1:
        return L["ub.enum_pad"]
    return L["ub.eidh40"]


# -- transaction --------------------------------------------------------------------------------

# the extension-header order per opcode is the dissector's (one table, UB 2.0 §7.4)
_REQ_SEQ = REQUEST_HEADERS
_RSP_SEQ = RESPONSE_HEADERS


def _tah_class(under, pay):
    if not pay:
        return None
    op = pay[0]
    prof = profile_of(under)
    full, tp_data = _tah_context(under)
    if op in E.TA_RESPONSES:
        if tp_data and full and prof.ns3_layouts:
            return L["ub.btah"]
        if full:
            return L["ub.atah_ns3" if prof.ns3_layouts else "ub.atah"]
        return L["ub.atah_c"]
    return L["ub.btah" if full else "ub.btah_c"]


def tah_sequence(tah) -> list[str]:
    """Layer ids of the extension headers that follow the transaction header ``tah``."""
    prof = profile_of(tah)
    full, _ = _tah_context(tah.underlayer)
    op = tah.taopcode
    lid = _lid(tah)
    tv = False
    if lid in ("ub.btah", "ub.btah_c"):
        if op in E.TA_RESPONSES:
            steps = ("maetah",)
        elif op not in E.TAOPCODE:
            return []
        else:
            steps = (("udetah",) if tah.ud_flag else ()) + _REQ_SEQ[op]
            tv = bool(tah.tv_en)
    else:
        steps = _RSP_SEQ.get(op, ())
    out = []
    for step in steps:
        if step == "tv":
            if tv:
                out.append("ub.tvetah")
        elif step.startswith("taid?"):
            if getattr(prof, step[5:] + "_taidetah"):
                out.append("ub.taidetah")
        elif step.startswith("ofst?"):
            if getattr(prof, step[5:] + "_ofstetah"):
                out.append("ub.ofstetah")
        elif step == "maetah":
            out.append("ub.maetah" if full else
                       "ub.maetah_c_ns3" if prof.ns3_layouts else "ub.maetah_c")
        else:
            out.append("ub." + step)
    return out


def _seq_next(pkt, pay):
    n = 0
    tah = pkt
    while tah is not None and _lid(tah) not in _TAH_IDS:
        n += 1
        tah = tah.underlayer
    if tah is None:
        return None
    seq = tah_sequence(tah)
    if n >= len(seq):
        return None
    nxt = seq[n]
    if nxt == "ub.beetah":
        return L["ub.beetah"] if _beetah_len(len(pay)) is not None else None
    return L[nxt]


def _beetah_len(avail: int):
    n = avail * 8 // 9
    if n * 9 != avail * 8 or n not in (64, 128, 256, 512, 1024):
        return None
    return n // 8


# -- management -----------------------------------------------------------------------------------

def _mgmt_pdu_header(m):
    code, sub, rsp = m.code, m.sub_code, m.rsp
    if code == 2:
        return "ub.cfg_rsp" if rsp else "ub.cfg_req"
    if code == 0 and not rsp:
        return "ub.error_msg"
    if code == 1 and not rsp:
        return "ub.link_msg" if sub in (0, 1) else "ub.hotplug_msg"
    if code == 5 and sub == 2:
        return "ub.token_check_rsp" if rsp else "ub.token_check_req"
    if code == 4 and sub == 7 and not rsp:
        return "ub.neighbour_query"
    if code == 6 and not rsp:
        return {0: "ub.entity_reg", 1: "ub.entity_dereg", 2: "ub.bus_create",
                3: "ub.bus_destroy", 4: "ub.cfg_complete", 5: "ub.port_reset"}.get(sub)
    return None


def _mgmt_next(pkt, pay):
    n = pkt.pdu_length or 0
    if n > len(pay):
        return None
    lay = _mgmt_pdu_header(pkt)
    if lay is not None and n >= HEADERS[lay].size:
        return L[lay]
    return L["ub.pdu"] if n else None


def _pdu_rest(pkt) -> int:
    m = pkt.underlayer
    if _lid(m) == "ub.mgmtetah":
        return m.pdu_length or 0
    if _lid(m.underlayer) == "ub.mgmtetah":
        return (m.underlayer.pdu_length or 0) - m.ub_header.size
    return 0


def _pdu_header_next(pkt, pay):
    return L["ub.pdu"] if _pdu_rest(pkt) > 0 and pay else None


# -- enumeration -----------------------------------------------------------------------------------

def _scan_path_len(scan) -> int | None:
    width = {0: 4, 1: 8, 2: 16}.get(scan.type)
    if width is None:
        return None
    return -(-(scan.hops * width) // 32) * 4


def _scan_next(pkt, pay):
    return L["ub.scan_fwd"] if _scan_path_len(pkt) is not None else None


def _scan_pdu_next(pkt, pay):
    if pkt.cmd == 1 and pkt.opcode in (2, 3, 4):
        return L["ub.scan_cna_cfg"]
    if pkt.cmd == 0 and pkt.opcode == 0 and len(pay) >= 2:
        return L["ub.scan_tlv"]
    return None


# -- DLL control blocks --------------------------------------------------------------------------

def _dllcb_bounds(pkt, remaining: int):
    """(offset of ``remaining`` bytes from the LCH, body end, BCRC expected) or None."""
    lch = _find_below(pkt, {"ub.lch", "ub.lch_crd_ack", "ub.lch_block_mode_chg"})
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


def _lch_next(pkt, pay):
    prof = profile_of(pkt)
    kind = E.DLLCB_TYPES.get((pkt.ctrl, pkt.sub_ctrl))
    if kind == "Crd_Ack":
        return L["ub.crd_ack_ns3" if prof.crd_ack_vl0_first else "ub.crd_ack"]
    if kind in ("Retry_Req", "Retry_Ack", "Lane_Manage"):
        return L["ub." + kind.lower()]
    if kind == "Init":
        return L["ub.init"]
    if kind == "Param_Exchg":
        return L["ub.param_exchg"]
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


# -- CFG 5 -----------------------------------------------------------------------------------------

def _cfg5_next(pkt, pay):
    proto = pkt.protocol
    if proto == 0x0102 and pay:
        return L["ub.ip_notify6" if pay[0] >> 4 == 2 else "ub.ip_notify"]
    if proto == 0x0106:
        return L["ub.npic"]
    if proto in (0x0100, 0x0101) and pay:
        return _nth_next(pkt, pay)
    if proto == 0x0109 and "ub.lldp_tlv" in L and len(pay) >= 2:
        return L["ub.lldp_tlv"]
    if proto == 0x0104 and "ub.lacp" in L and len(pay) >= 2:
        return L["ub.lacp"]
    return None


def _npic_next(pkt, pay):
    n = 0
    layer = pkt
    while _lid(layer) == "ub.npic_entry":
        n += 1
        layer = layer.underlayer
    if _lid(layer) == "ub.npic" and n < (layer.sum or 0):
        return L["ub.npic_entry"]
    return None


# -- the variable-length layers -------------------------------------------------------------------

def _bitmap_len(pkt, s):
    bits = E.SACK_BITMAP_BITS.get(pkt.underlayer.bitmapsize) if pkt.underlayer else None
    return (bits or 0) // 8


def _ciph_icv(pkt):
    return profile_of(pkt).ciph_icv_len


_var_layer("ub.saetph_bitmap", "bitmap", "SAETPH bitmap", _bitmap_len, _tp_response_tail)
_var_layer("ub.beetah", "be", "Byte Enable Extended TAH",
           lambda p, s: _beetah_len(len(s)) or 0, _seq_next)
_var_layer("ub.pdu", "data", "Management PDU (rest)", lambda p, s: _pdu_rest(p), None)
_var_layer("ub.scan_fwd", "fwd_path", "Scan forward path",
           lambda p, s: _scan_path_len(p.underlayer) or 0,
           lambda p, pay: L["ub.scan_ret"] if p.underlayer.r else L["ub.scan_pdu"])
_var_layer("ub.scan_ret", "ret_path", "Scan return path",
           lambda p, s: _scan_path_len(p.underlayer.underlayer) or 0,
           lambda p, pay: L["ub.scan_pdu"])
_var_layer("ub.scan_tlv_value", "value", "Topology TLV value",
           lambda p, s: max(0, (p.underlayer.length or 0) - 2),
           lambda p, pay: L["ub.scan_tlv"] if len(pay) >= 2 else None)
_var_layer("ub.ciph_protected", "protected", "CIPH-protected bytes",
           lambda p, s: len(s) - _ciph_icv(p), lambda p, pay: L["ub.ciph_icv"])
_var_layer("ub.ciph_icv", "icv", "CIPH ICV", lambda p, s: _ciph_icv(p), None)
_var_layer("ub.cb_body", "body", "Control block body", _cb_body_len, _dllcb_tail)


# CFG-5 LLDP (0x0109) and ULAP/LACP (0x0104): TLV runs up to an end TLV
def _tlv_value_next(tlv_layer):
    def nxt(pkt, pay):
        under = pkt.underlayer
        if _lid(under) == tlv_layer and under.tlv_type == 0:
            return None
        return L["ub." + tlv_layer[3:]] if len(pay) >= 2 else None
    return nxt


def _tlv_next(value_layer, value_len):
    def nxt(pkt, pay):
        n = value_len(pkt)
        if n > 0:
            return L[value_layer]
        if n < 0 or pkt.tlv_type == 0:
            return None
        return L[pkt.ub_layer] if len(pay) >= 2 else None
    return nxt


if "ub.lldp_tlv" in HEADERS:
    _var_layer("ub.lldp_value", "tlv_value", "LLDP TLV value",
               lambda p, s: p.underlayer.tlv_len or 0, _tlv_value_next("ub.lldp_tlv"))
    _NEXT["ub.lldp_tlv"] = _tlv_next("ub.lldp_value", lambda t: t.tlv_len or 0)
if "ub.lacp_tlv" in HEADERS:
    _var_layer("ub.lacp_value", "tlv_value", "LACP TLV value",
               lambda p, s: max(0, (p.underlayer.tlv_len or 0) - 2),
               _tlv_value_next("ub.lacp_tlv"))
    _NEXT["ub.lacp_tlv"] = _tlv_next("ub.lacp_value", lambda t: (t.tlv_len or 0) - 2)
    _NEXT["ub.lacp"] = lambda p, pay: L["ub.lacp_tlv"] if len(pay) >= 2 else None

_NEXT.update({
    "ub.lph": _lph_next, "ub.lph_ns3": _lph_next, "ub.nth": _nth_next,
    "ub.cna16": _cna_next, "ub.cna16_ns3": _cna_next, "ub.cna24": _cna_next,
    "ub.cna24_ns3": _cna_next,
    "ub.rtph": _rtph_next,
    "ub.utph": lambda p, pay: _after_tph_nlp(p, pay, p.nlp, rtp=True),
    "ub.ctph": _ctph_next,
    "ub.cetph_ldcp": _cetph_next, "ub.cetph_caqm": _cetph_next, "ub.cetph_caqm_ns3": _cetph_next,
    "ub.saetph": lambda p, pay: L["ub.saetph_bitmap"] if p.bitmapsize in E.SACK_BITMAP_BITS
    else None,
    "ub.upih32": lambda p, pay: L["ub.eidh256"],
    "ub.eidh256": _tah_class, "ub.upih16": _upih16_next, "ub.eidh40": _tah_class,
    "ub.ciph": lambda p, pay: L["ub.ciph_protected"] if len(pay) >= _ciph_icv(p) else None,
    "ub.mgmtetah": _mgmt_next,
    "ub.enum_pad": lambda p, pay: L["ub.scan"], "ub.scan": _scan_next,
    "ub.scan_pdu": _scan_pdu_next, "ub.scan_tlv": lambda p, pay: L["ub.scan_tlv_value"]
    if (p.length or 0) >= 2 else None,
    "ub.lch": _lch_next, "ub.lch_crd_ack": _lch_next, "ub.lch_block_mode_chg": _lch_next,
    "ub.param_exchg": _param_next, "ub.param_exchg_flit": _param_next,
    "ub.cfg5": _cfg5_next, "ub.npic": _npic_next, "ub.npic_entry": _npic_next,
})
for _lay in _TAH_IDS | {"ub.udetah", "ub.maetah", "ub.maetah_c", "ub.maetah_c_ns3", "ub.mtetah",
                        "ub.tvetah", "ub.taidetah", "ub.ofstetah", "ub.immetah", "ub.ntfetah"}:
    _NEXT[_lay] = _seq_next
for _lay in ("ub.crd_ack", "ub.crd_ack_ns3", "ub.retry_req", "ub.retry_ack", "ub.lane_manage",
             "ub.init", "ub.cb_rsvd"):
    _NEXT[_lay] = _dllcb_tail
for _lay in ("ub.cfg_req", "ub.cfg_rsp", "ub.error_msg", "ub.link_msg", "ub.hotplug_msg",
             "ub.token_check_req", "ub.token_check_rsp", "ub.neighbour_query", "ub.entity_reg",
             "ub.entity_dereg", "ub.bus_create", "ub.bus_destroy", "ub.cfg_complete",
             "ub.port_reset"):
    _NEXT[_lay] = _pdu_header_next


# ------------------------------------------------------------------------------------------------
# bindings (build-time defaults; dissection goes through guess_payload_class above)

def _bind():
    for tph in ("ub.rtph", "ub.utph"):
        bind_bottom_up(UDP, L[tph], dport=UB_UDP_PORT)
        bind_top_down(UDP, L[tph], dport=UB_UDP_PORT, chksum=0)
    for lph in ("ub.lph", "ub.lph_ns3"):
        for lay, cfg in (("ub.nth", 3), ("ub.cfg5", 5), ("ub.cna16", 6), ("ub.cna16_ns3", 6),
                         ("ub.cna24", 7), ("ub.cna24_ns3", 7)):
            bind_top_down(L[lph], L[lay], cfg=cfg)
    for cna in ("ub.cna16", "ub.cna16_ns3", "ub.cna24", "ub.cna24_ns3"):
        bind_top_down(L[cna], L["ub.ctph"], nlp=0)
        bind_top_down(L[cna], L["ub.rtph"], nlp=2)
        bind_top_down(L[cna], L["ub.utph"], nlp=2)
        if cna in _CNA16_IDS:
            bind_top_down(L[cna], L["ub.upih16"], nlp=1)
    for tph in ("ub.rtph", "ub.utph", "ub.ctph"):
        bind_top_down(L[tph], L["ub.upih32"], nlp=1)
        bind_top_down(L[tph], L["ub.ciph"], nlp=3)
    bind_top_down(L["ub.ctph"], L["ub.upih16"], nlp=2)
    bind_top_down(L["ub.ctph"], L["ub.cetph_cnp"], tpopcode=1)
    rt = L["ub.rtph"]
    for lay, opc in (("ub.atah_ns3", 2), ("ub.cetph_caqm", 3),
                     ("ub.cetph_ldcp", 3), ("ub.cetph_caqm_ns3", 3), ("ub.saetph", 5),
                     ("ub.cetph_cnp", 8)):
        bind_top_down(rt, L[lay], tpopcode=opc)
    for tah in ("ub.btah", "ub.btah_c"):
        bind_top_down(L[tah], L["ub.udetah"], ud_flag=1)
        bind_top_down(L[tah], L["ub.maetah"], taopcode=0x03)
        bind_top_down(L[tah], L["ub.maetah_c"], taopcode=0x03)
        bind_top_down(L[tah], L["ub.maetah_c_ns3"], taopcode=0x03)
        bind_top_down(L[tah], L["ub.mgmtetah"], taopcode=0x10)
    bind_top_down(L["ub.btah"], L["ub.mtetah"], taopcode=0x00, mt_en=1)
    conf.l2types.register(148, L["ub.lph"])
    conf.l2types.register(147, L["ub.lph_ns3"])


_bind()


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
