"""ubpkt: encode and decode every UnifiedBus (UB Base Specification 2.0) format byte-exactly.

The public API::

    import ubpkt
    pkt = ubpkt.encode_layers([("ub.lph", {"cfg": 9}), ("ub.cna16", {...}), ...])
    rec = ubpkt.decode(pkt)                      # a record (ubpkt.record), never raises
    assert ubpkt.encode_record(rec) == pkt
    with ubpkt.open_capture("capture.pcap") as cap: ...

Packages by role: ``formats`` (the declarations and the packet grammar), ``dissect`` (decoding:
the grammar walk, the template fast path, flit streams), ``encode`` (encoding), ``capture``
(pcap/pcapng I/O, streaming and parallel decode), ``views`` (output formats, filters,
statistics), ``network``/``link``/``phy`` (the layers' algorithms and engines), ``stack`` and
``sim`` (the reference stack and its simulator), ``scapy``.  The names below load their modules
on first use, so ``import ubpkt.link`` (say) does not load the decoder.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "decode": "dissect", "dissect": "dissect",
    "encode_layers": "encode", "encode_record": "encode",
    "HEADERS": "formats",
    "Profile": "profile", "Tuning": "profile", "SPEC": "profile", "NS3": "profile",
    "load_profile": "profile",
    "open_capture": "capture", "PcapWriter": "capture",
    "UBError": "errors", "EncodeError": "errors", "CaptureError": "errors",
    "FilterError": "errors", "ProfileError": "errors",
    "ERROR": "record", "WARNING": "record", "INFO": "record",
    "LINKTYPE_ETHERNET": "record", "LINKTYPE_NS3": "record", "LINKTYPE_UB": "record",
    "LINKTYPE_FLITS": "record", "LINKTYPE_FLITS_OLD": "record", "FLIT_LINKTYPES": "record",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'ubpkt' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
