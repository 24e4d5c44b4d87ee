"""The transport modes without PSNs or responses: UTP, CTP and TP bypass share this engine.

Nothing is acknowledged or resent; a lost packet is simply absent (UTP, UB 2.0 §6.3.3) or left to
the link layer's retransmission (CTP, §6.3.2; TP bypass, CFG 9, App B).  ``send`` queues,
``transmit`` builds one frame per segment, ``receive`` hands the transaction bytes up through
``deliver(pkt, now)``; a ``"rnr"`` answer drops the packet (there is no response to carry it)
and is counted.  No timers.
"""
from __future__ import annotations

from collections import deque

from ..engine import Discarded
from ..network import TpPacket
from . import TaSegment

__all__ = ["DatagramChannel"]


class DatagramChannel:
    """Base of :class:`~.utp.UtpChannel`, :class:`~.ctp.CtpChannel` and
    :class:`~.bypass.BypassChannel`; ``mode`` names the TpPacket mode it takes, ``_build`` the
    Framer method that makes its frames."""

    mode = ""
    _build = ""

    def __init__(self, *, channel_id: int, framer, deliver, tuning=None):
        self.channel = channel_id
        self.framer = framer
        self.tuning = tuning
        self._deliver = deliver
        self._make = getattr(framer, self._build)
        self._queue: deque = deque()
        self._events: list = []
        self.stats = {"tx_packets": 0, "tx_bytes": 0, "rx_packets": 0, "rx_bytes": 0,
                      "rx_refused": 0, "wrong_mode": 0}

    def send(self, seg: TaSegment) -> None:
        self._queue.append(seg)

    def backlog(self) -> int:
        return len(self._queue)

    def idle(self) -> bool:
        return not self._queue

    def next_deadline(self) -> None:
        return None

    def handle_timeout(self, now: int) -> None:
        return None

    def pop_events(self) -> list:
        ev, self._events = self._events, []
        return ev

    def transmit(self, now: int, budget: int = 1 << 30) -> list:
        q = self._queue
        out: list = []
        make = self._make
        nbytes = 0
        while q and len(out) < budget:
            seg = q.popleft()
            out.append(make(seg.ta, seg.payload))
            nbytes += len(seg.payload)
        if out:
            self.stats["tx_packets"] += len(out)
            self.stats["tx_bytes"] += nbytes
        return out

    def receive(self, pkt, now: int) -> None:
        if type(pkt) is not TpPacket:
            pkt = self.framer.parse(pkt)
            if pkt is None:
                self._events.append(Discarded(now, self.channel, None, "bad_icrc"))
                return
        st = self.stats
        if pkt.mode != self.mode:
            st["wrong_mode"] += 1
            self._events.append(Discarded(now, self.channel, None, "malformed"))
            return
        if self._deliver(pkt, now) is not None:
            st["rx_refused"] += 1
            self._events.append(Discarded(now, self.channel, None, "rnr"))
            return
        st["rx_packets"] += 1
        st["rx_bytes"] += len(pkt.ta)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(channel={self.channel}, queued={len(self._queue)})"
