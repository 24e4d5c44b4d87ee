"""A Parquet file writer that writes the all-null columns of a row group as constants.

Every exported file carries the whole schema (626 columns with ``--payload``), so a directory of
files is one table for DuckDB, pyarrow, Dask and Spark without options; but in any one row
group most columns are null in every row.  A Parquet writer still encodes one definition level
per row for each of them (pyarrow 26: ~3 ns per value: ~1.8 s of a 1M-frame export), although
the result is a constant: one data page whose definition levels are a single RLE run of ``n``
zeros and that holds no value.

:class:`AssemblingWriter` writes each row group in two parts and assembles the file itself:

* the columns with a value go through pyarrow (``pyarrow.parquet.ParquetWriter`` into a buffer
  of its own, one row group, the same compression, dictionary and statistics settings); their
  column chunks are copied byte for byte and their ``ColumnChunk`` metadata kept as pyarrow
  wrote it, the offsets moved to where the chunks land;
* each flat column that is null in every row of the group gets the constant chunk
  (:func:`null_chunk`, made once per column and row count): the page header, the levels, and
  the ``ColumnMetaData`` pyarrow writes for an all-null column (``RLE``/``PLAIN`` encodings,
  ``null_count`` statistics where the column has statistics, size statistics);
* the footer (``FileMetaData``) is pyarrow's own for the full schema (from a 0-row file written
  with the same settings: the schema elements with their Parquet and logical types, the
  ``ARROW:schema`` entry and ubpkt's key/value metadata, ``created_by``, column orders) with the
  row count and the assembled row groups filled in, written with ubpkt's compact-protocol
  encoder (``ubpkt.analytics.thrift_compact``).

The Parquet structures used (file layout ``PAR1`` / column chunks / footer / footer length /
``PAR1``; ``PageHeader``, ``DataPageHeader``, ``ColumnChunk``, ``ColumnMetaData``,
``Statistics``, ``RowGroup``, ``FileMetaData``; the RLE/bit-packing hybrid of the levels) are
those of the Apache Parquet format specification (``parquet.thrift``); the field numbers are
named below.  A file it writes reads as the same table as the one pyarrow's writer gives for
the same batches (tested with pyarrow, DuckDB, Dask and Spark).  Columns that are not flat (the
``issues`` list, ``list<uint>`` columns) always go through pyarrow.
"""
from __future__ import annotations

import io
import struct

from .column_data import ColumnBatch, Dense, Words
from .page_encoder import BOOLEAN, BYTE_ARRAY, DOUBLE, INT32, INT64, encode_chunk
from .thrift_compact import (T_BINARY, T_BOOL, T_I32, T_I64, T_LIST, T_STRUCT, decode_struct,
                             encode_fields, encode_struct, field_header, i64_value, uvarint)

__all__ = ["AssemblingWriter", "null_chunk", "read_footer", "MAGIC", "PAGE_ROWS"]

MAGIC = b"PAR1"
#: Rows per data page of the columns ubpkt's encoder writes (``page_encoder``): a row group of
#: the default size (131072 rows) is one page per column.  pyarrow cuts its pages at 20000
#: rows or 1 MiB; fewer, larger pages cost less per row group here (a page is a header, a
#: compression call and its statistics) and are as valid.
PAGE_ROWS = 131072

# parquet.thrift: enum values
_DATA_PAGE, _DICTIONARY_PAGE = 0, 2             # PageType
_PLAIN, _RLE, _RLE_DICTIONARY = 0, 3, 8         # Encoding
_BYTE_ARRAY = BYTE_ARRAY       # Type
#: the physical types ubpkt's encoder writes from numeric columns (``page_encoder``)
_DENSE_TYPES = (BOOLEAN, INT32, INT64, DOUBLE)
_CODECS = {"uncompressed": 0, "none": 0, "snappy": 1, "gzip": 2, "brotli": 4, "lz4": 7,
           "zstd": 6}          # CompressionCodec (pyarrow's "lz4" writes LZ4_RAW)

# field ids, parquet.thrift
_FMD_NUM_ROWS, _FMD_SCHEMA, _FMD_ROW_GROUPS = 3, 2, 4
_SE_TYPE, _SE_NAME, _SE_NUM_CHILDREN = 1, 4, 5
_RG_COLUMNS, _RG_TOTAL_BYTE_SIZE, _RG_NUM_ROWS, _RG_FILE_OFFSET, _RG_TOTAL_COMPRESSED = \
    1, 2, 3, 5, 6
_CC_FILE_OFFSET, _CC_META, _CC_OFFSET_INDEX, _CC_COLUMN_INDEX = 2, 3, 4, 6
_CM_UNCOMPRESSED, _CM_COMPRESSED, _CM_DATA_PAGE, _CM_INDEX_PAGE, _CM_DICT_PAGE, \
    _CM_BLOOM = 6, 7, 9, 10, 11, 14
#: ColumnMetaData fields holding a file offset (moved with the chunk)
_CM_OFFSETS = (_CM_DATA_PAGE, _CM_INDEX_PAGE, _CM_DICT_PAGE, _CM_BLOOM)


def read_footer(data) -> dict:
    """The decoded ``FileMetaData`` of a whole Parquet file in memory (bytes-like)."""
    mv = memoryview(data)
    if len(mv) < 12 or bytes(mv[:4]) != MAGIC or bytes(mv[-4:]) != MAGIC:
        raise ValueError("not a Parquet file")
    n = struct.unpack("<I", mv[-8:-4])[0]
    if n + 12 > len(mv):
        raise ValueError("Parquet footer longer than the file")
    fmd, end = decode_struct(bytes(mv[-8 - n:-8]))
    if end != n:
        raise ValueError("Parquet footer length does not match its content")
    return fmd


def _codec_compress(compression: str):
    """``bytes -> bytes`` of a Parquet codec, pyarrow's implementation (the same as its
    writer's: zstd at pyarrow's default level)."""
    if _CODECS[compression] == 0:
        return bytes
    import pyarrow as pa
    codec = pa.Codec(compression)
    return lambda b: codec.compress(b, asbytes=True)


_NULL_CHUNKS: dict = {}


def null_chunk(n: int, physical: int, statistics: bool, compression: str,
               dictionary: bool = False) -> tuple:
    """``(chunk bytes, ColumnMetaData without path and offsets)`` of a column chunk of ``n``
    rows, all null, of a flat optional column (maximum definition level 1) of Parquet
    ``physical`` type, as pyarrow writes it: one V1 data page of ``n`` values and no value,
    its definition levels one RLE run of ``n`` zeros (a 4-byte length, the varint run header
    ``n << 1``, the value 0 in one byte); ``PLAIN`` encoding, or with ``dictionary`` (a column
    written with dictionary pages) an empty dictionary page first and ``RLE_DICTIONARY``
    indices (their bit width 0, no index); ``statistics``: the page and the chunk carry
    ``null_count = n``.  The size statistics pyarrow adds: the definition level histogram
    ``[n, 0]``.  Cached per argument tuple (one entry per type and row count)."""
    key = (n, physical, statistics, compression, dictionary)
    got = _NULL_CHUNKS.get(key)
    if got is not None:
        return got[:2]
    if len(_NULL_CHUNKS) > 256:
        _NULL_CHUNKS.clear()
    compress = _codec_compress(compression)
    run = uvarint(n << 1) + b"\x00"
    body = struct.pack("<I", len(run)) + run + (b"\x00" if dictionary else b"")
    packed = compress(body)
    stats = {3: (T_I64, n)} if statistics else {}
    value_encoding = _RLE_DICTIONARY if dictionary else _PLAIN
    head = b""
    if dictionary:
        empty = compress(b"")
        head = encode_struct({
            1: (T_I32, _DICTIONARY_PAGE), 2: (T_I32, 0), 3: (T_I32, len(empty)),
            7: (T_STRUCT, {1: (T_I32, 0), 2: (T_I32, _PLAIN), 3: (T_BOOL, False)})}) + empty
    header = encode_struct({
        1: (T_I32, _DATA_PAGE), 2: (T_I32, len(body)), 3: (T_I32, len(packed)),
        5: (T_STRUCT, {1: (T_I32, n), 2: (T_I32, value_encoding), 3: (T_I32, _RLE),
                       4: (T_I32, _RLE), 5: (T_STRUCT, stats)})})
    data = head + header + packed
    uncompressed = len(data) - len(packed) + len(body) - (len(compress(b"")) if dictionary
                                                          else 0)
    page_stats = [{1: (T_I32, _DATA_PAGE), 2: (T_I32, value_encoding), 3: (T_I32, 1)}]
    if dictionary:
        page_stats.insert(0, {1: (T_I32, _DICTIONARY_PAGE), 2: (T_I32, _PLAIN),
                              3: (T_I32, 1)})
    meta = {1: (T_I32, physical),
            2: (T_LIST, (T_I32, [_PLAIN, _RLE, _RLE_DICTIONARY] if dictionary
                         else [_RLE, _PLAIN])),
            4: (T_I32, _CODECS[compression]), 5: (T_I64, n),
            6: (T_I64, uncompressed), 7: (T_I64, len(data)),
            13: (T_LIST, (T_STRUCT, page_stats))}
    if statistics:
        meta[12] = (T_STRUCT, dict(stats))
    size = {2: (T_LIST, (T_I64, [])), 3: (T_LIST, (T_I64, [n, 0]))}
    if physical == _BYTE_ARRAY:
        size = {1: (T_I64, 0), **size}
    meta[16] = (T_STRUCT, size)
    got = _NULL_CHUNKS[key] = (data, meta, len(head))
    return got[:2]


_NULL_COLUMN_CHUNKS: dict = {}


def _null_column_chunk(name: str, n: int, physical: int, statistics: bool,
                       compression: str, dictionary: bool) -> tuple:
    """``(chunk bytes, encoded ColumnChunk pieces, data page position in the chunk,
    uncompressed size, compressed size)`` of column ``name``'s all-null chunk of ``n`` rows:
    the ``ColumnChunk`` (``file_offset`` 0 as pyarrow writes it, the ``ColumnMetaData`` of
    :func:`null_chunk` with the column's path) encoded once; per use the chunk's offsets are
    spliced in between the pieces (:func:`_splice`)."""
    key = (name, n, physical, statistics, compression, dictionary)
    got = _NULL_COLUMN_CHUNKS.get(key)
    if got is not None:
        return got
    if len(_NULL_COLUMN_CHUNKS) > 8192:
        _NULL_COLUMN_CHUNKS.clear()
    data, meta = null_chunk(n, physical, statistics, compression, dictionary)
    data_at = _NULL_CHUNKS[n, physical, statistics, compression, dictionary][2]
    meta = dict(meta)
    meta[3] = (T_LIST, (T_BINARY, [name.encode()]))
    holes = [_CM_DATA_PAGE] + ([_CM_DICT_PAGE] if dictionary else [])
    pieces, last, cur = [], 0, field_header(_CC_FILE_OFFSET, T_I64, 0) + i64_value(0) + \
        field_header(_CC_META, T_STRUCT, _CC_FILE_OFFSET)
    for hole in holes:
        cur += encode_fields({k: v for k, v in meta.items() if last < k < hole}, last)
        cur += field_header(hole, T_I64, max([last] + [k for k in meta if k < hole]))
        pieces.append(cur)
        cur, last = b"", hole
    pieces.append(encode_fields({k: v for k, v in meta.items() if k > last}, last) +
                  b"\x00\x00")          # the ends of ColumnMetaData and ColumnChunk
    got = _NULL_COLUMN_CHUNKS[key] = (data, pieces, data_at, meta[_CM_UNCOMPRESSED][1],
                                      meta[_CM_COMPRESSED][1])
    return got


def _splice(pieces: list, offsets: tuple) -> bytes:
    """An encoded ColumnChunk from its constant pieces and the offsets between them."""
    out = [pieces[0]]
    for off, piece in zip(offsets, pieces[1:]):
        out.append(i64_value(off))
        out.append(piece)
    return b"".join(out)


class _Field:
    """A top-level field of the schema: its Arrow name, its leaf count, and for a flat
    (one-leaf, primitive) field its Parquet physical type."""
    __slots__ = ("name", "leaves", "physical")

    def __init__(self, name, leaves, physical):
        self.name, self.leaves, self.physical = name, leaves, physical


def _top_fields(schema_elements: list) -> list:
    """The top-level fields of a Parquet schema (its elements in depth-first order, the root
    first) with their leaf counts."""
    out = []
    pos = 1

    def leaves(i):          # (leaf count, index after the subtree) of element i
        kids = schema_elements[i].get(_SE_NUM_CHILDREN, (0, 0))[1]
        if not kids:
            return 1, i + 1
        total, j = 0, i + 1
        for _ in range(kids):
            c, j = leaves(j)
            total += c
        return total, j

    for _ in range(schema_elements[0][_SE_NUM_CHILDREN][1]):
        el = schema_elements[pos]
        count, nxt = leaves(pos)
        flat = _SE_NUM_CHILDREN not in el or not el[_SE_NUM_CHILDREN][1]
        out.append(_Field(el[_SE_NAME][1].decode(), count,
                          el[_SE_TYPE][1] if flat else None))
        pos = nxt
    return out


class AssemblingWriter:
    """Writes a Parquet file of ``schema`` (a ``pyarrow.Schema`` with its metadata) row group
    by row group, like ``pyarrow.parquet.ParquetWriter`` (:meth:`write_batch`, :meth:`close`;
    the same ``compression``, ``use_dictionary`` and ``write_statistics`` arguments, lists of
    column names for the last two), writing the all-null flat columns of each row group as
    constant chunks (see the module doc).  A batch may hold a string column as a
    ``dictionary<int, string>`` array: Parquet stores both alike, and the file's schema (and
    so what readers get) stays the one given here.  A :class:`column_data.ColumnBatch` (the
    exporter's) may hold flat columns as numpy data (``Dense``, ``Words``): those are encoded
    by ``page_encoder.encode_chunk`` (pages of at most ``page_rows`` rows), the rest by
    pyarrow."""

    def __init__(self, where, schema, *, compression: str = "zstd",
                 use_dictionary=(), write_statistics=(), page_rows: int = PAGE_ROWS):
        import pyarrow.parquet as pq
        self.schema = schema
        self.compression = compression.lower()
        if self.compression not in _CODECS:
            raise ValueError(f"compression {compression!r} not supported by the assembling "
                             f"writer")
        self.dictionary = set(use_dictionary)
        self.statistics = set(write_statistics)
        if page_rows < 1:
            raise ValueError("page_rows must be at least 1")
        self.page_rows = page_rows
        self._compress = _codec_compress(self.compression)
        import pyarrow as pa
        #: per top-level field: its logical order is signed (signed integers, floating point)
        self._signed = [pa.types.is_signed_integer(t) or pa.types.is_floating(t)
                        for t in schema.types]
        buf = io.BytesIO()
        pq.ParquetWriter(buf, schema, **self._options(schema.names)).close()
        self.footer = read_footer(buf.getvalue())
        self.fields = _top_fields(self.footer[_FMD_SCHEMA][1][1])
        if [f.name for f in self.fields] != list(schema.names):
            raise ValueError("the Parquet schema's top-level fields are not the Arrow "
                             "schema's")
        self.row_groups: list = []          # encoded RowGroup structs
        self._checked = None                # the batch schema last checked
        self.rows = 0
        self._fh = open(where, "wb") if isinstance(where, str) else where
        self._own = isinstance(where, str)
        self._fh.write(MAGIC)
        self.pos = len(MAGIC)
        self._closed = False

    def _options(self, names) -> dict:
        return {"compression": self.compression,
                "use_dictionary": [n for n in names if n in self.dictionary],
                "write_statistics": [n for n in names if n in self.statistics]}

    def write_batch(self, batch, row_group_size: int | None = None) -> None:
        """Write ``batch`` (a ``RecordBatch`` of the schema, metadata aside) as row groups of
        at most ``row_group_size`` rows (all of it by default)."""
        n = batch.num_rows
        size = row_group_size or n or 1
        for start in range(0, n, size):
            self._row_group(batch.slice(start, size) if size < n else batch)

    write_table = write_batch

    def _check_types(self, batch_schema) -> None:
        """Each column of a batch has the file schema's type, or is a dictionary of strings
        where the schema has strings (the same Parquet column: BYTE_ARRAY, String)."""
        if batch_schema is self._checked:
            return
        import pyarrow as pa
        if batch_schema.names != self.schema.names:
            raise ValueError("the batch's columns are not the file schema's")
        for got, want in zip(batch_schema.types, self.schema.types):
            if got != want and not (pa.types.is_string(want) and pa.types.is_dictionary(got)
                                    and pa.types.is_string(got.value_type)):
                raise ValueError(f"a batch column of type {got} where the file schema has "
                                 f"{want}")
        self._checked = batch_schema

    def _row_group(self, batch) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        n = batch.num_rows
        if n == 0:
            return
        own = [False] * len(self.fields)       # encoded here from numpy data
        if isinstance(batch, ColumnBatch):
            if batch.schema.names != self.schema.names:
                raise ValueError("the batch's columns are not the file schema's")
            cols = list(batch.columns)
            for i, f in enumerate(self.fields):
                c = cols[i]
                if not isinstance(c, (Dense, Words)):
                    continue
                if isinstance(c, Dense) and f.physical in _DENSE_TYPES and \
                        f.name not in self.dictionary or isinstance(c, Words) and \
                        f.physical == _BYTE_ARRAY and f.name in self.dictionary:
                    own[i] = True
                else:                       # a combination the encoder does not write
                    cols[i] = c.to_arrow(self.schema.field(i).type)
            types = [c.type if not own[i] else self.schema.field(i).type
                     for i, c in enumerate(cols)]
        else:
            self._check_types(batch.schema)
            cols = [batch.column(i) for i in range(len(self.fields))]
            types = batch.schema.types
        nulls = [f.physical is not None and cols[i].null_count == n
                 for i, f in enumerate(self.fields)]
        keep = [i for i, null in enumerate(nulls) if not null and not own[i]]
        names = [self.fields[i].name for i in keep]
        base = self.pos
        chunks: list = []           # ColumnChunk structs of the kept columns, in schema order
        if keep:
            sub = pa.RecordBatch.from_arrays([cols[i] for i in keep],
                                             schema=pa.schema([pa.field(self.fields[i].name,
                                                                        types[i])
                                                               for i in keep]))
            out = pa.BufferOutputStream()
            with pq.ParquetWriter(out, sub.schema, store_schema=False,
                                  **self._options(names)) as w:
                w.write_batch(sub, row_group_size=n)
            data = out.getvalue()
            fmd = read_footer(data)
            (rg,) = fmd[_FMD_ROW_GROUPS][1][1]
            chunks = rg[_RG_COLUMNS][1][1]
            footer_len = struct.unpack("<I", data[-8:-4].to_pybytes())[0]
            body = memoryview(data)[len(MAGIC):len(data) - 8 - footer_len]
            self._fh.write(body)
            shift = base - len(MAGIC)
            for cc in chunks:
                _move(cc, shift)
            self.pos += len(body)
        merged = []                 # encoded ColumnChunks, in schema order
        written = []                # chunk bytes after pyarrow's (own and all-null chunks)
        uncompressed = compressed = 0
        k = 0
        for i, f in enumerate(self.fields):
            if nulls[i]:
                data, pieces, data_at, usize, csize = _null_column_chunk(
                    f.name, n, f.physical, f.name in self.statistics, self.compression,
                    f.name in self.dictionary)
                merged.append(_splice(pieces, (self.pos + data_at, self.pos)))
                written.append(data)
                self.pos += len(data)
                uncompressed += usize
                compressed += csize
                continue
            if own[i]:
                dictionary = isinstance(cols[i], Words)
                data, meta, data_at = encode_chunk(
                    cols[i], f.physical, signed=self._signed[i], dictionary=dictionary,
                    statistics=f.name in self.statistics, compress=self._compress,
                    codec=_CODECS[self.compression], page_rows=self.page_rows)
                meta[3] = (T_LIST, (T_BINARY, [f.name.encode()]))
                meta[_CM_DATA_PAGE] = (T_I64, self.pos + data_at)
                if dictionary:
                    meta[_CM_DICT_PAGE] = (T_I64, self.pos)
                merged.append(encode_struct({_CC_FILE_OFFSET: (T_I64, 0),
                                             _CC_META: (T_STRUCT, meta)}))
                written.append(data)
                self.pos += len(data)
                uncompressed += meta[_CM_UNCOMPRESSED][1]
                compressed += meta[_CM_COMPRESSED][1]
                continue
            for _ in range(f.leaves):
                cc = chunks[k]
                k += 1
                meta = cc[_CC_META][1]
                if f.physical is not None and meta[1][1] != f.physical:
                    raise ValueError(f"column {f.name}: pyarrow wrote Parquet type "
                                     f"{meta[1][1]}, the file's schema has {f.physical}")
                uncompressed += meta[_CM_UNCOMPRESSED][1]
                compressed += meta[_CM_COMPRESSED][1]
                merged.append(encode_struct(cc))
        if k != len(chunks):
            raise ValueError("pyarrow wrote a different number of column chunks than the "
                             "schema has leaves")
        self._fh.write(b"".join(written))
        self.row_groups.append(encode_struct({_RG_COLUMNS: (T_LIST, (T_STRUCT, merged)),
                                              _RG_TOTAL_BYTE_SIZE: (T_I64, uncompressed),
                                              _RG_NUM_ROWS: (T_I64, n),
                                              _RG_FILE_OFFSET: (T_I64, base),
                                              _RG_TOTAL_COMPRESSED: (T_I64, compressed)}))
        self.rows += n

    def close(self) -> None:
        """Write the footer (and close the file when this writer opened it)."""
        if self._closed:
            return
        self._closed = True
        fmd = dict(self.footer)
        fmd[_FMD_NUM_ROWS] = (T_I64, self.rows)
        fmd[_FMD_ROW_GROUPS] = (T_LIST, (T_STRUCT, self.row_groups))
        footer = encode_struct(fmd)
        self._fh.write(footer)
        self._fh.write(struct.pack("<I", len(footer)) + MAGIC)
        if self._own:
            self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _move(cc: dict, shift: int) -> None:
    """Move a ColumnChunk's offsets by ``shift`` bytes (its chunk was copied there)."""
    if _CC_OFFSET_INDEX in cc or _CC_COLUMN_INDEX in cc:
        raise ValueError("page indexes are not supported by the assembling writer")
    if cc.get(_CC_FILE_OFFSET, (T_I64, 0))[1]:
        cc[_CC_FILE_OFFSET] = (T_I64, cc[_CC_FILE_OFFSET][1] + shift)
    meta = cc[_CC_META][1]
    for fid in _CM_OFFSETS:
        if fid in meta:
            meta[fid] = (T_I64, meta[fid][1] + shift)
