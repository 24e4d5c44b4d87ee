"""tshark with the UB Lua plugin (dissectors/ub.lua) against tshark without it: CPU-time ratios.

Builds two captures with ubpkt's encoder: N UBoE frames (Ethernet/IP/UDP 4792, the sample
transaction kinds of captures/make_captures.py in turn, each frame with its own TASSN, IP id,
address and payload bytes, so every ICRC differs, and PSNs that follow on per TP channel) and N native UB frames (linktype 148:
CFG 6/7/9, CFG 3/4 with IP, CFG 5, DLL control blocks, varied the same way).  Each is read by
``tshark -r`` twice per mode, without the plugin and with it (``-X lua_script:``), in two modes:
the plain summary (tshark's default one-line output) and ``-T fields -e ub.rtph.psn``.  The cost
is the CPU time of the tshark child (user + system, ``resource.getrusage(RUSAGE_CHILDREN)``),
less disturbed by other load on a shared machine than wall-clock time; best of ``--repeat``.

    python bench/bench_lua.py [-n 100000] [--repeat 1] [--baseline REV] [-o ub.verify_icrc:FALSE]

``--baseline REV`` also times the plugin as committed at git revision REV (both files, taken
with ``git show``), so one run prints before/after side by side.  ``-o`` passes a preference to
the runs with the plugin (e.g. ICRC verification off, to see what the ICRC costs).
Not run by the tests.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "captures"))

from make_captures import native_packets, uboe_packets  # noqa: E402

from ubpkt.capture import LINKTYPE_ETHERNET, LINKTYPE_UB, PcapWriter  # noqa: E402
from ubpkt.encode import encode_layers  # noqa: E402

from ubpkt.formats.grammar import TP_PAIRS  # noqa: E402

LUA = ROOT / "dissectors" / "ub.lua"
DATA_TPOPCODES = set(TP_PAIRS)   # the RTP data packets (what TP responses acknowledge)
# mode -> (tshark arguments with the plugin, without it: tshark has no ub.* field then, so the
# field run prints the frame number instead, the same one-column output)
MODES = {"summary": ([], []),
         "fields psn": (["-T", "fields", "-e", "ub.rtph.psn"], ["-T", "fields", "-e", "frame.number"])}


def vary(layers: list, i: int, psns: dict) -> list:
    """Frame i of a kind: its own TASSN, IP id, UDP source port, address, payload bytes, and the
    next PSN of its TP channel (psns: channel -> next PSN), so the capture has no PSN gaps (a
    gap on every frame would add analysis items no real capture has)."""
    out = []
    ends = ()   # the channel's addresses: IP source and destination, else the CNAs
    for name, spec in layers:
        if name in ("ip", "ipv6", "ub.cna16", "ub.cna24"):
            ends = (spec.get("src", spec.get("scna")), spec.get("dst", spec.get("dcna")))
    for name, spec in layers:
        spec = dict(spec) if isinstance(spec, dict) else spec
        if name == "ip":
            spec["id"] = i & 0xFFFF
        elif name == "udp" and spec.get("dstport") is None:
            spec["srcport"] = 49152 + (i >> 4) % 64
        elif name == "ub.rtph":
            channel = (ends, spec.get("srctpn"), spec.get("dsttpn"))
            if spec.get("tpopcode") in DATA_TPOPCODES:
                spec["psn"] = psns.get(channel, 0) & 0xFFFFFF
                psns[channel] = psns.get(channel, 0) + 1
            else:   # a TP response acknowledges the last data PSN of the other direction
                back = (ends[::-1], channel[2], channel[1])
                spec["psn"] = (psns.get(back, 1) - 1) & 0xFFFFFF
        elif name in ("ub.btah", "ub.atah", "ub.btah_c", "ub.atah_c"):
            spec["ini_tassn"] = (i >> 1) & 0xFFFF
        elif name in ("ub.maetah", "ub.maetah_c"):
            spec["address"] = 0x7F0000000000 + 64 * i
        elif name == "data":
            spec = bytes((i + j) & 0xFF for j in range(len(spec)))
        out.append((name, spec))
    return out


def make(path: Path, linktype: int, kinds: list, n: int) -> None:
    psns: dict = {}
    with PcapWriter(path, linktype) as w:
        for i in range(n):
            w.write(encode_layers(vary(kinds[i % len(kinds)], i, psns)), i * 1000)


def cpu_of(cmd: list[str]) -> float:
    """CPU seconds (user + system) of one run of cmd."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(cmd: list[str], repeat: int) -> float:
    return min(cpu_of(cmd) for _ in range(repeat))


def plugin_at(rev: str, into: Path) -> Path:
    """The two plugin files as committed at rev, in a folder of their own."""
    into.mkdir(parents=True, exist_ok=True)
    for name in ("ub.lua", "ub_dispatch.lua"):
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:dissectors/{name}"],
                              capture_output=True, check=True).stdout
        (into / name).write_bytes(text)
    return into / "ub.lua"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100000, help="frames per capture")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (best taken)")
    ap.add_argument("--baseline", help="git revision whose plugin is timed as well")
    ap.add_argument("-o", dest="prefs", action="append", default=[],
                    help="a tshark preference for the runs with the plugin (ub.verify_icrc:FALSE)")
    ap.add_argument("--only", choices=("uboe", "native"), help="one capture only")
    args = ap.parse_args()
    tshark = shutil.which("tshark")
    if not tshark:
        sys.exit("bench_lua: tshark is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="ubpkt-bench-lua-"))
    try:
        caps = {"uboe": (tmp / "uboe.pcap", LINKTYPE_ETHERNET, uboe_packets()),
                "native": (tmp / "native.pcap", LINKTYPE_UB, native_packets())}
        if args.only:
            caps = {args.only: caps[args.only]}
        for path, linktype, kinds in caps.values():
            make(path, linktype, kinds, args.n)
        plugins = {"plugin": LUA}
        if args.baseline:
            plugins = {args.baseline[:10]: plugin_at(args.baseline, tmp / "base"), **plugins}
        opts = [a for p in args.prefs for a in ("-o", p)]
        head = f"{'capture':8} {'mode':11} {'no plugin':>10}" + "".join(
            f" {name:>12} {'ratio':>6}" for name in plugins)
        print(f"{args.n} frames per capture, CPU seconds (best of {args.repeat})"
              + (f", plugin runs with {' '.join(args.prefs)}" if args.prefs else ""))
        print(head)
        for cap, (path, _, _) in caps.items():
            for mode, (extra, plain) in MODES.items():
                base = best([tshark, "-n", "-r", str(path), *plain], args.repeat)
                line = f"{cap:8} {mode:11} {base:10.2f}"
                for lua in plugins.values():
                    t = best([tshark, "-n", "-X", f"lua_script:{lua}", *opts, "-r", str(path),
                              *extra], args.repeat)
                    line += f" {t:12.2f} {t / base:5.1f}x"
                print(line, flush=True)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
