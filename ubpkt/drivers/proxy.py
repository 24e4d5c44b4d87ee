"""``ubpkt inject --proxy``: a UDP man in the middle between two live UBoE endpoints that
injects the simulator's seeded faults (:mod:`ubpkt.sim.faults`) on the wall clock and keeps
the fault ledger (:mod:`ubpkt.sim.ledger`).

Clients send to ``listen``.  Each client address (IP and port) is a *flow*: it gets its own
upstream socket, bound to ``upstream_ip`` on a port the kernel picks, that talks to ``peer``
(so the peer, e.g. ``ubpkt serve``, sees one source per client, as without the proxy).  The
peer's answers on that socket go back to the client from the listening socket.  Each
direction of each flow is a :class:`~ubpkt.drivers.proxy_path.ProxyDirection`: the ICRC moved
to the addresses the receiver sees (UB 2.0 §5.3.7; a corrupted frame keeps its syndrome) and,
when asked (``direction``: ``both``, ``ab`` client -> peer, ``ba`` peer -> client), a
FaultInjector with the options of ``loopback`` and ``inject``.  Seeds: flow *k* (from 1) uses
``seed + 2(k-1)`` towards the peer and ``seed + 2(k-1) + 1`` back (flow 1: loopback's
``seed``/``seed + 1``), unless the spec names its own ``seed``.  Fault times (``blackout``)
count from the proxy's start.

The ledger resolves every fault from events the proxy derives from what it sees on the wire
(:mod:`ubpkt.drivers.wire_events`): which retransmissions and responses crossed it, not what
happened inside the endpoints.  Node names: ``client#k`` and ``peer#k``; the report's
``flows`` maps them to addresses.

Settings the spec leaves to an implementation, named here: ``max_flows`` (new clients past it
are refused, counted), ``psn_memory`` (see wire_events), ``sock_buf`` (socket buffer bytes;
a datagram the kernel would not take is dropped and counted ``tx_dropped``, which the ledger
does not know).  Stops on :meth:`Proxy.stop`, after ``duration_s``, or once ``count``
datagrams came in (then what the injectors still hold is let out, within ``drain_s``).
"""
from __future__ import annotations

import errno
import select
import socket
import time
from dataclasses import asdict, dataclass, field

from ..profile import SPEC, Profile
from ..sim.faults import FaultInjector, FaultSpec
from ..sim.ledger import Ledger
from .proxy_path import STAT_KEYS, ProxyDirection
from .udp import ICRC_NOTE, UB_UDP_PORT, open_udp_socket
from .wire_events import WireObserver

__all__ = ["ProxyConfig", "Proxy", "SCHEMA", "DEFAULT_LISTEN"]

SCHEMA = "ubpkt.proxy/1"
DEFAULT_LISTEN = ("127.0.0.1", UB_UDP_PORT + 1)
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
DIRECTIONS = ("both", "ab", "ba")


@dataclass
class ProxyConfig:
    listen: tuple = DEFAULT_LISTEN
    peer: tuple = ("127.0.0.1", UB_UDP_PORT)
    upstream_ip: str = "127.0.0.1"
    faults: str | None = None           # FaultSpec text
    direction: str = "both"             # both | ab (client -> peer) | ba (peer -> client)
    seed: int = 1
    duration_s: float | None = None
    count: int | None = None            # stop after this many datagrams in
    drain_s: float = 0.5
    max_flows: int = 64
    psn_memory: int = 1 << 16
    sock_buf: int = 4 << 20
    rx_batch: int = 256
    profile: Profile = field(default=SPEC, repr=False)


class _Flow:
    """One client: its upstream socket and the two directions."""

    def __init__(self, index: int, client: tuple, sock: socket.socket, ab: ProxyDirection,
                 ba: ProxyDirection, observer: WireObserver):
        self.index, self.client, self.sock = index, client, sock
        self.ab, self.ba, self.observer = ab, ba, observer

    def report(self) -> dict:
        up = self.sock.getsockname()
        return {"client": f"{self.client[0]}:{self.client[1]}", "upstream": f"{up[0]}:{up[1]}",
                "nodes": [self.ab.src_node, self.ab.dst_node],
                "ab": dict(self.ab.stats), "ba": dict(self.ba.stats),
                "observed": self.observer.report()}


class Proxy:
    """See the module doc.  ``run()`` returns the report (schema ``ubpkt.proxy/1``)."""

    def __init__(self, cfg: ProxyConfig):
        if cfg.direction not in DIRECTIONS:
            raise ValueError(f"direction: one of {', '.join(DIRECTIONS)}")
        if cfg.upstream_ip == "0.0.0.0":
            raise ValueError("the upstream address must be a specific one (the ICRC covers "
                             "the source address, UB 2.0 §5.3.7)")
        self.cfg = cfg
        self.spec = FaultSpec.parse(cfg.faults) if cfg.faults else None
        self.ledger = Ledger()
        self.listen = open_udp_socket(tuple(cfg.listen), cfg.sock_buf)
        self.listen.setblocking(False)
        self.local = self.listen.getsockname()
        self._wildcard = self.local[0] == "0.0.0.0"
        if self._wildcard:
            self.listen.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
        self.flows: dict = {}               # client address -> _Flow
        self._by_sock: dict = {}            # upstream socket -> _Flow
        self._stop = False
        self._t0 = time.monotonic_ns()
        self.errors: list = []
        self.stats = {"datagrams_in": 0, "datagrams_out": 0, "flows_refused": 0,
                      "tx_dropped": 0, "socket_errors": 0}

    # -- set-up ---------------------------------------------------------------------------------
    def now(self) -> int:
        return time.monotonic_ns() - self._t0

    def stop(self) -> None:
        """Make :meth:`run` return (safe from a signal handler)."""
        self._stop = True

    def close(self) -> None:
        for f in self.flows.values():
            f.sock.close()
        self.listen.close()

    def _injector(self, index: int, which: str, src: str, dst: str):
        if not self.spec or self.cfg.direction not in ("both", which):
            return None
        seed = self.spec.seed if self.spec.seed is not None else \
            self.cfg.seed + 2 * (index - 1) + (which == "ba")
        return FaultInjector(self.spec, seed=seed, link=f"{src}->{dst}", src=src, dst=dst,
                             ledger=self.ledger, profile=self.cfg.profile)

    def _new_flow(self, client: tuple, local_ip: str) -> _Flow | None:
        c = self.cfg
        if len(self.flows) >= c.max_flows:
            self.stats["flows_refused"] += 1
            return None
        sock = open_udp_socket((c.upstream_ip, 0), c.sock_buf)
        sock.setblocking(False)
        up = sock.getsockname()
        k = len(self._by_sock) + 1
        a, b = f"client#{k}", f"peer#{k}"
        obs = WireObserver(c.psn_memory)
        listen = (local_ip, self.local[1])
        ab = ProxyDirection("ab", a, b, (*client, *listen), (*up, *c.peer),
                            injector=self._injector(k, "ab", a, b), observer=obs,
                            profile=c.profile)
        ba = ProxyDirection("ba", b, a, (*c.peer, *up), (*listen, *client),
                            injector=self._injector(k, "ba", b, a), observer=obs,
                            profile=c.profile)
        f = _Flow(k, client, sock, ab, ba, obs)
        self.flows[client] = f
        self._by_sock[sock] = f
        return f

    # -- the loop -------------------------------------------------------------------------------
    def _recv_listen(self):
        if not self._wildcard:
            data, addr = self.listen.recvfrom(65536)
            return data, addr, self.local[0]
        data, anc, _fl, addr = self.listen.recvmsg(65536, 64)
        local_ip = self.local[0]
        for level, typ, cdata in anc:
            if level == socket.IPPROTO_IP and typ == _IP_PKTINFO and len(cdata) >= 12:
                local_ip = socket.inet_ntoa(cdata[8:12])
        return data, addr, local_ip

    def _drain(self, sock, now: int) -> int:
        n = 0
        for _ in range(self.cfg.rx_batch):
            try:
                if sock is self.listen:
                    data, addr, local_ip = self._recv_listen()
                else:
                    data, addr = sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:          # ICMP port unreachable and the like
                self._error(f"recv: {exc}")
                continue
            n += 1
            self.stats["datagrams_in"] += 1
            if sock is self.listen:
                f = self.flows.get(addr) or self._new_flow(addr, local_ip)
                if f is not None:
                    f.ab.push(data, now)
            else:
                f = self._by_sock[sock]
                if addr == tuple(self.cfg.peer):
                    f.ba.push(data, now)
                else:
                    self.stats["socket_errors"] += 1    # not the peer: not ours to forward
        return n

    def _send(self, sock, data: bytes, addr) -> None:
        try:
            sock.sendto(data, addr)
            self.stats["datagrams_out"] += 1
        except (BlockingIOError, InterruptedError):
            self.stats["tx_dropped"] += 1
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                self.stats["tx_dropped"] += 1
            else:
                self._error(f"sendto {addr[0]}:{addr[1]}: {exc}")

    def _forward(self, now: int) -> bool:
        moved = False
        peer = tuple(self.cfg.peer)
        for f in list(self.flows.values()):
            for d in f.ab.pop(now):
                self._send(f.sock, d, peer)
                moved = True
            for d in f.ba.pop(now):
                self._send(self.listen, d, f.client)
                moved = True
        return moved

    def _error(self, msg: str) -> None:
        self.stats["socket_errors"] += 1
        if len(self.errors) < 100:
            self.errors.append(msg)

    def _deadline(self) -> int | None:
        best = None
        for f in self.flows.values():
            for d in (f.ab, f.ba):
                t = d.next_deadline()
                if t is not None and (best is None or t < best):
                    best = t
        return best

    def pending(self) -> int:
        return sum(f.ab.pending() + f.ba.pending() for f in self.flows.values())

    def step(self, wait_s: float) -> bool:
        """Wait at most ``wait_s`` for datagrams (less when an injector releases one sooner),
        take them in, forward what is due.  True if anything moved."""
        now = self.now()
        t = self._deadline()
        if t is not None:
            wait_s = min(wait_s, max(0.0, (t - now) / 1e9))
        socks = [self.listen, *self._by_sock]
        try:
            ready, _, _ = select.select(socks, [], [], wait_s)
        except InterruptedError:
            ready = []
        now = self.now()
        moved = False
        for s in ready:
            moved |= self._drain(s, now) > 0
        return self._forward(self.now()) or moved

    def run(self, max_wait_s: float = 0.05) -> dict:
        """Forward until stopped (see the module doc); the report."""
        c = self.cfg
        t0 = time.monotonic()
        end = None if c.duration_s is None else t0 + c.duration_s
        stopped_by = "signal"
        self._stop = False
        while not self._stop:
            if end is not None and time.monotonic() >= end:
                stopped_by = "duration"
                break
            if c.count is not None and self.stats["datagrams_in"] >= c.count:
                stopped_by = "count"
                drain_end = time.monotonic() + c.drain_s
                while self.pending() and time.monotonic() < drain_end:
                    self.step(0.005)
                break
            wait = max_wait_s if end is None else min(max_wait_s,
                                                      max(0.0, end - time.monotonic()))
            try:
                self.step(wait)
            except ValueError:              # a socket closed under us
                break
        return self.report(stopped_by, time.monotonic() - t0)

    # -- the report -----------------------------------------------------------------------------
    def events(self) -> list:
        """Every flow's derived ``(node, event)`` pairs."""
        out = []
        for f in self.flows.values():
            out += f.observer.events
        return out

    def report(self, stopped_by: str = "signal", wall_s: float = 0.0) -> dict:
        self.ledger.resolve(self.events())
        dirs = {}
        for which in ("ab", "ba"):
            tot: dict = dict.fromkeys(STAT_KEYS, 0)
            faults: dict = {}
            for f in self.flows.values():
                d = getattr(f, which)
                for k, v in d.stats.items():
                    tot[k] = tot.get(k, 0) + v
                if d.injector is not None:
                    for k, v in d.injector.stats.items():
                        if k not in ("frames", "passed"):
                            faults[k] = faults.get(k, 0) + v
            tot["faults_applied"] = faults
            tot["faulted"] = self.cfg.direction in ("both", which) and bool(self.spec)
            dirs[which] = tot
        cfg_d = {k: v for k, v in asdict(self.cfg).items() if k != "profile"}
        cfg_d["listen"] = f"{self.cfg.listen[0]}:{self.cfg.listen[1]}"
        cfg_d["peer"] = f"{self.cfg.peer[0]}:{self.cfg.peer[1]}"
        cfg_d["faults"] = str(self.spec) if self.spec else None
        cfg_d["dialect"] = self.cfg.profile.name
        return {
            "schema": SCHEMA,
            "config": cfg_d,
            "listen": f"{self.local[0]}:{self.local[1]}",
            "peer": cfg_d["peer"],
            "stopped_by": stopped_by,
            "wall_s": round(wall_s, 6),
            "datagrams_in": self.stats["datagrams_in"],
            "datagrams_out": self.stats["datagrams_out"],
            "directions": {"ab": dict(dirs["ab"], path="client -> peer"),
                           "ba": dict(dirs["ba"], path="peer -> client")},
            "flows": [f.report() for f in self.flows.values()],
            "faults": self.ledger.report(),
            "stats": dict(self.stats),
            "errors": list(self.errors),
            "icrc_note": ICRC_NOTE + "; the proxy checks each datagram's ICRC over the "
                         "header its sender's kernel built and rewrites it for the header "
                         "the proxy's socket sends, keeping the syndrome of a corrupted one",
            "can_observe": "the ledger is resolved from retransmissions and TP responses "
                           "seen on the wire; a receiver's discards and a channel giving up "
                           "are not visible to the proxy (see wire_events)",
        }
