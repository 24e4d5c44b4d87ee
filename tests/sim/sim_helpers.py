"""Tiny engines for the simulator tests: a source of numbered frames, a sink that counts, and a
toy Go-Back-N sender/receiver pair (RTO only, cumulative TPACKs) built on the real Framer so the
fault filters and the ledger see real UB frames."""
from __future__ import annotations

from ubpkt import encode_layers
from ubpkt.stack.engine import ChannelError, Discarded, ResponseSent, Retransmitted
from ubpkt.stack.network import TPACK, Framer, Path

MOD = 1 << 24


def write_ta(tassn: int = 1) -> bytes:
    return encode_layers([("ub.btah", {"taopcode": "Write", "ee_bits": 1, "ini_tassn": tassn,
                                       "ini_rc_id": 3}),
                          ("ub.maetah", {"address": 0x1000, "length": 4})])


def taack_ta(tassn: int = 1) -> bytes:
    return encode_layers([("ub.atah", {"taopcode": "TAACK", "ini_tassn": tassn})])


class Source:
    """Sends ``frames`` (bytes), one per ``interval`` ns from ``start`` (all at once if 0)."""

    def __init__(self, frames, start: int = 0, interval: int = 0):
        self.frames = list(frames)
        self.start, self.interval = start, interval
        self.sent = 0
        self.received = []

    def _due(self, i):
        return self.start + i * self.interval

    def receive(self, data, now):
        self.received.append((now, bytes(data)))

    def transmit(self, now, budget=1 << 30):
        out = []
        while self.sent < len(self.frames) and self._due(self.sent) <= now and len(out) < budget:
            out.append(self.frames[self.sent])
            self.sent += 1
        return out

    def next_deadline(self):
        return self._due(self.sent) if self.sent < len(self.frames) else None

    def handle_timeout(self, now):
        pass

    def pop_events(self):
        return []


class Sink:
    """Counts what arrives: ``received`` is a list of (time, frame)."""

    def __init__(self):
        self.received = []

    def receive(self, data, now):
        self.received.append((now, bytes(data)))

    def transmit(self, now, budget=1 << 30):
        return []

    def next_deadline(self):
        return None

    def handle_timeout(self, now):
        pass

    def pop_events(self):
        return []


class GbnSender:
    """Sends ``n`` RTP data packets (window ``window``), retransmits from the oldest unacked one
    on the retransmission timeout; gives up after ``retries`` timeouts in a row."""

    def __init__(self, framer: Framer, n: int, *, local=5, peer=7, start_psn=0, window=8,
                 rto=20_000, retries=8, payload=b"0123456789abcdef"):
        self.fr, self.n = framer, n
        self.local, self.peer, self.start = local, peer, start_psn
        self.window, self.rto, self.retries = window, rto, retries
        self.payload = payload
        self.base = self.next = 0
        self.timer = None
        self.tries = 0
        self.resend: list = []
        self.events: list = []
        self.failed = False

    def psn(self, i):
        return (self.start + i) % MOD

    def frame(self, i):
        return self.fr.rtp_data(self.local, self.peer, self.psn(i), write_ta(i + 1),
                                self.payload, last=int(i == self.n - 1))

    @property
    def done(self):
        return self.base >= self.n or self.failed

    def transmit(self, now, budget=1 << 30):
        out = []
        if self.failed:
            return out
        while self.resend and len(out) < budget:
            i = self.resend.pop(0)
            out.append(self.frame(i))
            self.events.append(Retransmitted(now, self.local, self.psn(i), "rto"))
        while self.next < self.n and self.next < self.base + self.window and len(out) < budget:
            out.append(self.frame(self.next))
            self.next += 1
        if out and self.timer is None:
            self.timer = now + self.rto
        return out

    def receive(self, data, now):
        p = self.fr.parse(data)
        if p is None:
            self.events.append(Discarded(now, self.local, None, "bad_icrc"))
            return
        if p.tpopcode != TPACK or p.dsttpn != self.local:
            return
        i = (p.psn - self.start) % MOD
        if self.base <= i < self.next:
            self.base = i + 1
            self.tries = 0
            self.resend = [j for j in self.resend if j >= self.base]
            self.timer = now + self.rto if self.base < self.next else None

    def next_deadline(self):
        return self.timer

    def handle_timeout(self, now):
        if self.timer is None or now < self.timer:
            return
        self.tries += 1
        if self.tries > self.retries:
            self.failed = True
            self.timer = None
            self.events.append(ChannelError(now, self.local, "retry_exceeded",
                                            "retransmission retries exhausted"))
            return
        self.resend = list(range(self.base, self.next))
        self.timer = now + self.rto

    def pop_events(self):
        ev, self.events = self.events, []
        return ev


class GbnReceiver:
    """Accepts packets in order, acknowledges each arrival with a cumulative TPACK; keeps the
    TAH's TASSNs of what it delivered."""

    def __init__(self, framer: Framer, *, local=7, peer=5, start_psn=0):
        self.fr = framer
        self.local, self.peer, self.start = local, peer, start_psn
        self.expected = 0
        self.delivered: list = []
        self.acks: list = []
        self.events: list = []

    def receive(self, data, now):
        p = self.fr.parse(data)
        if p is None:
            self.events.append(Discarded(now, self.local, None, "bad_icrc"))
            return
        if p.dsttpn != self.local:
            self.events.append(Discarded(now, self.local, p.psn, "no_channel"))
            return
        i = (p.psn - self.start) % MOD
        if i == self.expected:
            self.delivered.append(bytes(p.ta))
            self.expected += 1
        elif i < self.expected:
            self.events.append(Discarded(now, self.local, p.psn, "duplicate"))
        else:
            self.events.append(Discarded(now, self.local, p.psn, "ooo"))
        if self.expected:
            self.acks.append((self.start + self.expected - 1) % MOD)

    def transmit(self, now, budget=1 << 30):
        out = []
        while self.acks and len(out) < budget:
            psn = self.acks.pop(0)
            out.append(self.fr.tp_response(self.local, self.peer, psn))
            self.events.append(ResponseSent(now, self.local, psn, "tpack"))
        return out

    def next_deadline(self):
        return None

    def handle_timeout(self, now):
        pass

    def pop_events(self):
        ev, self.events = self.events, []
        return ev


def gbn_pair(kind="uboe", **kw):
    path = Path(kind=kind)
    start = kw.pop("start_psn", 0)
    snd = GbnSender(Framer(path), start_psn=start, **kw)
    rcv = GbnReceiver(Framer(path.reverse()), start_psn=start)
    return snd, rcv
