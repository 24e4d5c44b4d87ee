"""The invariant CRC of a UB network packet (UB 2.0 §5.3.7).

Standard reflected CRC-32 (zlib's), computed with the fields that change hop by hop masked to all
ones: NTH CCI and LBF; IPv4 ToS, TTL and header checksum; IPv6 traffic class, flow label and hop
limit; the UDP checksum.  Coverage starts at the IP header (CFG 3/4 and UBoE) or at the NTH
(CFG 6/7: byte 4, the LPH is never covered); CFG 9 packets carry none.
"""
from __future__ import annotations

import zlib

__all__ = ["icrc", "masks_for_cna16", "masks_for_cna24", "masks_for_ip"]


def masks_for_cna16(nth: int) -> list[tuple[int, int, int]]:
    """(offset, length, or-mask of the first byte) of the masked parts of a CNA16 NTH."""
    return [(nth + 4, 2, 0xFF), (nth + 6, 1, 0xFF)]


def masks_for_cna24(nth: int) -> list[tuple[int, int, int]]:
    return [(nth + 6, 2, 0xFF), (nth + 8, 1, 0xFF)]


def masks_for_ip(ip: int, version: int, udp: int | None) -> list[tuple[int, int, int]]:
    if version == 4:
        m = [(ip + 1, 1, 0xFF), (ip + 8, 1, 0xFF), (ip + 10, 2, 0xFF)]
    else:
        # traffic class and flow label: the low nibble of byte 0 and bytes 1..3; hop limit
        m = [(ip, 1, 0x0F), (ip + 1, 3, 0xFF), (ip + 7, 1, 0xFF)]
    if udp is not None:
        m.append((udp + 6, 2, 0xFF))
    return m


def icrc(buf, start: int, end: int, masks) -> int:
    """CRC-32 of ``buf[start:end]`` with the mask regions set to ones (absolute offsets)."""
    mv = memoryview(buf)
    crc = 0
    pos = start
    crc32 = zlib.crc32
    for off, n, first in sorted(masks):
        if off < pos or off >= end:
            continue
        n = min(n, end - off)
        crc = crc32(mv[pos:off], crc)
        if first == 0xFF:
            crc = crc32(_ONES[n], crc)
        else:
            crc = crc32(bytes([buf[off] | first]) + _ONES[n - 1], crc)
        pos = off + n
    return crc32(mv[pos:end], crc) & 0xFFFFFFFF


_ONES = [b"\xff" * i for i in range(17)]
