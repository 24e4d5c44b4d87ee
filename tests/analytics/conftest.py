"""Shared helpers of the analytics tests: records from the decoder as the reference, and the
rows of an exported dataset as records again (``ubpkt.analytics.rows.table_records``)."""
from __future__ import annotations

import pytest

pa = pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install 'ubpkt[analytics]')")


def reference_records(path, payload=False, link_type="auto", profile=None):
    """The dissector's records of a capture (no templates), in the form table_records gives."""
    from ubpkt.capture.stream import iter_records
    out = []
    for rec in iter_records(path, link_type, profile, fast=False, exact_time=True):
        if rec.get("frame") is None:
            break
        fields = dict(rec["fields"])
        if not payload:
            fields.pop("data.data", None)
        tns = rec["_tns"][0] if "_tns" in rec else (
            None if rec["time"] is None else round(rec["time"] * 1e9))
        out.append({"frame": rec["frame"], "len": rec["len"], "caplen": rec["caplen"],
                    "linktype": rec["linktype"], "layers": list(rec["layers"]),
                    "fields": fields, "issues": [dict(i) for i in rec["issues"]],
                    "_tns": tns})
    return out


def dataset_records(paths):
    """Records of Parquet files (read with pyarrow.parquet), sorted by (capture, frame)."""
    import pyarrow.parquet as pq
    from ubpkt.analytics.rows import table_records
    rows = []
    for p in paths:
        rows.extend(table_records(pq.read_table(p)))
    rows.sort(key=lambda r: (r["capture"], r["frame"]))
    for r in rows:
        r.pop("capture")
    return rows


def assert_same_rows(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if g != w:
            for k in w:
                if g.get(k) != w[k] and k == "fields":
                    diff = {x: (g["fields"].get(x), w["fields"].get(x))
                            for x in set(g["fields"]) | set(w["fields"])
                            if g["fields"].get(x) != w["fields"].get(x)}
                    raise AssertionError(f"frame {w['frame']}: fields differ {diff}")
            assert g == w, f"frame {w['frame']}"
