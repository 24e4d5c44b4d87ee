"""``ubpkt loopback``: two endpoints of the reference stack move a workload over a simulated link,
with faults injected, and compare their memories (UB 2.0 ch. 5-7).

Endpoint A (the initiator) posts work requests; endpoint B (the target) holds a memory segment
(TokenID, token value, read/write/atomic rights).  The workload is written, read, sent or applied
as atomics; at the end the target memory must equal what A wrote (write), A's read buffers what
B holds (read), B's receive buffers what A sent (send), and the counters the sums of the atomic
adds, each executed once (atomic).  The report (``schema`` ``ubpkt.loopback/1``) says what moved,
what the engines did, and what happened to every injected fault (the ledger).
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..profile import SPEC, Profile
from ..record import LINKTYPE_ETHERNET, LINKTYPE_UB
from ..stack.endpoint import Endpoint
from ..stack.engine import Completed
from ..stack.network import Path
from ..stack.transaction.ops import WorkRequest
from .driver import Simulator
from .ledger import Ledger
from .faults import FaultInjector, FaultSpec
from .dll_link import DEFAULT_SLOT_FLITS, DllLinkPair
from .phy_link import build_phy_pair
from .link import LinkParams
from .tap import PcapTap

__all__ = ["LoopbackConfig", "run_loopback", "transport_counters", "SCHEMA", "OPS", "LINK_MODES"]

SCHEMA = "ubpkt.loopback/1"
OPS = ("write", "read", "send", "atomic", "mix")
LINK_MODES = ("ideal", "dll", "phy")
#: where the target's segment sits, its TokenID and token value (the reference workload)
_BASE, _TOKENID, _TOKEN = 0x1_0000_0000, 0x123, 0xC0FFEE
_A_TPN, _B_TPN = 0x10, 0x20


@dataclass
class LoopbackConfig:
    transport: str = "rtp"          # rtp, ctp, utp, bypass
    op: str = "write"               # write, read, send, atomic, mix
    size: int = 4096                # bytes per work request
    count: int | None = None        # work requests (default: 256, or from total_bytes)
    total_bytes: int | None = None
    mtu: int | None = None          # payload per packet (TransactionTuning.mtu)
    retrans: str | None = None      # gbn | sr (TransportTuning.retransmission)
    window: int | None = None       # TransportTuning.window
    outstanding: int = 64           # work requests in flight
    faults: str | None = None       # FaultSpec text, both directions
    faults_ab: str | None = None    # ... only A -> B (data)
    faults_ba: str | None = None    # ... only B -> A (responses)
    # endpoint faults: the target refuses a request packet with RNR (UB 2.0 §6.2.1 RSPST 001);
    # a work request carries a wrong token value; one addresses past the segment (§7.2.3-5)
    rnr: float = 0.0
    bad_token: float = 0.0
    out_of_bounds: float = 0.0
    delay_ns: int = 1000            # one-way propagation delay
    # link fidelity (docs/stack.md): "ideal" (SimLink: frames whole) or "dll" (native UB
    # packets through a DLL engine pair over flit wires, bit errors at ``ber``, UB 2.0 ch. 4)
    link: str = "ideal"
    ber: float = 0.0                # bit error rate of each flit wire (--link dll)
    crc_mode: bool = True           # DLL CRC mode (False: non-CRC, errors flagged as FEC fails)
    rate_bps: int | None = None     # link rate (None: no serialisation delay)
    # --link phy (ubpkt.sim.phy_link): the DLL pair over a PhyLink of ``lanes`` lanes with
    # ``fec``; ``ber`` is then the lanes' bit error rate (symbol errors); lane events and bursts
    # as text: "LANE@TIME" / "LANE@SHARE%" and "LANE@TIME:SYMBOLS" (docs/stack.md)
    lanes: int = 4
    fec: str = "rs-t4"
    fail_lanes: tuple = ()
    restore_lanes: tuple = ()
    bursts: tuple = ()
    slot_flits: int | None = None   # flits per engine per slot (None: the mode's default)
    seed: int = 1
    pcap: str | None = None
    time_limit_ns: int = 600 * 10**9
    # where the frames travel: "sim" (the simulator) or "veth" (raw Ethernet between two
    # network namespaces, ubpkt.drivers.veth; root only); timeout_s bounds a veth run
    driver: str = "sim"
    timeout_s: float = 120.0
    profile: Profile = field(default=SPEC, repr=False)
    #: the Path kind (``ubpkt.stack.network.Path``); None: ``uboe`` for RTP/UTP, ``cna16``
    #: otherwise.  ``ipv4``: the native IP-form NTH (the ns-3-UB dialect's URMA packets).
    path_kind: str | None = None

    def resolved_count(self) -> int:
        if self.count is not None:
            return self.count
        if self.total_bytes is not None:
            return max(1, -(-self.total_bytes // self.size))
        return 256


def _tuned(cfg: LoopbackConfig, base: Profile | None = None) -> Profile:
    p = cfg.profile if base is None else base
    tr, ta = {}, {}
    if cfg.retrans:
        tr["retransmission"] = cfg.retrans
    if cfg.window:
        tr["window"] = cfg.window
    if cfg.mtu:
        ta["mtu"] = cfg.mtu
    kw = {}
    if tr:
        kw["transport"] = tr
    if ta:
        kw["transaction"] = ta
    return p.with_(**kw) if kw else p


class _App:
    """An endpoint plus the application on top of it: still an engine (the contract of
    ``ubpkt.stack.engine``) the simulator runs like any other.  ``_before_transmit`` posts what
    the application has ready; ``_on_event`` sees every event."""

    def __init__(self, ep: Endpoint):
        self.ep = ep

    def receive(self, data, now: int) -> None:
        self.ep.receive(data, now)

    def transmit(self, now: int, budget: int = 1 << 30) -> list:
        self._before_transmit(now)
        return self.ep.transmit(now, budget)

    def next_deadline(self):
        return self.ep.next_deadline()

    def handle_timeout(self, now: int) -> None:
        self.ep.handle_timeout(now)

    def pop_events(self) -> list:
        ev = self.ep.pop_events()
        for e in ev:
            if isinstance(e, Completed):
                self._on_completion(e)
        return ev


class _Workload(_App):
    """Endpoint A: posts the work requests, at most ``outstanding`` in flight."""

    def __init__(self, ep: Endpoint, wrs: list, outstanding: int):
        super().__init__(ep)
        self.todo = wrs
        self.next = 0
        self.limit = outstanding
        self.in_flight = 0
        self.completions: list[Completed] = []

    def done(self) -> bool:
        return self.next >= len(self.todo) and self.in_flight == 0

    def _before_transmit(self, now: int) -> None:
        while self.next < len(self.todo) and self.in_flight < self.limit:
            self.ep.post(self.todo[self.next], now=now)
            self.next += 1
            self.in_flight += 1

    def _on_completion(self, e: Completed) -> None:
        if e.wr_id >= 0:
            self.completions.append(e)
            self.in_flight -= 1


class _Receiver(_App):
    """Endpoint B: keeps receive buffers posted for Send (at most the queue depth at a time,
    UB 2.0 §7.4.3: a Send without a buffer gets RNR)."""

    def __init__(self, ep: Endpoint, bufs: list, depth: int):
        super().__init__(ep)
        self.bufs = bufs            # (wr_id, buffer) in the order Sends arrive
        self.next = 0
        self.depth = depth
        self.posted = 0

    def _before_transmit(self, now: int) -> None:
        while self.next < len(self.bufs) and self.posted < self.depth:
            wr_id, buf = self.bufs[self.next]
            self.ep.post_recv(memoryview(buf), wr_id)
            self.next += 1
            self.posted += 1

    def _on_completion(self, e: Completed) -> None:
        if e.wr_id >= _RECV_BASE:
            self.posted -= 1


_RECV_BASE = 1_000_000


def _aligned(off: int) -> int:
    return (off + 7) & ~7


def _workload(cfg: LoopbackConfig, rng: random.Random, src: bytearray, n: int):
    """The work requests for ``cfg.op``, and the ones given an endpoint fault
    (``{index: "bad_token" | "out_of_bounds"}``)."""
    size = cfg.size
    frng = random.Random(f"{cfg.seed}/endpoint")
    faulted = {}
    ops = [cfg.op] * n if cfg.op != "mix" else [rng.choice(("write", "read", "send", "atomic"))
                                                   for _ in range(n)]
    wrs = []
    for i, op in enumerate(ops):
        off = i * size
        if op == "write":
            wrs.append(WorkRequest(i, "write", local=memoryview(src)[off:off + size],
                                   remote_addr=_BASE + off, tokenid=_TOKENID,
                                   tokenvalue=_TOKEN))
        elif op == "read":
            wrs.append(WorkRequest(i, "read", local=memoryview(src)[off:off + size],
                                   length=size, remote_addr=_BASE + off, tokenid=_TOKENID,
                                   tokenvalue=_TOKEN))
        elif op == "send":
            wrs.append(WorkRequest(i, "send", local=memoryview(src)[off:off + size]))
        else:
            # fetch_add of 8 bytes on a counter at the first 8-byte aligned address of the
            # request's slot (atomics are naturally aligned, UB 2.0 §7.2.3)
            wrs.append(WorkRequest(i, "fetch_add", remote_addr=_BASE + _aligned(off), size=8,
                                   operand1=i + 1, tokenid=_TOKENID, tokenvalue=_TOKEN))
        if op == "send":
            continue                # a Send names a queue, not a segment
        if frng.random() < cfg.bad_token:
            wrs[-1].tokenvalue = _TOKEN ^ 0x5A5A5A5A
            faulted[i] = "bad_token"
        elif frng.random() < cfg.out_of_bounds:
            wrs[-1].remote_addr = _BASE + n * size + 64 * 1024 + (wrs[-1].remote_addr & 63)
            faulted[i] = "out_of_bounds"
    return ops, wrs, faulted


class _SimNet:
    """The simulator as the loopback's network: two links with delay and rate, the fault
    injectors, the pcap tap.  The other network is ``ubpkt.drivers.veth.VethNet`` (the same
    calls over raw Ethernet between two network namespaces)."""
    name = "sim"

    def __init__(self, cfg: LoopbackConfig, kind: str):
        self.cfg = cfg
        self.kind = kind
        self.sim = None
        self.pair = None                # the DLL link pair (--link dll)
        self._closed = False

    def profile(self, prof: Profile) -> Profile:
        return prof

    def paths(self) -> tuple:
        path = Path(kind=self.kind)
        return path, path.reverse()

    def connect(self, app, peer, fa, fb, ledger: "Ledger", prof: Profile) -> None:
        cfg = self.cfg
        self.sim = sim = Simulator(seed=cfg.seed, ledger=ledger)
        sim.add("A", app)
        sim.add("B", peer)
        linktype = LINKTYPE_ETHERNET if self.kind == "uboe" else LINKTYPE_UB
        tap = PcapTap(cfg.pcap, linktype=linktype) if cfg.pcap else None
        params = LinkParams(delay=cfg.delay_ns, rate=cfg.rate_bps, linktype=linktype)
        links = None
        if cfg.link == "dll":       # the DLL engine pair over flit wires (ubpkt.sim.dll_link)
            self.pair = DllLinkPair(prof.with_(crc_mode=cfg.crc_mode), names=("A", "B"),
                                    delay_ns=cfg.delay_ns, rate_bps=cfg.rate_bps, ber=cfg.ber,
                                    seed=cfg.seed,
                                    slot_flits=cfg.slot_flits or DEFAULT_SLOT_FLITS)
            links = (self.pair.ab, self.pair.ba)
        elif cfg.link == "phy":     # the DLL pair over the PCS lanes (ubpkt.sim.phy_link)
            self.pair = build_phy_pair(cfg, prof.with_(crc_mode=cfg.crc_mode),
                                       cfg.resolved_count() * cfg.size)
            links = (self.pair.ab, self.pair.ba)
        sim.connect("A", "B", params,
                    faults_ab=FaultInjector(FaultSpec.parse(fa), seed=cfg.seed) if fa else None,
                    faults_ba=FaultInjector(FaultSpec.parse(fb), seed=cfg.seed + 1) if fb
                    else None, tap=tap, links=links)

    def link_report(self) -> dict:
        return self.pair.report() if self.pair is not None else {"mode": "ideal"}

    def phy_report(self) -> dict | None:
        return self.pair.phy_report() if hasattr(self.pair, "phy_report") else None

    @property
    def now(self) -> int:
        return self.sim.now

    @property
    def events(self) -> list:
        return self.sim.events

    def run(self, until) -> str:
        return self.sim.run(until_ns=self.cfg.time_limit_ns, until=until)

    def settle(self, until) -> None:
        # a lost final TPACK is recovered by the RTO; nothing new is posted
        self.sim.run(until_ns=self.sim.now + 50_000_000, until=until)

    def close(self) -> None:
        if self.sim is not None and not self._closed:
            self._closed = True
            self.sim.close()

    def report(self) -> dict:
        return {"kind": "sim"}


#: the native Path kind of each transport under the DLL/PHY link modes (see run_loopback)
NATIVE_PATH = {"rtp": "cna24", "utp": "ipv4", "ctp": "cna16", "bypass": "cna16"}


def _network(cfg: LoopbackConfig, kind: str):
    if cfg.driver == "sim":
        return _SimNet(cfg, kind)
    if cfg.driver == "veth":
        from ..drivers.veth import VethNet      # the drivers build on this module
        return VethNet(cfg, kind)
    raise ValueError(f"driver {cfg.driver!r}: sim or veth")


def run_loopback(cfg: LoopbackConfig, progress: Callable[[dict], None] | None = None) -> dict:
    """Run the loopback and return its report (see the module doc)."""
    t0 = time.perf_counter()
    rng = random.Random(cfg.seed)
    n = cfg.resolved_count()
    size = cfg.size
    if cfg.op in ("atomic", "mix") and size < 16:
        raise ValueError("atomic workloads need --size 16 or more (an aligned 8-byte counter "
                         "per request)")
    total = n * size
    if cfg.link not in LINK_MODES:
        raise ValueError(f"link mode {cfg.link!r}: one of {', '.join(LINK_MODES)}")
    if cfg.link == "ideal" and (cfg.ber or not cfg.crc_mode):
        raise ValueError("--ber and --non-crc need --link dll or phy (the ideal link has no "
                         "flits)")
    if cfg.link != "phy" and (cfg.fail_lanes or cfg.restore_lanes or cfg.bursts):
        raise ValueError("lane events and bursts need --link phy")
    if cfg.link != "ideal" and cfg.driver != "sim":
        raise ValueError(f"--link {cfg.link} is a simulated link: --driver sim")
    # the ideal link keeps UBoE for RTP/UTP; the DLL carries network packets from the LPH: RTP
    # after the 24-bit CNA NTH (CFG 7, UB 2.0 §5.2.2), UTP in the native IP form (CFG 3,
    # §5.2.3), CTP and TP bypass after the 16-bit CNA NTH (CFG 6/9, §5.2.1)
    kind = cfg.path_kind or (
        ("uboe" if cfg.link == "ideal" else NATIVE_PATH[cfg.transport])
        if cfg.transport in ("rtp", "utp") else "cna16")
    net = _network(cfg, kind)
    try:
        return _run(cfg, net, kind, rng, n, size, total, t0, progress)
    finally:
        net.close()


def _run(cfg, net, kind, rng, n, size, total, t0, progress) -> dict:
    prof = _tuned(cfg, net.profile(cfg.profile))
    path_a, path_b = net.paths()
    a = Endpoint("A", path_a, prof, rc_id=1)
    b = Endpoint("B", path_b, prof, rc_id=2)
    tx_psn, rx_psn = rng.getrandbits(24), rng.getrandbits(24)   # reference profile: seeded
    a.open_channel(_A_TPN, _B_TPN, transport=cfg.transport, tx_psn=tx_psn, rx_psn=rx_psn)
    b.open_channel(_B_TPN, _A_TPN, transport=cfg.transport, tx_psn=rx_psn, rx_psn=tx_psn)

    src = bytearray(rng.randbytes(total))
    target = bytearray(total)
    if cfg.op in ("read", "mix"):
        target[:] = rng.randbytes(total)
    initial_target = bytes(target)
    b.memory.register(_BASE, buffer=target, tokenid=_TOKENID, tokenvalue=_TOKEN, perms="rwa")
    ops, wrs, faulted = _workload(cfg, rng, src, n)
    recv_bufs = {}
    for i, op in enumerate(ops):
        if op == "send":
            recv_bufs[i] = bytearray(size)

    sim_ledger = Ledger()
    if cfg.rnr:
        _inject_rnr(b, cfg, sim_ledger)
    app = _Workload(a, wrs, cfg.outstanding)
    peer = _Receiver(b, [(_RECV_BASE + i, buf) for i, buf in recv_bufs.items()],
                     prof.tuning.transaction.recv_queue_depth)
    fa = cfg.faults_ab or cfg.faults
    fb = cfg.faults_ba or cfg.faults
    net.connect(app, peer, fa, fb, sim_ledger, prof)
    last_report = [0.0]

    def until() -> bool:
        if progress is not None and time.perf_counter() - last_report[0] > 0.2:
            last_report[0] = time.perf_counter()
            progress(_progress(app, a, b, net, n))
        return app.done()

    t_run, cpu_run = time.perf_counter(), time.process_time()
    outcome = net.run(until)
    # let the last responses and acknowledgements settle
    net.settle(lambda: a.idle() and b.idle())
    run_s = time.perf_counter() - t_run
    run_cpu_s = time.process_time() - cpu_run
    net.close()
    wall = time.perf_counter() - t0

    # -- verify -------------------------------------------------------------------------------
    statuses: dict = {}
    for c in app.completions:
        statuses[c.status] = statuses.get(c.status, 0) + 1
    ok = {c.wr_id for c in app.completions if c.status == "success"}
    status_of = {c.wr_id: c.status for c in app.completions}
    delivered = 0
    verified = len(app.completions) == n and len(ok) == n - len(faulted)
    expect_target = bytearray(initial_target)
    endpoint_errors = {}
    for i, kind in faulted.items():
        # the spec's error for an access check that fails, and no byte changed (Table 7-3)
        endpoint_errors[i] = status_of.get(i)
        if status_of.get(i) != "remote_access_error":
            verified = False
    for i, op in enumerate(ops):
        off = i * size
        if i in faulted:
            continue
        if op == "write":
            expect_target[off:off + size] = src[off:off + size]
            if i in ok:
                delivered += size
        elif op == "read":
            if i in ok and src[off:off + size] == initial_target[off:off + size]:
                delivered += size
            elif i in ok:
                verified = False
        elif op == "send":
            if i in ok and recv_bufs[i] == src[off:off + size]:
                delivered += size
            elif i in ok:
                verified = False
        else:
            c = _aligned(off)
            old = int.from_bytes(expect_target[c:c + 8], "little")
            expect_target[c:c + 8] = ((old + i + 1) % (1 << 64)).to_bytes(8, "little")
            if i in ok:
                delivered += 8
    if target != expect_target:
        verified = False

    sim_ledger.resolve(net.events)
    _endpoint_outcomes(sim_ledger, faulted, endpoint_errors, app)
    report = _report(cfg, prof, app, a, b, net, sim_ledger, n, total, delivered, verified,
                     statuses, wall, run_s, outcome)
    # the same transfer in CPU seconds of this process: a rate that does not depend on what
    # else the machine runs (the wall-clock rate above does)
    report["run_cpu_s"] = round(run_cpu_s, 6)
    report["payload_mb_per_cpu_s"] = (round(delivered / run_cpu_s / 1e6, 3) if run_cpu_s > 0
                                      else None)
    report["link"] = net.link_report()
    phy = net.phy_report() if hasattr(net, "phy_report") else None
    if phy is not None:
        report["phy"] = phy
    if progress is not None:
        progress(_progress(app, a, b, net, n))
    return report


def _progress(app: _Workload, a: Endpoint, b: Endpoint, sim, n: int) -> dict:
    st = {}
    for ep in (a, b):
        for ch in ep.channels.values():
            for k, v in ch.engine.stats.items():
                if isinstance(v, int):
                    st[f"{ep.name}.{k}"] = v
    return {"completed": len(app.completions), "total": n, "sim_time_ns": sim.now,
            "frames": a.stats["tx_frames"] + b.stats["tx_frames"], "engines": st}


def transport_counters(eps) -> dict:
    """The ``transport`` section of a report over endpoints ``eps``: packets, retransmissions
    (by reason), acknowledgements, duplicates, congestion marks (UB 2.0 §6.4, §6.6.1.3), frames,
    drops and bad ICRCs."""
    retrans: dict = {}
    for ep in eps:
        for ch in ep.channels.values():
            for k, v in ch.engine.stats.items():
                if k.startswith("rtx_") and isinstance(v, int) and v:
                    retrans[k[4:]] = retrans.get(k[4:], 0) + v
    return {
        "packets": _sum_stats(eps, "tx_packets"),
        "retransmissions": _sum_stats(eps, "retransmissions"),
        "retransmissions_by_reason": retrans,
        "acks": _sum_stats(eps, "acks", "sacks", "naks"),
        "duplicates_discarded": _sum_stats(eps, "duplicates"),
        # what receivers saw marked and echoed in CETPHs, what senders got back
        "cc_marked": _sum_stats(eps, "cc_marked"),
        "cc_responses": _sum_stats(eps, "cc_responses"),
        "cc_marks": _sum_stats(eps, "cc_marks"),
        "frames": sum(ep.stats["tx_frames"] for ep in eps),
        "rx_dropped": sum(ep.stats["rx_dropped"] for ep in eps),
        "bad_icrc": sum(ep.framer.stats["rx_bad_icrc"] for ep in eps),
    }


def _sum_stats(eps, *keys) -> int:
    tot = 0
    for ep in eps:
        for ch in ep.channels.values():
            for k in keys:
                v = ch.engine.stats.get(k, 0)
                tot += v if isinstance(v, int) else 0
    return tot


def _inject_rnr(ep: Endpoint, cfg: LoopbackConfig, ledger: Ledger) -> None:
    """The target refuses request packets with RNR at probability ``cfg.rnr`` (seeded): the
    channel answers an RNR TPNAK and the sender retries after the RNR timer (UB 2.0 §6.2.1)."""
    rng = random.Random(f"{cfg.seed}/rnr")
    for ch in ep.channels.values():
        take = ch.target.on_request

        def on_request(ta, now, _take=take, _ch=ch, **kw):
            if rng.random() < cfg.rnr:
                ledger.record(now, "B", "rnr", summary={"mode": _ch.transport,
                                                        "taopcode": ta[0] if len(ta) else None},
                              detail={"channel": _ch.tpn}, src="A", dst="B")
                return "rnr"
            return _take(ta, now, **kw)
        ch.target.on_request = on_request


def _endpoint_outcomes(ledger: Ledger, faulted: dict, errors: dict, app) -> None:
    """Outcomes of the endpoint faults: an RNR refusal is recovered by the RNR retry when every
    request completed (else the channel's error); a bad token or an out-of-bounds request is
    unrecovered by design, with the status the target answered."""
    failed = {c.status for c in app.completions if c.status != "success"} - {
        "remote_access_error"}
    for f in ledger.faults:
        if f.kind == "rnr":
            if failed:
                f.outcome, f.error = "unrecovered", sorted(failed)[0]
            else:
                f.outcome, f.by = "recovered", "rnr"
    for i, kind in faulted.items():
        f = ledger.record(0, "A", kind, summary={"wr_id": i}, src="A", dst="B")
        f.outcome, f.error = "unrecovered", errors.get(i)
        f.note = "by design: the access check fails and no byte changes"


def _report(cfg, prof, app, a, b, sim, ledger, n, total, delivered, verified, statuses, wall,
            run_s, outcome) -> dict:
    ledger = ledger.report()
    eps = (a, b)
    cfg_d = {k: v for k, v in asdict(cfg).items() if k != "profile"}
    warnings = []
    tr = prof.tuning.transport
    if cfg.rate_bps and tr.rto_mode == "static":
        wire_ns = tr.window * prof.tuning.transaction.mtu * 8 * 10**9 // cfg.rate_bps
        if wire_ns > tr.rto_static_ns:
            warnings.append(f"a full window takes {wire_ns} ns on the wire, more than the "
                            f"static RTO ({tr.rto_static_ns} ns): expect spurious timeouts "
                            "(UB 2.0 §6.4.2.1; lower --window or use a dynamic RTO)")
    return {
        "warnings": warnings,
        "schema": SCHEMA,
        "config": cfg_d,
        "outcome": outcome,
        "requests": n,
        "sent_bytes": total,
        "delivered_bytes": delivered,
        "data_verified": bool(verified),
        "completions": statuses,
        "transport": _transport(eps, sim),
        "faults": ledger,
        "sim_time_ns": sim.now,
        "wall_s": round(wall, 6),
        # the transfer itself (set-up and the final comparison of memories excluded)
        "run_s": round(run_s, 6),
        "payload_mb_per_s": round(delivered / run_s / 1e6, 3) if run_s > 0 else None,
        "sim_payload_gbit_per_s": round(delivered * 8 / sim.now, 3) if sim.now else None,
        "driver": sim.report(),
    }


def _transport(eps, net) -> dict:
    """The transport section, with the frames a real driver dropped for a bad ICRC before any
    engine saw them."""
    tr = transport_counters(eps)
    tr["bad_icrc"] += getattr(net, "driver_bad_icrc", 0)
    return tr
