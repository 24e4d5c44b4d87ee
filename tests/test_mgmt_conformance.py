"""Management PDUs against the spec's figures and the openEuler kernel structs (issue 11).

The PDU bytes below are written out by hand from the figure each test cites, not produced by
ubpkt's encoder; the carrier in front of them (LPH, CNA16 NTH, CTPH, UPIH, EIDH, BTAH,
MGMTETAH) is the one tests/test_decode.py checks against the spec's own layout."""
from ubpkt import decode, encode_layers, encode_record


def mgmt(code: int, sub: int, pdu: bytes, rsp: int = 0) -> bytes:
    return encode_layers([
        ("ub.lph", {"cfg": 6}),
        ("ub.cna16", {"scna": 0x0001, "dcna": 0x0010, "mgmt": 1, "nlp": 0}),
        ("ub.ctph", {"nlp": 2}), ("ub.upih16", {"upi": 0x7FFF}),
        ("ub.eidh40", {"seid": 1, "deid": 0x10}),
        ("ub.btah", {"taopcode": "Management", "ini_tassn": 1, "ini_rc_id": 3}),
        ("ub.mgmtetah", {"code": code, "sub_code": sub, "rsp": rsp}),
        ("ub.pdu", {"data": pdu})])


def _clean(pkt: bytes) -> dict:
    rec = decode(pkt)
    assert rec["fields"]["ub.icrc.status"] == "good"
    assert not [i for i in rec["issues"] if i["severity"] != "info"], rec["issues"]
    assert encode_record(rec) == pkt
    return rec


def test_hot_plug_pdu_is_two_words():
    # UB 2.0 §10.4.3.3 Fig 10-37: RSVD(16) Slot_idx(16), then a reserved word
    rec = _clean(mgmt(1, 2, bytes.fromhex("0000" "0102" "00000000")))
    f = rec["fields"]
    assert f["ub.hotplug_msg.slot_idx"] == 0x0102
    assert f["ub.mgmtetah.pdu_length"] == 8
    assert "ub.pdu" not in rec["layers"]            # the whole PDU is the declared header


def test_configuration_completion_f_is_bit_0_of_the_first_word():
    # UB 2.0 §10.4.5 Fig 10-53 (kernel: a 1-bit flag then 31 reserved bits in the first u32,
    # the flag in its least significant bit); GUID and EID low word first
    guid_words = ["00000004", "00000003", "00000002", "00000001"]     # least significant first
    pdu = bytes.fromhex("00000001" + "".join(guid_words) + "00" * 16)
    f = _clean(mgmt(6, 4, pdu))["fields"]
    assert f["ub.cfg_complete.f"] == 1
    assert f["ub.cfg_complete.rsvd1"] == 0
    flagged_high = bytes.fromhex("80000000") + pdu[4:]
    rec = decode(mgmt(6, 4, flagged_high))
    assert rec["fields"]["ub.cfg_complete.f"] == 0
    assert rec["fields"]["ub.cfg_complete.rsvd1"] != 0         # a reserved bit, reported
    assert any(i["field"] == "ub.cfg_complete.rsvd1" for i in rec["issues"])


def test_link_neighbour_query_port_num_is_one_byte():
    # UB 2.0 §10.4.3.3 Fig 10-45: D + 7 reserved bits, Port_num (1 byte), 2 reserved bytes,
    # then 16-bit Port_idx entries
    pdu = bytes.fromhex("80" "03" "0000" "0001" "0005" "0009" "0000")
    rec = _clean(mgmt(4, 7, pdu))
    f = rec["fields"]
    assert f["ub.neighbour_query.d"] == 1
    assert f["ub.neighbour_query.port_num"] == 3


def test_entity_registration_start_addresses_are_sent_low_word_first():
    # kernel entity_rs_info: size, start low word, start high word (UB 2.0 §10.4.5)
    head = bytes.fromhex("7fff0002") + bytes(16) + bytes(16) + bytes.fromhex("00000123") \
        + bytes(16)
    spaces = b"".join(bytes.fromhex(size + lo + hi) for size, lo, hi in (
        ("00001000", "89abcdef", "01234567"), ("00000200", "00000000", "00000002"),
        ("00000000", "00000000", "00000000")))
    f = _clean(mgmt(6, 0, head + spaces))["fields"]
    assert f["ub.entity_reg.size0"] == 0x1000
    assert f["ub.entity_reg.start0"] == 0x0123456789ABCDEF
    assert f["ub.entity_reg.start1"] == 0x2_0000_0000
    assert f["ub.entity_reg.cna"] == 0x123


# -- the encoder fills next-protocol fields from the layer that follows (issue 11) -----------

_UB_WRITE = [("ub.rtph", {"tpopcode": 1}), ("ub.btah", {"taopcode": "Write"}),
             ("ub.maetah", {"length": 4}), ("data", {"data": b"abcd"})]


def test_carrier_next_protocol_fields_follow_the_next_layer():
    pkt = encode_layers([("eth", {}), ("ip", {"src": "10.0.0.1", "dst": "10.0.0.2"}),
                         ("udp", {}), *_UB_WRITE])
    rec = decode(pkt, 1)
    assert rec["layers"] == ["eth", "ip", "udp", "ub.rtph", "ub.btah", "ub.maetah", "data",
                             "ub.icrc"]
    f = rec["fields"]
    # UB 2.0 §5.2.3 Tables 5-4 and 5-6: flags 0b010, protocol 0x11, destination port 4792
    assert (f["eth.type"], f["ip.flags"], f["ip.proto"], f["udp.dstport"]) == \
        (0x0800, 2, 17, 4792)
    assert pkt[12:14] == b"\x08\x00" and pkt[14 + 6] >> 5 == 2 and pkt[14 + 9] == 17
    assert f["ub.icrc.status"] == "good"


def test_vlan_and_ipv6_are_filled_too_and_explicit_values_are_kept():
    pkt = encode_layers([("eth", {}), ("vlan", {"id": 5}), ("ipv6", {"src": "fd00::1",
                         "dst": "fd00::2"}), ("udp", {}), *_UB_WRITE])
    rec = decode(pkt, 1)
    assert rec["layers"][:5] == ["eth", "vlan", "ipv6", "udp", "ub.rtph"]
    assert pkt[12:14] == b"\x81\x00" and pkt[16:18] == b"\x86\xdd"
    wrong = encode_layers([("eth", {"type": 0x88B5}), ("ip", {"flags": 0, "proto": 6}),
                           ("udp", {}), *_UB_WRITE])
    assert wrong[12:14] == b"\x88\xb5"
    assert decode(wrong, 1)["layers"] == ["eth", "data"]
    plain = encode_layers([("eth", {}), ("ip", {}), ("udp", {"dstport": 53}),
                           ("data", {"data": b"x"})])
    assert plain[14 + 6] >> 5 == 0                 # not UB: no DF forced



def test_npic_entry_guid_low_word_first():
    # UB 2.0 App F.2.5: after the NPIC header (Opcode, a reserved byte, SUM), each entry is a
    # 16-byte GUID and RSVD(7) NPI(25).  The GUID's words go least significant first, as the
    # GUIDs/EIDs of the management PDUs (reference profile G15).
    from ubpkt.formats.core import value_to_text
    entry = bytes.fromhex("0000000d" "0000000c" "0000000b" "0000000a" "00123456")
    pkt = encode_layers([("ub.lph", {"cfg": 5}), ("ub.cfg5", {"protocol": 0x0106}),
                         ("ub.npic", {"opcode": 1, "sum": 1}), ("data", entry)])
    rec = decode(pkt)
    assert rec["layers"][-2:] == ["ub.npic", "ub.npic_entry"], rec["layers"]
    f = rec["fields"]
    assert f["ub.npic.guid"] == value_to_text("guid", 0x0000000A_0000000B_0000000C_0000000D, 128)
    assert f["ub.npic.npi"] == 0x123456
    assert not [i for i in rec["issues"] if i["severity"] != "info"], rec["issues"]
    assert encode_record(rec) == pkt


def test_resource_space_configure_request_carries_three_start_addresses():
    # UB 2.0 §10.4.3.3 Fig 10-42: Opcode in the last bit of the first DW; with Opcode 1 the PDU
    # is 28 bytes: ERS0..2 start addresses, each SA0 (low word) then SA1
    sas = [(0x0000_0001_0000_0000 + i * 0x1000) for i in range(3)]
    pdu = bytes.fromhex("00000001") + b"".join(
        (sa & 0xFFFFFFFF).to_bytes(4, "big") + (sa >> 32).to_bytes(4, "big") for sa in sas)
    rec = _clean(mgmt(4, 1, pdu))
    assert "ub.rs_info_cfg" in rec["layers"] and "ub.pdu" not in rec["layers"]
    f = rec["fields"]
    assert f["ub.rs_info.opcode_name"] == "Configure"
    assert [f[f"ub.rs_info.ers{i}_sa"] for i in range(3)] == sas
    obtain = _clean(mgmt(4, 1, bytes.fromhex("00000000")))
    assert "ub.rs_info_req" in obtain["layers"]
    assert obtain["fields"]["ub.rs_info.opcode_name"] == "Obtain"


def test_ub_link_netdev_npi_is_split_like_the_nth():
    # the kernel's ublhdr: CFG byte, CC (16 bits), NPI (32 bits), then the IP packet; the NPI's
    # bit 24 is the Permission bit, bits 23:0 the partition (UB 2.0 §5.3.3.1)
    from ubpkt.record import LINKTYPE_UBL
    ip = encode_layers([("ip", {"src": "10.0.0.1", "dst": "10.0.0.2"}),
                        ("udp", {"srcport": 7, "dstport": 9}), ("data", {"data": b"hi"})])
    frame = bytes([3]) + (0).to_bytes(2, "big") + (0x0100_0005).to_bytes(4, "big") + ip
    f = decode(frame, LINKTYPE_UBL)["fields"]
    assert (f["ub.ubl.npi_permission"], f["ub.ubl.npi_id"]) == (1, 5)
