"""Views of decoded records: json/ndjson, fields (tab-separated), one-line summaries, trees."""
from __future__ import annotations

import json

try:  # orjson is much faster; the output is the same JSON
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

from ..formats import HEADERS

__all__ = ["with_time_epoch", "to_json_line", "to_json_bytes", "time_text", "to_fields_line", "summary_line", "layer_fields"]


def _default(o):
    if isinstance(o, (bytes, bytearray)):
        return o.hex()
    raise TypeError(type(o).__name__)


if _orjson is not None:
    _NL = _orjson.OPT_APPEND_NEWLINE

    def to_json_bytes(record: dict) -> bytes:
        """One ndjson line as bytes (newline included)."""
        try:
            return _orjson.dumps(record, default=_default, option=_NL)
        except TypeError:  # integers wider than 64 bits
            return (json.dumps(record, default=_default, separators=(",", ":")) +
                    "\n").encode()

    def to_json_line(record: dict) -> str:
        try:
            return _orjson.dumps(record, default=_default).decode()
        except TypeError:  # integers wider than 64 bits
            return json.dumps(record, default=_default, separators=(",", ":"))
else:  # pragma: no cover
    def to_json_line(record: dict) -> str:
        return json.dumps(record, default=_default, separators=(",", ":"))

    def to_json_bytes(record: dict) -> bytes:
        return (to_json_line(record) + "\n").encode()


def with_time_epoch(record: dict, epoch: str) -> dict:
    """The record for JSON output with its exact time: ``time_epoch``, the seconds since the
    epoch as a decimal string with the capture's digits (tshark's -T json frame.time_epoch;
    ``time`` stays the float seconds), put right after ``time``."""
    out = {}
    for k, v in record.items():
        out[k] = v
        if k == "time":
            out["time_epoch"] = epoch
    return out


def _plain(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, list):
        return ",".join(_plain(x) for x in v)
    return str(v)


def to_fields_line(record: dict, names: list[str]) -> str:
    """Tab-separated values of ``names`` (decimal integers, empty when absent)."""
    out = []
    for n in names:
        if n in ("frame", "time", "len", "caplen"):
            out.append(_plain(record[n]))
        else:
            out.append(_plain(record["fields"].get(n)))
    return "\t".join(out)


_SUMMARY_KEYS = (
    ("ub.lph.cfg", "cfg"), ("ub.lph.vl", "vl"), ("ub.lch.block", ""), ("ub.cna16.scna", "scna"),
    ("ub.cna16.dcna", "dcna"), ("ub.cna24.scna", "scna"), ("ub.cna24.dcna", "dcna"),
    ("ip.src", "src"), ("ip.dst", "dst"), ("ipv6.src", "src"), ("ipv6.dst", "dst"),
    ("ub.rtph.tpopcode_name", ""), ("ub.rtph.psn", "psn"), ("ub.rtph.srctpn", "stpn"),
    ("ub.rtph.dsttpn", "dtpn"), ("ub.ctph.tpopcode_name", ""),
    ("ub.btah.taopcode_name", ""), ("ub.atah.taopcode_name", ""), ("ub.btah.ini_tassn", "tassn"),
    ("ub.atah.ini_tassn", "tassn"), ("ub.maetah.address", "addr"), ("ub.maetah.length", "len"),
    ("ub.mgmtetah.code_name", "mgmt"), ("ub.mgmtetah.sub_code_name", ""),
    ("ub.scan_pdu.cmd_name", "scan"), ("ub.scan_pdu.opcode", "op"), ("ub.scan.hops", "hops"),
    ("ub.cfg5.protocol_name", ""), ("ub.crd_ack.ack_num", "ack_num"),
    ("ub.retry_req.rcvptr", "rcvptr"), ("ub.icrc.status", "icrc"), ("ub.bcrc.status", "bcrc"),
)


def time_text(t) -> str:
    """A record's time for people (records from raw flit files have none)."""
    return "-" if t is None else f"{t:.9f}"


#: (record key, "label=" or "", is an address) in the summary's order; the fast path's summary
#: renderers (ubpkt.dissect.fastpath) are generated from it.
SUMMARY_PLAN = _SUMMARY_PLAN = tuple((key, label + "=" if label else "", key.endswith("address"))
                      for key, label in _SUMMARY_KEYS)


def summary_line(record: dict, time_col: str | None = None) -> str:
    """The one-line view; ``time_col`` the time as ``-t`` formats it (default: the record's
    time in seconds).  On the hot path of ``decode``: one dict lookup per summary key."""
    f = record["fields"]
    get = f.get
    parts = [f"{record['frame']:>6}", time_text(record.get("time")) if time_col is None
             else time_col, f"{record['len']:>5}"]
    add = parts.append
    for key, label, is_addr in _SUMMARY_PLAN:
        v = get(key)
        if v is None:
            continue
        if v.__class__ is list:
            v = v[0]
        if is_addr and isinstance(v, int):
            v = hex(v)
        add(f"{label}{v}")
    issues = record["issues"]
    if issues:
        errs = sum(1 for i in issues if i["severity"] == "error")
        warns = sum(1 for i in issues if i["severity"] == "warning")
        if errs or warns:
            add(f"[{errs} error{'s' * (errs != 1)}, {warns} warning{'s' * (warns != 1)}]")
    return " ".join(parts)


def layer_fields(record: dict):
    """(layer, title, [(key, value)]) in wire order, for tree views."""
    fields = record["fields"]
    shown = set()
    out = []
    for layer in record["layers"]:
        h = HEADERS.get(layer)
        if h is not None:
            base = f"{h.ns}.{h.prefix}." if h.ns else f"{h.prefix}."
            title = f"{h.title} [{layer}]"
        else:
            base = layer + "."
            title = layer
        items = []
        for k, v in fields.items():
            if k.startswith(base) and k not in shown:
                items.append((k, v))
                shown.add(k)
        if layer == "data":
            items = [(k, v) for k, v in fields.items() if k.startswith("data.")]
        out.append((layer, title, items))
    rest = [(k, v) for k, v in fields.items() if k not in shown and not k.startswith("data.")]
    if rest:
        out.append(("derived", "Derived fields", rest))
    return out
