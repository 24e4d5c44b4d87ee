"""PLENGTH (Table 4-1) and CRC30 (§4.7.2) as used by the packet codecs."""
import pytest

from ubpkt.link.crc30 import POLY, crc30
from ubpkt.link.plength import MAX_PACKET, layout, packet_length, plength


def test_spec_plength_examples():
    # Fig 4-7: 16 payload bytes in an LBH flit (second-to-last flit) -> 27
    assert layout(4 + 632 + 16).tail == 27
    # Fig 4-8: 10 bytes in the last flit -> 9 ; Fig 4-9: 14 bytes in the last flit -> 13
    assert layout(30).tail == 9 and layout(30).plength == 0x29
    assert layout(4 + 16 + 14).tail == 13


@pytest.mark.parametrize("crc_mode", [True, False])
def test_plength_inverse_for_every_size(crc_mode):
    for n in range(5, MAX_PACKET[crc_mode] + 1):
        try:
            p = plength(n, crc_mode)
        except ValueError:
            assert not crc_mode
            continue
        assert packet_length(p, crc_mode) == n


def test_largest_packets():
    assert layout(10146).blocks == 16 and layout(10146).last_flits == 32
    with pytest.raises(ValueError):
        layout(10147)


def _crc30_bitwise(data: bytes) -> int:
    reg = (1 << 30) - 1
    for byte in data:
        for i in range(7, -1, -1):
            fb = ((reg >> 29) & 1) ^ ((byte >> i) & 1)
            reg = (reg << 1) & ((1 << 30) - 1)
            if fb:
                reg ^= POLY
    return reg


def test_crc30_matches_bitwise_reference():
    for data in (b"", b"\x00", b"123456789", bytes(range(256)), b"\xff" * 40):
        assert crc30(data) == _crc30_bitwise(data)
