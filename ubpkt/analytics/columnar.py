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


def _unique_map(keys: np.ndarray, fn) -> Coded:
    """``fn`` of every distinct value of ``keys`` (1-d), with each row's index into them."""
    uniq, inv = np.unique(keys, return_inverse=True)
    mapped = np.empty(len(uniq), dtype=object)
    mapped[:] = [fn(u) for u in uniq.tolist()]
    return Coded(mapped, inv.reshape(-1))


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


def _cut(plan, m, bufs, lens):
    """The values of one plan over a group (see ``fastpath._columns_plan``)."""
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
            tail = plan[1]
            return np.array([b[len(b) - tail - p:len(b) - tail].hex()
                             for b, p in zip(bufs, pads.tolist())], dtype=object)
        o, tail = plan[1], plan[2]
        if kind == "runlen_padded":
            return (lens - (o + tail) - pads).astype(np.uint64)
        return [b[o:len(b) - tail - p] for b, p in zip(bufs, pads.tolist())]
    if kind == "bytes":
        _, o, n = plan
        return np.array([b[o:o + n].hex() for b in bufs], dtype=object)
    if kind == "bytes_rev":
        _, o, n = plan
        return np.array([b[o:o + n][::-1].hex() for b in bufs], dtype=object)
    if kind == "sack":
        from ..formats.sack import sack_psns
        _, o, n, psn, order = plan
        if isinstance(psn, tuple):
            psns = cut_field(m, *psn).tolist()
        else:
            psns = [psn] * len(bufs)
        out = np.empty(len(bufs), dtype=object)
        out[:] = [sack_psns(b[o:o + n], p, order) for b, p in zip(bufs, psns)]
        return out
    if kind == "tail":
        _, start, stop = plan
        return np.array([b[len(b) - start:len(b) - stop].hex() for b in bufs], dtype=object)
    if kind == "icrc":
        last = np.frombuffer(b"".join([b[-4:] for b in bufs]), dtype=np.uint8).reshape(-1, 4)
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
    groups.clear()


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
            hit = fields = None
            i, lst = candidates(data)
            while lst is not None:      # every probe the frame matches, as TemplateCache does
                for t in lst:
                    ok = t.ok
                    if ok is not None:
                        if ok(data):
                            hit = t
                            break
                    else:
                        fields = t.fn(data)
                        if fields is not None:
                            hit = t
                            break
                if hit is not None:
                    break
                i, lst = candidates(data, i + 1)
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
