"""One BCRC definition (UB 2.0 §4.7.2): the encoder, the capture decoder, the flit-stream
deframer, the DLLCB builders and the DLL engine agree on which bits the CRC30 covers, for both
readings of ``bcrc_covers_info``."""
import random

import pytest

from ubpkt import SPEC, decode, encode_layers
from ubpkt.link import control as C
from ubpkt.link.crc30 import bcrc_crc30, block_crc, block_crc_batch, crc30
from ubpkt.link.framing import deframe, frame_packet, fill_plength


def test_block_crc_definition():
    rng = random.Random(1)
    for n in (0, 16, 36, 96, 636):
        data = rng.randbytes(n)
        for info in range(4):
            assert block_crc(data, info) == bcrc_crc30(data, info)
            assert block_crc(data, info, True) == bcrc_crc30(data, info)
            assert block_crc(data, info, False) == crc30(data)


def test_block_crc_batch_matches_scalar():
    import numpy as np
    rng = np.random.default_rng(2)
    rows = rng.integers(0, 256, size=(9, 36), dtype=np.uint8)
    info = rng.integers(0, 4, size=9)
    for covers in (True, False):
        got = [int(x) for x in block_crc_batch(rows, info, covers)]
        assert got == [block_crc(bytes(r), int(i), covers) for r, i in zip(rows, info)]


@pytest.mark.parametrize("covers", [True, False])
@pytest.mark.parametrize("error_flag", [0, 1])
def test_encode_decode_control_block(covers, error_flag):
    """The encoder's BCRC is the one the decoder checks (with covers_info=False the encoder
    used to feed two zero information bits the decoder did not)."""
    prof = SPEC.with_(bcrc_covers_info=covers)
    for kind, layers in (
            ("Null", [("ub.lch", {"ctrl": 0, "sub_ctrl": 0}), ("ub.cb_rsvd", {})]),
            ("Crd_Ack", [("ub.lch_crd_ack", {"clength": 1, "ctrl": 2, "sub_ctrl": 4, "t": 1}),
                         ("ub.crd_ack", {"ack_num": 7, "crd_num": 5 << 6 * 15 | 9})])):
        raw = encode_layers(layers + [("ub.bcrc", {"error_flag": error_flag})], prof)
        rec = decode(raw, profile=prof)
        assert rec["fields"]["ub.bcrc.status"] == "good", (kind, rec["issues"])
        assert not [i for i in rec["issues"] if i["severity"] == "error"]
        # and the link side reads the same block the same way
        cb = C.parse_control(raw, covers_info=covers)
        assert cb.crc_ok is True and cb.kind == kind
        # the other reading rejects it (the information bits matter only when covered and set)
        other = decode(raw, profile=SPEC.with_(bcrc_covers_info=not covers))
        want = "good" if (block_crc(raw[:-4], error_flag, True)
                          == block_crc(raw[:-4], error_flag, False)) else "bad"
        assert other["fields"]["ub.bcrc.status"] == want


@pytest.mark.parametrize("covers", [True, False])
def test_builders_deframer_and_capture_decoder_agree(covers):
    prof = SPEC.with_(bcrc_covers_info=covers)
    blocks = [C.null(covers_info=covers), C.crd_ack(3, list(range(16)), covers_info=covers),
              C.InitParams().encode(covers_info=covers),
              C.param_exchg([1, 2, 3], covers_info=covers)]
    pkt = fill_plength(bytes((0, 0x26, 0, 0)) + bytes(range(200)))
    stream = b"".join(blocks) + frame_packet(pkt, covers_info=covers, error_flag=True)
    units = deframe(stream, controls=True, covers_info=covers)
    assert [u.kind for u in units] == ["control"] * 4 + ["packet"]
    assert all(u.control.crc_ok for u in units[:4])
    assert not [i for i in units[4].issues if i["field"] == "ub.bcrc.crc30"]
    for blk in blocks:
        assert decode(blk, profile=prof)["fields"]["ub.bcrc.status"] == "good"
    # a stream long enough for the vectorised check gives the same verdicts
    many = b"".join(blocks) * 4
    assert all(u.control.crc_ok for u in deframe(many, controls=True, covers_info=covers))
    bad = bytearray(many)
    bad[5] ^= 1
    oks = [u.control.crc_ok for u in deframe(bytes(bad), controls=True, covers_info=covers)]
    assert oks == [False] + [True] * 15
