"""Ethernet, 802.1Q, IPv4, IPv6 and UDP: the carriers of UBoE and of UB over IP; the Linux
cooked-capture headers (SLL, SLL2) that ``tcpdump -i any`` writes in place of Ethernet.

Their fields keep Wireshark's names (``eth.src``, ``ip.ttl``, ``udp.dstport``, ``sll.etype``...)."""
from .core import Field as F, Header, register
from . import enums as E

ETH = register(Header("eth", "eth", "Ethernet II", "IEEE 802.3", (
    F("dst", 48, fmt="mac"), F("src", 48, fmt="mac"), F("type", 16, enum=E.ETHERTYPE, auto=True)), ns=""))
VLAN = register(Header("vlan", "vlan", "802.1Q tag", "IEEE 802.1Q", (
    F("priority", 3), F("dei", 1), F("id", 12, doc="may carry the NPI (UB 2.0 App E)"),
    F("etype", 16, enum=E.ETHERTYPE, auto=True)), ns=""))
IPV4 = register(Header("ip", "ip", "IPv4", "RFC 791; UB 2.0 §5.2.3", (
    F("version", 4, fixed=4), F("hdr_len", 4, auto=True), F("dscp", 6, icrc_mask=True),
    F("ecn", 2, icrc_mask=True), F("len", 16, auto=True), F("id", 16), F("flags", 3, auto=True),
    F("frag_offset", 13), F("ttl", 8, icrc_mask=True), F("proto", 8, enum=E.IP_PROTO, auto=True),
    F("checksum", 16, auto=True, icrc_mask=True), F("src", 32, fmt="ipv4"), F("dst", 32, fmt="ipv4")), ns=""))
IPV6 = register(Header("ipv6", "ipv6", "IPv6", "RFC 8200; UB 2.0 §5.2.3", (
    F("version", 4, fixed=6), F("tclass", 8, icrc_mask=True), F("flow", 20, icrc_mask=True),
    F("plen", 16, auto=True), F("nxt", 8, enum=E.IP_PROTO, auto=True), F("hlim", 8, icrc_mask=True), F("src", 128, fmt="ipv6"),
    F("dst", 128, fmt="ipv6")), ns=""))
UDP = register(Header("udp", "udp", "UDP", "RFC 768; UB 2.0 §5.2.3", (
    F("srcport", 16), F("dstport", 16, auto=True), F("length", 16, auto=True),
    F("checksum", 16, icrc_mask=True)), ns=""))

# Linux cooked capture v1 (pcap LINKTYPE_LINUX_SLL 113, 16 bytes): packet type, ARPHRD type,
# link-layer address length and the first 8 bytes of the address, then the EtherType.
SLL = register(Header("sll", "sll", "Linux cooked capture v1", "pcap LINKTYPE_LINUX_SLL (113)", (
    F("pkttype", 16, enum=E.SLL_PKTTYPE), F("hatype", 16), F("halen", 16),
    F("src", 64, fmt="hex", doc="link-layer address, zero padded to 8 bytes"),
    F("etype", 16, enum=E.ETHERTYPE)), ns=""))
# Linux cooked capture v2 (LINKTYPE_LINUX_SLL2 276, 20 bytes): the EtherType first, the
# interface index, then the v1 fields with one-byte packet type and address length.
SLL2 = register(Header("sll2", "sll", "Linux cooked capture v2", "pcap LINKTYPE_LINUX_SLL2 (276)", (
    F("etype", 16, enum=E.ETHERTYPE), F("unused", 16), F("ifindex", 32), F("hatype", 16),
    F("pkttype", 8, enum=E.SLL_PKTTYPE), F("halen", 8),
    F("src", 64, fmt="hex", doc="link-layer address, zero padded to 8 bytes")), ns=""))
