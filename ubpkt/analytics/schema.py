"""The dataset's columns, generated from the header declarations: the one schema every exported
file has, whatever its traffic, so that a directory of files reads as one table.

Naming (:func:`column_name`): a record key ``ub.rtph.psn`` is the column ``rtph_psn`` (a leading
``ub.`` dropped, dots made ``_``); the carriers keep their protocol prefix (``ip_src``,
``udp_dstport``, ``eth_src``); the analysis keys ``ub.analysis.*`` become ``analysis_*``.  The
mapping is injective over every known key (tested) and stored in each file's metadata
(:data:`META_COLUMNS`), so a reader can always go back from a column to its record key.

Types (:func:`field_columns`), from the declarations (``ubpkt.formats.core.Field``):

* an integer field: the smallest unsigned type holding its declared width (plus the address
  shift a field may have): uint8/16/32/64; a key declared by several header variants takes the
  widest;
* an address or identifier shown as text (``mac``, ``ipv4``, ``ipv6``, ``eid``, ``guid``,
  ``hex``; every field wider than 64 bits is one of them): a string, in the record's text form
  (``"10.0.0.1"``, ``"0000:...:0001"``), exactly as ``decode -T json`` prints it - queries
  compare with the same literals users read in the decoder's output;
* a key that is an integer in one header variant and text in another (``ub.eidh.seid``: 20-bit
  compact EIDs, 128-bit EIDs): a string, the integer as decimal digits (kind ``text_or_int``);
* an enum's ``<field>_name`` and every other ``*_name`` key: ``dictionary<int32, string>``;
* derived keys (``ubpkt.formats.derived.DERIVED``): ``uint`` by their declared bits, ``float``
  as float64, ``list`` as ``list<uint...>``, byte runs (hex text in the record) as strings,
  except the payload ``data.data``, which is the binary column ``payload`` and only written on
  request (``--payload``).

Frame columns (:data:`FRAME_COLUMNS`) come first; ``extra_fields`` (a JSON object, usually
null) holds any record value a typed column cannot: a repeated header's list of values, a key
no declaration names, a value outside its declared width.  With it the table holds every
record exactly (``ubpkt.analytics.rows.table_records`` rebuilds them; tested row by row).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from ..formats import HEADERS
from ..formats.derived import derived_rows

__all__ = ["Column", "SCHEMA_VERSION", "FRAME_COLUMNS", "PAYLOAD", "EXTRA", "column_name",
           "field_columns", "columns", "column_map", "arrow_schema", "arrow_type",
           "file_metadata", "META_COLUMNS", "META_VERSION", "META_UBPKT", "META_ANALYSIS",
           "PAYLOAD_KEY", "ISSUE_FIELDS"]

#: Bumped whenever a column is renamed, retyped or removed (adding columns bumps it too: a
#: dataset's files must all have one version to read as one table).
SCHEMA_VERSION = 1

#: File metadata keys (Parquet key/value metadata of every file).
META_COLUMNS = "ubpkt.columns"           # JSON {column: record key} of the field columns
META_VERSION = "ubpkt.schema_version"
META_UBPKT = "ubpkt.version"
META_ANALYSIS = "ubpkt.analysis"         # "capture": analysis_* filled, "none": left null
META_SOURCE = "ubpkt.source"             # JSON {capture, segment, path}

#: The record key of the payload bytes and its column (binary, only with ``--payload``).
PAYLOAD_KEY = "data.data"
PAYLOAD = "payload"
#: Record values no typed column holds (JSON object text, null when there are none).
EXTRA = "extra_fields"
#: The members of each ``issues`` element (the record's issue dict, ``ubpkt.record``).
ISSUE_FIELDS = ("severity", "layer", "field", "offset", "message")


@dataclass(frozen=True)
class Column:
    """One column: its ``name``, the record ``key`` it holds (None for frame columns), its
    ``kind`` (see :func:`arrow_type`) and a short ``doc``."""
    name: str
    key: str | None
    kind: str
    doc: str = ""


#: The frame columns, in order (docs/analytics.md describes each).
FRAME_COLUMNS = (
    Column("capture", None, "string", "capture file name (no directory)"),
    Column("frame", None, "int64", "frame number in the capture, from 1"),
    Column("ts_ns", None, "int64", "capture time, integer ns since the epoch (exact)"),
    Column("len", None, "uint32", "original frame length"),
    Column("cap_len", None, "uint32", "captured bytes"),
    Column("linktype", None, "int32", "pcap link type of the frame"),
    Column("layers", None, "string", "layer ids, colon-joined (tshark's frame.protocols)"),
    Column("issues", None, "issues", "what is wrong with the frame (list of structs)"),
    Column("n_errors", None, "int16", "issues of severity error"),
    Column("n_warnings", None, "int16", "issues of severity warning"),
)

_TEXT_FORMATS = frozenset({"mac", "ipv4", "ipv6", "eid", "guid", "hex"})


def column_name(key: str) -> str:
    """The column of record key ``key``: ``ub.rtph.psn`` -> ``rtph_psn``, ``ip.src`` ->
    ``ip_src``, ``ub.analysis.psn_gap`` -> ``analysis_psn_gap``; ``data.data`` -> ``payload``."""
    if key == PAYLOAD_KEY:
        return PAYLOAD
    if key.startswith("ub."):
        key = key[3:]
    return key.replace(".", "_").replace("-", "_")


def _uint(bits: int) -> str:
    for w in (8, 16, 32):
        if bits <= w:
            return f"uint{w}"
    return "uint64"


def _is_text(f) -> bool:
    """Whether a declared field shows as text in records (core.value_to_text: an ``eid``
    field that is not 128 bits stays an integer)."""
    return f.fmt in _TEXT_FORMATS and not (f.fmt == "eid" and f.bits != 128)


@lru_cache(maxsize=1)
def field_columns() -> tuple:
    """Every record key's column, declared headers first (registry order), then the derived
    keys; computed from ``HEADERS`` and ``derived_rows`` alone."""
    kinds: dict = {}      # key -> [text?, int?, width, doc]

    def note(key, text, width, doc):
        got = kinds.get(key)
        if got is None:
            kinds[key] = [text, not text, width, doc]
        else:
            got[0] |= text
            got[1] |= not text
            got[2] = max(got[2], width)

    for h in HEADERS.values():
        for key, f in zip(h.keys, h.fields):
            note(key, _is_text(f), f.bits + f.shift, f"{h.title}: {f.name} ({f.bits} bits)")
    out = []
    for key, (text, integer, width, doc) in kinds.items():
        kind = ("text_or_int" if integer else "string") if text else _uint(width)
        out.append(Column(column_name(key), key, kind, doc))
    seen = set(kinds)
    for h in HEADERS.values():
        for key, f in zip(h.keys, h.fields):
            if f.enum and key + "_name" not in seen:
                seen.add(key + "_name")
                out.append(Column(column_name(key + "_name"), key + "_name", "dict",
                                  f"{h.title}: {f.name} value name"))
    for d in derived_rows(HEADERS.values()):
        if d.key in kinds and d.kind == "uint":     # declared too: the widest
            i = next(i for i, c in enumerate(out) if c.key == d.key)
            if out[i].kind.startswith("uint") and d.bits:
                w = max(int(out[i].kind[4:]), d.bits)
                out[i] = Column(out[i].name, d.key, _uint(w), out[i].doc)
            continue
        if d.key in seen:
            continue
        seen.add(d.key)
        if d.kind == "uint":
            kind = _uint(d.bits or 64)
        elif d.kind == "float":
            kind = "float64"
        elif d.kind == "list":
            kind = "list_" + _uint(d.bits or 64)
        elif d.key == PAYLOAD_KEY:
            kind = "binary"
        elif d.key.endswith("_name"):
            kind = "dict"
        else:               # strings and the hex text of byte runs
            kind = "string"
        out.append(Column(column_name(d.key), d.key, kind, d.title))
    return tuple(out)


def columns(payload: bool = False) -> tuple:
    """Every column of an exported file, in order: frame columns, field columns (the payload
    only when ``payload``), then ``extra_fields``."""
    fields = tuple(c for c in field_columns() if payload or c.key != PAYLOAD_KEY)
    return FRAME_COLUMNS + fields + (Column(EXTRA, None, "string",
                                            "JSON object of record values no column holds"),)


@lru_cache(maxsize=1)
def column_map() -> dict:
    """``{column: record key}`` of every field column (what :data:`META_COLUMNS` stores)."""
    return {c.name: c.key for c in field_columns()}


def arrow_type(kind: str):
    """The pyarrow type of a column kind."""
    import pyarrow as pa
    if kind == "issues":
        return pa.list_(pa.struct([("severity", pa.string()), ("layer", pa.string()),
                                   ("field", pa.string()), ("offset", pa.int64()),
                                   ("message", pa.string())]))
    if kind == "dict":
        return pa.dictionary(pa.int32(), pa.string())
    if kind in ("string", "text_or_int"):
        return pa.string()
    if kind == "binary":
        return pa.binary()
    if kind.startswith("list_"):
        return pa.list_(arrow_type(kind[5:]))
    return getattr(pa, kind)()


def file_metadata(analysis: bool = False, source: dict | None = None) -> dict:
    """The key/value metadata every file carries (bytes, as Parquet stores it)."""
    from .. import __version__
    meta = {META_COLUMNS: json.dumps(column_map(), separators=(",", ":")),
            META_VERSION: str(SCHEMA_VERSION), META_UBPKT: __version__,
            META_ANALYSIS: "capture" if analysis else "none"}
    if source is not None:
        meta[META_SOURCE] = json.dumps(source, sort_keys=True)
    return {k.encode(): v.encode() for k, v in meta.items()}


def arrow_schema(payload: bool = False, analysis: bool = False, source: dict | None = None):
    """The pyarrow schema of an exported file, with its metadata."""
    import pyarrow as pa
    return pa.schema([pa.field(c.name, arrow_type(c.kind)) for c in columns(payload)],
                     metadata=file_metadata(analysis, source))
