"""Where the columnar export's time goes, per stage (issue 15): CPU seconds of one export of
the bench workloads (``bench_export.py``), measured by wrapping each stage's function with
``time.process_time`` (the wrappers cost a few ms: the per-frame path is called ~10^5 times).

Stages: reading the frames (``frameblocks.frame_runs``: the C record scan, or the tuple reader
of the per-frame loop), the bulk probe and guard (``bulkguard.probe_guard``, C), the per-frame
path (``columnar._per_frame``: first sightings, corrupted frames, the dissector), the numpy
cuts of the template groups (``columnar._emit_runs``), the columns of a row group
(``BatchBuilder.flush``: numpy data for the default writer's own encoder, Arrow arrays for the
rest and for ``--writer arrow``), the Parquet writer (``_Writers.write``); "rest" is the remainder
(joining a block's runs, frame columns, record-path fields, the loop).

Usage: python bench/bench_export_stages.py [N]   (N frames, 1000000 by default)
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path


def _timed(owner, name, acc, key, gen=False):
    fn = getattr(owner, name)

    if gen:
        def wrapper(*a, **k):
            it = fn(*a, **k)
            while True:
                t = time.process_time()
                try:
                    x = next(it)
                except StopIteration:
                    acc[key] += time.process_time() - t
                    return
                acc[key] += time.process_time() - t
                yield x
    else:
        def wrapper(*a, **k):
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                acc[key] += time.process_time() - t
    setattr(owner, name, wrapper)
    return fn


def stages(cap, out) -> dict:
    from ubpkt.analytics import columnar, export, frameblocks, rows
    from ubpkt.dissect import bulkguard
    acc = dict.fromkeys(("read frames", "bulk probe+guard", "per-frame path", "numpy cuts",
                         "row-group columns", "parquet writer"), 0.0)
    saved = [(frameblocks, "frame_runs", _timed(frameblocks, "frame_runs", acc, "read frames",
                                                True)),
             (columnar, "_per_frame", _timed(columnar, "_per_frame", acc, "per-frame path")),
             (columnar, "_emit_runs", _timed(columnar, "_emit_runs", acc, "numpy cuts")),
             (rows.BatchBuilder, "flush", _timed(rows.BatchBuilder, "flush", acc,
                                                 "row-group columns")),
             (export._Writers, "write", _timed(export._Writers, "write", acc,
                                               "parquet writer"))]
    orig_pg = bulkguard.probe_guard
    _timed(bulkguard, "probe_guard", acc, "bulk probe+guard")
    try:
        shutil.rmtree(out, ignore_errors=True)
        t = time.process_time()
        export.export_capture(str(cap), out)
        total = time.process_time() - t
    finally:
        bulkguard.probe_guard = orig_pg
        for owner, name, fn in saved:
            setattr(owner, name, fn)
    acc["rest"] = total - sum(acc.values())
    acc["total"] = total
    return acc


def main() -> None:
    from ubpkt.analytics.traffic import write_varied
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    tmp = Path(tempfile.mkdtemp(prefix="bench_stages"))
    try:
        for name, corrupt, al in (("varied, atomics at operand sizes", 0.0, False),
                                  ("varied, random atomic lengths, 10% corrupted", 0.1, True)):
            cap = tmp / "cap.pcap"
            write_varied(cap, n, seed=15, corrupt=corrupt, atomic_lengths=al)
            stages(cap, tmp / "warm")          # imports, caches
            acc = stages(cap, tmp / "out")
            print(f"{name}, {n} frames: " + ", ".join(f"{k} {v:.2f} s" for k, v in acc.items()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
