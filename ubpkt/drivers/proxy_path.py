"""One direction of a UDP man in the middle, sans-IO: datagrams in, datagrams out, with the
ICRC moved to the addresses the receiver will see (UB 2.0 §5.3.7) and an optional
:class:`~ubpkt.sim.faults.FaultInjector` in between.

Why the ICRC must move: over UBoE the ICRC covers the IPv4 and UDP headers (less ToS, TTL and
the checksums).  A UDP endpoint (:mod:`ubpkt.drivers.udp`) cannot see them and rebuilds them
from the addresses and ports it sees (:func:`~ubpkt.drivers.udp.pseudo_header`).  A proxy
changes those: the sender computed the ICRC for (sender, proxy), the receiver checks it for
(proxy, receiver).  So the proxy checks the ICRC over the header the sender's kernel built
(``inbound``: source, source port, destination, destination port) and writes the one of the
header its own socket sends (``outbound``).  It keeps the syndrome: the new ICRC is
``field ^ icrc(inbound frame) ^ icrc(outbound frame)``, which is the correct ICRC when the
incoming one was valid, and fails the receiver's check by exactly the same CRC syndrome when
it was not (a frame corrupted before the proxy stays detectably corrupted).

Faults: the injector is shown each frame as :class:`~ubpkt.drivers.udp.UdpFaults` shows it,
with UDP destination port 4792 (its filters and the ledger recognise UBoE by the port) and
the syndrome the frame arrived with; a bit it flips anywhere, header included, becomes the
syndrome the receiver finds.  A congestion mark (IPv4 ECN) is in the header the socket does
not carry: it is recorded but does not reach the receiver.

A datagram the proxy cannot parse (shorter than an RTPH and an ICRC, or a first byte that is
no TPOpcode of UB 2.0 §6.2.1 Table 6-2) is forwarded untouched and counted ``unparsed``; it
meets no fault.
"""
from __future__ import annotations

from collections import deque

from ..formats.enums import TPOPCODE
from ..profile import SPEC, Profile
from ..stack.network import _icrc_uboe
from .udp import HEADER_LEN, UB_UDP_PORT, pseudo_header
from .wire_events import WireObserver, rtph_fields

__all__ = ["ProxyDirection", "MIN_PARSED", "STAT_KEYS"]

#: an RTPH (16 bytes) and an ICRC (4): the shortest datagram the proxy parses
MIN_PARSED = 20
#: the counters of one direction
STAT_KEYS = ("datagrams_in", "datagrams_out", "bytes_in", "bytes_out", "unparsed",
             "icrc_bad_in", "icrc_rewritten", "icrc_bad_out")


def _crc(frame) -> int:
    return _icrc_uboe(memoryview(frame), len(frame) - 4)


class ProxyDirection:
    """Datagrams from ``src_node`` to ``dst_node`` (see the module doc).

    ``inbound``/``outbound``: ``(src_ip, src_port, dst_ip, dst_port)`` of the datagrams as
    they reach the proxy and as the proxy sends them.  ``injector``: a FaultInjector or None.
    ``observer``: a :class:`~ubpkt.drivers.wire_events.WireObserver` shared by both
    directions of a flow.  ``push(dgram, now)``, ``pop(now) -> [datagram]``,
    ``next_deadline()``."""

    def __init__(self, name: str, src_node: str, dst_node: str, inbound: tuple,
                 outbound: tuple, *, injector=None, observer: WireObserver | None = None,
                 profile: Profile = SPEC):
        self.name = name
        self.src_node, self.dst_node = src_node, dst_node
        self.inbound, self.outbound = tuple(inbound), tuple(outbound)
        self.injector = injector
        self.observer = observer
        self.icrc = bool(profile.icrc)
        self.order = profile.icrc_byteorder
        self._canon = (outbound[0], outbound[1], outbound[2], UB_UDP_PORT)
        self._out: deque = deque()
        self.stats = dict.fromkeys(STAT_KEYS, 0)

    # -- in ---------------------------------------------------------------------------------------
    def push(self, dgram, now: int) -> None:
        st = self.stats
        st["datagrams_in"] += 1
        st["bytes_in"] += len(dgram)
        n = len(dgram)
        if n < MIN_PARSED or (dgram[0] & 0x7F) not in TPOPCODE:
            st["unparsed"] += 1
            self._out.append((bytes(dgram), None))
            return
        syndrome = 0
        if self.icrc:
            frame = pseudo_header(*self.inbound, n) + bytes(dgram)
            syndrome = int.from_bytes(frame[-4:], self.order) ^ _crc(frame)
            if syndrome:
                st["icrc_bad_in"] += 1
        if self.observer is not None and not syndrome:
            self.observer.ingress(self.src_node, rtph_fields(dgram), now)
        if self.injector is None:
            self._out.append((self._rewrite(dgram, syndrome), syndrome))
            return
        canon = bytearray(pseudo_header(*self._canon, n))
        canon += dgram
        if self.icrc:
            canon[-4:] = (_crc(canon) ^ syndrome).to_bytes(4, self.order)
        self.injector.push(bytes(canon), now)

    def _rewrite(self, dgram, syndrome: int) -> bytes:
        """``dgram`` with the ICRC of the outbound header, the syndrome kept."""
        if not self.icrc:
            return bytes(dgram)
        out = bytearray(pseudo_header(*self.outbound, len(dgram)))
        out += dgram
        out[-4:] = (_crc(out) ^ syndrome).to_bytes(4, self.order)
        self.stats["icrc_rewritten"] += 1
        return bytes(out[HEADER_LEN:])

    # -- out --------------------------------------------------------------------------------------
    def pop(self, now: int) -> list:
        """The datagrams to send by ``now``."""
        out = []
        for dgram, syndrome in self._out:
            out.append(dgram)
            if syndrome is not None:            # parsed
                self._observe_out(dgram, syndrome, now)
        self._out.clear()
        if self.injector is not None:
            for f in self.injector.pop(now):
                dgram = bytes(f[HEADER_LEN:])
                syndrome = 0
                if self.icrc:
                    syndrome = int.from_bytes(f[-4:], self.order) ^ _crc(f)
                    dgram = self._rewrite(dgram, syndrome)
                out.append(dgram)
                self._observe_out(dgram, syndrome, now)
        st = self.stats
        st["datagrams_out"] += len(out)
        st["bytes_out"] += sum(len(d) for d in out)
        return out

    def _observe_out(self, dgram, syndrome: int, now: int) -> None:
        """A parsed datagram leaves: one the receiver will accept (no syndrome) may be a TP
        response that steers the data sender."""
        if syndrome:
            self.stats["icrc_bad_out"] += 1
        elif self.observer is not None:
            self.observer.egress(self.dst_node, rtph_fields(dgram), now)

    def next_deadline(self) -> int | None:
        if self._out:
            return 0
        return self.injector.next_deadline() if self.injector is not None else None

    def pending(self) -> int:
        """Datagrams inside (queued, delayed or held by the injector)."""
        return len(self._out) + (self.injector.pending() if self.injector is not None else 0)
