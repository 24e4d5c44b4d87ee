"""tshark with the UB Lua plugin (dissectors/ub.lua) against tshark without it: CPU-time ratios.

Builds two captures with ubpkt's encoder: N UBoE frames (Ethernet/IP/UDP 4792, the sample
transaction kinds of captures/make_captures.py in turn, each frame with its own TASSN, IP id,
address and payload bytes, so every ICRC differs, and PSNs that follow on per TP channel) and N native UB frames (linktype 148:
CFG 6/7/9, CFG 3/4 with IP, CFG 5, DLL control blocks, varied the same way).  Each is read by
``tshark -r`` twice per mode, without the plugin and with it (``-X lua_script:``), in two modes:
the plain summary (tshark's default one-line output) and ``-T fields -e ub.rtph.psn``.  The cost
is the CPU time of the tshark child (user + system, ``resource.getrusage(RUSAGE_CHILDREN)``),
less disturbed by other load on a shared machine than wall-clock time; best of ``--repeat``.

    python bench/bench_lua.py [-n 100000] [--repeat 1] [--baseline REV] [--core]
                              [--only uboe|native] [--mode summary|fields]
                              [-o ub.verify_icrc:FALSE] [--crc-calls N]

``--baseline REV`` also times the plugin as committed at git revision REV (its files, taken
with ``git show``; with ``--core`` the compiled modules built here go beside them), so one run
prints before/after side by side.  ``--only``/``--mode`` time one capture or one mode.  ``-o`` passes a preference to
the runs with the plugin (e.g. ICRC verification off, to see what the ICRC costs).  ``--core``
times the plugin with its Lua CRCs (``-o ub.crc_core:FALSE``) beside the compiled ones
(dissectors/ub_core-<Lua>.so, built by dissectors/build_core.py), side by side;
``--crc-calls N`` only times N calls of each CRC (Lua and compiled) inside tshark's Lua.
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


def plugin_at(rev: str, into: Path, core: bool = False) -> Path:
    """The plugin files as committed at rev, in a folder of their own; with core, the compiled
    CRC modules built here (dissectors/ub_core-*.so) beside them (an older plugin calls the
    module's entries it knows: icrc32 and crc30), else none."""
    into.mkdir(parents=True, exist_ok=True)
    if core:
        for so in LUA.parent.glob("ub_core-*.so"):
            shutil.copy(so, into / so.name)
    for name in ("ub.lua", "ub_dispatch.lua", "ub_flits.lua"):
        res = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:dissectors/{name}"],
                             capture_output=True)
        if res.returncode == 0:               # ub_flits.lua: only in later revisions
            (into / name).write_bytes(res.stdout)
    return into / "ub.lua"


# the per-call cost of the CRCs inside tshark's Lua: the plugin's Lua CRCs (its BITS sections)
# against the compiled module's, on 130-byte strings with five mask runs (a UBoE ICRC) and a
# 316-byte block with two information bits (a BCRC)
CRC_CALLS = r"""
local floor = math.floor
local L = {}
do
%(dispatch)s
  L.icrc = icrc32_str
end
do
%(flits)s
  L.flit = flit_crc30
end
local C = assert(package.loadlib(%(module)s, "luaopen_ub_core"))()
local strs = {}
for i = 1, 256 do
  local t = {}
  for j = 1, 130 do t[j] = (i * 7 + j * 13) %% 256 end
  strs[i] = string.char((table.unpack or unpack)(t))
end
local masks = {{1, 1, 0xFF}, {8, 1, 0xFF}, {10, 2, 0xFF}, {26, 2, 0xFF}, {30, 1, 0x0F}}
local blk = {}
for j = 1, 316 do blk[j] = j %% 256 end
blk = string.char((table.unpack or unpack)(blk))
local out = assert(io.open(%(out)s, "w"))
local function time(name, f, n)
  local t0 = os.clock()
  for i = 1, n do f(i) end
  out:write(string.format("%%-30s %%8.3f us a call\n", name, (os.clock() - t0) / n * 1e6))
end
out:write(_VERSION, "\n")
time("ICRC 130 bytes, Lua", function(i) return L.icrc(strs[i %% 256 + 1], masks) end, %(n)d)
time("ICRC 130 bytes, ub_core", function(i) return C.icrc32(strs[i %% 256 + 1], masks) end, %(n)d)
time("BCRC 316 bytes, Lua", function() return L.flit(blk, 1, 316, 2, 2) end, %(n)d)
time("BCRC 316 bytes, ub_core", function() return C.crc30(blk, 1, 316, 2, 2) end, %(n)d)
out:close()
"""


def crc_calls(tshark: str, tmp: Path, n: int) -> str:
    """Times CRC_CALLS in tshark's Lua (the module for its Lua must be built)."""
    import re
    sections = {}
    for key, name in (("dispatch", "ub_dispatch.lua"), ("flits", "ub_flits.lua")):
        text = (LUA.parent / name).read_text(encoding="utf-8")
        sections[key] = re.search(r"-- BEGIN BITS\n(.*)\n-- END BITS", text, re.S).group(1)
    probe, empty, out = tmp / "version.lua", tmp / "empty.pcap", tmp / "calls.txt"
    with PcapWriter(empty, LINKTYPE_ETHERNET):
        pass
    probe.write_text(f"local f = io.open({str(out)!r}, 'w') f:write(_VERSION) f:close()")
    subprocess.run([tshark, "-n", "-X", f"lua_script:{probe}", "-r", str(empty)],
                   capture_output=True)
    module = LUA.parent / f"ub_core-{out.read_text().split()[-1]}.so"
    if not module.exists():
        return f"no {module} (python3 dissectors/build_core.py)"
    script = tmp / "calls.lua"
    script.write_text(CRC_CALLS % {**sections, "module": f"{str(module)!r}", "out": f"{str(out)!r}",
                                   "n": n})
    subprocess.run([tshark, "-n", "-X", f"lua_script:{script}", "-r", str(empty)],
                   capture_output=True)
    return out.read_text()


def crc_status(tshark: str) -> str:
    """What the plugin says at start-up about its CRCs (compiled ub_core or Lua), from the
    description of its ub.crc_core preference."""
    res = subprocess.run([tshark, "-G", "currentprefs", "-X", f"lua_script:{LUA}"],
                         capture_output=True, text=True)
    for line in res.stdout.splitlines():
        if "At start-up: " in line:
            return line.split("At start-up: ", 1)[1]
    return "unknown (no ub.crc_core preference)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100000, help="frames per capture")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (best taken)")
    ap.add_argument("--baseline", help="git revision whose plugin is timed as well")
    ap.add_argument("-o", dest="prefs", action="append", default=[],
                    help="a tshark preference for the runs with the plugin (ub.verify_icrc:FALSE)")
    ap.add_argument("--only", choices=("uboe", "native"), help="one capture only")
    ap.add_argument("--mode", choices=("summary", "fields"), help="one mode only")
    ap.add_argument("--crc-calls", type=int, metavar="N",
                    help="only time N calls of each CRC, Lua and compiled, inside tshark's Lua")
    ap.add_argument("--core", action="store_true",
                    help="time the plugin twice: with -o ub.crc_core:FALSE (its Lua CRCs) and "
                         "as is (the compiled ub_core CRCs when dissectors/build_core.py "
                         "built them)")
    args = ap.parse_args()
    tshark = shutil.which("tshark")
    if not tshark:
        sys.exit("bench_lua: tshark is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="ubpkt-bench-lua-"))
    try:
        if args.crc_calls:
            print(crc_calls(tshark, tmp, args.crc_calls), end="")
            return
        caps = {"uboe": (tmp / "uboe.pcap", LINKTYPE_ETHERNET, uboe_packets()),
                "native": (tmp / "native.pcap", LINKTYPE_UB, native_packets())}
        if args.only:
            caps = {args.only: caps[args.only]}
        for path, linktype, kinds in caps.values():
            make(path, linktype, kinds, args.n)
        opts = [a for p in args.prefs for a in ("-o", p)]
        plugins = {"plugin": (LUA, opts)}
        if args.core:
            plugins = {"lua crcs": (LUA, [*opts, "-o", "ub.crc_core:FALSE"]),
                       "ub_core": (LUA, opts)}
        if args.baseline:
            plugins = {args.baseline[:10]: (plugin_at(args.baseline, tmp / "base", args.core),
                                            opts),
                       **plugins}
        head = f"{'capture':8} {'mode':11} {'no plugin':>10}" + "".join(
            f" {name:>12} {'ratio':>6}" for name in plugins)
        print(f"{args.n} frames per capture, CPU seconds (best of {args.repeat})"
              + (f", plugin runs with {' '.join(args.prefs)}" if args.prefs else ""))
        print(f"plugin CRCs: {crc_status(tshark)}")
        print(head)
        for cap, (path, _, _) in caps.items():
            for mode, (extra, plain) in MODES.items():
                if args.mode and not mode.startswith(args.mode):
                    continue
                base = best([tshark, "-n", "-r", str(path), *plain], args.repeat)
                line = f"{cap:8} {mode:11} {base:10.2f}"
                for lua, popts in plugins.values():
                    t = best([tshark, "-n", "-X", f"lua_script:{lua}", *popts, "-r", str(path),
                              *extra], args.repeat)
                    line += f" {t:12.2f} {t / base:5.1f}x"
                print(line, flush=True)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
