"""The sender's retry buffer (UB 2.0 §4.7.3.2).

Flits of every sent block except Null and Retry blocks are kept until the peer ACKs them.  The
wire pointers (WrPtr, TailPtr, RdPtr, RcvPtr) are flit offsets modulo RETRY_BUF_DEPTH; internally
the buffer counts flits from link-up (absolute), which makes wrap-around arithmetic trivial.
"""
from __future__ import annotations

from collections import deque

__all__ = ["RetryBuffer", "RETAINED"]

#: Blocks the retry buffer keeps: everything but Null and the Retry blocks (§4.7.3.2.1).
NOT_RETAINED = frozenset(("Null", "Retry_Idle", "Retry_Req", "Retry_Ack"))


def RETAINED(kind: str) -> bool:
    return kind not in NOT_RETAINED


class RetryBuffer:
    def __init__(self, depth: int):
        if not 1 <= depth <= 0xFFFF:
            raise ValueError("RETRY_BUF_DEPTH is 1..65535 flits")
        self.depth = depth
        self.reset()

    def reset(self) -> None:
        self.wr = 0                 # absolute flit count written
        self.tail = 0               # absolute flit count released
        self.blocks: deque = deque()   # abs_start of each kept block, oldest first
        self.data: dict = {}           # abs_start -> block bytes
        self.replay_at: int | None = None
        self.mid_block_replays = 0

    # -- pointers (wire values) --------------------------------------------------------------------
    @property
    def numfreebuf(self) -> int:
        return self.depth - (self.wr - self.tail)

    @property
    def wrptr(self) -> int:
        return self.wr % self.depth

    @property
    def tailptr(self) -> int:
        return self.tail % self.depth

    @property
    def rdptr(self) -> int:
        return (self.replay_at if self.replay_at is not None else self.wr) % self.depth

    # -- operations --------------------------------------------------------------------------------
    def can_store(self, flits: int, reserve: int = 0) -> bool:
        # One flit always stays free: with all RETRY_BUF_DEPTH flits outstanding, RcvPtr ==
        # WrPtr (mod depth) could mean "nothing to resend" or "resend everything".
        return self.numfreebuf - 1 - flits >= reserve

    def store(self, block: bytes) -> None:
        flits = len(block) // 20
        if flits > self.numfreebuf - 1:
            raise ValueError("retry buffer overflow")
        self.blocks.append(self.wr)
        self.data[self.wr] = bytes(block)
        self.wr += flits

    def release(self, flits: int) -> bool:
        """An ACK for ``flits`` flits; False (nothing released) if it would overflow NumFreeBuf
        (DL Protocol Error, §4.8.2)."""
        if flits > self.wr - self.tail:
            return False
        tail = self.tail = self.tail + flits
        blocks, data = self.blocks, self.data
        while blocks:
            s = blocks[0]
            if s + len(data[s]) // 20 > tail:
                break
            del data[blocks.popleft()]
        return True

    def start_replay(self, rcvptr: int) -> bool:
        """Go back to the flit the receiver asked for (RcvPtr); False if that flit is no longer
        (or not yet) in the buffer, or is not a block boundary."""
        back = (self.wr - rcvptr) % self.depth
        start = self.wr - back
        if start < self.tail:
            return False
        if start == self.wr:
            self.replay_at = start
            return True
        if start in self.data:
            self.replay_at = start
            return True
        # inside a block (non-CRC mode resends from the failed flit, §4.7.3.2.2)
        for s in self.blocks:
            n = len(self.data[s]) // 20
            if s < start < s + n:
                self.replay_at = start
                self.mid_block_replays += 1
                return True
            if s > start:
                break
        return False

    def next_replay(self) -> bytes | None:
        """The next block to retransmit, or None when RdPtr has reached WrPtr."""
        at = self.replay_at
        if at is None or at >= self.wr:
            self.replay_at = None
            return None
        blk = self.data.get(at)
        if blk is None:
            for s in self.blocks:               # resuming inside a block: its remaining flits
                n = len(self.data[s]) // 20
                if s < at < s + n:
                    self.replay_at = s + n
                    return self.data[s][(at - s) * 20:]
            self.replay_at = None
            return None
        self.replay_at = at + len(blk) // 20
        return blk
