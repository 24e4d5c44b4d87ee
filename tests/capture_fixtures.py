"""Capture files built by hand for the capture tests, with their byte layouts spelt out.

classic pcap (little-endian here unless said)::

    file header, 24 bytes: magic u32 (a1b2c3d4 us / a1b23c4d ns), version 2.4 (u16 u16),
    thiszone i32, sigfigs u32, snaplen u32, linktype u32
    record header, 16 bytes: ts_sec u32, ts_frac u32, caplen u32, origlen u32; then caplen bytes

pcapng: blocks ``type u32, total length u32, body (padded to 4), total length u32``::

    SHB (0x0a0d0d0a): byte-order magic 1a2b3c4d, version 1.0, section length i64 (-1)
    IDB (1): linktype u16, reserved u16, snaplen u32, options (if_tsresol = code 9, 1 byte)
    EPB (6): interface id u32, ts high u32, ts low u32, caplen u32, origlen u32, data

Linux cooked headers in front of the IP packet (big-endian fields)::

    SLL  (113, 16 bytes): pkttype u16, ARPHRD u16, addr len u16, addr 8 bytes, EtherType u16
    SLL2 (276, 20 bytes): EtherType u16, reserved u16, ifindex u32, ARPHRD u16, pkttype u8,
                          addr len u8, addr 8 bytes
"""
from __future__ import annotations

import struct
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "captures" / "uboe_transactions.pcap"


def pcap(records, linktype: int = 1, nano: bool = True, endian: str = "<",
         snaplen: int = 262144) -> bytes:
    """``records``: (sec, frac, data) or (sec, frac, data, caplen_override)."""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for r in records:
        sec, frac, data = r[:3]
        incl = r[3] if len(r) > 3 else len(data)
        out.append(struct.pack(endian + "IIII", sec, frac, incl, len(data)) + data)
    return b"".join(out)


def block(btype: int, body: bytes, total: int | None = None, trailer: int | None = None,
          endian: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return (struct.pack(endian + "II", btype, n if total is None else total) + body
            + struct.pack(endian + "I", n if trailer is None else trailer))


def shb(endian: str = "<", bom: int = 0x1A2B3C4D) -> bytes:
    return block(0x0A0D0D0A, struct.pack(endian + "IHHq", bom, 1, 0, -1), endian=endian)


def idb(linktype: int, tsresol: int | None = None, endian: str = "<") -> bytes:
    body = struct.pack(endian + "HHI", linktype, 0, 262144)
    if tsresol is not None:
        body += struct.pack(endian + "HHB3x", 9, 1, tsresol) + struct.pack(endian + "HH", 0, 0)
    return block(1, body, endian=endian)


def epb(ifid: int, ts: int, data: bytes, endian: str = "<", caplen: int | None = None) -> bytes:
    return block(6, struct.pack(endian + "IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF,
                                len(data) if caplen is None else caplen, len(data)) + data,
                 endian=endian)


def sample_frames() -> list[tuple[int, bytes]]:
    """(time_ns, Ethernet frame) of the bundled UBoE capture's IPv4/IPv6 frames."""
    from ubpkt.capture import open_capture
    with open_capture(SAMPLE) as cap:
        return [(p.time_ns, p.data) for p in cap if p.data[12:14] in (b"\x08\x00", b"\x86\xdd")]


def cooked(frame: bytes, version: int) -> bytes:
    """The Ethernet frame as ``tcpdump -i any`` writes it: SLL (1) or SLL2 (2)."""
    src, etype = frame[6:12] + b"\0\0", frame[12:14]
    if version == 1:
        return struct.pack(">HHH", 0, 1, 6) + src + etype + frame[14:]
    return etype + struct.pack(">HIHBB", 0, 2, 1, 4, 6) + src + frame[14:]
