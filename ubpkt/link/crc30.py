"""CRC30 of the data-link block CRC (UB 2.0 §4.7.2).

Polynomial x^30+x^28+x^26+x^24+x^23+x^21+x^19+x^16+x^14+x^11+x^9+x^7+x^6+x^4+x^2+1 (0x15A94AD5
without the x^30 term), register preset to all ones, bits taken most significant first, no
reflection and no final inversion.
"""
from __future__ import annotations

POLY = 0x15A94AD5
WIDTH = 30
MASK = (1 << WIDTH) - 1
INIT = MASK


def _make_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i << (WIDTH - 8)
        for _ in range(8):
            c = ((c << 1) ^ POLY) & MASK if c & (1 << (WIDTH - 1)) else (c << 1) & MASK
        table.append(c)
    return tuple(table)


_TABLE = _make_table()


def crc30_update(crc: int, data) -> int:
    """Feed whole bytes (MSB first) into a running CRC30 register."""
    table = _TABLE
    for b in data:
        crc = ((crc << 8) & MASK) ^ table[((crc >> (WIDTH - 8)) ^ b) & 0xFF]
    return crc


def crc30_bits(crc: int, value: int, nbits: int) -> int:
    """Feed ``nbits`` bits of ``value`` (most significant first) into the register."""
    for i in range(nbits - 1, -1, -1):
        fb = ((crc >> (WIDTH - 1)) ^ (value >> i)) & 1
        crc = (crc << 1) & MASK
        if fb:
            crc ^= POLY
    return crc


def crc30(data: bytes) -> int:
    """CRC30 over whole bytes, MSB first, register preset to all ones."""
    return crc30_update(INIT, data)


def bcrc_crc30(block_without_bcrc: bytes, info_bits: int) -> int:
    """The CRC30 a BCRC carries: over every byte of the block before the BCRC field, then the
    two information bits of BCRC byte 0 (reserved bit 7, ERROR_FLAG bit 6), which precede the
    CRC30 on the wire (UB 2.0 §4.7.2; how ubpkt reads it: reference profile ``bcrc_covers_info``).
    """
    return crc30_bits(crc30(block_without_bcrc), info_bits & 0b11, 2)
