"""The DLL engine's state machines and per-link state (UB 2.0 §4.2, §4.7.3.3).

* ``DllState``: the data link state machine, DLL_Disabled -> DLL_Param_Init -> DLL_Credit_Init
  -> DLL_Normal, and back to DLL_Disabled when LinkUp drops (§4.2, §4.8.4).
* ``ReqState``: RETRY_REQ_SM, the receiver's side of link retransmission (NORMAL, REQ, WAIT,
  RETRAIN, ERROR).
* ``AckState``: RETRY_ACK_SM (§4.7.3.4), the sender's side (NORMAL, ACK: only the Retry_Ack_Set and the
  replay go out).

Each has a :class:`ubpkt.engine.Transitions` table; :class:`LinkState` holds every per-link
variable and moves the machines through their tables only (a move a table does not list raises
``IllegalTransition``: an engine bug, never a consequence of input).  States are ``StrEnum`` s,
so ``engine.state == "DLL_Normal"`` holds as it did with the string states of earlier releases.
"""
from __future__ import annotations

import enum
from collections import deque

from ...engine import Transitions
from ..retry import RetryBuffer
from .events import LinkStateChanged

__all__ = ["DllState", "ReqState", "AckState", "DLL_TRANSITIONS", "REQ_TRANSITIONS",
           "ACK_TRANSITIONS", "LinkState", "DISABLED", "PARAM_INIT", "CREDIT_INIT",
           "NORMAL_STATE"]


class DllState(enum.StrEnum):
    DISABLED = "DLL_Disabled"
    PARAM_INIT = "DLL_Param_Init"
    CREDIT_INIT = "DLL_Credit_Init"
    NORMAL = "DLL_Normal"


class ReqState(enum.StrEnum):
    NORMAL = "NORMAL"
    REQ = "REQ"
    WAIT = "WAIT"
    RETRAIN = "RETRAIN"
    ERROR = "ERROR"


class AckState(enum.StrEnum):
    NORMAL = "NORMAL"
    ACK = "ACK"


DISABLED, PARAM_INIT, CREDIT_INIT, NORMAL_STATE = (DllState.DISABLED, DllState.PARAM_INIT,
                                                   DllState.CREDIT_INIT, DllState.NORMAL)

#: §4.2: LinkUp starts Param_Init; LinkUp = 0 (or a UBFM reset) returns to Disabled from anywhere
DLL_TRANSITIONS = Transitions("DLL", DllState, {
    DllState.DISABLED: {DllState.PARAM_INIT},
    DllState.PARAM_INIT: {DllState.CREDIT_INIT, DllState.DISABLED},
    DllState.CREDIT_INIT: {DllState.NORMAL, DllState.DISABLED},
    DllState.NORMAL: {DllState.DISABLED},
})

#: §4.7.3.3 RETRY_REQ_SM.  REQ -> NORMAL: the Retry_Ack for our RcvPtr arrived before our own
#: set went out; REQ -> RETRAIN / ERROR: NUM_RETRY / NUM_PHY_REINIT reached their thresholds.
#: ERROR is left only by a reset of the whole link (LinkState.reset_link, not a transition).
REQ_TRANSITIONS = Transitions("RETRY_REQ_SM", ReqState, {
    ReqState.NORMAL: {ReqState.REQ},
    ReqState.REQ: {ReqState.WAIT, ReqState.NORMAL, ReqState.RETRAIN, ReqState.ERROR},
    ReqState.WAIT: {ReqState.NORMAL, ReqState.REQ},
    ReqState.RETRAIN: {ReqState.REQ},
    ReqState.ERROR: set(),
})

#: §4.7.3.4 RETRY_ACK_SM: a Retry_Req puts it in ACK until the replay reaches WrPtr
ACK_TRANSITIONS = Transitions("RETRY_ACK_SM", AckState, {
    AckState.NORMAL: {AckState.ACK},
    AckState.ACK: {AckState.NORMAL},
})


class LinkState:
    """Per-link variables and the moves of the three machines (mixed into the engine).

    ``_events`` collects every event raised (``pop_events`` hands them out); ``_now_hint`` is
    the time of the public call in progress, stamped on the events."""

    _now_hint = 0

    def reset_link(self) -> None:
        """Everything a link-up starts from (and a link-down drops, §4.8.4)."""
        self.req_sm = ReqState.NORMAL
        self.ack_sm = AckState.NORMAL
        self.num_retry = 0
        self.num_phy_reinit = 0
        self.rcvptr_abs = 0                 # retained flits accepted (RcvPtr = mod depth)
        self.rb = RetryBuffer(self.local_init.retry_buf_depth)
        self.peer_init = None
        self.neg = None
        self.tx_credits = None
        self.rx_credits = None
        self.pending_ack = 0                # retained flits received, not yet ACKed
        self.pending_ack_worthy = 0         # ... of which from blocks other than pure-ACK Crd_Acks
        self._out = bytearray()             # flits scheduled, not yet handed to the PHY
        self._rx = bytearray()              # flits received, block not complete
        self._rx_fec: list = []
        # reassembly: [lph, nblocks, last_flits, parts, seen, vl, plength, flits]
        self._rx_pkt = None
        self._txq = [deque() for _ in range(16)]   # network packets per VL
        self._tx_cur = None                 # [blocks, index, vl, flits] of the DLLDP being sent
        self._vl_rr = 0
        self._ctrl = deque()                # (rank, kind, bytes) control blocks to send
        self._req_set_due = False
        self._ack_set_due = False
        self._ack_set_args = None
        self._wait_deadline = None
        self._rx_deadline = None
        self._skip_set = None               # rest of a Retry_Ack_Set to step over (per flit)
        self._rx_ret = False                # the block being received is kept for retry
        self._req_run = (None, -100)        # (rcvptr, rx flit index) of the last Retry_Req seen
        self._rx_index = 0                  # flits received since link-up
        self._init_sent = False
        self._handshake_done = False        # first Retry_Ack_Set seen after link-up
        self._early_crd: list = []
        self._crd_init_queued = False
        self._sd_sent = False
        self._sd_seen = False
        self._nob_due = 0
        self._crd_deadline = None
        self._peer_advert = None
        self._advert_sent = False
        self._mode_chg = None               # Block_Mode_Chg handshake progress
        self._error = False

    # -- moves through the tables ------------------------------------------------------------------
    def _set_state(self, new: DllState, ev: list, why: str = "") -> None:
        old = self.state
        if new != old:
            DLL_TRANSITIONS.move(old, new, self._now_hint, why)
            self.state = new
            ev.append(LinkStateChanged(self._now_hint, "DLL", old.value, new.value, why))

    def _req_move(self, new: ReqState, ev: list, why: str = "") -> None:
        old = self.req_sm
        if new != old:
            REQ_TRANSITIONS.move(old, new, self._now_hint, why)
            self.req_sm = new
            ev.append(LinkStateChanged(self._now_hint, "RETRY_REQ_SM", old.value, new.value,
                                       why))

    def _ack_move(self, new: AckState, ev: list, why: str = "") -> None:
        old = self.ack_sm
        if new != old:
            ACK_TRANSITIONS.move(old, new, self._now_hint, why)
            self.ack_sm = new
            ev.append(LinkStateChanged(self._now_hint, "RETRY_ACK_SM", old.value, new.value,
                                       why))

    @property
    def status_up(self) -> bool:
        """DLL_Status_Up: DLLDPs can be sent (§4.2)."""
        return self.state == DllState.NORMAL and not self._error

    @property
    def rcvptr(self) -> int:
        return self.rcvptr_abs % self.peer_depth

    @property
    def peer_depth(self) -> int:
        # until the peer's Init arrives, pointers wrap at our own depth (both are 0 anyway)
        return self.peer_init.retry_buf_depth if self.peer_init else self.rb.depth

    # -- PHY side: LinkUp ------------------------------------------------------------------------
    def link_up(self, now: int) -> list:
        """LinkUp = 1: enter DLL_Param_Init and start with a retry handshake (§4.2, §4.3.4.1)."""
        self._now_hint = now
        ev: list = []
        if self.state == DllState.DISABLED:
            self.reset_link()
            self._set_state(DllState.PARAM_INIT, ev, "LinkUp")
            self._enter_req(now, ev, why="retry handshake at link-up")
        return self._raise(ev)

    def link_down(self, now: int) -> list:
        """LinkUp = 0 (§4.8.4): drop queued packets, a partial DLLDP, credits and pointers."""
        from .events import Discarded
        self._now_hint = now
        ev: list = []
        if self._rx_pkt is not None:
            ev.append(Discarded(now, "link down inside a DLLDP", self._rx_pkt[5]))
        self.reset_link()
        self._set_state(DllState.DISABLED, ev, "LinkUp = 0")
        return self._raise(ev)

    def reset(self, now: int) -> list:
        """UBFM reset after an ERROR (§4.7.3.3, §4.8): the link restarts from DLL_Disabled."""
        return self.link_down(now)

    def _raise(self, ev: list) -> list:
        """Queue the events of a public call for ``pop_events`` and return them."""
        if ev:
            self._events.extend(ev)
        return ev
