"""Bulk ndjson decoding on several cores, in order and in bounded memory.

The parent walks the pcap's record headers and cuts the file into segments of about
:data:`SEGMENT` bytes; worker processes each read and decode one segment from the file
themselves (with their own template cache, :mod:`ubpkt.dissect.fastpath`) and return its ndjson bytes;
the parent writes them in frame order, keeping at most ``2 x jobs`` segments in flight.  The
output is byte-identical to the single-process path.  Classic pcap only (pcapng: one process).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import struct
from collections import deque
from typing import Iterator

from .pcap import open_capture
from ..profile import NS3, SPEC, Profile

SEGMENT = 1 << 20

_caches: dict = {}
_profile: Profile | None = None
_turn = None
_cond = None
_fd = None


def _init(profile: Profile | None, turn=None, cond=None, fd=None) -> None:
    global _profile, _turn, _cond, _fd
    _profile = profile
    _turn, _cond, _fd = turn, cond, fd
    _caches.clear()


def _work_and_write(job) -> int:
    """Decode a segment, then write it to the shared output when its turn comes (segments are
    taken from the queue in order, so the one before is always in hand or done)."""
    index = job[0]
    data = _work(job[1:])
    with _cond:
        _cond.wait_for(lambda: _turn.value == index)
        try:
            view = memoryview(data)
            while view:
                n = os.write(_fd, view)
                view = view[n:]
        finally:
            _turn.value = index + 1
            _cond.notify_all()
    return len(data)


def _work(job) -> bytes:
    from ..dissect.fastpath import TemplateCache
    path, offset, length, first_frame, endian, nano, lt = job
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
    cache = _caches.get(lt)
    if cache is None:
        prof = _profile or (NS3 if lt == 147 else SPEC)
        cache = _caches[lt] = TemplateCache(prof)
    unpack = struct.Struct(endian + "IIII").unpack_from
    scale = 1 if nano else 1000
    out = []
    pos, frame, end = 0, first_frame, len(data)
    ndjson = cache.ndjson
    while pos + 16 <= end:
        sec, frac, incl, orig = unpack(data, pos)
        rec = data[pos + 16:pos + 16 + incl]
        out.append(ndjson(rec, lt, frame, sec * 1_000_000_000 + frac * scale, orig))
        pos += 16 + incl
        frame += 1
    return b"".join(out)


def _segments(path) -> Iterator[tuple]:
    """(offset, length, first frame) of record-aligned pieces of a classic pcap file."""
    with open_capture(path) as cap:
        endian = cap._endian
    hdr = struct.Struct(endian + "IIII")
    with open(path, "rb") as fh:
        fh.seek(24)
        offset, frame, start, start_frame = 24, 1, 24, 1
        buf = b""
        while True:
            chunk = fh.read(1 << 22)
            if not chunk:
                break
            buf += chunk
            pos = 0
            while pos + 16 <= len(buf):
                incl = hdr.unpack_from(buf, pos)[2]
                if pos + 16 + incl > len(buf):
                    break
                pos += 16 + incl
                offset += 16 + incl
                frame += 1
                if offset - start >= SEGMENT:
                    yield start, offset - start, start_frame
                    start, start_frame = offset, frame
            buf = buf[pos:]
        if offset > start:
            yield start, offset - start, start_frame


def pcap_format(path):
    """(endian, nanosecond) of a classic pcap file, or None for anything else."""
    with open_capture(path) as cap:
        if cap.format != "pcap":
            return None
        return cap._endian, cap._nano, cap.linktype


def write_ndjson(path, fd: int, forced_linktype: int | None, profile: Profile | None, jobs: int,
                 progress=None) -> None:
    """Decode a classic pcap with ``jobs`` processes that write their segments' ndjson straight
    to file descriptor ``fd``, in frame order (no copy of the output through the parent)."""
    endian, nano, lt = pcap_format(path)
    if forced_linktype is not None:
        lt = forced_linktype
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    turn = ctx.Value("q", 0, lock=False)
    cond = ctx.Condition()
    with ctx.Pool(jobs, initializer=_init, initargs=(profile, turn, cond, fd)) as pool:
        pending: deque = deque()
        for i, (offset, length, first) in enumerate(_segments(path)):
            pending.append(pool.apply_async(_work_and_write, ((i, str(path), offset, length,
                                                                first, endian, nano, lt),)))
            while len(pending) > 2 * jobs:
                pending.popleft().get()
                if progress is not None:
                    progress(offset)
        while pending:
            pending.popleft().get()


def ndjson_chunks(path, forced_linktype: int | None, profile: Profile | None, jobs: int,
                  progress=None) -> Iterator[bytes]:
    """ndjson output of a classic pcap file, in chunks, decoded by ``jobs`` processes.
    Records beyond the last whole one (a truncated file) are not decoded."""
    endian, nano, lt = pcap_format(path)
    if forced_linktype is not None:
        lt = forced_linktype
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with ctx.Pool(jobs, initializer=_init, initargs=(profile,)) as pool:
        pending: deque = deque()
        for offset, length, first in _segments(path):
            pending.append(pool.apply_async(_work, ((str(path), offset, length, first, endian,
                                                     nano, lt),)))
            while len(pending) > 2 * jobs:
                yield pending.popleft().get()
                if progress is not None:
                    progress(offset)
        while pending:
            yield pending.popleft().get()
