"""Ethernet, 802.1Q, IPv4/IPv6 and UDP in front of UB (UBoE, UB over IP; UB 2.0 §5.2.3)."""
from __future__ import annotations

from ..network.icrc import masks_for_ip
from .frame import ERROR, H, INFO, WARNING, Frame, _finish_icrc, _reserve_icrc
from .transport import _rtph_or_utph


def _ethernet(fr: Frame) -> None:
    v = fr.take(H["eth"])
    if v is None:
        return
    etype = v[2]
    while etype in (0x8100, 0x88A8):
        t = fr.take(H["vlan"])
        if t is None:
            return
        etype = t[3]
    if etype == 0x0800:
        _ip(fr, 4, uboe=True)
    elif etype == 0x86DD:
        _ip(fr, 6, uboe=True)
    else:
        fr.rest_as_data()


def _ip(fr: Frame, version: int, uboe: bool) -> None:
    ip_start = fr.pos
    if version == 4:
        v = fr.take(H["ip"])
        if v is None:
            return
        ihl, total, flags, frag, proto = v[1], v[4], v[6], v[7], v[9]
        if v[0] != 4:
            fr.issue(ERROR, "ip", "ip.version", ip_start, f"IP version {v[0]} in an IPv4 header")
            return
        if ihl < 5:
            fr.issue(ERROR, "ip", "ip.hdr_len", ip_start, f"IHL {ihl} < 5")
            return
        if ihl > 5:
            if fr.take_bytes("ip.options", (ihl - 5) * 4) is None:
                return
        ip_end = ip_start + total
        if frag or flags & 1:
            fr.issue(INFO, "ip", "ip.frag_offset", ip_start, "IP fragment: not reassembled")
            proto = -1
    else:
        v = fr.take(H["ipv6"])
        if v is None:
            return
        proto = v[4]
        ip_end = ip_start + 40 + v[3]
    if ip_end > fr.end:
        fr.issue(ERROR, fr.layers[-1], f"{fr.layers[-1]}.len", ip_start,
                 f"IP length points {ip_end - fr.end} bytes past the frame")
        ip_end = fr.end
    elif ip_end < fr.end:
        if uboe:
            trailer_end = fr.end
            fr.end = ip_end
            _after_ip(fr, proto, ip_start, version)
            fr.end = trailer_end
            if fr.pos < ip_end:
                return
            fr.take_bytes("eth.trailer", trailer_end - fr.pos)
            return
        fr.issue(WARNING, fr.layers[-1], None, ip_start, "bytes after the IP packet")
    _after_ip(fr, proto, ip_start, version)


def _after_ip(fr: Frame, proto: int, ip_start: int, version: int) -> None:
    p = fr.profile
    if proto != 17:
        fr.rest_as_data()
        return
    udp_start = fr.pos
    u = fr.take(H["udp"])
    if u is None:
        return
    if u[2] != fr.end - udp_start:
        fr.issue(WARNING if p.check_udp_zero_checksum else INFO, "udp", "udp.length", udp_start,
                 f"UDP length {u[2]}, {fr.end - udp_start} bytes present")
    if not (u[1] in p.ub_udp_ports or p.any_udp_port_is_ub):
        if u[1] in (67, 68) and fr.cfg == 5 and fr.end - fr.pos >= H["bootp"].size:
            fr.take(H["bootp"])
            if fr.end > fr.pos:
                fr.take_bytes("bootp.options", fr.end - fr.pos)
        fr.rest_as_data()
        return
    if u[3] != 0 and p.check_udp_zero_checksum:
        fr.issue(WARNING, "udp", "udp.checksum", udp_start, "UB over UDP wants checksum 0")
    if p.check_ipv4_df and version == 4:
        if fr.fields.get("ip.flags") != 2:
            fr.issue(WARNING, "ip", "ip.flags", ip_start, "UB over IPv4 wants DF set (flags 0b010)")
    if p.icrc:
        fr.icrc_start = ip_start
        fr.icrc_masks = masks_for_ip(ip_start, version, udp_start)
        if not _reserve_icrc(fr):
            return
    _rtph_or_utph(fr)
    _finish_icrc(fr)
