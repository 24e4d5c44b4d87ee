"""Long randomised engine soak (not collected by pytest): random mode, error rates, link rate and
delay, Null fill, VLs, buffer sizes; checks exactly-once in-order delivery per VL, no credit
leak and no fatal error.   python tests/link/stress_engine.py FIRST_SEED LAST_SEED"""
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from channel import Link  # noqa: E402

from ubpkt.link.engine import DLLEngine  # noqa: E402
from ubpkt.link.framing import fill_plength  # noqa: E402
from ubpkt.profile import SPEC  # noqa: E402


def mk(vl, n, i, rng, crc_mode=True):
    head = bytes(((vl >> 3) & 1, ((vl & 7) << 5) | 6, 0, 0))
    return fill_plength(head + i.to_bytes(4, "big") + rng.randbytes(n - 8), crc_mode)


def run(seed: int) -> bool:
    rng = random.Random(seed)
    crc = seed % 3 != 0
    pf = rng.choice([0, 5e-3, 1e-2, 2e-2]) if crc else 0
    pe = rng.choice([0, 5e-3, 1e-2])
    rate, delay = rng.choice([1, 2, 8, 32]), rng.choice([1, 3, 10, 50])
    fill, vls = rng.random() < 0.5, rng.randint(1, 8)
    prof = SPEC.with_(dll_vl_enable=(1 << vls) - 1, crc_mode=crc,
                      rx_buffer_cells=rng.choice([64, 300, 2000]),
                      retry_buf_depth=rng.choice([256, 2048]),
                      retry_wait_timeout_ns=rng.choice([2000, 10000]))
    a, b = DLLEngine(prof), DLLEngine(prof)
    link = Link(a, b, seed=seed, rate=rate, delay=delay, p_flip=pf, p_fec=pe, fill=fill)
    link.up()
    if not link.run(200000, until=lambda: a.status_up and b.status_up):
        return False
    sent = {id(a): {}, id(b): {}}
    for i in range(30):
        for src in (a, b):
            vl = rng.randrange(vls)
            p = mk(vl, rng.randrange(8, rng.choice([100, 2000, 10146])), i, rng, crc)
            if src.send(p):
                sent[id(src)].setdefault(vl, []).append(p)
    na = sum(len(v) for v in sent[id(b)].values())
    nb = sum(len(v) for v in sent[id(a)].values())
    ok = link.run(300000, until=lambda: len(link.delivered(a)) >= na
                  and len(link.delivered(b)) >= nb and a.idle() and b.idle())
    link.run(3 * delay + 500)
    for src, dst in ((a, b), (b, a)):
        got = {}
        for e in link.delivered(dst):
            got.setdefault(e["vl"], []).append(e["packet"])
        ok = ok and got == sent[id(src)]
        ok = ok and src.tx_credits.total() == src.tx_credits.initial_total
    return ok and not [e for e in link.errors(a) + link.errors(b) if e["severity"] == "error"]


if __name__ == "__main__":
    first, last = int(sys.argv[1]), int(sys.argv[2])
    t0 = time.time()
    bad = [s for s in range(first, last) if not run(s)]
    print(f"{last - first} seeds, failed: {bad}, {time.time() - t0:.0f} s")
