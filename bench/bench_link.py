"""Data-link throughput: CRC30 (pure Python and numpy batch), framing, deframing, flit-stream
decoding (with and without the network-layer dissector), and the DLL engine pair over a lossy
link.  Not run by the tests.

    python bench/bench_link.py [--mb N]
"""
from __future__ import annotations

import argparse
import random
import time

import numpy as np

from ubpkt.link import crc30, deframe, fill_plength, frame_packet
from ubpkt.link.crc30 import crc30_batch
from ubpkt.dissect.flitstream import decode_flit_stream


def rate(label: str, nbytes: int, fn, unit="MB/s") -> float:
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    r = nbytes / 1e6 / dt
    print(f"{label:44s} {r:9.1f} {unit}")
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=4.0, help="megabytes of packets")
    a = ap.parse_args()
    rng = random.Random(1)
    data = rng.randbytes(int(a.mb * 1e6))
    crc30(data[:10000])                                    # build the tables
    rate("crc30() of one large buffer (numpy rows)", len(data), lambda: crc30(data))
    from ubpkt.link.crc30 import _crc30_small
    rate("crc30, slicing-by-8 pure Python", 1 << 20, lambda: _crc30_small(0, data[:1 << 20]))
    blocks = [data[i:i + 636] for i in range(0, 2000 * 636, 636)]
    from ubpkt.link.crc30 import bcrc_crc30
    rate("bcrc_crc30 per 636-byte block", 2000 * 636,
         lambda: [bcrc_crc30(b, 0) for b in blocks])
    rows = np.frombuffer(data[: (len(data) // 636) * 636], dtype=np.uint8).reshape(-1, 636)
    rate("crc30_batch (numpy, 636-byte blocks)", rows.size, lambda: crc30_batch(rows))

    packets, total = [], 0
    while total < a.mb * 1e6:
        n = rng.choice((64, 256, 1024, 4096, 10146))
        packets.append(fill_plength(bytes((0, 6, 0, 0)) + rng.randbytes(n - 4)))
        total += n
    out = []
    rate(f"frame_packet ({len(packets)} packets, CRC mode)", total,
         lambda: out.extend(frame_packet(p) for p in packets))
    stream = b"".join(out)
    rate("deframe (CRC mode, vectorised BCRC)", len(stream), lambda: deframe(stream))
    ncrc = b"".join(frame_packet(fill_plength(p, False), False) for p in packets)
    rate("deframe (non-CRC mode)", len(ncrc), lambda: deframe(ncrc, False))
    rate("decode_flit_stream (records + dissect)", len(stream),
         lambda: sum(1 for _ in decode_flit_stream(stream)))

    import sys
    sys.path.insert(0, "tests/link")
    from channel import Link
    from ubpkt.link.engine import DLLEngine
    eng_a, eng_b = DLLEngine(name="a"), DLLEngine(name="b")
    link = Link(eng_a, eng_b, p_flip=1e-3, p_fec=1e-3, rate=32)
    link.up()
    link.run(10000, until=lambda: eng_a.status_up and eng_b.status_up)
    few = packets[:300]
    for p in few:
        eng_a.send(p)
    nbytes = sum(len(p) for p in few)
    rate("DLL engine pair, 2e-3 flit error rate", nbytes,
         lambda: link.run(10 ** 6, until=lambda: len(link.delivered(eng_b)) >= len(few)))
    print(f"  retries a/b: {eng_a.stats['retries']}/{eng_b.stats['retries']}, "
          f"replayed flits: {eng_a.stats['replayed_flits']}")


if __name__ == "__main__":
    main()
