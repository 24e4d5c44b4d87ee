"""`ubpkt query` on a large dataset (issue 15): DuckDB query time of the ready-made views on
``ROWS`` rows (10M by default), and, with ``--check N``, export + query against `ubpkt stats` on
a generated capture of about N frames.

The dataset: a generated capture with faults (``ubpkt.analytics.lossy``: loss, duplicates,
retransmissions, reordering, missing and stray responses) exported once, then its rows copied
with pyarrow until there are ``ROWS``: copy k is the capture ``lossy_<k>.pcap`` (its own
capture, so the views' per-capture channels and pairs stay the same as the original's), one
Parquet file per copy group (zstd, row groups of 128k rows), as ``ubpkt export`` writes them.
Copying is what makes 10M rows in seconds; exporting 10M frames would take the exporter's time,
which bench_export measures.

Measured (wall time, best of ``REPEAT`` below 5M rows, else one run; DuckDB on every core): each view fully computed
(``SELECT bit_xor(hash(t)) FROM view t`` reads every column of every row: a count(*) alone
lets DuckDB drop the window columns), a count(*) of frames, and input rows/s.
With ``--check N``: the wall time of `ubpkt stats --json` and `ubpkt export` + `ubpkt query`
(views psn_channels, transactions, srt) on the same capture, and whether the numbers agree.

Usage: python bench/bench_query.py [ROWS] [--check N] [--keep DIR]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ubpkt.analytics.export import export_capture  # noqa: E402
from ubpkt.analytics.lossy import write_lossy  # noqa: E402
from ubpkt.analytics.query import connect, run_query  # noqa: E402

#: runs of each query (the best is kept); 1 from 5M rows on, where one run takes seconds
REPEAT = 3
#: transactions of the capture that is copied (about two frames each)
BASE_TRANSACTIONS = 50_000
ROW_GROUP = 131072
VIEWS = ("psn_analysis", "psn_channels", "latency", "transactions", "srt", "conversations",
         "endpoints", "io")


def build_dataset(out: Path, rows: int) -> int:
    """The copied dataset in ``out``; its row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    work = out.parent / "base"
    cap = work / "lossy.pcap"
    work.mkdir(parents=True, exist_ok=True)
    write_lossy(cap, BASE_TRANSACTIONS, seed=15)
    (path,) = export_capture(str(cap), str(work / "ds"))
    base = pq.read_table(path)
    meta = base.schema.metadata
    out.mkdir(parents=True, exist_ok=True)
    copies = -(-rows // base.num_rows)
    per_file = max(1, (4 * ROW_GROUP) // base.num_rows)
    total = 0
    for first in range(0, copies, per_file):
        parts = []
        for k in range(first, min(copies, first + per_file)):
            n = min(base.num_rows, rows - total)
            if n <= 0:
                break
            t = base.slice(0, n)
            t = t.set_column(t.schema.get_field_index("capture"), "capture",
                             pa.array([f"lossy_{k}.pcap"] * n, pa.string()))
            parts.append(t)
            total += n
        if parts:
            pq.write_table(pa.concat_tables(parts).replace_schema_metadata(meta),
                           out / f"copy{first:05d}.parquet", compression="zstd",
                           row_group_size=ROW_GROUP)
    return total


def _best(fn, repeat: int = REPEAT) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def time_views(ds: Path, rows: int) -> dict:
    con = connect(ds)
    rep = REPEAT if rows < 5_000_000 else 1
    out = {"rows": rows, "count(*)": _best(lambda: run_query(con, "SELECT count(*) FROM frames"))}
    for v in VIEWS:
        out[v] = _best(lambda v=v: run_query(con, f"SELECT bit_xor(hash(t)) FROM {v} AS t"), rep)
        print(f"{v:14s} {out[v]:8.3f} s  {rows / out[v] / 1e6:8.2f} M rows/s", file=sys.stderr,
              flush=True)
    return out


def check(n_frames: int, work: Path) -> dict:
    """`ubpkt stats` against export + query on a generated capture of about n_frames."""
    cap = work / "check.pcap"
    frames = write_lossy(cap, n_frames // 2, seed=99)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "cli"), env.get("PYTHONPATH", "")])

    def cli(*a):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "ubpkt_cli", *map(str, a)], env=env,
                           capture_output=True, text=True, check=True)
        return p.stdout, time.perf_counter() - t0

    st, t_stats = cli("stats", cap, "--json", "--all")
    srt, t_srt = cli("stats", "srt", cap, "--json")
    _, t_export = cli("export", cap, "-o", work / "cds")
    ch, t_q1 = cli("query", work / "cds", "--view", "psn_channels", "-f", "json")
    tr, t_q2 = cli("query", work / "cds", "SELECT responses, unanswered, unmatched_responses "
                   "FROM transactions", "-f", "json")
    sq, t_q3 = cli("query", work / "cds", "--view", "srt", "-f", "json")
    st, srt = json.loads(st), json.loads(srt)
    same_ch = sorted((r["src"], r["dst"], r["srctpn"], r["dsttpn"], r["packets"], r["gaps"],
                      r["missing"], r["retransmissions"], r["out_of_order"])
                     for r in json.loads(ch)) == sorted(tuple(c.values())
                                                         for c in st["channels"])
    same = {"channels": same_ch, "transactions": json.loads(tr) == [st["transactions"]],
            "srt": json.loads(sq) == srt["rows"]}
    return {"frames": frames, "same": same, "stats_s": round(t_stats, 2),
            "stats_srt_s": round(t_srt, 2), "export_s": round(t_export, 2),
            "query_s": [round(t_q1, 2), round(t_q2, 2), round(t_q3, 2)]}


def main(argv) -> None:
    rows = 10_000_000
    check_n = None
    keep = None
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--check":
            check_n = int(args.pop(0))
        elif a == "--keep":
            keep = Path(args.pop(0))
        else:
            rows = int(a)
    with tempfile.TemporaryDirectory() as tmp:
        work = keep or Path(tmp)
        t0 = time.perf_counter()
        n = build_dataset(work / "ds", rows)
        size = sum(p.stat().st_size for p in (work / "ds").glob("*.parquet"))
        print(f"dataset: {n} rows, {size / 1e6:.0f} MB, built in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
        res = time_views(work / "ds", n)
        if check_n:
            res["check"] = check(check_n, work)
            print(json.dumps(res["check"]), file=sys.stderr)
        print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
