"""PLENGTH of the LPH: where a data-link packet's payload ends (UB 2.0 §4.3.2.2 Table 4-1).

PLENGTH[13:10] = DLLDBs - 1, PLENGTH[9:5] = flits of the last DLLDB - 1, PLENGTH[4:0] = how many
payload bytes the flit holding the payload's end carries, and whether that is the last or the
second-to-last flit.  "Payload" is what follows the LPH (first block) or LBH (later blocks).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

FLIT = 20
MAX_FLITS = 32
MAX_BLOCKS = 16
LPH_LEN = 4
LBH_LEN = 2
BCRC_LEN = 4
#: The largest network packet (LPH included): 4 + 632 + 15 x 634 (CRC mode), 4 + 636 + 14 x 638
#: + 637 (non-CRC mode, END at byte 19 of the last flit only).
MAX_PACKET = {True: 10146, False: 10209}


@dataclass(frozen=True)
class Layout:
    blocks: int              # number of DLLDBs
    last_flits: int          # flits in the last DLLDB
    tail: int                # PLENGTH[4:0]
    block_payload: tuple     # payload bytes carried by each block

    @property
    def plength(self) -> int:
        return ((self.blocks - 1) << 10) | ((self.last_flits - 1) << 5) | self.tail


def _block_capacity(first: bool, last: bool, crc_mode: bool) -> int:
    header = LPH_LEN if first else LBH_LEN
    if crc_mode:
        return MAX_FLITS * FLIT - header - BCRC_LEN
    return MAX_FLITS * FLIT - header - (1 if last else 0)


@functools.lru_cache(maxsize=32768)      # a pure function of two small values; Layout is frozen
def layout(packet_len: int, crc_mode: bool = True) -> Layout:
    """How a network packet of ``packet_len`` bytes (LPH included) is cut into DLLDBs."""
    if packet_len < LPH_LEN + 1 or packet_len > MAX_PACKET[crc_mode]:
        raise ValueError(f"packet of {packet_len} bytes cannot be framed "
                         f"(5..{MAX_PACKET[crc_mode]} in {'CRC' if crc_mode else 'non-CRC'} mode)")
    remaining = packet_len - LPH_LEN
    sizes = []
    first = True
    while True:
        cap_last = _block_capacity(first, True, crc_mode)
        if remaining <= cap_last:
            sizes.append(remaining)
            break
        cap = _block_capacity(first, False, crc_mode)
        sizes.append(cap)
        remaining -= cap
        first = False
        if remaining == 0:
            # Non-CRC mode only: the payload exactly fills the non-last blocks.  The last block
            # is then one flit (LBH + END) without payload, and PLENGTH[4:0] points at the
            # second-to-last flit *of the DLLDP* (the previous block's full last flit, 20
            # payload bytes: rule 2, value 19).  Table 4-1 counts that flit over the DLLDP
            # (UB 2.0 §4.3.2.2.2) (the only reading that gives those sizes a valid PLENGTH).
            sizes.append(0)
            return Layout(len(sizes), 1, 19, tuple(sizes))
    header = LPH_LEN if len(sizes) == 1 else LBH_LEN
    used = header + sizes[-1]                       # bytes of the last block before its trailer
    trailer_room = FLIT - 16 if crc_mode else 1     # BCRC at bytes 16..19, END at byte 19
    flits = -(-(used + trailer_room) // FLIT)
    end_flit = (used - 1) // FLIT                   # flit holding the payload's last byte
    in_flit = used - end_flit * FLIT - (header if end_flit == 0 else 0)
    if end_flit == flits - 1:
        tail = in_flit - 1 if in_flit <= 16 else in_flit + 11
    else:
        # payload ends in the second-to-last flit, too full for the trailer
        tail = in_flit + 11 if in_flit <= 16 else in_flit - 1
    return Layout(len(sizes), flits, tail, tuple(sizes))


def plength(packet_len: int, crc_mode: bool = True) -> int:
    """The 14-bit PLENGTH value for a network packet of ``packet_len`` bytes."""
    return layout(packet_len, crc_mode).plength


def plength_blocks(plength_value: int) -> int:
    """DLLDBs of the packet, PLENGTH[13:10] + 1 (the record's ``ub.lph.blocks``)."""
    return (plength_value >> 10) + 1


def plength_last_flits(plength_value: int) -> int:
    """Flits of its last DLLDB, PLENGTH[9:5] + 1 (the record's ``ub.lph.last_flits``)."""
    return ((plength_value >> 5) & 0x1F) + 1


@functools.lru_cache(maxsize=32768)      # pure, 2 x 16384 possible arguments
def packet_length(plength_value: int, crc_mode: bool = True) -> int | None:
    """Network packet length (LPH included) that a PLENGTH value describes; None if reserved."""
    blocks = (plength_value >> 10) + 1
    flits = ((plength_value >> 5) & 0x1F) + 1
    tail = plength_value & 0x1F
    if crc_mode:
        if tail <= 15:
            where, count = 0, tail + 1
        elif 16 <= tail <= 19:
            where, count = 1, tail + 1
        elif 24 <= tail <= 27:
            where, count = 1, tail - 11
        else:
            return None
    else:
        if tail <= 15:
            where, count = 0, tail + 1
        elif tail in (17, 19):
            where, count = 1, tail + 1
        elif tail == 27:
            where, count = 1, 16
        elif 28 <= tail <= 30:
            where, count = 0, tail - 11
        else:
            return None
    end_flit = flits - 1 - where
    header = LPH_LEN if blocks == 1 else LBH_LEN
    total = LPH_LEN
    first = True
    for _ in range(blocks - 1):
        total += _block_capacity(first, False, crc_mode)
        first = False
    if end_flit < 0:
        # the payload ends in the previous block's last flit (non-CRC mode, empty last block)
        if crc_mode or blocks == 1 or count != FLIT:
            return None
        return total
    last_payload = end_flit * FLIT + count - (header if end_flit else 0)
    if last_payload <= 0:
        return None
    total += last_payload
    try:
        if layout(total, crc_mode).plength != plength_value:
            return None
    except ValueError:
        return None
    return total
