"""Declared headers read into a record: layers, the flat field map and issues.

:class:`HeaderReader` is the one place where a declared header (``ubpkt.formats.core.Header``)
at a buffer position becomes record content (``ubpkt.record``): record keys and enum names, a
header of an already-seen field namespace turning its fields into lists in wire order, set
reserved bits and differing fixed fields reported as warnings, a header that does not fit as an
error, and runs of raw bytes (:data:`ubpkt.formats.derived.BYTE_RUNS`).  The packet dissector's
``Frame`` and the data link's control-block reader both build on it.  Never raises on input.
"""
from __future__ import annotations

from ..record import ERROR, WARNING, make_issue
from .core import Header
from .derived import BYTE_RUNS

__all__ = ["HeaderReader"]


class HeaderReader:
    """Reads declared headers from ``buf[pos:end]``; ``delta`` is added to buffer positions when
    they are reported (a block inside a longer stream reports stream offsets)."""

    __slots__ = ("buf", "pos", "end", "delta", "layers", "fields", "issues", "_seen", "_multi")

    def __init__(self, buf, pos: int = 0, end: int | None = None, delta: int = 0):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end
        self.delta = delta
        self.layers: list[str] = []
        self.fields: dict = {}
        self.issues: list[dict] = []
        self._seen: set = set()
        self._multi: set = set()

    def issue(self, severity: str, layer: str, field: str | None, offset: int, message: str):
        self.issues.append(make_issue(severity, layer, field, offset + self.delta, message))

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
            self._repeated(h, vals, pos)
            return vals
        vals, raw = h.record_into(self.buf, pos, self.fields)
        self.pos = pos + h.size
        self._seen.add(h.base)
        self.layers.append(h.layer)
        if raw & h.rsvd_mask:
            self._reserved(h, vals, pos)
        if h.fixed_fields:
            self._fixed(h, vals, pos)
        return vals

    def _repeated(self, h: Header, vals, pos: int) -> None:
        # a header seen again (or one sharing field names with an earlier one): values
        # accumulate in lists, in wire order
        for k, v in zip(h.keys, h.shown(vals)):
            self._add_repeated(k, v)
        for key, _, i, enum in h.enum_fields:
            self._add_repeated(key, enum.get(vals[i], f"unknown_{vals[i]}"))
        self.layers.append(h.layer)
        if h.rsvd_mask:
            self._reserved(h, vals, pos)
        self._fixed(h, vals, pos)

    def _fixed(self, h: Header, vals, pos: int) -> None:
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
        key = BYTE_RUNS[layer]
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
