"""The packet grammar (ubpkt.formats.grammar) is complete and its consumers agree with it."""
from __future__ import annotations

import glob

import pytest

from ubpkt import NS3, SPEC, decode, encode_layers
from ubpkt.capture import open_capture
from ubpkt.dissect.walk import AFTER, PROCS, RESERVED_REPORTS
from ubpkt.encode import RULES
from ubpkt.formats import HEADERS, grammar as G
from ubpkt.formats.derived import BYTE_RUNS, derived_rows
from ubpkt.formats.enums import TA_RESPONSES, TAOPCODE

CAPTURES = sorted(glob.glob("captures/*.pcap")) + sorted(glob.glob("../shared/interop/*/*.pcap"))


def _targets(rule):
    if isinstance(rule, (G.Switch, G.Peek, G.Knob)):
        out = list(rule.cases.values()) + [rule.default]
        if isinstance(rule, G.Peek):
            out.append(rule.missing)
        return [t for r in out for t in _targets(r)]
    return [rule]


def _all_targets():
    rules = list(G.NEXT.values()) + list(G.START.values())
    return {t for r in rules for t in _targets(r)}


def test_every_target_is_a_header_or_a_procedure():
    for t in _all_targets():
        if t in (G.END, G.RESERVED):
            continue
        if t.startswith("@"):
            assert t in G.PROCEDURES, t
            assert t in PROCS, f"the dissector does not implement {t}"
            continue
        for prof in (SPEC, NS3):
            for compact in (False, True):
                assert G.resolve(t, prof, compact) in HEADERS, t


def test_every_layer_with_a_next_rule_exists():
    for layer in list(G.NEXT) + list(AFTER) + list(RESERVED_REPORTS):
        assert layer in HEADERS or layer in BYTE_RUNS or layer in G.VARIANTS, layer


def test_variants_name_declared_headers():
    for layer, choices in G.VARIANTS.items():
        # a logical layer is a declared header, or its last choice is unconditional
        assert layer in HEADERS or choices[-1][0] == (), layer
        bases = {HEADERS[concrete].base for _, concrete in choices}
        if layer in HEADERS:
            bases.add(HEADERS[layer].base)
        assert len(bases) == 1, (layer, bases)
        for conds, concrete in choices:
            assert G.logical(concrete) == layer


def test_ta_sequences_cover_every_opcode():
    for op in TAOPCODE:
        if op in TA_RESPONSES:
            assert op in G.TA_RESPONSE_HEADERS
        else:
            assert op in G.TA_REQUEST_HEADERS, hex(op)
    for steps in list(G.TA_REQUEST_HEADERS.values()) + list(G.TA_RESPONSE_HEADERS.values()):
        for st in steps:
            layer = st[2] if isinstance(st, tuple) else st
            assert layer.startswith("@") or layer in HEADERS, layer


def test_ta_sequence_gates():
    # Read with TV_EN and the profile's optional TAIDETAH (UB 2.0 §7.4 Table 7-2)
    p = SPEC.with_(read_taidetah=True)
    assert G.ta_sequence(0x06, False, {"tv_en": 1, "ud_flag": 1}, p) == [
        "ub.udetah", "ub.taidetah", "ub.maetah", "ub.tvetah"]
    assert G.ta_sequence(0x03, False, {}, SPEC, compact=True) == ["ub.maetah_c"]
    assert G.ta_sequence(0x03, False, {}, NS3, compact=True) == ["ub.maetah_c_ns3"]
    assert G.ta_sequence(0x11, True, {}, SPEC) == []


def test_every_auto_field_has_a_rule_the_encoder_implements():
    for layer, h in HEADERS.items():
        for f in h.fields:
            if f.auto:
                assert (layer, f.name) in G.AUTO_FILL, (layer, f.name)
    assert set(G.AUTO_FILL.values()) <= set(RULES)


def test_icrc_masks_match_the_spec_text():
    # UB 2.0 §5.3.7: CCI and LBF of the NTH; IPv4 ToS, TTL, checksum; IPv6 traffic class, flow
    # label, hop limit; the UDP checksum.  Offsets from the RFC/§5.2.1 layouts, written out.
    assert HEADERS["ub.cna16"].icrc_masks(4) == [(8, 3, 0xFF)]          # bytes 4..6 of the NTH
    assert HEADERS["ub.cna24"].icrc_masks(4) == [(10, 3, 0xFF)]         # bytes 6..8 of the NTH
    assert HEADERS["ip"].icrc_masks(0) == [(1, 1, 0xFF), (8, 1, 0xFF), (10, 2, 0xFF)]
    assert HEADERS["ipv6"].icrc_masks(0) == [(0, 4, 0x0F), (7, 1, 0xFF)]
    assert HEADERS["udp"].icrc_masks(0) == [(6, 2, 0xFF)]
    assert HEADERS["ub.cfg5"].icrc_masks(4) == []


def test_selectors_are_declared_fields():
    for layer in G.NEXT:
        if layer not in HEADERS:
            continue
        for name in G.selectors(layer):
            for prof in (SPEC, NS3):
                assert name in HEADERS[G.resolve(layer, prof)].index, (layer, name)


def test_pairs():
    assert G.ta_response_opcode(0x03) == 0x11
    assert G.ta_response_opcode(0x03, no_taack=1) is None
    assert G.ta_response_opcode(0x06) == 0x12
    assert G.ta_response_opcode(0x0B) == 0x13
    assert G.ta_response_opcode(0x15) is None
    for key in G.TA_MATCH:
        for lay in ("ub.btah", "ub.atah"):
            assert key in HEADERS[lay].index


def _records():
    for path in CAPTURES:
        with open_capture(path) as cap:
            for pkt in cap:
                yield decode(pkt.data, pkt.linktype)


@pytest.mark.skipif(not CAPTURES, reason="no captures")
def test_every_record_key_is_declared():
    declared = {k for h in HEADERS.values() for k in h.keys}
    declared |= {d.key for d in derived_rows(HEADERS.values())}
    seen = set()
    for rec in _records():
        seen.update(rec["fields"])
    assert seen - declared == set()


def test_cfg5_icrc_knob_round_trips():
    # a profile that gives CFG-5 frames an ICRC: the encoder appends it, the decoder checks it
    prof = SPEC.with_(cfg5_icrc=True)
    layers = [("ub.lph", {"cfg": 5}), ("ub.cfg5", {"protocol": 0x0106}),
              ("ub.npic", {"opcode": 1, "sum": 1}), ("ub.npic_entry", {"guid": 5, "npi": 9})]
    pkt = encode_layers(layers, prof)
    rec = decode(pkt, profile=prof)
    assert rec["layers"][-1] == "ub.icrc"
    assert rec["fields"]["ub.icrc.status"] == "good"
    assert len(encode_layers(layers, SPEC)) == len(pkt) - 4
