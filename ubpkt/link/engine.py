"""The UB data-link layer as a sans-IO engine (UB 2.0 §4.2, §4.4-4.8).

One :class:`DLLEngine` is one end of a link.  It does no I/O and reads no clock: every method
takes ``now`` (an integer, nanoseconds by convention) and returns bytes or events; timers are
reported by :meth:`DLLEngine.next_deadline` and fire inside any call made at or after them.

* PHY side: :meth:`link_up`, :meth:`link_down`, :meth:`receive` (whole flits, with optional
  per-flit FEC status), :meth:`transmit` (whole flits, up to a budget), :meth:`phy_retrained`.
* Network side: :meth:`send` (a network packet from its LPH), ``packet`` events,
  :meth:`release` (free receive-buffer cells when ``rx_auto_release`` is off).

State machine: DLL_Disabled -> DLL_Param_Init (Retry_Req_Set/Retry_Ack_Set handshake, Init
exchange and negotiation) -> DLL_Credit_Init (Crd_Ack T=1, SD on the last) -> DLL_Normal.
Retransmission: receiver-requested Go-Back-N, RETRY_REQ_SM (NORMAL, REQ, WAIT, RETRAIN, ERROR)
and RETRY_ACK_SM (NORMAL, ACK).  Events are dicts with ``event`` plus, for errors, the issue
shape (severity, layer, field, offset, message).
"""
from __future__ import annotations

from collections import deque

from ..profile import SPEC, Profile
from . import control as C
from .blocks import FLIT, next_block, seal
from .credits import RxCredits, TxCredits, cells_for
from .crc30 import block_crc
from .framing import frame_blocks
from .plength import MAX_FLITS, MAX_PACKET, layout
from .retry import RETAINED, RetryBuffer

__all__ = ["DLLEngine", "DISABLED", "PARAM_INIT", "CREDIT_INIT", "NORMAL_STATE"]

DISABLED, PARAM_INIT, CREDIT_INIT, NORMAL_STATE = ("DLL_Disabled", "DLL_Param_Init",
                                                   "DLL_Credit_Init", "DLL_Normal")
R_NORMAL, R_REQ, R_WAIT, R_RETRAIN, R_ERROR = "NORMAL", "REQ", "WAIT", "RETRAIN", "ERROR"
A_NORMAL, A_ACK = "NORMAL", "ACK"

_CB_KIND = {(c, s): k for k, (c, s, _) in C.KINDS.items()}


def _err(name: str, message: str, severity: str = "error", field: str | None = None) -> dict:
    return {"event": "error", "name": name, "severity": severity, "layer": "ub.dll",
            "field": field, "offset": 0, "message": f"{name}: {message}"}


class DLLEngine:
    def __init__(self, profile: Profile = SPEC, *, name: str = "", crc_mode: bool | None = None,
                 init: C.InitParams | None = None, guid: int | None = None, port_idx: int = 0):
        self.p = profile
        self.name = name
        self.crc_mode = profile.crc_mode if crc_mode is None else crc_mode
        self.covers = profile.bcrc_covers_info
        self.local_init = init or C.InitParams(
            feature_id=profile.tuning.dll_feature_id, rxbuf_vl_share=profile.tuning.rxbuf_vl_share,
            data_ack_grain=profile.tuning.dll_data_ack_grain, ctrl_ack_grain=profile.tuning.dll_ctrl_ack_grain,
            flow_ctrl_size=profile.tuning.dll_flow_ctrl_size, vl_enable=profile.tuning.dll_vl_enable | 1,
            retry_buf_depth=profile.tuning.retry_buf_depth,
            ctrl_credit_grain=(profile.tuning.dll_ctrl_credit_grain,) * 16,
            data_credit_grain=(profile.tuning.dll_data_credit_grain,) * 16,
            packet_min_interval=profile.tuning.dll_packet_min_interval)
        self.guid = guid
        self.port_idx = port_idx
        self.state = DISABLED
        self.stats = {"tx_flits": 0, "rx_flits": 0, "retries": 0, "replayed_flits": 0,
                      "crc_errors": 0, "fec_errors": 0, "delivered": 0, "crd_acks": 0}
        self._reset_link()

    # ==============================================================================================
    # state

    def _reset_link(self) -> None:
        self.req_sm = R_NORMAL
        self.ack_sm = A_NORMAL
        self.num_retry = 0
        self.num_phy_reinit = 0
        self.rcvptr_abs = 0                 # retained flits accepted (RcvPtr = mod depth)
        self.rb = RetryBuffer(self.local_init.retry_buf_depth)
        self.peer_init: C.InitParams | None = None
        self.neg: C.Negotiated | None = None
        self.tx_credits: TxCredits | None = None
        self.rx_credits: RxCredits | None = None
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

    def _set_state(self, st: str, ev: list) -> None:
        if st != self.state:
            self.state = st
            ev.append({"event": "state", "state": st})

    @property
    def status_up(self) -> bool:
        """DLL_Status_Up: DLLDPs can be sent (§4.2)."""
        return self.state == NORMAL_STATE and not self._error

    # ==============================================================================================
    # PHY side

    def link_up(self, now: int) -> list:
        """LinkUp = 1: enter DLL_Param_Init and start with a retry handshake (§4.2, §4.3.4.1)."""
        ev: list = []
        if self.state != DISABLED:
            return ev
        self._reset_link()
        self._set_state(PARAM_INIT, ev)
        self._enter_req(now, ev)
        return ev

    def link_down(self, now: int) -> list:
        """LinkUp = 0 (§4.8.4): drop queued packets, a partial DLLDP, credits and pointers."""
        ev: list = []
        if self._rx_pkt is not None:
            ev.append({"event": "discard", "reason": "link down inside a DLLDP",
                       "vl": self._rx_pkt[5]})
        self._reset_link()
        self._set_state(DISABLED, ev)
        return ev

    def phy_retrained(self, now: int) -> list:
        """The PHY finished the retraining the engine asked for: back to REQ (§4.7.3.3)."""
        ev: list = []
        if self.req_sm == R_RETRAIN:
            self.num_retry = 0
            self._enter_req(now, ev, count=False)
        return ev

    def reset(self, now: int) -> list:
        """UBFM reset after an ERROR (§4.7.3.3, §4.8): the link restarts from DLL_Disabled."""
        ev = self.link_down(now)
        return ev

    # -- retry request side ------------------------------------------------------------------------
    def _enter_req(self, now: int, ev: list, count: bool = True) -> None:
        if self.req_sm in (R_ERROR,):
            return
        self.req_sm = R_REQ
        self.num_retry += 1 if count else 0
        if not self._flitwise:                  # per-flit Go-Back-N keeps the good flits
            self._rx.clear()
            self._rx_fec.clear()
        if self.num_retry >= self.p.tuning.num_retry_threshold:
            ev.append(_err("DL Retry Rollover", f"{self.num_retry} retry requests for RcvPtr "
                           f"{self.rcvptr}", "warning"))
            self.num_retry = 0
            self._enter_retrain(now, ev)
            return
        self._req_set_due = True
        self._wait_deadline = None

    def _enter_retrain(self, now: int, ev: list) -> None:
        self.num_phy_reinit += 1
        if self.num_phy_reinit >= self.p.tuning.num_phy_reinit_threshold:
            self.req_sm = R_ERROR
            self._error = True
            self._req_set_due = False
            self._wait_deadline = None
            ev.append(_err("DL Retry Error", "retransmission failed after "
                           f"{self.p.tuning.num_retry_threshold} x {self.p.tuning.num_phy_reinit_threshold} "
                           "attempts; waiting for a UBFM reset"))
            return
        self.req_sm = R_RETRAIN
        self._req_set_due = False
        self._wait_deadline = None
        ev.append({"event": "phy_retrain", "num_phy_reinit": self.num_phy_reinit})

    @property
    def rcvptr(self) -> int:
        return self.rcvptr_abs % self.peer_depth

    @property
    def peer_depth(self) -> int:
        # until the peer's Init arrives, pointers wrap at our own depth (both are 0 anyway)
        return self.peer_init.retry_buf_depth if self.peer_init else self.rb.depth

    # -- timers ------------------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        ds = [d for d in (self._wait_deadline, self._crd_deadline, self._rx_deadline)
              if d is not None]
        return min(ds) if ds else None

    def _timers(self, now: int, ev: list) -> None:
        if self._rx_deadline is not None and now >= self._rx_deadline:
            self._rx_deadline = None
            if self._rx and self.req_sm == R_NORMAL and self.state != DISABLED:
                self._rx_error(now, ev, f"block incomplete: no flit for "
                                        f"{self.p.tuning.rx_stall_timeout_ns} ns")
        if self._wait_deadline is not None and now >= self._wait_deadline:
            self._wait_deadline = None
            if self.req_sm == R_WAIT:
                ev.append(_err("DL Retry ACK Timeout", "no Retry_Ack_Set within "
                               f"{self.p.tuning.retry_wait_timeout_ns} ns", "warning"))
                self._enter_req(now, ev)
        if self._crd_deadline is not None and now >= self._crd_deadline:
            self._crd_deadline = None
            if self.tx_credits is not None and self.tx_credits.outstanding() > 0 \
                    and self.state == NORMAL_STATE:
                ev.append(_err("DL Protocol Error", "credit return timeout"))

    def handle_timeout(self, now: int) -> list:
        ev: list = []
        self._timers(now, ev)
        return ev

    # ==============================================================================================
    # network side

    def send(self, packet: bytes, now: int = 0, *, error_flag: bool = False) -> bool:
        """Queue a network packet (from its LPH) on its LPH.VL; False when the link is not
        DLL_Normal (packets are discarded then, §4.2), the VL is not enabled, the CFG is 0 (a
        DLLDP never has CFG 0, §4.3.2.2.2) or the size cannot be framed.  ``error_flag``: send
        it marked bad (ERROR_FLAG, §4.8.3)."""
        if not self.status_up or not 5 <= len(packet) <= MAX_PACKET[self.crc_mode] \
                or packet[1] & 0x0F == 0:
            return False
        vl = ((packet[0] & 1) << 3) | (packet[1] >> 5)
        if not (self.neg.vl_enable >> vl) & 1:
            return False
        lay = layout(len(packet), self.crc_mode)
        cells = cells_for((lay.blocks - 1) * MAX_FLITS + lay.last_flits, self.neg.flow_ctrl_size)
        tc = self.tx_credits
        if tc.done and cells > (tc.initial_total if tc.shared else tc.initial[vl]):
            # it could never get enough credits: refuse rather than block the VL for ever
            self._events_tx = getattr(self, "_events_tx", []) + [_err(
                "DLLDP too large", f"{cells} cells on VL{vl}, the peer's receive buffer for it "
                f"is {tc.initial[vl]} cells", "warning")]
            return False
        self._txq[vl].append((bytes(packet), error_flag))
        return True

    def release(self, vl: int, cells: int) -> None:
        """The network layer consumed ``cells`` cells of VL ``vl`` (``rx_auto_release`` off)."""
        if self.rx_credits is not None:
            self.rx_credits.release(vl, cells)

    def queued(self) -> int:
        return sum(len(q) for q in self._txq) + (self._tx_cur is not None)

    def idle(self) -> bool:
        """Nothing left to send (including control blocks owed)."""
        return (not self._out and not self.queued() and not self._ctrl and not self._req_set_due
                and not self._ack_set_due and self.rb.replay_at is None and not self._nob_due)

    # -- optional control-plane requests -----------------------------------------------------------
    def send_lane_manage(self, **cmd) -> None:
        self._queue_ctrl("Lane_Manage", C.lane_manage(**cmd, **self._kw()))

    def send_param_exchg(self, words) -> None:
        self._queue_ctrl("Param_Exchg", C.param_exchg(words, **self._kw()))

    def request_mode_change(self, now: int = 0) -> list:
        """Start the CRC <-> non-CRC switch (§4.3.3.8): back-pressure, Block_Mode_Chg REQ."""
        self._mode_chg = "req_sent"
        self._queue_ctrl("Block_Mode_Chg", C.block_mode_chg(0, **self._kw()))
        return []

    def mode_changed(self, crc_mode: bool, now: int = 0) -> list:
        """The PHY retrained into the new mode: resume with it."""
        self.crc_mode = crc_mode
        self._mode_chg = None
        return []

    # ==============================================================================================
    # transmit

    def _kw(self) -> dict:
        return {"crc_mode": self.crc_mode, "covers_info": self.covers}

    def _queue_ctrl(self, kind: str, blk: bytes, rank_name: str | None = None) -> None:
        rank = C.RANK[rank_name or kind]
        self._ctrl.append((rank, kind, blk))

    def transmit(self, now: int, max_flits: int = 1 << 30, *, fill: bool = False) -> bytes:
        """Up to ``max_flits`` whole flits for the PHY.  ``fill``: pad an idle link with Null
        blocks."""
        ev: list = getattr(self, "_events_tx", [])
        self._now_hint = now
        self._timers(now, ev)
        self._events_tx = ev
        want = max_flits * FLIT
        while len(self._out) < want:
            blk = self._schedule(now)
            if blk is None:
                if fill and self.state != DISABLED and self.req_sm not in (R_RETRAIN, R_ERROR):
                    self._out += C.null(**self._kw())
                    continue
                break
            self._out += blk
        out = bytes(self._out[:want])
        del self._out[:want]
        self.stats["tx_flits"] += len(out) // FLIT
        return out

    def pop_events(self) -> list:
        """Events raised while transmitting (timeouts, errors)."""
        ev = getattr(self, "_events_tx", [])
        self._events_tx = []
        return ev

    def _retain(self, kind: str, blk: bytes) -> bytes:
        if RETAINED(kind):
            self.rb.store(blk)
        return blk

    def _schedule(self, now: int) -> bytes | None:
        """The next block by the recommended priority (§4.3.3.1)."""
        if self.state == DISABLED or self.req_sm in (R_RETRAIN, R_ERROR) or self._error:
            return None
        # RETRY_ACK_SM: only the Retry_Ack_Set and the replay
        if self.ack_sm == A_ACK:
            if self._ack_set_due:
                self._ack_set_due = False
                return C.retry_ack_set(*self._ack_set_args, **self._kw())
            blk = self.rb.next_replay()
            if blk is not None:
                self.stats["replayed_flits"] += len(blk) // FLIT
                return blk
            self.ack_sm = A_NORMAL
        if self._req_set_due:
            self._req_set_due = False
            self.req_sm = R_WAIT
            self._wait_deadline = now + self.p.tuning.retry_wait_timeout_ns
            return C.retry_req_set(self.rcvptr, self.num_phy_reinit, self.num_retry,
                                   **self._kw())
        if self.state == PARAM_INIT and self._handshake_done and not self._init_sent:
            self._init_sent = True
            self._queue_ctrl("Init", self.local_init.encode(self.p.tuning.dll_init_flits, **self._kw()))
            self._try_negotiate(now, self._events_tx)
        if self.state == CREDIT_INIT and not self._crd_init_queued and self._init_sent \
                and not any(k == "Init" for _, k, _ in self._ctrl):
            # our Init goes out before our initial credits (§4.2: Param_Init, then Credit_Init)
            self._queue_credit_init()
        reserve = self.p.tuning.retry_lockout_reserve
        # owed credits / ACKs (Crd_Ack T=0): forced when over thresholds or the buffer is low
        if self._mode_chg == "quiet":
            return None                         # §4.3.3.8 step 6/7: nothing until the switch
        force = self._crd_ack_forced()
        if self._ctrl or force:
            allowed = range(len(self._ctrl))
            if self._mode_chg is not None:      # only Crd_Ack and Block_Mode_Chg meanwhile
                allowed = [i for i in allowed if self._ctrl[i][1] in ("Crd_Ack",
                                                                     "Block_Mode_Chg")]
            ranked = sorted(allowed, key=lambda i: self._ctrl[i][0])
            best = ranked[0] if ranked else None
            if force and (best is None or C.RANK["Crd_Ack_T0"] <= self._ctrl[best][0]):
                blk = self._make_crd_ack()
                if blk is not None:
                    return blk
            if best is not None:
                rank, kind, blk = self._ctrl[best]
                flits = len(blk) // FLIT
                if not RETAINED(kind) or self.rb.can_store(flits, reserve):
                    del self._ctrl[best]
                    if kind == "Crd_Ack" and blk[3] & 0x80:
                        self._sd_sent = True
                        self._check_normal(now)
                    if kind == "Block_Mode_Chg" and blk[3] & 0xF == 1:
                        self._mode_chg = "quiet"
                    return self._retain(kind, blk)
        if self._mode_chg is not None:
            return None
        if self._nob_due:
            if self.rb.can_store(1, reserve):
                self._nob_due -= 1
                return self._retain("NOB", C.nob(**self._kw()))
            return self._make_crd_ack(idle=True)
        if self.state == NORMAL_STATE and self._mode_chg is None:
            blk = self._next_data_block(reserve)
            if blk is not None:
                return blk
        # idle: return what is owed
        return self._make_crd_ack(idle=True)

    def _crd_ack_forced(self) -> bool:
        if self.neg is None or self.state not in (NORMAL_STATE, CREDIT_INIT):
            return False
        if self.rb.numfreebuf < self.p.tuning.retry_lockout_reserve + MAX_FLITS and self.pending_ack:
            return True
        if self.pending_ack >= self.p.tuning.ack_force_flits:
            return True
        rc = self.rx_credits
        return rc is not None and max(rc.pending) >= self.p.tuning.crd_ack_force_cells

    def _make_crd_ack(self, idle: bool = False, retain: bool = True) -> bytes | None:
        if self.neg is None or self.state not in (NORMAL_STATE, CREDIT_INIT) \
                or not self._sd_sent:
            return None
        rc = self.rx_credits
        owed = rc.owed() if rc else 0
        if idle and not owed and not self.pending_ack_worthy:
            return None
        if not owed and not self.pending_ack:
            return None
        if not self.rb.can_store(2):
            return None
        credits = rc.take_crd_ack(self.neg.ctrl_credit_grain) if rc else [0] * 16
        g = self.neg.ctrl_ack_grain
        n = min(0xFFFF, self.pending_ack // g)
        if not any(credits) and not n:
            return None
        self.pending_ack -= n * g
        self.pending_ack_worthy = 0 if self.pending_ack == 0 else min(self.pending_ack_worthy,
                                                                     self.pending_ack)
        self.stats["crd_acks"] += 1
        blk = C.crd_ack(n, credits, t=0, sd=0, **self._kw())
        return self._retain("Crd_Ack", blk) if retain else blk

    def _queue_credit_init(self) -> None:
        """Crd_Ack T=1 blocks advertising this end's receive buffer; SD on the last (§4.6.1)."""
        self._crd_init_queued = True
        neg = self.neg
        vls = neg.vls
        per = self.p.tuning.rx_buffer_cells // len(vls)
        alloc = [per if vl in vls else 0 for vl in range(16)]
        self.rx_credits = RxCredits(alloc)
        self.rx_credits.shared = bool(self.local_init.rxbuf_vl_share)
        left = [alloc[vl] // neg.ctrl_credit_grain[vl] for vl in range(16)]
        blocks = []
        while True:
            chunk = [min(63, left[vl]) for vl in range(16)]
            left = [left[vl] - chunk[vl] for vl in range(16)]
            blocks.append(chunk)
            if not any(left):
                break
        for i, chunk in enumerate(blocks):
            last = i == len(blocks) - 1
            self._queue_ctrl("Crd_Ack", C.crd_ack(0, chunk, t=1, sd=int(last), **self._kw()),
                             "Crd_Ack_T1")

    def _next_data_block(self, reserve: int) -> bytes | None:
        cur = self._tx_cur
        if cur is None:
            # pick a VL round-robin among those with a packet and credits
            neg = self.neg
            for k in range(16):
                vl = (self._vl_rr + k) % 16
                q = self._txq[vl]
                if not q:
                    continue
                lay = layout(len(q[0][0]), self.crc_mode)
                flits = (lay.blocks - 1) * MAX_FLITS + lay.last_flits
                cells = cells_for(flits, neg.flow_ctrl_size)
                if not self.tx_credits.can_send(vl, cells):
                    continue
                first = MAX_FLITS if lay.blocks > 1 else lay.last_flits
                if not self.rb.can_store(first, reserve):
                    return None
                pkt, eflag = q.popleft()
                blocks = frame_blocks(pkt, self.crc_mode, covers_info=self.covers,
                                      error_flag=eflag)
                self.tx_credits.spend(vl, cells)
                if self._crd_deadline is None:
                    self._crd_deadline = self._now_hint + self.p.tuning.credit_return_timeout_ns
                self._vl_rr = (vl + 1) % 16
                cur = self._tx_cur = [blocks, 0, vl, flits]
                break
            else:
                return None
        blocks, i, vl, flits = cur
        blk = blocks[i]
        if not self.rb.can_store(len(blk) // FLIT, reserve):
            return None
        # piggy-back one credit grain and one ACK grain in this block's LPH/LBH
        bits = None
        rc = self.rx_credits
        grain = rc.take_grain(self.neg.data_credit_grain) if rc else None
        ack = self.pending_ack >= self.neg.data_ack_grain
        if grain is not None or ack:
            crd_vl = grain[0] if grain else 0
            bits = (1 if grain else 0, 1 if ack else 0, crd_vl)
            if ack:
                self.pending_ack -= self.neg.data_ack_grain
                self.pending_ack_worthy = min(self.pending_ack_worthy, self.pending_ack)
        if bits is not None or i == 0:
            blk = bytearray(blk)
            if bits is not None:
                crd, ackb, crd_vl = bits
                blk[0] = (blk[0] & 0x03) | crd << 7 | ackb << 6 | crd_vl << 2
            elif i == 0:
                blk[0] &= 0x03                  # this engine owns the LPH CRD/ACK bits
            if blk != blocks[i]:
                last = i == len(blocks) - 1
                eflag = bool(last and (blk[-4 if self.crc_mode else -1] & 0x40))
                seal(blk, self.crc_mode, error_flag=eflag, end=last, covers_info=self.covers)
            blk = bytes(blk)
        cur[1] += 1
        if cur[1] == len(blocks):
            self._tx_cur = None
            gap = self.neg.peer_packet_min_interval - flits
            if gap > 0:
                self._nob_due += gap
        return self._retain("DLLDP", blk)

    _now_hint = 0

    # ==============================================================================================
    # receive

    def receive(self, data: bytes, now: int, fec_ok=True) -> list:
        """Flits from the PHY.  ``fec_ok``: True, False (every flit failed FEC decoding) or one
        bool per flit (UB 2.0 §3.2.3.5: the PHY reports a per-flit FEC decoding status)."""
        ev: list = []
        self._now_hint = now
        self._timers(now, ev)
        if self.state == DISABLED or self.req_sm in (R_RETRAIN, R_ERROR):
            return ev
        n = len(data) // FLIT
        if isinstance(fec_ok, bool):
            fec = [fec_ok] * n
        else:
            fec = list(fec_ok)
        self.stats["rx_flits"] += n
        flitwise = self._flitwise
        for i in range(n):
            flit = data[i * FLIT:(i + 1) * FLIT]
            self._rx_index += 1
            if not fec[i]:
                self.stats["fec_errors"] += 1
            if self.req_sm in (R_REQ, R_WAIT):
                self._scan_retry_flit(flit, fec[i], now, ev)
                continue
            if self._skip_set is not None:
                # the rest of an accepted Retry_Ack_Set (and any set right behind it, sent for
                # the same RcvPtr) before the replay: one-flit Retry_Idle / Retry_Ack blocks
                if fec[i] and (flit == self._skip_set or self._is_retry_flit(flit)):
                    if flit[2] & 0xF == 2 and self._cb_values(flit)["rdptr"] != self.rcvptr:
                        self._skip_set = None
                        self._rx_error(now, ev, "Retry_Ack for another RcvPtr")
                    continue
                self._skip_set = None
            if flitwise:
                # non-CRC mode, §4.7.3.2.2: RcvPtr counts each correct flit; a failed flit is
                # dropped with everything after it and resent from that very flit
                if not fec[i]:
                    self._rx_error(now, ev, "FEC decoding failure")
                    continue
                self._rx += flit
                self._rx_fec.append(True)
                if len(self._rx) == FLIT:
                    self._rx_ret = self._header_retained(flit)
                if self._rx_ret:
                    self.rcvptr_abs += 1
            else:
                self._rx += flit
                self._rx_fec.append(fec[i])
                if not fec[i]:
                    # FEC failure: Go-Back-N from the start of this block (§4.7.1)
                    self._rx_error(now, ev, "FEC decoding failure")
                    continue
            size = self._rx_block_flits()
            if size is not None and len(self._rx) >= size * FLIT:
                blk = bytes(self._rx[:size * FLIT])
                del self._rx[:size * FLIT]
                del self._rx_fec[:size]
                self._rx_block(blk, now, ev)
        self._rx_deadline = (now + self.p.tuning.rx_stall_timeout_ns) if self._rx else None
        return ev

    @property
    def _flitwise(self) -> bool:
        return not self.crc_mode and not self.p.noncrc_block_granular_retry

    def _is_retry_flit(self, flit: bytes) -> bool:
        """A one-flit Retry_Idle or Retry_Ack block (LCH pattern, and its CRC in CRC mode)."""
        return (flit[0] == 0x02 and flit[1] == 0 and flit[2] in (0x10, 0x12)
                and self._crc_ok(flit))

    @staticmethod
    def _header_retained(flit: bytes) -> bool:
        if flit[1] & 0x0F:
            return True                          # a DLLDB
        return RETAINED(_CB_KIND.get((flit[2] >> 4, flit[2] & 0xF), "unknown"))

    def _rx_error(self, now: int, ev: list, why: str) -> None:
        self.stats["retries"] += 1
        ev.append({"event": "retry", "reason": why, "rcvptr": self.rcvptr})
        self._enter_req(now, ev)

    def _rx_block_flits(self) -> int | None:
        """Flits of the block being received (the shared delimiter, UB 2.0 §4.3.4.1)."""
        p = self._rx_pkt
        return next_block(self._rx, 0, None if p is None else (p[1] - p[4], p[2]))[1]

    def _cb_values(self, blk: bytes) -> dict:
        """What the one DLLCB reader (:func:`control.parse_control`) finds in a control block
        whose BCRC was checked."""
        return C.parse_control(blk, self.crc_mode, covers_info=self.covers, crc_ok=True).values

    def _crc_ok(self, blk: bytes) -> bool:
        if not self.crc_mode:
            return True
        word = int.from_bytes(blk[-4:], "big")
        info = word >> 30
        return block_crc(blk[:-4], info, self.covers) == word & 0x3FFFFFFF

    def _scan_retry_flit(self, flit: bytes, fec: bool, now: int, ev: list) -> None:
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

    def _on_retry_req(self, blk: bytes, now: int, ev: list) -> None:
        req = self._cb_values(blk)
        rcv = req["rcvptr"]
        last_rcv, last_idx = self._req_run
        self._req_run = (rcv, self._rx_index)
        if last_rcv == rcv and self._rx_index - last_idx <= C.RETRY_SET_LEN:
            # same Retry_Req_Set: only Retry_Reqs (or flits too damaged to read) since the last
            return
        if not self.rb.start_replay(rcv):
            ev.append(_err("DL Protocol Error", f"Retry_Req asks for RcvPtr {rcv}, which is "
                           "not a block in the retry buffer"))
            self.rb.start_replay(self.rb.wrptr)
        self.ack_sm = A_ACK
        self._ack_set_due = True
        self._ack_set_args = (req["num_retry"], self.rb.numfreebuf & 0xFFFF, self.rb.rdptr,
                              self.rb.wrptr)
        ev.append({"event": "replay", "from": rcv, "flits": (self.rb.wr - self.rb.replay_at)})

    def _on_retry_ack(self, blk: bytes, now: int, ev: list) -> None:
        rdptr = self._cb_values(blk)["rdptr"]
        if rdptr != self.rcvptr:
            # a replay from elsewhere (a stale or repeated set): ask again from RcvPtr
            if self.req_sm == R_NORMAL:
                self._rx_error(now, ev, f"Retry_Ack RdPtr {rdptr} != RcvPtr {self.rcvptr}")
            return
        if self.req_sm in (R_REQ, R_WAIT):
            self.req_sm = R_NORMAL
            self.num_retry = 0
            self.num_phy_reinit = 0
            self._req_set_due = False
            self._wait_deadline = None
            if self._flitwise:
                self._skip_set = bytes(blk)
            else:
                self._rx.clear()
                self._rx_fec.clear()
            ev.append({"event": "retry_done", "rcvptr": self.rcvptr})
            if self.state == PARAM_INIT and not self._handshake_done:
                self._handshake_done = True
                ev.append({"event": "handshake"})

    def _rx_block(self, blk: bytes, now: int, ev: list) -> None:
        if not self._crc_ok(blk):
            self.stats["crc_errors"] += 1
            self._rx_error(now, ev, "BCRC mismatch")
            return
        b1 = blk[1]
        if b1 & 0x0F == 0:
            kind = _CB_KIND.get((blk[2] >> 4, blk[2] & 0xF), "unknown")
            if kind == "Retry_Req":
                self._on_retry_req(blk, now, ev)
                return
            self._req_run = (None, -100)        # a valid other block ends a Retry_Req run
            if kind == "Retry_Ack":
                self._on_retry_ack(blk, now, ev)
                return
            if kind in ("Null", "Retry_Idle"):
                return
            flits = len(blk) // FLIT
            if not self._flitwise:
                self.rcvptr_abs += flits
            self._count_ack(flits, worthy=True)
            self._rx_control(kind, blk, now, ev)
            return
        # a DLLDB
        self._req_run = (None, -100)
        flits = len(blk) // FLIT
        if not self._flitwise:
            self.rcvptr_abs += flits
        self._count_ack(flits, worthy=True)
        self._rx_header_bits(blk[0], ev)
        p = self._rx_pkt
        crc = 4 if self.crc_mode else 0
        if p is None:
            plen = ((blk[2] & 0x3F) << 8) | blk[3]
            nb = (plen >> 10) + 1
            vl = ((blk[0] & 1) << 3) | (b1 >> 5)
            p = self._rx_pkt = [blk[:4], nb, ((plen >> 5) & 0x1F) + 1, [], 0, vl, plen, 0]
            body = blk[4:len(blk) - crc]
        else:
            body = blk[2:len(blk) - crc]
        p[3].append(body)
        p[4] += 1
        p[7] += flits
        if p[4] == p[1]:
            self._rx_pkt = None
            self._deliver(p, blk, ev)

    def _deliver(self, p, last_blk: bytes, ev: list) -> None:
        from .plength import packet_length
        total = packet_length(p[6], self.crc_mode)
        pkt = p[0] + b"".join(p[3])
        if total is None:
            ev.append(_err("DLLDP length", f"reserved PLENGTH {p[6]:#06x}", "warning",
                           "ub.lph.plength"))
        else:
            pkt = pkt[:total]
        eflag = bool(last_blk[-4 if self.crc_mode else -1] & 0x40)
        vl = p[5]
        # CRD/ACK/CRD_VL belong to this link (already processed): hand the packet up with them
        # cleared, as the peer's network layer gave it
        pkt = bytes((pkt[0] & 0x03,)) + pkt[1:]
        if self.state != NORMAL_STATE:
            ev.append({"event": "discard", "reason": f"DLLDP in {self.state}", "vl": vl})
            return
        cells = cells_for(p[7], self.neg.flow_ctrl_size)
        rc = self.rx_credits
        if not rc.receive(vl, cells):
            ev.append(_err("Receive Buffer Overflow", f"VL{vl} DLLDP of {cells} cells"))
        self.stats["delivered"] += 1
        ev.append({"event": "packet", "packet": pkt, "vl": vl, "error_flag": eflag,
                   "cells": cells})
        if self.p.tuning.rx_auto_release:
            rc.release(vl, cells)

    def _count_ack(self, flits: int, worthy: bool) -> None:
        self.pending_ack += flits
        if worthy:
            self.pending_ack_worthy += flits

    def _rx_header_bits(self, b0: int, ev: list) -> None:
        if self.neg is None:
            return
        if b0 & 0x80:                           # CRD: one DATA_CREDIT grain on CRD_VL
            vl = (b0 >> 2) & 0xF
            self._credit_return(vl, self.neg.data_credit_grain[vl], ev)
        if b0 & 0x40:                           # ACK: DATA_ACK_GRAIN flits
            self._ack_release(self.neg.data_ack_grain, ev)

    def _credit_return(self, vl: int, cells: int, ev: list) -> None:
        tc = self.tx_credits
        if tc is None:
            return
        if not tc.give_back(vl, cells):
            ev.append(_err("Flow Control Overflow", f"VL{vl} credits above their initial value"))
        self._crd_deadline = (None if tc.outstanding() == 0 else
                              self._now_hint + self.p.tuning.credit_return_timeout_ns)

    def _ack_release(self, flits: int, ev: list) -> None:
        if not self.rb.release(flits):
            ev.append(_err("DL Protocol Error", f"ACK of {flits} flits overflows NumFreeBuf "
                           f"({self.rb.numfreebuf} of {self.rb.depth} free)"))

    def _rx_control(self, kind: str, blk: bytes, now: int, ev: list) -> None:
        if self.state == PARAM_INIT and kind not in ("Init", "NOB"):
            if kind == "Crd_Ack":
                # the peer's initial credits can overtake our own negotiation: keep them
                self._early_crd.append(blk)
            return
        cb = C.parse_control(blk, self.crc_mode, covers_info=self.covers, crc_ok=True)
        v = cb.values
        if kind == "Init":
            if "init" in v:
                self.peer_init = v["init"]
                self._try_negotiate(now, ev)
        elif kind == "Crd_Ack":
            pure = not any(v.get("credits", [])) and v.get("t") == 0
            if pure:                          # pure-ACK Crd_Acks are ACKed lazily
                self.pending_ack_worthy -= len(blk) // FLIT
            if self.neg is None:
                return
            if v.get("ack_num"):
                self._ack_release(v["ack_num"] * self.neg.ctrl_ack_grain, ev)
            credits = v.get("credits", [0] * 16)
            if v.get("t"):
                for vl in range(16):
                    if credits[vl]:
                        self.tx_credits.add_initial(vl, credits[vl] *
                                                    self.neg.ctrl_credit_grain[vl])
                if v.get("sd"):
                    self._sd_seen = True
                    self.tx_credits.done = True
                    self._check_normal(now, ev)
            else:
                for vl in range(16):
                    if credits[vl]:
                        self._credit_return(vl, credits[vl] * self.neg.ctrl_credit_grain[vl], ev)
        elif kind == "Param_Exchg":
            adv = v.get("neighbor")
            if adv:
                self._peer_advert = adv
            ev.append({"event": "param_exchg", "words": v.get("words", []), "neighbor": adv})
        elif kind == "Lane_Manage":
            ev.append({"event": "lane_manage", **{k: x for k, x in v.items()}})
        elif kind == "Block_Mode_Chg":
            self._rx_mode_chg(v.get("type", 0), ev)
        elif kind == "unknown":
            ev.append(_err("DLLCB", f"reserved CTRL/SUB_CTRL in {blk[:4].hex()}", "warning"))

    def _queue_mode_ack(self) -> None:
        """All pending ACKs in a Crd_Ack, then Block_Mode_Chg ACK (§4.3.3.8 steps 6-7)."""
        blk = self._make_crd_ack(retain=False)
        if blk is not None:
            self._queue_ctrl("Crd_Ack", blk, "Block_Mode_Chg")
        self._queue_ctrl("Block_Mode_Chg", C.block_mode_chg(1, **self._kw()))

    def _rx_mode_chg(self, t: int, ev: list) -> None:
        # §4.3.3.8 example: REQ is echoed once by the responder; each side then ACKs
        kw = self._kw()
        if t == 0:
            if self._mode_chg is None:
                self._mode_chg = "req_echoed"
                self._queue_ctrl("Block_Mode_Chg", C.block_mode_chg(0, **kw))
            elif self._mode_chg == "req_sent":
                self._mode_chg = "ack_sent"
                self._queue_mode_ack()
        elif t == 1:
            if self._mode_chg == "req_echoed":
                self._mode_chg = "ack_sent"
                self._queue_mode_ack()
            ev.append({"event": "mode_change_ready"})

    def _try_negotiate(self, now: int, ev: list) -> None:
        """Param_Init is complete once our Init is out and the peer's is in (§4.2, §4.4)."""
        if self.peer_init is None or self.neg is not None or not self._init_sent:
            return
        self.neg = C.negotiate(self.local_init, self.peer_init)
        shared = bool(self.neg.peer_rxbuf_vl_share and self.p.tuning.use_shared_credits)
        self.tx_credits = TxCredits(self.neg.vls, shared, self.p.tuning.shared_reserve_cells)
        ev.append({"event": "negotiated", "params": self.neg})
        if self.neg.failed:
            ev.append(_err("Init negotiation", "no common value for "
                           + ", ".join(self.neg.failed) + "; §4.4 defaults used", "info"))
        self._set_state(CREDIT_INIT, ev)
        early, self._early_crd = self._early_crd, []
        for blk in early:
            self._rx_control("Crd_Ack", blk, now, ev)

    def _check_normal(self, now: int, ev: list | None = None) -> None:
        if self.state == CREDIT_INIT and self._sd_sent and self._sd_seen:
            ev = ev if ev is not None else getattr(self, "_events_tx", [])
            self._set_state(NORMAL_STATE, ev)
            if self.guid is not None and not self._advert_sent:
                self._advert_sent = True
                self._queue_ctrl("Param_Exchg", C.neighbor_advert(self.guid, self.port_idx,
                                                                  **self._kw()))
