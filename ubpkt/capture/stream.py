"""Streaming decode of whole capture files (constant memory): one record per frame."""
from __future__ import annotations

import os
from typing import Iterator

from .pcap import open_capture
from ..dissect import decode
from ..record import LINKTYPE_ETHERNET, LINKTYPE_FLITS, LINKTYPE_NS3, LINKTYPE_UB, make_record
from ..dissect.fastpath import TemplateCache
from ..profile import NS3, SPEC, Profile

LINK_TYPES = {"auto": None, "eth": LINKTYPE_ETHERNET, "ub": LINKTYPE_UB, "ns3": LINKTYPE_NS3,
              "flits": LINKTYPE_FLITS}


def iter_records(path, link_type: str = "auto", profile: Profile | None = None,
                 progress=None, fast: bool = True, exact_time: bool = False,
                 raw: bool = False) -> Iterator[dict]:
    """Decode every frame of a pcap/pcapng file.  ``link_type`` forces a link type; ``progress``
    is called with the number of bytes read so far (for progress bars); ``fast`` uses the
    template fast path (:mod:`ubpkt.dissect.fastpath`), which gives the same records;
    ``exact_time`` adds ``rec["_tns"] = (time_ns, digits)`` (``ubpkt.views.timefmt``), ``raw``
    the frame's bytes as ``rec["_raw"]`` (for -x, -V offsets and -w)."""
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
        fh = cap._fh
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
                progress(fh.tell())
        if cap.truncated:
            yield {"frame": None, "truncated": True}


def time_digits(cap) -> int:
    """Fraction digits the capture's timestamps hold: 9 for nanosecond pcap, 6 for microsecond,
    pcapng from the finest if_tsresol of its interfaces (ns per tick)."""
    if cap.format == "pcap":
        return 9 if cap._nano else 6
    finest = min((r for _, r in cap._interfaces), default=1000)
    digits = 0
    while digits < 9 and 10 ** (9 - digits) > finest:
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
        fh = cap._fh
        if cap.format == "pcap":
            lt = forced if forced is not None else cap.linktype
            prof = profile or (NS3 if lt == LINKTYPE_NS3 else SPEC)
            yield from _pcap_ndjson(cap, lt, TemplateCache(prof), progress)
            if cap.truncated:
                raise TruncatedCapture()
            return
        for n, pkt in enumerate(cap, 1):
            lt = forced if forced is not None else pkt.linktype
            cache = caches.get(lt)
            if cache is None:
                prof = profile or (NS3 if lt == LINKTYPE_NS3 else SPEC)
                cache = caches[lt] = TemplateCache(prof)
            yield cache.ndjson(pkt.data, lt, n, pkt.time_ns, pkt.orig_len)
            if progress is not None and n % 2048 == 0:
                progress(fh.tell())
        if cap.truncated:
            raise TruncatedCapture()


def _pcap_ndjson(cap, lt: int, cache, progress) -> Iterator[bytes]:
    """The hot loop for classic pcap: records are cut straight from the read buffer."""
    import struct
    unpack = struct.Struct(cap._endian + "IIII").unpack_from
    scale = 1 if cap._nano else 1000
    src = cap._src
    fh = src.fh
    buf, pos = src.buf, src.pos
    ndjson = cache.ndjson
    n = 0
    need = 16
    while True:
        end = len(buf)
        out = []
        while pos + 16 <= end:
            sec, frac, incl, orig = unpack(buf, pos)
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
                progress(fh.tell())
        more = fh.read(max(1 << 22, need))
        if not more:
            if pos < end:
                cap.truncated = True
            return
        if need > (1 << 26):
            cap.truncated = True
            return
        buf = buf[pos:] + more
        pos = 0
        need = 16


class TruncatedCapture(Exception):
    """The capture file ends inside a record (raised after its last whole record)."""


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
