"""Transport headers and what follows them (UB 2.0 ch. 6)."""
from __future__ import annotations

from ..formats import enums as E
from .frame import ERROR, H, INFO, WARNING, Frame
from .transaction import _tah


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
