"""A capture's frames as runs in one buffer with numpy columns (the exporter's columnar path):
no Python tuple or bytes object per frame.

:func:`frame_runs` yields :class:`Frames`: a buffer, each frame's offset and length in it, its
time in ns, original length and link type, numbered from ``first`` on.  A whole classic pcap
is cut by ``ubpkt._linkc.pcap_scan`` (C: record headers read straight from the read buffer),
with the checks of the decoder's loop (``ubpkt.capture.stream._pcap_loop``): a record header
that loop would report (too long, a bad fraction) is handled here the same way, one record at a
time, and a damaged tail reported as it does.  Other captures (pcapng, gzip, segments of a
pcap) come from ``export.frame_chunks``'s tuples, joined per chunk.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

__all__ = ["Frames", "frame_runs", "from_tuples", "HAVE_SCAN"]

try:
    from .._linkc import pcap_scan as _pcap_scan
    HAVE_SCAN = True
except ImportError:  # pragma: no cover - no compiler
    _pcap_scan = None
    HAVE_SCAN = False


class Frames:
    """Consecutive frames ``first``, ``first + 1``, ...: frame i is ``buf[offs[i]:offs[i] +
    lens[i]]`` (int64 arrays), ``ts`` its time in ns (int64, or an object array holding None
    where a frame has no time), ``orig`` its original length, ``lts`` its link type."""
    __slots__ = ("buf", "offs", "lens", "ts", "orig", "lts", "first")

    def __init__(self, buf, offs, lens, ts, orig, lts, first: int):
        self.buf, self.offs, self.lens, self.ts = buf, offs, lens, ts
        self.orig, self.lts, self.first = orig, lts, first

    def __len__(self) -> int:
        return len(self.offs)

    def cut(self, a: int, b: int) -> "Frames":
        """Frames ``a`` to ``b`` of this run (views, the same buffer)."""
        return Frames(self.buf, self.offs[a:b], self.lens[a:b], self.ts[a:b], self.orig[a:b],
                      self.lts[a:b], self.first + a)


def from_tuples(chunk: list) -> Frames:
    """A run of ``(frame number, time ns, original length, link type, bytes)`` tuples with
    consecutive numbers, joined into one buffer."""
    n, ts, orig, lts, data = zip(*chunk)
    lens = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
    offs = np.zeros(len(data), dtype=np.int64)
    np.cumsum(lens[:-1], out=offs[1:])
    t = np.array(ts, dtype=object if None in ts else np.int64)
    return Frames(b"".join(data), offs, lens, t, np.array(orig, dtype=np.int64),
                  np.array(lts, dtype=np.int64), n[0])


def _consecutive(chunk: list) -> Iterator[list]:
    """``chunk`` in runs of consecutive frame numbers (a reader's numbers always are)."""
    start = 0
    for i in range(1, len(chunk)):
        if chunk[i][0] != chunk[i - 1][0] + 1:
            yield chunk[start:i]
            start = i
    yield chunk[start:]


def frame_runs(path, segment=None, problems: list | None = None) -> Iterator[Frames]:
    """The frames of a capture (or of one segment) as :class:`Frames` runs; the problems of a
    damaged file appended to ``problems`` as ``export.frame_chunks`` does."""
    from ..capture.pcap import open_capture
    from .export import frame_chunks
    if segment is None and HAVE_SCAN:
        with open_capture(path) as cap:
            if cap.format == "pcap":
                yield from _pcap_runs(cap)
                if cap.problem_count and problems is not None:
                    problems.extend(cap.problems)
                    problems.append(cap.problem_count)
                return
    for chunk in frame_chunks(path, segment, problems):
        if chunk:
            for run in _consecutive(chunk):
                yield from_tuples(run)


def _pcap_runs(cap) -> Iterator[Frames]:
    """``_pcap_loop``'s reading of a classic pcap, records cut in C (see the module doc)."""
    import struct
    from ..capture.pcap import _MAX_RECORD, pcap_record_problem, pcap_refill
    unpack = struct.Struct(cap._endian + "IIII").unpack_from
    big = cap._endian == ">"
    nano = cap._nano
    scale = 1 if nano else 1000
    lt = cap.linktype
    src = cap._src
    fh = src.fh
    buf, pos, base = src.buf, src.pos, src.base
    n = 0
    while True:
        end = len(buf)
        need = 16
        while pos + 16 <= end:
            room = (end - pos) // 16 + 1
            offs, lens, ts, orig = (np.empty(room, dtype=np.int64) for _ in range(4))
            pos, stop, k = _pcap_scan(buf, pos, big, nano, _MAX_RECORD, offs, lens, ts, orig)
            if k:
                yield Frames(buf, offs[:k], lens[:k], ts[:k], orig[:k],
                             np.full(k, lt, dtype=np.int64), n + 1)
                n += k
            if pos + 16 > end:
                break
            sec, frac, incl, ori = unpack(buf, pos)
            if stop:        # a record the checks report: as _pcap_loop does
                msg, fatal = pcap_record_problem(incl, frac, nano)
                cap.problem("record", n + 1, base + pos, msg, fatal)
                if fatal:
                    return
            if pos + 16 + incl > end:
                need = 16 + incl
                break
            if stop:
                n += 1
                yield Frames(buf, np.array([pos + 16], dtype=np.int64),
                             np.array([incl], dtype=np.int64),
                             np.array([sec * 1_000_000_000 + frac * scale], dtype=np.int64),
                             np.array([ori], dtype=np.int64), np.array([lt], dtype=np.int64), n)
                pos += 16 + incl
        got = pcap_refill(cap, fh, buf, pos, base, need, n)
        if got is None:
            return
        buf, base = got
        pos = 0
