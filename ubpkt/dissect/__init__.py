"""Bytes to a decoded record: layers, a flat field map and issues.  Never raises on input.

The walk (:mod:`.walk`) follows the packet grammar, :mod:`ubpkt.formats.grammar` (UB 2.0 App B:
the LPH's CFG picks the network header, the NTH's NLP or UDP port 4792 the transport header, the
transport NLP what follows, the transaction opcode the extension headers, §7.4).  Each step reads
one declared header (``ubpkt.formats``) through its generated fast decoder; the layer modules
(carriers, network, transport, transaction, management, link) hook their checks, derived fields
and the grammar's procedures into the walk.
"""
from __future__ import annotations

import sys as _sys

from ..formats.grammar import START
from ..profile import Profile, profile_for
from .frame import (BYTE_LAYERS, ERROR, INFO, LINKTYPE_ETHERNET, LINKTYPE_FLITS, LINKTYPE_NS3,
                    LINKTYPE_UB, WARNING, Frame)
from .walk import PROCS, reads, run
from . import carriers, management, network, transport  # noqa: F401  (register their hooks)
from .link import _dllcb
from .checks import declare_reads

declare_reads()


def _dllcb_proc(fr, h, v) -> bool:
    _dllcb(fr)
    return True


PROCS["@dllcb"] = _dllcb_proc
for _lch in ("ub.lch", "ub.lch_crd_ack", "ub.lch_block_mode_chg"):
    reads(_lch, "clength", "ctrl", "sub_ctrl")    # UB 2.0 §4.3.3.1: the block kind and size
reads("ub.crd_ack", "crd_num")                    # credits per VL (derived fields)
reads("ub.crd_ack_ns3", "crd_num")
from ..record import make_record

__all__ = ["decode", "dissect", "Frame", "BYTE_LAYERS", "ERROR",
           "WARNING", "INFO", "LINKTYPE_ETHERNET", "LINKTYPE_NS3", "LINKTYPE_UB", "LINKTYPE_FLITS"]


def dissect(buf, linktype: int = LINKTYPE_UB, profile: Profile | None = None, *,
            layer_list=None) -> Frame:
    """Decode one frame.  ``linktype``: 1 Ethernet (UBoE), 148 a UB network packet from its LPH,
    147 an ns-3-UB trace record (selects the ns3 dialect unless a profile is given).
    ``layer_list``: a list (subclass) to collect the layer ids in, given the frame as its
    ``frame`` attribute first (``ubpkt.views.tree`` notes where each layer ends this way)."""
    profile = profile_for(linktype, profile)
    fr = Frame(buf, profile)
    if layer_list is not None:
        layer_list.frame = fr
        fr.layers = layer_list
    try:
        start = START.get(linktype)
        if start is not None:
            run(fr, start)
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


def decode(data: bytes, linktype: int = LINKTYPE_UB, profile: Profile | None = None, *,
           frame: int = 1, time: float = 0.0, orig_len: int | None = None) -> dict:
    """Decode one frame to a record (:mod:`ubpkt.record`).  Never raises on bad input: problems
    become issues."""
    fr = dissect(data, linktype, profile)
    return make_record(frame, time, len(data) if orig_len is None else orig_len, len(data),
                       linktype, fr.layers, fr.fields, fr.issues)


class _CallablePackage(type(_sys.modules[__name__])):
    """``ubpkt.dissect`` names both this package and its :func:`dissect` function.  Once the
    package is imported, Python binds the package under that name in ``ubpkt``, so
    ``from ubpkt import dissect`` can give either, depending on what was imported first.  The
    package is therefore callable: calling it is calling :func:`dissect`."""

    def __call__(self, buf, linktype: int = LINKTYPE_UB, profile: Profile | None = None):
        return dissect(buf, linktype, profile)


_sys.modules[__name__].__class__ = _CallablePackage
