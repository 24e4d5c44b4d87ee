"""UBoE on raw Ethernet: a wall-clock driver over an ``AF_PACKET``/``SOCK_RAW`` socket bound to
one interface, carrying the engines' frames byte for byte (UB 2.0 §5.2.3: Ethernet, an optional
IEEE 802.1Q tag, IPv4, UDP to port 4792, the UB headers, the ICRC).

What is sent: exactly what the Framer builds for a :class:`RawPath`: the interface's MAC and
IPv4 address as sources, the peer's MAC, IP and UDP port, an 802.1Q tag when ``vlan`` is given,
an IPv4 header with DF and IP id 0 and its header checksum, a UDP checksum of 0 (allowed over
IPv4, RFC 768), the ICRC over the real IPv4/UDP headers (§5.3.7).  So a kernel on the other side
takes the frames too, and the ICRC a receiver checks is the one of the bytes on the wire.

What is received (:meth:`RawDriver._receive`): frames the kernel hands the packet socket, less
the copies of our own transmissions (``PACKET_OUTGOING``), kept when they are IPv4 (behind one
802.1Q tag when ``vlan`` is set: the VLAN must match; the kernel strips tags into
``PACKET_AUXDATA``, the driver puts them back), no IP options, not a fragment, a good IPv4 header
checksum, UDP to one of the profile's UB ports (or ``port``), to our MAC (or broadcast) and our
IPv4 address.  Anything else is counted ``not_ours`` and left alone.  Ethernet padding is cut at
the IPv4 total length.  The ICRC is checked as the UDP driver does (``bad_icrc``); a peer is the
source ``(MAC, IP, UDP port)``.

Privileges: a packet socket needs root or ``CAP_NET_RAW``; :class:`RawError` says so in one line,
as it does for an interface that does not exist or has no IPv4 address.  ``claim_port`` binds
an ordinary UDP socket to our address and port, so that the kernel, which sees the same frames,
does not answer each with an ICMP port unreachable (it is never read; its buffer is minimal).

:func:`open_raw_sender` is the transmit half alone (``ubpkt generate --iface``, replay).
"""
from __future__ import annotations

import errno
import fcntl
import socket
import struct
import time
from dataclasses import dataclass, replace

from ..profile import SPEC, Profile
from .udp import UB_UDP_PORT, UdpPath
from .wallclock import WallClockDriver

__all__ = ["RawError", "Iface", "RawPath", "RawDriver", "RawSender", "iface_info",
           "open_raw_socket", "open_raw_sender", "neighbour_mac", "resolve_mac", "parse_mac"]

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_8021Q = 0x8100
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
_TP_STATUS_VLAN_VALID = 0x10
_TP_STATUS_VLAN_TPID_VALID = 0x40
_AUX = struct.Struct("=IIIHHHH")        # struct tpacket_auxdata
_SIOCGIFADDR, _SIOCGIFHWADDR, _SIOCGIFMTU, _SIOCGIFINDEX = 0x8915, 0x8927, 0x8921, 0x8933
_BROADCAST = b"\xff" * 6


class RawError(OSError):
    """Raw Ethernet cannot start: no privilege, no such interface, no address (one line)."""


def parse_mac(text: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (or with ``-``) -> 6 bytes; ValueError otherwise."""
    parts = str(text).replace("-", ":").split(":")
    try:
        if len(parts) != 6:
            raise ValueError
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r}: not a MAC address (aa:bb:cc:dd:ee:ff)") from None


def _mac_str(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


@dataclass(frozen=True)
class Iface:
    """An interface as the kernel of this thread's network namespace sees it."""
    name: str
    index: int
    mac: str
    ipv4: str | None
    mtu: int


def _ifreq(name: str) -> bytes:
    return struct.pack("16s24x", name.encode())


def iface_info(name: str) -> Iface:
    """Index, MAC, IPv4 address (None if it has none) and MTU of ``name`` (ioctls
    ``SIOCGIFINDEX``/``SIOCGIFHWADDR``/``SIOCGIFADDR``/``SIOCGIFMTU``, in the calling thread's
    network namespace).  :class:`RawError` when there is no such interface."""
    if not name or len(name.encode()) > 15 or "/" in name:
        raise RawError(errno.ENODEV, f"{name!r}: not an interface name")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:
            idx = struct.unpack_from("i", fcntl.ioctl(s, _SIOCGIFINDEX, _ifreq(name)), 16)[0]
        except OSError as exc:
            raise RawError(errno.ENODEV, f"{name}: no such network interface "
                                         f"({exc.strerror})") from None
        hw = fcntl.ioctl(s, _SIOCGIFHWADDR, _ifreq(name))
        mac = _mac_str(hw[18:24])
        mtu = struct.unpack_from("i", fcntl.ioctl(s, _SIOCGIFMTU, _ifreq(name)), 16)[0]
        try:
            ip = socket.inet_ntoa(fcntl.ioctl(s, _SIOCGIFADDR, _ifreq(name))[20:24])
        except OSError:
            ip = None           # EADDRNOTAVAIL: the interface has no IPv4 address
        return Iface(name, idx, mac, ip, mtu)
    finally:
        s.close()


def open_raw_socket(iface: str, sock_buf: int = 4 << 20, receive: bool = True) -> socket.socket:
    """A packet socket bound to ``iface`` taking every protocol (``receive``; else none: a
    sender only), non-blocking, with
    ``PACKET_AUXDATA`` (the VLAN tags the kernel strips) and, where the kernel has it,
    ``PACKET_IGNORE_OUTGOING``.  :class:`RawError` without the privilege or the interface."""
    try:
        # protocol 0: nothing arrives before the bind to the interface
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError:
        raise RawError(errno.EPERM, f"raw Ethernet on {iface} needs root or CAP_NET_RAW "
                                    "(an AF_PACKET socket)") from None
    except (OSError, AttributeError) as exc:
        raise RawError(errno.EAFNOSUPPORT,
                       f"raw Ethernet: no AF_PACKET sockets here ({exc})") from None
    try:
        sock.bind((iface, ETH_P_ALL if receive else 0))
    except OSError as exc:
        sock.close()
        raise RawError(errno.ENODEV, f"{iface}: no such network interface "
                                     f"({exc.strerror or exc})") from None
    for level, opt, val in ((SOL_PACKET, PACKET_AUXDATA, 1),
                            (SOL_PACKET, PACKET_IGNORE_OUTGOING, 1),
                            (socket.SOL_SOCKET, socket.SO_RCVBUF, sock_buf),
                            (socket.SOL_SOCKET, socket.SO_SNDBUF, sock_buf)):
        try:
            sock.setsockopt(level, opt, val)
        except OSError:
            pass                # older kernels: the pkttype filter below does the same
    sock.setblocking(False)
    return sock


# -- peers' MACs ----------------------------------------------------------------------------------
def neighbour_mac(ip: str, iface: str | None = None) -> str | None:
    """The MAC the kernel's ARP table (this thread's namespace) holds for ``ip`` (complete
    entries only), or None."""
    for path in ("/proc/thread-self/net/arp", "/proc/net/arp"):
        try:
            with open(path, encoding="ascii") as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) >= 6 and f[0] == ip and (iface is None or f[5] == iface) \
                    and int(f[2], 16) & 0x2 and f[3] != "00:00:00:00:00:00":
                return f[3].lower()
        return None
    return None


def resolve_mac(ip: str, iface: str, timeout_s: float = 1.0) -> str:
    """The MAC of ``ip`` on ``iface``: from the ARP table, else after one empty UDP datagram to
    its discard port (9) makes the kernel ask (the peer must be on the link: through a router,
    give the router's MAC).  :class:`RawError` when it stays unknown."""
    mac = neighbour_mac(ip, iface)
    if mac:
        return mac
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        except OSError:
            pass
        try:
            s.sendto(b"", (ip, 9))
        except OSError:
            pass
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            mac = neighbour_mac(ip, iface)
            if mac:
                return mac
            time.sleep(0.02)
    finally:
        s.close()
    raise RawError(errno.EHOSTUNREACH, f"{ip}: no ARP entry on {iface} (give the peer's MAC)")


# -- the path -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RawPath(UdpPath):
    """A :class:`~ubpkt.drivers.udp.UdpPath` with an optional 802.1Q tag (``vlan`` 0..4095,
    ``pcp`` 0..7) between the Ethernet header and IPv4."""
    vlan: int | None = None
    pcp: int = 0

    def carrier(self, transport: str) -> list:
        layers = super().carrier(transport)
        if self.kind == "uboe" and self.vlan is not None:
            layers[0][1]["type"] = ETH_P_8021Q
            layers.insert(1, ("vlan", {"priority": self.pcp, "dei": 0, "id": self.vlan,
                                       "etype": ETH_P_IP}))
        return layers

    def reverse(self) -> "RawPath":
        return replace(self, src_mac=self.dst_mac, dst_mac=self.src_mac, src_ip=self.dst_ip,
                       dst_ip=self.src_ip, udp_sport=self.udp_dport, udp_dport=self.udp_sport,
                       scna=self.dcna, dcna=self.scna)


def _check_vlan(vlan, pcp) -> None:
    if vlan is not None and not 0 <= vlan < 4096:
        raise ValueError(f"vlan {vlan}: 0..4095 (IEEE 802.1Q VID)")
    if not 0 <= pcp < 8:
        raise ValueError(f"pcp {pcp}: 0..7")


def _ip_checksum_ok(b, o: int) -> bool:
    s = sum(struct.unpack_from("!10H", b, o))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF


# -- the driver -----------------------------------------------------------------------------------
class RawDriver(WallClockDriver):
    """Engines over one packet socket on ``iface`` (see the module doc; the loop, peers,
    pacing and faults are :class:`~ubpkt.drivers.wallclock.WallClockDriver`'s, keywords as
    there).

    ``port``: our UDP port (default the profile's first UB port, 4792); frames to any of the
    profile's UB ports are ours too.  ``vlan``/``pcp``: send with an 802.1Q tag and take only
    frames of that VLAN (None: untagged only).  ``mac``/``ip``: override what the interface
    says.  A peer is ``(mac, ip, port)``: :meth:`path_to` gives its :class:`RawPath`."""

    def __init__(self, iface: str, *, port: int | None = None, vlan: int | None = None,
                 pcp: int = 0, mac: str | None = None, ip: str | None = None,
                 claim_port: bool = True, sock_buf: int = 4 << 20, profile: Profile = SPEC,
                 **kw):
        super().__init__(profile=profile, **kw)
        _check_vlan(vlan, pcp)
        info = iface_info(iface)
        self.iface = info
        self.mac = _mac_str(parse_mac(mac)) if mac else info.mac
        self.ip = ip or info.ipv4
        if self.ip is None:
            raise RawError(errno.EADDRNOTAVAIL, f"{iface}: no IPv4 address (give one)")
        self.port = port or (profile.ub_udp_ports[0] if profile.ub_udp_ports else UB_UDP_PORT)
        self.ports = frozenset(profile.ub_udp_ports) | {self.port}
        self.vlan, self.pcp = vlan, pcp
        self._mac_b = parse_mac(self.mac)
        self._ip_b = socket.inet_aton(self.ip)
        self.sock = open_raw_socket(iface, sock_buf)
        self._claim = None
        if claim_port:
            self._claim = self._claim_port()
        self.local: tuple = (self.mac, self.ip, self.port)
        for k in ("not_ours", "outgoing", "bad_ip_checksum"):
            self.stats[k] = 0

    def _claim_port(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
            s.bind((self.ip, self.port))
            return s
        except OSError:             # someone has it already: they keep the kernel quiet
            s.close()
            return None

    # -- set-up ---------------------------------------------------------------------------------
    def path_to(self, peer: tuple, local_ip: str | None = None) -> RawPath:
        """The :class:`RawPath` of frames from us to ``peer`` = (MAC, IP, UDP port)."""
        mac, ip, port = peer
        return RawPath(src_mac=self.mac, dst_mac=mac, src_ip=local_ip or self.ip, dst_ip=ip,
                       udp_sport=self.port, udp_dport=port, vlan=self.vlan, pcp=self.pcp)

    @property
    def local_port(self) -> int:
        return self.port

    #: the reports' note on the ICRC (the UDP driver's says what it cannot see)
    icrc_note = ("raw Ethernet: the ICRC (UB 2.0 §5.3.7) is checked over the IPv4 and UDP "
                 "headers as received")

    def payload_mtu(self, wanted: int) -> int:
        """The largest transaction MTU (payload bytes per packet, a power of two from 256) at
        most ``wanted`` whose frames fit the interface's MTU: IPv4 (20), UDP (8), RTPH (16),
        up to 64 bytes of transaction headers and the ICRC (4) around the payload."""
        room = self.iface.mtu - 20 - 8 - 16 - 64 - 4
        mtu = wanted
        while mtu > room and mtu > 256:
            mtu = 1 << (mtu.bit_length() - 1) if mtu & (mtu - 1) else mtu >> 1
        return mtu

    @property
    def listen(self) -> str:
        tag = f" VLAN {self.vlan}" if self.vlan is not None else ""
        return f"{self.iface.name} {self.mac} {self.ip}:{self.port}{tag}"

    def peer_name(self, addr: tuple) -> str:
        return f"{addr[1]}:{addr[2]}"

    def close(self) -> None:
        self.sock.close()
        if self._claim is not None:
            self._claim.close()

    # -- receive --------------------------------------------------------------------------------
    def _receive(self, now: int) -> int:
        st = self.stats
        recvmsg = self.sock.recvmsg
        space = socket.CMSG_SPACE(_AUX.size)
        n = 0
        for _ in range(self.rx_batch):
            try:
                data, anc, _flags, addr = recvmsg(65536, space)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                st["tx_errors"] += 1
                self._error(f"socket: {exc}")
                continue
            if addr[2] == PACKET_OUTGOING:
                st["outgoing"] += 1
                continue
            n += 1
            tci = None
            for level, typ, cdata in anc:
                if level == SOL_PACKET and typ == PACKET_AUXDATA and len(cdata) >= _AUX.size:
                    status, _l, _s, _m, _n, vtci, vtpid = _AUX.unpack_from(cdata)
                    if status & _TP_STATUS_VLAN_VALID:
                        tpid = vtpid if status & _TP_STATUS_VLAN_TPID_VALID else ETH_P_8021Q
                        tci = vtci
                        data = data[:12] + struct.pack("!HH", tpid, vtci) + data[12:]
            frame = self._ours(data, tci, now)
            if frame is None:
                continue
            st["rx_datagrams"] += 1
            st["rx_bytes"] += len(frame)
            o = 4 if frame[12] == 0x81 else 0
            if not self._check_icrc(frame, now, 14 + o):
                continue
            self._dispatch((_mac_str(frame[6:12]), socket.inet_ntoa(frame[26 + o:30 + o]),
                            frame[34 + o] << 8 | frame[35 + o]), self.ip, frame, now)
        return n

    def _ours(self, data: bytes, tci, now: int):
        """The frame (a bytearray cut at the IPv4 total length) if it is UBoE for us, else None
        (counted ``not_ours``, ``runt`` or ``bad_ip_checksum``)."""
        st = self.stats
        if len(data) < 14 or (data[:6] != self._mac_b and data[:6] != _BROADCAST):
            st["not_ours"] += 1
            return None
        o = 0
        if data[12] == 0x81 and data[13] == 0x00:
            if len(data) < 18:
                st["not_ours"] += 1
                return None
            vid = (data[14] << 8 | data[15]) & 0x0FFF
            if self.vlan is None or vid != self.vlan:
                st["not_ours"] += 1
                return None
            o = 4
        elif self.vlan is not None:
            st["not_ours"] += 1
            return None
        if len(data) < 42 + o or data[12 + o] != 0x08 or data[13 + o] != 0x00 \
                or data[14 + o] != 0x45 or data[23 + o] != 17 \
                or (data[20 + o] & 0x3F) or data[21 + o] \
                or data[30 + o:34 + o] != self._ip_b \
                or (data[36 + o] << 8 | data[37 + o]) not in self.ports:
            st["not_ours"] += 1     # not IPv4/UDP without options, a fragment, not to us
            return None
        if not _ip_checksum_ok(data, 14 + o):
            st["bad_ip_checksum"] += 1
            self._discard(now, "bad_ip_checksum")
            return None
        total = 14 + o + (data[16 + o] << 8 | data[17 + o])
        if total > len(data) or total < 42 + o + 20:    # an RTPH and an ICRC at the least
            st["runt"] += 1
            self._discard(now, "runt")
            return None
        return bytearray(data[:total])

    # -- transmit -------------------------------------------------------------------------------
    def _xmit(self, data, addr) -> None:
        self.sock.send(data)

    def report(self) -> dict:
        out = {"iface": self.iface.name, "local": self.listen, "mac": self.mac, "ip": self.ip,
               "port": self.port, "vlan": self.vlan, "pcp": self.pcp,
               "mtu": self.iface.mtu, "port_claimed": self._claim is not None}
        out.update(super().report())
        return out


class RawSender:
    """Frames out of one interface as they are (no filtering, no state): ``send(frame)``, also
    callable.  Raises :class:`RawError` at opening, OSError from ``send`` (EMSGSIZE: a frame
    longer than the interface's MTU allows)."""

    def __init__(self, iface: str):
        self.iface = iface_info(iface)
        self.sock = open_raw_socket(iface, 4 << 20, receive=False)
        self.sock.setblocking(True)

    def send(self, frame) -> int:
        return self.sock.send(frame)

    __call__ = send

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_raw_sender(iface: str) -> RawSender:
    """A :class:`RawSender` on ``iface``: ``open_raw_sender("eth0")(frame_bytes)`` puts the
    frame on the wire byte for byte (``ubpkt generate --iface``, replay).  Root or
    ``CAP_NET_RAW``; :class:`RawError` otherwise."""
    return RawSender(iface)


def have_raw_privilege() -> bool:
    """Whether this process may open packet sockets (root or CAP_NET_RAW)."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
        return True
    except (OSError, AttributeError):
        return False

