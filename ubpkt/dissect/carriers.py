"""Ethernet, 802.1Q, IPv4/IPv6 and UDP in front of UB (UBoE, UB over IP; UB 2.0 §5.2.3).

The Ethernet and VLAN dispatch is the grammar's; the IP procedures handle what a table cannot:
options, the total length (bytes after it are an Ethernet trailer), fragments, and the UDP
decision that opens a UB section with its ICRC (UB 2.0 §5.3.7)."""
from __future__ import annotations

from ..formats.core import Header
from ..formats.grammar import NEXT, TPH, icrc_start
from .frame import ERROR, H, INFO, WARNING, Frame, finish_section, open_icrc
from .walk import PROCS, reads, run



#: link headers in front of IP whose frames may carry a trailer after the IP packet (Ethernet
#: padding; cooked captures keep it too)
_LINK_HEADERS = frozenset({"eth", "sll", "sll2"})


def _ip_proc(version: int):
    def proc(fr: Frame, _h, _v) -> bool:
        return _ip(fr, version, uboe=bool(fr.layers) and fr.layers[0] in _LINK_HEADERS)
    return proc


def _ip(fr: Frame, version: int, uboe: bool) -> bool:
    ip_start = fr.pos
    if version == 4:
        h = H["ip"]
        v = fr.take(h)
        if v is None:
            return False
        ix = h.index
        ihl, total = v[ix["hdr_len"]], v[ix["len"]]
        if v[ix["version"]] != 4:
            fr.issue(ERROR, "ip", "ip.version", ip_start,
                     f"IP version {v[ix['version']]} in an IPv4 header")
            return False
        if ihl < 5:
            fr.issue(ERROR, "ip", "ip.hdr_len", ip_start, f"IHL {ihl} < 5")
            return False
        if ihl > 5:
            if fr.take_bytes("ip.options", (ihl - 5) * 4) is None:
                return False
        ip_end = ip_start + total
        nxt = NEXT["ip"]
        if v[ix["frag_offset"]] or v[ix["flags"]] & 1:
            fr.issue(INFO, "ip", "ip.frag_offset", ip_start, "IP fragment: not reassembled")
            nxt = None
    else:
        h = H["ipv6"]
        v = fr.take(h)
        if v is None:
            return False
        ip_end = ip_start + 40 + v[h.index["plen"]]
        nxt = NEXT["ipv6"]
    fr.ip_at = (ip_start, version)
    if fr.icrc_start is not None:
        # an IP packet inside an open ICRC section (a CFG-5 frame): its hop-varying fields are
        # masked too (UB 2.0 §5.3.7), as for every covered header
        fr.icrc_masks = fr.icrc_masks + h.icrc_masks(ip_start)
    if ip_end > fr.end:
        fr.issue(ERROR, fr.layers[-1], f"{fr.layers[-1]}.len", ip_start,
                 f"IP length points {ip_end - fr.end} bytes past the frame")
        ip_end = fr.end
    elif ip_end < fr.end:
        if uboe:
            trailer_end = fr.end
            fr.end = ip_end
            run(fr, nxt, h, v)
            fr.end = trailer_end
            if fr.pos < ip_end:
                return True
            fr.take_bytes("eth.trailer", trailer_end - fr.pos)
            return True
        fr.issue(WARNING, fr.layers[-1], None, ip_start, "bytes after the IP packet")
    return run(fr, nxt, h, v)


def _udp(fr: Frame, h: Header, u) -> bool:
    """After the UDP header: UB (UB 2.0 §5.2.3), BOOTP on a CFG-5 frame, or payload."""
    p = fr.profile
    ix = h.index
    udp_start = fr.pos - h.size
    ip_start, version = fr.ip_at or (None, 4)
    dport = u[ix["dstport"]]
    inner = fr.icrc_start is not None
    if inner:
        # inside an open ICRC section (a CFG-5 frame carrying IP): the first network header
        # decided the coverage; the UDP header only adds its masks (UB 2.0 §5.3.7)
        fr.icrc_masks = fr.icrc_masks + h.icrc_masks(udp_start)
    if u[ix["length"]] != fr.end - udp_start:
        fr.issue(WARNING if p.check_udp_zero_checksum else INFO, "udp", "udp.length", udp_start,
                 f"UDP length {u[ix['length']]}, {fr.end - udp_start} bytes present")
    if not (dport in p.ub_udp_ports or p.any_udp_port_is_ub):
        if dport in (67, 68) and fr.cfg == 5 and fr.end - fr.pos >= H["bootp"].size:
            # UB 2.0 App F.2.2: DHCP over CFG 5
            fr.take(H["bootp"])
            if fr.end > fr.pos:
                fr.take_bytes("bootp.options", fr.end - fr.pos)
        fr.rest_as_data()
        return True
    if u[ix["checksum"]] != 0 and p.check_udp_zero_checksum:
        fr.issue(WARNING, "udp", "udp.checksum", udp_start, "UB over UDP wants checksum 0")
    if p.check_ipv4_df and version == 4:
        if fr.fields.get("ip.flags") != 2:
            fr.issue(WARNING, "ip", "ip.flags", ip_start, "UB over IPv4 wants DF set (flags 0b010)")
    ip_layer = "ip" if version == 4 else "ipv6"
    if inner:
        return run(fr, TPH, h, u)
    if ip_start is not None and icrc_start(ip_layer, fr.fields.get, p, ub_udp=True):
        masks = H[ip_layer].icrc_masks(ip_start) + h.icrc_masks(udp_start)
        if not open_icrc(fr, ip_start, masks):
            return True
    run(fr, TPH, h, u)
    finish_section(fr)
    return True


reads("ip", "version", "hdr_len", "len", "flags", "frag_offset", "proto")
reads("ipv6", "version", "plen", "nxt")
reads("udp", "dstport", "length", "checksum")
PROCS.update({"@ipv4": _ip_proc(4), "@ipv6": _ip_proc(6), "@udp": _udp})
