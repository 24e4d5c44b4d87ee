"""`ubpkt stats` (counts, top TP channels, and tshark -z style tables) and `ubpkt follow`."""
from __future__ import annotations

import json
import sys

import click

from ubpkt_cli.errors import stdout_console

from ubpkt.capture.stream import LINK_TYPES

STAT_KINDS = ("summary", "conv", "endpoints", "io", "srt", "expert")


class _Records:
    """The capture's records with their frame clock, opened at once (an unusable file fails,
    exit 2, before any output); ``damaged`` after the loop: the command exits 2 (as tshark)."""

    def __init__(self, file, link_type, profile, exact=True):
        from ubpkt_cli.decode_cmd import _profile, _records as recs
        self._inp = recs(file, link_type, _profile(profile), quiet=False, exact_time=exact)

    def __iter__(self):
        from ubpkt.views.timefmt import FrameClock
        clock = FrameClock()
        for rec in self._inp:
            clock.stamp(rec)
            yield rec

    @property
    def damaged(self) -> bool:
        return self._inp.damaged


def _exit_if_damaged(records) -> None:
    if records.damaged:
        from ubpkt_cli.errors import EXIT_INPUT
        raise click.exceptions.Exit(EXIT_INPUT)


def _interval_ns(text: str) -> int:
    from decimal import Decimal, InvalidOperation
    units = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
    for u in ("ns", "us", "ms", "s"):
        if text.endswith(u):
            num, scale = text[:-len(u)], units[u]
            break
    else:
        num, scale = text, 1_000_000_000
    try:
        v = int(Decimal(num) * scale)
    except InvalidOperation:
        v = 0
    if v <= 0:
        raise click.BadParameter(f"{text!r}: a positive time such as 1ms, 100us, 0.5s",
                                 param_hint="--interval")
    return v


def _print_table(title, columns, rows, total=None) -> None:
    from rich.console import Console
    from rich.table import Table
    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(x) for x in r])
    if total is not None:
        t.add_row(*[f"[bold]{x}[/]" for x in total])
    stdout_console().print(t)


@click.command()
@click.argument("args", nargs=-1, required=True)
@click.option("--link-type", default="auto", show_default=True,
              type=click.Choice(list(LINK_TYPES)))
@click.option("--profile", help="reference profile: spec, ns3 or a JSON file")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output on stdout")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="rows of the largest TP channels / conversations / endpoints")
@click.option("--all", "show_all", is_flag=True, help="every row (the full table)")
@click.option("--interval", default="1ms", show_default=True, help="stats io: bucket width")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="stats io: also draw the I/O graph to this PNG (needs matplotlib)")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="write the JSON result to this file as well")
def stats(args, link_type, profile, as_json, top, show_all, interval, plot, report_file):
    """Statistics of a capture: `stats FILE` (layers, opcodes, issues, top TP channels) or
    `stats conv|endpoints|io|srt|expert FILE` (tshark's -z tables)."""
    from ubpkt.views.stats import CaptureStats, ConvStats, ExpertStats, IoStats, SrtStats
    if len(args) == 1:
        kind, file = "summary", args[0]
    elif len(args) == 2 and args[0] in STAT_KINDS:
        kind, file = args
    else:
        raise click.UsageError(f"usage: stats [{'|'.join(STAT_KINDS[1:])}] FILE")
    limit = None if show_all else top
    import gc
    gc.disable()     # the counters hold no reference cycles: the cyclic collector only costs time
    if kind == "summary":
        st = CaptureStats()
    elif kind in ("conv", "endpoints"):
        st = ConvStats(endpoints=kind == "endpoints")
    elif kind == "io":
        st = IoStats(_interval_ns(interval))
    elif kind == "srt":
        st = SrtStats()
    else:
        st = ExpertStats()
    # the first line goes out at once: a reader that wants only it (| head -1) is served
    # and gone while the capture is read, and the loop stops then (see _feed)
    first = "{" if as_json else f"ubpkt stats {kind}: {file}"
    damaged = _feed(st, kind, file, link_type, profile, lambda: _early_line(first))
    result = st.to_json(limit)
    if report_file:
        with open(report_file, "w") as f:
            json.dump(result, f, indent=2)
    if plot:
        if kind != "io":
            raise click.UsageError("--plot draws the I/O graph of `stats io`")
        try:
            st.plot(plot)
        except ImportError:
            click.echo("warning: matplotlib is not installed: no plot", err=True)
    if as_json:
        click.echo(json.dumps(result, indent=2)[1:].lstrip("\n"))
    else:
        for title, columns, rows, total in st.tables(limit, file):
            _print_table(title, columns, rows, total)
    if damaged:
        from ubpkt_cli.errors import EXIT_INPUT
        raise click.exceptions.Exit(EXIT_INPUT)


def _early_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _feed(st, kind, file, link_type, profile, started) -> bool:
    """Read the capture into ``st``; True when it is damaged (reported on stderr).  Every
    kind takes the fast path (``iter_parts``: the templates pick the fields stats reads, no
    record is built; each class's ``add_parts`` counts what its ``add`` counts of the record);
    the tables need the whole capture, so nothing but the first line is printed before the
    end, and when the reader of stdout goes away meanwhile (``| head -1``) reading stops
    (BrokenPipeError: exit 0)."""
    from ubpkt_cli.errors import reader_gone
    from ubpkt.capture import CaptureError
    from ubpkt.capture.stream import DamagedCapture, iter_parts
    from ubpkt_cli.decode_cmd import _profile
    from ubpkt_cli.errors import input_error, report_problems
    from ubpkt_cli.progress import progress_display
    prof = _profile(profile)
    try:
        with progress_display(file, False, "reading") as update:
            chunks = iter_parts(file, link_type, prof, update)
            first = next(chunks, None)           # opened (or failed, exit 2) before any output
            started()
            add = st.add_parts
            for source in ([first] if first is not None else []), chunks:
                for chunk in source:
                    for item in chunk:
                        add(*item)
                    if reader_gone():
                        raise BrokenPipeError
    except DamagedCapture as exc:
        report_problems(file, exc.problems, exc.count)
        return True
    except (CaptureError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        raise input_error(file, exc)
    return False


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--channel", help="a TP channel: SRC,DST,SRCTPN,DSTTPN (either direction)")
@click.option("--tassn", type=int, help="a transaction: its initiator TASSN")
@click.option("--link-type", default="auto", show_default=True,
              type=click.Choice(list(LINK_TYPES)))
@click.option("--profile", help="reference profile: spec, ns3 or a JSON file")
@click.option("--report", "report_file", type=click.Path(dir_okay=False))
def follow(file, channel, tassn, link_type, profile, report_file):
    """Follow one TP channel (both directions) or one transaction: its frames in order, with
    PSN and transaction analysis, as ndjson-free one-liners (tshark -z follow)."""
    from ubpkt.views.analysis import Analyzer
    from ubpkt.views.columns import _text
    from ubpkt.views.follow import FollowFilter
    from ubpkt.views.output import summary_line
    from ubpkt.views.timefmt import time_column
    if (channel is None) == (tassn is None):
        raise click.UsageError("give one of --channel SRC,DST,SRCTPN,DSTTPN or --tassn N")
    try:
        flt = FollowFilter.parse(channel, tassn)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--channel")
    an = Analyzer()
    n = 0
    out = sys.stdout
    records = _Records(file, link_type, profile)
    for rec in records:
        got = an.add(rec)
        if not flt(rec):
            continue
        n += 1
        extra = " ".join(f"{k.split('.')[-1]}={_text(v)}" for k, v in got.items()
                         if not k.endswith("_ns"))
        out.write(summary_line(rec, time_column(rec, "r")) + (" " + extra if extra else "")
                  + "\n")
    click.echo(f"{n} frames followed", err=True)
    if report_file:
        with open(report_file, "w") as f:
            json.dump({"file": str(file), "frames": n}, f)
    _exit_if_damaged(records)
