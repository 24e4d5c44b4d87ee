"""ub.lua's display (issue 13): Protocol/Source/Destination/Info columns, the UnifiedBus root
item's summary and the colouring rules of dissectors/ub.colorfilters, through tshark."""
from __future__ import annotations

import os
import subprocess

import pytest

from test_lua import (LUA, ROOT, _find_tshark, btah, cfg3_native, cfg6_mgmt, cfg7_tpack,
                      cfg9_compact, dllcb_crd_ack, maetah, rtph, uboe, uboe_packets, write)
from test_lua_analysis import psns

COLORFILTERS = ROOT / "dissectors" / "ub.colorfilters"
COLS = ["_ws.col.Protocol", "_ws.col.Source", "_ws.col.Destination", "_ws.col.Info"]


@pytest.fixture(scope="module")
def tshark():
    return _find_tshark()


def fields(tshark, pcap, keys, *extra, env=None):
    cmd = [tshark, "-n", "-X", f"lua_script:{LUA}", "-r", str(pcap), "-T", "fields",
           *extra]
    for k in [*keys, "_ws.lua.error"]:
        cmd += ["-e", k]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    rows = [(line.split("\t") + [""] * len(keys))[:len(keys) + 1]
            for line in res.stdout.splitlines()]
    assert all(not r[-1] for r in rows), rows
    return [r[:-1] for r in rows]


def test_uboe_columns_replace_udp_text(tshark, tmp_path):
    pcap = write(tmp_path / "uboe.pcap", 1, uboe_packets())
    rows = fields(tshark, pcap, COLS)
    assert rows[0] == ["UB", "10.0.0.1", "10.0.0.2", "RTP_Data psn=1 Write tassn=77 len=64"]
    assert rows[2][1:3] == ["fd00::1", "fd00::2"]
    assert rows[4][3] == "RTP_Data psn=5 Read tassn=77 len=4096"
    assert rows[5][3].endswith("psn=6") and "tassn" not in rows[5][3]
    assert all("4792" not in r[3] and "Len=" not in r[3] for r in rows)


def test_native_columns_cna_and_eid(tshark, tmp_path):
    bad = cfg6_mgmt(icrc_ok=False)
    pcap = write(tmp_path / "n.pcap", 148, [cfg9_compact(), cfg7_tpack(), cfg6_mgmt(), bad,
                                            cfg3_native(), dllcb_crd_ack()])
    rows = fields(tshark, pcap, COLS)
    assert rows[0] == ["UB", "0x0100", "0x0200", "CFG9 Write tassn=11 len=64"]
    assert rows[1] == ["UB", "0x123456", "0x654321", "CFG7 TPACK-CC/TPNAK-CC psn=99"]
    # an EIDH wins over the CNAs
    assert rows[2][:3] == ["UB", "EID 0xabcde", "EID 0x12345"]
    assert rows[3][3].endswith("[bad ICRC]")
    # CFG 3: the IP addresses stay, the UB notes replace UDP's port text
    assert rows[4][1:] == ["10.0.0.1", "10.0.0.2",
                           "CFG3 RTP_Data psn=42 Write_with_immediate tassn=77 len=16"]
    assert rows[5][:3] == ["UB", "", ""]


def test_root_item_carries_the_info_line(tshark, tmp_path):
    pcap = write(tmp_path / "r.pcap", 1, [uboe(rtph(psn=5) + btah(0x03, tassn=3)
                                              + maetah(length=64) + bytes(64))])
    res = subprocess.run([tshark, "-n", "-X", f"lua_script:{LUA}", "-r", str(pcap), "-V"],
                         capture_output=True, text=True, timeout=60)
    roots = [ln for ln in res.stdout.splitlines() if ln.startswith("UnifiedBus")]
    assert roots == ["UnifiedBus, RTP_Data psn=5 Write tassn=3 len=64"]
    assert fields(tshark, pcap, ["_ws.col.Info"]) == [["RTP_Data psn=5 Write tassn=3 len=64"]]


def rules():
    out = []
    for line in COLORFILTERS.read_text().splitlines():
        if line.startswith("@"):
            _, name, flt, colours = line.split("@")
            out.append((name, flt, colours))
    return out


def test_colorfilters_file_parses_and_every_filter_compiles(tshark, tmp_path):
    assert len(rules()) >= 4
    pcap = write(tmp_path / "one.pcap", 148, [cfg9_compact()])
    for name, flt, colours in rules():
        assert colours.count("[") == 2, name
        res = subprocess.run([tshark, "-n", "-X", f"lua_script:{LUA}", "-r", str(pcap), "-Y",
                              flt], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, f"{name}: {res.stderr}"


def test_colouring_rules_match_bad_crcs_and_analysis(tshark, tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "wireshark").mkdir(parents=True)
    (home / ".config" / "wireshark" / "colorfilters").write_text(COLORFILTERS.read_text())
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    crd = dllcb_crd_ack()
    bad_bcrc = crd[:-1] + bytes([crd[-1] ^ 0x10])
    native = write(tmp_path / "n.pcap", 148, [cfg9_compact(), cfg6_mgmt(icrc_ok=False), crd,
                                              bad_bcrc])
    got = [r[0] for r in fields(tshark, native, ["frame.coloring_rule.name"], "--color",
                                env=env)]
    assert got == ["", "UB bad ICRC", "", "UB bad BCRC"]
    pcap = write(tmp_path / "psn.pcap", 1, psns())
    rows = fields(tshark, pcap, ["frame.coloring_rule.name", "ub.analysis.psn_gap",
                                 "ub.analysis.retransmission"], "--color", env=env)
    assert rows[0][0] == "" and rows[1][0] == ""
    assert rows[2][1] and rows[2][0] == "UB lost or out of order"
    assert any(r[2] and r[0] == "UB retransmission or TPNAK" for r in rows)


def _verbose(tshark, pcap) -> str:
    res = subprocess.run([tshark, "-n", "-V", "-X", f"lua_script:{LUA}", "-r", str(pcap)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "Lua" not in res.stderr, res.stderr
    return res.stdout


def test_hex_display(tshark, tmp_path):
    """Addresses, tokens, CRCs, CNAs and EIDs in hex (gen_lua.shows_hex); counters, lengths and
    PSNs stay decimal; -T fields prints the hex form for the hex fields."""
    pcap = write(tmp_path / "hex.pcap", 1, uboe_packets()[:2])
    text = _verbose(tshark, pcap)
    for line in ("Address: 0x1122334455667788", "TokenID: 0xabcde", "TokenValue: 0xdeadbeef",
                 "PSN: 1\n", "PSN: 2\n", "Length: 64\n", "Length: 128\n", "SrcTPN: 291\n"):
        assert line in text, line
    assert any(line.strip().startswith("ICRC: 0x") and len(line.strip()) == len("ICRC: 0x") + 8
               for line in text.splitlines()), text
    native = _verbose(tshark, ROOT / "captures" / "ub_native.pcap")
    for line in ("SCNA: 0x0001", "DCNA: 0x0010", "SEID: 0x00001", "DEID: 0x00010"):
        assert line in native, line
    rows = fields(tshark, pcap, ["ub.maetah.address", "ub.maetah.tokenid", "ub.rtph.psn",
                                 "ub.icrc.value"])
    assert rows[0][:3] == ["0x1122334455667788", "0x0abcde", "1"], rows
    assert rows[0][3].startswith("0x") and len(rows[0][3]) == 10


def test_hex_rule():
    """The generator's rule picks the identifiers and no counter, flag or length."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("gen_lua", ROOT / "dissectors" / "gen_lua.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    hexed = ["ub.maetah.address", "ub.cfg_req.req_addr", "ub.cna16.scna", "ub.cna24.dcna",
             "ub.eidh.seid", "ub.maetah.tokenid", "ub.tvetah.tokenvalue",
             "ub.immetah.immediate_tokenvalue", "ub.ntfetah.notify_tokenid", "ub.bcrc.crc30",
             "ub.icrc.value", "ub.icrc.computed", "ub.bcrc.computed", "ub.rs_info.ers0_sa",
             "ub.entity_reg.start1", "ub.vdm.vendor_id"]
    plain = ["ub.rtph.psn", "ub.maetah.length", "ub.rtph.srctpn", "ub.ltb.crc_mode",
             "ub.ltb.fec_crc_reject", "ub.bcrc.error_flag", "ub.btah.ini_tassn",
             "ub.icrc.status", "ub.lph.cfg"]
    assert [k for k in hexed if not gen.shows_hex(k)] == []
    assert [k for k in plain if gen.shows_hex(k)] == []
