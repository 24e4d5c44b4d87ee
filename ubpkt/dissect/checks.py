"""The value checks of :data:`ubpkt.formats.checks.CHECKS` applied as headers are read.

``Frame.take`` calls :func:`apply` for every header it reads; the fields each check looks at
(its own and those of the earlier headers it names) are declared to the fast path's guards with
:func:`~ubpkt.dissect.walk.reads`, so a template never covers a frame that a check would report
differently."""
from __future__ import annotations

from ..formats import HEADERS
from ..formats.checks import CHECKS
from ..formats.derived import INTERPRETATIONS, interpret
from ..formats.grammar import logical
from ..record import ERROR, INFO, WARNING

__all__ = ["BY_LAYER", "apply", "declare_reads", "INTERPRETING", "interpret_into"]

_SEVERITY = {"warning": WARNING, "error": ERROR, "info": INFO}

#: concrete layer -> its checks
BY_LAYER: dict[str, tuple] = {}
for _h in HEADERS.values():
    _mine = tuple(c for c in CHECKS if c.layer == logical(_h.layer))
    if _mine:
        BY_LAYER[_h.layer] = _mine


#: concrete layer -> its interpretations (formats.derived.INTERPRETATIONS) whose field it has
INTERPRETING: dict[str, tuple] = {}
for _h in HEADERS.values():
    _mine = tuple(i for i in INTERPRETATIONS
                  if i.layer == logical(_h.layer) and i.field in _h.index)
    if _mine:
        INTERPRETING[_h.layer] = _mine


def interpret_into(fr, h, vals, its) -> None:
    """Add the interpretations ``its`` of header ``h`` whose conditions hold."""
    ix = h.index
    for it in its:
        if all(vals[ix[name]] in allowed for name, allowed in it.when):
            fr._add_repeated(it.key, interpret(it, vals[ix[it.field]]))


def declare_reads() -> None:
    """Declare what the checks read to the walk (the fast path guards it); called once by
    ``ubpkt.dissect`` (the walk imports the frame, which imports this module)."""
    from .walk import reads
    for c in CHECKS:
        for key in (c.field, *(k for k, _ in c.when)):
            if "." in key:
                # every header that records this key
                for h in HEADERS.values():
                    if key in h.keys:
                        reads(h.layer, h.fields[h.keys.index(key)].name)
            else:
                reads(c.layer, key)
    # an interpretation's conditions choose whether it is there (its field only its value)
    for it in INTERPRETATIONS:
        for name, _ in it.when:
            reads(it.layer, name)


def apply(fr, h, vals, start: int, checks) -> None:
    """Report every check of ``checks`` (those of ``h``) whose conditions hold and whose field
    holds a value the spec does not allow."""
    ix = h.index
    fields = fr.fields
    for c in checks:
        for key, allowed in c.when:
            v = fields.get(key) if "." in key else vals[ix[key]]
            if v not in allowed:
                break
        else:
            key = c.field
            if "." in key:
                v = fields.get(key)
                if v is None:
                    continue
                where = key
            else:
                v = vals[ix[key]]
                where = h.keys[ix[key]]
            if v not in c.values:
                fr.issue(_SEVERITY[c.severity], h.layer, where, start, c.message.format(v=v))
