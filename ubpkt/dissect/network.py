"""The UB network packet from its LPH: checks and derived fields of the LPH, the NTH forms, the
CCI views and CFG-5 frames (UB 2.0 ch. 5, App B, App F).  Which header follows which is the
grammar's (:mod:`ubpkt.formats.grammar`); this module hooks the layers into the walk."""
from __future__ import annotations

from ..formats import enums as E
from ..formats.core import Header
from ..formats.grammar import COMPACT_TAH, icrc_start
from ..link.plength import packet_length, plength_blocks, plength_last_flits
from .frame import ERROR, H, INFO, WARNING, Frame, finish_section, open_icrc
from .walk import AFTER, PROCS, RESERVED_REPORTS, follow, reads, run_from


# -- LPH (UB 2.0 §4.3.2.2) -------------------------------------------------------------------------

def _lph(fr: Frame, h: Header, v, start: int):
    p = fr.profile
    ix = h.index
    fr.cfg = v[ix["cfg"]]
    if p.lph_rt_swapped:
        # ns-3-UB writes RT with its two bits swapped: show the spec's RT (derived)
        rt = (v[ix["rt_shortest"]] << 1) | v[ix["rt_perpacket"]]
        fr.fields["ub.lph.rt"] = rt
        fr.fields["ub.lph.rt_name"] = E.RT[rt]
    plen = v[ix["plength"]]
    fr.fields["ub.lph.blocks"] = plength_blocks(plen)
    fr.fields["ub.lph.last_flits"] = plength_last_flits(plen)
    if p.check_plength:
        expected = packet_length(plen, p.crc_mode)
        if expected is None:
            fr.issue(WARNING, h.layer, "ub.lph.plength", 0,
                     f"PLENGTH {plen:#06x} uses a reserved encoding")
        elif expected != fr.end:
            fr.issue(WARNING, h.layer, "ub.lph.plength", 0,
                     f"PLENGTH describes {expected} bytes, the packet has {fr.end}")
    return None


def _lph_reserved(fr: Frame, h: Header, v, start: int) -> None:
    fr.issue(ERROR, h.layer, "ub.lph.cfg", 1, f"reserved CFG value {v[h.index['cfg']]}")


# -- NTH, IP form (UB 2.0 §5.2.2) ------------------------------------------------------------------

def _nth(fr: Frame, h: Header, v, start: int):
    _cci(fr, v[h.index["cci"]], "ub.nth")
    if v[h.index["npi"]] == 0:
        fr.issue(WARNING if fr.profile.check_npi else INFO, "ub.nth", "ub.nth.npi", 4,
                 "NPI 0 is invalid for IP packets")
    ipv = fr.peek()
    if ipv is None:
        return False
    want = 4 if fr.cfg == 3 else 6
    if ipv >> 4 != want:
        fr.issue(ERROR, "ub.nth", "ub.lph.cfg", fr.pos,
                 f"CFG {fr.cfg} but the IP header says version {ipv >> 4}")
        return False
    return None


def _cci(fr: Frame, cci: int, layer: str) -> None:
    """The CCI word in the view its mode selects (UB 2.0 §5.3.5.1): fields ub.cci.*."""
    if fr.profile.cci_dont_care_on_cna and layer != "ub.nth":
        return
    mode = cci >> 13
    h = _CCI_VIEWS.get(mode, H["ub.cci_rsvd"])
    vals = h.unpack(cci.to_bytes(2, "big"))
    fr.fields.update(zip(h.keys, vals))
    for key, _, i, enum in h.enum_fields:
        fr.fields[key] = enum.get(vals[i], f"unknown_{vals[i]}")


_CCI_VIEWS = {0: H["ub.cci_caqm"], 4: H["ub.cci_fecn"], 2: H["ub.cci_fecn_rtt"]}


# -- CNA NTH (UB 2.0 §5.2.1): a section with an ICRC from the NTH (§5.3.7) ------------------------

def _cna(layer: str):
    def hook(fr: Frame, h: Header, v, start: int):
        p = fr.profile
        ix = h.index
        nlp = v[ix["nlp"]]
        _cci(fr, v[ix["cci"]], h.layer)
        if fr.cfg == 9:
            if "mgmt" in ix and v[ix["mgmt"]]:
                fr.issue(WARNING, h.layer, "ub.cna16.mgmt", start + 7, "Mgmt must be 0 in CFG 9")
            if nlp != 0:
                fr.issue(WARNING, h.layer, f"{h.layer}.nlp", start + 7,
                         f"NLP {nlp} in CFG 9 (only 0, TAH, is defined)")
        fr.compact = follow(fr, COMPACT_TAH[layer], h, v)
        if fr.cfg == 9:
            # TP bypass: no transport header, no ICRC (App B Table B-1)
            return run_from(fr, layer, h, v)
        if icrc_start(layer, fr.fields.get, p, own=lambda name: v[ix[name]]):
            if not open_icrc(fr, start, h.icrc_masks(start)):
                return True
        run_from(fr, layer, h, v)
        finish_section(fr)
        return True
    return hook


def _cna_reserved(fr: Frame, h: Header, v, start: int) -> None:
    fr.issue(ERROR, h.layer, h.base + ".nlp", start + h.size - 1,
             f"reserved NLP {v[h.index['nlp']]}")


# -- the Linux UB link netdev header (record.LINKTYPE_UBL) -----------------------------------------

def _ubl(fr: Frame, h: Header, v, start: int):
    # the CFG byte stands for the LPH's CFG (UB 2.0 §4.3.2.2): what CFG-5 payloads look at
    fr.cfg = v[h.index["cfg"]]
    return None


def _ubl_ip(fr: Frame, h: Header, v, start: int):
    # CC is the NTH's CCI word (UB 2.0 §5.2.3, §5.3.5.1): shown in its mode's view
    _cci(fr, v[h.index["cc"]], "ub.nth")
    return None


def _ubl_reserved(fr: Frame, h: Header, v, start: int) -> None:
    fr.issue(ERROR, h.layer, "ub.ubl.cfg", start,
             f"CFG {v[h.index['cfg']]}: a UB link netdev carries CFG 3, 4 or 5")


# -- CFG 5 (UB 2.0 App F.2) ------------------------------------------------------------------------

def _cfg5(fr: Frame, h: Header, v, start: int):
    if icrc_start("ub.cfg5", fr.fields.get, fr.profile):
        if not open_icrc(fr, start, h.icrc_masks(start)):
            return True
    run_from(fr, "ub.cfg5", h, v)
    finish_section(fr)
    return True


def _npic_entries(fr: Frame, h: Header, v) -> bool:
    for _ in range(v[h.index["sum"]]):
        if fr.take(H["ub.npic_entry"]) is None:
            break
    fr.rest_as_data()
    return True


def _tlvs(h: Header, value_layer: str, value_len, end_type: int):
    """A run of type/length/value items up to an end TLV or the end of the frame;
    ``value_len(tlv_len)`` is the value's size."""
    i_type, i_len = h.index["tlv_type"], h.index["tlv_len"]

    def proc(fr: Frame, _h, _v) -> bool:
        while fr.end - fr.pos - fr.pad >= h.size:
            t = fr.take(h)
            if t is None:
                break
            typ, length = t[i_type], t[i_len]
            if typ == end_type and length == 0:
                break
            n = value_len(length)
            if n < 0:
                fr.issue(ERROR, h.layer, f"{h.base}.tlv_len", fr.pos - h.size,
                         f"TLV length {length}")
                break
            if n and fr.take_bytes(value_layer, n) is None:
                break
            if typ == end_type:
                break
        fr.rest_as_data()
        return True
    return proc


reads("ub.lph", "cfg", "plength", "rt_perpacket", "rt_shortest")
reads("ub.nth", "cci", "npi")
reads("ub.cna16", "cci", "mgmt", "nlp")
reads("ub.cna24", "cci", "nlp")
reads("ub.ubl", "cfg")
reads("ub.ubl_ip", "cc")
reads("ub.npic", "sum")
reads("ub.lldp_tlv", "tlv_type", "tlv_len")
reads("ub.lacp_tlv", "tlv_type", "tlv_len")
reads("ub.ip_notify", "version")
reads("ub.ip_notify6", "version")
AFTER.update({"ub.lph": _lph, "ub.nth": _nth, "ub.cna16": _cna("ub.cna16"),
              "ub.cna24": _cna("ub.cna24"), "ub.cfg5": _cfg5, "ub.ubl": _ubl,
              "ub.ubl_ip": _ubl_ip})
RESERVED_REPORTS.update({"ub.lph": _lph_reserved, "ub.cna16": _cna_reserved,
                         "ub.cna24": _cna_reserved, "ub.ubl": _ubl_reserved})
PROCS.update({
    "@npic_entries": _npic_entries,
    # IEEE 802.1AB: the length counts the value; IEEE 802.1AX: it counts type and length too
    "@lldp_tlvs": _tlvs(H["ub.lldp_tlv"], "ub.lldp_value", lambda n: n, end_type=0),
    "@lacp_tlvs": _tlvs(H["ub.lacp_tlv"], "ub.lacp_value", lambda n: n - 2, end_type=0),
})

