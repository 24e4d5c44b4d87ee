"""The scapy layers read the packet grammar (ubpkt.formats.grammar): dispatch, build-time
bindings, ICRC presence, padding and auto fields agree with it, the dissector and the encoder."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw, raw

from scapy_helpers import encoder_layers
from ubpkt.dissect import dissect
from ubpkt.encode import encode_layers
from ubpkt.formats import grammar as G
from ubpkt.formats.derived import BYTE_RUNS
from ubpkt.profile import NS3, SPEC
from ubpkt.scapy import (LAYER_CLASSES, UBAtah, UBBtah, UBBtahC, UBCetphCaqm, UBCfg5, UBCna16,
                         UBCna16Ns3, UBLph, UBLphNs3, UBMaetah, UBMaetahC, UBNpic, UBNpicEntry,
                         UBNth, UBRtph, UBSaetph, UBSaetphBitmap, get_profile, layer_ids,
                         set_profile, tah_sequence)
from ubpkt.scapy import layers as L


@pytest.fixture
def profile():
    """set_profile for one test, SPEC again afterwards."""
    before = get_profile()
    yield set_profile
    set_profile(before)


def _concretes(layer):
    names = [layer] + [c for _, c in G.VARIANTS.get(layer, ())]
    return [LAYER_CLASSES[n] for n in dict.fromkeys(names) if n in LAYER_CLASSES]


def test_every_procedure_has_an_implementation():
    # @udp is scapy's own UDP dispatch, bound to the profile's UB ports
    assert set(G.PROCEDURES) - {"@udp"} <= set(L._PROCEDURES) | set(L._STEPS)
    for steps in list(G.TA_REQUEST_HEADERS.values()) + list(G.TA_RESPONSE_HEADERS.values()):
        for step in steps:
            if isinstance(step, str) and step.startswith("@"):
                assert step in L._STEPS


def test_every_auto_fill_rule_is_carried_out():
    assert L.unfilled_auto_fields() == []
    for (layer, name), rule in G.AUTO_FILL.items():
        cls = LAYER_CLASSES.get(layer)
        if cls is not None and rule in L._FILL:
            assert (name, rule) in cls.ub_auto


def test_byte_runs_have_layers():
    for layer in BYTE_RUNS:
        if layer.startswith("ub.") and layer != G.PADDING.pad_layer:
            cls = LAYER_CLASSES[layer]
            assert [f.name for f in cls.fields_desc] == [BYTE_RUNS[layer].rsplit(".", 1)[1]]


def _own_switch_cases(rule, fields=None):
    """(field values, layer) for Switch cases on the header's own fields that name a layer."""
    fields = fields or {}
    if isinstance(rule, G.Switch) and "." not in rule.key:
        for value, target in rule.cases.items():
            yield from _own_switch_cases(target, {**fields, rule.key: value})
    elif isinstance(rule, G.Switch):
        for target in list(rule.cases.values()) + [rule.default]:
            yield from _own_switch_cases(target, fields)
    elif isinstance(rule, (G.Peek, G.Knob)):
        for target in list(rule.cases.values()) + [rule.default]:
            yield from _own_switch_cases(target, fields)
    elif isinstance(rule, str) and fields and not rule.startswith("@") and rule != G.RESERVED:
        yield fields, rule


def test_bindings_follow_the_grammar():
    """Every own-field Switch case leading to a layer is bound: stacking the two layers fills
    the selector fields so that the grammar leads from one to the other."""
    n = 0
    for node, rule in G.NEXT.items():
        for fields, target in _own_switch_cases(rule):
            for lower in _concretes(node):
                for upper in _concretes(target):
                    assert lower in upper._overload_fields, (lower, upper)
                    p = lower() / upper()
                    prof = lower.ub_profile or SPEC
                    got = G.select(rule, p.getfieldval, lambda k: None,
                                   lambda o: raw(upper())[o] if o < len(raw(upper())) else None,
                                   prof)
                    assert got == target or G.logical(got or "") == target, (lower, upper, got)
                    n += 1
    assert n > 40


def test_bindings_of_ta_requests_and_management_pdus():
    # the first extension header of a request sets the TAOpcode (UB 2.0 §7.4 Table 7-2)
    assert (UBBtah() / UBMaetah()).taopcode == 0x03
    assert (UBBtahC() / UBMaetahC()).taopcode == 0x03
    p = UBBtah() / L.L["ub.mtetah"]()
    assert p.taopcode == 0x00 and p.mt_en == 1
    assert (UBBtah() / L.L["ub.udetah"]()).ud_flag == 1
    assert (UBBtah() / L.L["ub.mgmtetah"]()).taopcode == 0x10
    # the management PDU header sets code, sub code and response bit (MGMT_PDUS)
    for (code, sub, rsp), layer in G.MGMT_PDUS.items():
        m = L.L["ub.mgmtetah"]() / LAYER_CLASSES[layer]()
        assert G.mgmt_pdu(m.code, m.sub_code, m.rsp) == layer


def test_ta_flag_bindings_follow_ta_flags():
    """The BTAH flags come from the grammar: a TA_REQUEST_PREFIX header sets its flag, and a
    header an opcode always carries sets the flag TA_FLAGS says announces it."""
    for kind, flag, layer in G.TA_REQUEST_PREFIX:
        for upper in _concretes(layer):
            assert getattr(UBBtah() / upper(), flag) == 1
    checked, seen = 0, set()
    for op, steps in G.TA_REQUEST_HEADERS.items():
        if not steps or not isinstance(steps[0], str) or steps[0].startswith("@") or \
                steps[0] in seen:
            continue                # the first opcode to lead to a header binds it
        seen.add(steps[0])
        p = UBBtah() / LAYER_CLASSES[steps[0]]()
        assert p.taopcode == op
        for flag, layer in G.TA_FLAGS.items():
            if layer in steps:
                assert getattr(p, flag) == 1, (op, flag)
                checked += 1
    assert checked >= 1             # MT_EN of Send (before the MTETAH)


def test_udp_port_from_the_profile(profile):
    assert (UDP() / UBRtph()).dport == 4792
    profile(SPEC.with_(ub_udp_ports=(4791, 4792)))
    p = Ether() / IP(flags="DF") / UDP(sport=1) / UBRtph() / UBAtah()
    assert p[UDP].dport == 4791
    b = raw(p)
    prof = get_profile()
    fr = dissect(b, 1, profile=prof)
    assert fr.fields["ub.icrc.status"] == "good"
    assert layer_ids(Ether(b)) == fr.layers
    profile(SPEC)
    assert (UDP() / UBRtph()).dport == 4792
    assert layer_ids(Ether(b))[3] == "data"         # 4791 is not UB under SPEC


def test_source_port_53_is_no_dns():
    """The UB destination port decides, before scapy's own UDP bindings on either port."""
    import scapy.layers.dns  # noqa: F401
    p = Ether() / IP(flags="DF") / UDP(sport=53) / UBRtph() / UBAtah()
    b = raw(p)
    assert layer_ids(Ether(b)) == dissect(b, 1).layers


# -- values the stack implies (rules that look back at an earlier header) ------------------------

def _agree(p, linktype=148, prof=SPEC):
    b = raw(p)
    fr = dissect(b, linktype, profile=prof)
    assert not [i for i in fr.issues if i["severity"] in ("error", "warning")], fr.issues
    q = (Ether if linktype == 1 else type(p))(b)
    assert layer_ids(q) == fr.layers and raw(q) == b
    assert encode_layers(encoder_layers(q), profile=prof) == b
    return b, fr


def test_cfg9_implied_by_a_tah_on_the_cna():
    p = UBLph() / UBCna16(scna=1, dcna=2) / UBBtahC(taopcode="Write") \
        / UBMaetahC(len_code=0) / Raw(bytes(64))
    b, fr = _agree(p)
    assert fr.fields["ub.lph.cfg"] == 9 and "ub.icrc" not in fr.layers
    # ns-3-UB forms too
    q = UBLphNs3() / UBCna16Ns3() / UBBtahC(taopcode="Read") / L.L["ub.maetah_c_ns3"]()
    assert dissect(raw(q), 147).fields["ub.lph.cfg"] == 9
    # an explicit CFG is kept
    assert dissect(raw(UBLph(cfg=6) / UBCna16() / UBBtahC()), 148).fields["ub.lph.cfg"] == 6


@pytest.mark.parametrize("form", ["full", "compact"])
def test_tah_form_per_compact_tah(profile, form):
    """grammar.COMPACT_TAH decides the TAH form: CFG 9 always compact, a CTP packet (CNA NTH,
    CTPH) per the profile's cna_tah_form, an RTP packet (CNA NTH, RTPH) always full."""
    prof = SPEC.with_(cna_tah_form=form)
    profile(prof)
    tah, mae = (UBBtahC, UBMaetahC) if form == "compact" else (UBBtah, UBMaetah)
    for p, btah in ((UBLph(cfg=6) / UBCna16(scna=1, dcna=2) / L.L["ub.ctph"]()
                     / tah(taopcode="Write") / mae(), tah),
                    (UBLph(cfg=7) / L.L["ub.cna24"](nlp=2) / UBRtph(psn=3)
                     / UBBtah(taopcode="Write") / UBMaetah(length=64), UBBtah),
                    (UBLph(cfg=9) / UBCna16() / UBBtahC(taopcode="Write")
                     / UBMaetahC(len_code=0), UBBtahC)):
        b = raw(p / Raw(bytes(64)))
        fr = dissect(b, 148, profile=prof)
        q = UBLph(b)
        assert layer_ids(q) == fr.layers and btah in q
        assert L._tah_context(q[btah].underlayer)[0] == (btah is UBBtahC)


def test_cfg4_implied_by_ipv6_on_the_nth():
    p = UBLph() / UBNth(npi=1) / IPv6(src="fd00::1", dst="fd00::2") / UDP() / UBRtph() \
        / UBAtah(taopcode="TAACK")
    b, fr = _agree(p)
    assert fr.fields["ub.lph.cfg"] == 4 and fr.fields["ub.icrc.status"] == "good"
    p = UBLph() / UBNth(npi=1) / IP(src="10.0.0.1", dst="10.0.0.2", flags="DF") / UDP() \
        / UBRtph() / UBAtah(taopcode="TAACK")
    assert _agree(p)[1].fields["ub.lph.cfg"] == 3


def test_tpsack_cc_implied_by_a_saetph_after_the_cetph():
    p = Ether() / IP(flags="DF") / UDP() / UBRtph(psn=3) / UBCetphCaqm(ack_seq=3) \
        / UBSaetph(bitmapsize=0, maxrcvpsn=9) / UBSaetphBitmap(bitmap=b"\x80" + bytes(7))
    b, fr = _agree(p, 1)
    assert fr.fields["ub.rtph.tpopcode"] == 6
    assert (Ether() / IP() / UDP() / UBRtph() / UBCetphCaqm()).getlayer(UBRtph).tpopcode == 3


# -- ICRC presence: grammar.icrc_start ------------------------------------------------------------

CFG5_NPIC = (UBLph() / UBCfg5(protocol="NPIC", dguid=1, sguid=2) / UBNpic(opcode="Set", sum=2)
             / UBNpicEntry(guid=1, npi=5) / UBNpicEntry(guid=2, npi=6))


def test_cfg5_icrc_equals_the_encoder(profile):
    """The known bug: with cfg5_icrc a CFG-5 NPIC frame built by scapy is the encoder's frame
    under that profile and decodes with a good ICRC."""
    prof = SPEC.with_(cfg5_icrc=True)
    profile(prof)
    b, fr = _agree(CFG5_NPIC, prof=prof)
    assert fr.layers[-1] == "ub.icrc" and fr.fields["ub.icrc.status"] == "good"
    # PLENGTH counts the ICRC
    assert dissect(b, 148, profile=prof).fields["ub.lph.plength"] == \
        UBLph(b).plength


@pytest.mark.parametrize("ip", [IP(src="10.0.0.1", dst="10.0.0.2", flags="DF", ttl=9),
                                IPv6(src="fd00::1", dst="fd00::2", hlim=9)], ids=["ipv4", "ipv6"])
def test_cfg5_icrc_is_the_only_one_with_inner_ip(profile, ip):
    """A CFG-5 frame carrying UB over IP/UDP under cfg5_icrc has one ICRC, the CFG-5 header's:
    the inner IP/UDP add their masks and open no second section, and the ICRC is outside the
    inner IP/UDP lengths (UB 2.0 §5.3.7; as the encoder and the dissector)."""
    prof = SPEC.with_(cfg5_icrc=True)
    profile(prof)
    p = UBLph() / UBCfg5(protocol="DHCPv4") / ip / UDP(sport=1) / UBRtph(psn=2) \
        / UBBtah(taopcode="Write") / UBMaetah(length=4) / Raw(bytes(4))
    b, fr = _agree(p, prof=prof)
    assert fr.layers.count("ub.icrc") == 1 and fr.layers[-1] == "ub.icrc"
    assert fr.fields["ub.icrc.status"] == "good"
    q = UBLph(b)
    assert q[UBCfg5].icrc is not None and q[UBRtph].icrc is None
    assert q[UDP].len == len(raw(q[UDP])) and b.endswith(raw(q[UDP]) + b[-4:])  # ICRC after
    # the hop-varying inner IP fields are masked: another TTL/hop limit, the same ICRC
    hop = {"ttl": 3} if isinstance(ip, IP) else {"hlim": 3}
    p2 = UBLph() / UBCfg5(protocol="DHCPv4") / ip.copy() / UDP(sport=1) / UBRtph(psn=2) \
        / UBBtah(taopcode="Write") / UBMaetah(length=4) / Raw(bytes(4))
    p2[type(ip)].setfieldval(*next(iter(hop.items())))
    assert raw(p2)[-4:] == b[-4:] and raw(p2) != b


@pytest.mark.parametrize("prof", [SPEC, SPEC.with_(icrc=False, cfg5_icrc=True),
                                  SPEC.with_(icrc=False)], ids=["spec", "cfg5_only", "none"])
def test_cfg5_icrc_needs_both_knobs(profile, prof):
    # ICRC_COVERAGE: a CFG-5 ICRC needs icrc and cfg5_icrc
    profile(prof)
    b, fr = _agree(CFG5_NPIC, prof=prof)
    assert "ub.icrc" not in fr.layers


def test_icrc_only_where_the_grammar_leads():
    # a CNA16 NTH with no LPH below it is not a CFG 6/7 packet: it owns no ICRC
    assert len(raw(UBCna16())) == 8
    # the same under an LPH
    b = raw(UBLph() / UBCna16() / L.L["ub.ctph"]() / UBBtah() / UBMaetah())
    assert dissect(b).fields["ub.icrc.status"] == "good"
    # UDP on a port that is not UB: no ICRC
    p = Ether() / IP(flags="DF") / UDP(dport=4791) / UBRtph() / UBAtah()
    assert len(raw(p)) == 14 + 20 + 8 + 16 + 8


def test_icrc_masks_from_the_declarations():
    """Changing the fields flagged icrc_mask (IP ToS/TTL, UDP checksum, NTH CCI/LBF) keeps the
    ICRC (UB 2.0 §5.3.7)."""
    base = Ether() / IP(flags="DF", ttl=64, tos=0) / UDP() / UBRtph() / UBAtah()
    hop = Ether() / IP(flags="DF", ttl=3, tos=0xb8) / UDP() / UBRtph() / UBAtah()
    assert raw(base)[-4:] == raw(hop)[-4:]
    a = raw(UBLph() / UBCna16(cci=0, lbf=0) / L.L["ub.ctph"]() / UBBtah() / UBMaetah())
    c = raw(UBLph() / UBCna16(cci=0x1234, lbf=7) / L.L["ub.ctph"]() / UBBtah() / UBMaetah())
    assert a[-4:] == c[-4:] and a[:4] == c[:4] and a[8:10] != c[8:10]
    other = raw(UBLph() / UBCna16(scna=5) / L.L["ub.ctph"]() / UBBtah() / UBMaetah())
    assert other[-4:] != a[-4:]


def test_padding_per_grammar():
    assert G.PADDING.align == 4
    for layer in G.PADDING.headers:
        assert LAYER_CLASSES[layer].ub_has_pad
    p = Ether() / IP(flags="DF") / UDP() / UBRtph() / UBBtah(taopcode="Write") \
        / UBMaetah(length=1) / Raw(b"x")
    q = Ether(raw(p))
    assert q[UBRtph].padding == 3 and q[UBRtph].pad == b"\0\0\0"


def test_tah_sequence_is_the_grammars():
    prof = SPEC.with_(read_taidetah=True)
    for tah, want in ((UBBtah(taopcode="Read", tv_en=1),
                       G.ta_sequence(6, False, {"tv_en": 1}, SPEC)),
                      (UBBtahC(taopcode="Write"), ["ub.maetah_c"]),
                      (UBBtah(taopcode="Write_with_be"), ["ub.maetah", "@beetah"]),
                      (UBAtah(taopcode="Read_response"), [])):
        assert tah_sequence(tah) == want
    set_profile(prof)
    try:
        assert tah_sequence(UBBtah(taopcode="Read"))[0] == "ub.taidetah"
    finally:
        set_profile(SPEC)
    assert tah_sequence(L.L["ub.btah"](taopcode="TAACK")) == ["ub.maetah"]      # ns-3-UB form


# -- dissection never raises ----------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(head=st.sampled_from([b"\x00\x03", b"\x00\x05", b"\x00\x06", b"\x00\x07", b"\x00\x09",
                             b"\x00\x00", b"\x13\x20"]),
       body=st.binary(min_size=2, max_size=120), ns3=st.booleans())
def test_random_bytes_dissect(head, body, ns3):
    b = head + body
    q = (UBLphNs3 if ns3 else UBLph)(b)
    assert raw(q) == b
    layer_ids(q)
    q.summary()


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=120), prof=st.sampled_from([SPEC, NS3]))
def test_random_transport_bytes_dissect(body, prof):
    set_profile(prof)
    try:
        b = raw(Ether() / IP(flags="DF") / UDP(sport=1, dport=4792)) + body
        q = Ether(b)
        layer_ids(q)
        assert raw(q)[:42] == b[:42]
    finally:
        set_profile(SPEC)
