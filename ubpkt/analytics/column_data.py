"""Columns of a row group as numpy data, for the assembling writer's own encoder.

The exporter's batches (``rows.BatchBuilder(raw=True)``) hold the flat columns it fills from
numpy cuts as :class:`Dense` (numbers) and :class:`Words` (texts as dictionary codes) instead of
Arrow arrays: ``ubpkt.analytics.page_encoder`` encodes them into Parquet column chunks directly,
and no Arrow array is built for them.  Every other column (the ``issues`` list, ``list<uint>``,
``payload``, ``extra_fields``, all-null columns) stays an Arrow array.  :class:`ColumnBatch`
holds both kinds with the few ``RecordBatch`` operations the export uses (row count, a column,
``slice``, ``take``) and :meth:`ColumnBatch.to_record_batch` for any other writer.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Dense", "Words", "ColumnBatch"]


class Dense:
    """A numeric column: ``values`` (numpy array of the column's type, one per row; a null
    row's value is ignored) and ``valid`` (bool array, or None: every row has a value)."""
    __slots__ = ("values", "valid")

    def __init__(self, values: np.ndarray, valid: np.ndarray | None = None):
        self.values = values
        self.valid = valid

    def __len__(self) -> int:
        return len(self.values)

    @property
    def null_count(self) -> int:
        return 0 if self.valid is None else len(self.values) - int(np.count_nonzero(self.valid))

    def slice(self, start: int, length: int) -> "Dense":
        end = start + length
        return Dense(self.values[start:end], None if self.valid is None else
                     self.valid[start:end])

    def take(self, idx: np.ndarray) -> "Dense":
        return Dense(self.values[idx], None if self.valid is None else self.valid[idx])

    def to_numpy(self) -> np.ndarray:
        """The values, for a column without nulls (ValueError otherwise)."""
        if self.null_count:
            raise ValueError("a column with nulls has no plain numpy form")
        return self.values

    def to_arrow(self, typ):
        import pyarrow as pa
        return pa.array(self.values, type=typ, mask=None if self.valid is None else
                        ~self.valid)


class Words:
    """A text column as dictionary codes: ``words`` (list of distinct ``str``, the dictionary
    in order) and ``codes`` (int32 array, one index into ``words`` per row, -1: null)."""
    __slots__ = ("words", "codes")

    def __init__(self, words: list, codes: np.ndarray):
        self.words = words
        self.codes = codes

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def valid(self):
        """Bool array of the rows with a value, or None when every row has one."""
        v = self.codes >= 0
        return None if v.all() else v

    @property
    def null_count(self) -> int:
        return int(np.count_nonzero(self.codes < 0))

    def slice(self, start: int, length: int) -> "Words":
        return Words(self.words, self.codes[start:start + length])

    def take(self, idx: np.ndarray) -> "Words":
        return Words(self.words, self.codes[idx])

    def to_arrow(self, typ):
        """The column as ``typ`` (a dictionary type: the dictionary array; ``string``: decoded)."""
        import pyarrow as pa
        nulls = self.codes < 0
        arr = pa.DictionaryArray.from_arrays(
            pa.array(self.codes, type=pa.int32(), mask=nulls if nulls.any() else None),
            pa.array(self.words, type=pa.string()))
        return arr if pa.types.is_dictionary(typ) else arr.cast(typ)


class ColumnBatch:
    """Rows of the file schema ``schema`` (a ``pyarrow.Schema``): ``columns`` in its order,
    each a :class:`Dense`, a :class:`Words` or an Arrow array of ``num_rows`` rows."""

    def __init__(self, schema, columns: list, num_rows: int):
        if len(columns) != len(schema):
            raise ValueError("a ColumnBatch needs one column per schema field")
        self.schema = schema
        self.columns = columns
        self.num_rows = num_rows

    def column(self, i: int):
        return self.columns[i]

    def slice(self, start: int, length: int | None = None) -> "ColumnBatch":
        length = self.num_rows - start if length is None else length
        length = max(0, min(length, self.num_rows - start))
        return ColumnBatch(self.schema, [c.slice(start, length) for c in self.columns], length)

    def take(self, indices) -> "ColumnBatch":
        idx = np.asarray(indices.to_numpy() if hasattr(indices, "to_numpy") else indices,
                         dtype=np.int64)
        import pyarrow as pa
        pidx = pa.array(idx)
        return ColumnBatch(self.schema, [c.take(pidx) if not isinstance(c, (Dense, Words))
                                         else c.take(idx) for c in self.columns], len(idx))

    def to_record_batch(self):
        """The same rows as a ``pyarrow.RecordBatch`` of the schema (metadata aside)."""
        import pyarrow as pa
        arrays = [c.to_arrow(f.type) if isinstance(c, (Dense, Words)) else c
                  for c, f in zip(self.columns, self.schema)]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema.remove_metadata())
