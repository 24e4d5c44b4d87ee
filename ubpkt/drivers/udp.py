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

import errno
import select
import socket
import struct
import time
from dataclasses import dataclass, replace
from typing import Callable

from ..profile import SPEC, Profile
from ..stack.engine import Discarded
# the UBoE ICRC over a whole frame, the Framer's own routine (masks from the field declarations)
from ..stack.network import Path, _icrc_uboe
from .carriage import carriage_for

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


class Peer:
    """A remote UDP address and the engine that talks to it."""

    __slots__ = ("addr", "name", "engine", "faults", "last_active", "stats", "tokens",
                 "tok_t")

    def __init__(self, addr: tuple, name: str, engine, faults=None):
        self.addr = addr
        self.name = name
        self.engine = engine
        self.faults = faults
        self.last_active = 0
        self.tokens = 0.0
        self.tok_t = 0
        self.stats = {"rx_datagrams": 0, "tx_datagrams": 0}


class UdpDriver:
    """Engines over one UDP socket on the wall clock (see the module doc).

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
    ``keep_events``: keep every engine event in :attr:`events` as ``(peer name, event)`` (the
    fault ledger needs them); otherwise only count them by type in ``stats``."""

    def __init__(self, bind: tuple = ("127.0.0.1", 0), *, icrc: str = "check",
                 profile: Profile = SPEC, budget: int = 64, rx_batch: int = 256,
                 pps: float | None = None, accept: Callable | None = None,
                 max_peers: int = 64, sock_buf: int = 4 << 20, keep_events: bool = True,
                 backlog: int | None = None, rx_pps: float | None = None,
                 dialect: str = "spec"):
        if icrc not in ("check", "ignore"):
            raise ValueError("icrc: check or ignore")
        #: how frames ride in datagrams (:mod:`ubpkt.drivers.carriage`), by the dialect
        self.carriage = carriage_for(dialect, profile, icrc, pseudo_header)
        self.icrc = icrc
        self.profile = profile
        self.budget = budget
        self.rx_batch = rx_batch
        self.pps = pps
        self.accept = accept
        self.max_peers = max_peers
        self.keep_events = keep_events
        self.rx_pps = rx_pps
        self.backlog = backlog if backlog is not None else 4 * budget
        sock = open_udp_socket(bind, sock_buf)
        sock.setblocking(False)
        self.sock = sock
        self.local: tuple = sock.getsockname()
        self._wildcard = self.local[0] == "0.0.0.0"
        if self._wildcard:      # the local address of each datagram, for the ICRC header
            sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
        self.peers: dict[tuple, Peer] = {}
        self.events: list = []
        self.errors: list[str] = []
        self._outq: list = []           # [datagram, addr]
        self._outi = 0
        self._tokens = float(budget)
        self._tok_t = 0
        self._stop = False
        self._t0 = time.monotonic_ns()
        self.stats = {"rx_datagrams": 0, "tx_datagrams": 0, "rx_bytes": 0, "tx_bytes": 0,
                      "bad_icrc": 0, "icrc_ignored": 0, "runt": 0, "unknown_source": 0,
                      "peers_refused": 0, "peers_evicted": 0, "engine_errors": 0,
                      "tx_errors": 0, "tx_blocked": 0, "rx_rate_limited": 0, "events": {}}

    # -- set-up ---------------------------------------------------------------------------------
    def now(self) -> int:
        """Nanoseconds since the driver started (the engines' clock)."""
        return time.monotonic_ns() - self._t0

    def path_to(self, addr: tuple, local_ip: str | None = None) -> UdpPath:
        """The :class:`UdpPath` of frames from this socket to ``addr``."""
        return UdpPath(src_ip=local_ip or self.local[0], dst_ip=addr[0],
                       udp_sport=self.local[1], udp_dport=addr[1])

    def add_peer(self, addr: tuple, engine, *, name: str = "peer", faults=None) -> Peer:
        """Talk to ``addr`` with ``engine``; ``faults``: a FaultInjector on its send path."""
        if faults is not None and not self.carriage.whole_frames:
            faults = UdpFaults(faults, self.profile.icrc_byteorder, self.profile.icrc)
        p = Peer(tuple(addr), name, engine, faults)
        p.last_active = p.tok_t = self.now()
        p.tokens = float(self.rx_pps or 0)
        self.peers[p.addr] = p
        return p

    def stop(self) -> None:
        """Make :meth:`run` return (safe from a signal handler)."""
        self._stop = True

    def close(self) -> None:
        self.sock.close()

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
            peer = self.peers.get(addr)
            if peer is not None and getattr(peer.engine, "closed", False):
                del self.peers[addr]
                peer = None
            if peer is None:
                peer = self._new_peer(addr, local_ip, frame, now)
                if peer is None:
                    continue
            if self.rx_pps:
                peer.tokens = min(self.rx_pps,
                                  peer.tokens + (now - peer.tok_t) * self.rx_pps / 1e9)
                peer.tok_t = now
                if peer.tokens < 1:
                    st["rx_rate_limited"] += 1
                    continue
                peer.tokens -= 1
            peer.last_active = now
            peer.stats["rx_datagrams"] += 1
            try:
                peer.engine.receive(frame, now)
            except Exception as exc:    # an engine must never take the driver down
                st["engine_errors"] += 1
                self._error(f"{peer.name}: receive: {type(exc).__name__}: {exc}")
        return n

    def _new_peer(self, addr, local_ip, frame, now) -> Peer | None:
        st = self.stats
        if self.accept is None:
            st["unknown_source"] += 1
            return None
        if len(self.peers) >= self.max_peers:
            idle = [p for p in self.peers.values()
                    if getattr(p.engine, "idle", lambda: True)()]
            if not idle:
                st["peers_refused"] += 1
                return None
            old = min(idle, key=lambda p: p.last_active)
            del self.peers[old.addr]
            st["peers_evicted"] += 1
        try:
            eng = self.accept(self, addr, local_ip, bytes(frame), now)
        except Exception as exc:
            st["engine_errors"] += 1
            self._error(f"accept {addr}: {type(exc).__name__}: {exc}")
            eng = None
        if eng is None:
            st["unknown_source"] += 1
            return None
        return self.add_peer(addr, eng, name=f"{addr[0]}:{addr[1]}")

    def _discard(self, now: int, reason: str) -> None:
        if self.keep_events:
            self.events.append(("driver", Discarded(now, -1, None, reason)))

    def _error(self, msg: str) -> None:
        if len(self.errors) < 100:
            self.errors.append(msg)

    # -- transmit -------------------------------------------------------------------------------
    def _queue(self, peer: Peer, frame) -> None:
        self._outq.append((self.carriage.wrap(frame), peer.addr))
        peer.stats["tx_datagrams"] += 1

    def _flush(self, now: int) -> bool:
        """Send what is queued (pacing allowing); True if the socket would block."""
        q = self._outq
        i = self._outi
        st = self.stats
        sendto = self.sock.sendto
        if self.pps:
            self._tokens = min(float(self.budget), self._tokens
                               + (now - self._tok_t) * self.pps / 1e9)
            self._tok_t = now
        blocked = False
        while i < len(q):
            if self.pps:
                if self._tokens < 1:
                    break
                self._tokens -= 1
            dgram, addr = q[i]
            try:
                sendto(dgram, addr)
            except (BlockingIOError, InterruptedError):
                st["tx_blocked"] += 1
                blocked = True
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    st["tx_blocked"] += 1
                    blocked = True
                    break
                st["tx_errors"] += 1        # EMSGSIZE (MTU below the datagram), unreachable...
                self._error(f"sendto {addr[0]}:{addr[1]}: {exc}")
                i += 1
                continue
            st["tx_datagrams"] += 1
            st["tx_bytes"] += len(dgram)
            i += 1
        if i >= len(q):
            q.clear()
            i = 0
        elif i > 4096:
            del q[:i]
            i = 0
        self._outi = i
        return blocked

    def pending(self) -> int:
        """Datagrams queued but not yet handed to the kernel."""
        return len(self._outq) - self._outi

    # -- the loop -------------------------------------------------------------------------------
    def _collect(self) -> None:
        evs = self.stats["events"]
        keep = self.keep_events
        for p in list(self.peers.values()):
            try:
                got = p.engine.pop_events()
            except Exception as exc:
                self.stats["engine_errors"] += 1
                self._error(f"{p.name}: pop_events: {type(exc).__name__}: {exc}")
                continue
            for e in got:
                k = type(e).__name__
                evs[k] = evs.get(k, 0) + 1
                if keep:
                    self.events.append((p.name, e))

    def tick(self, now: int) -> bool:
        """One pass: receive, timers, transmit, flush, events.  True if anything moved."""
        moved = self._receive(now) > 0
        st = self.stats
        for p in list(self.peers.values()):
            eng = p.engine
            try:
                t = eng.next_deadline()
                if t is not None and t <= now:
                    eng.handle_timeout(now)
                if self.pending() < self.backlog:
                    frames = eng.transmit(now, self.budget)
                else:
                    frames = ()             # the kernel is behind: let the engine hold them
            except Exception as exc:
                st["engine_errors"] += 1
                self._error(f"{p.name}: {type(exc).__name__}: {exc}")
                continue
            if frames:
                moved = True
                p.last_active = now
                inj = p.faults
                for f in frames:
                    if inj is not None:
                        inj.push(f, now)
                    else:
                        self._queue(p, f)
            if p.faults is not None:
                for f in p.faults.pop(now):
                    self._queue(p, f)
        self._flush(now)
        self._collect()
        return moved

    def next_deadline(self) -> int | None:
        best = None
        for p in self.peers.values():
            for src in (p.engine, p.faults):
                if src is None:
                    continue
                try:
                    t = src.next_deadline()
                except Exception:
                    t = None
                if t is not None and (best is None or t < best):
                    best = t
        return best

    def run(self, until: Callable[[], bool] | None = None, timeout_s: float | None = None,
            max_wait_s: float = 0.05) -> str:
        """Run until ``until()`` is true (``"until"``), ``timeout_s`` seconds have passed
        (``"timeout"``) or :meth:`stop` was called (``"stopped"``)."""
        self._stop = False
        end = None if timeout_s is None else self.now() + int(timeout_s * 1e9)
        sock = self.sock
        while not self._stop:
            now = self.now()
            moved = self.tick(now)
            if until is not None and until():
                return "until"
            now = self.now()
            if end is not None and now >= end:
                return "timeout"
            if moved and not self._outq:
                continue
            wait = max_wait_s
            t = self.next_deadline()
            if t is not None:
                wait = min(wait, max(0.0, (t - now) / 1e9))
            if end is not None:
                wait = min(wait, max(0.0, (end - now) / 1e9))
            wlist = []
            if self.pending():
                if self.pps and self._tokens < 1:
                    wait = min(wait, (1 - self._tokens) / self.pps)
                else:
                    wlist = [sock]
            if moved and wlist:
                wait = 0.0
            try:
                select.select([sock], wlist, [], wait)
            except InterruptedError:
                pass
            except ValueError:          # the socket was closed under us
                return "stopped"
        return "stopped"

    def report(self) -> dict:
        """The driver's counters, for a command's report."""
        st = dict(self.stats)
        st["events"] = dict(st["events"])
        return {"local": f"{self.local[0]}:{self.local[1]}", "icrc": self.icrc,
                "icrc_note": ICRC_NOTE, "pps": self.pps, "rx_pps": self.rx_pps,
                "budget": self.budget,
                "stats": st, "errors": list(self.errors)}
