"""Link management blocks: the four LTBs and the EEIB (UB 2.0 §3.4.1, Tables 3-12..3-19).

Every LTB is 16 symbols: symbols 0..11 carry the fields, 12/13 CRC[7:0]/CRC[15:8] over symbols
0..11 (polynomial 0x5935; init/bit order are profile choices, gap G2), 14/15 the 0x5A pad.
Reserved bits are sent as 0 and ignored on receive (they are not kept by the decoders).

The byte layouts are the declarations in :mod:`ubpkt.formats.phy` (one ``Header`` per LTB body,
one for the trailer): each dataclass here is made from its header (one attribute per named
field, a few held in a friendlier form, ``_VIEWS``), and its ``body()`` / ``from_body()`` are
generated from the same table, so no bit position is written twice.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

from ..formats import enums as E
from ..formats import phy as P
from ..formats.core import Header
from .profile import DEFAULT_PROFILE, PhyProfile

__all__ = [
    "ltb_crc16", "DLTB", "CLTB", "RLTB", "ELTB", "encode_ltb", "decode_ltb", "LtbError",
    "width_code", "width_from_code", "eeib", "EEIB_COUNT", "DLTB_TYPES", "CLTB_TYPES",
    "RLTB_TYPES", "ELTB_TYPE", "LANE0_CODES", "EQ_MODES", "FEC_MODES", "reserved_codes",
]


class LtbError(ValueError):
    pass


def _crc_table(poly: int) -> list[int]:
    t = []
    for b in range(256):
        c = b << 8
        for _ in range(8):
            c = ((c << 1) ^ poly) if c & 0x8000 else (c << 1)
        t.append(c & 0xFFFF)
    return t


_CRC_TABLES: dict[int, list[int]] = {}


def ltb_crc16(body: bytes, profile: PhyProfile = DEFAULT_PROFILE) -> int:
    """CRC-16 over LTB symbols 0..11 (profile: MSB first, init 0xFFFF, no final XOR)."""
    t = _CRC_TABLES.get(profile.ltb_crc_poly)
    if t is None:
        t = _CRC_TABLES[profile.ltb_crc_poly] = _crc_table(profile.ltb_crc_poly)
    c = profile.ltb_crc_init
    for b in body:
        c = ((c << 8) & 0xFFFF) ^ t[((c >> 8) ^ b) & 0xFF]
    return c


DLTB_TYPES, CLTB_TYPES, RLTB_TYPES = E.DLTB_TYPES, E.CLTB_TYPES, E.RLTB_TYPES
(ELTB_TYPE,) = E.ELTB_TYPES
LANE0_CODES = E.LANE0_CODES  # physical lane -> RX_Lane0_ID code
_LANE0_BY_CODE = {v: k for k, v in LANE0_CODES.items()}
EQ_MODES, FEC_MODES = E.EQ_MODES, E.FEC_MODES
_WIDTHS = {w: w for w in E.LINK_WIDTH}  # TLW/RLW: width xN is sent as N (one-hot)
_MLW_CODES = {1 << c: c for c in E.MAX_LINK_WIDTH}  # MAX_LINK_WIDTH: xN is sent as log2(N)
EEIB_COUNT = {"2.578125": 1, "4.0": 1, "25.78125": 2, "53.125": 4, "106.25": 8}


def width_code(width: int) -> int:
    """Link width -> the one-hot TLW/RLW code (x1/x2/x4/x8)."""
    return _WIDTHS[width]


def width_from_code(code: int) -> int | None:
    """TLW/RLW bits [5:0] -> width, None when reserved."""
    for w, c in _WIDTHS.items():
        if code & 0x3F == c:
            return w
    return None


def _lane0_from_code(code: int) -> int | None:
    """RX_Lane0_ID code -> physical lane; None for a reserved code (reported, not fatal)."""
    return _LANE0_BY_CODE.get(code)


def _width_from_mlw(code: int) -> int | None:
    """MAX_LINK_WIDTH code -> width; None for a reserved code (reported, not fatal)."""
    return 1 << code if code in E.MAX_LINK_WIDTH else None


#: Field name (as the spec tables spell it) per view attribute that can carry a reserved code.
_RESERVED_VIEWS = {"rx_lane0": "RX_Lane0_ID", "max_link_width": "MAX_LINK_WIDTH"}


def reserved_codes(ltb) -> list[str]:
    """The fields of a decoded LTB that carried a reserved code (their attribute is None).  A
    receiver reports them and keeps the rest of the LTB: one unusable field does not make the
    block, whose CRC checked, unusable (UB 2.0 Table 3-12 marks the codes reserved, it does not
    make the block invalid)."""
    return [name for a, name in _RESERVED_VIEWS.items() if getattr(ltb, a, 0) is None]


#: Attributes the dataclasses hold in another form than their declared fields: attribute ->
#: (the fields, the fields' wire values from the attribute, the attribute from those values).
_VIEWS: dict[str, tuple[tuple[str, ...], Callable, Callable]] = {
    "data_rates": (("data_rate_support_1", "data_rate_support_2"),  # DR0..DR8 as one bitmap
                   lambda v: (v & 0xFF, (v >> 8) & 1), lambda lo, hi: lo | hi << 8),
    "rx_lane0": (("rx_lane0_id",), lambda lane: (LANE0_CODES[lane],), _lane0_from_code),
    "max_link_width": (("max_link_width",), lambda w: (_MLW_CODES[w],), _width_from_mlw),
}
#: Identifiers are never cut to their field: a value that does not fit raises EncodeError (a
#: ValueError).  Every other value is cut to its field's width, reserved bits stay 0.
_EXACT = frozenset({"type", "link_id", "lane_id"})


def _attributes(h: Header) -> list[str]:
    """The dataclass attributes of an LTB body, in the order its spec table lists the fields
    (by symbol, low bits first within a symbol); a view stands where its first field does."""
    named = sorted(((o // 8, -o), f.name) for f, o in zip(h.fields, h.offsets) if not f.reserved)
    owner = {f: a for a, (fs, _, _) in _VIEWS.items() for f in fs}
    out: list[str] = []
    for _, name in named:
        a = owner.get(name, name)
        if a not in out:
            out.append(a)
    return out


def _codec(cls, header: Header, names: list[str]) -> None:
    """Generate ``cls.body`` and ``cls.from_body`` from ``header`` (as :mod:`ubpkt.formats.core`
    generates the header codecs): attributes are matched to fields by name once, here; the
    generated code is one ``pack_values`` / one ``unpack`` with the fields in wire order."""
    ix, size = header.index, header.size
    ns: dict = {"_pack": header.pack_values, "_unpack": header.unpack, "LtbError": LtbError}
    wire = [repr(v) for v in header.wire_values({})]  # unset: 0, or the fixed value
    pre, kw = [], []
    for a in names:
        if a in _VIEWS:
            fs, to_wire, from_wire = _VIEWS[a]
            ns[f"_to_{a}"], ns[f"_from_{a}"] = to_wire, from_wire
            pre.append(f"    {a} = _to_{a}(self.{a})")
            for k, n in enumerate(fs):
                wire[ix[n]] = f"{a}[{k}]"
            kw.append(f"{a}=_from_{a}({', '.join(f'v[{ix[n]}]' for n in fs)})")
            continue
        i = ix[a]
        f = header.fields[i]
        if a in _EXACT:  # out of range: to_wire raises the EncodeError
            ns[f"_f{i}"], ns["_to_wire"] = f, header.to_wire
            wire[i] = f"(x if 0 <= (x := self.{a}) < {1 << f.bits} else _to_wire(_f{i}, x))"
        else:
            wire[i] = f"self.{a} & {(1 << f.bits) - 1:#x}"
        kw.append(f"{a}=v[{i}]")
    src = "\n".join([
        "def body(self):",
        *pre,
        f"    return _pack(({', '.join(wire)},))",
        "def from_body(cls, b):",
        f"    if len(b) < {size}:",
        f"        raise LtbError('an LTB body has {size} symbols')",
        "    v = _unpack(b)",
        f"    return cls({', '.join(kw)})",
    ]) + "\n"
    exec(compile(src, f"<ubpkt.phy.ltb:{cls.__name__}>", "exec"), ns)
    ns["body"].__doc__ = "Symbols 0..11."
    ns["from_body"].__doc__ = ("Symbols 0..11 (or the whole LTB) -> the dataclass; reserved bits "
                               "are dropped, a reserved code gives None (see reserved_codes).")
    cls.body, cls.from_body = ns["body"], classmethod(ns["from_body"])


def _declared(header: Header, **defaults):
    """Class decorator: a dataclass of an LTB body with one attribute per field of ``header``
    (``_VIEWS`` where the attribute differs) and its generated ``body()`` / ``from_body()``;
    unset defaults are the field's fixed value or 0."""
    def make(cls):
        names = _attributes(header)
        unknown = set(defaults) - set(names)
        if unknown:
            raise TypeError(f"{cls.__name__}: no attributes {sorted(unknown)}")
        cls.__annotations__ = {a: "int" for a in names}
        for a in names:
            fixed = None if a in _VIEWS else header.by_name[a].fixed
            setattr(cls, a, defaults.get(a, fixed or 0))
        cls.HEADER = header
        _codec(cls, header, names)
        return dataclass(cls)
    return make


@_declared(P.LTB_DISCOVERY, type=0xA0, link_id=0xFF, lane_id=0xFF, tlw=0x08, rlw=0x08,
           data_rates=0x001, fec_support=0b11, max_link_width=8)
class DLTB:
    """Discovery LTB (Table 3-12); also used in RXEQ_Optimize.

    ``data_rates``: bit n = Data Rate n (DR0..DR8); ``fec_support``: b0 RS T=2, b1 RS T=4;
    ``port_type``: 1 = primary; ``random_value``: 1..127, 0 = NULL; ``fec_interleave_support``:
    b0 x1 .. b3 x8; ``rx_lane0``: physical lane of logical RX lane 0 (0, 1, 3 or 7);
    ``max_link_width``: 1, 2, 4 or 8 (either is None when its code is reserved)."""


@_declared(P.LTB_CONFIG, type=0xB0, link_id=0xFF, lane_id=0xFF, tlw=0x08, rlw=0x08, eq_mode=2,
           fec_mode=2)
class CLTB:
    """Config LTB (Table 3-13).  ``eq_mode``: 0 Full_EQ, 1 Only_Highest_Data_Rate_EQ, 2 Skip_EQ;
    ``fec_mode``: 0 bypass, 1 RS T=2, 2 RS T=4."""


@_declared(P.LTB_RETRAIN, type=0xC0, data_rates=0x001, fec_mode=2, crc_mode=1)
class RLTB:
    """Retrain LTB (Table 3-14).  ``eq_ctrl1..3`` hold symbols 2..4 raw (their meaning depends on
    the type and modulation: post/pre-cursor/cursor, or Local_HS/Local_LS/Remote_Initial_TX_Preset
    for Retrain.EQ_Initial).  ``crc_mode``: 0 no CRC, 1 CRC30."""


@_declared(P.LTB_EQUALIZATION)
class ELTB:
    """Equalization LTB (Table 3-15).  ``eq_phase``: 0 Coarsetune_Active, 1 Coarsetune_Confirm,
    2 EQ.Active on the secondary port (Passive on the primary), 3 the other way round;
    ``eq_ctrl2``: pre-cursor (NRZ) or 2nd/3rd pre-cursor (PAM4), raw."""


# Symbol 0 is the Type of every LTB body (each declaration starts with it): it picks the class.
_BY_TYPE = {t: cls for cls, types in ((DLTB, DLTB_TYPES), (CLTB, CLTB_TYPES), (RLTB, RLTB_TYPES),
                                      (ELTB, E.ELTB_TYPES)) for t in types}
_TRAILER = P.LTB_TRAILER
_CRC, _PAD = _TRAILER.index["crc"], _TRAILER.index["padding"]
_TRAILER_BLANK = tuple(_TRAILER.wire_values({}))


def encode_ltb(ltb, profile: PhyProfile = DEFAULT_PROFILE) -> bytes:
    """Any LTB dataclass -> its 16 symbols (before scrambling)."""
    body = ltb.body()
    trailer = list(_TRAILER_BLANK)
    trailer[_CRC], trailer[_PAD] = ltb_crc16(body, profile), profile.ltb_pad * 0x0101
    return body + _TRAILER.pack_values(trailer)


def decode_ltb(symbols: bytes, profile: PhyProfile = DEFAULT_PROFILE):
    """16 descrambled symbols -> DLTB/CLTB/RLTB/ELTB; raises :class:`LtbError` on a CRC failure
    or an unknown type."""
    s = bytes(symbols)
    if len(s) != 16:
        raise LtbError("an LTB has 16 symbols")
    if _TRAILER.unpack(s, 12)[_CRC] != ltb_crc16(s[:12], profile):
        raise LtbError("LTB CRC mismatch")
    cls = _BY_TYPE.get(s[0])
    if cls is None:
        raise LtbError(f"reserved LTB type 0x{s[0]:02X}")
    return cls.from_body(s)


def ltb_fields(ltb) -> dict:
    return {f.name: getattr(ltb, f.name) for f in fields(ltb)}


def eeib(rate: str) -> bytes:
    """The EEIB sequence for a data rate ('2.578125', '4.0', '25.78125', '53.125', '106.25').

    Tables 3-16..3-19: runs of 0x00 then 0xFF symbols; the sequence length is EEIB_COUNT x 16
    symbols; the run length gives 8/32 equal bits (NRZ) or 32/64 equal levels (PAM4)."""
    run = {"2.578125": 1, "4.0": 1, "25.78125": 4, "53.125": 8, "106.25": 16}
    if rate not in run:
        raise ValueError(f"no EEIB defined for rate {rate!r} (custom rates are vendor-defined)")
    r = run[rate]
    n = 16 * EEIB_COUNT[rate]
    return bytes(0x00 if (i // r) % 2 == 0 else 0xFF for i in range(n))
