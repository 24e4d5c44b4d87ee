"""The assembling Parquet writer (``ubpkt.analytics.parquet_writer``, ``--writer assemble``,
the default) against pyarrow's own writer (``--writer arrow``, the reference): the same tables
read back by pyarrow, DuckDB and Dask (Spark: test_spark.py) on the bundled, interop, varied
and corrupted captures, several row groups, partitions, payload on and off; sane metadata; every
page header walked; the all-null chunk byte for byte what pyarrow writes; the Thrift compact
codec round trip and its errors on damaged input."""
from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from ubpkt.analytics import thrift_compact as tc  # noqa: E402
from ubpkt.analytics.export import export_capture  # noqa: E402
from ubpkt.analytics.parquet_writer import (AssemblingWriter, null_chunk,  # noqa: E402
                                            read_footer)
from ubpkt.analytics.partition import PartitionRule  # noqa: E402
from ubpkt.analytics.traffic import write_samples, write_varied  # noqa: E402

from .dataset_checks import assert_same_dataset, checksums, parquet_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _interop():
    for d in (ROOT.parent / "shared" / "interop" / "ns3-ub", Path("/work/shared/interop/ns3-ub")):
        if d.exists():
            return sorted(str(p) for p in d.glob("*.pcap"))
    return []


def _both(cap, tmp_path, **kw):
    """Export ``cap`` with both writers; the two dataset directories."""
    a, b = tmp_path / "assemble", tmp_path / "arrow"
    export_capture(cap, a, writer="assemble", **kw)
    export_capture(cap, b, writer="arrow", **kw)
    return a, b


def _walk_pages(data: bytes, meta: dict) -> tuple:
    """Parse every page header of a column chunk (ColumnMetaData ``meta`` decoded); the data
    pages' value count and the page types.  The headers and bodies must fill the chunk
    exactly."""
    start = meta[11][1] if 11 in meta else meta[9][1]
    end = start + meta[7][1]
    pos, values, kinds = start, 0, []
    while pos < end:
        ph, pos = tc.decode_struct(data, pos)
        kinds.append(ph[1][1])
        assert ph[2][1] >= 0 and ph[3][1] >= 0
        if ph[1][1] == 0:                       # DATA_PAGE
            values += ph[5][1][1][1]
        elif ph[1][1] == 3:                     # DATA_PAGE_V2
            values += ph[8][1][1][1]
        pos += ph[3][1]                         # compressed page size
    assert pos == end, "page sizes do not fill the column chunk"
    return values, kinds


def check_file(path, ref_path=None) -> None:
    """A file the assembling writer wrote: pyarrow reads every column of every row group, the
    metadata is consistent (row counts, values per column, null counts against the data, page
    headers filling each chunk), and with ``ref_path`` (the same rows by pyarrow's writer) the
    table, schema, key/value metadata and per-column statistics are equal."""
    data = Path(path).read_bytes()
    f = pq.ParquetFile(path)
    md = f.metadata
    footer = read_footer(data)
    assert md.num_rows == sum(md.row_group(i).num_rows for i in range(md.num_row_groups))
    ref = pq.ParquetFile(ref_path) if ref_path else None
    if ref is not None:
        assert ref.metadata.num_row_groups == md.num_row_groups
        assert ref.schema_arrow.equals(f.schema_arrow, check_metadata=True)
        assert ref.metadata.metadata == md.metadata
        assert f.read().equals(ref.read())
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        cc_list = footer[4][1][1][g][1][1][1]
        table = f.read_row_group(g)
        rref = ref.metadata.row_group(g) if ref is not None else None
        assert rg.num_columns == len(cc_list) == md.num_columns
        for c in range(rg.num_columns):
            col = rg.column(c)
            meta = cc_list[c][3][1]
            values, kinds = _walk_pages(data, meta)
            assert values == col.num_values
            assert col.compression == "ZSTD"
            if "." not in col.path_in_schema:          # flat column: one value per row
                assert col.num_values == rg.num_rows
                arr = table.column(col.path_in_schema)
                assert f.read_row_group(g, columns=[col.path_in_schema]).column(0).equals(arr)
                if col.statistics is not None:
                    assert col.statistics.null_count == arr.null_count
            if rref is not None:
                other = rref.column(c)
                assert other.path_in_schema == col.path_in_schema
                assert other.physical_type == col.physical_type
                assert other.num_values == col.num_values
                assert (other.statistics is None) == (col.statistics is None)
                if col.statistics is not None:
                    assert other.statistics.to_dict() == col.statistics.to_dict()


def _compare_datasets(a: Path, b: Path, sums: bool = True) -> None:
    """``a`` (assembling writer) and ``b`` (pyarrow's): the same files and tables, each file
    checked, DuckDB reading equal tables, and (``sums``: captures with RTP packets) the same
    DuckDB / pyarrow / Dask key-column checksums."""
    import duckdb
    assert_same_dataset(a, b)
    fa, fb = parquet_files(a), parquet_files(b)
    con = duckdb.connect()
    con.execute("set threads=1")
    for name in fa:
        check_file(fa[name], fb[name])
        ta = con.sql(f"select * from read_parquet('{fa[name]}')").to_arrow_table()
        tb = con.sql(f"select * from read_parquet('{fb[name]}')").to_arrow_table()
        assert ta.equals(tb), name
    if not sums:
        return
    sa, sb = checksums(a), checksums(b)
    assert sa == sb
    assert sa["duckdb"] == sa["pyarrow"] == sa["dask"]


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    p = tmp_path_factory.mktemp("varied") / "varied.pcap"
    write_varied(p, 3000, seed=4, corrupt=0.1, atomic_lengths=True)
    return str(p)


def test_bundled_and_interop_captures(tmp_path):
    caps = sorted(str(p) for p in (ROOT / "captures").glob("*.pcap")) + _interop()
    assert caps
    for i, cap in enumerate(caps):
        a, b = _both(cap, tmp_path / str(i), payload=bool(i % 2))
        _compare_datasets(a, b)


def test_varied_corrupted_row_groups_partitions_payload(tmp_path, varied):
    import shutil
    cap = tmp_path / "n1_p3_v.pcap"
    shutil.copy(varied, cap)
    rule = PartitionRule(("node", "port", "date"), pattern="{node}_{port}_*.pcap")
    a, b = _both(str(cap), tmp_path, payload=True, row_group=701, rule=rule)
    (only,) = parquet_files(a).values()
    assert pq.read_metadata(only).num_row_groups == 5
    _compare_datasets(a, b)


def test_varied_without_payload_segments(tmp_path, varied):
    from ubpkt.analytics.export import plan_segments
    a, b = tmp_path / "assemble", tmp_path / "arrow"
    for seg in plan_segments(varied, 3):
        export_capture(varied, a, segment=seg, row_group=500)
        export_capture(varied, b, segment=seg, row_group=500, writer="arrow")
    assert len(parquet_files(a)) == 3
    _compare_datasets(a, b)


def test_grammar_samples_and_analysis(tmp_path):
    for i, cap in enumerate(write_samples(tmp_path / "caps")):
        a, b = _both(cap, tmp_path / str(i))
        _compare_datasets(a, b, sums=False)
    a, b = _both(str(ROOT / "captures" / "uboe_transactions.pcap"), tmp_path / "an",
                 analysis=True)
    _compare_datasets(a, b)


def test_empty_capture_and_one_row_groups(tmp_path):
    data = Path(ROOT / "captures" / "uboe_transactions.pcap").read_bytes()[:24]
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(data)
    a, b = _both(str(empty), tmp_path / "e")
    (fa,) = parquet_files(a).values()
    assert pq.read_metadata(fa).num_rows == 0
    assert_same_dataset(a, b)
    a, b = _both(str(ROOT / "captures" / "uboe_transactions.pcap"), tmp_path / "one",
                 row_group=1)
    _compare_datasets(a, b)


@pytest.mark.parametrize("n", [1, 1000, 20000])
def test_null_chunk_is_what_pyarrow_writes(n):
    """The constant chunk, byte for byte and its ColumnMetaData field for field, is what
    pyarrow writes for an all-null flat column (for every Parquet type the schema uses, with
    and without statistics, with and without dictionary pages).  Up to 20000 rows: pyarrow
    cuts its pages at 20000 rows, the constant chunk is one page whatever ``n`` (larger row
    groups: test_writer_with_a_file_object_and_batches_split)."""
    types = {"u8": pa.uint8(), "u64": pa.uint64(), "i16": pa.int16(), "f": pa.float64(),
             "s": pa.string(), "b": pa.binary(),
             "d": pa.dictionary(pa.int32(), pa.string())}
    t = pa.table({k: pa.nulls(n, v) for k, v in types.items()})
    for stats in ([], list(types)):
        for dictionary in (False, True):
            buf = io.BytesIO()
            pq.write_table(t, buf, compression="zstd", use_dictionary=dictionary,
                           write_statistics=stats)
            data = buf.getvalue()
            footer = read_footer(data)
            schema = footer[2][1][1]
            (rg,) = footer[4][1][1]
            for el, cc in zip(schema[1:], rg[1][1][1]):
                meta = cc[3][1]
                start = meta[11][1] if 11 in meta else meta[9][1]
                assert (11 in meta) == dictionary
                want = data[start:start + meta[7][1]]
                got, got_meta = null_chunk(n, el[1][1], bool(stats), "zstd", dictionary)
                assert got == want, el[4][1]
                assert {k: v for k, v in meta.items() if k not in (3, 9, 11)} == got_meta


def test_writer_refuses_what_it_cannot_assemble(tmp_path):
    s = pa.schema([("a", pa.int32())])
    with pytest.raises(ValueError):
        AssemblingWriter(str(tmp_path / "x.parquet"), s, compression="lzo")
    with pytest.raises(ValueError):
        read_footer(b"PAR1 not parquet")


@pytest.mark.parametrize("n, group", [(2500, 1000), (140000, 131072)])
def test_writer_with_a_file_object_and_batches_split(tmp_path, n, group):
    """A file object as destination, a batch split into row groups (the export's size too),
    nested and dictionary columns all null, next to a pyarrow-written reference."""
    rnd = random.Random(3)
    t = pa.table({
        "a": pa.array([rnd.randrange(1 << 32) for _ in range(n)], pa.uint32()),
        "sparse": pa.array([None if i % 3 else i % 65536 for i in range(n)], pa.uint16()),
        "null": pa.nulls(n, pa.uint32()),
        "d": pa.nulls(n, pa.dictionary(pa.int32(), pa.string())),
        "d2": pa.array(["x", None, "y", None] * (n // 4)).dictionary_encode(),
        "f": pa.array([None] * (n - 1) + [1.5], pa.float64()),
        "lst": pa.nulls(n, pa.list_(pa.uint32())),
        "st": pa.nulls(n, pa.struct([("x", pa.int64())])),
    }).replace_schema_metadata({"k": "v"})
    opts = dict(compression="zstd", use_dictionary=["d", "d2"], write_statistics=["a", "null"])
    mine = io.BytesIO()
    with AssemblingWriter(mine, t.schema, **opts) as w:
        for batch in t.to_batches():
            w.write_batch(batch, row_group_size=group)
    ref = tmp_path / "ref.parquet"
    pq.write_table(t, ref, row_group_size=group, **opts)
    path = tmp_path / "mine.parquet"
    path.write_bytes(mine.getvalue())
    check_file(path, ref)
    assert pq.read_metadata(path).num_row_groups == -(-n // group)


def test_cli_writer_option(tmp_path):
    cap = str(ROOT / "captures" / "uboe_transactions.pcap")
    env = dict(os.environ)
    for w in ("assemble", "arrow"):
        r = subprocess.run([sys.executable, "-m", "ubpkt_cli", "export", cap, "-o",
                            str(tmp_path / w), "--writer", w], capture_output=True, text=True,
                           env=env, cwd=ROOT)
        assert r.returncode == 0, r.stderr
    _compare_datasets(tmp_path / "assemble", tmp_path / "arrow")
    r = subprocess.run([sys.executable, "-m", "ubpkt_cli", "export", cap, "-o",
                        str(tmp_path / "x"), "--writer", "bogus"], capture_output=True,
                       text=True, env=env, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr


# ------------------------------------------------------------------- the Thrift compact codec

def test_thrift_round_trip_of_pyarrow_footers(tmp_path, varied):
    (path,) = export_capture(varied, tmp_path, writer="arrow", row_group=1000)
    data = Path(path).read_bytes()
    n = int.from_bytes(data[-8:-4], "little")
    raw = data[-8 - n:-8]
    fmd, end = tc.decode_struct(raw)
    assert end == n and tc.encode_struct(fmd) == raw
    assert fmd[3][1] == 3000 and len(fmd[4][1][1]) == 3


def test_thrift_values_and_headers():
    s = {1: (tc.T_I32, -1), 2: (tc.T_BOOL, True), 3: (tc.T_BOOL, False),
         20: (tc.T_I64, -(1 << 62)), 21: (tc.T_I16, 300), 40: (tc.T_BINARY, b"\x00" * 200),
         41: (tc.T_DOUBLE, 1.5), 42: (tc.T_BYTE, -3),
         43: (tc.T_LIST, (tc.T_I32, list(range(-20, 20)))),
         44: (tc.T_LIST, (tc.T_BOOL, [True, False, True])),
         45: (tc.T_SET, (tc.T_BINARY, [b"a"])),
         46: (tc.T_MAP, (tc.T_BINARY, tc.T_I64, [(b"k", 7), (b"l", -7)])),
         47: (tc.T_MAP, (0, 0, [])),
         48: (tc.T_STRUCT, {1: (tc.T_STRUCT, {})})}
    raw = tc.encode_struct(s)
    assert raw[0] == 0x15 and raw[1] == 0x01          # field 1, i32, zigzag(-1) = 1
    assert raw[2] == 0x11 and raw[3] == 0x12          # bools in the type nibble
    assert raw[4] == 0x06 and raw[5] == 40            # field 20: delta 17 -> long form
    assert tc.decode_struct(raw) == (s, len(raw))
    # a pre-encoded struct is spliced as is
    inner = tc.encode_struct({1: (tc.T_I32, 5)})
    assert tc.encode_struct({1: (tc.T_STRUCT, inner)}) == \
        tc.encode_struct({1: (tc.T_STRUCT, {1: (tc.T_I32, 5)})})
    assert tc.uvarint(300) == b"\xac\x02"


def test_thrift_decoder_only_raises_thrift_error(tmp_path, varied):
    (path,) = export_capture(varied, tmp_path, writer="assemble", row_group=1000)
    data = Path(path).read_bytes()
    n = int.from_bytes(data[-8:-4], "little")
    raw = data[-8 - n:-8]
    for cut in range(0, len(raw), max(1, len(raw) // 500)):
        with pytest.raises(tc.ThriftError):
            tc.decode_struct(raw[:cut])
    rnd = random.Random(7)
    for _ in range(300):
        b = bytearray(raw[:2000])
        for _ in range(5):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        try:
            tc.decode_struct(bytes(b))
        except tc.ThriftError:
            pass
    with pytest.raises(tc.ThriftError):
        tc.decode_struct(b"\x1c" * 200)              # structs nested past the bound
