"""Micro-benchmark: 4 KiB Writes from an initiator to a target wired directly (no transport,
no framing), each one posted, executed, acknowledged and completed.  Run:
``python3 tests/stack/transaction/bench_ta.py [count] [size]``."""
from __future__ import annotations

import os
import sys
import time

from ubpkt.stack.transaction.initiator import Initiator
from ubpkt.stack.transaction.memory import Memory
from ubpkt.stack.transaction.ops import WorkRequest
from ubpkt.stack.transaction.target import Target


def bench(n: int = 50_000, size: int = 4096, repeat: int = 3) -> float:
    """Writes per second (best of ``repeat``)."""
    mem = Memory()
    mem.register(0x10000, 1 << 22, tokenid=5, tokenvalue=0xABC)
    reqs, rsps = [], []
    ini = Initiator(rc_id=3, submit=reqs.append)
    tgt = Target(memory=mem, submit_response=rsps.append)
    src = os.urandom(size)
    slots = (1 << 22) // size
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        for i in range(n):
            ini.post(WorkRequest(i, "write", src, remote_addr=0x10000 + (i % slots) * size,
                                 tokenid=5, tokenvalue=0xABC), i)
            for s in reqs:
                tgt.on_request(memoryview(b"".join((s.ta, s.payload))), i, last=s.last)
            reqs.clear()
            for r in rsps:
                ini.on_response(r.ta, i)
            rsps.clear()
            if not i & 63:
                ini.pop_completions()
        best = max(best, n / (time.perf_counter() - t0))
        ini.pop_completions()
    return best


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    r = bench(n, size)
    print(f"{size} B writes: {r:,.0f} writes/s, {r * size / 1e6:,.0f} MB/s, "
          f"{1e6 / r:.2f} us per write (both engines)")
