"""Streaming pcap / pcapng reader and a pcap writer.

Files are read in large chunks and records are cut from a memoryview, so memory stays constant
whatever the file size.  Link types: 1 Ethernet (UBoE), 113/276 Linux cooked captures (SLL,
SLL2: ``tcpdump -i any``), 101/228/229 raw IP, 147 ns-3-UB (LINKTYPE_USER0), 148 raw UB network
packets from the LPH and 151 flit streams (ubpkt's reference-profile use of USER1/USER4; 149,
USER2, the flit streams of earlier ubpkt versions, is still read: ``record.FLIT_LINKTYPES``).
A gzip-compressed capture is read as it is (what ``tcpdump -w - | gzip`` and Wireshark's
"compress with gzip" write); ``-`` reads standard input.

A damaged file never raises past its header: each problem becomes a :class:`CaptureProblem`
(record or block number, byte offset, what is wrong) in :attr:`Capture.problems`; the records
before a fatal one are all delivered, then the iteration stops (``Capture.truncated``).  Every
length is bounded by :data:`MAX_RECORD_BYTES` and by what the file holds, so no damaged length
can size an allocation.
"""
from __future__ import annotations

import gzip
import io
import struct
import sys
from typing import BinaryIO, Iterator, NamedTuple

from ..errors import CaptureError
from ..record import LINKTYPE_ETHERNET, LINKTYPE_FLITS, LINKTYPE_NS3, LINKTYPE_UB  # noqa: F401

_CHUNK = 1 << 22
#: The largest record (pcap captured length, pcapng block) accepted: a larger one means a damaged
#: file.  UB packets are at most a few KiB and jumbo frames 9 KiB; tshark's own limit is 256 KiB
#: for most link types.  ubpkt keeps 64 MiB so that flit-stream records of whole bursts fit.
MAX_RECORD_BYTES = 1 << 26
_MAX_RECORD = MAX_RECORD_BYTES  # the name the fast paths import
#: How many problems a capture keeps in full (the rest are only counted, :attr:`Capture.problem_count`).
MAX_PROBLEMS_KEPT = 100

GZIP_MAGIC = b"\x1f\x8b"
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"


class CaptureProblem(NamedTuple):
    """What is wrong with a capture and where: ``unit`` is ``record`` (pcap) or ``block``
    (pcapng), ``number`` counts those units from 1, ``offset`` is the byte offset of the unit in
    the (uncompressed) file; ``fatal``: the reader could not go on after it."""
    unit: str
    number: int
    offset: int
    message: str
    fatal: bool

    def __str__(self) -> str:
        return f"{self.unit} {self.number} at byte offset {self.offset}: {self.message}"


class Interface(NamedTuple):
    """A pcapng interface (or the single link of a classic pcap): link type, snap length, the
    raw ``if_tsresol`` option byte (None: absent, microseconds) and the time unit as
    ``units_per_second``."""
    linktype: int
    snaplen: int
    tsresol: int | None
    units_per_second: int


def units_per_second(tsresol: int | None) -> int:
    """pcapng ``if_tsresol``: high bit clear, a power of ten; set, a power of two (default
    microseconds).  An integer, so that timestamps stay exact integer nanoseconds."""
    if tsresol is None:
        return 1_000_000
    return 2 ** (tsresol & 0x7F) if tsresol & 0x80 else 10 ** tsresol


class Packet:
    __slots__ = ("time_ns", "data", "orig_len", "linktype", "iface")

    def __init__(self, time_ns: int, data: bytes, orig_len: int, linktype: int, iface: int = 0):
        self.time_ns = time_ns
        self.data = data
        self.orig_len = orig_len
        self.linktype = linktype
        self.iface = iface

    @property
    def time(self) -> float:
        return self.time_ns / 1e9

    def __repr__(self) -> str:
        return f"<Packet t={self.time_ns}ns len={len(self.data)}/{self.orig_len}>"


class _Chunked:
    """Reads a stream in large chunks and hands out exact byte runs; ``offset`` is the absolute
    position of the next byte handed out."""

    def __init__(self, fh: BinaryIO):
        self.fh = fh
        self.buf = b""
        self.pos = 0
        self.base = 0      # file offset of buf[0]

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def read(self, n: int) -> bytes | None:
        if self.pos + n > len(self.buf):
            rest = self.buf[self.pos:]
            more = self.fh.read(max(_CHUNK, n - len(rest)))
            self.base += self.pos
            self.buf = rest + more
            self.pos = 0
            if n > len(self.buf):
                return None
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def left(self) -> int:
        """Bytes still buffered (after a failed read: what the file had left)."""
        return len(self.buf) - self.pos


def pcap_record_problem(incl: int, frac: int, nano: bool) -> tuple[str, bool] | None:
    """What is wrong with a classic pcap record header (message, fatal), or None."""
    if incl > MAX_RECORD_BYTES:
        return (f"captured length {incl} is larger than the maximum of {MAX_RECORD_BYTES} "
                "bytes (damaged record header)", True)
    limit = 1_000_000_000 if nano else 1_000_000
    if frac >= limit:
        unit = "nanosecond" if nano else "microsecond"
        return (f"{unit} fraction {frac} is not below {limit} (timestamp taken as given)", False)
    return None


def pcap_tail_problem(rest, endian: str, left: int | None = None) -> str:
    """Why the bytes after the last whole pcap record are not a record: ``rest`` holds them (at
    least the record header); ``left``: how many bytes follow the header (default: the rest of
    ``rest``)."""
    if len(rest) < 16:
        return f"the file ends inside the record header ({len(rest)} of 16 bytes)"
    incl = struct.unpack_from(endian + "I", rest, 8)[0]
    left = len(rest) - 16 if left is None else left
    return f"the file ends inside the record: captured length {incl}, {left} bytes left"


def pcap_refill(cap, fh, buf, pos: int, base: int, need: int, n: int):
    """The read buffer of a classic-pcap hot loop once the records before ``pos`` are cut:
    ``(buf[pos:] + the next read of at least need bytes, file offset of its first byte)``;
    None at the end of the file, the bytes left there (a ragged tail) reported as record
    ``n + 1``'s problem on ``cap`` (the checks of :meth:`Capture._pcap`)."""
    more = fh.read(max(1 << 22, need))
    if not more:
        if pos < len(buf):
            cap.problem("record", n + 1, base + pos, pcap_tail_problem(buf[pos:], cap._endian),
                        True)
        return None
    return buf[pos:] + more, base + pos


class Capture:
    """An open capture: iterate it for :class:`Packet` objects."""

    def __init__(self, fh: BinaryIO, close: bool, raw: BinaryIO | None = None):
        self._fh = fh
        self._raw = raw if raw is not None else fh   # for progress: position in the file itself
        self._close = close
        self._src = _Chunked(fh)
        self.problems: list[CaptureProblem] = []
        self.problem_count = 0
        self.truncated = False
        self.interfaces: list[Interface] = []
        self.compressed = False
        head = self._src.read(4)
        if head is None or len(head) < 4:
            raise CaptureError("file too short for a capture header")
        if head == PCAPNG_SHB:
            self.format = "pcapng"
            self._iter = self._pcapng(head)
            self.linktype = None
            self._first = None
            # read ahead to learn the first interface's link type
            try:
                self._first = next(self._iter)
            except StopIteration:
                self._first = None
            self.linktype = (self.interfaces[0].linktype if self.interfaces else LINKTYPE_ETHERNET)
            return
        magic = head
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            self._endian = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            self._endian = ">"
        else:
            raise CaptureError("not a pcap or pcapng file (unknown magic "
                               f"{magic.hex()})")
        self.format = "pcap"
        self._nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        rest = self._src.read(20)
        if rest is None:
            raise CaptureError("truncated pcap file header (under 24 bytes)")
        _vmaj, _vmin, _tz, _sig, self.snaplen, linktype = struct.unpack(self._endian + "HHiIII",
                                                                        rest)
        self.linktype = linktype & 0x0FFFFFFF
        self.interfaces = [Interface(self.linktype, self.snaplen, 9 if self._nano else None,
                                     10 ** 9 if self._nano else 10 ** 6)]
        self._first = None
        self._iter = self._pcap()

    def tell(self) -> int:
        """Bytes of the file read so far (of the compressed file for a gzip capture)."""
        try:
            return self._raw.tell()
        except (OSError, ValueError, AttributeError):
            return 0

    def problem(self, unit: str, number: int, offset: int, message: str, fatal: bool) -> None:
        """Record a problem (kept up to :data:`MAX_PROBLEMS_KEPT`); a fatal one ends the read."""
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(CaptureProblem(unit, number, offset, message, fatal))
        if fatal:
            self.truncated = True

    def __iter__(self) -> Iterator[Packet]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._iter

    def _pcap(self) -> Iterator[Packet]:
        unpack = struct.Struct(self._endian + "IIII").unpack_from
        nano = self._nano
        scale = 1 if nano else 1000
        fraclim = 1_000_000_000 if nano else 1_000_000
        lt = self.linktype
        src = self._src
        fh = src.fh
        buf = src.buf
        pos = src.pos
        base = src.base
        n = 0
        incl = 0
        while True:
            end = len(buf)
            # records wholly inside the buffer: cut them without further reads
            while pos + 16 <= end:
                sec, frac, incl, orig = unpack(buf, pos)
                if incl > _MAX_RECORD or frac >= fraclim:
                    msg, fatal = pcap_record_problem(incl, frac, nano)
                    self.problem("record", n + 1, base + pos, msg, fatal)
                    if fatal:
                        return
                stop = pos + 16 + incl
                if stop > end:
                    break
                n += 1
                yield Packet(sec * 1_000_000_000 + frac * scale, buf[pos + 16:stop], orig, lt)
                pos = stop
                incl = 0
            more = fh.read(max(_CHUNK, 16 + incl))
            if not more:
                if pos < end:
                    self.problem("record", n + 1, base + pos,
                                 pcap_tail_problem(buf[pos:], self._endian), True)
                return
            base += pos
            buf = buf[pos:] + more
            pos = 0

    def walk_records(self, step, odd) -> int:
        """Classic pcap only: the records in large chunks, for a compiled loop
        (``ubpkt.link.bulkframe``), instead of one :class:`Packet` each; not after iterating.

        ``step(buf, pos)`` takes the whole records of ``buf`` from ``pos`` and returns
        ``(pos, stop, records)``: where it stopped, 0 at the end of the whole records or 1 at
        a record header it leaves alone (captured length over :data:`MAX_RECORD_BYTES`, time
        fraction not below one second), and how many records it took.  Such a header gets the
        checks iteration gives it here (the same :attr:`problems`; a fatal one ends the walk),
        and a whole record behind it goes to ``odd(packet)``.  Returns the records taken."""
        if self.format != "pcap":
            raise CaptureError("walk_records reads classic pcap only")
        unpack = struct.Struct(self._endian + "IIII").unpack_from
        nano = self._nano
        scale = 1 if nano else 1000
        src = self._src
        fh = src.fh
        # one buffer for the whole walk, refilled in place: a fresh 4 MiB object per chunk
        # costs more (page faults) than the compiled loop over it
        buf = bytearray(src.buf[src.pos:])
        base, pos, end = src.base + src.pos, 0, len(buf)
        n = 0
        reported = -1                       # file offset of the odd header last reported
        while True:
            with memoryview(buf) as whole, whole[:end] as view:
                pos, stop, taken = step(view, pos)
            n += taken
            need = 16
            if end - pos >= 16:
                sec, frac, incl, orig = unpack(buf, pos)
                need = 16 + incl
                if stop:
                    if reported != base + pos:
                        reported = base + pos
                        msg, fatal = pcap_record_problem(incl, frac, nano)
                        self.problem("record", n + 1, base + pos, msg, fatal)
                        if fatal:
                            return n
                    if pos + need <= end:
                        n += 1
                        odd(Packet(sec * 1_000_000_000 + frac * scale,
                                   bytes(buf[pos + 16:pos + need]), orig, self.linktype))
                        pos += need
                        continue
            left = end - pos
            want = max(_CHUNK, need)
            buf[:left] = buf[pos:end]
            if len(buf) < left + want:
                buf.extend(bytes(left + want - len(buf)))
            base += pos
            pos, end = 0, left
            got = _fill(fh, buf, end, left + want)
            if not got:
                if left:
                    self.problem("record", n + 1, base, pcap_tail_problem(
                        bytes(buf[:left]), self._endian), True)
                return n
            end += got

    def _pcapng(self, head: bytes) -> Iterator[Packet]:
        """Blocks of a pcapng file: SHB, IDB, EPB, SPB and the obsolete PB are read; the rest
        are skipped.  Every block is checked (length, trailer, body size, interface)."""
        src = self._src
        read = src.read
        endian = "<"
        number = 0
        btype_raw = head
        while True:
            number += 1
            at = src.offset - (4 if btype_raw is not None else 0)
            if btype_raw is None:
                btype_raw = read(4)
                if btype_raw is None:
                    left = src.left()
                    if left:
                        self.problem("block", number, at, f"the file ends inside a block "
                                     f"header ({left} of 8 bytes)", True)
                    return
            ln_raw = read(4)
            if ln_raw is None:
                self.problem("block", number, at, "the file ends inside a block header", True)
                return
            is_shb = btype_raw == PCAPNG_SHB
            if is_shb:
                bom = read(4)
                if bom is None:
                    self.problem("block", number, at, "the file ends inside the section header",
                                 True)
                    return
                if bom == _BOM_LE:
                    endian = "<"
                elif bom == _BOM_BE:
                    endian = ">"
                else:
                    if number == 1:
                        raise CaptureError(f"not a pcapng file: byte-order magic {bom.hex()} "
                                           "is neither 1a2b3c4d nor 4d3c2b1a")
                    self.problem("block", number, at, f"section header byte-order magic "
                                 f"{bom.hex()} is neither 1a2b3c4d nor 4d3c2b1a", True)
                    return
            (btype,) = struct.unpack(endian + "I", btype_raw)
            (blen,) = struct.unpack(endian + "I", ln_raw)
            btype_raw = None
            minimum = 28 if is_shb else 12
            if blen < minimum or blen % 4 or blen > MAX_RECORD_BYTES + 64:
                why = (f"under the minimum of {minimum}" if blen < minimum else
                       "not a multiple of 4" if blen % 4 else
                       f"larger than the maximum of {MAX_RECORD_BYTES + 64}")
                self.problem("block", number, at, f"block total length {blen} is {why}", True)
                return
            body = read(blen - (12 if is_shb else 8))
            if body is None:
                self.problem("block", number, at, f"the file ends inside the block: total "
                             f"length {blen}, {src.left() + (12 if is_shb else 8)} bytes left",
                             True)
                return
            (trail,) = struct.unpack_from(endian + "I", body, len(body) - 4)
            if trail != blen:
                self.problem("block", number, at, f"trailing block length {trail} differs from "
                             f"the leading one {blen}", True)
                return
            body = body[:-4]
            if is_shb:
                self.interfaces = []
                continue
            pkt = self._pcapng_block(btype, body, endian, number, at)
            if pkt is not None:
                yield pkt
            if self.truncated:
                return

    def _pcapng_block(self, btype: int, body: bytes, endian: str, number: int,
                      at: int) -> Packet | None:
        """One pcapng block body: an interface is learnt, a packet returned, a bad body
        reported."""
        if btype == 1:  # interface description
            if len(body) < 8:
                self.problem("block", number, at, f"interface description body of {len(body)} "
                             "bytes is under the minimum of 8", True)
                return None
            linktype, _, snap = struct.unpack_from(endian + "HHI", body)
            tsresol = _option(body, 8, 9, endian)
            resol = tsresol[0] if tsresol else None
            self.interfaces.append(Interface(linktype, snap, resol, units_per_second(resol)))
            return None
        if btype in (6, 2):  # enhanced packet, obsolete packet
            name = "enhanced packet" if btype == 6 else "packet"
            if len(body) < 20:
                self.problem("block", number, at, f"{name} block body of {len(body)} bytes is "
                             "under the minimum of 20", False)
                return None
            if btype == 6:
                ifid, hi, lo, incl, orig = struct.unpack_from(endian + "IIIII", body)
            else:
                ifid, _drops, hi, lo, incl, orig = struct.unpack_from(endian + "HHIIII", body)
            if ifid >= len(self.interfaces):
                self.problem("block", number, at, f"{name} block names interface {ifid}, but "
                             f"the section describes {len(self.interfaces)}", False)
                return None
            if incl > len(body) - 20:
                self.problem("block", number, at, f"captured length {incl} is more than the "
                             f"{len(body) - 20} bytes the block holds", False)
                return None
            iface = self.interfaces[ifid]
            ts = (hi << 32) | lo
            return Packet(ts * 1_000_000_000 // iface.units_per_second, body[20:20 + incl],
                          orig, iface.linktype, ifid)
        if btype == 3:  # simple packet
            if len(body) < 4:
                self.problem("block", number, at, f"simple packet block body of {len(body)} "
                             "bytes is under the minimum of 4", False)
                return None
            if not self.interfaces:
                self.problem("block", number, at, "simple packet block before any interface "
                             "description", False)
                return None
            (orig,) = struct.unpack_from(endian + "I", body)
            return Packet(0, body[4:4 + orig], orig, self.interfaces[0].linktype, 0)
        return None

    def close(self) -> None:
        if self._close:
            self._fh.close()
            inner = getattr(self, "_inner", None)
            if inner is not None:
                inner.close()

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fill(fh, buf: bytearray, start: int, stop: int) -> int:
    """Read into ``buf[start:stop]`` until it is full or the stream ends; the bytes read."""
    got = start
    readinto = getattr(fh, "readinto", None)
    with memoryview(buf) as mv:
        while got < stop:
            if readinto is not None:
                k = readinto(mv[got:stop])
            else:
                data = fh.read(stop - got)
                k = len(data)
                mv[got:got + k] = data
            if not k:
                break
            got += k
    return got - start


def _option(body: bytes, start: int, code: int, endian: str) -> bytes | None:
    """The value of option ``code`` in a pcapng block body's options (from ``start``), bounded by
    the body."""
    o = start
    while o + 4 <= len(body):
        c, olen = struct.unpack_from(endian + "HH", body, o)
        if c == 0:
            return None
        if c == code and olen >= 1 and o + 4 + olen <= len(body):
            return body[o + 4:o + 4 + olen]
        o += 4 + ((olen + 3) & ~3)
    return None


class _Prefixed(io.RawIOBase):
    """A read-only stream that gives ``prefix`` and then the rest of ``fh`` (to look at a
    non-seekable stream's first bytes and still read it whole); closes ``fh`` if it owns it."""

    def __init__(self, prefix: bytes, fh: BinaryIO, own: bool):
        super().__init__()
        self._prefix = prefix
        self._fh = fh
        self._own = own

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._prefix:
            n = min(len(b), len(self._prefix))
            b[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        readinto = getattr(self._fh, "readinto", None)
        if readinto is not None:
            return readinto(b)          # straight into the reader's buffer: no copy
        data = self._fh.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        if not self.closed and self._own:
            self._fh.close()
        super().close()


def _open_stream(fh: BinaryIO, own: bool) -> Capture:
    """A capture on an open binary stream: gzip is recognised by its magic and decompressed.
    ``own``: the capture closes ``fh``."""
    head = fh.read(2)
    plain = io.BufferedReader(_Prefixed(head, fh, own), 1 << 16)
    stream: BinaryIO = gzip.GzipFile(fileobj=plain, mode="rb") if head == GZIP_MAGIC else plain
    try:
        cap = Capture(stream, close=True, raw=fh)
    except (OSError, EOFError) as exc:
        stream.close()
        plain.close()
        if stream is plain:
            raise
        # not really gzip, or cut short
        raise CaptureError(f"gzip-compressed file cannot be read: {exc}") from None
    except Exception:
        stream.close()
        plain.close()
        raise
    cap._inner = plain
    cap.compressed = stream is not plain
    return cap


def open_capture(path_or_file) -> Capture:
    """Open a pcap or pcapng file, plain or gzip-compressed, for streaming: a path, ``-``
    (standard input) or a binary file object (left open by :meth:`Capture.close`)."""
    if path_or_file == "-":
        return _open_stream(sys.stdin.buffer, own=False)
    if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, "__fspath__"):
        return _open_stream(open(path_or_file, "rb"), own=True)
    return _open_stream(path_or_file, own=False)


#: The largest timestamp a classic pcap record can hold: its seconds field is 32 bits unsigned.
PCAP_MAX_SECONDS = (1 << 32) - 1


class PcapWriter:
    """Writes classic pcap (nanosecond timestamps unless ``nanosecond=False``).  A timestamp the
    format cannot hold (negative, or 2^32 s and later) is refused with a :class:`CaptureError`
    (write pcapng for those: :class:`ubpkt.capture.pcapng.PcapngWriter`)."""

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
        if not 0 <= sec <= PCAP_MAX_SECONDS:
            raise CaptureError(f"timestamp {int(time_ns)} ns does not fit a classic pcap record "
                               f"(seconds must be 0..{PCAP_MAX_SECONDS}); write pcapng instead")
        frac = rem if self.nanosecond else rem // 1000
        self._fh.write(self._rec.pack(sec, frac, len(data),
                                      len(data) if orig_len is None else orig_len))
        self._fh.write(data)

    def write_records(self, blob) -> None:
        """Append whole records already in this file's form (16-byte little-endian headers,
        times in this writer's unit, each followed by its data): what a compiled loop built,
        e.g. ``ubpkt.link.fastdeframe.BulkDeframer.feed_pcap``."""
        self._fh.write(blob)

    def close(self) -> None:
        if self._close:
            self._fh.close()
            inner = getattr(self, "_inner", None)
            if inner is not None:
                inner.close()
        else:
            self._fh.flush()

    def __enter__(self) -> "PcapWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
