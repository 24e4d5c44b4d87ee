"""The Wireshark Lua dissector (dissectors/ub.lua) against ubpkt's reference dissector, via tshark.

Every capture is read by ``tshark -X lua_script:dissectors/ub.lua -T fields`` and by
``ubpkt.dissect``; each UB field the Lua declares must carry the same value(s) in both, packet by
packet, and a field ubpkt does not report must be absent from tshark's output too.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ubpkt.capture import PcapWriter, open_capture
from ubpkt.dissect import dissect
from ubpkt.formats import HEADERS as H
from ubpkt.link.crc30 import bcrc_crc30
from ubpkt.link.plength import plength
from ubpkt.network.icrc import icrc, masks_for_cna16, masks_for_cna24, masks_for_ip

ROOT = Path(__file__).resolve().parents[2]
LUA = ROOT / "dissectors" / "ub.lua"

# carrier fields: ubpkt uses Wireshark's names; these have the same meaning and units in both
CARRIER_KEYS = ["ip.version", "ip.len", "ip.id", "ip.flags", "ip.frag_offset", "ip.ttl", "ip.proto",
                "ip.checksum", "ip.src", "ip.dst", "udp.srcport", "udp.dstport", "udp.length",
                "udp.checksum", "ipv6.version", "ipv6.tclass", "ipv6.flow", "ipv6.plen",
                "ipv6.nxt", "ipv6.hlim", "ipv6.src", "ipv6.dst", "eth.src", "eth.dst", "eth.type"]
# reported by ubpkt only in some paths, by Wireshark's data dissector always: compared one way
ONE_WAY = {"data.data", "data.len"}
# keys where ubpkt's derived value replaces a declared one of the same name (the Lua shows both)
LAST_ONLY = {"ub.maetah.length"}


def _gen_module():
    spec = importlib.util.spec_from_file_location("gen_lua", ROOT / "dissectors" / "gen_lua.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _find_tshark() -> str:
    exe = shutil.which("tshark")
    if exe:
        return exe
    if os.environ.get("UBPKT_NO_INSTALL") or not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("tshark is not installed and cannot be installed here (needs root + apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "tshark"], env=env, capture_output=True,
                       timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        pass
    exe = shutil.which("tshark")
    if not exe:
        pytest.skip("tshark is not installed and `apt-get install -y tshark` failed")
    return exe


@pytest.fixture(scope="module")
def tshark():
    return _find_tshark()


def _generated():
    gen = _gen_module().Gen()
    gen.generate()
    return gen


_GEN = None


def bytes_keys() -> set:
    """Keys the Lua shows as FT_BYTES (tshark prints hex; ubpkt may hold an int)."""
    global _GEN
    if _GEN is None:
        _GEN = _generated()
    return {sig[0] for sig in _GEN.hf_index if sig[1] == "bytes"}


@pytest.fixture(scope="module")
def lua_keys():
    """The field names ub.lua registers (from the generator), compared both ways."""
    return sorted(_generated().first_hf)


def run_tshark(tshark: str, pcap: Path, keys: list[str], extra: tuple = ()) -> list[dict]:
    cmd = [tshark, "-n", "-X", f"lua_script:{LUA}", "-r", str(pcap), "-T", "fields",
           "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|", *extra]
    for k in [*keys, "_ws.lua.error", "_ws.expert.message"]:
        cmd += ["-e", k]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Lua" not in res.stderr, res.stderr
    rows = []
    for n, line in enumerate(res.stdout.splitlines(), 1):
        cols = line.split("\t")
        cols += [""] * (len(keys) + 2 - len(cols))
        # a run-time error in the plugin shows as a Lua Error expert info, not on stderr
        assert not cols[len(keys)], f"{pcap.name} packet {n}: {cols[len(keys) + 1]}"
        row = dict(zip(keys, cols))
        row["_experts"] = cols[len(keys) + 1]
        rows.append(row)
    return rows


def _norm_one(ref, text: str, is_bytes: bool = False):
    """tshark's text for one occurrence, in the type of ubpkt's value."""
    if isinstance(ref, bool):
        ref = int(ref)
    if isinstance(ref, int):
        t = text.strip()
        if is_bytes:
            return int(t.replace(":", "") or "0", 16)
        if t.lower().startswith("0x"):
            return int(t, 16)
        if t.isdigit():
            return int(t)
        return int(t.replace(":", ""), 16)     # a bytes field (wide reserved runs)
    if isinstance(ref, str) and ":" not in ref and ":" in text and len(text.replace(":", "")) \
            == len(ref):
        return text.replace(":", "").lower()
    return text


def _norm_ref(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, str):
        return v.lower() if all(c in "0123456789abcdefABCDEF" for c in v) else v
    return v


def compare(records: list, rows: list[dict], keys: list[str], where: str) -> int:
    """Field-by-field comparison; returns how many values were compared."""
    assert len(records) == len(rows), f"{where}: {len(records)} records, {len(rows)} tshark rows"
    compared, errors = 0, []
    hexkeys = bytes_keys()
    for n, (rec, row) in enumerate(zip(records, rows), 1):
        for k in keys:
            text = row.get(k, "")
            if k not in rec:
                if text and k not in ONE_WAY and not k.startswith(("ip", "udp", "eth")):
                    errors.append(f"packet {n}: {k}: tshark {text!r}, ubpkt has no such field")
                continue
            ref = rec[k]
            refs = ref if isinstance(ref, list) else [ref]
            if k == "data.data":
                refs = ["".join(refs)]
                got = [text.replace("|", "").replace(":", "").lower()]
            else:
                # tshark shows an empty bytes field as <MISSING>
                parts = [x.replace("<MISSING>", "") for x in text.split("|")] if text else []
                if k in LAST_ONLY or k.startswith("ub.cci."):
                    parts = parts[-1:]          # ubpkt keeps the last (derived) value only
                got = [_norm_one(r, p, k in hexkeys) for r, p in zip(refs, parts)] \
                    if len(parts) == len(refs) else parts
            want = [_norm_ref(r) for r in refs]
            if got != want:
                errors.append(f"packet {n}: {k}: tshark {text!r}, ubpkt {ref!r}")
            compared += len(want)
    assert not errors, f"{where}:\n" + "\n".join(errors[:40])
    return compared


def check_capture(tshark, lua_keys, pcap: Path, linktype: int, min_compared: int = 1):
    frames = [dissect(p.data, p.linktype) for p in open_capture(pcap)]
    records = [f.fields for f in frames]
    keys = lua_keys + CARRIER_KEYS + ["data.data", "data.len"]
    rows = run_tshark(tshark, pcap, keys)
    n = compare(records, rows, keys, pcap.name)
    assert n >= min_compared, f"{pcap.name}: only {n} values compared"
    # the same reserved-bit warnings, field by field
    for i, (fr, row) in enumerate(zip(frames, rows), 1):
        ref = sorted(x["field"] for x in fr.issues if x["message"].startswith("reserved bits set"))
        got = sorted(m.split(": ", 1)[1] for m in row["_experts"].split("|")
                     if m.startswith("Reserved bits set: "))
        assert got == ref, f"{pcap.name} packet {i}: reserved-bit warnings {got} vs ubpkt {ref}"
    return records, rows


# ------------------------------------------------------------------------------------------------
# packet builders (bytes from the declarations, the ICRC from ubpkt.network.icrc)

def enc(layer: str, **kw) -> bytes:
    return H[layer].encode(kw)


def lph(cfg: int, total: int, **kw) -> bytes:
    return enc("ub.lph", cfg=cfg, vl=kw.pop("vl", 1), plength=plength(total), **kw)


def ipv4_udp(payload_len: int, src="10.0.0.1", dst="10.0.0.2", sport=0x1234, ttl=64) -> bytes:
    total = 20 + 8 + payload_len
    ip = bytearray(enc("ip", hdr_len=5, len=total, id=7, flags=2, ttl=ttl, proto=17,
                       src=src, dst=dst))
    s = sum(int.from_bytes(ip[i:i + 2], "big") for i in range(0, 20, 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    ip[10:12] = (~s & 0xFFFF).to_bytes(2, "big")
    return bytes(ip) + enc("udp", srcport=sport, dstport=4792, length=8 + payload_len)


def ipv6_udp(payload_len: int) -> bytes:
    return enc("ipv6", tclass=0x28, flow=0x12345, plen=8 + payload_len, nxt=17, hlim=9,
               src="fd00::1", dst="fd00::2") + enc("udp", srcport=99, dstport=4792,
                                                   length=8 + payload_len)


def with_icrc(buf: bytes, start: int, masks) -> bytes:
    return buf + icrc(buf + b"\0\0\0\0", start, len(buf), masks).to_bytes(4, "little")


def uboe(ub: bytes, version: int = 4, **kw) -> bytes:
    """Ethernet / IP / UDP 4792 / ub / ICRC."""
    if version == 4:
        carrier = ipv4_udp(len(ub) + 4, **kw)
        eth = enc("eth", dst="02:00:00:00:00:02", src="02:00:00:00:00:01", type=0x0800)
        masks = masks_for_ip(len(eth), 4, len(eth) + 20)
    else:
        carrier = ipv6_udp(len(ub) + 4)
        eth = enc("eth", dst="02:00:00:00:00:02", src="02:00:00:00:00:01", type=0x86DD)
        masks = masks_for_ip(len(eth), 6, len(eth) + 40)
    return with_icrc(eth + carrier + ub, len(eth), masks)


def rtph(**kw) -> bytes:
    base = dict(tpopcode=1, srctpn=0x123, dsttpn=0x456, a=1, psn=1000, tpmsn=5, nlp=0)
    base.update(kw)
    return enc("ub.rtph", **base)


def btah(op: int, **kw) -> bytes:
    return enc("ub.btah", taopcode=op, ini_tassn=kw.pop("tassn", 77), ini_rc_id=kw.pop("rc", 0x1F),
               **kw)


def maetah(**kw) -> bytes:
    base = dict(address=0x1122334455667788, tokenid=0xABCDE, length=64)
    base.update(kw)
    return enc("ub.maetah", **base)


def uboe_packets() -> list[bytes]:
    pay = bytes(range(64))
    out = [
        # Write: RTPH / BTAH / MAETAH / payload / ICRC
        uboe(rtph(psn=1) + btah(0x03) + maetah() + pay),
        # Write with a token value and a user-defined header, last packet
        uboe(rtph(psn=2, last=1) + btah(0x03, tv_en=1, ud_flag=1) + enc("ub.udetah", ud=0xCAFE)
             + maetah(length=128) + enc("ub.tvetah", tokenvalue=0xDEADBEEF) + pay + pay),
        # Send with MTETAH + OFSTETAH, IPv6 carrier
        uboe(rtph(psn=3) + btah(0x00, mt_en=1) + enc("ub.mtetah", hint=3, tgt_tc_type=2,
                                                     tgt_tc_id=0x54321)
             + enc("ub.ofstetah", offset=9) + pay, version=6),
        # Atomic_store with UDETAH sub-operation, read request, TPACK, TPSACK with bitmap
        uboe(rtph(psn=4) + btah(0x09, ud_flag=1) + enc("ub.udetah", ud=3 << 20)
             + maetah(length=8) + bytes(8)),
        uboe(rtph(psn=5) + btah(0x06) + maetah(length=4096)),
        uboe(rtph(tpopcode=2, psn=6, rspst=0, a=0)),
        uboe(rtph(tpopcode=6, psn=7) + enc("ub.cetph_caqm", ack_seq=4096, loc=1, i=1, c=2,
                                           hint=300)
             + enc("ub.saetph", bitmapsize=1, maxrcvpsn=9) + bytes(range(16))),
        # CNP
        uboe(rtph(tpopcode=8, psn=0, a=0) + enc("ub.cetph_cnp", ecn=3, loc=1)),
        # padding: 2 pad bytes after a 62-byte payload
        uboe(rtph(psn=8, padding=2) + btah(0x03) + maetah(length=62) + pay[:62] + b"\0\0"),
        # UTP with UPI32 + EID256
        uboe(enc("ub.utph", tpopcode=0, nlp=1) + enc("ub.upih32", upi=0x10203)
             + enc("ub.eidh256", seid="fd00:0000:0000:0000:0000:0000:0000:0001",
                   deid="fd00:0000:0000:0000:0000:0000:0000:0002")
             + btah(0x00) + enc("ub.mtetah", tgt_tc_id=5) + enc("ub.ofstetah") + pay[:16]),
    ]
    return out


def cfg6_mgmt(icrc_ok: bool = True) -> bytes:
    """LPH CFG 6 / CNA16 / CTPH / UPIH16 / EIDH40 / BTAH / MGMTETAH / CFG0 read PDU / ICRC."""
    pdu = enc("ub.cfg_req", entity_idx=3, byte_en=0xF, req_addr=0x40, data=0x11223344)
    body = (enc("ub.cna16", scna=0x0010, dcna=0x0020, cci=0x8001, lbf=5, sl=2, mgmt=1, nlp=0)
            + enc("ub.ctph", tpopcode=0, nlp=2) + enc("ub.upih16", upi=0x1234)
            + enc("ub.eidh40", seid=0xABCDE, deid=0x12345)
            + btah(0x10) + enc("ub.mgmtetah", sub_code=0, code=2, rsp=0, status=0,
                               pdu_length=len(pdu)) + pdu)
    total = 4 + len(body) + 4
    pkt = with_icrc(lph(6, total) + body, 4, masks_for_cna16(4))
    if not icrc_ok:
        pkt = pkt[:-1] + bytes([pkt[-1] ^ 0x5A])
    return pkt


def cfg9_compact(op: int = 0x03, n: int = 64) -> bytes:
    body = enc("ub.cna16", scna=0x0100, dcna=0x0200, lbf=1, sl=7, nlp=0)
    if op in (0x11, 0x12, 0x13):
        body += enc("ub.atah_c", taopcode=op, ini_tassn=12)
    else:
        body += enc("ub.btah_c", taopcode=op, ini_tassn=11, tv_en=1)
        body += enc("ub.maetah_c", address=0xFFFF800000001000, affinity_hint=1, so=1,
                    len_code=0, tokenid=0x777)
        body += enc("ub.tvetah", tokenvalue=0x5555)
    body += bytes(range(n))
    return lph(9, 4 + len(body)) + body


def cfg7_tpack() -> bytes:
    body = (enc("ub.cna24", scna=0x123456, dcna=0x654321, cci=0x8002, lbf=2, sl=1, nlp=2)
            + rtph(tpopcode=3, psn=99) + enc("ub.cetph_caqm", ack_seq=1, c=1, hint=2))
    total = 4 + len(body) + 4
    return with_icrc(lph(7, total) + body, 4, masks_for_cna24(4))


def cfg3_native() -> bytes:
    ub = rtph(psn=42) + btah(0x04, mt_en=1) + enc("ub.mtetah", tgt_tc_id=1) + maetah(length=16) \
        + enc("ub.immetah", immediate_data=0x0102030405060708, msg_length=16) + bytes(16)
    nth = enc("ub.nth", cci=(4 << 13) | 1, npi=0x1ABCDEF)
    carrier = ipv4_udp(len(ub) + 4, ttl=3)
    total = 4 + len(nth) + len(carrier) + len(ub) + 4
    head = lph(3, total) + nth
    return with_icrc(head + carrier + ub, len(head), masks_for_ip(len(head), 4, len(head) + 20))


def dllcb_crd_ack() -> bytes:
    lch = enc("ub.lch_crd_ack", clength=1, ctrl=2, sub_ctrl=4, sd=1, t=1)
    credits = 0
    for vl in range(15, -1, -1):             # VL15 first (spec layout)
        credits = (credits << 6) | (vl * 3 % 64)
    body = enc("ub.crd_ack", ack_num=0x1234, crd_num=credits.to_bytes(12, "big").hex())
    block = lch + body
    crc = bcrc_crc30(block, 0)
    return block + enc("ub.bcrc", error_flag=0, crc30=crc)


def reserved_set() -> bytes:
    """A CFG 9 packet with a reserved BTAH bit set (a warning, values still decoded)."""
    body = (enc("ub.cna16", scna=1, dcna=2, nlp=0) + enc("ub.btah_c", taopcode=0x03, rsvd1=1)
            + enc("ub.maetah_c", address=0x40, len_code=0) + bytes(64))
    return lph(9, 4 + len(body)) + body


GUID_A = 0x1234_5678_9_1_000000_0000000000000abc
GUID_B = 0xCC08_0001_1_2_000000_00000000deadbeef
EID_A = 0xFD00_0000_0000_0000_0000_0000_0000_00AA


def cna16_pkt(nlp: int, body: bytes, icrc_on: bool = True) -> bytes:
    nth = enc("ub.cna16", scna=0x0010, dcna=0x0020, cci=(2 << 13) | (5 << 2) | 1, lbf=9, nlp=nlp)
    total = 4 + len(nth) + len(body) + (4 if icrc_on else 0)
    pkt = lph(6, total) + nth + body
    return with_icrc(pkt, 4, masks_for_cna16(4)) if icrc_on else pkt


def mgmt(code: int, sub: int, pdu: bytes, rsp: int = 0) -> bytes:
    return (enc("ub.ctph", nlp=0) + btah(0x10) + enc("ub.mgmtetah", sub_code=sub, code=code,
                                                       rsp=rsp, pdu_length=len(pdu)) + pdu)


def more_native_packets() -> list[bytes]:
    out = []
    # management PDUs with word-reversed GUID/EID (entity registration, bus-instance create)
    out.append(cna16_pkt(0, mgmt(6, 0, enc("ub.entity_reg", upi=0x1234, entity_idx=2, eid=EID_A,
                                           guid=GUID_A, cna=0x123456, ueid=EID_A + 1,
                                           size0=4096, start0=0x1_0000_0000))))
    out.append(cna16_pkt(0, mgmt(6, 2, enc("ub.bus_create", guid=GUID_B, eid=EID_A, upi=7))))
    out.append(cna16_pkt(0, mgmt(2, 1, enc("ub.cfg_rsp", data=0xA5A5A5A5), rsp=1)))
    out.append(cna16_pkt(0, mgmt(1, 1, enc("ub.link_msg", scna=0x42, port_idx=3))))
    # enumeration: no ICRC (reference profile)
    scan = (enc("ub.upih16", upi=0) + enc("ub.enum_pad") + enc("ub.scan", r=1, type=1, hops=3,
                                                              step=1)
            + bytes([0, 0x03, 0x02, 0x01]) + bytes([0, 0x01, 0x02, 0x03])
            + enc("ub.scan_pdu", version=1, cmd=0, opcode=0, msgq_id=2, length=6, msn=77,
                  guid=GUID_A)
            + enc("ub.scan_tlv", type=1, length=4) + b"\x00\x08" + enc("ub.scan_tlv", type=0,
                                                                       length=2))
    out.append(cna16_pkt(1, scan, icrc_on=False))
    # CTP CNP, CIPH
    out.append(cna16_pkt(0, enc("ub.ctph", tpopcode=1) + enc("ub.cetph_cnp", ecn=1)))
    out.append(cna16_pkt(0, enc("ub.ctph", nlp=3) + enc("ub.ciph", cip_id=9, nlp=2, sn=123)
                         + bytes(range(20)) + bytes(12)))
    # Write_with_be (BEETAH) and Write_with_notify over CNA16 + RTPH
    out.append(cna16_pkt(2, rtph(psn=11) + btah(0x14) + maetah(length=64) + b"\xff" * 8
                         + bytes(range(64))))
    out.append(cna16_pkt(2, rtph(psn=12) + btah(0x05) + maetah(length=8)
                         + enc("ub.ntfetah", address=0xFEDCBA9876543210, notify_tokenid=0x11111,
                               notify_tokenvalue=0x22, notify_data=0x0102030405060708)
                         + bytes(8)))
    # CFG 5: IP notify and NPI configuration
    cfg5 = enc("ub.cfg5", protocol=0x0102, dguid=GUID_A, sguid=GUID_B)
    body = cfg5 + enc("ub.ip_notify", version=1, prefix_len=24, ipv4="192.0.2.7")
    out.append(lph(5, 4 + len(body)) + body)
    body = (enc("ub.cfg5", protocol=0x0106, dguid=GUID_A, sguid=GUID_B)
            + enc("ub.npic", opcode=1, sum=2) + enc("ub.npic_entry", guid=GUID_A, npi=5)
            + enc("ub.npic_entry", guid=GUID_B, npi=6))
    out.append(lph(5, 4 + len(body)) + body)
    # CFG 4: UB over UDP over IPv6 on a native link
    ub = rtph(psn=43) + btah(0x03) + maetah(length=4) + bytes(4)
    nth = enc("ub.nth", cci=1, npi=3)
    carrier = ipv6_udp(len(ub) + 4)
    head = lph(4, 4 + len(nth) + len(carrier) + len(ub) + 4) + nth
    out.append(with_icrc(head + carrier + ub, len(head), masks_for_ip(len(head), 6,
                                                                      len(head) + 40)))
    return out


def dllcb(ctrl: int, sub: int, body: bytes, layer: str = "ub.lch", **kw) -> bytes:
    flits = -(-(4 + len(body) + 4) // 20)
    body = body + bytes(flits * 20 - 8 - len(body))
    block = enc(layer, clength=flits - 1, ctrl=ctrl, sub_ctrl=sub, **kw) + body
    return block + enc("ub.bcrc", error_flag=1, crc30=bcrc_crc30(block, 1))


def dllcb_packets() -> list[bytes]:
    return [
        dllcb(1, 1, enc("ub.retry_req", rcvptr=0x123, num_phy_reinit=2, num_retry=3)),
        dllcb(1, 2, enc("ub.retry_ack", num_retry=1, numfreebuf=100, rdptr=5, wrptr=6)),
        dllcb(4, 1, enc("ub.lane_manage", power_down=1, tlw=4, rlw=8)),
        dllcb(3, 0, enc("ub.param_exchg", data=0xAABBCCDD)
              + enc("ub.param_exchg_flit", data=0x11223344)),
        dllcb(0xC, 8, enc("ub.init", feature_id=1, data_ack_grain_size=32, vl_enable=0x8001,
                          retry_buf_depth=2048, ctrl_credit_grain_lo="01" * 14,
                          data_credit_grain_hi="0a0b0c0d", packet_min_interval=3)),
        dllcb(0, 0, enc("ub.cb_rsvd")),
        dllcb(5, 0, enc("ub.cb_rsvd"), layer="ub.lch_block_mode_chg", type=1),
    ]


def uboe_vlan() -> bytes:
    ub = rtph(psn=77) + btah(0x03) + maetah(length=4) + bytes(4)
    carrier = ipv4_udp(len(ub) + 4)
    eth = (enc("eth", dst="02:00:00:00:00:02", src="02:00:00:00:00:01", type=0x8100)
           + enc("vlan", priority=5, id=100, etype=0x0800))
    return with_icrc(eth + carrier + ub, len(eth), masks_for_ip(len(eth), 4, len(eth) + 20))


def write(path: Path, linktype: int, packets: list[bytes]) -> Path:
    with PcapWriter(path, linktype) as w:
        for i, p in enumerate(packets):
            w.write(p, time_ns=i * 1000)
    return path


# ------------------------------------------------------------------------------------------------
# tests

def test_generated_lua_is_up_to_date():
    """Re-running the generator reproduces the committed ub.lua byte for byte."""
    gen = _gen_module()
    assert LUA.read_text(encoding="utf-8") == gen.generate(), \
        "dissectors/ub.lua is stale: run `python dissectors/gen_lua.py` and commit it"


def test_walk_is_loaded_not_copied():
    """ub.lua holds no copy of ub_dispatch.lua: it loads the walk from its own folder."""
    lua = LUA.read_text(encoding="utf-8")
    assert 'PROC["@tah"]' not in lua and "local function walk(" not in lua
    assert '"ub_dispatch.lua"' in lua
    walk = (LUA.parent / "ub_dispatch.lua").read_text(encoding="utf-8")
    assert 'PROC["@tah"] = function' in walk


def _plugin_run(tshark, home: Path, pcap: Path) -> subprocess.CompletedProcess:
    """tshark with ``home``'s personal Lua plugins folder and no -X lua_script."""
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    return subprocess.run([tshark, "-n", "-r", str(pcap), "-T", "fields", "-e", "ub.lph.cfg",
                           "-e", "_ws.lua.error"], capture_output=True, text=True, timeout=60,
                          env=env, cwd=str(home))


def test_installed_as_two_plugin_files(tshark, tmp_path):
    """Copied into the personal plugins folder, ub.lua finds ub_dispatch.lua next to it (from any
    working directory); Wireshark also loads ub_dispatch.lua on its own, which does nothing."""
    pcap = write(tmp_path / "one.pcap", 148, [cfg9_compact()])
    plugins = tmp_path / "home" / ".local" / "lib" / "wireshark" / "plugins"
    plugins.mkdir(parents=True)
    for name in ("ub.lua", "ub_dispatch.lua", "ub_flits.lua"):
        shutil.copy(LUA.parent / name, plugins / name)
    res = _plugin_run(tshark, tmp_path / "home", pcap)
    assert res.stdout.split() == ["9"], res.stdout + res.stderr
    assert "Lua" not in res.stderr, res.stderr
    # ub_dispatch.lua and ub_flits.lua alone register nothing and raise nothing
    (plugins / "ub.lua").unlink()
    res = _plugin_run(tshark, tmp_path / "home", pcap)
    assert res.stdout.split() == [] and "Lua" not in res.stderr, res.stdout + res.stderr
    # ub.lua alone says what is missing
    shutil.copy(LUA, plugins / "ub.lua")
    (plugins / "ub_dispatch.lua").unlink()
    res = _plugin_run(tshark, tmp_path / "home", pcap)
    assert "needs ub_dispatch.lua" in res.stderr, res.stderr


def test_protofield_names_are_ubpkt_keys(lua_keys):
    declared = {k for h in H.values() if h.ns == "ub" for k in h.keys}
    assert declared <= set(lua_keys)
    extras = {k for k, *_ in _gen_module().EXTRA_FIELDS}
    assert set(lua_keys) == declared | extras


def test_uboe(tshark, lua_keys, tmp_path):
    pcap = write(tmp_path / "uboe.pcap", 1, uboe_packets())
    records, rows = check_capture(tshark, lua_keys, pcap, 1, min_compared=300)
    assert all(r["ub.icrc.status"] == "good" for r in records)
    assert [r["ub.icrc.status"] for r in rows] == ["good"] * len(rows)
    # addresses are shown in hex (gen_lua.shows_hex): -T fields prints Wireshark's hex form
    assert rows[0]["ub.maetah.address"] == "0x1122334455667788"


def test_native_ub_packets(tshark, lua_keys, tmp_path):
    pkts = [cfg6_mgmt(), cfg9_compact(), cfg9_compact(0x12, 32), cfg7_tpack(), cfg3_native(),
            dllcb_crd_ack(), reserved_set()]
    pcap = write(tmp_path / "ub148.pcap", 148, pkts)
    records, rows = check_capture(tshark, lua_keys, pcap, 148, min_compared=150)
    # spot checks on what the walk decides
    assert rows[0]["ub.lph.cfg"] == "6" and rows[0]["ub.cfg_req.data"] == str(0x11223344)
    assert rows[0]["ub.mgmtetah.sub_code_name"] == "CFG0_Read"
    assert rows[0]["ub.icrc.status"] == "good"
    assert rows[1]["ub.maetah.address"] == "0xffff800000001000"
    assert rows[1]["ub.maetah.length"] == "64"
    assert rows[3]["ub.icrc.status"] == "good" and rows[4]["ub.icrc.status"] == "good"
    assert rows[5]["ub.bcrc.status"] == "good" and rows[5]["ub.crd_ack.crd_vl5"] == "15"
    assert records[6]["ub.btah.rsvd1"] == 1 and rows[6]["ub.btah.rsvd1"] == "1"


def test_ns3_captures(tshark, lua_keys, ns3_dir):
    total = 0
    for pcap in sorted(ns3_dir.glob("*.pcap")):
        records, rows = check_capture(tshark, lua_keys, pcap, 147, min_compared=50)
        total += len(rows)
    assert total >= 18 + 9 + 100


def test_bad_icrc_and_expert_infos(tshark, tmp_path):
    pcap = write(tmp_path / "bad.pcap", 148, [cfg6_mgmt(icrc_ok=False), reserved_set(),
                                             cfg6_mgmt()])
    ref = [dissect(p.data, 148) for p in open_capture(pcap)]
    assert ref[0].fields["ub.icrc.status"] == "bad"
    rows = run_tshark(tshark, pcap, ["ub.icrc.status", "ub.icrc.value", "ub.icrc.computed"])
    assert rows[0]["ub.icrc.status"] == "bad"
    # CRCs are shown in hex (gen_lua.shows_hex), eight digits
    assert rows[0]["ub.icrc.computed"] == f"0x{ref[0].fields['ub.icrc.computed']:08x}"
    assert rows[0]["ub.icrc.value"] == f"0x{ref[0].fields['ub.icrc.value']:08x}"
    assert "ICRC" in rows[0]["_experts"]
    assert "Reserved bits set: ub.btah.rsvd1" in rows[1]["_experts"]
    assert rows[2]["ub.icrc.status"] == "good"
    # the display filter names work too
    res = subprocess.run([tshark, "-n", "-X", f"lua_script:{LUA}", "-r", str(pcap), "-Y",
                          'ub.icrc.status == "bad" || ub.reserved', "-T", "fields", "-e",
                          "frame.number"], capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["1", "2"], res.stdout + res.stderr


def test_more_native_packets(tshark, lua_keys, tmp_path):
    pkts = more_native_packets()
    pcap = write(tmp_path / "more148.pcap", 148, pkts)
    records, rows = check_capture(tshark, lua_keys, pcap, 148, min_compared=400)
    assert rows[0]["ub.entity_reg.guid"] == records[0]["ub.entity_reg.guid"]
    assert rows[0]["ub.entity_reg.eid"] == "fd00:0000:0000:0000:0000:0000:0000:00aa"
    assert rows[4]["ub.scan.fwd_ports"] == "1|2|3"
    assert rows[-1]["ub.icrc.status"] == "good"
    assert all(r.get("ub.icrc.status", "good") == "good" for r in records)


def test_dllcbs_and_vlan(tshark, lua_keys, tmp_path):
    pcap = write(tmp_path / "dllcb.pcap", 148, dllcb_packets())
    records, rows = check_capture(tshark, lua_keys, pcap, 148, min_compared=120)
    assert [r["ub.bcrc.status"] for r in rows] == ["good"] * len(rows)
    assert [r["ub.bcrc.status"] for r in records] == ["good"] * len(rows)
    pcap = write(tmp_path / "vlan.pcap", 1, [uboe_vlan()])
    records, rows = check_capture(tshark, lua_keys, pcap, 1, min_compared=30)
    assert rows[0]["ub.icrc.status"] == "good"


def test_project_sample_captures(tshark, lua_keys, sample_captures):
    """captures/make_captures.py's captures (rebuilt by the conftest fixture)."""
    pcaps = sorted(p for p in Path(sample_captures).iterdir() if p.suffix in (".pcap", ".pcapng"))
    assert pcaps
    for pcap in pcaps:
        check_capture(tshark, lua_keys, pcap, 0, min_compared=100)


def test_cfg5_payloads_if_declared(tshark, lua_keys, tmp_path):
    if "ub.lldp_tlv" not in H:
        pytest.skip("no LLDP TLV declaration in ubpkt.formats")
    tlvs = (enc("ub.lldp_tlv", tlv_type=1, tlv_len=3) + b"\x04ab"
            + enc("ub.lldp_tlv", tlv_type=3, tlv_len=2) + b"\x00\x78"
            + enc("ub.lldp_tlv", tlv_type=0, tlv_len=0))
    body = enc("ub.cfg5", protocol=0x0109, dguid=GUID_A, sguid=GUID_B) + tlvs
    pkts = [lph(5, 4 + len(body)) + body]
    if "ub.lacp" in H:
        lacp = (enc("ub.lacp", subtype=1, version=1) + enc("ub.lacp_tlv", tlv_type=1, tlv_len=20)
                + bytes(range(18)) + enc("ub.lacp_tlv", tlv_type=0, tlv_len=2))
        body = enc("ub.cfg5", protocol=0x0104, dguid=GUID_A, sguid=GUID_B) + lacp
        pkts.append(lph(5, 4 + len(body)) + body)
    if "bootp" in H:
        # DHCP over CFG 5: ubpkt's BOOTP, Wireshark's DHCP dissector; the UB part must agree
        dhcp = H["bootp"].encode(op=1, htype=38, hlen=16, xid=0x1234, chaddr=GUID_A,
                                 cookie=0x63825363) + bytes([53, 1, 1, 255])
        ip = bytearray(enc("ip", hdr_len=5, len=28 + len(dhcp), ttl=1, proto=17,
                           src="0.0.0.0", dst="255.255.255.255"))
        udp = enc("udp", srcport=68, dstport=67, length=8 + len(dhcp))
        body = enc("ub.cfg5", protocol=0x0100, dguid=GUID_A, sguid=GUID_B) + bytes(ip) + udp \
            + dhcp
        pkts.append(lph(5, 4 + len(body)) + body)
    pcap = write(tmp_path / "lldp.pcap", 148, pkts)
    check_capture(tshark, lua_keys, pcap, 148, min_compared=10 * len(pkts))


def test_truncated_and_mutated_packets(tshark, lua_keys, tmp_path):
    """Cut and bit-flipped packets (no IP carrier: those are Wireshark's IP dissector's call)
    decode to the same fields as in ubpkt, with no Lua error."""
    import random
    rnd = random.Random(20261125)
    base = [cfg6_mgmt(), cfg9_compact(), cfg9_compact(0x12, 32), cfg7_tpack(), dllcb_crd_ack(),
            reserved_set()] + more_native_packets()[:10] + dllcb_packets()
    pkts = []
    for p in base:
        pkts += [p[:n] for n in sorted({rnd.randrange(1, len(p)) for _ in range(6)})]
        for _ in range(6):
            b = bytearray(p)
            for _ in range(rnd.randint(1, 3)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            if b[1] & 0x0F in (3, 4) or (b[1] & 0x0F == 5 and b[4:6] in (b"\x01\x00",
                                                                        b"\x01\x01")):
                continue            # mutated into an IP-carrying packet
            pkts.append(bytes(b))
    pcap = write(tmp_path / "fuzz.pcap", 148, pkts)
    check_capture(tshark, lua_keys, pcap, 148, min_compared=2000)


def test_compare_detects_differences():
    keys = ["ub.rtph.psn", "ub.btah.taopcode", "ub.icrc.status"]
    rec = {"ub.rtph.psn": 5, "ub.icrc.status": "good"}
    assert compare([rec], [{"ub.rtph.psn": "5", "ub.icrc.status": "good"}], keys, "ok") == 2
    for row in ({"ub.rtph.psn": "6", "ub.icrc.status": "good"},
                {"ub.rtph.psn": "5", "ub.icrc.status": "bad"},
                {"ub.rtph.psn": "5", "ub.icrc.status": "good", "ub.btah.taopcode": "3"},
                {"ub.rtph.psn": "5|5", "ub.icrc.status": "good"}):
        with pytest.raises(AssertionError):
            compare([rec], [row], keys, "bad")
