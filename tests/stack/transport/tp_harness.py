"""A tiny driver for the transport tests: two channel ends, an explicit clock, a one-way delay,
and a tap that can drop, duplicate or delay any frame (scripted faults).

Frames go through real Framers (``Path()`` one way, ``Path().reverse()`` the other); the receiving
side parses each frame when it is sent, so the tap sees a TpPacket.  Time is integer ns.

Optional path models: ``rate`` (bits/s) serialises each direction's frames one after the other
(FIFO, unbounded queue, like ``ubpkt.sim.link.SimLink``), so a sender that sends more than the
link carries builds a queue and sees its round-trip time grow; ``shuffle`` puts the frames a
channel sends at one instant (a burst) on the wire in a random order (seeded by ``seed``):
persistent reordering, every burst.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from ubpkt import SPEC, encode_layers
from ubpkt.profile import TransportTuning
from ubpkt.stack.network import RTP_DATA, TPSACK, TPSACK_CC, Framer, Path
from ubpkt.stack.transport import TaSegment
from ubpkt.stack.transport.rtp import RtpChannel

# a Write's transaction headers (full BTAH + MAETAH), as the transaction layer would give them
TA = encode_layers([("ub.btah", {"taopcode": "Write", "ee_bits": 1, "ini_tassn": 1,
                                 "ini_rc_id": 3}),
                    ("ub.maetah", {"address": 0x1000, "length": 4})])
US = 1_000


def seg(i: int, last: bool = True, size: int = 8) -> TaSegment:
    """Segment number ``i``: its payload names it."""
    return TaSegment(TA, i.to_bytes(4, "big") * (size // 4), last, tag=i)


def seg_index(pkt) -> int:
    ta = bytes(pkt.ta)
    return int.from_bytes(ta[len(TA):len(TA) + 4], "big")


def kind_of(pkt) -> str:
    if pkt.tpopcode == RTP_DATA:
        return "data"
    if pkt.tpopcode in (TPSACK, TPSACK_CC):
        return "tpsack"
    return {0: "tpack", 1: "rnr", 2: "rnr", 3: "tpnak", 5: "tpack"}.get(pkt.rspst, "?")


@dataclass
class Sent:
    t: int
    dir: str        # "ab" or "ba"
    kind: str
    psn: int
    a: int
    n: int          # index among frames of this kind in this direction
    pkt: object
    fate: str = "ok"


@dataclass
class Pair:
    """Channel ``a`` (TPN 1) sends to channel ``b`` (TPN 2) and back."""

    tuning: TransportTuning = field(default_factory=TransportTuning)
    tuning_b: TransportTuning | None = None
    a_psn: int = 100
    b_psn: int = 5000
    delay: int = 1 * US
    tap: object = None          # tap(sent: Sent) -> list of extra delays ([] drop, [0] pass)
    refuse: object = None       # refuse(pkt, now) -> True: b's transaction layer says "rnr"
    gap: int | None = None      # ns between two frames a channel sends (None: no limit)
    rate: int | None = None     # link rate, bits/s: FIFO serialisation per direction (None: none)
    shuffle: bool = False       # each burst (one transmit call) goes out in a random order
    seed: int = 1

    def __post_init__(self):
        self.fa = Framer(Path(), SPEC)
        self.fb = Framer(Path().reverse(), SPEC)
        self.got_a: list = []
        self.got_b: list = []
        self.a = RtpChannel(channel_id=1, local_tpn=1, peer_tpn=2, tx_psn=self.a_psn,
                            rx_psn=self.b_psn, framer=self.fa, tuning=self.tuning,
                            deliver=self._deliver_a)
        self.b = RtpChannel(channel_id=2, local_tpn=2, peer_tpn=1, tx_psn=self.b_psn,
                            rx_psn=self.a_psn, framer=self.fb, tuning=self.tuning_b or self.tuning,
                            deliver=self._deliver_b)
        self.now = 0
        self.heap: list = []
        self._seq = 0
        self.log: list[Sent] = []
        self.counts: dict = {}
        self.events = {"a": [], "b": []}
        self._tick = {"ab": None, "ba": None}   # when each side may send its next frame
        self._busy = {"ab": 0, "ba": 0}         # end of each direction's last serialisation
        self.max_queue_ns = {"ab": 0, "ba": 0}  # the longest wait for the wire (rate)
        self._rng = random.Random(self.seed)

    def _deliver_a(self, pkt, now):
        self.got_a.append(seg_index(pkt))

    def _deliver_b(self, pkt, now):
        if self.refuse is not None and self.refuse(pkt, now):
            return "rnr"
        self.got_b.append(seg_index(pkt))
        return None

    def _send(self, direction: str, frame: bytes) -> None:
        dst, framer = (self.b, self.fb) if direction == "ab" else (self.a, self.fa)
        pkt = framer.parse(frame)
        assert pkt is not None
        kind = kind_of(pkt)
        n = self.counts.get((direction, kind), 0)
        self.counts[direction, kind] = n + 1
        s = Sent(self.now, direction, kind, pkt.psn, pkt.a, n, pkt)
        self.log.append(s)
        delays = [0] if self.tap is None else self.tap(s)
        if not delays:
            s.fate = "drop"
        t = self.now
        if self.rate and delays:
            start = max(t, self._busy[direction])
            self.max_queue_ns[direction] = max(self.max_queue_ns[direction], start - t)
            t = self._busy[direction] = start + -(-len(frame) * 8 * 1_000_000_000 // self.rate)
        for extra in delays:
            heapq.heappush(self.heap, (t + self.delay + extra, self._seq, dst, pkt))
            self._seq += 1

    def step(self) -> None:
        now = self.now
        heap = self.heap
        while heap and heap[0][0] <= now:
            _, _, dst, pkt = heapq.heappop(heap)
            dst.receive(pkt, now)
        for ch in (self.a, self.b):
            d = ch.next_deadline()
            if d is not None and d <= now:
                ch.handle_timeout(now)
        for ch, direction in ((self.a, "ab"), (self.b, "ba")):
            if self.gap is None:
                frames = ch.transmit(now)
                if self.shuffle:
                    self._rng.shuffle(frames)
                for f in frames:
                    self._send(direction, f)
                continue
            tick = self._tick[direction]
            if tick is not None and tick > now:
                continue
            frames = ch.transmit(now, 1)
            for f in frames:
                self._send(direction, f)
            self._tick[direction] = now + self.gap if frames else None
        self.events["a"] += self.a.pop_events()
        self.events["b"] += self.b.pop_events()

    def run(self, until: int = 100_000_000_000, max_steps: int = 200_000) -> None:
        for _ in range(max_steps):
            self.step()
            cands = [t for t in (self.heap[0][0] if self.heap else None,
                                 self.a.next_deadline(), self.b.next_deadline(),
                                 *self._tick.values()) if t is not None]
            if not cands:
                return
            t = min(cands)
            if t > until:
                return
            assert t > self.now, (t, self.now)
            self.now = t
        raise AssertionError("the simulation did not settle")

    # -- views --------------------------------------------------------------------------------
    def sent(self, direction: str = "ab", kind: str = "data") -> list[Sent]:
        return [s for s in self.log if s.dir == direction and s.kind == kind]

    def ev(self, side: str, cls) -> list:
        return [e for e in self.events[side] if isinstance(e, cls)]
