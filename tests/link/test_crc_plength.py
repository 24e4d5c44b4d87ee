import random

import numpy as np
import pytest

from ubpkt.link import crc30
from ubpkt.link.crc30 import INIT, MASK, POLY, bcrc_crc30, crc30_batch, crc30_bits
from ubpkt.link.plength import MAX_PACKET, layout, packet_length, plength


def crc30_bitwise(data: bytes, info=None) -> int:
    """Independent reference: one bit at a time, MSB first, straight from the definition."""
    bits = [(b >> (7 - i)) & 1 for b in data for i in range(8)]
    if info is not None:
        bits += [(info >> 1) & 1, info & 1]
    reg = [1] * 30                      # reg[0] = x^29 coefficient
    taps = [i for i in range(30) if (POLY >> i) & 1]
    for bit in bits:
        fb = reg[0] ^ bit
        reg = reg[1:] + [0]
        if fb:
            for t in taps:
                reg[29 - t] ^= 1
    return int("".join(map(str, reg)), 2)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100, 636])
def test_crc30_against_bitwise(n):
    data = random.Random(n).randbytes(n)
    assert crc30(data) == crc30_bitwise(data)
    for info in range(4):
        assert bcrc_crc30(data, info) == crc30_bitwise(data, info)
    assert bcrc_crc30(data, None) == crc30(data)


def test_crc30_constants():
    assert POLY == 0x15A94AD5 and INIT == MASK == (1 << 30) - 1
    assert crc30(b"") == INIT
    assert crc30_bits(INIT, 0, 0) == INIT


def test_crc30_batch_matches_scalar():
    rng = np.random.default_rng(5)
    for length in (0, 1, 16, 36, 636):
        rows = rng.integers(0, 256, size=(17, length), dtype=np.uint8)
        info = rng.integers(0, 4, size=17)
        got = crc30_batch(rows, info)
        want = [bcrc_crc30(bytes(r), int(i)) for r, i in zip(rows, info)]
        assert [int(x) for x in got] == want
        assert [int(x) for x in crc30_batch(rows)] == [crc30(bytes(r)) for r in rows]


def test_plength_spec_examples():
    # Fig 4-7: last block, 16 payload bytes in its LBH flit -> ends in the second-to-last flit
    assert layout(4 + 632 + 16).tail == 27
    # Fig 4-8: one block, 10 payload bytes in the last flit
    assert layout(4 + 16 + 10).tail == 9
    assert plength(30) == 0x29                 # LPH bytes 00 06 00 29
    assert plength(52) == 0x4B
    # Fig 4-9: last block, 14 payload bytes in its last flit
    assert layout(4 + 632 + 18 + 14).tail == 13


@pytest.mark.parametrize("crc_mode", [True, False])
def test_plength_bijection(crc_mode):
    seen = set()
    for n in range(5, MAX_PACKET[crc_mode] + 1):
        v = plength(n, crc_mode)
        assert packet_length(v, crc_mode) == n
        seen.add(v)
    valid = {v for v in range(1 << 14) if packet_length(v, crc_mode) is not None}
    assert valid == seen
    assert MAX_PACKET == {True: 10146, False: 10209}


def test_noncrc_empty_last_block():
    # the payload fills whole non-last blocks: one-flit last block, PLENGTH[4:0] = 19
    for n in (640, 1278, 1916):
        lay = layout(n, False)
        assert lay.last_flits == 1 and lay.tail == 19 and lay.block_payload[-1] == 0
        assert packet_length(lay.plength, False) == n
    with pytest.raises(ValueError):
        layout(4)
    with pytest.raises(ValueError):
        layout(10147)
    assert packet_length(layout(640, False).plength, True) is None


def test_crc30_large_inputs_use_the_same_register():
    from ubpkt.link.crc30 import _crc30_small
    rng = random.Random(9)
    for n in (8191, 8192, 8193, 50000):
        data = rng.randbytes(n)
        assert crc30(data) == _crc30_small(INIT, data)
    assert crc30(b"\x00" * 20000) == _crc30_small(INIT, b"\x00" * 20000)
