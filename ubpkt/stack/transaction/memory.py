"""Target (and initiator) memory: byte-addressed segments with their access credentials.

A memory segment (UB 2.0 §8.2.1; access control §11.4) is registered with a base address, a size
(backed by a ``bytearray``, or a caller's writable buffer), a TokenID (20 bits, carried in the
MAETAH, §7.2.3), an optional TokenValue (carried in the TVETAH, §7.2.5) and the operations it
grants (read, write, atomic).  :meth:`Memory.check` is the target's access check:

* a zero-length access needs no verification (§7.2.5: no data, no check);
* the TokenID must name a registered segment (the UMMU permission table, §11.4.3);
* when the segment has a TokenValue the request must carry the same one (or the segment's backup
  value during a permission hand-over, §11.4.4); a segment without one accepts a request with
  or without a TokenValue (the "TokenID only" policy of §11.4.3);
* the segment must grant the permission and hold the whole range.

Any failure gives ``remote_access_error`` (sent as RSPST Completer Error, RSPINFO Remote Abort;
see :mod:`ubpkt.stack.transaction.ops`) and the caller changes no byte.
"""
from __future__ import annotations

import bisect
from enum import IntFlag

from .ops import REMOTE_ACCESS_ERROR, SUCCESS, TransactionError

__all__ = ["Perm", "Region", "Memory"]


class Perm(IntFlag):
    """What a segment grants."""
    READ = 1
    WRITE = 2
    ATOMIC = 4
    RW = 3
    ALL = 7


def _perm(p) -> int:
    if isinstance(p, str):
        out = 0
        for ch in p.lower():
            out |= {"r": Perm.READ, "w": Perm.WRITE, "a": Perm.ATOMIC}[ch]
        return int(out)
    return int(p)


class Region:
    """One registered segment: ``base``, ``size``, ``buf`` (its bytes), ``view`` (a memoryview
    of them), ``tokenid``, ``tokenvalue`` (None: none required), ``backup_tokenvalue``,
    ``perms``."""

    __slots__ = ("base", "size", "end", "buf", "view", "tokenid", "tokenvalue",
                 "backup_tokenvalue", "perms")

    def __init__(self, base: int, buf, tokenid: int, tokenvalue, perms: int,
                 backup_tokenvalue=None):
        self.base = base
        self.buf = buf
        self.view = memoryview(buf).cast("B")
        if self.view.readonly:
            raise TransactionError("a memory segment needs a writable buffer")
        self.size = len(self.view)
        self.end = base + self.size
        self.tokenid = tokenid
        self.tokenvalue = tokenvalue
        self.backup_tokenvalue = backup_tokenvalue
        self.perms = perms

    def __repr__(self) -> str:
        return (f"<Region {self.base:#x}+{self.size} tokenid={self.tokenid} "
                f"perms={Perm(self.perms)!r}>")


class Memory:
    """The segments of one endpoint, found by TokenID (target checks) or by address (local
    buffers of the initiator)."""

    def __init__(self):
        self._by_token: dict[int, Region] = {}
        self._bases: list[int] = []
        self._regions: list[Region] = []

    def register(self, base: int, size: int | None = None, *, tokenid: int,
                 tokenvalue: int | None = None, perms="rwa", buffer=None,
                 backup_tokenvalue: int | None = None) -> Region:
        """A new segment at ``base``: ``size`` zero bytes, or ``buffer`` (a writable bytes-like
        object, used in place).  ``perms``: a :class:`Perm` or a string of ``r``, ``w``,
        ``a``."""
        if tokenid in self._by_token:
            raise TransactionError(f"TokenID {tokenid} is registered already")
        if not 0 <= tokenid < 1 << 20:
            raise TransactionError("a TokenID has 20 bits (UB 2.0 §7.2.3)")
        if buffer is None:
            if size is None:
                raise TransactionError("give a size or a buffer")
            buffer = bytearray(size)
        r = Region(base, buffer, tokenid, tokenvalue, _perm(perms), backup_tokenvalue)
        i = bisect.bisect_left(self._bases, base)
        if (i < len(self._regions) and self._regions[i].base < r.end) or \
                (i > 0 and self._regions[i - 1].end > base):
            raise TransactionError(f"segment {base:#x}+{r.size} overlaps another")
        self._bases.insert(i, base)
        self._regions.insert(i, r)
        self._by_token[tokenid] = r
        return r

    def deregister(self, tokenid: int) -> None:
        r = self._by_token.pop(tokenid)
        i = self._regions.index(r)
        del self._regions[i]
        del self._bases[i]

    def region(self, tokenid: int) -> Region | None:
        return self._by_token.get(tokenid)

    def regions(self) -> list[Region]:
        return list(self._regions)

    # -- the target's check -----------------------------------------------------------------------
    def check(self, addr: int, length: int, tokenid: int, tokenvalue: int | None, perm) -> str:
        """``success`` or ``remote_access_error`` (module doc)."""
        return self.access(addr, length, tokenid, tokenvalue, _perm(perm))[0]

    def access(self, addr: int, length: int, tokenid: int, tokenvalue: int | None,
               perm: int):
        """(status, memoryview of the range or None): :meth:`check` and the bytes to act on
        (``perm`` an int of :class:`Perm`)."""
        if length == 0:
            r = self._by_token.get(tokenid)
            return SUCCESS, (r.view[0:0] if r is not None else memoryview(b""))
        r = self._by_token.get(tokenid)
        if r is None:
            return REMOTE_ACCESS_ERROR, None
        tv = r.tokenvalue
        if tv is not None and tokenvalue != tv and (r.backup_tokenvalue is None or
                                                    tokenvalue != r.backup_tokenvalue):
            return REMOTE_ACCESS_ERROR, None
        if r.perms & perm != perm:
            return REMOTE_ACCESS_ERROR, None
        off = addr - r.base
        if off < 0 or off + length > r.size:
            return REMOTE_ACCESS_ERROR, None
        return SUCCESS, r.view[off:off + length]

    # -- local access (no credentials) --------------------------------------------------------------
    def find(self, addr: int) -> Region | None:
        i = bisect.bisect_right(self._bases, addr) - 1
        if i >= 0 and addr < self._regions[i].end:
            return self._regions[i]
        return None

    def view(self, addr: int, length: int) -> memoryview:
        """The bytes ``addr .. addr+length`` of the segment that holds them (local access)."""
        r = self.find(addr)
        if r is None or addr + length > r.end:
            raise TransactionError(f"{addr:#x}+{length} is not inside one registered segment")
        off = addr - r.base
        return r.view[off:off + length]

    def read(self, addr: int, length: int) -> bytes:
        return bytes(self.view(addr, length))

    def write(self, addr: int, data) -> None:
        self.view(addr, len(data))[:] = data
