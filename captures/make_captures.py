"""Builds the sample captures in this folder from ubpkt's encoder (run: python captures/make_captures.py).

Every packet is described as header field maps; lengths, padding, PLENGTH, BCRC and ICRC are
left for the encoder to fill.  The output is deterministic (fixed timestamps, no randomness).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ubpkt.capture import LINKTYPE_ETHERNET, LINKTYPE_UB, PcapWriter
from ubpkt.encode import encode_layers

HERE = Path(__file__).resolve().parent

ETH = ("eth", {"dst": "02:00:00:00:00:02", "src": "02:00:00:00:00:01", "type": 0x0800})
ETH6 = ("eth", {"dst": "02:00:00:00:00:02", "src": "02:00:00:00:00:01", "type": 0x8100})
VLAN6 = ("vlan", {"priority": 3, "id": 100, "etype": 0x86DD})
IP4 = ("ip", {"version": 4, "hdr_len": 5, "dscp": 26, "flags": 2, "ttl": 64, "proto": 17,
              "src": "192.0.2.1", "dst": "192.0.2.2"})
IP6 = ("ipv6", {"version": 6, "tclass": 0x68, "nxt": 17, "hlim": 64, "src": "2001:db8::1",
                "dst": "2001:db8::2"})


def udp(sport=49152):
    return ("udp", {"srcport": sport})


def rtph(op=1, psn=0, last=0, nlp=0, a=1, rspst=0, rspinfo=0, stpn=0x10, dtpn=0x20, msn=0):
    return ("ub.rtph", {"last": last, "tpopcode": op, "nlp": nlp, "srctpn": stpn,
                        "dsttpn": dtpn, "a": a, "psn": psn, "rspst": rspst,
                        "rspinfo": rspinfo, "tpmsn": msn})


def btah(op, tassn=1, rc=0x123, tv=0, ud=0, mt=0, odr=1, compact=False):
    if compact:
        return ("ub.btah_c", {"taopcode": op, "ee_bits": 1, "tv_en": tv, "ud_flag": ud,
                              "ini_tassn": tassn})
    return ("ub.btah", {"taopcode": op, "ee_bits": 1, "tv_en": tv, "ud_flag": ud,
                        "ini_tassn": tassn, "odr": odr, "mt_en": mt, "ini_rc_id": rc})


def atah(op, tassn=1, rspst=0, rspinfo=0, rc=0x123, compact=False):
    if compact:
        return ("ub.atah_c", {"taopcode": op, "ini_tassn": tassn})
    return ("ub.atah", {"taopcode": op, "ini_tassn": tassn, "rspst": rspst,
                        "rspinfo": rspinfo, "ini_rc_id": rc})


def maetah(addr=0x7F0000001000, length=64, token=0x4321):
    return ("ub.maetah", {"address": addr, "tokenid": token, "length": length})


def payload(n, seed=1):
    return ("data", bytes((seed * 7 + i * 13) & 0xFF for i in range(n)))


def uboe_packets():
    """UB transport and transaction over Ethernet/IP/UDP 4792 (UB 2.0 App B.2.2.1, App E)."""
    base = [ETH, IP4, udp()]
    pk = []
    # memory access
    pk.append(base + [rtph(1, psn=0, last=1), btah(0x03), maetah(length=64), payload(64)])
    pk.append(base + [rtph(1, psn=1, last=1), btah(0x03, tassn=2, tv=1), maetah(length=100),
                      ("ub.tvetah", {"tokenvalue": 0xCAFEF00D}), payload(100)])
    pk.append(base + [rtph(1, psn=2, last=1), btah(0x06, tassn=3), maetah(length=4096)])
    pk.append(base + [rtph(1, psn=0, last=1, stpn=0x20, dtpn=0x10), atah(0x12, tassn=3),
                      payload(256)])
    pk.append(base + [rtph(1, psn=3, last=1), btah(0x05, tassn=4), maetah(length=32),
                      ("ub.ntfetah", {"address": 0x7F0000002000, "notify_tokenid": 7,
                                      "notify_tokenvalue": 0x1234, "notify_data": 0xAA55}),
                      payload(32)])
    pk.append(base + [rtph(1, psn=4, last=1), btah(0x14, tassn=5), maetah(length=64),
                      ("ub.beetah", bytes([0xFF] * 4 + [0x0F] * 4)), payload(64)])
    pk.append(base + [rtph(1, psn=5, last=1), btah(0x15, tassn=6), maetah(length=4096)])
    pk.append(base + [rtph(1, psn=6, last=1), btah(0x17, tassn=7), maetah(length=64),
                      payload(64)])
    # messages
    pk.append(base + [rtph(1, psn=7, last=1), btah(0x00, tassn=8, mt=1),
                      ("ub.mtetah", {"tgt_tc_type": 0, "tgt_tc_id": 42}),
                      ("ub.ofstetah", {"offset": 0}), payload(45)])
    pk.append(base + [rtph(1, psn=8, last=1), btah(0x01, tassn=9, mt=1),
                      ("ub.mtetah", {"tgt_tc_id": 42}), ("ub.ofstetah", {"offset": 0}),
                      ("ub.immetah", {"immediate_data": 0x1122334455667788}), payload(8)])
    pk.append(base + [rtph(1, psn=9, last=1), btah(0x04, tassn=10, mt=1),
                      ("ub.mtetah", {"tgt_tc_id": 43}), maetah(length=16),
                      ("ub.immetah", {"immediate_data": 5, "immediate_tokenvalue": 6,
                                      "msg_length": 16}), payload(16)])
    # atomics
    pk.append(base + [rtph(1, psn=10, last=1), btah(0x07, tassn=11), maetah(length=16),
                      payload(16)])
    pk.append(base + [rtph(1, psn=11, last=1), btah(0x09, tassn=12, ud=1),
                      ("ub.udetah", {"ud": 3 << 20}), maetah(length=8), payload(8)])
    pk.append(base + [rtph(1, psn=12, last=1), btah(0x0B, tassn=13), maetah(length=8),
                      payload(8)])
    pk.append(base + [rtph(1, psn=1, last=1, stpn=0x20, dtpn=0x10), atah(0x13, tassn=13),
                      payload(8)])
    pk.append(base + [rtph(1, psn=2, last=1, stpn=0x20, dtpn=0x10), atah(0x11, tassn=12)])
    # transport responses
    pk.append(base + [rtph(2, psn=12, a=0, stpn=0x20, dtpn=0x10)])
    pk.append(base + [rtph(2, psn=13, a=0, rspst=3, rspinfo=0, stpn=0x20, dtpn=0x10)])
    pk.append(base + [rtph(3, psn=12, a=0, stpn=0x20, dtpn=0x10),
                      ("ub.cetph_caqm", {"ack_seq": 4096, "i": 1, "c": 0, "hint": 128})])
    pk.append(base + [rtph(5, psn=10, a=0, stpn=0x20, dtpn=0x10),
                      ("ub.saetph", {"bitmapsize": 0, "maxrcvpsn": 14}),
                      ("ub.saetph_bitmap", bytes([0b10111, 0, 0, 0, 0, 0, 0, 0]))])
    pk.append(base + [rtph(8, a=0, stpn=0x20, dtpn=0x10), ("ub.cetph_cnp", {"ecn": 1})])
    # UTP with UPI/EID, IPv6 over 802.1Q
    pk.append(base + [("ub.utph", {"tpopcode": 0, "nlp": 1}), ("ub.upih32", {"upi": 0x100}),
                      ("ub.eidh256", {"seid": "::ffff:192.0.2.1", "deid": "::ffff:192.0.2.2"}),
                      btah(0x00, tassn=1, mt=1), ("ub.mtetah", {"tgt_tc_id": 1}),
                      ("ub.ofstetah", {}), payload(20)])
    pk.append([ETH6, VLAN6, IP6, udp(50000), rtph(1, psn=100, last=1), btah(0x03, tassn=20),
               maetah(length=128), payload(128)])
    return pk


def lph(cfg, vl=0, rt=0, crd=0, ack=0, crd_vl=0):
    return ("ub.lph", {"cfg": cfg, "vl": vl, "rt": rt, "crd": crd, "ack": ack,
                       "crd_vl": crd_vl})


def cna16(s, d, nlp=0, sl=0, mgmt=0, lbf=0, cci=0):
    return ("ub.cna16", {"scna": s, "dcna": d, "nlp": nlp, "sl": sl, "mgmt": mgmt, "lbf": lbf,
                         "cci": cci})


def native_packets():
    """Native UB network packets from the LPH (pcap linktype 148)."""
    pk = []
    # CFG 6 configuration management: the 32-byte header of UB 2.0 §10.4.3.1 + a CFG0 read
    mgmt_head = [lph(6), cna16(0x0001, 0x0010, nlp=0, mgmt=1), ("ub.ctph", {"nlp": 2}),
                 ("ub.upih16", {"upi": 0x7FFF}), ("ub.eidh40", {"seid": 1, "deid": 0x10}),
                 btah(0x10, tassn=1, rc=3, odr=0, compact=False)]
    pk.append(mgmt_head + [("ub.mgmtetah", {"code": 2, "sub_code": 0}),
                           ("ub.cfg_req", {"entity_idx": 0, "byte_en": 0xF, "req_addr": 0x1A})])
    pk.append([lph(6), cna16(0x0010, 0x0001, nlp=0, mgmt=0), ("ub.ctph", {"nlp": 2}),
               ("ub.upih16", {"upi": 0x7FFF}), ("ub.eidh40", {"seid": 0x10, "deid": 1}),
               btah(0x10, tassn=1, rc=3, odr=0),
               ("ub.mgmtetah", {"code": 2, "sub_code": 0, "rsp": 1, "status": 0}),
               ("ub.cfg_rsp", {"data": 0x000010})])
    pk.append(mgmt_head + [("ub.mgmtetah", {"code": 1, "sub_code": 0}),
                           ("ub.link_msg", {"scna": 0x10, "port_idx": 3})])
    pk.append(mgmt_head + [("ub.mgmtetah", {"code": 6, "sub_code": 5}),
                           ("ub.port_reset", {"port_idx": 2, "t": 1})])
    # CFG 6 enumeration: topology query request and a CNA configuration
    pk.append([lph(6), cna16(0, 0, nlp=1, mgmt=1), ("ub.upih16", {"upi": 0x7FFF}),
               ("ub.enum_pad", {}), ("ub.scan", {"r": 1, "type": 1, "hops": 2, "step": 0}),
               ("ub.scan_fwd", bytes([0, 0, 5, 3])), ("ub.scan_ret", bytes([0, 0, 1, 2])),
               ("ub.scan_pdu", {"version": 1, "cmd": 0, "opcode": 1, "msgq_id": 0, "length": 6,
                                "msn": 1, "guid": "19e5-a001-1-3-000000-0000000000000001"})])
    pk.append([lph(6), cna16(0, 0, nlp=1, mgmt=1), ("ub.upih16", {"upi": 0x7FFF}),
               ("ub.enum_pad", {}), ("ub.scan", {"r": 1, "type": 1, "hops": 1}),
               ("ub.scan_fwd", bytes([0, 0, 0, 4])), ("ub.scan_ret", bytes([0, 0, 0, 1])),
               ("ub.scan_pdu", {"version": 1, "cmd": 1, "opcode": 2, "length": 8, "msn": 2,
                                "guid": "19e5-a001-1-3-000000-0000000000000002"}),
               ("ub.scan_cna_cfg", {"port_idx": 0, "cna": 0x000123})])
    # CFG 6 CTP URMA with full TAH, and a CTP CNP
    pk.append([lph(6, vl=1), cna16(0x0010, 0x0020, nlp=0, sl=1, lbf=9), ("ub.ctph", {"nlp": 2}),
               ("ub.upih16", {"upi": 5}), ("ub.eidh40", {"seid": 0x11, "deid": 0x22}),
               btah(0x03, tassn=40), maetah(length=64), payload(64)])
    pk.append([lph(6), cna16(0x0020, 0x0010), ("ub.ctph", {"tpopcode": 1, "nlp": 0}),
               ("ub.cetph_cnp", {"ecn": 3, "loc": 1})])
    # CFG 7: 24-bit CNA with RTPH
    pk.append([lph(7, vl=2, rt=2), ("ub.cna24", {"scna": 0x010203, "dcna": 0x040506, "nlp": 2,
                                                 "sl": 2, "lbf": 3}),
               rtph(1, psn=7, last=1), btah(0x03, tassn=50), maetah(length=32), payload(32)])
    # CFG 9: load/store, compact headers, no ICRC
    cm = ("ub.maetah_c", {"address": 0x100000040, "len_code": 0, "tokenid": 9})
    pk.append([lph(9, vl=7, rt=1), cna16(0x0010, 0x0070), btah(0x03, tassn=60, compact=True),
               cm, payload(64)])
    pk.append([lph(9, vl=7), cna16(0x0010, 0x0070), btah(0x06, tassn=61, compact=True), cm])
    pk.append([lph(9, vl=7, ack=1), cna16(0x0070, 0x0010), atah(0x12, tassn=61, compact=True),
               payload(64)])
    pk.append([lph(9, vl=7, ack=1), cna16(0x0070, 0x0010), atah(0x11, tassn=60, compact=True)])
    # CFG 3: UB over IP on a UB link (NTH CCI + NPI, then IPv4/UDP 4792)
    pk.append([lph(3, vl=3), ("ub.nth", {"cci": 0x8000 | 2, "npi": 1}), IP4, udp(),
               rtph(1, psn=1, last=1), btah(0x03, tassn=70), maetah(length=48), payload(48)])
    pk.append([lph(4, vl=3), ("ub.nth", {"cci": 0x0000 | (1 << 8) | 32, "npi": 1}), IP6,
               udp(), rtph(2, psn=1, a=0)])
    # CFG 5: GUID-addressed frames
    g = "19e5-a001-1-1-000000-00000000000000aa"
    pk.append([lph(5), ("ub.cfg5", {"protocol": 0x0102, "dguid": (1 << 128) - 1, "sguid": g}),
               ("ub.ip_notify", {"version": 1, "prefix_len": 24, "ipv4": "192.0.2.7"})])
    pk.append([lph(5), ("ub.cfg5", {"protocol": 0x0106,
                                    "dguid": ((1 << 112) - 1) << 16 | 0x0106, "sguid": g}),
               ("ub.npic", {"opcode": 1, "sum": 2}),
               ("ub.npic_entry", {"guid": g, "npi": 5}),
               ("ub.npic_entry", {"guid": "19e5-a001-1-1-000000-00000000000000bb", "npi": 6})])
    pk.append([lph(5), ("ub.cfg5", {"protocol": 0x0109,
                                    "dguid": ((1 << 112) - 1) << 16 | 0x0109, "sguid": g}),
               ("ub.lldp_tlv", {"tlv_type": 1, "tlv_len": 7}),
               ("ub.lldp_value", bytes.fromhex("04020000000001")),
               ("ub.lldp_tlv", {"tlv_type": 2, "tlv_len": 3}), ("ub.lldp_value", b"\x07p0"),
               ("ub.lldp_tlv", {"tlv_type": 3, "tlv_len": 2}), ("ub.lldp_value", b"\x00\x78"),
               ("ub.lldp_tlv", {"tlv_type": 0, "tlv_len": 0})])
    pk.append([lph(5), ("ub.cfg5", {"protocol": 0x0100,
                                    "dguid": ((1 << 112) - 1) << 16 | 0x0100, "sguid": g}),
               ("ip", {"version": 4, "hdr_len": 5, "ttl": 64, "proto": 17, "src": "0.0.0.0",
                       "dst": "255.255.255.255"}), ("udp", {"srcport": 68, "dstport": 67}),
               ("bootp", {"op": 1, "htype": 38, "hlen": 16, "xid": 0x1234, "chaddr": g,
                          "cookie": 0x63825363}),
               ("bootp.options", bytes.fromhex("350101ff"))])
    pk.append([lph(5), ("ub.cfg5", {"protocol": 0x0104,
                                    "dguid": ((1 << 112) - 1) << 16 | 0x0104, "sguid": g}),
               ("ub.lacp", {"subtype": 1, "version": 1}),
               ("ub.lacp_tlv", {"tlv_type": 1, "tlv_len": 20}), ("ub.lacp_value", bytes(18)),
               ("ub.lacp_tlv", {"tlv_type": 0, "tlv_len": 0})])
    # DLL control blocks as they appear on a link, each with its BCRC
    pk.append([("ub.lch_crd_ack", {"clength": 1, "ctrl": 2, "sub_ctrl": 4, "sd": 1, "t": 1}),
               ("ub.crd_ack", {"ack_num": 3, "crd_num": sum(v << (6 * v) for v in range(16))}),
               ("ub.bcrc", {})])
    pk.append([("ub.lch", {"clength": 0, "ctrl": 0, "sub_ctrl": 0}), ("ub.cb_rsvd", {}),
               ("ub.bcrc", {})])
    pk.append([("ub.lch", {"clength": 0, "ctrl": 1, "sub_ctrl": 1}),
               ("ub.retry_req", {"rcvptr": 100, "num_phy_reinit": 1, "num_retry": 2}),
               ("ub.bcrc", {})])
    pk.append([("ub.lch", {"clength": 4, "ctrl": 0xC, "sub_ctrl": 8}),
               ("ub.init", {"feature_id": 1, "data_ack_grain_size": 0x20,
                            "ctrl_ack_grain_size": 1, "flow_ctrl_size": 8, "vl_enable": 0xFF,
                            "retry_buf_depth": 512, "packet_min_interval": 1}),
               ("ub.cb_body", bytes(16)), ("ub.bcrc", {})])
    return pk


def write(path: Path, linktype: int, packets) -> None:
    with PcapWriter(path, linktype) as w:
        for i, layers in enumerate(packets):
            w.write(encode_layers(layers), time_ns=1_000_000 + i * 1000)


def main(out: Path = HERE) -> None:
    write(out / "uboe_transactions.pcap", LINKTYPE_ETHERNET, uboe_packets())
    write(out / "ub_native.pcap", LINKTYPE_UB, native_packets())


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
