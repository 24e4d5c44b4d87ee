"""Field maps to bytes: the encoder of ubpkt.

``encode_layers([("ub.lph", {"cfg": 6}), ("ub.cna16", {...}), ..., ("data", b"...")])`` packs each
declared header and fills, when left unset (missing or None): the transport-header padding and
its pad bytes, MGMTETAH PDU length, IPv4/IPv6/UDP lengths, the IPv4 header checksum, the ICRC
(appended when the packet type carries one and no ``ub.icrc`` layer is given), LPH PLENGTH and
BCRC CRC30.  Explicit values are kept as given, wrong or not (fault injection).

``encode_record(record)`` re-encodes a decoded record: ``encode_record(decode(x)) == x``.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from ..dissect import BYTE_LAYERS
from ..formats import HEADERS
from ..formats.core import EncodeError, Header
from ..link.crc30 import block_crc
from ..link.plength import plength as _plength
from ..network.icrc import icrc, masks_for_cna16, masks_for_cna24, masks_for_ip
from ..profile import NS3, SPEC, Profile

__all__ = ["encode_layers", "encode_record", "EncodeError"]

_TPH = {"ub.rtph", "ub.utph", "ub.ctph"}
_UB_TRANSPORT_OVER_UDP = {"ub.rtph", "ub.utph"}


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
        return self.values[_index(self.header, field)]

    def set_if_none(self, field: str, value) -> None:
        i = _index(self.header, field)
        if self.values[i] is None:
            self.values[i] = value

    def bytes(self) -> bytes:
        if self.header is None:
            return self.raw
        return self.header.pack_values([0 if v is None else v for v in self.values])


def _index(h: Header, field: str) -> int:
    for i, f in enumerate(h.fields):
        if f.name == field:
            return i
    raise KeyError(field)


def _make_part(name: str, spec) -> _Part:
    if name == "ub.icrc":
        value = None
        if isinstance(spec, Mapping):
            value = spec.get("value")
        elif isinstance(spec, int):
            value = spec
        return _Part(name, None, [value], b"\0\0\0\0")
    if name in BYTE_LAYERS:
        if isinstance(spec, (bytes, bytearray, memoryview)):
            raw = bytes(spec)
        elif isinstance(spec, str):
            raw = bytes.fromhex(spec)
        elif isinstance(spec, Mapping):
            v = spec.get(BYTE_LAYERS[name].rsplit(".", 1)[-1], spec.get("data", b""))
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


def _needs_icrc(parts: list[_Part], profile: Profile) -> tuple[int | None, str | None]:
    """Index of the part where ICRC coverage starts (or None), and its kind."""
    names = [p.name for p in parts]
    if not profile.icrc:
        return None, None
    for i, p in enumerate(parts):
        if p.name in ("ip", "ipv6"):
            if any(n in _UB_TRANSPORT_OVER_UDP for n in names[i:]):
                return i, p.name
            return None, None
        if p.name.startswith("ub.cna16") or p.name.startswith("ub.cna24"):
            lph = parts[0] if parts and parts[0].name.startswith("ub.lph") else None
            if lph is not None and lph.get("cfg") == 9:
                return None, None
            if p.get("nlp") == 1 and p.name.startswith("ub.cna16") and not profile.enum_icrc:
                return None, None
            return i, p.name
    return None, None


def encode_layers(layers: Iterable, profile: Profile = SPEC, *, add_layers: bool = True) -> bytes:
    """Bytes of a packet given as ``(layer, fields)`` pairs in wire order (see module doc).
    ``add_layers=False`` never appends an ICRC or pad bytes that the list does not name."""
    parts = [_make_part(name, spec) for name, spec in layers]
    names = [p.name for p in parts]

    # 1. transport padding and its pad bytes
    for i, p in enumerate(parts):
        if p.name in _TPH and p.get("padding") is None:
            end = len(parts)
            for j in range(i + 1, len(parts)):
                if parts[j].name in ("ub.icrc", "ub.pad", "eth.trailer"):
                    end = j
                    break
            body = sum(q.size for q in parts[i:end])
            if "ub.pad" in names or not add_layers:
                pad = parts[names.index("ub.pad")].size if "ub.pad" in names else 0
            else:
                pad = -body % 4
                if pad:
                    parts.insert(end, _Part("ub.pad", None, None, bytes(pad)))
                    names.insert(end, "ub.pad")
            if pad > 3:
                raise EncodeError(f"{pad} pad bytes do not fit the 2-bit padding field")
            p.values[_index(p.header, "padding")] = pad

    # 2. ICRC present?
    start, kind = _needs_icrc(parts, profile)
    if start is not None and "ub.icrc" not in names and add_layers:
        at = names.index("eth.trailer") if "eth.trailer" in names else len(parts)
        parts.insert(at, _make_part("ub.icrc", None))
        names.insert(at, "ub.icrc")

    # 3. MGMTETAH PDU length
    for i, p in enumerate(parts):
        if p.name == "ub.mgmtetah" and p.get("pdu_length") is None:
            n = 0
            for q in parts[i + 1:]:
                if q.name in ("ub.pad", "ub.icrc", "eth.trailer"):
                    break
                n += q.size
            p.values[_index(p.header, "pdu_length")] = n

    # offsets
    off = 0
    for p in parts:
        p.offset = off
        off += p.size
    total = off
    ip_end = parts[names.index("eth.trailer")].offset if "eth.trailer" in names else total

    # 4. IP/UDP lengths and the IPv4 checksum
    for i, p in enumerate(parts):
        if p.name == "ip":
            opts = parts[i + 1].size if i + 1 < len(parts) and parts[i + 1].name == \
                "ip.options" else 0
            p.set_if_none("hdr_len", 5 + opts // 4)
            p.set_if_none("len", ip_end - p.offset)
        elif p.name == "ipv6":
            p.set_if_none("plen", ip_end - p.offset - 40)
        elif p.name == "udp":
            p.set_if_none("length", ip_end - p.offset)
            ub = any(n in _UB_TRANSPORT_OVER_UDP for n in names[i:])
            p.set_if_none("dstport", profile.ub_udp_ports[0] if ub else 0)
    for i, p in enumerate(parts):
        if p.name == "ip" and p.get("checksum") is None:
            p.values[_index(p.header, "checksum")] = 0
            hdr = p.bytes() + (parts[i + 1].raw if i + 1 < len(parts) and
                               parts[i + 1].name == "ip.options" else b"")
            p.values[_index(p.header, "checksum")] = _ip_checksum(hdr)

    # 5. PLENGTH
    if parts and parts[0].name in ("ub.lph", "ub.lph_ns3") and parts[0].get("plength") is None:
        if profile.check_plength:
            parts[0].values[_index(parts[0].header, "plength")] = _plength(total,
                                                                           profile.crc_mode)
        else:
            parts[0].values[_index(parts[0].header, "plength")] = 0

    out = bytearray()
    for p in parts:
        out += p.bytes()

    # 6. BCRC of a control block
    for p in parts:
        if p.name == "ub.bcrc" and p.get("crc30") is None:
            info = (p.values[0] or 0) << 1 | (p.values[1] or 0)
            crc = block_crc(bytes(out[:p.offset]), info, profile.bcrc_covers_info)
            p.values[2] = crc
            out[p.offset:p.offset + 4] = p.bytes()

    # 7. ICRC last: it covers everything before it
    if "ub.icrc" in names:
        ic = parts[names.index("ub.icrc")]
        value = ic.values[0]
        if value is None:
            if start is None:
                raise EncodeError("ub.icrc given, but this packet type carries no ICRC")
            sp = parts[start]
            if kind == "ip":
                udp = next((q.offset for q in parts[start:] if q.name == "udp"), None)
                masks = masks_for_ip(sp.offset, 4, udp)
            elif kind == "ipv6":
                udp = next((q.offset for q in parts[start:] if q.name == "udp"), None)
                masks = masks_for_ip(sp.offset, 6, udp)
            elif kind.startswith("ub.cna16"):
                masks = masks_for_cna16(sp.offset)
            else:
                masks = masks_for_cna24(sp.offset)
            value = icrc(out, sp.offset, ic.offset, masks)
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
        elif layer in BYTE_LAYERS:
            out.append((layer, bytes.fromhex(take(BYTE_LAYERS[layer]))))
        else:
            h = HEADERS[layer]
            out.append((layer, {f.name: take(key) for key, f in zip(h.keys, h.fields)}))
    return out


def _layer_keys(layer: str) -> tuple:
    if layer == "ub.icrc":
        return ("ub.icrc.value",)
    if layer in BYTE_LAYERS:
        return (BYTE_LAYERS[layer],)
    return HEADERS[layer].keys


def encode_record(record: Mapping, profile: Profile | None = None) -> bytes:
    """Re-encode a decoded record (every field explicit, so the bytes come back unchanged)."""
    if profile is None:
        profile = NS3 if record.get("linktype") == 147 else SPEC
    return encode_layers(record_layers(record), profile, add_layers=False)
