"""Field-level comparison of two dissected packets: what a live peer answered against what a
capture says it should have answered (``ubpkt replay --as-initiator``, the ns-3-UB interop
check).

Both sides are records in the vocabulary of :mod:`ubpkt.record` (``layers`` and the flat
``fields`` map ``ub.<header>.<field>``), or dissected frames (:func:`ubpkt.dissect`), which
have the same two attributes.  The result is a list of differences, each a dict::

    {"packet": ..., "layer": "ub.rtph", "field": "ub.rtph.psn", "expected": 3, "got": 4}

empty when the two agree on every compared field.  A layer present on one side only is one
difference (``field`` ``"layers"``) and its fields are not listed one by one.  Enumerated fields
are compared by value; their ``*_name`` companions are added to the difference
(``expected_name``/``got_name``), never reported on their own.  Byte runs (payloads) are
reported once, with the first differing offset and both lengths.

What is not compared is a list of glob patterns over field names (:data:`IGNORE_SETS`): a
replay cannot reproduce the carrier fields the host's stack or the rewriting chose (MACs, IPv4
identification and checksums, addresses and UDP ports, the ICRC value, which covers them); the
ns-3-UB dialect adds what its simulation state decides, not the protocol exchange (link credits
and their acknowledgement, UB 2.0 §4.6; congestion information in the NTH/CNA CCI and the
CETPH, §5.3.5 and §6.2.2; the load-balancing field and routing type, §5.3.2 and §6.5).
The ICRC *status* is always compared.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Iterable, Mapping

__all__ = ["IGNORE_SETS", "DIALECT_IGNORE", "ignore_for", "field_differences",
           "summarize"]

#: Named sets of field-name patterns left out of a comparison (module doc).
IGNORE_SETS: dict[str, tuple[str, ...]] = {
    # what the sending host and the replay's rewriting choose, not the UB peer
    "carrier": ("eth.*", "vlan.*", "ip.id", "ip.checksum", "ip.ttl", "ip.src", "ip.dst",
                "ip.dscp", "ip.ecn", "ip.flags", "udp.srcport", "udp.dstport",
                "udp.checksum", "ub.icrc.value"),
    # link-level flow control state (UB 2.0 §4.6): credits returned and their VL
    "credits": ("ub.lph.crd", "ub.lph.crd_vl", "ub.lph.ack"),
    # congestion state (UB 2.0 §5.3.5, §6.2.2): CCI in the NTH / CNA header and the CETPH echo
    "congestion": ("ub.nth.cci", "ub.cci.*", "ub.cna16.cci", "ub.cna24.cci", "ub.cetph.*"),
    # per-packet load balancing / routing choices of a switch or host (UB 2.0 §5.3.2, §6.5)
    "routing": ("ub.cna16.lbf", "ub.cna24.lbf", "ub.lph.rt", "ub.lph.rt_perpacket",
                "ub.lph.rt_shortest"),
}

#: The sets each dialect leaves out by default.
DIALECT_IGNORE: dict[str, tuple[str, ...]] = {
    "spec": ("carrier",),
    "ns3": ("carrier", "credits", "congestion", "routing"),
}

_NAME = re.compile(r"_name$")


def ignore_for(dialect: str = "spec", extra: Iterable[str] = (),
               keep: Iterable[str] = ()) -> tuple[str, ...]:
    """The ignore patterns of ``dialect`` plus ``extra`` patterns or set names, less any
    pattern or set named in ``keep``."""
    names = list(DIALECT_IGNORE.get(dialect, DIALECT_IGNORE["spec"]))
    pats: list[str] = []
    for item in (*names, *extra):
        pats.extend(IGNORE_SETS.get(item, (item,)))
    drop = set()
    for item in keep:
        drop.update(IGNORE_SETS.get(item, (item,)))
    return tuple(p for p in dict.fromkeys(pats) if p not in drop)


def _parts(x) -> tuple[list, Mapping]:
    if isinstance(x, Mapping):
        return list(x.get("layers", ())), x.get("fields", {})
    return list(getattr(x, "layers", ())), getattr(x, "fields", {})


def _layer_of(field: str, layers: list) -> str:
    """The layer a field belongs to: the longest layer id that prefixes it (variants such as
    ``ub.lph_ns3`` record their fields under ``ub.lph``)."""
    best = field.rsplit(".", 1)[0]
    for lay in layers:
        base = lay.split("_ns3")[0]
        if field.startswith(base + ".") and len(base) >= len(best):
            best = lay
    return best


def _ignored(field: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(field, p) for p in patterns)


def _is_hex_run(v) -> bool:
    return isinstance(v, str) and len(v) >= 2 and len(v) % 2 == 0 and \
        all(c in "0123456789abcdef" for c in v)


def field_differences(expected, got, *, ignore: Iterable[str] = IGNORE_SETS["carrier"],
                      packet=None) -> list[dict]:
    """The differences between ``expected`` and ``got`` (module doc).  ``packet`` labels every
    difference (a frame number, a request's description)."""
    pats = tuple(ignore)
    e_layers, e_fields = _parts(expected)
    g_layers, g_fields = _parts(got)
    out: list[dict] = []
    only_e = [lay for lay in e_layers if lay not in g_layers]
    only_g = [lay for lay in g_layers if lay not in e_layers]
    if only_e or only_g:
        out.append({"packet": packet, "layer": None, "field": "layers",
                    "expected": e_layers, "got": g_layers})
    skip_layers = {lay.split("_ns3")[0] for lay in (*only_e, *only_g)}
    keys = list(e_fields)
    keys += [k for k in g_fields if k not in e_fields]
    for k in keys:
        if _NAME.search(k) and k[:-5] in e_fields.keys() | g_fields.keys():
            continue                    # a name goes with its value
        if _ignored(k, pats):
            continue
        lay = _layer_of(k, e_layers or g_layers)
        if lay.split("_ns3")[0] in skip_layers:
            continue
        ev, gv = e_fields.get(k), g_fields.get(k)
        if ev == gv:
            continue
        d = {"packet": packet, "layer": lay, "field": k, "expected": ev, "got": gv}
        if _is_hex_run(ev) and _is_hex_run(gv):
            n = min(len(ev), len(gv)) // 2
            first = next((i for i in range(n) if ev[2 * i:2 * i + 2] != gv[2 * i:2 * i + 2]),
                         n)
            d["expected"] = f"{len(ev) // 2} bytes"
            d["got"] = f"{len(gv) // 2} bytes"
            d["first_difference_at"] = first
        name = k + "_name"
        if name in e_fields or name in g_fields:
            d["expected_name"] = e_fields.get(name)
            d["got_name"] = g_fields.get(name)
        out.append(d)
    return out


def summarize(differences: list[dict]) -> dict:
    """Count differences by field name (for a report's summary)."""
    counts: dict[str, int] = {}
    for d in differences:
        counts[d["field"]] = counts.get(d["field"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
