"""The PHY link mode of the simulator (``loopback --link phy``): the DLL engine pair of
:mod:`ubpkt.sim.dll_link` over a :class:`~ubpkt.phy.link.PhyLink` instead of flit wires.

Layered reliability end to end (UB 2.0 §3.2, §3.4.2.4, §4.7): RS-FEC corrects symbol errors on
the lanes, a codeword it cannot correct comes out with its flits flagged and the receiving
``DLLEngine`` takes the flag (``receive(data, now, fec_ok=[...])``) as a failed flit and asks for
a Go-Back-N replay; a lane that fails in traffic is dropped by the LMSMs' quick width reduction
(no Retrain) and the DLL replays what was lost on it, so the transaction layer sees nothing.

Time runs on the slot grid of :class:`~ubpkt.sim.dll_link.DllLinkPair`: at each slot boundary
each engine takes what the PHY delivered, its timers, and transmits up to ``slot_flits`` flits,
which the PHY direction sends in whole codeword groups (its own Null Block fill).  The PHY link
is the back-pressure: an engine transmits only while its direction's lanes are less than one slot
ahead of ``now``, so a narrower link (x8 -> x4) slows the engine down instead of queueing.  The
PHY trains (Probe .. Link_Active) before the data links come up: the engines' ``link_up`` is the
PHY's Link_Active time, which is part of the simulated run.

Named settings (module constants): :data:`DEFAULT_PHY_SLOT_FLITS` (flits per engine per slot:
a multiple of the 6 flits of one RS codeword so the slot fills whole codewords),
:data:`SERIES_MAX` (points kept in the time series, the interval doubles when it fills).  A
``PhyRetrainRequested`` of the DLL (NUM_RETRY reached) asks the LMSM for a real Retrain (the
Retrain Link bit, §3.4.3.7); ``phy_retrained`` follows when the link is back in Link_Active.
A CRC/FEC mode change (:meth:`PhyLinkPair.change_mode`) runs the Block_Mode_Chg exchange on both
engines (§4.3.3.8), then the LMSM mode change through Retrain (§3.4.2.8), then
``mode_changed`` on both engines.
"""
from __future__ import annotations

import re
from dataclasses import replace

from ..link.dll import DLLEngine
from ..link.dll.events import LinkError, LinkStateChanged, ModeChangeReady, PacketDelivered, \
    PhyRetrainRequested
from ..phy.link import PhyLink, PhyLinkConfig
from ..phy.rsfec import K, N
from ..profile import SPEC, Profile
from .dll_link import TIMELINE_MAX, DllLinkPair, _Direction, _Side
from .flitwire import FLIT

__all__ = ["PhyLinkPair", "DEFAULT_PHY_SLOT_FLITS", "SERIES_MAX", "LaneEvent",
           "parse_lane_event", "parse_burst", "phy_payload_bps", "transfer_ns",
           "build_phy_pair"]

#: flits an engine may transmit per slot in PHY mode (128 codewords of 6 flits; the wall-clock
#: sweet spot on NRZ x4, see bench/bench_phy_loopback.py)
DEFAULT_PHY_SLOT_FLITS = 768
#: points kept in the time series (``series``) before the sampling interval doubles
SERIES_MAX = 1000


class LaneEvent:
    """``--fail-lane N@T`` / ``--restore-lane N@T``: lane ``lane`` at ``at_ns`` (simulated ns),
    or at ``share`` (0..1) of the run's expected duration (:func:`expected_run_ns`)."""

    def __init__(self, kind: str, lane: int, at_ns: int | None = None,
                 share: float | None = None):
        if kind not in ("fail", "restore"):
            raise ValueError(f"lane event {kind!r}: fail or restore")
        if (at_ns is None) == (share is None):
            raise ValueError("a lane event takes a time or a share of the run")
        self.kind, self.lane, self.at_ns, self.share = kind, lane, at_ns, share

    def resolve(self, expected_ns: int) -> int:
        return self.at_ns if self.at_ns is not None else int(self.share * expected_ns)

    def __repr__(self) -> str:
        at = f"{self.at_ns}ns" if self.at_ns is not None else f"{self.share * 100:g}%"
        return f"{self.kind}-lane {self.lane}@{at}"


def parse_lane_event(kind: str, text: str) -> LaneEvent:
    """``"5@2ms"`` (a simulated time, units as in :func:`ubpkt.sim.link.parse_time`) or
    ``"5@50%"`` (a share of the run's expected duration)."""
    from .link import parse_time
    m = re.fullmatch(r"\s*(\d+)\s*@\s*(\S+)\s*", str(text))
    if not m:
        raise ValueError(f"{text!r}: LANE@TIME, e.g. 5@2ms or 5@50%")
    lane, at = int(m.group(1)), m.group(2)
    if at.endswith("%"):
        try:
            share = float(at[:-1]) / 100
        except ValueError:
            raise ValueError(f"{text!r}: not a share of the run") from None
        if not 0 <= share <= 1:
            raise ValueError(f"{text!r}: a share of the run is 0%..100%")
        return LaneEvent(kind, lane, share=share)
    ns = parse_time(at)
    if ns < 0:
        raise ValueError(f"{text!r}: negative time")
    return LaneEvent(kind, lane, at_ns=ns)


def parse_burst(text: str) -> tuple[LaneEvent, int]:
    """``"2@30us:16"`` / ``"2@40%:16"``: an error burst of 16 symbols on lane 2 (symbols
    default to 8 without ``:N``)."""
    head, _, n = str(text).partition(":")
    try:
        nsym = int(n) if n else 8
    except ValueError:
        raise ValueError(f"{text!r}: LANE@TIME[:SYMBOLS]") from None
    if nsym < 1:
        raise ValueError(f"{text!r}: a burst has at least one symbol")
    return parse_lane_event("fail", head), nsym


def phy_payload_bps(cfg: PhyLinkConfig, width: int | None = None) -> float:
    """Flit bits per second the lanes carry at ``width`` (default all lanes): the lane rate
    times the width, less the RS parity (120 of 128 symbols); AMCTLs (one block in
    ``period0``) are ignored."""
    w = width or cfg.lanes
    eff = 1.0 if cfg.fec == "bypass" else K / N
    return cfg.lane_gbps * 1e9 * w * eff


def transfer_ns(total_bytes: int, cfg: PhyLinkConfig) -> int:
    """The data transfer's expected duration, the base of ``N@50%`` lane events: the payload
    bytes at the full-width flit rate (:func:`phy_payload_bps`), counted from the moment both
    data links reach DLL_Normal.  Headers, responses and retries make the real transfer longer,
    so a share up to 100 % lands inside it."""
    return int(total_bytes * 8 * 1e9 / phy_payload_bps(cfg))


class PhyLinkPair(DllLinkPair):
    """Two DLL engines over one :class:`PhyLink` (see the module doc).  ``pair.ab`` /
    ``pair.ba`` are the simulator's links (the calls of :class:`ubpkt.sim.link.Link`);
    ``pair.phy`` is the PHY link; ``schedule`` holds :class:`LaneEvent` s, ``bursts``
    (:class:`LaneEvent`, symbols) pairs: absolute times are scheduled at once, shares of the
    transfer when both data links reach DLL_Normal (:func:`transfer_ns`)."""

    def __init__(self, profile: Profile = SPEC, phy_cfg: PhyLinkConfig = PhyLinkConfig(), *,
                 names=("A", "B"), slot_flits: int = DEFAULT_PHY_SLOT_FLITS,
                 schedule=(), bursts=(), total_bytes: int = 0, sample_ns: int | None = None):
        if not profile.crc_mode and phy_cfg.crc_mode:
            phy_cfg = replace(phy_cfg, crc_mode=False)
        self.profile = profile
        self.phy = phy = PhyLink(phy_cfg)
        if not phy.train():
            raise RuntimeError("the PHY link did not reach Link_Active")
        up = phy.time_of(phy.tick)
        self.up_ns = up
        self.transfer_ns = transfer_ns(total_bytes, phy_cfg)
        self.expected_ns: int | None = None     # known at DLL_Normal
        for ev in schedule:
            if not 0 <= ev.lane < phy_cfg.lanes:
                raise ValueError(f"{ev!r}: the link has lanes 0..{phy_cfg.lanes - 1}")
        self._pending = [(ev, None) for ev in schedule] + list(bursts)
        self.lane_schedule: list = []
        self._bursts: list = []
        self._resolve(lambda ev: ev.at_ns is not None)      # the absolute times now
        self.rate_bps = int(phy_payload_bps(phy_cfg))
        self.slot_flits = slot_flits
        self.flit_ns = FLIT * 8 * 1e9 / self.rate_bps
        self.slot_ns = max(1, round(slot_flits * self.flit_ns))
        self.delay_ns = phy_cfg.delay_ns
        a = _Side(names[0], DLLEngine(profile, name=names[0]))
        b = _Side(names[1], DLLEngine(profile, name=names[1]))
        self.sides = (a, b)
        self.port = {a.name: "A", b.name: "B"}          # the PHY port under each engine
        self.ab = _Direction(self, a, b)
        self.ba = _Direction(self, b, a)
        self.now = up
        self._next_slot = up
        self._quiet = False
        self._retrain: dict = {}        # side -> Retrain.Active entries seen when requested
        self._mode: dict | None = None  # a mode change under way
        self.timeline: list = []
        self.timeline_dropped = 0
        self.errors: list = []
        self.stats = {"slots": 0, "packets_offered": 0, "packets_delivered": 0,
                      "packets_refused": 0, "phy_retrains_requested": 0}
        self._delivered_bytes = 0
        self.series: list = []
        self._sample_ns = sample_ns or max(2 * self.slot_ns, self.transfer_ns // 200)
        self._next_sample = up
        for s in self.sides:
            s.engine.link_up(up)
            self._events(s, up)

    # -- time --------------------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        if not self._quiet:
            return self._next_slot
        ts = [s.engine.next_deadline() for s in self.sides]
        ts += [self.phy.ab.next_deadline(), self.phy.ba.next_deadline()]
        ts = [t for t in ts if t is not None]
        if not ts:
            return None
        return self._grid(min(ts))

    def _out(self, s: _Side):
        return self.phy.direction(self.port[s.name])

    def _slot(self, t: int) -> None:
        self.stats["slots"] += 1
        phy = self.phy
        phy.advance(t)
        busy = False
        for s in self.sides:
            eng = s.engine
            peer_dir = self._out(self._peer(s))
            for d in peer_dir.pop(t):
                eng.receive(d.flits, t, True if d.all_ok else d.fec_ok)
                busy = True
            nd = eng.next_deadline()
            if nd is not None and nd <= t:
                eng.handle_timeout(t)
            self._check_retrain(s, t)
            if s.backlog and eng.status_up:
                while s.backlog:
                    if not eng.send(s.backlog.popleft(), t):
                        self.stats["packets_refused"] += 1
            out_dir = self._out(s)
            ahead = phy.time_of(out_dir.tx_free) - t    # the lanes' backlog, ns
            budget = self.slot_flits - max(0, int(ahead / self.flit_ns))
            if budget > 0 and not out_dir.queue:
                out = eng.transmit(t, budget)
                if out:
                    busy = True
                    out_dir.push(out, t)
            self._events(s, t)
        self._mode_step(t)
        self._data_links_up(t)
        self._sample(t)
        if not busy and not self._retrain and self._mode is None \
                and all(not d.queue and not d.arrivals for d in (phy.ab, phy.ba)) \
                and all(s.engine.idle() and not s.backlog for s in self.sides) \
                and all(s.engine.status_up for s in self.sides):
            self._quiet = True

    def _resolve(self, ready) -> None:
        """Schedule the pending lane events and bursts that ``ready`` accepts on the PHY link
        (a time before Link_Active is moved just after it)."""
        keep, phy = [], self.phy
        for ev, nsym in self._pending:
            if not ready(ev):
                keep.append((ev, nsym))
                continue
            base = self.expected_ns - self.transfer_ns if ev.share is not None else 0
            at = max(self.up_ns + 1, base + ev.resolve(self.transfer_ns))
            if nsym is not None:
                self._bursts.append((ev.lane, at, nsym))
                self.lane_schedule.append({"event": "burst", "lane": ev.lane, "at_ns": at,
                                           "symbols": nsym})
                continue
            (phy.fail_lane if ev.kind == "fail" else phy.restore_lane)(ev.lane, at)
            self.lane_schedule.append({"event": ev.kind, "lane": ev.lane, "at_ns": at})
        self._pending = keep
        if self._bursts:        # the wire reads cfg.bursts on every batch
            cfg = replace(phy.cfg, bursts=tuple(self._bursts))
            cfg.validate()
            phy.cfg = cfg

    def _data_links_up(self, t: int) -> None:
        """Both engines reached DLL_Normal: the run's expected end is now known (the transfer
        at the full-width rate from here), and the events given as shares are scheduled."""
        if self.expected_ns is None and all(s.engine.status_up for s in self.sides):
            self.normal_ns = t
            self.expected_ns = t + self.transfer_ns
            self._resolve(lambda ev: True)

    # -- engine events ---------------------------------------------------------------------------
    def _events(self, s: _Side, t: int) -> None:
        for e in s.engine.pop_events():
            if isinstance(e, PacketDelivered):
                s.arrived.append((t, e.packet))
                self.stats["packets_delivered"] += 1
                self._delivered_bytes += len(e.packet)
            elif isinstance(e, LinkStateChanged):
                if len(self.timeline) < TIMELINE_MAX:
                    self.timeline.append({"t_ns": e.at, "node": s.name, "machine": e.machine,
                                          "state": e.new, "why": e.why})
                else:
                    self.timeline_dropped += 1
            elif isinstance(e, PhyRetrainRequested):
                self._request_retrain(s)
            elif isinstance(e, ModeChangeReady):
                if self._mode is not None:
                    self._mode["ready"].add(s.name)
            elif isinstance(e, LinkError):
                if len(self.errors) < TIMELINE_MAX:
                    self.errors.append({"t_ns": e.at, "node": s.name, "name": e.name,
                                        "severity": e.severity, "message": e.message})

    def _request_retrain(self, s: _Side) -> None:
        """RETRY_REQ_SM is in RETRAIN (§4.7.3.3): the port under this engine retrains (the
        Retrain Link bit, §3.4.3.7), unless it is out of Link_Active already (then its own
        recovery is the retrain)."""
        self.stats["phy_retrains_requested"] += 1
        port = self.phy.ports[self.port[s.name]]
        asked = port.state == "Link_Active"
        self._retrain[s.name] = (self._retrains(port), asked)
        if asked:
            port.request_retrain()

    @staticmethod
    def _retrains(port) -> int:
        return sum(1 for e in port.trace if e["state"] == "Retrain.Active")

    def _check_retrain(self, s: _Side, t: int) -> None:
        """``phy_retrained`` once the port is back in Link_Active after the Retrain."""
        req = self._retrain.get(s.name)
        if req is None:
            return
        seen, asked = req
        port = self.phy.ports[self.port[s.name]]
        if port.state == "Link_Active" and self.phy._settled() and \
                (self._retrains(port) > seen or not asked):
            del self._retrain[s.name]
            s.engine.phy_retrained(t)

    # -- CRC / FEC mode change ---------------------------------------------------------------------
    def change_mode(self, now: int, fec: str | None = None, crc_mode: bool | None = None) -> None:
        """Start a mode change at ``now``: both engines send Block_Mode_Chg REQ (§4.3.3.8); when
        both have the peer's ACK the PHY retrains into the new mode (§3.4.2.8) and both engines
        resume with ``mode_changed``."""
        if self._mode is not None:
            raise RuntimeError("a mode change is already under way")
        self.advance(now)
        self._quiet = False
        self._mode = {"fec": fec, "crc_mode": crc_mode, "ready": set(), "at_ns": now}
        for s in self.sides:
            s.engine.request_mode_change(now)

    def _mode_step(self, t: int) -> None:
        m = self._mode
        if m is None or len(m["ready"]) < len(self.sides):
            return
        self.phy.change_mode(fec=m["fec"], crc_mode=m["crc_mode"], at=t)
        crc = self.phy.ports["A"].crc_mode
        for s in self.sides:
            s.engine.mode_changed(crc, t)
        self._mode = None

    # -- results -----------------------------------------------------------------------------------
    def _sample(self, t: int) -> None:
        if t < self._next_sample:
            return
        ports = self.phy.ports
        self.series.append({
            "t_ns": t, "delivered_bytes": self._delivered_bytes,
            "retries": sum(s.engine.stats["retries"] for s in self.sides),
            "width_ab": ports["A"].tx_width, "width_ba": ports["B"].tx_width})
        if len(self.series) >= SERIES_MAX:       # keep every other point, sample half as often
            self.series = self.series[::2]
            self._sample_ns *= 2
        self._next_sample = t + self._sample_ns

    def report(self) -> dict:
        """The ``link`` section: the DLL pair's keys (``mode`` ``phy``) plus the PHY's
        ``width_changes``, the lane events and the time series."""
        self._sample(max(self.now, self._next_sample))
        def tot(key):
            return sum(s.engine.stats[key] for s in self.sides)
        phy = self.phy
        return {
            "mode": "phy", "crc_mode": phy.ports["A"].crc_mode, "rate_bps": self.rate_bps,
            "ber": phy.cfg.ber, "flits": tot("tx_flits"), "crc_errors": tot("crc_errors"),
            "fec_errors": tot("fec_errors"), "retries": tot("retries"),
            "replayed_flits": tot("replayed_flits"), "crd_acks": tot("crd_acks"),
            "packets": self.stats["packets_delivered"],
            "packets_refused": self.stats["packets_refused"],
            "width_changes": list(phy.width_changes), "lane_schedule": self.lane_schedule,
            "expected_run_ns": self.expected_ns, "link_up_ns": self.up_ns,
            "dll_normal_ns": getattr(self, "normal_ns", None),
            "slot_flits": self.slot_flits,
            "phy_retrains_requested": self.stats["phy_retrains_requested"],
            "errors": self.errors, "timeline": self.timeline,
            "timeline_dropped": self.timeline_dropped,
            "per_node": {s.name: dict(s.engine.stats) for s in self.sides},
            "series": self.series,
        }

    def phy_report(self) -> dict:
        """The ``phy`` section: the PHY link's report and the timeline of LMSM states."""
        r = self.phy.report()
        tl = self.phy.timeline()
        r["timeline"] = tl[:TIMELINE_MAX]
        r["timeline_dropped"] = max(0, len(tl) - TIMELINE_MAX)
        return r


def build_phy_pair(cfg, profile: Profile, total_bytes: int) -> PhyLinkPair:
    """The pair for a ``LoopbackConfig`` (``lanes``, ``fec``, ``ber``, ``crc_mode``,
    ``delay_ns``, ``seed``, ``fail_lanes``, ``restore_lanes``, ``bursts``, ``slot_flits``)."""
    phy_cfg = PhyLinkConfig(lanes=cfg.lanes, fec=cfg.fec, crc_mode=cfg.crc_mode, ber=cfg.ber,
                            seed=cfg.seed, delay_ns=cfg.delay_ns)
    phy_cfg.validate()
    schedule = [parse_lane_event("fail", t) for t in cfg.fail_lanes]
    schedule += [parse_lane_event("restore", t) for t in cfg.restore_lanes]
    bursts = [parse_burst(b) for b in cfg.bursts]
    for ev, _ in bursts:
        if not 0 <= ev.lane < cfg.lanes:
            raise ValueError(f"burst on lane {ev.lane}: the link has lanes 0..{cfg.lanes - 1}")
    return PhyLinkPair(profile, phy_cfg, slot_flits=cfg.slot_flits or DEFAULT_PHY_SLOT_FLITS,
                       schedule=schedule, bursts=bursts, total_bytes=total_bytes)
