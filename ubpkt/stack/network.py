"""The stack's network layer: frames for TP packets and TP packets from frames.

:class:`Path` says how one endpoint reaches another (UB 2.0 ch. 5): UBoE (Ethernet, IPv4, UDP
port 4792, §5.2.3), or a native UB link with a 16- or 24-bit CNA NTH (§5.2.1; CFG 6/7, and CFG 9
for TP bypass).  :class:`Framer` builds frames from :class:`~ubpkt.stack.templates.PacketTemplate`
s (made once per packet kind by the reference encoder) and parses received frames back into
:class:`TpPacket` views: a fast reader for the layouts its own templates produce, the reference
dissector (``ubpkt.decode``) for anything else.  The ICRC is checked on every received frame
(UB 2.0 §5.3.7); a frame that fails is reported, never delivered.

Congestion information (UB 2.0 §5.3.5, §6.2.2, §6.6.1.3): a received data packet's
:class:`TpPacket` says whether it was marked (``ce``) and, from the CCI word of a CNA NTH in CAQM
mode, its I bit, Hint and LoC (``ci``, ``hint``, ``loc``; a CCI in FECN or FECN_RTT mode counts
as marked when its FECN is 2'b11, severe congestion).  UBoE has no NTH: the reference profile
reads the IPv4 ECN field instead, Congestion Experienced (RFC 3168, 0b11) being the mark.
``tp_response(..., cc={...})`` builds the _CC forms (TPACK_CC, TPNAK_CC as a TPACK_CC with the
NAK RSPST, TPSACK_CC) with a CETPH of the profile's ``cetph_variant`` (CAQM unless ``ldcp``);
``parse`` gives a received CETPH as the ``cetph`` dict (``ack_seq``, ``loc``, ``i``, ``c``,
``hint``; LDCP: ``ack_seq``, ``ce_seq``).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

from ..dissect import decode
from ..formats import HEADERS
from ..formats.enums import TAOPCODE as TAOPCODE_NAMES
from ..formats.enums import TPOPCODE
from ..formats.grammar import resolve
from ..link.plength import packet_length
from ..profile import SPEC, Profile
from ..record import LINKTYPE_ETHERNET, LINKTYPE_UB
from .templates import PacketTemplate

__all__ = ["Path", "Framer", "TpPacket", "RTP_DATA", "TPACK", "TPACK_CC", "TPSACK", "TPSACK_CC",
           "UTP", "CTP", "BYPASS"]

#: TPOpcode[6:0] values the stack sends (UB 2.0 §6.2.1 Table 6-2)
_OPC = {v: k for k, v in TPOPCODE.items()}
RTP_DATA, TPACK, TPACK_CC, TPSACK, TPSACK_CC, UTP = (_OPC["RTP_Data"], _OPC["TPACK/TPNAK"],
                                                      _OPC["TPACK-CC/TPNAK-CC"], _OPC["TPSACK"],
                                                      _OPC["TPSACK-CC"], _OPC["UTP"])
#: pseudo opcodes for the modes without an RTPH
CTP, BYPASS = "ctp", "bypass"

_DATA_KEYS = ("ub.rtph.srctpn", "ub.rtph.dsttpn", "ub.rtph.psn", "ub.rtph.a", "ub.rtph.last",
              "ub.rtph.tpmsn")
_ACK_KEYS = ("ub.rtph.srctpn", "ub.rtph.dsttpn", "ub.rtph.psn", "ub.rtph.rspst",
             "ub.rtph.rspinfo", "ub.rtph.tpmsn")
_RTPH = HEADERS["ub.rtph"]
_CTPH = HEADERS["ub.ctph"]
_CTPH_OPC, _CTPH_PAD, _CTPH_NLP = (_CTPH.index[k] for k in ("tpopcode", "padding", "nlp"))
_SAETPH = HEADERS["ub.saetph"]
_SRCTPN, _DSTTPN, _A, _PSN, _RSPST, _RSPINFO, _TPMSN = (
    _RTPH.index[k] for k in ("srctpn", "dsttpn", "a", "psn", "rspst", "rspinfo", "tpmsn"))


#: what a CNA NTH may carry (its NLP values): the 16-bit form a CTPH (CFG 6, NLP 0; UB 2.0
#: §5.2.1) or, for TP bypass, the compact TAH (CFG 9); the 24-bit form a CTPH or an RTPH (CFG 7,
#: NLP 0/2; §5.2.2).  RTP and UTP otherwise travel over IP (§5.2.3: UBoE, or the native IP form).
_CNA_CARRIES = frozenset({("cna16", "ctp"), ("cna16", "bypass"), ("cna24", "ctp"),
                          ("cna24", "rtp")})
_CNA_RULE = ("the 16-bit CNA NTH carries CTP and TP bypass (§5.2.1), the 24-bit one CTP and "
             "RTP (§5.2.2); UTP and RTP go over IP (§5.2.3: Path kind uboe or ipv4)")


@dataclass(frozen=True)
class Path:
    """Addressing between two endpoints.  ``kind``: ``uboe`` (MACs, IPv4 addresses, UDP source
    port: the TP channel's flow, UB 2.0 §6.5), ``cna16`` or ``cna24`` (SCNA/DCNA, LBF, VL), or
    ``ipv4``: a native UB port whose RTP/UTP packets use the IP form of the network header
    (UB 2.0 §5.2.3: LPH CFG 3, the 6-byte NTH, IPv4, UDP to ``udp_dport``, then the RTPH) and
    whose TP-bypass and CTP packets use the 16-bit CNA NTH (SCNA/DCNA; CFG 9 / CFG 6), as the
    ns-3-UB simulator sends them.  ``sl``: the CNA NTH's SL field (None: the VL).  ``npi``: the
    IP-form NTH's network partition."""
    kind: str = "uboe"
    src_mac: str = "02:00:00:00:00:01"
    dst_mac: str = "02:00:00:00:00:02"
    src_ip: str = "10.0.0.1"
    dst_ip: str = "10.0.0.2"
    udp_sport: int = 49152
    scna: int = 1
    dcna: int = 2
    lbf: int = 0
    vl: int = 0
    udp_dport: int = 4792
    sl: int | None = None
    #: the IP-form NTH's NPI (``ipv4``): 1, the default partition (UB 2.0 §5.3.3.1; the
    #: kernel's UB link device sends 1 too); 0 is invalid for IP packets
    npi: int = 1

    def reverse(self) -> "Path":
        """The path back: MACs, IP addresses and CNAs swapped; the UDP ports stay (the flow
        label of the channel, UB 2.0 §6.5; ns-3-UB's answers also keep the request's ports)."""
        return replace(self, src_mac=self.dst_mac, dst_mac=self.src_mac, src_ip=self.dst_ip,
                       dst_ip=self.src_ip, scna=self.dcna, dcna=self.scna)

    @property
    def linktype(self) -> int:
        return LINKTYPE_ETHERNET if self.kind == "uboe" else LINKTYPE_UB

    def carrier(self, transport: str) -> list:
        """The header layers in front of the transport header (``rtp``/``utp``: RTPH/UTPH
        follow; ``ctp``: CTPH; ``bypass``: the compact TAH)."""
        if self.kind == "uboe":
            if transport not in ("rtp", "utp"):
                raise ValueError(f"{transport} is not carried over UDP (UB 2.0 §5.2.3)")
            return [("eth", {"dst": self.dst_mac, "src": self.src_mac, "type": 0x0800}),
                    ("ip", {"ttl": 64, "proto": 17, "flags": 2, "src": self.src_ip,
                            "dst": self.dst_ip}),
                    ("udp", {"srcport": self.udp_sport})]
        if self.kind == "ipv4" and transport in ("rtp", "utp"):
            # UB 2.0 §5.2.3 (native form): LPH CFG 3, NTH (IP form), IPv4, UDP
            return [("ub.lph", {"cfg": 3, "vl": self.vl}),
                    ("ub.nth", {"npi": self.npi}),
                    ("ip", {"ttl": 64, "proto": 17, "src": self.src_ip, "dst": self.dst_ip}),
                    ("udp", {"srcport": self.udp_sport, "dstport": self.udp_dport})]
        width = "cna16" if self.kind == "ipv4" else self.kind
        if (width, transport) not in _CNA_CARRIES:
            raise ValueError(f"{transport} after the {width} NTH is not a UB 2.0 format: "
                             f"{_CNA_RULE}")
        nlp = {"rtp": 2, "ctp": 0, "bypass": 0}[transport]
        cfg = 9 if transport == "bypass" else (6 if width == "cna16" else 7)
        nth = {"scna": self.scna, "dcna": self.dcna, "lbf": self.lbf, "nlp": nlp}
        if self.sl is not None:
            nth["sl"] = self.sl
        return [("ub.lph", {"cfg": cfg, "vl": self.vl}), (f"ub.{width}", nth)]


@dataclass(slots=True)
class TpPacket:
    """A received TP packet: the transport header's fields and the transaction bytes (TAH
    onward, padding and ICRC removed).  ``mode``: ``rtp``, ``utp``, ``ctp`` or ``bypass``."""
    mode: str
    tpopcode: int
    last: int
    srctpn: int
    dsttpn: int
    a: int
    psn: int
    rspst: int
    rspinfo: int
    tpmsn: int
    ta: memoryview
    maxrcvpsn: int | None = None
    bitmap: bytes | None = None
    src: object = None          # the sender's address (IP or SCNA): with srctpn, the channel
    # congestion information of a data packet (module doc): marked, and the CCI's CAQM I, Hint,
    # LoC (CNA NTH only)
    ce: int = 0
    ci: int = 0
    hint: int = 0
    loc: int = 0
    cetph: dict | None = None   # a TPACK_CC/TPSACK_CC's CETPH fields (module doc)


class Framer:
    """Frames of one :class:`Path` (see module doc).  Not thread-safe; one per endpoint."""

    def __init__(self, path: Path, profile: Profile = SPEC):
        self.path = path
        self.profile = profile
        self._tpl: dict = {}
        self._fns: dict = {}
        self.stats = {"rx_bad_icrc": 0, "rx_slow_path": 0, "rx_malformed": 0}
        self._fast = None
        #: the CETPH form of the _CC responses (UB 2.0 §6.2.2: a per-channel choice; here the
        #: profile's ``cetph_variant``)
        self.cetph_layer = resolve("ub.cetph", profile)
        h = HEADERS[self.cetph_layer]
        self._cetph = h
        self._cetph_names = tuple((i, f.name) for i, f in enumerate(h.fields)
                                  if not f.name.startswith("rsvd"))
        #: the profile's TP-response choices (``tp_response_echo``, ``tp_response_atah``)
        self._resp_extra = profile.tp_response_echo or profile.tp_response_atah
        self._resp_atah = HEADERS[resolve("ub.atah", profile)]

    def retarget(self, path: Path) -> None:
        """Frame for ``path`` from now on (a session that learns its peer's CNAs after its
        first packet); the compiled templates are rebuilt on next use."""
        self.path = path
        self._tpl.clear()
        self._fns.clear()

    # -- transmit ---------------------------------------------------------------------------------
    def _template(self, key):
        t = self._tpl.get(key)
        if t is None:
            t = self._tpl[key] = PacketTemplate(self._layers(key), self.profile)
        return t

    def _carrier(self, transport: str) -> list:
        """The path's carrier layers in the forms the profile selects (e.g. ns-3-UB's LPH and
        little-endian CNA NTH, ``grammar.VARIANTS``)."""
        return [(resolve(name, self.profile), spec) for name, spec in
                self.path.carrier(transport)]

    def _layers(self, key) -> list:
        kind = key[0]
        if kind in ("rtp", "utp"):
            carrier = self._carrier(kind)
            if kind == "utp":
                return carrier + [("ub.utph", {"tpopcode": 0, "nlp": 0})]
            opc = key[1]
            layers = carrier + [("ub.rtph", {"tpopcode": opc, "nlp": 0})]
            if opc in (TPACK_CC, TPSACK_CC):
                layers.append((self.cetph_layer, {}))
            if opc in (TPSACK, TPSACK_CC):
                layers.append(("ub.saetph", {"bitmapsize": key[2]}))
            return layers
        if kind == "ctp":
            return self._carrier("ctp") + [("ub.ctph", {"tpopcode": 0, "nlp": 0})]
        if kind == "bypass":
            return self._carrier("bypass")
        raise ValueError(key)

    def _builder(self, key, fields):
        """The compiled builder of template ``key`` for ``fields`` (the hot path)."""
        fn = self._fns.get(key)
        if fn is None:
            fn = self._fns[key] = self._template(key).compile(fields)
        return fn

    def rtp_data(self, srctpn: int, dsttpn: int, psn: int, ta, payload=b"", *, a: int = 0,
                 last: int = 0, tpmsn: int = 0, explicit=None) -> bytes:
        """An RTP data packet (TPOpcode 1) carrying ``ta`` (TAH and extension headers) and
        ``payload`` (UB 2.0 §6.2.1).  ``explicit``: auto fields to keep as given (faults)."""
        if explicit:
            t = self._template(("rtp", RTP_DATA))
            return t.build({"ub.rtph.srctpn": srctpn, "ub.rtph.dsttpn": dsttpn,
                            "ub.rtph.psn": psn, "ub.rtph.a": a, "ub.rtph.last": last,
                            "ub.rtph.tpmsn": tpmsn}, (ta, payload), explicit)
        return self._builder(("rtp", RTP_DATA), _DATA_KEYS)(srctpn, dsttpn, psn, a, last, tpmsn,
                                                           (ta, payload))

    def tp_response(self, srctpn: int, dsttpn: int, psn: int, *, rspst: int = 0,
                    rspinfo: int = 0, tpmsn: int = 0, bitmap: bytes | None = None,
                    maxrcvpsn: int = 0, explicit=None, cc: dict | None = None,
                    echo: dict | None = None) -> bytes:
        """A TPACK/TPNAK (``bitmap`` None; RSPST says which, UB 2.0 §6.2.1) or a TPSACK with its
        SAETPH and bitmap (§6.2.3).  ``cc``: the CETPH fields (``ack_seq``, ``loc``, ``i``,
        ``c``, ``hint``; LDCP ``ack_seq``, ``ce_seq``; the variant's other names are ignored):
        the _CC form, TPACK_CC (a TPNAK_CC with RSPST 011) or TPSACK_CC (§6.2.2).
        ``echo``: the acknowledged data packet's ``last``, ``a`` and ``tassn`` (its TAH
        INI_TASSN), used as the profile says: ``tp_response_echo`` repeats last and A in the
        RTPH, ``tp_response_atah`` appends an ATAH (TAACK, that INI_TASSN; profile G10)."""
        if cc is not None:
            return self._cc_response(srctpn, dsttpn, psn, rspst, rspinfo, tpmsn, bitmap,
                                     maxrcvpsn, explicit, cc, echo)
        if bitmap is None:
            if not explicit and not self._resp_extra:
                return self._builder(("rtp", TPACK), _ACK_KEYS)(srctpn, dsttpn, psn, rspst,
                                                                rspinfo, tpmsn, ())
            t = self._template(("rtp", TPACK))
            values = {"ub.rtph.srctpn": srctpn, "ub.rtph.dsttpn": dsttpn,
                      "ub.rtph.psn": psn, "ub.rtph.rspst": rspst,
                      "ub.rtph.rspinfo": rspinfo, "ub.rtph.tpmsn": tpmsn}
            return t.build(values, self._response_tail(values, b"", echo), explicit)
        size = {8: 0, 16: 1, 32: 2, 64: 3, 128: 4}[len(bitmap)]
        t = self._template(("rtp", TPSACK, size))
        values = {"ub.rtph.srctpn": srctpn, "ub.rtph.dsttpn": dsttpn, "ub.rtph.psn": psn,
                  "ub.saetph.maxrcvpsn": maxrcvpsn}
        return t.build(values, self._response_tail(values, bitmap, echo), explicit)

    def _response_tail(self, values: dict, body: bytes, echo: dict | None) -> bytes:
        """Apply the profile's TP-response choices (``tp_response_echo``,
        ``tp_response_atah``) to a response's RTPH ``values``; the body with the ATAH."""
        p = self.profile
        if p.tp_response_echo and echo:
            values["ub.rtph.last"] = 1 if echo.get("last") else 0
            values["ub.rtph.a"] = 1 if echo.get("a") else 0
        if p.tp_response_atah:
            tassn = (echo or {}).get("tassn", 0) & 0xFFFF
            body = bytes(body) + self._resp_atah.encode({"taopcode": _TAACK_OPCODE,
                                                         "ini_tassn": tassn})
        return body

    def _cc_response(self, srctpn, dsttpn, psn, rspst, rspinfo, tpmsn, bitmap, maxrcvpsn,
                     explicit, cc, echo=None) -> bytes:
        cl = self.cetph_layer
        values = {"ub.rtph.srctpn": srctpn, "ub.rtph.dsttpn": dsttpn, "ub.rtph.psn": psn}
        if bitmap is None:
            t = self._template(("rtp", TPACK_CC))
            values.update({"ub.rtph.rspst": rspst, "ub.rtph.rspinfo": rspinfo,
                           "ub.rtph.tpmsn": tpmsn})
            body = b""
        else:
            size = {8: 0, 16: 1, 32: 2, 64: 3, 128: 4}[len(bitmap)]
            t = self._template(("rtp", TPSACK_CC, size))
            values["ub.saetph.maxrcvpsn"] = maxrcvpsn
            body = bitmap
        refs = t.refs
        for k, v in cc.items():
            key = f"{cl}.{k}"
            ref = refs.get(key)
            if ref is not None:
                top = (1 << ref.bits) - 1
                # the sequence counters run modulo 2^32; C and Hint saturate, never wrap
                values[key] = int(v) & top if k.endswith("_seq") else min(int(v), top)
        if self._resp_extra:
            body = self._response_tail(values, body, echo)
        return t.build(values, body, explicit)

    def utp_data(self, ta, payload=b"", explicit=None) -> bytes:
        """A UTP packet (UB 2.0 §6.3.3): no PSN, no acknowledgement."""
        return self._template(("utp",)).build(None, (ta, payload), explicit)

    def ctp_data(self, ta, payload=b"", explicit=None) -> bytes:
        """A CTP packet (UB 2.0 §6.3.2): one CTPH byte, reliability left to the link."""
        return self._template(("ctp",)).build(None, (ta, payload), explicit)

    def bypass_data(self, ta, payload=b"", explicit=None) -> bytes:
        """A TP-bypass packet (CFG 9, App B): the compact TAH straight after the NTH, no
        ICRC."""
        return self._template(("bypass",)).build(None, (ta, payload), explicit)

    # -- receive ----------------------------------------------------------------------------------
    def parse(self, frame) -> TpPacket | None:
        """The TP packet in ``frame``, or None (bad ICRC, not UB, malformed: counted in
        ``stats``).  Never raises on input."""
        try:
            pkt = self._parse_fast(frame)
        except Exception:   # an optimisation only: the reference path decides
            pkt = None
        if pkt is not None:
            return pkt if pkt is not _BAD else None
        self.stats["rx_slow_path"] += 1
        try:
            return self._parse_slow(frame)
        except Exception:   # decode() never raises, but a record can hold what we don't expect
            self.stats["rx_malformed"] += 1     # (repeated headers as lists...): drop, count
            return None

    def _parse_fast(self, frame):
        """Frames laid out as this framer's own templates: UBoE/IPv4 (no IP options), with or
        without one 802.1Q tag, or a native packet with a CNA NTH."""
        if self.path.kind != "uboe":
            return self._parse_native(frame)
        if len(frame) < 62:
            return None
        mv = memoryview(frame)
        o = 4 if mv[12] == 0x81 and mv[13] == 0x00 else 0     # 802.1Q: IPv4 at 18
        if mv[12 + o] != 0x08 or mv[13 + o] != 0x00 or mv[14 + o] != 0x45 or mv[23 + o] != 17:
            return None
        if (mv[36 + o] << 8 | mv[37 + o]) not in self.profile.ub_udp_ports:
            return None
        ip_len = mv[16 + o] << 8 | mv[17 + o]
        if 14 + o + ip_len != len(frame):
            return None
        b0 = mv[42 + o]
        opc = b0 & 0x7F
        if opc not in _FAST_OPC:
            return None
        if self.profile.icrc:
            end = len(frame) - 4
            stored = int.from_bytes(mv[end:], self.profile.icrc_byteorder)
            if _icrc_uboe(mv, end, 14 + o) != stored:
                self.stats["rx_bad_icrc"] += 1
                return _BAD
        else:
            end = len(frame)
        b1 = mv[43 + o]
        pad = (b1 >> 4) & 3
        ta0 = 58 + o
        src = bytes(mv[26 + o:30 + o])
        ce = mv[15 + o] & 3 == 3        # IPv4 ECN CE (reference profile, module doc)
        if opc == UTP:
            pkt = TpPacket("utp", 0, 0, 0, 0, 0, 0, 0, 0, 0, mv[ta0:end - pad], src=src)
            if ce:
                pkt.ce = 1
            return pkt
        v = _RTPH.unpack(mv, 42 + o)
        pkt = TpPacket("rtp", opc, b0 >> 7, v[_SRCTPN], v[_DSTTPN], v[_A], v[_PSN], v[_RSPST],
                       v[_RSPINFO], v[_TPMSN], mv[ta0:end - pad], src=src)
        if opc == RTP_DATA:
            if ce:
                pkt.ce = 1
            return pkt
        off = ta0
        if opc == TPACK_CC or opc == TPSACK_CC:
            h = self._cetph
            cv = h.unpack(mv, ta0)
            pkt.cetph = {name: cv[i] for i, name in self._cetph_names}
            off = ta0 + h.size
            pkt.ta = mv[off:end - pad]
        if opc == TPSACK or opc == TPSACK_CC:
            sv = _SAETPH.unpack(mv, off)
            bits = 64 << sv[_SAETPH.index["bitmapsize"]]
            pkt.maxrcvpsn = sv[_SAETPH.index["maxrcvpsn"]]
            q = off + 4
            pkt.bitmap = bytes(mv[q:q + bits // 8])
            pkt.ta = mv[q + bits // 8:end - pad]
        return pkt

    def _parse_native(self, frame):
        """LPH (CFG 6/7/9) + CNA NTH + CTPH/RTPH/UTPH or the compact TAH (UB 2.0 §4.3.2.2,
        §5.2.1, App B); the ICRC from the NTH, with its CCI and LBF as ones (§5.3.7)."""
        mv = memoryview(frame)
        n = len(mv)
        if n < 13 or self.profile.lph_rt_swapped or self.profile.cna_little_endian:
            return None
        cfg = mv[1] & 0x0F
        if cfg == 6 or cfg == 9:
            nth, masks = _CNA16, _CNA16_ORMASK
        elif cfg == 7:
            nth, masks = _CNA24, _CNA24_ORMASK
        else:
            return None
        if self.profile.check_plength and not _plength_ok(mv, self.profile.crc_mode):
            return None                 # the reference path reports it
        return self._native_body(mv, cfg, nth, masks)

    def _native_body(self, mv, cfg, nth, ormask):
        n = len(mv)
        tp = 4 + nth.size
        nlp = mv[tp - 1] & 7
        nv = nth.unpack(mv, 4)
        src = nv[0]
        if cfg == 9:
            return TpPacket("bypass", 0, 0, 0, 0, 0, 0, 0, 0, 0, mv[tp:], src=src)
        end = n
        if self.profile.icrc:
            end = n - 4
            stored = int.from_bytes(mv[end:], self.profile.icrc_byteorder)
            head = (int.from_bytes(mv[4:tp], "big") | ormask).to_bytes(tp - 4, "big")
            if zlib.crc32(mv[tp:end], zlib.crc32(head)) != stored:
                self.stats["rx_bad_icrc"] += 1
                return _BAD
        if nlp == 0:                    # CTPH (UB 2.0 §6.2.1)
            c = _CTPH.unpack(mv, tp)
            if c[_CTPH_OPC] != 0 or c[_CTPH_NLP] != 0:
                return None             # CNP, or UPIH/EIDH/CIPH after it: the reference path
            pad = c[_CTPH_PAD]
            pkt = TpPacket("ctp", 0, 0, 0, 0, 0, 0, 0, 0, 0, mv[tp + 1:end - pad], src=src)
            cci = nv[2]
            if cci:
                pkt.ce, pkt.ci, pkt.hint, pkt.loc = _cci(cci)
            return pkt
        return None                     # RTP/UTP over a CNA NTH: the reference path

    def _parse_slow(self, frame) -> TpPacket | None:
        rec = decode(bytes(frame), self.path.linktype, self.profile)
        f = rec["fields"]
        if f.get("ub.icrc.status") == "bad":
            self.stats["rx_bad_icrc"] += 1
            return None
        if any(i["severity"] == "error" for i in rec["issues"]):
            self.stats["rx_malformed"] += 1
            return None
        layers = rec["layers"]
        off = 0
        ta_off = None
        for layer in layers:
            if layer in ("ub.btah", "ub.btah_c", "ub.atah", "ub.atah_c", "ub.atah_ns3"):
                ta_off = off
                break
            if layer in HEADERS:
                off += HEADERS[layer].size
            else:
                break
        end = len(frame) - (4 if "ub.icrc" in layers else 0) - len(bytes.fromhex(
            f.get("ub.pad.data", "")))
        ta = memoryview(frame)[ta_off:end] if ta_off is not None else memoryview(b"")
        src = f.get("ip.src") or f.get("ub.cna16.scna") or f.get("ub.cna24.scna")
        if "ub.rtph" in layers:
            g = lambda k: f.get("ub.rtph." + k, 0)  # noqa: E731
            pkt = TpPacket("rtp", g("tpopcode"), g("last"), g("srctpn"), g("dsttpn"), g("a"),
                           g("psn"), g("rspst"), g("rspinfo"), g("tpmsn"), ta, src=src)
            if "ub.saetph" in layers:
                pkt.maxrcvpsn = f["ub.saetph.maxrcvpsn"]
                pkt.bitmap = bytes.fromhex(f["ub.saetph.bitmap"])
            if any(lay.startswith("ub.cetph") for lay in layers):
                pkt.cetph = {k[9:]: v for k, v in f.items() if k.startswith("ub.cetph.")
                             and not k[9:].startswith("rsvd") and isinstance(v, int)}
            _slow_marks(pkt, f)
            return pkt
        if "ub.utph" in layers:
            return _slow_marks(TpPacket("utp", 0, 0, 0, 0, 0, 0, 0, 0, 0, ta, src=src), f)
        if "ub.ctph" in layers:
            return _slow_marks(TpPacket("ctp", f["ub.ctph.tpopcode"], 0, 0, 0, 0, 0, 0, 0, 0, ta,
                                        src=src), f)
        if f.get("ub.lph.cfg") == 9:
            return TpPacket("bypass", 0, 0, 0, 0, 0, 0, 0, 0, 0, ta, src=src)
        self.stats["rx_malformed"] += 1
        return None


_BAD = object()
#: the TAACK TAOpcode an ATAH after a TP response carries (profile G10)
_TAACK_OPCODE = next(k for k, v in TAOPCODE_NAMES.items() if v == "TAACK")
_FAST_OPC = frozenset((RTP_DATA, TPACK, TPACK_CC, TPSACK, TPSACK_CC, UTP))


def _cci(word: int) -> tuple:
    """(marked, I, Hint, LoC) from a CCI word (UB 2.0 §5.3.5.1): CAQM mode 000 (C, I, Hint);
    FECN 100 and FECN_RTT 010: marked when FECN is 2'b11 (severe); other modes: nothing."""
    mode = word >> 13
    loc = (word >> 12) & 1
    if mode == 0:
        return (word >> 9) & 1, (word >> 8) & 1, word & 0xFF, loc
    if mode in (2, 4):
        return int(word & 3 == 3), 0, 0, loc
    return 0, 0, 0, 0


def _slow_marks(pkt: TpPacket, f: dict) -> TpPacket:
    """The congestion marks of a dissected data packet (module doc)."""
    # the CCI of a CNA NTH or of the IP-form NTH (UB 2.0 §5.2.2, §5.3.5)
    cci = f.get("ub.cna16.cci", f.get("ub.cna24.cci", f.get("ub.nth.cci")))
    if isinstance(cci, list):
        cci = cci[0]
    if isinstance(cci, int):
        pkt.ce, pkt.ci, pkt.hint, pkt.loc = _cci(cci)
    else:
        ecn = f.get("ip.ecn")
        if isinstance(ecn, list):
            ecn = ecn[-1]
        pkt.ce = int(ecn == 3)
    return pkt
#: UBoE IPv4 frame: the ICRC covers from byte 14 (IP); ToS, TTL, IP checksum and UDP checksum
#: are seen as ones (UB 2.0 §5.3.7), from the icrc_mask field flags.
_UBOE_MASKS = HEADERS["ip"].icrc_masks(14) + HEADERS["udp"].icrc_masks(34)
_UBOE_HDR_END = 42
_UBOE_ORMASK = 0
for _o, _n, _first in _UBOE_MASKS:
    for _j in range(_n):
        _UBOE_ORMASK |= (_first if _j == 0 else 0xFF) << (8 * (_UBOE_HDR_END - (_o + _j) - 1))


_CNA16, _CNA24 = HEADERS["ub.cna16"], HEADERS["ub.cna24"]
_CNA16_ORMASK = int.from_bytes(bytes(
    0xFF if any(o <= i < o + n for o, n, _ in _CNA16.icrc_masks(0)) else 0
    for i in range(_CNA16.size)), "big")
_CNA24_ORMASK = int.from_bytes(bytes(
    0xFF if any(o <= i < o + n for o, n, _ in _CNA24.icrc_masks(0)) else 0
    for i in range(_CNA24.size)), "big")


def _plength_ok(mv, crc_mode: bool) -> bool:
    """LPH PLENGTH (bits 13:0 of bytes 2-3, UB 2.0 §4.3.2.2) describes this many bytes."""
    return packet_length(((mv[2] & 0x3F) << 8) | mv[3], crc_mode) == len(mv)


def _icrc_uboe(mv, end: int, l3: int = 14) -> int:
    """The UBoE ICRC (UB 2.0 §5.3.7) of ``mv[:end]``: the IPv4 header (no options) at byte
    ``l3`` (14, or 18 behind an 802.1Q tag) and the UDP header with their masked fields as ones,
    then everything after them."""
    udp_end = l3 + _UBOE_HDR_END - 14
    head = (int.from_bytes(mv[l3:udp_end], "big") | _UBOE_ORMASK).to_bytes(
        _UBOE_HDR_END - 14, "big")
    return zlib.crc32(mv[udp_end:end], zlib.crc32(head))
