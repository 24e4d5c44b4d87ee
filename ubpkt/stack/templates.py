"""Packet templates: the stack's hot path for building frames (UB 2.0 §5.3.7, §6.2.1, §7.2).

A :class:`PacketTemplate` is made once per packet kind by the reference encoder
(:func:`ubpkt.encode.encode_layers`): the header bytes of a sample packet, the byte/bit position of
every field, and which fields the encoder fills by rule (:data:`ubpkt.formats.grammar.AUTO_FILL`).
Building a packet then means copying the header bytes, patching the per-packet fields in place,
appending the payload (a memoryview: no copy until the frame is joined), filling the lengths,
the IPv4 checksum, the transport padding and the ICRC (zlib's CRC-32 chained over the header with
its ``icrc_mask`` fields set to ones, then the payload and padding).

``tests/stack/test_templates.py`` checks every built frame against ``encode_layers`` and
``decode``, frame by frame, as the fast path is checked against the dissector.
"""
from __future__ import annotations

import struct as _struct
import zlib
from typing import Iterable, Mapping

from ..encode import encode_layers, icrc_coverage
from ..errors import EncodeError
from ..formats import HEADERS
from ..formats.grammar import PADDING, logical
from ..link.plength import plength as _plength
from ..profile import SPEC, Profile

__all__ = ["PacketTemplate", "FieldRef"]

_crc32 = zlib.crc32
_ZEROS = tuple(bytes(n) for n in range(4))


class FieldRef:
    """Where one field sits in a template's header bytes: byte offset, byte span, shift, mask."""

    __slots__ = ("name", "start", "end", "shift", "mask", "aligned", "bits")

    def __init__(self, name: str, bit: int, bits: int, header_shift: int = 0):
        self.name = name
        self.bits = bits
        self.start = bit // 8
        self.end = (bit + bits + 7) // 8
        span = (self.end - self.start) * 8
        self.shift = span - (bit % 8) - bits
        self.mask = ((1 << bits) - 1) << self.shift
        self.aligned = bit % 8 == 0 and bits % 8 == 0

    def put(self, buf: bytearray, value: int) -> None:
        """Write ``value`` into ``buf`` (the header bytes) in place."""
        s, e = self.start, self.end
        if self.aligned:
            buf[s:e] = value.to_bytes(e - s, "big")
        else:
            n = e - s
            old = int.from_bytes(buf[s:e], "big")
            buf[s:e] = ((old & ~self.mask) | ((value << self.shift) & self.mask)).to_bytes(n, "big")

    def get(self, buf) -> int:
        return (int.from_bytes(buf[self.start:self.end], "big") & self.mask) >> self.shift


class PacketTemplate:
    """Frames of one kind: fixed header layers, then a payload.

    ``layers``: the ``(layer, fields)`` list of the headers in wire order, as for
    :func:`~ubpkt.encode.encode_layers`, without payload, padding or ICRC.  Fields named in
    ``variable`` (``"ub.rtph.psn"``...) are patched per packet by :meth:`build`; the auto fields
    (lengths, checksums, padding, PLENGTH, ICRC) are filled per packet as the encoder would.
    Explicit values given at build time are kept (fault injection), auto fields included.
    """

    def __init__(self, layers: Iterable, profile: Profile = SPEC):
        self.profile = profile
        layers = [(name, dict(spec or {})) for name, spec in layers]
        self.layers = layers
        sample = encode_layers(layers, profile, add_layers=False)
        self.header = bytearray(sample)
        self.size = len(sample)
        self.refs: dict[str, FieldRef] = {}
        self.offsets: dict[str, int] = {}
        names = []
        off = 0
        for name, _ in layers:
            h = HEADERS.get(name) or HEADERS["ub." + name]
            names.append(h.layer)
            self.offsets.setdefault(h.layer, off)
            for f, foff, key in zip(h.fields, h.offsets, h.keys):
                self.refs.setdefault(f"{h.layer}.{f.name}", FieldRef(key, off * 8 + foff, f.bits))
            off += h.size
        assert off == self.size
        self.names = names
        # auto rules present in this template
        self._tph = next((n for n in names if n in PADDING.headers), None)
        if not getattr(profile, "pad_tp_body", True):
            self._tph = None            # the profile's sender does not pad (ns-3-UB)
        self._lph = names[0] if names and logical(names[0]) == "ub.lph" else None
        self._ip = "ip" if "ip" in names else ("ipv6" if "ipv6" in names else None)
        self._udp = "udp" in names
        start = icrc_coverage(layers, profile)
        self._icrc_start = None
        self._icrc_mask = None
        if start is not None:
            first = self.offsets[names[start]]
            mask = bytearray(self.size - first)
            for n in names[start:]:
                h = HEADERS[n]
                for o, length, m in h.icrc_masks(self.offsets[n] - first):
                    mask[o] |= m
                    for j in range(1, length):
                        mask[o + j] = 0xFF
            self._icrc_start = first
            self._icrc_mask = int.from_bytes(mask, "big")
        # byte offsets of the auto fields
        self._auto = {}
        for key in ("ip.len", "ip.checksum", "ipv6.plen", "udp.length", "ub.mgmtetah.pdu_length"):
            if key in self.refs:
                self._auto[key] = self.refs[key]
        if self._tph:
            self._auto["pad"] = self.refs[f"{self._tph}.{PADDING.field}"]
        if self._lph:
            self._auto["plength"] = self.refs[f"{self._lph}.plength"]

    # ---------------------------------------------------------------------------------------------
    def field(self, key: str) -> FieldRef:
        """The :class:`FieldRef` of ``layer.field`` (``ub.rtph.psn``)."""
        try:
            return self.refs[key]
        except KeyError:
            raise EncodeError(f"{key}: not a field of this template") from None

    def build(self, values: Mapping[str, int] | None = None, payload=b"",
              explicit: Mapping[str, int] | None = None) -> bytes:
        """A whole frame: header with ``values`` patched in (wire integers, keyed
        ``layer.field``), the payload (bytes-like, or a tuple/list of bytes-like parts joined in
        order), pad bytes, ICRC.  ``explicit``: values for auto fields that must not be computed
        (fault injection: a wrong length, checksum, ICRC...)."""
        hdr = self.header[:]
        refs = self.refs
        if values:
            for k, v in values.items():
                refs[k].put(hdr, v)
        parts = payload if isinstance(payload, (tuple, list)) else (payload,)
        plen = sum(len(x) for x in parts) if len(parts) != 1 else len(parts[0])
        body = self.size + plen
        explicit = explicit or {}
        pad = 0
        if self._tph is not None:
            tph_off = self.offsets[self._tph]
            pad = -(body - tph_off) % PADDING.align
            self._auto["pad"].put(hdr, explicit.get("pad", pad))
        icrc = 4 if self._icrc_start is not None else 0
        total = body + pad + icrc
        a = self._auto
        if self._ip == "ip":
            ip_off = self.offsets["ip"]
            a["ip.len"].put(hdr, explicit.get("ip.len", total - ip_off))
            if "ip.checksum" in explicit:
                a["ip.checksum"].put(hdr, explicit["ip.checksum"])
            else:
                a["ip.checksum"].put(hdr, 0)
                a["ip.checksum"].put(hdr, _ip_checksum(hdr[ip_off:ip_off + 20]))
        elif self._ip == "ipv6":
            a["ipv6.plen"].put(hdr, explicit.get("ipv6.plen", total - self.offsets["ipv6"] - 40))
        if self._udp:
            a["udp.length"].put(hdr, explicit.get("udp.length", total - self.offsets["udp"]))
        if "ub.mgmtetah.pdu_length" in a:
            mo = self.offsets["ub.mgmtetah"] + HEADERS["ub.mgmtetah"].size
            a["ub.mgmtetah.pdu_length"].put(hdr, explicit.get("ub.mgmtetah.pdu_length",
                                                              body - mo))
        if self._lph is not None:
            if "plength" in explicit:
                v = explicit["plength"]
            else:
                v = _plength(total, self.profile.crc_mode) if self.profile.check_plength else 0
            a["plength"].put(hdr, v)
        padb = _ZEROS[pad]
        if not icrc:
            return b"".join((hdr, *parts, padb))
        if "icrc" in explicit:
            crc = explicit["icrc"]
        else:
            s = self._icrc_start
            masked = (int.from_bytes(hdr[s:], "big") | self._icrc_mask).to_bytes(self.size - s,
                                                                                   "big")
            crc = _crc32(masked)
            for x in parts:
                crc = _crc32(x, crc)
            crc = _crc32(padb, crc)
        return b"".join((hdr, *parts, padb, crc.to_bytes(4, self.profile.icrc_byteorder)))


    # ---------------------------------------------------------------------------------------------
    def compile(self, keys) -> "callable":
        """A generated builder for the hot path: ``fn(v0, v1, ..., parts) -> bytes`` with the
        values of ``keys`` (``layer.field`` names, wire integers) in order and ``parts`` a tuple
        of bytes-likes (the payload).  The header is one integer: the template with those fields
        cleared, the values and the auto fields (padding, lengths, PLENGTH) ORed in at their
        shifts, one ``to_bytes``; the IPv4 checksum from ``struct``; the ICRC chained over the
        masked header and the parts.  Same bytes as :meth:`build` (tested frame by frame)."""
        keys = tuple(keys)
        size = self.size
        bits = size * 8
        auto = []
        if self._tph is not None:
            auto.append("pad")
        if self._ip == "ip":
            auto += ["ip.len", "ip.checksum"]
        elif self._ip == "ipv6":
            auto.append("ipv6.plen")
        if self._udp:
            auto.append("udp.length")
        if self._lph is not None:
            auto.append("plength")
        if "ub.mgmtetah.pdu_length" in self._auto:
            raise EncodeError("compile(): management PDUs are built with build()")
        refs = {k: self.refs[k] for k in keys}
        auto_refs = {k: self._auto[k] for k in auto}
        clear = 0
        shifts = {}
        for k, r in list(refs.items()) + list(auto_refs.items()):
            sh = (size - r.end) * 8 + r.shift
            shifts[k] = (sh, (1 << r.bits) - 1)
            clear |= ((1 << r.bits) - 1) << sh
        base = int.from_bytes(self.header, "big") & ~clear & ((1 << bits) - 1)
        args = [f"x{i}" for i in range(len(keys))]
        lines = [f"def build({', '.join(args + ['parts'])}):",
                 "    plen = 0",
                 "    for p in parts:",
                 "        plen += len(p)",
                 f"    body = {size} + plen"]
        terms = [f"({a} << {shifts[k][0]})" for a, k in zip(args, keys)]
        icrc = 4 if self._icrc_start is not None else 0
        if self._tph is not None:
            lines.append(f"    pad = -(body - {self.offsets[self._tph]}) & {PADDING.align - 1}")
            terms.append(f"(pad << {shifts['pad'][0]})")
        else:
            lines.append("    pad = 0")
        lines.append(f"    total = body + pad + {icrc}")
        if self._ip == "ip":
            terms.append(f"((total - {self.offsets['ip']}) << {shifts['ip.len'][0]})")
        elif self._ip == "ipv6":
            terms.append(f"((total - {self.offsets['ipv6'] + 40}) << {shifts['ipv6.plen'][0]})")
        if self._udp:
            terms.append(f"((total - {self.offsets['udp']}) << {shifts['udp.length'][0]})")
        ns = {"_crc32": _crc32, "_ZEROS": _ZEROS, "_unpack": _struct.unpack_from,
              "_plength": _plength}
        if self._lph is not None:
            if self.profile.check_plength:
                lines.append(f"    plv = _plength(total, {self.profile.crc_mode!r})")
                terms.append(f"(plv << {shifts['plength'][0]})")
        lines.append(f"    v = {base:#x} | " + " | ".join(terms) if terms else f"    v = {base:#x}")
        lines.append(f"    hdr = bytearray(v.to_bytes({size}, 'big'))")
        if self._ip == "ip":
            o = self.offsets["ip"]
            ck = auto_refs["ip.checksum"]
            lines += [f"    s = sum(_unpack('>10H', hdr, {o}))",
                      "    s = (s & 0xFFFF) + (s >> 16)",
                      "    s = (s & 0xFFFF) + (s >> 16)",
                      f"    hdr[{ck.start}:{ck.end}] = (~s & 0xFFFF).to_bytes(2, 'big')"]
        lines.append("    padb = _ZEROS[pad]")
        if not icrc:
            lines.append("    return b''.join((hdr, *parts, padb))")
        else:
            st = self._icrc_start
            low = (1 << ((size - st) * 8)) - 1
            lines += [f"    crc = _crc32(((v | {self._icrc_mask:#x}) & {low:#x})"
                      f".to_bytes({size - st}, 'big'))",
                      "    for p in parts:",
                      "        crc = _crc32(p, crc)",
                      "    crc = _crc32(padb, crc)",
                      f"    return b''.join((hdr, *parts, padb, crc.to_bytes(4, "
                      f"{self.profile.icrc_byteorder!r})))"]
        exec(compile("\n".join(lines) + "\n", "<ubpkt.stack.templates build>", "exec"), ns)
        return ns["build"]


def _ip_checksum(hdr) -> int:
    s = sum(int.from_bytes(hdr[i:i + 2], "big") for i in range(0, len(hdr), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
