"""The DLL engine's transmit side (UB 2.0 §4.3.3.1, §4.6, §4.7.3.2).

``send`` queues network packets per VL; ``transmit`` hands the PHY whole flits, picking at each
block boundary the next block by the recommended order of §4.3.3.1: Retry_Ack_Set and replay
(RETRY_ACK_SM ACK: nothing else), Retry_Req_Set, Block_Mode_Chg, Crd_Ack T=0, Lane_Manage,
Param_Exchg, Crd_Ack T=1, Init, NOB, DLLDP (VLs round-robin, only with enough credits), Null.
Every block but Null and the Retry blocks is kept in the retry buffer.  Each DLLDB's LPH/LBH
returns one data-credit grain and one ACK grain when owed; the block's BCRC is then patched by
CRC linearity (:func:`ubpkt.link.crc30.bcrc_patch`) instead of recomputed.
"""
from __future__ import annotations

from .. import control as C
from ..blocks import FLIT
from ..credits import RxCredits, cells_for
from ..crc30 import bcrc_patch, bcrc_patch_term as patch_term, native
from ..framing import frame_many
from ..plength import MAX_FLITS, MAX_PACKET, layout
from ..retry import RETAINED
from .retry_sm import err
from .state import AckState, DllState, ReqState

__all__ = ["TransmitSide"]


class TransmitSide:
    """Scheduling, credits spent and returned, the retry buffer's input (mixed into the engine)."""

    # -- network side ------------------------------------------------------------------------------
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
        flits = (lay.blocks - 1) * MAX_FLITS + lay.last_flits
        cells = cells_for(flits, self.neg.flow_ctrl_size)
        tc = self.tx_credits
        if tc.done and cells > (tc.initial_total if tc.shared else tc.initial[vl]):
            # it could never get enough credits: refuse rather than block the VL for ever
            self._events.append(err(now, "DLLDP too large", f"{cells} cells on VL{vl}, the "
                                    f"peer's receive buffer for it is {tc.initial[vl]} cells",
                                    "warning"))
            return False
        # (packet, error_flag, CRC mode, its flits in that mode, blocks once framed)
        self._txq[vl].append((bytes(packet), error_flag, self.crc_mode, flits, None))
        return True

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

    def _kw(self) -> dict:
        return {"crc_mode": self.crc_mode, "covers_info": self.covers}

    def _queue_ctrl(self, kind: str, blk: bytes, rank_name: str | None = None) -> None:
        self._ctrl.append((C.RANK[rank_name or kind], kind, blk))

    # -- PHY side ----------------------------------------------------------------------------------
    def transmit(self, now: int, max_flits: int = 1 << 30, *, fill: bool = False) -> bytes:
        """Up to ``max_flits`` whole flits for the PHY.  ``fill``: pad an idle link with Null
        blocks.  Events raised meanwhile go to ``pop_events``."""
        ev: list = []
        self._events_tx = ev
        self._now_hint = now
        self._timers(now, ev)
        want = max_flits * FLIT
        out = self._out
        burst = self.fast_tx
        while len(out) < want:
            if burst:
                got = self._data_burst(out, want)
                if got == self.BURST_SENT:
                    continue
                blk = None if got == self.BURST_IDLE else self._schedule(now)
            else:
                blk = self._schedule(now)
            if blk is None:
                if fill and self.state != DllState.DISABLED \
                        and self.req_sm not in (ReqState.RETRAIN, ReqState.ERROR):
                    out += C.null(**self._kw())
                    continue
                break
            out += blk
        if len(out) <= want:
            data = bytes(out)
            out.clear()
        else:
            data = bytes(out[:want])
            del out[:want]
        self.stats["tx_flits"] += len(data) // FLIT
        self._raise(ev)
        return data

    #: what :meth:`_data_burst` did: nothing (the scheduler picks the next block), appended
    #: blocks, or found that the scheduler would pick nothing now (nothing to send but Null fill)
    BURST_NONE, BURST_SENT, BURST_IDLE = 0, 1, 2

    #: ``False``: every block goes through the scheduler (the reference the burst is tested
    #: against, ``DLLEngine(fast_tx=False)``)
    fast_tx = True

    #: ``False``: the burst's Python loop even where ``ubpkt._linkc.tx_run`` is available (the
    #: reference the compiled loop is tested against)
    fast_tx_native = True

    def _data_burst(self, out: bytearray, want: int) -> int:
        """Append blocks to ``out`` for as long as the scheduler would pick nothing but data
        blocks and Crd_Ack T=0 (same blocks, bytes and state as :meth:`_schedule` block by
        block): the link is DLL_Normal with no retry set, replay, control block, mode change
        or NOB owed.  During a transmit call those conditions hold (only a DLLDP's end can
        owe a NOB, which ends the burst), so one pass does what rounds through the scheduler
        would: a forced Crd_Ack (§4.3.3.1 order, §4.7.3.2.4: ACKs owed over the threshold or
        the retry buffer low) before any data block, the data blocks while none is forced,
        and, when no data block can follow (no DLLDP can start, or the retry buffer is too
        full), the idle Crd_Ack the scheduler would send (§4.6.3 rule 2).  Returns
        ``BURST_IDLE`` when the scheduler would pick nothing more now, ``BURST_NONE`` when not
        one block was appended and the scheduler decides, else ``BURST_SENT`` (``out`` full,
        a NOB owed, or a Crd_Ack the scheduler must decide about)."""
        if self.state is not DllState.NORMAL or self._error or self.ack_sm is not AckState.NORMAL \
                or self._req_set_due or self._ctrl or self._mode_chg is not None \
                or self._nob_due or self.req_sm in (ReqState.RETRAIN, ReqState.ERROR):
            return self.BURST_NONE
        if self.fast_tx_native and self.rx_credits is not None and self._sd_sent:
            nat = native()
            if nat is not None:
                return self._tx_plan(nat, out, want)
        sent = False
        while True:
            if self._crd_ack_forced():
                # what _schedule picks here (no control block queued, no mode change): the
                # forced Crd_Ack T=0; appended without a round through the scheduler
                blk = self._make_crd_ack()
                if blk is None:
                    # the scheduler decides what comes instead
                    return self.BURST_SENT if sent else self.BURST_NONE
                out += blk
                sent = True
                if len(out) >= want:
                    return self.BURST_SENT
                continue
            got = self._data_blocks(out, want)
            if got is None:
                return self.BURST_SENT          # out full, or a NOB owed
            if got:
                sent = True
                continue                        # stopped for a forced Crd_Ack
            # stuck: no data block can follow now; what _schedule picks past
            # _next_data_block (None): the idle Crd_Ack, or nothing
            blk = self._make_crd_ack(idle=True)
            if blk is None:
                return self.BURST_IDLE
            out += blk
            sent = True
            if len(out) >= want:
                return self.BURST_SENT

    #: what ``ubpkt._linkc.tx_plan`` stopped on (see its C comment)
    _TXP_DECIDE, _TXP_SENT, _TXP_IDLE, _TXP_START = 0, 1, 2, 3

    def _tx_plan_cfg(self) -> tuple:
        """The link's settings ``tx_plan`` reads (fixed while the link is up, but for the CRC
        mode), built once per negotiation and CRC mode."""
        key = (id(self.neg), self.crc_mode, self.covers)
        cfg = self.__dict__.get("_txp_cfg")
        if cfg is None or cfg[0] != key:
            t, neg = self.p.tuning, self.neg
            cfg = self._txp_cfg = (key, (
                t.retry_lockout_reserve, t.ack_force_flits, t.crd_ack_force_cells,
                neg.data_ack_grain, tuple(neg.data_credit_grain), neg.ctrl_ack_grain,
                tuple(neg.ctrl_credit_grain), neg.flow_ctrl_size, neg.peer_packet_min_interval,
                self.crc_mode, self.covers, C.CRD_LCH))
        return cfg[1]

    def _tx_plan(self, nat, out: bytearray, want: int) -> int:
        """:meth:`_data_burst` by ``ubpkt._linkc.tx_plan``: the whole burst in one compiled
        call (the Python loop of :meth:`_data_burst` is its twin: the reference it is tested
        against flit by flit, and the fallback); a DLLDP whose packet is not framed yet (or
        was framed in another CRC mode) is started here, by :meth:`_start_dlldp`."""
        cfg = self._tx_plan_cfg()
        rb, tc, rc = self.rb, self.tx_credits, self.rx_credits
        n0 = len(out)
        while True:
            (status, cur, rb.wr, self.pending_ack, self.pending_ack_worthy, self._vl_rr,
             tc.share, nob, started, acks) = nat.tx_plan(
                out, want, self._tx_cur, self._txq, self._vl_rr, tc.excl, tc.share, tc.shared,
                rb.data, rb.blocks, rb.wr, rb.tail, rb.depth, self.pending_ack,
                self.pending_ack_worthy, rc.pending, cfg)
            self._tx_cur = cur
            if nob:
                self._nob_due += nob
            if started and self._crd_deadline is None:
                self._crd_deadline = self._now_hint + self.p.tuning.credit_return_timeout_ns
            if acks:
                self.stats["crd_acks"] += acks
            if status == self._TXP_SENT:
                return self.BURST_SENT
            if status == self._TXP_IDLE:
                return self.BURST_IDLE
            if status == self._TXP_DECIDE:
                return self.BURST_SENT if len(out) > n0 else self.BURST_NONE
            # _TXP_START: a DLLDP that needs framing, started the Python way
            if self._start_dlldp(cfg[0]) is not None:
                continue
            if self._crd_ack_forced():
                continue
            blk = self._make_crd_ack(idle=True)
            if blk is None:
                return self.BURST_IDLE
            out += blk
            if len(out) >= want:
                return self.BURST_SENT

    def _data_blocks(self, out: bytearray, want: int):
        """The data part of :meth:`_data_burst` (no Crd_Ack forced on entry): data blocks
        appended while none is forced.  ``None``: stopped with ``out`` full or a NOB owed;
        ``True``: stopped because a Crd_Ack is forced now; ``False``: stuck (no data block
        can follow now, and ``out`` has room)."""
        t = self.p.tuning
        reserve = t.retry_lockout_reserve
        low = reserve + MAX_FLITS               # _crd_ack_forced's retry-buffer condition
        rb = self.rb
        depth, kept, kept_at = rb.depth, rb.data, rb.blocks
        rc = self.rx_credits
        owed = rc.pending if rc is not None else None
        neg = self.neg
        ack_grain, crd_grains = neg.data_ack_grain, neg.data_credit_grain
        crc_mode, covers = self.crc_mode, self.covers
        size = len(out)
        owing = owed is not None and any(owed)  # only shrinks during the call
        nat = native() if self.fast_tx_native else None
        # _next_data_block inlined (the blocks framed for the queue are this engine's own
        # bytearrays: their CRD/ACK bits and BCRC are patched in place, and the retry buffer
        # keeps them as they are)
        while size < want:
            free = depth - (rb.wr - rb.tail)
            if free < low and self.pending_ack:
                return True                     # a Crd_Ack is forced first
            cur = self._tx_cur
            if cur is None:
                cur = self._start_dlldp(reserve)
                if cur is None:
                    return False
            blocks, i, vl, flits = cur
            if nat is not None:
                # the rest of this DLLDP's blocks in one compiled call (the same loop as below)
                pa = self.pending_ack
                i2, wr, size, pa2, owing = nat.tx_run(
                    blocks, i, out, kept, kept_at, rb.wr, free, low, reserve, want, pa,
                    ack_grain, owed if owing else None, crd_grains, crc_mode, covers)
                if pa2 != pa:
                    self.pending_ack = pa2
                    self.pending_ack_worthy = min(self.pending_ack_worthy, pa2)
                if i2 == i:
                    if size < want:
                        return self._crd_ack_forced()
                    return None
                rb.wr = wr
                cur[1] = i2
                if i2 < len(blocks):
                    # out full, or the retry buffer (too full, or low with ACKs owed)
                    if size < want:
                        return self._crd_ack_forced()
                    return None
                self._tx_cur = None
                gap = neg.peer_packet_min_interval - flits
                if gap > 0:
                    self._nob_due += gap
                if self._nob_due:
                    return None
                continue
            blk = blocks[i]
            nbytes = len(blk)
            n = nbytes // FLIT
            if free - 1 - n < reserve:
                return self._crd_ack_forced()
            b0 = blk[0]
            new0 = b0 & 0x03
            if owing:
                grain = rc.take_grain(crd_grains)
                if grain is None:
                    owing = any(owed)
                else:
                    new0 |= 0x80 | grain[0] << 2
            if self.pending_ack >= ack_grain:
                self.pending_ack -= ack_grain
                self.pending_ack_worthy = min(self.pending_ack_worthy, self.pending_ack)
                new0 |= 0x40
            if new0 != b0:
                blk[0] = new0
                if crc_mode:
                    word = int.from_bytes(blk[-4:], "big")
                    crc = (word & 0x3FFFFFFF) ^ patch_term(nbytes - 4, b0 ^ new0, covers)
                    blk[-4:] = ((word & 0xC0000000) | crc).to_bytes(4, "big")
            i += 1
            cur[1] = i
            if i == len(blocks):
                self._tx_cur = None
                gap = neg.peer_packet_min_interval - flits
                if gap > 0:
                    self._nob_due += gap
            wr = rb.wr
            kept_at.append(wr)
            kept[wr] = blk
            rb.wr = wr + n
            out += blk
            size += nbytes
            if self._nob_due:
                return None
        return None

    def _retain(self, kind: str, blk: bytes) -> bytes:
        if RETAINED(kind):
            self.rb.store(blk)
        return blk

    def _schedule(self, now: int):
        """The next block by the recommended priority (§4.3.3.1)."""
        if self.state == DllState.DISABLED or self.req_sm in (ReqState.RETRAIN, ReqState.ERROR) \
                or self._error:
            return None
        # RETRY_ACK_SM: only the Retry_Ack_Set and the replay
        if self.ack_sm == AckState.ACK:
            if self._ack_set_due:
                self._ack_set_due = False
                return C.retry_ack_set(*self._ack_set_args, **self._kw())
            blk = self.rb.next_replay()
            if blk is not None:
                self.stats["replayed_flits"] += len(blk) // FLIT
                return blk
            self._ack_move(AckState.NORMAL, self._events_tx, "replay done")
        if self._req_set_due:
            self._sent_req_set(now)
            return C.retry_req_set(self.rcvptr, self.num_phy_reinit, self.num_retry,
                                   **self._kw())
        if self.state == DllState.PARAM_INIT and self._handshake_done and not self._init_sent:
            self._init_sent = True
            self._queue_ctrl("Init", self.local_init.encode(self.p.tuning.dll_init_flits,
                                                            **self._kw()))
            self._try_negotiate(now, self._events_tx)
        if self.state == DllState.CREDIT_INIT and not self._crd_init_queued and self._init_sent \
                and not any(k == "Init" for _, k, _ in self._ctrl):
            # our Init goes out before our initial credits (§4.2: Param_Init, then Credit_Init)
            self._queue_credit_init()
        reserve = self.p.tuning.retry_lockout_reserve
        # owed credits / ACKs (Crd_Ack T=0): forced when over thresholds or the buffer is low
        if self._mode_chg == "quiet":
            return None                         # §4.3.3.8 step 6/7: nothing until the switch
        force = self._crd_ack_forced()
        if self._ctrl or force:
            blk = self._next_control(now, force, reserve)
            if blk is not None:
                return blk
        if self._mode_chg is not None:
            return None
        if self._nob_due:
            if self.rb.can_store(1, reserve):
                self._nob_due -= 1
                return self._retain("NOB", C.nob(**self._kw()))
            return self._make_crd_ack(idle=True)
        if self.state == DllState.NORMAL:
            blk = self._next_data_block(reserve)
            if blk is not None:
                return blk
        # idle: return what is owed
        return self._make_crd_ack(idle=True)

    def _next_control(self, now: int, force: bool, reserve: int):
        ctrl = self._ctrl
        allowed = range(len(ctrl))
        if self._mode_chg is not None:          # only Crd_Ack and Block_Mode_Chg meanwhile
            allowed = [i for i in allowed if ctrl[i][1] in ("Crd_Ack", "Block_Mode_Chg")]
        best = min(allowed, key=lambda i: ctrl[i][0], default=None)
        if force and (best is None or C.RANK["Crd_Ack_T0"] <= ctrl[best][0]):
            blk = self._make_crd_ack()
            if blk is not None:
                return blk
        if best is not None:
            rank, kind, blk = ctrl[best]
            if not RETAINED(kind) or self.rb.can_store(len(blk) // FLIT, reserve):
                del ctrl[best]
                if kind == "Crd_Ack" and blk[3] & 0x80:
                    self._sd_sent = True
                    self._check_normal(now)
                if kind == "Block_Mode_Chg" and blk[3] & 0xF == 1:
                    self._mode_chg = "quiet"
                return self._retain(kind, blk)
        return None

    def _crd_ack_forced(self) -> bool:
        if self.neg is None or (self.state is not DllState.NORMAL
                                and self.state is not DllState.CREDIT_INIT):
            return False
        t = self.p.tuning
        pending = self.pending_ack
        if pending >= t.ack_force_flits:
            return True
        if pending:
            rb = self.rb                        # NumFreeBuf low
            if rb.depth - (rb.wr - rb.tail) < t.retry_lockout_reserve + MAX_FLITS:
                return True
        rc = self.rx_credits
        return rc is not None and max(rc.pending) >= t.crd_ack_force_cells

    def _make_crd_ack(self, idle: bool = False, retain: bool = True):
        if self.neg is None or self.state not in (DllState.NORMAL, DllState.CREDIT_INIT) \
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
        blk = C.crd_ack(n, credits, t=0, sd=0, crc_mode=self.crc_mode, covers_info=self.covers)
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

    def _start_dlldp(self, reserve: int):
        """Pick a VL round-robin among those with a packet and credits; frame its packet."""
        neg = self.neg
        txq = self._txq
        if not any(txq):
            return None
        rr = self._vl_rr
        fcs = neg.flow_ctrl_size
        crc_mode = self.crc_mode
        tc = self.tx_credits
        for vl in (*range(rr, 16), *range(rr)):
            q = txq[vl]
            if not q:
                continue
            head = q[0]
            if head[2] == crc_mode:
                flits = head[3]                 # the layout found by send
            else:                               # queued before a CRC mode change
                lay = layout(len(head[0]), crc_mode)
                flits = (lay.blocks - 1) * MAX_FLITS + lay.last_flits
            cells = -(-flits // fcs)            # cells_for
            if tc.excl[vl] + (tc.share if tc.shared else 0) < cells:    # tc.can_send
                continue
            first = flits if flits <= MAX_FLITS else MAX_FLITS
            rb = self.rb
            if rb.depth - (rb.wr - rb.tail) - 1 - first < reserve:     # rb.can_store
                return None
            blocks = self._framed(q)
            tc.spend(vl, cells)
            if self._crd_deadline is None:
                self._crd_deadline = self._now_hint + self.p.tuning.credit_return_timeout_ns
            self._vl_rr = (vl + 1) % 16
            cur = self._tx_cur = [blocks, 0, vl, flits]
            return cur
        return None

    #: packets of one VL framed together (one BCRC batch); a setting of this engine, not a
    #: wire choice: it changes nothing on the wire
    frame_batch = 8

    def _framed(self, q):
        """Pop the head of VL queue ``q`` as blocks.  Packets are framed ahead in groups of
        ``frame_batch`` (kept in the queue with the CRC mode they were framed for)."""
        head = q[0]
        crc_mode = self.crc_mode
        if head[4] is None or head[2] != crc_mode:
            group = [q[k] for k in range(min(self.frame_batch, len(q)))]
            framed = frame_many([(p, e) for p, e, *_ in group], crc_mode,
                                covers_info=self.covers)
            for k, (entry, blocks) in enumerate(zip(group, framed)):
                flits = entry[3]
                if entry[2] != crc_mode:
                    lay = layout(len(entry[0]), crc_mode)
                    flits = (lay.blocks - 1) * MAX_FLITS + lay.last_flits
                q[k] = (entry[0], entry[1], crc_mode, flits, blocks)
        return q.popleft()[4]

    def _next_data_block(self, reserve: int):
        cur = self._tx_cur
        if cur is None:
            cur = self._start_dlldp(reserve)
            if cur is None:
                return None
        blocks, i, vl, flits = cur
        blk = blocks[i]
        if not self.rb.can_store(len(blk) // FLIT, reserve):
            return None
        # piggy-back one credit grain and one ACK grain in this block's LPH/LBH
        rc = self.rx_credits
        neg = self.neg
        grain = rc.take_grain(neg.data_credit_grain) if rc is not None and rc.owed() else None
        ack = self.pending_ack >= neg.data_ack_grain
        if ack:
            self.pending_ack -= neg.data_ack_grain
            self.pending_ack_worthy = min(self.pending_ack_worthy, self.pending_ack)
        b0 = blk[0]
        new0 = b0 & 0x03
        if grain is not None:
            new0 |= 0x80 | grain[0] << 2
        if ack:
            new0 |= 0x40
        if new0 != b0:
            # only byte 0 changes: patch the BCRC by linearity (same bytes as re-sealing)
            blk = bytearray(blk)
            blk[0] = new0
            if self.crc_mode:
                word = int.from_bytes(blk[-4:], "big")
                crc = bcrc_patch(word & 0x3FFFFFFF, len(blk) - 4, b0 ^ new0, self.covers)
                blk[-4:] = ((word & 0xC0000000) | crc).to_bytes(4, "big")
        cur[1] += 1
        if cur[1] == len(blocks):
            self._tx_cur = None
            gap = neg.peer_packet_min_interval - flits
            if gap > 0:
                self._nob_due += gap
        self.rb.store(blk)
        return blk
