"""The distributed export on Spark (issue 15): a ``spark-submit`` entry point.

    spark-submit --master spark://HOST:7077 "$(python -c 'import ubpkt.analytics.spark_export
        as m; print(m.__file__)')" CAPTURE... -o DATASET/ [options of ubpkt export]
    python -m ubpkt.analytics.spark_export CAPTURE... -o DATASET/ --master 'local[2]'

The captures are cut into the units ``ubpkt export`` cuts (:mod:`.units`: one per capture or
record-aligned segment), the unit list is parallelized one unit per partition, and
``mapPartitions`` runs :func:`ubpkt.analytics.units.export_unit` on the executors, so the
dataset is the one ``ubpkt export`` writes in one process (same files, same rows).  The report
(JSON on stdout, also ``--report``) is the one ``ubpkt export`` prints, with ``cluster``:
``{"kind": "spark", "master": ...}`` (``spark-submit`` merges the driver's stderr into
its stdout: ``--report`` is the clean copy there).

The executors must see the captures and the dataset directory at the same absolute paths (a
shared file system) and have ubpkt installed.  In local mode (``local[N]``, the default of a
plain ``python -m`` run) the driver binds to 127.0.0.1 and the web UI is off; any other
master is configured as usual with ``spark-submit --conf``.

Exit status as ``ubpkt export``: 0; 1 for a runtime failure (one line on stderr, e.g. a task
that failed); 2 for bad arguments, a capture that cannot be read, or a damaged capture (its
readable frames written).  pyspark is optional (``pip install 'ubpkt[spark]'``, with a Java 17
runtime).  Imports are absolute (``ubpkt.analytics...``): spark-submit runs this file as a
script, outside its package.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

__all__ = ["main", "run_units", "SparkFailure"]

#: Spark settings of a local-mode run: the driver on 127.0.0.1, no web UI, no progress bar
#: (stderr stays readable).
LOCAL_CONF = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
              "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}


class SparkFailure(RuntimeError):
    """A unit failed on an executor, or the job failed; the message is one line."""


def _export_partition(items):
    """``mapPartitions`` body: ``(index, ("ok", result) or ("error", text))`` per unit."""
    from ubpkt.analytics.cluster import unit_label
    from ubpkt.analytics.units import export_unit
    for i, unit in items:
        try:
            yield i, ("ok", export_unit(unit))
        except Exception as exc:       # sent to the driver, which stops with one line
            text = " ".join(str(exc).split())
            yield i, ("error", f"{unit_label(unit)}: {type(exc).__name__}: {text}")


def run_units(spark, units) -> list:
    """Export the units on ``spark`` (a SparkSession), one partition each; the results in unit
    order.  :class:`SparkFailure` when a unit or the job fails."""
    if not units:
        return []
    rdd = spark.sparkContext.parallelize(list(enumerate(units)), numSlices=len(units))
    try:
        got = rdd.mapPartitions(_export_partition).collect()
    except Exception as exc:           # Py4J: a job failure (lost executors, ...)
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), repr(exc))
        raise SparkFailure(f"the Spark job failed: {first}") from None
    results: list = [None] * len(units)
    for i, (status, value) in got:
        if status == "error":
            raise SparkFailure(f"the Spark job failed exporting {value}")
        results[i] = value
    return results


def _parser() -> argparse.ArgumentParser:
    from ubpkt.capture.stream import LINK_TYPES
    p = argparse.ArgumentParser(
        prog="spark_export", description="ubpkt export on Spark (mapPartitions over the "
        "captures / segments); writes the dataset `ubpkt export` writes")
    p.add_argument("captures", nargs="+", metavar="CAPTURE")
    p.add_argument("-o", "--output", dest="out_dir", required=True)
    p.add_argument("--partition-by", default="")
    p.add_argument("--partition-map")
    p.add_argument("--name-pattern")
    p.add_argument("--payload", action="store_true")
    p.add_argument("--analysis", action="store_true")
    p.add_argument("--row-group", type=int, default=131072)
    p.add_argument("--segment-size", default="256M")
    p.add_argument("--link-type", default="auto", choices=list(LINK_TYPES))
    p.add_argument("--profile")
    p.add_argument("--writer", default="assemble", choices=["assemble", "arrow"])
    p.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    p.add_argument("--report", dest="report_file")
    return p


def _fail(code: int, message: str) -> int:
    print(f"spark_export: error: {message}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    """Run the export; the exit status.  Uses the active SparkSession when there is one (and
    leaves it running), else starts one and stops it at the end."""
    from ubpkt.analytics import MissingDependency, require
    from ubpkt.analytics.units import (capture_units, check_names, parse_size, partition_rule,
                                       summarize)
    args = _parser().parse_args(argv)
    try:
        require("pyarrow", "spark_export")
        require("pyspark", "spark_export")
    except MissingDependency as exc:
        return _fail(1, str(exc))
    from ubpkt.capture import CaptureError
    try:
        if args.row_group < 1:
            raise ValueError("--row-group must be at least 1")
        seg_bytes = parse_size(args.segment_size)
        captures = [os.path.abspath(c) for c in args.captures]
        rule = partition_rule(args.partition_by, args.partition_map, args.name_pattern,
                              captures)
        check_names(captures)
        if args.profile is not None:
            from ubpkt.profile import load_profile
            load_profile(args.profile)
    except (ValueError, OSError, TypeError) as exc:
        return _fail(2, str(exc))
    out_abs = os.path.abspath(args.out_dir)
    t0 = time.perf_counter()
    units = []
    for given, c in zip(args.captures, captures):
        try:
            units += capture_units(c, out_abs, seg_bytes, payload=args.payload,
                                   row_group=args.row_group, rule=rule,
                                   link_type=args.link_type, profile=args.profile,
                                   analysis=args.analysis, writer=args.writer)
        except (CaptureError, OSError) as exc:
            return _fail(2, f"{given}: {getattr(exc, 'strerror', None) or exc}")
    from pyspark.sql import SparkSession
    active = SparkSession.getActiveSession()
    spark = active or _session(args.master)
    try:
        master = spark.sparkContext.master
        print(f"spark_export: {len(units)} units on {master}", file=sys.stderr)
        results = run_units(spark, units)
    except SparkFailure as exc:
        return _fail(1, str(exc))
    finally:
        if active is None:
            spark.stop()
    given = dict(zip(captures, args.captures))
    results = [(given[p], seg, [os.path.join(args.out_dir, os.path.relpath(f, out_abs))
                                for f in files], rows, damage)
               for p, seg, files, rows, damage in results]
    report, damaged = summarize(results, args.out_dir, time.perf_counter() - t0)
    report["cluster"] = {"kind": "spark", "master": master}
    for path, problems, count in damaged:
        for prob in problems:
            print(f"ubpkt: {path}: damaged capture: {prob}", file=sys.stderr)
        if count > len(problems):
            print(f"ubpkt: {path}: ... and {count - len(problems)} more problems",
                  file=sys.stderr)
    if args.report_file:
        with open(args.report_file, "w") as f:
            json.dump(report, f, indent=2)
    print(json.dumps(report, indent=2))
    print(f"spark_export: {report['rows']} rows in {report['files']} files, "
          f"{report['seconds']:.2f} s", file=sys.stderr)
    return 2 if damaged else 0


def _session(master):
    """A SparkSession for this run: ``master`` if given, else spark-submit's (``local[*]``
    for a plain python run); local mode gets :data:`LOCAL_CONF` (and ``SPARK_LOCAL_IP``
    127.0.0.1 when the JVM is started here)."""
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession
    # start the JVM gateway first: SparkConf() then holds spark-submit's settings (its
    # --master, --conf), which the local-mode defaults below must not override
    if "PYSPARK_GATEWAY_PORT" not in os.environ and (master or "local").startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")     # a JVM started here
    SparkContext._ensure_initialized()
    conf = SparkConf()
    if master:
        conf.setMaster(master)
    if conf.get("spark.master", "local[*]").startswith("local"):
        conf.setAll(LOCAL_CONF.items())
    conf.setIfMissing("spark.app.name", "ubpkt export")
    spark = SparkSession.builder.config(conf=conf).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


if __name__ == "__main__":
    sys.exit(main())
