"""An initiator and a target wired directly (no transport): what one submits the other receives,
in order, on an explicit clock.  Every TaSegment that passes is kept for the wire checks."""
from __future__ import annotations

from collections import deque

from ubpkt.profile import SPEC, TransactionTuning
from ubpkt.stack.transaction.initiator import Initiator
from ubpkt.stack.transaction.memory import Memory
from ubpkt.stack.transaction.target import Target

BASE = 0x7F00_0000_0000
TOKENID = 0x12345
TOKENVALUE = 0xC0FFEE01


def joined(seg) -> memoryview:
    return memoryview(b"".join((seg.ta, bytes(seg.payload))))


class Pair:
    def __init__(self, *, mtu=4096, size=1 << 20, tokenvalue=TOKENVALUE, compact=False,
                 profile=SPEC, keep=True, **tune):
        self.tuning = TransactionTuning(mtu=mtu, **tune)
        self.mem = Memory()
        self.region = self.mem.register(BASE, size, tokenid=TOKENID, tokenvalue=tokenvalue)
        self.requests: deque = deque()
        self.responses: deque = deque()
        self.sent_requests: list = []
        self.sent_responses: list = []
        self.keep = keep
        self.compact = compact
        self.now = 0
        self.rnr = 0
        self.ini = Initiator(rc_id=0x1ABCD, tuning=self.tuning, submit=self.requests.append,
                             profile=profile, compact=compact)
        self.tgt = Target(memory=self.mem, tuning=self.tuning,
                          submit_response=self.responses.append, profile=profile)

    def run(self, max_rounds=1_000_000):
        """Deliver until both directions are idle.  A request answered "rnr" stays at the head
        of its queue and is offered again once something else happened (a transport's RNR
        retry); run() returns when only such requests remain."""
        for _ in range(max_rounds):
            self.now += 1000
            moved = False
            while self.requests:
                seg = self.requests[0]
                r = self.tgt.on_request(joined(seg), self.now, last=seg.last,
                                        compact=self.compact)
                if r == "rnr":
                    self.rnr += 1
                    break
                self.requests.popleft()
                if self.keep:
                    self.sent_requests.append(seg)
                moved = True
            while self.responses:
                seg = self.responses.popleft()
                if self.keep:
                    self.sent_responses.append(seg)
                self.ini.on_response(joined(seg), self.now)
                moved = True
            if moved:
                continue
            # idle: the earliest timer of either side
            ds = [d for d in (self.ini.next_deadline(), self.tgt.next_deadline()) if d is not None]
            if not ds:
                return
            self.now = max(self.now, min(ds))
            self.ini.handle_timeout(self.now)
            self.tgt.handle_timeout(self.now)
        raise AssertionError("no quiescence")

    def do(self, wr):
        self.ini.post(wr, self.now)
        self.run()
        return self.ini.pop_completions()
