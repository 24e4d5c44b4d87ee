"""The distributed export (issue 15): a 2-worker Dask LocalCluster against one process, on the
same captures and the same units (``ubpkt.analytics.units``), so both write the same dataset.

Workload: ``CAPTURES`` seeded varied captures (``ubpkt.analytics.traffic.write_varied``: UBoE
frames of every sample kind, random payload lengths, 10 % corrupted) of ``FRAMES`` frames each,
exported with the default segment size (one unit per capture).  Wall-clock times
(``time.perf_counter``: parallel work is the point), best of ``REPEAT`` runs, the one-process
and cluster runs alternated so that both see the same share of a shared machine:

* one process: ``export_unit`` of every unit in turn (``ubpkt export`` without -j);
* cluster start: ``LocalCluster(2 workers)`` + client (``ubpkt export --cluster local:2``
  pays it on every run);
* cluster cold: the first run on fresh workers (their imports, template caches);
* cluster warm: a later run on the same workers (a long-lived ``dask://`` cluster).

Ratios: one process / cluster warm, and one process / (start + cold), what a single
``ubpkt export --cluster local:2`` gains.  The load average is printed: the machine is shared,
and a loaded machine cannot give a second core's worth.  So CPU time is counted too: the one
process's, and each worker's over its tasks (``time.process_time`` in the task);
``ratio_cpu`` = one process / the busiest worker, the speed-up with a free core per worker
(it leaves out the scheduling, which the wall-clock ratios include).

Usage: python bench/bench_cluster.py [FRAMES] [CAPTURES] [WORKERS]
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: frames per capture, captures, workers, repeats
FRAMES, CAPTURES, WORKERS, REPEAT = 15_000, 4, 2, 3


def timed_unit(unit):
    """``export_unit`` on a worker: (its result, the worker's pid, the CPU seconds it took)."""
    from ubpkt.analytics.units import export_unit
    c = time.process_time()
    got = export_unit(unit)
    return got, os.getpid(), time.process_time() - c


def main(frames=FRAMES, captures=CAPTURES, workers=WORKERS) -> dict:
    from ubpkt.analytics.cluster import ClusterSpec, open_client, run_units
    from ubpkt.analytics.traffic import write_varied
    from ubpkt.analytics.units import DEFAULT_SEGMENT_SIZE, capture_units, export_unit
    tmp = Path(tempfile.mkdtemp(prefix="bench_cluster_"))
    try:
        caps = []
        for i in range(captures):
            p = tmp / f"cap{i}.pcap"
            write_varied(p, frames, seed=100 + i)
            caps.append(str(p))

        def units(out):
            return [u for c in caps for u in capture_units(c, str(tmp / out),
                                                             DEFAULT_SEGMENT_SIZE)]
        rows = frames * captures
        load = os.getloadavg()
        t = time.perf_counter()
        with open_client(ClusterSpec("local", workers=workers)) as client:
            start = time.perf_counter() - t
            t = time.perf_counter()
            got = run_units(client, units("cold"))
            cold = time.perf_counter() - t
            assert sum(g[3] for g in got) == rows
            one, one_cpu, runs, busiest = [], [], [], []
            for r in range(REPEAT):    # alternated: both see the same share of the machine
                t, c = time.perf_counter(), time.process_time()
                got = [export_unit(u) for u in units(f"one{r}")]
                one.append(time.perf_counter() - t)
                one_cpu.append(time.process_time() - c)
                assert sum(g[3] for g in got) == rows
                t = time.perf_counter()
                got = run_units(client, units(f"cl{r}"), work=timed_unit)
                runs.append(time.perf_counter() - t)
                assert sum(g[0][3] for g in got) == rows
                per_worker: dict = {}
                for _res, pid, cpu in got:
                    per_worker[pid] = per_worker.get(pid, 0.0) + cpu
                busiest.append(max(per_worker.values()))
        warm = min(runs)
        best = min(one)
        return {"frames_per_capture": frames, "captures": captures, "workers": workers,
                "rows": rows, "cpus": os.cpu_count(),
                "load_average_before": [round(x, 2) for x in load],
                "one_process_s": round(best, 3),
                "one_process_rows_per_s": round(rows / best),
                "cluster_start_s": round(start, 3), "cluster_cold_s": round(cold, 3),
                "cluster_warm_s": round(warm, 3),
                "cluster_warm_rows_per_s": round(rows / warm),
                "ratio_warm": round(best / warm, 2),
                "ratio_end_to_end": round(best / (start + cold), 2),
                "one_process_cpu_s": round(min(one_cpu), 3),
                "busiest_worker_cpu_s": round(min(busiest), 3),
                "ratio_cpu": round(min(one_cpu) / min(busiest), 2)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    print(json.dumps(main(*args), indent=2))
