"""``-T fields`` straight from the fast path's templates (issue 14): one generated function per
(layout, column list) writes the whole line, no record dict per frame.

:class:`ColumnsRenderer` compiles, for each template (``ubpkt.dissect.fastpath``, its
``src``), a function ``run(buf, frame, orig_len, linktype, time_ns, T)`` that checks the
template's guards and returns the line :meth:`ubpkt.views.columns.Columns.line` gives for the
frame's record (``T`` the frame clock's tuple, ``rec["_t"]``).  Each column is classified once
per layout:

* a value the layout fixes (a guarded or absent field, a layer test, the issue counts, the
  protocol list): its text is rendered once, at compile time, by ``Columns`` itself;
* a field the template reads from the frame: ``%d`` / ``%s`` of the template's expression when
  its value is an int / str (what ``Columns`` prints for those), else ``Columns._cell`` of it;
* the frame's own data (number, lengths, times): from the arguments.

Frames that fit no template are rendered from their record by ``Columns.line``: the record path
stays the reference, and ``tests/test_views_fields_fast.py`` compares both line by line.
"""
from __future__ import annotations

from .columns import Columns, _text
from .fieldnames import _FRAME, _PAIRS, FRAME_TIME_KEYS, getter
from .timefmt import seconds_text

__all__ = ["ColumnsRenderer"]


class ColumnsRenderer:
    """Per-layout line functions for one :class:`Columns` (see the module doc)."""

    def __init__(self, cols: Columns) -> None:
        self.cols = cols
        self.key = ("fields", id(self))
        self.needs_clock = any(n in FRAME_TIME_KEYS for n in cols.names)

    def compiled(self, t):
        """The line function of template ``t`` (compiled on first use), or None."""
        fn = t.views.get(self.key, False)
        if fn is False:
            try:
                fn = self._compile(t) if t.src is not None else None
            except Exception:   # an optimisation only: the record path renders the frame
                fn = None
            t.views[self.key] = fn
        return fn

    def _compile(self, t):
        src = t.src
        cols = self.cols
        q = cols.s["quote"]
        fake = {"frame": 0, "time": 0.0, "len": 0, "caplen": 0, "linktype": 0,
                "layers": list(t.layers), "fields": dict(src.fields), "issues": list(t.issues)}
        per_frame = {k for k in src.exprs if k in src.fields and k not in src.static}
        cells, args = [], []
        ns = dict(src.ns, _cellv=self._cellv, _sec=seconds_text, _ftext=_text)
        for i, name in enumerate(cols.names):
            piece = self._cell_src(i, name, src, per_frame, fake, args)
            if piece is None:
                return None
            cells.append(q.replace("%", "%%") + piece + q.replace("%", "%%"))
        fmt = cols.s["separator"].replace("%", "%%").join(cells)
        lines = [line.replace("def run(buf):", "def run_fields(buf, fr, ln, lt, tns, T):")
                 for line in src.head]
        if args:
            lines.append(f"    return {fmt!r} % ({', '.join(args)},)")
        else:
            lines.append(f"    return {fmt.replace('%%', '%')!r}")
        exec(compile("\n".join(lines) + "\n", "<ubpkt.views.columns_fast fields template>",
                     "exec"), ns)
        return ns["run_fields"]

    def _cell_src(self, i, name, src, per_frame, fake, args):
        """The %-format piece of column ``i`` (its arguments appended to ``args``)."""
        if name in _FRAME:
            key = _FRAME[name]
            if key == "time":
                args.append("_ftext(tns / 1e9)")
                return "%s"
            if key == "linktype":
                args.append("_ftext(lt)")
                return "%s"
            args.append({"frame": "fr", "len": "ln", "caplen": "L"}[key])
            return "%d"
        if name in FRAME_TIME_KEYS:
            args.append(f"_sec(T[{FRAME_TIME_KEYS.index(name)}], T[4])")
            return "%s"
        if name in _PAIRS:
            a, b = _PAIRS[name]
            if a in per_frame or b in per_frame:
                pair = ", ".join(self._value(k, src, per_frame) for k in (a, b))
                args.append(f"_cellv({i}, [x for x in ({pair}) if x is not None] or None)")
                return "%s"
        elif name in per_frame:
            v = src.fields[name]
            expr = src.exprs[name]
            if v.__class__ is int:
                args.append(expr)
                return "%d"
            if v.__class__ is str:
                args.append(expr)
                return "%s"
            args.append(f"_cellv({i}, {expr})")
            return "%s"
        # fixed by the layout: rendered once, by Columns itself
        return self.cols._cell(name, getter(name)(fake), fake).replace("%", "%%")

    @staticmethod
    def _value(key, src, per_frame) -> str:
        if key in per_frame:
            return f"({src.exprs[key]})"
        return repr(src.fields.get(key))

    def _cellv(self, i: int, v) -> str:
        return self.cols._cell(self.cols.names[i], v, None)
