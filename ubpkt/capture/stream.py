"""Streaming decode of whole capture files (constant memory): one record per frame."""
from __future__ import annotations

import os
from typing import Iterator

from .pcap import _MAX_RECORD, open_capture, pcap_record_problem, pcap_refill
from ..dissect import decode
from ..record import (FLIT_LINKTYPES, LINKTYPE_ETHERNET, LINKTYPE_FLITS, LINKTYPE_IPV4,
                      LINKTYPE_IPV6, LINKTYPE_NS3, LINKTYPE_RAW, LINKTYPE_SLL, LINKTYPE_SLL2, LINKTYPE_UB,
                      LINKTYPE_UBL,
                      make_record)
from ..dissect.fastpath import TemplateCache
from ..profile import Profile, profile_for

LINK_TYPES = {"auto": None, "eth": LINKTYPE_ETHERNET, "ub": LINKTYPE_UB, "ns3": LINKTYPE_NS3,
              "flits": LINKTYPE_FLITS, "sll": LINKTYPE_SLL, "sll2": LINKTYPE_SLL2,
              "raw": LINKTYPE_RAW, "ipv4": LINKTYPE_IPV4, "ipv6": LINKTYPE_IPV6,
              "ubl": LINKTYPE_UBL}


def iter_records(path, link_type: str = "auto", profile: Profile | None = None,
                 progress=None, fast: bool = True, exact_time: bool = False,
                 raw: bool = False) -> Iterator[dict]:
    """Decode every frame of a pcap/pcapng file.  ``link_type`` forces a link type; ``progress``
    is called with the number of bytes read so far and of frames (for progress bars); ``fast`` uses the
    template fast path (:mod:`ubpkt.dissect.fastpath`), which gives the same records;
    ``exact_time`` adds ``rec["_tns"] = (time_ns, digits)`` (``ubpkt.views.timefmt``), ``raw``
    the frame's bytes as ``rec["_raw"]`` (for -x, -V offsets and -w) and, from a pcapng,
    ``rec["_iface"] = (interface index, the section's interfaces so far)`` (for -w).  A damaged file ends
    with one ``{"frame": None, "truncated": bool, "problems": [...]}``
    (:class:`ubpkt.capture.pcap.CaptureProblem`) after every record that could be read."""
    forced = LINK_TYPES[link_type]
    if forced == LINKTYPE_FLITS:
        yield from _flits(path, profile)
        return
    caches: dict = {}
    with open_capture(path) as cap:
        if forced is None and cap.linktype in FLIT_LINKTYPES:
            cap.close()
            yield from _flits(path, profile)
            return
        for n, pkt in enumerate(cap, 1):
            lt = forced if forced is not None else pkt.linktype
            prof = profile_for(lt, profile)
            if fast:
                cache = caches.get(id(prof))
                if cache is None:
                    cache = caches[id(prof)] = TemplateCache(prof)
                layers, fields, issues = cache.decode(pkt.data, lt)
                data = pkt.data
                rec = make_record(n, pkt.time_ns / 1e9, pkt.orig_len, len(data), lt, layers,
                                  fields, issues)
            else:
                rec = decode(pkt.data, lt, prof, frame=n, time=pkt.time_ns / 1e9,
                             orig_len=pkt.orig_len)
            if exact_time:
                rec["_tns"] = (pkt.time_ns, time_digits(cap))
            if raw:
                rec["_raw"] = pkt.data
                if cap.format == "pcapng" and pkt.iface < len(cap.interfaces):
                    rec["_iface"] = (pkt.iface, cap.interfaces)
            yield rec
            if progress is not None and n % 2048 == 0:
                progress(cap.tell(), n)
        if cap.problem_count:
            yield {"frame": None, "truncated": cap.truncated, "problems": list(cap.problems),
                   "problem_count": cap.problem_count}


def time_digits(cap) -> int:
    """Fraction digits the capture's timestamps hold: 9 for nanosecond pcap, 6 for microsecond,
    pcapng from the finest if_tsresol of its interfaces (ns per tick)."""
    # the finest time unit of the capture's interfaces (units per second); a pcap has one
    finest = max((i.units_per_second for i in cap.interfaces), default=10 ** 6)
    digits = 0
    while digits < 9 and 10 ** digits < finest:
        digits += 1
    return digits


def iter_ndjson(path, link_type: str = "auto", profile: Profile | None = None,
                progress=None) -> Iterator[bytes]:
    """The ndjson output of every frame (the same bytes as rendering :func:`iter_records`
    with their exact time, ``ubpkt.views.timefmt.json_view``), in chunks of whole lines, written straight from the templates where a frame fits one."""
    forced = LINK_TYPES[link_type]
    if forced == LINKTYPE_FLITS:
        yield from _flit_lines(path, profile)
        return
    with open_capture(path) as cap:
        if forced is None and cap.linktype in FLIT_LINKTYPES:
            cap.close()
            yield from _flit_lines(path, profile)
            return
        if cap.format == "pcap":
            lt = forced if forced is not None else cap.linktype
            prof = profile_for(lt, profile)
            cache = TemplateCache(prof)
            cache.digits = time_digits(cap)
            yield from _pcap_ndjson(cap, lt, cache, progress)
            if cap.problem_count:
                raise DamagedCapture(cap.problems, cap.problem_count)
            return
        def line(cache, buf, lt, n, tns, orig, digits):
            cache.digits = digits
            return cache.ndjson(buf, lt, n, tns, orig)

        yield from _mixed_loop(cap, forced, lambda lt: TemplateCache(profile_for(lt, profile)),
                               line, b"".join, NDJSON_CHUNK_LINES, progress)


def iter_json(path, link_type: str = "auto", profile: Profile | None = None,
              progress=None) -> Iterator[bytes]:
    """``decode -T json`` output (a JSON array of the ndjson records, one per line, ``,``
    between them) from the ndjson fast path: each chunk of :func:`iter_ndjson` re-joined."""
    first = True
    try:
        for chunk in iter_ndjson(path, link_type, profile, progress):
            if not chunk:
                continue
            body = chunk[:-1].replace(b"\n", b",\n")
            yield (b"[\n" if first else b",\n") + body
            first = False
    except DamagedCapture:      # the array is closed before the damage is reported
        yield b"\n]\n" if not first else b"[\n]\n"
        raise
    yield b"\n]\n" if not first else b"[\n]\n"


def iter_summary(path, link_type: str = "auto", profile: Profile | None = None,
                 time_fmt: str = "r", progress=None) -> Iterator[bytes]:
    """The one-line summaries of every frame (the same text as :func:`summary_line` of the
    records :func:`iter_records` gives, with ``-t time_fmt``), in chunks of whole UTF-8 lines,
    rendered straight from the templates' summary renderers where a frame fits one (no record
    is built).  A damaged file raises :class:`DamagedCapture` after its last readable frame."""
    from ..views.output import summary_line
    from ..views.timefmt import TimeColumn, time_column
    forced = LINK_TYPES[link_type]

    def flit_lines():
        for rec in _flits(path, profile):
            yield (summary_line(rec, time_column(rec, time_fmt)) + "\n").encode()

    if forced == LINKTYPE_FLITS:
        yield from flit_lines()
        return
    clock = TimeColumn(time_fmt)
    with open_capture(path) as cap:
        if forced is None and cap.linktype in FLIT_LINKTYPES:
            cap.close()
            yield from flit_lines()
            return

        def join(lines):
            lines.append("")
            return "\n".join(lines).encode()

        if cap.format == "pcap":
            lt = forced if forced is not None else cap.linktype
            prof = profile_for(lt, profile)
            summary = TemplateCache(prof).summary
            digits = time_digits(cap)

            def render(buf, lt, n, tns, orig):
                return summary(buf, lt, n, clock(tns, digits), orig)

            yield from _pcap_loop(cap, lt, render, join, progress)
            if cap.problem_count:
                raise DamagedCapture(cap.problems, cap.problem_count)
            return
        def line(cache, buf, lt, n, tns, orig, digits):
            return cache.summary(buf, lt, n, clock(tns, digits), orig)

        yield from _mixed_loop(cap, forced, lambda lt: TemplateCache(profile_for(lt, profile)),
                               line, join, 2048, progress)


def iter_fields(path, cols, link_type: str = "auto", profile: Profile | None = None,
                progress=None) -> Iterator[bytes]:
    """``decode -T fields`` lines (``cols``: a :class:`ubpkt.views.columns.Columns`) of every
    frame, no display filter: the same text as ``cols.line`` of the records
    :func:`iter_records` gives with their frame clock, in chunks of whole UTF-8 lines, written
    by per-layout functions (:class:`ubpkt.views.columns_fast.ColumnsRenderer`) where a frame
    fits a template.  A damaged file raises :class:`DamagedCapture` after its last readable
    frame."""
    from ..views.columns_fast import ColumnsRenderer
    from ..views.timefmt import FrameClock
    forced = LINK_TYPES[link_type]
    line = cols.line

    def join(lines):
        lines.append("")
        return "\n".join(lines).encode()

    def flit_lines():
        clock = FrameClock()
        for rec in _flits(path, profile):
            clock.stamp(rec)
            yield (line(rec) + "\n").encode()

    if forced == LINKTYPE_FLITS:
        yield from flit_lines()
        return
    renderer = ColumnsRenderer(cols)
    compiled = renderer.compiled
    clocked = renderer.needs_clock
    clock = [None, None]          # first and previous frame time (every frame is displayed)

    def render(cache, buf, lt, n, tns, orig, digits):
        T = None
        if clocked:
            first, prev = clock
            if first is None:
                first = prev = clock[0] = tns
            T = (tns, tns - first, tns - prev, tns - prev, digits)
            clock[1] = tns
        out = cache.view(buf, lt, compiled, n, orig, lt, tns, T)
        if out.__class__ is str:
            return out
        rec = make_record(n, tns / 1e9, orig, len(buf), lt, *out)
        if T is not None:
            rec["_t"] = T
        return line(rec)

    with open_capture(path) as cap:
        if forced is None and cap.linktype in FLIT_LINKTYPES:
            cap.close()
            yield from flit_lines()
            return
        if cap.format == "pcap":
            lt = forced if forced is not None else cap.linktype
            cache = TemplateCache(profile_for(lt, profile))
            digits = time_digits(cap)

            def one(buf, lt, n, tns, orig):
                return render(cache, buf, lt, n, tns, orig, digits)

            yield from _pcap_loop(cap, lt, one, join, progress)
            if cap.problem_count:
                raise DamagedCapture(cap.problems, cap.problem_count)
            return
        yield from _mixed_loop(cap, forced, lambda lt: TemplateCache(profile_for(lt, profile)),
                               render, join, 2048, progress)


def iter_tree(path, link_type: str = "auto", profile: Profile | None = None,
              time_fmt: str = "r", analysis: bool = True, progress=None) -> Iterator[bytes]:
    """``decode -V`` text of every frame, no display filter: the same text as the record path
    (:func:`ubpkt.views.tree.tree_lines` with the layers' offsets, a blank line after each
    frame, the ``[UB analysis]`` block when ``analysis``), in chunks of whole UTF-8 frames,
    written by per-layout functions (:class:`ubpkt.views.tree_fast.TreeRenderer`) where a
    frame fits a template.  A damaged file raises :class:`DamagedCapture` after its last
    readable frame."""
    from ..views.analysis import Analyzer
    from ..views.timefmt import TimeColumn
    from ..views.tree_fast import TreeRenderer
    forced = LINK_TYPES[link_type]
    analyzer = Analyzer() if analysis else None
    clock = TimeColumn(time_fmt).function()

    def join(texts):
        return "".join(texts).encode()

    def flit_text():
        from ..views.timefmt import time_column
        from ..views.tree import tree_lines
        for rec in _flits(path, profile):
            if analyzer is not None:
                analyzer.add(rec)
            yield ("\n".join(tree_lines(rec, None, "t=" + time_column(rec, time_fmt)))
                   + "\n\n").encode()

    if forced == LINKTYPE_FLITS:
        yield from flit_text()
        return

    def render(cache, tree, buf, lt, n, tns, orig, digits):
        tcol = clock(tns, digits)
        out = cache.view(buf, lt, tree.compiled, n, orig, tcol, tns)
        if out.__class__ is str:
            return out
        return tree.record_text(make_record(n, tns / 1e9, orig, len(buf), lt, *out), buf, tcol,
                                tns, cache.traced)

    with open_capture(path) as cap:
        if forced is None and cap.linktype in FLIT_LINKTYPES:
            cap.close()
            yield from flit_text()
            return
        if cap.format == "pcap":
            lt = forced if forced is not None else cap.linktype
            prof = profile_for(lt, profile)
            tree = TreeRenderer(lt, prof, analyzer)
            one = tree.frames(TemplateCache(prof), clock, time_digits(cap))
            yield from _pcap_loop(cap, lt, one, join, progress, TREE_CHUNK_FRAMES)
            if cap.problem_count:
                raise DamagedCapture(cap.problems, cap.problem_count)
            return
        def make(lt):
            prof = profile_for(lt, profile)
            cache, tree = TemplateCache(prof), TreeRenderer(lt, prof, analyzer)
            tree.trace(cache)
            return cache, tree

        def render_pair(got, buf, lt, n, tns, orig, digits):
            return render(got[0], got[1], buf, lt, n, tns, orig, digits)

        yield from _mixed_loop(cap, forced, make, render_pair, join, TREE_CHUNK_FRAMES,
                               progress)


def iter_parts(path, link_type: str = "auto", profile: Profile | None = None,
               progress=None) -> Iterator[list]:
    """What ``ubpkt stats`` counts, per frame, in lists (one per read buffer) of
    ``(frame, time_ns, template, fields, orig_len)`` for the ``add_parts`` of the classes of
    :mod:`ubpkt.views.stats`: the templates extract only the fields stats reads
    (``TemplateCache.pick``), no record is built.  A flit stream gives its records as
    ``(frame, time ns or None, None, (layers, fields, issues), len)``, the time as the record
    path reads it from the record.  A damaged file raises :class:`DamagedCapture` after its
    last readable frame."""
    forced = LINK_TYPES[link_type]

    def flit_parts():
        for rec in _flits(path, profile):
            t = rec.get("time")
            yield [(rec["frame"], None if t is None else round(t * 1e9), None,
                    (rec["layers"], rec["fields"], rec["issues"]), rec["len"])]

    if forced == LINKTYPE_FLITS:
        yield from flit_parts()
        return
    with open_capture(path) as cap:
        if forced is None and cap.linktype in FLIT_LINKTYPES:
            cap.close()
            yield from flit_parts()
            return
        if cap.format == "pcap":
            lt = forced if forced is not None else cap.linktype
            prof = profile_for(lt, profile)
            pick = TemplateCache(prof).pick

            def render(buf, lt, n, tns, orig):
                return (n, tns, *pick(buf, lt), orig)

            yield from _pcap_loop(cap, lt, render, list, progress)
            if cap.problem_count:
                raise DamagedCapture(cap.problems, cap.problem_count)
            return
        def part(cache, buf, lt, n, tns, orig, _digits):
            return (n, tns, *cache.pick(buf, lt), orig)

        yield from _mixed_loop(cap, forced, lambda lt: TemplateCache(profile_for(lt, profile)),
                               part, list, 2048, progress)


#: ndjson lines per output chunk: a line is 1-2 KB, so a chunk stays near 1 MB whatever the
#: read buffer holds (a 4 MiB buffer of small frames renders to ~45 MB of ndjson; held as
#: lines and once more joined it set the peak RSS, ~200 MB, issue 14).
NDJSON_CHUNK_LINES = 512

#: ``-V`` frames per output chunk (a frame's tree is 2-3 KB): one str join and one encode per
#: chunk of about 0.5-1 MB.  Joining a whole 4 MiB read buffer's trees (~25 MB of text, then
#: ~25 MB more encoded) cost 1.5 us a frame in fresh memory; a chunk this size 0.2 us.
TREE_CHUNK_FRAMES = 256


def _mixed_loop(cap, forced, make, render, join, chunk: int, progress) -> Iterator:
    """The frames of a capture whose link type may change from frame to frame (pcapng with
    several interfaces): ``make(linktype)`` builds the per-link-type state once,
    ``render(state, buf, lt, n, time_ns, orig_len, digits)`` one frame's output, ``join`` a
    chunk of ``chunk`` frames; the time digits follow the interfaces as they appear (as
    :func:`iter_records` does).  Raises :class:`DamagedCapture` after the last readable frame."""
    states: dict = {}
    out = []
    known = digits = None
    for n, pkt in enumerate(cap, 1):
        lt = forced if forced is not None else pkt.linktype
        state = states.get(lt)
        if state is None:
            state = states[lt] = make(lt)
        if known != len(cap.interfaces):
            known, digits = len(cap.interfaces), time_digits(cap)
        out.append(render(state, pkt.data, lt, n, pkt.time_ns, pkt.orig_len, digits))
        if n % chunk == 0:
            yield join(out)
            out = []
            if progress is not None:
                progress(cap.tell(), n)
    if out:
        yield join(out)
    if cap.problem_count:
        raise DamagedCapture(cap.problems, cap.problem_count)


def _pcap_ndjson(cap, lt: int, cache, progress) -> Iterator[bytes]:
    """The ndjson lines of a classic pcap, straight from the template cache, in chunks of at
    most :data:`NDJSON_CHUNK_LINES` lines."""
    return _pcap_loop(cap, lt, cache.ndjson, b"".join, progress, NDJSON_CHUNK_LINES)


def _pcap_loop(cap, lt: int, render, join, progress, chunk: int = 0) -> Iterator:
    """The hot loop for classic pcap: records are cut straight from the read buffer, each
    given to ``render(frame bytes, linktype, frame number, time ns, original length)``, and
    ``join`` makes one chunk of each buffer's results (or of every ``chunk`` results, when
    given, so the output in hand stays small).  Record headers are checked as
    :meth:`ubpkt.capture.pcap.Capture._pcap` does (same problems)."""
    import struct
    unpack = struct.Struct(cap._endian + "IIII").unpack_from
    nano = cap._nano
    scale = 1 if nano else 1000
    fraclim = 1_000_000_000 if nano else 1_000_000
    src = cap._src
    fh = src.fh
    buf, pos, base = src.buf, src.pos, src.base
    n = 0
    need = 16
    while True:
        end = len(buf)
        out = []
        while pos + 16 <= end:
            sec, frac, incl, orig = unpack(buf, pos)
            if incl > _MAX_RECORD or frac >= fraclim:
                msg, fatal = pcap_record_problem(incl, frac, nano)
                cap.problem("record", n + 1, base + pos, msg, fatal)
                if fatal:
                    if out:
                        yield join(out)
                    return
            stop = pos + 16 + incl
            if stop > end:
                need = 16 + incl
                break
            n += 1
            out.append(render(buf[pos + 16:stop], lt, n, sec * 1_000_000_000 + frac * scale,
                              orig))
            pos = stop
            if len(out) == chunk:
                yield join(out)
                out = []
        if out:
            yield join(out)
            if progress is not None:
                progress(cap.tell(), n)
        got = pcap_refill(cap, fh, buf, pos, base, need, n)
        if got is None:
            return
        buf, base = got
        pos = 0
        need = 16


class DamagedCapture(Exception):
    """The capture file is damaged: raised after its last readable record, with the
    :class:`ubpkt.capture.pcap.CaptureProblem` list (at most the first
    :data:`ubpkt.capture.pcap.MAX_PROBLEMS_KEPT`) and how many there were in all."""

    def __init__(self, problems, count: int | None = None):
        super().__init__(str(problems[0]) if problems else "damaged capture")
        self.problems = list(problems)
        self.count = len(self.problems) if count is None else count


#: the former name (a truncated file is one kind of damaged file)
TruncatedCapture = DamagedCapture


def _flits(path, profile: Profile | None) -> Iterator[dict]:
    """A flit stream (pcap linktype 151, or 149 as ubpkt wrote it before, or a raw file of whole
    flits): one record per DLLCB and per reassembled DLLDP (``ubpkt.dissect.flitstream``)."""
    from ..dissect.flitstream import decode_flit_stream
    yield from decode_flit_stream(str(path), profile_for(LINKTYPE_FLITS, profile))


def _flit_lines(path, profile: Profile | None) -> Iterator[bytes]:
    """The ndjson of a flit stream (``ubpkt.dissect.flitstream.flit_stream_ndjson``)."""
    from ..dissect.flitstream import flit_stream_ndjson
    yield from flit_stream_ndjson(str(path), profile_for(LINKTYPE_FLITS, profile))


def file_size(path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
