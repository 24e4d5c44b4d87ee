"""Bytes to a decoded record: layers, a flat field map and issues.  Never raises on input.

The walk follows UB 2.0 App B (packet formats): the LPH's CFG picks the network header, the NTH's
NLP (or UDP port 4792 over IP) the transport header, the transport NLP what follows, and the
transaction opcode the extension headers (§7.4 Tables 7-2/7-4).  Each step reads one declared
header (``ubpkt.formats``) through its generated fast decoder.
"""
from __future__ import annotations

from .formats import HEADERS
from .formats import enums as E
from .formats.core import Header, value_to_text
from .link.crc30 import bcrc_crc30, crc30
from .link.plength import packet_length
from .network.icrc import icrc, masks_for_cna16, masks_for_cna24, masks_for_ip
from .profile import SPEC, Profile

H = HEADERS

ERROR, WARNING, INFO = "error", "warning", "info"

LINKTYPE_ETHERNET = 1
LINKTYPE_NS3 = 147
LINKTYPE_UB = 148
LINKTYPE_FLITS = 149

_ATAH_OPS = E.TA_RESPONSES

#: Layers that are runs of raw bytes, and the one hex field each carries.
BYTE_LAYERS = {
    "data": "data.data", "trailer": "frame.trailer", "eth.trailer": "eth.trailer",
    "ip.options": "ip.options", "ub.pad": "ub.pad.data", "ub.saetph_bitmap": "ub.saetph.bitmap",
    "ub.beetah": "ub.beetah.be", "ub.cb_body": "ub.cb.body", "ub.pdu": "ub.pdu.data",
    "ub.scan_fwd": "ub.scan.fwd_path", "ub.scan_ret": "ub.scan.ret_path",
    "ub.scan_tlv_value": "ub.scan_tlv.value", "ub.ciph_protected": "ub.ciph.protected",
    "ub.ciph_icv": "ub.ciph.icv", "ub.lldp_value": "ub.lldp.tlv_value",
    "ub.lacp_value": "ub.lacp.tlv_value", "bootp.options": "bootp.options",
}


class Frame:
    """The dissection state of one frame."""

    __slots__ = ("buf", "pos", "end", "layers", "fields", "issues", "profile", "_seen",
                 "icrc_start", "icrc_masks", "pad", "tph_start", "cfg", "full_tah", "tp_data",
                 "_multi")

    def __init__(self, buf, profile: Profile):
        self.buf = buf
        self.pos = 0
        self.end = len(buf)
        self.layers: list[str] = []
        self.fields: dict = {}
        self.issues: list[dict] = []
        self.profile = profile
        self._seen: set = set()
        self._multi: set = set()
        self.icrc_start = None
        self.icrc_masks = None
        self.pad = 0
        self.tph_start = None
        self.cfg = None
        self.full_tah = True
        self.tp_data = False

    # -- reporting -------------------------------------------------------------------------------
    def issue(self, severity: str, layer: str, field: str | None, offset: int, message: str):
        self.issues.append({"severity": severity, "layer": layer, "field": field,
                            "offset": offset, "message": message})

    # -- reading -----------------------------------------------------------------------------------
    def take(self, h: Header):
        """Decode header ``h`` at the current position; None (with an error) if truncated."""
        pos = self.pos
        if pos + h.size > self.end:
            self.issue(ERROR, h.layer, None, pos,
                       f"truncated {h.title}: needs {h.size} bytes, {max(self.end - pos, 0)} left")
            return None
        if h.base in self._seen:
            vals = h.unpack(self.buf, pos)
            self.pos = pos + h.size
            self._record(h, vals, pos)
            return vals
        vals, raw = h.record_into(self.buf, pos, self.fields)
        self.pos = pos + h.size
        self._seen.add(h.base)
        self.layers.append(h.layer)
        if raw & h.rsvd_mask:
            self._reserved(h, vals, pos)
        if h.fixed_fields:
            for i, f in h.fixed_fields:
                if vals[i] != f.fixed:
                    self.issue(WARNING, h.layer, h.keys[i], pos,
                               f"{h.keys[i]} is {vals[i]:#x}, the spec fixes {f.fixed:#x}")
        return vals

    def _record(self, h: Header, vals, pos: int) -> None:
        shown = vals
        if h.shift_fields:
            shown = list(vals)
            for i, s in h.shift_fields:
                shown[i] = vals[i] << s
        if h.text_fields:
            shown = list(shown)
            for i, fmt, bits in h.text_fields:
                shown[i] = value_to_text(fmt, vals[i], bits)
        fields = self.fields
        if h.base in self._seen:
            # a header seen again (or one sharing field names with an earlier one): values
            # accumulate in lists, in wire order
            for k, v in zip(h.keys, shown):
                self._add_repeated(k, v)
            for key, _, i, enum in h.enum_fields:
                self._add_repeated(key, enum.get(vals[i], f"unknown_{vals[i]}"))
        else:
            self._seen.add(h.base)
            fields.update(zip(h.keys, shown))
            for key, _, i, enum in h.enum_fields:
                v = vals[i]
                fields[key] = enum[v] if v in enum else f"unknown_{v}"
        self.layers.append(h.layer)
        if h.rsvd_mask:
            self._reserved(h, vals, pos)
        for i, f in h.fixed_fields:
            if vals[i] != f.fixed:
                self.issue(WARNING, h.layer, h.keys[i], pos,
                           f"{h.keys[i]} is {vals[i]:#x}, the spec fixes {f.fixed:#x}")

    def _reserved(self, h: Header, vals, pos: int) -> None:
        for i in h.rsvd_idx:
            if vals[i]:
                self.issue(WARNING, h.layer, h.keys[i], pos,
                           f"reserved bits set in {h.title} ({h.keys[i]} = {vals[i]:#x})")

    def _add_repeated(self, key: str, value) -> None:
        fields = self.fields
        if key not in fields:
            fields[key] = value
        elif key in self._multi:
            fields[key].append(value)
        else:
            fields[key] = [fields[key], value]
            self._multi.add(key)

    def take_bytes(self, layer: str, n: int, *, zero: bool = False) -> bytes | None:
        """A run of ``n`` raw bytes as a layer with one hex field; None if truncated."""
        key = BYTE_LAYERS[layer]
        pos = self.pos
        if n < 0:
            n = 0
        if pos + n > self.end:
            self.issue(ERROR, layer, key, pos, f"truncated: {n} bytes expected, "
                                               f"{max(self.end - pos, 0)} left")
            return None
        raw = bytes(self.buf[pos:pos + n])
        self.pos = pos + n
        self.layers.append(layer)
        self._add_repeated(key, raw.hex())
        if zero and any(raw):
            self.issue(WARNING, layer, key, pos, "padding or reserved bytes are not zero")
        return raw

    def rest_as_data(self) -> None:
        """What is left before the trailer is payload."""
        n = self.end - self.pos - self.pad
        if n > 0:
            self.take_bytes("data", n)
            self.fields["data.len"] = n
        if self.pad:
            if self.end - self.pos >= self.pad:
                self.take_bytes("ub.pad", self.pad, zero=True)
            self.pad = 0

    def peek(self, n: int = 1, at: int = 0) -> int | None:
        p = self.pos + at
        if p + n > self.end:
            return None
        return int.from_bytes(self.buf[p:p + n], "big")


# ------------------------------------------------------------------------------------------------
# entry points

def dissect(buf, linktype: int = LINKTYPE_UB, profile: Profile | None = None) -> Frame:
    """Decode one frame.  ``linktype``: 1 Ethernet (UBoE), 148 a UB network packet from its LPH,
    147 an ns-3-UB trace record (selects the ns3 dialect unless a profile is given)."""
    if profile is None:
        from .profile import NS3
        profile = NS3 if linktype == LINKTYPE_NS3 else SPEC
    fr = Frame(buf, profile)
    try:
        if linktype == LINKTYPE_ETHERNET:
            _ethernet(fr)
        elif linktype in (LINKTYPE_UB, LINKTYPE_NS3):
            _ub_packet(fr)
        else:
            fr.issue(INFO, "frame", None, 0, f"link type {linktype} is not decoded here")
            fr.rest_as_data()
    except Exception as exc:  # a decoder bug must not take the whole run down
        fr.issue(ERROR, "frame", None, fr.pos, f"decoder failure: {type(exc).__name__}: {exc}")
    if fr.pos < len(buf):
        # anything not consumed (after an error) is kept so that the frame re-encodes exactly
        fr.end = len(buf)
        fr.pad = 0
        n = len(buf) - fr.pos
        if n:
            fr.take_bytes("data" if "data" not in fr.layers else "trailer", n)
    if not any(layer.startswith("ub.") for layer in fr.layers):
        fr.issue(INFO, "frame", None, 0, "no UB layer in this frame")
    return fr


# ------------------------------------------------------------------------------------------------
# carriers

def _ethernet(fr: Frame) -> None:
    v = fr.take(H["eth"])
    if v is None:
        return
    etype = v[2]
    while etype in (0x8100, 0x88A8):
        t = fr.take(H["vlan"])
        if t is None:
            return
        etype = t[3]
    if etype == 0x0800:
        _ip(fr, 4, uboe=True)
    elif etype == 0x86DD:
        _ip(fr, 6, uboe=True)
    else:
        fr.rest_as_data()


def _ip(fr: Frame, version: int, uboe: bool) -> None:
    ip_start = fr.pos
    if version == 4:
        v = fr.take(H["ip"])
        if v is None:
            return
        ihl, total, flags, frag, proto = v[1], v[4], v[6], v[7], v[9]
        if v[0] != 4:
            fr.issue(ERROR, "ip", "ip.version", ip_start, f"IP version {v[0]} in an IPv4 header")
            return
        if ihl < 5:
            fr.issue(ERROR, "ip", "ip.hdr_len", ip_start, f"IHL {ihl} < 5")
            return
        if ihl > 5:
            if fr.take_bytes("ip.options", (ihl - 5) * 4) is None:
                return
        ip_end = ip_start + total
        if frag or flags & 1:
            fr.issue(INFO, "ip", "ip.frag_offset", ip_start, "IP fragment: not reassembled")
            proto = -1
    else:
        v = fr.take(H["ipv6"])
        if v is None:
            return
        proto = v[4]
        ip_end = ip_start + 40 + v[3]
    if ip_end > fr.end:
        fr.issue(ERROR, fr.layers[-1], f"{fr.layers[-1]}.len", ip_start,
                 f"IP length points {ip_end - fr.end} bytes past the frame")
        ip_end = fr.end
    elif ip_end < fr.end:
        if uboe:
            trailer_end = fr.end
            fr.end = ip_end
            _after_ip(fr, proto, ip_start, version)
            fr.end = trailer_end
            if fr.pos < ip_end:
                return
            fr.take_bytes("eth.trailer", trailer_end - fr.pos)
            return
        fr.issue(WARNING, fr.layers[-1], None, ip_start, "bytes after the IP packet")
    _after_ip(fr, proto, ip_start, version)


def _after_ip(fr: Frame, proto: int, ip_start: int, version: int) -> None:
    p = fr.profile
    if proto != 17:
        fr.rest_as_data()
        return
    udp_start = fr.pos
    u = fr.take(H["udp"])
    if u is None:
        return
    if u[2] != fr.end - udp_start:
        fr.issue(WARNING if p.check_udp_zero_checksum else INFO, "udp", "udp.length", udp_start,
                 f"UDP length {u[2]}, {fr.end - udp_start} bytes present")
    if not (u[1] in p.ub_udp_ports or p.any_udp_port_is_ub):
        if u[1] in (67, 68) and fr.cfg == 5 and fr.end - fr.pos >= H["bootp"].size:
            fr.take(H["bootp"])
            if fr.end > fr.pos:
                fr.take_bytes("bootp.options", fr.end - fr.pos)
        fr.rest_as_data()
        return
    if u[3] != 0 and p.check_udp_zero_checksum:
        fr.issue(WARNING, "udp", "udp.checksum", udp_start, "UB over UDP wants checksum 0")
    if p.check_ipv4_df and version == 4:
        if fr.fields.get("ip.flags") != 2:
            fr.issue(WARNING, "ip", "ip.flags", ip_start, "UB over IPv4 wants DF set (flags 0b010)")
    if p.icrc:
        fr.icrc_start = ip_start
        fr.icrc_masks = masks_for_ip(ip_start, version, udp_start)
        if not _reserve_icrc(fr):
            return
    _rtph_or_utph(fr)
    _finish_icrc(fr)


# ------------------------------------------------------------------------------------------------
# UB network packet (from the LPH)

def _ub_packet(fr: Frame) -> None:
    p = fr.profile
    b1 = fr.peek(1, 1)
    if b1 is not None and b1 & 0x0F == 0:
        _dllcb(fr)
        return
    lph_h = H["ub.lph_ns3"] if p.lph_rt_swapped else H["ub.lph"]
    v = fr.take(lph_h)
    if v is None:
        return
    cfg = v[6]
    fr.cfg = cfg
    if p.lph_rt_swapped:
        fr.fields["ub.lph.rt"] = (v[8] << 1) | v[7]
        fr.fields["ub.lph.rt_name"] = E.RT[(v[8] << 1) | v[7]]
    plen = v[-1]
    fr.fields["ub.lph.blocks"] = (plen >> 10) + 1
    fr.fields["ub.lph.last_flits"] = ((plen >> 5) & 0x1F) + 1
    if p.check_plength:
        expected = packet_length(plen, p.crc_mode)
        if expected is None:
            fr.issue(WARNING, lph_h.layer, "ub.lph.plength", 0,
                     f"PLENGTH {plen:#06x} uses a reserved encoding")
        elif expected != fr.end:
            fr.issue(WARNING, lph_h.layer, "ub.lph.plength", 0,
                     f"PLENGTH describes {expected} bytes, the packet has {fr.end}")
    if cfg in (3, 4):
        n = fr.take(H["ub.nth"])
        if n is None:
            return
        _cci(fr, n[0], "ub.nth")
        if n[2] == 0:
            fr.issue(WARNING if p.check_npi else INFO, "ub.nth", "ub.nth.npi", 4, "NPI 0 is invalid for IP packets")
        ipv = fr.peek()
        if ipv is None:
            return
        if ipv >> 4 != (4 if cfg == 3 else 6):
            fr.issue(ERROR, "ub.nth", "ub.lph.cfg", fr.pos,
                     f"CFG {cfg} but the IP header says version {ipv >> 4}")
            return
        _ip(fr, 4 if cfg == 3 else 6, uboe=False)
    elif cfg == 5:
        _cfg5(fr)
    elif cfg in (6, 9):
        _cna(fr, 16, cfg)
    elif cfg == 7:
        _cna(fr, 24, cfg)
    else:
        fr.issue(ERROR, lph_h.layer, "ub.lph.cfg", 1, f"reserved CFG value {cfg}")
        fr.rest_as_data()


def _cci(fr: Frame, cci: int, layer: str) -> None:
    if fr.profile.cci_dont_care_on_cna and layer != "ub.nth":
        return
    mode = cci >> 13
    h = {0: H["ub.cci_caqm"], 4: H["ub.cci_fecn"], 2: H["ub.cci_fecn_rtt"]}.get(mode,
                                                                             H["ub.cci_rsvd"])
    vals = h.unpack(cci.to_bytes(2, "big"))
    fr.fields.update(zip(h.keys, vals))
    for key, _, i, enum in h.enum_fields:
        fr.fields[key] = enum.get(vals[i], f"unknown_{vals[i]}")


def _reserve_icrc(fr: Frame) -> bool:
    if fr.end - fr.pos < 4:
        fr.issue(ERROR, "ub.icrc", "ub.icrc.value", fr.pos, "no room for the ICRC")
        fr.icrc_start = None
        return False
    fr.end -= 4
    return True


def _finish_icrc(fr: Frame) -> None:
    fr.rest_as_data()
    if fr.icrc_start is None:
        return
    if fr.pos != fr.end:
        # decoding stopped early: keep the bytes up to the ICRC
        fr.take_bytes("data" if "data" not in fr.layers else "trailer", fr.end - fr.pos)
    end = fr.end
    raw = bytes(fr.buf[end:end + 4])
    stored = int.from_bytes(raw, fr.profile.icrc_byteorder)
    computed = icrc(fr.buf, fr.icrc_start, end, fr.icrc_masks)
    fr.end = end + 4
    fr.pos = end + 4
    fr.layers.append("ub.icrc")
    fr.fields["ub.icrc.value"] = stored
    if stored == computed:
        fr.fields["ub.icrc.status"] = "good"
    else:
        fr.fields["ub.icrc.status"] = "bad"
        fr.fields["ub.icrc.computed"] = computed
        fr.issue(ERROR, "ub.icrc", "ub.icrc.value", end,
                 f"ICRC {stored:#010x}, computed {computed:#010x}")
    fr.icrc_start = None


def _cna(fr: Frame, width: int, cfg: int) -> None:
    p = fr.profile
    nth_start = fr.pos
    if width == 16:
        h = H["ub.cna16_ns3"] if p.cna_little_endian else H["ub.cna16"]
    else:
        h = H["ub.cna24_ns3"] if p.cna_little_endian else H["ub.cna24"]
    v = fr.take(h)
    if v is None:
        return
    nlp = v[-1]
    _cci(fr, v[2], h.layer)
    if cfg == 9:
        if v[5] if width == 16 else 0:
            fr.issue(WARNING, h.layer, "ub.cna16.mgmt", nth_start + 7, "Mgmt must be 0 in CFG 9")
        if nlp != 0:
            fr.issue(WARNING, h.layer, f"{h.layer}.nlp", nth_start + 7,
                     f"NLP {nlp} in CFG 9 (only 0, TAH, is defined)")
        # TP bypass: no transport header, no UPIH/EIDH, no ICRC (App B Table B-1).
        fr.full_tah = False
        _tah(fr)
        fr.rest_as_data()
        return
    fr.full_tah = p.cna_tah_form == "full"
    enum = width == 16 and nlp == 1
    if p.icrc and (not enum or p.enum_icrc):
        fr.icrc_start = nth_start
        fr.icrc_masks = (masks_for_cna16 if width == 16 else masks_for_cna24)(nth_start)
        if not _reserve_icrc(fr):
            return
    if nlp == 0:
        _ctph(fr)
    elif enum:
        _enumeration(fr)
    elif nlp == 2:
        fr.full_tah = True
        _rtph_or_utph(fr)
    else:
        fr.issue(ERROR, h.layer, f"{h.keys[-1]}", nth_start + h.size - 1, f"reserved NLP {nlp}")
        fr.rest_as_data()
    _finish_icrc(fr)


# ------------------------------------------------------------------------------------------------
# transport

def _rtph_or_utph(fr: Frame) -> None:
    p = fr.profile
    start = fr.pos
    op = fr.peek()
    if op is None:
        fr.issue(ERROR, "ub.rtph", None, start, "truncated transport header")
        return
    fr.tph_start = start
    if op & 0x7F == 0:
        v = fr.take(H["ub.utph"])
        if v is None:
            return
        fr.pad = v[3]
        if v[0]:
            fr.issue(WARNING, "ub.utph", "ub.utph.last", start, "TPOpcode[7] set on a UTP packet")
        _after_tph_nlp(fr, v[4], "ub.utph", rtp=True)
        return
    v = fr.take(H["ub.rtph"])
    if v is None:
        return
    last, opc, nlp = v[0], v[1], v[4]
    fr.pad = v[3]
    if last and opc != 1:
        fr.issue(WARNING, "ub.rtph", "ub.rtph.last", start,
                 "TPOpcode[7] (last packet) is only valid on RTP data packets")
    if v[2] != 0:
        fr.issue(WARNING, "ub.rtph", "ub.rtph.tpver", start + 1, f"TPVer {v[2]} (0 expected)")
    if opc == 1:
        fr.tp_data = True
        _after_tph_nlp(fr, nlp, "ub.rtph", rtp=True)
        return
    if opc in (3, 6):
        _cetph(fr)
    if opc in (5, 6):
        s = fr.take(H["ub.saetph"])
        if s is None:
            return
        bits = E.SACK_BITMAP_BITS.get(s[1])
        if bits is None:
            fr.issue(ERROR, "ub.saetph", "ub.saetph.bitmapsize", fr.pos - 4,
                     f"reserved BitMapSize {s[1]}")
            return
        if fr.take_bytes("ub.saetph_bitmap", bits // 8) is None:
            return
    if opc == 8:
        fr.take(H["ub.cetph_cnp"])
        return
    if opc in (2, 3, 5, 6) or (opc == 4 and p.ns3_layouts):
        if opc == 4:
            fr.issue(INFO, "ub.rtph", "ub.rtph.tpopcode", start,
                     "TPOpcode 4 is reserved; ns-3-UB 1.2 uses it for TPNAK")
        if p.tp_response_atah and fr.end - fr.pos - fr.pad >= 8:
            _tah(fr)
        return
    fr.issue(WARNING, "ub.rtph", "ub.rtph.tpopcode", start, f"reserved TPOpcode {opc:#x}")


def _cetph(fr: Frame) -> None:
    p = fr.profile
    if p.ns3_layouts:
        fr.take(H["ub.cetph_caqm_ns3"])
    elif p.cetph_variant == "ldcp":
        fr.take(H["ub.cetph_ldcp"])
    else:
        fr.take(H["ub.cetph_caqm"])


def _ctph(fr: Frame) -> None:
    start = fr.pos
    fr.tph_start = start
    v = fr.take(H["ub.ctph"])
    if v is None:
        return
    op, pad, nlp = v
    fr.pad = pad
    if op == 1:
        if not fr.profile.ctp_cnp_cetph:
            return
        fr.take(H["ub.cetph_cnp"])
        return
    if op != 0:
        fr.issue(WARNING, "ub.ctph", "ub.ctph.tpopcode", start, f"reserved CTP opcode {op}")
    _after_tph_nlp(fr, nlp, "ub.ctph", rtp=False)


def _after_tph_nlp(fr: Frame, nlp: int, layer: str, rtp: bool) -> None:
    if nlp == 0:
        pass
    elif nlp == 1:
        if fr.take(H["ub.upih32"]) is None or fr.take(H["ub.eidh256"]) is None:
            return
    elif nlp == 2 and not rtp:
        if fr.take(H["ub.upih16"]) is None or fr.take(H["ub.eidh40"]) is None:
            return
    elif nlp == 3:
        _ciph(fr)
        return
    else:
        fr.issue(ERROR, layer, f"{layer}.nlp", fr.pos - 1, f"reserved NLP {nlp}")
        return
    _tah(fr)
    fr.rest_as_data()


def _ciph(fr: Frame) -> None:
    fr.issue(INFO, "ub.ciph", None, fr.pos,
             "CIPH layout is a reference-profile placeholder (the spec gives no figure text)")
    v = fr.take(H["ub.ciph"])
    if v is None:
        return
    icv = fr.profile.ciph_icv_len
    if fr.end - fr.pos < icv:
        fr.issue(ERROR, "ub.ciph", None, fr.pos, "no room for the ICV")
        return
    # the protected part is opaque; the ICV closes it
    body = fr.end - fr.pos - icv
    fr.take_bytes("ub.ciph_protected", body)
    fr.take_bytes("ub.ciph_icv", icv)


# ------------------------------------------------------------------------------------------------
# transaction

#: Extension headers after a request's BTAH, in order, per TAOpcode (UB 2.0 §7.4 Table 7-2):
#: "tv" = TVETAH when TV_EN, "taid?X"/"ofst?X" = TAIDETAH/OFSTETAH when the profile says so.
REQUEST_HEADERS = {
    0x00: ("mtetah", "ofstetah", "tv"),
    0x01: ("mtetah", "ofstetah", "immetah", "tv"),
    0x03: ("maetah", "tv"),
    0x04: ("mtetah", "maetah", "immetah", "tv"),
    0x05: ("maetah", "ntfetah", "tv"),
    0x06: ("taid?read", "ofst?read", "maetah", "tv"),
    0x10: ("mgmtetah",),
    0x14: ("maetah", "tv", "beetah"),
    0x15: ("maetah",),
    0x17: ("maetah", "tv"),
    0x18: ("maetah", "tv", "beetah"),
}
for _op in E.ATOMICS:
    REQUEST_HEADERS[_op] = ("taid?atomic", "maetah", "tv")
#: The same after a response's ATAH (Table 7-4).
RESPONSE_HEADERS = {0x11: (), 0x12: ("taid?read_response", "ofst?read_response"),
            0x13: ("taid?atomic_response",)}


def _tah(fr: Frame) -> None:
    p = fr.profile
    op = fr.peek()
    if op is None:
        fr.issue(ERROR, "ub.btah", None, fr.pos, "truncated transaction header")
        return
    start = fr.pos
    if op in _ATAH_OPS and fr.tp_data and fr.full_tah and p.ns3_layouts:
        # ns-3-UB sends TA responses in RTP data packets as TAH + MAETAH (dialect §6.7)
        if fr.take(H["ub.btah"]) is None:
            return
        seq = ("maetah",)
        flags = {}
    elif op in _ATAH_OPS:
        if fr.full_tah:
            h = H["ub.atah_ns3"] if p.ns3_layouts else H["ub.atah"]
        else:
            h = H["ub.atah_c"]
        if fr.take(h) is None:
            return
        seq = RESPONSE_HEADERS[op]
        flags = {}
    else:
        h = H["ub.btah"] if fr.full_tah else H["ub.btah_c"]
        v = fr.take(h)
        if v is None:
            return
        flags = {"tv": v[3], "ud": v[6]}
        if op not in E.TAOPCODE:
            fr.issue(WARNING, h.layer, "ub.btah.taopcode", start, f"reserved TAOpcode {op:#04x}")
            return
        if flags["ud"]:
            u = fr.take(H["ub.udetah"])
            if u is None:
                return
            if op in (0x09, 0x0A):
                sub = (u[0] >> 20) & 0xF
                fr.fields["ub.udetah.atomic_op"] = sub
                fr.fields["ub.udetah.atomic_op_name"] = E.ATOMIC_SUBOP.get(sub, f"unknown_{sub}")
        seq = REQUEST_HEADERS[op]
        if fr.full_tah:
            mt = 1 if "mtetah" in seq else 0
            if v[10] != mt:
                fr.issue(WARNING, h.layer, "ub.btah.mt_en", start + 4,
                         f"MT_EN is {v[10]} but {E.TAOPCODE[op]} {'carries' if mt else 'has no'}"
                         " MTETAH")
    for step in seq:
        ok = True
        if step == "tv":
            if flags.get("tv"):
                ok = fr.take(H["ub.tvetah"]) is not None
        elif step.startswith("taid?"):
            if getattr(p, step[5:] + "_taidetah"):
                ok = fr.take(H["ub.taidetah"]) is not None
        elif step.startswith("ofst?"):
            if getattr(p, step[5:] + "_ofstetah"):
                ok = fr.take(H["ub.ofstetah"]) is not None
        elif step == "maetah":
            if fr.full_tah:
                mh = H["ub.maetah"]
                ok = fr.take(mh) is not None
            else:
                mh = H["ub.maetah_c_ns3"] if p.ns3_layouts else H["ub.maetah_c"]
                m = fr.take(mh)
                ok = m is not None
                if ok:
                    fr.fields["ub.maetah.length"] = 64 << m[3]
        elif step == "beetah":
            ok = _beetah(fr)
        elif step == "mgmtetah":
            _management(fr)
            return
        else:
            ok = fr.take(H["ub." + step]) is not None
        if not ok:
            return


def _beetah(fr: Frame) -> bool:
    # UB 2.0 §7.2.10: one BE bit per payload byte, payload of 64..1024 bytes, so the BEETAH and the
    # payload together are 9/8 of the payload.
    avail = fr.end - fr.pos - fr.pad
    n = avail * 8 // 9
    if n * 9 != avail * 8 or n not in (64, 128, 256, 512, 1024):
        fr.issue(ERROR, "ub.beetah", "ub.beetah.be", fr.pos,
                 f"{avail} bytes cannot be a BEETAH plus its 64..1024-byte payload")
        return False
    return fr.take_bytes("ub.beetah", n // 8) is not None


# ------------------------------------------------------------------------------------------------
# management

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
    r, typ, hops, step = s[1], s[2], s[3], s[4]
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


def _cfg5(fr: Frame) -> None:
    v = fr.take(H["ub.cfg5"])
    if v is None:
        return
    proto = v[0]
    if fr.profile.cfg5_icrc:
        fr.icrc_start = 4
        fr.icrc_masks = []
        if not _reserve_icrc(fr):
            return
    if proto == 0x0102:
        ver = fr.peek()
        if ver is not None:
            fr.take(H["ub.ip_notify6"] if ver >> 4 == 2 else H["ub.ip_notify"])
    elif proto == 0x0106:
        n = fr.take(H["ub.npic"])
        if n is not None:
            for _ in range(n[2]):
                if fr.take(H["ub.npic_entry"]) is None:
                    break
    elif proto in (0x0100, 0x0101):
        ver = fr.peek()
        if ver is not None and ver >> 4 in (4, 6):
            _ip(fr, ver >> 4, uboe=False)
            _finish_icrc(fr)
            return
    elif proto == 0x0109:
        _tlvs(fr, H["ub.lldp_tlv"], "ub.lldp_value", lambda t: t[1], end_type=0)
    elif proto == 0x0104:
        if fr.take(H["ub.lacp"]) is not None:
            _tlvs(fr, H["ub.lacp_tlv"], "ub.lacp_value", lambda t: t[1] - 2, end_type=0)
    fr.rest_as_data()
    _finish_icrc(fr)


def _tlvs(fr: Frame, h: Header, value_layer: str, value_len, end_type: int) -> None:
    """A run of type/length/value items up to an end TLV or the end of the frame."""
    while fr.end - fr.pos - fr.pad >= h.size:
        t = fr.take(h)
        if t is None:
            return
        if t[0] == end_type and t[1] == 0:
            return
        n = value_len(t)
        if n < 0:
            fr.issue(ERROR, h.layer, f"{h.base}.tlv_len", fr.pos - h.size, f"TLV length {t[1]}")
            return
        if n and fr.take_bytes(value_layer, n) is None:
            return
        if t[0] == end_type:
            return


# ------------------------------------------------------------------------------------------------
# data-link control blocks in packet captures

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
            info = (b[0] << 1 | b[1]) if p.bcrc_covers_info else None
            block = bytes(fr.buf[:fr.pos - 4])
            calc = bcrc_crc30(block, info) if info is not None else crc30(block)
            if calc == b[2]:
                fr.fields["ub.bcrc.status"] = "good"
            else:
                fr.fields["ub.bcrc.status"] = "bad"
                fr.fields["ub.bcrc.computed"] = calc
                fr.issue(ERROR, "ub.bcrc", "ub.bcrc.crc30", fr.pos - 4,
                         f"CRC30 {b[2]:#010x}, computed {calc:#010x}")
