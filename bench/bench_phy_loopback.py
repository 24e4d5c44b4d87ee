"""`loopback` payload speed (wall clock, and per CPU second of the process) by link fidelity: `--link ideal`, `--link dll` and
`--link phy` (NRZ, RS T=4, x4 by default), the same workload, and where the PHY mode's time goes
(a profile split into DLL engines, PHY data path, LMSMs and the rest).  Not run by the tests.

    python bench/bench_phy_loopback.py [--count 2048] [--size 4096] [--transport ctp]
                                       [--lanes 4] [--slot-flits N ...] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import pstats

from ubpkt.sim.loopback import LoopbackConfig, run_loopback


def run(args, link: str, **kw) -> dict:
    cfg = LoopbackConfig(transport=args.transport, count=args.count, size=args.size, link=link,
                         seed=1, **kw)
    r = run_loopback(cfg)
    assert r["data_verified"], f"--link {link}: data not verified"
    return r


def line(label: str, r: dict) -> float:
    mbps = r["payload_mb_per_s"]
    print(f"{label:34s} {mbps:8.2f} MB/s payload ({r['payload_mb_per_cpu_s']:.2f} per CPU s)  "
          f"run {r['run_s']:6.3f} s  "
          f"simulated {r['sim_time_ns'] / 1e3:9.1f} us "
          f"({r['sim_payload_gbit_per_s']:.1f} Gbit/s)")
    return mbps


def split(args, slot_flits: int | None) -> None:
    """Inclusive time of the layers under --link phy during the transfer (the simulator's run;
    the PHY training and the final comparison excluded), under cProfile (so slower)."""
    from ubpkt.sim import loopback as lb
    prof = cProfile.Profile()
    orig = lb._SimNet.run

    def profiled(self, until):
        prof.enable()
        try:
            return orig(self, until)
        finally:
            prof.disable()
    lb._SimNet.run = profiled
    try:
        run(args, "phy", lanes=args.lanes, fec="rs-t4", slot_flits=slot_flits)
    finally:
        lb._SimNet.run = orig
    st = pstats.Stats(prof)
    total = st.total_tt
    parts = {   # (file suffix, function): disjoint call trees
        "DLL engines (transmit + receive)": [("link/dll/transmit.py", "transmit"),
                                             ("link/dll/receive.py", "receive")],
        "PHY data path (encode/wire/decode)": [("phy/link.py", "_send_batch")],
        "LMSMs (AMCTL slots, coasting)": [("phy/link.py", "_advance_to")],
        "endpoints (transport + transaction)": [("stack/endpoint.py", "receive"),
                                                ("stack/endpoint.py", "transmit")],
    }
    rows = {k: 0.0 for k in parts}
    for (file, _, fn), (_, _, _, ct, callers) in st.stats.items():
        for name, pats in parts.items():
            if any(file.endswith(f) and fn == g for f, g in pats):
                # count only entries from outside the same function (no recursion here)
                rows[name] += ct
    print(f"  profile of the --link phy transfer ({total:.2f} s under cProfile):")
    for name, t in rows.items():
        print(f"    {name:38s} {t:6.2f} s  {100 * t / total:5.1f} %")
    rest = total - sum(rows.values())
    print(f"    {'simulator, slots, the rest':38s} {rest:6.2f} s  {100 * rest / total:5.1f} %")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=2048)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--transport", default="ctp")
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--slot-flits", type=int, nargs="*", default=[None])
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    print(f"{args.count} x {args.size} B {args.transport} write")
    ideal = line("--link ideal", run(args, "ideal"))
    dll = line("--link dll (100G flit wires)", run(args, "dll"))
    dll768 = line("--link dll, slot 768 flits", run(args, "dll", slot_flits=768))
    for sf in args.slot_flits:
        label = f"--link phy x{args.lanes} rs-t4 NRZ" + (f" slot {sf}" if sf else "")
        phy = line(label, run(args, "phy", lanes=args.lanes, fec="rs-t4", slot_flits=sf))
        print(f"  phy / dll = {phy / dll:.2f} (slot 768: {phy / dll768:.2f}), "
              f"phy / ideal = {phy / ideal:.3f}")
        if args.profile:
            split(args, sf)


if __name__ == "__main__":
    main()
