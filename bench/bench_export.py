"""`ubpkt export` against `ubpkt decode -T ndjson` of the same capture (issue 15).

The workload: seeded varied UBoE traffic (``ubpkt.analytics.traffic.write_varied``: every
sample kind, random payload lengths and per-frame values): clean with atomics at their sample's
operand size, and issue 14's harder mix (atomics at random lengths - each length its own
fixed-length layout, most of them past the template cache's per-layout builds - and 10 % of the
frames corrupted; both take the dissector in both paths).  Measured in this process, CPU time
(``time.process_time``, best of ``REPEAT``), rows (frames) per second:

* ndjson: ``ubpkt.capture.stream.iter_ndjson`` (what ``decode -T ndjson`` writes, templates);
* export, record path: ``export_capture(..., columnar=False)`` (a record per frame);
* export, columnar: ``export_capture(...)`` (the default: numpy cuts per template group);
  Parquet zstd writing included, by the default writer (``--writer assemble``);
* export, columnar with the per-frame probe: the same with ``columnar.BULK`` off (each frame's
  probe and guard in Python, as before the bulk probe; also the path without the C extension);
* with ``--writers``: the columnar export with pyarrow's writer (``writer="arrow"``) too, and
  the CPU seconds spent in the Parquet writer (``_Writers.write`` / ``close``) with each.

Usage: python bench/bench_export.py [N] [--no-record] [--writers]   (N frames, 50000 by
default; --no-record leaves out the record path, slow at 1M frames)
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

REPEAT = 3


def _best(fn) -> float:
    best = None
    for _ in range(REPEAT):
        t = time.process_time()
        fn()
        dt = time.process_time() - t
        best = dt if best is None else min(best, dt)
    return best


class _WriterClock:
    """CPU seconds spent in the export's Parquet writers (``export._Writers``)."""

    def __init__(self):
        from ubpkt.analytics import export
        self.seconds = 0.0
        for name in ("write", "close"):
            setattr(export._Writers, name, self._timed(getattr(export._Writers, name)))

    def _timed(self, fn):
        def timed(*a, **kw):
            t = time.process_time()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds += time.process_time() - t
        return timed


def run(n: int, record: bool = True, writers: bool = False) -> list:
    from ubpkt.analytics.export import export_capture
    from ubpkt.analytics.traffic import write_varied
    from ubpkt.capture.stream import iter_ndjson
    rows = []
    clock = _WriterClock() if writers else None
    tmp = Path(tempfile.mkdtemp(prefix="bench_export"))
    try:
        for name, corrupt, atomic_lengths in (
                ("varied, atomics at operand sizes", 0.0, False),
                ("varied, random atomic lengths, 10% corrupted", 0.1, True)):
            cap = tmp / "cap.pcap"
            write_varied(cap, n, seed=15, corrupt=corrupt, atomic_lengths=atomic_lengths)
            out = tmp / "out"

            def ndjson():
                for _ in iter_ndjson(str(cap)):
                    pass

            def export(columnar, writer="assemble", bulk=True):
                from ubpkt.analytics import columnar as col
                shutil.rmtree(out, ignore_errors=True)
                before = clock.seconds if clock else 0.0
                col.BULK = bulk
                try:
                    export_capture(str(cap), out, columnar=columnar, writer=writer)
                finally:
                    col.BULK = True
                if clock and bulk:
                    spent.setdefault(writer, []).append(clock.seconds - before)

            spent: dict = {}
            t_nd = _best(ndjson)
            t_rec = _best(lambda: export(False)) if record else None
            spent.clear()                   # the writer's seconds of the columnar runs
            t_col = _best(lambda: export(True))
            parquet_bytes = sum(p.stat().st_size for p in out.rglob("*.parquet"))
            t_loop = _best(lambda: export(True, bulk=False))
            row = {"workload": name, "frames": n, "ndjson_rows_s": round(n / t_nd),
                   "export_record_rows_s": round(n / t_rec) if t_rec else None,
                   "export_columnar_rows_s": round(n / t_col),
                   "per_frame_probe_rows_s": round(n / t_loop),
                   "columnar_vs_ndjson": round(t_nd / t_col, 2),
                   "per_frame_probe_vs_ndjson": round(t_nd / t_loop, 2),
                   "record_vs_ndjson": round(t_nd / t_rec, 2) if t_rec else None,
                   "parquet_bytes": parquet_bytes}
            if writers:
                t_arrow = _best(lambda: export(True, "arrow"))
                row.update({"export_arrow_writer_rows_s": round(n / t_arrow),
                            "arrow_writer_vs_ndjson": round(t_nd / t_arrow, 2),
                            "writer_s_assemble": round(min(spent["assemble"]), 2),
                            "writer_s_arrow": round(min(spent["arrow"]), 2)})
            rows.append(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 50000
    rows = run(n, record="--no-record" not in sys.argv[1:], writers="--writers" in sys.argv[1:])
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))


if __name__ == "__main__":
    main()
