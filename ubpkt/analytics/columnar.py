"""The columnar fast path of the exporter: frames that fit a layout template are grouped per
template and their fields cut with numpy over the whole group; other frames take the record
path.

A template of :class:`ubpkt.dissect.fastpath.TemplateCache` knows its layout's fields as data
(``_Template.columns``: each field's absolute bit position and width, its text format, enum
names, interpretation, or the constant the template guards) and has a guard-only function
(``_Template.ok``: the same size, guard-mask, length-relation, padding and ICRC tests as the
template's decoder).  Per frame, this module does only the index probe and the guard; per block
of frames (at most :data:`BLOCK` rows and :data:`BLOCK_BYTES` bytes) and template, the header
bytes of the group become one ``(frames, region bytes)`` uint8 matrix and every field one
vectorised bit cut.  Text forms (addresses), enum names and interpretations are computed once
per distinct value (``numpy.unique``) and kept as codes (``rows.Coded``).  Templates without a column plan (computed lists such as a
TPSACK's PSNs, atomic operands) decode through their generated function, and frames no template
fits through the dissector - both as records (:meth:`BatchBuilder.add`).

``tests/analytics/test_columnar.py`` checks the rows against the record path frame by frame.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager

import numpy as np

from ..formats.core import value_to_text
from ..formats.derived import interpret
from .rows import Coded, Const

try:
    from .._linkc import gather_rows
except ImportError:  # pragma: no cover - no compiler
    gather_rows = None

__all__ = ["export_frames", "BLOCK", "BLOCK_BYTES", "cut_field"]

#: Frames collected before the groups are cut: a whole row group by default (about 100
#: templates share a block, so each group's numpy calls cover BLOCK / 100 frames on average:
#: 16384 gave ~160-frame groups and cost 10 % more), bounded in memory by BLOCK_BYTES.
BLOCK = 131072
#: Frame bytes held before the groups are cut (jumbo frames reach it before BLOCK frames).
BLOCK_BYTES = 64 << 20


def _combine(m: np.ndarray, a: int, e: int) -> np.ndarray:
    """Bytes ``a:e`` (at most 8) of every row of ``m`` as big-endian uint64."""
    v = m[:, a].astype(np.uint64)
    for i in range(a + 1, e):
        v = (v << np.uint64(8)) | m[:, i]
    return v


#: Integer keys below this are made distinct with a presence table instead of a sort (the same
#: ascending uniques and indices as ``np.unique``; enumerations and narrow fields).
SMALL_KEYS = 1 << 16


def _unique_inverse(keys: np.ndarray) -> tuple:
    """``np.unique(keys, return_inverse=True)`` (1-d): for integer keys all below
    ``SMALL_KEYS`` by a presence table in O(n), else by numpy's sort."""
    if keys.dtype.kind in "ui" and len(keys):
        lo, hi = int(keys.min()), int(keys.max())
        if lo >= 0 and hi < SMALL_KEYS:
            idx = keys.astype(np.intp, copy=False)
            seen = np.zeros(hi + 1, dtype=bool)
            seen[idx] = True
            uniq = np.flatnonzero(seen)
            slot = np.empty(hi + 1, dtype=np.intp)
            slot[uniq] = np.arange(len(uniq))
            return uniq.astype(keys.dtype, copy=False), slot[idx]
    return np.unique(keys, return_inverse=True)


def _unique_map(keys: np.ndarray, fn) -> Coded:
    """``fn`` of every distinct value of ``keys`` (1-d), with each row's index into them."""
    uniq, inv = _unique_inverse(keys)
    mapped = np.empty(len(uniq), dtype=object)
    mapped[:] = [fn(u) for u in uniq.tolist()]
    return Coded(mapped, inv.reshape(-1))


def _hex_rows(mat: np.ndarray) -> Coded:
    """The hex text of every row of a uint8 matrix, once per distinct row."""
    k, n = mat.shape
    if not n:
        return _unique_map(np.zeros(k, dtype=np.int64), lambda _: "")
    raw = np.ascontiguousarray(mat).view(np.dtype((np.void, n))).reshape(-1)
    return _unique_map(raw, lambda b: b.hex())


def cut_field(m: np.ndarray, bit: int, bits: int):
    """The ``bits``-wide field at absolute bit ``bit`` of every row of the byte matrix ``m``:
    a uint64 array (fields of up to 64 bits within 8 bytes), else None."""
    a, e = bit // 8, (bit + bits + 7) // 8
    if e - a > 8:
        return None
    v = _combine(m, a, e)
    drop = 8 * (e - a) - bit % 8 - bits
    if drop:
        v = v >> np.uint64(drop)
    if bits < 64:
        v = v & np.uint64((1 << bits) - 1)
    return v


def _wide_field(m: np.ndarray, bit: int, bits: int, fn):
    """``fn(value)`` of a field that does not fit 64 bits, once per distinct byte string."""
    a, e = bit // 8, (bit + bits + 7) // 8
    raw = np.ascontiguousarray(m[:, a:e]).view(np.dtype((np.void, e - a))).reshape(-1)
    drop = 8 * (e - a) - bit % 8 - bits
    mask = (1 << bits) - 1
    return _unique_map(raw, lambda b: fn((int.from_bytes(b, "big") >> drop) & mask))


class _Bufs:
    """The frames of a group as bytes, made the first time a plan needs them (most plans cut
    the region matrix only): from a list of bytes, or from the block buffer, offsets and
    lengths."""
    __slots__ = ("_list", "_src")

    def __init__(self, frames=None, src=None):
        self._list = frames
        self._src = src             # (buffer, uint8 array of it, offsets, lengths)

    def _get(self) -> list:
        if self._list is None:
            buf, _, offs, lens = self._src
            self._list = [buf[o:o + n] for o, n in zip(offs.tolist(), lens.tolist())]
        return self._list

    def __len__(self):
        return len(self._list) if self._list is not None else len(self._src[2])

    def __iter__(self):
        return iter(self._get())

    def matrix(self, o: int, n: int) -> np.ndarray:
        """Bytes ``o`` to ``o + n`` of every frame as a ``(frames, n)`` uint8 matrix (every
        frame of a template's group has them: they lie before its variable part)."""
        if self._list is not None:
            return np.frombuffer(b"".join([b[o:o + n] for b in self._list]),
                                 dtype=np.uint8).reshape(-1, n)
        buf, arr, offs, _ = self._src
        return _gather(buf, arr, offs + o, n)

    def last(self, n: int) -> np.ndarray:
        """The last ``n`` bytes of every frame as a ``(frames, n)`` uint8 matrix."""
        if self._list is not None:
            return np.frombuffer(b"".join([b[-n:] for b in self._list]),
                                 dtype=np.uint8).reshape(-1, n)
        _, arr, offs, lens = self._src
        return arr[(offs + lens - n)[:, None] + np.arange(n)]


def _cut(plan, m, bufs, lens):
    """The values of one plan over a group (see ``fastpath._columns_plan``); ``bufs``: the
    group's frames (:class:`_Bufs`)."""
    kind = plan[0]
    if kind == "const":
        return Const(plan[1])
    if kind == "field":
        _, bit, bits, shift, fmt = plan
        if fmt == "int":
            v = cut_field(m, bit, bits) if bits + shift <= 64 else None
            if v is not None:
                return v << np.uint64(shift) if shift else v
            return _wide_field(m, bit, bits, lambda x: x << shift)
        fn = (lambda x: value_to_text(fmt, x << shift, bits))
        v = cut_field(m, bit, bits)
        return _unique_map(v, fn) if v is not None else _wide_field(m, bit, bits, fn)
    if kind == "enum":
        _, bit, bits, names = plan
        return _unique_map(cut_field(m, bit, bits),
                           lambda x: names[x] if x in names else "unknown_%d" % x)
    if kind == "interpret":
        _, bit, bits, it = plan
        out = _unique_map(cut_field(m, bit, bits), lambda x: interpret(it, x))
        if it.kind != "names" and all(x.__class__ is int for x in out.uniques[:1]):
            return out.dense().astype(np.uint64)
        return out
    if kind == "runlen":
        _, o, tail = plan
        return (lens - (o + tail)).astype(np.uint64)
    if kind == "run":
        _, o, tail = plan
        return [b[o:len(b) - tail] for b in bufs]       # bytes: the binary payload column
    if kind in ("run_padded", "runlen_padded", "tail_padded"):
        # the padding count P differs per frame (the field at bit, bits; grammar PADDING, UB 2.0 §6.2.1)
        *_, bit, bits = plan
        pads = cut_field(m, bit, bits).astype(np.int64)
        if kind == "tail_padded":
            # the P padding bytes, zero in every frame the guard let through
            return _unique_map(pads, lambda p: "00" * p)
        o, tail = plan[1], plan[2]
        if kind == "runlen_padded":
            return (lens - (o + tail) - pads).astype(np.uint64)
        return [b[o:len(b) - tail - p] for b, p in zip(bufs, pads.tolist())]
    if kind in ("bytes", "bytes_rev"):
        _, o, n = plan
        mat = bufs.matrix(o, n)
        if kind == "bytes_rev":
            mat = mat[:, ::-1]
        return _hex_rows(mat)
    if kind == "sack":
        from ..formats.sack import sack_psns
        _, o, n, psn, order = plan
        if isinstance(psn, tuple):
            psns = cut_field(m, *psn).tolist()
        else:
            psns = [psn] * len(bufs)
        raw = bufs.matrix(o, n).tobytes()
        out = np.empty(len(psns), dtype=object)
        out[:] = [sack_psns(raw[i:i + n], p, order) for i, p in zip(range(0, len(raw), n), psns)]
        return out
    if kind == "tail":
        _, start, stop = plan
        return _hex_rows(bufs.last(start)[:, :start - stop])
    if kind == "icrc":
        last = bufs.last(4)
        if plan[1] == "little":
            last = last[:, ::-1]
        return _combine(last, 0, 4)
    raise ValueError(f"unknown column plan {kind!r}")


class _Group:
    """The frames of one block that one template fits."""
    __slots__ = ("template", "text", "rows", "bufs")

    def __init__(self, template, text: str):
        self.template = template
        self.text = text                # the layers column of its frames
        self.rows: list = []
        self.bufs: list = []


def _emit(groups: dict, builder, payload: bool) -> None:
    for g in groups.values():
        if not g.bufs:          # a template without a column plan: its frames were records
            continue
        t = g.template
        rows = np.array(g.rows, dtype=np.int64)
        bufs = g.bufs
        region = t.region
        m = np.frombuffer(b"".join([b[:region] for b in bufs]), dtype=np.uint8).reshape(
            len(bufs), region) if region else np.zeros((len(bufs), 0), np.uint8)
        lens = np.array(list(map(len, bufs)), dtype=np.int64)
        _emit_group(t, rows, m, _Bufs(frames=bufs), lens, builder, payload)
    groups.clear()


def _emit_group(t, rows, m, bufs, lens, builder, payload: bool) -> None:
    """The field columns of one template's frames of a block (rows ``rows``; ``m``: their
    header regions, ``bufs``: the frames, ``lens``: their lengths)."""
    for key, plan in t.columns:
        if key == "data.data":
            if not payload:
                continue
            if plan[0] in ("run", "run_padded"):
                vals = np.empty(len(bufs), dtype=object)
                vals[:] = _cut(plan, m, bufs, lens)     # bytes, for the binary column
                builder.add_chunk(key, rows, vals)
                continue
        builder.add_chunk(key, rows, _cut(plan, m, bufs, lens))


@contextmanager
def _collector_paused():
    """Python's cyclic garbage collector off while a file is exported, as it was after.  A
    block holds ~10^5 frame tuples and buffers alive (none in a cycle), and every full
    collection walks them all: measured, 4-7 % of the export's CPU time at 1M frames.  The
    collector's state is process-wide: with exports in several threads of one process, the one
    that paused it turns it back on when it ends (only speed depends on it, never results)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def export_frames(chunks, forced, profile, builder, writers, row_group, analysis) -> None:
    """Rows of every frame of ``chunks`` (``export.frame_chunks``) into ``builder``, written
    as row groups of ``row_group`` rows; ``analysis``: ``{frame: analysis fields}`` or None
    (the garbage collector paused meanwhile, :func:`_collector_paused`)."""
    with _collector_paused():
        _export_frames(chunks, forced, profile, builder, writers, row_group, analysis)


def _export_frames(chunks, forced, profile, builder, writers, row_group, analysis) -> None:
    """:func:`export_frames`.  The per-frame loop only finds the frame's template and runs its
    guard; the frame columns of a block are added at once, its fields per template group
    (:func:`_emit`)."""
    from ..dissect.fastpath import TemplateCache
    from .export import _profile
    caches: dict = {}
    layer_text: dict = {}
    groups: dict = {}
    payload = builder.payload
    meta: list = []                 # the block's frame columns, one tuple per row
    misses: list = []               # (row, fields) of the block's record-path frames
    base = len(builder)
    limit = min(BLOCK, row_group)
    size = 0                        # bytes of the block's frames (bounded by BLOCK_BYTES)
    last_lt = cache = candidates = None

    def finish():
        nonlocal base, limit, meta, misses, size
        builder.add_frames(meta)
        for row, fields in misses:
            builder.add_fields(row, fields)
        _emit(groups, builder, payload)
        meta, misses, size = [], [], 0
        if len(builder) >= row_group:
            writers.write(builder.flush())
        base = len(builder)
        limit = min(BLOCK, row_group - base)

    for chunk in chunks:
        for n, tns, orig, lt, data in chunk:
            if forced is not None:
                lt = forced
            if lt != last_lt:
                cache = caches.get(lt)
                if cache is None:
                    cache = caches[lt] = TemplateCache(_profile(profile, lt))
                candidates, last_lt = cache._candidates, lt
            hit, fields = _first_fit(candidates, data)
            row = base + len(meta)
            k = len(data)
            size += k
            if hit is not None:
                g = groups.get(hit)
                if g is None:
                    text = layer_text.get(hit)
                    if text is None:
                        text = layer_text[hit] = ":".join(hit.layers)
                    g = groups[hit] = _Group(hit, text)
                meta.append((n, tns, orig, k, lt, g.text, hit.issues))
                if fields is None:
                    g.rows.append(row)
                    g.bufs.append(data)
                else:
                    misses.append((row, fields))
            else:
                layers, fields, issues = cache._miss(data, lt)
                meta.append((n, tns, orig, k, lt, ":".join(layers), issues))
                misses.append((row, fields))
            if analysis:
                got = analysis.get(n)
                if got:
                    misses.append((row, got))
            if len(meta) >= limit or size >= BLOCK_BYTES:
                finish()
    finish()


# --- the bulk path: frames as runs in one buffer, probe and guard in C -------------------------

#: Use the bulk probe and guard (``bulkguard.probe_guard``) when the C extension is built; False
#: keeps the per-frame loop (:func:`_export_frames`, the reference; also the path without a
#: compiler).
BULK = True
#: Frames probed and guarded per call: between calls the per-frame path handles the frames the
#: call left (-1), and learns templates that the next call's index holds (a call takes a
#: snapshot of the index: ``bulkguard.BulkIndex``, rebuilt when the cache changed).
WINDOW = 8192
#: The first call's frames: the index is empty then (every frame goes per frame, learning the
#: templates), so the calls start small and double up to WINDOW.
FIRST_WINDOW = 256
#: A stale index (the cache learned templates since the snapshot) is rebuilt once this many
#: frames of the calls since it fitted a template only the per-frame path knew (rebuilding costs
#: a pass over every template: layouts seen rarely, such as issue 14's random atomic lengths,
#: would otherwise rebuild it for every call).
REBUILD_AFTER = 32


def export_capture_frames(path, segment, problems, forced, profile, builder, writers,
                          row_group, analysis) -> None:
    """:func:`export_frames` of a capture (or segment): frames read as runs in one buffer
    (``frameblocks.frame_runs``) and probed and guarded in bulk where the C extension is built,
    else through the per-frame loop (the same rows)."""
    from ..dissect.bulkguard import HAVE_C
    from .export import frame_chunks
    with _collector_paused():
        if BULK and HAVE_C:
            from .frameblocks import frame_runs
            _export_runs(frame_runs(path, segment, problems), forced, profile, builder,
                         writers, row_group, analysis)
        else:
            _export_frames(frame_chunks(path, segment, problems), forced, profile, builder,
                           writers, row_group, analysis)


class _Bulk:
    """The export's template caches (one per link type), their bulk indexes, and the templates
    by index (shared by every link type's index)."""

    def __init__(self, profile):
        self.profile = profile
        self.caches: dict = {}
        self.indexes: dict = {}
        self.ids: dict = {}
        self.templates: list = []
        self.texts: list = []           # the layers column of each template
        self.issues: list = []
        self.window = FIRST_WINDOW
        self.late = 0                   # frames fitting a template the index did not hold

    def next_window(self) -> int:
        w = self.window
        self.window = min(WINDOW, 2 * w)
        return w

    def cache(self, lt: int):
        c = self.caches.get(lt)
        if c is None:
            from ..dissect.fastpath import TemplateCache
            from .export import _profile
            c = self.caches[lt] = TemplateCache(_profile(self.profile, lt))
        return c

    def index(self, lt: int):
        from ..dissect.bulkguard import BulkIndex
        cache = self.cache(lt)
        idx = self.indexes.get(lt)
        if idx is None or (idx.stale(cache) and (self.late >= REBUILD_AFTER or
                                                 not idx.ngroups)):
            idx = self.indexes[lt] = BulkIndex(cache, self.ids, self.templates)
            self.late = 0
        return idx

    def none_fits(self, lt: int, data) -> bool:
        """After NO_TEMPLATE from link type ``lt``'s index: no template of its cache fits
        ``data`` (``BulkIndex.none_fits``)."""
        return self.indexes[lt].none_fits(self.caches[lt], data)

    def id_of(self, t) -> int:
        i = self.ids.get(t)
        if i is None:
            i = self.ids[t] = len(self.templates)
            self.templates.append(t)
        return i

    def frame_columns(self, tids: np.ndarray, extra: dict):
        """The layers texts and issues of a block's frames: a template's for ``tids`` >= 0,
        ``extra[i]`` = (text, issues) for the others."""
        ts = self.templates
        for t in ts[len(self.texts):]:
            self.texts.append(":".join(t.layers))
            self.issues.append(t.issues)
        n = len(ts)
        texts = np.empty(n + 1, dtype=object)
        texts[:n] = self.texts
        issues = np.empty(n + 1, dtype=object)
        issues[:n] = self.issues
        pick = np.where(tids >= 0, tids, n)
        lay, iss = texts[pick], issues[pick]
        for i, (text, its) in extra.items():
            lay[i] = text
            iss[i] = its
        return lay.tolist(), iss.tolist()


def _first_fit(candidates, data):
    """``(template, None)``: the first template whose guard fits ``data``; ``(template,
    fields)``: the first whose generated function decodes it (a template without a column
    plan); ``(None, None)``: none.  Every probe the frame matches is tried in turn, as
    :class:`TemplateCache` does (``candidates``: its ``_candidates``)."""
    i, lst = candidates(data)
    while lst is not None:
        for t in lst:
            ok = t.ok
            if ok is not None:
                if ok(data):
                    return t, None
            else:
                fields = t.fn(data)
                if fields is not None:
                    return t, fields
        i, lst = candidates(data, i + 1)
    return None, None


def _per_frame(bulk, cache, data, lt, none_fits: bool):
    """The per-frame path of one frame the bulk call left: ``(template, None)`` when a
    template's guard fits it (its fields are cut with its group), else ``(None, (layers text,
    issues, fields))`` from a template's generated function or the dissector
    (TemplateCache._miss, which learns templates).  ``none_fits``: no template of the cache
    fits (the bulk call's answer for the templates it held, and no probe of the templates
    learned since finds the frame): straight to the dissector."""
    if none_fits:
        layers, fields, issues = cache._miss(data, lt)
        return None, (":".join(layers), issues, fields)
    t, fields = _first_fit(cache._candidates, data)
    if t is not None:
        if fields is None:
            return t, None
        bulk.id_of(t)
        return None, (bulk.texts[bulk.ids[t]] if bulk.ids[t] < len(bulk.texts)
                      else ":".join(t.layers), t.issues, fields)
    layers, fields, issues = cache._miss(data, lt)
    return None, (":".join(layers), issues, fields)


def _join(pieces: list):
    """One buffer and the columns of a block's runs (``frameblocks.Frames``)."""
    parts, offs = [], []
    at = 0
    for p in pieces:
        s = int(p.offs[0])
        e = int(p.offs[-1] + p.lens[-1])
        parts.append(memoryview(p.buf)[s:e])
        offs.append(p.offs - (s - at))
        at += e - s
    buf = b"".join(parts)
    cat = np.concatenate
    nums = cat([np.arange(p.first, p.first + len(p), dtype=np.int64) for p in pieces])
    ts = [p.ts for p in pieces]
    ts = cat(ts) if all(t.dtype != object for t in ts) else cat([t.astype(object) for t in ts])
    return (buf, cat(offs), cat([p.lens for p in pieces]), ts, cat([p.orig for p in pieces]),
            cat([p.lts for p in pieces]), nums)


def _export_runs(runs, forced, profile, builder, writers, row_group, analysis) -> None:
    """The bulk path of :func:`export_frames`: blocks of frames as the per-frame loop makes
    them (at most :data:`BLOCK` rows ending at a row group's end, about :data:`BLOCK_BYTES`
    bytes), each probed and guarded in calls of :data:`WINDOW` frames."""
    bulk = _Bulk(profile)
    pending: list = []
    count = size = 0
    base = len(builder)
    limit = min(BLOCK, row_group)
    for run in runs:
        a, n = 0, len(run)
        while a < n:
            take = min(n - a, limit - count)
            sizes = np.cumsum(run.lens[a:a + take])
            full = count + take >= limit
            if size + int(sizes[-1]) >= BLOCK_BYTES:
                take = int(np.searchsorted(sizes, BLOCK_BYTES - size)) + 1
                full = True
            pending.append(run.cut(a, a + take))
            count += take
            size += int(sizes[take - 1])
            a += take
            if full:
                _block(bulk, pending, forced, builder, base, analysis)
                pending, count, size = [], 0, 0
                if len(builder) >= row_group:
                    writers.write(builder.flush())
                base = len(builder)
                limit = min(BLOCK, row_group - base)
    if pending:
        _block(bulk, pending, forced, builder, base, analysis)
        if len(builder) >= row_group:
            writers.write(builder.flush())


def _block(bulk, pieces, forced, builder, base, analysis) -> None:
    """Rows of one block: frame columns, fields cut per template group, record-path fields."""
    from ..dissect.bulkguard import NO_TEMPLATE, probe_guard
    buf, offs, lens, ts, orig, lts, nums = _join(pieces)
    if forced is not None:
        lts[:] = forced
    nb = len(offs)
    tids = np.full(nb, -1, dtype=np.int64)
    extra: dict = {}            # block position -> (layers text, issues) of record-path frames
    fields_of: list = []        # (row, fields) of the record-path frames
    one_lt = int(lts[0]) if nb and (lts == lts[0]).all() else None
    w1 = 0
    while w1 < nb:
        w0, w1 = w1, min(nb, w1 + bulk.next_window())
        for lt in ([one_lt] if one_lt is not None else np.unique(lts[w0:w1]).tolist()):
            idx = bulk.index(lt)
            if not idx.ngroups:
                continue
            if one_lt is not None:
                tids[w0:w1] = probe_guard(idx, buf, offs[w0:w1], lens[w0:w1])
            else:
                sel = np.flatnonzero(lts[w0:w1] == lt) + w0
                tids[sel] = probe_guard(idx, buf, offs[sel], lens[sel])
        left = np.flatnonzero(tids[w0:w1] < 0) + w0
        for i, o, k, lt, r in zip(left.tolist(), offs[left].tolist(), lens[left].tolist(),
                                  lts[left].tolist(), tids[left].tolist()):
            data = buf[o:o + k]
            t, rec = _per_frame(bulk, bulk.cache(lt), data, lt,
                                r == NO_TEMPLATE and bulk.none_fits(lt, data))
            if t is not None:
                tids[i] = bulk.id_of(t)
                bulk.late += 1
            else:
                extra[i] = rec[:2]
                fields_of.append((base + i, rec[2]))
    layers, issues = bulk.frame_columns(tids, extra)
    builder.add_frame_arrays(nums, ts, orig, lens, lts, layers, issues)
    if analysis:
        got = [(base + i, analysis[n]) for i, n in enumerate(nums.tolist())
               if analysis.get(n)]
        if got:
            fields_of = sorted(fields_of + got, key=lambda x: x[0])   # stable: own fields first
    for row, fields in fields_of:
        builder.add_fields(row, fields)
    _emit_runs(bulk, tids, buf, offs, lens, base, builder)


def _gather(buf, arr, offs, width: int) -> np.ndarray:
    """``(len(offs), width)`` uint8 matrix of ``buf[o:o + width]`` per offset (C where built)."""
    if gather_rows is None or not width:
        return arr[offs[:, None] + np.arange(width)] if width else \
            np.zeros((len(offs), 0), np.uint8)
    out = np.empty((len(offs), width), dtype=np.uint8)
    gather_rows(buf, np.ascontiguousarray(offs, dtype=np.int64), width, out)
    return out


def _emit_runs(bulk, tids, buf, offs, lens, base, builder) -> None:
    """The field columns of a block's template groups (in the order their first frames come)."""
    sel = np.flatnonzero(tids >= 0)
    if not len(sel):
        return
    order = sel[np.argsort(tids[sel], kind="stable")]
    ts = tids[order]
    cuts = np.flatnonzero(ts[1:] != ts[:-1]) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(order)]])
    arr = np.frombuffer(buf, dtype=np.uint8)
    payload = builder.payload
    for j in np.argsort(order[starts], kind="stable").tolist():
        idx = order[starts[j]:ends[j]]
        t = bulk.templates[int(ts[starts[j]])]
        o, k = offs[idx], lens[idx]
        region = t.region
        m = _gather(buf, arr, o, region)
        _emit_group(t, base + idx, m, _Bufs(src=(buf, arr, o, k)), k, builder, payload)
