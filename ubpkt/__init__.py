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
statistics), ``network``/``link``/``phy`` (the layers' algorithms and engines), ``scapy``.
"""
from .errors import CaptureError, EncodeError, FilterError, ProfileError, UBError
from .formats import HEADERS
from .profile import NS3, SPEC, Profile, load_profile
from .record import (ERROR, INFO, LINKTYPE_ETHERNET, LINKTYPE_FLITS, LINKTYPE_NS3, LINKTYPE_UB,
                     WARNING)
from .dissect import decode, dissect
from .encode import encode_layers, encode_record
from .capture import PcapWriter, open_capture

__version__ = "0.1.0"

__all__ = ["decode", "dissect", "encode_layers", "encode_record", "HEADERS", "Profile", "SPEC",
           "NS3", "load_profile", "open_capture", "PcapWriter", "UBError", "EncodeError",
           "CaptureError", "FilterError", "ProfileError", "ERROR", "WARNING", "INFO",
           "LINKTYPE_ETHERNET", "LINKTYPE_NS3", "LINKTYPE_UB", "LINKTYPE_FLITS", "__version__"]
