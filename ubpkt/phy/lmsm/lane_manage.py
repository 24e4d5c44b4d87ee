"""Link_Active lane management (UB 2.0 §3.4.2.3, §3.4.2.4, §3.4.2.8, §3.4.3.7) as a mixin of
:class:`ubpkt.phy.lmsm.Lmsm`: AMCTL supervision per lane, quick width degradation through the
AMCTL Remote TX Link Width Switch (no Retrain), the QDLWS width increase (the new lanes send
Retrain.LP1_PHY_Up RLTBs at the short AMCTL period until the peer has seen eight in a row, then an
AMCTL Link Width Switch widens the link), dynamic FEC close/open, and the requests that leave
Link_Active through an AMCTL with EDF (Retrain Link, a rate change, an FEC/CRC mode change).
"""
from __future__ import annotations

from ..lanes import quick_degrade_width
from .states import BLOCK


class LaneManagement:
    """Mixin: needs the engine's state and helpers (see engine.py)."""

    def request_retrain(self) -> None:
        """The Retrain Link bit (§3.4.3.7): send an AMCTL with EDF and enter Retrain.Active."""
        if self.state != "Link_Active":
            raise RuntimeError("retrain is requested from Link_Active")
        self._send_edf()

    def request_fec(self, open_: bool) -> None:
        """Dynamic FEC open/close via AMCTL FEC Control (§3.2.6), Link_Active only."""
        if self.state != "Link_Active":
            raise RuntimeError("dynamic FEC control needs Link_Active")
        detail = "open_fec" if open_ else "close_fec"
        for i in range(self.tx_width):
            self.pending_ctrl[i] = ("fec_control", detail)

        def done():
            self.pcs_closed = not open_
            self._event("tx_fec_" + ("open" if open_ else "close"))
        self.after_ctrl = done

    def _st_Link_Active(self, term) -> None:
        period = self.profile.period0 // BLOCK + 1
        lanes = self._rx_lanes(self.rx_width)
        if lanes is None:
            lanes = []
        failed = set()
        for i, r in enumerate(lanes):
            if r.next_expected is None:
                r.next_expected = self.tick + period
            while self.tick > r.next_expected:
                r.misses += 1
                r.next_expected += period
            if r.misses >= self.profile.quick_degrade_misses:
                failed.add(i)
        if failed and not self.pending_ctrl:
            for i in failed:
                if not lanes[i].failed:
                    lanes[i].failed = True
                    self._event("rx_lane_failed", logical_lane=i)
            if 0 in failed or not self.cfg.quick_degrade:
                self._send_edf()
                return
            target = quick_degrade_width(self.rx_width, failed)
            if 0 < target < self.rx_width:
                self._event("request_remote_tx_width", width=target)
                for i in range(self.tx_width):
                    self.pending_ctrl[i] = ("remote_tx_width", f"x{target}")
                self.degraded_from = self.rx_width
            return
        if not self._fixed_rate() and not self.pending_ctrl and self.rate < \
                self._common_max_rate() and self.primary and not self.change_speed:
            self.change_speed = True
            self.target_rate = self._next_rate()
            self._send_edf()

    def _send_edf(self) -> None:
        for i in range(self.tx_width):
            self.pending_ctrl[i] = ("link_width_switch", "x0")

        def after():
            self.tx_pos = [0] * self.cfg.lanes  # seed reset with the EDF (§3.2.2.4)
            self.retrain_num += 1
            self._enter_retrain()
        self.after_ctrl = after

