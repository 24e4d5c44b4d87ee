"""Network headers: NTH in its CNA16, CNA24 and IP forms, CCI views, CFG-5 frames (UB 2.0 ch. 5)."""
from .core import Field as F, Header, R, register
from . import enums as E

# UB 2.0 §5.2.1: 16-bit CNA NTH (CFG 6 and 9).
CNA16 = register(Header("cna16", "cna16", "NTH, 16-bit CNA", "UB 2.0 §5.2.1", (
    F("scna", 16), F("dcna", 16), F("cci", 16, icrc_mask=True), F("lbf", 8, icrc_mask=True), F("sl", 4), F("mgmt", 1),
    F("nlp", 3, enum=E.CNA_NLP))))
# ns-3-UB stores SCNA, DCNA and the CCI word little-endian (ns3-ub-dialect §4.3).
CNA16_NS3 = register(Header("cna16_ns3", "cna16", "NTH, 16-bit CNA (ns-3-UB)", "UB 2.0 §5.2.1", (
    F("scna", 16, le=True), F("dcna", 16, le=True), F("cci", 16, le=True, icrc_mask=True),
    F("lbf", 8, icrc_mask=True),
    F("sl", 4), F("mgmt", 1), F("nlp", 3, enum=E.CNA_NLP))))
# UB 2.0 §5.2.1: 24-bit CNA NTH (CFG 7); byte 9 bit 3 is reserved (reference profile G14).
CNA24 = register(Header("cna24", "cna24", "NTH, 24-bit CNA", "UB 2.0 §5.2.2", (
    F("scna", 24), F("dcna", 24), F("cci", 16, icrc_mask=True), F("lbf", 8, icrc_mask=True), F("sl", 4), R(1),
    F("nlp", 3, enum=E.CNA_NLP))))
CNA24_NS3 = register(Header("cna24_ns3", "cna24", "NTH, 24-bit CNA (ns-3-UB)", "UB 2.0 §5.2.2", (
    F("scna", 24), F("dcna", 24), F("cci", 16, le=True, icrc_mask=True),
    F("lbf", 8, icrc_mask=True), F("sl", 4), R(1),
    F("nlp", 3, enum=E.CNA_NLP))))
# UB 2.0 §5.2.2: the IP form (CFG 3/4): CCI and NPI before a standard IP header.
NTH_IP = register(Header("nth", "nth", "NTH, IP form", "UB 2.0 §5.2.3", (
    F("cci", 16), R(7), F("npi", 25))))

# The Linux UB link netdev (openEuler drivers/net/ub/dev/ubl.{c,h}, ARPHRD_UB): what a capture on
# a UB host's `ublN` interface shows in place of the LPH (the hardware adds the rest of the LPH).
# One byte with the LPH CFG ("sw_ctype": 3 IPv4, 4 IPv6, 5 UB network control; newer kernels use
# its low nibble, the high nibble is reserved here), then for IP the kernel's ublhdr (CC, NPI,
# both big-endian; the kernel sends NPI 1, the default partition) and the IP packet; for CFG 5
# the GUID-addressed frame of App F.2.1.  Link type: ``record.LINKTYPE_UBL`` (a profile choice).
UBL = register(Header("ubl", "ubl", "UB link netdev header",
                      "Linux ubl netdev; UB 2.0 §4.3.2.2", (
    R(4), F("cfg", 4, enum=E.UBL_CFG))))
UBL_IP = register(Header("ubl_ip", "ubl", "UB link netdev header, IP",
                         "Linux ubl netdev; UB 2.0 §5.2.3", (
    F("cc", 16), F("npi", 32))))

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
# The entry's GUID is sent least-significant DW first, as every GUID/EID inside a management
# PDU (reference profile G15): App F.2.5 gives no other order for it.
NPIC_ENTRY = register(Header("npic_entry", "npic", "NPIC entry", "UB 2.0 App F.2.5", (
    F("guid", 128, fmt="guid", dwrev=True), R(7), F("npi", 25))))

# Payloads of CFG-5 protocols that follow standard formats (UB 2.0 App F.2): LLDP TLVs
# (IEEE 802.1AB), LACP PDUs carried by ULAP (IEEE 802.1AX) and the BOOTP/DHCP header with
# htype 38 and the 16-byte GUID as chaddr (App F.2.2).
LLDP_TLV = register(Header("lldp_tlv", "lldp", "LLDP TLV", "IEEE 802.1AB; UB 2.0 App F", (
    F("tlv_type", 7, enum={0: "End", 1: "Chassis_ID", 2: "Port_ID", 3: "TTL",
                           4: "Port_Description", 5: "System_Name", 6: "System_Description",
                           7: "System_Capabilities", 8: "Management_Address",
                           127: "Organization_Specific"}),
    F("tlv_len", 9))))
LACP = register(Header("lacp", "lacp", "LACP PDU (ULAP)", "IEEE 802.1AX; UB 2.0 App F.2.4", (
    F("subtype", 8), F("version", 8))))
LACP_TLV = register(Header("lacp_tlv", "lacp", "LACP TLV", "IEEE 802.1AX", (
    F("tlv_type", 8, enum={0: "Terminator", 1: "Actor", 2: "Partner", 3: "Collector"}),
    F("tlv_len", 8))))
# ub-lldpd sends its LLDPDU (CFG-5 protocol 0x0109) behind an Ethernet header: the LLDP
# nearest-bridge group address, the port's MAC, EtherType 0x88CC (IEEE 802.1AB); the dissector
# tells that form from bare TLVs by the destination address (profile ``cfg5_lldp_eth``).
LLDP_ETH = register(Header("lldp_eth", "lldp_eth", "LLDP Ethernet header (ub-lldpd)",
                           "IEEE 802.1AB; UB 2.0 App F.2", (
    F("dst", 48, fmt="mac"), F("src", 48, fmt="mac"), F("etype", 16, enum={0x88CC: "LLDP"}))))
BOOTP = register(Header("bootp", "bootp", "BOOTP/DHCP", "RFC 2131; UB 2.0 App F.2.2", (
    F("op", 8, enum={1: "Request", 2: "Reply"}), F("htype", 8, enum={38: "UB"}), F("hlen", 8),
    F("hops", 8), F("xid", 32), F("secs", 16), F("flags", 16), F("ciaddr", 32, fmt="ipv4"),
    F("yiaddr", 32, fmt="ipv4"), F("siaddr", 32, fmt="ipv4"), F("giaddr", 32, fmt="ipv4"),
    F("chaddr", 128, fmt="guid"), F("sname", 512, fmt="hex"), F("file", 1024, fmt="hex"),
    F("cookie", 32)), ns=""))
