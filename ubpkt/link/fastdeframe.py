"""Deframing in bulk: the plain DLLDPs of a flit stream in one compiled call, the reference
:class:`~ubpkt.link.framing.Deframer` for everything else (UB 2.0 §4.3.2, §4.3.4, §4.7.2).

Most of a healthy stream is *plain* DLLDPs: every BCRC right, reserved bits and ERROR_FLAG clear,
CFG a DLLDP value, LBHs agreeing with their LPH, PLENGTH describing what the blocks carry, zero
padding, no DLLCB between the blocks.  The reference reader reports nothing on those, so all
it would produce is the packet; :func:`plain_dlldps` walks them in one call (``ubpkt._linkc``
when built, else its Python twin :func:`plain_dlldps_py`, the definition both are tested
against) and stops at the first unit that is not plain.  That unit - a DLLCB, a damaged or
unusual DLLDP - goes, alone and whole, through the reference Deframer, whose issues and
fields are then exactly the reference's: :class:`BulkDeframer` gives the same units in the same
order as :class:`~ubpkt.link.framing.Deframer` (``tests/link/test_fastdeframe.py`` compares
them flit by flit, corrupted streams included).
"""
from __future__ import annotations

from array import array

from .blocks import FLIT, next_block
from .crc30 import block_crc, native
from .framing import DLLDP_CFGS, Deframer
from .plength import packet_length

__all__ = ["BulkDeframer", "Plain", "plain_dlldps", "plain_dlldps_py", "lengths_table",
           "CFG_MASK", "mark_time"]

#: bit c set for every CFG a DLLDP may carry (framing.DLLDP_CFGS)
CFG_MASK = sum(1 << c for c in DLLDP_CFGS)
_TABLES: dict = {}


def lengths_table(crc_mode: bool) -> array:
    """int32 per PLENGTH value (16384): the network packet length it describes, -1 for a
    reserved encoding (:func:`ubpkt.link.plength.packet_length`, computed once per mode)."""
    t = _TABLES.get(crc_mode)
    if t is None:
        t = _TABLES[crc_mode] = array("i", (-1 if n is None else n for n in
                                            (packet_length(p, crc_mode) for p in range(16384))))
    return t


def mark_time(marks, at: int) -> tuple:
    """``(sec, frac)`` of the first capture record whose data reaches stream offset ``at``
    (``marks``: int64 triples ``(end, sec, frac)``, ends non-decreasing; a memoryview of
    format ``q`` or any buffer of them), the last record's when none does: the time of the
    record whose arrival completed a unit ending at ``at`` (``_linkc``'s ``mark_find``)."""
    mk = marks if isinstance(marks, memoryview) and marks.format == "q" else \
        memoryview(marks).cast("B").cast("q")
    n = len(mk) // 3
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if mk[3 * mid] < at:
            lo = mid + 1
        else:
            hi = mid
    k = 3 * min(lo, n - 1)
    return mk[k + 1], mk[k + 2]


def plain_dlldps_py(buf, total: int, crc_mode: bool, covers_info: bool, cfg_mask: int,
                    lengths, out, sec: int = 0, frac: int = 0, marks=None,
                    mark_base: int = 0) -> tuple:
    """The Python twin of ``_linkc.plain_dlldps`` (see its comment in ``ubpkt/_linkc.c``):
    ``(done_flits, stop, items)`` for the plain DLLDPs at the start of ``buf`` (a unit
    boundary, ``total`` whole flits).  ``stop`` 1: the unit at ``done_flits`` is not plain; 0:
    it is not complete.  ``out`` None: ``items`` lists ``(start flit, flits, blocks, packet)``;
    a bytearray: each packet is appended as a little-endian pcap record and ``items`` counts
    them.  ``marks`` (int64 triples ``(end, sec, frac)`` of the capture records, ends counted
    from ``mark_base`` bytes before ``buf[0]``): each record gets the time of the capture
    record that completed its DLLDP (:func:`mark_time`) instead of ``sec``/``frac``."""
    mk = memoryview(marks).cast("B").cast("q") if marks is not None and len(marks) else None
    b = bytes(buf[:total * FLIT])
    pos = count = 0
    items = [] if out is None else None
    trailer = 4 if crc_mode else 0
    while pos < total:
        h = pos * FLIT
        b0, b1 = b[h], b[h + 1]
        if b1 & 0x0F == 0 or b0 & 0x02 or b1 & 0x10 or not cfg_mask >> (b1 & 0x0F) & 1:
            return pos, 1, items if out is None else count
        plen = ((b[h + 2] & 0x3F) << 8) | b[h + 3]
        expected = lengths[plen]
        nb, lastf = (plen >> 10) + 1, ((plen >> 5) & 0x1F) + 1
        flits = (nb - 1) * 32 + lastf
        if expected < 0:
            return pos, 1, items if out is None else count
        if pos + flits > total:
            break
        parts = [b[h:h + 4]]
        done = 0
        for k in range(nb):
            s = h + k * 640
            last = k == nb - 1
            n = (lastf if last else 32) * FLIT
            hl = 2 if k else 4
            if k and (b[s + 1] & 0x0F == 0 or b[s] & 0x03 != b0 & 0x01 or b[s + 1] != b1):
                return pos, 1, items if out is None else count
            if crc_mode:
                word = int.from_bytes(b[s + n - 4:s + n], "big")
                if word >> 30 or block_crc(b[s:s + n - 4], 0, covers_info) != word & 0x3FFFFFFF:
                    return pos, 1, items if out is None else count
            elif last and b[s + n - 1]:
                return pos, 1, items if out is None else count
            end = n - (trailer if crc_mode else (1 if last else 0))
            room = end - hl
            take = expected - 4 - done if last else room
            if not 0 <= take <= room or b[s + hl + take:s + end].count(0) != end - hl - take:
                return pos, 1, items if out is None else count
            parts.append(b[s + hl:s + hl + take])
            done += take
        pkt = b"".join(parts)
        if out is None:
            items.append((pos, flits, nb, pkt))
        else:
            if mk is not None:
                sec, frac = mark_time(mk, mark_base + (pos + flits) * FLIT)
            out += (sec.to_bytes(4, "little") + frac.to_bytes(4, "little")
                    + len(pkt).to_bytes(4, "little") * 2 + pkt)
        count += 1
        pos += flits
    return pos, 0, items if out is None else count


def plain_dlldps(buf, total, crc_mode, covers_info, cfg_mask, lengths, out, sec=0, frac=0,
                 marks=None, mark_base=0):
    """:func:`plain_dlldps_py` in one compiled call when ``ubpkt._linkc`` is the CRC30 engine
    (:func:`ubpkt.link.crc30.native`), else the twin itself."""
    nat = native()
    if nat is not None and hasattr(nat, "plain_dlldps"):
        if marks is None:
            return nat.plain_dlldps(buf, total, crc_mode, covers_info, cfg_mask, lengths, out,
                                    sec, frac)
        return nat.plain_dlldps(buf, total, crc_mode, covers_info, cfg_mask, lengths, out,
                                sec, frac, marks, mark_base)
    return plain_dlldps_py(buf, total, crc_mode, covers_info, cfg_mask, lengths, out, sec, frac,
                           marks, mark_base)


class Plain(tuple):
    """A plain DLLDP: ``(offset, flits, blocks, packet, raw)`` - stream byte offset, flits,
    DLLDBs, the network packet (LPH first) and, when the reader keeps them, the DLLDP's flits
    (the record needs their LBHs and BCRCs).  The reference reader reports no issue on it."""
    __slots__ = ()
    kind = "plain"


class BulkDeframer:
    """The units of :class:`~ubpkt.link.framing.Deframer` (same order, same values), with
    every plain DLLDP given as a :class:`Plain` tuple instead of a ``Unit`` (its issues are
    empty, its blocks are read from ``raw`` only when a record wants them).

    ``feed(data)`` returns what is complete; ``close()`` the rest.  ``pcap=True``:
    :meth:`feed_pcap` appends plain DLLDPs to a pcap body instead (``link deframe``)."""

    def __init__(self, crc_mode: bool = True, *, covers_info: bool = True,
                 controls: bool = True, crd_ack_vl0_first: bool = False,
                 keep_raw: bool = False):
        self.crc_mode = crc_mode
        self.covers_info = covers_info
        self.keep_raw = keep_raw
        self._ref = Deframer(crc_mode, covers_info=covers_info, controls=controls,
                             crd_ack_vl0_first=crd_ack_vl0_first)
        self._lengths = lengths_table(crc_mode)
        self._buf = bytearray()
        self._base = 0
        #: plain DLLDPs / units through the reference reader, so far
        self.plain = 0
        self.reference = 0

    def feed(self, data) -> list:
        """Units and :class:`Plain` DLLDPs completed by ``data``, in stream order."""
        out: list = []
        self._run(data, out, None, 0, 0)
        return out

    def feed_pcap(self, data, body: bytearray, sec: int = 0, frac: int = 0) -> list:
        """As :meth:`feed`, but plain DLLDPs are appended to ``body`` as pcap records of time
        ``sec``/``frac`` (and counted in :attr:`plain`) rather than returned: the list holds the
        other units only, the records of reference units are the caller's to write - in order,
        so ``body`` is flushed before each returned unit: the list holds ``(unit, body length
        when it came)``."""
        out: list = []
        self._run(data, out, body, sec, frac)
        return out

    @property
    def inbox(self) -> bytearray:
        """The bytes not yet delimited, which every feed appends to: a caller that builds the
        stream itself may append to it and feed ``None`` (one copy less)."""
        return self._buf

    def feed_pcap_marked(self, data, body: bytearray, marks) -> list:
        """As :meth:`feed_pcap` for the data of many capture records at once (``data``, their
        flits back to back; ``marks``, int64 triples ``(end, sec, frac)`` per record, ``end``
        counted from the start of ``data`` - from the start of :attr:`inbox` when ``data`` is
        None, the records then already appended to it): every unit gets the time of the record
        that completed it, as feeding the records one by one with :meth:`feed_pcap` gives.
        The list holds ``(unit, body length when it came, (sec, frac))``."""
        if not len(marks):
            raise ValueError("feed_pcap_marked needs the marks of at least one record")
        out: list = []
        self._run(data, out, body, 0, 0, marks)
        return out

    def _run(self, data, out, body, sec, frac, marks=None) -> None:
        buf = self._buf
        # bytes before data: marks count from there (from the buffer's start when the caller
        # appended the records to the inbox itself)
        lead = 0 if data is None and marks is not None else len(buf)
        if data:
            buf += data
        pos = 0
        n = len(buf)
        crc, cov, lengths, keep = self.crc_mode, self.covers_info, self._lengths, self.keep_raw
        while n - pos >= FLIT:
            total = (n - pos) // FLIT
            with memoryview(buf) as mv, mv[pos:] as view:
                done, stop, items = plain_dlldps(view, total, crc, cov, CFG_MASK, lengths,
                                                 body, sec, frac, marks, pos - lead)
            if body is None:
                base = self._base + pos
                for start, flits, nb, pkt in items:
                    raw = bytes(buf[pos + start * FLIT:pos + (start + flits) * FLIT]) \
                        if keep else None
                    out.append(Plain((base + start * FLIT, flits, nb, pkt, raw)))
                self.plain += len(items)
            else:
                self.plain += items
            pos += done * FLIT
            if not stop:
                break
            size = self._unit_size(buf, pos, n)
            if size is None:
                break                       # the unit is not complete yet
            ref = self._ref
            ref._base = self._base + pos
            units = ref.feed(bytes(buf[pos:pos + size]))
            self.reference += 1
            pos += size
            if marks is not None:
                when = mark_time(marks, pos - lead)
                out.extend((u, len(body), when) for u in units)
            else:
                out.extend(units if body is None else ((u, len(body)) for u in units))
        del buf[:pos]
        self._base += pos

    @staticmethod
    def _unit_size(buf, pos: int, n: int):
        """Bytes of the whole unit at ``buf[pos]`` (a DLLCB, or a DLLDP with any DLLCBs between
        its blocks), delimited as the reference does (:func:`next_block`); None when ``buf``
        ends before it does."""
        at, pending = pos, None
        while n - at >= FLIT:
            kind, flits, after = next_block(buf, at, pending)
            at += flits * FLIT
            if at > n:
                return None
            if kind == "cb" and pending is None:
                return at - pos                 # a DLLCB on its own
            pending = after
            if pending is None:
                return at - pos
        return None

    def close(self) -> list:
        """The units left: a truncated DLLDP or trailing bytes, as the reference reports them."""
        ref = self._ref
        ref._base = self._base
        out = ref.feed(bytes(self._buf)) if self._buf else []
        self._base += len(self._buf)
        self._buf.clear()
        return out + ref.close()
