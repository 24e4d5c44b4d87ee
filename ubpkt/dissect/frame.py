"""The dissection state of one frame, the issue vocabulary and the ICRC bracket."""
from __future__ import annotations

from ..formats import HEADERS
from ..formats.derived import BYTE_RUNS
from ..formats import enums as E
from ..formats.core import Header, value_to_text
from ..network.icrc import icrc
from ..profile import Profile
from ..record import (ERROR, INFO, LINKTYPE_ETHERNET, LINKTYPE_FLITS, LINKTYPE_NS3,  # noqa: F401
                      LINKTYPE_UB, WARNING, make_issue)

H = HEADERS


_ATAH_OPS = E.TA_RESPONSES

#: Layers that are runs of raw bytes, and the one hex field each carries.
BYTE_LAYERS = BYTE_RUNS


class Frame:
    """The dissection state of one frame."""

    __slots__ = ("buf", "pos", "end", "layers", "fields", "issues", "profile", "_seen",
                 "icrc_start", "icrc_masks", "pad", "tph_start", "cfg", "compact", "tp_data", "ip_at",
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
        self.compact = False    # the packet uses the compact TAH forms (grammar VARIANTS)
        self.tp_data = False
        self.ip_at = None       # (offset, version) of the IP header in front of UDP

    # -- reporting -------------------------------------------------------------------------------
    def issue(self, severity: str, layer: str, field: str | None, offset: int, message: str):
        self.issues.append(make_issue(severity, layer, field, offset, message))

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
