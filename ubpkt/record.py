"""The record vocabulary: what every decoder produces and every view reads, defined once.

A *record* is one dict per frame (or per flit-stream unit)::

    {"frame", "time", "len", "caplen", "linktype", "layers", "fields", "issues"}

``layers`` lists layer ids in wire order (``eth``, ``ub.lph``, ``ub.rtph`` ...); ``fields`` is a
flat map of ``ub.<header>.<field>`` names (the carriers keep Wireshark's names); ``issues`` lists
what is wrong with the frame, each an *issue* dict ``{"severity", "layer", "field", "offset",
"message"}`` with a severity of :data:`ERROR`, :data:`WARNING` or :data:`INFO`.
"""
from __future__ import annotations

__all__ = ["ERROR", "WARNING", "INFO", "SEVERITIES", "LINKTYPE_ETHERNET", "LINKTYPE_NS3",
           "LINKTYPE_UB", "LINKTYPE_FLITS", "LINKTYPE_FLITS_OLD", "FLIT_LINKTYPES",
           "LINKTYPE_RAW", "LINKTYPE_IPV4", "LINKTYPE_IPV6",
           "LINKTYPE_SLL", "LINKTYPE_SLL2", "LINKTYPE_UBL", "LINKTYPE_NAMES", "RECORD_KEYS",
           "ISSUE_KEYS",
           "make_issue", "make_record", "has_errors"]

#: Issue severities, most severe first.
ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)

#: pcap link types ubpkt reads and writes.  147 and 148 are the pcap "user" link types
#: (DLT_USER0/1): 147 carries ns-3-UB trace records, 148 a UB network packet from its LPH.
LINKTYPE_ETHERNET = 1
LINKTYPE_NS3 = 147
LINKTYPE_UB = 148
#: A stream of 20-byte flits (UB 2.0 §4.3.4): no registered pcap link type exists for it, so the
#: reference profile takes 151 (LINKTYPE_USER4, DLT_USER4), a user link type nothing else of
#: ubpkt uses (docs/profile.md, "Link types").  ubpkt wrote 149 (LINKTYPE_USER2) before, but
#: Wireshark hands USER2 to its PKTAP dissector (DLT_PKTAP is DLT_USER2 on macOS), so such files
#: open as malformed PKTAP headers there.  Captures of the old number are still read as flit
#: streams (:data:`FLIT_LINKTYPES`); nothing of ubpkt writes it any more.
LINKTYPE_FLITS = 151
LINKTYPE_FLITS_OLD = 149
#: the link types read as a flit stream: the current number and the one ubpkt wrote before
FLIT_LINKTYPES = frozenset((LINKTYPE_FLITS, LINKTYPE_FLITS_OLD))
#: What UB hosts' own capture tools write for UB over IP: raw IP (101; 228 IPv4, 229 IPv6) and
#: the Linux cooked captures of ``tcpdump -i any`` (113 SLL, 276 SLL2).
LINKTYPE_RAW = 101
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_SLL = 113
LINKTYPE_SLL2 = 276
#: A capture on a Linux UB link netdev (``ublN``, ARPHRD_UB 38; openEuler drivers/net/ub/dev/ubl.c):
#: the software frame, a CFG byte, then CC and NPI before an IP packet, or a CFG-5 frame.  No pcap
#: link type exists for it: the reference profile takes 150 (LINKTYPE_USER3), the first user link
#: type ubpkt did not already use then (docs/profile.md).
LINKTYPE_UBL = 150
LINKTYPE_NAMES = {"eth": LINKTYPE_ETHERNET, "ns3": LINKTYPE_NS3, "ub": LINKTYPE_UB,
                  "flits": LINKTYPE_FLITS, "raw": LINKTYPE_RAW, "ipv4": LINKTYPE_IPV4,
                  "ipv6": LINKTYPE_IPV6, "sll": LINKTYPE_SLL, "sll2": LINKTYPE_SLL2,
                  "ubl": LINKTYPE_UBL}

RECORD_KEYS = ("frame", "time", "len", "caplen", "linktype", "layers", "fields", "issues")
ISSUE_KEYS = ("severity", "layer", "field", "offset", "message")


def make_issue(severity: str, layer: str, field: str | None, offset: int, message: str) -> dict:
    """One issue: ``severity`` is :data:`ERROR`, :data:`WARNING` or :data:`INFO`; ``field`` the
    record key it is about (or None); ``offset`` the byte offset in the frame or stream."""
    return {"severity": severity, "layer": layer, "field": field, "offset": offset,
            "message": message}


def make_record(frame: int, time, length: int, caplen: int, linktype: int | None,
                layers: list, fields: dict, issues: list) -> dict:
    """One record (see the module doc); ``time`` in seconds, or None where there is none."""
    return {"frame": frame, "time": time, "len": length, "caplen": caplen, "linktype": linktype,
            "layers": layers, "fields": fields, "issues": issues}


def has_errors(issues) -> bool:
    """Whether any issue is an error."""
    return any(i["severity"] == ERROR for i in issues)
