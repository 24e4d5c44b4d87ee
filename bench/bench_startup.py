"""Start-up CPU and ndjson memory (issue 14), side by side with tshark.

* start-up: CPU time (user + system, of the child process, median of ``--runs``) of
  ``ubpkt decode`` on a one-frame capture, against ``tshark -r`` of the same file (plain, and
  with ``dissectors/ub.lua`` loaded) and against a bare ``python -c pass``.  "warm" runs with
  bytecode caches (what an installed package has); "cold" with ``PYTHONDONTWRITEBYTECODE=1``
  and no cache prefix: the standard library from its installed caches, ubpkt compiled from
  source on every run unless its tree has ``__pycache__`` directories.
* ndjson peak RSS: ``ubpkt decode -T ndjson`` of a capture of ``--frames`` frames (the bench's
  UBoE kinds), ``-j 1`` and ``-j 2``, peak RSS of the process tree from ``wait4`` (the largest of
  the parent and its workers), and whether both outputs are identical.

The CLI run is the one of this source tree (``PYTHONPATH``).  Not run by the tests.

    python bench/bench_startup.py [--runs 15] [--frames 500000] [--no-rss]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "captures"))
sys.path.insert(0, str(ROOT / "bench"))


def _env(cold: bool, cache: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "cli")])
    if cold:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache
    return env


#: runs a command and reports its wait4 rusage: a small process between the bench and the
#: command, because Linux carries ru_maxrss across exec (a child forked straight from the
#: bench would report the bench's own peak when that is higher)
_RUSAGE_HELPER = """
import json, os, subprocess, sys
p = subprocess.Popen(sys.argv[1:], stderr=subprocess.DEVNULL)
_pid, status, ru = os.wait4(p.pid, 0)
sys.stderr.write(json.dumps([os.waitstatus_to_exitcode(status), ru.ru_utime + ru.ru_stime,
                             ru.ru_maxrss]))
"""


def run_rusage(cmd: list[str], env: dict | None = None, stdout=subprocess.DEVNULL):
    """Run ``cmd``; (CPU seconds user+system, peak RSS in kB of the command and the children
    it waited for), from wait4."""
    r = subprocess.run([sys.executable, "-c", _RUSAGE_HELPER, *cmd], stdout=stdout,
                       stderr=subprocess.PIPE, env=env)
    code, cpu, rss = json.loads(r.stderr.decode().strip().splitlines()[-1])
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {code}")
    return cpu, rss


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def cpu_median(cmd, env, runs: int) -> float:
    run_rusage(cmd, env)          # warm-up (and the bytecode cache)
    return statistics.median(run_rusage(cmd, env)[0] for _ in range(runs))


def one_frame_capture(path: Path) -> None:
    from ubpkt.capture import PcapWriter, open_capture
    with open_capture(ROOT / "captures" / "uboe_transactions.pcap") as cap:
        pkt = next(iter(cap))
        lt = cap.linktype
    with PcapWriter(path, lt) as w:
        w.write(pkt.data, pkt.time_ns, pkt.orig_len)


def bench_startup(tmp: Path, runs: int) -> None:
    one = tmp / "one.pcap"
    one_frame_capture(one)
    cache = str(tmp / "pyc")
    ubpkt = [sys.executable, "-m", "ubpkt_cli", "decode", str(one)]
    rows = []
    for label, cold in (("warm", False), ("cold", True)):
        env = _env(cold, cache)
        rows.append((f"python -c pass ({label})", cpu_median([sys.executable, "-c", "pass"],
                                                             env, runs)))
        rows.append((f"ubpkt decode, 1 frame ({label})", cpu_median(ubpkt, env, runs)))
    ts = shutil.which("tshark")
    if ts:
        rows.append(("tshark -r, 1 frame", cpu_median([ts, "-r", str(one)], None, runs)))
        lua = ROOT / "dissectors" / "ub.lua"
        rows.append(("tshark -r + ub.lua, 1 frame",
                     cpu_median([ts, "-X", f"lua_script:{lua}", "-r", str(one)], None, runs)))
    ref = dict(rows).get("tshark -r, 1 frame")
    print(f"start-up CPU (user+sys), median of {runs} runs")
    print(f"{'command':36s} {'CPU s':>8s} {'vs tshark':>10s}")
    for name, t in rows:
        ratio = f"{t / ref:9.2f}x" if ref else "-"
        print(f"{name:36s} {t:8.3f} {ratio:>10s}")


def make_big(path: Path, frames: int) -> None:
    """``frames`` frames: the bench_decode kinds (2300 distinct frames) repeated."""
    from bench_decode import make
    from ubpkt.capture import PcapWriter, open_capture
    seed = path.with_suffix(".seed.pcap")
    make(seed, min(frames, 2300))
    with open_capture(seed) as cap:
        lt = cap.linktype
        kinds = [p.data for p in cap]
    with PcapWriter(path, lt) as w:
        for i in range(frames):
            w.write(kinds[i % len(kinds)], i * 1000)


def bench_rss(tmp: Path, frames: int) -> None:
    big = tmp / "big.pcap"
    make_big(big, frames)
    env = _env(False, str(tmp / "pyc"))
    print(f"\nndjson peak RSS, {frames} frames ({big.stat().st_size / 1e6:.0f} MB pcap)")
    print(f"{'command':36s} {'peak MB':>8s} {'CPU s':>8s} {'output sha256':>16s}")
    for jobs in (1, 2):
        out = tmp / f"j{jobs}.ndjson"
        with open(out, "wb") as fh:
            cpu, rss = run_rusage([sys.executable, "-m", "ubpkt_cli", "decode", "-q", "-j",
                                   str(jobs), "-T", "ndjson", str(big)], env, stdout=fh)
        digest = sha256_of(out)[:16]
        print(f"{'decode -T ndjson -j ' + str(jobs):36s} {rss / 1024:8.1f} {cpu:8.2f} "
              f"{digest:>16s}")
        out.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--frames", type=int, default=500_000)
    ap.add_argument("--no-rss", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ubpkt-bench-startup-"))
    try:
        bench_startup(tmp, a.runs)
        if not a.no_rss:
            bench_rss(tmp, a.frames)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
