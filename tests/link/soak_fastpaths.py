"""Randomised soak of the DLL engine's fast paths against the reference paths (not collected by
pytest): random CRC mode, bit-flip and FEC-failure rates, transmit-call size, Null fill, retry
buffer depth, NOB pacing, receive buffer (credits, shared credits) and send pattern; every
transmitted flit, event and counter of the fast engines (fast_rx, fast_tx) must equal the
reference engines'.
    python tests/link/soak_fastpaths.py FIRST_SEED LAST_SEED     (~0.7 s a seed)
UBPKT_CRC30=anycrc|python runs it on another CRC30 engine."""
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import test_dll_contract as T  # noqa: E402

bad = []
t0 = time.time()
for seed in range(int(sys.argv[1]), int(sys.argv[2])):
    rng = random.Random(seed)
    crc = rng.random() < 0.7
    pf = rng.choice([0, 1e-4, 1e-3, 5e-3]) if crc else 0
    pe = rng.choice([0, 0, 1e-4, 1e-3, 5e-3])
    rate = rng.choice([3, 16, 64, 160, 400])
    fill = rng.random() < 0.3
    depth = rng.choice([100, 160, 400, 2048])
    gap = rng.choice([0, 0, 0, 20, 60])
    kw = dict(steps=rng.choice([300, 600]), npk=rng.choice([30, 80]), every=rng.choice([1, 2, 3]),
              batch=rng.choice([1, 1, 3]), retry_buf_depth=depth, dll_packet_min_interval=gap)
    kw.update(rng.choice([{}, {}, T.SMALL_RX, T.SHARED]))   # credits short, shared credits
    ref = T._run(False, crc, seed, pf, pe, rate, fill, **kw)
    fast = T._run(True, crc, seed, pf, pe, rate, fill, **kw)
    if fast != ref:
        bad.append((seed, crc, pf, pe, rate, fill, kw))
        print("MISMATCH", bad[-1], flush=True)
print(f"{int(sys.argv[2]) - int(sys.argv[1])} seeds, mismatches: {len(bad)}, {time.time() - t0:.0f} s")
sys.exit(1 if bad else 0)
