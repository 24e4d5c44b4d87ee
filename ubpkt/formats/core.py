"""The format registry: every header is declared once, as a table of fields.

A :class:`Header` lists its fields in wire order (most significant bit first, byte 0 first, as the
UB 2.0 header diagrams draw them).  Everything else is derived from that table:

* a fast decoder and encoder, generated Python over one ``int.from_bytes`` of the header,
* the Construct codec (:meth:`Header.construct`), the readable reference the fast path is tested
  against,
* the record field names ``<ns>.<prefix>.<field>`` and enum names,
* the scapy fields (``ubpkt.scapy``) and the Wireshark Lua ProtoFields (``dissectors/``).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable, Mapping

from ..errors import EncodeError

__all__ = ["Field", "Header", "R", "HEADERS", "register", "get", "EncodeError", "text_to_value",
           "value_to_text"]


@dataclass(frozen=True)
class Field:
    """One field of a header.

    ``bits``: width on the wire.  ``enum``: value -> name.  ``reserved``: the spec wants zero
    (a non-zero value is kept and reported as a warning).  ``fixed``: a constant the spec requires
    (a different value is kept and reported).  ``le``: stored little-endian (dialect quirks only,
    byte aligned).  ``dwrev``: a multi-word value sent least-significant 32-bit word first (GUIDs
    and EIDs inside management PDUs, reference profile G15).  ``shift``: the record value is the wire value shifted left by this many bits
    (an address field whose low bits are not sent).  ``fmt``: how the record shows the value:
    ``int`` (default), ``mac``, ``ipv4``, ``ipv6``, ``eid`` (8 groups of 4 hex digits), ``guid``
    (the openEuler kernel's text form), ``hex`` (a hex string of the field's bytes).
    ``auto``: the encoder computes the value when it is left unset (lengths, checksums); the
    rule that computes it is named in :data:`ubpkt.formats.grammar.AUTO_FILL`.
    ``icrc_mask``: a field that may change hop by hop, set to all ones while the ICRC is
    computed (UB 2.0 §5.3.7).
    """

    name: str
    bits: int
    enum: Mapping[int, str] | None = None
    reserved: bool = False
    fixed: int | None = None
    le: bool = False
    shift: int = 0
    fmt: str = "int"
    auto: bool = False
    dwrev: bool = False
    icrc_mask: bool = False
    doc: str = ""


def R(bits: int) -> Field:
    """A reserved field; named rsvd1, rsvd2, ... by its header."""
    return Field("rsvd", bits, reserved=True)


_TEXT_FORMATS = ("mac", "ipv4", "ipv6", "eid", "guid", "hex")


def value_to_text(fmt: str, value: int, bits: int):
    if fmt == "int":
        return value
    if fmt == "mac":
        return value.to_bytes(6, "big").hex(":")
    if fmt == "ipv4":
        return "%d.%d.%d.%d" % tuple(value.to_bytes(4, "big"))
    if fmt == "ipv6":
        return str(ipaddress.IPv6Address(value))
    if fmt == "eid":
        if bits != 128:
            return value
        h = f"{value:032x}"
        return ":".join(h[i:i + 4] for i in range(0, 32, 4))
    if fmt == "guid":
        # openEuler kernel form: vendor-device-version-type-reserved-sequence (UB 2.0 App C.1)
        return (f"{value >> 112:04x}-{(value >> 96) & 0xFFFF:04x}-{(value >> 92) & 0xF:x}-"
                f"{(value >> 88) & 0xF:x}-{(value >> 64) & 0xFFFFFF:06x}-{value & (2**64 - 1):016x}")
    if fmt == "hex":
        return value.to_bytes((bits + 7) // 8, "big").hex()
    raise ValueError(fmt)


def text_to_value(fmt: str, value, bits: int) -> int:
    """Inverse of :func:`value_to_text`; integers are accepted for every format."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(value, "big")
    if not isinstance(value, str):
        raise EncodeError(f"cannot encode {value!r}")
    try:
        if fmt == "mac":
            return int(value.replace(":", "").replace("-", ""), 16)
        if fmt == "ipv4":
            return int(ipaddress.IPv4Address(value))
        if fmt == "ipv6":
            return int(ipaddress.IPv6Address(value))
        if fmt == "eid":
            if ":" in value and len(value) == 39:
                return int(value.replace(":", ""), 16)
            return int(ipaddress.IPv6Address(value))
        if fmt == "guid":
            parts = value.split("-")
            if len(parts) != 6:
                raise ValueError(value)
            vendor, device, ver, typ, rsvd, seq = (int(p, 16) for p in parts)
            return (vendor << 112 | device << 96 | ver << 92 | typ << 88 | rsvd << 64 | seq)
        if fmt == "hex":
            return int(value, 16) if value else 0
        return int(value, 0)
    except ValueError as exc:
        raise EncodeError(f"bad {fmt} value {value!r}") from exc


@dataclass
class Header:
    """A fixed-size header declared as a table of fields.

    ``name``: the layer id used in records (``btah_c``); ``prefix``: the field namespace
    (``btah``; compact and full forms share it); ``ns``: ``ub`` for UB headers, empty for the
    Ethernet/IP/UDP carriers (whose fields keep Wireshark's names ``eth.*``, ``ip.*``...).
    """

    name: str
    prefix: str
    title: str
    spec: str
    fields: tuple[Field, ...]
    ns: str = "ub"
    doc: str = ""
    size: int = field(init=False)
    layer: str = field(init=False)

    def __post_init__(self) -> None:
        renamed, n = [], 0
        for f in self.fields:
            if f.name == "rsvd":
                n += 1
                f = Field(f"rsvd{n}", f.bits, reserved=True)
            if f.bits > 64 and f.fmt == "int":
                # records keep integers up to 64 bits; wider values are shown as hex text
                f = replace(f, fmt="hex")
            renamed.append(f)
        self.fields = tuple(renamed)
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate field names")
        total = sum(f.bits for f in self.fields)
        if total % 8:
            raise ValueError(f"{self.name}: {total} bits is not whole bytes")
        self.size = total // 8
        self.bits = total
        self.layer = f"{self.ns}.{self.name}" if self.ns else self.name
        base = f"{self.ns}.{self.prefix}" if self.ns else self.prefix
        self.keys = tuple(f"{base}.{f.name}" for f in self.fields)
        self.base = base
        offsets, off = [], 0
        for f in self.fields:
            if f.le and (off % 8 or f.bits % 8):
                raise ValueError(f"{self.name}.{f.name}: little-endian field must be byte aligned")
            if f.dwrev and (off % 32 or f.bits % 32):
                raise ValueError(f"{self.name}.{f.name}: word-reversed field must be DW aligned")
            offsets.append(off)
            off += f.bits
        self.offsets = tuple(offsets)
        self.by_name = {f.name: f for f in self.fields}
        self.rsvd_mask = 0
        for f, o in zip(self.fields, offsets):
            if f.reserved:
                self.rsvd_mask |= ((1 << f.bits) - 1) << (total - o - f.bits)
        self.rsvd_idx = tuple(i for i, f in enumerate(self.fields) if f.reserved)
        self.enum_fields = tuple((k + "_name", f.name, i, f.enum) for i, (k, f) in
                                 enumerate(zip(self.keys, self.fields)) if f.enum)
        self.text_fields = tuple((i, f.fmt, f.bits) for i, f in enumerate(self.fields)
                                 if f.fmt != "int")
        self.shift_fields = tuple((i, f.shift) for i, f in enumerate(self.fields) if f.shift)
        self.fixed_fields = tuple((i, f) for i, f in enumerate(self.fields) if f.fixed is not None)
        self.index = {f.name: i for i, f in enumerate(self.fields)}
        self._icrc_runs = None
        self.icrc_ormask = 0
        for f, o in zip(self.fields, offsets):
            if f.icrc_mask:
                self.icrc_ormask |= ((1 << f.bits) - 1) << (total - o - f.bits)
        self._construct = None

    # The three codecs are generated Python (one compile() each): generated on first use, not
    # at declaration, so a command that touches a few of the ~120 headers does not pay for
    # all of them at start-up (issue 14).  cached_property stores the function in the
    # instance, so later lookups are plain attribute reads.
    @cached_property
    def unpack(self) -> Callable:
        """``unpack(b, o=0)``: the wire values of this header at offset ``o``."""
        return _gen_unpack(self)

    @cached_property
    def record_into(self) -> Callable:
        """``record_into(b, o, F)``: decode into the flat field map ``F`` (record form)."""
        return _gen_record(self)

    @cached_property
    def pack_values(self) -> Callable:
        """``pack_values(wire values)``: the header's bytes."""
        return _gen_pack(self)

    def icrc_masks(self, offset: int) -> list[tuple[int, int, int]]:
        """The bytes of this header, placed at ``offset``, that the ICRC sees as ones (UB 2.0
        §5.3.7), as runs ``(offset, length, or-mask of the run's first byte)``: every byte of a
        run after the first is all ones.  Derived from the ``icrc_mask`` field flags."""
        base = self._icrc_runs
        if base is not None:
            return [(o + offset, n, first) for o, n, first in base]
        runs = self._icrc_runs = self._mask_runs(0)
        return [(o + offset, n, first) for o, n, first in runs]

    def _mask_runs(self, offset: int) -> list[tuple[int, int, int]]:
        raw = self.icrc_ormask.to_bytes(self.size, "big")
        runs: list[tuple[int, int, int]] = []
        for i, m in enumerate(raw):
            if not m:
                continue
            if runs and runs[-1][0] + runs[-1][1] == offset + i and m == 0xFF:
                o, n, first = runs[-1]
                runs[-1] = (o, n + 1, first)
            elif m == 0xFF or not runs or runs[-1][0] + runs[-1][1] != offset + i:
                runs.append((offset + i, 1, m))
            else:
                raise ValueError(f"{self.layer}: a partly masked byte inside a masked run")
        return runs

    # -- fast codec ---------------------------------------------------------------------------
    def decode_fields(self, buf, off: int = 0) -> dict:
        """Field name -> value (record form: text formats as text), for tools and tests."""
        vals = self.unpack(buf, off)
        out = {}
        for f, v in zip(self.fields, vals):
            v <<= f.shift
            out[f.name] = value_to_text(f.fmt, v, f.bits) if f.fmt != "int" else v
        return out

    def shown(self, vals) -> list:
        """Record form of wire values (address shifts and text formats applied)."""
        out = list(vals)
        for i, s in self.shift_fields:
            out[i] = out[i] << s
        for i, fmt, bits in self.text_fields:
            out[i] = value_to_text(fmt, out[i], bits)
        return out

    def wire_values(self, values: Mapping, unset_auto: bool = False) -> list:
        """Wire values from a field map (names, enum names or text accepted).  Unset fields
        take their fixed value or 0; with ``unset_auto`` an unset auto field stays None, for
        the encoder to compute."""
        unknown = set(values) - set(self.by_name)
        if unknown:
            raise EncodeError(f"{self.layer}: unknown fields {sorted(unknown)}")
        vals = []
        for f in self.fields:
            v = values.get(f.name)
            if v is None:
                v = None if unset_auto and f.auto else (f.fixed if f.fixed is not None else 0)
                vals.append(v)
            else:
                vals.append(self.to_wire(f, v))
        return vals

    def encode(self, values: Mapping | None = None, **kw) -> bytes:
        """Bytes from a field map; unset fields take 0 (or their fixed value)."""
        merged = dict(values or {})
        merged.update(kw)
        return self.pack_values(self.wire_values(merged))

    def to_wire(self, f: Field, v) -> int:
        if isinstance(v, str) and f.enum and f.fmt == "int":
            for k, name in f.enum.items():
                if name.lower() == v.lower():
                    v = k
                    break
            else:
                v = text_to_value(f.fmt, v, f.bits)
        else:
            v = text_to_value(f.fmt, v, f.bits)
        if f.shift:
            if v & ((1 << f.shift) - 1):
                raise EncodeError(f"{self.layer}.{f.name}: low {f.shift} bits must be zero")
            v >>= f.shift
        if v < 0 or v >> f.bits:
            raise EncodeError(f"{self.layer}.{f.name}: {v} does not fit in {f.bits} bits")
        return v

    # -- reference codec ------------------------------------------------------------------------
    def construct(self):
        """The Construct codec of this header (reference implementation; values are wire ints)."""
        if self._construct is None:
            import construct as cs
            parts = []
            for f in self.fields:
                if f.dwrev:
                    parts.append(f.name / _construct_dwrev(f.bits // 32))
                else:
                    parts.append(f.name / cs.BitsInteger(f.bits, swapped=f.le))
            self._construct = cs.BitStruct(*parts)
        return self._construct

    def __repr__(self) -> str:
        return f"<Header {self.layer} {self.size}B>"


def _construct_dwrev(nwords: int):
    """Construct sub-codec for a value sent least-significant 32-bit word first."""
    import construct as cs
    return cs.ExprAdapter(
        cs.Array(nwords, cs.BitsInteger(32)),
        lambda obj, ctx: sum(w << (32 * i) for i, w in enumerate(obj)),
        lambda obj, ctx: [(obj >> (32 * i)) & 0xFFFFFFFF for i in range(nwords)])


def _swap_expr(expr: str, nbytes: int) -> str:
    return f"int.from_bytes(({expr}).to_bytes({nbytes}, 'big'), 'little')"


def _dwrev_expr(expr: str, nwords: int) -> str:
    return f"_dwrev({expr}, {nwords})"


def _dwrev(v: int, nwords: int) -> int:
    out = 0
    for _ in range(nwords):
        out = (out << 32) | (v & 0xFFFFFFFF)
        v >>= 32
    return out


def _wire_expr(h: Header, f: Field, off: int) -> str:
    """Python expression of field ``f`` (wire value) from ``v``, the header as one integer."""
    shift = h.bits - off - f.bits
    e = "v" if shift == 0 else f"(v >> {shift})"
    if off != 0:
        e = f"{e} & {(1 << f.bits) - 1:#x}"
    if f.le:
        e = _swap_expr(e, f.bits // 8)
    if f.dwrev:
        e = _dwrev_expr(e, f.bits // 32)
    return e


def _gen_unpack(h: Header) -> Callable:
    exprs = [_wire_expr(h, f, off) for f, off in zip(h.fields, h.offsets)]
    src = (f"def unpack(b, o=0):\n"
           f"    v = int.from_bytes(b[o:o + {h.size}], 'big')\n"
           f"    return ({', '.join(exprs)},)\n")
    ns: dict = {"_dwrev": _dwrev}
    exec(compile(src, f"<ubpkt.formats:{h.name}.unpack>", "exec"), ns)
    ns["unpack"].__doc__ = f"Wire values of {h.layer} at offset o (no length check)."
    return ns["unpack"]


_FAST_TEXT = {
    "mac": "{x}.to_bytes(6, 'big').hex(':')",
    "ipv4": "'%d.%d.%d.%d' % tuple({x}.to_bytes(4, 'big'))",
}


def _gen_record(h: Header) -> Callable:
    """Generated: decode the header at ``o`` into the flat field map ``F`` (record form:
    shifted and text fields, enum names) and return (wire values, raw header int)."""
    lines = ["def record_into(b, o, F):",
             f"    v = int.from_bytes(b[o:o + {h.size}], 'big')"]
    names = []
    for i, (f, off) in enumerate(zip(h.fields, h.offsets)):
        lines.append(f"    x{i} = {_wire_expr(h, f, off)}")
        names.append(f"x{i}")
    items = []
    for i, (k, f) in enumerate(zip(h.keys, h.fields)):
        x = f"x{i}"
        if f.shift:
            x = f"({x} << {f.shift})"
        if f.fmt != "int":
            x = _FAST_TEXT[f.fmt].format(x=x) if f.fmt in _FAST_TEXT else \
                f"_text({f.fmt!r}, {x}, {f.bits})"
        items.append(f"{k!r}: {x}")
        if f.enum:
            items.append(f"{k + '_name'!r}: (_E{i}[x{i}] if x{i} in _E{i} else 'unknown_%d' % x{i})")
    lines.append("    F.update({" + ", ".join(items) + "})")
    lines.append(f"    return ({', '.join(names)},), v")
    ns: dict = {"_dwrev": _dwrev, "_text": value_to_text}
    for i, f in enumerate(h.fields):
        if f.enum:
            ns[f"_E{i}"] = dict(f.enum)
    exec(compile("\n".join(lines) + "\n", f"<ubpkt.formats:{h.name}.record>", "exec"), ns)
    return ns["record_into"]


def _gen_pack(h: Header) -> Callable:
    total = h.bits
    terms = []
    for i, (f, off) in enumerate(zip(h.fields, h.offsets)):
        shift = total - off - f.bits
        e = f"x[{i}]"
        if f.le:
            e = _swap_expr(e, f.bits // 8)
        if f.dwrev:
            e = _dwrev_expr(e, f.bits // 32)
        terms.append(e if shift == 0 else f"({e} << {shift})")
    src = (f"def pack(x):\n"
           f"    return ({' | '.join(terms)}).to_bytes({h.size}, 'big')\n")
    ns: dict = {"_dwrev": _dwrev}
    exec(compile(src, f"<ubpkt.formats:{h.name}.pack>", "exec"), ns)
    return ns["pack"]


HEADERS: dict[str, Header] = {}


def register(h: Header) -> Header:
    if h.layer in HEADERS:
        raise ValueError(f"{h.layer} declared twice")
    HEADERS[h.layer] = h
    return h


def get(layer: str) -> Header:
    return HEADERS[layer]
