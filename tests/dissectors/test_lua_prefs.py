"""The plugin's preferences, set with tshark ``-o``: the UBoE UDP ports, ICRC verification, the
decoding profile, the heuristic for UBoE on other ports (off by default)."""
from __future__ import annotations

import subprocess

import pytest

from test_lua import (LUA, _find_tshark, btah, cfg6_mgmt, enc, ipv4_udp, maetah, masks_for_ip,
                      rtph, uboe, with_icrc, write)
from ubpkt.capture import open_capture
from ubpkt.dissect import dissect
from ubpkt.profile import NS3


@pytest.fixture(scope="module")
def tshark():
    return _find_tshark()


def uboe_to(port: int, ub: bytes, good_icrc: bool = True) -> bytes:
    """Ethernet / IPv4 / UDP to ``port`` / ub / ICRC (a wrong one when not good_icrc)."""
    carrier = ipv4_udp(len(ub) + 4)[:20] + enc("udp", srcport=0x1234, dstport=port,
                                                length=8 + len(ub) + 4)
    eth = enc("eth", dst="02:00:00:00:00:02", src="02:00:00:00:00:01", type=0x0800)
    pkt = with_icrc(eth + carrier + ub, len(eth), masks_for_ip(len(eth), 4, len(eth) + 20))
    return pkt if good_icrc else pkt[:-1] + bytes([pkt[-1] ^ 0xFF])


def fields(tshark, pcap, keys, *opts) -> list[list[str]]:
    cmd = [tshark, "-n", "-X", f"lua_script:{LUA}", "-r", str(pcap), "-T", "fields",
           "-E", "separator=/t", *opts]
    for k in [*keys, "_ws.lua.error"]:
        cmd += ["-e", k]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "Lua" not in res.stderr, res.stderr
    rows = [(ln.split("\t") + [""] * (len(keys) + 1))[:len(keys) + 1]
            for ln in res.stdout.splitlines()]
    assert not any(r[-1] for r in rows), rows
    return [r[:-1] for r in rows]


def body(psn: int) -> bytes:
    return rtph(psn=psn) + btah(0x03) + maetah(length=8) + bytes(8)


def test_icrc_verification_switch(tshark, tmp_path):
    pcap = write(tmp_path / "bad.pcap", 148, [cfg6_mgmt(icrc_ok=False), cfg6_mgmt()])
    keys = ["ub.icrc.status", "ub.icrc.value", "_ws.expert.message"]
    on = fields(tshark, pcap, keys)
    assert on[0][0] == "bad" and "ICRC" in on[0][2] and on[1][0] == "good"
    off = fields(tshark, pcap, keys, "-o", "ub.verify_icrc:FALSE")
    assert [r[0] for r in off] == ["", ""] and "ICRC" not in off[0][2]
    assert [r[1] for r in off] == [r[1] for r in on]       # the ICRC itself is still shown


def test_udp_ports(tshark, tmp_path):
    pcap = write(tmp_path / "ports.pcap", 1, [uboe_to(4792, body(1)), uboe_to(5000, body(2)),
                                              uboe_to(5001, body(3))])
    keys = ["ub.rtph.psn", "ub.icrc.status"]
    assert fields(tshark, pcap, keys) == [["1", "good"], ["", ""], ["", ""]]
    assert fields(tshark, pcap, keys, "-o", "ub.udp_ports:4792,5000-5001") == [
        ["1", "good"], ["2", "good"], ["3", "good"]]
    assert fields(tshark, pcap, keys, "-o", "ub.udp_ports:5001") == [
        ["", ""], ["", ""], ["3", "good"]]


def test_heuristic_off_by_default(tshark, tmp_path):
    """On: UBoE to another port is claimed when its ICRC checks out, nothing else is."""
    pcap = write(tmp_path / "heur.pcap", 1, [uboe_to(5000, body(2)),
                                             uboe_to(5000, body(3), good_icrc=False),
                                             uboe_to(4792, body(4))])
    keys = ["ub.rtph.psn", "ub.icrc.status"]
    assert fields(tshark, pcap, keys) == [["", ""], ["", ""], ["4", "good"]]
    assert fields(tshark, pcap, keys, "-o", "ub.heuristic:TRUE") == [
        ["2", "good"], ["", ""], ["4", "good"]]


def test_profile_choice(tshark, tmp_path):
    """ns3 decodes a UBoE capture as ns-3-UB does (ubpkt with the NS3 profile agrees)."""
    pcap = write(tmp_path / "p.pcap", 1, [uboe(rtph(psn=9) + btah(0x03) + maetah(length=8)
                                                + bytes(8))])
    keys = ["ub.rtph.psn", "ub.icrc.status", "ub.maetah.length"]
    ref = dissect(next(iter(open_capture(pcap))).data, 1, profile=NS3).fields
    got = fields(tshark, pcap, keys, "-o", "ub.profile:ns3")[0]
    want = [str(ref.get(k, "")) for k in keys]
    assert got == want
    assert fields(tshark, pcap, keys, "-o", "ub.profile:reference")[0] == fields(tshark, pcap,
                                                                                 keys)[0]
