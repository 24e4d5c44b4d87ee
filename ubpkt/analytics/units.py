"""An export cut into units, the work every runner shares (issue 15).

A *unit* is ``(capture path, Segment or None, keyword arguments of export_capture with
out_dir)``: one capture, or one record-aligned segment of a capture larger than the segment
size.  The cut depends only on the captures and the segment size, never on who runs the units
(``ubpkt export`` in one process, ``-j N`` processes, a Dask cluster, Spark's
``mapPartitions``), and every unit writes its own file, so all of them write the same dataset.

* :func:`partition_rule` and :func:`check_names`: the arguments checked before anything runs.
* :func:`capture_units`: the units of one capture.
* :func:`export_unit`: run one unit (a picklable top-level function, no dask or Spark needed).
* :func:`summarize`: the results, in unit order, as the report ``ubpkt export`` prints.
"""
from __future__ import annotations

import os

__all__ = ["DEFAULT_SEGMENT_SIZE", "parse_size", "partition_rule", "check_names",
           "capture_units", "export_unit", "summarize"]

#: Captures larger than this are exported as several segments (``--segment-size``).
DEFAULT_SEGMENT_SIZE = 256 << 20
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """``256M``, ``100k``, ``1G``, ``4096`` (bytes, binary units); ValueError otherwise."""
    t = str(text).strip().lower().rstrip("b")
    try:
        n = int(float(t[:-1]) * _UNITS[t[-1]]) if t and t[-1] in _UNITS else int(t)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (e.g. 256M)") from None
    if n < 1:
        raise ValueError(f"not a size: {text!r} (at least 1 byte)")
    return n


def partition_rule(by_text: str, partition_map=None, name_pattern=None, captures=()):
    """The :class:`~ubpkt.analytics.partition.PartitionRule` of ``--partition-by`` /
    ``--partition-map`` / ``--name-pattern``, checked against every capture (each must have
    its node/port); ValueError or OSError with a one-line message."""
    from .partition import PartitionRule
    by = tuple(k.strip() for k in by_text.split(",") if k.strip())
    if partition_map:
        rule = PartitionRule.from_csv(by, partition_map)
        if name_pattern:
            rule = PartitionRule(rule.by, rule.table, name_pattern)
    else:
        rule = PartitionRule(by, (), name_pattern)
    for c in captures:
        rule.directory(c, "1970-01-01")
    return rule


def check_names(captures) -> None:
    """ValueError when two captures have the same file name (their files would collide)."""
    names = [os.path.basename(str(c)) for c in captures]
    seen = set()
    for n in names:
        if n in seen:
            raise ValueError(f"two captures named {n}: their files would collide")
        seen.add(n)


def capture_units(path, out_dir, segment_bytes: int, **export_kw) -> list:
    """The units of one capture: one per ``segment_bytes`` of it (rounded up), or one when
    ``analysis`` is asked (its state runs from the first frame) or the capture cannot be cut
    (``plan_segments``).  OSError / CaptureError for a capture that cannot be read."""
    from .export import plan_segments
    n = 1 if export_kw.get("analysis") else -(-os.path.getsize(path) // segment_bytes)
    kw = dict(export_kw, out_dir=out_dir)
    return [(path, seg, dict(kw)) for seg in plan_segments(path, n)]


def export_unit(unit):
    """Export one unit: ``(path, segment, files written, rows, (problem texts, problem
    count))``.  A damaged capture is not an error here: its readable frames are written and
    its problems returned, for the report."""
    from .export import ExportDamaged, export_capture
    path, segment, kw = unit
    kw = dict(kw)
    out_dir = kw.pop("out_dir")
    try:
        paths = export_capture(path, out_dir, segment=segment, **kw)
        damage = ([], 0)
    except ExportDamaged as exc:
        paths, damage = exc.paths, ([str(p) for p in exc.problems], exc.count)
    import pyarrow.parquet as pq
    rows = sum(pq.read_metadata(p).num_rows for p in paths)
    return path, segment, paths, rows, damage


def summarize(results, out_dir, seconds: float) -> tuple:
    """``(report, damaged)`` of the units' results in unit order: the report ``ubpkt export``
    prints (``dataset``, per capture its ``files``, ``rows``, ``problems``; ``rows``,
    ``files``, ``seconds``, ``rows_per_second``) and ``[(capture, problems, count)]`` of the
    damaged captures."""
    per: dict = {}
    damaged = []
    for path, _seg, paths, rows, (problems, count) in results:
        e = per.setdefault(path, {"capture": path, "files": [], "rows": 0, "problems": []})
        e["files"].extend(paths)
        e["rows"] += rows
        if count:
            e["problems"] = problems
            damaged.append((path, problems, count))
    total = sum(e["rows"] for e in per.values())
    report = {"dataset": out_dir, "captures": list(per.values()), "rows": total,
              "files": sum(len(e["files"]) for e in per.values()),
              "seconds": round(seconds, 3),
              "rows_per_second": round(total / seconds) if seconds > 0 else None}
    return report, damaged
