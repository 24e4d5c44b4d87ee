"""Framing and deframing of whole classic pcap captures in bulk (UB 2.0 §4.3.2, §4.7.2).

``ubpkt link frame`` turns every record of a capture of network packets (linktype 148/147)
into one DLLDP; ``ubpkt link deframe`` of a flit pcap (151) treats the records' data as one
stream.  Done a record at a time in Python, the reading, not the framing, is the cost.  Here
the capture is walked in 4 MiB chunks (:meth:`ubpkt.capture.pcap.Capture.walk_records`) and
each chunk's records go through one compiled call (``ubpkt._linkc.frame_records`` /
``pcap_payloads``; Python twins :func:`frame_records_py` / :func:`pcap_payloads_py`, the
definitions both are tested against, used when the extension is not the CRC30 engine).

The reference is the record-by-record loop (:func:`frame_packets`, what ``link frame`` did
and still does for pcapng and ``--controls``): the bulk path writes the same bytes
(``tests/link/test_bulkframe.py``), skips the same records (a length with no PLENGTH, CFG 0)
and leaves the same odd records (a fraction of a second out of range, a damaged length) to
the reader's own checks.
"""
from __future__ import annotations

import struct
from array import array

from ..capture.pcap import MAX_RECORD_BYTES
from .crc30 import native
from .framing import frame_packet
from .plength import (BCRC_LEN, FLIT, LBH_LEN, LPH_LEN, MAX_BLOCKS, MAX_FLITS,
                      MAX_PACKET)

__all__ = ["plength_table", "frame_records", "frame_records_py", "pcap_payloads",
           "pcap_payloads_py", "frame_packets", "frame_capture", "deframe_capture", "framable",
           "FLUSH_BYTES"]

#: output bytes gathered before one write to the output file (at least one largest DLLDP and
#: its pcap record header)
FLUSH_BYTES = 1 << 22
_TABLES: dict = {}
_REC = struct.Struct("<IIII")


def plength_table(crc_mode: bool) -> array:
    """int32 per packet length 0..MAX_PACKET[crc_mode]: the PLENGTH that length is framed with
    (what :func:`ubpkt.link.plength.layout` gives; -1 below the 5-byte minimum), computed once
    per mode by :func:`_plength_of`.  The block sizes follow from the PLENGTH (every block but
    the last full); ``tests/link/test_bulkframe.py`` checks both against ``layout`` for every
    length."""
    t = _TABLES.get(crc_mode)
    if t is None:
        t = _TABLES[crc_mode] = array("i", [-1] * 5 + [_plength_of(n, crc_mode) for n in
                                                      range(5, MAX_PACKET[crc_mode] + 1)])
    return t


def _plength_of(n: int, crc_mode: bool) -> int:
    """``layout(n, crc_mode).plength`` in plain arithmetic (a tenth of its cost, which matters
    once per ``link frame`` run: 10k lengths); the same cut, UB 2.0 §4.3.2.2."""
    trailer = BCRC_LEN if crc_mode else 1
    remaining = n - LPH_LEN
    header = LPH_LEN
    count = 0
    while True:
        room = MAX_FLITS * FLIT - header
        if remaining <= room - trailer:             # fits as the last block
            count += 1
            break
        remaining -= room - (trailer if crc_mode else 0)
        count += 1
        header = LBH_LEN
        if remaining == 0:                          # non-CRC: an empty one-flit last block
            return count << 10 | 19
    used = (LPH_LEN if count == 1 else LBH_LEN) + remaining
    flits = -(-(used + (FLIT - 16 if crc_mode else 1)) // FLIT)
    end_flit = (used - 1) // FLIT
    in_flit = used - end_flit * FLIT - ((LPH_LEN if count == 1 else LBH_LEN) if end_flit == 0
                                        else 0)
    if end_flit == flits - 1:
        tail = in_flit - 1 if in_flit <= 16 else in_flit + 11
    else:
        tail = in_flit + 11 if in_flit <= 16 else in_flit - 1
    return (count - 1) << 10 | (flits - 1) << 5 | tail


def framable(data, crc_mode: bool) -> bool:
    """Whether ``link frame`` frames a record: a length a DLLDP can carry and an LPH whose CFG
    is not 0 (CFG 0 marks a DLLCB, UB 2.0 Table 4-1); other records are skipped."""
    return 5 <= len(data) <= MAX_PACKET[crc_mode] and data[1] & 0x0F != 0


def _frac_limit(nano: bool) -> int:
    return 1_000_000_000 if nano else 1_000_000


def frame_records_py(buf, pos: int, big_endian: bool, nano: bool, crc_mode: bool,
                     error_flag: bool, covers_info: bool, plengths, out, used: int, raw: bool,
                     max_record: int) -> tuple:
    """The Python twin of ``_linkc.frame_records`` (its comment in ``ubpkt/_linkc.c``):
    ``(pos, stop, records, framed, used)``; each framable record of ``buf`` from ``pos``
    written to ``out`` from ``used`` on, as flits (``raw``) or as a little-endian nanosecond
    pcap record of them; stop 2 when the next one does not fit ``out``."""
    unpack = struct.Struct((">" if big_endian else "<") + "IIII").unpack_from
    fraclim, scale = _frac_limit(nano), 1 if nano else 1000
    end, room = len(buf), len(out)
    records = framed = 0
    stop = 0
    while pos + 16 <= end:
        sec, frac, incl, _orig = unpack(buf, pos)
        if incl > max_record or frac >= fraclim:
            stop = 1
            break
        if pos + 16 + incl > end:
            break
        data = bytes(buf[pos + 16:pos + 16 + incl])
        if incl >= len(plengths) or plengths[incl] < 0 or data[1] & 0x0F == 0:
            records += 1
            pos += 16 + incl
            continue
        flits = frame_packet(data, crc_mode, error_flag=error_flag, covers_info=covers_info)
        piece = flits if raw else _REC.pack(sec, frac * scale, len(flits), len(flits)) + flits
        if used + len(piece) > room:
            stop = 2
            break
        out[used:used + len(piece)] = piece
        used += len(piece)
        records += 1
        framed += 1
        pos += 16 + incl
    return pos, stop, records, framed, used


def frame_records(*args) -> tuple:
    """``_linkc.frame_records`` when the extension is the CRC30 engine, else the twin."""
    nat = native()
    if nat is not None and hasattr(nat, "frame_records"):
        return nat.frame_records(*args)
    return frame_records_py(*args)


def pcap_payloads_py(buf, pos: int, big_endian: bool, nano: bool, stream: bytearray,
                     marks: bytearray, max_record: int) -> tuple:
    """The Python twin of ``_linkc.pcap_payloads``: ``(pos, stop, records)``; each record's
    data appended to ``stream`` and ``(len(stream), sec, nanoseconds)`` as native int64 to
    ``marks``."""
    unpack = struct.Struct((">" if big_endian else "<") + "IIII").unpack_from
    fraclim, scale = _frac_limit(nano), 1 if nano else 1000
    end = len(buf)
    records = stop = 0
    more = array("q")
    while pos + 16 <= end:
        sec, frac, incl, _orig = unpack(buf, pos)
        if incl > max_record or frac >= fraclim:
            stop = 1
            break
        if pos + 16 + incl > end:
            break
        stream += buf[pos + 16:pos + 16 + incl]
        more.extend((len(stream), sec, frac * scale))
        records += 1
        pos += 16 + incl
    marks += more.tobytes()
    return pos, stop, records


def pcap_payloads(*args) -> tuple:
    """``_linkc.pcap_payloads`` when the extension is the CRC30 engine, else the twin."""
    nat = native()
    if nat is not None and hasattr(nat, "pcap_payloads"):
        return nat.pcap_payloads(*args)
    return pcap_payloads_py(*args)


def frame_packets(packets, put, crc_mode: bool, *, error_flag: bool = False,
                  linktypes=(147, 148)) -> tuple:
    """The reference: every framable capture packet of ``linktypes`` (:func:`framable`)
    framed on its own and handed to ``put(flits, time_ns)``; ``(framed, skipped)``."""
    count = skipped = 0
    for p in packets:
        if p.linktype not in linktypes or not framable(p.data, crc_mode):
            skipped += 1
            continue
        put(frame_packet(p.data, crc_mode, error_flag=error_flag), p.time_ns)
        count += 1
    return count, skipped


def frame_capture(cap, write, put, crc_mode: bool, *, error_flag: bool = False,
                  raw: bool = False) -> tuple:
    """:func:`frame_packets` over a classic pcap capture ``cap`` in bulk: flits (``raw``) or
    nanosecond pcap records of linktype 151 (records only: the caller wrote the file header)
    handed to ``write(bytes)`` in large pieces; an odd record (see
    :meth:`~ubpkt.capture.pcap.Capture.walk_records`) framed by the reference and given to
    ``put(flits, time_ns)`` after what came before it is written.  ``(framed, skipped)``."""
    table = plength_table(crc_mode)
    big = cap._endian == ">"
    nano = cap._nano
    # reused: a fresh buffer per chunk costs more; room for at least the largest DLLDP
    out = bytearray(max(FLUSH_BYTES, 16 + MAX_BLOCKS * MAX_FLITS * FLIT))
    counts = [0, 0]                          # framed, records

    def step(buf, pos):
        taken = 0
        while True:
            pos, stop, records, framed, used = frame_records(
                buf, pos, big, nano, crc_mode, error_flag, True, table, out, 0, raw,
                MAX_RECORD_BYTES)
            counts[0] += framed
            taken += records
            if used:
                with memoryview(out) as mv, mv[:used] as piece:
                    write(piece)
            if stop != 2:
                counts[1] += taken
                return pos, stop, taken

    def odd(packet):
        counts[1] += 1
        if framable(packet.data, crc_mode):
            counts[0] += 1
            put(frame_packet(packet.data, crc_mode, error_flag=error_flag), packet.time_ns)

    cap.walk_records(step, odd)
    return counts[0], counts[1] - counts[0]


def deframe_capture(cap, deframer, body: bytearray, emit, timed) -> tuple:
    """The records of a classic flit pcap ``cap`` through ``deframer``
    (:class:`~ubpkt.link.fastdeframe.BulkDeframer`) a chunk at a time: plain DLLDPs appended
    to ``body`` as pcap records, the other units handed to ``emit(list)`` as
    :meth:`~ubpkt.link.fastdeframe.BulkDeframer.feed_pcap_marked` gives them - every unit
    with the time of the record that completed it, as feeding record by record does.  An odd
    record's time goes through ``timed(time_ns) -> (sec, frac)`` (which may refuse it, as the
    record-by-record path does).  Returns the last record's ``(sec, frac)`` ((0, 0) without
    records): the time of what ``deframer.close()`` still gives."""
    big = cap._endian == ">"
    nano = cap._nano
    stream = deframer.inbox                  # the records' data goes straight to the reader
    marks = bytearray()
    last = [(0, 0)]

    def feed():
        if marks:
            emit(deframer.feed_pcap_marked(None, body, marks))
            _end, sec, frac = memoryview(marks)[-24:].cast("q").tolist()
            last[0] = (sec, frac)
            marks.clear()

    def step(buf, pos):
        pos, stop, records = pcap_payloads(buf, pos, big, nano, stream, marks,
                                           MAX_RECORD_BYTES)
        feed()
        return pos, stop, records

    def odd(packet):
        sec, frac = timed(packet.time_ns)
        stream.extend(packet.data)
        marks.extend(array("q", (len(stream), sec, frac)).tobytes())
        feed()

    cap.walk_records(step, odd)
    return last[0]
