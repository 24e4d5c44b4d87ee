"""The DLL engine's receive side (UB 2.0 §4.3.4, §4.6.3, §4.7.3.2).

``receive(flits, now, fec_ok)`` takes whole flits from the PHY with their FEC status (True,
False, or one bool per flit: the PCS's per-flit decoding result, §3.2.3.5).  Blocks are
delimited from their headers (:func:`ubpkt.link.blocks.next_block`), checked (BCRC in CRC
mode), and acted on: DLLDBs are reassembled into DLLDPs and delivered, DLLCBs update credits,
ACKs, negotiation and the control plane.  A bad block starts a retry (:mod:`.retry_sm`).

In non-CRC mode the receiver has no BCRC: a flit whose FEC decoding failed is what starts the
retry, and RcvPtr counts every correct flit of a retained block (§4.7.3.2.2; profile
``noncrc_block_granular_retry`` restarts at the block instead).

Two paths, same results (``tests/link/test_dll_contract.py`` and ``soak_fastpaths.py``
compare them flit by flit):

* the reference path takes one flit at a time (``_rx_flit``), as the state machines read;
* the fast path (``fast_rx``, default) takes every run of flits that the reference path would
  handle as plain blocks - RETRY_REQ_SM NORMAL, no Retry_Ack_Set being stepped over, FEC good -
  delimits all complete blocks of the run and checks their BCRCs at once (``_delimit``, or
  ``ubpkt._linkc.delimit`` in one compiled call), takes every stretch of good DLLDBs of one
  DLLDP together (``_rx_dlldbs``) and control blocks one by one; it hands back to the
  reference path at the first flit where any of those conditions ends.  In REQ/WAIT it jumps
  between the flits that could be Retry blocks (everything else is dropped there), counting
  what it skips.
"""
from __future__ import annotations

from bisect import bisect_left

from .. import control as C
from ..blocks import FLIT, next_block
from ..credits import cells_for
from ..crc30 import block_crc, native
from ..plength import packet_length
from ..retry import RETAINED
from .events import (LaneManageReceived, ModeChangeReady, Negotiated, PacketDelivered,
                     ParamExchanged)
from .events import Discarded as DiscardedEv
from .retry_sm import err
from .rx_plan import CRD_ACK_CODE, NULL_CODE, delimit_blocks, rx_plan
from .state import DllState, ReqState
from ..credits import TxCredits

__all__ = ["ReceiveSide"]

_CB_KIND = {(c, s): k for k, (c, s, _) in C.KINDS.items()}


def _retry_candidates(data, n: int) -> list:
    """Indices of the flits of ``data`` whose LCH could be a one-flit Retry block (CLENGTH 0,
    CFG 0, CTRL 1: what :meth:`RetrySide._scan_retry_flit` looks at before its BCRC), found
    with numpy: in REQ/WAIT every other flit is dropped, so the receiver jumps between these."""
    import numpy as np
    arr = np.frombuffer(data, dtype=np.uint8, count=n * FLIT).reshape(n, FLIT)
    hit = ((arr[:, 0] & 0x7C) == 0) & ((arr[:, 1] & 0x0F) == 0) & ((arr[:, 2] >> 4) == 1)
    return np.flatnonzero(hit).tolist()


def dlldb_gather(rx, spans, skip_first: int, skip: int, tail: int) -> tuple:
    """(payload, marks) of the DLLDBs of one DLLDP at ``spans`` ((start flit, flits) of
    ``rx``): their bodies joined (each without its first ``skip`` bytes, ``skip_first`` for the
    first block, and its last ``tail`` bytes: LPH/LBH and BCRC), and byte 0 of every block with
    its CRD or ACK bit set, in block order.  ``ubpkt._linkc.dlldb_gather`` does the same in C
    (tested equal)."""
    with memoryview(rx) as mv:
        parts = [mv[s * FLIT + (skip if k else skip_first):(s + f) * FLIT - tail]
                 for k, (s, f) in enumerate(spans)]
        body = b"".join(parts)
        del parts
    marks = [rx[s * FLIT] for s, _ in spans if rx[s * FLIT] & 0xC0]
    return body, marks


class ReceiveSide:
    """Delimiting, checking, reassembly and control-block handling (mixed into the engine)."""

    fast_rx = True

    def receive(self, data, now: int, fec_ok=True) -> list:
        """Flits from the PHY.  ``fec_ok``: True, False (every flit failed FEC decoding) or one
        bool per flit (the PHY reports a per-flit FEC status).  Returns the events raised (also
        queued for ``pop_events``)."""
        ev: list = []
        self._now_hint = now
        self._timers(now, ev)
        if self.state == DllState.DISABLED or self.req_sm in (ReqState.RETRAIN, ReqState.ERROR):
            return self._raise(ev)
        n = len(data) // FLIT
        all_ok = fec_ok is True
        self.stats["rx_flits"] += n
        mv = memoryview(data)
        i = 0
        fast = self.fast_rx
        if all_ok and fast and n and self.req_sm is ReqState.NORMAL and self._skip_set is None:
            # the common call (every flit FEC-good, nothing special going on): what the loop's
            # first round below does, without building the per-flit FEC list
            i = self._rx_run(mv, 0, n, now, ev)
            if i == n:
                self._rx_deadline = (now + self.p.tuning.rx_stall_timeout_ns) if self._rx \
                    else None
                return self._raise(ev)
        fec = [fec_ok] * n if isinstance(fec_ok, bool) else list(fec_ok)
        retry_flits = None
        while i < n:
            if fast and fec[i] and self.req_sm is ReqState.NORMAL and self._skip_set is None \
                    and self.state is not DllState.DISABLED:
                if all_ok:
                    end = n
                else:
                    try:
                        end = fec.index(False, i)
                    except ValueError:
                        end = n
                i = self._rx_run(mv, i, end, now, ev)
                continue
            if fast and self.req_sm in (ReqState.REQ, ReqState.WAIT):
                # only Retry blocks matter now: skip to the next flit that may be one
                if retry_flits is None:
                    retry_flits = _retry_candidates(data, n)
                k = bisect_left(retry_flits, i)
                j = retry_flits[k] if k < len(retry_flits) else n
                if j > i:
                    self._rx_index += j - i     # what _rx_flit counts for each skipped flit
                    self.stats["fec_errors"] += fec[i:j].count(False)
                    i = j
                    continue
            self._rx_flit(bytes(mv[i * FLIT:(i + 1) * FLIT]), fec[i], now, ev)
            i += 1
        self._rx_deadline = (now + self.p.tuning.rx_stall_timeout_ns) if self._rx else None
        return self._raise(ev)

    # -- the reference path: one flit ---------------------------------------------------------------
    def _rx_flit(self, flit: bytes, ok: bool, now: int, ev: list) -> None:
        self._rx_index += 1
        if not ok:
            self.stats["fec_errors"] += 1
        if self.req_sm in (ReqState.REQ, ReqState.WAIT):
            self._scan_retry_flit(flit, ok, now, ev)
            return
        if self.req_sm != ReqState.NORMAL or self.state == DllState.DISABLED:
            return                              # RETRAIN / ERROR: nothing is received
        if self._skip_set is not None:
            # the rest of an accepted Retry_Ack_Set (and any set right behind it, sent for the
            # same RcvPtr) before the replay: one-flit Retry_Idle / Retry_Ack blocks
            if ok and (flit == self._skip_set or self._is_retry_flit(flit)):
                if flit[2] & 0xF == 2 and self._cb_values(flit)["rdptr"] != self.rcvptr:
                    self._skip_set = None
                    self._rx_error(now, ev, "Retry_Ack for another RcvPtr")
                return
            self._skip_set = None
        if self._flitwise:
            # non-CRC mode, §4.7.3.2.2: RcvPtr counts each correct flit; a failed flit is
            # dropped with everything after it and resent from that very flit
            if not ok:
                self._rx_error(now, ev, "FEC decoding failure")
                return
            self._rx += flit
            self._rx_fec.append(True)
            if len(self._rx) == FLIT:
                self._rx_ret = self._header_retained(flit)
            if self._rx_ret:
                self.rcvptr_abs += 1
        else:
            self._rx += flit
            self._rx_fec.append(ok)
            if not ok:
                # FEC failure: Go-Back-N from the start of this block (§4.7.1)
                self._rx_error(now, ev, "FEC decoding failure")
                return
        size = self._rx_block_flits()
        if size is not None and len(self._rx) >= size * FLIT:
            blk = bytes(self._rx[:size * FLIT])
            del self._rx[:size * FLIT]
            del self._rx_fec[:size]
            self._rx_block(blk, now, ev)

    # -- the fast path: a run of good flits ----------------------------------------------------------
    def _rx_run(self, mv, i: int, end: int, now: int, ev: list) -> int:
        """Flits ``i..end-1`` (all FEC-good, RETRY_REQ_SM NORMAL): the flit index where the
        reference path must take over (``end`` when the run was consumed)."""
        rx = self._rx
        old = len(rx) // FLIT                   # flits of the pending block already held
        rx += mv[i * FLIT:end * FLIT]
        total = len(rx) // FLIT
        flitwise = self._flitwise
        p = self._rx_pkt
        pending = None if p is None else (p[1] - p[4], p[2])
        nat = native()
        base = self._rx_index - old             # _rx_index of the flit before rx[0]
        if not flitwise and self.state is DllState.NORMAL and self.tx_credits is not None \
                and self.neg is not None:
            # the common call (plain good blocks only) in one pass: rx_plan, or its C twin
            plan = (nat.rx_plan if nat is not None else rx_plan)(
                rx, total, pending, self.crc_mode, self.covers, CRD_ACK_CODE, NULL_CODE)
            if plan[0] is not None:
                return self._rx_apply_plan(plan, rx, total, base, end, ev)
            spans, kinds, crcs = plan[1:]
        elif nat is not None:
            # the same delimiting and BCRC checks in one compiled call
            spans, kinds, crcs = nat.delimit(rx, total, pending, self.crc_mode, self.covers)
        else:
            spans, kinds, crcs = self._delimit(rx, total, pending)
        k = 0
        nspans = len(spans)
        while k < nspans:
            start, flits = spans[k]
            kind = kinds[k]
            if kind != "cb" and not flitwise:
                # the DLLDBs of one DLLDP that follow here, up to a DLLCB, a bad BCRC or the
                # DLLDP's end: at once (continuing a DLLDP begun in an earlier run)
                p = self._rx_pkt
                left = p[1] - p[4] if p is not None else \
                    ((rx[start * FLIT + 2] & 0x3F) >> 2) + 1
                stop = min(nspans, k + left)
                j = k
                while j < stop and kinds[j] != "cb" and (crcs is None or crcs[j]):
                    j += 1
                if j > k:
                    self._rx_dlldbs(rx, spans[k:j], ev)
                    last, lflits = spans[j - 1]
                    self._rx_index = base + last + lflits
                    k = j
                    continue
            k += 1
            blk = bytes(rx[start * FLIT:(start + flits) * FLIT])
            self._rx_index = base + start + flits
            if flitwise and self._header_retained(blk):
                new = start + flits - max(start, old)   # its flits not counted yet
                self.rcvptr_abs += new
            self._rx_block(blk, now, ev, None if crcs is None else crcs[k - 1])
            if self.req_sm != ReqState.NORMAL or self._skip_set is not None \
                    or self.state == DllState.DISABLED:
                # the reference path goes on after this block's last flit, with nothing
                # held (the block was complete; a retry request dropped what followed)
                self._rx = bytearray()
                self._rx_fec = []
                return i + start + flits - old
        # every complete block handled: keep the incomplete tail
        done = spans[-1][0] + spans[-1][1] if spans else 0
        if done:
            del rx[:done * FLIT]
        tail = total - done                     # flits of the incomplete block now held
        new_tail = min(tail, end - i)           # of which arrived in this run
        if flitwise and tail:
            if tail == new_tail:
                self._rx_ret = self._header_retained(rx[:FLIT])
            if self._rx_ret:
                self.rcvptr_abs += new_tail
        self._rx_fec = [True] * tail
        self._rx_index = base + total
        return end

    def _rx_apply_plan(self, plan, rx, total: int, base: int, end: int, ev: list) -> int:
        """The effects of a common call's plan (:mod:`.rx_plan`), in the order the
        block-by-block path has them: counters in bulk, then each action."""
        actions, counted, worthy = plan[:3]
        if counted or actions:
            self._req_run = (None, -100)
        self.rcvptr_abs += counted
        self.pending_ack += counted
        self.pending_ack_worthy += worthy
        neg = self.neg
        for a in actions:
            op = a[0]
            if op == 2:
                head, body, nb, flits, last4 = a[1:]
                if head is not None:
                    plen = ((head[2] & 0x3F) << 8) | head[3]
                    vl = ((head[0] & 1) << 3) | (head[1] >> 5)
                    p = [head, (plen >> 10) + 1, ((plen >> 5) & 0x1F) + 1, [], 0, vl, plen, 0]
                else:
                    p = self._rx_pkt
                p[3].append(body)
                p[4] += nb
                p[7] += flits
                if p[4] == p[1]:
                    self._rx_pkt = None
                    self._deliver(p, last4, ev)
                else:
                    self._rx_pkt = p
            elif op == 0:
                self._rx_header_bits(a[1], ev)
            else:
                if a[1]:
                    self._ack_release(a[1] * neg.ctrl_ack_grain, ev)
                credits = a[2]
                if any(credits):
                    grain = neg.ctrl_credit_grain
                    for vl, c in enumerate(credits):
                        if c:
                            self._credit_return(vl, c * grain[vl], ev)
        done = plan[3]
        if done:
            del rx[:done * FLIT]
        self._rx_fec = [True] * (total - done)  # the incomplete block held
        self._rx_index = base + total
        return end

    def _delimit(self, rx, total: int, pending) -> tuple:
        """(spans, kinds, crc_ok) of the complete blocks at the start of ``rx``
        (:func:`.rx_plan.delimit_blocks`; ``ubpkt._linkc.delimit`` does the same in C)."""
        return delimit_blocks(rx, total, pending, self.crc_mode, self.covers)

    def _rx_dlldbs(self, rx, spans, ev: list) -> None:
        """Consecutive DLLDBs of one DLLDP (``spans``: their blocks in ``rx``, BCRCs good,
        nothing between them; the first an LPH when no DLLDP is open), with the same effects
        and events as :meth:`_rx_block` block by block: RcvPtr and the ACKs owed count their
        flits, each LPH/LBH's CRD/ACK bits return credits and release the retry buffer (in
        block order, so their error events come in that order), the bodies join the DLLDP,
        which is delivered when its last block is among them."""
        self._req_run = (None, -100)
        first = spans[0][0] * FLIT
        last_s, last_f = spans[-1]
        flits = last_s + last_f - spans[0][0]
        self.rcvptr_abs += flits
        self.pending_ack += flits
        self.pending_ack_worthy += flits
        crc = 4 if self.crc_mode else 0
        p = self._rx_pkt
        skip_first = 4 if p is None else 2      # an LPH opens the DLLDP, LBHs go on
        nat = native()
        body, marks = (nat.dlldb_gather if nat is not None else dlldb_gather)(
            rx, spans, skip_first, 2, crc)
        for b0 in marks:
            self._rx_header_bits(b0, ev)
        if p is None:
            plen = ((rx[first + 2] & 0x3F) << 8) | rx[first + 3]
            vl = ((rx[first] & 1) << 3) | (rx[first + 1] >> 5)
            p = [bytes(rx[first:first + 4]), (plen >> 10) + 1, ((plen >> 5) & 0x1F) + 1,
                 [], 0, vl, plen, 0]
        p[3].append(body)
        p[4] += len(spans)
        p[7] += flits
        if p[4] == p[1]:
            self._rx_pkt = None
            end = (last_s + last_f) * FLIT
            self._deliver(p, bytes(rx[end - 4:end]), ev)
        else:
            self._rx_pkt = p

    # -- blocks ------------------------------------------------------------------------------------
    @property
    def _flitwise(self) -> bool:
        return not self.crc_mode and not self.p.noncrc_block_granular_retry

    @staticmethod
    def _header_retained(flit) -> bool:
        if flit[1] & 0x0F:
            return True                          # a DLLDB
        return RETAINED(_CB_KIND.get((flit[2] >> 4, flit[2] & 0xF), "unknown"))

    def _rx_block_flits(self) -> int | None:
        """Flits of the block being received (the shared delimiter, UB 2.0 §4.3.4.1)."""
        p = self._rx_pkt
        return next_block(self._rx, 0, None if p is None else (p[1] - p[4], p[2]))[1]

    def _cb_values(self, blk) -> dict:
        """What the one DLLCB reader (:func:`control.parse_control`) finds in a control block
        whose BCRC was checked (Retry_Req / Retry_Ack, 32 to a retry set, read directly by
        :func:`control.retry_values`, which equals it)."""
        v = C.retry_values(blk)
        if v:
            return v
        return C.parse_control(bytes(blk), self.crc_mode, covers_info=self.covers,
                               crc_ok=True).values

    def _crc_ok(self, blk) -> bool:
        if not self.crc_mode:
            return True
        word = int.from_bytes(blk[-4:], "big")
        return block_crc(bytes(blk[:-4]), word >> 30, self.covers) == word & 0x3FFFFFFF

    def _rx_block(self, blk: bytes, now: int, ev: list, crc_ok: bool | None = None) -> None:
        if not (self._crc_ok(blk) if crc_ok is None else crc_ok):
            self.stats["crc_errors"] += 1
            self._rx_error(now, ev, "BCRC mismatch")
            return
        b1 = blk[1]
        flits = len(blk) // FLIT
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
            if not self._flitwise:
                self.rcvptr_abs += flits
            self._count_ack(flits)
            self._rx_control(kind, blk, now, ev)
            return
        # a DLLDB
        self._req_run = (None, -100)
        if not self._flitwise:
            self.rcvptr_abs += flits
        self._count_ack(flits)
        if blk[0] & 0xC0:
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
        now = self._now_hint
        total = packet_length(p[6], self.crc_mode)
        head = p[0]
        # CRD/ACK/CRD_VL belong to this link (already processed): hand the packet up with them
        # cleared, as the peer's network layer gave it.  One join: the padding after the
        # packet's last byte is cut from the last body before it (when it lies there).
        parts = [bytes((head[0] & 0x03,)), head[1:]]
        parts += p[3]
        if total is None:
            ev.append(err(now, "DLLDP length", f"reserved PLENGTH {p[6]:#06x}", "warning",
                          "ub.lph.plength"))
            pkt = b"".join(parts)
        else:
            cut = len(head) + sum(map(len, p[3])) - total
            if 0 < cut < len(parts[-1]) and len(parts) > 2:
                parts[-1] = parts[-1][:-cut]
                pkt = b"".join(parts)
            else:
                pkt = b"".join(parts)[:total]
        eflag = bool(last_blk[-4 if self.crc_mode else -1] & 0x40)
        vl = p[5]
        if self.state != DllState.NORMAL:
            ev.append(DiscardedEv(now, f"DLLDP in {self.state.value}", vl))
            return
        cells = cells_for(p[7], self.neg.flow_ctrl_size)
        rc = self.rx_credits
        if not rc.receive(vl, cells):
            ev.append(err(now, "Receive Buffer Overflow", f"VL{vl} DLLDP of {cells} cells"))
        self.stats["delivered"] += 1
        ev.append(PacketDelivered(now, pkt, vl, eflag, cells))
        if self.p.tuning.rx_auto_release:
            rc.release(vl, cells)

    def release(self, vl: int, cells: int) -> None:
        """The network layer consumed ``cells`` cells of VL ``vl`` (``rx_auto_release`` off)."""
        if self.rx_credits is not None:
            self.rx_credits.release(vl, cells)

    def _count_ack(self, flits: int) -> None:
        self.pending_ack += flits
        self.pending_ack_worthy += flits

    # -- credits and ACKs received -----------------------------------------------------------------
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
            ev.append(err(self._now_hint, "Flow Control Overflow",
                          f"VL{vl} credits above their initial value"))
        self._crd_deadline = (None if tc.outstanding() == 0 else
                              self._now_hint + self.p.tuning.credit_return_timeout_ns)

    def _ack_release(self, flits: int, ev: list) -> None:
        if not self.rb.release(flits):
            ev.append(err(self._now_hint, "DL Protocol Error", f"ACK of {flits} flits "
                          f"overflows NumFreeBuf ({self.rb.numfreebuf} of {self.rb.depth} free)"))

    # -- control blocks ----------------------------------------------------------------------------
    def _rx_control(self, kind: str, blk: bytes, now: int, ev: list) -> None:
        if self.state == DllState.PARAM_INIT and kind not in ("Init", "NOB"):
            if kind == "Crd_Ack":
                # the peer's initial credits can overtake our own negotiation: keep them
                self._early_crd.append(blk)
            return
        if kind == "Crd_Ack":
            # about one per DLLDP: its fields straight from the bytes (crd_ack_values equals
            # the one reader's values, tested)
            ack_num, credits, t, sd = C.crd_ack_fields(blk)
            self._rx_crd_ack_fields(ack_num, credits, t, sd, len(blk) // FLIT, now, ev)
            return
        v = C.parse_control(blk, self.crc_mode, covers_info=self.covers, crc_ok=True).values
        if kind == "Init":
            if "init" in v:
                self.peer_init = v["init"]
                self._try_negotiate(now, ev)
        elif kind == "Crd_Ack":
            self._rx_crd_ack(v, len(blk) // FLIT, now, ev)
        elif kind == "Param_Exchg":
            adv = v.get("neighbor")
            if adv:
                self._peer_advert = adv
            ev.append(ParamExchanged(now, v.get("words", []), adv))
        elif kind == "Lane_Manage":
            ev.append(LaneManageReceived(now, dict(v)))
        elif kind == "Block_Mode_Chg":
            self._rx_mode_chg(v.get("type", 0), ev)
        elif kind == "unknown":
            ev.append(err(now, "DLLCB", f"reserved CTRL/SUB_CTRL in {blk[:4].hex()}", "warning"))

    def _rx_crd_ack(self, v: dict, flits: int, now: int, ev: list) -> None:
        self._rx_crd_ack_fields(v.get("ack_num", 0), v.get("credits", [0] * 16), v.get("t", 0),
                                v.get("sd", 0), flits, now, ev)

    def _rx_crd_ack_fields(self, ack_num: int, credits, t: int, sd: int, flits: int, now: int,
                           ev: list) -> None:
        if not t and not any(credits):
            self.pending_ack_worthy -= flits    # pure-ACK Crd_Acks are ACKed lazily
        neg = self.neg
        if neg is None:
            return
        if ack_num:
            self._ack_release(ack_num * neg.ctrl_ack_grain, ev)
        grain = neg.ctrl_credit_grain
        if t:
            for vl in range(16):
                if credits[vl]:
                    self.tx_credits.add_initial(vl, credits[vl] * grain[vl])
            if sd:
                self._sd_seen = True
                self.tx_credits.done = True
                self._check_normal(now, ev)
        elif any(credits):
            for vl, c in enumerate(credits):
                if c:
                    self._credit_return(vl, c * grain[vl], ev)

    def _queue_mode_ack(self) -> None:
        """All pending ACKs in a Crd_Ack, then Block_Mode_Chg ACK (§4.3.3.8 steps 6-7)."""
        blk = self._make_crd_ack(retain=False)
        if blk is not None:
            self._queue_ctrl("Crd_Ack", blk, "Block_Mode_Chg")
        self._queue_ctrl("Block_Mode_Chg", C.block_mode_chg(1, **self._kw()))

    def _rx_mode_chg(self, t: int, ev: list) -> None:
        # §4.3.3.8 example: REQ is echoed once by the responder; each side then ACKs
        if t == 0:
            if self._mode_chg is None:
                self._mode_chg = "req_echoed"
                self._queue_ctrl("Block_Mode_Chg", C.block_mode_chg(0, **self._kw()))
            elif self._mode_chg == "req_sent":
                self._mode_chg = "ack_sent"
                self._queue_mode_ack()
        elif t == 1:
            if self._mode_chg == "req_echoed":
                self._mode_chg = "ack_sent"
                self._queue_mode_ack()
            ev.append(ModeChangeReady(self._now_hint))

    # -- Param_Init / Credit_Init ------------------------------------------------------------------
    def _try_negotiate(self, now: int, ev: list) -> None:
        """Param_Init is complete once our Init is out and the peer's is in (§4.2, §4.4)."""
        if self.peer_init is None or self.neg is not None or not self._init_sent:
            return
        self.neg = C.negotiate(self.local_init, self.peer_init)
        shared = bool(self.neg.peer_rxbuf_vl_share and self.p.tuning.use_shared_credits)
        self.tx_credits = TxCredits(self.neg.vls, shared, self.p.tuning.shared_reserve_cells)
        ev.append(Negotiated(now, self.neg))
        if self.neg.failed:
            ev.append(err(now, "Init negotiation", "no common value for "
                          + ", ".join(self.neg.failed) + "; §4.4 defaults used", "info"))
        self._set_state(DllState.CREDIT_INIT, ev, "Init exchanged")
        early, self._early_crd = self._early_crd, []
        for blk in early:
            self._rx_control("Crd_Ack", blk, now, ev)

    def _check_normal(self, now: int, ev: list | None = None) -> None:
        if self.state == DllState.CREDIT_INIT and self._sd_sent and self._sd_seen:
            ev = ev if ev is not None else self._events_tx
            self._set_state(DllState.NORMAL, ev, "initial credits exchanged")
            if self.guid is not None and not self._advert_sent:
                self._advert_sent = True
                self._queue_ctrl("Param_Exchg", C.neighbor_advert(self.guid, self.port_idx,
                                                                  **self._kw()))
