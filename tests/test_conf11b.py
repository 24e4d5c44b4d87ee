"""Issue 11, remaining items: golden frames built here byte by byte from the kernel structs and
the LLDP sender (never from ubpkt's encoder), decoded, and re-encoded byte-exact.

* The Linux UB link netdev (openEuler drivers/net/ub/dev/ubl.{c,h}): one "sw_ctype" byte with the
  LPH CFG (3 IPv4, 4 IPv6, 5 UB network control), then for IP the kernel's ublhdr, CC (BE16) and
  NPI (BE32, the kernel writes 1), then the IP packet; pcap link type 150 (record.LINKTYPE_UBL).
* CFG-5 protocol 0x0109 (LLDP): bare TLVs, or ub-lldpd's Ethernet header first
  (01:80:c2:00:00:0e, the source MAC, 0x88CC), told apart by the destination MAC.
"""
from __future__ import annotations

import struct

import pytest

from ubpkt import decode, encode_record
from ubpkt.formats import HEADERS as H
from ubpkt.link.plength import plength
from ubpkt.profile import SPEC
from ubpkt.record import LINKTYPE_UB, LINKTYPE_UBL, has_errors

# ------------------------------------------------------------------------------------------------
# hand-built pieces


def ipv4(payload: bytes, proto: int = 17, src=b"\x0a\x00\x00\x01", dst=b"\x0a\x00\x00\x02"):
    """An IPv4 header (RFC 791, no options, DF, checksum filled) and its payload."""
    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x1234, 0x4000, 64, proto, 0,
                      src, dst)
    s = sum(struct.unpack(">10H", hdr))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return hdr[:10] + struct.pack(">H", ~s & 0xFFFF) + hdr[12:] + payload


def ipv6(payload: bytes, nxt: int = 17) -> bytes:
    return (struct.pack(">IHBB", 6 << 28, len(payload), nxt, 64) + bytes(15) + b"\x01"
            + bytes(15) + b"\x02" + payload)


def udp(dport: int, payload: bytes, sport: int = 40000) -> bytes:
    return struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def ublhdr(cfg: int, cc: int = 0x4000, npi: int = 1) -> bytes:
    """The UB link netdev software header: the CFG byte, then (IP) CC and NPI, big-endian."""
    return bytes([cfg]) + (struct.pack(">HI", cc, npi) if cfg in (3, 4) else b"")


GUID_D = bytes(range(0x10, 0x20))
GUID_S = bytes(range(0x20, 0x30))


def cfg5(protocol: int, body: bytes) -> bytes:
    """App F.2.1: protocol (BE16), DGUID, SGUID, then the protocol's body."""
    return struct.pack(">H", protocol) + GUID_D + GUID_S + body


def lph_cfg5(rest: bytes) -> bytes:
    """A native CFG-5 packet: an LPH (VL 0, CFG 5, PLENGTH for the packet's size) + ``rest``."""
    total = 4 + len(rest)
    return struct.pack(">HH", 5, plength(total)) + rest


def lldp_tlv(typ: int, value: bytes) -> bytes:
    """IEEE 802.1AB TLV: 7-bit type, 9-bit length of the value."""
    return struct.pack(">H", (typ << 9) | len(value)) + value


LLDP_TLVS = (lldp_tlv(1, b"\x07" + GUID_S) + lldp_tlv(2, b"\x07port3") + lldp_tlv(3, b"\x00\x78")
             + lldp_tlv(0, b""))
LLDP_DST = bytes.fromhex("0180c200000e")
LLDP_SRC = bytes.fromhex("02aabbccddee")


def roundtrip(buf: bytes, linktype: int, profile=SPEC) -> dict:
    rec = decode(buf, linktype, profile)
    assert encode_record(rec, profile) == buf
    return rec


# ------------------------------------------------------------------------------------------------
# the UB link netdev link type


def test_ubl_linktype_number_is_a_free_user_type():
    # DLT_USER0/1 (147, 148) are taken by ns-3-UB traces and LPH packets, DLT_USER4 (151) by
    # flit streams (149, DLT_USER2, their old number, is still read)
    assert LINKTYPE_UBL == 150 and LINKTYPE_UBL not in (147, 148, 149, 151)


def test_ubl_ipv4_plain_udp():
    ip = ipv4(udp(5000, b"hello"))
    buf = ublhdr(3) + ip
    rec = roundtrip(buf, LINKTYPE_UBL)
    assert rec["layers"][:4] == ["ub.ubl", "ub.ubl_ip", "ip", "udp"]
    f = rec["fields"]
    assert (f["ub.ubl.cfg"], f["ub.ubl.cfg_name"], f["ub.ubl.cc"], f["ub.ubl.npi"]) == \
        (3, "IPv4", 0x4000, 1)
    # CC 0x4000 is CCI mode 2 (FECN_RTT, UB 2.0 §5.3.5.1), as the unic driver sends it
    assert f["ub.cci.mode_name"] == "FECN_RTT"
    assert f["ip.src"] == "10.0.0.1" and f["udp.dstport"] == 5000
    assert not has_errors(rec["issues"]), rec["issues"]


def test_ubl_ipv6():
    buf = ublhdr(4, cc=0, npi=0x12345) + ipv6(udp(6000, b"\x01\x02"))
    rec = roundtrip(buf, LINKTYPE_UBL)
    assert rec["layers"][:4] == ["ub.ubl", "ub.ubl_ip", "ipv6", "udp"]
    assert rec["fields"]["ub.ubl.npi"] == 0x12345 and rec["fields"]["ub.cci.mode"] == 0
    assert not has_errors(rec["issues"]), rec["issues"]


def test_ubl_cfg5_has_no_icrc_even_when_cfg5_icrc_is_on():
    # IP notify (App F.2.3): version 1 (IPv4), prefix length 24, 192.168.1.9
    body = bytes([0x10, 24]) + bytes([192, 168, 1, 9])
    buf = ublhdr(5) + cfg5(0x0102, body)
    prof = SPEC.with_(cfg5_icrc=True)
    rec = roundtrip(buf, LINKTYPE_UBL, prof)
    assert rec["layers"] == ["ub.ubl", "ub.cfg5", "ub.ip_notify"]
    assert rec["fields"]["ub.ip_notify.ipv4"] == "192.168.1.9"
    assert rec["fields"]["ub.cfg5.dguid"].replace(":", "").lower().endswith("1f")
    assert not rec["issues"], rec["issues"]


def test_ubl_other_cfg_is_an_error_not_a_crash():
    buf = bytes([7]) + bytes(20)
    rec = decode(buf, LINKTYPE_UBL)
    assert rec["layers"][0] == "ub.ubl"
    assert any(i["field"] == "ub.ubl.cfg" and i["severity"] == "error" for i in rec["issues"])
    for cut in range(len(ublhdr(3) + ipv4(b""))):
        decode((ublhdr(3) + ipv4(b""))[:cut], LINKTYPE_UBL)   # truncations never raise


def test_ubl_capture_file_decodes(tmp_path):
    from ubpkt.capture import PcapWriter
    from ubpkt.capture.stream import iter_records
    p = tmp_path / "ubl.pcap"
    with PcapWriter(p, LINKTYPE_UBL) as w:
        w.write(ublhdr(3) + ipv4(udp(5000, b"x")), 1_000_000_000)
        w.write(ublhdr(5) + cfg5(0x0109, LLDP_TLVS), 2_000_000_000)
    recs = [r for r in iter_records(p) if r.get("frame")]
    assert [r["linktype"] for r in recs] == [150, 150]
    assert recs[1]["layers"][:3] == ["ub.ubl", "ub.cfg5", "ub.lldp_tlv"]


# ------------------------------------------------------------------------------------------------
# CFG-5 LLDP, both forms


def test_lldp_bare_tlvs():
    buf = lph_cfg5(cfg5(0x0109, LLDP_TLVS))
    rec = roundtrip(buf, LINKTYPE_UB)
    assert rec["layers"][:3] == ["ub.lph", "ub.cfg5", "ub.lldp_tlv"]
    assert "ub.lldp_eth" not in rec["layers"]
    assert rec["layers"].count("ub.lldp_tlv") == 4
    assert not has_errors(rec["issues"]), rec["issues"]


def test_lldp_behind_ub_lldpd_ethernet_header():
    eth = LLDP_DST + LLDP_SRC + b"\x88\xcc"
    buf = lph_cfg5(cfg5(0x0109, eth + LLDP_TLVS))
    rec = roundtrip(buf, LINKTYPE_UB)
    assert rec["layers"][:4] == ["ub.lph", "ub.cfg5", "ub.lldp_eth", "ub.lldp_tlv"]
    f = rec["fields"]
    assert f["ub.lldp_eth.dst"] == "01:80:c2:00:00:0e"
    assert f["ub.lldp_eth.src"] == "02:aa:bb:cc:dd:ee"
    assert f["ub.lldp_eth.etype"] == 0x88CC
    # the TLVs are the LLDP decoder's: chassis ID, port ID, TTL, End
    assert rec["layers"].count("ub.lldp_tlv") == 4
    assert f["ub.lldp.tlv_type"] == [1, 2, 3, 0]
    assert f["ub.lldp.tlv_value"][:3] == ["07" + GUID_S.hex(), "07" + b"port3".hex(), "0078"]
    assert not has_errors(rec["issues"]), rec["issues"]


def test_lldp_ethernet_detection_is_a_profile_setting():
    eth = LLDP_DST + LLDP_SRC + b"\x88\xcc"
    buf = lph_cfg5(cfg5(0x0109, eth + LLDP_TLVS))
    rec = decode(buf, LINKTYPE_UB, SPEC.with_(cfg5_lldp_eth=False))
    assert "ub.lldp_eth" not in rec["layers"] and rec["layers"][2] == "ub.lldp_tlv"


@pytest.mark.parametrize("differs_at", range(6))
def test_lldp_other_destination_is_bare_tlvs(differs_at):
    dst = bytearray(LLDP_DST)
    dst[differs_at] ^= 0x40
    buf = lph_cfg5(cfg5(0x0109, bytes(dst) + LLDP_SRC + b"\x88\xcc" + LLDP_TLVS))
    rec = decode(buf, LINKTYPE_UB)
    assert "ub.lldp_eth" not in rec["layers"]


def test_lldp_ethernet_header_with_other_ethertype_is_payload():
    buf = lph_cfg5(cfg5(0x0109, LLDP_DST + LLDP_SRC + b"\x08\x00" + LLDP_TLVS))
    rec = roundtrip(buf, LINKTYPE_UB)
    assert rec["layers"][:3] == ["ub.lph", "ub.cfg5", "ub.lldp_eth"]
    assert "ub.lldp_tlv" not in rec["layers"]


def test_lldp_eth_header_declared_as_ub_lldpd_sends_it():
    h = H["ub.lldp_eth"]
    assert h.size == 14 and [f.name for f in h.fields] == ["dst", "src", "etype"]


# ------------------------------------------------------------------------------------------------
# CIPH NLP 0/1: the UPIH and EIDH after it are clear text (UB 2.0 §11.5.2.3; App B Figures B-6,
# B-8); NLP 2: the protected part follows the CIPH at once.  CIPH layout: profile G9 (CIP_ID 16,
# rsvd 4, NLP 4, rsvd 8, SN 32), the ICV (12 bytes) closes the TP body before its padding.

NO_ICRC = SPEC.with_(icrc=False)
PROTECTED = bytes(range(0xA0, 0xA8))
ICV = bytes(range(0xC0, 0xCC))


def ciph(nlp: int) -> bytes:
    return struct.pack(">HBBI", 0x00AB, nlp, 0, 5)


def ctph(nlp: int, padding: int) -> bytes:
    return bytes([(padding << 4) | nlp])      # TPOpcode 0, Padding, NLP (UB 2.0 §6.2.1)


def test_ciph_nlp1_cna16_clear_upih16_eidh40():
    body = ciph(1) + struct.pack(">H", 0x1234) + ((0x12345 << 20) | 0x6789A).to_bytes(5, "big") \
        + PROTECTED + ICV
    pad = -(1 + len(body)) % 4
    nth = struct.pack(">HHHBB", 0x0102, 0x0304, 0, 0, 0)          # CNA16, NLP 0 (CTPH)
    rest = nth + ctph(3, pad) + body + bytes(pad)
    buf = struct.pack(">HH", 6, plength(4 + len(rest))) + rest
    rec = roundtrip(buf, LINKTYPE_UB, NO_ICRC)
    assert rec["layers"] == ["ub.lph", "ub.cna16", "ub.ctph", "ub.ciph", "ub.upih16",
                             "ub.eidh40", "ub.ciph_protected", "ub.ciph_icv"] + \
        (["ub.pad"] if pad else [])
    f = rec["fields"]
    assert (f["ub.ciph.nlp"], f["ub.upih.upi"], f["ub.eidh.seid"], f["ub.eidh.deid"]) == \
        (1, 0x1234, 0x12345, 0x6789A)
    assert f["ub.ciph.protected"] == PROTECTED.hex() and f["ub.ciph.icv"] == ICV.hex()
    assert not has_errors(rec["issues"]), rec["issues"]


def test_ciph_nlp0_cna24_clear_upih32_eidh256():
    seid, deid = bytes(range(16)), bytes(range(16, 32))
    body = ciph(0) + struct.pack(">I", 0x00ABCDEF) + seid + deid + PROTECTED + ICV
    pad = -(1 + len(body)) % 4
    nth = (0x010203).to_bytes(3, "big") + (0x040506).to_bytes(3, "big") + bytes(4)   # NLP 0
    rest = nth + ctph(3, pad) + body + bytes(pad)
    buf = struct.pack(">HH", 7, plength(4 + len(rest))) + rest
    rec = roundtrip(buf, LINKTYPE_UB, NO_ICRC)
    assert rec["layers"][3:7] == ["ub.ciph", "ub.upih32", "ub.eidh256", "ub.ciph_protected"]
    f = rec["fields"]
    assert f["ub.upih.upi"] == 0xABCDEF and f["ub.ciph.icv"] == ICV.hex()
    assert f["ub.eidh.seid"].replace(":", "").lower() == seid.hex()
    assert not has_errors(rec["issues"]), rec["issues"]


def test_ciph_nlp2_protects_from_the_tah():
    body = ciph(2) + PROTECTED + ICV
    pad = -(1 + len(body)) % 4
    rest = struct.pack(">HHHBB", 1, 2, 0, 0, 0) + ctph(3, pad) + body + bytes(pad)
    buf = struct.pack(">HH", 6, plength(4 + len(rest))) + rest
    rec = roundtrip(buf, LINKTYPE_UB, NO_ICRC)
    assert rec["layers"][3:6] == ["ub.ciph", "ub.ciph_protected", "ub.ciph_icv"]


# ------------------------------------------------------------------------------------------------
# enumeration (UB 2.0 §10.4.3.1-2): CNA query request/response (Fig 10-33/10-34) and the
# topology query response's TLVs (Fig 10-27..10-30), built from the figures

GUID_DWS = (0x11111111, 0x22222222, 0x33333333, 0x44444444)   # least-significant DW first (G15)
GUID_TEXT_HEX = "44444444333333332222222211111111"


def guid_wire() -> bytes:
    return struct.pack(">4I", *GUID_DWS)


def enumeration(cmd: int, opcode: int, status: int, body: bytes) -> bytes:
    """LPH CFG 6 | CNA16 NTH, NLP 1 | UPIH16 0x7FFF | 2 zero bytes | Scan Header (no return path,
    8-bit entries, 1 hop) | forward path (one DW, entry 5) | Scan PDU | body; no ICRC (the
    profile's enum_icrc is off)."""
    nth = struct.pack(">HHHBB", 0, 0, 0, 0, 0x09)        # Mgmt 1, NLP 1
    scan = struct.pack(">HBB", 0x0001, 1, 0) + struct.pack(">I", 5)
    length = (20 + len(body)) // 4
    pdu = struct.pack(">BBBBBBH", 1, cmd, opcode, status, 7, length, 0x0102) + guid_wire()
    rest = nth + struct.pack(">H", 0x7FFF) + bytes(2) + scan + pdu + body
    return struct.pack(">HH", 6, plength(4 + len(rest))) + rest


def _guid(text: str) -> str:
    return text.replace(":", "").replace("-", "").lower()


def test_cna_query_request():
    buf = enumeration(2, 3, 0, struct.pack(">HH", 0, 0x0007))
    rec = roundtrip(buf, LINKTYPE_UB)
    assert rec["layers"][-2:] == ["ub.scan_pdu", "ub.scan_cna_query"]
    f = rec["fields"]
    assert (f["ub.scan_pdu.cmd_name"], f["ub.scan_pdu.opcode"], f["ub.scan_pdu.port_idx"]) == \
        ("CNA_Query", 3, 7)
    assert _guid(f["ub.scan_pdu.guid"]) == GUID_TEXT_HEX
    assert not has_errors(rec["issues"]), rec["issues"]


def test_cna_query_response():
    buf = enumeration(2, 0, 0, bytes([0]) + (0x123456).to_bytes(3, "big"))
    rec = roundtrip(buf, LINKTYPE_UB)
    assert rec["layers"][-2:] == ["ub.scan_pdu", "ub.scan_cna_query_rsp"]
    assert rec["fields"]["ub.scan_pdu.cna"] == 0x123456
    assert not has_errors(rec["issues"]), rec["issues"]


def test_topology_response_tlvs():
    slice_info = bytes([0, 4, 2, 1])
    port_num = bytes([1, 8]) + struct.pack(">HHH", 16, 1, 0)
    # T=1 (vPort), W=0, B=1 (boundary), S=1 (link up): byte 2 = rsvd[7:4] T W B S
    port_info = bytes([2, 28, 0b1011, 0]) + struct.pack(">HHI", 3, 9, 0) + guid_wire()
    # Sup_MTU [14:12] = 5, MTU [10:8] = 3, DA [0] = 1; then RSVD 16, Class Code 0x0200
    cap_info = bytes([4, 8]) + struct.pack(">HHH", (5 << 12) | (3 << 8) | 1, 0, 0x0200)
    vendor = bytes([200, 6]) + b"\xde\xad\xbe\xef"
    longer = bytes([0, 8, 3, 2]) + b"\x01\x02\x03\x04"          # a Slice_info with 4 bytes more
    buf = enumeration(0, 0, 0, slice_info + port_num + port_info + cap_info + vendor + longer)
    rec = roundtrip(buf, LINKTYPE_UB)
    i = rec["layers"].index("ub.scan_pdu")
    assert rec["layers"][i + 1:] == ["ub.scan_slice_info", "ub.scan_port_num",
                                     "ub.scan_port_info", "ub.scan_cap_info", "ub.scan_tlv",
                                     "ub.scan_tlv_value", "ub.scan_slice_info",
                                     "ub.scan_tlv_value"]
    f = rec["fields"]
    assert f["ub.scan_tlv.type"] == [0, 1, 2, 4, 200, 0]
    assert f["ub.scan_tlv.total_slice"] == [2, 3] and f["ub.scan_tlv.slice_id"] == [1, 2]
    assert (f["ub.scan_tlv.total_num_ports"], f["ub.scan_tlv.num_port_tlv"]) == (16, 1)
    assert (f["ub.scan_tlv.t"], f["ub.scan_tlv.w"], f["ub.scan_tlv.b"], f["ub.scan_tlv.s"]) == \
        (1, 0, 1, 1)
    assert (f["ub.scan_tlv.t_name"], f["ub.scan_tlv.s_name"]) == ("vPort", "Link_up")
    assert (f["ub.scan_tlv.local_port_idx"], f["ub.scan_tlv.remote_port_idx"]) == (3, 9)
    assert _guid(f["ub.scan_tlv.remote_guid"]) == GUID_TEXT_HEX
    assert (f["ub.scan_tlv.sup_mtu"], f["ub.scan_tlv.mtu"], f["ub.scan_tlv.da"],
            f["ub.scan_tlv.class_code"]) == (5, 3, 1, 0x0200)
    assert f["ub.scan_tlv.value"] == ["deadbeef", "01020304"]
    assert not has_errors(rec["issues"]), rec["issues"]


def test_topology_tlv_too_short_for_its_type_stays_bytes():
    buf = enumeration(0, 0, 0, bytes([2, 8]) + bytes(6))       # a Port_info of 8 bytes
    rec = roundtrip(buf, LINKTYPE_UB)
    assert rec["layers"][-2:] == ["ub.scan_tlv", "ub.scan_tlv_value"]


# ------------------------------------------------------------------------------------------------
# interpretation fields (formats.derived.INTERPRETATIONS): NPI (§5.3.3.1), RTPH RSPINFO by RSPST
# (§6.2.1), ATAH RSPINFO (§7.2.2); the same values from the fast path's templates


def uboe(ub: bytes) -> bytes:
    eth = bytes.fromhex("020000000002 020000000001 0800")
    return eth + ipv4(udp(4792, ub))


def rtph(tpopcode: int, rspst: int = 0, rspinfo: int = 0, psn: int = 7) -> bytes:
    return (bytes([tpopcode, 0]) + (3).to_bytes(3, "big") + (4).to_bytes(3, "big") + b"\x00"
            + psn.to_bytes(3, "big") + bytes([(rspst << 5) | rspinfo]) + (0).to_bytes(3, "big"))


def atah(rspst: int, rspinfo: int, opcode: int = 0x11) -> bytes:
    return bytes([opcode, 0]) + struct.pack(">H", 0x55) + bytes([(rspst << 5) | rspinfo, 0, 0, 9])


@pytest.mark.parametrize("rspst,rspinfo,key,want", [
    (1, 5, "ub.rtph.rnr_timeout_us", 64),          # RNR: 2 us x 2^5
    (2, 0, "ub.rtph.rnr_timeout_us", 2),           # page fault, handled before the TAACK
    (2, 19, "ub.rtph.rnr_timeout_us", 2 << 19),    # the largest valid code
    (3, 0, "ub.rtph.rspinfo_name", "PSN_Error"),
    (3, 2, "ub.rtph.rspinfo_name", "Remote_Abort"),
    (3, 9, "ub.rtph.rspinfo_name", "reserved_9"),
    (5, 1, "ub.rtph.rspinfo_name", "TAACK_Unrecoverable"),
])
def test_tp_response_rspinfo(rspst, rspinfo, key, want):
    rec = roundtrip(uboe(rtph(2, rspst, rspinfo)), 1, NO_ICRC)
    assert rec["fields"][key] == want
    others = {"ub.rtph.rnr_timeout_us", "ub.rtph.rspinfo_name"} - {key}
    assert not others & set(rec["fields"])


def test_tp_ack_success_has_no_rspinfo_reading():
    rec = roundtrip(uboe(rtph(2, 0, 0)), 1, NO_ICRC)
    assert not {"ub.rtph.rnr_timeout_us", "ub.rtph.rspinfo_name"} & set(rec["fields"])


@pytest.mark.parametrize("rspst,rspinfo,key,want", [
    (0, 9, "ub.atah.taack_count", 10),     # §7.4: RSPINFO 9 stands for 10 transactions
    (5, 0, "ub.atah.taack_count", 1),
    (1, 3, "ub.atah.rnr_timeout_us", 16),
    (3, 1, "ub.atah.rspinfo_name", "Unsupported_Request"),
])
def test_taack_rspinfo(rspst, rspinfo, key, want):
    rec = roundtrip(uboe(rtph(1) + atah(rspst, rspinfo)), 1, NO_ICRC)
    assert "ub.atah" in rec["layers"]
    assert rec["fields"][key] == want


def test_npi_permission_and_id():
    nth = struct.pack(">HI", 0, (1 << 24) | 0x000102)          # low privilege, partition 0x102
    ip = ipv4(udp(5000, b"abcd"))
    buf = struct.pack(">HH", 3, plength(4 + len(nth) + len(ip))) + nth + ip
    rec = roundtrip(buf, LINKTYPE_UB, NO_ICRC)
    f = rec["fields"]
    assert (f["ub.nth.npi"], f["ub.nth.npi_permission"], f["ub.nth.npi_id"]) == \
        ((1 << 24) | 0x102, 1, 0x102)


def test_interpretations_on_the_fast_path():
    from ubpkt.dissect import dissect
    from ubpkt.dissect.fastpath import TemplateCache
    cache = TemplateCache(NO_ICRC)
    frames = [uboe(rtph(2, rspst, rspinfo, psn)) for rspst in (0, 1, 3, 5)
              for rspinfo in (0, 1, 2, 7, 19) for psn in (1, 2)]
    frames += [uboe(rtph(1) + atah(rspst, rspinfo)) for rspst in (0, 1, 3) for rspinfo in (0, 9)]
    for _ in range(3):
        for f in frames:
            fr = dissect(f, 1, NO_ICRC)
            assert cache.decode(f, 1) == (fr.layers, fr.fields, fr.issues)


def test_interpretations_do_not_defeat_the_templates():
    """The field an interpretation reads is not guarded (only its conditions are): TAACKs that
    differ in RSPINFO alone share one template, which computes taack_count itself."""
    from ubpkt.dissect import dissect
    from ubpkt.dissect.fastpath import DISPATCH_FIELDS, TemplateCache
    assert "rspinfo" not in DISPATCH_FIELDS["ub.atah"] and "rspst" in DISPATCH_FIELDS["ub.atah"]
    cache = TemplateCache(NO_ICRC)
    frames = [uboe(rtph(1) + atah(0, n)) for n in range(32)]
    for f in frames:
        fr = dissect(f, 1, NO_ICRC)
        assert cache.decode(f, 1) == (fr.layers, fr.fields, fr.issues)
        assert fr.fields["ub.atah.taack_count"] == f[14 + 20 + 8 + 16 + 4] % 32 + 1
    assert (cache.hits, cache.misses) == (30, 2)   # one template, built on the second sight
    line = cache.ndjson(frames[9], 1, 1, 0, len(frames[9]))
    assert b'"ub.atah.taack_count":10' in line


# ------------------------------------------------------------------------------------------------
# the SACK bitmap as PSNs (UB 2.0 §6.2.3: BitMap[0] is RTPH.PSN); where BitMap[i] sits is the
# profile's sack_bit_order: the spec's Field[i] notation (bit i from the least significant end,
# the bitmap drawn as one field) for SPEC, ns-3-UB's byte-wise LSB-first order for NS3

def tpsack(psn: int, bitmap: bytes) -> bytes:
    size = {8: 0, 16: 1, 32: 2, 64: 3, 128: 4}[len(bitmap)]
    maxrcv = ((psn + 2) & 0xFFFFFF).to_bytes(3, "big")
    return uboe(rtph(5, psn=psn) + bytes([size]) + maxrcv + bitmap)


@pytest.mark.parametrize("order,bitmap", [
    ("field_lsb", bytes(7) + b"\x05"),          # BitMap[0], [2]: bits 0 and 2 of the last byte
    ("byte_lsb", b"\x05" + bytes(7)),           # ns-3-UB: bits 0 and 2 of the first byte
    ("msb_first", b"\xa0" + bytes(7)),          # the first and third bit on the wire
])
def test_sack_bitmap_psns(order, bitmap):
    prof = NO_ICRC.with_(sack_bit_order=order)
    rec = roundtrip(tpsack(0xFFFFFF, bitmap), 1, prof)      # PSNs wrap at 2^24
    assert rec["fields"]["ub.saetph.acked_psns"] == [0xFFFFFF, 1]


def test_sack_orders_shipped():
    from ubpkt.profile import NS3
    assert (SPEC.sack_bit_order, NS3.sack_bit_order) == ("field_lsb", "byte_lsb")


@pytest.mark.parametrize("order", ["field_lsb", "byte_lsb", "msb_first"])
def test_sack_bitmap_helpers_round_trip(order):
    from ubpkt.formats.sack import sack_bitmap, sack_offsets
    offs = [0, 1, 7, 8, 63, 100, 1023]
    bm = sack_bitmap(offs, 1024, order)
    assert len(bm) == 128 and sack_offsets(bm, order) == offs


def test_stack_writes_the_profile_order():
    """The reference stack builds its TPSACK bitmaps in the profile's order: the dissector's
    reading under the same profile gives back the PSNs the receiver holds."""
    from ubpkt.formats.sack import sack_psns
    from ubpkt.profile import NS3
    from ubpkt.stack.transport.rtp import RtpChannel
    from ubpkt.profile import TransportTuning

    class Framer:                     # the channel asks its framer only for the profile here
        pass
    for prof in (SPEC, NS3):
        fr = Framer()
        fr.profile = prof
        ch = RtpChannel(channel_id=1, local_tpn=1, peer_tpn=2, tx_psn=0, rx_psn=50, framer=fr,
                        tuning=TransportTuning(retransmission="sr", sack_bitmap_bits=64),
                        deliver=lambda *a: None)
        ch._held = {52, 55}
        assert sack_psns(ch._bitmap(), 49, prof.sack_bit_order) == [49, 52, 55]


# ------------------------------------------------------------------------------------------------
# atomic operands in the byte order of the spec's examples: the request payload of §7.4.2.3.2
# puts Operand1[7:0] in byte 0 (least significant byte first), the response of §7.4.2.3.3 puts
# Origin_data[63:56] in byte 0 (most significant byte first)

def btah(op: int, tassn: int = 1) -> bytes:
    return bytes([op, 0]) + struct.pack(">H", tassn) + bytes(4)


def maetah(address: int, length: int) -> bytes:
    return struct.pack(">QII", address, 0, length)


def test_atomic_compare_swap_operands():
    op1, op2 = 0x1122334455667788, 0x0102030405060708
    payload = op1.to_bytes(8, "little") + op2.to_bytes(8, "little")     # Operand1[7:0] first
    rec = roundtrip(uboe(rtph(1) + btah(0x07) + maetah(0x1000, 8) + payload), 1, NO_ICRC)
    f = rec["fields"]
    assert f["ub.btah.taopcode_name"] == "Atomic_compare_swap"
    assert (f["ub.atomic.operand1"], f["ub.atomic.operand2"]) == (f"{op1:016x}", f"{op2:016x}")
    assert not has_errors(rec["issues"]), rec["issues"]


def test_atomic_response_original_data():
    origin = 0xAABBCCDDEEFF0011
    rec = roundtrip(uboe(rtph(1) + atah(0, 0, opcode=0x13) + origin.to_bytes(8, "big")), 1,
                    NO_ICRC)
    assert rec["fields"]["ub.atomic.origin_data"] == f"{origin:016x}"


def test_atomic_payload_of_another_size_is_not_read():
    payload = bytes(range(12))                     # two 6-byte halves: no operand size (§7.4)
    rec = roundtrip(uboe(rtph(1) + btah(0x08) + maetah(0, 6) + payload), 1, NO_ICRC)
    assert "ub.atomic.operand1" not in rec["fields"]


def test_npic_entries_npi_readings():
    # App F.2.5: NPIC Set with two entries, each GUID (low DW first, G15) and R7 + NPI 25
    entries = b"".join(struct.pack(">4I", *GUID_DWS) + struct.pack(">I", npi)
                       for npi in ((1 << 24) | 5, 0x000777))
    buf = lph_cfg5(cfg5(0x0106, bytes([1, 0]) + struct.pack(">H", 2) + entries))
    rec = roundtrip(buf, LINKTYPE_UB)
    f = rec["fields"]
    assert f["ub.npic.npi_permission"] == [1, 0] and f["ub.npic.npi_id"] == [5, 0x777]
