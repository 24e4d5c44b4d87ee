"""A small Thrift compact-protocol codec: the encoding of Parquet's page headers and file footer.

Parquet describes its metadata (``FileMetaData``, ``RowGroup``, ``ColumnChunk``, ``PageHeader``
...) as Thrift structs serialized with the compact protocol.  The assembling Parquet writer
(``ubpkt.analytics.parquet_writer``) reads the footer of the buffers pyarrow writes, moves
their column chunks, adds its own all-null chunks and writes the final footer, so it needs both
directions, generically: a struct is kept as its fields, not as a typed object, and a field
nobody touches is written back exactly as it was read (whatever a newer pyarrow adds).

Representation (what :func:`decode_struct` gives and :func:`encode_struct` takes): a struct is a
``dict`` ``{field id: (type, value)}`` in field order; ``type`` is one of the ``T_*`` wire
types below; the value of

* ``T_BOOL``: ``True``/``False`` (the compact protocol puts a field's boolean in its type nibble);
* ``T_BYTE``, ``T_I16``, ``T_I32``, ``T_I64``: an ``int``; ``T_DOUBLE``: a ``float``;
* ``T_BINARY``: ``bytes`` (Thrift strings too);
* ``T_LIST``, ``T_SET``: ``(element type, [values])``;
* ``T_MAP``: ``(key type, value type, [(key, value)])``;
* ``T_STRUCT``: a struct dict, or (encoding only) ``bytes``: a struct already encoded
  (:func:`encode_struct`'s output, copied as is: a writer encodes a part once and splices it).

The wire format (the compact protocol as Apache Thrift publishes it): integers as ZigZag
varints (LEB128, 7 bits per byte); a field header is one byte ``delta << 4 | type`` when the
field id exceeds the previous one by 1..15, else the type byte followed by the ZigZag varint
id; a struct ends with a 0 byte; a list header is ``size << 4 | element type`` for sizes under
15, else ``0xF0 | element type`` and the size as a varint; binary is a varint length and the
bytes; a double is 8 bytes little-endian.  Decoding raises :class:`ThriftError` on malformed or
truncated input, never anything else.
"""
from __future__ import annotations

import struct as _struct

__all__ = ["T_BOOL", "T_BYTE", "T_I16", "T_I32", "T_I64", "T_DOUBLE", "T_BINARY", "T_LIST",
           "T_SET", "T_MAP", "T_STRUCT", "ThriftError", "decode_struct", "encode_struct",
           "encode_fields", "field_header", "i64_value", "uvarint"]

T_STOP = 0
T_BOOL = 1            # in a field header: 1 = true, 2 = false
T_FALSE = 2
T_BYTE = 3
T_I16 = 4
T_I32 = 5
T_I64 = 6
T_DOUBLE = 7
T_BINARY = 8
T_LIST = 9
T_SET = 10
T_MAP = 11
T_STRUCT = 12

#: Nesting bound while decoding (Parquet's metadata nests a few levels; a deeper input is
#: malformed, and the bound keeps a hostile one from exhausting the stack).
MAX_DEPTH = 64

_DOUBLE = _struct.Struct("<d")


class ThriftError(ValueError):
    """Malformed or truncated compact-protocol input."""


def uvarint(v: int) -> bytes:
    """``v`` (>= 0) as an unsigned LEB128 varint."""
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _zigzag(v: int) -> int:
    return (v << 1) ^ (v >> 63) if v >= 0 else ((-v - 1) << 1) | 1


def _unzigzag(u: int) -> int:
    return (u >> 1) ^ -(u & 1)


# ---------------------------------------------------------------------------------- encoding

def encode_struct(fields: dict) -> bytes:
    """The compact-protocol bytes of a struct (``{field id: (type, value)}``)."""
    out = bytearray()
    _put_struct(out, fields)
    return bytes(out)


def encode_fields(fields: dict, last: int = 0) -> bytes:
    """The fields of a struct without its end byte, the first header relative to field id
    ``last`` (the field before them): a writer splices such runs around a value it fills in
    later (a file offset) and adds the end byte (``b"\\x00"``) itself."""
    out = bytearray()
    _put_fields(out, fields, last)
    return bytes(out)


def field_header(fid: int, t: int, last: int) -> bytes:
    """The header of field ``fid`` of wire type ``t`` after field ``last``."""
    delta = fid - last
    return bytes([delta << 4 | t]) if 0 < delta <= 15 else bytes([t]) + uvarint(_zigzag(fid))


def i64_value(v: int) -> bytes:
    """An integer value (i16/i32/i64) as its ZigZag varint."""
    return uvarint(_zigzag(v))


def _put_struct(out: bytearray, fields) -> None:
    if isinstance(fields, (bytes, bytearray)):
        out += fields
        return
    _put_fields(out, fields, 0)
    out.append(T_STOP)


def _put_fields(out: bytearray, fields: dict, last: int) -> None:
    for fid in sorted(fields):
        t, v = fields[fid]
        wire = (T_BOOL if v else T_FALSE) if t == T_BOOL else t
        delta = fid - last
        if 0 < delta <= 15:
            out.append(delta << 4 | wire)
        else:
            out.append(wire)
            out += uvarint(_zigzag(fid))
        last = fid
        if t != T_BOOL:
            _put_value(out, t, v)


def _put_value(out: bytearray, t: int, v) -> None:
    if t in (T_I16, T_I32, T_I64):
        out += uvarint(_zigzag(v))
    elif t == T_BINARY:
        out += uvarint(len(v))
        out += v
    elif t == T_STRUCT:
        _put_struct(out, v)
    elif t in (T_LIST, T_SET):
        et, items = v
        n = len(items)
        if n < 15:
            out.append(n << 4 | et)
        else:
            out.append(0xF0 | et)
            out += uvarint(n)
        for x in items:
            if et == T_BOOL:
                out.append(T_BOOL if x else T_FALSE)
            else:
                _put_value(out, et, x)
    elif t == T_BYTE:
        out.append(v & 0xFF)
    elif t == T_DOUBLE:
        out += _DOUBLE.pack(v)
    elif t == T_MAP:
        kt, vt, items = v
        out += uvarint(len(items))
        if items:
            out.append(kt << 4 | vt)
        for k, x in items:
            _put_value(out, kt, k)
            _put_value(out, vt, x)
    else:
        raise ValueError(f"unknown Thrift compact type {t}")


# ---------------------------------------------------------------------------------- decoding

def decode_struct(buf, pos: int = 0, depth: int = 0) -> tuple:
    """``(struct, position after it)`` of the struct at ``buf[pos:]`` (bytes-like)."""
    if depth > MAX_DEPTH:
        raise ThriftError("structs nested too deeply")
    if not isinstance(buf, (bytes, bytearray)):
        buf = bytes(buf)
    fields: dict = {}
    last = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise ThriftError("truncated struct")
        b = buf[pos]
        pos += 1
        if b == T_STOP:
            return fields, pos
        wire = b & 0x0F
        delta = b >> 4
        if delta:
            fid = last + delta
        else:
            u, pos = _read_uvarint(buf, pos)
            fid = _unzigzag(u)
        last = fid
        if wire in (T_BOOL, T_FALSE):
            fields[fid] = (T_BOOL, wire == T_BOOL)
            continue
        v, pos = _read_value(buf, pos, wire, depth)
        fields[fid] = (wire, v)


def _read_uvarint(buf, pos: int) -> tuple:
    v = shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise ThriftError("truncated varint")
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, pos
        shift += 7
        if shift > 70:
            raise ThriftError("varint too long")


def _read_value(buf, pos: int, t: int, depth: int) -> tuple:
    if depth > MAX_DEPTH:
        raise ThriftError("values nested too deeply")
    if t in (T_I16, T_I32, T_I64):
        u, pos = _read_uvarint(buf, pos)
        return _unzigzag(u), pos
    if t == T_BINARY:
        n, pos = _read_uvarint(buf, pos)
        if pos + n > len(buf):
            raise ThriftError("truncated binary")
        return bytes(buf[pos:pos + n]), pos + n
    if t == T_STRUCT:
        return decode_struct(buf, pos, depth + 1)
    if t in (T_LIST, T_SET):
        if pos >= len(buf):
            raise ThriftError("truncated list")
        h = buf[pos]
        pos += 1
        et, n = h & 0x0F, h >> 4
        if n == 15:
            n, pos = _read_uvarint(buf, pos)
        if n > len(buf) - pos and et not in (T_BOOL, T_FALSE):
            raise ThriftError("list longer than its input")
        items = []
        for _ in range(n):
            if et in (T_BOOL, T_FALSE):
                if pos >= len(buf):
                    raise ThriftError("truncated list")
                items.append(buf[pos] == T_BOOL)
                pos += 1
            else:
                x, pos = _read_value(buf, pos, et, depth + 1)
                items.append(x)
        return (T_BOOL if et == T_FALSE else et, items), pos
    if t == T_BYTE:
        if pos >= len(buf):
            raise ThriftError("truncated byte")
        b = buf[pos]
        return (b - 256 if b > 127 else b), pos + 1
    if t == T_DOUBLE:
        if pos + 8 > len(buf):
            raise ThriftError("truncated double")
        return _DOUBLE.unpack_from(buf, pos)[0], pos + 8
    if t == T_MAP:
        n, pos = _read_uvarint(buf, pos)
        if n == 0:
            return (0, 0, []), pos
        if pos >= len(buf):
            raise ThriftError("truncated map")
        kt, vt = buf[pos] >> 4, buf[pos] & 0x0F
        pos += 1
        items = []
        for _ in range(n):
            k, pos = _read_value(buf, pos, kt, depth + 1)
            x, pos = _read_value(buf, pos, vt, depth + 1)
            items.append((k, x))
        return (kt, vt, items), pos
    raise ThriftError(f"unknown Thrift compact type {t}")
