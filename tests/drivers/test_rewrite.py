"""ubpkt.drivers.rewrite: every option on the sample captures and generated samples; the
rewritten frames decode with no new issue (with --fix-icrc) and carry exactly the new values."""
from __future__ import annotations

from pathlib import Path

import pytest

from ubpkt.capture.pcap import open_capture
from ubpkt.dissect import decode
from ubpkt.drivers.rewrite import (RewriteSpec, Rewriter, parse_int_map, parse_ip_map,
                                   parse_mac)
from ubpkt.drivers.udp import UdpPath, pseudo_header
from ubpkt.encode import encode_layers
from ubpkt.formats.samples import samples
from ubpkt.profile import NS3, SPEC

CAPS = Path(__file__).resolve().parents[2] / "captures"


def _frames(name):
    with open_capture(CAPS / name) as cap:
        return [(bytes(p.data), p.linktype) for p in cap]


UBOE = _frames("uboe_transactions.pcap")
NATIVE = _frames("ub_native.pcap")


def _issues(frame, lt, profile=None):
    return [i["message"] for i in decode(frame, lt, profile)["issues"]]


def _all(spec, frames, profile=None):
    rw = Rewriter(spec, profile)
    return rw, [(rw.rewrite(f, lt), f, lt) for f, lt in frames]


def test_empty_spec_keeps_bytes():
    rw, out = _all(RewriteSpec(), UBOE + NATIVE)
    assert all(new is old for new, old, _ in out)
    assert rw.stats["rewritten"] == 0


def test_macs():
    rw, out = _all(RewriteSpec(dmac="aa:bb:cc:00:00:01", smac="aa:bb:cc:00:00:02"), UBOE)
    for new, old, lt in out:
        f = decode(new, lt)["fields"]
        assert f["eth.dst"] == "aa:bb:cc:00:00:01" and f["eth.src"] == "aa:bb:cc:00:00:02"
        assert _issues(new, lt) == _issues(old, lt)      # the ICRC does not cover the MACs
        assert new[12:] == old[12:]
    assert rw.stats["icrc_wrong"] == 0


def test_ip_maps_checksum_and_icrc():
    spec = RewriteSpec(srcip=parse_ip_map("192.0.2.1:10.9.9.1"), dstip=parse_ip_map("10.9.9.2"))
    rw, out = _all(spec, UBOE)
    ipv4 = [(n, o, lt) for n, o, lt in out if decode(o, lt)["fields"].get("ip.version") == 4]
    assert ipv4
    for new, old, lt in ipv4:
        f = decode(new, lt)["fields"]
        was = decode(old, lt)["fields"]
        assert f["ip.dst"] == "10.9.9.2"
        assert f["ip.src"] == ("10.9.9.1" if was["ip.src"] == "192.0.2.1" else was["ip.src"])
        assert f["ip.checksum"] != was["ip.checksum"]
        # the IPv4 checksum is right, only the (kept) ICRC is now wrong
        msgs = _issues(new, lt)
        assert msgs and all("ICRC" in m for m in msgs)
    assert rw.stats["icrc_wrong"] == len(ipv4)
    rw2, out2 = _all(RewriteSpec(srcip=spec.srcip, dstip=spec.dstip, fix_icrc=True), UBOE)
    assert all(_issues(n, lt) == _issues(o, lt) for n, o, lt in out2)
    assert rw2.stats["icrc_wrong"] == 0 and rw2.stats["icrc_fixed"] == len(ipv4)


def test_portmap():
    rw, out = _all(RewriteSpec(portmap=parse_int_map("49152:50000", 16, "port"),
                               fix_icrc=True), UBOE)
    for new, old, lt in out:
        f, was = decode(new, lt)["fields"], decode(old, lt)["fields"]
        assert f["udp.srcport"] == (50000 if was["udp.srcport"] == 49152 else was["udp.srcport"])
        assert f["udp.dstport"] == was["udp.dstport"] == 4792
        assert _issues(new, lt) == _issues(old, lt)


def test_tpnmap_everywhere_it_is_declared():
    spec = RewriteSpec(tpnmap=parse_int_map("0x10:0x123,0x20:0x456", 24, "TPN"), fix_icrc=True)
    rw, out = _all(spec, UBOE + NATIVE)
    seen = 0
    for new, old, lt in out:
        f, was = decode(new, lt)["fields"], decode(old, lt)["fields"]
        assert _issues(new, lt) == _issues(old, lt)
        if "ub.rtph.srctpn" in was:
            m = {0x10: 0x123, 0x20: 0x456}
            assert f["ub.rtph.srctpn"] == m.get(was["ub.rtph.srctpn"], was["ub.rtph.srctpn"])
            assert f["ub.rtph.dsttpn"] == m.get(was["ub.rtph.dsttpn"], was["ub.rtph.dsttpn"])
            seen += 1
    assert seen >= 10


def test_psn_rebase_per_direction_with_wrap():
    n = (1 << 24) - 2
    rw, out = _all(RewriteSpec(psn_rebase=n, fix_icrc=True), UBOE)
    firsts = {}
    for new, old, lt in out:
        f, was = decode(new, lt)["fields"], decode(old, lt)["fields"]
        assert _issues(new, lt) == _issues(old, lt)
        if "ub.rtph.psn" not in was:
            continue
        shift = (f["ub.rtph.psn"] - was["ub.rtph.psn"]) % (1 << 24)
        firsts.setdefault(shift, 0)
        firsts[shift] += 1
    # the first capture direction starts at PSN 0: shifted by n, the third PSN wraps to 0
    assert (n - 0) % (1 << 24) in firsts
    assert rw.stats["psn_channels"] >= 2
    data = [decode(n_, lt)["fields"]["ub.rtph.psn"] for n_, o, lt in out
            if decode(o, lt)["fields"].get("ub.rtph.tpopcode") == 1][:3]
    assert data[0] == n and data[1] == n + 1 and data[2] == 0


def test_udp_path_matches_the_kernel_header():
    up = UdpPath(src_ip="127.0.0.1", dst_ip="127.0.0.2", udp_sport=40000, udp_dport=40001)
    rw, out = _all(RewriteSpec(udp_path=up), UBOE[:5])
    for new, old, lt in out:
        f = decode(new, lt)["fields"]
        assert (f["ip.src"], f["ip.dst"], f["udp.srcport"], f["udp.dstport"], f["ip.id"]) == \
            ("127.0.0.1", "127.0.0.2", 40000, 40001, 0)
        assert new[42:-4] == old[42:-4]             # the UB part is untouched
    assert rw.stats["icrc_wrong"] == 5
    rw, out = _all(RewriteSpec(udp_path=up, fix_icrc=True), UBOE[:5])
    from ubpkt.drivers.udp import udp_profile
    prof = udp_profile(SPEC, 40001)
    for new, old, lt in out:
        rebuilt = pseudo_header("127.0.0.1", 40000, "127.0.0.2", 40001, len(new) - 42) + new[42:]
        assert decode(rebuilt, 1, prof)["fields"]["ub.icrc.status"] == "good"


@pytest.mark.parametrize("profile", [SPEC, NS3], ids=["spec", "ns3"])
def test_generated_samples_decode_without_new_issues(profile):
    spec = RewriteSpec(dmac="02:aa:00:00:00:01", srcip={"*": "10.1.2.3"},
                       tpnmap={i: (i * 7 + 1) & 0xFFFFFF for i in range(64)},
                       psn_rebase=77, fix_icrc=True)
    rw = Rewriter(spec, profile)
    n = changed = 0
    for lt, prof, layers in samples(profile):
        try:
            data = encode_layers(layers, prof)
        except Exception:
            continue
        before = sorted(_issues(data, lt, prof))
        out = rw.rewrite(data, lt)
        assert sorted(_issues(out, lt, prof)) == before, (layers, before)
        n += 1
        changed += out != data
        if n >= 400:
            break
    assert n > 50 and changed > 10


def test_parsers():
    assert parse_mac("AA-bb-cc-dd-ee-ff") == "aa:bb:cc:dd:ee:ff"
    assert parse_ip_map("1.2.3.4") == {"*": "1.2.3.4"}
    assert parse_ip_map("1.2.3.4:5.6.7.8,9.9.9.9:1.1.1.1") == {"1.2.3.4": "5.6.7.8",
                                                               "9.9.9.9": "1.1.1.1"}
    assert parse_int_map("0x10:0x20, 5:6", 24, "TPN") == {16: 32, 5: 6}
    for bad in ("1.2.3", "1.2.3.4:x"):
        with pytest.raises(ValueError):
            parse_ip_map(bad)
    for bad in ("1", "1:", "1:1<<30", "1:16777216"):
        with pytest.raises(ValueError):
            parse_int_map(bad, 24, "TPN")
    with pytest.raises(ValueError):
        parse_mac("aa:bb")
    with pytest.raises(ValueError):
        RewriteSpec(psn_rebase=1 << 24)


def test_damaged_frames_never_raise():
    rw = Rewriter(RewriteSpec(tpnmap={16: 17}, fix_icrc=True))
    for f, lt in UBOE[:5]:
        for cut in (0, 10, 40, 60, len(f) - 3):
            rw.rewrite(f[:cut], lt)
        rw.rewrite(bytes(len(f)), lt)
    assert rw.stats["frames"] == 30
