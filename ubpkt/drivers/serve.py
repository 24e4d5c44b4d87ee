"""``ubpkt serve``: a UBoE target endpoint on a UDP socket that answers requests from its memory
regions (UB 2.0 ch. 5-7 over :mod:`ubpkt.drivers.udp`).

Regions (``NAME:SIZE[:TOKEN]``): region *i* (from 0, in the order given) is a segment of SIZE
zero bytes at base address ``(i + 1) << 32`` with TokenID ``i + 1``, granting read, write and
atomics; with TOKEN, requests must carry that TokenValue (UB 2.0 §7.2.5, §11.4).  Without any
region the server has one, ``mem:16MiB`` without a token.

Sessions: TP channel set-up is left open by the spec (UB 2.0 §6.1); here every source address
(IP and UDP port: an initiator's socket) gets its own endpoint and TP channel (``local_tpn`` to
``peer_tpn``, initial PSNs ``tx_psn``/``rx_psn``), all over the same memory.  A session is made
for the first datagram that is an RTP data packet for ``local_tpn`` with a good ICRC; at most
``max_peers`` sessions live at a time (the least recently active idle one makes way); a
session whose channel died makes way for the next one from its source.  ``rate_limit``:
datagrams per second taken from one source at most.  Each
session keeps ``recv_buffers`` receive buffers of ``recv_size`` bytes posted for Send (§7.4.3).

Memory (``max_memory``, a documented total): the regions, plus per session its receive
buffers (``recv_buffers`` x ``recv_size``) and what its RTP receiver may hold out of order
(:func:`reassembly_bytes`: nothing under the reference profile's Go-Back-N with fast
retransmission, which drops an out-of-order packet, UB 2.0 §6.4.2.2.1; otherwise up to the
out-of-order window of datagrams of at most :data:`MAX_DATAGRAM` bytes).  The sessions that
fit (:attr:`Server.session_cap`, at most ``max_peers``) are all serve keeps; a Send is
reassembled in a posted receive buffer, never in new memory; a Read response is sent from the
region itself (no copy), so nothing grows with the number of sources.
:meth:`Server.allocated` counts what the live sessions hold; its peak is in the report.

Stops on :meth:`Server.stop` (the CLI's Ctrl-C / SIGTERM), after ``count_requests`` request
packets (letting the last answers go out), or after ``duration_s``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..profile import SPEC, Profile
from ..sim.loopback import _App
from ..stack.endpoint import Endpoint
from ..stack.network import RTP_DATA, Framer, Path
from ..stack.transaction.memory import Memory
from ..stack.workload import parse_size
from .udp import ICRC_NOTE, UB_UDP_PORT, UdpDriver, udp_profile, wallclock_profile

__all__ = ["RegionSpec", "ServeConfig", "Server", "parse_region", "SCHEMA"]

SCHEMA = "ubpkt.serve/1"
#: the channel key of a session's TP-bypass channel (outside the 24-bit TPN space)
BYPASS_KEY = 1 << 24
MAX_REGION = 1 << 30
_RECV_BASE = 1_000_000
#: the largest datagram the driver takes in (its receive size)
MAX_DATAGRAM = 65536


def reassembly_bytes(profile: Profile) -> int:
    """What one session's RTP receiver may hold out of order, at most: nothing with Go-Back-N
    and fast retransmission (UB 2.0 §6.4.2.2.1: an out-of-order packet is dropped and NAKed),
    else the packets it keeps (the out-of-order window, and for selective retransmission what
    the TPSACK bitmap shows, §6.4.2.3) of :data:`MAX_DATAGRAM` bytes each."""
    t = profile.tuning.transport
    if t.retransmission == "gbn" and t.fast_retransmit:
        return 0
    held = t.oor_window if t.retransmission != "sr" else min(t.oor_window,
                                                               t.sack_bitmap_bits - 2)
    return held * MAX_DATAGRAM


@dataclass(frozen=True)
class RegionSpec:
    name: str
    size: int
    tokenvalue: int | None
    tokenid: int
    base: int
    perms: str = "rwa"

    def as_dict(self) -> dict:
        return {"name": self.name, "base": f"{self.base:#x}", "size": self.size,
                "tokenid": self.tokenid, "token": self.tokenvalue is not None,
                "perms": self.perms}


def parse_region(text: str, index: int) -> RegionSpec:
    """``NAME:SIZE[:TOKEN][@BASE[/TOKENID]]`` (SIZE with KiB/MiB; TOKEN, BASE, TOKENID
    integers, ``0x`` for hex) as region ``index`` (module doc).  ``@BASE/TOKENID`` places the
    region elsewhere than ``(index+1) << 32`` with TokenID ``index+1`` (ns-3-UB's requests
    carry address 0 and TokenID 0: ``@0/0``)."""
    text, at, place = str(text).partition("@")
    base = tokenid = None
    if at:
        b, slash, t = place.partition("/")
        try:
            base = int(b, 0)
            tokenid = int(t, 0) if slash else None
        except ValueError:
            raise ValueError(f"--region {text}@{place}: BASE[/TOKENID] are integers") from None
        if base < 0 or base >= 1 << 64 or (tokenid is not None and not 0 <= tokenid < 1 << 20):
            raise ValueError(f"--region {text}@{place}: BASE has 64 bits, TOKENID 20")
    parts = [p.strip() for p in text.split(":")]
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError(f"--region {text!r}: NAME:SIZE[:TOKEN]")
    size = parse_size(parts[1])
    if not 1 <= size <= MAX_REGION:
        raise ValueError(f"--region {text!r}: the size must be 1 byte .. 1 GiB")
    token = None
    if len(parts) == 3:
        try:
            token = int(parts[2], 0)
        except ValueError:
            raise ValueError(f"--region {text!r}: TOKEN is an integer") from None
        if not 0 <= token < 1 << 32:
            raise ValueError(f"--region {text!r}: a TokenValue has 32 bits (UB 2.0 §7.2.5)")
    return RegionSpec(parts[0], size, token, index + 1 if tokenid is None else tokenid,
                      (index + 1) << 32 if base is None else base)


@dataclass
class ServeConfig:
    bind: tuple = ("127.0.0.1", UB_UDP_PORT)
    regions: list = field(default_factory=list)     # RegionSpec or NAME:SIZE[:TOKEN] strings
    local_tpn: int = 0x20
    peer_tpn: int = 0x10
    tx_psn: int = 0
    rx_psn: int = 0
    icrc: str = "check"
    count_requests: int | None = None
    duration_s: float | None = None
    max_peers: int = 64
    max_memory: int = 1 << 30
    recv_buffers: int = 16
    recv_size: int = 64 * 1024
    mtu: int | None = None
    pps: float | None = None
    rate_limit: float | None = None     # datagrams per second from one source
    # raw Ethernet instead of UDP (ubpkt.drivers.raw): the interface, an 802.1Q tag
    iface: str | None = None
    vlan: int | None = None
    pcp: int = 0
    profile: Profile = field(default=SPEC, repr=False)
    #: ``spec`` (UBoE datagrams) or ``ns3`` (whole ns-3-UB frames; :mod:`.carriage`)
    dialect: str = "spec"
    #: learn each session's channel from its first data packet (module doc)
    learn: bool = False
    #: the TPMSN of each session's first transaction (its channel's transmit side)
    tx_msn: int = 0


class _Session(_App):
    """One initiator's endpoint on the server: keeps receive buffers posted."""

    def __init__(self, ep: Endpoint, n: int, size: int, counters: dict, learn_cna=None,
                 learn_rtp=None):
        super().__init__(ep)
        #: the whole-frame carriage of a session that has not seen a CNA packet yet: its first
        #: load/store tells the CNAs to answer with (the IP form carries none)
        self.learn_cna = learn_cna
        #: ``learn_rtp(session, frame) -> bool`` for a session made by a load/store under
        #: ``--learn``: its first RTP data packet opens the RTP channel (True once done)
        self.learn_rtp = learn_rtp
        self.free = [(i, bytearray(size)) for i in range(n)]
        self.buffer_bytes = n * size
        self.posted: dict = {}
        self.counters = counters

    def idle(self) -> bool:
        return self.ep.idle()

    def receive(self, data, now: int) -> None:
        if self.learn_cna is not None:
            path = self.learn_cna.cna_path(data, self.ep.path)
            if path is not None:
                self.ep.retarget(path)
                self.learn_cna = None
        if self.learn_rtp is not None and self.learn_rtp(self, data):
            self.learn_rtp = None
        super().receive(data, now)

    @property
    def closed(self) -> bool:
        """The channel died (its retries ran out): the next first packet from this source
        starts a new session."""
        return any(ch.dead for ch in self.ep.channels.values())

    def _before_transmit(self, now: int) -> None:
        while self.free:
            i, buf = self.free.pop()
            self.ep.post_recv(memoryview(buf), _RECV_BASE + i)
            self.posted[_RECV_BASE + i] = buf

    def _on_completion(self, e) -> None:
        if e.wr_id >= _RECV_BASE:
            c = self.counters
            c["messages"] += 1
            c["message_bytes"] += e.nbytes
            if e.status != "success":
                c["message_errors"] += 1
            buf = self.posted.pop(e.wr_id, None)
            if buf is not None:
                self.free.append((e.wr_id - _RECV_BASE, buf))


def open_driver(cfg: ServeConfig, **kw):
    """The driver ``cfg`` asks for: raw Ethernet on ``cfg.iface`` (UDP port: the profile's UB
    port), else UDP bound to ``cfg.bind``.  ``kw``: the WallClockDriver keywords."""
    if cfg.iface:
        if cfg.dialect != "spec":
            raise ValueError("--iface carries UBoE frames (UB 2.0 §5.2.3): --dialect spec only")
        from .raw import RawDriver
        return RawDriver(cfg.iface, vlan=cfg.vlan, pcp=cfg.pcp, **kw)
    return UdpDriver(cfg.bind, dialect=cfg.dialect, **kw)


class Server:
    """See the module doc.  ``driver_factory(**kw)``: makes the driver from the keywords of
    :class:`~ubpkt.drivers.wallclock.WallClockDriver` (default :func:`open_driver`: UDP, or raw
    Ethernet with ``cfg.iface``)."""

    def __init__(self, cfg: ServeConfig, driver_factory=None):
        self.cfg = cfg
        regions = [r if isinstance(r, RegionSpec) else parse_region(r, i)
                   for i, r in enumerate(cfg.regions or ["mem:16MiB"])]
        total = sum(r.size for r in regions)
        if total > cfg.max_memory:
            raise ValueError(f"the regions hold {total} bytes, more than --max-memory "
                             f"({cfg.max_memory})")
        names = [r.name for r in regions]
        if len(set(names)) != len(names):
            raise ValueError("region names must differ")
        self.regions = regions
        self.region_bytes = total
        self.memory = Memory()
        for r in regions:
            self.memory.register(r.base, r.size, tokenid=r.tokenid, tokenvalue=r.tokenvalue,
                                 perms=r.perms)
        kw = dict(icrc=cfg.icrc, profile=cfg.profile, accept=self._accept,
                  max_peers=cfg.max_peers, keep_events=False, pps=cfg.pps,
                  rx_pps=cfg.rate_limit)
        self.driver = (driver_factory or (lambda **k: open_driver(cfg, **k)))(**kw)
        mtu = cfg.mtu
        fit = getattr(self.driver, "payload_mtu", None)
        if mtu is None and fit is not None:     # the interface's MTU bounds a frame
            mtu = fit(cfg.profile.tuning.transaction.mtu)
        stack_profile = wallclock_profile(cfg.profile, mtu=mtu)
        #: the most one session may hold: receive buffers and out-of-order packets
        self.session_bytes = cfg.recv_buffers * cfg.recv_size + reassembly_bytes(stack_profile)
        room = cfg.max_memory - total
        n_fit = room // self.session_bytes if self.session_bytes else cfg.max_peers
        #: sessions kept at a time: max_peers, or fewer when max_memory has no room for more
        self.session_cap = min(cfg.max_peers, n_fit)
        if self.session_cap < 1:
            self.driver.close()
            raise ValueError(f"--max-memory ({cfg.max_memory}) leaves {room} bytes after the "
                             f"regions, less than one session needs ({self.session_bytes})")
        self.driver.max_peers = self.session_cap
        self.profile = udp_profile(stack_profile, self.driver.local_port)
        #: how frames ride in datagrams (UDP: by the dialect; raw Ethernet: whole UBoE frames)
        self.carriage = getattr(self.driver, "carriage", None)
        whole = self.carriage is not None and self.carriage.whole_frames
        # parsing needs the path's kind only
        self._probe = Framer(Path(kind="ipv4") if whole else Path(), self.profile)
        self.counters = {"sessions": 0, "messages": 0, "message_bytes": 0,
                         "message_errors": 0, "refused_first_packets": 0,
                         "peak_allocated": total}
        self.learned: list = []             # the channels --learn took from first packets
        self._targets: list = []            # the stats of every session's target
        self._transports: list = []

    @property
    def local(self) -> tuple:
        return self.driver.local

    @property
    def listen(self) -> str:
        return self.driver.listen

    def _accept(self, driver, addr, local_ip, frame, now):
        """A session for the first acceptable packet from ``addr``: an RTP data packet for the
        local TPN (any TPN with ``learn``), or a TP-bypass request.  With ``learn`` the
        channel is the packet's: its DstTPN is the local TPN, its SrcTPN the peer's, its PSN
        the first expected; the transmit PSN stays ``tx_psn``, as the peer's expectation of
        ours is not in its request.  Every session also answers TP-bypass requests."""
        c = self.cfg
        pkt = self._probe.parse(frame)
        rtp = pkt is not None and pkt.mode == "rtp" and pkt.tpopcode == RTP_DATA and \
            (c.learn or pkt.dsttpn == c.local_tpn)
        if not rtp and (pkt is None or pkt.mode != "bypass"):
            self.counters["refused_first_packets"] += 1
            return None
        path = self.carriage.path_for(driver, addr, local_ip, frame) if self.carriage \
            is not None else driver.path_to(addr, local_ip)
        ep = Endpoint(driver.peer_name(addr), path, self.profile, memory=self.memory, rc_id=2)
        if rtp or not c.learn:
            self._open_rtp(ep, pkt if rtp and c.learn else None, driver.peer_name(addr))
        if path.kind in ("cna16", "ipv4"):
            # TP bypass (CFG 9) needs no TPN: its channel is keyed outside the 24-bit space
            bch = ep.open_channel(BYPASS_KEY, BYPASS_KEY, transport="bypass")
            self._targets.append(bch.target.stats)
        self.counters["sessions"] += 1
        whole = self.carriage is not None and self.carriage.whole_frames
        learn_cna = self.carriage if whole and self.carriage.cna_path(frame, path) is None \
            else None
        learn_rtp = self._late_rtp if c.learn and not rtp else None
        sess = _Session(ep, c.recv_buffers, c.recv_size, self.counters, learn_cna, learn_rtp)
        # the driver has made room (max_peers = session_cap) before asking: the new session
        # and the live ones
        now_held = self.allocated() + sess.buffer_bytes
        self.counters["peak_allocated"] = max(self.counters["peak_allocated"], now_held)
        return sess

    def _open_rtp(self, ep: Endpoint, learned, source: str):
        """The session's RTP channel: the configured one, or with ``learned`` (a first RTP
        data packet under ``--learn``) its DstTPN as ours, its SrcTPN as the peer's, its PSN
        as the first expected."""
        c = self.cfg
        local, peer, rx = c.local_tpn, c.peer_tpn, c.rx_psn
        if learned is not None:
            local, peer, rx = learned.dsttpn, learned.srctpn, learned.psn
            self.learned.append({"source": source, "local_tpn": local, "peer_tpn": peer,
                                 "rx_psn": rx})
        ch = ep.open_channel(local, peer, tx_psn=c.tx_psn, rx_psn=rx, tx_msn=c.tx_msn)
        self._targets.append(ch.target.stats)
        self._transports.append(ch.engine.stats)
        return ch

    def _late_rtp(self, sess: "_Session", frame) -> bool:
        """A session made by a load/store (``--learn``): its first RTP data packet opens the
        RTP channel it describes and, with whole frames, tells where URMA answers go."""
        pkt = self._probe.parse(frame)
        if pkt is None or pkt.mode != "rtp" or pkt.tpopcode != RTP_DATA:
            return False
        if self.carriage is not None and self.carriage.whole_frames:
            path = self.carriage.ip_path(frame, sess.ep.path)
            if path is not None:
                sess.ep.retarget(path)
        self._open_rtp(sess.ep, pkt, sess.ep.name)
        return True

    def allocated(self) -> int:
        """Bytes held now: the regions, the receive buffers of the live sessions and the
        out-of-order packets their receivers keep (counted, not estimated)."""
        n = self.region_bytes
        for p in self.driver.peers.values():
            eng = p.engine
            n += getattr(eng, "buffer_bytes", 0)
            for ch in getattr(getattr(eng, "ep", None), "channels", {}).values():
                held = getattr(ch.engine, "_held", None)
                if held:
                    n += sum(len(pk.ta) for pk in held.values())
        return n

    def requests(self) -> int:
        """Transaction request packets the targets took."""
        return sum(s.get("requests", 0) for s in self._targets)

    def stop(self) -> None:
        self.driver.stop()

    def close(self) -> None:
        self.driver.close()

    def _idle(self) -> bool:
        return all(p.engine.idle() or p.engine.closed for p in self.driver.peers.values())

    def run(self, progress=None, progress_every_s: float = 1.0) -> dict:
        """Serve until stopped; the report (schema ``ubpkt.serve/1``)."""
        c = self.cfg
        t0 = time.monotonic()
        end = None if c.duration_s is None else t0 + c.duration_s
        last = [t0]

        def until() -> bool:
            if progress is not None and time.monotonic() - last[0] >= progress_every_s:
                last[0] = time.monotonic()
                progress(self.summary())
            if c.count_requests is not None and self.requests() >= c.count_requests:
                return True
            return end is not None and time.monotonic() >= end

        out = self.driver.run(until=until)
        stopped_by = "signal" if out == "stopped" else (
            "count" if c.count_requests is not None and self.requests() >= c.count_requests
            else "duration")
        if stopped_by == "count":
            # the last answers (TAACKs, read responses, TPACKs) and their retransmissions
            self.driver.run(until=lambda: self._idle() and not self.driver.pending(),
                            timeout_s=0.5)
        return self.report(stopped_by, time.monotonic() - t0)

    def summary(self) -> dict:
        d = self.driver.stats
        return {"requests": self.requests(), "sessions": len(self.driver.peers),
                "rx_datagrams": d["rx_datagrams"], "tx_datagrams": d["tx_datagrams"],
                "bad_icrc": d["bad_icrc"], "access_errors": self._sum("errors")}

    def _sum(self, key: str) -> int:
        return sum(s.get(key, 0) for s in self._targets)

    def report(self, stopped_by: str, wall_s: float) -> dict:
        c = self.cfg
        tr: dict = {}
        for s in self._transports:
            for k, v in s.items():
                if isinstance(v, int):
                    tr[k] = tr.get(k, 0) + v
        return {
            "schema": SCHEMA,
            "listen": self.driver.listen,
            "regions": [r.as_dict() for r in self.regions],
            "tpn": {"local": c.local_tpn, "peer": c.peer_tpn},
            "psn": {"tx": c.tx_psn, "rx": c.rx_psn},
            "dialect": c.dialect,
            "learn": c.learn,
            "learned": self.learned[:64],
            "stopped_by": stopped_by,
            "wall_s": round(wall_s, 6),
            "requests": self.requests(),
            "responses": self._sum("responses"),
            "errors": self._sum("errors"),
            "malformed": self._sum("malformed"),
            "sessions": {"total": self.counters["sessions"], "active": len(self.driver.peers),
                         "cap": self.session_cap,
                         "refused_first_packets": self.counters["refused_first_packets"]},
            "memory": {"limit": c.max_memory, "regions": self.region_bytes,
                       "per_session": self.session_bytes, "allocated": self.allocated(),
                       "peak_allocated": max(self.counters["peak_allocated"],
                                             self.allocated())},
            "messages": {"received": self.counters["messages"],
                         "bytes": self.counters["message_bytes"],
                         "errors": self.counters["message_errors"]},
            "transport": tr,
            "icrc": c.icrc,
            "icrc_note": getattr(self.driver, "icrc_note", ICRC_NOTE),
            "driver": self.driver.report(),
        }
