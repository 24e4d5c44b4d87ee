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

from .pcap import _MAX_RECORD, open_capture
from ..profile import NS3, SPEC, Profile

SEGMENT = 1 << 20

_caches: dict = {}
_profile: Profile | None = None
_turn = None
_cond = None
_fd = None


def _init(profile: Profile | None, turn=None, cond=None, fd=None) -> None:
    global _profile, _turn, _cond, _fd
    import signal
    # Ctrl-C is the parent's to handle: a worker stops quietly when the pool is terminated
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
    cache.digits = 9 if nano else 6      # stream.time_digits of a classic pcap
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


def _segments(path, problems: list | None = None, size: int | None = None) -> Iterator[tuple]:
    """(offset, length, first frame) of record-aligned pieces of a classic pcap file, each
    about ``size`` bytes (:data:`SEGMENT` when None).

    Only record headers are looked at: a record longer than what is buffered is skipped with a
    seek, so memory stays one read chunk whatever a (lying) record length says.  Damage is
    appended to ``problems`` as :class:`ubpkt.capture.pcap.CaptureProblem` (the same checks and
    messages as the single-process reader); segments end before a fatal one."""
    from .pcap import CaptureProblem, MAX_PROBLEMS_KEPT, pcap_record_problem, pcap_tail_problem
    problems = [] if problems is None else problems
    piece = SEGMENT if size is None else max(1, size)
    with open_capture(path) as cap:
        endian, nano = cap._endian, cap._nano
    fraclim = 1_000_000_000 if nano else 1_000_000
    hdr = struct.Struct(endian + "IIII")
    fsize = os.path.getsize(path)

    def problem(frame, at, msg, fatal):
        if len(problems) < MAX_PROBLEMS_KEPT:
            problems.append(CaptureProblem("record", frame, at, msg, fatal))

    with open(path, "rb") as fh:
        offset, frame, start, start_frame = 24, 1, 24, 1
        fh.seek(offset)
        buf = b""
        while True:
            chunk = fh.read(1 << 22)
            if not chunk:
                break
            buf += chunk
            pos = 0
            while pos + 16 <= len(buf):
                _sec, frac, incl, _orig = hdr.unpack_from(buf, pos)
                if incl > _MAX_RECORD or frac >= fraclim:
                    msg, fatal = pcap_record_problem(incl, frac, nano)
                    problem(frame, offset, msg, fatal)
                    if fatal:
                        if offset > start:
                            yield start, offset - start, start_frame
                        return
                nxt = offset + 16 + incl
                if nxt > fsize:
                    problem(frame, offset, pcap_tail_problem(buf[pos:pos + 16], endian,
                                                             fsize - offset - 16), True)
                    if offset > start:
                        yield start, offset - start, start_frame
                    return
                offset = nxt
                frame += 1
                if pos + 16 + incl > len(buf):
                    # the record runs past the buffer: continue at the next header
                    buf = b""
                    fh.seek(offset)
                    pos = 0
                else:
                    pos += 16 + incl
                if offset - start >= piece:
                    yield start, offset - start, start_frame
                    start, start_frame = offset, frame
            buf = buf[pos:]
        if buf:
            problem(frame, offset, pcap_tail_problem(buf, endian), True)
        if offset > start:
            yield start, offset - start, start_frame


def pcap_format(path):
    """(endian, nanosecond) of a classic pcap file, or None for anything else."""
    with open_capture(path) as cap:
        if cap.format != "pcap" or cap.compressed:
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
    problems: list = []
    with ctx.Pool(jobs, initializer=_init, initargs=(profile, turn, cond, fd)) as pool:
        pending: deque = deque()
        for i, (offset, length, first) in enumerate(_segments(path, problems)):
            pending.append(pool.apply_async(_work_and_write, ((i, str(path), offset, length,
                                                                first, endian, nano, lt),)))
            while len(pending) > 2 * jobs:
                pending.popleft().get()
                if progress is not None:
                    progress(offset)
        while pending:
            pending.popleft().get()
    _raise_problems(problems)


def _raise_problems(problems: list) -> None:
    if problems:
        from .stream import DamagedCapture
        raise DamagedCapture(problems)


def ndjson_chunks(path, forced_linktype: int | None, profile: Profile | None, jobs: int,
                  progress=None) -> Iterator[bytes]:
    """ndjson output of a classic pcap file, in chunks, decoded by ``jobs`` processes.
    Records beyond the last whole one (a damaged file) are not decoded; then
    :class:`ubpkt.capture.stream.DamagedCapture` is raised."""
    endian, nano, lt = pcap_format(path)
    if forced_linktype is not None:
        lt = forced_linktype
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    problems: list = []
    with ctx.Pool(jobs, initializer=_init, initargs=(profile,)) as pool:
        pending: deque = deque()
        for offset, length, first in _segments(path, problems):
            pending.append(pool.apply_async(_work, ((str(path), offset, length, first, endian,
                                                     nano, lt),)))
            while len(pending) > 2 * jobs:
                yield pending.popleft().get()
                if progress is not None:
                    progress(offset)
        while pending:
            yield pending.popleft().get()
    _raise_problems(problems)
