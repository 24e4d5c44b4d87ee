"""The value checks of ubpkt.formats.checks (issue 11): golden frames, Python, fast path, Lua.

Each frame starts as a clean packet; the one field under test is then set by hand at the bit
position the cited figure gives it (not through ubpkt's encoder), so a check that fires proves
the field's place and the rule.  The Python dissector, the fast path and the Lua plugin
(through tshark) must report the same messages."""
from __future__ import annotations

import pytest

from ubpkt.dissect import dissect
from ubpkt.dissect.fastpath import TemplateCache
from ubpkt.profile import SPEC

from test_lua import (btah, cfg6_mgmt, enc, lph, maetah, rtph, run_tshark, uboe, with_icrc,
                      write)
from ubpkt.network.icrc import masks_for_cna16, masks_for_cna24

PAY = bytes(range(64))


@pytest.fixture(scope="module")
def tshark():
    from test_lua import _find_tshark
    return _find_tshark()


def _set(buf: bytes, offset: int, mask: int, value: int) -> bytes:
    """``buf`` with the bits ``mask`` of byte ``offset`` set to ``value`` (already shifted)."""
    b = bytearray(buf)
    b[offset] = b[offset] & ~mask & 0xFF | value
    return bytes(b)


#: UBoE: Ethernet 14 + IPv4 20 + UDP 8, then the RTPH
TPH = 14 + 20 + 8


def _write_request() -> bytes:
    return uboe(rtph(psn=1) + btah(0x03) + maetah() + PAY)


def _tpsack(byte12: int) -> bytes:
    sack = enc("ub.saetph", bitmapsize=0, maxrcvpsn=9) + bytes(8)
    return _set(uboe(rtph(tpopcode=5, a=0) + sack), TPH + 12, 0xFF, byte12)


def _cna16(cfg: int, nlp: int, rest: bytes) -> bytes:
    body = enc("ub.cna16", scna=1, dcna=2, nlp=nlp) + rest
    return with_icrc(lph(cfg, 4 + len(body) + 4) + body, 4, masks_for_cna16(4))


def _cna24_ctph(ctph_nlp: int) -> bytes:
    # UB 2.0 §6.2.1: CTPH byte 0 is TPOpcode(2) Padding(2) NLP(4); App B.2.5 wants the 32-bit
    # UPI (NLP 1) or no UPIH (0) or a CIPH (3) after a 24-bit CNA NTH
    body = (enc("ub.cna24", scna=1, dcna=2, nlp=0) + bytes([ctph_nlp])
            + enc("ub.upih16", upi=5) + enc("ub.eidh40", seid=1, deid=2) + btah(0x03)
            + maetah() + PAY)
    return with_icrc(lph(7, 4 + len(body) + 4) + body, 4, masks_for_cna24(4))


def _ihl6() -> bytes:
    # RFC 791: byte 0 is Version(4) IHL(4); one option word (NOPs, then End) after the header
    pkt = bytearray(_write_request())
    ip = 14
    pkt[ip] = 0x46
    pkt[ip + 2:ip + 4] = (int.from_bytes(pkt[ip + 2:ip + 4], "big") + 4).to_bytes(2, "big")
    pkt[ip + 10:ip + 12] = b"\0\0"
    hdr = bytes(pkt[ip:ip + 20]) + b"\x01\x01\x01\x00"
    s = sum(int.from_bytes(hdr[i:i + 2], "big") for i in range(0, 24, 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    hdr = hdr[:10] + (~s & 0xFFFF).to_bytes(2, "big") + hdr[12:]
    return bytes(pkt[:ip]) + hdr + bytes(pkt[ip + 20:])


#: name -> (linktype, frame, the check messages expected)
FRAMES = {
    "clean": (1, _write_request(), []),
    # UB 2.0 §6.2.1 Fig 6-8: TPVer is byte 1 bits 7:6 of the RTPH
    "rtph_tpver": (1, _set(_write_request(), TPH + 1, 0xC0, 0x40), ["TPVer 1 (0 expected)"]),
    # the UTPH shares the RTPH's first two bytes (TPOpcode 0)
    "utph_tpver": (1, _set(uboe(enc("ub.utph", nlp=0) + btah(0x03) + maetah() + PAY),
                           TPH + 1, 0xC0, 0x80), ["TPVer 2 (0 expected)"]),
    # §6.2.1: RSPST(3) RSPINFO(5) are byte 12 of the RTPH; a TPSACK fixes both to 0
    "tpsack_rspst": (1, _tpsack(0x23), ["RSPST 1 in a TPSACK (fixed to 0)",
                                        "RSPINFO 3 in a TPSACK (fixed to 0)"]),
    "tpsack_clean": (1, _tpsack(0x00), []),
    # §7.2.1 Fig 7-2: BTAH byte 1 is TAver(2) EE_bits(2) TV_EN(1) Poison(1) R(1) UD_Flag(1)
    "btah_taver": (1, _set(_write_request(), TPH + 16 + 1, 0xC0, 0x40), ["TAver 1 (0 expected)"]),
    # §7.2.2: the ATAH's byte 1 starts with TAver too
    "atah_taver": (1, _set(uboe(rtph(psn=2) + enc("ub.atah", taopcode=0x11, ini_tassn=3)),
                           TPH + 16 + 1, 0xC0, 0xC0), ["TAver 3 (0 expected)"]),
    # §7.4.5: a management request's TV_EN shall be 0 (byte 1 bit 3 of the BTAH, after the
    # 8-byte NTH, 1-byte CTPH, 2-byte UPIH and 5-byte EIDH)
    "mgmt_tv_en": (148, _set(cfg6_mgmt(), 4 + 8 + 1 + 2 + 5 + 1, 0x08, 0x08),
                   ["TV_EN 1 on a management request (shall be 0)"]),
    # App B.2.4: CFG 6 with NTH.NLP 2 (byte 7 bits 2:0 of the 16-bit CNA NTH)
    "cfg6_nlp2": (148, _cna16(6, 2, rtph(psn=1) + btah(0x03) + maetah() + PAY),
                  ["NLP 2 in a CFG 6 packet (App B.2.4: 0 or 1)"]),
    "cfg7_ctph_upi16": (148, _cna24_ctph(0x02), [
        "CTPH NLP 2 (16-bit UPI) in a CFG 7 packet (App B.2.5: 32-bit UPI, 128-bit EIDs)"]),
    # §5.2.3 Table 5-4: IHL 5
    "ipv4_ihl6": (1, _ihl6(), ["IPv4 IHL 6 on a UB packet (5 expected, no options)"]),
}

_CHECK_TEXTS = ("(0 expected)", "fixed to 0", "shall be 0", "App B.2", "IPv4 IHL")


def _checks(messages) -> list[str]:
    return [m for m in messages if any(t in m for t in _CHECK_TEXTS)]


def test_python_reports_each_check():
    for name, (lt, buf, want) in FRAMES.items():
        fr = dissect(buf, lt, SPEC)
        got = _checks(i["message"] for i in fr.issues)
        assert got == want, (name, fr.issues)
        assert all(i["severity"] == "warning" for i in fr.issues
                   if i["message"] in want), name


def test_fast_path_agrees():
    cache = TemplateCache(SPEC)
    for _ in range(2):          # the second round may hit templates
        for name, (lt, buf, _) in FRAMES.items():
            fr = dissect(buf, lt, SPEC)
            layers, fields, issues = cache.decode(buf, lt)
            assert (layers, fields, issues) == (fr.layers, fr.fields, fr.issues), name
    # a clean frame's template must not cover the same frame with a bad TPVer
    cache = TemplateCache(SPEC)
    for _ in range(3):
        cache.decode(FRAMES["clean"][1], 1)
    _, _, issues = cache.decode(FRAMES["rtph_tpver"][1], 1)
    assert _checks(i["message"] for i in issues) == ["TPVer 1 (0 expected)"]


def test_lua_reports_the_same(tshark, tmp_path):
    for lt in (1, 148):
        names = [n for n, (t, _, _) in FRAMES.items() if t == lt]
        pcap = write(tmp_path / f"checks{lt}.pcap", lt, [FRAMES[n][1] for n in names])
        rows = run_tshark(tshark, pcap, ["ub.rtph.psn"])
        assert len(rows) == len(names)
        for name, row in zip(names, rows):
            got = _checks(m for m in row["_experts"].split("|") if m)
            assert got == FRAMES[name][2], (name, row["_experts"])


# ------------------------------------------------------------------------------------------------
# TAOpcodes 0x02 and 0x16: reserved in UB 2.0 Table 7-1, used by ns-3-UB and umdk

def _ta_opcode(op: int) -> bytes:
    # BTAH byte 0 is the TAOpcode (§7.2.1 Fig 7-2); the RTPH is 16 bytes
    return _set(_write_request(), TPH + 16, 0xFF, op)


def test_ns3_dialect_opcodes():
    from ubpkt.profile import NS3
    for op, name in ((0x02, "Send_with_invalidate"), (0x16, "Disconnect_SCID")):
        buf = _ta_opcode(op)
        spec = dissect(buf, 1, SPEC)
        warn = [i for i in spec.issues if i["field"] == "ub.btah.taopcode"]
        assert [i["severity"] for i in warn] == ["warning"]
        assert warn[0]["message"] == f"reserved TAOpcode {op:#04x} (ns-3-UB and umdk: {name})"
        ns3 = dissect(buf, 1, NS3.with_(icrc=False))
        assert ns3.fields["ub.btah.taopcode_name"] == name
        assert [i["severity"] for i in ns3.issues] == ["info"], ns3.issues
        assert ns3.layers[-1] == "data"            # the rest is payload
    # a reserved opcode nobody uses is named by nobody
    other = dissect(_ta_opcode(0x19), 1, SPEC)
    assert any(i["message"] == "reserved TAOpcode 0x19" for i in other.issues)


def test_lua_names_the_dialect_opcodes(tshark, tmp_path):
    pcap = write(tmp_path / "ops.pcap", 1, [_ta_opcode(0x02), _ta_opcode(0x16)])
    rows = run_tshark(tshark, pcap, ["ub.btah.taopcode"])
    assert "reserved TAOpcode 0x02 (ns-3-UB and umdk: Send_with_invalidate)" in rows[0]["_experts"]
    assert "reserved TAOpcode 0x16 (ns-3-UB and umdk: Disconnect_SCID)" in rows[1]["_experts"]


# ------------------------------------------------------------------------------------------------
# transport padding that reaches back into the headers (UB 2.0 §6.2.1)

def _tpack_padding_3() -> bytes:
    # RTPH byte 1 is TPVer(2) Padding(2) NLP(4): padding 3, and a TPACK has nothing after its
    # RTPH here, so the three pad bytes would be the RTPH's own
    hdr = bytearray(rtph(tpopcode=2, a=0))
    hdr[1] |= 0x30
    return uboe(bytes(hdr))


PAD_MSG = "Padding 3 points into the headers (0 bytes after them)"


def test_padding_into_headers_reported(tshark, tmp_path):
    buf = _tpack_padding_3()
    fr = dissect(buf, 1, SPEC)
    assert [(i["severity"], i["field"], i["message"]) for i in fr.issues] == [
        ("warning", "ub.rtph.padding", PAD_MSG)]
    assert fr.fields["ub.icrc.status"] == "good" and "ub.pad" not in fr.layers
    # a correct padding of the same packet is quiet
    assert not dissect(uboe(rtph(tpopcode=2, a=0)), 1, SPEC).issues
    rows = run_tshark(tshark, write(tmp_path / "pad.pcap", 1, [buf]), ["ub.rtph.padding"])
    assert rows[0]["ub.rtph.padding"] == "3"
    assert PAD_MSG in rows[0]["_experts"].split("|")
    from scapy.layers.l2 import Ether
    import ubpkt.scapy  # noqa: F401  (binds the UB layers)
    import logging
    seen: list = []
    handler = logging.Handler()
    handler.emit = lambda r: seen.append(r.getMessage())
    log = logging.getLogger("scapy.runtime")
    log.addHandler(handler)
    try:
        pkt = Ether(buf)
    finally:
        log.removeHandler(handler)
    assert pkt["UBRtph"].pad == b""
    assert any(PAD_MSG in m for m in seen), seen


# ------------------------------------------------------------------------------------------------
# Write_with_be: the BEETAH's width follows MAETAH Length (UB 2.0 §7.2.10, §7.4.2.1.3)

def test_write_with_be_payload_longer_than_the_bitmap(tshark, tmp_path):
    # §7.4.2.1.3: a payload longer than the BE width is allowed (valid past the bitmap).  A
    # 100-byte write: the 64-bit BEETAH (BE[63:0], Fig 7-14), then 100 payload bytes
    be = bytes.fromhex("ffffffff0000ffff")
    pay = bytes(range(100))
    buf = uboe(rtph(psn=7) + btah(0x14) + maetah(length=100) + be + pay)
    fr = dissect(buf, 1, SPEC)
    assert fr.layers[-3:] == ["ub.beetah", "data", "ub.icrc"], (fr.layers, fr.issues)
    assert fr.fields["ub.beetah.be"] == be.hex() and fr.fields["data.len"] == 100
    assert not fr.issues
    # 128 bytes: the 128-bit form; 1500 bytes: the widest (1024 bits)
    for length, bits in ((128, 128), (1500, 1024), (10, 64)):
        b = uboe(rtph(psn=8) + btah(0x18) + maetah(length=length) + bytes(bits // 8) + PAY)
        f = dissect(b, 1, SPEC)
        assert len(f.fields["ub.beetah.be"]) == bits // 4 and f.fields["data.len"] == 64, length
    rows = run_tshark(tshark, write(tmp_path / "be.pcap", 1, [buf]), ["ub.beetah.be", "data.len"])
    assert rows[0]["ub.beetah.be"].replace(":", "") == be.hex()
    assert rows[0]["data.len"] == "100"
