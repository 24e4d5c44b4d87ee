"""The DLL link mode of the simulator: the network packets of two nodes carried by a pair of
:class:`~ubpkt.link.dll.DLLEngine` s over simulated flit wires (UB 2.0 ch. 4): framing into
DLLDBs, credits, ACKs, Go-Back-N link retransmission of blocks damaged by bit errors.

The engines are sans-IO; this module is their driver.  :class:`DllLinkPair` owns both engines
and both :class:`~ubpkt.sim.flitwire.FlitWire` directions and gives the simulator one
:class:`~ubpkt.sim.link.Link` per direction (``pair.ab``, ``pair.ba``: ``push`` / ``pop`` /
``next_deadline``), so it plugs into ``Simulator.connect(..., links=(pair.ab, pair.ba))``
like the ideal :class:`~ubpkt.sim.link.SimLink`.  A later PHY mode replaces the flit wires by
the PCS under the same engines.

Time runs in *slots* on a fixed grid: one slot is ``slot_flits`` flit times at the link rate.
At each slot boundary each engine takes the flits that arrived, its timers, and transmits up to
``slot_flits`` flits, which arrive one slot (their serialisation) plus the propagation delay
later.  While both engines are idle with nothing on the wires the grid is skipped (only engine
timers wake it).  Packets offered before the link reaches DLL_Normal wait in a backlog.

Named settings (no spec value applies to a simulated wire): ``rate_bps`` (default
:data:`DEFAULT_RATE_BPS`), ``slot_flits`` (:data:`DEFAULT_SLOT_FLITS`), ``retrain_ns`` (how
long the missing PHY takes to "retrain" when RETRY_REQ_SM asks, :data:`DEFAULT_RETRAIN_NS`).
"""
from __future__ import annotations

from collections import deque

from ..link.dll import DLLEngine
from ..link.dll.events import LinkError, LinkStateChanged, PacketDelivered, PhyRetrainRequested
from ..profile import SPEC, Profile
from .flitwire import FLIT, FlitWire

__all__ = ["DllLinkPair", "DEFAULT_RATE_BPS", "DEFAULT_SLOT_FLITS", "DEFAULT_RETRAIN_NS"]

#: link rate when none is given: 100 Gbit/s of flits (no coding overhead modelled)
DEFAULT_RATE_BPS = 100 * 10**9
#: flits an engine may transmit per slot (one DLLDB's worth)
DEFAULT_SLOT_FLITS = 32
#: time from a RETRAIN request to ``phy_retrained`` (no PHY in this mode)
DEFAULT_RETRAIN_NS = 1_000
#: state changes kept in the timeline (the rest are counted)
TIMELINE_MAX = 1000


class _Side:
    """One end: its engine, packets delivered to its node, packets waiting for DLL_Normal."""

    def __init__(self, name: str, engine: DLLEngine):
        self.name = name
        self.engine = engine
        self.arrived: deque = deque()       # (time, packet) delivered up, not yet popped
        self.backlog: deque = deque()       # packets offered before DLL_Normal


class _Direction:
    """The simulator's view of one direction: frames pushed at ``src`` pop out at ``dst``."""

    def __init__(self, pair: "DllLinkPair", src: _Side, dst: _Side):
        self.pair, self.src, self.dst = pair, src, dst
        self.stats = {"tx_frames": 0, "rx_frames": 0, "refused": 0}

    def push(self, frame, now: int) -> bool:
        self.pair.advance(now)
        self.stats["tx_frames"] += 1
        ok = self.pair.offer(self.src, bytes(frame), now)
        if not ok:
            self.stats["refused"] += 1
        return ok

    def pop(self, now: int) -> list:
        self.pair.advance(now)
        q = self.dst.arrived
        out = []
        while q and q[0][0] <= now:
            out.append(q.popleft()[1])
        self.stats["rx_frames"] += len(out)
        return out

    def next_deadline(self) -> int | None:
        q = self.dst.arrived
        t = self.pair.next_deadline()
        if q and (t is None or q[0][0] < t):
            t = q[0][0]
        return t


class DllLinkPair:
    """Two DLL engines joined by two flit wires (see the module doc).  ``ber``: bit error rate
    of each wire (seeded from ``seed``); ``fec_flags``: damaged flits are reported as FEC
    failures (default: in non-CRC mode, where nothing else could detect them)."""

    def __init__(self, profile: Profile = SPEC, *, names=("A", "B"), delay_ns: int = 1000,
                 rate_bps: int | None = None, ber: float = 0.0, seed=0,
                 slot_flits: int = DEFAULT_SLOT_FLITS, retrain_ns: int = DEFAULT_RETRAIN_NS,
                 fec_flags: bool | None = None, start: int = 0):
        self.profile = profile
        rate = self.rate_bps = rate_bps or DEFAULT_RATE_BPS
        self.slot_flits = slot_flits
        self.slot_ns = max(1, -(-slot_flits * FLIT * 8 * 10**9 // rate))
        self.delay_ns = delay_ns
        self.retrain_ns = retrain_ns
        if fec_flags is None:
            fec_flags = not profile.crc_mode
        a = _Side(names[0], DLLEngine(profile, name=names[0]))
        b = _Side(names[1], DLLEngine(profile, name=names[1]))
        self.sides = (a, b)
        self.wires = {a.name: FlitWire(ber, f"{seed}/{names[0]}->{names[1]}", fec_flags=fec_flags),
                      b.name: FlitWire(ber, f"{seed}/{names[1]}->{names[0]}", fec_flags=fec_flags)}
        self.ab = _Direction(self, a, b)
        self.ba = _Direction(self, b, a)
        self.now = start
        self._next_slot = start
        self._quiet = False
        self._retrain: dict = {}
        self.timeline: list = []
        self.timeline_dropped = 0
        self.errors: list = []
        self.stats = {"slots": 0, "packets_offered": 0, "packets_delivered": 0,
                      "packets_refused": 0}
        for s in self.sides:
            s.engine.link_up(start)
            self._events(s, start)

    # -- the simulator's side ----------------------------------------------------------------------
    def offer(self, side: _Side, packet: bytes, now: int) -> bool:
        self.stats["packets_offered"] += 1
        self._quiet = False
        if side.backlog or not side.engine.status_up:
            side.backlog.append(packet)
            return True
        if side.engine.send(packet, now):
            return True
        self.stats["packets_refused"] += 1
        self._events(side, now)
        return False

    def next_deadline(self) -> int | None:
        if not self._quiet:
            return self._next_slot
        ts = [s.engine.next_deadline() for s in self.sides]
        ts += [t for t in self._retrain.values()]
        ts = [t for t in ts if t is not None]
        if not ts:
            return None
        return self._grid(min(ts))

    def _grid(self, t: int) -> int:
        """The first slot boundary at or after ``t``."""
        k = -(-(t - self._next_slot) // self.slot_ns)
        return self._next_slot + max(0, k) * self.slot_ns

    def advance(self, now: int) -> None:
        """Run every slot up to ``now``."""
        if now < self.now:
            return
        self.now = now
        while True:
            if self._quiet:
                t = self.next_deadline()
                if t is None or t > now:
                    # nothing to do before ``now``: keep the grid aligned for later
                    self._next_slot = self._grid(now)
                    return
                self._next_slot = t
                self._quiet = False
            if self._next_slot > now:
                return
            self._slot(self._next_slot)
            self._next_slot += self.slot_ns

    def _slot(self, t: int) -> None:
        self.stats["slots"] += 1
        busy = False
        for s in self.sides:
            eng = s.engine
            for data, fec in self.wires[self._peer(s).name].take(t):
                eng.receive(data, t, fec)
                busy = True
            if eng.next_deadline() is not None and eng.next_deadline() <= t:
                eng.handle_timeout(t)
            due = self._retrain.get(s.name)
            if due is not None and due <= t:
                del self._retrain[s.name]
                eng.phy_retrained(t)
            if s.backlog and eng.status_up:
                while s.backlog:
                    if not eng.send(s.backlog.popleft(), t):
                        self.stats["packets_refused"] += 1
            out = eng.transmit(t, self.slot_flits)
            if out:
                busy = True
                self.wires[s.name].put(out, t + self.slot_ns + self.delay_ns)
            self._events(s, t)
        if not busy and not any(w.q for w in self.wires.values()) \
                and all(s.engine.idle() and not s.backlog for s in self.sides) \
                and all(s.engine.status_up for s in self.sides):
            self._quiet = True

    def _peer(self, s: _Side) -> _Side:
        return self.sides[1] if s is self.sides[0] else self.sides[0]

    def _events(self, s: _Side, t: int) -> None:
        for e in s.engine.pop_events():
            if isinstance(e, PacketDelivered):
                s.arrived.append((t, e.packet))
                self.stats["packets_delivered"] += 1
            elif isinstance(e, LinkStateChanged):
                if len(self.timeline) < TIMELINE_MAX:
                    self.timeline.append({"t_ns": e.at, "node": s.name, "machine": e.machine,
                                          "state": e.new, "why": e.why})
                else:
                    self.timeline_dropped += 1
            elif isinstance(e, PhyRetrainRequested):
                self._retrain[s.name] = t + self.retrain_ns
            elif isinstance(e, LinkError):
                if len(self.errors) < TIMELINE_MAX:
                    self.errors.append({"t_ns": e.at, "node": s.name, "name": e.name,
                                        "severity": e.severity, "message": e.message})

    # -- results -----------------------------------------------------------------------------------
    def report(self) -> dict:
        """The ``link`` section of a report: what the DLL did, summed over both ends."""
        def tot(key):
            return sum(s.engine.stats[key] for s in self.sides)
        wires = list(self.wires.values())
        return {
            "mode": "dll",
            "crc_mode": self.profile.crc_mode,
            "rate_bps": self.rate_bps,
            "ber": wires[0].ber,
            "flits": tot("tx_flits"),
            "bit_errors": sum(w.stats["bit_errors"] for w in wires),
            "flit_errors": sum(w.stats["flit_errors"] for w in wires),
            "crc_errors": tot("crc_errors"),
            "fec_errors": tot("fec_errors"),
            "retries": tot("retries"),
            "replayed_flits": tot("replayed_flits"),
            "crd_acks": tot("crd_acks"),
            "packets": self.stats["packets_delivered"],
            "packets_refused": self.stats["packets_refused"],
            "errors": self.errors,
            "timeline": self.timeline,
            "timeline_dropped": self.timeline_dropped,
            "per_node": {s.name: dict(s.engine.stats) for s in self.sides},
        }
