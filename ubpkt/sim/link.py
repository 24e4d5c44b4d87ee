"""One direction of a simulated link: propagation delay, serialisation at a rate, a tail-drop
queue.  Sans-IO and deterministic: time is integer nanoseconds passed in by the driver.

The :class:`Link` protocol is what the simulator drives (``push``, ``pop``, ``next_deadline``);
:class:`SimLink` is the ideal wire.  The real data link and PHY (``ubpkt.link``/``ubpkt.phy``)
can take its place later by following the same three calls.

Timing of :class:`SimLink` (one frame of ``n`` bytes pushed at ``now``)::

    start   = max(now, end of the previous frame's serialisation)
    done    = start + ceil((n + overhead) * 8 * 1e9 / rate)      (done = start without a rate)
    arrival = done + delay

The *queue* holds the frames waiting for the transmitter (pushed, serialisation not yet
started at ``now``); the frame being serialised is on the wire, not in the queue.  A push that
would take the queue over ``queue_frames`` frames or ``queue_bytes`` bytes is dropped (tail
drop, counted in ``stats["tail_drops"]``) and ``push`` returns False.  Without a rate nothing
ever waits, so there is no queue.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..record import LINKTYPE_ETHERNET

__all__ = ["Link", "LinkParams", "SimLink", "parse_time", "parse_rate"]


@runtime_checkable
class Link(Protocol):
    """One direction of a link, as the simulator drives it."""

    def push(self, frame, now: int) -> bool:
        """Offer ``frame`` at ``now``; False if the link dropped it (queue full)."""

    def pop(self, now: int) -> list:
        """The frames whose arrival time is ``now`` or earlier, in arrival order."""

    def next_deadline(self) -> int | None:
        """The next arrival time, or None when nothing is in flight."""


_TIME_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_RATE_UNITS = {"": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9, "t": 10 ** 12}


def parse_time(value) -> int:
    """Nanoseconds from an int/float (ns) or a string with an optional unit: ``1500``,
    ``"1.5us"``, ``"2ms"``, ``"1s"``, ``"250ns"``."""
    if isinstance(value, (int, float)):
        return int(round(value))
    s = str(value).strip().lower()
    for unit in sorted(_TIME_UNITS, key=len, reverse=True):
        if s.endswith(unit):
            num = s[:-len(unit)].strip()
            try:
                return int(round(float(num) * _TIME_UNITS[unit]))
            except ValueError:
                break
    try:
        return int(s, 0) if s.isdigit() or s.startswith("0x") else int(round(float(s)))
    except ValueError:
        raise ValueError(f"not a time: {value!r} (ns, or a number with ns/us/ms/s)") from None


def parse_rate(value) -> int | None:
    """Bits per second from a number or a string: ``"10G"``, ``"10Gbit"``, ``"100Mbps"``,
    ``"1e9"``, ``"25gbit/s"``.  None, 0 or ``"inf"`` mean no rate limit."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value) or None
    s = str(value).strip().lower().replace(" ", "")
    if s in ("", "0", "inf", "none"):
        return None
    for suffix in ("bit/s", "bits/s", "bps", "bit", "b/s"):
        if s.endswith(suffix):
            s = s[:-len(suffix)]
            break
    mult = 1
    if s and s[-1] in _RATE_UNITS and not s[-1].isdigit():
        mult = _RATE_UNITS[s[-1]]
        s = s[:-1]
    try:
        rate = int(round(float(s) * mult))
    except ValueError:
        raise ValueError(f"not a rate: {value!r} (bits/s, e.g. 10G, 100Mbit)") from None
    if rate < 0:
        raise ValueError(f"negative rate {value!r}")
    return rate or None


@dataclass
class LinkParams:
    """A link direction's properties.  ``delay``: propagation delay (ns); ``rate``: bits/s (None:
    infinite, no serialisation delay); ``queue_frames``/``queue_bytes``: the transmit queue's
    limit (None: unbounded); ``overhead``: bytes added to every frame for the serialisation time
    only (e.g. 20 for an Ethernet preamble and inter-frame gap); ``linktype``: the pcap link
    type of the frames (1 UBoE, 148 native UB), used by taps and fault filters."""
    delay: int = 0
    rate: int | None = None
    queue_frames: int | None = None
    queue_bytes: int | None = None
    overhead: int = 0
    linktype: int = LINKTYPE_ETHERNET

    @classmethod
    def of(cls, value) -> "LinkParams":
        """A LinkParams from a LinkParams, a dict (times and rates may be strings) or None."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            d = dict(value)
            if "delay" in d:
                d["delay"] = parse_time(d["delay"])
            if "rate" in d:
                d["rate"] = parse_rate(d["rate"])
            return cls(**d)
        raise TypeError(f"link parameters: {value!r}")

    def serialisation(self, nbytes: int) -> int:
        """Nanoseconds to put ``nbytes`` on the wire (rounded up)."""
        if not self.rate:
            return 0
        return -(-(nbytes + self.overhead) * 8 * 1_000_000_000 // self.rate)


class SimLink:
    """One direction of an ideal link (see the module doc).  ``stats``: ``tx_frames``,
    ``tx_bytes``, ``tail_drops``, ``tail_drop_bytes``, ``rx_frames``, ``max_queue``."""

    def __init__(self, params: LinkParams | dict | None = None, **kw):
        p = LinkParams.of(params)
        if kw:
            p = LinkParams.of({**p.__dict__, **kw})
        if p.delay < 0:
            raise ValueError("negative delay")
        self.params = p
        self._busy_until = 0            # end of the last serialisation
        self._waiting: deque = deque()  # (start time, nbytes): queued, not yet serialising
        self._qbytes = 0
        self._flight: deque = deque()   # (arrival time, frame), arrival times non-decreasing
        self.stats = {"tx_frames": 0, "tx_bytes": 0, "tail_drops": 0, "tail_drop_bytes": 0,
                      "rx_frames": 0, "max_queue": 0}

    def queue_len(self, now: int) -> tuple[int, int]:
        """(frames, bytes) waiting for the transmitter at ``now``."""
        self._drain(now)
        return len(self._waiting), self._qbytes

    def _drain(self, now: int) -> None:
        w = self._waiting
        while w and w[0][0] <= now:
            self._qbytes -= w.popleft()[1]

    def push(self, frame, now: int) -> bool:
        p = self.params
        n = len(frame)
        start = self._busy_until if self._busy_until > now else now
        if start > now:                 # it would wait: the queue limits apply
            self._drain(now)
            if ((p.queue_frames is not None and len(self._waiting) + 1 > p.queue_frames)
                    or (p.queue_bytes is not None and self._qbytes + n > p.queue_bytes)):
                self.stats["tail_drops"] += 1
                self.stats["tail_drop_bytes"] += n
                return False
            self._waiting.append((start, n))
            self._qbytes += n
            if len(self._waiting) > self.stats["max_queue"]:
                self.stats["max_queue"] = len(self._waiting)
        done = start + p.serialisation(n)
        self._busy_until = done
        self._flight.append((done + p.delay, frame))
        self.stats["tx_frames"] += 1
        self.stats["tx_bytes"] += n
        return True

    def pop(self, now: int) -> list:
        f = self._flight
        out = []
        while f and f[0][0] <= now:
            out.append(f.popleft()[1])
        self.stats["rx_frames"] += len(out)
        return out

    def next_deadline(self) -> int | None:
        return self._flight[0][0] if self._flight else None

    def in_flight(self) -> int:
        """Frames pushed and not yet popped."""
        return len(self._flight)
