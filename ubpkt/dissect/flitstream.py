"""Flit streams in captures: delimit, check, reassemble and decode (UB 2.0 §4.3.4).

:func:`decode_flit_stream` turns a stream of whole 20-byte flits - pcap linktype 151 records
(or 149, the number earlier ubpkt versions wrote: ``record.FLIT_LINKTYPES``)
(flits of consecutive records form one stream), a raw file of flits, or bytes - into records, one
per DLLCB and one per reassembled DLLDP.  A DLLDP's network packet is decoded by
``ubpkt.dissect.dissect(packet, 148, profile)`` and its layers, fields and issues are merged
after the block-level ones (``ub.dlldp.*``, ``ub.lbh.*``, ``ub.bcrc.*`` / ``ub.end.*``).

Streaming: memory is bounded by one read chunk plus one DLLDP (<= 10240 bytes); the BCRCs of all
blocks completed by a chunk are checked together with numpy.
"""
from __future__ import annotations

import os
from collections import deque
from typing import Iterable, Iterator

from ..profile import SPEC, Profile
from ..link.fastdeframe import BulkDeframer, Plain
from ..link.framing import Deframer, Unit
from ..record import LINKTYPE_FLITS, make_record

__all__ = ["decode_flit_stream", "flit_stream_ndjson", "unit_record", "iter_flit_chunks",
           "LINKTYPE_FLITS"]

_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
                b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")
CHUNK = 1 << 16


def iter_flit_chunks(source, chunk_size: int = CHUNK) -> Iterator[tuple]:
    """(bytes, time_ns or None) pieces of a flit stream from any supported source."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        mv = memoryview(source)
        for i in range(0, len(mv), chunk_size):
            yield bytes(mv[i:i + chunk_size]), None
        return
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            head = fh.read(4)
            fh.seek(0)
            if head in _PCAP_MAGICS:
                from ..capture import open_capture
                with open_capture(fh) as cap:
                    yield from _from_packets(cap)
            else:
                yield from iter_flit_chunks(fh, chunk_size)
        return
    if hasattr(source, "read"):
        while True:
            b = source.read(chunk_size)
            if not b:
                return
            yield b, None
        return
    yield from _from_packets(source)


def _from_packets(packets: Iterable) -> Iterator[tuple]:
    for pkt in packets:
        data = getattr(pkt, "data", pkt)
        yield bytes(data), getattr(pkt, "time_ns", None)


def unit_record(u: Unit, frame: int, time_ns, profile: Profile) -> dict:
    """The record of one delimited unit (see module doc)."""
    n = u.flits * 20 if u.kind != "garbage" else len(u.raw or b"")
    rec = make_record(frame, None if time_ns is None else time_ns / 1e9, n, n, LINKTYPE_FLITS, [],
                      {"ub.flit.offset": u.offset, "ub.flit.index": u.offset // 20,
                       "ub.flit.count": u.flits}, list(u.issues))
    f = rec["fields"]
    if u.kind == "control":
        cb = u.control
        rec["layers"] = ["ub.flits"] + list(cb.layers)
        f["ub.dll.kind"] = "DLLCB"
        f.update(cb.fields)
        return rec
    if u.kind == "garbage":
        rec["layers"] = ["ub.flits", "data"]
        f["ub.dll.kind"] = "undelimited"
        f["data.data"] = (u.raw or b"").hex()
        return rec
    # DLLDP: block-level fields, then the network packet
    rec["layers"] = ["ub.flits", "ub.dlldp"]
    f["ub.dll.kind"] = "DLLDP"
    f["ub.dlldp.blocks"] = len(u.blocks)
    f["ub.dlldp.flits"] = u.flits
    f["ub.dlldp.error_flag"] = int(u.error_flag)
    lbh: dict = {}
    tails: dict = {}
    for i, b in enumerate(u.blocks):
        if i:
            rec["layers"].append("ub.lbh")
            for k, v in b.header.items():
                lbh.setdefault(k, []).append(v)
        for k, v in b.tail.items():
            tails.setdefault(k, []).append(v)
    f.update({k: v[0] if len(v) == 1 else v for k, v in lbh.items()})
    f.update({k: v[0] if len(v) == 1 else v for k, v in tails.items()})
    rec["layers"].append("ub.bcrc" if u.blocks and "ub.bcrc.crc30" in u.blocks[0].tail
                         else "ub.end")
    if u.packet:
        from . import LINKTYPE_UB, dissect
        fr = dissect(u.packet, LINKTYPE_UB, profile)
        rec["layers"] += fr.layers
        for k, v in fr.fields.items():
            f.setdefault(k, v)
        rec["issues"] += fr.issues
    return rec


def decode_flit_stream(source, profile: Profile = SPEC, *, crc_mode: bool | None = None,
                       controls: bool = True, start_frame: int = 1,
                       chunk_size: int = CHUNK, fast: bool = True) -> Iterator[dict]:
    """Records of a flit stream, one per DLLCB and per reassembled DLLDP, in stream order.

    ``source``: bytes; a path (pcap/pcapng of linktype 151 or the old 149, else a raw file of
    whole flits); a binary file object (raw flits); or an iterable of capture packets
    (``.data``, ``.time_ns``, e.g. ``ubpkt.capture.open_capture(path)``).  ``crc_mode``
    defaults to ``profile.crc_mode``.  A record's ``time`` is that of the capture record
    holding the unit's first flit.  ``fast``: plain DLLDPs through the bulk deframer and the
    packet templates (:mod:`ubpkt.dissect.flitfast`, the same records); False: every unit
    through the reference Deframer and dissector.
    Never raises on bad input (undelimitable bytes become records with an error issue)."""
    profile, units = _units(source, profile, crc_mode, controls, chunk_size, fast)
    if not fast:
        for frame, (u, t) in enumerate(units, start_frame):
            yield unit_record(u, frame, t, profile)
        return
    from .fastpath import TemplateCache
    from .flitfast import plain_record
    cache = TemplateCache(profile)
    crc = profile.crc_mode
    for frame, (u, t) in enumerate(units, start_frame):
        if u.__class__ is Plain:
            yield plain_record(u, frame, t, crc, cache)
        else:
            yield unit_record(u, frame, t, profile)


def flit_stream_ndjson(source, profile: Profile = SPEC, *, crc_mode: bool | None = None,
                       controls: bool = True, start_frame: int = 1,
                       chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """The ndjson lines of :func:`decode_flit_stream` (``to_json_bytes`` of each record, the
    same bytes), in chunks of whole lines, plain DLLDPs spliced from their packet's template
    line (:class:`ubpkt.dissect.flitfast.PlainLines`)."""
    from ..views.output import to_json_bytes
    from .fastpath import TemplateCache
    from .flitfast import PlainLines
    profile, units = _units(source, profile, crc_mode, controls, chunk_size, True)
    line = PlainLines(profile.crc_mode, TemplateCache(profile)).line
    out = []
    for frame, (u, t) in enumerate(units, start_frame):
        if u.__class__ is Plain:
            out.append(line(u, frame, t))
        else:
            out.append(to_json_bytes(unit_record(u, frame, t, profile)))
        if len(out) >= 2048:
            yield b"".join(out)
            out = []
    if out:
        yield b"".join(out)


def _units(source, profile: Profile, crc_mode, controls: bool, chunk_size: int, fast: bool):
    """(profile with the CRC mode, iterator of (unit, time_ns of its first flit's record)):
    reference Units, and with ``fast`` :class:`~ubpkt.link.fastdeframe.Plain` DLLDPs."""
    crc = profile.crc_mode if crc_mode is None else crc_mode
    if crc != profile.crc_mode:
        profile = profile.with_(crc_mode=crc)
    if fast:
        d = BulkDeframer(crc, covers_info=profile.bcrc_covers_info, controls=controls,
                         crd_ack_vl0_first=profile.crd_ack_vl0_first, keep_raw=True)
    else:
        d = Deframer(crc, covers_info=profile.bcrc_covers_info, controls=controls,
                     crd_ack_vl0_first=profile.crd_ack_vl0_first)
    return profile, _timed(d, _batched(iter_flit_chunks(source, chunk_size), chunk_size))


def _batched(chunks, size: int) -> Iterator[tuple]:
    """(bytes, [(offset in them, time_ns of the capture record starting there)]) of about
    ``size`` bytes of consecutive pieces: one feed for many small capture records (a
    ``link frame`` capture holds one DLLDP per record)."""
    parts, marks, n = [], [], 0
    for data, t in chunks:
        if t is not None:
            marks.append((n, t))
        parts.append(data)
        n += len(data)
        if n >= size:
            yield b"".join(parts), marks
            parts, marks, n = [], [], 0
    if parts:
        yield b"".join(parts), marks


def _timed(d, chunks) -> Iterator[tuple]:
    marks: deque = deque()          # (stream offset, time_ns) of record starts
    offs: deque = deque()
    pos = 0

    def time_at(off):
        while len(offs) > 1 and offs[1] <= off:
            offs.popleft()
            marks.popleft()
        # offs[0] <= off < offs[1] now (or off precedes every mark)
        return marks[0] if offs and offs[0] <= off else None

    for data, times in chunks:
        for rel, t in times:
            offs.append(pos + rel)
            marks.append(t)
        pos += len(data)
        for u in d.feed(data):
            yield u, time_at(u[0] if u.__class__ is Plain else u.offset)
    for u in d.close():
        yield u, time_at(u.offset)
