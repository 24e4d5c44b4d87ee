"""`ubpkt query`: SQL over an exported dataset on embedded DuckDB (ubpkt.analytics.query;
docs/analytics.md, "Queries")."""
from __future__ import annotations

import json
import sys

import click

FORMATS = ("table", "tsv", "csv", "json")


class BadQuery(click.ClickException):
    """The SQL cannot run (syntax, unknown table or column, types): one line, exit 2."""
    exit_code = 2


def _print_views(fmt: str) -> None:
    from ubpkt.analytics.query import VIEWS
    if fmt == "json":
        click.echo(json.dumps([{"view": v.name, "answers": v.answers} for v in VIEWS.values()],
                              indent=2))
        return
    for v in VIEWS.values():
        click.echo(f"{v.name}\t{v.answers}")


def _table(columns, rows, title) -> None:
    from rich.table import Table
    from ubpkt.analytics.result import numeric_columns, text_value
    from ubpkt_cli.errors import stdout_console
    nums = set(numeric_columns(columns, rows))
    t = Table(title=title)
    for c in columns:
        t.add_column(c, justify="right" if c in nums else "left")
    for r in rows:
        t.add_row(*[text_value(v) for v in r])
    stdout_console().print(t)


@click.command()
@click.argument("dataset", required=False, type=click.Path())
@click.argument("sql", required=False)
@click.option("--view", "view_name", help="every row of a ready-made view (see --list-views)")
@click.option("--list-views", is_flag=True, help="the ready-made views and what they answer")
@click.option("--show-sql", "show_sql", metavar="VIEW",
              help="print the SQL that creates a view and the views it reads (DuckDB and Spark SQL "
                   "run it as it is) and exit")
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS + ("auto",)), default="auto",
              show_default=True,
              help="auto: a table on a terminal, tab-separated text in a pipe")
@click.option("--interval", default="1ms", show_default=True,
              help="bucket width of the io view")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="also draw the result to this PNG (needs matplotlib)")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="write the result (JSON) to this file as well")
def query(dataset, sql, view_name, list_views, show_sql, fmt, interval, plot, report_file):
    """SQL on an exported dataset (a directory of Parquet files or one file), which is the
    table `frames`, with the views of `--list-views` (PSN analysis, latency, conversations,
    I/O: what `ubpkt stats` computes)."""
    from ubpkt_cli.stats_cmd import _interval_ns
    interval_ns = _interval_ns(interval)
    if list_views:
        _print_views("json" if fmt == "json" else "text")
        return
    from ubpkt.analytics import MissingDependency, require
    from ubpkt.analytics.query import VIEWS, view_query, view_script
    if show_sql:
        if show_sql not in VIEWS:
            raise click.BadParameter(f"no view {show_sql!r}: one of {', '.join(VIEWS)}",
                                     param_hint="--show-sql")
        click.echo(view_script(show_sql, interval_ns), nl=False)
        return
    if dataset is None:
        raise click.UsageError("give a DATASET and an SQL query (or --view NAME)")
    if view_name is not None:
        if sql is not None:
            raise click.UsageError("give either an SQL query or --view, not both")
        if view_name not in VIEWS:
            raise click.BadParameter(f"no view {view_name!r}: one of {', '.join(VIEWS)}",
                                     param_hint="--view")
        sql = view_query(view_name)
    elif sql is None:
        raise click.UsageError("give an SQL query after the dataset (or --view NAME)")
    try:
        require("duckdb", "ubpkt query")
    except MissingDependency as exc:
        raise click.ClickException(str(exc))
    from ubpkt.analytics.query import QueryError, connect, run_query
    from ubpkt_cli.errors import InputError
    try:
        con = connect(dataset, interval_ns)
        columns, rows, seconds = run_query(con, sql)
    except QueryError as exc:
        if exc.kind == "query":
            raise BadQuery(f"bad query: {exc}")
        if exc.kind == "input":
            raise InputError(str(exc))
        raise click.ClickException(str(exc))
    if fmt == "auto":
        fmt = "table" if sys.stdout.isatty() else "tsv"
    from ubpkt.analytics import result as res
    if fmt == "json":
        res.write_json(sys.stdout, columns, rows)
    elif fmt == "csv":
        res.write_csv(sys.stdout, columns, rows)
    elif fmt == "tsv":
        res.write_tsv(sys.stdout, columns, rows)
    else:
        _table(columns, rows, view_name or None)
    sys.stdout.flush()
    click.echo(f"ubpkt query: {len(rows)} rows in {seconds * 1000:.1f} ms", err=True)
    if report_file:
        with open(report_file, "w") as f:
            json.dump({"dataset": str(dataset), "sql": sql, "columns": columns,
                       "row_count": len(rows), "seconds": round(seconds, 6),
                       "rows": res.rows_json(columns, rows)}, f, indent=2)
    if plot:
        view = VIEWS.get(view_name) if view_name else None
        try:
            what = res.plot_result(plot, columns, rows, view,
                                   series="capture" if view is not None else None)
        except ImportError:
            raise click.ClickException("ubpkt query --plot needs matplotlib: "
                                       "pip install 'ubpkt[plot]'")
        except ValueError as exc:
            raise click.UsageError(str(exc))
        click.echo(f"ubpkt query: {plot}: {what}", err=True)
