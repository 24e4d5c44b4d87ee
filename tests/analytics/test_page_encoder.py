"""ubpkt's own column-chunk encoder (``ubpkt.analytics.page_encoder``) and the numpy columns it
encodes (``ubpkt.analytics.column_data``): property tests for every physical type with random
nulls (all valued, one row, runs longer than 64, lengths that are not a multiple of 8, several
pages), the file read back by pyarrow equal to the input and compared with pyarrow's own file
of the same column (table, statistics, every page header walked: ``check_file``); the hybrid
encoding decoded by a reference decoder written here; the C bit packer against numpy's."""
from __future__ import annotations

import io

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
hyp = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ubpkt.analytics import page_encoder as pe  # noqa: E402
from ubpkt.analytics import parquet_writer  # noqa: E402
from ubpkt.analytics.column_data import ColumnBatch, Dense, Words  # noqa: E402
from ubpkt.analytics.parquet_writer import AssemblingWriter  # noqa: E402

from .test_parquet_writer import check_file  # noqa: E402

SETTINGS = dict(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _decode_hybrid(buf: bytes, width: int, count: int) -> list:
    """Reference decoder of the RLE/bit-packing hybrid (the Parquet encodings document):
    ``count`` values of ``width`` bits."""
    out, pos = [], 0
    vbytes = (width + 7) // 8
    rle_last = False
    while len(out) < count:
        h = shift = 0
        while True:
            b = buf[pos]
            pos += 1
            h |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if h & 1:                                   # bit-packed: (h >> 1) groups of 8
            nbytes = (h >> 1) * width
            bits = int.from_bytes(buf[pos:pos + nbytes], "little")
            pos += nbytes
            for i in range((h >> 1) * 8):
                out.append((bits >> (i * width)) & ((1 << width) - 1))
            rle_last = False
        else:                                       # RLE: (h >> 1) copies of one value
            v = int.from_bytes(buf[pos:pos + vbytes], "little")
            pos += vbytes
            out.extend([v] * (h >> 1))
            rle_last = True
    assert pos == len(buf), "bytes left after the values"
    # only the last bit-packed group may hold values past the end (its zero fill)
    assert len(out) == count if rle_last else len(out) - count < 8
    return out[:count]


def _raw_metas(path) -> list:
    """The decoded ColumnMetaData of every column chunk of a file, in order."""
    from pathlib import Path

    from ubpkt.analytics.parquet_writer import read_footer
    footer = read_footer(Path(path).read_bytes())
    return [cc[3][1] for rg in footer[4][1][1] for cc in rg[1][1][1]]


def same_raw_metadata(mine, ref, pages: bool = True) -> None:
    """Field for field what pyarrow wrote in each ColumnMetaData, as Thrift values: type,
    encodings, path, codec, value count, the Statistics struct (every field: the deprecated
    min/max, the bytes of -0.0), size statistics, and (``pages``: both wrote as many pages)
    the page encoding statistics; the byte sizes and offsets differ (another encoding of the
    same levels)."""
    fields = (1, 2, 3, 4, 5, 12, 16) + ((13,) if pages else ())
    for a, b in zip(_raw_metas(mine), _raw_metas(ref), strict=True):
        assert {k: a.get(k) for k in fields} == {k: b.get(k) for k in fields}


def _runs(draw_runs, n):
    """A bool mask of ``n`` rows from (value, length) runs, repeated to length."""
    mask = np.concatenate([np.full(k, v, dtype=bool) for v, k in draw_runs]) if draw_runs \
        else np.ones(1, bool)
    return np.resize(mask, n)


runs_st = st.lists(st.tuples(st.booleans(), st.integers(1, 200)), min_size=0, max_size=12)
n_st = st.one_of(st.just(1), st.integers(1, 20), st.integers(60, 700))


@settings(**SETTINGS)
@given(width=st.integers(1, 20), n=st.integers(1, 600), runs=runs_st, seed=st.integers(0, 99))
def test_hybrid_round_trip(width, n, runs, seed):
    """Runs of equal values (some past 64) and random stretches, any width, any length."""
    rnd = np.random.default_rng(seed)
    pieces, total = [], 0
    for flag, k in runs or [(False, n)]:
        k = min(k, n - total)
        if k <= 0:
            break
        if flag:
            pieces.append(np.full(k, rnd.integers(0, 1 << width), dtype=np.uint32))
        else:
            pieces.append(rnd.integers(0, 1 << width, size=k).astype(np.uint32))
        total += k
    if total < n:
        pieces.append(np.full(n - total, (1 << width) - 1, dtype=np.uint32))
    vals = np.concatenate(pieces)
    enc = pe.hybrid_py(vals, width)
    assert _decode_hybrid(enc, width, n) == vals.tolist()
    assert pe.hybrid(vals, width) == enc                      # C, where built
    if width == 1:
        assert pe.hybrid(vals.astype(bool).view(np.uint8), 1) == enc


def test_hybrid_shapes():
    """All equal: one RLE run; a run of 64+ equal values inside random ones: an RLE run with
    bit-packed groups around it (not a multiple of 8 at the end)."""
    assert pe.hybrid(np.ones(131072, np.uint8), 1) == pe.uvarint(131072 << 1) + b"\x01"
    rnd = np.random.default_rng(1)
    v = np.concatenate([rnd.integers(0, 8, 21), np.full(100, 5), rnd.integers(0, 8, 13)]
                       ).astype(np.uint32)
    enc = pe.hybrid(v, 3)
    assert enc == pe.hybrid_py(v, 3)
    assert _decode_hybrid(enc, 3, len(v)) == v.tolist()
    assert len(enc) < (len(v) * 3) // 8          # the run is not bit-packed
    assert pe.hybrid(np.zeros(0, np.uint32), 3) == b""


@pytest.mark.parametrize("width", [1, 2, 3, 7, 8, 9, 13, 16, 17, 24, 31, 32])
def test_c_bit_pack_is_numpy_bit_pack(width):
    rnd = np.random.default_rng(width)
    for n in (0, 1, 7, 8, 9, 1000, 1003):
        v = rnd.integers(0, 1 << width, size=n, dtype=np.uint64).astype(np.uint32)
        assert pe.bit_pack(v, width) == pe.bit_pack_py(v, width)


# ------------------------------------------------------------- columns written, read back

#: (Arrow type, numpy dtype of the Dense values)
TYPES = {"u8": (pa.uint8(), np.uint8), "u16": (pa.uint16(), np.uint16),
         "u32": (pa.uint32(), np.uint32), "u64": (pa.uint64(), np.uint64),
         "i16": (pa.int16(), np.int16), "i32": (pa.int32(), np.int32),
         "i64": (pa.int64(), np.int64), "f64": (pa.float64(), np.float64),
         "bool": (pa.bool_(), np.bool_)}


def _values(kind, n, rnd, narrow):
    typ, dt = TYPES[kind]
    if kind == "bool":
        return rnd.integers(0, 2, n).astype(bool)
    if kind == "f64":
        v = rnd.normal(size=n) * 1e6
        specials = np.array([0.0, -0.0, np.inf, -np.inf, 1.5])   # NaN: edge test below
        pick = rnd.integers(0, 12, n)
        v = np.where(pick < len(specials), specials[np.minimum(pick, len(specials) - 1)], v)
        return v
    info = np.iinfo(dt)
    lo, hi = (0, 3) if narrow else (int(info.min), int(info.max))
    return rnd.integers(lo, hi, size=n, endpoint=True, dtype=dt)


def _write_both(tmp_path, columns: dict, arrays: dict, stats=True,
                page_rows=parquet_writer.PAGE_ROWS, dictionary=()):
    """The columns written by the assembling writer from numpy data and by pyarrow from the
    equal Arrow arrays; both paths."""
    schema = pa.schema([(k, a.type) for k, a in arrays.items()]).with_metadata({"k": "v"})
    opts = dict(compression="zstd", use_dictionary=list(dictionary),
                write_statistics=list(arrays) if stats else [])
    n = len(next(iter(arrays.values())))
    mine = tmp_path / "mine.parquet"
    with AssemblingWriter(str(mine), schema, page_rows=page_rows, **opts) as w:
        w.write_batch(ColumnBatch(schema, [columns[k] for k in arrays], n))
    ref = tmp_path / "ref.parquet"
    pq.write_table(pa.table(arrays, schema=schema), ref, **opts)
    return mine, ref


@settings(**SETTINGS)
@given(kind=st.sampled_from(sorted(TYPES)), n=n_st, runs=runs_st, seed=st.integers(0, 999),
       narrow=st.booleans(), stats=st.booleans(),
       page_rows=st.sampled_from([parquet_writer.PAGE_ROWS, 64, 7]))
def test_dense_columns_read_back(tmp_path, kind, n, runs, seed, narrow, stats, page_rows):
    """A numeric column with random nulls (or none) equals its input read back, and its
    statistics and metadata are pyarrow's (check_file); pages walked."""
    rnd = np.random.default_rng(seed)
    vals = _values(kind, n, rnd, narrow)
    valid = _runs(runs, n)
    typ = TYPES[kind][0]
    mask = ~valid
    if not valid.any():                    # an all-null column is the constant chunk's case
        valid[rnd.integers(0, n)] = True
        mask = ~valid
    arr = pa.array(vals, type=typ, mask=mask)
    col = Dense(vals, None if valid.all() else valid)
    mine, ref = _write_both(tmp_path, {"c": col}, {"c": arr}, stats=stats,
                            page_rows=page_rows)
    check_file(mine, ref)
    same_raw_metadata(mine, ref, pages=page_rows >= n)
    got = pq.read_table(mine).column("c").combine_chunks()
    assert got.equals(arr)
    meta = pq.read_metadata(mine).row_group(0).column(0)
    assert meta.encodings == pq.read_metadata(ref).row_group(0).column(0).encodings


@settings(**SETTINGS)
@given(n=n_st, runs=runs_st, seed=st.integers(0, 999), nwords=st.integers(1, 300),
       stats=st.booleans(), as_dict=st.booleans(), page_rows=st.sampled_from([131072, 50]))
def test_words_columns_read_back(tmp_path, n, runs, seed, nwords, stats, as_dict, page_rows):
    """A text column as dictionary codes (unused words in the dictionary, runs of one code,
    non-ASCII words) read back equal, as ``string`` and as ``dictionary<int32, string>``."""
    rnd = np.random.default_rng(seed)
    words = [f"w{i}-\u00e9{'x' * (i % 5)}" for i in rnd.permutation(nwords).tolist()]
    codes = rnd.integers(0, nwords, n).astype(np.int32)
    if n > 100:
        codes[10:90] = codes[10]                      # one code for 80 rows: an RLE run
    valid = _runs(runs, n)
    if not valid.any():
        valid[0] = True
    codes[~valid] = -1
    col = Words(words, codes)
    typ = pa.dictionary(pa.int32(), pa.string()) if as_dict else pa.string()
    arr = col.to_arrow(typ)
    mine, ref = _write_both(tmp_path, {"t": col}, {"t": arr}, stats=stats,
                            page_rows=page_rows, dictionary=["t"])
    check_file(mine, ref)
    same_raw_metadata(mine, ref, pages=page_rows >= n)
    assert pq.read_table(mine).column("t").combine_chunks().equals(arr)


def test_column_batch_slices_take_and_row_groups(tmp_path):
    """A ColumnBatch mixing numpy and Arrow columns, split into row groups, sliced and taken,
    written and read back like the equal RecordBatch."""
    n = 1000
    rnd = np.random.default_rng(5)
    u = rnd.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    valid = rnd.random(n) < 0.7
    codes = rnd.integers(-1, 4, n).astype(np.int32)
    schema = pa.schema([("u", pa.uint32()), ("t", pa.string()),
                        ("l", pa.list_(pa.uint32())), ("z", pa.uint16())])
    lists = pa.array([[i] if i % 3 else [] for i in range(n)], pa.list_(pa.uint32()))
    cb = ColumnBatch(schema, [Dense(u, valid), Words(["a", "b", "c", "d"], codes), lists,
                              pa.nulls(n, pa.uint16())], n)
    rb = cb.to_record_batch()
    assert rb.column(0).null_count == n - valid.sum()
    opts = dict(compression="zstd", use_dictionary=["t"], write_statistics=["u", "z", "t"])
    for name, batch, ref_batch in (
            ("whole", cb, rb), ("slice", cb.slice(13, 500), rb.slice(13, 500)),
            ("take", cb.take(np.arange(n)[::-3]), rb.take(pa.array(np.arange(n)[::-3])))):
        mine = tmp_path / f"{name}.parquet"
        with AssemblingWriter(str(mine), schema, **opts) as w:
            w.write_batch(batch, row_group_size=128)
        ref = tmp_path / f"{name}.ref.parquet"
        pq.write_table(pa.Table.from_batches([ref_batch]), ref, row_group_size=128, **opts)
        check_file(mine, ref)
        same_raw_metadata(mine, ref)


def test_export_encodes_the_valued_columns_itself(tmp_path, monkeypatch):
    """The default export writes its valued flat columns through encode_chunk (not pyarrow):
    the numeric and text columns of the bundled capture's rows are numpy data, and every
    flat valued column of the file but ``extra_fields`` was encoded here."""
    from pathlib import Path

    from ubpkt.analytics.export import export_capture
    seen = []
    real = parquet_writer.encode_chunk

    def spy(col, *a, **k):
        seen.append(col)
        return real(col, *a, **k)
    monkeypatch.setattr(parquet_writer, "encode_chunk", spy)
    cap = Path(__file__).resolve().parents[2] / "captures" / "uboe_transactions.pcap"
    (path,) = export_capture(str(cap), tmp_path / "a", writer="assemble")
    t = pq.read_table(path)
    assert pq.read_metadata(path).num_row_groups == 1
    flat = [f.name for f in t.schema if not pa.types.is_nested(f.type)
            and f.name not in ("extra_fields", "payload") and t.column(f.name).null_count <
            t.num_rows]
    assert len(seen) == len(flat) > 20
    assert {type(c) for c in seen} == {Dense, Words}
    (ref,) = export_capture(str(cap), tmp_path / "b", writer="arrow")
    check_file(path, ref)


def test_encoder_statistics_edge_values(tmp_path):
    """Doubles with NaN only in some rows, zeros of both signs, a column of NaN only; the
    largest unsigned values (compared unsigned); long words past the statistics size."""
    f = np.array([np.nan, -0.0, 0.0, np.nan])
    only_nan = np.array([np.nan, np.nan, np.nan, np.nan])
    big = np.array([2 ** 64 - 1, 1, 2 ** 63, 0], dtype=np.uint64)
    long_words = ["y" * 5000, "x"]
    cols = {"f": Dense(f), "nan": Dense(only_nan, np.array([True, False, True, True])),
            "big": Dense(big), "w": Words(long_words, np.array([0, 1, 1, -1], np.int32))}
    arrays = {"f": pa.array(f), "nan": pa.array(only_nan, mask=np.array([False, True, False, False])),
              "big": pa.array(big), "w": cols["w"].to_arrow(pa.string())}
    mine, ref = _write_both(tmp_path, cols, arrays, dictionary=["w"])
    same_raw_metadata(mine, ref)
    a, b = pq.ParquetFile(mine), pq.ParquetFile(ref)
    for c in range(len(cols)):
        sa = a.metadata.row_group(0).column(c).statistics
        sb = b.metadata.row_group(0).column(c).statistics
        assert sa.to_dict() == sb.to_dict()
    ta, tb = a.read(), b.read()
    for name in cols:       # NaN != NaN for Table.equals: compare the bit patterns
        x, y = ta.column(name).to_pylist(), tb.column(name).to_pylist()
        if name in ("f", "nan"):
            x = [None if v is None else np.float64(v).tobytes() for v in x]
            y = [None if v is None else np.float64(v).tobytes() for v in y]
        assert x == y, name


@pytest.mark.parametrize("dtype, out", [(np.uint8, "<u4"), (np.uint16, "<u4"), (np.uint32, "<u4"),
                                        (np.uint64, "<u8"), (np.int8, "<i4"), (np.int16, "<i4"),
                                        (np.int32, "<i4"), (np.int64, "<i8"),
                                        (np.float64, "<f8"), (np.bool_, np.bool_)])
def test_compact_is_numpy_compress(dtype, out):
    """The C compaction (widened, sign-extended) against numpy's, random and run masks."""
    rnd = np.random.default_rng(3)
    for n in (0, 1, 9, 5000):
        if dtype is np.bool_:
            vals = rnd.integers(0, 2, n).astype(bool)
        elif np.dtype(dtype).kind == "f":
            vals = rnd.normal(size=n)
        else:
            info = np.iinfo(dtype)
            vals = rnd.integers(int(info.min), int(info.max), n, endpoint=True, dtype=dtype)
        for valid in (rnd.random(n) < 0.5, np.repeat(rnd.random(n // 50 + 1) < 0.5, 50)[:n],
                      np.ones(n, bool), np.zeros(n, bool), None):
            got = pe.compact(vals, valid, out)
            want = pe.compact_py(vals, valid, out)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_byte_array_plain_is_python():
    words = ["", "a", "\u00e9t\u00e9", "x" * 300, "\U0001f600"]
    got, lens = pe.byte_array_plain(words)
    want, wlens = pe.byte_array_plain_py(words)
    assert got == want and lens.tolist() == wlens.tolist() == [0, 1, 5, 300, 4]
    with pytest.raises(TypeError):
        pe.byte_array_plain(["a", b"b"])
