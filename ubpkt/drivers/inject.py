"""``ubpkt inject``: an initiator endpoint against a live UBoE peer over UDP
(:mod:`ubpkt.drivers.udp`), running a workload spec (:mod:`ubpkt.stack.workload`), with the
simulator's fault injector on its send path and the same counters and fault ledger as
``ubpkt loopback``.

With ``verify``: every slot a read or an atomic uses is first filled with seeded bytes (Writes,
not counted in the workload); then the workload runs; then every slot a write or an atomic
changed is read back.  ``data_verified`` is true when every request completed with success,
every read returned the prefill, every atomic returned the prefill as its old value (the ops
that return one) and left ``atomic_apply(prefill)`` behind, and every write's bytes are there.
A Send's bytes land in the peer's receive buffers: only its completion is checked.

The target's segment: ``base``, ``tokenid`` and ``token`` (defaults: ``ubpkt serve``'s first
region, TokenID 1 at 0x1_0000_0000, no token).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from ..profile import SPEC, Profile
from ..record import LINKTYPE_ETHERNET, LINKTYPE_NS3
from ..sim.faults import FaultInjector, FaultSpec
from ..sim.ledger import Ledger
from ..sim.loopback import _Workload, transport_counters
from ..sim.tap import PcapTap
from ..stack.endpoint import Endpoint
from ..stack.transaction.ops import WorkRequest
from ..stack.workload import plan as make_plan, prefill as make_prefill
from .carriage import dialect_of
from .udp import ICRC_NOTE, UB_UDP_PORT, UdpDriver, udp_profile, wallclock_profile

__all__ = ["InjectConfig", "run_inject", "config_dict", "SCHEMA"]

SCHEMA = "ubpkt.inject/1"
_PREFILL_ID, _READBACK_ID = 10_000_000, 20_000_000


@dataclass
class InjectConfig:
    peer: tuple = ("127.0.0.1", UB_UDP_PORT)
    bind: tuple = ("127.0.0.1", 0)
    workload: str = "write:4KiB*16"
    verify: bool = False
    timeout_s: float = 10.0
    faults: str | None = None       # FaultSpec text, on the send path
    seed: int = 1
    base: int = 1 << 32
    tokenid: int = 1
    token: int | None = None
    local_tpn: int = 0x10
    peer_tpn: int = 0x20
    tx_psn: int = 0
    rx_psn: int = 0
    icrc: str = "check"
    outstanding: int = 64
    mtu: int | None = None
    retrans: str | None = None
    window: int = 128
    pps: float | None = None
    pcap: str | None = None         # write the conversation (sent and received frames) here
    profile: Profile = field(default=SPEC, repr=False)


class _Run:
    def __init__(self, cfg: InjectConfig):
        self.cfg = cfg
        # the tap records frames as the engines see them: UBoE (Ethernet), or ns-3-UB trace
        # records (linktype 147) in the ns3 dialect
        self.tap = PcapTap(cfg.pcap, linktype=LINKTYPE_NS3 if dialect_of(cfg.profile) == "ns3"
                           else LINKTYPE_ETHERNET) if cfg.pcap else None
        # the dialect's carriage (ubpkt.drivers.carriage): UBoE datagrams, or whole ns-3-UB
        # frames for the NS3 profile
        self.driver = UdpDriver(cfg.bind, icrc=cfg.icrc, profile=cfg.profile, pps=cfg.pps,
                                tap=self.tap, dialect=dialect_of(cfg.profile))
        prof = wallclock_profile(cfg.profile, mtu=cfg.mtu, window=cfg.window)
        if cfg.retrans:
            prof = prof.with_(transport={"retransmission": cfg.retrans})
        self.profile = udp_profile(prof, self.driver.local[1])
        self.ep = Endpoint("A", self.driver.carriage.initiator_path(self.driver, cfg.peer),
                           self.profile, rc_id=1)
        self.ep.open_channel(cfg.local_tpn, cfg.peer_tpn, tx_psn=cfg.tx_psn, rx_psn=cfg.rx_psn)
        self.ledger = Ledger()
        inj = None
        if cfg.faults:
            spec = FaultSpec.parse(cfg.faults)
            if spec:
                inj = FaultInjector(spec, seed=spec.seed if spec.seed is not None else cfg.seed,
                                    link="A->B", src="A", dst="B", ledger=self.ledger,
                                    profile=cfg.profile)
        self.injector = inj
        self.peer = self.driver.add_peer(cfg.peer, None, name="A", faults=inj)
        self.deadline = time.monotonic() + cfg.timeout_s
        self.outcome = "done"

    def phase(self, wrs: list) -> _Workload:
        """Run ``wrs`` to completion (or the timeout)."""
        app = _Workload(self.ep, wrs, self.cfg.outstanding)
        self.peer.engine = app
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.outcome = "timeout"
            return app
        if self.driver.run(until=app.done, timeout_s=left) != "until":
            self.outcome = "timeout"
        return app

    def settle(self) -> None:
        """The last acknowledgements (nothing new is posted)."""
        left = min(0.3, self.deadline - time.monotonic())
        if left > 0:
            self.driver.run(until=lambda: self.ep.idle() and not self.driver.pending(),
                            timeout_s=left)


def run_inject(cfg: InjectConfig) -> dict:
    """Run the workload against ``cfg.peer`` and return the report (schema
    ``ubpkt.inject/1``)."""
    t0 = time.perf_counter()
    p = make_plan(cfg.workload, base=cfg.base, tokenid=cfg.tokenid, tokenvalue=cfg.token,
                  seed=cfg.seed)
    run = _Run(cfg)
    try:
        return _run(cfg, p, run, t0)
    finally:
        run.driver.close()
        if run.tap is not None:
            run.tap.close()


def _run(cfg: InjectConfig, p, run: _Run, t0: float) -> dict:
    pre = {}
    pre_app = None
    if cfg.verify:
        pre = make_prefill(p, seed=cfg.seed + 1)
        wrs = []
        for i, b in pre.items():
            s = p.slots[i]
            wrs.append(WorkRequest(_PREFILL_ID + i, "write", local=memoryview(b),
                                   remote_addr=p.base + s.offset, tokenid=p.tokenid,
                                   tokenvalue=p.tokenvalue))
        pre_app = run.phase(wrs)
    t_run = time.perf_counter()
    app = run.phase(p.wrs) if run.outcome == "done" else _Workload(run.ep, p.wrs, 1)
    run_s = time.perf_counter() - t_run
    back = {}
    back_app = None
    if cfg.verify and run.outcome == "done":
        wrs = []
        for s in p.touched():
            if s.op == "read":
                continue
            buf = bytearray(s.length)
            back[s.index] = buf
            wrs.append(WorkRequest(_READBACK_ID + s.index, "read", local=memoryview(buf),
                                   length=s.length, remote_addr=p.base + s.offset,
                                   tokenid=p.tokenid, tokenvalue=p.tokenvalue))
        back_app = run.phase(wrs)
    run.settle()
    if run.ep.channels and any(ch.dead for ch in run.ep.channels.values()):
        run.outcome = "channel_error"
    wall = time.perf_counter() - t0

    # -- verify -------------------------------------------------------------------------------
    n = len(p.wrs)
    statuses: dict = {}
    for c in app.completions:
        statuses[c.status] = statuses.get(c.status, 0) + 1
    ok = {c.wr_id for c in app.completions if c.status == "success"}
    all_ok = len(app.completions) == n and len(ok) == n
    delivered = sum(s.length for s in p.slots if s.wr.wr_id in ok)
    mismatches: list = []
    verified = None
    if cfg.verify:
        verified = all_ok
        for a in (pre_app, back_app):
            if a is None or any(c.status != "success" for c in a.completions) \
                    or not a.done():
                verified = False
        if verified:
            for s in p.slots:
                got = None
                if s.op == "read":
                    got, want = bytes(p.bufs[s.index]), pre[s.index]
                elif s.op == "atomic":
                    want = p.expected(s, pre[s.index])
                    got = bytes(back[s.index])
                    if s.wr.op != "atomic_store" and s.wr.result is not None and \
                            s.wr.result != int.from_bytes(pre[s.index], "little"):
                        mismatches.append({"wr_id": s.wr.wr_id, "op": s.wr.op,
                                           "what": "old value"})
                elif s.offset is not None:
                    got, want = bytes(back[s.index]), p.expected(s, b"")
                if got is not None and got != want:
                    first = next(k for k in range(len(want)) if got[k] != want[k])
                    mismatches.append({"wr_id": s.wr.wr_id, "op": s.wr.op,
                                       "offset": f"{p.base + s.offset + first:#x}"})
            verified = not mismatches
    run.ledger.resolve(run.driver.events)
    return _report(cfg, p, run, app, n, delivered, verified, all_ok, statuses, mismatches,
                   wall, run_s)


def config_dict(cfg: InjectConfig) -> dict:
    """The report's ``config``: the settings, addresses as HOST:PORT, the dialect by name."""
    d = {k: v for k, v in asdict(cfg).items() if k != "profile"}
    d["peer"] = f"{cfg.peer[0]}:{cfg.peer[1]}"
    d["bind"] = f"{cfg.bind[0]}:{cfg.bind[1]}"
    d["dialect"] = cfg.profile.name
    return d


def _report(cfg, p, run, app, n, delivered, verified, all_ok, statuses, mismatches, wall,
            run_s) -> dict:
    transport = transport_counters((run.ep,))
    transport["bad_icrc"] += run.driver.stats["bad_icrc"]     # dropped by the socket driver
    cfg_d = config_dict(cfg)
    d = run.driver
    warnings = []
    if d.stats["rx_datagrams"] == 0:
        warnings.append(f"no datagram came back from {cfg_d['peer']}: is a UB endpoint (ubpkt "
                        "serve) listening there, with the same TPNs and PSNs?")
    return {
        "warnings": warnings,
        "schema": SCHEMA,
        "config": cfg_d,
        "peer": cfg_d["peer"],
        "local": f"{d.local[0]}:{d.local[1]}",
        "outcome": run.outcome,
        "workload": [str(i) for i in p.items],
        "requests": n,
        "operations": p.counts(),
        "sent_bytes": p.payload_bytes(),
        "delivered_bytes": delivered,
        "all_completed": bool(all_ok),
        "data_verified": verified,
        "verify": {"enabled": cfg.verify, "mismatches": mismatches[:20],
                   "note": "Sends are checked by their completion only (the bytes land in "
                           "the peer's receive buffers)"} if cfg.verify else {"enabled": False},
        "completions": statuses,
        "transport": transport,
        "faults": run.ledger.report(),
        "icrc": cfg.icrc,
        "icrc_note": ICRC_NOTE,
        "driver": d.report(),
        "wall_s": round(wall, 6),
        "run_s": round(run_s, 6),
        "payload_mb_per_s": round(delivered / run_s / 1e6, 3) if run_s > 0 else None,
    }
