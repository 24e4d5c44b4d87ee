"""The dataset schema (issue 15): generated from the declarations, injective names, types from
declared widths, metadata."""
from __future__ import annotations

import json

import pytest

from ubpkt.analytics.schema import (FRAME_COLUMNS, column_map, column_name, columns,
                                    field_columns)
from ubpkt.formats import HEADERS
from ubpkt.formats.derived import derived_rows
from ubpkt.views.fieldnames import _declared


def test_column_names_are_injective_over_every_known_field():
    keys = set(_declared())
    names = {}
    for k in keys:
        n = column_name(k)
        assert n not in names, f"{k} and {names[n]} both map to {n}"
        names[n] = k
    frame = {c.name for c in FRAME_COLUMNS} | {"extra_fields"}
    assert not frame & set(names), frame & set(names)


def test_every_declared_and_derived_key_has_a_column():
    keys = {c.key for c in field_columns()}
    for h in HEADERS.values():
        for k, f in zip(h.keys, h.fields):
            assert k in keys
            if f.enum:
                assert k + "_name" in keys
    for d in derived_rows(HEADERS.values()):
        assert d.key in keys


def test_naming_rule():
    assert column_name("ub.rtph.psn") == "rtph_psn"
    assert column_name("ip.src") == "ip_src"
    assert column_name("udp.dstport") == "udp_dstport"
    assert column_name("eth.src") == "eth_src"
    assert column_name("ub.analysis.psn_gap") == "analysis_psn_gap"
    assert column_name("data.data") == "payload"


def test_types_follow_declared_widths():
    kinds = {c.key: c.kind for c in field_columns()}
    for h in HEADERS.values():
        for k, f in zip(h.keys, h.fields):
            kind = kinds[k]
            if kind.startswith("uint"):
                w = int(kind[4:])
                assert f.bits + f.shift <= w, (k, f.bits, kind)
                assert f.fmt in ("int", "eid")
            else:
                assert kind in ("string", "text_or_int"), (k, kind)
                assert f.fmt != "int" or kind == "text_or_int"
            if f.enum:
                assert kinds[k + "_name"] == "dict"
    assert kinds["ub.rtph.psn"] == "uint32"
    assert kinds["ub.rtph.tpopcode"] == "uint8"
    assert kinds["ip.src"] == "string"
    assert kinds["ub.analysis.response_time_ns"] == "uint64"
    assert kinds["ub.saetph.acked_psns"] == "list_uint32"


def test_arrow_schema_and_metadata():
    from ubpkt.analytics.schema import arrow_schema
    import pyarrow as pa
    s = arrow_schema(payload=True)
    assert s.field("ts_ns").type == pa.int64()
    assert s.field("rtph_tpopcode_name").type == pa.dictionary(pa.int32(), pa.string())
    assert s.field("payload").type == pa.binary()
    assert s.field("issues").type.value_type.field("severity").type == pa.string()
    meta = {k.decode(): v.decode() for k, v in s.metadata.items()}
    assert json.loads(meta["ubpkt.columns"]) == column_map()
    assert meta["ubpkt.schema_version"] == "1"
    assert "payload" not in arrow_schema(payload=False).names
    assert [f.name for f in s] == [c.name for c in columns(True)]

