"""Crafted packets build to the bytes ubpkt decodes (same fields, good ICRC) and encodes."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw, raw
from scapy.utils import rdpcap, wrpcap

from scapy_helpers import encoder_layers, record_of
from ubpkt.dissect import dissect
from ubpkt.encode import encode_layers
from ubpkt.scapy import *  # noqa: F401,F403
from ubpkt.scapy import layer_ids, set_profile
from ubpkt.profile import SPEC


def _uboe(*ub, v6=False):
    ip = IPv6(src="fd00::1", dst="fd00::2") if v6 else \
        IP(src="10.0.0.1", dst="10.0.0.2", flags="DF")
    p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / ip / UDP(sport=49152)
    for layer in ub:
        p = p / layer
    return p


UBOE = {
    "write": _uboe(UBRtph(psn=7, srctpn=1, dsttpn=2, tpmsn=3),
                   UBBtah(taopcode="Write", ini_tassn=9, ini_rc_id=5),
                   UBMaetah(address=0x1000, tokenid=0x55, length=5), Raw(b"hello")),
    "write_tv": _uboe(UBRtph(last=1), UBBtah(taopcode="Write", tv_en=1), UBMaetah(length=4),
                      UBTvetah(tokenvalue=0xCAFE), Raw(b"abcd")),
    "read": _uboe(UBRtph(), UBBtah(taopcode="Read"), UBMaetah(address=0x2000, length=4096)),
    "read_response": _uboe(UBRtph(), UBAtah(taopcode="Read_response", ini_tassn=4),
                           Raw(b"\x11" * 13)),
    "send": _uboe(UBRtph(), UBBtah(taopcode="Send", mt_en=1), UBMtetah(tgt_tc_id=3),
                  UBOfstetah(offset=2), Raw(b"message")),
    "send_imm": _uboe(UBRtph(), UBBtah(taopcode="Send_with_immediate", mt_en=1), UBMtetah(),
                      UBOfstetah(), UBImmetah(immediate_data=0x1122334455667788)),
    "atomic": _uboe(UBRtph(), UBBtah(taopcode="Atomic_fetch_add"), UBMaetah(length=8),
                    Raw(b"\0" * 7 + b"\1")),
    "atomic_store": _uboe(UBRtph(), UBBtah(taopcode="Atomic_store", ud_flag=1),
                          UBUdetah(ud=3 << 20), UBMaetah(length=8), Raw(b"\2" * 8)),
    "atomic_response": _uboe(UBRtph(), UBAtah(taopcode="Atomic_response"), Raw(b"\3" * 8)),
    "taack": _uboe(UBRtph(), UBAtah(taopcode="TAACK", ini_tassn=77)),
    "tpack": _uboe(UBRtph(tpopcode="TPACK", psn=12)),
    "tpnak": _uboe(UBRtph(tpopcode="TPACK", rspst="Completer_Error")),
    "tpack_cc": _uboe(UBRtph(), UBCetphCaqm(ack_seq=5, c=2, hint=9)),
    "tpsack": _uboe(UBRtph(), UBSaetph(bitmapsize=1, maxrcvpsn=100),
                    UBSaetphBitmap(bitmap=b"\xf0" * 16)),
    "cnp": _uboe(UBRtph(), UBCetphCnp(ecn="severe")),
    "utp_eid": _uboe(UBUtph(), UBUpih32(upi=0x123),
                     UBEidh256(seid="fd00::1", deid="0000:0000:0000:0000:0000:0000:0000:0002"),
                     UBBtah(taopcode="Send", mt_en=1), UBMtetah(), UBOfstetah(), Raw(b"x")),
    "write_be": _uboe(UBRtph(), UBBtah(taopcode="Write_with_be"), UBMaetah(length=64),
                      UBBeetah(be=b"\xff" * 8), Raw(bytes(range(64)))),
    "write_notify": _uboe(UBRtph(), UBBtah(taopcode="Write_with_notify"), UBMaetah(length=2),
                          UBNtfetah(notify_data=1), Raw(b"ok")),
    "ipv6": _uboe(UBRtph(), UBBtah(taopcode="Write"), UBMaetah(length=3), Raw(b"six"),
                  v6=True),
}

NATIVE = {
    "cfg6_ctp_write": UBLph(vl=1) / UBCna16(scna=0x11, dcna=0x22, sl=1) / UBCtph()
    / UBUpih16(upi=1) / UBEidh40(seid=1, deid=2) / UBBtah(taopcode="Write")
    / UBMaetah(length=3) / Raw(b"abc"),
    "cfg6_ctp_cnp": UBLph() / UBCna16() / UBCtph() / UBCetphCnp(ecn="minor"),
    "cfg6_mgmt_cfg_read": UBLph() / UBCna16(mgmt=1) / UBCtph() / UBBtah()
    / UBMgmtetah(code="Configuration", sub_code=0) / UBCfgReq(entity_idx=1, req_addr=0x40),
    "cfg6_mgmt_link": UBLph() / UBCna16(mgmt=1) / UBCtph() / UBBtah()
    / UBMgmtetah(code="Link_Change", sub_code=0) / UBLinkMsg(scna=5, port_idx=2)
    / UBPdu(data=b"\0" * 4),
    "cfg6_enum_query": UBLph() / UBCna16() / UBUpih16() / UBEnumPad() / UBScan(hops=1, type=0)
    / UBScanFwd(fwd_path=b"\0\0\0\1") / UBScanPdu(cmd="Topology_Query", opcode=0)
    / UBScanTlv(type="Port_num", length=4) / UBScanTlvValue(value=b"\0\4"),
    "cfg7_rtp": UBLph() / UBCna24(scna=0x10000, dcna=0x20000) / UBRtph()
    / UBBtah(taopcode="Write") / UBMaetah(length=1) / Raw(b"z"),
    "cfg9_store": UBLph(cfg=9) / UBCna16(scna=1, dcna=2) / UBBtahC(taopcode="Write")
    / UBMaetahC(address=0x40, len_code=0) / Raw(b"\5" * 64),
    "cfg9_load_rsp": UBLph(cfg=9) / UBCna16() / UBAtahC(taopcode="Read_response")
    / Raw(b"\6" * 64),
    "cfg3": UBLph() / UBNth(npi=7) / IP(src="10.0.0.1", dst="10.0.0.2", flags="DF") / UDP()
    / UBRtph() / UBBtah(taopcode="Read") / UBMaetah(length=8),
    "cfg4": UBLph() / UBNth(npi=7) / IPv6(src="fd00::1", dst="fd00::2") / UDP() / UBRtph()
    / UBAtah(taopcode="TAACK"),
    "cfg5_ip_notify": UBLph() / UBCfg5(protocol="IP_Notify", dguid=1, sguid=2)
    / UBIpNotify(version="IPv4", prefix_len=24, ipv4="192.168.0.1"),
    "cfg5_npic": UBLph() / UBCfg5(protocol="NPIC") / UBNpic(opcode="Set", sum=2)
    / UBNpicEntry(guid=1, npi=5) / UBNpicEntry(guid=2, npi=6),
    "dllcb_crd_ack": UBLchCrdAck(clength=1, ctrl=2, sub_ctrl=4) / UBCrdAck(ack_num=3)
    / UBBcrc(),
    "dllcb_null": UBLch(clength=0) / UBCbRsvd() / UBBcrc(),
}
ICRC_EXPECTED = {"cfg9_store": None, "cfg9_load_rsp": None, "cfg5_ip_notify": None,
                 "cfg5_npic": None, "dllcb_crd_ack": None, "dllcb_null": None,
                 "cfg6_enum_query": None}


def _check(p, linktype, name):
    b = raw(p)
    fr = dissect(b, linktype)
    errors = [i for i in fr.issues if i["severity"] in ("error", "warning")]
    assert not errors, errors
    assert fr.fields.get("ub.icrc.status") == ICRC_EXPECTED.get(name, "good")
    q = (Ether if linktype == 1 else UBLph)(b)
    assert layer_ids(q) == fr.layers
    assert raw(q) == b
    rec = record_of(q)
    assert rec == {k: fr.fields[k] for k in rec}
    # the crafted values survive: every field set by hand reads back the same
    crafted = record_of(p, explicit_only=True)
    assert crafted == {k: rec[k] for k in crafted}
    # ubpkt's encoder, given the same header values with lengths/padding/ICRC unset, agrees
    assert encode_layers(encoder_layers(q)) == b
    return b, fr, q


@pytest.mark.parametrize("name", sorted(UBOE))
def test_uboe(name):
    b, fr, q = _check(UBOE[name], 1, name)
    assert fr.fields["udp.dstport"] == 4792 and fr.fields["udp.checksum"] == 0


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_native(name):
    b, fr, q = _check(NATIVE[name], 148, name)
    if fr.layers[0] == "ub.lph":
        assert "ub.lph.plength" not in {i["field"] for i in fr.issues}


def test_auto_fields_filled():
    p = UBOE["write"]
    b = raw(p)
    q = Ether(b)
    assert q[UDP].dport == 4792 and q[UDP].chksum == 0 and q[UDP].len == len(b) - 14 - 20
    assert q[UBRtph].padding == (-(16 + 8 + 16 + 5)) % 4 == 3
    assert q[UBRtph].pad == b"\0\0\0"
    assert q[UBRtph].icrc == dissect(b, 1).fields["ub.icrc.value"]
    # the ICRC sits after the pad bytes, little-endian (profile icrc_byteorder)
    assert b[-4:] == q[UBRtph].icrc.to_bytes(4, "little")
    # CFG 4 is chosen for an IPv6 NTH, CFG 3 for IPv4; PLENGTH describes the packet
    assert UBLph(raw(NATIVE["cfg4"])).cfg == 4 and UBLph(raw(NATIVE["cfg3"])).cfg == 3
    mg = UBLph(raw(NATIVE["cfg6_mgmt_link"]))
    assert mg[UBMgmtetah].pdu_length == 8 + 4


def test_explicit_values_kept():
    bad = _uboe(UBRtph(icrc=0xDEADBEEF), UBBtah(taopcode="Write"), UBMaetah(length=2),
                Raw(b"hi"))
    b = raw(bad)
    fr = dissect(b, 1)
    assert fr.fields["ub.icrc.value"] == 0xDEADBEEF and fr.fields["ub.icrc.status"] == "bad"
    assert raw(Ether(b)) == b
    # wrong padding count and non-zero pad bytes
    p = _uboe(UBRtph(padding=1, pad=b"\xaa"), UBBtah(taopcode="Write"), UBMaetah(length=2),
              Raw(b"hi"))
    b = raw(p)
    fr = dissect(b, 1)
    assert fr.fields["ub.rtph.padding"] == 1 and fr.fields["ub.pad.data"] == "aa"
    assert fr.fields["ub.icrc.status"] == "good"
    assert any(i["field"] == "ub.pad.data" for i in fr.issues)
    assert raw(Ether(b)) == b
    # explicit lengths and ports
    p = UBLph(plength=5) / UBCna16() / UBCtph() / UBBtah(taopcode="Write") / UBMaetah()
    b = raw(p)
    assert UBLph(b).plength == 5
    assert any(i["field"] == "ub.lph.plength" for i in dissect(b).issues)
    p = Ether() / IP() / UDP(dport=4791) / UBRtph()
    assert Ether(raw(p))[UDP].dport == 4791
    p = UBLph() / UBCna16() / UBCtph() / UBBtah() / UBMgmtetah(pdu_length=3) / Raw(b"abcd")
    assert dissect(raw(p)).fields["ub.mgmtetah.pdu_length"] == 3


def test_vlan_and_ethernet_trailer():
    p = Ether() / Dot1Q(vlan=5) / IP(flags="DF") / UDP() / UBRtph() / UBAtah(taopcode="TAACK")
    b = raw(p) + b"\0" * 6                      # an Ethernet trailer after the IP packet
    fr = dissect(b, 1)
    q = Ether(b)
    assert layer_ids(q) == fr.layers and fr.layers[-1] == "eth.trailer"
    assert fr.fields["ub.icrc.status"] == "good"
    assert raw(q) == b


def test_pcap_round_trip(tmp_path):
    uboe = [UBOE[k] for k in sorted(UBOE)]
    native = [NATIVE[k] for k in sorted(NATIVE)]
    wrpcap(str(tmp_path / "e.pcap"), uboe)
    wrpcap(str(tmp_path / "u.pcap"), native, linktype=148)
    for path, sent, linktype in (("e.pcap", uboe, 1), ("u.pcap", native, 148)):
        got = rdpcap(str(tmp_path / path))
        assert len(got) == len(sent)
        for p, q in zip(sent, got):
            b = raw(p)
            assert raw(q) == b
            assert layer_ids(q) == dissect(b, linktype).layers


def test_repo_captures(sample_captures):
    for name, linktype in (("uboe_transactions.pcap", 1), ("ub_native.pcap", 148)):
        for p in rdpcap(str(sample_captures / name)):
            b = raw(p)
            fr = dissect(b, linktype)
            assert layer_ids(p) == fr.layers
            assert raw(type(p)(b)) == b
            rec = record_of(p)
            assert rec == {k: fr.fields[k] for k in rec}


def test_profile_compact_cna_tah():
    from ubpkt.profile import SPEC as spec
    compact = spec.with_(cna_tah_form="compact")
    set_profile(compact)
    try:
        p = UBLph() / UBCna16() / UBCtph() / UBBtahC(taopcode="Write") / UBMaetahC(len_code=1) \
            / Raw(b"\0" * 128)
        b = raw(p)
        fr = dissect(b, 148, profile=compact)
        assert fr.fields["ub.icrc.status"] == "good"
        assert layer_ids(UBLph(b)) == fr.layers
        assert "ub.maetah_c" in fr.layers
    finally:
        set_profile(SPEC)


def test_profile_options():
    prof = SPEC.with_(tp_response_atah=True, read_taidetah=True, read_ofstetah=True,
                      atomic_taidetah=True, cetph_variant="ldcp", icrc_byteorder="big")
    set_profile(prof)
    try:
        pkts = [
            _uboe(UBRtph(tpopcode="TPACK"), UBAtah(taopcode="TAACK")),
            _uboe(UBRtph(), UBCetphLdcp(ack_seq=1, ce_seq=2), UBAtah(taopcode="TAACK")),
            _uboe(UBRtph(), UBBtah(taopcode="Read"), UBTaidetah(taid=5), UBOfstetah(offset=1),
                  UBMaetah(length=8)),
            _uboe(UBRtph(), UBBtah(taopcode="Atomic_swap"), UBTaidetah(taid=6),
                  UBMaetah(length=8), Raw(b"\0" * 8)),
        ]
        for p in pkts:
            b = raw(p)
            fr = dissect(b, 1, profile=prof)
            assert fr.fields["ub.icrc.status"] == "good"
            assert b[-4:] == fr.fields["ub.icrc.value"].to_bytes(4, "big")
            q = Ether(b)
            assert layer_ids(q) == fr.layers and raw(q) == b
            assert [x for x in fr.layers if x.startswith("ub.")] == \
                [x for x in layer_ids(p) if x.startswith("ub.")] + ["ub.icrc"] or \
                "ub.pad" in fr.layers
    finally:
        set_profile(SPEC)


def test_no_icrc_when_explicitly_false():
    p = _uboe(UBRtph(icrc=False), UBAtah(taopcode="TAACK"))
    b = raw(p)
    assert len(b) == 14 + 20 + 8 + 16 + 8
    assert Ether(b)[UBRtph].icrc is not False   # a reader still expects one (SPEC)


def test_cfg5_and_enumeration_icrc_options():
    prof = SPEC.with_(cfg5_icrc=True, enum_icrc=True)
    set_profile(prof)
    try:
        for p in (NATIVE["cfg5_ip_notify"], NATIVE["cfg5_npic"], NATIVE["cfg6_enum_query"]):
            b = raw(p)
            fr = dissect(b, 148, profile=prof)
            assert fr.fields["ub.icrc.status"] == "good"
            q = UBLph(b)
            assert layer_ids(q) == fr.layers and raw(q) == b
    finally:
        set_profile(SPEC)
