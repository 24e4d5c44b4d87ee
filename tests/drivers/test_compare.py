"""Field-level comparison of dissected packets (ubpkt.drivers.compare)."""
from ubpkt import open_capture
from ubpkt.dissect import dissect   # the function (ubpkt.dissect is also the package)
from ubpkt.drivers.compare import field_differences, ignore_for, summarize
from ubpkt.stack.network import _icrc_uboe


def _frames(path):
    with open_capture(path) as c:
        return [(bytes(p.data), c.linktype) for p in c]


def _with_icrc(buf: bytearray) -> bytes:
    end = len(buf) - 4
    buf[end:] = _icrc_uboe(memoryview(buf), end).to_bytes(4, "little")
    return bytes(buf)


def test_a_frame_agrees_with_itself_and_a_changed_psn_is_named():
    data, lt = _frames("captures/uboe_transactions.pcap")[0]
    a = dissect(data, lt)
    assert field_differences(a, dissect(data, lt)) == []
    b = bytearray(data)
    b[42 + 11] ^= 0x05                       # RTPH PSN, low byte (RTPH starts after 42 bytes)
    d = field_differences(a, dissect(_with_icrc(b), lt), packet=7)
    assert [x["field"] for x in d] == ["ub.rtph.psn"]
    assert d[0]["packet"] == 7 and d[0]["layer"] == "ub.rtph"
    assert d[0]["got"] == d[0]["expected"] ^ 0x05


def test_carrier_fields_are_ignored_by_default_and_compared_on_request():
    data, lt = _frames("captures/uboe_transactions.pcap")[0]
    a = dissect(data, lt)
    b = bytearray(data)
    b[34:36] = (0xBEEF).to_bytes(2, "big")         # UDP source port
    got = dissect(_with_icrc(b), lt)
    assert field_differences(a, got) == []
    d = field_differences(a, got, ignore=ignore_for("spec", keep=["carrier"]))
    assert {"udp.srcport", "ub.icrc.value"} <= {x["field"] for x in d}


def test_a_damaged_icrc_is_a_difference_and_a_payload_once_with_its_offset():
    data, lt = _frames("captures/uboe_transactions.pcap")[0]
    a = dissect(data, lt)
    b = bytearray(data)
    b[-10] ^= 1                                     # payload byte, ICRC left as it was
    d = field_differences(a, dissect(bytes(b), lt))
    fields = {x["field"]: x for x in d}
    assert fields["ub.icrc.status"]["got"] != "good"
    # the 64-byte payload ends 4 bytes (the ICRC) before the frame does: byte -10 is its 58th
    assert fields["data.data"]["first_difference_at"] == 58
    assert summarize(d)["data.data"] == 1


def test_enum_names_ride_with_their_value_and_missing_layers_are_one_difference():
    recs = [dissect(d, lt) for d, lt in _frames("captures/uboe_transactions.pcap")[:40]]
    by_op = {}
    for r in recs:
        op = r.fields.get("ub.btah.taopcode_name") or r.fields.get("ub.atah.taopcode_name")
        if op:
            by_op.setdefault(tuple(r.layers), r)
    shapes = list(by_op.values())
    assert len(shapes) >= 2
    a, b = shapes[0], next(s for s in shapes[1:] if s.layers != shapes[0].layers)
    d = field_differences(a, b)
    assert any(x["field"] == "layers" for x in d)
    assert not any(x["field"].endswith("_name") for x in d)
    for x in d:
        if "expected_name" in x:
            assert x["field"] + "_name" in a.fields or x["field"] + "_name" in b.fields


def test_ns3_dialect_leaves_credits_and_congestion_out(ns3_dir):
    recs = [dissect(d, lt) for d, lt in _frames(ns3_dir / "caseC_switch2_port0_tx.pcap")]
    tpack0, tpack1 = recs[4], recs[5]
    d = field_differences(tpack0, tpack1, ignore=ignore_for("ns3"))
    assert {x["field"] for x in d} == {"ub.rtph.psn", "ub.rtph.last"}
    d = field_differences(tpack0, tpack1, ignore=ignore_for("spec"))
    assert "ub.cetph.ack_seq" in {x["field"] for x in d}


def test_records_as_dicts_work_like_frames():
    data, lt = _frames("captures/uboe_transactions.pcap")[0]
    a = dissect(data, lt)
    rec = {"layers": list(a.layers), "fields": dict(a.fields)}
    assert field_differences(rec, a) == []
    rec["fields"]["ub.maetah.length"] += 1
    assert [x["field"] for x in field_differences(rec, a)] == ["ub.maetah.length"]
