"""Where BitMap[i] of the SAETPH sits in the bitmap bytes (UB 2.0 §6.2.3), per the profile's
``sack_bit_order``.

UB 2.0 §6.2.3 says only that BitMap[0] stands for RTPH.PSN.  The spec writes ``Field[i]`` for
bit i of a field counted from its least significant bit (TPOpcode[7] is the TPOpcode's top bit,
NPI[24:16] its high bits), and draws the BitMap as one field: so BitMap[0] is the least
significant bit of the bitmap read as one big-endian number, the last bit on the wire
(``field_lsb``, the reference profile).  ns-3-UB keeps bit i in byte i/8 counted from that
byte's least significant bit (``byte_lsb``).  ``msb_first`` puts BitMap[0] first on the wire
(the first bit of byte 0).
"""
from __future__ import annotations

__all__ = ["SACK_BIT_ORDERS", "bit_place", "sack_bitmap", "sack_offsets", "sack_psns"]

SACK_BIT_ORDERS = ("field_lsb", "byte_lsb", "msb_first")


def bit_place(i: int, nbytes: int, order: str) -> tuple[int, int]:
    """(byte index, bit value in that byte) of BitMap[i] in ``nbytes`` bitmap bytes."""
    if order == "field_lsb":
        return nbytes - 1 - i // 8, 1 << (i % 8)
    if order == "byte_lsb":
        return i // 8, 1 << (i % 8)
    if order == "msb_first":
        return i // 8, 0x80 >> (i % 8)
    raise ValueError(f"sack_bit_order {order!r}: one of {SACK_BIT_ORDERS}")


def sack_bitmap(offsets, nbits: int, order: str) -> bytes:
    """The bitmap of ``nbits`` bits with BitMap[i] set for each i of ``offsets`` below nbits."""
    out = bytearray(nbits // 8)
    for i in offsets:
        if 0 <= i < nbits:
            byte, bit = bit_place(i, len(out), order)
            out[byte] |= bit
    return bytes(out)


def sack_offsets(bitmap: bytes, order: str) -> list[int]:
    """The i of every BitMap[i] set, ascending."""
    nbits = 8 * len(bitmap)
    if order == "field_lsb":
        v = int.from_bytes(bitmap, "big")         # BitMap[i] is bit i of the number
    elif order == "byte_lsb":
        v = int.from_bytes(bitmap, "little")      # byte i/8, bit i%8: bit i of the number
    elif order == "msb_first":
        v = int(format(int.from_bytes(bitmap, "big"), f"0{nbits}b")[::-1], 2) if nbits else 0
    else:
        raise ValueError(f"sack_bit_order {order!r}: one of {SACK_BIT_ORDERS}")
    out = []
    while v:
        low = v & -v
        out.append(low.bit_length() - 1)
        v ^= low
    return out


def sack_psns(bitmap: bytes, psn: int, order: str) -> list[int]:
    """The PSNs a TPSACK reports received: RTPH.PSN + i for every BitMap[i] set (24-bit)."""
    return [(psn + i) & 0xFFFFFF for i in sack_offsets(bitmap, order)]
