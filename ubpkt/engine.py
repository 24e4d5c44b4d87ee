"""The one engine contract of ubpkt: the PHY link management state machine (``ubpkt.phy``), the
data-link engine (``ubpkt.link``) and the stack's transport and transaction engines
(``ubpkt.stack``) all follow it.

An engine is sans-IO: it does no I/O and reads no clock.  Time is an integer number of
nanoseconds passed in by the caller (a simulated clock in tests and ``ubpkt loopback``, the
wall clock in a socket driver).  Bytes and events go in; bytes, events and one deadline come
out::

    eng.receive(data, now)             # what arrived from below (frame, flits, lane units)
    out = eng.transmit(now, budget)    # what it sends now, at most ``budget`` units
    t = eng.next_deadline()            # the earliest time it needs handle_timeout, or None
    eng.handle_timeout(now)            # timers that expired at or before ``now``
    events = eng.pop_events()          # what happened (typed :class:`Event`\\ s), oldest first

Drivers (simulated links, sockets, pcap files) are thin loops around these five calls.  Engines
keep counters in a ``stats`` dict; events are what a user or the fault ledger must see, not
every unit moved.

Engines with states declare them as an :class:`enum.Enum` and their legal moves as a
:class:`Transitions` table (state -> states it may enter), like h11's state tables: a move the
table does not list is a bug in the engine, and :meth:`Transitions.move` says so at once.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol, runtime_checkable

__all__ = ["Engine", "Event", "StateChanged", "Transitions", "IllegalTransition"]


@runtime_checkable
class Engine(Protocol):
    def receive(self, data, now: int): ...

    def transmit(self, now: int, budget: int = 1 << 30): ...

    def next_deadline(self) -> int | None: ...

    def handle_timeout(self, now: int): ...

    def pop_events(self) -> list: ...


@dataclass(slots=True)
class Event:
    """Something an engine reports; ``at``: the time (ns) the engine saw it."""
    at: int


@dataclass(slots=True)
class StateChanged(Event):
    """A state machine entered ``new`` from ``old`` (the names of the states); ``why``: what
    caused it (a received unit, a timer, a request from above)."""
    machine: str
    old: str
    new: str
    why: str = ""


class IllegalTransition(RuntimeError):
    """An engine tried a move its transition table does not list (an engine bug, never a
    consequence of input: input that calls for no move leaves the state as it is)."""


class Transitions:
    """A state table: ``table[state]`` is the set of states ``state`` may move to.  Every state
    of ``states`` must have an entry (an empty one for a final state)."""

    def __init__(self, machine: str, states: type[enum.Enum],
                 table: Mapping[enum.Enum, Iterable[enum.Enum]]):
        missing = [s.name for s in states if s not in table]
        if missing:
            raise ValueError(f"{machine}: no transitions listed for {missing}")
        self.machine = machine
        self.states = states
        self.table = {s: frozenset(table[s]) for s in states}

    def allowed(self, old: enum.Enum, new: enum.Enum) -> bool:
        return new in self.table[old]

    def move(self, old: enum.Enum, new: enum.Enum, at: int, why: str = "") -> StateChanged:
        """Check ``old -> new`` and return the event that records it."""
        if new not in self.table[old]:
            raise IllegalTransition(f"{self.machine}: {old.name} -> {new.name} is not a "
                                    f"listed transition ({why or 'no cause given'})")
        return StateChanged(at, self.machine, old.name, new.name, why)

    def reachable(self, start: enum.Enum) -> set:
        """States reachable from ``start`` (for tests: no orphan state)."""
        seen, todo = {start}, [start]
        while todo:
            for n in self.table[todo.pop()]:
                if n not in seen:
                    seen.add(n)
                    todo.append(n)
        return seen
