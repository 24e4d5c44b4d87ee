"""Streaming pcap / pcapng reader and a pcap writer.

Files are read in large chunks and records are cut from a memoryview, so memory stays constant
whatever the file size.  Link types: 1 Ethernet (UBoE), 147 ns-3-UB (LINKTYPE_USER0), 148 raw UB
network packets from the LPH and 149 flit streams (ubpkt's reference-profile use of USER1/USER2).
"""
from __future__ import annotations

import io
import struct
from typing import BinaryIO, Iterator

from ..errors import CaptureError
from ..record import LINKTYPE_ETHERNET, LINKTYPE_FLITS, LINKTYPE_NS3, LINKTYPE_UB

_CHUNK = 1 << 22
_MAX_RECORD = 1 << 26   # a larger record length means a damaged file


class Packet:
    __slots__ = ("time_ns", "data", "orig_len", "linktype")

    def __init__(self, time_ns: int, data: bytes, orig_len: int, linktype: int):
        self.time_ns = time_ns
        self.data = data
        self.orig_len = orig_len
        self.linktype = linktype

    @property
    def time(self) -> float:
        return self.time_ns / 1e9

    def __repr__(self) -> str:
        return f"<Packet t={self.time_ns}ns len={len(self.data)}/{self.orig_len}>"


class _Chunked:
    """Reads a stream in large chunks and hands out exact byte runs."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.buf = b""
        self.pos = 0

    def read(self, n: int) -> bytes | None:
        if self.pos + n > len(self.buf):
            rest = self.buf[self.pos:]
            more = self.fh.read(max(_CHUNK, n - len(rest)))
            self.buf = rest + more
            self.pos = 0
            if n > len(self.buf):
                return None
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out


class Capture:
    """An open capture: iterate it for :class:`Packet` objects."""

    def __init__(self, fh: BinaryIO, close: bool):
        self._fh = fh
        self._close = close
        self._src = _Chunked(fh)
        head = self._src.read(4)
        if head is None or len(head) < 4:
            raise CaptureError("file too short for a capture header")
        self.truncated = False
        if head == b"\x0a\x0d\x0d\x0a":
            self.format = "pcapng"
            self._interfaces: list[tuple[int, int]] = []
            self._iter = self._pcapng(head)
            self.linktype = None
            self._first = None
            # read ahead to learn the first interface's link type
            try:
                self._first = next(self._iter)
            except StopIteration:
                self._first = None
            self.linktype = (self._interfaces[0][0] if self._interfaces else LINKTYPE_ETHERNET)
            return
        magic = head
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            self._endian = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            self._endian = ">"
        else:
            raise CaptureError("not a pcap or pcapng file")
        self.format = "pcap"
        self._nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        rest = self._src.read(20)
        if rest is None:
            raise CaptureError("truncated pcap header")
        _vmaj, _vmin, _tz, _sig, self.snaplen, linktype = struct.unpack(self._endian + "HHiIII",
                                                                        rest)
        self.linktype = linktype & 0x0FFFFFFF
        self._first = None
        self._iter = self._pcap()

    def __iter__(self) -> Iterator[Packet]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._iter

    def _pcap(self) -> Iterator[Packet]:
        unpack = struct.Struct(self._endian + "IIII").unpack_from
        scale = 1 if self._nano else 1000
        lt = self.linktype
        src = self._src
        fh = src.fh
        buf = src.buf
        pos = src.pos
        incl = 0
        while True:
            end = len(buf)
            # records wholly inside the buffer: cut them without further reads
            while pos + 16 <= end:
                sec, frac, incl, orig = unpack(buf, pos)
                if incl > _MAX_RECORD:
                    self.truncated = True
                    return
                stop = pos + 16 + incl
                if stop > end:
                    break
                yield Packet(sec * 1_000_000_000 + frac * scale, buf[pos + 16:stop], orig, lt)
                pos = stop
            more = fh.read(max(_CHUNK, 16 + (incl if pos + 16 <= end else 0)))
            if not more:
                if pos < end:
                    self.truncated = True
                return
            buf = buf[pos:] + more
            pos = 0

    def _pcapng(self, head: bytes) -> Iterator[Packet]:
        read = self._src.read
        first = True
        endian = "<"
        while True:
            if first:
                btype_raw = head
                first = False
            else:
                btype_raw = read(4)
                if btype_raw is None or len(btype_raw) < 4:
                    return
            ln_raw = read(4)
            if ln_raw is None:
                self.truncated = True
                return
            if btype_raw == b"\x0a\x0d\x0d\x0a":
                bom = read(4)
                if bom is None:
                    self.truncated = True
                    return
                endian = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
                (blen,) = struct.unpack(endian + "I", ln_raw)
                if blen < 28 or read(blen - 12) is None:
                    self.truncated = True
                    return
                self._interfaces = []
                continue
            (btype,) = struct.unpack(endian + "I", btype_raw)
            (blen,) = struct.unpack(endian + "I", ln_raw)
            if blen < 12 or blen % 4:
                raise CaptureError(f"bad pcapng block length {blen}")
            body = read(blen - 8)
            if body is None:
                self.truncated = True
                return
            body = body[:-4]
            if btype == 1:  # interface description
                linktype, _, _snap = struct.unpack(endian + "HHI", body[:8])
                resol = 1000  # microseconds by default
                opts = body[8:]
                o = 0
                while o + 4 <= len(opts):
                    code, olen = struct.unpack(endian + "HH", opts[o:o + 4])
                    if code == 0:
                        break
                    if code == 9 and olen >= 1:
                        v = opts[o + 4]
                        if v & 0x80:
                            resol = None if (v & 0x7F) > 30 else 1e9 / (2 ** (v & 0x7F))
                        else:
                            resol = 10 ** (9 - v) if v <= 9 else 10 ** (9 - v)
                    o += 4 + ((olen + 3) & ~3)
                self._interfaces.append((linktype, resol or 1000))
            elif btype == 6:  # enhanced packet
                ifid, hi, lo, incl, orig = struct.unpack(endian + "IIIII", body[:20])
                lt, resol = self._interfaces[ifid] if ifid < len(self._interfaces) else (
                    LINKTYPE_ETHERNET, 1000)
                ts = (hi << 32) | lo
                yield Packet(int(ts * resol), body[20:20 + incl], orig, lt)
            elif btype == 3:  # simple packet
                (orig,) = struct.unpack(endian + "I", body[:4])
                lt = self._interfaces[0][0] if self._interfaces else LINKTYPE_ETHERNET
                yield Packet(0, body[4:4 + orig], orig, lt)
            elif btype == 2:  # obsolete packet block
                ifid, _drops, hi, lo, incl, orig = struct.unpack(endian + "HHIIII", body[:20])
                lt, resol = self._interfaces[ifid] if ifid < len(self._interfaces) else (
                    LINKTYPE_ETHERNET, 1000)
                yield Packet(int(((hi << 32) | lo) * resol), body[20:20 + incl], orig, lt)

    def close(self) -> None:
        if self._close:
            self._fh.close()

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_capture(path_or_file) -> Capture:
    """Open a pcap or pcapng file (path or binary file object) for streaming."""
    if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__"):
        fh = open(path_or_file, "rb")
        try:
            return Capture(fh, close=True)
        except Exception:
            fh.close()
            raise
    return Capture(path_or_file, close=False)


class PcapWriter:
    """Writes classic pcap (nanosecond timestamps unless ``nanosecond=False``)."""

    def __init__(self, path_or_file, linktype: int, nanosecond: bool = True,
                 snaplen: int = 262144):
        if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__"):
            self._fh = open(path_or_file, "wb")
            self._close = True
        else:
            self._fh = path_or_file
            self._close = False
        self._fh = self._fh if not isinstance(self._fh, io.TextIOBase) else self._fh.buffer
        self.nanosecond = nanosecond
        magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
        self._fh.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self._rec = struct.Struct("<IIII")

    def write(self, data: bytes, time_ns: int = 0, orig_len: int | None = None) -> None:
        sec, rem = divmod(int(time_ns), 1_000_000_000)
        frac = rem if self.nanosecond else rem // 1000
        self._fh.write(self._rec.pack(sec, frac, len(data),
                                      len(data) if orig_len is None else orig_len))
        self._fh.write(data)

    def close(self) -> None:
        if self._close:
            self._fh.close()
        else:
            self._fh.flush()

    def __enter__(self) -> "PcapWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
