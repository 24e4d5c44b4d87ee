"""Ethernet, 802.1Q, IPv4, IPv6 and UDP: the carriers of UBoE and of UB over IP.

Their fields keep Wireshark's names (``eth.src``, ``ip.ttl``, ``udp.dstport``...)."""
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
