"""The plugin's bit helpers and CRCs (the ``-- BEGIN BITS`` section of ub_dispatch.lua) use only
what Lua 5.2 (Wireshark 4.0) and Lua 5.4 (Wireshark 4.4+, no ``bit32``) share: the section is run
in every Lua that can be had here (tshark's own, ``lua5.2``, ``lua5.4``) and its results compared
with Python's integer operations, zlib's CRC-32 and ubpkt's CRC30."""
from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import zlib

import pytest

from ubpkt.capture import PcapWriter
from ubpkt.link.crc30 import INIT, crc30_bits, crc30_update

from test_lua import ROOT, _find_tshark

DISPATCH = ROOT / "dissectors" / "ub_dispatch.lua"

# runs the section on the cases of a JSON file, writes the results as one JSON line each
RUNNER = r"""
local floor = math.floor
%(bits)s
local function ba(t) return {len = function() return #t end, raw = function() return string.char(table.unpack(t)) end,
                             get_index = function(_, i) return t[i + 1] end} end
local out = assert(io.open(%(out)s, "w"))
for line in io.lines(%(cases)s) do
  local op, a, b, c = line:match("^(%%w+) (%%S+) (%%S+) ?(.*)$")
  local r
  if op == "crc32" or op == "crc30" then
    local bytes, masks = {}, {}
    for x in a:gmatch("%%d+") do bytes[#bytes + 1] = tonumber(x) end
    if op == "crc32" then
      for o, n, m in b:gmatch("(%%d+),(%%d+),(%%d+)") do
        masks[#masks + 1] = {tonumber(o), tonumber(n), tonumber(m)}
      end
      r = icrc32(ba(bytes), masks)
    else
      local v, n = c:match("(%%d+) (%%d+)")
      r = crc30(ba(bytes), tonumber(v), tonumber(n))
    end
  else
    local f = ({band = band, bor = bor, bxor = bxor, rshift = rshift, lshift = lshift})[op]
    r = f(tonumber(a), tonumber(b))
  end
  out:write(string.format("%%d", r), "\n")   -- %%d fails in 5.4 on a float: results must be integers
end
out:close()
"""


def _bits_section() -> str:
    m = re.search(r"-- BEGIN BITS\n(.*)\n-- END BITS", DISPATCH.read_text(encoding="utf-8"), re.S)
    assert m, "ub_dispatch.lua has no BITS section"
    return m.group(1)


def _cases() -> tuple[list[str], list[int]]:
    rnd = random.Random(13)
    lines, want = [], []
    edge = [0, 1, 0xFF, 0x100, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xEDB88320]
    for _ in range(300):
        a = rnd.choice(edge + [rnd.getrandbits(32)] * 4)
        b = rnd.choice(edge + [rnd.getrandbits(32)] * 4)
        n = rnd.randrange(0, 32)
        for op, r in (("band", a & b), ("bor", a | b), ("bxor", a ^ b),
                      ("rshift", a >> n), ("lshift", (a << n) & 0xFFFFFFFF)):
            lines.append(f"{op} {a} {n if op.endswith('shift') else b}")
            want.append(r)
    for size in (0, 1, 7, 64, 300, 5000):   # 5000: runs of 4096 bytes, a mask across
        data = bytes(rnd.getrandbits(8) for _ in range(size))
        masks = [] if size < 8 else [(1, 1, 0x0F), (4, 3, 0xFF)] + ([(4094, 4, 0x30)] if size > 4100 else [])
        masked = bytearray(data)
        for o, n, m in masks:
            masked[o] |= m
            for j in range(o + 1, o + n):
                masked[j] |= 0xFF
        lines.append(f"crc32 {','.join(map(str, data)) or '-'} "
                     f"{';'.join(f'{o},{n},{m}' for o, n, m in masks) or '-'}")
        want.append(zlib.crc32(bytes(masked)))
        for value, nbits in ((0, 0), (2, 2), (1, 2)):
            lines.append(f"crc30 {','.join(map(str, data)) or '-'} - {value} {nbits}")
            want.append(crc30_bits(crc30_update(INIT, data), value, nbits))
    return lines, want





@pytest.mark.parametrize("lua", ["tshark", "lua5.2", "lua5.4"])
def test_bits_section(lua, tmp_path):
    lines, want = _cases()
    cases, out, script = tmp_path / "cases.txt", tmp_path / "out.txt", tmp_path / "bits.lua"
    cases.write_text("\n".join(lines) + "\n")
    script.write_text(RUNNER % {"bits": _bits_section(), "out": json.dumps(str(out)),
                                "cases": json.dumps(str(cases))}, encoding="utf-8")
    if lua == "tshark":
        empty = tmp_path / "empty.pcap"
        with PcapWriter(empty, 1):
            pass
        cmd = [_find_tshark(), "-n", "-X", f"lua_script:{script}", "-r", str(empty)]
    else:
        exe = shutil.which(lua)
        if exe is None:
            pytest.skip(f"no {lua} interpreter installed (apt-get install {lua})")
        cmd = [exe, str(script)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.exists(), res.stdout + res.stderr
    got = [int(x) for x in out.read_text().split()]
    bad = [(ln, g, w) for ln, g, w in zip(lines, got, want) if g != w]
    assert len(got) == len(want) and not bad, (bad[:5], res.stderr[-2000:])


def test_no_bit32_left():
    """Nothing outside a comment calls bit32 (Lua 5.4 has none)."""
    for f in ("ub_dispatch.lua", "ub.lua", "ub_flits.lua"):
        code = [ln.split("--", 1)[0] for ln in (ROOT / "dissectors" / f).read_text().splitlines()]
        assert not any("bit32" in ln for ln in code), f


def test_no_float_powers():
    """No ``2 ^ n`` in the walk's code: in Lua 5.4 it is a float, and a float field value shows as
    "3.0" where tostring or .. meets it; POW2[n] is an integer there and the same number in 5.2."""
    for f in (DISPATCH, ROOT / "dissectors" / "ub_flits.lua"):
        code = [ln.split("--", 1)[0] for ln in f.read_text().splitlines()]
        assert not [ln for ln in code if re.search(r"\b2 ?\^", ln)], f.name


@pytest.mark.parametrize("luac", ["luac5.2", "luac5.4"])
def test_plugin_compiles(luac):
    """Both plugin files are valid source for Lua 5.2 and 5.4 (syntax only: running them needs
    Wireshark's API)."""
    exe = shutil.which(luac)
    if exe is None:
        pytest.skip(f"no {luac} installed (apt-get install lua{luac[4:]})")
    for f in ("ub.lua", "ub_dispatch.lua", "ub_flits.lua"):
        res = subprocess.run([exe, "-p", str(ROOT / "dissectors" / f)], capture_output=True,
                             text=True, timeout=60)
        assert res.returncode == 0, res.stderr
