"""Comparisons of two exported datasets, shared by the distributed-export tests: the same files
holding the same tables, and the key-column checksums DuckDB, pyarrow and dask.dataframe read."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

#: times are summed modulo a prime: a sum of 10^18 ns values overflows int64
P = 1_000_000_007
#: the key columns the checksums read
KEY_COLUMNS = ["frame", "ts_ns", "rtph_psn", "len", "ip_src", "capture"]
#: the checksum query (DuckDB and Spark SQL both run it; ``{table}`` is the dataset)
CHECKSUM_SQL = (f"select count(*), sum(frame), sum(ts_ns % {P}), sum(rtph_psn), sum(len), "
                "count(distinct ip_src), count(distinct capture) from {table}")


def parquet_files(out: Path) -> dict:
    """``{path relative to the dataset: path}`` of every Parquet file."""
    return {str(p.relative_to(out)): p for p in sorted(Path(out).rglob("*.parquet"))}


def assert_same_dataset(one: Path, other: Path) -> None:
    """The same files, each holding an equal table with equal metadata."""
    import pyarrow.parquet as pq
    a, b = parquet_files(one), parquet_files(other)
    assert a and sorted(a) == sorted(b)
    for name in a:
        ta, tb = pq.read_table(a[name]), pq.read_table(b[name])
        assert ta.equals(tb), name
        assert ta.schema.metadata == tb.schema.metadata, name


def comparable(report: dict) -> dict:
    """An export report without what depends on the run (time, where it ran)."""
    return {k: v for k, v in report.items()
            if k not in ("seconds", "rows_per_second", "cluster")}


def checksums(out: Path) -> dict:
    """Row count and key-column checksums of a dataset as DuckDB, pyarrow and dask read it."""
    import duckdb
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    got = {}
    row = duckdb.connect().execute(CHECKSUM_SQL.format(
        table=f"read_parquet('{out}/**/*.parquet', hive_partitioning=true)")).fetchone()
    got["duckdb"] = tuple(int(v) for v in row)
    t = ds.dataset(str(out), format="parquet", partitioning="hive").to_table(
        columns=KEY_COLUMNS)
    got["pyarrow"] = (t.num_rows, pc.sum(t["frame"]).as_py(),
                      int((t["ts_ns"].to_numpy() % P).sum()),
                      pc.sum(t["rtph_psn"]).as_py(), pc.sum(t["len"]).as_py(),
                      len(pc.unique(pc.drop_null(t["ip_src"]))),
                      len(pc.unique(t["capture"])))
    dd = pytest.importorskip("dask.dataframe",
                             reason="dask.dataframe (pandas) not installed: pip install "
                                    "'dask[dataframe]'")
    import dask
    with dask.config.set(scheduler="synchronous"), warnings.catch_warnings():
        warnings.simplefilter("ignore")            # pandas deprecations inside dask
        df = dd.read_parquet(str(out), columns=KEY_COLUMNS)
        got["dask"] = (len(df), int(df.frame.sum().compute()),
                       int((df.ts_ns % P).sum().compute()),
                       int(df.rtph_psn.sum().compute()), int(df.len.sum().compute()),
                       int(df.ip_src.nunique().compute()), int(df.capture.nunique().compute()))
    return got
