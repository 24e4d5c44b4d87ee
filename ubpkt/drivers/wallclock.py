"""The transport-independent half of a wall-clock driver: engines of the reference stack
(:mod:`ubpkt.stack.engine` contract) run on integer nanoseconds from :func:`time.monotonic_ns`,
each behind a *peer* (a remote address and the engine that talks to it), with pacing, a fault
injector on each peer's send path, and counters.

A subclass owns the socket: it reads what arrived (:meth:`WallClockDriver._receive`, which
hands each frame that passed its filters and the ICRC check to :meth:`_dispatch`), says what of a
frame goes on the wire (:meth:`_wire`: the UDP driver slices the Ethernet/IPv4/UDP header off,
the raw Ethernet driver sends the frame as it is) and sends one queued item (:meth:`_xmit`).
Everything else is here once: peer lookup and creation (``accept``), per-peer receive rate
limits, timers, transmit budgets and backlog, the ``pps`` token bucket, events, the loop.

:func:`run_drivers` runs several drivers in one thread on one clock (``ubpkt loopback
--driver veth``: both endpoints, each on its own socket in its own network namespace);
:meth:`WallClockDriver.run` is that loop with one driver.
"""
from __future__ import annotations

import errno
import select
import time
from typing import Callable

from ..profile import SPEC, Profile
from ..stack.engine import Discarded
# the UBoE ICRC over a whole frame, the Framer's own routine (masks from the field declarations)
from ..stack.network import _icrc_uboe

__all__ = ["WallClockDriver", "Peer", "run_drivers"]


class Peer:
    """A remote address (a key the driver chooses: ``(ip, port)`` for UDP, ``(mac, ip, port)``
    for raw Ethernet) and the engine that talks to it."""

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


class WallClockDriver:
    """Engines on the wall clock over one socket (see the module doc; the socket is the
    subclass's ``sock``).

    ``icrc``: ``check`` (a frame whose ICRC does not match is dropped, counted ``bad_icrc``) or
    ``ignore`` (counted ``icrc_ignored``, the trailer fixed and the frame handed on).
    ``profile``: the ICRC byte order and whether there is an ICRC at all.  ``budget``: frames an
    engine may transmit per tick.  ``pps``: frames per second sent at most (None: no limit beyond
    the budget).  ``accept(driver, addr, local_ip, frame, now) -> engine | None``: called for a
    frame from an address that is no peer yet (None: dropped, counted ``unknown_source``).
    ``max_peers``: at most this many peers; a new one replaces the least recently active idle
    peer, and a peer whose engine says ``closed`` (a session whose channel died) is made anew by
    ``accept``.  ``rx_pps``: frames per second taken from one peer at most (a burst of up to one
    second's worth); the rest is dropped, counted ``rx_rate_limited``.  ``keep_events``: keep
    every engine event in :attr:`events` as ``(peer name, event)`` (the fault ledger needs them);
    otherwise only count them by type in ``stats``.  ``backlog``: no engine transmits while
    more than this many frames wait for the kernel (default 4 x budget).  ``t0``: the clock's
    origin in ``monotonic_ns`` (drivers run together share one).  ``tap``: a
    :class:`~ubpkt.sim.tap.PcapTap` given every frame sent and every frame received that passed
    the ICRC check, whole (with the Ethernet/IPv4/UDP header the ICRC was checked over)."""

    #: the subclass's socket (select waits on it)
    sock = None
    #: the node name of the frames the driver itself drops (``Discarded`` events: a bad ICRC,
    #: a runt); a driver serving one endpoint takes that endpoint's name, so the fault ledger
    #: matches a corruption to the receiver that caught it
    node = "driver"

    def __init__(self, *, icrc: str = "check", profile: Profile = SPEC, budget: int = 64,
                 rx_batch: int = 256, pps: float | None = None, accept: Callable | None = None,
                 max_peers: int = 64, keep_events: bool = True, backlog: int | None = None,
                 rx_pps: float | None = None, t0: int | None = None, tap=None):
        if icrc not in ("check", "ignore"):
            raise ValueError("icrc: check or ignore")
        self.icrc = icrc
        self.profile = profile
        self.budget = budget
        self.rx_batch = rx_batch
        self.pps = pps
        self.accept = accept
        self.max_peers = max_peers
        self.keep_events = keep_events
        self.rx_pps = rx_pps
        self.tap = tap
        self.backlog = backlog if backlog is not None else 4 * budget
        self.peers: dict[tuple, Peer] = {}
        self.events: list = []
        self.errors: list[str] = []
        self._outq: list = []           # [wire bytes, addr]
        self._outi = 0
        self._tokens = float(budget)
        self._tok_t = 0
        self._stop = False
        self._t0 = time.monotonic_ns() if t0 is None else t0
        self.stats = {"rx_datagrams": 0, "tx_datagrams": 0, "rx_bytes": 0, "tx_bytes": 0,
                      "bad_icrc": 0, "icrc_ignored": 0, "runt": 0, "unknown_source": 0,
                      "peers_refused": 0, "peers_evicted": 0, "engine_errors": 0,
                      "tx_errors": 0, "tx_blocked": 0, "rx_rate_limited": 0, "events": {}}

    # -- set-up ---------------------------------------------------------------------------------
    def now(self) -> int:
        """Nanoseconds since the driver started (the engines' clock)."""
        return time.monotonic_ns() - self._t0

    def _wrap_faults(self, injector):
        """The fault injector as this driver's send path needs it (default: as it is)."""
        return injector

    def peer_name(self, addr: tuple) -> str:
        return ":".join(str(x) for x in addr)

    def add_peer(self, addr: tuple, engine, *, name: str = "peer", faults=None) -> Peer:
        """Talk to ``addr`` with ``engine``; ``faults``: a FaultInjector on its send path."""
        if faults is not None:
            faults = self._wrap_faults(faults)
        p = Peer(tuple(addr), name, engine, faults)
        p.last_active = p.tok_t = self.now()
        p.tokens = float(self.rx_pps or 0)
        self.peers[p.addr] = p
        return p

    def stop(self) -> None:
        """Make :meth:`run` return (safe from a signal handler)."""
        self._stop = True

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    # -- receive: the subclass reads, filters and calls _check_icrc and _dispatch ------------------
    def _receive(self, now: int) -> int:
        raise NotImplementedError

    def _check_icrc(self, frame: bytearray, now: int, l3: int = 14) -> bool:
        """The UBoE ICRC of ``frame`` (IPv4 at byte ``l3``), UB 2.0 §5.3.7: False when the frame
        must be dropped (``check``); under ``ignore`` a mismatch is counted and the trailer
        fixed."""
        if not self.profile.icrc:
            return True
        order = self.profile.icrc_byteorder
        end = len(frame) - 4
        calc = _icrc_uboe(memoryview(frame), end, l3)
        if calc == int.from_bytes(frame[end:], order):
            return True
        if self.icrc == "check":
            self.stats["bad_icrc"] += 1
            self._discard(now, "bad_icrc")
            return False
        self.stats["icrc_ignored"] += 1
        frame[end:] = calc.to_bytes(4, order)
        return True

    def _dispatch(self, addr: tuple, local_ip: str, frame, now: int) -> None:
        """Hand a received frame to the peer of ``addr`` (made by ``accept`` when new)."""
        st = self.stats
        if self.tap is not None:
            self.tap.write(frame, self.now())
        peer = self.peers.get(addr)
        if peer is not None and getattr(peer.engine, "closed", False):
            del self.peers[addr]
            peer = None
        if peer is None:
            peer = self._new_peer(addr, local_ip, frame, now)
            if peer is None:
                return
        if self.rx_pps:
            peer.tokens = min(self.rx_pps, peer.tokens + (now - peer.tok_t) * self.rx_pps / 1e9)
            peer.tok_t = now
            if peer.tokens < 1:
                st["rx_rate_limited"] += 1
                return
            peer.tokens -= 1
        peer.last_active = now
        peer.stats["rx_datagrams"] += 1
        try:
            peer.engine.receive(frame, now)
        except Exception as exc:    # an engine must never take the driver down
            st["engine_errors"] += 1
            self._error(f"{peer.name}: receive: {type(exc).__name__}: {exc}")

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
        return self.add_peer(addr, eng, name=self.peer_name(addr))

    def _discard(self, now: int, reason: str) -> None:
        if self.keep_events:
            self.events.append((self.node, Discarded(now, -1, None, reason)))

    def _error(self, msg: str) -> None:
        if len(self.errors) < 100:
            self.errors.append(msg)

    # -- transmit -------------------------------------------------------------------------------
    def _wire(self, frame):
        """What of an engine's frame goes on the wire."""
        return frame

    def _xmit(self, data, addr) -> None:
        """Send one queued item (raises BlockingIOError / OSError like ``socket.send``)."""
        raise NotImplementedError

    def _queue(self, peer: Peer, frame) -> None:
        if self.tap is not None:
            self.tap.write(frame, self.now())
        self._outq.append((self._wire(frame), peer.addr))
        peer.stats["tx_datagrams"] += 1

    def _flush(self, now: int) -> bool:
        """Send what is queued (pacing allowing); True if the socket would block."""
        q = self._outq
        i = self._outi
        st = self.stats
        xmit = self._xmit
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
            data, addr = q[i]
            try:
                xmit(data, addr)
            except (BlockingIOError, InterruptedError):
                st["tx_blocked"] += 1
                blocked = True
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    st["tx_blocked"] += 1
                    blocked = True
                    break
                st["tx_errors"] += 1        # EMSGSIZE (MTU below the frame), unreachable...
                self._error(f"send to {self.peer_name(addr)}: {exc}")
                i += 1
                continue
            st["tx_datagrams"] += 1
            st["tx_bytes"] += len(data)
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
        """Frames queued but not yet handed to the kernel."""
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
        return run_drivers([self], until, timeout_s, max_wait_s)

    def report(self) -> dict:
        """The driver's counters, for a command's report."""
        st = dict(self.stats)
        st["events"] = dict(st["events"])
        return {"icrc": self.icrc, "pps": self.pps, "rx_pps": self.rx_pps,
                "budget": self.budget, "stats": st, "errors": list(self.errors)}


def run_drivers(drivers, until: Callable[[], bool] | None = None,
                timeout_s: float | None = None, max_wait_s: float = 0.05) -> str:
    """Run ``drivers`` in this thread until ``until()`` is true (``"until"``), ``timeout_s``
    seconds have passed (``"timeout"``) or one of them was stopped (``"stopped"``): each tick
    serves every driver, then one ``select`` waits on all their sockets until the earliest
    deadline."""
    ds = list(drivers)
    for d in ds:
        d._stop = False
    clock = ds[0]
    end = None if timeout_s is None else clock.now() + int(timeout_s * 1e9)
    while not any(d._stop for d in ds):
        moved = False
        for d in ds:
            if d.tick(d.now()):
                moved = True
        if until is not None and until():
            return "until"
        now = clock.now()
        if end is not None and now >= end:
            return "timeout"
        if moved and not any(d._outq for d in ds):
            continue
        wait = max_wait_s
        wlist = []
        for d in ds:
            t = d.next_deadline()
            if t is not None:
                wait = min(wait, max(0.0, (t - d.now()) / 1e9))
            if d.pending():
                if d.pps and d._tokens < 1:
                    wait = min(wait, (1 - d._tokens) / d.pps)
                else:
                    wlist.append(d)
        if end is not None:
            wait = min(wait, max(0.0, (end - now) / 1e9))
        if moved and wlist:
            wait = 0.0
        try:
            select.select(ds, wlist, [], wait)
        except InterruptedError:
            pass
        except (ValueError, OSError):       # a socket was closed under us
            return "stopped"
    return "stopped"
