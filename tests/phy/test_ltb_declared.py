"""The LTB codecs go through the declarations in ubpkt.formats.phy: checked here against golden
bytes and against a layout table written independently from UB 2.0 §3.4.1.1 Tables 3-12..3-15
(symbol, lowest bit, width), as the tables give them."""
import random
from dataclasses import fields

import pytest

from ubpkt.errors import EncodeError
from ubpkt.formats import HEADERS
from ubpkt.formats import phy as P
from ubpkt.phy.ltb import (CLTB, DLTB, ELTB, RLTB, LtbError, decode_ltb, encode_ltb, ltb_crc16,
                          reserved_codes)

_LANE0 = {0: 0b000, 1: 0b001, 3: 0b011, 7: 0b100}   # Table 3-12 symbol 11 bits [2:0]
_MLW = {1: 0b000, 2: 0b001, 4: 0b010, 8: 0b011}     # Table 3-12 symbol 11 bits [5:3]

# (symbol, lowest bit, bits, the wire value from the dataclass), from the tables
LAYOUT = {
    DLTB: [
        (0, 0, 8, lambda d: d.type), (1, 0, 8, lambda d: d.link_id),
        (2, 0, 8, lambda d: d.lane_id), (3, 0, 6, lambda d: d.tlw), (4, 0, 6, lambda d: d.rlw),
        (5, 0, 8, lambda d: d.data_rates), (6, 0, 1, lambda d: d.data_rates >> 8),
        (7, 0, 2, lambda d: d.fec_support), (8, 0, 1, lambda d: d.port_type),
        (8, 1, 7, lambda d: d.random_value), (10, 0, 4, lambda d: d.fec_interleave_support),
        (11, 0, 3, lambda d: _LANE0[d.rx_lane0]), (11, 3, 3, lambda d: _MLW[d.max_link_width]),
    ],
    CLTB: [
        (0, 0, 8, lambda d: d.type), (1, 0, 8, lambda d: d.link_id),
        (2, 0, 8, lambda d: d.lane_id), (3, 0, 6, lambda d: d.tlw), (4, 0, 6, lambda d: d.rlw),
        (6, 0, 2, lambda d: d.eq_mode), (6, 2, 3, lambda d: d.fec_mode),
        (6, 5, 1, lambda d: d.fec_interleave),
    ],
    RLTB: [
        (0, 0, 8, lambda d: d.type), (2, 0, 6, lambda d: d.eq_ctrl1),
        (3, 0, 8, lambda d: d.eq_ctrl2), (4, 0, 8, lambda d: d.eq_ctrl3),
        (5, 0, 8, lambda d: d.data_rates), (6, 0, 1, lambda d: d.data_rates >> 8),
        (6, 7, 1, lambda d: d.change_speed), (7, 0, 3, lambda d: d.fec_mode),
        (7, 3, 1, lambda d: d.fec_crc_reject), (7, 4, 2, lambda d: d.ber_status),
        (7, 6, 1, lambda d: d.fec_interleave), (7, 7, 1, lambda d: d.fec_interleave_reject),
        (9, 7, 1, lambda d: d.request_eq), (10, 0, 3, lambda d: d.crc_mode),
        (10, 4, 4, lambda d: d.local_tx_preset), (11, 0, 6, lambda d: d.first_pre_cursor),
    ],
    ELTB: [
        (0, 0, 8, lambda d: d.type), (1, 5, 1, lambda d: d.eq_reject),
        (2, 0, 2, lambda d: d.eq_phase), (2, 3, 1, lambda d: d.preset_mode),
        (2, 4, 4, lambda d: d.tx_preset), (3, 0, 8, lambda d: d.eq_ctrl2),
        (4, 0, 6, lambda d: d.post_cursor), (5, 0, 8, lambda d: d.cursor),
        (6, 0, 6, lambda d: d.first_pre_cursor),
    ],
}
# The public attributes, in their order (unchanged since the hand-written dataclasses).
ATTRIBUTES = {
    DLTB: ("type link_id lane_id tlw rlw data_rates fec_support port_type random_value "
           "fec_interleave_support rx_lane0 max_link_width"),
    CLTB: "type link_id lane_id tlw rlw eq_mode fec_mode fec_interleave",
    RLTB: ("type eq_ctrl1 eq_ctrl2 eq_ctrl3 data_rates change_speed fec_mode fec_crc_reject "
           "ber_status fec_interleave fec_interleave_reject request_eq crc_mode local_tx_preset "
           "first_pre_cursor"),
    ELTB: "type eq_reject eq_phase preset_mode tx_preset eq_ctrl2 post_cursor cursor "
          "first_pre_cursor",
}
TYPES = {DLTB: (0xA0, 0xA1, 0xE0), CLTB: (0xB0, 0xB1, 0xB2), RLTB: (0xC0, 0xC1, 0xC2, 0xC3),
         ELTB: (0xD0,)}
WIDTH = {"link_id": 8, "lane_id": 8, "tlw": 6, "rlw": 6, "data_rates": 9, "fec_support": 2,
         "port_type": 1, "random_value": 7, "fec_interleave_support": 4, "eq_mode": 2,
         "fec_mode": 3, "fec_interleave": 1, "eq_ctrl1": 6, "eq_ctrl2": 8, "eq_ctrl3": 8,
         "change_speed": 1, "fec_crc_reject": 1, "ber_status": 2, "fec_interleave_reject": 1,
         "request_eq": 1, "crc_mode": 3, "local_tx_preset": 4, "first_pre_cursor": 6,
         "eq_reject": 1, "eq_phase": 2, "preset_mode": 1, "tx_preset": 4, "post_cursor": 6,
         "cursor": 8}


def _reference(ltb) -> bytes:
    b = bytearray(12)
    for sym, lo, bits, get in LAYOUT[type(ltb)]:
        b[sym] |= (get(ltb) & ((1 << bits) - 1)) << lo
    return bytes(b)


def _random(cls, rng):
    kw = {}
    for name in ATTRIBUTES[cls].split():
        if name == "type":
            kw[name] = rng.choice(TYPES[cls])
        elif name == "rx_lane0":
            kw[name] = rng.choice(sorted(_LANE0))
        elif name == "max_link_width":
            kw[name] = rng.choice(sorted(_MLW))
        else:
            kw[name] = rng.randrange(1 << WIDTH[name])
    return cls(**kw)


GOLDEN = [
    (DLTB(type=0xA1, link_id=0x12, lane_id=5, tlw=0x02, rlw=0x04, data_rates=0x1A5,
          fec_support=0b10, port_type=0, random_value=0x55, fec_interleave_support=0b1010,
          rx_lane0=7, max_link_width=2), "a1120502 04a50102 aa000a0c"),
    (CLTB(type=0xB0, link_id=0x21, lane_id=3, tlw=1, rlw=8, eq_mode=1, fec_mode=2,
          fec_interleave=1), "b0210301 08002900 00000000"),
    (RLTB(type=0xC2, eq_ctrl1=0x2A, eq_ctrl2=0x9C, eq_ctrl3=0x7E, data_rates=0x155,
          change_speed=1, fec_mode=1, fec_crc_reject=1, ber_status=1, fec_interleave=0,
          fec_interleave_reject=1, request_eq=1, crc_mode=0, local_tx_preset=0xB,
          first_pre_cursor=0x15), "c2002a9c 7e558199 0080b015"),
    (ELTB(eq_reject=1, eq_phase=2, preset_mode=1, tx_preset=6, eq_ctrl2=0xA3, post_cursor=0x3F,
          cursor=0x80, first_pre_cursor=1), "d0206aa3 3f800100 00000000"),
]


@pytest.mark.parametrize("ltb, hexbody", GOLDEN, ids=[type(g[0]).__name__ for g in GOLDEN])
def test_golden_bodies(ltb, hexbody):
    body = bytes.fromhex(hexbody.replace(" ", ""))
    assert _reference(ltb) == body
    assert ltb.body() == body
    e = encode_ltb(ltb)
    crc = ltb_crc16(body)
    assert e == body + bytes([crc & 0xFF, crc >> 8, 0x5A, 0x5A])
    assert decode_ltb(e) == ltb
    # the generic header decoder reads the same symbols by field name
    assert ltb.HEADER.decode_fields(body)["type"] == ltb.type


@pytest.mark.parametrize("cls", list(LAYOUT), ids=lambda c: c.__name__)
def test_random_values_match_the_tables_and_round_trip(cls):
    rng = random.Random(cls.__name__)
    for _ in range(500):
        ltb = _random(cls, rng)
        body = ltb.body()
        assert body == _reference(ltb), ltb
        assert cls.from_body(body) == ltb
        assert decode_ltb(encode_ltb(ltb)) == ltb


@pytest.mark.parametrize("cls", list(LAYOUT), ids=lambda c: c.__name__)
def test_reserved_bits_are_sent_as_zero_and_ignored(cls):
    rng = random.Random(1)
    h = cls.HEADER
    mask = h.rsvd_mask.to_bytes(h.size, "big")
    for _ in range(50):
        ltb = _random(cls, rng)
        body = ltb.body()
        assert not any(b & m for b, m in zip(body, mask))
        dirty = bytes(b | m for b, m in zip(body, mask))
        assert cls.from_body(dirty) == ltb


def test_attributes_and_defaults_are_the_public_api():
    for cls, names in ATTRIBUTES.items():
        assert tuple(f.name for f in fields(cls)) == tuple(names.split()), cls
    assert DLTB() == DLTB(type=0xA0, link_id=0xFF, lane_id=0xFF, tlw=8, rlw=8, data_rates=1,
                          fec_support=3, port_type=0, random_value=0, fec_interleave_support=0,
                          rx_lane0=0, max_link_width=8)
    assert CLTB() == CLTB(type=0xB0, link_id=0xFF, lane_id=0xFF, tlw=8, rlw=8, eq_mode=2,
                          fec_mode=2, fec_interleave=0)
    assert RLTB().type == 0xC0 and RLTB().data_rates == 1 and RLTB().fec_mode == 2
    assert RLTB().crc_mode == 1 and ELTB().type == 0xD0


def test_declarations_are_registered_and_sized():
    for h in P.LTB_BODIES:
        assert HEADERS[h.layer] is h and h.size == 12 and h.base == "ub.ltb"
        assert h.fields[0].name == "type" and h.offsets[0] == 0
    assert HEADERS["ub.ltb_trailer"].size == 4


def test_wide_values_are_cut_identifiers_are_not():
    # fields that share their symbol keep to their bits, as the hand layout did
    assert DLTB(tlw=0x48, random_value=0xFF).body()[3] == 0x08
    assert DLTB(random_value=0xFF).body()[8] == 0xFE
    assert RLTB(data_rates=0x3FF, eq_ctrl1=0x7F).body()[5:7] == b"\xff\x01"
    for bad in (DLTB(link_id=256), CLTB(lane_id=-1), RLTB(type=0x1C0)):
        with pytest.raises(ValueError):
            bad.body()
    with pytest.raises(EncodeError):
        ELTB(type=300).body()


def test_reserved_codes_are_reported_not_fatal():
    """Table 3-12: RX_Lane0_ID codes other than 000/001/011/100 and MAX_LINK_WIDTH codes 4..7
    are reserved; the DLTB still decodes (its other fields stay usable) and the field is named
    by reserved_codes()."""
    good = bytearray(DLTB(tlw=4, link_id=9).body())
    for code in (0b010, 0b101, 0b110, 0b111):
        good[11] = code
        d = DLTB.from_body(bytes(good))
        assert d.rx_lane0 is None and d.max_link_width == 1
        assert reserved_codes(d) == ["RX_Lane0_ID"] and (d.tlw, d.link_id) == (4, 9)
    for code in range(4, 8):
        good[11] = code << 3
        d = DLTB.from_body(bytes(good))
        assert d.max_link_width is None and d.rx_lane0 == 0
        assert reserved_codes(d) == ["MAX_LINK_WIDTH"]
    good[11] = 0b00011001  # x8, lane 1: nothing reserved
    assert reserved_codes(DLTB.from_body(bytes(good))) == []
    with pytest.raises(LtbError):
        DLTB.from_body(bytes(11))
    with pytest.raises(KeyError):
        DLTB(rx_lane0=2).body()


def test_trailer_is_crc_low_byte_first_then_padding():
    for ltb, _ in GOLDEN:
        e = encode_ltb(ltb)
        f = P.LTB_TRAILER.decode_fields(e, 12)
        assert f["crc"] == ltb_crc16(e[:12]) == e[12] | e[13] << 8
        assert f["padding"] == 0x5A5A
