"""The dissection state of one frame (a :class:`~ubpkt.formats.reader.HeaderReader` plus what the
grammar walk carries) and the ICRC sections."""
from __future__ import annotations

from ..formats import HEADERS
from ..formats.derived import BYTE_RUNS
from ..formats.reader import HeaderReader
from ..formats import enums as E
from ..network.icrc import icrc
from ..profile import Profile
from ..record import (ERROR, INFO, LINKTYPE_ETHERNET, LINKTYPE_FLITS, LINKTYPE_NS3,  # noqa: F401
                      LINKTYPE_UB, WARNING)

H = HEADERS

from ..formats.grammar import PADDING as _PADDING  # noqa: E402
from .checks import BY_LAYER as _CHECKS, apply as _apply  # noqa: E402
from .checks import INTERPRETING as _INTERPRETING, interpret_into as _interpret  # noqa: E402


_ATAH_OPS = E.TA_RESPONSES

_PADDED = frozenset(_PADDING.headers)

#: Layers that are runs of raw bytes, and the one hex field each carries.
BYTE_LAYERS = BYTE_RUNS


class Frame(HeaderReader):
    """The dissection state of one frame: the reader (layers, fields, issues) plus what the
    walk carries from layer to layer."""

    __slots__ = ("profile", "icrc_start", "icrc_masks", "pad", "tph_start", "cfg", "compact",
                 "tp_data", "ip_at")

    def __init__(self, buf, profile: Profile):
        HeaderReader.__init__(self, buf)
        self.profile = profile
        # the ICRC section (start, mask runs); the TP header's offset; the LPH CFG; the
        # (offset, version) of the IP header in front of UDP
        self.icrc_start = self.icrc_masks = self.tph_start = self.cfg = self.ip_at = None
        self.pad = 0            # transport padding bytes before the ICRC
        # the packet uses the compact TAH forms (grammar COMPACT_TAH); an RTP data packet
        self.compact = self.tp_data = False

    def take(self, h):
        """Read header ``h`` (:meth:`HeaderReader.take`) and apply its value checks
        (:data:`ubpkt.formats.checks.CHECKS`)."""
        vals = HeaderReader.take(self, h)
        if vals is not None:
            checks = _CHECKS.get(h.layer)
            if checks is not None:
                _apply(self, h, vals, self.pos - h.size, checks)
            its = _INTERPRETING.get(h.layer)
            if its is not None:
                _interpret(self, h, vals, its)
        return vals

    def rest_as_data(self) -> None:
        """What is left before the trailer is payload."""
        n = self.end - self.pos - self.pad
        if n > 0:
            self.take_bytes("data", n)
            self.fields["data.len"] = n
        if self.pad:
            if self.end - self.pos >= self.pad:
                self.take_bytes("ub.pad", self.pad, zero=True)
            else:
                # the padding count reaches back into the headers (UB 2.0 §6.2.1: padding
                # bytes follow the payload)
                tph = next((lay for lay in reversed(self.layers) if lay in _PADDED), None)
                self.issue(WARNING, tph or "ub.pad", f"{tph}.padding" if tph else None,
                           self.pos, f"Padding {self.pad} points into the headers "
                           f"({max(self.end - self.pos, 0)} bytes after them)")
            self.pad = 0

    def peek(self, n: int = 1, at: int = 0) -> int | None:
        p = self.pos + at
        if p + n > self.end:
            return None
        return int.from_bytes(self.buf[p:p + n], "big")



def open_icrc(fr: Frame, start: int, masks) -> bool:
    """Start the ICRC coverage at ``start`` (UB 2.0 §5.3.7): the last 4 bytes are the ICRC."""
    fr.icrc_start = start
    fr.icrc_masks = masks
    return _reserve_icrc(fr)


def _reserve_icrc(fr: Frame) -> bool:
    if fr.end - fr.pos < 4:
        fr.issue(ERROR, "ub.icrc", "ub.icrc.value", fr.pos, "no room for the ICRC")
        fr.icrc_start = None
        return False
    fr.end -= 4
    return True


def finish_section(fr: Frame) -> None:
    """Close a UB section (after a CNA NTH, UB over UDP, a CFG-5 frame): what is left is
    payload and padding, then the ICRC is checked if the section has one."""
    _finish_icrc(fr)


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
