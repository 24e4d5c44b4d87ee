"""Registration (issue 13): one protocol, ``ub``, does every dissection, so every UB expert item is
filed under one protocol name whatever reached the plugin (UDP port, guard for low source ports,
Decode As, link types 147/148); Decode As offers ``ub`` itself on udp.port (``ub_udp`` remains)."""
from __future__ import annotations

import re
import subprocess

import pytest

from test_lua import LUA, _find_tshark, cfg6_mgmt, enc, ipv4_udp, masks_for_ip, with_icrc, write
from test_lua_grammar import _ns3_cna16
from test_lua_prefs import body, fields, uboe_to
from test_lua import rtph


@pytest.fixture(scope="module")
def tshark():
    return _find_tshark()


def uboe_from(sport: int, ub: bytes, good_icrc: bool) -> bytes:
    """Ethernet / IPv4 / UDP sport -> 4792 / ub / ICRC (a wrong one when not good_icrc)."""
    carrier = ipv4_udp(len(ub) + 4)[:20] + enc("udp", srcport=sport, dstport=4792,
                                                length=8 + len(ub) + 4)
    eth = enc("eth", dst="02:00:00:00:00:02", src="02:00:00:00:00:01", type=0x0800)
    pkt = with_icrc(eth + carrier + ub, len(eth), masks_for_ip(len(eth), 4, len(eth) + 20))
    return pkt if good_icrc else pkt[:-1] + bytes([pkt[-1] ^ 0xFF])


def expert_protocols(tshark, pcap, *opts) -> dict[str, int]:
    """Protocol name -> number of expert items, from tshark -z expert."""
    res = subprocess.run([tshark, "-n", "-q", "-X", f"lua_script:{LUA}", "-r", str(pcap),
                          "-z", "expert", *opts], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "Lua" not in res.stderr, res.stderr
    counts: dict[str, int] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s+(\d+)\s+(\S+)\s+(\S+)\s+\S", line)
        if m:
            counts[m.group(3)] = counts.get(m.group(3), 0) + int(m.group(1))
    return counts


def test_one_expert_protocol(tshark, tmp_path):
    uboe = write(tmp_path / "uboe.pcap", 1, [
        uboe_to(4792, body(1), good_icrc=False),       # the UDP port table
        uboe_from(53, body(2), good_icrc=False),       # through the guard (source port 53)
        uboe_to(5000, body(3), good_icrc=False)])      # Decode As below
    assert expert_protocols(tshark, uboe, "-d", "udp.port==5000,ub") == {"UB": 3}
    assert expert_protocols(tshark, uboe, "-d", "udp.port==5000,ub_udp") == {"UB": 3}
    native = write(tmp_path / "native.pcap", 148, [cfg6_mgmt(icrc_ok=False)])
    assert expert_protocols(tshark, native) == {"UB": 1}
    ns3 = write(tmp_path / "ns3.pcap", 147, [
        _ns3_cna16(rtph(tpopcode=1, psn=7, nlp=0) + enc("ub.btah_c", taopcode=3), 2)[:-3]])
    got = expert_protocols(tshark, ns3)
    assert set(got) == {"UB"} and got["UB"] >= 1, got


def test_decode_as_ub_on_udp_port(tshark, tmp_path):
    pcap = write(tmp_path / "p5000.pcap", 1, [uboe_to(5000, body(2)), uboe_to(4792, body(3)),
                                              uboe_to(5000, body(4), good_icrc=False)])
    keys = ["ub.rtph.psn", "ub.icrc.status", "frame.protocols"]
    assert [r[:2] for r in fields(tshark, pcap, keys)] == [["", ""], ["3", "good"], ["", ""]]
    for name in ("ub", "ub_udp"):
        rows = fields(tshark, pcap, keys, "-d", f"udp.port==5000,{name}")
        assert [r[:2] for r in rows] == [["2", "good"], ["3", "good"], ["4", "bad"]], name
        assert rows[0][2].split(":")[-2:] in (["ub", "data"], ["ub_udp", "ub"]), rows[0][2]
    # two passes (the first has no tree: the plugin must not need fields to see it is on UDP)
    rows = fields(tshark, pcap, keys, "-2", "-d", "udp.port==5000,ub")
    assert [r[:2] for r in rows] == [["2", "good"], ["3", "good"], ["4", "bad"]]
