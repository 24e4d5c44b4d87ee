"""The stack in the ns-3-UB dialect (profile NS3): an in-process loopback over the native IP-form
path (Write, Read) and TP bypass (LDST store/load); every frame decodes under NS3 with no issue
beyond the dialect's known quirks, and the frames have the forms ns-3-UB sends."""
from __future__ import annotations

import pytest

from ubpkt import NS3, SPEC, decode
from ubpkt.capture import open_capture
from ubpkt.sim.loopback import LoopbackConfig, run_loopback

#: the known quirks of the dialect (interop README, dialect notes §10a): NPI 0 on IP packets,
#: TP responses repeating the data packet's TPOpcode[7]
KNOWN = ("NPI 0 is invalid for IP packets",
         "TPOpcode[7] (last packet) is only valid on RTP data packets")


def _frames(path):
    return [decode(p.data, p.linktype, NS3) for p in open_capture(str(path))]


@pytest.mark.parametrize("transport,op,size", [("rtp", "write", 9000), ("rtp", "read", 9000),
                                               ("bypass", "write", 512),
                                               ("bypass", "read", 512)])
def test_ns3_loopback_completes_and_decodes(tmp_path, transport, op, size):
    pcap = tmp_path / "ns3.pcap"
    r = run_loopback(LoopbackConfig(transport=transport, op=op, count=6, size=size,
                                    profile=NS3, path_kind="ipv4", pcap=str(pcap)))
    assert r["completions"] == {"success": 6} and r["data_verified"], r["completions"]
    recs = _frames(pcap)
    assert recs
    for rec in recs:
        bad = [i for i in rec["issues"] if i["message"] not in KNOWN]
        assert not bad, (rec["layers"], bad)
    layers = [tuple(r["layers"]) for r in recs]
    if transport == "bypass":
        assert all(lay[:2] == ("ub.lph_ns3", "ub.cna16_ns3") for lay in layers)
        rsp = [r for r in recs if "ub.atah_c" in r["layers"]]
        assert len(rsp) == 6            # one compact ATAH answer per request
        return
    assert all(lay[:4] == ("ub.lph_ns3", "ub.nth", "ip", "udp") for lay in layers)
    data = [r for r in recs if r["fields"]["ub.rtph.tpopcode"] == 1]
    acks = [r for r in recs if r["fields"]["ub.rtph.tpopcode"] in (2, 3)]
    # every data packet gets its own TPACK, with the ATAH of its TASSN (no coalescing)
    assert len(acks) == len(data)
    assert all(a["layers"][-1] == "ub.atah_ns3" for a in acks)
    rsp = [r for r in data if r["fields"]["ub.btah.taopcode"] in (0x11, 0x12)]
    if op == "write":
        # 9000 B = 3 packets sharing one TASSN (write_tassn_bytes), one TAACK data packet with
        # a 1-byte dummy payload, MAETAH Length 1
        req = [r for r in data if r["fields"]["ub.btah.taopcode"] == 3]
        assert len(req) == 18 and len({r["fields"]["ub.btah.ini_tassn"] for r in req}) == 6
        assert sum(r["fields"]["ub.rtph.last"] for r in req) == 6
        assert len(rsp) == 6
        assert all(r["fields"]["ub.maetah.length"] == 1 and r["fields"]["data.len"] == 1
                   for r in rsp)
    else:
        # Read_response data packets: BTAH + MAETAH, Length = the bytes of the packet
        assert len(rsp) == 18
        assert all(r["fields"]["ub.maetah.length"] == r["fields"]["data.len"] for r in rsp)
    assert all("ub.pad" not in r["layers"] for r in recs)     # ns-3-UB does not pad


def test_spec_profile_keeps_its_own_forms(tmp_path):
    # the same Path in the SPEC profile: ATAH responses, coalesced TPACKs without an ATAH
    pcap = tmp_path / "spec.pcap"
    r = run_loopback(LoopbackConfig(transport="rtp", op="write", count=6, size=9000,
                                    profile=SPEC, path_kind="ipv4", pcap=str(pcap)))
    assert r["completions"] == {"success": 6}
    recs = [decode(p.data, p.linktype, SPEC) for p in open_capture(str(pcap))]
    assert any("ub.atah" in r["layers"] and r["fields"]["ub.rtph.tpopcode"] == 1 for r in recs)
    acks = [r for r in recs if r["fields"].get("ub.rtph.tpopcode") in (2, 3)]
    data = [r for r in recs if r["fields"].get("ub.rtph.tpopcode") == 1]
    assert acks and len(acks) < len(data)
    assert all("ub.atah" not in r["layers"] for r in acks)
