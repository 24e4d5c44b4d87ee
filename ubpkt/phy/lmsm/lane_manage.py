"""Link_Active lane management (UB 2.0 §3.4.2.3, §3.4.2.4, §3.4.2.8, §3.4.3.7) as a mixin of
:class:`ubpkt.phy.lmsm.Lmsm`: AMCTL supervision per lane, quick width degradation through the
AMCTL Remote TX Link Width Switch (no Retrain), the QDLWS width increase (the new lanes send
Retrain.LP1_PHY_Up RLTBs at the short AMCTL period until the peer has seen eight in a row, then an
AMCTL Link Width Switch widens the link), dynamic FEC close/open, and the requests that leave
Link_Active through an AMCTL with EDF (Retrain Link, a rate change, an FEC/CRC mode change).
"""
from __future__ import annotations

from ..lanes import quick_degrade_width
from ..ltb import RLTB
from .states import FEC_CODES

#: "no tick limit" for the coasting cache
_FOREVER = float("inf")


class LaneManagement:
    """Mixin: needs the engine's state and helpers (see engine.py)."""

    def request_retrain(self) -> None:
        """The Retrain Link bit (§3.4.3.7): send an AMCTL with EDF and enter Retrain.Active."""
        self._touch()
        if self.state != "Link_Active":
            raise RuntimeError("retrain is requested from Link_Active")
        self._send_edf()

    def request_fec(self, open_: bool) -> None:
        """Dynamic FEC open/close via AMCTL FEC Control (§3.2.6), Link_Active only."""
        self._touch()
        if self.state != "Link_Active":
            raise RuntimeError("dynamic FEC control needs Link_Active")
        detail = "open_fec" if open_ else "close_fec"
        for i in range(self.tx_width):
            self.pending_ctrl[i] = ("fec_control", detail)

        def done():
            self.pcs_closed = not open_
            self._event("tx_fec_" + ("open" if open_ else "close"))
        self.after_ctrl = done

    # -- steady data transfer without block-by-block stepping ----------------------------------
    def can_coast(self) -> bool:
        """True when nothing but data blocks can happen in this state until the next AMCTL slot
        (Link_Active, no control AMCTL pending, no width increase, no lane counting misses).

        The lane part (the RX lanes in use all known and without misses) is cached: it only
        changes on a block step, a timeout or a public request (each bumps ``_rx_rev``), or when
        the tick passes the moment a lane in use would go stale (``_rx_logical``'s limit), so
        the cache holds (revision, rx width, last valid tick, answer).
        :meth:`_can_coast_uncached` is the reference the tests compare it with."""
        if not (self.state == "Link_Active" and not self.pending_ctrl and self.after_ctrl is None
                and self.width_up is None and self.rx_width_up is None and not self.pcs_closed):
            return False
        c = self._coast_cache
        if c is not None and c[0] == self._rx_rev and c[1] == self.rx_width and \
                self.tick <= c[2]:
            return c[3]
        m = self._rx_logical()
        n = self.rx_width
        if any(i not in m for i in range(n)):
            ok, until = False, _FOREVER  # lanes only go stale with time: stays False
        else:
            lanes = [self.rx[m[i]] for i in range(n)]
            ok = all(r.misses == 0 for r in lanes)
            limit = self._rx_stale_limit()
            until = min((r.last_amctl + limit for r in lanes), default=_FOREVER)
        self._coast_cache = (self._rx_rev, n, until, ok)
        return ok

    def _can_coast_uncached(self) -> bool:
        """:meth:`can_coast` computed from scratch (the reference for the cache)."""
        if not (self.state == "Link_Active" and not self.pending_ctrl and self.after_ctrl is None
                and self.width_up is None and self.rx_width_up is None and not self.pcs_closed):
            return False
        lanes = self._rx_lanes(self.rx_width)  # the lanes in use (a dropped lane may miss)
        return lanes is not None and all(r.misses == 0 for r in lanes)

    _coast_cache: tuple | None = None
    _rx_rev = 0

    def _touch(self) -> None:
        """Something that can_coast's cache depends on may have changed."""
        self._rx_rev += 1

    def blocks_to_amctl(self) -> int:
        """Data block times this port sends before its next AMCTL."""
        return max(0, self._amctl_cycle() - 1 - self.unit_count)

    def coast(self, k: int) -> None:
        """Skip ``k`` block times of data (no AMCTL among them, see :meth:`blocks_to_amctl`):
        the clocks advance as if the data blocks had been sent and received; nothing else can
        change in them.  The PHY data path carries the data itself (:mod:`ubpkt.phy.link`, with
        its own scrambler streams), so the LMSM's stand-in Null Block stream and its keystream
        positions stay where they are on both ends (they only advance on real block steps,
        TX and RX alike)."""
        if k <= 0:
            return
        if not self.can_coast() or k > self.blocks_to_amctl():
            raise RuntimeError("coast() crosses an AMCTL slot or a non-steady state")
        self.tick += k
        self.state_ticks += k
        self.now += k * self.block_ns
        self.unit_count += k

    # -- QDLWS width increase (§3.4.2.3): the PHY part of the Lane_Manage exchange --------------
    def _lp1_rltb(self) -> RLTB:
        """The RLTB a lane leaving electrical idle sends: Retrain.Active values without rate
        change or EQ request, type Retrain.LP1_PHY_Up."""
        return RLTB(type=0xC2, data_rates=self._rates(), change_speed=0,
                    fec_mode=FEC_CODES[self.fec_mode], fec_interleave=int(self.fec_interleave),
                    crc_mode=int(self.crc_mode), local_tx_preset=self.preset_req)

    def request_width_increase(self, width: int) -> None:
        """TX side, after the peer ACKed the Lane_Manage request (Change TLW): lanes
        ``tx_width .. width-1`` leave electrical idle and send RLTBs, AMCTLs at the short
        period on every lane; data stays on the current lanes."""
        self._touch()
        if self.state != "Link_Active" or not self.tx_width < width <= self.tx_m:
            raise RuntimeError(f"width increase x{self.tx_width} -> x{width} not possible in "
                               f"{self.state} (configured x{self.tx_m})")
        self.width_up = {"width": width, "confirmed": False}
        for i in range(self.tx_width, width):
            self.tx_pos[self.tx_map[i]] = 0  # the lane's scrambler restarts with its AMCTL
        self.unit_count = self._amctl_cycle()  # the next slot is an AMCTL on every lane
        self._event("tx_width_increase_start", width=width, previous=self.tx_width)

    def expect_width_increase(self, width: int) -> None:
        """RX side, the Lane_Manage request accepted: switch to the short AMCTL period and
        watch lanes ``rx_width .. width-1`` for eight consecutive good RLTBs."""
        self._touch()
        if self.state != "Link_Active" or width <= self.rx_width:
            raise RuntimeError("no width increase to expect")
        self.rx_width_up = width
        self.lanes_up_reported = False
        for r in self.rx:
            r.up_seen = False
            r.misses = 0
            r.next_expected = self.tick + self._amctl_cycle() + 2

    def confirm_width_increase(self) -> None:
        """TX side, the peer's Lane_Manage "RX lane up" arrived: the next AMCTL carries the Link
        Width Switch to the new width on all lanes, data follows at that width."""
        self._touch()
        if not self.width_up:
            raise RuntimeError("no width increase under way")
        w = self.width_up["width"]
        for i in range(w):
            self.pending_ctrl[i] = ("link_width_switch", f"x{w}")

        def widen(w=w):
            self._event("tx_width_switch", width=w, previous=self.tx_width)
            self.tx_width = w
            self.width_up = None
            self._end_short_period()
        self.after_ctrl = widen

    def _end_short_period(self) -> None:
        self.rx_width_up = None if self.rx_width_up is not None and \
            self.rx_width >= self.rx_width_up else self.rx_width_up
        for r in self.rx:
            r.misses = 0
            r.next_expected = self.tick + self._amctl_cycle() + 2

    def _check_lanes_up(self) -> None:
        m = self._rx_logical()
        want = range(self.rx_width, self.rx_width_up)
        if all(i in m and self.rx[m[i]].consec >= 8 and isinstance(self.rx[m[i]].ltb, RLTB)
               and self.rx[m[i]].ltb.type == 0xC2 for i in want):
            self.lanes_up_reported = True
            self._event("rx_lanes_up", width=self.rx_width_up)

    # -- FEC / CRC mode switching (§3.4.2.8, §4.3.3.8) -----------------------------------------
    def request_mode_change(self, fec: str | None = None, crc_mode: bool | None = None) -> None:
        """Primary port, once the data links exchanged Block_Mode_Chg REQ/ACK: retrain into the
        new FEC and/or CRC mode (RLTB.FEC_Mode_Ctrl / RLTB.CRC_Mode carry it, the secondary
        takes it in Retrain.Active).  Link_Active -> AMCTL with EDF -> Retrain -> Link_Active."""
        self._touch()
        if self.state != "Link_Active":
            raise RuntimeError("a mode change is requested from Link_Active")
        if not self.primary:
            raise RuntimeError("the primary port initiates FEC/CRC mode switching (§4.3.3.8)")
        if fec is not None:
            if fec not in FEC_CODES:
                raise ValueError(f"unknown FEC mode {fec!r}")
            self.fec_mode = fec
        if crc_mode is not None:
            if not crc_mode and self.fec_mode == "bypass":
                raise ValueError("non-CRC mode needs the FEC enabled (§4.3.2.3)")
            self.crc_mode = bool(crc_mode)
        self._event("mode_change_request", fec=self.fec_mode, crc_mode=self.crc_mode)
        self._send_edf()

    def _st_Link_Active(self, term) -> None:
        period = self._amctl_cycle()
        if self.rx_width_up is not None and not self.lanes_up_reported:
            self._check_lanes_up()
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

