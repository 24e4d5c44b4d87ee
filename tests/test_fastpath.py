"""The template fast path gives exactly the records of the reference dissector."""
from hypothesis import given, settings, strategies as st

from ubpkt.capture import open_capture
from ubpkt.dissect import dissect
from ubpkt.fastpath import TemplateCache
from ubpkt.output import to_json_bytes, to_json_line
from ubpkt.profile import NS3, SPEC


def _frames(sample_captures, ns3_dir):
    out = []
    for name in ("uboe_transactions.pcap", "ub_native.pcap"):
        with open_capture(sample_captures / name) as cap:
            out += [(p.data, cap.linktype, SPEC) for p in cap]
    for name in ("caseA_host0_port0_tx.pcap", "caseB_switch2_port0_tx.pcap"):
        with open_capture(ns3_dir / name) as cap:
            out += [(p.data, cap.linktype, NS3) for p in cap]
    return out


def _same(buf, lt, prof, cache):
    line = cache.ndjson(buf, lt, 7, 123456789, len(buf) + 3)
    layers, fields, issues = cache.decode(buf, lt)
    fr = dissect(buf, lt, prof)
    assert layers == fr.layers
    assert fields == fr.fields
    assert issues == fr.issues
    # same text too: key order is part of the output
    assert to_json_line(fields) == to_json_line(fr.fields)
    assert line == to_json_bytes({"frame": 7, "time": 123456789 / 1e9, "len": len(buf) + 3,
                                  "caplen": len(buf), "linktype": lt, "layers": fr.layers,
                                  "fields": fr.fields, "issues": fr.issues})


def test_templates_hit_and_agree(sample_captures, ns3_dir):
    frames = _frames(sample_captures, ns3_dir)
    caches = {SPEC: TemplateCache(SPEC), NS3: TemplateCache(NS3)}
    for _ in range(2):
        for buf, lt, prof in frames:
            _same(buf, lt, prof, caches[prof])
    assert caches[SPEC].hits >= 35 and caches[NS3].hits >= 60


@settings(max_examples=300)
@given(st.data())
def test_corrupted_frames_agree(sample_captures, ns3_dir, data):
    frames = _frames(sample_captures, ns3_dir)
    buf, lt, prof = data.draw(st.sampled_from(frames))
    cache = TemplateCache(prof)
    cache.decode(buf, lt)                     # warm: the clean frame makes a template
    mutated = bytearray(buf)
    for _ in range(data.draw(st.integers(1, 3))):
        bit = data.draw(st.integers(0, min(len(buf), 120) * 8 - 1))
        mutated[bit // 8] ^= 1 << (bit % 8)
    _same(bytes(mutated), lt, prof, cache)
    # a second clean frame of the same kind with other values in the free fields
    _same(buf, lt, prof, cache)
