"""Issue 13: flit streams (pcap link type 151, wtap_encap USER4) in the plugin (ub_flits.lua):
blocks, control blocks, BCRCs, PLENGTH and the reassembled packets, compared field by field with
ubpkt's own decode of the same capture (``iter_records``, what ``ubpkt decode -T json`` prints).

A plugin frame is a pcap record; ubpkt's records are the stream's units (DLLCBs, DLLDPs).  The
plugin shows a unit in the frame holding its last flit, so the expected values of a frame are
those of the units ending in it, concatenated in stream order (the plugin's tree goes unit by
unit).  The streams are cut into records at awkward places: inside blocks, inside a DLLDP's
blocks, records with only a piece of a block."""
from __future__ import annotations

import json
import random
import re
import shutil
import subprocess

import pytest

from ubpkt.capture import PcapWriter
from ubpkt.capture.stream import iter_records
from ubpkt.link import control as C
from ubpkt.link import fill_plength, frame_packet
from ubpkt.link.crc30 import block_crc
from ubpkt.link.framing import Deframer
from ubpkt.profile import SPEC
from ubpkt.record import LINKTYPE_FLITS

from test_lua import (CARRIER_KEYS, LAST_ONLY, LUA, _find_tshark, _generated, cfg6_mgmt,
                      cfg7_tpack, cfg9_compact, compare, run_tshark)

FLITS_LUA = LUA.parent / "ub_flits.lua"


@pytest.fixture(scope="module")
def tshark():
    return _find_tshark()


def keys() -> list[str]:
    # ub.cci.* and LAST_ONLY: ubpkt keeps one value per record there (tested on 148 captures)
    return [k for k in sorted(_generated().first_hf) if k not in LAST_ONLY
            and not k.startswith("ub.cci.")] + CARRIER_KEYS + ["data.data", "data.len"]


def packets() -> list[bytes]:
    """Native packets of one, two and three blocks (632 / 1266 payload bytes per block)."""
    big = cfg9_compact(n=200)
    return [fill_plength(p) for p in (
        cfg9_compact(), cfg7_tpack(), cfg6_mgmt(),
        big[:4] + big[4:] + bytes(range(256)) * 3,          # 2 blocks
        big + bytes(i % 251 for i in range(1500)),          # 3 blocks
    )]


def stream(bad: set = frozenset(), crc_mode: bool = True) -> tuple[bytes, list]:
    """A flit stream: control blocks (Null, Crd_Ack, Retry_Req, Init) between the DLLDPs, and
    one DLLCB between the blocks of a 3-block DLLDP; ``bad``: unit numbers whose payload byte 30
    (covered by the BCRC, past every header) is flipped; ``crc_mode`` False: non-CRC mode (END
    bytes, no BCRC)."""
    m = {"crc_mode": crc_mode}
    units = [C.null(**m)]
    for i, p in enumerate(packets()):
        units.append(frame_packet(p, crc_mode))
        units.append(C.crd_ack(i + 1, [i] * 16, **m))
    units.append(C.retry_req(7, **m))
    units.append(C.InitParams().encode(**m))
    # a Crd_Ack between the second and third block of a 3-block DLLDP
    three = frame_packet(packets()[4], crc_mode)
    units.append(three[:1280] + C.crd_ack(9, [1] * 16, **m) + three[1280:])
    out = []
    for n, u in enumerate(units):
        u = bytearray(u)
        if n in bad:
            u[30] ^= 0x10
        out.append(bytes(u))
    return b"".join(out), units


def cut(data: bytes, seed: int) -> list[bytes]:
    """Records of random sizes (1 byte .. 900 bytes), so blocks and DLLDPs span records."""
    rnd = random.Random(seed)
    out, pos = [], 0
    while pos < len(data):
        n = rnd.choice([1, 7, 20, 33, 100, 260, 640, 900])
        out.append(data[pos:pos + n])
        pos += n
    return out


def write(path, records, linktype=LINKTYPE_FLITS):
    with PcapWriter(path, linktype) as w:
        for i, r in enumerate(records):
            w.write(r, i * 1000)
    return path


def unit_ends(data: bytes, crc_mode: bool = True) -> list[int]:
    """The stream offset after each unit's last flit, in ubpkt's record order."""
    d = Deframer(crc_mode, controls=True)
    ends = []
    for u in d.feed(data) + d.close():
        if u.kind == "packet":
            b = u.blocks[-1]
            ends.append(b.offset + b.flits * 20)
        else:
            ends.append(u.offset + u.flits * 20)
    return ends


def expected_per_frame(path, records, data, crc_mode: bool = True):
    """ubpkt's records of the capture, merged per pcap record (the frame of each unit's end)."""
    profile = None if crc_mode else SPEC.with_(crc_mode=False)
    recs = [r for r in iter_records(path, profile=profile) if r.get("frame") is not None]
    ends = unit_ends(data, crc_mode)
    assert len(recs) == len(ends)
    bounds, pos = [], 0
    for r in records:
        pos += len(r)
        bounds.append(pos)
    frames = [{"fields": {}, "issues": [], "units": 0} for _ in records]
    for rec, end in zip(recs, ends):
        n = next(i for i, b in enumerate(bounds) if b >= end)
        f = frames[n]
        f["units"] += 1
        f["issues"] += rec["issues"]
        for k, v in rec["fields"].items():
            vals = v if isinstance(v, list) else [v]
            f["fields"].setdefault(k, []).extend(vals)
    for f in frames:
        f["fields"] = {k: v[0] if len(v) == 1 else v for k, v in f["fields"].items()}
    return recs, frames


def check(tshark, tmp_path, name, data, records, extra=(), crc_mode: bool = True):
    path = write(tmp_path / name, records)
    recs, frames = expected_per_frame(path, records, data, crc_mode)
    ks = keys()
    rows = run_tshark(tshark, path, ks, extra)
    n = compare([f["fields"] for f in frames], rows, ks, name)
    assert n > 30 * len(recs), f"{name}: only {n} values compared"
    return recs, frames, rows


def test_good_stream_cut_anywhere(tshark, tmp_path):
    data, _ = stream()
    for seed in (1, 2):
        records = cut(data, seed)
        recs, frames, rows = check(tshark, tmp_path, f"good{seed}.pcap", data, records)
        assert {r["fields"]["ub.dll.kind"] for r in recs} == {"DLLCB", "DLLDP"}
        assert max(r["fields"]["ub.dlldp.blocks"] for r in recs
                   if r["fields"]["ub.dll.kind"] == "DLLDP") == 3
        assert not [i for r in recs for i in r["issues"] if i["severity"] == "error"]
        for f, row in zip(frames, rows):
            assert "Bad BCRC" not in row["_experts"] and "BCRC mismatch" not in row["_experts"]
            if f["units"] == 0:         # a piece of a block or of a DLLDP only: said so
                assert "continued later" in row["_experts"] or "of the next block" in \
                    row["_experts"], row["_experts"]


def test_one_record_per_unit_and_two_passes(tshark, tmp_path):
    data, units = stream()
    # the Crd_Ack inside the 3-block DLLDP is its own record: the DLLDP spans three records
    recs, frames, rows = check(tshark, tmp_path, "units.pcap", data, units)
    check(tshark, tmp_path, "units2.pcap", data, units, extra=("-2",))
    # the whole stream as one record: every unit in one frame
    check(tshark, tmp_path, "one.pcap", data, [data], extra=("-2",))


def test_bad_bcrcs(tshark, tmp_path):
    data, units = stream(bad={2, 3, 9})       # a DLLDP, a Crd_Ack, the 2-block DLLDP
    records = cut(data, 3)
    recs, frames, rows = check(tshark, tmp_path, "bad.pcap", data, records)
    bad_units = [r for r in recs if "bad" in json.dumps(r["fields"].get("ub.bcrc.status"))]
    assert len(bad_units) == 3
    for f, row in zip(frames, rows):
        want = sum(1 for i in f["issues"] if i["layer"] == "ub.bcrc"
                   and i["severity"] == "error")
        got = sum("CRC30 0x" in m for m in row["_experts"].split("|"))
        assert got == want, (row["_experts"], f["issues"])


def test_plength_and_padding_problems(tshark, tmp_path):
    """Padding bytes that are not zero; a PLENGTH of a reserved encoding (CRC mode, PLENGTH[4:0]
    = 21): the plugin reports what ubpkt reports, and the fields still agree."""
    p = next(p for p in packets() if len(frame_packet(p)) - 4 > len(p))
    blk = bytearray(frame_packet(p))
    blk[len(p)] = 0x5A                         # the first padding byte (the BCRC resealed)
    blk[-4:] = block_crc(bytes(blk[:-4]), 0).to_bytes(4, "big")
    odd = bytearray(frame_packet(p))
    odd[3] = (odd[3] & 0xE0) | 21
    odd[-4:] = block_crc(bytes(odd[:-4]), 0).to_bytes(4, "big")
    data = C.null() + bytes(blk) + bytes(odd)
    recs, frames, rows = check(tshark, tmp_path, "pad.pcap", data, [data])
    msgs = [i["message"] for r in recs for i in r["issues"]]
    assert "flit padding bytes are not zero" in msgs
    assert any("uses a reserved encoding" in m for m in msgs)
    assert "flit padding bytes are not zero" in rows[0]["_experts"]
    assert re.search(r"PLENGTH 0x[0-9a-f]{4} uses a reserved encoding", rows[0]["_experts"])


NON_CRC = ("-o", "ub.crc_mode:non-crc")


def test_non_crc_stream(tshark, tmp_path):
    """Non-CRC mode (UB 2.0 Table 4-4: no BCRC, an END byte ends a DLLDP's last block and every
    DLLCB), chosen by the "Data link CRC mode" preference: cut anywhere, one and two passes,
    every field as ubpkt decodes it under a profile with crc_mode false."""
    data, units = stream(crc_mode=False)
    for seed in (1, 5):
        recs, frames, rows = check(tshark, tmp_path, f"nc{seed}.pcap", data, cut(data, seed),
                                   NON_CRC, crc_mode=False)
        assert max(r["fields"]["ub.dlldp.blocks"] for r in recs
                   if r["fields"]["ub.dll.kind"] == "DLLDP") == 3
        assert not [i for r in recs for i in r["issues"] if i["severity"] == "error"]
        assert all("ub.end.error_flag" in r["fields"] and "ub.bcrc.crc30" not in r["fields"]
                   for r in recs)
        assert not any("PLENGTH" in row["_experts"] or "CLENGTH" in row["_experts"]
                       for row in rows)
    check(tshark, tmp_path, "nc-units.pcap", data, units, NON_CRC + ("-2",), crc_mode=False)


@pytest.mark.parametrize("size", [100, 636, 637, 640, 641, 1276, 1277, 1278, 2000, 10209])
def test_non_crc_plength_edges(tshark, tmp_path, size):
    """Packet sizes at the non-CRC block edges (a payload that exactly fills its blocks ends
    with a one-flit block: LBH + END), the largest packet, and an ERROR_FLAG in END: the
    reassembled packet and PLENGTH agree with ubpkt; the same stream read in CRC mode reports
    the BCRCs it does not have."""
    big = cfg9_compact(n=200)
    p = fill_plength((big + bytes(i % 253 for i in range(size)))[:size] if size > len(big)
                     else big[:size], False)
    framed = frame_packet(p, False, error_flag=size == 641)
    data = C.null(crc_mode=False) + framed
    recs, frames, rows = check(tshark, tmp_path, f"e{size}.pcap", data, [data[:20], data[20:]],
                               NON_CRC, crc_mode=False)
    assert recs[-1]["fields"]["ub.dlldp.error_flag"] == (1 if size == 641 else 0)
    assert "reserved encoding" not in rows[-1]["_experts"]


def test_plugin_registers_user4_not_user2(tshark, tmp_path):
    """151 is decoded; 149 (the old number) stays Wireshark's (PKTAP on USER2)."""
    data, _ = stream()
    for lt, want in ((151, True), (149, False)):
        path = write(tmp_path / f"lt{lt}.pcap", [data], lt)
        res = subprocess.run([tshark, "-n", "-X", f"lua_script:{LUA}", "-r", str(path), "-T",
                              "fields", "-e", "ub.dll.kind"], capture_output=True, text=True,
                             timeout=60)
        assert bool(res.stdout.strip()) == want, res.stdout + res.stderr


# ------------------------------------------------------------------------------------------------
# the CRC30 of ub_flits.lua in Lua 5.2 and 5.4 (no bit32): the BITS section run on its own

RUNNER = r"""
local floor = math.floor
%(bits)s
local out = assert(io.open(%(out)s, "w"))
for line in io.lines(%(cases)s) do
  local hex, v, n = line:match("^(%%x*) (%%d+) (%%d+)$")
  local s = (hex:gsub("%%x%%x", function(h) return string.char(tonumber(h, 16)) end))
  out:write(string.format("%%d", flit_crc30(s, 1, #s, tonumber(v), tonumber(n))), "\n")
end
out:close()
"""


def _bits() -> str:
    m = re.search(r"-- BEGIN BITS\n(.*)\n-- END BITS", FLITS_LUA.read_text(encoding="utf-8"),
                  re.S)
    assert m, "ub_flits.lua has no BITS section"
    return m.group(1)


@pytest.mark.parametrize("lua", ["tshark", "lua5.2", "lua5.4"])
def test_flit_crc30_in_every_lua(lua, tmp_path):
    rnd = random.Random(7)
    lines, want = [], []
    for size in (0, 1, 16, 36, 99, 636):
        data = bytes(rnd.getrandbits(8) for _ in range(size))
        for info, covers in ((0, True), (1, True), (2, True), (3, True), (0, False)):
            lines.append(f"{data.hex()} {info} {2 if covers else 0}")
            want.append(block_crc(data, info, covers))
    cases, out, script = tmp_path / "cases.txt", tmp_path / "out.txt", tmp_path / "crc.lua"
    cases.write_text("\n".join(lines) + "\n")
    script.write_text(RUNNER % {"bits": _bits(), "out": json.dumps(str(out)),
                                "cases": json.dumps(str(cases))}, encoding="utf-8")
    if lua == "tshark":
        empty = write(tmp_path / "empty.pcap", [], 1)
        cmd = [_find_tshark(), "-n", "-X", f"lua_script:{script}", "-r", str(empty)]
    else:
        exe = shutil.which(lua)
        if exe is None:
            pytest.skip(f"no {lua} interpreter installed (apt-get install {lua})")
        cmd = [exe, str(script)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.exists(), res.stdout + res.stderr
    assert [int(x) for x in out.read_text().split()] == want


def test_dll_engine_stream(tshark, tmp_path):
    """What `ubpkt link frame --controls` writes (a DLL engine pair: Init, retry handshake,
    Crd_Acks, NOBs, CRD/ACK bits; records of up to 16 flits, so 32-flit blocks span records):
    every field agrees with ubpkt's decode."""
    from click.testing import CliRunner
    from ubpkt.capture import open_capture
    from ubpkt_cli.main import main
    rnd = random.Random(4)
    native = write(tmp_path / "n.pcap", [fill_plength(cfg9_compact(n=rnd.randrange(10, 250))
                                                      + bytes(rnd.randrange(0, 1500)))
                                         for _ in range(40)], 148)
    out = tmp_path / "fc.pcap"
    r = CliRunner().invoke(main, ["link", "frame", str(native), "-o", str(out), "--controls"])
    assert r.exit_code == 0, r.output
    with open_capture(out) as cap:
        assert cap.linktype == LINKTYPE_FLITS
        records = [p.data for p in cap]
    recs, frames, rows = check(tshark, tmp_path, "fc.pcap", b"".join(records), records)
    kinds = [r["fields"].get("ub.lch.block") for r in recs]
    assert kinds.count(None) == 40 and "Init" in kinds and "Crd_Ack" in kinds
    assert sum(f["units"] == 0 for f in frames) > 10       # records holding pieces only
