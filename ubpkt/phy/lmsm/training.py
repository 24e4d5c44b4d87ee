"""Training states of the LMSM: Link_Idle, Probe, RXEQ_Optimize, Discovery, Config and
Send_NullBlock (UB 2.0 §3.4.3.1-§3.4.3.6), as a mixin of :class:`ubpkt.phy.lmsm.Lmsm`.

Each ``_st_<State>`` runs once per block time in that state; it reads the per-lane receive state
the engine keeps (consecutive identical LTBs, lane IDs from AMCTL.LID) and moves with
``self._goto``, which checks the move against :data:`~.states.TRANSITIONS`.
"""
from __future__ import annotations

from ..lanes import standard_width
from ..ltb import CLTB, DLTB, width_from_code
from .states import FEC_NAMES, eq_mode_result


class TrainingStates:
    """Mixin: needs the engine's state and helpers (see engine.py)."""

    def _st_Link_Idle(self, term) -> None:
        self.probe_first = None
        self.tx_width = self.rx_width = 0
        self.rx_data_mode = False
        self.tx_m = self.rx_n = self.cfg.lanes
        self.tx_map = list(range(self.cfg.lanes))
        for r in self.rx:
            r.scr_pos = 0
            r.lane_id = r.lid_prev = None
            r.failed = False
        self.tx_pos = [0] * self.cfg.lanes
        self.unit_count = 0
        if self.cfg.primary is None:
            self.primary = False
            self.rnd_value = self.rng.randint(1, 127)
        if self.cfg.optical or (self._fixed_rate() and self.cfg.bypass_probe):
            self._goto("RXEQ_Optimize")
        elif self.cfg.bypass_probe:
            self._goto("Discovery", "Active")
        else:
            self._goto("Probe", "Wait")

    def _st_Probe(self, term) -> None:
        if self.sub == "Wait":
            if self.state_ticks >= 2:
                self._goto("Probe", "Confirm")
            return
        L = self.cfg.lanes
        det = (list(term) if term is not None else [True] * L)[:L]
        if self.probe_first is None:  # the first detection on entering Probe.Confirm
            if not any(det):
                self._goto("Probe", "Wait")
                return
            if not all(det):
                # §3.4.3.2: termination on some lanes only: wait, then detect again
                self.probe_first = det
                self.probe_wait = self.profile.probe_redetect_blocks
                self._event("probe_partial_termination", detected=det)
                return
        elif self.probe_wait > 0:
            self.probe_wait -= 1
            return
        else:
            first, self.probe_first = self.probe_first, None
            if det != first:  # the result changed: start over from Probe.Wait
                self._event("probe_redetect_mismatch", first=first, second=det)
                self._goto("Probe", "Wait")
                return
        if all(det):
            self.tx_m = L
            self.tx_map = list(range(L))
        elif det[0]:
            n = 0
            while n < L and det[n]:
                n += 1
            self.tx_m = standard_width(n)
            self.tx_map = list(range(self.tx_m))
        else:  # no termination on lane 0: reverse lane 0 to the top lane (§3.4.3.2)
            top = L - 1
            n = 0
            while n < L and det[top - n]:
                n += 1
            self.tx_m = standard_width(n)
            self.tx_map = [top - i for i in range(self.tx_m)]
            self._event("tx_lane_reversal", lane0=top)
        self._goto("Discovery", "Active")

    def _st_RXEQ_Optimize(self, term) -> None:
        if self.state_ticks > 64:  # RX equalisation adaptation done (simulated)
            self._goto("Discovery", "Active")

    def _st_Discovery(self, term) -> None:
        cfg = self.cfg
        if self.sub == "Active":
            # port-type negotiation (§3.4.2.1)
            for r in self.rx:
                ltb = r.ltb
                if isinstance(ltb, DLTB) and cfg.primary is None and ltb.random_value:
                    if ltb.random_value != self.last_rx_rnd:
                        self.last_rx_rnd = ltb.random_value
                        if ltb.random_value == self.rnd_value:
                            self.rnd_value = self.rng.randint(1, 127)
                        else:
                            self.primary = self.rnd_value > ltb.random_value
                    break
            for r in self.rx:
                if isinstance(r.ltb, DLTB) and r.consec >= 1:
                    rlw = width_from_code(r.ltb.rlw)
                    if rlw:
                        self.tx_m = min(rlw, self.tx_m)
                    break
            minimum = 256 if self.from_retrain else cfg.discovery_min_tx
            pred = (lambda t: isinstance(t, DLTB) and t.type in (0xA0, 0xA1)
                    and t.port_type != int(bool(self.primary))
                    and width_from_code(t.tlw) is not None and width_from_code(t.tlw) <= self.rx_n
                    and width_from_code(t.rlw) is not None
                    and width_from_code(t.rlw) <= self.tx_m)
            peer_tlw = [width_from_code(r.ltb.tlw) for r in self.rx
                        if isinstance(r.ltb, DLTB) and r.consec >= 1 and
                        width_from_code(r.ltb.tlw)]
            n_rx = min([self.rx_n] + peer_tlw)
            got = self._latch("disc_active", self._all_consec(n_rx, 8, pred))
            if got is None and self._timeout():
                t = self._any_consec(8, pred)
                got = [t] if t is not None else None
                if got is None:
                    self._goto("Link_Idle")
                    return
                # shrink the RX width to the lanes that do deliver DLTBs from logical lane 0
                m = self._rx_logical()
                n = 0
                while n in m and self.rx[m[n]].consec >= 8:
                    n += 1
                self.rx_n = max(1, standard_width(n))
            if got is not None and self.tx_since_rx >= minimum or (got and self._timeout()):
                d0 = got[0]
                self.rx_n = min(width_from_code(d0.tlw), self.rx_n)
                self.peer_rates = d0.data_rates
                self.peer_fec_support = d0.fec_support
                self.peer_il_support = d0.fec_interleave_support
                if not self.primary:
                    self.link_id = 0xFF
                self._goto("Discovery", "Confirm")
            return
        # Confirm
        if not self.primary:
            lanes = self._rx_lanes(1)
            if lanes and isinstance(lanes[0].ltb, DLTB) and lanes[0].ltb.type == 0xA1 and \
                    lanes[0].ltb.link_id != 0xFF:
                self.link_id = lanes[0].ltb.link_id
        for r in self.rx:
            t = r.ltb
            if isinstance(t, DLTB) and r.consec >= 8 and width_from_code(t.rlw) != self.tx_m \
                    and width_from_code(t.rlw):
                self.tx_m = min(width_from_code(t.rlw), self.tx_m)
        negotiated = cfg.primary is None  # port type negotiation active (§3.4.2.1)
        pred = (lambda t: isinstance(t, DLTB) and t.type == 0xA1 and t.link_id == self.link_id
                and width_from_code(t.tlw) == self.rx_n and width_from_code(t.rlw) == self.tx_m
                and (not negotiated or t.port_type != int(bool(self.primary))))
        got = self._latch("disc_confirm", self._all_consec(self.rx_n, 8, pred))
        if got is not None and self.tx_since_rx >= 16:
            self._choose_fec()
            self._goto("Config", "Active")
        elif self._timeout():
            self._goto("Link_Idle")

    def _choose_fec(self) -> None:
        if self.primary:
            ours = {m for m in self.cfg.fec_support}
            theirs = {m for m, b in (("rs-t2", 1), ("rs-t4", 2)) if self.peer_fec_support & b}
            both = ours & theirs
            if self.cfg.fec == "bypass":
                self.fec_mode = "bypass"
            elif self.cfg.fec in both:
                self.fec_mode = self.cfg.fec
            else:
                self.fec_mode = "rs-t4" if "rs-t4" in both else ("rs-t2" if both else "bypass")
            wbit = {1: 1, 2: 2, 4: 4, 8: 8}[self.tx_m]
            self.fec_interleave = bool(self.cfg.interleave and self.fec_mode != "bypass"
                                       and self.peer_il_support & wbit)

    def _st_Config(self, term) -> None:
        types = {"Active": (0xB0, 0xB1), "Check": (0xB1, 0xB2), "Confirm": (0xB2,)}[self.sub]
        lanes = self._rx_lanes(self.rx_n)
        if lanes is not None and all(isinstance(r.ltb, CLTB) for r in lanes):
            c0 = lanes[0].ltb
            if not self.primary and c0.type in (0xB0, 0xB1, 0xB2):
                self.fec_mode = FEC_NAMES.get(c0.fec_mode, "rs-t4")
                self.fec_interleave = bool(c0.fec_interleave)
            self.eq_negotiated = eq_mode_result(self.cfg.eq_mode if not self.cfg.optical else 2,
                                                c0.eq_mode)
        pred_ok = True
        if lanes is not None:
            for i, r in enumerate(lanes):
                t = r.ltb
                if not (isinstance(t, CLTB) and r.consec >= 2 and t.type in types
                        and t.link_id == self.link_id and width_from_code(t.tlw) == self.rx_n
                        and width_from_code(t.rlw) == self.tx_m and t.lane_id == i):
                    pred_ok = False
        ok = self._latch("config", True if (lanes is not None and pred_ok) else None)
        if ok and self.tx_since_rx >= 16:
            nxt = {"Active": "Check", "Check": "Confirm", "Confirm": None}[self.sub]
            if nxt:
                self._goto("Config", nxt)
            else:
                self._enter_snb()
            return
        if self._any_consec(2, lambda t: isinstance(t, DLTB) and t.type == 0xA0) or \
                self._timeout():
            self._goto("Link_Idle")

    def _enter_snb(self) -> None:
        self._goto("Send_NullBlock")
        self.tx_width = self.tx_m
        self.pending_sdf = True
        self.tx_stream = b""
        self.tx_nulls = 0
        self.tx_since_rx = 0

    def _st_Send_NullBlock(self, term) -> None:
        if self.rx_data_mode and self.rx_nulls_consec >= 8 and self.tx_since_rx >= 16:
            self._goto("Link_Active")
            for r in self.rx:
                r.misses = 0
                r.next_expected = None
            return
        if self._any_consec(2, lambda t: isinstance(t, DLTB)):
            self._goto("Discovery", "Active")
        elif self._timeout():
            self.retrain_num += 1
            self._enter_retrain() if self.retrain_num < 0xFF else self._goto("Link_Idle")

    def rx_lane0_phys(self) -> int:
        m = self._rx_logical()
        p = m.get(0, 0)
        return p if p in (0, 1, 3, 7) else 0

