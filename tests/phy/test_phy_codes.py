"""Golden vectors and properties of the PHY codes: RS(128,120), eBCH-16, AMCTL, LTB, CRC."""
from __future__ import annotations

import itertools
import os
import random

import numpy as np
import pytest
import reedsolo
from hypothesis import given, settings, strategies as st

from ubpkt.phy import ebch16_decode, ebch16_encode, rs_decode, rs_encode
from ubpkt.phy.amctl import CTRL_DETAILS, CTRL_TYPES, build_amctl, parse_amctl
from ubpkt.phy.ebch import AMCTL_CW, CODEWORDS, permute_dc, unpermute_dc
from ubpkt.phy.ltb import (CLTB, DLTB, ELTB, RLTB, LtbError, decode_ltb, eeib, encode_ltb,
                           ltb_crc16)
from ubpkt.phy.rsfec import GENERATOR, rs_decode_many, rs_encode_many, rs_syndromes_many
from ubpkt.phy.symbols import bytes_to_ui
from ubpkt.phy._nullblock import NULL_BLOCK, is_null_block_many, null_block

# --- eBCH-16: all 32 codewords of UB 2.0 Table 3-5 (Byte_A, Byte_B as binary rows) -------------
TABLE_3_5 = """
00000000 00000000|00001010 01101111|00010100 11011101|00011110 10110010|00100011 11010110
00101001 10111001|00110111 00001011|00111101 01100100|01000111 10101100|01001101 11000011
01010011 01110001|01011001 00011110|01100100 01111010|01101110 00010101|01110000 10100111
01111010 11001000|10000101 00110111|10001111 01011000|10010001 11101010|10011011 10000101
10100110 11100001|10101100 10001110|10110010 00111100|10111000 01010011|11000010 10011011
11001000 11110100|11010110 01000110|11011100 00101001|11100001 01001101|11101011 00100010
11110101 10010000|11111111 11111111
"""
GOLDEN_EBCH = [int(x.replace(" ", ""), 2) for x in TABLE_3_5.replace("\n", "|").split("|") if x]

# Table 3-6: adjusted (permuted) bits and PAM4 levels (#3..#0 per byte) of the AMCTL codewords
TABLE_3_6 = {
    8: ("00100111_11011000", "0312_2130"), 28: ("00011011_00011011", "0132_0132"),
    3: ("11100100_11100100", "2310_2310"), 23: ("11011000_00100111", "2130_0312"),
    9: ("01100011_10000111", "1302_3012"), 21: ("01111000_10011100", "1230_3120"),
    10: ("10000111_01100011", "3012_1302"), 22: ("10011100_01111000", "3120_1230"),
}


def test_ebch_all_32_codewords_match_table_3_5():
    assert len(GOLDEN_EBCH) == 32
    assert [ebch16_encode(k) for k in range(32)] == GOLDEN_EBCH
    for k, w in enumerate(GOLDEN_EBCH):
        assert ebch16_decode(w) == (k, 0)


def test_ebch_min_distance_8():
    d = min(bin(a ^ b).count("1") for a, b in itertools.combinations(CODEWORDS, 2))
    assert d == 8


def test_dc_permutation_and_pam4_levels_match_table_3_6():
    for cw, (bits, pam4) in TABLE_3_6.items():
        p = permute_dc(CODEWORDS[cw])
        assert format(p, "016b") == bits.replace("_", "")
        assert unpermute_dc(p) == CODEWORDS[cw]
        levels = bytes_to_ui(np.array([p >> 8, p & 0xFF], dtype=np.uint8), "pam4")
        # table lists symbol #3..#0 per byte; the lane sends #0 first
        expect = [int(c) for half in pam4.split("_") for c in reversed(half)]
        assert levels.tolist() == expect
        # DC balance: equal ones/zeros per byte (NRZ) and equal negative/positive levels
        assert bin(p >> 8).count("1") == 4 and bin(p & 0xFF).count("1") == 4
        assert sum(1 for v in levels if v < 2) == 4
    assert sorted(TABLE_3_6) == sorted(AMCTL_CW)


def test_ebch_corrects_every_pattern_up_to_3_bits():
    for k in (0, 5, 22, 31):
        w = CODEWORDS[k]
        for n in (1, 2, 3):
            for pos in itertools.combinations(range(16), n):
                e = sum(1 << p for p in pos)
                assert ebch16_decode(w ^ e) == (k, n)


def test_ebch_corrects_3_bch_errors_plus_parity_error():
    w = CODEWORDS[21]
    for pos in itertools.combinations(range(1, 16), 3):
        e = sum(1 << p for p in pos) | 1
        assert ebch16_decode(w ^ e) == (21, 4)


def test_ebch_decoder_equals_brute_force_nearest_codeword():
    """All 65536 words: decoded iff some codeword is within 3 bits on the 15-bit BCH part."""
    from ubpkt.phy.ebch import decode_table
    value, nbits = decode_table()
    words = np.arange(65536)[:, None]
    x = words ^ np.array(GOLDEN_EBCH)[None, :]
    d15 = np.vectorize(lambda v: bin(v & 0xFFFE).count("1"))(x)
    dall = np.vectorize(lambda v: bin(v).count("1"))(x)
    best = d15.argmin(axis=1)
    near = d15[np.arange(65536), best] <= 3
    assert (value[near] == best[near]).all() and (value[~near] == -1).all()
    assert (nbits[near] == dall[np.arange(65536), best][near]).all()
    assert ebch16_decode(int(np.nonzero(~near)[0][0])) is None


# --- RS(128,120) ---------------------------------------------------------------------------------
def test_generator_coefficients_table_3_2():
    assert GENERATOR == (24, 200, 173, 239, 54, 81, 11, 255, 1)


def _gf_mul(a, b):  # independent bitwise GF(2^8) multiply, 0x11D
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
        b >>= 1
    return r


def _poly_eval(cw, x):  # cw[0] is the coefficient of x^127
    acc = 0
    for c in cw:
        acc = _gf_mul(acc, x) ^ c
    return acc


def test_rs_codeword_roots_independent_check():
    m = os.urandom(120)
    c = rs_encode(m)
    assert c[:120] == m and len(c) == 128
    x = 1
    for j in range(8):
        assert _poly_eval(c, x) == 0  # roots alpha^0 .. alpha^7
        x = _gf_mul(x, 2)


def test_rs_encode_matches_reedsolo():
    rs = reedsolo.RSCodec(8, nsize=255, fcr=0, prim=0x11D, generator=2, c_exp=8)
    for _ in range(20):
        m = os.urandom(120)
        assert bytes(rs.encode(m)) == rs_encode(m)


def test_rs_batch_equals_single():
    msgs = np.random.default_rng(1).integers(0, 256, (50, 120), dtype=np.uint8)
    cws = rs_encode_many(msgs)
    assert all(cws[i].tobytes() == rs_encode(msgs[i].tobytes()) for i in range(50))
    assert not rs_syndromes_many(cws).any()


def _corrupt(cw: bytes, n: int, rnd: random.Random) -> tuple[bytearray, list[int]]:
    b = bytearray(cw)
    pos = rnd.sample(range(128), n)
    for p in pos:
        b[p] ^= rnd.randrange(1, 256)
    return b, pos


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=120, max_size=120), st.integers(0, 4), st.randoms(use_true_random=False))
def test_rs_t4_corrects_up_to_4(msg, n, rnd):
    c = rs_encode(msg)
    b, pos = _corrupt(c, n, rnd)
    r = rs_decode(b, t=4)
    assert r.ok and r.message == msg and r.corrected == n
    assert sorted(r.positions) == sorted(pos)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=120, max_size=120), st.integers(0, 2), st.randoms(use_true_random=False))
def test_rs_t2_corrects_up_to_2(msg, n, rnd):
    b, _ = _corrupt(rs_encode(msg), n, rnd)
    r = rs_decode(b, t=2)
    assert r.ok and r.message == msg and r.corrected == n


def test_rs_t2_always_reports_3_to_6_errors():
    rnd = random.Random(7)
    msgs = np.random.default_rng(7).integers(0, 256, (600, 120), dtype=np.uint8)
    cws = rs_encode_many(msgs)
    bad = cws.copy()
    for i in range(bad.shape[0]):
        n = 3 + i % 4
        for p in rnd.sample(range(128), n):
            bad[i, p] ^= rnd.randrange(1, 256)
    res = rs_decode_many(bad, t=2)
    assert not res.ok.any()  # distance 9: never mis-corrected
    assert (res.corrected == 0).all()


def test_rs_t4_beyond_bound_mostly_reported():
    rnd = random.Random(3)
    msgs = np.random.default_rng(3).integers(0, 256, (300, 120), dtype=np.uint8)
    bad = rs_encode_many(msgs)
    for i in range(bad.shape[0]):
        for p in rnd.sample(range(128), 5 + i % 4):
            bad[i, p] ^= rnd.randrange(1, 256)
    res = rs_decode_many(bad, t=4)
    wrong_ok = res.ok & (res.messages != msgs).any(axis=1)
    assert (~res.ok).sum() >= 290  # reported whenever the decoder can tell
    assert wrong_ok.sum() == res.ok.sum()  # anything "ok" here is a mis-correction (CRC30's job)


def test_rs_decode_many_counts():
    rnd = random.Random(5)
    msgs = np.random.default_rng(5).integers(0, 256, (40, 120), dtype=np.uint8)
    bad = rs_encode_many(msgs)
    ns = [i % 5 for i in range(40)]
    for i, n in enumerate(ns):
        for p in rnd.sample(range(128), n):
            bad[i, p] ^= rnd.randrange(1, 256)
    res = rs_decode_many(bad, t=4)
    assert res.ok.all() and (res.messages == msgs).all()
    assert res.corrected.tolist() == ns


# --- AMCTL ---------------------------------------------------------------------------------------
def test_amctl_structure_and_round_trip():
    a = build_amctl(5, "link_width_switch", "x8")
    assert len(a) == 40
    words = [(a[2 * i] << 8) | a[2 * i + 1] for i in range(20)]
    vals = [ebch16_decode(unpermute_dc(w))[0] for w in words]
    assert vals[:6] == [21, 28] * 3 and vals[6:8] == [22, 22]
    assert vals[8:12] == [3, 22, 3, 22]  # lane 5 -> CW22 (Table 3-8)
    assert vals[12:16] == [8, 9, 8, 9] and vals[16:20] == [21, 23, 21, 23]
    p = parse_amctl(a)
    assert p.end_ok and p.body_ok and p.lane_id == 5 and p.is_sdf
    assert parse_amctl(build_amctl(None)).lid_null
    for t, details in CTRL_DETAILS.items():
        for name in details.values():
            q = parse_amctl(build_amctl(2, t, name))
            assert (q.ctrl_type, q.ctrl_detail) == (t, name)
    assert parse_amctl(build_amctl(0, "link_width_switch", "x0")).is_edf
    assert set(CTRL_TYPES) >= {"fec_control", "no_command", "remote_tx_width"}


def test_amctl_validity_rules():
    a = bytearray(build_amctl(3, "fec_control", "close_fec"))
    # destroy one half of CTRL_TYPE: still valid from the other half
    a[24:28] = b"\x00\xff\x0f\xf0"
    p = parse_amctl(a)
    assert p.ctrl_type == "fec_control" and p.ctrl_detail == "close_fec"
    # halves disagree -> control ignored
    b = bytearray(build_amctl(3, "fec_control", "close_fec"))
    b[28:32] = build_amctl(3, "ei_indicator", "eei")[28:32]
    assert parse_amctl(b).ctrl_type is None
    # LID halves disagree -> invalid lane ID
    c = bytearray(build_amctl(3))
    c[20:24] = build_amctl(4)[20:24]
    q = parse_amctl(c)
    assert not q.lid_valid and q.lane_id is None
    # END destroyed beyond correction -> not an AMCTL
    d = bytearray(build_amctl(3))
    d[12:16] = b"\x00\x00\x00\x00"
    assert not parse_amctl(d).end_ok
    # 3 bit errors per word are corrected
    e = bytearray(build_amctl(6))
    for i in range(0, 40, 2):
        e[i] ^= 0b00010101
    r = parse_amctl(e)
    assert r.end_ok and r.lane_id == 6 and r.corrected_bits == 60


# --- LTB / EEIB / CRC ---------------------------------------------------------------------------
def _crc16_bitwise(data, poly=0x5935, init=0xFFFF):
    c = init
    for b in data:
        for i in range(7, -1, -1):
            fb = ((c >> 15) & 1) ^ ((b >> i) & 1)
            c = (c << 1) & 0xFFFF
            if fb:
                c ^= poly
    return c


def test_ltb_crc16_matches_bitwise_reference():
    for _ in range(20):
        d = os.urandom(12)
        assert ltb_crc16(d) == _crc16_bitwise(d)


def test_dltb_example_bytes():
    d = DLTB(type=0xA0, link_id=3, lane_id=2, tlw=0x04, rlw=0x08, data_rates=0x115,
             fec_support=3, port_type=1, random_value=77, fec_interleave_support=0xF,
             rx_lane0=3, max_link_width=4)
    e = encode_ltb(d)
    body = bytes.fromhex("a0030204081501039b000f13")
    crc = _crc16_bitwise(body)
    assert e == body + bytes([crc & 0xFF, crc >> 8, 0x5A, 0x5A])
    assert decode_ltb(e) == d


@pytest.mark.parametrize("ltb", [
    CLTB(type=0xB1, link_id=9, lane_id=1, tlw=2, rlw=4, eq_mode=1, fec_mode=1, fec_interleave=1),
    RLTB(type=0xC3, eq_ctrl1=5, eq_ctrl2=0x21, eq_ctrl3=7, change_speed=1, data_rates=0x1FF,
         fec_mode=2, fec_crc_reject=1, ber_status=2, fec_interleave=1, fec_interleave_reject=1,
         request_eq=1, crc_mode=1, local_tx_preset=7, first_pre_cursor=9),
    ELTB(eq_reject=1, eq_phase=3, preset_mode=1, tx_preset=5, eq_ctrl2=0x34, post_cursor=12,
         cursor=40, first_pre_cursor=3),
    DLTB(type=0xE0, link_id=0xFF, lane_id=7, data_rates=0x1, rx_lane0=7, max_link_width=8),
])
def test_ltb_round_trip_every_field(ltb):
    e = encode_ltb(ltb)
    assert len(e) == 16 and e[14:] == b"\x5a\x5a"
    assert decode_ltb(e) == ltb


def test_cltb_field_positions():
    e = encode_ltb(CLTB(type=0xB2, link_id=1, lane_id=0, tlw=8, rlw=8, eq_mode=2, fec_mode=2,
                        fec_interleave=1))
    assert e[6] == 0b10_1010 and e[0] == 0xB2


def test_ltb_crc_error_and_reserved_type():
    e = bytearray(encode_ltb(DLTB()))
    e[5] ^= 1
    with pytest.raises(LtbError):
        decode_ltb(e)
    body = bytes([0x99]) + bytes(11)
    c = ltb_crc16(body)
    with pytest.raises(LtbError):
        decode_ltb(body + bytes([c & 0xFF, c >> 8, 0x5A, 0x5A]))


def test_eeib_patterns():
    assert eeib("4.0") == bytes([0, 0xFF] * 8)
    assert eeib("25.78125") == (bytes(4) + b"\xff" * 4) * 4
    assert eeib("53.125") == (bytes(8) + b"\xff" * 8) * 4
    e = eeib("106.25")
    assert len(e) == 128 and e[:32] == bytes(16) + b"\xff" * 16
    # PAM4: 0xFF symbols are level 3 UIs when sent without Gray coding (Table 3-18)
    assert set(bytes_to_ui(np.frombuffer(e[16:32], np.uint8), "pam4", gray=False)) == {3}


def _crc30_bitwise(data: bytes, info: int) -> int:
    bits = [(b >> (7 - i)) & 1 for b in data for i in range(8)] + [(info >> 1) & 1, info & 1]
    c = (1 << 30) - 1
    for x in bits:
        fb = ((c >> 29) & 1) ^ x
        c = (c << 1) & ((1 << 30) - 1)
        if fb:
            c ^= 0x15A94AD5
    return c


def test_null_block_crc30():
    assert NULL_BLOCK[:4] == b"\x02\x00\x00\x00" and len(NULL_BLOCK) == 20
    assert NULL_BLOCK[4:16] == bytes(12) and NULL_BLOCK[16] >> 6 == 0
    crc = int.from_bytes(NULL_BLOCK[16:], "big") & ((1 << 30) - 1)
    assert crc == _crc30_bitwise(NULL_BLOCK[:16], 0)
    flagged = null_block(error_flag=True)
    assert flagged[16] >> 6 == 1
    assert int.from_bytes(flagged[16:], "big") & ((1 << 30) - 1) == \
        _crc30_bitwise(flagged[:16], 1)
    bad = bytearray(NULL_BLOCK)
    bad[19] ^= 1
    f = np.frombuffer(NULL_BLOCK + flagged + bytes(bad) + bytes(19) + b"\x01",
                      np.uint8).reshape(4, 20)
    assert is_null_block_many(f).tolist() == [True, True, False, False]


def test_batch_decoder_equals_per_codeword_decoder():
    """rs_decode_many (vectorised BM/Chien/Forney) and rs_decode (per-codeword code) are two
    implementations; they must agree on every codeword, for 0..8 symbol errors."""
    rnd = random.Random(11)
    msgs = np.random.default_rng(11).integers(0, 256, (450, 120), dtype=np.uint8)
    bad = rs_encode_many(msgs)
    for i in range(bad.shape[0]):
        for p in rnd.sample(range(128), i % 9):
            bad[i, p] ^= rnd.randrange(1, 256)
    for t in (2, 4):
        res = rs_decode_many(bad, t)
        for i in range(bad.shape[0]):
            one = rs_decode(bad[i].tobytes(), t)
            assert one.ok == res.ok[i] and one.corrected == res.corrected[i]
            assert one.codeword == res.codewords[i].tobytes()
