"""Data-link control blocks found in packet captures (UB 2.0 §4.3.3).

A DLLCB is read by the link layer's one reader, :func:`ubpkt.link.control.read_control` (the
flit-stream Deframer and the DLL engine use it too); this module only says how a capture's
profile frames it and adds what it read to the frame.
"""
from __future__ import annotations

from ..link.control import read_control
from ..profile import Profile
from .frame import ERROR, WARNING, Frame


def dllcb_options(p: Profile) -> dict:
    """How a DLLCB in a capture is read under profile ``p``: trailer (G6 ``dllcb_bcrc``: a BCRC
    in CRC mode, END in non-CRC mode, none for ns-3-UB), BCRC coverage, CRD_NUM VL order, and a
    CLENGTH/length mismatch as an error (a warning with the ns-3-UB layouts)."""
    return {"trailer": ("bcrc" if p.crc_mode else "end") if p.dllcb_bcrc else None,
            "covers_info": p.bcrc_covers_info, "vl0_first": p.crd_ack_vl0_first,
            "clength_severity": WARNING if p.ns3_layouts else ERROR}


def _dllcb(fr: Frame) -> None:
    cb = read_control(fr.buf, fr.pos, fr.end, whole_frame=False, **dllcb_options(fr.profile))
    fr.layers += cb.layers
    fr.fields.update(cb.fields)
    fr.issues += cb.issues
    fr.pos = cb.end
