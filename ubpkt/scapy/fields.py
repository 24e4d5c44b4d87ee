"""Scapy fields built from :class:`ubpkt.formats.core.Field` declarations.

Every field keeps the declaration's width in ``ub_bits``.  Internal values are the record values
of ``ubpkt.formats`` (integers; ``shift`` fields hold the unshifted address); text formats
(eid/guid/mac/ipv4/ipv6/hex) accept text and show text.
"""
from __future__ import annotations

from scapy.fields import BitEnumField, BitField, Field

from ..formats.core import EncodeError, Field as UBField, text_to_value, value_to_text

__all__ = ["make_field", "unknown_enum_message", "UBBits", "UBEnumBits", "UBLittleEndian", "UBWordReversed",
           "TrailerBytes", "TrailerInt"]


def unknown_enum_message(field: str, value: str, names: dict) -> str:
    """A misspelt enum name: say so, with the closest names and every accepted one."""
    import difflib
    known = [names[k] for k in sorted(names)]
    close = difflib.get_close_matches(value, known, n=3, cutoff=0.5) or \
        difflib.get_close_matches(value.lower(), [n.lower() for n in known], n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    return (f"{field}: unknown value {value!r}{hint} (names: {', '.join(known)}; or a number)")


def _to_int(fld, x):
    """Accept ints, text (per fmt) and bytes."""
    if x is None or isinstance(x, int):
        return x
    try:
        return text_to_value(fld.ub_fmt, x, fld.ub_bits)
    except EncodeError:
        return x


def _repr(fld, x):
    if x is None:
        return "None"
    if isinstance(x, int) and fld.ub_fmt != "int":
        try:
            return repr(value_to_text(fld.ub_fmt, x, fld.ub_bits))
        except (ValueError, OverflowError):
            return hex(x)
    if isinstance(x, int) and (fld.ub_bits >= 32 or fld.ub_shift):
        return hex(x)
    return repr(x)


class UBBits(BitField):
    """A BitField with None (unset auto field) building as 0, an optional shift and text form."""

    __slots__ = ["ub_bits", "ub_fmt", "ub_shift", "ub_decl"]

    def __init__(self, decl: UBField, default):
        self.ub_bits, self.ub_fmt, self.ub_shift, self.ub_decl = (decl.bits, decl.fmt, decl.shift,
                                                                  decl)
        super().__init__(decl.name, default, decl.bits)

    def any2i(self, pkt, x):
        return _to_int(self, x)

    def i2m(self, pkt, x):
        if x is None:
            return 0
        x = _to_int(self, x)
        return x >> self.ub_shift if self.ub_shift else x

    def m2i(self, pkt, x):
        return x << self.ub_shift if self.ub_shift else x

    def i2repr(self, pkt, x):
        return _repr(self, x)


def _name_key(name: str) -> str:
    """An enum name compared loosely: case and ``-``/``_`` ignored."""
    return name.lower().replace("-", "_")


class UBEnumBits(BitEnumField):
    """A BitEnumField (enum values show their names; names are accepted when setting)."""

    __slots__ = ["ub_bits", "ub_fmt", "ub_shift", "ub_decl"]

    def __init__(self, decl: UBField, default):
        self.ub_bits, self.ub_fmt, self.ub_shift, self.ub_decl = decl.bits, "int", 0, decl
        super().__init__(decl.name, default, decl.bits, dict(decl.enum))

    def any2i(self, pkt, x):
        if isinstance(x, str) and x not in self.s2i:
            want = _name_key(x)
            for k, name in self.i2s.items():
                # "TPACK/TPNAK" (one value, two spec names) answers to either; "-" and "_"
                # alike ("TPSACK_CC" is the spec's "TPSACK-CC"); any case
                if want == _name_key(name) or want in map(_name_key, name.split("/")):
                    return k
            raise ValueError(unknown_enum_message(self.name, x, self.i2s))
        return super().any2i(pkt, x)

    def i2m(self, pkt, x):
        if x is None:
            return 0
        return super().i2m(pkt, x)


class _ByteAligned(Field):
    """Base of the byte-aligned multi-byte fields (little-endian, DW-reversed)."""

    __slots__ = ["ub_bits", "ub_fmt", "ub_shift", "ub_decl", "nbytes"]

    def __init__(self, decl: UBField, default):
        self.ub_bits, self.ub_fmt, self.ub_shift, self.ub_decl = decl.bits, decl.fmt, 0, decl
        self.nbytes = decl.bits // 8
        super().__init__(decl.name, default, fmt=f"{self.nbytes}s")

    def _pack(self, v: int) -> bytes:
        raise NotImplementedError

    def _unpack(self, b: bytes) -> int:
        raise NotImplementedError

    def any2i(self, pkt, x):
        return _to_int(self, x)

    def addfield(self, pkt, s, val):
        v = _to_int(self, val)
        return s + self._pack(0 if v is None else v)

    def getfield(self, pkt, s):
        if len(s) < self.nbytes:
            raise ValueError(f"{self.name}: {self.nbytes} bytes needed")
        return s[self.nbytes:], self._unpack(s[:self.nbytes])

    def i2repr(self, pkt, x):
        return _repr(self, x)

    def randval(self):
        from scapy.volatile import RandNum
        return RandNum(0, (1 << self.ub_bits) - 1)


class UBLittleEndian(_ByteAligned):
    """A byte-aligned field stored least significant byte first (dialect quirks)."""

    def _pack(self, v):
        return v.to_bytes(self.nbytes, "little")

    def _unpack(self, b):
        return int.from_bytes(b, "little")


class UBWordReversed(_ByteAligned):
    """A value sent least-significant 32-bit word first (GUIDs/EIDs in management PDUs)."""

    def _pack(self, v):
        words = [(v >> (32 * i)) & 0xFFFFFFFF for i in range(self.nbytes // 4)]
        return b"".join(w.to_bytes(4, "big") for w in words)

    def _unpack(self, b):
        return sum(int.from_bytes(b[4 * i:4 * i + 4], "big") << (32 * i)
                   for i in range(len(b) // 4))


def make_field(decl: UBField, default=0):
    """The scapy field of one declared field (auto fields default to None)."""
    if decl.auto:
        default = None
    elif decl.fixed is not None:
        default = decl.fixed
    if decl.le:
        return UBLittleEndian(decl, default)
    if decl.dwrev:
        return UBWordReversed(decl, default)
    if decl.enum and decl.fmt == "int" and not decl.shift:
        return UBEnumBits(decl, default)
    return UBBits(decl, default)


class _Trailer(Field):
    """A value the layer appends after its payload (padding bytes, ICRC): no bytes in the header;
    ``post_build``/``post_dissect`` of the layer place and read it."""

    __slots__ = ["ub_trailer"]

    def __init__(self, name, default=None, fmt="I"):
        super().__init__(name, default, fmt=fmt)
        self.ub_trailer = True

    def addfield(self, pkt, s, val):
        return s

    def getfield(self, pkt, s):
        return s, None

    def i2len(self, pkt, x):
        return 0


class TrailerBytes(_Trailer):
    def __init__(self, name):
        super().__init__(name, None, fmt="0s")

    def any2i(self, pkt, x):
        if isinstance(x, str):
            return x.encode("latin-1")
        return x

    def i2repr(self, pkt, x):
        return repr(x)

    def randval(self):
        return None


class TrailerInt(_Trailer):
    def i2repr(self, pkt, x):
        return repr(x) if x is None or isinstance(x, bool) else f"{x:#010x}"

    def randval(self):
        from scapy.volatile import RandInt
        return RandInt()
