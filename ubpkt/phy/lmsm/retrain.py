"""Retrain, Change_Speed and Equalization (UB 2.0 §3.4.3.8-§3.4.3.10) as a mixin of
:class:`ubpkt.phy.lmsm.Lmsm`: RLTB exchange, the rate change through electrical idle and EEIB,
and the coarse-tune / preset equalization phases.
"""
from __future__ import annotations

from ..lanes import standard_width
from ..ltb import DLTB, ELTB, RLTB, eeib
from .states import BLOCK, EEIB_RATE, FEC_NAMES


class RetrainStates:
    """Mixin: needs the engine's state and helpers (see engine.py)."""

    def _enter_retrain(self) -> None:
        if self.state == "Retrain":
            return
        for r in self.rx:
            r.failed = False
        self.rx_data_mode = False
        self.tx_m = max(self.tx_width, 1) if self.tx_width else self.tx_m
        self.rx_n = max(self.rx_width, 1) if self.rx_width else self.rx_n
        self.unit_count = 0
        if self.primary and not self._fixed_rate() and self.rate < self._common_max_rate():
            self.change_speed = True
            self.target_rate = self._next_rate()
        self._goto("Retrain", "Active")

    def _st_Retrain(self, term) -> None:
        n = self.rx_n
        if self.sub == "Active" and self.state_ticks <= 2 and self._needs_eq():
            # §3.4.3.8: equalization to perform at this rate: the primary goes to
            # EQ.Coarsetune_Confirm, the secondary to EQ.Coarsetune_Active, after at most two RLTBs
            self._goto("Equalization", "Coarsetune_Confirm" if self.primary else
                       "Coarsetune_Active")
            return
        if self.sub == "Active":
            if self._any_consec(8, lambda t: isinstance(t, RLTB) and t.change_speed == 1):
                if not self.change_speed and self.rate < self._common_max_rate():
                    self.change_speed = True
            got = self._latch("retrain_active", self._all_consec(
                n, 8, lambda t: isinstance(t, RLTB) and t.type in (0xC0, 0xC1)
                and t.change_speed == int(self.change_speed)))
            if got is not None and self.tx_since_rx >= 16:
                if not self.primary:
                    self.fec_mode = FEC_NAMES.get(got[0].fec_mode, self.fec_mode)
                    self.crc_mode = bool(got[0].crc_mode)
                    if self.change_speed:
                        self.peer_target = got[0].data_rates
                self._goto("Retrain", "Confirm")
                return
            if self._any_consec(2, lambda t: isinstance(t, DLTB)):
                self.from_retrain = True
                self._goto("Discovery", "Active")
            elif self._timeout():
                if self._any_consec(2, lambda t: isinstance(t, (RLTB, DLTB))):
                    self.from_retrain = True
                    self._shrink_to_working()
                    self._goto("Discovery", "Active")
                else:
                    self._goto("Link_Idle")
            return
        # Confirm (§3.4.3.8)
        cs = self._any_consec(8, lambda t: isinstance(t, RLTB) and t.type in (0xC1, 0xC3)
                              and t.change_speed == 1)
        if cs is not None and self.change_speed and \
                self.tx_since_rx >= self.cfg.change_speed_min_tx and \
                (self.rate > 0 or self._common_max_rate() > 0):
            # eight Retrain.Confirm or Retrain.EQ_Initial RLTBs with Change_Speed on any lane, and
            # 128 RLTBs with Change_Speed sent since one was received
            self._goto("Change_Speed", "EEI")
            return
        got = self._latch("retrain_confirm", self._all_consec(
            n, 8, lambda t: isinstance(t, RLTB) and t.type == 0xC1 and t.change_speed == 0))
        if got is not None and self.tx_since_rx >= 16 and not self.change_speed:
            if len({t.data_rates for t in got}) == 1:  # the same rate identifiers on all lanes
                self._enter_snb()
                return
        if self._any_consec(8, lambda t: isinstance(t, DLTB)):
            self.from_retrain = True
            self._goto("Discovery", "Active")
        elif self._timeout():
            self._goto("Link_Idle")

    def _sends_eq_initial(self) -> bool:
        """§3.4.3.8 Retrain.Confirm: RLTBs of the Retrain.EQ_Initial type when a rate change is
        under way to a rate that still needs equalization (and the current rate is lower)."""
        if not self.change_speed:
            return False
        target = self.target_rate if self.primary else self._common_max_rate()
        if target <= self.rate or self.cfg.optical:
            return False
        mode = self.eq_negotiated
        if mode == 2 or target in self.eq_done:
            return False
        return mode == 0 or target == self._common_max_rate()

    def _shrink_to_working(self) -> None:
        """After a failed retrain, keep only TX lanes whose peer RX still answers (as Probe would
        find): the peer's lane IDs seen on our RX mirror the working lanes in a symmetric link."""
        m = self._rx_logical()
        working = [i for i in range(self.tx_m) if i in m and self.rx[m[i]].consec >= 2]
        if working and 0 not in working:
            top = self.tx_m - 1
            n = 0
            while top - n in working:
                n += 1
            w = standard_width(n)
            self.tx_map = [self.tx_map[top - i] for i in range(w)]
            self.tx_m = self.rx_n = w
            self._event("lane_reversal_after_failure", width=w)
        elif working:
            n = 0
            while n in working:
                n += 1
            self.tx_m = self.rx_n = standard_width(n)

    def _st_Change_Speed(self, term) -> None:
        if self.sub == "EEI":
            self._goto("Change_Speed", "Idle")
            self.idle_left = self.cfg.change_speed_idle
            return
        self.idle_left -= 1
        if self.idle_left <= 0:
            if self.primary:
                new = self.target_rate
            else:
                common = self._rates() & getattr(self, "peer_target", self.peer_rates)
                new = max((r for r in range(9) if common >> r & 1), default=0)
            self._event("rate_change", rate=new, previous=self.rate)
            self.rate = new
            name = EEIB_RATE.get(new)
            if name is not None:  # custom rates: vendor-defined EEIB, none sent here
                seq = eeib(name)
                self.eeib_units = [seq[k:k + BLOCK] for k in range(0, len(seq), BLOCK)]
            for r in self.rx:
                r.locked = False
            self.change_speed = self.primary and self.rate < self._common_max_rate()
            if self.change_speed:
                self.target_rate = self._next_rate()
            self.unit_count = 0
            # §3.4.3.9: after the rate change the next state is Retrain.Active; equalization at
            # the new rate is entered from there (§3.4.3.8)
            self._goto("Retrain", "Active")

    def _needs_eq(self) -> bool:
        if self.rate < 1 or self.cfg.optical or self.rate in self.eq_done:
            return False
        mode = self.eq_negotiated
        if mode == 2:
            return False
        if mode == 1:
            return self.rate == self._common_max_rate()
        return True

    def _st_Equalization(self, term) -> None:
        n = self.rx_n
        s = self.sub

        def all_phase(ph, extra=lambda t: True):
            return self._all_consec(n, 2, lambda t: self._peer_phase(t) == ph and extra(t))
        if s == "Coarsetune_Active":
            if all_phase("Coarsetune_Confirm"):
                self._goto("Equalization", "Coarsetune_Confirm")
        elif s == "Coarsetune_Confirm":
            if self.primary and all_phase("Coarsetune_Confirm"):
                self._goto("Equalization", "Passive")
            elif not self.primary and all_phase("Passive"):
                self._goto("Equalization", "Active")
        elif s == "Passive":
            if self.primary and all_phase("Passive"):
                self._goto("Equalization", "Active")
            elif self._all_consec(n, 2, lambda t: isinstance(t, RLTB)):
                self._eq_finished()
            else:  # echo a legal requested preset (EQ.Passive)
                lanes = self._rx_lanes(n)
                if lanes and isinstance(lanes[0].ltb, ELTB) and \
                        self._peer_phase(lanes[0].ltb) == "Active" and lanes[0].consec >= 2:
                    if lanes[0].ltb.tx_preset <= 10:
                        self.preset_req = lanes[0].ltb.tx_preset
        elif s == "Active":
            if all_phase("Passive", lambda t: t.tx_preset == self.preset_req and not t.eq_reject):
                if self.primary:
                    self._eq_finished()
                else:
                    self._goto("Equalization", "Passive")
        if self._timeout():
            self._event("eq_timeout", rate=self.rate)
            self._eq_finished()

    def _eq_finished(self) -> None:
        self.eq_done.add(self.rate)
        self._event("eq_complete", rate=self.rate)
        self._goto("Retrain", "Active")

    def _next_rate(self) -> int:
        top = self._common_max_rate()
        common = self._rates() & self.peer_rates
        if self.eq_negotiated == 0:  # Full_EQ: level by level
            for r in range(self.rate + 1, 9):
                if common >> r & 1:
                    return r
        return top

    def _eq_phase_code(self) -> int:
        s = self.sub
        if s == "Coarsetune_Active":
            return 0
        if s == "Coarsetune_Confirm":
            return 1
        if s == "Active":
            return 3 if self.primary else 2
        return 2 if self.primary else 3  # Passive

    def _peer_phase(self, ltb) -> str | None:
        if not isinstance(ltb, ELTB):
            return None
        c = ltb.eq_phase
        if c == 0:
            return "Coarsetune_Active"
        if c == 1:
            return "Coarsetune_Confirm"
        peer_primary = not self.primary
        if c == 2:
            return "Passive" if peer_primary else "Active"
        return "Active" if peer_primary else "Passive"

