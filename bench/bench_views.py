"""CPU of the default views against ``-T ndjson``: the one-line summary and ``stats``.

Each command runs in its own process over the same UBoE capture (bench_decode.make); the CPU
time (user + system of the child) is taken by difference between 2N and N frames, so start-up
cancels.  Prints the ratios (issue 12 asks for the summary within 1.5x of ndjson).
Usage: python bench/bench_views.py [N]   (default 100000)
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_decode import make  # noqa: E402

VIEWS = {"ndjson": ["-T", "ndjson"], "summary": [], "stats": None}


def cpu(args) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def command(view: str, path: Path) -> list:
    base = [sys.executable, "-m", "ubpkt_cli"]
    if view == "stats":
        return base + ["stats", "--json", str(path)]
    return base + ["decode", "-q", *VIEWS[view], str(path)]


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        small, big = Path(d) / "n.pcap", Path(d) / "2n.pcap"
        make(small, n)
        make(big, 2 * n)
        per = {}
        for view in VIEWS:
            per[view] = cpu(command(view, big)) - cpu(command(view, small))
            print(f"{view:8s} {per[view]:7.2f} s CPU per {n} frames "
                  f"({n / max(per[view], 1e-9):,.0f} frames/s)")
        for view in ("summary", "stats"):
            print(f"{view} / ndjson = {per[view] / per['ndjson']:.2f}x")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", os.pathsep.join(sys.path))
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100000)
