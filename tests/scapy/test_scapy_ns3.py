"""The ns-3-UB sample captures (linktype 147) dissect as ubpkt.dissect does."""
from __future__ import annotations

from scapy.packet import raw
from scapy.utils import rdpcap

from scapy_helpers import record_of
from ubpkt.dissect import dissect
from ubpkt.scapy import UBCna16Ns3, UBLchCrdAckNs3, UBLphNs3, layer_ids


def test_ns3_captures(ns3_dir):
    files = sorted(ns3_dir.glob("*.pcap"))
    assert files
    seen = set()
    for path in files:
        for p in rdpcap(str(path)):
            b = raw(p)
            fr = dissect(b, 147)
            assert isinstance(p, (UBLphNs3, UBLchCrdAckNs3))
            assert layer_ids(p) == fr.layers, (path.name, fr.layers)
            assert raw(type(p)(b)) == b
            rec = record_of(p)
            assert rec == {k: fr.fields[k] for k in rec}
            seen.update(fr.layers)
    assert {"ub.cna16_ns3", "ub.atah_ns3", "ub.cetph_caqm_ns3", "ub.maetah_c_ns3",
            "ub.crd_ack_ns3", "ub.rtph", "ub.btah"} <= seen


def test_ns3_crafted_cfg9():
    p = UBLphNs3(cfg=9, vl=7) / UBCna16Ns3(scna=0x10, dcna=0x20)
    from ubpkt.scapy import UBBtahC, UBMaetahCNs3
    p = p / UBBtahC(taopcode="Write") / UBMaetahCNs3(len_code=3)
    b = raw(p)
    fr = dissect(b, 147)
    assert fr.layers == ["ub.lph_ns3", "ub.cna16_ns3", "ub.btah_c", "ub.maetah_c_ns3"]
    assert fr.fields["ub.cna16.scna"] == 0x10 and b[4:6] == b"\x10\x00"
    assert "ub.icrc" not in fr.layers
