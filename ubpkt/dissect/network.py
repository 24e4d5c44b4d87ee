"""The UB network packet from its LPH: CFG, NTH forms, CCI views and CFG-5 frames
(UB 2.0 ch. 5, App B, App F)."""
from __future__ import annotations

from ..formats import enums as E
from ..formats.core import Header
from ..link.plength import packet_length
from ..network.icrc import masks_for_cna16, masks_for_cna24
from .frame import ERROR, H, INFO, WARNING, Frame, _finish_icrc, _reserve_icrc
from .carriers import _ip
from .transport import _ctph, _rtph_or_utph
from .transaction import _tah
from .management import _enumeration
from .link import _dllcb


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
            fr.issue(WARNING if p.check_npi else INFO, "ub.nth", "ub.nth.npi", 4,
                     "NPI 0 is invalid for IP packets")
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
