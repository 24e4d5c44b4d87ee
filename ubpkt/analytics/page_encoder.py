"""ubpkt's own Parquet column-chunk encoder for the flat columns that have a value.

The assembling writer (``ubpkt.analytics.parquet_writer``) hands the columns the exporter
builds as numpy data (``ubpkt.analytics.column_data``: :class:`Dense` numbers with a validity
mask, :class:`Words` texts as distinct words and one code per row) to :func:`encode_chunk`,
which writes the column chunk pyarrow would write for the same values, without Arrow arrays:

* data pages of format V1 (at most ``page_rows`` rows each), their body compressed as a whole
  (zstd through ``pyarrow.Codec``, the codec and default level pyarrow's writer uses);
* definition levels (maximum level 1: a flat optional column) as the RLE/bit-packing hybrid
  (:func:`hybrid`) behind their 4-byte length; a page valued in every row is one RLE run;
* values ``PLAIN`` in the column's physical type: ``INT32`` (4 bytes little-endian, the
  unsigned 8/16/32-bit types as their bit pattern), ``INT64``, ``DOUBLE``, ``BOOLEAN`` (one
  bit each, least significant first), only the non-null ones;
* a dictionary column (the text columns): a ``PLAIN`` dictionary page of the words
  (``BYTE_ARRAY``: 4-byte length and UTF-8 bytes each), in the order given (the order the
  Arrow dictionary has, which is what pyarrow writes and what a reader gets back), then data
  pages of ``RLE_DICTIONARY`` indices (one byte of bit width, then the hybrid of the codes);
* statistics where the column has them, as pyarrow 26 writes them: ``null_count``,
  ``min_value``/``max_value`` in the physical type's plain bytes with the logical type's order
  (unsigned integers compared unsigned, texts by their UTF-8 bytes, doubles without NaN and
  with a zero minimum written ``-0.0`` and a zero maximum ``+0.0``), the deprecated
  ``min``/``max`` as well for the signed types (signed integers, doubles) and booleans, the
  ``is_*_value_exact`` flags; the same statistics in each data page header;
* the ``ColumnMetaData`` pyarrow writes: encodings, sizes, page encoding statistics, size
  statistics (definition level histogram, the unencoded bytes of a ``BYTE_ARRAY`` column).

The formats are those of the Apache Parquet format specification (the encodings document:
PLAIN, the RLE/bit-packing hybrid, RLE_DICTIONARY; ``parquet.thrift`` for the structures,
field numbers named below).  ``tests/analytics/test_page_encoder.py`` reads what it writes back
with pyarrow against the input and compares statistics with pyarrow's for the same column.
"""
from __future__ import annotations

import struct

import numpy as np

from .thrift_compact import (T_BINARY, T_BOOL, T_I32, T_I64, T_LIST, T_STRUCT, encode_struct,
                             uvarint)

try:
    from .._linkc import bit_pack as _bit_pack_c
    from .._linkc import byte_array_plain as _byte_array_c
    from .._linkc import compact_values as _compact_c
    from .._linkc import hybrid_encode as _hybrid_c
except ImportError:  # pragma: no cover - no compiler
    _bit_pack_c = _hybrid_c = _compact_c = _byte_array_c = None

__all__ = ["hybrid", "hybrid_py", "compact", "compact_py", "byte_array_plain",
           "byte_array_plain_py", "bit_pack", "bit_pack_py", "encode_chunk", "MIN_RLE_GROUPS",
           "BOOLEAN", "INT32", "INT64", "DOUBLE", "BYTE_ARRAY", "MAX_STATISTICS_SIZE"]

# parquet.thrift: Type, Encoding, PageType
BOOLEAN, INT32, INT64, DOUBLE, BYTE_ARRAY = 0, 1, 2, 5, 6
_PLAIN, _RLE, _RLE_DICTIONARY = 0, 3, 8
_DATA_PAGE, _DICTIONARY_PAGE = 0, 2

#: Runs of equal values at least this many groups of 8 long become RLE runs of the hybrid;
#: shorter ones stay in the bit-packed groups around them (an RLE run costs a header and one
#: value; splitting a bit-packed run costs another header).  8 groups = 64 values.
MIN_RLE_GROUPS = 8
#: A statistics value (min or max) longer than this is left out, as pyarrow's writer does
#: with its default ``max_statistics_size`` (each side alone).
MAX_STATISTICS_SIZE = 4096

#: numpy dtype of the PLAIN bytes per physical type and signedness
_PLAIN_DTYPE = {(INT32, False): "<u4", (INT32, True): "<i4", (INT64, False): "<u8",
                (INT64, True): "<i8", (DOUBLE, True): "<f8", (DOUBLE, False): "<f8"}


def bit_pack_py(values: np.ndarray, width: int) -> bytes:
    """``values`` (unsigned, each < 2**width) bit-packed as the hybrid's bit-packed groups:
    ``width`` bits per value, least significant bit first, groups of 8 values (the last one
    filled with zero bits): numpy (the reference of ``_linkc.bit_pack``)."""
    v = np.asarray(values, dtype=np.uint64)
    pad = -len(v) % 8
    if pad:
        v = np.concatenate([v, np.zeros(pad, np.uint64)])
    if width == 1:
        return np.packbits(v.astype(np.uint8), bitorder="little").tobytes()
    bits = ((v[:, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits.reshape(-1), bitorder="little").tobytes()


def bit_pack(values: np.ndarray, width: int) -> bytes:
    """:func:`bit_pack_py`, in C where the extension is built."""
    if width == 1:
        pad = -len(values) % 8
        v = values.astype(np.uint8, copy=False)
        if pad:
            v = np.concatenate([v, np.zeros(pad, np.uint8)])
        return np.packbits(v, bitorder="little").tobytes()
    if _bit_pack_c is None or width > 32:
        return bit_pack_py(values, width)
    out = bytearray((len(values) + 7) // 8 * width)
    _bit_pack_c(np.ascontiguousarray(values, dtype=np.uint32), width, out)
    return bytes(out)


def hybrid(values: np.ndarray, width: int) -> bytes:
    """:func:`hybrid_py`, in C where the extension is built (``_linkc.hybrid_encode``, the
    same bytes)."""
    if _hybrid_c is None or width > 32:
        return hybrid_py(values, width)
    if values.dtype.itemsize == 1:
        return _hybrid_c(np.ascontiguousarray(values).view(np.uint8), 1, width, MIN_RLE_GROUPS)
    return _hybrid_c(np.ascontiguousarray(values, dtype=np.uint32), 4, width, MIN_RLE_GROUPS)


def hybrid_py(values: np.ndarray, width: int) -> bytes:
    """``values`` (unsigned ints, each < 2**width; width >= 1) in the RLE/bit-packing hybrid
    (without a length prefix).  Runs are found with numpy on groups of 8 values: a group whose
    8 values are equal is "uniform"; :data:`MIN_RLE_GROUPS` or more consecutive uniform groups
    of one value (the run extended to its exact end in the last group) are an RLE run
    (header ``count << 1``, the value in ``ceil(width / 8)`` bytes little-endian); everything
    between is bit-packed groups (header ``groups << 1 | 1``, :func:`bit_pack`; zero bits
    after the last value).  All values equal: one RLE run."""
    n = len(values)
    if n == 0:
        return b""
    vbytes = (width + 7) // 8
    first = int(values[0])
    if values[0] == values[-1] and not (values != values[0]).any():
        return uvarint(n << 1) + first.to_bytes(vbytes, "little")
    ng = -(-n // 8)
    pad = ng * 8 - n
    v = values if not pad else np.concatenate([values, np.repeat(values[-1:], pad)])
    groups = v.reshape(ng, 8)
    lead = groups[:, 0]
    uniform = (groups == lead[:, None]).all(axis=1)
    # runs of groups: a run goes on while the group and the one before are uniform with one value
    same = uniform[1:] & uniform[:-1] & (lead[1:] == lead[:-1])
    breaks = np.flatnonzero(~same) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [ng]))
    long = ((ends - starts) >= MIN_RLE_GROUPS) & uniform[starts]
    rle = list(zip(starts[long].tolist(), ends[long].tolist()))
    packed = bit_pack(values, width)
    if not rle:
        return uvarint(ng << 1 | 1) + packed
    out = []
    at = 0
    for s, e in rle:
        if s > at:
            out.append(uvarint((s - at) << 1 | 1))
            out.append(packed[at * width:s * width])
        count = (e - s) * 8 - (pad if e == ng else 0)
        out.append(uvarint(count << 1))
        out.append(int(lead[s]).to_bytes(vbytes, "little"))
        at = e
    if at < ng:
        out.append(uvarint((ng - at) << 1 | 1))
        out.append(packed[at * width:])
    return b"".join(out)


def compact_py(values: np.ndarray, valid, dtype) -> np.ndarray:
    """The values of the rows ``valid`` says (bool array; None: all), in order, as ``dtype``
    (numpy: the reference of ``_linkc.compact_values``)."""
    if valid is None:
        return values.astype(dtype, copy=False)
    return np.compress(valid, values).astype(dtype, copy=False)


def compact(values: np.ndarray, valid, dtype) -> np.ndarray:
    """:func:`compact_py`, in C where built for integers widened to 4 or 8 bytes and doubles
    (one branch-free pass instead of a boolean index and a cast)."""
    dt = np.dtype(dtype)
    k = values.dtype.kind
    if valid is None or _compact_c is None or k not in "uif" or \
            values.dtype.itemsize > dt.itemsize or dt.itemsize not in (4, 8) or \
            (k == "f") != (dt.kind == "f") or (k == "f" and values.dtype.itemsize != 8):
        return compact_py(values, valid, dt)
    out = np.empty(len(values), dtype=dt)
    got = _compact_c(np.ascontiguousarray(values), k, values.dtype.itemsize,
                     np.ascontiguousarray(valid).view(np.uint8), out, dt.itemsize)
    return out[:got]


def byte_array_plain_py(words: list) -> tuple:
    """``(PLAIN bytes, UTF-8 length per word)`` of a list of ``str``: each value a 4-byte
    little-endian length and its UTF-8 bytes (the reference of ``_linkc.byte_array_plain``)."""
    if any(not isinstance(w, str) for w in words):
        raise TypeError("byte_array_plain: a word is not str")
    enc = [w.encode() for w in words]
    return (b"".join([struct.pack("<I", len(e)) + e for e in enc]),
            np.array([len(e) for e in enc], dtype=np.int64))


def byte_array_plain(words: list) -> tuple:
    """:func:`byte_array_plain_py`, in C where built."""
    if _byte_array_c is None or words.__class__ is not list:
        return byte_array_plain_py(list(words))
    lens = np.empty(len(words), dtype=np.int64)
    return _byte_array_c(words, lens), lens


def _levels(valid, n: int) -> bytes:
    """The definition levels of a page of ``n`` rows (``valid``: bool array, None = all
    valued): the hybrid at bit width 1 behind its 4-byte length."""
    body = (uvarint(n << 1) + b"\x01") if valid is None else hybrid(valid.view(np.uint8), 1)
    return struct.pack("<I", len(body)) + body


def _float_edges(mn: float, mx: float) -> tuple:
    """pyarrow's zeros in double statistics: a zero minimum is -0.0, a zero maximum +0.0."""
    return (-0.0 if mn == 0 else mn), (0.0 if mx == 0 else mx)


def _min_max(vals: np.ndarray, physical: int, signed: bool):
    """``(min bytes, max bytes)`` of the non-null values of a page or chunk in their PLAIN
    form, or None (no value to compare: empty, or only NaN)."""
    if physical == DOUBLE:
        vals = vals[~np.isnan(vals)]
    if not len(vals):
        return None
    mn, mx = vals.min(), vals.max()
    if physical == BOOLEAN:
        return bytes([int(mn)]), bytes([int(mx)])
    if physical == DOUBLE:
        mn, mx = _float_edges(float(mn), float(mx))
    dt = _PLAIN_DTYPE[physical, signed]
    return np.array(mn).astype(dt).tobytes(), np.array(mx).astype(dt).tobytes()


def _stats_struct(nulls: int, edges, legacy: bool) -> dict:
    """A ``Statistics`` struct: null_count (3), min_value (6) / max_value (5) with their
    exactness flags (8, 7), and with ``legacy`` the deprecated min (2) / max (1) (pyarrow
    writes them for the signed orders and booleans)."""
    st = {3: (T_I64, nulls)}
    if edges is not None:
        mn, mx = edges
        if len(mx) <= MAX_STATISTICS_SIZE:      # each side left out alone when too long
            st[5] = (T_BINARY, mx)
            st[7] = (T_BOOL, True)
            if legacy:
                st[1] = (T_BINARY, mx)
        if len(mn) <= MAX_STATISTICS_SIZE:
            st[6] = (T_BINARY, mn)
            st[8] = (T_BOOL, True)
            if legacy:
                st[2] = (T_BINARY, mn)
    return st


def _plain(vals: np.ndarray, physical: int, signed: bool):
    """PLAIN bytes of the non-null values (already of the physical type's dtype): bytes, or
    the contiguous array itself (a bytes-like object: the page is joined without a copy)."""
    if physical == BOOLEAN:
        return bit_pack(vals.view(np.uint8), 1)
    return np.ascontiguousarray(vals.astype(_PLAIN_DTYPE[physical, signed], copy=False))


def _word_edges(words: list, used: np.ndarray):
    """``(min, max)`` of the words used (their UTF-8 bytes, compared unsigned), or None."""
    if not len(used):
        return None
    picked = [words[i].encode() for i in used.tolist()]
    return min(picked), max(picked)


def encode_chunk(col, physical: int, *, signed: bool, dictionary: bool, statistics: bool,
                 compress, codec: int, page_rows: int) -> tuple:
    """``(chunk bytes, ColumnMetaData fields without path and offsets, dictionary page
    length)`` of one column of a row group: ``col`` a :class:`column_data.Dense` (numbers;
    ``physical`` INT32, INT64, DOUBLE or BOOLEAN) or, with ``dictionary``, a
    :class:`column_data.Words` (texts, ``physical`` BYTE_ARRAY); ``signed``: the column's
    logical order (for the statistics); ``compress``: the codec's ``bytes -> bytes``, ``codec``
    its Parquet id; pages of at most ``page_rows`` rows.  The dictionary page length is 0
    without one (the data pages start at the chunk's start)."""
    n = len(col)
    valid = col.valid
    legacy = signed or physical == BOOLEAN      # the deprecated min/max too (pyarrow's choice)
    pages = []                  # (header bytes, compressed body)
    usize = 0
    page_stats = []
    nvalid_total = 0
    head = b""
    unencoded = None
    if dictionary:
        dict_body, lens = byte_array_plain(col.words)
        nwords = len(lens)
        packed = compress(dict_body)
        head = encode_struct({1: (T_I32, _DICTIONARY_PAGE), 2: (T_I32, len(dict_body)),
                              3: (T_I32, len(packed)),
                              7: (T_STRUCT, {1: (T_I32, nwords),
                                             2: (T_I32, _PLAIN), 3: (T_BOOL, False)})})
        usize += len(head) + len(dict_body)
        head += packed
        width = max(1, (nwords - 1).bit_length())
        codes_all = col.codes
        unencoded = 0
        used_all = []
    else:
        vals_all = col.values
        edges_all = []
        plain_dtype = np.bool_ if physical == BOOLEAN else _PLAIN_DTYPE[physical, signed]
    for a in range(0, n, page_rows):
        b = min(n, a + page_rows)
        v = None if valid is None else valid[a:b]
        if dictionary:
            codes = compact(codes_all[a:b], v, "<i4").view(np.uint32)
            nvalid = len(codes)
        else:
            vals = compact(vals_all[a:b], v, plain_dtype)
            nvalid = len(vals)
        nvalid_total += nvalid
        levels = _levels(None if nvalid == b - a else v, b - a)
        if dictionary:
            body = levels + bytes([width]) + hybrid(codes, width)
            unencoded += int(lens[codes].sum())
            used = np.unique(codes) if statistics else None
            if statistics:
                used_all.append(used)
            edges = _word_edges(col.words, used) if statistics else None
            encoding = _RLE_DICTIONARY
        else:
            body = b"".join((levels, _plain(vals, physical, signed)))
            edges = _min_max(vals, physical, signed) if statistics else None
            if statistics:
                edges_all.append(edges)
            encoding = _PLAIN
        st = _stats_struct((b - a) - nvalid, edges, legacy) if statistics else {}
        page_stats.append(st)
        packed = compress(body)
        header = encode_struct({1: (T_I32, _DATA_PAGE), 2: (T_I32, len(body)),
                                3: (T_I32, len(packed)),
                                5: (T_STRUCT, {1: (T_I32, b - a), 2: (T_I32, encoding),
                                               3: (T_I32, _RLE), 4: (T_I32, _RLE),
                                               5: (T_STRUCT, st)})})
        usize += len(header) + len(body)
        pages.append(header)
        pages.append(packed)
    data = head + b"".join(pages)
    npages = len(pages) // 2
    if dictionary:
        encodings = [_PLAIN, _RLE, _RLE_DICTIONARY]
        enc_stats = [{1: (T_I32, _DICTIONARY_PAGE), 2: (T_I32, _PLAIN), 3: (T_I32, 1)},
                     {1: (T_I32, _DATA_PAGE), 2: (T_I32, _RLE_DICTIONARY), 3: (T_I32, npages)}]
    else:
        encodings = [_RLE, _PLAIN]
        enc_stats = [{1: (T_I32, _DATA_PAGE), 2: (T_I32, _PLAIN), 3: (T_I32, npages)}]
    meta = {1: (T_I32, physical), 2: (T_LIST, (T_I32, encodings)), 4: (T_I32, codec),
            5: (T_I64, n), 6: (T_I64, usize), 7: (T_I64, len(data))}
    if statistics:
        if npages == 1:
            meta[12] = (T_STRUCT, page_stats[0])
        else:
            if dictionary:
                used = np.unique(np.concatenate(used_all))
                edges = _word_edges(col.words, used)
            else:
                got = [e for e in edges_all if e is not None]
                edges = None
                if got:
                    cmp = _PLAIN_DTYPE.get((physical, signed), "<u1")
                    if physical == BOOLEAN:
                        cmp = "u1"
                    mins = np.frombuffer(b"".join(e[0] for e in got), dtype=cmp)
                    maxs = np.frombuffer(b"".join(e[1] for e in got), dtype=cmp)
                    mn, mx = mins.min(), maxs.max()
                    if physical == DOUBLE:
                        mn, mx = _float_edges(float(mn), float(mx))
                    edges = (np.array(mn).astype(cmp).tobytes(),
                             np.array(mx).astype(cmp).tobytes())
            meta[12] = (T_STRUCT, _stats_struct(n - nvalid_total, edges, legacy))
    meta[13] = (T_LIST, (T_STRUCT, enc_stats))
    size = {2: (T_LIST, (T_I64, [])), 3: (T_LIST, (T_I64, [n - nvalid_total, nvalid_total]))}
    if physical == BYTE_ARRAY:
        size = {1: (T_I64, unencoded or 0), **size}
    meta[16] = (T_STRUCT, size)
    return data, meta, len(head)
