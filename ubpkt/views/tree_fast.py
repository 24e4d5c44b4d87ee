"""``decode -V`` (the packet tree) straight from the fast path's templates (issue 14).

The record path (:func:`ubpkt.views.tree.tree_lines`) sorts every field of every frame into
its layer's block and dissects the frame a second time for the layers' byte offsets
(:func:`ubpkt.views.tree.layer_spans`).  Within one template all of that is fixed: which keys
each block lists, the offsets (or, when the payload length varies, offsets from the end of the
frame), the text of every value the layout fixes.  :class:`TreeRenderer` compiles per template a
function that writes the frame's whole tree with one %-format: per-frame values (the fields the
template reads) through the same text rules as :func:`ubpkt.views.tree.value_text`, and, when
the analysis is on (``-V``), the ``[UB analysis]`` block: the analyzer steps the layout can
reach, called with the function's own values (:meth:`ubpkt.views.analysis.Analyzer.plan`), or
:meth:`~ubpkt.views.analysis.Analyzer.add_fields` of the fields the analysis reads where the
layout is not planned.  A frame no template fits is dissected once (the template cache traces
the layers' ends, ``TemplateCache.trace``), not once more for its offsets.

Frames that fit no template are rendered from their record as the record path does; the
record path stays the reference (``tests/test_views_tree_fast.py`` compares the text).
"""
from __future__ import annotations

import re

from ..formats import HEADERS
from ..formats.derived import BYTE_RUNS
from ..formats.grammar import PADDING
from .analysis import ANALYSIS_KEYS, READS
from .fieldnames import enum_for, field_kind
from .tree import (_BITS, HEX_FIELDS, _TracingLayers, layer_spans, traced_spans,
                   tree_lines, value_text)

__all__ = ["TreeRenderer", "analysis_text"]


def analysis_text(out: dict) -> str:
    """The ``[UB analysis]`` block of a frame whose analysis gave ``out`` ('' when empty), each
    line after a newline (it follows the block before it).  The analysis gives a few key
    sequences over and over, each with int or float values that ``value_text`` shows in
    decimal (``str``): one %-format per key sequence (:data:`_ANALYSIS_FORMATS`)."""
    if not out:
        return ""
    fmt = _ANALYSIS_FORMATS[tuple(out)]
    for v in out.values():
        if v.__class__ is not int and v.__class__ is not float:
            fmt = False
    if fmt is False:
        return "\n  [UB analysis]" + "".join(f"\n    {k} = {value_text(k, v)}"
                                             for k, v in out.items())
    return fmt % tuple(out.values())


class _AnalysisFormats(dict):
    """``{analysis keys: the %-format of their block}`` (False where ``value_text`` shows an
    int of one of them otherwise than in decimal), built on first use."""

    def __missing__(self, keys: tuple):
        fmt = "\n  [UB analysis]" + "".join(_esc(f"\n    {k} = ") + "%s" for k in keys)
        if any(value_text(k, 10) != "10" for k in keys):
            fmt = False
        if len(self) < 4096:
            self[keys] = fmt
        return fmt


_ANALYSIS_FORMATS = _AnalysisFormats()


#: A template expression that is a byte run's hex: ``buf[a:b].hex()``
_HEX_RUN = re.compile(r"^buf\[([^\[\]]+)\]\.hex\(\)$")


def _esc(text: str) -> str:
    return text.replace("%", "%%")


#: every analysis value shows in decimal: the planned tree functions format them inline
_PLAIN = all(value_text(k, 10) == "10" for k in ANALYSIS_KEYS)


class TreeRenderer:
    """Per-layout tree functions for one template cache (one link type and profile).
    ``analyzer``: the :class:`~ubpkt.views.analysis.Analyzer` every frame goes through in order
    (``-V``), or None (``-T tree`` without it)."""

    def __init__(self, linktype: int, profile, analyzer=None) -> None:
        self.linktype = linktype
        self.profile = profile
        self.analyzer = analyzer
        self.key = ("tree", id(self))

    @staticmethod
    def trace(cache) -> None:
        """Have ``cache`` (a ``TemplateCache``) keep the layers' offsets of the frames it
        dissects (``TemplateCache.trace``), for :meth:`record_text`."""
        cache.trace = _TracingLayers

    def compiled(self, t):
        """The tree function of template ``t`` (compiled on first use), or None."""
        fn = t.views.get(self.key, False)
        if fn is False:
            try:
                fn = self._compile(t) if t.src is not None and t.src.frame else None
            except Exception:   # an optimisation only: the record path renders the frame
                fn = None
            t.views[self.key] = fn
        return fn

    def frames(self, cache, clock, digits: int):
        """The per-frame function ``(frame bytes, linktype, frame number, time ns, original
        length) -> tree text`` of a classic pcap's hot loop (``clock(ns, digits)``: the time
        column): :meth:`TemplateCache.view <ubpkt.dissect.fastpath.TemplateCache.view>`'s
        loop (the same hits, learning, failures and misses) with the tree's arguments passed
        straight, no wrapper call per frame.  ``cache`` traces its dissections (:meth:`trace`)."""
        from ..record import make_record
        self.trace(cache)
        key, compiled, record_text = self.key, self.compiled, self.record_text
        candidates, LEARN = cache._candidates, cache.LEARN

        def render(buf, lt, n, tns, orig):
            tcol = clock(tns, digits)
            i, lst = candidates(buf)
            while lst is not None:
                for t in lst:
                    fn = t.views.get(key, False)
                    if fn is False:
                        fn = compiled(t)
                    if fn is None:
                        continue
                    out = fn(buf, n, orig, tcol, tns)
                    if out is not None:
                        cache.hits += 1
                        if t.special:
                            t.fails = 0
                        elif t.seen < LEARN:
                            cache._learn(t, lst, buf, lt)
                        return out
                    cache._failed(t, lst)
                i, lst = candidates(buf, i + 1)
            return record_text(make_record(n, tns / 1e9, orig, len(buf), lt,
                                           *cache._miss(buf, lt)), buf, tcol, tns, cache.traced)
        return render

    def record_text(self, rec: dict, buf: bytes, time_col: str, time_ns: int,
                    traced=None) -> str:
        """The tree of a frame that fits no template, from its record (the reference);
        ``traced``: the ``TemplateCache.traced`` of the dissection that gave the record, when
        it was this frame's (the layers' offsets without dissecting it again)."""
        if self.analyzer is not None:
            out = self.analyzer.add_fields(rec["frame"], time_ns, rec["fields"])
            if out:
                rec["fields"].update(out)
        if traced is not None and traced[0] is buf:
            spans = traced_spans(traced[1], buf)
        else:
            spans = layer_spans(buf, self.linktype, self.profile)
        return "\n".join(tree_lines(rec, spans, "t=" + time_col)) + "\n\n"

    def _compile(self, t):
        src = t.src
        fields = src.fields
        per_frame = {k for k in src.exprs if k in fields and k not in src.static}
        sample = src.frame
        L0 = len(sample)
        traced = t.views.get("traced")      # the sample's layer ends, when the cache traced
        spans = traced_spans(traced, sample) if traced is not None else \
            layer_spans(sample, self.linktype, self.profile)
        layers = list(t.layers)
        data_at = layers.index("data") if t.variable and "data" in layers else None
        # a padding count read per frame (fastpath: P, the payload's end E = L - tail - P in the
        # generated head): the payload's length and the padding's place and size follow it
        padvar = any(line.startswith("    E = ") for line in src.head)
        args: list = []
        body: list = []
        ns = dict(src.ns, _vt=value_text, _atext=analysis_text)
        pieces = ["Frame %d: %d bytes on wire, %d bytes captured, t=%s"]
        args += ["fr", "ln", "L", "tcol"]

        temps: dict = {}      # key -> the temporary holding its value in this frame

        def value(k):
            if k not in per_frame:
                return _esc(value_text(k, fields[k]))
            v = fields[k]
            x = f"x{len(body)}"
            run = _HEX_RUN.match(src.exprs[k])
            if v.__class__ is str and run and field_kind(k) in ("bytes", "hex"):
                # a byte run shown cut to 64 digits: only those bytes are turned into hex
                # value_text of the run's hex (cut to 64 digits) without hexing more than
                # the 32 bytes it shows
                body.append(f"    {x} = buf[{run.group(1)}]")
                body.append(f"    {x} = {x}.hex() if len({x}) <= 32 else "
                            f"{x}[:32].hex() + '... (%d bytes)' % len({x})")
                args.append(x)
                return "%s"
            body.append(f"    {x} = {src.exprs[k]}")
            temps[k] = x
            if v.__class__ is int:
                enum = enum_for(k)
                if enum:
                    e = f"_E{len(body)}"
                    ns[e] = enum
                    args.extend((f"{e}.get({x}, 'Unknown')", x))
                    return "%s (%d)"
                bits = _BITS.get(k, 0)
                if HEX_FIELDS.search(k.rsplit(".", 1)[-1]) or bits > 32:
                    width = max(1, (bits + 3) // 4) if bits else 0
                    args.extend((x, x))
                    return (f"0x%0{width}x" if width else "0x%x") + " (%d)"
                args.append(x)
                return "%d"
            if v.__class__ is str and field_kind(k) not in ("bytes", "hex"):
                args.append(x)
                return "%s"
            args.append(f"_vt({k!r}, {x})")
            return "%s"

        heads = []
        for layer in layers:
            h = HEADERS.get(layer)
            if h is not None:
                heads.append((f"{h.title} [{layer}]",
                              f"{h.ns}.{h.prefix}." if h.ns else f"{h.prefix}."))
            else:
                heads.append((layer, BYTE_RUNS.get(layer, layer + ".")))
        # each field in the block of the first layer whose prefix it has (tree_lines' rule)
        blocks: list = [[] for _ in layers]
        other = []
        for k in fields:
            if k.endswith("_name"):
                continue
            for i, (_, base) in enumerate(heads):
                if k.startswith(base) or k == base:
                    blocks[i].append(k)
                    break
            else:
                other.append(k)
        span_at = iter(spans)
        for i, (layer, (title, _), block) in enumerate(zip(layers, heads, blocks)):
            sp = next(span_at, None)
            if sp and sp[0] == layer:
                _, start, size = sp
                if data_at is None or i < data_at:
                    where = _esc(f" @{start}, {size} bytes")
                elif i == data_at:
                    where = _esc(f" @{start}, ") + "%d bytes"
                    args.append(f"E - {start}" if padvar else f"L - {L0 - size}")
                elif padvar and layer == PADDING.pad_layer:
                    where = " @%d, %d bytes"
                    args.extend(("E", "P"))
                else:
                    where = " @%d" + _esc(f", {size} bytes")
                    args.append(f"L - {L0 - start}")
            else:
                where = ""
            pieces.append(_esc(f"  {title}") + where)
            for k in block:
                pieces.append(_esc(f"    {k} = ") + value(k))
        if any(k.startswith("ub.analysis.") for k in other):
            return None      # a record that carries analysis keys itself: the record path
        if other:
            pieces.append("  Derived fields")
            for k in other:
                pieces.append(_esc(f"    {k} = ") + value(k))
        if self.analyzer is not None:
            varying = {k: temps[k] if k in temps else f"({src.exprs[k]})"
                       for k in READS if k in per_frame}
            plan = self.analyzer.plan(fields, varying)
            if plan is None:     # not planned: the analysis of the picked fields
                picks = ", ".join(f"{k!r}: " + (varying[k] if k in varying
                                                  else repr(fields[k]))
                                  for k in READS if k in fields)
                ns["_an"] = self.analyzer.add_fields
                pieces[-1] += "%s"
                args.append(f"_atext(_an(fr, tns, {{{picks}}}))")
            elif plan[0]:        # only the steps this layout reaches (none: no analysis)
                body.extend(plan[0])
                ns.update(plan[1], _AF=_ANALYSIS_FORMATS)
                pieces[-1] += "%s"
                # the analyzer's values are ints and floats: one %-format per key sequence
                args.append("_AF[tuple(o)] % tuple(o.values()) if o else ''" if _PLAIN
                            else "_atext(o) if o else ''")
        for i in t.issues:
            pieces.append(_esc(f"  [Expert Info ({i['severity']}): {i['message']}] {i['layer']}"
                               f"{' ' + i['field'] if i['field'] else ''} @{i['offset']}"))
        fmt = "\n".join(pieces) + "\n\n"
        lines = [line.replace("def run(buf):", "def run_tree(buf, fr, ln, tcol, tns):")
                 for line in src.head]
        lines += body
        lines.append(f"    return {fmt!r} % ({', '.join(args)},)")
        exec(compile("\n".join(lines) + "\n", "<ubpkt.views.tree_fast tree template>", "exec"),
             ns)
        return ns["run_tree"]
