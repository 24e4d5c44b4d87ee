"""The template index probe and guard of many frames in one call (the exporter's columnar path).

A fast-path template (``ubpkt.dissect.fastpath._build``) generates its guard ``ok`` as Python
source; the same values are kept here as data, :class:`GuardData`: the size rule (an exact
length, or bounds on where the payload ends, ``E = L - tail - P`` with ``P`` the padding count
read per frame), the guard mask and value over the header region, the length relations
(a field equal to the frame length less a constant; a packet length encoded in a field, as a
table of the lengths its values give), the zero padding, and the ICRC plan (coverage start,
the end of the header bytes OR-masked before the CRC, the mask, where the stored value is and
its byte order).  ``tests/test_bulkguard.py`` checks :func:`guard_ok` against ``ok``.

:class:`BulkIndex` packs a :class:`ubpkt.dissect.fastpath.TemplateCache`'s probe index
(``(region, steering mask) -> {masked region: [templates]}``, in probe order) and its
templates' guards into numpy arrays; :func:`probe_guard` finds, for each frame of a block (one
buffer, offsets and lengths), the first template whose probe and guard it passes, as
``TemplateCache._candidates`` and ``ok`` would one frame at a time (continuing with the next
probe when every template of a probe refuses), and returns its index; :data:`NO_TEMPLATE` when
none fits; or -1: the frame takes the per-frame path (a template whose guard is not data, or
anything the bulk code does not cover).  The work is done by ``ubpkt._linkc.probe_guard``
(C) where the extension is built; :func:`probe_guard_py` is its pure-Python twin over the same
arrays (the reference the C code is tested against, too slow to be a fallback: without the
extension the exporter keeps its per-frame path).  The choices the spec leaves to us are named
settings here (:data:`MAX_FIELD_BITS`, :data:`MAX_TABLE_BITS`) and in
``ubpkt.analytics.columnar`` (``WINDOW``, ``FIRST_WINDOW``, ``REBUILD_AFTER``).
"""
from __future__ import annotations

import zlib

__all__ = ["NO_TEMPLATE", "GuardData", "guard_ok", "BulkIndex", "probe_guard", "probe_guard_py",
           "HAVE_C"]

try:
    from .. import _linkc
    HAVE_C = hasattr(_linkc, "probe_guard")
except ImportError:  # pragma: no cover - no compiler
    _linkc = None
    HAVE_C = False

#: probe_guard's answer for a frame no template of the index fits (-1: the per-frame path)
NO_TEMPLATE = -2
#: Widest field the bulk guard reads (a length relation, an encoded length, the padding count):
#: 7 bytes at any bit offset fit one 64-bit read; wider ones leave the template per frame.
MAX_FIELD_BITS = 56
#: Widest encoded-length field tabulated (2**bits packet lengths); wider: per frame.
MAX_TABLE_BITS = 16
#: Columns of a packed guard row (see :meth:`BulkIndex._guard_row`).
GUARD_COLS = 32


class GuardData:
    """A template's guard as data: the tests ``_Template.ok`` runs, built from the same values.

    ``region`` bytes of header, ``gmask``/``gval`` (ints over them); ``exact`` (the only frame
    length) or the payload end ``E = L - tail - P`` bounded by ``lo`` <= E (<= ``hi``), ``E -
    data_off`` not in ``barred``, ``L >= min_len``; ``pad``: ``(bit, bits)`` of the padding
    count P (non-zero) or None; ``lenrel``: ``(bit, bits, c)``: the field equals ``L - c``;
    ``encoded``: ``(bit, bits, length_of, profile)``: ``length_of(field, profile) == L``;
    ``zero_fixed``: ``(a, b)``: ``buf[L-a:L-b]`` all zero; ``zero_pad``: ``buf[E:L-zero_pad]``
    all zero (None: no variable padding); ``icrc``: ``(start, hdr_end, ormask bytes, end,
    exact, byte order)``: CRC-32 of ``buf[start:hdr_end] | ormask`` then ``buf[hdr_end:X]``
    equals ``buf[X:]`` read in that order, X = ``end`` when ``exact`` else ``L - 4``."""
    __slots__ = ("region", "gmask", "gval", "exact", "tail", "lo", "hi", "barred", "data_off",
                 "min_len", "pad", "lenrel", "encoded", "zero_fixed", "zero_pad", "icrc")

    def __init__(self, region, gmask, gval, *, exact, tail, lo, hi, barred, data_off, min_len,
                 pad, lenrel, encoded, zero_fixed, zero_pad, icrc):
        self.region, self.gmask, self.gval = region, gmask, gval
        self.exact, self.tail, self.lo, self.hi = exact, tail, lo, hi
        self.barred, self.data_off, self.min_len, self.pad = tuple(barred), data_off, min_len, pad
        self.lenrel, self.encoded = tuple(lenrel), tuple(encoded)
        self.zero_fixed, self.zero_pad, self.icrc = tuple(zero_fixed), zero_pad, icrc


def _field(buf, bit: int, bits: int) -> int:
    a, e = bit // 8, (bit + bits + 7) // 8
    return (int.from_bytes(buf[a:e], "big") >> (8 * e - bit - bits)) & ((1 << bits) - 1)


def guard_ok(g: GuardData, buf) -> bool:
    """Whether frame ``buf`` passes guard ``g`` (what the template's ``ok`` answers)."""
    L = len(buf)
    if g.exact is not None:
        if L != g.exact:
            return False
        E = None
    else:
        if L < g.min_len:
            return False
        P = 0
        if g.pad is not None:
            P = _field(buf, *g.pad)
            if not P:
                return False
        E = L - g.tail - P
        if E < g.lo or (g.hi is not None and E > g.hi) or E - g.data_off in g.barred:
            return False
    if int.from_bytes(buf[:g.region], "big") & g.gmask != g.gval:
        return False
    for bit, bits, c in g.lenrel:
        if _field(buf, bit, bits) != L - c:
            return False
    for bit, bits, length_of, profile in g.encoded:
        if length_of(_field(buf, bit, bits), profile) != L:
            return False
    for a, b in g.zero_fixed:
        if buf[L - a:L - b if b else L].count(0) != a - b:
            return False
    if g.zero_pad is not None and any(buf[E:L - g.zero_pad if g.zero_pad else L]):
        return False
    if g.icrc is not None:
        start, hdr_end, ormask, end, exact, order = g.icrc
        x = end if exact else L - 4
        h = (int.from_bytes(buf[start:hdr_end], "big") | int.from_bytes(ormask, "big")
             ).to_bytes(hdr_end - start, "big")
        if zlib.crc32(buf[hdr_end:x], zlib.crc32(h)) != int.from_bytes(buf[x:], order):
            return False
    return True


def key_hash(masked: bytes, mask: bytes) -> int:
    """The 64-bit hash of a header region masked with ``mask`` (the C code computes the same):
    its 8-byte words, those the mask leaves all zero skipped (they are zero in every key)."""
    h = (0xCBF29CE484222325 ^ len(masked)) & 0xFFFFFFFFFFFFFFFF
    for i in range(0, len(masked), 8):
        if not any(mask[i:i + 8]):
            continue
        k = int.from_bytes(masked[i:i + 8], "little")
        h = ((h ^ k) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 32
    return h


class BulkIndex:
    """A template cache's probe index and guards as arrays (a snapshot: rebuilt when the cache
    holds other templates, see :meth:`stale`).  ``templates[i]``: the template of index i
    (shared by every BulkIndex of one export through ``ids``, so one index names one template
    across link types)."""

    def __init__(self, cache, ids: dict, templates: list):
        self.compiled = cache.compiled
        self.count = cache._count
        self.inserted = len(getattr(cache, "inserted", ()))
        blob = bytearray()
        aux: list = []
        group_rows, slot_rows, lists = [], [], []
        guards = {}
        for region, smask, table in cache._groups:
            keys = [(k, lst) for k, lst in table.items() if lst]
            size = 8
            while size < 2 * len(keys) + 1:
                size *= 2
            mask_off = len(blob)
            mb = smask.to_bytes(region, "big")
            blob += mb
            base = len(slot_rows)
            slots = [[-1, 0, 0] for _ in range(size)]
            for k, lst in keys:
                kb = k.to_bytes(region, "big")
                j = key_hash(kb, mb) & (size - 1)
                while slots[j][0] != -1:
                    j = (j + 1) & (size - 1)
                ko = len(blob)
                blob += kb
                slots[j] = [ko, len(lists), len(lst)]
                for t in lst:
                    i = ids.get(t)
                    if i is None:
                        i = ids[t] = len(templates)
                        templates.append(t)
                    lists.append(i)
                    if i not in guards:
                        guards[i] = t
            slot_rows.extend(slots)
            group_rows.append((region, mask_off, base, size - 1))
        import numpy as np     # here, not at import: fastpath imports this module for GuardData
        n = len(templates)
        rows = np.zeros((max(n, 1), GUARD_COLS), dtype=np.int64)
        for i, t in guards.items():
            rows[i] = self._guard_row(t, blob, aux)
        self.groups = np.array(group_rows or [(0, 0, 0, 0)], dtype=np.int64).reshape(-1, 4)
        self.ngroups = len(group_rows)
        self.slots = np.array(slot_rows or [(-1, 0, 0)], dtype=np.int64).reshape(-1, 3)
        self.lists = np.array(lists or [0], dtype=np.int64)
        self.guards = rows
        self.aux = np.array(aux or [0], dtype=np.int64)
        self.blob = bytes(blob) or b"\0"
        self.max_region = max([r for r, *_ in group_rows], default=0)

    def stale(self, cache) -> bool:
        """Whether ``cache`` holds other templates than when this snapshot was taken."""
        return cache.compiled != self.compiled or cache._count != self.count

    def none_fits(self, cache, buf) -> bool:
        """After :data:`NO_TEMPLATE` for ``buf`` from this snapshot: whether no template of
        ``cache`` now can fit it either - none was dropped since, and the probe of none put in
        since finds it (then the per-frame probe would find nothing: the dissector's turn)."""
        if cache._count - self.count != cache.compiled - self.compiled:
            return False                # templates were dropped: ask the cache
        for t in cache.inserted[self.inserted:]:
            region, smask = t.probe
            if len(buf) >= region and int.from_bytes(buf[:region], "big") & smask in t.keys:
                return False
        return True

    @staticmethod
    def _guard_row(t, blob: bytearray, aux: list) -> list:
        """One template's guard packed as int64s (offsets into ``blob`` and ``aux``); column 0
        is 0 when the template is not checked in bulk (its frames take the per-frame path)."""
        row = [0] * GUARD_COLS
        g = t.guard
        if g is None or t.ok is None:
            return row
        fields = [g.pad] if g.pad else []
        fields += [(b, n) for b, n, _ in g.lenrel] + [(b, n) for b, n, *_ in g.encoded]
        if any(n > MAX_FIELD_BITS for _, n in fields):
            return row
        if g.icrc is not None:
            start, hdr_end, ormask, end, exact, order = g.icrc
            if exact and (g.exact is None or g.exact - end != 4):
                return row
        enc = []
        for bit, bits, length_of, profile in g.encoded:
            if bits > MAX_TABLE_BITS:
                return row
            try:
                table = [length_of(v, profile) for v in range(1 << bits)]
            except Exception:
                return row
            enc.append((bit, bits, [v if isinstance(v, int) and v >= 0 else -1
                                    for v in table]))
        row[0] = 1
        row[1] = g.region
        row[2] = len(blob)
        blob += g.gmask.to_bytes(g.region, "big") + g.gval.to_bytes(g.region, "big")
        row[3] = -1 if g.exact is None else g.exact
        row[4], row[5] = g.tail, g.lo
        row[6] = -1 if g.hi is None else g.hi
        row[7], row[8] = g.data_off, g.min_len
        row[9], row[10] = (g.pad if g.pad else (-1, 0))
        row[11], row[12] = len(aux), len(g.barred)
        aux.extend(g.barred)
        row[13], row[14] = len(aux), len(g.lenrel)
        for rel in g.lenrel:
            aux.extend(rel)
        row[15], row[16] = len(aux), len(enc)
        heads = len(aux)
        aux.extend([0, 0, 0] * len(enc))
        for j, (bit, bits, table) in enumerate(enc):
            aux[heads + 3 * j:heads + 3 * j + 3] = [bit, bits, len(aux)]
            aux.extend(table)
        row[17], row[18] = len(aux), len(g.zero_fixed)
        for pair in g.zero_fixed:
            aux.extend(pair)
        row[19] = -1 if g.zero_pad is None else g.zero_pad
        if g.icrc is not None:
            start, hdr_end, ormask, end, exact, order = g.icrc
            row[20], row[21], row[22] = 1, start, hdr_end
            row[23] = len(blob)
            blob += ormask
            row[24] = end if exact else -1
            row[25] = 1 if order == "little" else 0
        return row

    def arrays(self):
        """The arguments :func:`probe_guard` passes after the frames."""
        return (self.groups, self.ngroups, self.slots, self.lists, self.guards, self.aux,
                self.blob, self.max_region)


def probe_guard(index: BulkIndex, buf, offs, lens):
    """The template index (into ``index``'s templates) of every frame ``buf[offs[i]:offs[i] +
    lens[i]]``, :data:`NO_TEMPLATE` where none fits, -1 where the frame takes the per-frame
    path (C; :func:`probe_guard_py` when the extension is missing)."""
    import numpy as np
    offs = np.ascontiguousarray(offs, dtype=np.int64)
    lens = np.ascontiguousarray(lens, dtype=np.int64)
    out = np.empty(len(offs), dtype=np.int64)
    fn = _linkc.probe_guard if HAVE_C else probe_guard_py
    fn(buf, offs, lens, out, *index.arrays())
    return out


# --- the pure-Python twin of _linkc.probe_guard, over the same arrays --------------------------

def _guard_py(b, L, row, aux, blob):
    """1: the frame passes the packed guard ``row``, 0: it fails, -1: outside what the bulk
    guard covers (the frame goes per frame)."""
    region = row[1]
    exact = row[3]
    E = 0
    if exact >= 0:
        if L != exact:
            return 0
    else:
        if L < row[8] or L < region:
            return 0
        P = 0
        if row[9] >= 0:
            P = _field(b, row[9], row[10])
            if not P:
                return 0
        E = L - row[4] - P
        if E < row[5] or (row[6] >= 0 and E > row[6]):
            return 0
        if any(E - row[7] == x for x in aux[row[11]:row[11] + row[12]]):
            return 0
    mo = row[2]
    for i in range(region):
        if b[i] & blob[mo + i] != blob[mo + region + i]:
            return 0
    for j in range(row[14]):
        bit, bits, c = aux[row[13] + 3 * j:row[13] + 3 * j + 3]
        if _field(b, bit, bits) != L - c:
            return 0
    for j in range(row[16]):
        bit, bits, tab = aux[row[15] + 3 * j:row[15] + 3 * j + 3]
        if aux[tab + _field(b, bit, bits)] != L:
            return 0
    for j in range(row[18]):
        a, z = aux[row[17] + 2 * j:row[17] + 2 * j + 2]
        if a > L:
            return -1
        if any(b[L - a:L - z]):
            return 0
    if row[19] >= 0:
        stop = L - row[19]
        if E > stop:
            return -1
        if any(b[E:stop]):
            return 0
    if row[20]:
        start, hdr_end, orm = row[21], row[22], row[23]
        x = row[24] if row[24] >= 0 else L - 4
        if x < hdr_end or x + 4 != L:
            return -1
        h = bytes(b[start + i] | blob[orm + i] for i in range(hdr_end - start))
        stored = int.from_bytes(b[x:L], "little" if row[25] else "big")
        if zlib.crc32(b[hdr_end:x], zlib.crc32(h)) != stored:
            return 0
    return 1


_PER_FRAME = -1


def probe_guard_py(buf, offs, lens, out, groups, ngroups, slots, lists, guards, aux, blob,
                   max_region) -> None:
    """The pure-Python twin of ``_linkc.probe_guard`` (same arguments, same ``out``)."""
    aux = aux.tolist()
    guards = guards.tolist()
    groups = groups.tolist()
    slots = slots.tolist()
    lists = lists.tolist()
    mv = memoryview(buf)
    order = list(range(ngroups))    # a group that finds a frame's template moves forward
    for f in range(len(offs)):
        o, L = int(offs[f]), int(lens[f])
        b = bytes(mv[o:o + L])
        res = NO_TEMPLATE
        for pi in range(ngroups):
            gi = order[pi]
            region, mask_off, base, smask = groups[gi]
            if L < region:
                continue
            masked = bytes(x & y for x, y in zip(b[:region], blob[mask_off:mask_off + region]))
            j = key_hash(masked, blob[mask_off:mask_off + region]) & smask
            found = None
            while slots[base + j][0] != -1:
                ko, lo, ln = slots[base + j]
                if blob[ko:ko + region] == masked:
                    found = (lo, ln)
                    break
                j = (j + 1) & smask
            if found is None:
                continue
            stop = False
            for t in lists[found[0]:found[0] + found[1]]:
                row = guards[t]
                if not row[0]:
                    stop = True         # a template checked per frame only: the frame too
                    break
                ok = _guard_py(b, L, row, aux, blob)
                if ok:
                    res = t if ok > 0 else _PER_FRAME
                    stop = True
                    break
            if stop:
                if res == NO_TEMPLATE:
                    res = _PER_FRAME
                if res >= 0 and pi > 0:
                    order[pi - 1], order[pi] = gi, order[pi - 1]
                break
        out[f] = res
