import pytest

from ubpkt.link import control as C
from ubpkt.link.framing import deframe

# UB 2.0 Table 4-6: LCH bytes 0-3 of every DLLCB type
LCH = {
    "Null": (C.null, "02000000"), "NOB": (C.nob, "02000100"),
    "Retry_Idle": (C.retry_idle, "02001000"),
    "Retry_Req": (lambda **kw: C.retry_req(0, **kw), "02001100"),
    "Retry_Ack": (lambda **kw: C.retry_ack(0, 0, 0, 0, **kw), "02001200"),
    "Crd_Ack": (C.crd_ack, "06002400"),
    "Param_Exchg": (lambda **kw: C.param_exchg([0], **kw), "02003000"),
    "Lane_Manage": (C.lane_manage, "02004100"),
    "Block_Mode_Chg": (lambda **kw: C.block_mode_chg(0, **kw), "02005000"),
    "Init": (lambda **kw: C.InitParams().encode(**kw), "1200c800"),
}


@pytest.mark.parametrize("kind", sorted(LCH))
def test_lch_golden(kind):
    make, want = LCH[kind]
    blk = make()
    assert blk[:4].hex() == want
    cb = C.parse_control(blk)
    assert cb.kind == kind and cb.issues == [] and cb.crc_ok
    nblk = make(crc_mode=False)
    assert nblk[:4] == blk[:4] and nblk[-1] == 0 and len(nblk) == len(blk)
    ncb = C.parse_control(nblk, False)
    assert ncb.kind == kind and ncb.issues == []


def test_crd_ack_sd_t_bits():
    assert C.crd_ack(t=1, sd=1)[:4].hex() == "06002481"
    assert C.crd_ack(t=1)[3] == 0x01 and C.crd_ack(sd=1)[3] == 0x80
    credits = list(range(16))
    cb = C.parse_control(C.crd_ack(0x1234, credits, t=1, sd=0))
    assert cb.values["credits"] == credits and cb.values["ack_num"] == 0x1234
    assert cb.values["t"] == 1 and cb.values["sd"] == 0
    # VL15 sits in the top 6 bits of CRD_NUM
    blk = C.crd_ack(0, [0] * 15 + [63])
    assert blk[6] >> 2 == 63
    with pytest.raises(ValueError):
        C.crd_ack(0, [64])


def test_retry_fields_and_sets():
    blk = C.retry_req(0x1234, 2, 7)
    assert blk[8:12] == bytes((0x12, 0x34, 2, 7))
    blk = C.retry_ack(3, 0x0800, 0x0102, 0x0304)
    assert blk[4:12] == bytes((0, 3, 0x08, 0, 1, 2, 3, 4))
    s = C.retry_req_set(5)
    assert len(s) == 33 * 20 and s[:4].hex() == "02001000"
    kinds = [u.control.kind for u in deframe(C.retry_ack_set(1, 2, 3, 4), controls=True)]
    assert kinds == ["Retry_Idle"] + ["Retry_Ack"] * 32


def test_lane_manage_and_block_mode():
    blk = C.lane_manage(change_tlw=1, tlw=0x04, rlw=0x08, rsp_rlw=1)
    assert blk[4] == 0x51 and blk[5] == 0xA2 and blk[6] == 0x04 and blk[7] == 0x08
    v = C.parse_control(blk).values
    assert v["change_tlw"] == 1 and v["tlw"] == 4 and v["rlw"] == 8
    assert C.parse_control(C.block_mode_chg(1)).values["type"] == 1
    assert C.block_mode_chg(1)[3] == 1


def test_neighbor_advert():
    guid = 0x00112233445566778899AABBCCDDEEFF
    blk = C.neighbor_advert(guid, 9)
    assert len(blk) == 100 and blk[:4].hex() == "12003000"
    assert blk[28:32] == bytes.fromhex("ccddeeff")          # flit 1 = GUID[31:0]
    cb = C.parse_control(blk)
    assert cb.values["neighbor"] == {"port_idx": 9, "guid": guid} and cb.issues == []


def test_init_layout_and_roundtrip():
    ip = C.InitParams(feature_id=1, rxbuf_vl_share=1, data_ack_grain=0x30, ctrl_ack_grain=0x3,
                      flow_ctrl_size=0x18, vl_enable=0x00FF, retry_buf_depth=0x1234,
                      ctrl_credit_grain=tuple(range(1, 17)),
                      data_credit_grain=tuple(range(0x21, 0x31)), packet_min_interval=6)
    blk = ip.encode(6)
    assert len(blk) == 120
    assert blk[7:9] == b"\x00\x01" and blk[9] == 1 and blk[10] == 0x30 and blk[11] == 3
    assert blk[12] == 0x18 and blk[13:15] == b"\x00\xff" and blk[16:18] == b"\x12\x34"
    assert blk[24] == 14 and blk[37] == 1                  # CTRL grain VL13 .. VL0
    assert blk[56] == 16 and blk[57] == 15                 # CTRL grain VL15, VL14
    assert blk[44] == 0x2C and blk[55] == 0x21             # DATA grain VL11 .. VL0
    assert blk[73] == 6 and blk[74] == 0x30 and blk[77] == 0x2D   # PMI, DATA VL15..VL12
    assert C.parse_control(blk).values["init"] == ip
    with pytest.raises(ValueError):
        ip.encode(4)


def test_negotiation_rules():
    a = C.InitParams(flow_ctrl_size=C.grain_bitmap(32, 16), vl_enable=0b1011)
    b = C.InitParams(flow_ctrl_size=C.grain_bitmap(64, 32, 16), vl_enable=0b1111,
                     feature_id=2)
    n = C.negotiate(a, b)
    assert n.flow_ctrl_size == 16 and n.vl_enable == 0b11 and n.feature_id == 1
    a = C.InitParams(flow_ctrl_size=32)
    b = C.InitParams(flow_ctrl_size=16)
    n = C.negotiate(a, b)
    assert n.flow_ctrl_size == 8 and "flow_ctrl_size" in n.failed      # §4.4 default
    assert C.negotiate(C.InitParams(), C.InitParams()) == C.Negotiated()


def test_priority_order():
    assert C.PRIORITY[0] == "Retry_Ack_Set" and C.PRIORITY[-1] == "Null"
    assert C.RANK["Crd_Ack_T0"] < C.RANK["Lane_Manage"] < C.RANK["Crd_Ack_T1"] < C.RANK["Init"]
    assert C.RANK["NOB"] < C.RANK["DLLDP"]


def test_parse_never_raises():
    import random
    rng = random.Random(3)
    for _ in range(300):
        n = rng.choice((1, 2, 5, 7)) * 20 + rng.choice((0, 0, 3))
        blk = bytearray(rng.randbytes(n))
        blk[1] &= 0xF0
        C.parse_control(bytes(blk))
        C.parse_control(bytes(blk), False)


def test_one_reader_for_captures_streams_and_engine():
    """Checks the capture decoder took over from the link parser (UB 2.0 §4.3.3): the type's
    flit range, the END trailer in non-CRC mode, the neighbour advertisement (§10.4.4)."""
    from ubpkt import SPEC, decode
    blk = bytearray(C.crd_ack())
    blk[0] = 0x02                                   # CLENGTH 0: one flit, Crd_Ack is two
    rec = decode(bytes(blk[:20]))
    assert ("ub.lch_crd_ack", "ub.lch.clength") in [(i["layer"], i["field"])
                                                    for i in rec["issues"]]
    assert any(i["message"] == "Crd_Ack is 2..2 flits, CLENGTH says 1" for i in rec["issues"])
    rec = decode(C.null(crc_mode=False), profile=SPEC.with_(crc_mode=False))
    assert rec["layers"] == ["ub.lch", "ub.cb_rsvd", "ub.cb_body", "ub.end"]
    assert rec["issues"] == []
    guid = 0x00112233445566778899AABBCCDDEEFF
    f = decode(C.neighbor_advert(guid, 9))["fields"]
    assert f["ub.param_exchg.port_idx"] == 9 and f["ub.param_exchg.guid"] == f"{guid:032x}"
    # the link side keeps what it acts on
    cb = C.parse_control(C.neighbor_advert(guid, 9), offset=1000)
    assert cb.values["neighbor"] == {"port_idx": 9, "guid": guid} and cb.end == 100
    bad = bytearray(C.null())
    bad[5] ^= 1
    cb = C.parse_control(bytes(bad), offset=1000)
    assert cb.crc_ok is False and cb.fields["ub.bcrc.computed"] != cb.fields["ub.bcrc.crc30"]
    assert [(i["field"], i["offset"]) for i in cb.issues] == [("ub.cb.rsvd1", 1004),
                                                               ("ub.bcrc.crc30", 1016)]


def test_crd_ack_fast_builder_and_reader_equal_the_generic_path():
    """crd_ack places its bytes directly and crd_ack_values reads them directly (the engine
    sends and takes about one per DLLDP): both agree with the declared layout's generic
    builder and the one DLLCB reader, in both modes and both BCRC readings."""
    import random
    rng = random.Random(11)
    cases = [(0, [0] * 16, 0, 0), (0xFFFF, [63] * 16, 1, 1), (1, [1] + [0] * 15, 0, 1)]
    cases += [(rng.randrange(1 << 16), [rng.randrange(64) for _ in range(16)],
               rng.randrange(2), rng.randrange(2)) for _ in range(200)]
    for ack, credits, t, sd in cases:
        crd_num = 0
        for c in reversed(credits):
            crd_num = (crd_num << 6) | c
        body = C._BODY["Crd_Ack"].encode(ack_num=ack, crd_num=crd_num)
        for crc_mode in (True, False):
            for covers in (True, False):
                want = C.build("Crd_Ack", body, 2, crc_mode=crc_mode, covers_info=covers,
                               lch_byte3=sd << 7 | t)
                got = C.crd_ack(ack, credits, t=t, sd=sd, crc_mode=crc_mode,
                                covers_info=covers)
                assert got == want
                ref = C.parse_control(got, crc_mode, covers_info=covers).values
                assert C.crd_ack_values(got) == ref
    with pytest.raises(ValueError):
        C.crd_ack(0, [64])
    with pytest.raises(ValueError):
        C.crd_ack(1 << 16)


def test_retry_values_equal_the_generic_reader():
    """The engine reads the 32 Retry_Req / Retry_Ack blocks of a set straight from their
    bytes: the same values as the one DLLCB reader, in both modes."""
    import random
    rng = random.Random(5)
    for _ in range(200):
        for crc_mode in (True, False):
            kw = {"crc_mode": crc_mode}
            req = C.retry_req(rng.randrange(1 << 16), rng.randrange(256), rng.randrange(256),
                              **kw)
            ack = C.retry_ack(rng.randrange(256), rng.randrange(1 << 16),
                              rng.randrange(1 << 16), rng.randrange(1 << 16), **kw)
            for blk in (req, ack):
                assert C.retry_values(blk) == C.parse_control(blk, crc_mode).values != {}
    for blk in (C.null(), C.retry_idle(), C.crd_ack(1, [2]), C.nob()):
        assert C.retry_values(blk) == {}
