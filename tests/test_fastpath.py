"""The template fast path gives exactly the records of the reference dissector."""
from hypothesis import given, settings, strategies as st

from ubpkt.capture import open_capture
from ubpkt.dissect import dissect
from ubpkt.dissect.fastpath import TemplateCache
from ubpkt.views.output import to_json_bytes, to_json_line
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


def _variants(layers, i, ttl=64):
    out = []
    for name, spec in layers:
        spec = dict(spec) if isinstance(spec, dict) else spec
        if name == "ip":
            spec["id"], spec["ttl"] = i & 0xFFFF, ttl
        elif name == "ub.rtph":
            spec["psn"] = i
        elif name in ("ub.btah", "ub.atah"):
            spec["ini_tassn"] = i & 0xFFFF
        elif name == "data":
            spec = bytes((i + j) & 0xFF for j in range(len(spec)))
        out.append((name, spec))
    return out


def test_specialised_templates_agree(sample_captures):
    """After LEARN frames a template is specialised on the bits that stayed constant; frames
    that change those bits (TTL here) must still decode exactly as the dissector says."""
    import importlib.util
    from pathlib import Path

    from ubpkt.encode import encode_layers
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("mc", root / "captures" / "make_captures.py")
    mc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mc)
    kinds = mc.uboe_packets()
    cache = TemplateCache(SPEC)
    for i in range(3 * TemplateCache.LEARN * len(kinds)):
        ttl = 64 if i < 2 * TemplateCache.LEARN * len(kinds) else 30 + i % 7
        buf = encode_layers(_variants(kinds[i % len(kinds)], i, ttl))
        _same(buf, 1, SPEC, cache)
    assert any(t.special for t in cache.templates())
