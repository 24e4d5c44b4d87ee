"""Transport headers: checks, padding and the irregular steps (UB 2.0 ch. 6).  What follows each
header is the grammar's (:data:`ubpkt.formats.grammar.NEXT`)."""
from __future__ import annotations

from ..formats import enums as E
from ..formats.core import Header
from ..formats.sack import sack_psns
from ..formats.grammar import COMPACT_TAH, NEXT, TP_RESPONSE_ATAH_BYTES, Switch
from .frame import ERROR, INFO, WARNING, Frame
from .transaction import _tah
from .walk import AFTER, PROCS, RESERVED_REPORTS, reads, run


def _utph(fr: Frame, h: Header, v, start: int):
    ix = h.index
    fr.tph_start = start
    fr.compact = COMPACT_TAH["ub.utph"]
    fr.pad = v[ix["padding"]]
    if v[ix["last"]]:
        fr.issue(WARNING, "ub.utph", "ub.utph.last", start, "TPOpcode[7] set on a UTP packet")
    return None


def _rtph(fr: Frame, h: Header, v, start: int):
    ix = h.index
    fr.tph_start = start
    fr.compact = COMPACT_TAH["ub.rtph"]
    last, opc = v[ix["last"]], v[ix["tpopcode"]]
    fr.pad = v[ix["padding"]]
    if last and opc != 1:
        fr.issue(WARNING, "ub.rtph", "ub.rtph.last", start,
                 "TPOpcode[7] (last packet) is only valid on RTP data packets")
    if opc == 1:
        fr.tp_data = True
    elif opc == 4 and fr.profile.ns3_layouts:
        fr.issue(INFO, "ub.rtph", "ub.rtph.tpopcode", start,
                 "TPOpcode 4 is reserved; ns-3-UB 1.2 uses it for TPNAK")
    return None


def _ctph(fr: Frame, h: Header, v, start: int):
    ix = h.index
    fr.tph_start = start
    fr.pad = v[ix["padding"]]
    op = v[ix["tpopcode"]]
    if op not in (0, 1):
        fr.issue(WARNING, "ub.ctph", "ub.ctph.tpopcode", start, f"reserved CTP opcode {op}")
    return None


def _tph_reserved(fr: Frame, h: Header, v, start: int) -> None:
    """A reserved TPOpcode (RTPH) or NLP (UB 2.0 §6.2.1 Table 6-2)."""
    rule = NEXT[h.layer]
    ix = h.index
    if isinstance(rule, Switch) and rule.key == "tpopcode" and h.layer == "ub.rtph":
        opc = v[ix["tpopcode"]]
        if opc not in rule.cases or opc == 4:
            fr.issue(WARNING, "ub.rtph", "ub.rtph.tpopcode", start, f"reserved TPOpcode {opc:#x}")
            return
    # the NLP is in byte 1 of an RTPH/UTPH, byte 0 of a CTPH
    fr.issue(ERROR, h.layer, f"{h.layer}.nlp", start + (1 if h.size > 1 else 0),
             f"reserved NLP {v[ix['nlp']]}")


def _saetph_bitmap(fr: Frame, h: Header, v) -> bool:
    """UB 2.0 §6.2.3: 8 << BitMapSize bytes of SACK bitmap."""
    size = v[h.index["bitmapsize"]]
    bits = E.SACK_BITMAP_BITS.get(size)
    if bits is None:
        fr.issue(ERROR, "ub.saetph", "ub.saetph.bitmapsize", fr.pos - h.size,
                 f"reserved BitMapSize {size}")
        fr.rest_as_data()
        return True
    raw = fr.take_bytes("ub.saetph_bitmap", bits // 8)
    if raw is None:
        return False
    psn = fr.fields.get("ub.rtph.psn")
    if isinstance(psn, int):
        # the PSNs the TPSACK reports received, BitMap[i] = RTPH.PSN + i (profile
        # sack_bit_order places BitMap[i] in the bytes)
        fr.fields["ub.saetph.acked_psns"] = sack_psns(raw, psn, fr.profile.sack_bit_order)
    return run(fr, NEXT["ub.saetph_bitmap"], h, v)


def _tp_response_atah(fr: Frame, h, v) -> bool:
    """Reference profile G10: an ATAH after a TP response, when 8 bytes remain."""
    if fr.end - fr.pos - fr.pad >= TP_RESPONSE_ATAH_BYTES:
        _tah(fr)
    fr.rest_as_data()
    return True


def _ciph(fr: Frame, h, v, start: int):
    fr.issue(INFO, "ub.ciph", None, start,
             "CIPH layout is a reference-profile placeholder (the spec gives no figure text)")
    return None


def _ciph_body(fr: Frame, h, v) -> bool:
    """The CIPH layout is reference profile G9: the protected part is opaque, the ICV closes
    it.  Reached after the CIPH, or after the clear-text UPIH/EIDH of CIPH NLP 0/1."""
    icv = fr.profile.ciph_icv_len
    room = fr.end - fr.pos - fr.pad         # the ICV closes the TP body, before its padding
    if room < icv:
        fr.issue(ERROR, "ub.ciph", None, fr.pos, "no room for the ICV")
        fr.rest_as_data()
        return True
    body = room - icv
    fr.take_bytes("ub.ciph_protected", body)
    fr.take_bytes("ub.ciph_icv", icv)
    fr.rest_as_data()
    return True


reads("ub.rtph", "last", "tpopcode", "tpver", "padding", "nlp")
reads("ub.utph", "last", "tpopcode", "padding", "nlp")
reads("ub.ctph", "tpopcode", "padding", "nlp")
reads("ub.saetph", "bitmapsize")
reads("ub.ciph", "nlp")
AFTER.update({"ub.rtph": _rtph, "ub.utph": _utph, "ub.ctph": _ctph, "ub.ciph": _ciph})
RESERVED_REPORTS.update({"ub.rtph": _tph_reserved, "ub.utph": _tph_reserved,
                         "ub.ctph": _tph_reserved})
PROCS.update({"@saetph_bitmap": _saetph_bitmap, "@tp_response_atah": _tp_response_atah,
              "@ciph_body": _ciph_body})
