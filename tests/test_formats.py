"""Every declared header: fast codec == Construct reference codec, byte-exact round trips."""
import pytest
from hypothesis import given, strategies as st

from ubpkt.formats import HEADERS
from ubpkt.formats.core import EncodeError

ALL = sorted(HEADERS)


@pytest.mark.parametrize("layer", ALL)
@given(data=st.data())
def test_fast_codec_matches_construct_and_round_trips(layer, data):
    h = HEADERS[layer]
    raw = data.draw(st.binary(min_size=h.size, max_size=h.size))
    vals = h.unpack(raw)
    assert h.pack_values(list(vals)) == raw
    c = h.construct()
    parsed = c.parse(raw)
    for f, v in zip(h.fields, vals):
        assert parsed[f.name] == v, f.name
    assert c.build(parsed) == raw


@pytest.mark.parametrize("layer", ALL)
def test_field_widths_fill_whole_bytes_and_names_are_spec_style(layer):
    h = HEADERS[layer]
    assert sum(f.bits for f in h.fields) == 8 * h.size
    for key in h.keys:
        assert key == key.lower()
        assert " " not in key


def test_text_fields_round_trip_through_encode():
    h = HEADERS["ub.eidh256"]
    raw = bytes(range(32))
    shown = h.decode_fields(raw)
    assert shown["seid"] == "0001:0203:0405:0607:0809:0a0b:0c0d:0e0f"
    assert h.encode(shown) == raw
    g = HEADERS["ub.cfg5"]
    raw = bytes.fromhex("0109") + bytes([0xFF] * 14) + b"\x01\x09" + bytes(range(16))
    shown = g.decode_fields(raw)
    assert shown["dguid"] == "ffff-ffff-f-f-ffffff-ffffffffffff0109"
    assert g.encode(shown) == raw


def test_encode_rejects_values_that_do_not_fit():
    with pytest.raises(EncodeError):
        HEADERS["ub.lph"].encode(cfg=16)
    with pytest.raises(EncodeError):
        HEADERS["ub.maetah_c"].encode(address=0x41)  # low 6 bits are not sent
    with pytest.raises(EncodeError):
        HEADERS["ub.btah"].encode(bogus=1)


def test_enum_names_accepted_when_encoding():
    assert HEADERS["ub.btah_c"].encode(taopcode="Write")[0] == 0x03


def test_lph_golden_example():
    # spec-facts §4.3: a 2-flit single-block CFG 6 packet, 10 payload bytes in the last flit
    assert HEADERS["ub.lph"].encode(cfg=6, plength=0x29) == bytes.fromhex("00060029")
    v = dict(zip([f.name for f in HEADERS["ub.lph"].fields],
                 HEADERS["ub.lph"].unpack(bytes.fromhex("dce340ff"))))
    assert (v["crd"], v["ack"], v["crd_vl"], v["vl"], v["cfg"], v["rt"]) == (1, 1, 7, 7, 3, 1)


def test_lch_table_4_6_golden():
    lch = HEADERS["ub.lch"]
    assert lch.encode(clength=0, ctrl=0, sub_ctrl=0, fixed=0b100000) == bytes.fromhex("02000000")
    assert lch.encode(clength=0, ctrl=1, sub_ctrl=1) == bytes.fromhex("02001100")
    assert lch.encode(clength=0, ctrl=4, sub_ctrl=1) == bytes.fromhex("02004100")
    assert lch.encode(clength=4, ctrl=0xC, sub_ctrl=8) == bytes.fromhex("1200c800")
    crd = HEADERS["ub.lch_crd_ack"]
    assert crd.encode(clength=1, ctrl=2, sub_ctrl=4, sd=1, t=1) == bytes.fromhex("06002481")
    assert crd.encode(clength=1, ctrl=2, sub_ctrl=4, sd=0, t=1) == bytes.fromhex("06002401")
