"""The simulator: a deterministic discrete-event loop over endpoints that follow the engine
contract (``ubpkt.stack.engine``: ``receive``, ``transmit``, ``next_deadline``,
``handle_timeout``, ``pop_events``), joined by links.

Each link direction is a chain: optional :class:`~ubpkt.sim.faults.FaultInjector`, then a link
(:class:`~ubpkt.sim.link.SimLink`, or anything following :class:`~ubpkt.sim.link.Link`: the
seam where the real data link and PHY will go), then optional :class:`~ubpkt.sim.tap.PcapTap`
at arrival.  Time is integer nanoseconds.

One *instant* (``sim.now``) is processed in passes until nothing moves: deliver every frame due
(through the taps, into ``receive``), ``handle_timeout`` for every node whose deadline has come,
``transmit(now, budget)`` for every node (frames go to the node's link, or to the one its
``route`` picks), collect events.  Then time jumps to the earliest deadline of any link, injector
or node.  Nodes and links are visited in the order they were added, so a run is a function of
its inputs and seeds.

Events are kept as ``(node, event)`` pairs in ``sim.events`` (fault records as
``(link, FaultInjected)``); :meth:`Simulator.report` resolves the fault ledger against them.
"""
from __future__ import annotations

from typing import Callable

from .faults import FaultInjector
from .ledger import Ledger
from .link import Link, LinkParams, SimLink
from .tap import PcapTap

__all__ = ["Simulator", "Direction", "Node"]


class Node:
    """An endpoint in the simulator: ``name``, ``engine``, its outgoing directions and an
    optional ``route(frame) -> peer name`` for nodes with several links."""

    def __init__(self, name: str, engine, route: Callable | None = None):
        self.name = name
        self.engine = engine
        self.route = route
        self.out: dict[str, "Direction"] = {}

    def direction_for(self, frame) -> "Direction":
        if self.route is not None:
            peer = self.route(frame)
            d = self.out.get(peer)
            if d is None:
                raise ValueError(f"{self.name}: route gave {peer!r}, not a peer")
            return d
        if len(self.out) == 1:
            return next(iter(self.out.values()))
        if not self.out:
            raise ValueError(f"{self.name} transmits but is not connected")
        raise ValueError(f"{self.name} has {len(self.out)} links: add it with route=")


class Direction:
    """One direction ``src -> dst``: injector (optional), link, tap (optional)."""

    def __init__(self, name: str, src: Node, dst: Node, link: Link,
                 faults: FaultInjector | None, tap: PcapTap | None, ledger: Ledger,
                 linktype: int):
        self.name, self.src, self.dst = name, src, dst
        self.link, self.faults, self.tap = link, faults, tap
        self.ledger = ledger
        self.linktype = linktype
        self.stats = {"sent": 0, "delivered": 0, "tail_drops": 0}

    def send(self, frame, now: int) -> None:
        self.stats["sent"] += 1
        if self.faults is None:
            self._to_link(frame, now)
        else:
            self.faults.push(frame, now)
            self._pump(now)

    def _pump(self, now: int) -> None:
        if self.faults is not None:
            for f in self.faults.pop(now):
                self._to_link(f, now)

    def _to_link(self, frame, now: int) -> None:
        if not self.link.push(frame, now):
            self.stats["tail_drops"] += 1
            self.ledger.record(now, self.name, "tail_drop", frame, linktype=self.linktype,
                               src=self.src.name, dst=self.dst.name)

    def arrivals(self, now: int) -> list:
        """Frames that reach ``dst`` by ``now`` (written to the tap)."""
        self._pump(now)
        frames = self.link.pop(now)
        if frames:
            self.stats["delivered"] += len(frames)
            if self.tap is not None:
                for f in frames:
                    self.tap.write(f, now, self.name)
        return frames

    def next_deadline(self) -> int | None:
        t = self.link.next_deadline()
        if self.faults is not None:
            u = self.faults.next_deadline()
            if u is not None and (t is None or u < t):
                t = u
        return t


class Simulator:
    """See the module doc.  ``budget``: frames a node may transmit per pass; ``seed``: seeds
    the injectors :meth:`connect` builds from specs (each direction gets ``"{seed}/{a}->{b}"``
    unless its spec names a seed); ``max_passes``: passes one instant may take before the run
    is stopped as stuck (engines bouncing frames over zero-delay links forever)."""

    def __init__(self, *, budget: int = 64, seed=0, ledger: Ledger | None = None,
                 max_passes: int = 100_000):
        self.now = 0
        self.budget = budget
        self.seed = seed
        self.max_passes = max_passes
        self.nodes: dict[str, Node] = {}
        self.directions: list[Direction] = []
        self.events: list[tuple] = []
        self.ledger = ledger if ledger is not None else Ledger()
        self.ledger.listener = self._on_fault
        self.taps: list[PcapTap] = []
        self.instants = 0

    def _on_fault(self, fault) -> None:
        self.events.append((fault.link, self.ledger.event(fault)))

    # -- building --------------------------------------------------------------------------------
    def add(self, name: str, engine, route: Callable | None = None):
        """Add an endpoint; ``route(frame) -> peer name`` when it has several links."""
        if name in self.nodes:
            raise ValueError(f"node {name!r} exists")
        self.nodes[name] = Node(name, engine, route)
        return engine

    def _node(self, x) -> Node:
        if isinstance(x, str):
            try:
                return self.nodes[x]
            except KeyError:
                raise ValueError(f"no node {x!r}") from None
        for n in self.nodes.values():
            if n.engine is x:
                return n
        name = getattr(x, "name", None)
        if not isinstance(name, str) or name in self.nodes:
            name = f"n{len(self.nodes)}"
        self.add(name, x)
        return self.nodes[name]

    def connect(self, a, b, link_params=None, faults_ab=None, faults_ba=None,
                tap: PcapTap | None = None, *, links: tuple | None = None,
                linktype: int | None = None) -> tuple[Direction, Direction]:
        """Join ``a`` and ``b`` (names or engines; engines not added yet are added) with a
        link each way.  ``link_params``: a :class:`LinkParams` or dict for both directions, or
        a pair (a->b, b->a).  ``faults_ab``/``faults_ba``: a FaultInjector or anything
        :meth:`FaultSpec.parse` takes.  ``tap``: written with both directions.  ``links``: two
        ready :class:`Link` objects instead of SimLinks (the seam for a real link)."""
        na, nb = self._node(a), self._node(b)
        if nb.name in na.out or na.name in nb.out:
            raise ValueError(f"{na.name} and {nb.name} are already connected")
        if isinstance(link_params, (tuple, list)):
            pab, pba = (LinkParams.of(p) for p in link_params)
        else:
            pab = pba = LinkParams.of(link_params)
        if linktype is None:
            linktype = pab.linktype if link_params is not None or tap is None else tap.linktype
        if tap is not None and tap.linktype != linktype:
            raise ValueError(f"the tap writes link type {tap.linktype}, the link carries "
                             f"{linktype}")
        if tap is not None and tap not in self.taps:
            self.taps.append(tap)
        out = []
        for i, (src, dst, params, faults) in enumerate(((na, nb, pab, faults_ab),
                                                       (nb, na, pba, faults_ba))):
            name = f"{src.name}->{dst.name}"
            link = links[i] if links is not None else SimLink(params)
            inj = None
            if faults is not None:
                if isinstance(faults, FaultInjector):
                    inj = faults
                else:
                    inj = FaultInjector(faults)
                    if inj.spec.seed is None:
                        inj = FaultInjector(inj.spec, seed=f"{self.seed}/{name}")
                    if not inj.spec:
                        inj = None
                if inj is not None:
                    inj.attach(link=name, src=src.name, dst=dst.name, linktype=linktype,
                               ledger=self.ledger)
            d = Direction(name, src, dst, link, inj, tap, self.ledger, linktype)
            src.out[dst.name] = d
            self.directions.append(d)
            out.append(d)
        return out[0], out[1]

    def direction(self, a: str, b: str) -> Direction:
        return self.nodes[a].out[b]

    # -- running ---------------------------------------------------------------------------------
    def _collect(self) -> None:
        ev = self.events
        for n in self.nodes.values():
            for e in n.engine.pop_events():
                ev.append((n.name, e))

    def step(self) -> bool:
        """Process the current instant until nothing moves; True if anything did."""
        now = self.now
        any_moved = False
        for _ in range(self.max_passes):
            moved = False
            for d in self.directions:
                frames = d.arrivals(now)
                if frames:
                    moved = True
                    recv = d.dst.engine.receive
                    for f in frames:
                        recv(f, now)
            self._collect()
            for n in self.nodes.values():
                t = n.engine.next_deadline()
                if t is not None and t <= now:
                    n.engine.handle_timeout(now)
            self._collect()
            for n in self.nodes.values():
                frames = n.engine.transmit(now, self.budget)
                if frames:
                    moved = True
                    for f in frames:
                        n.direction_for(f).send(f, now)
            self._collect()
            if not moved:
                self.instants += 1
                return any_moved
            any_moved = True
        raise RuntimeError(f"no progress at t={now} ns after {self.max_passes} passes")

    def next_time(self) -> int | None:
        """The earliest future time anything is due (a deadline at or before ``now`` that the
        engine did not clear counts as ``now + 1``)."""
        now = self.now
        best = None
        for d in self.directions:
            t = d.next_deadline()
            if t is not None and (best is None or t < best):
                best = t
        for n in self.nodes.values():
            t = n.engine.next_deadline()
            if t is not None and (best is None or t < best):
                best = t
        if best is not None and best <= now:
            best = now + 1
        return best

    def run(self, until_ns: int | None = None, until: Callable[[], bool] | None = None,
            max_instants: int | None = None) -> str:
        """Run from ``now``; returns why it stopped: ``"until"`` (``until()`` came true after an
        instant), ``"time"`` (the next event is after ``until_ns``; ``now`` is then
        ``until_ns``), ``"idle"`` (nothing left to do) or ``"instants"``."""
        count = 0
        while True:
            self.step()
            count += 1
            if until is not None and until():
                return "until"
            t = self.next_time()
            if t is None:
                return "idle"
            if until_ns is not None and t > until_ns:
                self.now = max(self.now, until_ns)
                return "time"
            if max_instants is not None and count >= max_instants:
                return "instants"
            self.now = t

    # -- results ---------------------------------------------------------------------------------
    def events_of(self, *types) -> list:
        """The events of the given types, ``(node, event)``, in order."""
        return [(n, e) for n, e in self.events if isinstance(e, types)]

    def report(self) -> dict:
        """Resolve the fault ledger against the events so far and report it."""
        return self.ledger.resolve(self.events).report()

    def close(self) -> None:
        """Close the taps given to :meth:`connect`."""
        for t in self.taps:
            t.close()

