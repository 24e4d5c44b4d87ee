"""Link state management (LMSM, UB 2.0 §3.4.3) as a sans-IO engine, and a two-port simulator.

``Lmsm.step(rx_units, termination)`` consumes what arrived on each physical RX lane during one
block time (16 symbols) and returns what each physical TX lane sends next; it does no I/O and keeps
no clock of its own, so two engines can run against each other (``LinkSim``), or against hand-made
inputs in tests.

What travels per lane and block time is a :class:`Unit`: an LTB (16 scrambled symbols, CRC-16), an
AMCTL (its 40 eBCH-16 symbols; it takes one block slot here), a data block (16 scrambled symbols of
the FEC-bypass Null Block stream), PRBS (PCS closed, §3.2.6) or an EEIB.  The unit *kind* stands
for the framing a locked receiver knows; everything inside (LTB fields and CRC, AMCTL codewords and
polarity, scrambling with per-lane seeds from AMCTL.LID, lane order) is really encoded and decoded.

Implemented: Link_Idle, Probe (termination-based width and lane-0 reversal), RXEQ_Optimize (fixed
rate), Discovery (port-type negotiation, Tx_M/Rx_N width negotiation; the RX orders its lanes by
AMCTL.LID, which covers lane-0 reversal and full reordering, and reports the position of logical
lane 0 in DLTB.RX_Lane0_ID; received RX_Lane0_ID is not needed to re-map TX lanes), Config
(FEC mode, FEC interleave, EQ mode per Table 3-21), Send_NullBlock (AMCTL with SDF, Null Blocks),
Link_Active (AMCTL insertion every Period0, quick width degradation §3.4.2.4, dynamic FEC close /
open via AMCTL §3.2.6, EDF), Retrain, Change_Speed (AMCTL with EEI, electrical idle, rate per
EQ mode) and Equalization (Coarsetune_Active/Confirm, Active/Passive with one TX-preset request).
Timeouts are counted in block times (``PortConfig.timeout_ticks`` stands for the ms timeouts).

Scrambler seeds (§3.2.2.4): every lane scrambler starts from its seed when training starts and is
reloaded at the AMCTL with EDF that ends data transfer (TX after sending it, RX on receiving it);
the AMCTL with SDF does not reload it, so data continues the training keystream.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ._nullblock import NULL_BLOCK
from .amctl import build_amctl, parse_amctl
from .lanes import quick_degrade_width, standard_width
from .ltb import (CLTB, DLTB, ELTB, RLTB, LtbError, decode_ltb, eeib, encode_ltb, width_code,
                  width_from_code)
from .profile import DEFAULT_PROFILE, PhyProfile
from .scrambler import keystream

__all__ = ["STATES", "PortConfig", "Unit", "Lmsm", "LinkSim", "FEC_CODES", "eq_mode_result"]

STATES = ("Link_Idle", "Probe", "RXEQ_Optimize", "Discovery", "Config", "Send_NullBlock",
          "Link_Active", "Retrain", "Change_Speed", "Equalization")
FEC_CODES = {"bypass": 0, "rs-t2": 1, "rs-t4": 2}
FEC_NAMES = {v: k for k, v in FEC_CODES.items()}
RESERVED_RATES = (1, 6)
EEIB_RATE = {0: "2.578125", 2: "25.78125", 4: "53.125", 8: "106.25"}  # DRn -> EEIB table
BLOCK = 16


def eq_mode_result(tx_mode: int, rx_mode: int) -> int:
    """Table 3-21: the negotiated EQ mode from the sent and received CLTB.EQ_Mode."""
    if tx_mode == 3 or rx_mode == 3:
        return 0
    return min(tx_mode, rx_mode)


def rate_bitmap(max_rate: int) -> int:
    return sum(1 << r for r in range(max_rate + 1) if r not in RESERVED_RATES)


@dataclass(frozen=True)
class PortConfig:
    lanes: int = 8  # target TX and RX width (Tx_M = Rx_N, PHY Mode-2 style)
    fec: str = "rs-t4"  # preferred FEC mode
    fec_support: tuple[str, ...] = ("rs-t2", "rs-t4")
    interleave: bool = False
    max_rate: int = 0  # supports DR0 .. DRmax (reserved DR1/DR6 excluded)
    eq_mode: int = 2  # 0 Full_EQ, 1 Only_Highest_Data_Rate_EQ, 2 Skip_EQ
    primary: bool | None = None  # None: port-type negotiation (§3.4.2.1)
    link_id: int = 1
    optical: bool = False  # Optical-Link mode: no Probe, fixed rate, Skip_EQ
    bypass_probe: bool = False
    quick_degrade: bool = True
    discovery_min_tx: int = 1024  # DLTBs sent after the first received (§3.4.3.4)
    timeout_ticks: int = 6000  # stands for the millisecond timeouts
    change_speed_idle: int = 8  # block times of electrical idle in Change_Speed


@dataclass(frozen=True)
class Unit:
    kind: str  # 'ltb' | 'amctl' | 'data' | 'prbs' | 'eeib'
    sym: bytes


def _inv(b: bytes) -> bytes:
    return bytes(x ^ 0xFF for x in b)


@dataclass
class _RxLane:
    lane_id: int | None = None
    lid_prev: int | None = None
    inverted: bool = False
    scr_pos: int = 0
    last_body: bytes | None = None
    consec: int = 0
    ltb: object = None
    locked: bool = False
    misses: int = 0
    next_expected: int | None = None
    failed: bool = False
    data: bytes | None = None
    last_amctl: int = -10**9


class Lmsm:
    """One port's LMSM.  Public state: ``state``, ``sub``, ``tx_width``, ``rx_width``,
    ``fec_mode``, ``fec_interleave``, ``fec_active``, ``rate``, ``primary``, ``trace``."""

    def __init__(self, cfg: PortConfig, profile: PhyProfile = DEFAULT_PROFILE,
                 rng: random.Random | None = None, name: str = "A"):
        self.cfg = cfg
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

    # -- helpers ---------------------------------------------------------------------------------
    def _goto(self, state: str, sub: str = "") -> None:
        self.state, self.sub = state, sub
        self.state_ticks = 0
        self.tx_since_rx = 0
        self.first_rx_seen = False
        self.latched = {}
        self.trace.append({"tick": self.tick, "port": self.name,
                           "state": state + ("." + sub if sub else "")})

    def _event(self, what: str, **kw) -> None:
        self.events.append({"tick": self.tick, "port": self.name, "event": what, **kw})

    def start(self) -> None:
        """The upper layer starts link training (leave Link_Idle)."""
        self.started = True
        self.trace.append({"tick": self.tick, "port": self.name, "state": "Link_Idle"})

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

    def _rates(self) -> int:
        return rate_bitmap(self.cfg.max_rate)

    def _common_max_rate(self) -> int:
        common = self._rates() & self.peer_rates
        return max((r for r in range(9) if common >> r & 1), default=0)

    def _fixed_rate(self) -> bool:
        return self.cfg.optical or self.cfg.max_rate == 0

    def _rx_logical(self) -> dict[int, int]:
        """logical lane -> physical RX lane, from the lane IDs learnt from AMCTL.LID."""
        if self.state in ("Send_NullBlock", "Link_Active"):
            limit = (self.profile.period0 // BLOCK + 1) * (self.profile.quick_degrade_misses + 1)
        else:  # a lane ID is stale once the lane stopped carrying AMCTLs (2 training periods)
            limit = 2 * (self.profile.training_period // BLOCK + 1) + 2
        m: dict[int, int] = {}
        for p, r in enumerate(self.rx):  # the most recent AMCTL claiming an ID wins
            if r.lane_id is not None and not r.failed and self.tick - r.last_amctl <= limit:
                q = m.get(r.lane_id)
                if q is None or self.rx[q].last_amctl < r.last_amctl:
                    m[r.lane_id] = p
        return m

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

    # -- receive ---------------------------------------------------------------------------------
    def _receive(self, units: list[Unit | None]) -> None:
        for p, u in enumerate(units[: len(self.rx)]):
            r = self.rx[p]
            r.data = None
            if u is None or u.kind == "eeib":
                continue
            sym = _inv(u.sym) if r.inverted else u.sym
            if u.kind == "amctl":
                a = parse_amctl(sym, self.profile)
                if not a.end_ok:
                    b = parse_amctl(_inv(sym), self.profile)
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
            d = np.frombuffer(sym, np.uint8) ^ keystream(
                self.profile.seed_for_lane(r.lane_id), BLOCK, pos, self.profile.prbs_taps)
            d = d.tobytes()
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
            r.ltb = obj
        self._gather_data()

    def _on_amctl(self, p: int, a) -> None:
        r = self.rx[p]
        if self.state in ("Send_NullBlock", "Link_Active"):
            r.next_expected = self.tick + self.profile.period0 // BLOCK + 1
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

    # -- transmit --------------------------------------------------------------------------------
    def _scramble(self, phys: int, logical: int, data: bytes) -> bytes:
        pos = self.tx_pos[phys]
        self.tx_pos[phys] += BLOCK
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
            typ = 0xC1 if s == "Confirm" else 0xC0
            rates = self._rates()
            if self.primary:
                rates = rate_bitmap(self.target_rate) & rates
            return RLTB(type=typ, data_rates=rates, change_speed=int(self.change_speed),
                        fec_mode=FEC_CODES[self.fec_mode],
                        fec_interleave=int(self.fec_interleave), crc_mode=1,
                        local_tx_preset=self.preset_req)
        if self.state == "Equalization":
            phase = self._eq_phase_code()
            return ELTB(eq_phase=phase, preset_mode=1, tx_preset=self.preset_req)
        return None

    def rx_lane0_phys(self) -> int:
        m = self._rx_logical()
        p = m.get(0, 0)
        return p if p in (0, 1, 3, 7) else 0

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
            period = self.profile.period0 // BLOCK
            if self.unit_count >= period or self.pending_sdf:
                self.unit_count = 0
                if self.pending_sdf:
                    self.pending_sdf = False
                    for i in range(w):
                        self.pending_ctrl.setdefault(i, ("link_width_switch", f"x{w}"))
                return self._amctl_units(w)
            self.unit_count += 1
            out: list[Unit | None] = [None] * L
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

    # -- state logic -----------------------------------------------------------------------------
    def step(self, rx_units: list[Unit | None], termination: list[bool] | None = None
             ) -> list[Unit | None]:
        """One block time: take the received units (per physical RX lane), return the units to
        send (per physical TX lane).  ``termination`` answers the Probe receiver detection."""
        self.tick += 1
        self.state_ticks += 1
        self._receive(rx_units)
        if self.started:
            getattr(self, "_st_" + self.state)(termination)
        return self._tx()

    def _timeout(self) -> bool:
        return self.state_ticks > self.cfg.timeout_ticks

    def _st_Link_Idle(self, term) -> None:
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
        det = list(term) if term is not None else [True] * self.cfg.lanes
        L = self.cfg.lanes
        if not any(det[:L]):
            self._goto("Probe", "Wait")
            return
        if all(det[:L]):
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
        pred = (lambda t: isinstance(t, DLTB) and t.type == 0xA1 and t.link_id == self.link_id
                and width_from_code(t.tlw) == self.rx_n and width_from_code(t.rlw) == self.tx_m)
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

    def _next_rate(self) -> int:
        top = self._common_max_rate()
        common = self._rates() & self.peer_rates
        if self.eq_negotiated == 0:  # Full_EQ: level by level
            for r in range(self.rate + 1, 9):
                if common >> r & 1:
                    return r
        return top

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
        # Confirm
        got = self._latch("retrain_confirm", self._all_consec(
            n, 8, lambda t: isinstance(t, RLTB) and t.type == 0xC1))
        if got is not None and self.tx_since_rx >= 16:
            if self.change_speed and got[0].change_speed:
                self._goto("Change_Speed", "EEI")
            elif not got[0].change_speed and not self.change_speed:
                self._enter_snb()
            return
        if self._any_consec(8, lambda t: isinstance(t, DLTB)):
            self.from_retrain = True
            self._goto("Discovery", "Active")
        elif self._timeout():
            self._goto("Link_Idle")

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
            if self._needs_eq():
                self._goto("Equalization",
                           "Coarsetune_Confirm" if self.primary else "Coarsetune_Active")
            else:
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


class LinkSim:
    """Two LMSM ports wired lane by lane, with optional lane reversal, polarity swaps and lane
    failures (a failed lane carries nothing and shows no receiver termination)."""

    def __init__(self, a: PortConfig, b: PortConfig, profile: PhyProfile = DEFAULT_PROFILE,
                 seed: int = 1, reverse: bool = False, invert: set[int] | None = None):
        rng = random.Random(seed)
        self.a = Lmsm(a, profile, random.Random(rng.random()), "A")
        self.b = Lmsm(b, profile, random.Random(rng.random()), "B")
        self.lanes = max(a.lanes, b.lanes)
        self.reverse = reverse
        self.invert = set(invert or ())
        self.failed: set[int] = set()
        self.ticks = 0

    def _wire(self, units: list[Unit | None]) -> list[Unit | None]:
        L = self.lanes
        out: list[Unit | None] = [None] * L
        for p, u in enumerate(units):
            if u is None or p in self.failed:
                continue
            q = L - 1 - p if self.reverse else p
            out[q] = Unit(u.kind, _inv(u.sym)) if p in self.invert else u
        return out

    def _term(self) -> list[bool]:
        return [p not in self.failed for p in range(self.lanes)]

    def step(self) -> None:
        self.ticks += 1
        ta = self.a.step(self._rx_a, self._term())
        tb = self.b.step(self._rx_b, self._term())
        self._rx_b = self._wire(ta)
        self._rx_a = self._wire(tb)

    def run_until(self, pred, max_ticks: int) -> bool:
        for _ in range(max_ticks):
            if pred():
                return True
            self.step()
        return pred()

    def _active(self) -> bool:
        return self.a.state == "Link_Active" and self.b.state == "Link_Active"

    def _settled(self) -> bool:
        a, b = self.a, self.b
        return (self._active() and not a.change_speed and not b.change_speed
                and a.rate == b.rate and a.rate >= a._common_max_rate()
                and a.tx_width == b.rx_width and b.tx_width == a.rx_width
                and not a.pending_ctrl and not b.pending_ctrl)

    def run(self, fail_lane: int | None = None, fec_toggle: bool = False,
            max_ticks: int = 60000) -> dict:
        self._rx_a = [None] * self.lanes
        self._rx_b = [None] * self.lanes
        self.a.start()
        self.b.start()
        up = self.run_until(self._settled, max_ticks)
        first_up = {"tick": self.ticks, "tx_width": self.a.tx_width, "rx_width": self.a.rx_width,
                    "rate": self.a.rate} if up else None
        if up:
            self.run_until(lambda: False, 64)
        if up and fec_toggle:
            self.a.request_fec(False)
            self.run_until(lambda: not self.b.fec_active, 2000)
            self.run_until(lambda: False, 64)
            self.a.request_fec(True)
            self.run_until(lambda: self.b.fec_active, 2000)
            self.run_until(lambda: False, 64)
        if up and fail_lane is not None:
            self.failed.add(fail_lane)
            self._rx_a = [None if p in self.failed else u for p, u in enumerate(self._rx_a)]
            start = self.ticks
            period = DEFAULT_PROFILE.period0 // BLOCK + 1
            self.run_until(lambda: self.ticks - start > period * 4 and self._settled(), max_ticks)
            self.run_until(lambda: False, period + 64)
        a = self.a
        return {
            "final_state": a.state if a.state == self.b.state else f"{a.state}/{self.b.state}",
            "link_up": bool(self._active()),
            "tx_width": a.tx_width, "rx_width": a.rx_width,
            "peer_tx_width": self.b.tx_width, "peer_rx_width": self.b.rx_width,
            "fec_mode": a.fec_mode, "peer_fec_mode": self.b.fec_mode,
            "fec_interleave": a.fec_interleave, "fec_active": a.fec_active and self.b.fec_active,
            "rate": a.rate, "primary": "A" if a.primary else "B",
            "eq_mode": {0: "full_eq", 1: "only_highest_rate_eq", 2: "skip_eq"}[a.eq_negotiated],
            "null_blocks_received": {"A": a.rx_nulls_total, "B": self.b.rx_nulls_total},
            "first_link_active": first_up, "failed_lanes": sorted(self.failed),
            "ticks": self.ticks,
            "trace": sorted(a.trace + self.b.trace, key=lambda e: (e["tick"], e["port"])),
            "events": sorted(a.events + self.b.events, key=lambda e: (e["tick"], e["port"])),
        }
