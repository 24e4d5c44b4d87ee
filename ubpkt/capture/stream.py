"""Streaming decode of whole capture files (constant memory): one record per frame."""
from __future__ import annotations

import os
from typing import Iterator

from .pcap import _MAX_RECORD, open_capture, pcap_record_problem, pcap_tail_problem
from ..dissect import decode
from ..record import (LINKTYPE_ETHERNET, LINKTYPE_FLITS, LINKTYPE_IPV4, LINKTYPE_IPV6,
                      LINKTYPE_NS3, LINKTYPE_RAW, LINKTYPE_SLL, LINKTYPE_SLL2, LINKTYPE_UB,
                      LINKTYPE_UBL,
                      make_record)
from ..dissect.fastpath import TemplateCache
from ..profile import NS3, SPEC, Profile

LINK_TYPES = {"auto": None, "eth": LINKTYPE_ETHERNET, "ub": LINKTYPE_UB, "ns3": LINKTYPE_NS3,
              "flits": LINKTYPE_FLITS, "sll": LINKTYPE_SLL, "sll2": LINKTYPE_SLL2,
              "raw": LINKTYPE_RAW, "ipv4": LINKTYPE_IPV4, "ipv6": LINKTYPE_IPV6,
              "ubl": LINKTYPE_UBL}


def iter_records(path, link_type: str = "auto", profile: Profile | None = None,
                 progress=None, fast: bool = True, exact_time: bool = False,
                 raw: bool = False) -> Iterator[dict]:
    """Decode every frame of a pcap/pcapng file.  ``link_type`` forces a link type; ``progress``
    is called with the number of bytes read so far (for progress bars); ``fast`` uses the
    template fast path (:mod:`ubpkt.dissect.fastpath`), which gives the same records;
    ``exact_time`` adds ``rec["_tns"] = (time_ns, digits)`` (``ubpkt.views.timefmt``), ``raw``
    the frame's bytes as ``rec["_raw"]`` (for -x, -V offsets and -w).  A damaged file ends
    with one ``{"frame": None, "truncated": bool, "problems": [...]}``
    (:class:`ubpkt.capture.pcap.CaptureProblem`) after every record that could be read."""
    forced = LINK_TYPES[link_type]
    if forced == LINKTYPE_FLITS:
        yield from _flits(path, profile)
        return
    caches: dict = {}
    with open_capture(path) as cap:
        if forced is None and cap.linktype == LINKTYPE_FLITS:
            cap.close()
            yield from _flits(path, profile)
            return
        for n, pkt in enumerate(cap, 1):
            lt = forced if forced is not None else pkt.linktype
            prof = profile or (NS3 if lt == LINKTYPE_NS3 else SPEC)
            if fast:
                cache = caches.get(id(prof))
                if cache is None:
                    cache = caches[id(prof)] = TemplateCache(prof)
                layers, fields, issues = cache.decode(pkt.data, lt)
                data = pkt.data
                rec = make_record(n, pkt.time_ns / 1e9, pkt.orig_len, len(data), lt, layers,
                                  fields, issues)
            else:
                rec = decode(pkt.data, lt, prof, frame=n, time=pkt.time_ns / 1e9,
                             orig_len=pkt.orig_len)
            if exact_time:
                rec["_tns"] = (pkt.time_ns, time_digits(cap))
            if raw:
                rec["_raw"] = pkt.data
            yield rec
            if progress is not None and n % 2048 == 0:
                progress(cap.tell())
        if cap.problem_count:
            yield {"frame": None, "truncated": cap.truncated, "problems": list(cap.problems),
                   "problem_count": cap.problem_count}


def time_digits(cap) -> int:
    """Fraction digits the capture's timestamps hold: 9 for nanosecond pcap, 6 for microsecond,
    pcapng from the finest if_tsresol of its interfaces (ns per tick)."""
    # the finest time unit of the capture's interfaces (units per second); a pcap has one
    finest = max((i.units_per_second for i in cap.interfaces), default=10 ** 6)
    digits = 0
    while digits < 9 and 10 ** digits < finest:
        digits += 1
    return digits


def iter_ndjson(path, link_type: str = "auto", profile: Profile | None = None,
                progress=None) -> Iterator[bytes]:
    """The ndjson output of every frame (the same bytes as rendering :func:`iter_records`),
    in chunks of whole lines, written straight from the templates where a frame fits one."""
    from ..views.output import to_json_bytes
    forced = LINK_TYPES[link_type]
    if forced == LINKTYPE_FLITS:
        for rec in _flits(path, profile):
            yield to_json_bytes(rec)
        return
    caches: dict = {}
    with open_capture(path) as cap:
        if forced is None and cap.linktype == LINKTYPE_FLITS:
            cap.close()
            for rec in _flits(path, profile):
                yield to_json_bytes(rec)
            return
        if cap.format == "pcap":
            lt = forced if forced is not None else cap.linktype
            prof = profile or (NS3 if lt == LINKTYPE_NS3 else SPEC)
            yield from _pcap_ndjson(cap, lt, TemplateCache(prof), progress)
            if cap.problem_count:
                raise DamagedCapture(cap.problems, cap.problem_count)
            return
        for n, pkt in enumerate(cap, 1):
            lt = forced if forced is not None else pkt.linktype
            cache = caches.get(lt)
            if cache is None:
                prof = profile or (NS3 if lt == LINKTYPE_NS3 else SPEC)
                cache = caches[lt] = TemplateCache(prof)
            yield cache.ndjson(pkt.data, lt, n, pkt.time_ns, pkt.orig_len)
            if progress is not None and n % 2048 == 0:
                progress(cap.tell())
        if cap.problem_count:
            raise DamagedCapture(cap.problems, cap.problem_count)


def _pcap_ndjson(cap, lt: int, cache, progress) -> Iterator[bytes]:
    """The hot loop for classic pcap: records are cut straight from the read buffer.  Record
    headers are checked as :meth:`ubpkt.capture.pcap.Capture._pcap` does (same problems)."""
    import struct
    unpack = struct.Struct(cap._endian + "IIII").unpack_from
    nano = cap._nano
    scale = 1 if nano else 1000
    fraclim = 1_000_000_000 if nano else 1_000_000
    src = cap._src
    fh = src.fh
    buf, pos, base = src.buf, src.pos, src.base
    ndjson = cache.ndjson
    n = 0
    need = 16
    while True:
        end = len(buf)
        out = []
        while pos + 16 <= end:
            sec, frac, incl, orig = unpack(buf, pos)
            if incl > _MAX_RECORD or frac >= fraclim:
                msg, fatal = pcap_record_problem(incl, frac, nano)
                cap.problem("record", n + 1, base + pos, msg, fatal)
                if fatal:
                    if out:
                        yield b"".join(out)
                    return
            stop = pos + 16 + incl
            if stop > end:
                need = 16 + incl
                break
            n += 1
            out.append(ndjson(buf[pos + 16:stop], lt, n, sec * 1_000_000_000 + frac * scale,
                              orig))
            pos = stop
        if out:
            yield b"".join(out)
            if progress is not None:
                progress(cap.tell())
        more = fh.read(max(1 << 22, need))
        if not more:
            if pos < end:
                cap.problem("record", n + 1, base + pos, pcap_tail_problem(buf[pos:], cap._endian),
                            True)
            return
        base += pos
        buf = buf[pos:] + more
        pos = 0
        need = 16


class DamagedCapture(Exception):
    """The capture file is damaged: raised after its last readable record, with the
    :class:`ubpkt.capture.pcap.CaptureProblem` list (at most the first
    :data:`ubpkt.capture.pcap.MAX_PROBLEMS_KEPT`) and how many there were in all."""

    def __init__(self, problems, count: int | None = None):
        super().__init__(str(problems[0]) if problems else "damaged capture")
        self.problems = list(problems)
        self.count = len(self.problems) if count is None else count


#: the former name (a truncated file is one kind of damaged file)
TruncatedCapture = DamagedCapture


def _flits(path, profile: Profile | None) -> Iterator[dict]:
    """A flit stream (pcap linktype 149 or a raw file of whole flits): one record per DLLCB and
    per reassembled DLLDP (``ubpkt.dissect.flitstream``)."""
    from ..dissect.flitstream import decode_flit_stream
    yield from decode_flit_stream(str(path), profile or SPEC)


def file_size(path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
