"""Round trips over random field values: raw(cls(raw(p))) == raw(p), values kept."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw, raw

from scapy_helpers import encoder_layers, header_fields, record_of
from ubpkt.dissect import dissect
from ubpkt.encode import encode_layers
from ubpkt.formats import HEADERS
from ubpkt.scapy import LAYER_CLASSES, UBBtah, UBMaetah, UBRtph, layer_ids

UB_HEADERS = [h for h in HEADERS.values() if h.ns == "ub"]


def _values(h):
    """A strategy of {field: record value} covering every field of header ``h``."""
    parts = {}
    for f in h.fields:
        s = st.integers(0, (1 << f.bits) - 1)
        if f.shift:
            s = s.map(lambda v, k=f.shift: v << k)
        parts[f.name] = s
    return st.fixed_dictionaries(parts)


@pytest.mark.parametrize("h", UB_HEADERS, ids=lambda h: h.layer)
def test_header_round_trip(h):
    cls = LAYER_CLASSES[h.layer]

    @settings(max_examples=15, deadline=None)
    @given(_values(h))
    def check(vals):
        p = cls(**vals)
        b = raw(p)
        assert b[:h.size] == h.encode(vals)
        q = cls(b)
        assert raw(q) == b
        # the same header class decodes it back to the same values
        if type(q) is cls:
            assert header_fields(q) == header_fields(p)

    check()


@settings(max_examples=40, deadline=None)
@given(psn=st.integers(0, 2**24 - 1), tpn=st.integers(0, 2**24 - 1),
       tassn=st.integers(0, 2**16 - 1), address=st.integers(0, 2**64 - 1),
       tokenid=st.integers(0, 2**20 - 1), last=st.integers(0, 1),
       op=st.sampled_from(["Write", "Read", "Atomic_swap", "Writeback"]),
       sport=st.integers(0, 65535), ttl=st.integers(0, 255),
       payload=st.binary(max_size=40), bad_icrc=st.none() | st.integers(0, 2**32 - 1))
def test_uboe_stack_round_trip(psn, tpn, tassn, address, tokenid, last, op, sport, ttl,
                               payload, bad_icrc):
    p = (Ether() / IP(flags="DF", ttl=ttl, src="1.2.3.4", dst="5.6.7.8") / UDP(sport=sport)
         / UBRtph(last=last, psn=psn, srctpn=tpn, dsttpn=tpn ^ 1, icrc=bad_icrc)
         / UBBtah(taopcode=op, ini_tassn=tassn)
         / UBMaetah(address=address, tokenid=tokenid, length=len(payload)))
    if payload:
        p = p / Raw(payload)
    b = raw(p)
    q = Ether(b)
    assert raw(q) == b
    fr = dissect(b, 1)
    assert layer_ids(q) == fr.layers
    rec = record_of(q)
    assert rec == {k: fr.fields[k] for k in rec}
    assert fr.fields["ub.icrc.status"] == ("good" if bad_icrc is None or
                                           bad_icrc == fr.fields.get("ub.icrc.computed", -1)
                                           else "bad")
    assert (len(b) - 14 - 20 - 8 - 4) % 4 == 0
    if bad_icrc is None:
        assert encode_layers(encoder_layers(q)) == b
    else:
        assert q[UBRtph].icrc == bad_icrc


def _sources():
    import glob
    from pathlib import Path

    from scapy.utils import rdpcap

    from ubpkt.scapy import UBLph, UBLphNs3
    root = Path(__file__).resolve().parents[2]
    out = []
    for path, linktype, cls in ((root / "captures" / "uboe_transactions.pcap", 1, Ether),
                                (root / "captures" / "ub_native.pcap", 148, UBLph)):
        if path.exists():
            out += [(raw(p), linktype, cls) for p in rdpcap(str(path)) if len(p) < 700]
    for path in sorted(glob.glob("/work/shared/interop/ns3-ub/*.pcap")):
        out += [(raw(p), 147, UBLphNs3) for p in rdpcap(path) if len(p) < 700]
    return out


_SOURCES = []
_KNOWN = {"Ether", "Dot1Q", "IP", "IPv6", "UDP", "Raw", "Padding"}


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_captures(data):
    """Damaged packets: dissection never raises past the first layer, re-building gives the
    same bytes, and when ubpkt finds nothing wrong the layer sequence is the same."""
    if not _SOURCES:
        _SOURCES.extend(_sources())
        if not _SOURCES:
            pytest.skip("no sample captures")
    b, linktype, cls = data.draw(st.sampled_from(_SOURCES))
    b = bytearray(b)
    for _ in range(data.draw(st.integers(1, 3))):
        b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
    b = bytes(b)
    try:
        q = cls(b)
    except Exception:           # a truncated first header: scapy's own behaviour (rdpcap -> Raw)
        return
    layers = [type(x).__name__ for x in _layers(q)]
    if not all(n in _KNOWN or n.startswith("UB") for n in layers):
        return                  # another protocol's scapy layer (ICMP, IGMP...): not ours
    assert raw(q) == b
    fr = dissect(b, linktype)
    if not any(i["severity"] in ("error", "warning") for i in fr.issues):
        assert layer_ids(q) == fr.layers


def _layers(p):
    while p:
        yield p
        p = p.payload
