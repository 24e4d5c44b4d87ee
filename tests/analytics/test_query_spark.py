"""The query views on Spark SQL (issue 15): the text ``view_script`` renders runs unchanged on a
local Spark session over the exported Parquet files and gives DuckDB's rows, view by view.
Skipped without pyspark or a Java runtime (``ubpkt[cluster]`` / Debian's openjdk)."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("duckdb", reason="duckdb not installed (pip install 'ubpkt[analytics]')")
pytest.importorskip("pyspark", reason="pyspark not installed: the Spark check is skipped")
if shutil.which("java") is None:
    pytest.skip("no java on PATH: Spark cannot start", allow_module_level=True)

from ubpkt.analytics.export import export_capture  # noqa: E402
from ubpkt.analytics.lossy import write_lossy  # noqa: E402
from ubpkt.analytics.query import VIEWS, connect, run_query, view_script  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession
    s = (SparkSession.builder.master("local[1]").appName("ubpkt-query-test")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
         .getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def _normal(v):
    from decimal import Decimal
    return int(v) if isinstance(v, Decimal) and v == v.to_integral_value() else v


def test_views_run_unchanged_on_spark(tmp_path, spark):
    cap = tmp_path / "lossy.pcap"
    write_lossy(cap, 400, seed=5)
    for seg in (None,):
        export_capture(str(cap), str(tmp_path / "ds"), segment=seg)
    spark.read.parquet(str(tmp_path / "ds")).createOrReplaceTempView("frames")
    interval = 20_000
    for name in VIEWS:
        for stmt in view_script(name, interval).split(";\n"):
            if stmt.strip():
                spark.sql(stmt)
    con = connect(tmp_path / "ds", interval)
    for name in VIEWS:
        got = sorted((tuple(_normal(v) for v in r)
                      for r in spark.sql(f"SELECT * FROM {name}").collect()), key=repr)
        want = sorted(run_query(con, f"SELECT * FROM {name}")[1], key=repr)
        assert got == want, name
        assert got or name in ("transactions",), name
