"""A pcapng writer that keeps what a pcapng reader learnt: every interface's link type, snap
length and time resolution (``if_tsresol``), and each packet's interface.

Timestamps go in as integer nanoseconds and out in the interface's unit, rounded up: a packet
read with :func:`ubpkt.capture.open_capture` (which rounds down to nanoseconds) is written back
with its original timestamp for every resolution of a nanosecond or coarser.  pcapng timestamps
are 64-bit, so times of 2^32 s and later are written exactly (classic pcap cannot hold them).
"""
from __future__ import annotations

import io
import struct

from ..errors import CaptureError
from .pcap import Interface

__all__ = ["PcapngWriter"]


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _idb(i: Interface) -> bytes:
    """An interface description block: link type, snap length, if_tsresol when not the
    default microseconds."""
    body = struct.pack("<HHI", i.linktype, 0, i.snaplen)
    if i.tsresol is not None:
        body += struct.pack("<HHB3x", 9, 1, i.tsresol) + struct.pack("<HH", 0, 0)
    return _block(1, body)


class PcapngWriter:
    """Writes a little-endian pcapng section with ``interfaces``
    (:class:`ubpkt.capture.pcap.Interface`, or bare link types for microsecond interfaces)."""

    def __init__(self, path_or_file, interfaces):
        if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__"):
            self._fh = open(path_or_file, "wb")
            self._close = True
        else:
            self._fh = path_or_file
            self._close = False
        if isinstance(self._fh, io.TextIOBase):
            self._fh = self._fh.buffer
        self.interfaces = [i if isinstance(i, Interface) else Interface(int(i), 262144, None,
                                                                         10 ** 6)
                           for i in interfaces]
        if not self.interfaces:
            raise CaptureError("a pcapng file needs at least one interface")
        out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))]
        out += [_idb(i) for i in self.interfaces]
        self._fh.write(b"".join(out))

    def add_interface(self, interface: Interface) -> int:
        """Describe one more interface (its block goes out now, before any packet that names
        it, as pcapng allows anywhere in a section); its index for :meth:`write`."""
        self.interfaces.append(interface)
        self._fh.write(_idb(interface))
        return len(self.interfaces) - 1

    def write(self, data: bytes, time_ns: int = 0, orig_len: int | None = None,
              iface: int = 0) -> None:
        if not 0 <= iface < len(self.interfaces):
            raise CaptureError(f"interface {iface} is not one of the "
                               f"{len(self.interfaces)} this file describes")
        units = self.interfaces[iface].units_per_second
        ts = -(-int(time_ns) * units // 1_000_000_000)
        if not 0 <= ts < 1 << 64:
            raise CaptureError(f"timestamp {int(time_ns)} ns does not fit a pcapng timestamp")
        self._fh.write(_block(6, struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF,
                                             len(data),
                                             len(data) if orig_len is None else orig_len)
                              + bytes(data)))

    def close(self) -> None:
        if self._close:
            self._fh.close()
        else:
            self._fh.flush()

    def __enter__(self) -> "PcapngWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
