"""Export captures to Parquet: the functions ``ubpkt export`` runs, and the distributed export
with it (pure functions of picklable arguments, no global state).

* :func:`plan_segments` cuts a classic pcap into record-aligned byte ranges
  (``ubpkt.capture.parallel``), so that one capture is exported by several processes or
  machines; any other capture (pcapng, gzip, flit streams) is one segment.
* :func:`export_capture` writes one capture, or one segment of it, as Parquet files (zstd, row
  groups of ``row_group`` rows) in ``out_dir``, under the partition directories of ``rule``
  (``ubpkt.analytics.partition``), and returns the paths written.  File names are stable
  (``<capture name>.parquet``, ``<capture name>.s<segment>.parquet``): exporting again
  replaces the same files.

Frames are decoded by the template cache (``ubpkt.dissect.fastpath``), the records the decoder
gives; with ``columnar`` (the default) frames that fit a template are cut in batches with numpy
(``ubpkt.analytics.columnar``), the same rows.  ``analysis`` adds the ``analysis_*`` columns
from the two passes ``decode -2`` and ``stats`` use (``ubpkt.views.analysis``); it needs the
whole capture (PSN and transaction state run from the first frame), so a segment refuses it.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Iterator

from . import require
from .partition import NS_PER_DAY, PartitionRule, day_of

__all__ = ["Segment", "plan_segments", "export_capture", "frames", "frame_chunks", "ExportDamaged",
           "DEFAULT_ROW_GROUP", "output_name", "WRITERS", "DEFAULT_WRITER"]

#: Rows per Parquet row group (``--row-group``): about 128k, the issue's figure.
DEFAULT_ROW_GROUP = 131072
#: Parquet compression codec and level (zstd level 3: pyarrow's default level).
COMPRESSION = "zstd"
#: Column statistics (min/max per row group, what engines skip row groups by) for numeric
#: columns and ``capture``; not for the other text columns, whose min/max skip little.
STATISTICS_COLUMNS = ("capture",)
#: The Parquet writers (``--writer``): ``assemble`` (``ubpkt.analytics.parquet_writer``:
#: pyarrow encodes the columns that have a value, the all-null ones are written as constant
#: chunks) and ``arrow`` (``pyarrow.parquet.ParquetWriter`` for every column, the reference).
#: Both give files that read as the same tables (tested).
WRITERS = ("assemble", "arrow")
DEFAULT_WRITER = "assemble"


@dataclass(frozen=True)
class Segment:
    """A record-aligned byte range of a classic pcap: ``offset`` (of its first record header),
    ``length`` bytes, ``first_frame`` (the number of that record), ``index`` of ``count``."""
    offset: int
    length: int
    first_frame: int
    index: int
    count: int


class ExportDamaged(Exception):
    """The capture is damaged: every readable frame was exported (``paths``), then the reader
    met ``problems`` (``ubpkt.capture.pcap.CaptureProblem``, ``count`` in all)."""

    def __init__(self, message: str, problems: list, count: int, paths: list):
        super().__init__(message, problems, count, paths)
        self.problems, self.count, self.paths = list(problems), count, list(paths)

    def __str__(self) -> str:
        return self.args[0]


def plan_segments(path, n: int) -> list:
    """About ``n`` record-aligned :class:`Segment` s of a classic pcap of equal size, or
    ``[None]`` (the whole capture) when ``n`` <= 1 or the file is not an uncompressed classic
    pcap (pcapng, gzip, flit streams are read whole).  A damaged file's segments stop before
    its first fatal problem (exporting the last segment reports it)."""
    from ..capture.parallel import _segments, pcap_format
    from ..record import FLIT_LINKTYPES
    if n <= 1:
        return [None]
    fmt = pcap_format(path)
    if fmt is None or fmt[2] in FLIT_LINKTYPES:
        return [None]
    size = os.path.getsize(path)
    pieces = list(_segments(path, [], size=max(1, -(-(size - 24) // n))))
    if len(pieces) <= 1:
        return [None]
    return [Segment(o, ln, first, i, len(pieces)) for i, (o, ln, first) in enumerate(pieces)]


def frames(path, segment: Segment | None = None, problems: list | None = None,
           ) -> Iterator[tuple]:
    """``(frame number, time ns, original length, link type, bytes)`` of every frame of a
    capture or of one segment; problems of a damaged file are appended to ``problems``
    (then their total count)."""
    for chunk in frame_chunks(path, segment, problems):
        yield from chunk


def frame_chunks(path, segment: Segment | None = None, problems: list | None = None,
                 ) -> Iterator[list]:
    """:func:`frames` in lists (one per read buffer): a classic pcap is cut by the decoder's
    own hot loop (``stream._pcap_loop``, the same damage checks), no packet object made."""
    from ..capture.pcap import open_capture
    if segment is None:
        with open_capture(path) as cap:
            if cap.format == "pcap":
                from ..capture.stream import _pcap_loop
                yield from _pcap_loop(cap, cap.linktype, _frame_tuple, list, None)
            else:
                out = []
                for n, pkt in enumerate(cap, 1):
                    out.append((n, pkt.time_ns, pkt.orig_len, pkt.linktype, pkt.data))
                    if len(out) == 4096:
                        yield out
                        out = []
                if out:
                    yield out
            if cap.problem_count and problems is not None:
                problems.extend(cap.problems)
                problems.append(cap.problem_count)
        return
    from ..capture.parallel import pcap_format
    endian, nano, lt = pcap_format(path)
    with open(path, "rb") as fh:
        fh.seek(segment.offset)
        data = fh.read(segment.length)
    unpack = struct.Struct(endian + "IIII").unpack_from
    scale = 1 if nano else 1000
    pos, n, end = 0, segment.first_frame, len(data)
    out = []
    while pos + 16 <= end:
        sec, frac, incl, orig = unpack(data, pos)
        out.append((n, sec * 1_000_000_000 + frac * scale, orig, lt,
                    data[pos + 16:pos + 16 + incl]))
        pos += 16 + incl
        n += 1
        if len(out) == 4096:
            yield out
            out = []
    if out:
        yield out
    if segment.index == segment.count - 1 and problems is not None:
        # the damage after the last segment: what the whole-file reader reports
        from ..capture.parallel import _segments
        found: list = []
        for _ in _segments(path, found):
            pass
        if found:
            problems.extend(found)
            problems.append(len(found))


def _frame_tuple(buf, lt, n, tns, orig):
    return n, tns, orig, lt, buf


def output_name(path, segment: Segment | None) -> str:
    """The file name of a capture's (or segment's) Parquet file."""
    name = os.path.basename(str(path))
    return f"{name}.parquet" if segment is None else f"{name}.s{segment.index:04d}.parquet"


def _profile(profile, linktype):
    from ..profile import Profile, load_profile, profile_for
    if isinstance(profile, str):
        profile = load_profile(profile)
    elif profile is not None and not isinstance(profile, Profile):
        raise TypeError(f"profile: a Profile or a name/path, not {profile!r}")
    return profile_for(linktype, profile)


def writer_options(schema) -> dict:
    """The ParquetWriter settings of an exported file, the same for every file.  Dictionary
    encoding only for the text columns (names, addresses, layers: few distinct values), integer
    columns written plain: measured on 100k varied frames, the file 15 % smaller and the writer
    15 % faster than dictionary pages for every column (pyarrow's default), which integers such
    as PSNs, times and checksums overflow anyway.  Statistics: :data:`STATISTICS_COLUMNS`."""
    import pyarrow as pa
    text, stats = [], list(STATISTICS_COLUMNS)
    for f in schema:
        t = f.type
        if pa.types.is_string(t) or pa.types.is_dictionary(t):
            text.append(f.name)
        elif pa.types.is_integer(t) or pa.types.is_floating(t):
            stats.append(f.name)
    return {"use_dictionary": text, "write_statistics": stats}


class _Writers:
    """One ParquetWriter per partition directory of one capture (or segment)."""

    def __init__(self, out_dir, name, capture, rule, schema, row_group, writer=DEFAULT_WRITER):
        if writer not in WRITERS:
            raise ValueError(f"writer: one of {', '.join(WRITERS)}, not {writer!r}")
        self.writer = writer
        self.out_dir, self.name, self.capture, self.rule = out_dir, name, capture, rule
        self.schema, self.row_group = schema, row_group
        self.open: dict = {}
        self.paths: list = []
        self.by_date = "date" in rule.by

    def write(self, batch) -> None:
        if batch.num_rows == 0:
            return
        if not self.by_date:
            self._writer(self.rule.directory(self.capture, None)).write_batch(
                batch, row_group_size=self.row_group)
            return
        import numpy as np
        import pyarrow as pa
        ts = batch.column(batch.schema.get_field_index("ts_ns"))
        if ts.null_count:
            raise ValueError(f"{self.name}: frames without a time cannot be partitioned by date")
        days = np.asarray(ts.to_numpy()) // NS_PER_DAY
        for d in np.unique(days):
            idx = np.nonzero(days == d)[0]
            part = batch if len(idx) == batch.num_rows else batch.take(pa.array(idx))
            self._writer(self.rule.directory(self.capture, day_of(int(d) * NS_PER_DAY))
                         ).write_batch(part, row_group_size=self.row_group)

    def _writer(self, sub: str):
        w = self.open.get(sub)
        if w is None:
            import pyarrow.parquet as pq
            d = os.path.join(self.out_dir, sub)
            os.makedirs(d, exist_ok=True)
            p = os.path.join(d, self.name)
            if self.writer == "arrow":
                w = pq.ParquetWriter(p, self.schema, compression=COMPRESSION,
                                     **writer_options(self.schema))
            else:
                from .parquet_writer import AssemblingWriter
                w = AssemblingWriter(p, self.schema, compression=COMPRESSION,
                                     **writer_options(self.schema))
            self.open[sub] = w
            self.paths.append(p)
        return w

    def close(self) -> list:
        for w in self.open.values():
            w.close()
        return list(self.paths)


def export_capture(path, out_dir, *, segment: Segment | None = None, payload: bool = False,
                   row_group: int = DEFAULT_ROW_GROUP, rule: PartitionRule | None = None,
                   link_type: str = "auto", profile=None, analysis: bool = False,
                   columnar: bool = True, writer: str = DEFAULT_WRITER) -> list:
    """Export one capture (or one :class:`Segment` of it, from :func:`plan_segments`) into
    ``out_dir``; the paths of the Parquet files written.  ``payload``: the ``payload`` column;
    ``rule``: partition directories (none by default); ``link_type`` / ``profile`` as
    ``ubpkt decode`` takes them (``profile``: a :class:`ubpkt.profile.Profile` or its name or
    JSON path); ``analysis``: the ``analysis_*`` columns (whole captures only); ``columnar``:
    the numpy fast path (False: every frame through the record path; the same rows);
    ``writer``: one of :data:`WRITERS` (the same tables).
    A damaged capture raises :class:`ExportDamaged` after its readable frames are written."""
    require("pyarrow")
    from ..capture.stream import LINK_TYPES
    from ..record import FLIT_LINKTYPES
    from .rows import BatchBuilder
    from .schema import arrow_schema
    if analysis and segment is not None:
        raise ValueError("analysis columns need the whole capture, not a segment")
    if row_group < 1:
        raise ValueError("row_group must be at least 1")
    rule = rule or PartitionRule()
    capture = os.path.basename(str(path))
    name = output_name(path, segment)
    source = {"capture": capture, "segment": None if segment is None else segment.index}
    schema = arrow_schema(payload, analysis, source)
    writers = _Writers(str(out_dir), name, path, rule, schema, row_group, writer)
    builder = BatchBuilder(capture, payload, text_dictionary=writer == "assemble",
                           raw=writer == "assemble")
    problems: list = []
    forced = LINK_TYPES[link_type]
    try:
        linked = _analysis(path, link_type, profile) if analysis else None
        if _is_flits(path, forced, segment, FLIT_LINKTYPES):
            _export_records(path, link_type, profile, builder, writers, row_group, linked,
                            problems)
        elif columnar:
            from .columnar import export_capture_frames
            export_capture_frames(path, segment, problems, forced, profile, builder, writers,
                                  row_group, linked)
        else:
            _export_frames(frames(path, segment, problems), forced, profile, builder, writers,
                           row_group, linked)
        if len(builder):
            writers.write(builder.flush())
        if not writers.paths:          # an empty capture still gives a (0-row) file
            writers._writer(rule.directory(path, None) if "date" not in rule.by
                            else _no_date_dir(rule, path))
    finally:
        paths = writers.close()
    if problems:
        count = problems.pop()
        raise ExportDamaged(f"{capture}: damaged capture: {problems[0]}", problems, count,
                            paths)
    return paths


def _no_date_dir(rule: PartitionRule, path) -> str:
    """The directory of an empty capture's file when partitioned by date (no frame, no day):
    the hive default partition."""
    return rule.directory(path, "__HIVE_DEFAULT_PARTITION__")


def _is_flits(path, forced, segment, flit_types) -> bool:
    if forced is not None:
        return forced in flit_types
    if segment is not None:
        return False
    from ..capture.pcap import open_capture
    try:
        with open_capture(path) as cap:
            return cap.linktype in flit_types
    except Exception:
        return False


def _analysis(path, link_type, profile) -> dict:
    """``{frame: {analysis key: value}}`` of a whole capture: the two passes of ``decode -2``
    (``first_pass`` links requests to responses, then the annotating pass), over the stats
    picks (``stream.iter_parts``: only the fields the analysis reads)."""
    from ..capture.stream import DamagedCapture, iter_parts
    from ..views.analysis import Analyzer, Links
    prof = None if profile is None else _profile(profile, None)

    def passes(an):
        out = {}
        try:
            for chunk in iter_parts(path, link_type, prof):
                for frame, tns, template, fields, _orig in chunk:
                    if template is None:
                        fields = fields[1]
                    if "ub.rtph.psn" in fields or "ub.btah.taopcode" in fields or \
                            "ub.atah.taopcode" in fields:
                        got = an.add_fields(frame, 0 if tns is None else tns, fields)
                        if got:
                            out[frame] = got
        except DamagedCapture:
            pass                 # the main pass reports the damage
        return out

    # the first pass learns the links (views.analysis.first_pass), the second annotates
    links = Links()
    an = Analyzer(annotate=False)
    an.ack_sink = links.acks
    for f, v in passes(an).items():
        req = v.get("ub.analysis.request_in")
        if req is not None:
            links.responses[req] = f
    return passes(Analyzer(linked=links, annotate=False))


def _export_frames(source, forced, profile, builder, writers, row_group, analysis) -> None:
    """The record path: each frame decoded to its record (template cache or dissector)."""
    from ..dissect.fastpath import TemplateCache
    from ..record import make_record
    caches: dict = {}
    for n, tns, orig, lt, data in source:
        if forced is not None:
            lt = forced
        cache = caches.get(lt)
        if cache is None:
            cache = caches[lt] = TemplateCache(_profile(profile, lt))
        layers, fields, issues = cache.decode(data, lt)
        if analysis:
            got = analysis.get(n)
            if got:
                fields = dict(fields)
                fields.update(got)
        builder.add(make_record(n, None, orig, len(data), lt, layers, fields, issues), tns)
        if len(builder) >= row_group:
            writers.write(builder.flush())


def _export_records(path, link_type, profile, builder, writers, row_group, analysis,
                    problems) -> None:
    """A flit stream: its records (one per DLLCB / DLLDP unit).  Their time is the
    record's float seconds made integer ns (a flit stream's units carry no exact time)."""
    from ..capture.stream import iter_records
    prof = None if profile is None else _profile(profile, None)
    for rec in iter_records(path, link_type, prof):
        if rec.get("frame") is None:
            problems.extend(rec["problems"])
            problems.append(rec.get("problem_count", len(rec["problems"])))
            break
        t = rec.get("time")
        if analysis:
            got = analysis.get(rec["frame"])
            if got:
                rec["fields"].update(got)
        builder.add(rec, None if t is None else round(t * 1e9))
        if len(builder) >= row_group:
            writers.write(builder.flush())
