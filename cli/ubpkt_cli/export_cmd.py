"""`ubpkt export`: captures to a Parquet dataset (ubpkt.analytics; docs/analytics.md)."""
from __future__ import annotations

import json
import sys
import time

import click

from ubpkt.capture.stream import LINK_TYPES


def _size(text: str) -> int:
    from ubpkt.analytics.units import parse_size
    try:
        return parse_size(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _work(unit):
    """Export one (capture, segment) unit: ``ubpkt.analytics.units.export_unit``."""
    from ubpkt.analytics.units import export_unit
    return export_unit(unit)


def _cluster(text, jobs):
    """The parsed ``--cluster`` (None without it); usage errors for a bad one or with -j."""
    if text is None:
        return None
    from ubpkt.analytics.cluster import parse_cluster
    if jobs > 1:
        raise click.UsageError("-j and --cluster exclude each other (the cluster's workers "
                               "do the parallel work)")
    try:
        spec = parse_cluster(text)
    except ValueError as exc:
        raise click.UsageError(str(exc))
    from ubpkt.analytics import MissingDependency, require
    try:
        require("dask.distributed")
    except MissingDependency as exc:
        raise click.ClickException(str(exc))
    return spec


def _on_cluster(spec, units):
    """The units' results from the Dask cluster ``spec`` (ubpkt.analytics.cluster), in unit
    order, with the paths as given; a failure is one line, exit 1."""
    from ubpkt.analytics import MissingDependency
    from ubpkt.analytics.cluster import ClusterFailure, absolute_units, open_client, run_units
    shipped, restore = absolute_units(units)
    try:
        with open_client(spec) as client:
            n = len(client.nthreads())
            click.echo(f"ubpkt export: {len(units)} units on {n} Dask workers "
                       f"({client.scheduler.address})", err=True)
            return [restore(r) for r in run_units(client, shipped)]
    except (MissingDependency, ClusterFailure) as exc:
        raise click.ClickException(str(exc))
    except click.ClickException:
        raise
    except Exception as exc:           # the cluster could not start, or lost its scheduler
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise click.ClickException(f"the Dask cluster failed: {type(exc).__name__}: {text}")


@click.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="dataset directory (created; files of the same captures are replaced)")
@click.option("--partition-by", default="", help="hive partitions: any of node,port,date")
@click.option("--partition-map", type=click.Path(dir_okay=False, exists=True),
              help="CSV with the columns capture,node,port")
@click.option("--name-pattern", help="node/port from file names, e.g. '{node}_{port}_*.pcap'")
@click.option("--payload", is_flag=True, help="also the payload bytes (binary column)")
@click.option("--analysis", is_flag=True,
              help="fill the analysis_* columns (PSN gaps, request/response links; whole "
                   "captures only: no segments)")
@click.option("--row-group", type=click.IntRange(min=1), default=131072, show_default=True,
              help="rows per Parquet row group")
@click.option("--segment-size", default="256M", show_default=True,
              help="captures larger than this are exported as record-aligned segments")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="processes exporting captures / segments at once")
@click.option("--cluster", "cluster_spec", metavar="dask://HOST:PORT|local:N",
              help="export the captures / segments on a Dask cluster: a running scheduler, "
                   "or N local worker processes (docs/analytics.md)")
@click.option("--link-type", default="auto", show_default=True,
              type=click.Choice(list(LINK_TYPES)))
@click.option("--profile", help="reference profile: spec, ns3 or a JSON file of overrides")
@click.option("--writer", type=click.Choice(["assemble", "arrow"]), default="assemble",
              show_default=True,
              help="Parquet writer: assemble (all-null columns written as constant chunks) or "
                   "arrow (pyarrow's writer for every column); the same tables")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="write the JSON result to this file as well")
def export(captures, out_dir, partition_by, partition_map, name_pattern, payload, analysis,
           row_group, segment_size, jobs, link_type, profile, writer, report_file,
           cluster_spec=None):
    """Export captures to a Parquet dataset (one table for DuckDB, Spark, Dask): one file per
    capture or per segment of a large one, columns typed from the header declarations."""
    from ubpkt.analytics import MissingDependency, require
    try:
        require("pyarrow")
    except MissingDependency as exc:
        raise click.ClickException(str(exc))
    from ubpkt.analytics.units import capture_units, check_names, partition_rule, summarize
    from ubpkt_cli.errors import input_error, report_problems
    from ubpkt.capture import CaptureError
    from ubpkt.profile import load_profile
    if profile is not None:
        try:
            load_profile(profile)
        except (OSError, ValueError, TypeError) as exc:
            raise click.BadParameter(f"cannot load profile {profile!r}: {exc}")
    spec = _cluster(cluster_spec, jobs)
    try:
        rule = partition_rule(partition_by, partition_map, name_pattern, captures)
        check_names(captures)
    except (ValueError, OSError) as exc:
        raise click.UsageError(str(exc))
    seg_bytes = _size(segment_size)
    units = []
    t0 = time.perf_counter()
    for c in captures:
        try:
            units += capture_units(c, out_dir, seg_bytes, payload=payload, row_group=row_group,
                                   rule=rule, link_type=link_type, profile=profile,
                                   analysis=analysis, writer=writer)
        except (CaptureError, OSError) as exc:
            raise input_error(c, exc)
    results = []
    try:
        if spec is not None:
            results = _on_cluster(spec, units)
        elif jobs > 1 and len(units) > 1:
            import multiprocessing as mp
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() \
                else mp.get_context()
            with ctx.Pool(min(jobs, len(units))) as pool:
                results = list(pool.imap(_work, units))
        else:
            results = [_work(u) for u in units]
    except (CaptureError, OSError) as exc:
        if getattr(exc, "filename", None) or isinstance(exc, CaptureError):
            raise input_error(getattr(exc, "filename", None) or "capture", exc)
        raise click.ClickException(f"cannot write the dataset: {exc}")
    elapsed = time.perf_counter() - t0
    result, damaged = summarize(results, out_dir, elapsed)
    for path, problems, count in damaged:
        report_problems(path, problems, count)
    total = result["rows"]
    if spec is not None:
        result["cluster"] = spec.describe()
    if report_file:
        with open(report_file, "w") as f:
            json.dump(result, f, indent=2)
    click.echo(json.dumps(result, indent=2))
    click.echo(f"ubpkt export: {total} rows in {result['files']} files, {elapsed:.2f} s",
               err=True)
    sys.stdout.flush()
    if damaged:
        from ubpkt_cli.errors import EXIT_INPUT
        raise click.exceptions.Exit(EXIT_INPUT)
