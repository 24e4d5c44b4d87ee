"""Decoding: never raises, byte-exact re-encoding, ICRC, golden headers, the ns-3-UB captures."""
import pytest
from hypothesis import given, strategies as st

from ubpkt.capture import open_capture
from ubpkt import decode
from ubpkt.encode import encode_layers, encode_record
from ubpkt.profile import NS3, SPEC


def _errors(rec):
    return [i for i in rec["issues"] if i["severity"] == "error"]


@given(st.binary(max_size=300), st.sampled_from([1, 147, 148, 7]))
def test_arbitrary_bytes_never_raise_and_reencode_exactly(data, linktype):
    rec = decode(data, linktype)
    assert isinstance(rec["issues"], list)
    assert encode_record(rec) == data
    for i in rec["issues"]:
        assert set(i) == {"severity", "layer", "field", "offset", "message"}
        assert i["severity"] in ("error", "warning", "info")
    if not any(layer.startswith("ub.") for layer in rec["layers"]):
        assert any(i["severity"] == "info" for i in rec["issues"])


def _sample_frames(sample_captures):
    out = []
    for name in ("uboe_transactions.pcap", "ub_native.pcap"):
        with open_capture(sample_captures / name) as cap:
            out += [(p.data, cap.linktype) for p in cap]
    return out


def test_sample_captures_decode_cleanly_and_reencode(sample_captures):
    frames = _sample_frames(sample_captures)
    assert len(frames) >= 40
    for data, lt in frames:
        rec = decode(data, lt)
        assert not [i for i in rec["issues"] if i["severity"] != "info"], rec["issues"]
        assert encode_record(rec) == data
        if rec["fields"].get("ub.icrc.status") is not None:
            assert rec["fields"]["ub.icrc.status"] == "good"


@given(st.data())
def test_bit_flips_in_samples_never_raise_and_reencode(sample_captures, data):
    frames = _sample_frames(sample_captures)
    raw, lt = data.draw(st.sampled_from(frames))
    bit = data.draw(st.integers(0, len(raw) * 8 - 1))
    cut = data.draw(st.integers(0, len(raw)))
    mutated = bytearray(raw)
    mutated[bit // 8] ^= 1 << (bit % 8)
    mutated = bytes(mutated[:cut])
    rec = decode(mutated, lt)
    assert encode_record(rec) == mutated


def test_config_management_header_golden():
    # spec-facts §7.7: LPH | NTH | CTPH | UPIH16 | EIDH40 | BTAH | MGMTETAH = 32 bytes
    pkt = encode_layers([
        ("ub.lph", {"cfg": 6}),
        ("ub.cna16", {"scna": 0x0001, "dcna": 0x0010, "mgmt": 1, "nlp": 0}),
        ("ub.ctph", {"nlp": 2}), ("ub.upih16", {"upi": 0x7FFF}),
        ("ub.eidh40", {"seid": 1, "deid": 0x10}),
        ("ub.btah", {"taopcode": "Management", "ini_tassn": 1, "ini_rc_id": 3}),
        ("ub.mgmtetah", {"code": 2, "sub_code": 0}),
        ("ub.cfg_req", {"byte_en": 0xF, "req_addr": 0x1A}),
    ])
    head = bytes.fromhex("00060000" "00010010" "00000008" "027fff00" "00100010"
                         "10000001" "00000003" "04000010")
    assert pkt[4:32] == head[4:32]
    assert pkt[:2] == head[:2]
    rec = decode(pkt)
    f = rec["fields"]
    assert f["ub.mgmtetah.code_name"] == "Configuration"
    assert f["ub.mgmtetah.pdu_length"] == 16 and f["ub.cfg_req.req_addr"] == 0x1A
    assert f["ub.icrc.status"] == "good" and f["ub.upih.upi"] == 0x7FFF
    assert rec["layers"][:8] == ["ub.lph", "ub.cna16", "ub.ctph", "ub.upih16", "ub.eidh40",
                                 "ub.btah", "ub.mgmtetah", "ub.cfg_req"]
    # PLENGTH was filled for the whole 52-byte packet
    assert len(pkt) == 52 and f["ub.lph.plength"] == 0x004B + 0


def test_icrc_masks_hop_fields_and_catches_payload_damage(sample_captures):
    with open_capture(sample_captures / "uboe_transactions.pcap") as cap:
        raw = next(iter(cap)).data
    ttl_changed = bytearray(raw)
    ttl_changed[14 + 8] = 3            # TTL is masked
    ttl_changed[14 + 1] = 0xB8         # so is ToS
    assert decode(bytes(ttl_changed), 1)["fields"]["ub.icrc.status"] == "good"
    damaged = bytearray(raw)
    damaged[-10] ^= 0x40
    rec = decode(bytes(damaged), 1)
    assert rec["fields"]["ub.icrc.status"] == "bad"
    assert any(i["layer"] == "ub.icrc" and i["severity"] == "error" for i in rec["issues"])


def test_explicit_wrong_values_are_kept():
    layers = [("ub.lph", {"cfg": 9, "plength": 0x3FFF}),
              ("ub.cna16", {"scna": 1, "dcna": 2}),
              ("ub.btah_c", {"taopcode": 3}), ("ub.maetah_c", {"len_code": 0}),
              ("data", bytes(64))]
    pkt = encode_layers(layers)
    assert pkt[2:4] == b"\x3f\xff"
    rec = decode(pkt)
    assert any(i["field"] == "ub.lph.plength" for i in rec["issues"])
    good = encode_layers([("ub.lph", {"cfg": 6}), ("ub.cna16", {"scna": 1, "dcna": 2}),
                          ("ub.ctph", {}), ("ub.btah", {"taopcode": 6}), ("ub.maetah", {}),
                          ("ub.icrc", {"value": 0xDEADBEEF})])
    assert good[-4:] == (0xDEADBEEF).to_bytes(4, "little")
    assert decode(good)["fields"]["ub.icrc.status"] == "bad"


def test_tph_padding_filled():
    pkt = encode_layers([("ub.lph", {"cfg": 6}), ("ub.cna16", {}), ("ub.ctph", {}),
                         ("ub.btah", {"taopcode": 3}), ("ub.maetah", {"length": 3}),
                         ("data", b"a")])
    rec = decode(pkt)
    assert rec["fields"]["ub.ctph.padding"] == 2     # CTPH 1 + BTAH 8 + MAETAH 16 + 1 = 26
    assert rec["fields"]["ub.pad.data"] == "0000"
    assert rec["fields"]["data.data"] == b"a".hex()
    assert rec["fields"]["ub.icrc.status"] == "good"


def test_reserved_bits_warn_and_truncation_errors():
    pkt = bytearray(encode_layers([("ub.lph", {"cfg": 9}), ("ub.cna16", {}),
                                   ("ub.atah_c", {"taopcode": 0x11})]))
    pkt[0] |= 0x02                      # LPH reserved bit 25
    rec = decode(bytes(pkt))
    assert any(i["severity"] == "warning" and i["field"] == "ub.lph.rsvd1"
               for i in rec["issues"])
    rec = decode(bytes(pkt[:10]))
    assert any(i["severity"] == "error" and "truncated" in i["message"] for i in rec["issues"])


def test_crd_ack_credits_in_vl_order():
    raw = encode_layers([("ub.lch_crd_ack", {"clength": 1, "ctrl": 2, "sub_ctrl": 4, "t": 1}),
                         ("ub.crd_ack", {"crd_num": 5 << 6 * 15 | 9}), ("ub.bcrc", {})])
    rec = decode(raw)
    f = rec["fields"]
    assert f["ub.crd_ack.crd_vl15"] == 5 and f["ub.crd_ack.crd_vl0"] == 9
    assert f["ub.bcrc.status"] == "good" and len(raw) == 40
    bad = bytearray(raw)
    bad[10] ^= 1
    assert decode(bytes(bad))["fields"]["ub.bcrc.status"] == "bad"


NS3_FILES = ["caseA_host0_port0_tx.pcap", "caseB_switch2_port0_tx.pcap",
             "caseC_switch2_port0_tx.pcap"]


@pytest.mark.parametrize("name", NS3_FILES)
def test_ns3_captures_decode_without_errors(ns3_dir, name):
    with open_capture(ns3_dir / name) as cap:
        assert cap.linktype == 147
        n = 0
        for pkt in cap:
            rec = decode(pkt.data, cap.linktype)
            n += 1
            assert not _errors(rec), (n, rec["issues"])
            assert encode_record(rec) == pkt.data
            assert "data" not in rec["layers"] or rec["layers"][-1] == "data"
    assert n in (18, 106, 9)


def test_ns3_capture_values_match_summary(ns3_dir):
    with open_capture(ns3_dir / "caseA_host0_port0_tx.pcap") as cap:
        recs = [decode(p.data, 147, NS3) for p in cap]
    # packet 3: RTP data psn=1 last=1 TAH=WRITE maeLen=4096
    f = recs[3]["fields"]
    assert (f["ub.rtph.psn"], f["ub.rtph.last"], f["ub.btah.taopcode_name"],
            f["ub.maetah.length"]) == (1, 1, "Write", 4096)
    assert f["ub.lph.vl"] == 7 and f["ub.lph.rt_name"] == "per_flow_shortest"
    # packet 4: LDST load request host0 -> node 1 (CNA 0x010, little-endian), cTAH READ
    f = recs[4]["fields"]
    assert (f["ub.cna16.scna"], f["ub.cna16.dcna"], f["ub.btah.taopcode_name"],
            f["ub.btah.ini_tassn"]) == (0x0, 0x10, "Read", 2)
    # packet 6: 40-byte credit frame, VL7 returns 1
    f = recs[6]["fields"]
    assert f["ub.lch.block"] == "Crd_Ack" and f["ub.crd_ack.crd_vl7"] == 1
    assert sum(f[f"ub.crd_ack.crd_vl{v}"] for v in range(16)) == 1
    # packet 7: TPACK + CETPH (ns-3 layout) [0000000010000080]: AckSeq 0, Hint 4096, I=1
    f = recs[7]["fields"]
    assert f["ub.rtph.tpopcode_name"] == "TPACK-CC/TPNAK-CC"
    assert (f["ub.cetph.ack_seq"], f["ub.cetph.hint"], f["ub.cetph.i"]) == (0, 4096, 1)
    assert f["ub.atah.taopcode_name"] == "TAACK"


def test_spec_profile_on_ns3_bytes_reports_but_never_raises(ns3_dir):
    with open_capture(ns3_dir / "caseB_switch2_port0_tx.pcap") as cap:
        for pkt in cap:
            rec = decode(pkt.data, 148, SPEC)
            assert encode_record(rec, SPEC) == pkt.data


def test_every_control_block_kind_round_trips():
    from ubpkt.formats import enums as E
    for (ctrl, sub), kind in E.DLLCB_TYPES.items():
        flits = {"Crd_Ack": 2, "Init": 5, "Param_Exchg": 5}.get(kind, 1)
        lch = {"Crd_Ack": "ub.lch_crd_ack", "Block_Mode_Chg": "ub.lch_block_mode_chg"}.get(
            kind, "ub.lch")
        head = encode_layers([(lch, {"clength": flits - 1, "ctrl": ctrl, "sub_ctrl": sub})])
        raw = head + bytes(20 * flits - 8)
        raw = encode_layers([("data", raw), ("ub.bcrc", {})])
        rec = decode(raw)
        assert rec["fields"]["ub.lch.block"] == kind
        assert rec["fields"]["ub.bcrc.status"] == "good", kind
        assert not _errors(rec), (kind, rec["issues"])
        assert encode_record(rec) == raw


def test_padding_of_tp_responses_without_icrc_is_pad():
    pkt = encode_layers([("ub.lph_ns3", {"cfg": 3}), ("ub.nth", {}),
                         ("ip", {"version": 4, "hdr_len": 5, "proto": 17}), ("udp", {}),
                         ("ub.rtph", {"tpopcode": 2, "padding": 2}), ("ub.pad", b"\0\0")], NS3)
    rec = decode(pkt, 147)
    assert rec["layers"][-2:] == ["ub.rtph", "ub.pad"]
    assert encode_record(rec) == pkt


def test_explicit_zero_ihl_is_kept():
    from ubpkt.formats import HEADERS
    raw = HEADERS["eth"].encode(type=0x0800) + HEADERS["ip"].encode(hdr_len=0) + bytes(8)
    rec = decode(raw, 1)
    assert any(i["field"] == "ip.hdr_len" for i in rec["issues"])
    assert encode_record(rec) == raw
    built = encode_layers([("eth", {"type": 0x0800}), ("ip", {"hdr_len": 0, "proto": 17}),
                           ("udp", {})])
    assert built[14] == 0x40
