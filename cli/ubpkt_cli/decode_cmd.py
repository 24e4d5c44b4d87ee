"""`ubpkt decode` and `ubpkt stats`."""
from __future__ import annotations

import gc
import os
import sys

import click

from ubpkt.capture import CaptureError
from ubpkt.views.filter import FilterError, compile_filter
from ubpkt.views.output import (layer_fields, summary_line, time_text, to_fields_line,
                          to_json_bytes, to_json_line)
from ubpkt.profile import load_profile
from ubpkt.views.stats import CaptureStats
from ubpkt.capture.stream import LINK_TYPES, file_size, iter_records
from ubpkt_cli.errors import EXIT_INPUT, input_error, quiet_stdout, report_problems


def _profile(value):
    if value is None:
        return None
    try:
        return load_profile(value)
    except (OSError, ValueError, TypeError) as exc:
        raise click.BadParameter(f"cannot load profile {value!r}: {exc}")


class _Input:
    """The records of one capture, opened before anything is written (so an unusable file fails
    with nothing on stdout), with the problems of a damaged file reported on stderr at its end;
    ``damaged`` then tells the command to exit 2 (as tshark)."""

    def __init__(self, path, link_type, profile, quiet):
        self.path = path
        self.damaged = False
        self._it = self._records(path, link_type, profile, quiet)
        try:
            self._first = next(self._it, None)
        except (CaptureError, OSError) as exc:
            raise input_error(path, exc)

    def __iter__(self):
        first, self._first = self._first, None
        if first is not None:
            if first.get("frame") is None:
                self._damage(first)
                return
            yield first
        try:
            for rec in self._it:
                if rec.get("frame") is None:
                    self._damage(rec)
                    continue
                yield rec
        except (CaptureError, OSError) as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            raise input_error(self.path, exc)

    def _damage(self, rec) -> None:
        self.damaged = True
        report_problems(self.path, rec.get("problems", ()), rec.get("problem_count"))

    @staticmethod
    def _records(path, link_type, profile, quiet):
        """Records with a rich progress bar on stderr for long files."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

        size = file_size(path)
        err = Console(stderr=True)
        show = not quiet and err.is_terminal and size > (8 << 20)
        if not show:
            yield from iter_records(path, link_type, profile)
            return
        with Progress(TextColumn("[bold]decoding"), BarColumn(), TransferSpeedColumn(),
                      console=err, transient=True) as prog:
            task = prog.add_task("decode", total=size)
            yield from iter_records(path, link_type, profile,
                                    progress=lambda pos: prog.update(task, completed=pos))


def _records(path, link_type, profile, quiet):
    """The records of ``path`` (see :class:`_Input`)."""
    return _Input(path, link_type, profile, quiet)


def _quiet_broken_pipe() -> None:
    """The reader went away (| head): stop quietly, as other command-line tools do."""
    quiet_stdout()


def _rich_tree(console, rec) -> None:
    """The tree view for a terminal: rich's tree, issues coloured by severity."""
    from rich.markup import escape
    from rich.tree import Tree
    root = Tree(f"[bold]Frame {rec['frame']}[/]: {rec['len']} bytes, {rec['caplen']} captured, "
                f"t={time_text(rec.get('time'))}")
    for layer, title, items in layer_fields(rec):
        node = root.add(f"[cyan]{escape(title)}[/]")
        for k, v in items:
            if isinstance(v, str) and len(v) > 64:
                v = v[:64] + f"... ({len(v) // 2} bytes)"
            node.add(f"{k} = [green]{escape(str(v))}[/]")
    colour = {"error": "red", "warning": "yellow", "info": "blue"}
    for i in rec["issues"]:
        c = colour.get(i["severity"], "white")
        root.add(f"[{c}]{i['severity']}[/] {escape(i['layer'])}"
                 f"{' ' + escape(i['field']) if i['field'] else ''} @{i['offset']}: "
                 f"{escape(i['message'])}")
    console.print(root)


def _tree(out, rec):
    head = f"Frame {rec['frame']}: {rec['len']} bytes, {rec['caplen']} captured, " \
           f"t={time_text(rec.get('time'))}"
    lines = [head]
    for layer, title, items in layer_fields(rec):
        lines.append(f"  {title}")
        for k, v in items:
            if isinstance(v, str) and len(v) > 64:
                v = v[:64] + f"... ({len(v) // 2} bytes)"
            lines.append(f"    {k} = {v}")
    for i in rec["issues"]:
        lines.append(f"  [{i['severity']}] {i['layer']}"
                     f"{' ' + i['field'] if i['field'] else ''} @{i['offset']}: {i['message']}")
    out.write("\n".join(lines) + "\n\n")


def _ndjson_lines(path, link_type, profile, quiet, out, jobs=1) -> None:
    """ndjson of every frame (no filter, no count): chunks of lines come straight from the
    template fast path."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

    from ubpkt.capture.stream import DamagedCapture, iter_ndjson
    size = file_size(path)
    err = Console(stderr=True)
    show = not quiet and err.is_terminal and size > (8 << 20)
    prog = None
    try:
        if show:
            prog = Progress(TextColumn("[bold]decoding"), BarColumn(), TransferSpeedColumn(),
                            console=err, transient=True)
            prog.start()
            task = prog.add_task("decode", total=size)
            lines = iter_ndjson(path, link_type, profile,
                                progress=lambda pos: prog.update(task, completed=pos))
        else:
            lines = iter_ndjson(path, link_type, profile)
        write = out.write
        if jobs > 1 and link_type != "flits" and _plain_pcap(path):
            from ubpkt.capture.parallel import ndjson_chunks, write_ndjson
            from ubpkt.capture.stream import LINK_TYPES
            prog_fn = (lambda pos: prog.update(task, completed=pos)) if prog is not None \
                else None
            try:
                fd = out.fileno()
            except (AttributeError, OSError, ValueError):
                fd = None
            if fd is not None:
                out.flush()
                write_ndjson(path, fd, LINK_TYPES[link_type], profile, jobs, prog_fn)
            else:
                for chunk in ndjson_chunks(path, LINK_TYPES[link_type], profile, jobs, prog_fn):
                    write(chunk)
        else:
            for chunk in lines:
                write(chunk)
    except DamagedCapture as exc:
        if prog is not None:
            prog.stop()
            prog = None
        report_problems(path, exc.problems, exc.count)
        raise click.exceptions.Exit(EXIT_INPUT)
    except BrokenPipeError:
        _quiet_broken_pipe()
    except (CaptureError, OSError) as exc:
        if _output_failure(exc, out):
            raise
        raise input_error(path, exc)
    finally:
        if prog is not None:
            prog.stop()


def _output_failure(exc, out) -> bool:
    """Whether an OSError came from writing the output (a full disk), not reading the input:
    those are the group's to report (exit 1)."""
    import errno
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT,
                                                      errno.EFBIG, errno.EPIPE)


def _plain_pcap(path) -> bool:
    """A classic pcap of packets (not flits, not compressed, not standard input): the kind the
    parallel path can split."""
    if str(path) == "-":
        return False
    try:
        from ubpkt.capture.parallel import pcap_format
        fmt = pcap_format(path)
    except (CaptureError, OSError):
        return False
    return fmt is not None and fmt[2] != 149


def _jobs(value: int, path) -> int:
    """0 = one worker per core (at most 8); a file under 16 MiB always takes one process."""
    if value == 0:
        value = max(1, min(os.cpu_count() or 1, 8))
    if file_size(path) < (16 << 20) and value > 1:
        return value if _FORCE_SMALL_PARALLEL else 1
    return value


_FORCE_SMALL_PARALLEL = False  # tests flip this to exercise the parallel path on small files


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "-T", "fmt", default="summary", show_default=True,
              type=click.Choice(["tree", "summary", "json", "ndjson", "fields"]))
@click.option("-e", "--field", "fields", multiple=True, help="field for --format fields")
@click.option("-Y", "--filter", "filt", help="display filter, e.g. 'ub.lph.cfg == 6'")
@click.option("-c", "--count", type=click.IntRange(min=0), help="stop after N frames read")
@click.option("--link-type", default="auto", show_default=True,
              type=click.Choice(list(LINK_TYPES)))
@click.option("--profile", help="reference profile: spec, ns3 or a JSON file of overrides")
@click.option("-q", "--quiet", is_flag=True, help="no progress bar")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=1, show_default=True,
              help="worker processes for unfiltered ndjson on large pcaps (0: one per core)")
def decode(file, fmt, fields, filt, count, link_type, profile, quiet, jobs):
    """Decode a capture (pcap/pcapng, plain or gzip, FILE '-' for stdin; Ethernet/UBoE, Linux
    cooked SLL/SLL2, raw IP, raw UB 148, ns-3-UB 147, flits 149).  A damaged capture: every
    readable frame is decoded, the damage is reported on stderr, exit status 2."""
    prof = _profile(profile)
    try:
        pred = compile_filter(filt) if filt else None
    except FilterError as exc:
        raise click.BadParameter(str(exc), param_hint="-Y")
    if fmt == "fields" and not fields:
        raise click.BadParameter("--format fields needs at least one -e FIELD", param_hint="-e")
    if fields and fmt != "fields":
        fmt = "fields"
    out = sys.stdout
    write = out.write
    if fmt == "ndjson":
        out.flush()
        binary = out.buffer if hasattr(out, "buffer") else None
    n = 0
    # records hold no reference cycles: the cyclic collector only costs time here
    gc.disable()
    if fmt == "ndjson" and pred is None and count is None and binary is not None:
        _ndjson_lines(file, link_type, prof, quiet, binary, _jobs(jobs, file))
        return
    console = None
    if fmt == "tree" and out.isatty():
        from rich.console import Console
        console = Console()
    records = _records(file, link_type, prof, quiet)   # fails (exit 2) before any output
    if fmt == "json":
        write("[")
    first = True
    try:
        for rec in records:
            n += 1
            if count is not None and n > count:
                break
            if pred is not None and not pred(rec):
                continue
            if fmt == "ndjson":
                if binary is not None:
                    binary.write(to_json_bytes(rec))
                else:
                    write(to_json_line(rec) + "\n")
            elif fmt == "fields":
                write(to_fields_line(rec, list(fields)) + "\n")
            elif fmt == "summary":
                write(summary_line(rec) + "\n")
            elif fmt == "json":
                write(("" if first else ",") + "\n" + to_json_line(rec))
                first = False
            elif console is not None:
                _rich_tree(console, rec)
            else:
                _tree(out, rec)
    except BrokenPipeError:
        _quiet_broken_pipe()
        return
    if fmt == "json":
        write("\n]\n")
    if records.damaged:
        raise click.exceptions.Exit(EXIT_INPUT)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--link-type", default="auto", show_default=True,
              type=click.Choice(list(LINK_TYPES)))
@click.option("--profile", help="reference profile: spec, ns3 or a JSON file")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output on stdout")
def stats(file, link_type, profile, as_json):
    """Per-layer and per-opcode counts, issues by kind, PSN gaps per TP channel."""
    import json

    from rich.console import Console
    from rich.table import Table

    prof = _profile(profile)
    st = CaptureStats()
    records = _records(file, link_type, prof, quiet=False)
    for rec in records:
        st.add(rec)
    if as_json:
        click.echo(json.dumps(st.to_json(), indent=2))
        if records.damaged:
            raise click.exceptions.Exit(EXIT_INPUT)
        return
    frames, layers, opcodes, issues, channels = (st.frames, st.layers, st.opcodes, st.issues,
                                                 st.channels)
    con = Console()
    t = Table(title=f"{file}: {frames} frames, layers")
    t.add_column("layer")
    t.add_column("frames", justify="right")
    for k, v in sorted(layers.items(), key=lambda kv: -kv[1]):
        t.add_row(k, str(v))
    con.print(t)
    t = Table(title="opcodes")
    for c in ("header", "opcode", "count"):
        t.add_column(c, justify="right" if c == "count" else "left")
    for (h, o), c in sorted(opcodes.items()):
        t.add_row(h, o, str(c))
    con.print(t)
    t = Table(title="issues")
    for c in ("severity", "layer", "kind", "count"):
        t.add_column(c, justify="right" if c == "count" else "left")
    for (s, lay, k), c in sorted(issues.items()):
        t.add_row(s, lay, k, str(c))
    con.print(t)
    t = Table(title="TP channels (RTP data)")
    for c in ("src", "dst", "srctpn", "dsttpn", "packets", "psn gaps", "missing"):
        t.add_column(c)
    for k, v in channels.items():
        t.add_row(str(k[0]), str(k[1]), str(k[2]), str(k[3]), str(v["packets"]), str(v["gaps"]),
                  str(v["missing"]))
    con.print(t)
    if records.damaged:
        raise click.exceptions.Exit(EXIT_INPUT)
