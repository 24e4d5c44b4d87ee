"""PHY throughput: TX/RX pipelines (Mbit/s of flit payload), RS(128,120) decoding
(codewords/s, clean and with errors) against plain reedsolo, and the sans-IO PHY link
(MB/s of flits delivered one way, pushed in 600-flit chunks as a data link would) against the
reference paths (the lane-file pipeline tx+rx; the link stepping its LMSMs every block time).
Not run by the tests.

    python bench/bench_phy.py [--flits N] [--quick] [--link-only] [--modulation-only]

``--modulation-only``: PAM4 against NRZ on the same flits (the packed PAM4 path of issue 14;
before it PAM4 ran at about half NRZ's rate), and the lane file formats' sizes.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import reedsolo

from ubpkt.phy.link import PhyLink, PhyLinkConfig
from ubpkt.phy.pcs import TxConfig, rx, tx
from ubpkt.phy.rsfec import rs_decode_many, rs_encode_many


def best_of(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_pipeline(nflits: int) -> None:
    data = np.random.default_rng(0).integers(0, 256, nflits * 20, dtype=np.uint8).tobytes()
    bits = len(data) * 8
    print(f"pipeline, {nflits} flits ({len(data) / 1e6:.1f} MB), best of 3, one core")
    print(f"{'config':34s} {'tx Mbit/s':>10s} {'rx Mbit/s':>10s}")
    for lanes, fec, il, mod in [(8, "rs-t4", 1, "nrz"), (8, "rs-t4", 2, "pam4"),
                                (4, "rs-t2", 1, "nrz"), (1, "rs-t4", 1, "nrz"),
                                (8, "bypass", 1, "nrz"), (2, "bypass", 1, "pam4")]:
        cfg = TxConfig(lanes, fec, il, mod)
        ttx, (uis, _) = best_of(lambda: tx(data, cfg))
        trx, res = best_of(lambda: rx(uis, cfg))
        assert res.flits == data
        name = f"x{lanes} {fec} il{il} {mod}"
        print(f"{name:34s} {bits / ttx / 1e6:10.1f} {bits / trx / 1e6:10.1f}")


def bench_rs(n: int, n_ref: int) -> None:
    rng = np.random.default_rng(1)
    msgs = rng.integers(0, 256, (n, 120), dtype=np.uint8)
    t_enc, cws = best_of(lambda: rs_encode_many(msgs))
    dirty = cws.copy()
    for i in range(n):
        for p in rng.choice(128, 4, replace=False):
            dirty[i, p] ^= rng.integers(1, 256)
    t_clean, r1 = best_of(lambda: rs_decode_many(cws, 4))
    t_err, r2 = best_of(lambda: rs_decode_many(dirty, 4), 1)
    assert r1.ok.all() and r2.ok.all() and (r2.messages == msgs).all()
    rs = reedsolo.RSCodec(8, nsize=255, fcr=0, prim=0x11D, generator=2, c_exp=8)
    ref_clean = [bytearray(c.tobytes()) for c in cws[:n_ref]]
    ref_dirty = [bytearray(c.tobytes()) for c in dirty[:n_ref]]
    t_rc, _ = best_of(lambda: [rs.decode(c) for c in ref_clean], 1)
    t_rd, _ = best_of(lambda: [rs.decode(c) for c in ref_dirty], 1)
    t_re, _ = best_of(lambda: [rs.encode(bytes(m)) for m in msgs[:n_ref]], 1)
    print(f"\nRS(128,120): ubpkt on {n} codewords, plain reedsolo on {n_ref}")
    print(f"{'':24s} {'ubpkt cw/s':>12s} {'reedsolo cw/s':>14s} {'ratio':>8s}")
    for name, a, b in [("encode", n / t_enc, n_ref / t_re),
                       ("decode clean", n / t_clean, n_ref / t_rc),
                       ("decode 4 errors/cw", n / t_err, n_ref / t_rd)]:
        print(f"{name:24s} {a:12.0f} {b:14.0f} {a / b:8.1f}x")
    mixed = cws.copy()
    bad = rng.random(n) < 0.01
    for i in np.nonzero(bad)[0]:
        mixed[i, rng.integers(0, 128)] ^= 0x5A
    t_mix, _ = best_of(lambda: rs_decode_many(mixed, 4))
    print(f"{'decode 1% with 1 error':24s} {n / t_mix:12.0f}")


def _link_run(cfg: PhyLinkConfig, data: bytes, chunk: int = 600) -> float:
    link = PhyLink(cfg)
    assert link.train()
    d = link.ab
    now = link.time_of(link.tick)
    got = []
    t = time.perf_counter()
    for i in range(0, len(data), chunk * 20):
        d.push(data[i:i + chunk * 20], now)
        now = max(now, d.next_deadline() or now)
        got += d.pop(now)
    while (nd := d.next_deadline()) is not None:
        now = max(now + 1, nd)
        got += d.pop(now)
    el = time.perf_counter() - t
    if cfg.ber == 0:
        assert b"".join(x.flits for x in got) == data
    return len(data) / el / 1e6


def bench_link(nflits: int) -> None:
    data = np.random.default_rng(2).integers(0, 256, nflits * 20, dtype=np.uint8).tobytes()
    print(f"\nPHY link (ubpkt.phy.link), {nflits} flits A->B, MB/s of flits, best of 3")
    print(f"{'config':30s} {'link':>8s} {'no coast':>9s} {'pcs tx+rx':>10s} {'ratio':>7s}")
    for lanes, fec, il, ber in [(4, "rs-t4", 1, 0.0), (4, "rs-t4", 1, 1e-4), (8, "rs-t4", 1, 0.0),
                                (8, "rs-t2", 1, 3e-4), (4, "rs-t4", 2, 0.0), (4, "bypass", 1, 0.0)]:
        cfg = PhyLinkConfig(lanes=lanes, fec=fec, interleave=il, ber=ber, seed=1)
        fast = max(_link_run(cfg, data) for _ in range(3))
        small = data[:min(len(data), 20 * 20_000)]
        slow = _link_run(PhyLinkConfig(lanes=lanes, fec=fec, interleave=il, ber=ber, seed=1,
                                       coast=False), small)
        tcfg = TxConfig(lanes, fec, il, "nrz")
        tp, _ = best_of(lambda: rx(tx(data, tcfg)[0], tcfg))
        ref = len(data) / tp / 1e6
        name = f"x{lanes} {fec} il{il} ber {ber:g}"
        print(f"{name:30s} {fast:8.1f} {slow:9.1f} {ref:10.1f} {fast / ref:6.2f}x")


def bench_modulation(nflits: int, repeat: int = 5) -> None:
    """PAM4 and NRZ TX/RX rates measured in turn (best of ``repeat``), and their ratio."""
    data = np.random.default_rng(3).integers(0, 256, nflits * 20, dtype=np.uint8).tobytes()
    bits = len(data) * 8
    print(f"\nPAM4 vs NRZ, {nflits} flits, Mbit/s of flits, best of {repeat}")
    print(f"{'config':20s} {'nrz tx':>8s} {'pam4 tx':>8s} {'ratio':>6s} "
          f"{'nrz rx':>8s} {'pam4 rx':>8s} {'ratio':>6s}")
    for lanes, fec in [(8, "rs-t4"), (4, "rs-t2"), (2, "bypass")]:
        best = {}
        for _ in range(repeat):
            for mod in ("nrz", "pam4"):
                cfg = TxConfig(lanes, fec, 1, mod)
                t, (uis, _) = best_of(lambda: tx(data, cfg), 1)
                r, res = best_of(lambda: rx(uis, cfg), 1)
                assert res.flits == data
                old = best.get(mod, (t, r))
                best[mod] = (min(old[0], t), min(old[1], r))
        (nt, nr), (pt, pr) = best["nrz"], best["pam4"]
        print(f"{f'x{lanes} {fec}':20s} {bits / nt / 1e6:8.0f} {bits / pt / 1e6:8.0f} "
              f"{nt / pt:5.2f}x {bits / nr / 1e6:8.0f} {bits / pr / 1e6:8.0f} {nr / pr:5.2f}x")


def bench_lanefile(nflits: int) -> None:
    """Lane file sizes and write/read times: ubpkt-lanes-2 (bit-packed) against the former
    one-byte-per-UI .npz, for the same lanes."""
    import os
    import tempfile
    from ubpkt.phy.lanefile import read_lanes, write_lanes
    from ubpkt.phy.profile import DEFAULT_PROFILE
    data = np.random.default_rng(4).integers(0, 256, nflits * 20, dtype=np.uint8).tobytes()
    print(f"\nlane files, {nflits} flits ({len(data) / 1e6:.1f} MB of flits), x4 rs-t4, best of 3")
    print(f"{'modulation':11s} {'format':7s} {'MB':>7s} {'x flits':>8s} {'write s':>8s} "
          f"{'read s':>7s} {'npz/packed':>11s}")
    with tempfile.TemporaryDirectory() as tmp:
        for mod in ("nrz", "pam4"):
            cfg = TxConfig(4, "rs-t4", 1, mod)
            uis, _ = tx(data, cfg)
            sizes = {}
            for fmt in ("packed", "npz"):
                path = os.path.join(tmp, f"l.{fmt}")
                tw, size = best_of(lambda: write_lanes(path, uis, cfg.settings(DEFAULT_PROFILE),
                                                       fmt))
                tr, (back, _) = best_of(lambda: read_lanes(path))
                assert all((a == b).all() for a, b in zip(back, uis))
                sizes[fmt] = size
                ratio = f"{sizes['npz'] / sizes['packed']:10.1f}x" if fmt == "npz" else ""
                print(f"{mod:11s} {fmt:7s} {size / 1e6:7.2f} {size / len(data):7.2f}x "
                      f"{tw:8.3f} {tr:7.3f} {ratio:>11s}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--flits", type=int, default=200_000)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--link-only", action="store_true")
    ap.add_argument("--modulation-only", action="store_true")
    a = ap.parse_args()
    n = 20_000 if a.quick else a.flits
    if a.modulation_only:
        bench_modulation(n)
        bench_lanefile(n)
        return
    bench_link(n)
    if a.link_only:
        return
    bench_pipeline(n)
    bench_modulation(n)
    bench_lanefile(n)
    bench_rs(5_000 if a.quick else 50_000, 300 if a.quick else 1_000)


if __name__ == "__main__":
    main()
