"""Every declared UB header has a generated scapy class with the declaration's fields."""
from __future__ import annotations

import pytest
from scapy.fields import BitEnumField
from scapy.packet import Packet, raw

import ubpkt.scapy as ubscapy
from ubpkt.formats import HEADERS
from ubpkt.scapy import LAYER_CLASSES, class_name

UB_HEADERS = [h for h in HEADERS.values() if h.ns == "ub"]


def _bits(fd) -> int:
    return getattr(fd, "ub_bits")


@pytest.mark.parametrize("h", UB_HEADERS, ids=lambda h: h.layer)
def test_fields_equal_declaration(h):
    cls = LAYER_CLASSES[h.layer]
    assert issubclass(cls, Packet)
    assert cls.__name__ == class_name(h.layer)
    assert getattr(ubscapy, cls.__name__) is cls
    assert cls.ub_header is h
    header = [fd for fd in cls.fields_desc if not getattr(fd, "ub_trailer", False)]
    trailers = [fd.name for fd in cls.fields_desc if getattr(fd, "ub_trailer", False)]
    assert [fd.name for fd in header] == [f.name for f in h.fields]
    assert [_bits(fd) for fd in header] == [f.bits for f in h.fields]
    assert set(trailers) <= {"pad", "icrc"}
    for fd, f in zip(header, h.fields):
        if f.enum and f.fmt == "int" and not f.le and not f.shift:
            assert isinstance(fd, BitEnumField), f.name
        assert (fd.default is None) == f.auto, f.name
    # a bare header builds to exactly its declared size (no payload, no trailer)
    kw = {"padding": 0} if "pad" in trailers else {}
    assert len(raw(cls(**kw))) == h.size


def test_class_names():
    for name in ("UBLph", "UBCna16", "UBNth", "UBRtph", "UBUtph", "UBCtph", "UBCetphCaqm",
                 "UBBtah", "UBBtahC", "UBAtah", "UBMaetah", "UBMaetahC", "UBLphNs3",
                 "UBCna16Ns3", "UBAtahNs3", "UBMaetahCNs3", "UBMgmtetah", "UBCfgReq",
                 "UBEntityReg", "UBScanPdu"):
        assert hasattr(ubscapy, name), name
    assert class_name("ub.cetph_caqm_ns3") == "UBCetphCaqmNs3"


def test_enums_show_names():
    p = ubscapy.UBBtah(taopcode="Write", odr="SO")
    assert p.taopcode == 3 and p.odr == 2
    assert p.sprintf("%UBBtah.taopcode%") == "Write"
    assert "Write" in repr(p)
    # names are accepted in any case, as ubpkt's encoder accepts them
    assert ubscapy.UBRtph(tpopcode="tpack").tpopcode == 2


def test_text_fields():
    eid = "0001:0002:0003:0004:0005:0006:0007:0008"
    p = ubscapy.UBEidh256(seid=eid, deid=1)
    assert p.seid == 0x00010002000300040005000600070008
    assert eid in repr(p)
    q = ubscapy.UBEidh256(raw(p))
    assert q.seid == p.seid and q.deid == 1
    # a shifted address holds the record value (the low bits are not sent)
    m = ubscapy.UBMaetahC(address=0x12340)
    assert ubscapy.UBMaetahC(raw(m)).address == 0x12340
    # GUIDs of management PDUs go least-significant word first on the wire
    g = ubscapy.UBBusDestroy(guid=1)
    assert raw(g) == b"\0\0\0\1" + b"\0" * 12
