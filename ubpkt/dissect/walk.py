"""The grammar walk: read a header, run its checks, follow :data:`ubpkt.formats.grammar.NEXT`.

The walk knows no packet format.  What follows what comes from the grammar tables; what is
checked, derived or computed at a layer comes from three registries the layer modules fill:

* :data:`AFTER`: logical layer -> ``hook(fr, h, vals, start)``, run after the header is read
  (issues, derived fields, walk state).  A hook that returns a bool has taken over the rest of
  the walk (it ran the continuation itself: the ICRC sections do) and that is the result.
* :data:`PROCS`: ``"@procedure"`` -> ``proc(fr, h, vals)``, the steps the grammar names but
  cannot express as data (lengths, repetitions); it runs the rest of the walk and returns.
* :data:`RESERVED`: logical layer -> ``report(fr, h, vals, start)``, when a selector of that
  layer holds a reserved value.

``run`` returns True when the walk reached the end of what it could decode (the rest is
payload), False when a header was truncated.
"""
from __future__ import annotations

from ..formats import HEADERS
from ..formats.grammar import END, NEXT, RESERVED, Knob, Peek, Switch, logical, resolve
from .frame import ERROR, Frame

__all__ = ["run", "run_from", "follow", "AFTER", "PROCS", "RESERVED_REPORTS", "READS", "reads",
           "steering_fields"]

AFTER: dict = {}
PROCS: dict = {}
RESERVED_REPORTS: dict = {}
#: logical layer -> fields its hooks and procedures read (besides the grammar's selectors)
READS: dict = {}


def reads(layer: str, *fields: str) -> None:
    """Declare that the walk's code for ``layer`` reads ``fields``: a value there changes the
    record beyond the field itself (issues, derived fields, lengths)."""
    READS.setdefault(layer, set()).update(fields)


def steering_fields(layer: str) -> tuple:
    """Fields of concrete ``layer`` whose value steers the walk or the record: the grammar's
    selectors and what the hooks read.  The fast path guards them."""
    from ..formats.grammar import selectors
    lay = logical(layer)
    h = HEADERS.get(layer)
    names = set(selectors(lay)) | READS.get(lay, set()) | READS.get(layer, set())
    if h is not None:
        names &= set(h.index)
    return tuple(sorted(names))


def follow(fr: Frame, rule, h, vals):
    """Resolve rules (:class:`Switch`, :class:`Peek`, :class:`Knob`) against the header just
    read (``h``, ``vals``), the record so far and the bytes ahead."""
    while True:
        t = type(rule)
        if t is Switch:
            key = rule.key
            if "." in key:
                v = fr.fields.get(key)
            else:
                v = vals[h.index[key]]
            rule = rule.cases.get(v, rule.default) if type(v) is int else rule.default
        elif t is Peek:
            p = fr.pos + rule.offset
            if p < fr.end:
                rule = rule.cases.get((fr.buf[p] & rule.mask) >> rule.shift, rule.default)
            else:
                rule = rule.missing
        elif t is Knob:
            rule = rule.cases.get(getattr(fr.profile, rule.name), rule.default)
        else:
            return rule


#: id of a profile -> (profile, {logical layer: Header} for full TAHs, the same for compact)
_RESOLVED: dict = {}


def _resolver(profile) -> tuple:
    entry = _RESOLVED.get(id(profile))
    if entry is None or entry[0] is not profile:
        if len(_RESOLVED) > 64:
            _RESOLVED.clear()
        entry = _RESOLVED[id(profile)] = (profile, {}, {})
    return entry


def run(fr: Frame, target, h=None, vals=None) -> bool:
    """Walk from ``target`` (a rule, a logical layer, a procedure, END or RESERVED); ``h`` and
    ``vals``: the header read just before, for rules that look at its fields."""
    headers = HEADERS
    profile = fr.profile
    caches = _resolver(profile)
    while True:
        if target is not None and type(target) is not str:
            target = follow(fr, target, h, vals)
        if target is END:
            fr.rest_as_data()
            return True
        if target == RESERVED:
            report = RESERVED_REPORTS.get(logical(h.layer)) if h is not None else None
            if report is not None:
                report(fr, h, vals, fr.pos - h.size)
            else:
                fr.issue(ERROR, h.layer if h is not None else "frame", None, fr.pos,
                         "reserved value: cannot tell what follows")
            fr.rest_as_data()
            return True
        if target[0] == "@":
            return PROCS[target](fr, h, vals)
        cache = caches[2 if fr.compact else 1]
        h = cache.get(target)
        if h is None:
            h = cache[target] = headers[resolve(target, profile, fr.compact)]
        start = fr.pos
        vals = fr.take(h)
        if vals is None:
            return False
        hook = AFTER.get(target)
        if hook is not None:
            r = hook(fr, h, vals, start)
            if r is not None:
                return r
        target = NEXT.get(target, END)


def run_from(fr: Frame, layer: str, h, vals) -> bool:
    """Continue the walk after logical ``layer`` (read as ``h``/``vals``): for hooks that open a
    section and must run what follows before closing it."""
    return run(fr, NEXT.get(layer, END), h, vals)
