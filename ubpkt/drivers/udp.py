"""UBoE over the host's IP stack: a wall-clock driver that runs engines of the reference stack
(:mod:`ubpkt.stack.engine` contract) over one UDP socket (UB 2.0 §5.2.3: UB over UDP, port
4792).

What travels: the socket carries the UDP payload only (RTPH onward, padding, ICRC).  The
engines build and parse whole UBoE frames (Ethernet, IPv4, UDP, ...; :class:`~ubpkt.stack.
network.Framer`); the driver slices the 42 bytes of Ethernet/IPv4/UDP off what it sends and
puts a rebuilt 42-byte header in front of what it receives.

The ICRC (UB 2.0 §5.3.7) covers the IPv4 and UDP headers, less the fields it masks (ToS, TTL,
the two checksums).  For it to hold on the wire, every frame is built by a Framer whose
:class:`UdpPath` names the socket pair (addresses and both ports) and an IP header as the kernel
sends it: DF set (the socket asks for ``IP_PMTUDISC_DO``), IP id 0 (Linux sends id 0 for DF
datagrams of an unconnected socket).  On receive the same header is rebuilt from the sender's
address, the local address and the length; ``icrc="check"`` drops a datagram whose ICRC does
not match it (counted ``bad_icrc``), ``icrc="ignore"`` counts the mismatch and fixes the
trailer before the engine sees it.  A plain UDP socket cannot see the peer's real IP header
(:data:`ICRC_NOTE`, repeated in the reports).

Time: integer nanoseconds from :func:`time.monotonic_ns`, counted from the driver's start.
The loop (:meth:`UdpDriver.run`) receives what is waiting, runs expired timers, lets every
engine transmit at most ``budget`` frames per tick (and at most ``pps`` datagrams per second
when given), and sleeps in ``select`` until the next deadline.  A
:class:`~ubpkt.sim.faults.FaultInjector` given with a peer sits on that peer's send path, as on
a simulated link.  The driver binds only the address it is given (default 127.0.0.1).
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, replace
from typing import Callable

from ..profile import SPEC, Profile
# the UBoE ICRC over a whole frame, the Framer's own routine (masks from the field declarations)
from ..stack.network import Path, _icrc_uboe
from .carriage import carriage_for
from .wallclock import Peer, WallClockDriver

__all__ = ["UB_UDP_PORT", "HEADER_LEN", "ICRC_NOTE", "UdpPath", "UdpDriver", "Peer", "UdpFaults",
           "parse_hostport", "udp_profile", "wallclock_profile", "pseudo_header"]

UB_UDP_PORT = 4792
#: Ethernet + IPv4 (no options) + UDP: what the socket does not carry
HEADER_LEN = 42
ICRC_NOTE = ("a UDP socket sees neither the peer's IPv4 header nor its UDP header: the ICRC "
             "(UB 2.0 §5.3.7) is checked over a header rebuilt from the datagram's addresses, "
             "ports and length, with DF set and IP id 0 (ToS, TTL and checksums are masked); "
             "a peer sending another IP id or no DF fails the check (use icrc=ignore)")

_IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
_IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
_HDR = struct.Struct("!6s6sH" "BBHHHBBH4s4s" "HHHH")
_MAC_DST, _MAC_SRC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")


def parse_hostport(text: str | None, default_host: str = "127.0.0.1",
                   default_port: int = UB_UDP_PORT) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST``, ``:PORT`` or ``PORT`` -> (IPv4 address, port).  Names are
    resolved to IPv4 addresses (the UBoE header here is IPv4)."""
    s = (text or "").strip()
    host, port = default_host, default_port
    if s:
        if ":" in s:
            h, _, p = s.rpartition(":")
            host = h or default_host
            port = _port(p, text)
        elif s.isdigit():
            port = _port(s, text)
        else:
            host = s
    try:
        addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ValueError(f"{text!r}: not an IPv4 host ({exc})") from None
    return addr, port


def _port(p: str, text) -> int:
    try:
        v = int(p)
    except ValueError:
        raise ValueError(f"{text!r}: the port is not a number") from None
    if not 0 <= v < 65536:
        raise ValueError(f"{text!r}: port outside 0..65535")
    return v


def open_udp_socket(bind: tuple, sock_buf: int = 4 << 20) -> socket.socket:
    """A UDP socket bound to ``bind`` that sends every datagram with DF set (the header the ICRC
    is computed over, UB 2.0 §5.3.7), with ``sock_buf`` bytes of socket buffers when the
    kernel allows."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _IP_PMTUDISC_DO)
    except OSError:
        pass
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, sock_buf)
        except OSError:
            pass
    try:
        sock.bind(bind)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class UdpPath(Path):
    """A UBoE :class:`~ubpkt.stack.network.Path` for a UDP socket pair: the UDP destination
    port too (``udp_dport``, on :class:`Path`), and the IPv4 header the kernel sends (DF, IP
    id 0)."""

    def carrier(self, transport: str) -> list:
        layers = super().carrier(transport)
        if self.kind == "uboe":
            layers[1][1]["id"] = 0
            layers[1][1]["flags"] = 2               # DF
            layers[2][1]["dstport"] = self.udp_dport
        return layers

    def reverse(self) -> "UdpPath":
        """The socket pair seen from the other end: addresses and both ports swapped."""
        return replace(super().reverse(), udp_sport=self.udp_dport, udp_dport=self.udp_sport)



def udp_profile(profile: Profile, *ports: int) -> Profile:
    """``profile`` taking UB on the UDP ``ports`` too (a test's ephemeral port: the Framer's
    fast path recognises UBoE by the destination port)."""
    have = tuple(profile.ub_udp_ports)
    extra = tuple(p for p in ports if p and p not in have)
    return profile.with_(ub_udp_ports=have + extra) if extra else profile


def wallclock_profile(profile: Profile = SPEC, *, rto_base_ms: float = 16.0,
                      window: int = 128, mtu: int | None = None) -> Profile:
    """Transport timers for the wall clock and a Python peer: a dynamic RTO (``Base_time x
    2^times``, UB 2.0 §6.4.2.1) from ``rto_base_ms`` (the simulator's 512 us would fire on
    every scheduling hiccup), a window of ``window`` packets, an RNR wait of 2 ms (timer code
    10, §6.2.1)."""
    tr = profile.tuning.transport
    kw = {"transport": {"rto_mode": "dynamic", "rto_base_ns": int(rto_base_ms * 1e6),
                        "rto_exp_n": 1, "window": min(window, tr.oor_window),
                        "rnr_timer_code": 10}}
    if mtu:
        kw["transaction"] = {"mtu": mtu}
    return profile.with_(**kw)


def pseudo_header(src: str, sport: int, dst: str, dport: int, payload_len: int) -> bytes:
    """The 42 bytes a UBoE frame has in front of the UDP payload, as the driver assumes the
    sender's kernel built them (DF, IP id 0; ToS, TTL and checksums are masked by the ICRC)."""
    return _HDR.pack(_MAC_DST, _MAC_SRC, 0x0800,
                     0x45, 0, 28 + payload_len, 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst),
                     sport, dport, 8 + payload_len, 0)


class UdpFaults:
    """A :class:`~ubpkt.sim.faults.FaultInjector` on a UDP send path.

    Two adaptations.  The injector (its drop filters, its corruption targets, the ledger's frame
    summaries) recognises UBoE by the UDP destination port, so it is shown every frame with
    port 4792 (and the ICRC that goes with it).  And the socket does not carry the Ethernet,
    IPv4 and UDP headers: a bit the injector flips there would never reach the peer, yet at a
    real UBoE receiver it fails the ICRC check (UB 2.0 §5.3.7).  So what the injector lets
    through leaves with the real header, and with the ICRC ``field ^ icrc(as corrupted) ^
    icrc(real header + rest)``: the peer's check then fails exactly as it would on the
    corrupted frame (the same CRC syndrome), and passes on an intact one."""

    def __init__(self, injector, byteorder: str = "little", icrc: bool = True):
        self.injector = injector
        self.order = byteorder
        self.icrc = icrc
        self._hdr: dict[int, bytes] = {}        # frame length -> the real 42-byte header

    def __getattr__(self, name):
        return getattr(self.injector, name)

    def push(self, frame, now: int) -> None:
        n = len(frame)
        if n < HEADER_LEN + 4:
            self.injector.push(frame, now)
            return
        self._hdr[n] = bytes(frame[:HEADER_LEN])
        if frame[36:38] == _UB_PORT or not self.icrc:
            if not self.icrc:
                frame = bytes(frame[:36]) + _UB_PORT + bytes(frame[38:])
            self.injector.push(frame, now)
            return
        canon = bytearray(frame)
        canon[36:38] = _UB_PORT
        end = n - 4
        canon[end:] = _icrc_uboe(memoryview(canon), end).to_bytes(4, self.order)
        self.injector.push(bytes(canon), now)

    def pop(self, now: int) -> list:
        out = []
        order = self.order
        for f in self.injector.pop(now):
            n = len(f)
            real = self._hdr.get(n)
            if real is None:
                out.append(f)
                continue
            b = bytearray(f)
            if not self.icrc:
                b[:HEADER_LEN] = real
                out.append(b)
                continue
            end = n - 4
            field = int.from_bytes(b[end:], order)
            seen = _icrc_uboe(memoryview(b), end)
            b[:HEADER_LEN] = real
            b[end:] = (field ^ seen ^ _icrc_uboe(memoryview(b), end)).to_bytes(4, order)
            out.append(b)
        return out

    def next_deadline(self):
        return self.injector.next_deadline()


_UB_PORT = UB_UDP_PORT.to_bytes(2, "big")


class UdpDriver(WallClockDriver):
    """Engines over one UDP socket on the wall clock (see the module doc; the loop, peers,
    pacing and counters are :class:`~ubpkt.drivers.wallclock.WallClockDriver`'s).

    ``bind``: (host, port) to bind (port 0: the kernel picks one; :attr:`local` says which).
    ``icrc``: ``check`` or ``ignore``.  ``profile``: gives the ICRC byte order and whether
    there is an ICRC at all.  ``budget``: frames an engine may transmit per tick.  ``pps``:
    datagrams per second at most (None: no limit beyond the budget).  ``accept(driver, addr,
    local_ip, frame, now) -> engine | None``: called for a datagram from an address that is
    no peer yet (None: the datagram is dropped, counted ``unknown_source``).  ``max_peers``:
    at most this many peers; a new one replaces the least recently active idle peer, and a peer
    whose engine says ``closed`` (a session whose channel died) is made anew by ``accept``.
    ``rx_pps``: datagrams per second taken from one peer at most (a burst of up to one second's
    worth); the rest is dropped, counted ``rx_rate_limited``.
    ``tap``: a :class:`~ubpkt.sim.tap.PcapTap` (linktype 1) that gets every frame sent and every
    frame received that passed the ICRC check, as the engines see them (the 42-byte header
    rebuilt on receive), with the driver's clock as the timestamp.
    ``keep_events``: keep every engine event in :attr:`events` as ``(peer name, event)`` (the
    fault ledger needs them); otherwise only count them by type in ``stats``."""

    def __init__(self, bind: tuple = ("127.0.0.1", 0), *, icrc: str = "check",
                 profile: Profile = SPEC, budget: int = 64, rx_batch: int = 256,
                 pps: float | None = None, accept: Callable | None = None,
                 max_peers: int = 64, sock_buf: int = 4 << 20, keep_events: bool = True,
                 backlog: int | None = None, rx_pps: float | None = None,
                 t0: int | None = None, tap=None, dialect: str = "spec"):
        super().__init__(icrc=icrc, profile=profile, budget=budget, rx_batch=rx_batch,
                         pps=pps, accept=accept, max_peers=max_peers,
                         keep_events=keep_events, backlog=backlog, rx_pps=rx_pps, t0=t0,
                         tap=tap)
        #: how frames ride in datagrams (:mod:`ubpkt.drivers.carriage`), by the dialect
        self.carriage = carriage_for(dialect, profile, icrc, pseudo_header)
        sock = open_udp_socket(bind, sock_buf)
        sock.setblocking(False)
        self.sock = sock
        self.local: tuple = sock.getsockname()
        self._wildcard = self.local[0] == "0.0.0.0"
        if self._wildcard:      # the local address of each datagram, for the ICRC header
            sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)

    # -- set-up ---------------------------------------------------------------------------------
    def path_to(self, addr: tuple, local_ip: str | None = None) -> UdpPath:
        """The :class:`UdpPath` of frames from this socket to ``addr``."""
        return UdpPath(src_ip=local_ip or self.local[0], dst_ip=addr[0],
                       udp_sport=self.local[1], udp_dport=addr[1])

    @property
    def local_port(self) -> int:
        return self.local[1]

    @property
    def listen(self) -> str:
        """Where the driver listens, for messages and reports."""
        return f"{self.local[0]}:{self.local[1]}"

    def _wrap_faults(self, injector):
        if self.carriage.whole_frames:          # nothing sliced off: the injector as it is
            return injector
        return UdpFaults(injector, self.profile.icrc_byteorder, self.profile.icrc)

    # -- receive --------------------------------------------------------------------------------
    def _recv_one(self):
        if not self._wildcard:
            data, addr = self.sock.recvfrom(65536)
            return data, addr, self.local[0]
        data, anc, _flags, addr = self.sock.recvmsg(65536, 64)
        local_ip = self.local[0]
        for level, typ, cdata in anc:
            if level == socket.IPPROTO_IP and typ == _IP_PKTINFO and len(cdata) >= 12:
                local_ip = socket.inet_ntoa(cdata[8:12])    # in_pktinfo.ipi_addr
        return data, addr, local_ip

    def _receive(self, now: int) -> int:
        st = self.stats
        n = 0
        for _ in range(self.rx_batch):
            try:
                data, addr, local_ip = self._recv_one()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:      # ICMP errors reported on the socket, and the like
                st["tx_errors"] += 1
                self._error(f"socket: {exc}")
                continue
            n += 1
            st["rx_datagrams"] += 1
            st["rx_bytes"] += len(data)
            frame, why = self.carriage.unwrap(data, addr, (local_ip, self.local[1]), st)
            if frame is None:
                self._discard(now, why)
                continue
            self._dispatch(addr, local_ip, frame, now)
        return n

    # -- transmit -------------------------------------------------------------------------------
    def _wire(self, frame):
        return self.carriage.wrap(frame)

    def _xmit(self, data, addr) -> None:
        self.sock.sendto(data, addr)

    def report(self) -> dict:
        """The driver's counters, for a command's report."""
        out = {"local": self.listen, "icrc_note": ICRC_NOTE}
        out.update(super().report())
        return out
