"""Bulk decode throughput: ubpkt (ndjson) against scapy's PcapReader and tshark -T json.

ubpkt runs once in one process and once with one worker per core (``-j``).  Rates are taken by
difference (time for 2N packets minus time for N) so that interpreter and
program start-up cancel.  Usage: python bench/bench_decode.py [N]   (default 150000)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "captures"))

from make_captures import uboe_packets  # noqa: E402

from ubpkt.capture import LINKTYPE_ETHERNET, PcapWriter  # noqa: E402
from ubpkt.encode import encode_layers  # noqa: E402

SCAPY = ("from scapy.all import PcapReader\n"
         "n = 0\n"
         "for p in PcapReader(%r):\n"
         "    n += 1\n")


def make(path: Path, n: int) -> None:
    """A UBoE capture shaped like real traffic: the sample packet kinds in turn, each frame
    with its own PSN, TASSN, IP id, UDP source port, address, ICRC and payload bytes."""
    kinds = uboe_packets()
    with PcapWriter(path, LINKTYPE_ETHERNET) as w:
        for i in range(n):
            layers = [(name, dict(spec) if isinstance(spec, dict) else spec)
                      for name, spec in kinds[i % len(kinds)]]
            for name, spec in layers:
                if name == "ip":
                    spec["id"] = i & 0xFFFF
                elif name == "udp":
                    spec["srcport"] = 49152 + (i >> 4) % 64
                elif name == "ub.rtph":
                    spec["psn"] = i & 0xFFFFFF
                elif name in ("ub.btah", "ub.atah"):
                    spec["ini_tassn"] = (i >> 1) & 0xFFFF
                elif name == "ub.maetah":
                    spec["address"] = 0x7F0000000000 + 64 * i
            layers = [(name, bytes((i + j) & 0xFF for j in range(len(spec)))
                       if name == "data" else spec) for name, spec in layers]
            w.write(encode_layers(layers), i * 1000)


def timed(cmd: list[str], repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - t)
    return best


def rate(cmd_for, small: Path, big: Path, n: int) -> float:
    return n / max(timed(cmd_for(big)) - timed(cmd_for(small)), 1e-9)


def main() -> None:
    # -j only splits files of 16 MiB or more: the default N makes both files that large
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 150000
    tmp = Path(tempfile.mkdtemp(prefix="ubpkt-bench-"))
    small, big = tmp / "n.pcap", tmp / "2n.pcap"
    make(small, n)
    make(big, 2 * n)
    rates = {}
    jobs = os.cpu_count() or 1
    rates["ubpkt decode -T ndjson (1 process)"] = rate(
        lambda p: [sys.executable, "-m", "ubpkt_cli", "decode", "-q", "-j", "1", "-T", "ndjson",
                   str(p)], small, big, n)
    if jobs > 1:
        rates[f"ubpkt decode -T ndjson -j {jobs}"] = rate(
            lambda p: [sys.executable, "-m", "ubpkt_cli", "decode", "-q", "-j", str(jobs),
                       "-T", "ndjson", str(p)], small, big, n)
    rates["scapy PcapReader (Ether/IP/UDP)"] = rate(
        lambda p: [sys.executable, "-c", SCAPY % str(p)], small, big, n)
    if shutil.which("tshark"):
        rates["tshark -T json"] = rate(lambda p: ["tshark", "-r", str(p), "-T", "json"],
                                       small, big, n)
    ours = [(k, v) for k, v in rates.items() if k.startswith("ubpkt")]
    print(f"{'tool':38} {'packets/s':>12}   " + "  ".join(f"{k[22:]:>14}" for k, _ in ours))
    for name, r in rates.items():
        print(f"{name:38} {r:12,.0f}   " + "  ".join(f"{v / r:13.1f}x" for _, v in ours))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
