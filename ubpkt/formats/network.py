"""Network headers: NTH in its CNA16, CNA24 and IP forms, CCI views, CFG-5 frames (UB 2.0 ch. 5)."""
from .core import Field as F, Header, R, register
from . import enums as E

# UB 2.0 §5.2.1: 16-bit CNA NTH (CFG 6 and 9).
CNA16 = register(Header("cna16", "cna16", "NTH, 16-bit CNA", "UB 2.0 §5.2.1", (
    F("scna", 16), F("dcna", 16), F("cci", 16), F("lbf", 8), F("sl", 4), F("mgmt", 1),
    F("nlp", 3, enum=E.CNA_NLP))))
# ns-3-UB stores SCNA, DCNA and the CCI word little-endian (ns3-ub-dialect §4.3).
CNA16_NS3 = register(Header("cna16_ns3", "cna16", "NTH, 16-bit CNA (ns-3-UB)", "UB 2.0 §5.2.1", (
    F("scna", 16, le=True), F("dcna", 16, le=True), F("cci", 16, le=True), F("lbf", 8),
    F("sl", 4), F("mgmt", 1), F("nlp", 3, enum=E.CNA_NLP))))
# UB 2.0 §5.2.1: 24-bit CNA NTH (CFG 7); byte 9 bit 3 is reserved (reference profile G14).
CNA24 = register(Header("cna24", "cna24", "NTH, 24-bit CNA", "UB 2.0 §5.2.1", (
    F("scna", 24), F("dcna", 24), F("cci", 16), F("lbf", 8), F("sl", 4), R(1),
    F("nlp", 3, enum=E.CNA_NLP))))
CNA24_NS3 = register(Header("cna24_ns3", "cna24", "NTH, 24-bit CNA (ns-3-UB)", "UB 2.0 §5.2.1", (
    F("scna", 24), F("dcna", 24), F("cci", 16, le=True), F("lbf", 8), F("sl", 4), R(1),
    F("nlp", 3, enum=E.CNA_NLP))))
# UB 2.0 §5.2.2: the IP form (CFG 3/4): CCI and NPI before a standard IP header.
NTH_IP = register(Header("nth", "nth", "NTH, IP form", "UB 2.0 §5.2.2", (
    F("cci", 16), R(7), F("npi", 25))))

# UB 2.0 §5.3.5.1: the CCI word seen in each of its modes (a view, derived fields ub.cci.*).
CCI_CAQM = register(Header("cci_caqm", "cci", "CCI (CAQM)", "UB 2.0 §5.3.5.1", (
    F("mode", 3, enum=E.CCI_MODE), F("loc", 1), R(1), F("enable", 1), F("c", 1), F("i", 1),
    F("hint", 8))))
CCI_FECN = register(Header("cci_fecn", "cci", "CCI (FECN)", "UB 2.0 §5.3.5.1", (
    F("mode", 3, enum=E.CCI_MODE), F("loc", 1), R(10), F("fecn", 2, enum=E.FECN))))
CCI_FECN_RTT = register(Header("cci_fecn_rtt", "cci", "CCI (FECN_RTT)", "UB 2.0 §5.3.5.1", (
    F("mode", 3, enum=E.CCI_MODE), F("loc", 1), F("timestamp", 10), F("fecn", 2, enum=E.FECN))))
CCI_OTHER = register(Header("cci_rsvd", "cci", "CCI (reserved mode)", "UB 2.0 §5.3.5.1", (
    F("mode", 3, enum=E.CCI_MODE), F("value", 13))))

# UB 2.0 App F.2.1: GUID-addressed network-control frame (CFG 5).
CFG5 = register(Header("cfg5", "cfg5", "GUID-addressed management frame", "UB 2.0 App F.2.1", (
    F("protocol", 16, enum=E.CFG5_PROTOCOL), F("dguid", 128, fmt="guid"),
    F("sguid", 128, fmt="guid"))))
# UB 2.0 App F.2.3: IP notify.
IP_NOTIFY4 = register(Header("ip_notify", "ip_notify", "IP notify (IPv4)", "UB 2.0 App F.2.3", (
    F("version", 4, enum=E.IP_NOTIFY_VERSION), R(4), F("prefix_len", 8),
    F("ipv4", 32, fmt="ipv4"))))
IP_NOTIFY6 = register(Header("ip_notify6", "ip_notify", "IP notify (IPv6)", "UB 2.0 App F.2.3", (
    F("version", 4, enum=E.IP_NOTIFY_VERSION), R(4), F("prefix_len", 8),
    F("ipv6", 128, fmt="ipv6"))))
# UB 2.0 App F.2.5: NPIC header and its {GUID, NPI} entries.
NPIC = register(Header("npic", "npic", "NPI configuration", "UB 2.0 App F.2.5", (
    F("opcode", 8, enum=E.NPIC_OPCODE), R(8), F("sum", 16))))
NPIC_ENTRY = register(Header("npic_entry", "npic", "NPIC entry", "UB 2.0 App F.2.5", (
    F("guid", 128, fmt="guid"), R(7), F("npi", 25))))
