"""Every field name a display filter (``-Y``) or a column (``-e``) may use, and how to read it.

Three kinds of names:

* record keys: every declared header field, every derived key (``ubpkt.formats.derived``),
  including the analysis keys ``ub.analysis.*``;
* layer ids (``udp``, ``ub.rtph``): a bare layer id tests that the frame has that layer;
* the names tshark users type by habit, read from the record's frame data or from two record
  keys at once (:data:`PSEUDO`): ``frame.number``, ``frame.len``, ``frame.cap_len``,
  ``frame.time_epoch``, ``frame.time_relative``, ``frame.time_delta``,
  ``frame.time_delta_displayed``, ``ip.addr``, ``ipv6.addr``, ``udp.port``, ``eth.addr``, and
  ubpkt's own ``issues`` / ``errors`` / ``warnings`` counts.

An unknown name is an error naming the closest known one (:func:`check_field`), as tshark
refuses ``-Y``/``-e`` with a field it does not know.
"""
from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Callable

from ..errors import FilterError
from ..formats import HEADERS
from ..formats.derived import derived_rows

__all__ = ["PSEUDO", "known_fields", "known_layers", "check_field", "closest_field", "getter",
           "enum_for", "field_kind", "FRAME_TIME_KEYS"]

#: The frame-time values the decode loop attaches to a record (``rec["_t"]``, see
#: :class:`ubpkt.views.timefmt.FrameClock`): integer nanoseconds, never floats.
FRAME_TIME_KEYS = ("frame.time_epoch", "frame.time_relative", "frame.time_delta",
                   "frame.time_delta_displayed")

#: Names read from two record keys (any value matches, as Wireshark's ``ip.addr``).
_PAIRS = {"ip.addr": ("ip.src", "ip.dst"), "ipv6.addr": ("ipv6.src", "ipv6.dst"),
          "udp.port": ("udp.srcport", "udp.dstport"), "eth.addr": ("eth.src", "eth.dst"),
          "ip.host": ("ip.src", "ip.dst")}

#: Record-level names (the values are not in ``fields``).
_FRAME = {"frame.number": "frame", "frame.len": "len", "frame.cap_len": "caplen",
          "frame": "frame", "len": "len", "caplen": "caplen", "time": "time",
          "frame.linktype": "linktype"}

PSEUDO = tuple(_PAIRS) + tuple(_FRAME) + FRAME_TIME_KEYS + ("issues", "errors", "warnings",
                                                            "frame.protocols")


@lru_cache(maxsize=1)
def _declared() -> dict:
    """record key -> (kind, enum or None), declared headers first, then derived keys."""
    out: dict = {}
    for h in HEADERS.values():
        for key, f in zip(h.keys, h.fields):
            kind, enum = out.get(key, (f.fmt, None))
            if f.enum:   # one key in several header variants: the union of the value names
                enum = {**f.enum, **(enum or {})}
            out[key] = (kind, enum)
    for d in derived_rows(HEADERS.values()):
        out.setdefault(d.key, (d.kind, d.enum if d.enum and not d.key.endswith("_name")
                               else None))
    return out


@lru_cache(maxsize=1)
def known_layers() -> frozenset:
    from ..formats.derived import BYTE_RUNS
    names = set(HEADERS) | set(BYTE_RUNS) | {"eth", "ip", "ipv6", "udp", "vlan", "bootp", "data",
                                              "ub.icrc", "ub.bcrc", "ub.flits", "ub.dlldp"}
    for h in HEADERS.values():   # "ub.rtph" as the user writes it, whatever the layer id
        names.add(f"{h.ns}.{h.prefix}" if h.ns else h.prefix)
    return frozenset(names)


@lru_cache(maxsize=1)
def known_fields() -> frozenset:
    """Every name ``-Y`` and ``-e`` accept."""
    return frozenset(_declared()) | frozenset(PSEUDO) | known_layers()


def closest_field(name: str) -> str | None:
    """The known name nearest ``name`` (for the error message), or None."""
    got = difflib.get_close_matches(name, sorted(known_fields()), n=1, cutoff=0.6)
    return got[0] if got else None


def check_field(name: str) -> None:
    """Raise :class:`FilterError` when ``name`` is not a field ubpkt can show."""
    if name in known_fields():
        return
    near = closest_field(name)
    hint = f" (did you mean {near}?)" if near else " (ubpkt fields lists every name)"
    raise FilterError(f"\"{name}\" is neither a field nor a protocol name{hint}")


def enum_for(name: str):
    """The value names of an enum field (int -> name), or None."""
    got = _declared().get(name)
    return got[1] if got else None


def field_kind(name: str) -> str:
    """mac, ipv4, ipv6, eid, guid, hex, bytes, int, uint, string, list ... ('' if pseudo)."""
    if name in _PAIRS:
        return field_kind(_PAIRS[name][0])
    if name in _FRAME or name in ("issues", "errors", "warnings"):
        return "uint"
    if name in FRAME_TIME_KEYS:
        return "time"
    if name == "frame.protocols":
        return "string"
    got = _declared().get(name)
    return got[0] if got else ""


def _frame_time(index: int):
    def get(rec):
        t = rec.get("_t")
        return None if t is None else t[index]
    return get


def getter(name: str) -> Callable[[dict], object]:
    """A function reading ``name`` from a record: a value, a list of values, or None."""
    check_field(name)
    if name in _FRAME:
        key = _FRAME[name]
        return lambda rec: rec.get(key)
    if name in FRAME_TIME_KEYS:
        return _frame_time(FRAME_TIME_KEYS.index(name))
    if name in _PAIRS:
        a, b = _PAIRS[name]

        def pair(rec):
            f = rec["fields"]
            vals = [v for v in (f.get(a), f.get(b)) if v is not None]
            return vals or None
        return pair
    if name in ("issues", "errors", "warnings"):
        if name == "issues":
            return lambda rec: len(rec["issues"])
        sev = name[:-1]
        return lambda rec: sum(1 for i in rec["issues"] if i["severity"] == sev)
    if name == "frame.protocols":
        return lambda rec: ":".join(rec["layers"])
    declared = name in _declared()
    is_layer = name in known_layers()

    def get(rec):
        v = rec["fields"].get(name)
        if v is None and is_layer and not declared:
            return True if _has_layer(rec, name) else None
        return v
    return get


def _has_layer(rec: dict, name: str) -> bool:
    if name in rec["layers"]:
        return True
    pre = name + "."
    return any(k.startswith(pre) for k in rec["fields"])
