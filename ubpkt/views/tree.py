"""``decode -V``: the packet tree with byte offsets, and ``-x``: the hex dump, as tshark shows them.

Where each layer starts is found by dissecting the frame again with a list that notes the read
position whenever a layer is appended (``dissect(..., layer_list=...)``); only ``-V`` pays for
this.  Values: enum fields show their name inline (``Write (3)``), fields Wireshark shows in hex
(:data:`HEX_FIELDS`: checksums, CRCs, addresses, keys, tokens, reserved bits, and anything wider
than 32 bits) show ``0x..`` with the decimal value beside it.
"""
from __future__ import annotations

import re

from ..formats import HEADERS
from ..formats.derived import BYTE_RUNS
from .fieldnames import enum_for, field_kind

__all__ = ["tree_lines", "hex_dump", "layer_spans", "HEX_FIELDS", "value_text"]

#: Field names (their last part) shown in hex, as Wireshark does for such values.
HEX_FIELDS = re.compile(r"(checksum|crc|icrc|bcrc|address|addr|tokenid|token|key|mask|bitmap|"
                        r"flow|xid|cookie|rsvd\d*|computed|value|type|flags)$")

_BITS = {}
for _h in HEADERS.values():
    for _k, _f in zip(_h.keys, _h.fields):
        _BITS.setdefault(_k, _f.bits)


class _TracingLayers(list):
    """Notes the dissector's read position whenever a layer is appended."""

    frame = None

    def __init__(self):
        super().__init__()
        self.ends: list[int] = []

    def append(self, layer):
        super().append(layer)
        self.ends.append(self.frame.pos if self.frame is not None else 0)


def layer_spans(data: bytes, linktype: int, profile) -> list[tuple[str, int, int]]:
    """(layer, start, length) per layer of a frame, in wire order."""
    from ..dissect import dissect
    tl = _TracingLayers()
    dissect(data, linktype, profile, layer_list=tl)
    return traced_spans(tl, data)


def traced_spans(tl: _TracingLayers, data: bytes) -> list[tuple[str, int, int]]:
    """:func:`layer_spans` of ``data`` from the layer list its dissection filled (``tl``)."""
    out, prev_end = [], 0
    for layer, end in zip(tl, tl.ends):
        h = HEADERS.get(layer)
        if h is not None:
            size = h.size
        elif layer == "ub.icrc":
            size = 4
        else:
            size = max(0, end - prev_end)
        start = max(0, end - size)
        if layer == "ub.icrc" and end <= prev_end:   # the ICRC is the last 4 bytes
            start, end = len(data) - 4, len(data)
        out.append((layer, start, end - start))
        prev_end = max(prev_end, end)
    return out


def _int_kind(key: str):
    """How the tree shows an integer of ``key``: (enum, None), (None, hex digits) or None
    (decimal); cached per key (the tree's hot path)."""
    enum = enum_for(key)
    if enum:
        kind = (enum, None)
    else:
        bits = _BITS.get(key, 0)
        kind = None
        if HEX_FIELDS.search(key.rsplit(".", 1)[-1]) or bits > 32:
            kind = (None, max(1, (bits + 3) // 4) if bits else 0)
    _INT_KINDS[key] = kind
    return kind


_INT_KINDS: dict = {}


def value_text(key: str, v) -> str:
    """A field's value as the tree shows it."""
    if v.__class__ is int:
        kind = _INT_KINDS[key] if key in _INT_KINDS else _int_kind(key)
        if kind is None:
            return str(v)
        if kind[0] is not None:
            return f"{kind[0].get(v, 'Unknown')} ({v})"
        return f"0x{v:0{kind[1]}x} ({v})"
    if isinstance(v, list):
        return ", ".join(value_text(key, x) for x in v)
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int):
        enum = enum_for(key)
        if enum:
            return f"{enum.get(v, 'Unknown')} ({v})"
        last = key.rsplit(".", 1)[-1]
        bits = _BITS.get(key, 0)
        if HEX_FIELDS.search(last) or bits > 32:
            width = max(1, (bits + 3) // 4) if bits else 0
            return f"0x{v:0{width}x} ({v})"
        return str(v)
    if isinstance(v, str) and field_kind(key) in ("bytes", "hex") and len(v) > 64:
        return v[:64] + f"... ({len(v) // 2} bytes)"
    return str(v)


def _layer_heads(layer: str):
    """(title, key prefix) of a layer's block."""
    got = _HEADS.get(layer)
    if got is None:
        h = HEADERS.get(layer)
        if h is not None:
            got = (f"{h.title} [{layer}]", f"{h.ns}.{h.prefix}." if h.ns else f"{h.prefix}.")
        else:
            got = (layer, BYTE_RUNS.get(layer, layer + "."))
        _HEADS[layer] = got
    return got


_HEADS: dict = {}


def tree_lines(rec: dict, spans=None, time_text: str = "") -> list[str]:
    """The -V tree: the frame line, then one block per layer with its offset and length (each
    field in the block of the first layer whose prefix it has, in the record's order), derived
    fields, the analysis, the issues."""
    lines = [f"Frame {rec['frame']}: {rec['len']} bytes on wire, {rec['caplen']} bytes "
             f"captured{', ' + time_text if time_text else ''}"]
    fields = rec["fields"]
    heads = [_layer_heads(layer) for layer in rec["layers"]]
    blocks: list = [[] for _ in heads]
    other, analysis = [], []
    for k, v in fields.items():
        if k.endswith("_name"):
            continue
        for i, (_, base) in enumerate(heads):
            if k.startswith(base) or k == base:
                blocks[i].append(f"    {k} = {value_text(k, v)}")
                break
        else:
            (analysis if k.startswith("ub.analysis.") else other).append(
                f"    {k} = {value_text(k, v)}")
    span_at = iter(spans or [])
    for layer, (title, _), block in zip(rec["layers"], heads, blocks):
        sp = next(span_at, None)
        where = f" @{sp[1]}, {sp[2]} bytes" if sp and sp[0] == layer else ""
        lines.append(f"  {title}{where}")
        lines.extend(block)
    if other:
        lines.append("  Derived fields")
        lines.extend(other)
    if analysis:
        lines.append("  [UB analysis]")
        lines.extend(analysis)
    for i in rec["issues"]:
        lines.append(f"  [Expert Info ({i['severity']}): {i['message']}] {i['layer']}"
                     f"{' ' + i['field'] if i['field'] else ''} @{i['offset']}")
    return lines


def hex_dump(data: bytes) -> list[str]:
    """tshark -x: offset, 16 bytes in hex (two groups of 8), the printable characters."""
    out = []
    for off in range(0, len(data), 16):
        row = data[off:off + 16]
        hx = " ".join(f"{b:02x}" for b in row[:8])
        if len(row) > 8:
            hx += "  " + " ".join(f"{b:02x}" for b in row[8:])
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        out.append(f"{off:04x}  {hx:<49} {text}")
    return out
