"""The LMSM engine of one port (UB 2.0 §3.4.3) on the engine contract of :mod:`ubpkt.engine`.

The LMSM is clocked: one *block time* (16 symbols) is the unit of its time.  What travels per
lane and block time is a :class:`~.states.Unit`: an LTB (16 scrambled symbols, CRC-16), an AMCTL
(its 40 eBCH-16 symbols; it takes one block slot here), a data block (16 scrambled symbols of the
FEC-bypass Null Block stream), PRBS (PCS closed, §3.2.6) or an EEIB.  The unit *kind* stands for
the framing a locked receiver knows; everything inside (LTB fields and CRC, AMCTL codewords and
polarity, scrambling with per-lane seeds from AMCTL.LID, lane order) is really encoded and decoded.

Contract (:class:`ubpkt.engine.Engine`), time in ns, ``block_ns`` ns per block time::

    lm.receive(units, now)        # the units of one block time, per physical RX lane
    out = lm.transmit(now)        # one block time: state logic, then the units to send per TX lane
    lm.next_deadline()            # when the next block time is due (or a state timeout)
    lm.handle_timeout(now)        # a state timeout that expired without a block time
    lm.pop_events()               # StateChanged / LmsmEvent, oldest first

``step(rx_units, termination)`` is ``receive`` + ``transmit`` of one block time, the lock-step
form :class:`~.sim.LinkSim` and the tests use.  ``termination`` (Probe receiver detection) is
passed to ``receive``.  Timeouts are counted in block times (``PortConfig.timeout_ticks`` stands
for the millisecond timeouts).

Scrambler seeds (§3.2.2.4): every lane scrambler starts from its seed when training starts and is
reloaded at the AMCTL with EDF that ends data transfer (TX after sending it, RX on receiving it);
the AMCTL with SDF does not reload it, so data continues the training keystream.
"""
from __future__ import annotations

import random

import numpy as np

from ...engine import StateChanged
from .._nullblock import NULL_BLOCK
from ..amctl import build_amctl, parse_amctl
from ..ltb import (CLTB, DLTB, ELTB, RLTB, LtbError, decode_ltb, encode_ltb, reserved_codes,
                   width_code)
from ..profile import DEFAULT_PROFILE, PhyProfile
from ..scrambler import keystream, scramble_block
from .lane_manage import LaneManagement
from .retrain import RetrainStates
from .states import (BLOCK, FEC_CODES, TRANSITIONS, LmsmEvent, LmsmState, PortConfig, Unit,
                     _inv, _RxLane, rate_bitmap, state_of)
from .training import TrainingStates

__all__ = ["Lmsm"]


class Lmsm(TrainingStates, RetrainStates, LaneManagement):
    """One port's LMSM.  Public state: ``state``, ``sub`` (``lstate``: the :class:`LmsmState`),
    ``tx_width``, ``rx_width``, ``fec_mode``, ``fec_interleave``, ``fec_active``, ``crc_mode``,
    ``rate``, ``primary``, ``trace`` (every state entered), ``events`` (dicts, for reports)."""

    machine = TRANSITIONS

    def __init__(self, cfg: PortConfig, profile: PhyProfile = DEFAULT_PROFILE,
                 rng: random.Random | None = None, name: str = "A", block_ns: int = 1):
        self.cfg = cfg
        self.block_ns = block_ns  # ns per block time (16 symbols at the lane rate)
        self.now = 0
        self._typed: list = []  # StateChanged / LmsmEvent for pop_events
        self._rx_pending: list[Unit | None] | None = None
        self._term: list[bool] | None = None
        self._last_block_at: int | None = None
        self.lstate = LmsmState.Link_Idle
        self.crc_mode = cfg.crc_mode
        self.pending_mode: dict | None = None  # FEC/CRC mode change asked for (§3.4.2.8)
        self.probe_first: list[bool] | None = None  # Probe.Confirm: the first detection result
        self.probe_wait = 0
        self.width_up: dict | None = None  # a QDLWS width increase in progress (§3.4.2.3)
        self.rx_width_up: int | None = None
        self.lanes_up_reported = False
        self._amctl_seen: dict = {}
        self.profile = profile
        self.rng = rng or random.Random(0)
        self.name = name
        self.tick = 0
        self.trace: list[dict] = []
        self.events: list[dict] = []
        self.state = "Link_Idle"
        self.sub = ""
        self.started = False
        self.rate = 0
        self.eq_done: set[int] = set()
        self.fec_mode = "bypass"
        self.fec_interleave = False
        self.fec_active = True
        self.primary: bool | None = cfg.primary
        self.link_id = cfg.link_id
        self.rnd_value = 0
        self.last_rx_rnd = None
        self.tx_map = list(range(cfg.lanes))  # logical TX lane -> physical TX lane
        self.tx_m = cfg.lanes
        self.rx_n = cfg.lanes
        self.tx_width = 0
        self.rx_width = 0
        self.rx = [_RxLane() for _ in range(cfg.lanes)]
        self.tx_pos = [0] * cfg.lanes  # scrambler position per physical TX lane
        self.unit_count = 0  # units since the last AMCTL
        self.pending_ctrl: dict[int, tuple] = {}  # logical lane -> (type, detail) for next AMCTL
        self.after_ctrl = None  # callable run after the next AMCTL went out
        self.tx_stream = b""
        self.rx_stream = b""
        self.rx_data_mode = False
        self.rx_nulls_consec = 0
        self.rx_nulls_total = 0
        self.tx_nulls = 0
        self.tx_since_rx = 0
        self.state_ticks = 0
        self.change_speed = False
        self.target_rate = 0
        self.peer_rates = 1
        self.peer_fec_support = 0
        self.peer_il_support = 0
        self.eq_negotiated = cfg.eq_mode if not cfg.optical else 2
        self.pcs_closed = False
        self.idle_left = 0
        self.from_retrain = False
        self.preset_req = 7
        self.eq_ok = False
        self.retrain_num = 0
        self.degraded_from: int | None = None
        self.eeib_units = []

    def _goto(self, state: str, sub: str = "") -> None:
        new = state_of(state, sub)
        ev = None
        if new is not self.lstate:  # every move is checked against the §3.4.3 table
            ev = self.machine.move(self.lstate, new, self.now, why=self._why)
        self.lstate = new
        self.state, self.sub = state, sub
        self.state_ticks = 0
        self.tx_since_rx = 0
        self.first_rx_seen = False
        self.latched = {}
        self.trace.append({"tick": self.tick, "port": self.name, "state": new.value,
                           "at": self.now})
        if ev is not None:
            self._typed.append(StateChanged(ev.at, f"lmsm.{self.name}", old=ev.old, new=ev.new,
                                            why=ev.why))

    _why = ""

    def _event(self, what: str, **kw) -> None:
        self.events.append({"tick": self.tick, "port": self.name, "event": what, **kw})
        self._typed.append(LmsmEvent(self.now, self.name, what, dict(kw)))

    def start(self) -> None:
        """The upper layer starts link training (leave Link_Idle)."""
        self._rx_rev += 1
        self.started = True
        self.trace.append({"tick": self.tick, "port": self.name, "state": "Link_Idle",
                           "at": self.now})

    def _rates(self) -> int:
        return rate_bitmap(self.cfg.max_rate, self.cfg.phy_mode)

    def _common_max_rate(self) -> int:
        common = self._rates() & self.peer_rates
        return max((r for r in range(9) if common >> r & 1), default=0)

    def _fixed_rate(self) -> bool:
        return self.cfg.optical or self.cfg.max_rate == 0

    def _rx_logical(self) -> dict[int, int]:
        """logical lane -> physical RX lane, from the lane IDs learnt from AMCTL.LID."""
        limit = self._rx_stale_limit()
        m: dict[int, int] = {}
        for p, r in enumerate(self.rx):  # the most recent AMCTL claiming an ID wins
            if r.lane_id is not None and not r.failed and self.tick - r.last_amctl <= limit:
                q = m.get(r.lane_id)
                if q is None or self.rx[q].last_amctl < r.last_amctl:
                    m[r.lane_id] = p
        return m

    def _rx_stale_limit(self) -> int:
        """Block times after its last AMCTL that a lane's ID still counts."""
        if self.state in ("Send_NullBlock", "Link_Active"):
            return (self.profile.period0 // BLOCK + 1) * (self.profile.quick_degrade_misses + 1)
        # a lane ID is stale once the lane stopped carrying AMCTLs (2 training periods)
        return 2 * (self.profile.training_period // BLOCK + 1) + 2

    def _rx_lanes(self, n: int) -> list[_RxLane] | None:
        m = self._rx_logical()
        if any(i not in m for i in range(n)):
            return None
        return [self.rx[m[i]] for i in range(n)]

    def _all_consec(self, n: int, need: int, pred) -> list | None:
        lanes = self._rx_lanes(n)
        if lanes is None:
            return None
        if all(r.consec >= need and r.ltb is not None and pred(r.ltb) for r in lanes):
            return [r.ltb for r in lanes]
        return None

    def _any_consec(self, need: int, pred):
        for r in self.rx:
            if r.consec >= need and r.ltb is not None and pred(r.ltb):
                return r.ltb
        return None

    def _receive(self, units: list[Unit | None]) -> None:
        for p, u in enumerate(units[: len(self.rx)]):
            r = self.rx[p]
            r.data = None
            if u is None or u.kind == "eeib":
                continue
            sym = _inv(u.sym) if r.inverted else u.sym
            if u.kind == "amctl":
                a = self._parse_amctl(sym)
                if not a.end_ok:
                    b = self._parse_amctl(_inv(sym))
                    if b.end_ok:  # reversed AMCTL: the lane's polarity is swapped (§3.4.2.6)
                        r.inverted = not r.inverted
                        self._event("polarity_inverted", rx_lane=p)
                        a = b
                if not a.end_ok:
                    continue
                r.locked = True
                r.misses = 0
                r.failed = False
                r.last_amctl = self.tick
                if a.lid_valid and not a.lid_null:
                    if a.lane_id == r.lid_prev and r.lane_id != a.lane_id:
                        r.lane_id = a.lane_id  # two consecutive equal LIDs (§3.2.4.2)
                    r.lid_prev = a.lane_id
                self._on_amctl(p, a)
                continue
            if u.kind == "prbs":
                continue
            pos = r.scr_pos
            r.scr_pos += BLOCK
            if r.lane_id is None:
                continue
            if len(sym) == BLOCK:
                d = scramble_block(sym, self.profile.seed_for_lane(r.lane_id), pos,
                                   self.profile.prbs_taps)
            else:  # not a block (the numpy XOR refuses it as before)
                d = (np.frombuffer(sym, np.uint8) ^ keystream(
                    self.profile.seed_for_lane(r.lane_id), BLOCK, pos,
                    self.profile.prbs_taps)).tobytes()
            if u.kind == "data":
                r.data = d
                continue
            try:
                obj = decode_ltb(d, self.profile)
            except LtbError:
                r.consec = 0
                r.last_body = None
                continue
            if r.last_body == d[:12]:
                r.consec += 1
            else:
                r.consec = 1
                r.last_body = d[:12]
                bad = reserved_codes(obj)
                if bad:  # reported once per run of identical LTBs; the LTB is still used
                    self._event("ltb_reserved_code", rx_lane=p, fields=bad)
            r.ltb = obj
        self._gather_data()

    def _parse_amctl(self, sym: bytes):
        """parse_amctl, remembered per symbol string: a lane repeats the same AMCTL every
        period (results are only read)."""
        a = self._amctl_seen.get(sym)
        if a is None:
            if len(self._amctl_seen) > 512:
                self._amctl_seen.clear()
            a = self._amctl_seen[sym] = parse_amctl(sym, self.profile)
        return a

    def _on_amctl(self, p: int, a) -> None:
        r = self.rx[p]
        if self.state in ("Send_NullBlock", "Link_Active"):
            r.next_expected = self.tick + self._amctl_cycle()
            if self.rx_width_up is not None and r.lane_id is not None and \
                    self.rx_width <= r.lane_id < self.rx_width_up and not r.up_seen:
                # a lane leaving electrical idle for a width increase restarts its scrambler
                # with this AMCTL (reference-profile choice, docs/phy.md)
                r.up_seen = True
                r.scr_pos = 0
                r.consec = 0
                r.last_body = None
        t, d = a.ctrl_type, a.ctrl_detail
        if t == "link_width_switch" and d and d != "x0" and d != "reserved":
            w = int(d[1:])
            if not self.rx_data_mode:
                self.rx_data_mode = True
                self.rx_width = w
                self.rx_stream = b""
                self.rx_nulls_consec = 0
                self._event("rx_sdf", width=w)
            elif w != self.rx_width and r.lane_id == 0:
                self._event("rx_width_switch", width=w, previous=self.rx_width)
                self.rx_width = w
                self.rx_stream = b""
                if self.rx_width_up is not None and w >= self.rx_width_up:
                    self._end_short_period()
        elif t == "link_width_switch" and d == "x0":
            if self.rx_data_mode:
                self._event("rx_edf")
            self.rx_data_mode = False
            for q in self.rx:
                q.scr_pos = 0  # seed reset on EDF (§3.2.2.4)
            if self.state == "Link_Active":
                self.retrain_num += 1
                self._enter_retrain()
        elif t == "remote_tx_width" and d in ("x1", "x2", "x4", "x8") and \
                self.state == "Link_Active":
            w = int(d[1:])
            if w < self.tx_width and not self.pending_ctrl:
                self._event("rx_remote_tx_width", width=w)
                for i in range(self.tx_width):
                    self.pending_ctrl[i] = (("link_width_switch", f"x{w}") if i < w
                                            else ("ei_indicator", "eei"))

                def shrink(w=w):
                    self._event("tx_width_switch", width=w, previous=self.tx_width)
                    self.tx_width = w
                self.after_ctrl = shrink
        elif t == "fec_control" and d in ("open_fec", "close_fec"):
            active = d == "open_fec"
            if active != self.fec_active:
                self.fec_active = active
                self._event("rx_fec_" + ("open" if active else "close"))
        elif t == "ei_indicator" and d == "eei":
            r.locked = False

    def _gather_data(self) -> None:
        if not self.rx_data_mode or not self.fec_active:
            return
        lanes = self._rx_lanes(self.rx_width)
        if lanes is None or any(r.data is None for r in lanes):
            return
        block = np.frombuffer(b"".join(r.data for r in lanes), np.uint8).reshape(
            self.rx_width, BLOCK).T.reshape(-1).tobytes()  # bypass gathering, lane 0 first
        self.rx_stream += block
        while len(self.rx_stream) >= 20:
            f, self.rx_stream = self.rx_stream[:20], self.rx_stream[20:]
            if f == NULL_BLOCK:
                self.rx_nulls_consec += 1
                self.rx_nulls_total += 1
            else:
                self.rx_nulls_consec = 0

    def _scramble(self, phys: int, logical: int, data: bytes) -> bytes:
        pos = self.tx_pos[phys]
        self.tx_pos[phys] += BLOCK
        if len(data) == BLOCK:
            return scramble_block(data, self.profile.seed_for_lane(logical), pos,
                                  self.profile.prbs_taps)
        ks = keystream(self.profile.seed_for_lane(logical), BLOCK, pos, self.profile.prbs_taps)
        return (np.frombuffer(data, np.uint8) ^ ks).tobytes()

    def _amctl_units(self, width: int, default=("no_command", None)) -> list[Unit | None]:
        out: list[Unit | None] = [None] * self.cfg.lanes
        for i in range(width):
            t, d = self.pending_ctrl.get(i, default)
            out[self.tx_map[i]] = Unit("amctl", build_amctl(i, t, d, self.profile))
        self.pending_ctrl = {}
        if self.after_ctrl is not None:
            cb, self.after_ctrl = self.after_ctrl, None
            cb()
        return out

    def _ltb_for(self, logical: int):
        s, cfg = self.sub, self.cfg
        if self.state in ("Discovery", "RXEQ_Optimize"):
            typ = {"Active": 0xA0, "Confirm": 0xA1}.get(s, 0xE0)
            link = self.link_id if (self.primary or s == "Confirm") else 0xFF
            rl0 = self.rx_lane0_phys()
            return DLTB(type=typ, link_id=link, lane_id=logical, tlw=width_code(self.tx_m),
                        rlw=width_code(self.rx_n), data_rates=self._rates(),
                        fec_support=sum({"rs-t2": 1, "rs-t4": 2}[m] for m in cfg.fec_support),
                        port_type=1 if self.primary else 0,
                        random_value=self.rnd_value if cfg.primary is None else 0,
                        fec_interleave_support=0xF if cfg.interleave else 0,
                        rx_lane0=rl0, max_link_width=cfg.lanes)
        if self.state == "Config":
            typ = {"Active": 0xB0, "Check": 0xB1, "Confirm": 0xB2}[s]
            return CLTB(type=typ, link_id=self.link_id, lane_id=logical,
                        tlw=width_code(self.tx_m), rlw=width_code(self.rx_n),
                        eq_mode=self.cfg.eq_mode if not cfg.optical else 2,
                        fec_mode=FEC_CODES[self.fec_mode], fec_interleave=int(self.fec_interleave))
        if self.state == "Retrain":
            typ = (0xC3 if self._sends_eq_initial() else 0xC1) if s == "Confirm" else 0xC0
            rates = self._rates()
            if self.primary:
                rates = rate_bitmap(self.target_rate, self.cfg.phy_mode) & rates
            return RLTB(type=typ, data_rates=rates, change_speed=int(self.change_speed),
                        fec_mode=FEC_CODES[self.fec_mode],
                        fec_interleave=int(self.fec_interleave), crc_mode=int(self.crc_mode),
                        local_tx_preset=self.preset_req)
        if self.state == "Equalization":
            phase = self._eq_phase_code()
            return ELTB(eq_phase=phase, preset_mode=1, tx_preset=self.preset_req)
        return None

    def _tx(self) -> list[Unit | None]:
        st = self.state
        L = self.cfg.lanes
        if not self.started or st in ("Link_Idle", "Probe"):
            return [None] * L
        if st == "Change_Speed":
            if self.sub == "EEI":
                return self._amctl_units(self.tx_width or self.tx_m, ("ei_indicator", "eei"))
            return [None] * L
        if st in ("Send_NullBlock", "Link_Active"):
            w = self.tx_width
            up = self.width_up["width"] if self.width_up else w
            period = self._amctl_cycle() - 1
            if self.unit_count >= period or self.pending_sdf:
                self.unit_count = 0
                if self.pending_sdf:
                    self.pending_sdf = False
                    for i in range(w):
                        self.pending_ctrl.setdefault(i, ("link_width_switch", f"x{w}"))
                return self._amctl_units(max(w, up))
            self.unit_count += 1
            out: list[Unit | None] = [None] * L
            for i in range(w, up):  # lanes being brought up: Retrain.LP1_PHY_Up RLTBs (§3.4.2.3)
                ph = self.tx_map[i]
                out[ph] = Unit("ltb", self._scramble(ph, i, encode_ltb(self._lp1_rltb(),
                                                                        self.profile)))
            if self.pcs_closed:
                for i in range(w):
                    p = self.tx_map[i]
                    out[p] = Unit("prbs", keystream(self.profile.seed_for_lane(None), BLOCK,
                                                    self.tick * BLOCK % 65536).tobytes())
                return out
            need = BLOCK * w
            while len(self.tx_stream) < need:
                self.tx_stream += NULL_BLOCK
                self.tx_nulls += 1
                if self.rx_nulls_total:
                    self.tx_since_rx += 1
            chunk, self.tx_stream = self.tx_stream[:need], self.tx_stream[need:]
            lanes = np.frombuffer(chunk, np.uint8).reshape(BLOCK, w).T
            for i in range(w):
                p = self.tx_map[i]
                out[p] = Unit("data", self._scramble(p, i, lanes[i].tobytes()))
            return out
        w = self.tx_m
        if self.eeib_units:  # leaving electrical idle: the EEIB sequence of the new rate
            sym = self.eeib_units.pop(0)
            out = [None] * L
            for i in range(w):
                out[self.tx_map[i]] = Unit("eeib", sym)
            return out
        # training states: LTBs with an AMCTL every 32 LTBs (§3.2.4.3)
        if self.unit_count % (self.profile.training_period // BLOCK + 1) == 0:
            self.unit_count += 1
            return self._amctl_units(w)
        self.unit_count += 1
        out = [None] * L
        for i in range(w):
            p = self.tx_map[i]
            ltb = self._ltb_for(i)
            out[p] = Unit("ltb", self._scramble(p, i, encode_ltb(ltb, self.profile)))
        if not self.first_rx_seen:
            self.first_rx_seen = any(r.consec >= 1 and self._expected(r.ltb) for r in self.rx)
        if self.first_rx_seen:
            self.tx_since_rx += 1
        return out

    def _amctl_cycle(self) -> int:
        """Block times from one AMCTL to the next in data states: Period0, or the short period
        (Period1) while a width increase is under way (§3.4.2.3), plus the AMCTL's own slot."""
        short = self.width_up is not None or self.rx_width_up is not None
        return (self.profile.period1 if short else self.profile.period0) // BLOCK + 1

    _EXPECT = {("Discovery", "Active"): (0xA0, 0xA1), ("Discovery", "Confirm"): (0xA1,),
               ("Config", "Active"): (0xB0, 0xB1), ("Config", "Check"): (0xB1, 0xB2),
               ("Config", "Confirm"): (0xB2,), ("Retrain", "Active"): (0xC0, 0xC1),
               ("Retrain", "Confirm"): (0xC1, 0xC3)}

    def _expected(self, ltb) -> bool:
        """Is ``ltb`` of a type this substate waits for ("N LTBs sent after one received")?"""
        types = self._EXPECT.get((self.state, self.sub))
        return ltb is not None and (types is None or ltb.type in types)

    pending_sdf = False

    first_rx_seen = False

    eeib_units: list = []

    latched: dict = {}

    def _latch(self, key: str, value):
        """Once N consecutive LTBs were received in this substate the fact stays true while the
        port finishes its own "N LTBs sent after one received" count."""
        if value is not None and key not in self.latched:
            self.latched[key] = value
        return self.latched.get(key)

    # -- the engine contract -----------------------------------------------------------------------
    def receive(self, units: list[Unit | None], now: int,
                termination: list[bool] | None = None) -> None:
        """What arrived per physical RX lane in the block time ending at ``now``;
        ``termination``: the Probe receiver detection per TX lane (None: all terminated)."""
        self.now = max(self.now, now)
        self._rx_pending = list(units)
        self._term = termination

    def transmit(self, now: int, budget: int = 1) -> list[Unit | None]:
        """One block time at ``now``: process what was received, run the state logic, return
        the unit per physical TX lane (None: electrical idle).  ``budget`` is one block."""
        self.now = max(self.now, now)
        self._last_block_at = self.now
        rx, self._rx_pending = self._rx_pending or [None] * len(self.rx), None
        return self._block(rx, self._term)

    def next_deadline(self) -> int | None:
        """The next block time (the LMSM is clocked while started), or None before start."""
        if not self.started:
            return None
        base = self._last_block_at if self._last_block_at is not None else self.now
        return base + self.block_ns

    def handle_timeout(self, now: int) -> None:
        """A state timer that ran out between block times: the state's timeout branch runs
        (the block-time clock itself advances in :meth:`transmit`)."""
        self.now = max(self.now, now)
        self._rx_rev += 1
        if self.started and self._timeout():
            self._why = "timeout"
            getattr(self, "_st_" + self.state)(self._term)
            self._why = ""

    def pop_events(self) -> list:
        out, self._typed = self._typed, []
        return out

    def step(self, rx_units: list[Unit | None], termination: list[bool] | None = None
             ) -> list[Unit | None]:
        """One block time in lock step: ``receive`` + ``transmit``, the clock advancing by
        ``block_ns``."""
        self.now += self.block_ns
        self.receive(rx_units, self.now, termination)
        return self.transmit(self.now)

    def _block(self, rx_units: list[Unit | None], termination) -> list[Unit | None]:
        self._rx_rev += 1  # the coasting cache (lane_manage.can_coast) is stale
        self.tick += 1
        self.state_ticks += 1
        self._receive(rx_units)
        if self.started:
            getattr(self, "_st_" + self.state)(termination)
        return self._tx()

    def _timeout(self) -> bool:
        return self.state_ticks > self.cfg.timeout_ticks
