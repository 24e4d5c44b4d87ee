"""The stack's events, over the one engine contract of :mod:`ubpkt.engine` (UB 2.0 ch. 6-7
engines follow it, like the data-link engine of ``ubpkt.link`` and the PHY's LMSM).

An engine does no I/O and reads no clock: ``receive(frame, now)``, ``transmit(now, budget)``,
``next_deadline()``, ``handle_timeout(now)``, ``pop_events()`` (see :mod:`ubpkt.engine`).
Engines keep counters in a ``stats`` dict; the events below are for what a user or the fault
ledger must see (retransmissions, discards, errors, completions), not for every packet.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..engine import Engine, Event

__all__ = ["Engine", "Event", "Retransmitted", "Discarded", "ResponseSent", "ChannelError",
           "Delivered", "Completed", "FaultInjected"]


@dataclass(slots=True)
class Retransmitted(Event):
    """A TP packet sent again; ``reason``: ``nak`` (fast retransmit on a TPNAK), ``sack``
    (selective, from a TPSACK bitmap), ``rto`` (retransmission timeout), ``rnr`` (after the
    RNR timer) (UB 2.0 §6.4.2)."""
    channel: int
    psn: int
    reason: str


@dataclass(slots=True)
class Discarded(Event):
    """A received packet dropped on purpose; ``reason``: ``duplicate``, ``out_of_window``,
    ``bad_icrc``, ``malformed``, ``no_channel``, ``ooo`` (an out-of-order packet Go-Back-N
    with fast retransmit does not keep), ``bad_token``, ``out_of_bounds``..."""
    channel: int
    psn: int | None
    reason: str


@dataclass(slots=True)
class ResponseSent(Event):
    """A TP response sent: ``kind`` is ``tpack``, ``tpnak``, ``tpsack`` or ``rnr``, or a form
    carrying congestion information, ``tpack_cc``, ``tpnak_cc``, ``tpsack_cc`` (UB 2.0 §6.2.2)."""
    channel: int
    psn: int
    kind: str


@dataclass(slots=True)
class ChannelError(Event):
    """A TP channel gave up (retry limit exceeded, RNR retries exhausted): the transaction layer
    completes what it carried with ``status`` (UB 2.0 §6.4.2.1)."""
    channel: int
    status: str
    message: str


@dataclass(slots=True)
class Delivered(Event):
    """Transport handed a TP packet's transaction bytes up (for tracing; the hot path uses a
    callback)."""
    channel: int
    psn: int | None


@dataclass(slots=True)
class Completed(Event):
    """A work request finished (the completion queue entry): ``status`` is ``success`` or the
    error the spec names (``remote_access_error``, ``retry_exceeded``, ``rnr_retry_exceeded``,
    ``remote_abort``, ``unsupported``...)."""
    wr_id: int
    op: str
    status: str
    nbytes: int = 0


@dataclass(slots=True)
class FaultInjected(Event):
    """A fault the simulator injected (the ledger's record)."""
    fault_id: int
    kind: str
    link: str
    summary: dict
