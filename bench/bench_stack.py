"""Reference-stack throughput: ``ubpkt loopback`` workloads, payload MB/s on one core.

Each case runs the whole stack in one process (initiator, RTP channels, framing and ICRC, the
simulated link, target and memory) and reports the payload rate of the transfer phase, the
simulated time, and what the fault ledger says.  Usage: python bench/bench_stack.py [COUNT]
(default 5000 4 KiB writes per case).
"""
from __future__ import annotations

import sys

from ubpkt.sim.loopback import LoopbackConfig, run_loopback

CASES = [
    ("RTP 4 KiB writes, no faults", dict()),
    ("RTP 4 KiB writes, 1% loss, selective", dict(faults="loss=0.01", retrans="sr")),
    ("RTP 4 KiB writes, 1% loss, Go-Back-N", dict(faults="loss=0.01", retrans="gbn")),
    ("RTP 4 KiB reads, no faults", dict(op="read")),
    ("RTP 4 KiB sends, no faults", dict(op="send")),
    ("CTP 4 KiB writes (CNA16)", dict(transport="ctp")),
    ("RTP 64 B writes", dict(size=64)),
]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print(f"{'case':44s} {'MB/s':>8s} {'pkts':>7s} {'retx':>6s} {'faults':>6s} {'ok':>3s}")
    for name, kw in CASES:
        best = None
        for _ in range(3):          # best of three: the machine is shared
            r = run_loopback(LoopbackConfig(count=count, **kw))
            if best is None or r["payload_mb_per_s"] > best["payload_mb_per_s"]:
                best = r
        f = best["faults"]
        ok = best["data_verified"] and f["unrecovered"] == 0 and f["unattributed"] == 0
        print(f"{name:44s} {best['payload_mb_per_s']:8.1f} {best['transport']['packets']:7d} "
              f"{best['transport']['retransmissions']:6d} {f['injected']:6d} "
              f"{'yes' if ok else 'NO':>3s}")


if __name__ == "__main__":
    main()
