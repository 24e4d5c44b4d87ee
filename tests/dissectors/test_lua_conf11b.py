"""The Lua plugin on issue 11's remaining formats (tests/test_conf11b.py builds the frames by
hand): the Linux UB link netdev link type (150) and both forms of CFG-5 LLDP agree with ubpkt,
field by field (with enumeration CNA query and topology TLVs), and the fast path agrees with
the walk."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ubpkt import decode, encode_record
from ubpkt.dissect import dissect
from ubpkt.dissect.fastpath import TemplateCache
from ubpkt.profile import SPEC
from ubpkt.record import LINKTYPE_UB, LINKTYPE_UBL, has_errors

from lua_harness import lua_verdicts
from test_lua import cna16_pkt, mgmt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_conf11b as G  # noqa: E402  (the hand-built frames)

ETH_LLDP = G.LLDP_DST + G.LLDP_SRC + b"\x88\xcc"

def mgmt_pkt(code: int, sub: int, rsp: int, pdu: bytes) -> bytes:
    """A CFG-6 management message (UB 2.0 §10.4.3.3) carrying ``pdu`` (built by hand below)."""
    return cna16_pkt(0, mgmt(code, sub, pdu, rsp))


#: Management PDUs from the figures of UB 2.0 §10.4.3.3 (and the kernel's vdm.h): name ->
#: (code, sub code, rsp, PDU bytes)
PDUS = {
    # Fig 10-45: D=1 (discrete), Port_num 3, Port_idx 1, 5, 9, then two pad bytes
    "neighbour_discrete": (4, 7, 0, bytes([0x80, 3, 0, 0]) + bytes.fromhex("0001000500090000")),
    # D=0: the range Port_idx0..Port_idx1 (2..7); Port_num says 6 ports
    "neighbour_range": (4, 7, 0, bytes([0x00, 6, 0, 0]) + bytes.fromhex("00020007")),
    # Fig 10-44: RSVD DW, MUE nums 2, Entity nums 9; MUE0 UEs 2..4, MUE1 none (end = start = 1)
    "entity_info": (4, 2, 1, bytes(4) + bytes.fromhex("0002 0009 0004 0002 0001 0001")),
    # Fig 10-42: Opcode 0 (obtain), 4 bytes
    "rs_info_obtain": (4, 1, 0, bytes.fromhex("00000000")),
    # Opcode 1 (configure): the three start addresses follow as PDU bytes (28 bytes)
    "rs_info_configure": (4, 1, 0, bytes.fromhex("00000001") + bytes(range(24))),
    # Fig 10-43: size, start address low word first (SA0, SA1), for spaces 0..2
    "rs_info_rsp": (4, 1, 1, bytes.fromhex("00000010 89abcdef 01234567 00000000 00000000 00000000"
                                           " 00000020 00001000 00000000")),
    # Fig 10-41: Version 1, Type 2, RSVD; Vendor ID 0xCC08, Device ID 0xA001; vendor data
    "vdm_vendor": (3, 15, 0, bytes.fromhex("12000000 cc08a001 deadbeef")),
    # Fig 10-46: Port_info TLVs (Fig 10-29): port 3 up to remote port 9, port 4 down
    "neighbour_rsp": (4, 7, 1, bytes([2, 28, 0b0001, 0, 0, 3, 0, 9]) + bytes(4) + G.guid_wire()
                      + bytes([2, 28, 0b0000, 0, 0, 4, 0, 0]) + bytes(20)),
    # MCTP over UB (DSP0236 transport header + a control message), SPDM GET_VERSION
    "mctp": (3, 0, 0, bytes.fromhex("01 0a 08 c8 00 80 02")),
    "spdm": (5, 1, 0, bytes.fromhex("10 84 00 00")),
}


FRAMES = {
    LINKTYPE_UBL: [G.ublhdr(3) + G.ipv4(G.udp(5000, b"hello")),
                   G.ublhdr(4, cc=0, npi=0x12345) + G.ipv6(G.udp(6000, b"\x01\x02")),
                   G.ublhdr(5) + G.cfg5(0x0102, bytes([0x10, 24, 192, 168, 1, 9])),
                   G.ublhdr(5) + G.cfg5(0x0109, ETH_LLDP + G.LLDP_TLVS),
                   bytes([7]) + bytes(12)],
    LINKTYPE_UB: [G.lph_cfg5(G.cfg5(0x0109, G.LLDP_TLVS)),
                  G.lph_cfg5(G.cfg5(0x0109, ETH_LLDP + G.LLDP_TLVS)),
                  G.lph_cfg5(G.cfg5(0x0109, G.LLDP_DST + G.LLDP_SRC + b"\x08\x00" + G.LLDP_TLVS)),
                  G.enumeration(2, 3, 0, bytes(2) + b"\x00\x07"),
                  G.enumeration(2, 0, 0, b"\x00\x12\x34\x56"),
                  G.enumeration(0, 0, 0, bytes([0, 4, 2, 1, 1, 8, 0, 16, 0, 1, 0, 0])
                                + bytes([2, 28, 0b1011, 0, 0, 3, 0, 9]) + bytes(4) + G.guid_wire()
                                + bytes([4, 8, 0x53, 0x01, 0, 0, 0x02, 0x00])
                                + bytes([200, 6, 1, 2, 3, 4, 0, 8, 3, 2, 9, 9, 9, 9])),
                  G.enumeration(0, 0, 0, bytes([2, 8]) + bytes(6))]
                 + [mgmt_pkt(*v) for v in PDUS.values()],
}


def _pdu(name):
    rec = decode(mgmt_pkt(*PDUS[name]), LINKTYPE_UB, SPEC)
    assert encode_record(rec, SPEC) == mgmt_pkt(*PDUS[name])
    assert not has_errors(rec["issues"]), rec["issues"]
    i = rec["layers"].index("ub.mgmtetah")
    return rec["layers"][i + 1:-1], rec["fields"]     # without the ICRC


def test_link_neighbour_query_port_list():
    layers, f = _pdu("neighbour_discrete")
    assert layers == ["ub.neighbour_query", "ub.pdu"]
    assert (f["ub.neighbour_query.d"], f["ub.neighbour_query.port_num"]) == (1, 3)
    assert f["ub.neighbour_query.port_idx"] == [1, 5, 9]
    _, f = _pdu("neighbour_range")
    assert f["ub.neighbour_query.port_idx"] == [2, 7]


def test_link_neighbour_query_response_port_info():
    layers, f = _pdu("neighbour_rsp")
    assert layers == ["ub.scan_port_info", "ub.scan_port_info"]
    assert f["ub.scan_tlv.local_port_idx"] == [3, 4] and f["ub.scan_tlv.s"] == [1, 0]
    assert f["ub.scan_tlv.remote_port_idx"] == [9, 0]


def test_obtain_entity_information_response():
    layers, f = _pdu("entity_info")
    assert layers == ["ub.entity_info", "ub.pdu"]
    assert (f["ub.entity_info.mue_nums"], f["ub.entity_info.entity_nums"]) == (2, 9)
    assert f["ub.entity_info.mue_end_ue_idx"] == [4, 1]
    assert f["ub.entity_info.mue_start_ue_idx"] == [2, 1]


def test_resource_space_information_exchange():
    layers, f = _pdu("rs_info_obtain")
    assert layers == ["ub.rs_info_req"] and f["ub.rs_info.opcode_name"] == "Obtain"
    layers, f = _pdu("rs_info_configure")
    assert layers == ["ub.rs_info_cfg"] and f["ub.rs_info.opcode"] == 1
    layers, f = _pdu("rs_info_rsp")
    assert layers == ["ub.rs_info_rsp"]
    assert (f["ub.rs_info.ers0_ss"], f["ub.rs_info.ers0_sa"]) == (0x10, 0x0123456789ABCDEF)
    assert (f["ub.rs_info.ers2_ss"], f["ub.rs_info.ers2_sa"]) == (0x20, 0x1000)


def test_vdm_vendor_header():
    layers, f = _pdu("vdm_vendor")
    assert layers == ["ub.vdm_vendor", "ub.pdu"]
    assert (f["ub.vdm.version"], f["ub.vdm.type"], f["ub.vdm.vendor_id"],
            f["ub.vdm.device_id"]) == (1, 2, 0xCC08, 0xA001)
    assert f["ub.pdu.data"] == "deadbeef"


def test_mctp_and_spdm_are_their_own_layers():
    layers, f = _pdu("mctp")
    assert layers == ["ub.mctp"] and f["ub.mctp.data"] == PDUS["mctp"][3].hex()
    layers, f = _pdu("spdm")
    assert layers == ["ub.spdm"] and f["ub.spdm.data"] == PDUS["spdm"][3].hex()
    # other VDM sub codes stay opaque PDU bytes
    rec = decode(mgmt_pkt(3, 1, 0, b"\x01\x02\x03\x04"), LINKTYPE_UB, SPEC)
    assert "ub.pdu" in rec["layers"] and "ub.mctp" not in rec["layers"]


@pytest.fixture(scope="module")
def tshark():
    from test_lua import _find_tshark
    return _find_tshark()


@pytest.mark.parametrize("linktype", sorted(FRAMES))
def test_lua_agrees(tshark, tmp_path, linktype):
    frames = FRAMES[linktype]
    records = [decode(f, linktype, SPEC) for f in frames]
    verdicts = lua_verdicts(tshark, tmp_path, linktype, records, frames)
    bad = [(n, v) for n, v in enumerate(verdicts, 1) if v]
    assert not bad, bad


def _variants(linktype):
    """Each frame, then copies of the same length with one byte of the steering bytes changed
    (the LLDP destination MAC, the CFG byte): a template learnt on one must not decode another."""
    for f in FRAMES[linktype]:
        yield f
        for off in range(0, min(len(f), 64)):
            for flip in (0x01, 0x40):
                b = bytearray(f)
                b[off] ^= flip
                yield bytes(b)


@pytest.mark.parametrize("linktype", sorted(FRAMES))
def test_fast_path_agrees(linktype):
    cache = TemplateCache(SPEC)
    for rnd in range(2):           # the second round goes through the cached templates
        for f in _variants(linktype):
            fr = dissect(f, linktype, SPEC)
            assert cache.decode(f, linktype) == (fr.layers, fr.fields, fr.issues), (rnd, f.hex())
