"""`ubpkt decode` and `ubpkt stats`."""
from __future__ import annotations

import gc
import os
import sys

import click

from ubpkt.capture import CaptureError
from ubpkt.record import FLIT_LINKTYPES
from ubpkt.views.filter import FilterError, compile_filter
from ubpkt.views.output import (layer_fields, summary_line, time_text, to_fields_line,
                          to_json_bytes, to_json_line)
from ubpkt.profile import load_profile
from ubpkt.views.stats import CaptureStats
from ubpkt.capture.stream import LINK_TYPES, file_size, iter_records
from ubpkt_cli.errors import (EXIT_INPUT, input_error, quiet_stdout, report_problems,
                              stdout_console)
from ubpkt_cli.progress import progress_display


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

    def __init__(self, path, link_type, profile, quiet, **extra):
        self.path = path
        self.damaged = False
        self._it = self._records(path, link_type, profile, quiet, **extra)
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
    def _records(path, link_type, profile, quiet, **extra):
        """Records with the progress display on stderr for long files (``extra``:
        iter_records' exact_time / raw)."""
        with progress_display(path, quiet) as update:
            yield from iter_records(path, link_type, profile, progress=update, **extra)


def _records(path, link_type, profile, quiet, **extra):
        """Records with a rich progress bar on stderr for long files (``extra``:
        iter_records' exact_time / raw)."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

        size = file_size(path)
        err = Console(stderr=True)
        show = not quiet and err.is_terminal and size > (8 << 20)
        if not show:
            yield from iter_records(path, link_type, profile, **extra)
            return
        with Progress(TextColumn("[bold]decoding"), BarColumn(), TransferSpeedColumn(),
                      console=err, transient=True) as prog:
            task = prog.add_task("decode", total=size)
            yield from iter_records(path, link_type, profile,
                                    progress=lambda pos: prog.update(task, completed=pos),
                                    **extra)


def _records(path, link_type, profile, quiet, **extra):
    """The records of ``path`` (see :class:`_Input`)."""
    return _Input(path, link_type, profile, quiet, **extra)


def _quiet_broken_pipe() -> None:
    """The reader went away (| head): stop quietly, as other command-line tools do."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


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
    from ubpkt.capture.stream import iter_ndjson

    def chunks(update):
        if jobs > 1 and link_type != "flits" and _plain_pcap(path):
            from ubpkt.capture.parallel import ndjson_chunks, write_ndjson
            try:
                fd = out.fileno()
            except (AttributeError, OSError, ValueError):
                fd = None
            if fd is not None:
                out.flush()
                write_ndjson(path, fd, LINK_TYPES[link_type], profile, jobs, update)
                return
            yield from ndjson_chunks(path, LINK_TYPES[link_type], profile, jobs, update)
            return
        yield from iter_ndjson(path, link_type, profile, progress=update)

    _fast_lines(path, quiet, out, chunks)


def _summary_lines(path, link_type, profile, quiet, out, time_fmt) -> None:
    """The one-line summary of every frame (no filter, no count, no analysis): chunks of lines
    rendered by the templates' summary renderers, no record built
    (:func:`ubpkt.capture.stream.iter_summary`)."""
    from ubpkt.capture.stream import iter_summary
    _fast_lines(path, quiet, out,
                lambda update: iter_summary(path, link_type, profile, time_fmt, update))


def _fields_lines(path, link_type, profile, quiet, out, cols) -> None:
    """``-T fields`` of every frame (no filter, no count, no analysis): chunks of lines written
    by per-layout functions, no record built (:func:`ubpkt.capture.stream.iter_fields`)."""
    from ubpkt.capture.stream import DamagedCapture, iter_fields

    def chunks(update):
        lines = iter_fields(path, cols, link_type, profile, update)
        header = (cols.header() + "\n").encode() if cols.s["header"] else b""
        try:
            first = next(lines, b"")         # opened (or failed, exit 2) before the header
        except DamagedCapture:
            yield header                     # as the record path: the header, then the damage
            raise
        yield header + first
        yield from lines

    _fast_lines(path, quiet, out, chunks)


def _fast_lines(path, quiet, out, chunks) -> None:
    """Write the byte chunks ``chunks(progress_update)`` gives to the binary ``out``, with the
    progress display; a damaged capture is reported and exits 2, a vanished reader is quiet."""
    from ubpkt.capture.stream import DamagedCapture
    try:
        with progress_display(path, quiet) as update:
            write = out.write
            for chunk in chunks(update):
                write(chunk)
    except DamagedCapture as exc:
        out.flush()
        report_problems(path, exc.problems, exc.count)
        raise click.exceptions.Exit(EXIT_INPUT)
    except BrokenPipeError:
        _quiet_broken_pipe()
    except (CaptureError, OSError) as exc:
        if _output_failure(exc, out):
            raise
        raise input_error(path, exc)


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
    return fmt is not None and fmt[2] not in FLIT_LINKTYPES


def _jobs(value: int, path) -> int:
    """0 = one worker per core (at most 8); a file under 16 MiB always takes one process."""
    if value == 0:
        value = max(1, min(os.cpu_count() or 1, 8))
    if file_size(path) < (16 << 20) and value > 1:
        return value if _FORCE_SMALL_PARALLEL else 1
    return value


_FORCE_SMALL_PARALLEL = False  # tests flip this to exercise the parallel path on small files


def _write_report(path, data: dict) -> None:
    import json
    if path:
        with open(path, "w") as f:
            json.dump(data, f, indent=2)


class _FrameWriter:
    """``-w FILE``: the frames that pass ``-Y``, in the input's file format.  From a classic
    pcap, a classic pcap of its link type and time resolution (nanosecond magic when the input
    holds 9 digits); from a pcapng, a pcapng with the input's interfaces (link type, snap
    length, ``if_tsresol``), each frame on its own interface, so a capture of several link
    types is written whole (a classic pcap holds one link type)."""

    def __init__(self, path):
        self.path = path
        self.writer = None
        self.linktype = None
        self.ifaces: dict = {}      # (input index, Interface) -> output index
        self.count = 0

    def write(self, rec) -> None:
        raw, tns, lt = rec.get("_raw"), rec.get("_t"), rec.get("linktype")
        if raw is None:
            raise click.ClickException("-w: this input has no frames to write (a flit stream)")
        iface = rec.get("_iface")
        if iface is not None or self.ifaces:
            self._write_pcapng(rec, raw, tns, iface)
        else:
            self._write_pcap(rec, raw, tns, lt)
        self.count += 1

    def _write_pcap(self, rec, raw, tns, lt) -> None:
        from ubpkt.capture.pcap import PcapWriter
        if self.writer is None:
            self.linktype = lt
            self.writer = PcapWriter(self.path, lt, nanosecond=tns is None or tns[4] > 6)
        elif lt != self.linktype:
            raise click.ClickException(
                f"-w: frame {rec['frame']} has link type {lt}, the file being written "
                f"{self.linktype}; a classic pcap holds one link type")
        self.writer.write(raw, tns[0] if tns else 0, rec["len"])

    def _write_pcapng(self, rec, raw, tns, iface) -> None:
        from ubpkt.capture.pcap import Interface
        from ubpkt.capture.pcapng import PcapngWriter
        if iface is None:     # a pcapng input gives every frame one; keep its link type
            lt = rec.get("linktype") or 1
            iface = (0, [Interface(lt, 262144, 9, 10 ** 9)])
        idx, described = iface
        # every interface the input has described so far, in its order (so indices and the
        # interfaces' resolutions are the input's); a new section's interfaces are added
        section = self.ifaces.setdefault(id(described), {})
        if self.writer is None:
            self.writer = PcapngWriter(self.path, list(described))
            section.update((i, i) for i in range(len(described)))
        out = section.get(idx)
        if out is None:
            for i in range(len(section), idx + 1):
                if i not in section:
                    section[i] = self.writer.add_interface(described[i])
            out = section[idx]
        self.writer.write(raw, tns[0] if tns else 0, rec["len"], out)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _batched(out, batch: list, lines: int = 256):
    """A write function that hands ``out`` one string per ``lines`` pieces (``-l`` writes
    through instead); the caller writes what is left in ``batch`` at the end."""
    def write(text: str) -> None:
        batch.append(text)
        if len(batch) >= lines:
            out.write("".join(batch))
            batch.clear()
    return write


def _wants_analysis(two_pass, verbose, pred, names) -> bool:
    used = list(names) + list(getattr(pred, "fields", ()))
    return two_pass or verbose or any(n.startswith("ub.analysis") for n in used)


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("-r", "--read-file", "read_file", type=click.Path(dir_okay=False),
              help="the capture to read (as tshark's -r; same as FILE)")
@click.option("--format", "-T", "fmt", default="summary", show_default=True,
              type=click.Choice(["tree", "summary", "json", "ndjson", "fields", "text"]))
@click.option("-e", "--field", "fields", multiple=True, help="field for --format fields")
@click.option("-E", "field_opts", multiple=True,
              help="fields output: header=y|n, separator=/t|/s|C, quote=d|s|n, "
                   "occurrence=f|l|a, aggregator=C")
@click.option("-Y", "--filter", "filt", help="display filter, e.g. 'ub.lph.cfg == 6'")
@click.option("-c", "--count", type=click.IntRange(min=0), help="stop after N frames read")
@click.option("-V", "verbose", is_flag=True, help="packet tree with byte offsets")
@click.option("-x", "hexdump", is_flag=True, help="hex dump of each frame")
@click.option("-w", "write_file", type=click.Path(dir_okay=False),
              help="write the frames that pass -Y to this pcap")
@click.option("-P", "print_too", is_flag=True, help="with -w, still print the summary")
@click.option("-t", "time_fmt", default="r", show_default=True,
              type=click.Choice(["a", "ad", "u", "ud", "r", "d", "dd", "e"]),
              help="time format of the summary (tshark's)")
@click.option("-l", "line_flush", is_flag=True, help="flush stdout after each frame")
@click.option("-n", "no_resolve", is_flag=True, help="no name resolution (ubpkt never resolves)")
@click.option("-2", "two_pass", is_flag=True,
              help="two passes: link requests to later responses (ub.analysis.response_in)")
@click.option("--link-type", default="auto", show_default=True,
              type=click.Choice(list(LINK_TYPES)))
@click.option("--profile", help="reference profile: spec, ns3 or a JSON file of overrides")
@click.option("-q", "--quiet", is_flag=True, help="no progress bar")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=1, show_default=True,
              help="worker processes for unfiltered ndjson on large pcaps (0: one per core)")
@click.option("--report", "report_file", type=click.Path(dir_okay=False),
              help="write counts (frames read, shown, written) as JSON")
def decode(file, read_file, fmt, fields, field_opts, filt, count, verbose, hexdump, write_file,
           print_too, time_fmt, line_flush, no_resolve, two_pass, link_type, profile, quiet,
           jobs, report_file):
    """Decode a capture (pcap/pcapng, plain or gzip, FILE '-' for stdin; Ethernet/UBoE, Linux
    cooked SLL/SLL2, raw IP, raw UB 148, ns-3-UB 147, flits 151 (and 149, the old number)).
    A damaged capture: every readable frame is decoded, the damage is reported on stderr, exit status 2.

    Takes tshark's options: -r, -Y, -e/-E, -T, -V, -x, -w, -t, -l, -n, -2, -c."""
    from ubpkt.views.analysis import Analyzer, first_pass
    from ubpkt.views.columns import Columns, parse_E
    from ubpkt.views.timefmt import FrameClock, json_view, time_column
    from ubpkt.views.tree import hex_dump, layer_spans, tree_lines

    if file and read_file and file != read_file:
        raise click.UsageError("give the capture once: FILE or -r FILE")
    file = file or read_file
    if not file:
        raise click.UsageError("no capture: ubpkt decode FILE (or -r FILE)")
    prof = _profile(profile)
    try:
        pred = compile_filter(filt) if filt else None
    except FilterError as exc:
        raise click.BadParameter(str(exc), param_hint="-Y")
    if fmt == "fields" and not fields:
        raise click.BadParameter("--format fields needs at least one -e FIELD", param_hint="-e")
    if fields and fmt not in ("fields",):
        fmt = "fields"
    if fmt == "text":
        fmt = "summary"
    if verbose and fmt == "summary":
        fmt = "tree"
    cols = None
    if fmt == "fields":
        try:
            cols = Columns(fields, parse_E(field_opts))
        except FilterError as exc:
            raise click.BadParameter(str(exc), param_hint="-e/-E")
    out = sys.stdout
    batch: list = []
    write = out.write if line_flush else _batched(out, batch)
    binary = None
    if fmt in ("ndjson", "summary", "json", "fields", "tree"):
        out.flush()
        binary = out.buffer if hasattr(out, "buffer") else None
    gc.disable()     # records hold no reference cycles: the cyclic collector only costs time
    plain = (pred is None and count is None and not write_file and not two_pass
             and not hexdump and not line_flush)
    if fmt == "ndjson" and plain and binary is not None:
        _ndjson_lines(file, link_type, prof, quiet, binary, _jobs(jobs, file))
        _write_report(report_file, {"file": str(file), "format": fmt})
        return
    if fmt == "json" and plain and binary is not None:
        from ubpkt.capture.stream import iter_json
        _fast_lines(file, quiet, binary,
                    lambda update: iter_json(file, link_type, prof, progress=update))
        _write_report(report_file, {"file": str(file), "format": fmt})
        return
    if fmt == "summary" and plain and binary is not None and not verbose and \
            not _wants_analysis(two_pass, verbose, pred, fields):
        _summary_lines(file, link_type, prof, quiet, binary, time_fmt)
        _write_report(report_file, {"file": str(file), "format": fmt})
        return
    if fmt == "fields" and plain and binary is not None and \
            not _wants_analysis(two_pass, verbose, pred, fields):
        _fields_lines(file, link_type, prof, quiet, binary, cols)
        _write_report(report_file, {"file": str(file), "format": fmt})
        return
    if fmt == "tree" and plain and binary is not None and not (out.isatty() and not verbose):
        # the plain-text tree (a terminal without -V gets rich's tree from the records)
        from ubpkt.capture.stream import iter_tree
        analysis = _wants_analysis(two_pass, verbose, pred, fields)
        _fast_lines(file, quiet, binary,
                    lambda update: iter_tree(file, link_type, prof, time_fmt, analysis, update))
        _write_report(report_file, {"file": str(file), "format": fmt})
        return
    analysis = _wants_analysis(two_pass, verbose, pred, fields)
    linked = None
    if two_pass:
        if file == "-":
            raise click.UsageError("-2 reads the capture twice: it needs a file, not stdin")
        linked = first_pass(_records(file, link_type, prof, quiet, exact_time=True))
    analyzer = Analyzer(linked=linked) if analysis else None
    need_raw = bool(write_file or hexdump or fmt == "tree")
    clock = FrameClock()
    writer = _FrameWriter(write_file) if write_file else None
    show = writer is None or print_too
    console = None
    if fmt == "tree" and out.isatty() and not verbose and not hexdump:
        from rich.console import Console
        console = stdout_console()
    # opened before any output: an unusable file fails (exit 2) with nothing on stdout
    records = _records(file, link_type, prof, quiet, exact_time=True, raw=need_raw)
    n = shown = 0
    first = True
    try:
        if cols is not None and cols.s["header"] and show:
            write(cols.header() + "\n")
        for rec in records:
            n += 1
            if count is not None and n > count:
                break
            clock.stamp(rec)
            if analyzer is not None:
                analyzer.add(rec)
            if pred is not None and not pred(rec):
                continue
            clock.displayed(rec)
            shown += 1
            if writer is not None:
                writer.write(rec)
                if not show:
                    continue
            if fmt == "ndjson":
                if binary is not None:
                    binary.write(to_json_bytes(json_view(rec)))
                else:
                    write(to_json_line(json_view(rec)) + "\n")
            elif fmt == "fields":
                write(cols.line(rec) + "\n")
            elif fmt == "summary":
                write(summary_line(rec, time_column(rec, time_fmt)) + "\n")
            elif fmt == "json":
                write(("[" if first else ",") + "\n" + to_json_line(json_view(rec)))
                first = False
            elif console is not None:
                _rich_tree(console, rec)
            else:
                raw = rec.get("_raw")
                spans = layer_spans(raw, rec["linktype"], prof) if raw is not None and \
                    rec.get("linktype") is not None else None
                write("\n".join(tree_lines(rec, spans, "t=" + time_column(rec, time_fmt)))
                      + "\n")
            if hexdump and rec.get("_raw") is not None:
                write("\n".join(hex_dump(rec["_raw"])) + "\n\n")
            elif fmt == "tree" and console is None:
                write("\n")
            if line_flush:
                out.flush()
                if binary is not None:
                    binary.flush()
        if batch:
            out.write("".join(batch))
            batch.clear()
    except BrokenPipeError:
        _quiet_broken_pipe()
        return
    finally:
        if writer is not None:
            writer.close()
    if fmt == "json" and show:
        out.write(("[" if first else "") + "\n]\n")
    _write_report(report_file, {"file": str(file), "format": fmt, "frames_read": n,
                                "frames_shown": shown,
                                "frames_written": writer.count if writer else None,
                                "damaged": records.damaged})
    if records.damaged:
        raise click.exceptions.Exit(EXIT_INPUT)
