"""Record dicts to Arrow record batches (the record path of the exporter), and back.

:class:`BatchBuilder` takes one record at a time (``ubpkt.record`` form, with its exact time in
integer nanoseconds) and gives a ``pyarrow.RecordBatch`` of the schema
(:func:`ubpkt.analytics.schema.arrow_schema`) when asked.  Field values are gathered sparsely
(per key: the rows that have it and their values) and become typed arrays in one numpy step per
column at :meth:`BatchBuilder.flush`; a value its column cannot hold goes to ``extra_fields``.

:func:`table_records` turns a table read back from Parquet into record dicts again, so tests
(and the distributed export's checks) compare a dataset with the decoder's records row by row.
"""
from __future__ import annotations

import json
from collections import defaultdict
from itertools import count

import numpy as np

from .column_data import ColumnBatch, Dense, Words
from .schema import EXTRA, ISSUE_FIELDS, PAYLOAD_KEY, arrow_schema, arrow_type, columns

__all__ = ["BatchBuilder", "Const", "Coded", "table_records", "fill_column", "UINT_MAX"]

UINT_MAX = {"uint8": 0xFF, "uint16": 0xFFFF, "uint32": 0xFFFF_FFFF,
            "uint64": 0xFFFF_FFFF_FFFF_FFFF}
_NP = {"uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
       "float64": np.float64}


def _json_default(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    return str(v)


class Const:
    """One value for every row of a chunk (a field a template guards)."""
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


class Coded:
    """A chunk's values as its distinct values and one code per row (``uniques[codes]``):
    what the columnar path computes for text forms, enum names and interpretations, kept coded
    so that a text column is assembled as dictionary indices (no Python string per row)."""
    __slots__ = ("uniques", "codes")

    def __init__(self, uniques: np.ndarray, codes: np.ndarray):
        self.uniques = uniques          # object array of the distinct values
        self.codes = codes              # int array, one index into ``uniques`` per row

    def __len__(self) -> int:
        return len(self.codes)

    def dense(self) -> np.ndarray:
        """One value per row (an object array)."""
        return self.uniques[self.codes]


_NULLS: dict = {}


def null_array(kind: str, n: int):
    """An all-null array of column kind ``kind`` and length ``n``, made once per (kind, n):
    most of a file's columns are null in any one row group (every file has every column).
    Only arrays of one size are kept (a size change empties the cache: row groups of a file
    have one size but the last)."""
    got = _NULLS.get((kind, n))
    if got is None:
        import pyarrow as pa
        if any(size != n for _, size in _NULLS):    # one size at a time: bounded memory
            _NULLS.clear()
        got = _NULLS[kind, n] = pa.nulls(n, arrow_type(kind))
    return got


def _chunk_values(kind: str, vals, misfit: dict, rows, key: str, strict: bool = True):
    """Check a bulk chunk's values (numpy array, object array, list or :class:`Const`) against
    the column ``kind``; returns (rows, values) of those that fit, the rest to ``misfit``."""
    if isinstance(vals, Coded):
        if not strict and kind in ("string", "dict") and \
                set(map(type, vals.uniques.tolist())) <= {str}:
            return rows, vals       # text from a column plan, already checked
        vals = vals.dense()
    if isinstance(vals, Const):
        v = vals.value
        if kind in _NP:
            ok = (v.__class__ is float) if kind == "float64" else \
                (v.__class__ is int and 0 <= v <= UINT_MAX[kind])
        elif kind == "text_or_int":
            v = str(v) if v.__class__ is int else v
            ok = v.__class__ is str
        elif kind in ("string", "dict"):
            ok = v.__class__ is str
        else:
            ok = False
        if not ok:
            for r in rows:
                misfit.setdefault(int(r), {})[key] = vals.value
            return rows[:0], None
        return rows, v
    if kind in _NP and isinstance(vals, np.ndarray) and vals.dtype != object:
        if kind != "float64" and len(vals) and int(vals.max()) > UINT_MAX[kind]:
            bad = vals > UINT_MAX[kind]
            for r, v in zip(rows[bad], vals[bad]):
                misfit.setdefault(int(r), {})[key] = int(v)
            return rows[~bad], vals[~bad]
        return rows, vals
    if kind.startswith("list_"):
        lim = UINT_MAX[kind[5:]]
        good = []
        for r, x in zip(rows.tolist(), vals):
            if x.__class__ is list and all(y.__class__ is int and 0 <= y <= lim for y in x):
                good.append((r, x))
            else:
                misfit.setdefault(r, {})[key] = x
        out = np.empty(len(good), dtype=object)
        out[:] = [x for _, x in good]
        return np.array([r for r, _ in good], dtype=np.int64), out
    if not strict and kind in ("string", "dict") and isinstance(vals, np.ndarray) and \
            vals.dtype == object:
        return rows, vals           # text from a column plan (checked by Arrow, see fill_column)
    if isinstance(vals, np.ndarray) and vals.dtype != object:
        vals = vals.tolist()        # numbers for a text column: checked one by one below
    if kind not in ("text_or_int", "binary", "string", "dict") or \
            any(x.__class__ not in (str, bytes) for x in vals):
        good = []
        for r, x in zip(rows.tolist(), vals):
            ok = (x.__class__ is str or (kind == "text_or_int" and x.__class__ is int) or
                  (kind == "binary" and x.__class__ is bytes)) if kind in (
                "text_or_int", "binary", "string", "dict") else \
                (x.__class__ is int and 0 <= x <= UINT_MAX.get(kind, -1)) or \
                (kind == "float64" and x.__class__ is float)
            if ok:
                good.append((r, x))
            else:
                misfit.setdefault(r, {})[key] = x
        rows = np.array([r for r, _ in good], dtype=np.int64)
        vals = [x for _, x in good]
        if kind in _NP:
            return rows, np.array(vals, dtype=_NP[kind])
    if kind == "text_or_int":
        vals = np.array([str(x) if x.__class__ is int else x for x in vals], dtype=object)
    elif kind == "binary":      # hex text of a fixed byte run, or bytes of the payload run
        vals = np.array([bytes.fromhex(x) if x.__class__ is str else x for x in vals],
                        dtype=object)
    return rows, vals


def fill_column(kind: str, n: int, rows: list, vals: list, misfit: dict, key: str,
                chunks=(), strict: bool = False, text_dictionary: bool = False,
                raw: bool = False):
    """The Arrow array (length ``n``) of one field column from its sparse ``rows`` / ``vals``
    (record path: every value checked) and bulk ``chunks`` ((row array, values) from the
    columnar path); a value the column cannot hold goes to ``misfit[row][key]`` (for
    ``extra_fields``).  ``text_dictionary``: a ``string`` column stays the dictionary array it
    is built as (the same Parquet column, see :class:`BatchBuilder`), not decoded.  ``raw``:
    a numeric column with a value comes as a :class:`column_data.Dense`, a text column as a
    :class:`column_data.Words` (numpy data for the assembling writer's encoder, no Arrow
    array; ``text_or_int`` too, its integers made decimal text first); the other kinds and
    all-null columns stay Arrow arrays."""
    import pyarrow as pa
    typ = arrow_type(kind)
    arr = None
    if not strict and kind in ("string", "dict"):
        try:
            arr = _fill(kind, typ, n, rows, vals, misfit, key, chunks, False, raw)
        except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError):
            pass        # a chunk value that is not text: check every value
    if arr is None:
        arr = _fill(kind, typ, n, rows, vals, misfit, key, chunks, True, raw)
    if raw and isinstance(arr, (Dense, Words)):
        return arr
    if kind == "string" and not text_dictionary and pa.types.is_dictionary(arr.type):
        arr = arr.cast(typ)
    return arr


def _numeric(full, mask, typ, raw):
    """A numeric column from its values and null mask: Arrow, or (``raw``) :class:`Dense`."""
    if raw:
        valid = ~mask
        return Dense(full, None if valid.all() else valid)
    import pyarrow as pa
    return pa.array(full, type=typ, mask=mask)


def _fill(kind, typ, n, rows, vals, misfit, key, chunks, strict, raw=False):
    import pyarrow as pa
    if chunks:
        chunks = [_chunk_values(kind, v, misfit, r, key, strict) for r, v in chunks]
    if not rows and not chunks:
        return null_array(kind, n)
    if not rows:
        return _from_chunks(kind, typ, n, chunks, raw)
    if kind in _NP:
        dt = _NP[kind]
        good = None
        try:
            arr = np.array(vals, dtype=np.uint64 if kind != "float64" else np.float64)
            if kind != "float64" and kind != "uint64" and int(arr.max()) > UINT_MAX[kind]:
                raise OverflowError
            if set(map(type, vals)) != ({float} if kind == "float64" else {int}):
                raise TypeError
        except (OverflowError, TypeError, ValueError):
            good = []
            for r, v in zip(rows, vals):
                ok = (v.__class__ is float) if kind == "float64" else \
                    (v.__class__ is int and 0 <= v <= UINT_MAX[kind])
                if ok:
                    good.append((r, v))
                else:
                    misfit.setdefault(r, {})[key] = v
            rows = [r for r, _ in good]
            arr = np.array([v for _, v in good], dtype=np.uint64 if kind != "float64"
                           else np.float64)
        full = np.zeros(n, dtype=dt)
        mask = np.ones(n, dtype=bool)
        if rows:
            full[rows] = arr.astype(dt)
            mask[rows] = False
        for r, v in chunks:
            if v is not None:
                full[r] = v
                mask[r] = False
        if mask.all():
            return null_array(kind, n)
        return _numeric(full, mask, typ, raw)
    if kind in ("string", "dict") and set(map(type, vals)) == {str}:
        ok_rows, ok_vals = rows, vals
    else:
        ok_rows, ok_vals = [], []
        for r, v in zip(rows, vals):
            if kind in ("string", "dict"):
                ok = v.__class__ is str
            elif kind == "text_or_int":
                if v.__class__ is int:
                    v = str(v)
                ok = v.__class__ is str
            elif kind == "binary":
                ok = v.__class__ is str
                if ok:
                    try:
                        v = bytes.fromhex(v)
                    except ValueError:
                        ok = False
            else:   # list_uintN
                lim = UINT_MAX[kind[5:]]
                ok = v.__class__ is list and all(x.__class__ is int and 0 <= x <= lim
                                                 for x in v)
            if ok:
                ok_rows.append(r)
                ok_vals.append(v)
            else:
                misfit.setdefault(r, {})[key] = v
    if kind in ("string", "dict") or raw and kind == "text_or_int":
        return _text_array(kind, typ, n, ok_rows, ok_vals, chunks, raw)
    dense = np.full(n, None, dtype=object)
    if ok_rows:
        col = np.empty(len(ok_vals), dtype=object)
        col[:] = ok_vals
        dense[ok_rows] = col
    for r, v in chunks:
        if v is not None:
            dense[r] = v
    return pa.array(dense.tolist(), type=typ)


def _from_chunks(kind, typ, n, chunks, raw=False):
    """A column only the columnar path filled."""
    import pyarrow as pa
    if kind in _NP:
        full = np.zeros(n, dtype=_NP[kind])
        mask = np.ones(n, dtype=bool)
        for r, v in chunks:
            if v is not None:
                full[r] = v
                mask[r] = False
        if mask.all():
            return null_array(kind, n)
        return _numeric(full, mask, typ, raw)
    if kind in ("string", "dict") or raw and kind == "text_or_int":
        return _text_array(kind, typ, n, (), (), chunks, raw)
    dense = np.full(n, None, dtype=object)
    for r, v in chunks:
        if v is not None:
            dense[r] = v
    return pa.array(dense.tolist(), type=typ)


def _text_array(kind, typ, n, rows, vals, chunks, raw=False):
    """A ``string`` or ``dict`` column as dictionary indices: every distinct text gets a code
    (sparse ``rows``/``vals``, chunks of :class:`Coded` values mapped once per distinct value,
    a :class:`Const`'s single text, or one text per row), the rows their codes (-1: null).
    Both kinds return that dictionary array (:func:`fill_column` decodes a ``string`` column
    unless asked not to).  A value that is not text makes ``pa.array`` (or hashing) raise, as
    the dense path would; ``raw``: the words and codes as a :class:`column_data.Words`,
    after the same check (Arrow's, for a word that is not a ``str``).  Codes in order of
    first appearance, from a dict whose default factory counts (the loops in C, ``map``)."""
    import pyarrow as pa
    index = defaultdict(count().__next__)
    code = index.__getitem__
    codes = np.full(n, -1, dtype=np.int32)
    if len(rows):
        codes[np.asarray(rows, dtype=np.int64)] = list(map(code, vals))
    for r, v in chunks:
        if v is None:
            continue
        if isinstance(v, Coded):
            remap = np.fromiter(map(code, v.uniques.tolist()), dtype=np.int32,
                                count=len(v.uniques))
            codes[r] = remap[v.codes]
        elif v.__class__ is str:
            codes[r] = code(v)
        else:
            codes[r] = list(map(code, v.tolist() if isinstance(v, np.ndarray) else v))
    if not index:
        return null_array(kind, n)
    if raw:
        words = list(index)
        if any(w.__class__ is not str for w in words):     # what Arrow takes as text
            words = pa.array(words, type=pa.string()).to_pylist()
        return Words(words, codes)
    words = pa.array(list(index), type=pa.string())
    nulls = codes < 0
    indices = pa.array(codes, type=pa.int32(), mask=nulls if nulls.any() else None)
    arr = pa.DictionaryArray.from_arrays(indices, words)
    return arr


class BatchBuilder:
    """Rows of one exported file, built one record at a time (see the module doc)."""

    def __init__(self, capture: str, payload: bool = False, text_dictionary: bool = False,
                 raw: bool = False):
        """``text_dictionary``: the ``string`` field columns (addresses, hex runs) come as the
        ``dictionary<int32, string>`` arrays they are built as instead of decoded strings, and
        the batch's schema says so.  A Parquet writer that knows the file's schema (the
        assembling writer, ``ubpkt.analytics.parquet_writer``) writes them as the same
        BYTE_ARRAY/String column, read back as strings, without decoding each row's text and
        hashing it again for the dictionary page.

        ``raw``: :meth:`flush` gives a :class:`column_data.ColumnBatch` in which the flat
        numeric and text columns that have a value are numpy data (``Dense``, ``Words``), for
        the assembling writer's own encoder (``ubpkt.analytics.page_encoder``): no Arrow array
        is built for them."""
        self.capture = capture
        self.raw = raw
        self.payload = payload
        self.text_dictionary = text_dictionary
        self.columns = columns(payload)
        self._by_key = {c.key: c for c in self.columns if c.key is not None}
        self.schema = arrow_schema(payload)
        self._reset()

    def _reset(self) -> None:
        self.n = 0
        self._frame: list = []
        self._ts: list = []
        self._len: list = []
        self._caplen: list = []
        self._lt: list = []
        self._layers: list = []
        self._issues: list = []
        self._blocks: list = []          # numeric frame columns of earlier rows, as arrays
        self._sparse: dict = {}          # record key -> (rows, values)
        self._chunks: dict = {}          # record key -> [(row array, values)] (columnar path)
        self._extra: dict = {}           # row -> {key: value} of keys no column has

    def __len__(self) -> int:
        return self.n

    def add(self, rec: dict, ts_ns: int | None) -> None:
        """Add one record (``ts_ns``: its exact time, or None when it has none)."""
        row = self.n
        self.n += 1
        self._frame.append(rec["frame"])
        self._ts.append(ts_ns)
        self._len.append(rec["len"])
        self._caplen.append(rec["caplen"])
        self._lt.append(rec["linktype"])
        self._layers.append(":".join(rec["layers"]))
        self._issues.append(rec["issues"])
        sparse = self._sparse
        by_key = self._by_key
        for k, v in rec["fields"].items():
            s = sparse.get(k)
            if s is None:
                if k not in by_key or v is None:
                    if k == PAYLOAD_KEY and not self.payload:
                        continue
                    self._extra.setdefault(row, {})[k] = v
                    continue
                s = sparse[k] = ([], [])
            elif v is None:
                self._extra.setdefault(row, {})[k] = v
                continue
            s[0].append(row)
            s[1].append(v)

    def add_frame(self, frame, ts_ns, length, caplen, linktype, layers: str, issues) -> int:
        """A row's frame columns only (its fields come as chunks, :meth:`add_chunk`); its row
        number."""
        row = self.n
        self.n += 1
        self._frame.append(frame)
        self._ts.append(ts_ns)
        self._len.append(length)
        self._caplen.append(caplen)
        self._lt.append(linktype)
        self._layers.append(layers)
        self._issues.append(issues)
        return row

    def add_frames(self, rows: list) -> None:
        """Frame columns of many rows at once: ``(frame, ts_ns, len, caplen, linktype, layers
        text, issues)`` each (the columnar path; fields come as chunks or :meth:`add_fields`)."""
        if not rows:
            return
        frame, ts, length, caplen, lt, layers, issues = zip(*rows)
        self._seal()
        self.n += len(rows)
        self._blocks.append(_numbers(frame, ts, length, caplen, lt))
        self._layers.extend(layers)
        self._issues.extend(issues)

    def add_frame_arrays(self, frame, ts, length, caplen, linktype, layers: list,
                         issues: list) -> None:
        """:meth:`add_frames` from columns: numpy arrays (or lists, ``ts`` with None for a
        frame without a time) of the numbers, lists of the layers texts and issues."""
        if not len(layers):
            return
        self._seal()
        self.n += len(layers)
        self._blocks.append(_numbers(frame, ts, length, caplen, linktype))
        self._layers.extend(layers)
        self._issues.extend(issues)

    def _seal(self) -> None:
        """The numeric frame columns of rows added one by one, made one block of arrays."""
        if self._frame:
            self._blocks.append(_numbers(self._frame, self._ts, self._len, self._caplen,
                                         self._lt))
            self._frame, self._ts, self._len, self._caplen, self._lt = [], [], [], [], []

    def add_chunk(self, key: str, rows, values) -> None:
        """Values of ``key`` for the rows ``rows`` (numpy int array): a numpy array, an object
        array or list (one per row), or a :class:`Const`."""
        if key not in self._by_key:
            if key == PAYLOAD_KEY and not self.payload:
                return
            if isinstance(values, Coded):
                values = values.dense()
            v = values.value if isinstance(values, Const) else None
            for i, r in enumerate(rows.tolist()):
                self._extra.setdefault(r, {})[key] = v if isinstance(values, Const) else \
                    _plain(values[i])
            return
        self._chunks.setdefault(key, []).append((rows, values))

    def add_fields(self, row: int, fields: dict) -> None:
        """More fields of an added row (the analysis columns)."""
        sparse = self._sparse
        for k, v in fields.items():
            s = sparse.get(k)
            if s is None:
                if k not in self._by_key or v is None:
                    if k == PAYLOAD_KEY and not self.payload:
                        continue
                    self._extra.setdefault(row, {})[k] = v
                    continue
                s = sparse[k] = ([], [])
            s[0].append(row)
            s[1].append(v)

    def flush(self):
        """The rows added so far as one RecordBatch, or with ``raw`` a
        :class:`column_data.ColumnBatch` (and start again empty)."""
        import pyarrow as pa
        n = self.n
        misfit: dict = {}
        arrays = []
        nerr = np.zeros(n, dtype=np.int16)
        nwarn = np.zeros(n, dtype=np.int16)
        offsets = np.zeros(n + 1, dtype=np.int32)
        flat = []
        for i in np.flatnonzero(np.fromiter(map(bool, self._issues), dtype=bool,
                                            count=len(self._issues))).tolist():
            iss = self._issues[i]
            flat.extend({f: x.get(f) for f in ISSUE_FIELDS} for x in iss)
            offsets[i + 1] = len(iss)
            nerr[i] = sum(1 for x in iss if x["severity"] == "error")
            nwarn[i] = sum(1 for x in iss if x["severity"] == "warning")
        itype = arrow_type("issues")
        issues_arr = pa.ListArray.from_arrays(pa.array(np.cumsum(offsets, dtype=np.int32)),
                                              pa.array(flat, itype.value_type), type=itype)
        self._seal()
        blocks = self._blocks
        numbers = [_concat(b, t, self.raw) for b, t in
                   zip(zip(*blocks) if blocks else [()] * 5, _FRAME_NUMBER_TYPES())]
        if self.raw:
            frame_vals = {"capture": Words([self.capture], np.zeros(n, dtype=np.int32)),
                          "layers": _words(self._layers),
                          "n_errors": Dense(nerr), "n_warnings": Dense(nwarn)}
        else:
            frame_vals = {"capture": pa.repeat(pa.scalar(self.capture, pa.string()), n),
                          "layers": pa.array(self._layers, pa.string()),
                          "n_errors": pa.array(nerr, pa.int16()),
                          "n_warnings": pa.array(nwarn, pa.int16())}
        frame_vals.update({"frame": numbers[0], "ts_ns": numbers[1], "len": numbers[2],
                           "cap_len": numbers[3], "linktype": numbers[4],
                           "issues": issues_arr})
        for c in self.columns:
            if c.key is None:
                if c.name == EXTRA:
                    continue
                arrays.append(frame_vals[c.name])
                continue
            rows, vals = self._sparse.get(c.key, ((), ()))
            chunks = self._chunks.get(c.key, ())
            if not rows and not chunks:         # most columns, most of the time
                arrays.append(null_array(c.kind, n))
                continue
            arrays.append(fill_column(c.kind, n, list(rows), list(vals), misfit, c.key,
                                      chunks, text_dictionary=self.text_dictionary,
                                      raw=self.raw))
        for r, d in self._extra.items():
            misfit.setdefault(r, {}).update(d)
        if misfit:
            extra = [None] * n
            for r, d in misfit.items():
                extra[r] = json.dumps(d, sort_keys=True, default=_json_default)
            arrays.append(pa.array(extra, pa.string()))
        else:
            arrays.append(null_array("string", n))
        if self.raw:
            batch = ColumnBatch(self.schema, arrays, n)
        elif self.text_dictionary:      # the schema's types, but text columns as built
            batch = pa.RecordBatch.from_arrays(arrays, names=self.schema.names)
        else:
            batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema.remove_metadata())
        self._reset()
        return batch


_FRAME_NUMBERS = (np.int64, np.int64, np.uint32, np.uint32, np.int32)   # frame .. linktype


def _FRAME_NUMBER_TYPES():
    import pyarrow as pa
    return (pa.int64(), pa.int64(), pa.uint32(), pa.uint32(), pa.int32())


def _numbers(*cols):
    """The numeric frame columns (frame, ts_ns, len, cap_len, linktype) of a run of rows:
    numpy arrays of their types (no Python int per value in Arrow's converter); a column with
    a None (a frame without a time) or a value numpy refuses is converted by Arrow from a
    list (an Arrow array: Arrow's checks and its errors)."""
    import pyarrow as pa
    out = []
    for vals, dt, typ in zip(cols, _FRAME_NUMBERS, _FRAME_NUMBER_TYPES()):
        arr = np.array(vals)            # int64 when every value is an int numpy holds
        if arr.dtype == np.int64 and len(arr):
            info = np.iinfo(dt)
            if info.min <= arr.min() and arr.max() <= info.max:
                out.append(arr.astype(dt, copy=False))
                continue
        out.append(pa.array(list(vals), typ))
    return tuple(out)


def _concat(parts, typ, raw: bool):
    """One frame column from its blocks (:func:`_numbers`): a :class:`Dense` when ``raw`` and
    every block is numpy, else an Arrow array."""
    import pyarrow as pa
    if raw and all(isinstance(p, np.ndarray) for p in parts):
        return Dense(np.concatenate(parts) if len(parts) != 1 else parts[0]) if parts else \
            Dense(np.zeros(0, dtype=typ.to_pandas_dtype()))
    arrs = [pa.array(p, typ) if isinstance(p, np.ndarray) else p for p in parts]
    if not arrs:
        return pa.array([], typ)
    return arrs[0] if len(arrs) == 1 else pa.concat_arrays(arrs)


def _words(texts: list) -> Words:
    """A text column of one ``str`` per row as :class:`Words` (codes in order of first
    appearance): a dict lookup per row, the layers texts of a block being a few shared
    objects (6x cheaper than an Arrow string array and its dictionary encoding): a new text
    gets the next code from the dict's default factory, the loop runs in C (``map``)."""
    index = defaultdict(count().__next__)
    codes = np.fromiter(map(index.__getitem__, texts), dtype=np.int32, count=len(texts))
    words = list(index)
    if any(w.__class__ is not str for w in words):      # what Arrow takes as text
        import pyarrow as pa
        words = pa.array(words, type=pa.string()).to_pylist()
    return Words(words, codes)


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def table_records(table) -> list:
    """Record dicts from a table of the schema (``pyarrow.Table``), in table order: the frame
    columns back as ``frame``/``len``/``caplen``/``linktype``/``layers``/``issues``, the field
    columns (non-null) back under their record keys, ``extra_fields`` merged in, the payload as
    hex text under ``data.data``.  ``_tns`` holds ``ts_ns`` and ``capture`` the file name.
    Used to compare a dataset with the decoder's records row by row."""
    from .schema import column_map
    cmap = column_map()
    kinds = {c.name: c.kind for c in columns(True)}
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    n = table.num_rows
    out = []
    field_names = [c for c in table.column_names if c in cmap]
    for i in range(n):
        fields = {}
        for name in field_names:
            v = cols[name][i]
            if v is None:
                continue
            kind = kinds[name]
            if kind == "text_or_int" and v.isdigit():
                v = int(v)
            elif kind == "binary":
                v = v.hex()
            fields[cmap[name]] = v
        if EXTRA in cols and cols[EXTRA][i]:
            fields.update(json.loads(cols[EXTRA][i]))
        issues = [dict(x) for x in cols["issues"][i]]
        layers = cols["layers"][i]
        out.append({"frame": cols["frame"][i], "len": cols["len"][i],
                    "caplen": cols["cap_len"][i], "linktype": cols["linktype"][i],
                    "layers": layers.split(":") if layers else [], "fields": fields,
                    "issues": issues, "_tns": cols["ts_ns"][i], "capture": cols["capture"][i]})
    return out

