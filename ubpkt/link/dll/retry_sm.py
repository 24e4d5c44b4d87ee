"""Link retransmission of the DLL engine: RETRY_REQ_SM and RETRY_ACK_SM (UB 2.0 §4.7).

Receiver side (RETRY_REQ_SM): a bad block (BCRC mismatch, a flit whose FEC decoding failed, a
stalled block) moves NORMAL -> REQ; the Retry_Req_Set goes out and the machine WAITs, scanning
arriving flits for Retry blocks only; a Retry_Ack_Set carrying our RcvPtr returns it to NORMAL,
the WAIT timeout to REQ.  NUM_RETRY reaching its threshold moves to RETRAIN (the PHY retrains,
``phy_retrained`` brings it back to REQ), NUM_PHY_REINIT reaching its threshold to ERROR
(§4.7.3.3; thresholds in the profile).

Sender side (RETRY_ACK_SM, §4.7.3.4): the first Retry_Req of a run moves NORMAL -> ACK; the retry buffer
replays from the requested RcvPtr (:mod:`ubpkt.link.retry`) after a Retry_Ack_Set, and the
machine returns to NORMAL when the replay reaches WrPtr (in :mod:`.transmit`).
"""
from __future__ import annotations

from .. import control as C
from .events import (Handshake, LinkError, PhyRetrainRequested, ReplayStarted, RetryDone,
                     RetryRequested)
from .state import AckState, DllState, ReqState

__all__ = ["RetrySide", "err"]


def err(at: int, name: str, message: str, severity: str = "error",
        field: str | None = None) -> LinkError:
    """A §4.8 error event in the decoders' issue shape."""
    return LinkError(at, name, severity, f"{name}: {message}", field)


class RetrySide:
    """RETRY_REQ_SM / RETRY_ACK_SM moves and the engine's timers (mixed into the engine)."""

    # -- RETRY_REQ_SM ------------------------------------------------------------------------------
    def _enter_req(self, now: int, ev: list, count: bool = True, why: str = "") -> None:
        if self.req_sm == ReqState.ERROR:
            return
        self._req_move(ReqState.REQ, ev, why)
        self.num_retry += 1 if count else 0
        if not self._flitwise:                  # per-flit Go-Back-N keeps the good flits
            self._rx.clear()
            self._rx_fec.clear()
        if self.num_retry >= self.p.tuning.num_retry_threshold:
            ev.append(err(now, "DL Retry Rollover", f"{self.num_retry} retry requests for "
                          f"RcvPtr {self.rcvptr}", "warning"))
            self.num_retry = 0
            self._enter_retrain(now, ev)
            return
        self._req_set_due = True
        self._wait_deadline = None

    def _enter_retrain(self, now: int, ev: list) -> None:
        self.num_phy_reinit += 1
        t = self.p.tuning
        if self.num_phy_reinit >= t.num_phy_reinit_threshold:
            self._req_move(ReqState.ERROR, ev, "NUM_PHY_REINIT threshold")
            self._error = True
            self._req_set_due = False
            self._wait_deadline = None
            ev.append(err(now, "DL Retry Error", "retransmission failed after "
                          f"{t.num_retry_threshold} x {t.num_phy_reinit_threshold} "
                          "attempts; waiting for a UBFM reset"))
            return
        self._req_move(ReqState.RETRAIN, ev, "NUM_RETRY threshold")
        self._req_set_due = False
        self._wait_deadline = None
        ev.append(PhyRetrainRequested(now, self.num_phy_reinit))

    def phy_retrained(self, now: int) -> list:
        """The PHY finished the retraining the engine asked for: back to REQ (§4.7.3.3)."""
        self._now_hint = now
        ev: list = []
        if self.req_sm == ReqState.RETRAIN:
            self.num_retry = 0
            self._enter_req(now, ev, count=False, why="PHY retrained")
        return self._raise(ev)

    def _rx_error(self, now: int, ev: list, why: str) -> None:
        self.stats["retries"] += 1
        ev.append(RetryRequested(now, why, self.rcvptr))
        self._enter_req(now, ev, why=why)

    def _sent_req_set(self, now: int) -> None:
        """Our Retry_Req_Set went out: WAIT for the Retry_Ack_Set."""
        self._req_set_due = False
        self._req_move(ReqState.WAIT, self._events_tx, "Retry_Req_Set sent")
        self._wait_deadline = now + self.p.tuning.retry_wait_timeout_ns

    def _is_retry_flit(self, flit) -> bool:
        """A one-flit Retry_Idle or Retry_Ack block (LCH pattern, and its CRC in CRC mode)."""
        return (flit[0] == 0x02 and flit[1] == 0 and flit[2] in (0x10, 0x12)
                and self._crc_ok(flit))

    def _scan_retry_flit(self, flit, fec: bool, now: int, ev: list) -> None:
        """REQ/WAIT: only Retry_Idle/Retry_Req/Retry_Ack are recognised, flit by flit."""
        if not fec or flit[1] & 0x0F or flit[0] & 0x7C or flit[2] >> 4 != 1:
            return
        if not self._crc_ok(flit):
            return
        sub = flit[2] & 0xF
        if sub == 1:
            self._on_retry_req(flit, now, ev)
            return
        self._req_run = (None, -100)            # a valid other block ends a Retry_Req run
        if sub == 2:
            self._on_retry_ack(flit, now, ev)

    def _on_retry_ack(self, blk, now: int, ev: list) -> None:
        rdptr = self._cb_values(blk)["rdptr"]
        if rdptr != self.rcvptr:
            # a replay from elsewhere (a stale or repeated set): ask again from RcvPtr
            if self.req_sm == ReqState.NORMAL:
                self._rx_error(now, ev, f"Retry_Ack RdPtr {rdptr} != RcvPtr {self.rcvptr}")
            return
        if self.req_sm in (ReqState.REQ, ReqState.WAIT):
            self._req_move(ReqState.NORMAL, ev, "Retry_Ack for RcvPtr")
            self.num_retry = 0
            self.num_phy_reinit = 0
            self._req_set_due = False
            self._wait_deadline = None
            if self._flitwise:
                self._skip_set = bytes(blk)
            else:
                self._rx.clear()
                self._rx_fec.clear()
            ev.append(RetryDone(now, self.rcvptr))
            if self.state == DllState.PARAM_INIT and not self._handshake_done:
                self._handshake_done = True
                ev.append(Handshake(now))

    # -- RETRY_ACK_SM ------------------------------------------------------------------------------
    def _on_retry_req(self, blk, now: int, ev: list) -> None:
        req = self._cb_values(blk)
        rcv = req["rcvptr"]
        last_rcv, last_idx = self._req_run
        self._req_run = (rcv, self._rx_index)
        if last_rcv == rcv and self._rx_index - last_idx <= C.RETRY_SET_LEN:
            # same Retry_Req_Set: only Retry_Reqs (or flits too damaged to read) since the last
            return
        if not self.rb.start_replay(rcv):
            ev.append(err(now, "DL Protocol Error", f"Retry_Req asks for RcvPtr {rcv}, which "
                          "is not a block in the retry buffer"))
            self.rb.start_replay(self.rb.wrptr)
        self._ack_move(AckState.ACK, ev, "Retry_Req")
        self._ack_set_due = True
        self._ack_set_args = (req["num_retry"], self.rb.numfreebuf & 0xFFFF, self.rb.rdptr,
                              self.rb.wrptr)
        ev.append(ReplayStarted(now, rcv, self.rb.wr - self.rb.replay_at))

    # -- timers ------------------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        ds = [d for d in (self._wait_deadline, self._crd_deadline, self._rx_deadline)
              if d is not None]
        return min(ds) if ds else None

    def _timers(self, now: int, ev: list) -> None:
        t = self.p.tuning
        if self._rx_deadline is not None and now >= self._rx_deadline:
            self._rx_deadline = None
            if self._rx and self.req_sm == ReqState.NORMAL and self.state != DllState.DISABLED:
                self._rx_error(now, ev, f"block incomplete: no flit for "
                                        f"{t.rx_stall_timeout_ns} ns")
        if self._wait_deadline is not None and now >= self._wait_deadline:
            self._wait_deadline = None
            if self.req_sm == ReqState.WAIT:
                ev.append(err(now, "DL Retry ACK Timeout", "no Retry_Ack_Set within "
                              f"{t.retry_wait_timeout_ns} ns", "warning"))
                self._enter_req(now, ev, why="WAIT timeout")
        if self._crd_deadline is not None and now >= self._crd_deadline:
            self._crd_deadline = None
            if self.tx_credits is not None and self.tx_credits.outstanding() > 0 \
                    and self.state == DllState.NORMAL:
                ev.append(err(now, "DL Protocol Error", "credit return timeout"))

    def handle_timeout(self, now: int) -> list:
        self._now_hint = now
        ev: list = []
        self._timers(now, ev)
        return self._raise(ev)
