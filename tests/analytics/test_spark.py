"""The Spark entry point ``python -m ubpkt.analytics.spark_export`` (issue 15), in Spark local
mode (driver on 127.0.0.1): it writes the dataset ``ubpkt export`` writes in one process, and
Spark reads that dataset with the types the schema promises (ts_ns INT64, unsigned integers as
the next wider signed type).  Needs pyspark and a Java 17 runtime; skips, saying which, without
them."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pq = pytest.importorskip("pyarrow.parquet")

from ubpkt.analytics.traffic import write_varied  # noqa: E402

from .dataset_checks import CHECKSUM_SQL, assert_same_dataset, checksums, comparable  # noqa

ROOT = Path(__file__).resolve().parents[2]


def _java() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool(shutil.which("java") or (home and os.path.exists(os.path.join(home, "bin",
                                                                                "java"))))


@pytest.fixture(scope="module")
def spark():
    """One local[2] SparkSession for the module (a JVM start costs tens of seconds), set up
    as the entry point sets up its own (``spark_export._session``)."""
    pytest.importorskip("pyspark", reason="pyspark not installed (pip install 'ubpkt[spark]')")
    if not _java():
        pytest.skip("no Java runtime for Spark (Debian: apt-get install openjdk-17-jre-headless)")
    from ubpkt.analytics import spark_export
    saved = {k: os.environ.get(k) for k in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON")}
    os.environ["PYSPARK_PYTHON"] = sys.executable        # the workers run this interpreter
    session = spark_export._session("local[2]")
    try:
        yield session
    finally:
        session.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    d = tmp_path_factory.mktemp("caps")
    write_varied(d / "varied.pcap", 3000)
    return sorted(str(p) for p in (ROOT / "captures").glob("*.pcap")) + [str(d / "varied.pcap")]


def test_spark_writes_the_single_process_dataset_and_reads_it(tmp_path, captures, spark,
                                                                capsys, monkeypatch):
    from ubpkt.analytics.spark_export import main
    args = [*captures, "--partition-by", "date", "--segment-size", "100k"]
    one = subprocess.run([sys.executable, "-m", "ubpkt_cli", "export", *args, "-o", "single"],
                         capture_output=True, text=True, cwd=tmp_path, env=dict(os.environ))
    assert one.returncode == 0, one.stderr
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main([*args, "-o", "spark", "--report", "r.json"]) == 0
    out = capsys.readouterr().out
    r1, r2 = json.loads(one.stdout), json.loads(out)
    assert r2 == json.loads((tmp_path / "r.json").read_text())
    assert r2["cluster"] == {"kind": "spark", "master": "local[2]"}
    assert comparable(r1) == {**comparable(r2), "dataset": "single", "captures": [
        {**c, "files": [f.replace("spark/", "single/", 1) for f in c["files"]]}
        for c in r2["captures"]]}
    assert_same_dataset(tmp_path / "single", tmp_path / "spark")

    # Spark reads it: one table, hive partitions, the promised types, the same checksums
    df = spark.read.parquet(str(tmp_path / "spark"))
    types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    assert types["ts_ns"] == "bigint" and types["frame"] == "bigint"
    assert types["len"] == "bigint"                      # uint32
    assert types["udp_dstport"] == "int"                 # uint16
    assert types["ip_ttl"] == "smallint"                 # uint8
    assert types["entity_reg_start0"] == "decimal(20,0)"  # uint64
    assert types["date"] == "date"
    df.createOrReplaceTempView("frames")
    got = tuple(int(v) for v in spark.sql(CHECKSUM_SQL.format(table="frames")).collect()[0])
    sums = checksums(tmp_path / "single")
    assert got == sums["duckdb"] == sums["pyarrow"] == sums["dask"]
    assert got[0] == r1["rows"] > 3000
    extra = spark.sql("select sum(ip_ttl), sum(udp_dstport) from frames").collect()[0]
    import duckdb
    want = duckdb.connect().execute(
        "select sum(ip_ttl), sum(udp_dstport) from "
        f"read_parquet('{tmp_path}/single/**/*.parquet', hive_partitioning=true)").fetchone()
    assert tuple(int(v) for v in extra) == tuple(int(v) for v in want)


def test_a_failed_unit_is_one_line_exit_1(tmp_path, captures, spark, capsys):
    from ubpkt.analytics.spark_export import main
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main([captures[-1], "-o", str(blocker / "ds")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("spark_export: error: the Spark job failed exporting "
                              "varied.pcap: ")


def test_arguments_and_missing_pyspark(tmp_path, captures):
    """No JVM needed: bad arguments stop before Spark starts, a missing pyspark names the
    extra."""
    mod = [sys.executable, "-m", "ubpkt.analytics.spark_export"]
    r = subprocess.run(mod + [captures[0], "-o", str(tmp_path / "o"), "--segment-size", "x"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not a size" in r.stderr and "Traceback" not in r.stderr
    import ubpkt.analytics.spark_export as entry
    script = [sys.executable, entry.__file__]      # as spark-submit runs it: a file, no package
    for cmd in (mod, script):
        r = subprocess.run(cmd + [str(tmp_path / "nope.pcap"), "-o", str(tmp_path / "o")],
                           capture_output=True, text=True)
        assert r.returncode == 2 and "nope.pcap" in r.stderr and "Traceback" not in r.stderr
    code = ("import sys; sys.modules['pyspark'] = None\n"
            "from ubpkt.analytics.spark_export import main\n"
            f"sys.exit(main([{captures[0]!r}, '-o', {str(tmp_path / 'x')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == \
        "spark_export: error: spark_export needs pyspark: pip install 'ubpkt[spark]'"
    assert not (tmp_path / "x").exists()


def test_spark_reads_both_writers_alike(tmp_path, captures, spark):
    """The assembling writer's dataset (``--writer assemble``, the default: all-null columns
    as constant chunks) and pyarrow's writer's (``--writer arrow``) are the same table in
    Spark: every column of every row, in both directions (``exceptAll``), several row groups,
    payload and date partitions."""
    from ubpkt.analytics.export import export_capture
    from ubpkt.analytics.partition import PartitionRule
    rule = PartitionRule(("date",))
    for writer in ("assemble", "arrow"):
        for cap in captures:
            export_capture(cap, tmp_path / writer, writer=writer, payload=True, row_group=1000,
                           rule=rule)
    a = spark.read.parquet(str(tmp_path / "assemble"))
    b = spark.read.parquet(str(tmp_path / "arrow"))
    assert a.schema == b.schema
    assert a.count() == b.count() > 3000
    assert a.exceptAll(b).count() == 0 and b.exceptAll(a).count() == 0
    nulls = [c for c in ("rtph_psn", "ip_src", "btah_taopcode_name", "payload")]
    got = a.selectExpr(*[f"count({c})" for c in nulls]).collect()[0]
    want = b.selectExpr(*[f"count({c})" for c in nulls]).collect()[0]
    assert tuple(got) == tuple(want) and all(v > 0 for v in got)
