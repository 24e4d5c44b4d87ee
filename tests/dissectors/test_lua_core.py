"""The plugin's compiled CRCs (dissectors/ub_core.c, built by dissectors/build_core.py) against its
Lua CRCs: the same results on random strings, mask lists and bit tails, in tshark's Lua and in
lua5.2/lua5.4; the loader (module in the plugin's folder or not, a module that does not load,
the ub.crc_core preference); and the whole plugin's ``-T fields`` output, identical with and
without the module, on the bundled captures, the ns-3-UB interop traces and captures with bad
ICRCs and BCRCs.  Every test here skips, saying why, without a C compiler or the Lua headers."""
from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from ubpkt.capture import PcapWriter
from ubpkt.link.crc30 import INIT, crc30_bits, crc30_update

from test_lua import (LUA, ROOT, _find_tshark, cfg6_mgmt, cfg7_tpack, cfg9_compact,
                      dllcb_packets, more_native_packets, uboe_packets, write)
from lua_harness import lua_keys

sys.path.insert(0, str(ROOT / "dissectors"))
import build_core  # noqa: E402

PLUGIN_FILES = ("ub.lua", "ub_dispatch.lua", "ub_flits.lua")
DISPATCH = LUA.parent / "ub_dispatch.lua"
FLITS = LUA.parent / "ub_flits.lua"


def _section(path: Path) -> str:
    m = re.search(r"-- BEGIN BITS\n(.*)\n-- END BITS", path.read_text(encoding="utf-8"), re.S)
    assert m, f"{path.name} has no BITS section"
    return m.group(1)


@pytest.fixture(scope="module")
def tshark():
    return _find_tshark()


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    """{Lua version: the built module} in a scratch folder; skips without compiler or headers."""
    out = tmp_path_factory.mktemp("ub_core")
    built, why = {}, []
    for v in build_core.VERSIONS:
        path, reason = build_core.build(v, out)
        if path is None:
            why.append(f"Lua {v}: {reason}")
        else:
            built[v] = path
    if not built:
        pytest.skip("ub_core cannot be built here: " + "; ".join(why))
    return built


def _tshark_lua_version(tshark: str, tmp: Path) -> str:
    script, empty = tmp / "version.lua", tmp / "empty.pcap"
    out = tmp / "version.txt"
    script.write_text(f"local f = io.open({json.dumps(str(out))}, 'w') f:write(_VERSION) f:close()")
    with PcapWriter(empty, 1):
        pass
    subprocess.run([tshark, "-n", "-X", f"lua_script:{script}", "-r", str(empty)],
                   capture_output=True, timeout=60)
    return out.read_text().split()[-1]


@pytest.fixture(scope="module")
def plugin_dirs(tshark, modules, tmp_path_factory):
    """Two installed copies of the plugin: ``with`` (the module for tshark's Lua next to it)
    and ``without`` (only the three Lua files)."""
    base = tmp_path_factory.mktemp("plugins")
    version = _tshark_lua_version(tshark, base)
    if version not in modules:
        pytest.skip(f"no ub_core module for tshark's Lua {version} (headers missing)")
    dirs = {}
    for name in ("with", "without"):
        d = base / name
        d.mkdir()
        for f in PLUGIN_FILES:
            shutil.copy(LUA.parent / f, d / f)
        dirs[name] = d
    shutil.copy(modules[version], dirs["with"] / build_core.module_name(version))
    dirs["version"] = version
    return dirs


# ---- C against Lua, function by function ---------------------------------------------------

RUNNER = r"""
local floor = math.floor
local LUA = {}
do
%(dispatch_bits)s
  LUA.icrc32_str, LUA.crc30, LUA.icrc32_parts = icrc32_str, crc30, icrc32_parts
end
do
%(flits_bits)s
  LUA.flit_crc30 = flit_crc30
end
local C = assert(package.loadlib(%(module)s, "luaopen_ub_core"))()
local function ba(s) return {raw = function() return s end} end
local function bytes_of(text)
  local t = {}
  for x in text:gmatch("%%d+") do t[#t + 1] = tonumber(x) end
  return string.char((table.unpack or unpack)(t))
end
local MASKS = {}          -- one table per mask text: the C cache sees the same list again
local function masks_of(text)
  if MASKS[text] == nil then
    local m = {}
    for o, n, v in text:gmatch("(%%d+),(%%d+),(%%d+)") do
      m[#m + 1] = {tonumber(o), tonumber(n), tonumber(v)}
    end
    MASKS[text] = m
  end
  return MASKS[text]
end
local function both(f, g, ...)
  local ok1, r1 = pcall(f, ...)
  local ok2, r2 = pcall(g, ...)
  return (ok1 and string.format("%%d", r1) or "error") .. " "
         .. (ok2 and string.format("%%d", r2) or "error")
end
local out = assert(io.open(%(out)s, "w"))
for line in io.lines(%(cases)s) do
  local op, a, b, c = line:match("^(%%w+) (%%S+) (%%S+) ?(.*)$")
  if op == "icrc" then
    out:write(both(LUA.icrc32_str, C.icrc32, bytes_of(a), masks_of(b)), "\n")
  elseif op == "parts" then   -- parts A B C MASKS FIRST LAST ("nil": a piece left out)
    local pc, m, first, last = c:match("(%%S+) (%%S+) (%%S+) (%%S+)")
    local pa = a ~= "nil" and bytes_of(a) or nil
    local pb = b ~= "nil" and bytes_of(b) or nil
    out:write(both(function(...) return LUA.icrc32_parts(...) end,
                   function(...) return C.icrc32_parts(...) end,
                   masks_of(m), pa, pb, bytes_of(pc), tonumber(first), tonumber(last)), "\n")
  elseif op == "crc30" then
    local s = bytes_of(a)
    local first, last, v, n = c:match("(%%S+) (%%S+) (%%S+) (%%S+)")
    first, last, v, n = tonumber(first), tonumber(last), tonumber(v), tonumber(n)
    out:write(both(LUA.flit_crc30, C.crc30, s, first, last, v, n), "\n")
  else   -- crc30ba: the dispatch's crc30 of a ByteArray against the C one over the whole string
    local s = bytes_of(a)
    local v, n = c:match("(%%S+) (%%S+)")
    out:write(both(function(x, y, z) return LUA.crc30(ba(x), y, z) end,
                   function(x, y, z) return C.crc30(x, 1, #x, y, z) end,
                   s, tonumber(v), tonumber(n)), "\n")
  end
end
out:close()
"""


def _masked_crc32(data: bytes, masks) -> int:
    """The ICRC's definition, written independently of both: OR-masks in list order, the later
    one deciding a byte's mask, masks past the end ignored."""
    value = {}
    for off, length, first in masks:
        value[off] = first
        for j in range(off + 1, off + length):
            value[j] = 0xFF
    b = bytearray(data)
    for p, v in value.items():
        if p < len(b):
            b[p] |= v
    return zlib.crc32(bytes(b))


def _lua_range(data: bytes, first: int, last: int) -> bytes:
    """data[first..last] by string.byte's and string.sub's rules (1-based, negative from the
    end, clamped to the string)."""
    n = len(data)
    first = first if first >= 0 else (0 if -first > n else n + first + 1)
    last = last if last >= 0 else (0 if -last > n else n + last + 1)
    first, last = max(first, 1), min(last, n)
    return data[first - 1:last] if first <= last else b""


def _crc30_range(data: bytes, first: int, last: int, value: int, nbits: int) -> int:
    """string.byte's range rules, then ubpkt's CRC30 and bit tail."""
    return crc30_bits(crc30_update(INIT, _lua_range(data, first, last)), value, nbits)


def _cases():
    rnd = random.Random(20261205)
    lines, want = [], []

    def dec(b: bytes) -> str:
        return ",".join(map(str, b)) or "-"

    sizes = [0, 1, 2, 7, 8, 9, 63, 64, 65, 130, 1500, 4100]
    sizes += [rnd.randrange(0, 600) for _ in range(60)]
    mask_lists = [[], [(0, 1, 0xFF)], [(1, 1, 0x0F), (4, 3, 0xFF)],
                  [(8, 1, 0x03), (10, 2, 0xFF), (1, 1, 0x0F)],          # not in order
                  [(2, 4, 0x10), (3, 1, 0x01)],                         # overlap: later wins
                  [(5, 0, 0x80)],                                       # length 0: first byte
                  [(100, 3, 0x3F), (4094, 4, 0x30)]]                    # past short strings
    for size in sizes:
        data = bytes(rnd.getrandbits(8) for _ in range(size))
        for masks in mask_lists + [[(rnd.randrange(0, max(size, 1) + 4), rnd.randrange(0, 5),
                                     rnd.randrange(256)) for _ in range(rnd.randrange(1, 6))]]:
            lines.append(f"icrc {dec(data)} {';'.join(f'{o},{n},{m}' for o, n, m in masks) or '-'}")
            want.append(_masked_crc32(data, masks))
        for _ in range(3):
            first = rnd.choice([1, 2, -3, 0, -size - 5, rnd.randrange(1, size + 3)])
            last = rnd.choice([size, size - 4, -1, -2, size + 7, rnd.randrange(0, size + 3)])
            nbits = rnd.randrange(0, 9)
            value = rnd.getrandbits(31)
            lines.append(f"crc30 {dec(data)} - {first} {last} {value} {nbits}")
            want.append(_crc30_range(data, first, last, value, nbits))
        value, nbits = rnd.choice([(0, 0), (2, 2), (1, 2), (3, 2)])
        lines.append(f"crc30ba {dec(data)} - {value} {nbits}")
        want.append(_crc30_range(data, 1, size, value, nbits))
    # icrc32_parts: the ICRC of a .. b .. c:sub(first, last) without the concatenation, masks
    # anywhere (in a, across the joins, in c's range, past the end), pieces empty or left out
    for _ in range(400):
        pieces = [bytes(rnd.getrandbits(8) for _ in range(rnd.choice([0, 1, 3, 8, 20, 40,
                                                                      rnd.randrange(0, 200)])))
                  for _ in range(3)]
        a, b, c = pieces
        first = rnd.choice([1, 2, 0, -3, -len(c) - 5, rnd.randrange(1, len(c) + 3)])
        last = rnd.choice([len(c), -1, -5, 0, len(c) + 7, rnd.randrange(0, len(c) + 3)])
        whole = a + b + _lua_range(c, first, last)
        masks = [(rnd.randrange(0, len(whole) + 6), rnd.randrange(0, 6), rnd.randrange(256))
                 for _ in range(rnd.randrange(0, 7))]
        if rnd.random() < 0.3 and len(a) + len(b) > 2:        # a run across the join
            masks.append((len(a) + len(b) - 2, 4, 0x0F))
        ta = "nil" if not a and rnd.random() < 0.5 else dec(a)
        tb = "nil" if not b and rnd.random() < 0.5 else dec(b)
        tm = ";".join(f"{o},{n},{m}" for o, n, m in masks) or "-"
        lines.append(f"parts {ta} {tb} {dec(c)} {tm} {first} {last}")
        want.append(_masked_crc32(whole, masks))
    # masks both implementations refuse (a value that is no byte)
    lines.append("icrc 1,2,3,4,5,6,7,8,9 1,1,256")
    want.append(None)
    lines.append("parts 1,2 3,4 5,6,7,8,9 1,1,256 1 -1")
    want.append(None)
    return lines, want


@pytest.mark.parametrize("lua", ["tshark", "lua5.2", "lua5.4"])
def test_c_and_lua_crcs_agree(lua, modules, tmp_path):
    lines, want = _cases()
    if lua == "tshark":
        tshark = _find_tshark()
        version = _tshark_lua_version(tshark, tmp_path)
    else:
        exe = shutil.which(lua)
        if exe is None:
            pytest.skip(f"no {lua} interpreter installed (apt-get install {lua})")
        version = lua[3:]
    if version not in modules:
        pytest.skip(f"no ub_core module for Lua {version} (apt-get install liblua{version}-dev)")
    cases, out, script = tmp_path / "cases.txt", tmp_path / "out.txt", tmp_path / "core.lua"
    cases.write_text("\n".join(lines) + "\n")
    script.write_text(RUNNER % {"dispatch_bits": _section(DISPATCH), "flits_bits": _section(FLITS),
                                "module": json.dumps(str(modules[version])),
                                "out": json.dumps(str(out)), "cases": json.dumps(str(cases))},
                      encoding="utf-8")
    if lua == "tshark":
        empty = tmp_path / "empty.pcap"
        with PcapWriter(empty, 1):
            pass
        cmd = [tshark, "-n", "-X", f"lua_script:{script}", "-r", str(empty)]
    else:
        cmd = [exe, str(script)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.exists(), res.stdout + res.stderr
    got = [ln.split() for ln in out.read_text().splitlines()]
    assert len(got) == len(want), res.stderr[-2000:]
    bad = []
    for ln, (lua_r, c_r), w in zip(lines, got, want):
        expect = "error" if w is None else str(w)
        if lua_r != expect or c_r != expect:
            bad.append((ln[:80], lua_r, c_r, expect))
    assert not bad, bad[:5]


# ---- the loader and the preference ---------------------------------------------------------

def _status(tshark: str, folder: Path) -> str:
    res = subprocess.run([tshark, "-G", "currentprefs", "-X", f"lua_script:{folder / 'ub.lua'}"],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"At start-up: (.*)\n(?:#.*\n)*#?ub\.crc_core: (\w+)", res.stdout)
    assert m, res.stdout[-500:] + res.stderr
    return m.group(1), m.group(2)


def test_loader_says_which_crcs_run(tshark, plugin_dirs):
    status, default = _status(tshark, plugin_dirs["with"])
    assert status.startswith("compiled CRCs from ") and status.endswith(
        build_core.module_name(plugin_dirs["version"])), status
    assert default == "TRUE"
    status, default = _status(tshark, plugin_dirs["without"])
    assert status.startswith("Lua CRCs (no compiled "), status
    assert default == "FALSE"


def test_installed_in_the_personal_plugins_folder(tshark, plugin_dirs, tmp_path):
    """Copied with the plugin into the personal Lua plugins folder (no -X lua_script), the
    module is found there, Wireshark does not take it for a plugin of its own, and the ICRCs
    check good."""
    import os
    home = tmp_path / "home"
    folder = home / ".local" / "lib" / "wireshark" / "plugins"
    shutil.copytree(plugin_dirs["with"], folder)
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    res = subprocess.run([tshark, "-G", "currentprefs"], capture_output=True, text=True,
                         timeout=60, env=env, cwd=str(home))
    assert f"At start-up: compiled CRCs from {folder}/ub_core-" in res.stdout, res.stderr
    res = subprocess.run([tshark, "-G", "plugins"], capture_output=True, text=True, timeout=60,
                         env=env, cwd=str(home))
    assert "ub.lua" in res.stdout and "ub_core" not in res.stdout, res.stdout
    res = subprocess.run([tshark, "-n", "-r", str(ROOT / "captures" / "uboe_transactions.pcap"),
                          "-T", "fields", "-e", "ub.icrc.status"], capture_output=True,
                         text=True, timeout=60, env=env, cwd=str(home))
    assert set(res.stdout.split()) == {"good"}, res.stdout + res.stderr


def _bad_crc_frames() -> list[bytes]:
    """Native packets with bad ICRCs (a covered byte flipped) and good ones, DLL control blocks
    with bad BCRCs (the CRC itself and a covered byte flipped) and good ones."""
    out = []
    for p in [cfg6_mgmt(), cfg9_compact(), cfg7_tpack(), *more_native_packets()[:8]]:
        out.append(p)
        b = bytearray(p)
        b[len(b) // 2] ^= 0x40
        out.append(bytes(b))
        out.append(p[:-1] + bytes([p[-1] ^ 0x01]))
    for p in dllcb_packets():
        out += [p, p[:-1] + bytes([p[-1] ^ 0x02]), bytes([p[0], p[1], p[2] ^ 0x01]) + p[3:]]
    return out


def test_broken_module_falls_back_to_lua(tshark, plugin_dirs, tmp_path):
    """A file of the module's name that is no loadable library: the Lua CRCs run, the status
    says why, and the ICRC verdicts are the same as without a module."""
    d = tmp_path / "broken"
    shutil.copytree(plugin_dirs["without"], d)
    (d / build_core.module_name(plugin_dirs["version"])).write_bytes(b"not an ELF file\n")
    status, default = _status(tshark, d)
    assert "does not load" in status and default == "FALSE", status
    pcap = write(tmp_path / "bad.pcap", 148, _bad_crc_frames())
    keys = ["ub.icrc.status", "ub.icrc.computed", "ub.bcrc.status", "ub.bcrc.computed"]
    assert _fields(tshark, d, pcap, keys) == _fields(tshark, plugin_dirs["without"], pcap, keys)


# ---- the whole plugin, with and without the module -----------------------------------------

FIELD_KEYS = None


def _keys() -> list[str]:
    global FIELD_KEYS
    if FIELD_KEYS is None:
        FIELD_KEYS = lua_keys() + ["_ws.col.Info", "_ws.col.Protocol", "_ws.expert.message",
                                   "_ws.lua.error"]
    return FIELD_KEYS


def _fields(tshark, folder: Path, pcap: Path, keys: list[str], *extra) -> str:
    cmd = [tshark, "-n", "-X", f"lua_script:{folder / 'ub.lua'}", "-r", str(pcap), "-T",
           "fields", "-E", "occurrence=a", "-E", "aggregator=|", *extra]
    for k in keys:
        cmd += ["-e", k]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "Lua" not in res.stderr, res.stderr[-2000:]
    return res.stdout


def _captures(tmp: Path) -> list[Path]:
    """The bundled captures, the ns-3-UB traces where present, and built ones with bad CRCs."""
    from test_lua_flits import cut, stream
    from ubpkt.record import LINKTYPE_FLITS
    caps = sorted((ROOT / "captures").glob("*.pcap")) + [ROOT / "docs" / "screenshots" /
                                                        "ub_analysis.pcap"]
    ns3 = Path(__file__).resolve().parents[2].parent / "shared" / "interop" / "ns3-ub"
    if not ns3.exists():
        ns3 = Path("/work/shared/interop/ns3-ub")
    caps += sorted(ns3.glob("*.pcap"))
    bad_uboe = []
    for p in uboe_packets():
        bad_uboe += [p, p[:-2] + bytes([p[-2] ^ 0x80]) + p[-1:]]
    caps.append(write(tmp / "bad_uboe.pcap", 1, bad_uboe))
    caps.append(write(tmp / "bad_native.pcap", 148, _bad_crc_frames()))
    data, _ = stream(bad={2, 3, 9})
    caps.append(write(tmp / "bad_flits.pcap", LINKTYPE_FLITS, cut(data, 5)))
    return [c for c in caps if c.exists()]


def test_fields_identical_with_and_without_the_module(tshark, plugin_dirs, tmp_path):
    keys = _keys()
    seen = {"good": 0, "bad": 0}
    for pcap in _captures(tmp_path):
        with_c = _fields(tshark, plugin_dirs["with"], pcap, keys)
        without = _fields(tshark, plugin_dirs["without"], pcap, keys)
        assert with_c == without, f"{pcap.name}: fields differ with the compiled CRCs"
        assert with_c.strip(), pcap.name
        for word in seen:
            seen[word] += with_c.count(word)
    # the comparison saw CRCs computed both ways, good and bad (ICRC and BCRC)
    assert seen["good"] > 50 and seen["bad"] > 20, seen


FAKE_CORE = r"""
#include <lua.h>
#include <lauxlib.h>
/* a stand-in ub_core whose CRCs are always 7: shows whether the plugin calls the module */
static int seven(lua_State *L) { lua_pushinteger(L, 7); return 1; }
int luaopen_ub_core(lua_State *L)
{
    lua_newtable(L);
    lua_pushcfunction(L, seven); lua_setfield(L, -2, "icrc32");
    lua_pushcfunction(L, seven); lua_setfield(L, -2, "crc30");
    return 1;
}
"""


def test_module_is_called_and_the_preference_switches_back(tshark, plugin_dirs, tmp_path):
    """A stand-in module whose CRCs are all 7 changes the ICRC/BCRC verdicts of every capture
    (the plugin does call the module, for the ICRC and both BCRC paths); with -o
    ub.crc_core:FALSE its output is the Lua CRCs' again (one and two passes)."""
    version = plugin_dirs["version"]
    fake = tmp_path / "fake"
    shutil.copytree(plugin_dirs["without"], fake)
    src = tmp_path / "fake_core.c"
    src.write_text(FAKE_CORE)
    cc = build_core.find_compiler()
    cmd = build_core.compile_command(cc, build_core.find_headers(version),
                                     fake / build_core.module_name(version))
    cmd[cmd.index(str(build_core.SOURCE))] = str(src)
    subprocess.run(cmd, check=True, capture_output=True)
    keys = ["ub.icrc.status", "ub.icrc.computed", "ub.bcrc.status", "ub.bcrc.computed",
            "_ws.expert.message", "_ws.col.Info"]
    for pcap in _captures(tmp_path)[-3:]:             # bad ICRCs (UBoE, native), bad BCRCs (flits)
        lua = _fields(tshark, plugin_dirs["without"], pcap, keys)
        seven = _fields(tshark, fake, pcap, keys)
        assert seven != lua and "0x00000007" in seven, pcap.name
        for extra in ((), ("-2",)):
            off = _fields(tshark, fake, pcap, keys, *extra, "-o", "ub.crc_core:FALSE")
            assert off == _fields(tshark, plugin_dirs["without"], pcap, keys, *extra), pcap.name


def test_build_script_reports_missing_headers(tmp_path, monkeypatch):
    """build_core says why it cannot build (no headers) instead of failing in the compiler."""
    monkeypatch.setattr(build_core, "find_compiler", lambda: "cc")
    monkeypatch.setattr(build_core, "find_headers", lambda v: None)
    path, why = build_core.build("5.2", tmp_path)
    assert path is None and "liblua5.2-dev" in why
    assert build_core.main(["--lua", "5.2", "--out", str(tmp_path)]) == 1
    assert not list(tmp_path.iterdir())
