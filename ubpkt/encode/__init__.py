"""Field maps to bytes: the encoder of ubpkt.

``encode_layers([("ub.lph", {"cfg": 6}), ("ub.cna16", {...}), ..., ("data", b"...")])`` packs each
declared header and fills every ``auto`` field left unset (missing or None) by the rule the
grammar names for it (:data:`ubpkt.formats.grammar.AUTO_FILL`): the transport padding and its
pad bytes (:data:`~ubpkt.formats.grammar.PADDING`), the MGMTETAH PDU length, the IPv4/IPv6/UDP
lengths, the UB UDP port, the IPv4 header checksum, the LPH PLENGTH, the BCRC CRC30 and the ICRC
(appended where :func:`~ubpkt.formats.grammar.icrc_start` says the packet carries one and no
``ub.icrc`` layer is given; masks from the ``icrc_mask`` field flags).  Explicit values are kept
as given, wrong or not (fault injection).

``encode_record(record)`` re-encodes a decoded record: ``encode_record(decode(x)) == x``.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from ..errors import EncodeError
from ..formats import HEADERS
from ..formats.core import Header
from ..formats.derived import BYTE_RUNS
from ..formats.grammar import (AUTO_FILL, ICRC_COVERAGE, NEXT, PADDING, TRANSPORT_OVER_UDP,
                               next_protocol_value, icrc_start,
                               logical)
from ..link.crc30 import block_crc
from ..link.plength import plength as _plength
from ..network.icrc import icrc
from ..profile import SPEC, Profile, profile_for

__all__ = ["encode_layers", "encode_record", "icrc_coverage", "EncodeError", "RULES"]

_ICRC_STARTS = frozenset(c.start for c in ICRC_COVERAGE)
#: layer -> the field its NEXT rule switches on, where AUTO_FILL fills it (next_protocol)
_NEXT_FIELD = {lay: NEXT[lay].key for (lay, _f), rule in AUTO_FILL.items()
               if rule == "next_protocol"}
#: The encoder's implementation of each AUTO_FILL rule, in the order they run: sizes first,
#: then the checksums over them, the ICRC last (it covers everything before it).
RULES = ("next_protocol", "ub_ip_flags", "tp_padding", "mgmt_pdu_length", "ipv4_ihl",
         "ipv4_total_length", "ipv6_payload_length", "udp_length", "ub_udp_port",
         "ipv4_checksum", "plength", "bcrc", "icrc")


class _Part:
    __slots__ = ("name", "header", "values", "raw", "size", "offset")

    def __init__(self, name: str, header: Header | None, values: list | None, raw: bytes | None):
        self.name = name
        self.header = header
        self.values = values
        self.raw = raw
        self.size = header.size if header is not None else len(raw or b"")
        self.offset = 0

    def get(self, field: str):
        return self.values[self.header.index[field]]

    def set_if_none(self, field: str, value) -> None:
        i = self.header.index[field]
        if self.values[i] is None:
            self.values[i] = value

    def bytes(self) -> bytes:
        if self.header is None:
            return self.raw
        return self.header.pack_values([0 if v is None else v for v in self.values])


def _make_part(name: str, spec) -> _Part:
    if name == "ub.icrc":
        value = None
        if isinstance(spec, Mapping):
            value = spec.get("value")
        elif isinstance(spec, int):
            value = spec
        return _Part(name, None, [value], b"\0\0\0\0")
    if name in BYTE_RUNS:
        if isinstance(spec, (bytes, bytearray, memoryview)):
            raw = bytes(spec)
        elif isinstance(spec, str):
            raw = bytes.fromhex(spec)
        elif isinstance(spec, Mapping):
            v = spec.get(BYTE_RUNS[name].rsplit(".", 1)[-1], spec.get("data", b""))
            raw = bytes.fromhex(v) if isinstance(v, str) else bytes(v or b"")
        elif spec is None:
            raw = b""
        else:
            raise EncodeError(f"{name}: bytes or hex expected")
        return _Part(name, None, None, raw)
    h = HEADERS.get(name) or HEADERS.get("ub." + name)
    if h is None:
        raise EncodeError(f"unknown layer {name!r}")
    values = h.wire_values(dict(spec or {}), unset_auto=True)
    return _Part(h.layer, h, values, None)


def _icrc_plan(parts: list[_Part], profile: Profile) -> int | None:
    """Index of the part where the ICRC coverage starts (grammar ICRC_COVERAGE), or None."""
    for i, p in enumerate(parts):
        lay = logical(p.name)
        if lay not in _ICRC_STARTS or p.header is None:
            continue

        def earlier(key, _i=i):
            base, field = key.rsplit(".", 1)
            for q in reversed(parts[:_i]):
                if q.header is not None and q.header.base == base and field in q.header.index:
                    return q.get(field)
            return None

        nlp = p.get("nlp") if "nlp" in p.header.index else None
        ub_udp = any(q.name in TRANSPORT_OVER_UDP for q in parts[i:])
        if icrc_start(lay, earlier, profile, nlp=nlp, ub_udp=ub_udp):
            return i
        if lay != "ub.cfg5":       # the first network header decides (a CFG-5 frame may
            return None            # carry IP inside: DHCP, App F.2.2)
    return None


def icrc_coverage(layers: Iterable, profile: Profile = SPEC) -> int | None:
    """Index, in a ``(layer, fields)`` list, of the header where this packet's ICRC coverage
    starts, or None when the packet carries no ICRC (UB 2.0 §5.3.7; grammar ICRC_COVERAGE)."""
    return _icrc_plan([_make_part(name, spec) for name, spec in layers], profile)


def _pad_end(parts: list[_Part], i: int) -> int:
    """Index of the first part after ``i`` that ends the padded region (PADDING.ends_before)."""
    for j in range(i + 1, len(parts)):
        if parts[j].name in PADDING.ends_before:
            return j
    return len(parts)


def encode_layers(layers: Iterable, profile: Profile = SPEC, *, add_layers: bool = True) -> bytes:
    """Bytes of a packet given as ``(layer, fields)`` pairs in wire order (see module doc).
    ``add_layers=False`` never appends an ICRC or pad bytes that the list does not name."""
    parts = [_make_part(name, spec) for name, spec in layers]
    names = [p.name for p in parts]

    # next_protocol: the field NEXT switches on, from the layer that follows (grammar); then
    # ub_ip_flags: DF for an IPv4 packet carrying UB over UDP (UB 2.0 §5.2.3 Table 5-4)
    for i, p in enumerate(parts):
        if p.header is None or i + 1 >= len(parts):
            continue
        field = _NEXT_FIELD.get(p.name)
        if field is not None and p.get(field) is None:
            v = next_protocol_value(p.name, parts[i + 1].name)
            if v is not None:
                p.values[p.header.index[field]] = v
        if p.name == "ip" and p.get("flags") is None:
            ub = any(n in TRANSPORT_OVER_UDP for n in names[i:]) and "udp" in names[i:]
            p.values[p.header.index["flags"]] = 2 if ub else 0

    # tp_padding (UB 2.0 §6.2.1): the transport padding and its pad bytes
    for i, p in enumerate(parts):
        if p.name in PADDING.headers and p.get(PADDING.field) is None:
            end = _pad_end(parts, i)
            body = sum(q.size for q in parts[i:end])
            if PADDING.pad_layer in names or not add_layers:
                pad = parts[names.index(PADDING.pad_layer)].size if PADDING.pad_layer in names \
                    else 0
            else:
                pad = -body % PADDING.align
                if pad:
                    parts.insert(end, _Part(PADDING.pad_layer, None, None, bytes(pad)))
                    names.insert(end, PADDING.pad_layer)
            if pad > 3:
                raise EncodeError(f"{pad} pad bytes do not fit the 2-bit padding field")
            p.values[p.header.index[PADDING.field]] = pad

    # is there an ICRC? (UB 2.0 §5.3.7)
    start = _icrc_plan(parts, profile)
    if start is not None and "ub.icrc" not in names and add_layers:
        at = names.index("eth.trailer") if "eth.trailer" in names else len(parts)
        parts.insert(at, _make_part("ub.icrc", None))
        names.insert(at, "ub.icrc")

    # mgmt_pdu_length (UB 2.0 §10.4.3.1)
    for i, p in enumerate(parts):
        if p.name == "ub.mgmtetah" and p.get("pdu_length") is None:
            n = 0
            for q in parts[i + 1:]:
                if q.name in ("ub.pad", "ub.icrc", "eth.trailer"):
                    break
                n += q.size
            p.values[p.header.index["pdu_length"]] = n

    off = 0
    for p in parts:
        p.offset = off
        off += p.size
    total = off
    ip_end = parts[names.index("eth.trailer")].offset if "eth.trailer" in names else total

    # ipv4_ihl, ipv4_total_length, ipv6_payload_length, udp_length, ub_udp_port.  An ICRC whose
    # coverage starts before the IP header (a CFG-5 frame carrying IP) closes the outer frame,
    # not the IP packet: it is not counted in the IP and UDP lengths.
    icrc_at = names.index("ub.icrc") if "ub.icrc" in names else None
    ip_index = None
    for i, p in enumerate(parts):
        if p.name in ("ip", "ipv6"):
            ip_index = i
        if icrc_at is not None and start is not None and ip_index is not None \
                and start < ip_index:
            ip_end = min(ip_end, parts[icrc_at].offset)
        if p.name == "ip":
            opts = parts[i + 1].size if i + 1 < len(parts) and parts[i + 1].name == \
                "ip.options" else 0
            p.set_if_none("hdr_len", 5 + opts // 4)
            p.set_if_none("len", ip_end - p.offset)
        elif p.name == "ipv6":
            p.set_if_none("plen", ip_end - p.offset - 40)
        elif p.name == "udp":
            p.set_if_none("length", ip_end - p.offset)
            ub = any(n in TRANSPORT_OVER_UDP for n in names[i:])
            p.set_if_none("dstport", profile.ub_udp_ports[0] if ub else 0)
    # ipv4_checksum (RFC 791)
    for i, p in enumerate(parts):
        if p.name == "ip" and p.get("checksum") is None:
            p.values[p.header.index["checksum"]] = 0
            hdr = p.bytes() + (parts[i + 1].raw if i + 1 < len(parts) and
                               parts[i + 1].name == "ip.options" else b"")
            p.values[p.header.index["checksum"]] = _ip_checksum(hdr)

    # plength (UB 2.0 §4.3.2.2.2)
    if parts and logical(parts[0].name) == "ub.lph" and parts[0].get("plength") is None:
        parts[0].values[parts[0].header.index["plength"]] = \
            _plength(total, profile.crc_mode) if profile.check_plength else 0

    out = bytearray()
    for p in parts:
        out += p.bytes()

    # bcrc (UB 2.0 §4.7.2)
    for p in parts:
        if p.name == "ub.bcrc" and p.get("crc30") is None:
            ix = p.header.index
            info = (p.values[ix["rsvd1"]] or 0) << 1 | (p.values[ix["error_flag"]] or 0)
            crc = block_crc(bytes(out[:p.offset]), info, profile.bcrc_covers_info)
            p.values[ix["crc30"]] = crc
            out[p.offset:p.offset + 4] = p.bytes()

    # icrc, last: it covers everything before it (UB 2.0 §5.3.7)
    if "ub.icrc" in names:
        ic = parts[names.index("ub.icrc")]
        value = ic.values[0]
        if value is None:
            if start is None:
                raise EncodeError("ub.icrc given, but this packet type carries no ICRC")
            masks = []
            for q in parts[start:names.index("ub.icrc")]:
                if q.header is not None and q.header.icrc_ormask:
                    masks += q.header.icrc_masks(q.offset)
            value = icrc(out, parts[start].offset, ic.offset, masks)
        out[ic.offset:ic.offset + 4] = int(value).to_bytes(4, profile.icrc_byteorder)
    return bytes(out)


def _ip_checksum(hdr: bytes) -> int:
    if len(hdr) % 2:
        hdr += b"\0"
    s = sum(int.from_bytes(hdr[i:i + 2], "big") for i in range(0, len(hdr), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def record_layers(record: Mapping) -> list:
    """The ``(layer, fields)`` list of a decoded record.  A field name used by several layers
    holds a list of values in wire order; each layer takes the next one."""
    fields = record["fields"]
    used: dict[str, int] = {}
    counts: dict[str, int] = {}
    for layer in record["layers"]:
        for key in _layer_keys(layer):
            counts[key] = counts.get(key, 0) + 1

    def take(key: str):
        v = fields[key]
        if counts[key] > 1:
            i = used.get(key, 0)
            used[key] = i + 1
            return v[i]
        return v

    out = []
    for layer in record["layers"]:
        if layer == "ub.icrc":
            out.append((layer, {"value": fields["ub.icrc.value"]}))
        elif layer in BYTE_RUNS:
            out.append((layer, bytes.fromhex(take(BYTE_RUNS[layer]))))
        else:
            h = HEADERS[layer]
            out.append((layer, {f.name: take(key) for key, f in zip(h.keys, h.fields)}))
    return out


def _layer_keys(layer: str) -> tuple:
    if layer == "ub.icrc":
        return ("ub.icrc.value",)
    if layer in BYTE_RUNS:
        return (BYTE_RUNS[layer],)
    return HEADERS[layer].keys


def encode_record(record: Mapping, profile: Profile | None = None) -> bytes:
    """Re-encode a decoded record (every field explicit, so the bytes come back unchanged)."""
    profile = profile_for(record.get("linktype"), profile)
    return encode_layers(record_layers(record), profile, add_layers=False)
