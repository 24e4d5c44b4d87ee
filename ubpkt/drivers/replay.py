"""``ubpkt replay``: send a capture's frames again, timed like the capture or at a requested rate,
rewritten on the way (tcpreplay + tcprewrite for UB).

Steps (:func:`run_replay`):

1. **Load** (:func:`load`): the capture is read once into memory (tcpreplay's
   ``--preload-pcap``: the pacing loop then does nothing but send).  Each frame is rewritten
   (:mod:`ubpkt.drivers.rewrite`) and turned into what the sender carries (:class:`Dialect`):
   under ``spec`` a UBoE frame's UDP payload (RTPH onward, padding, ICRC; UB 2.0 §5.2.3), under
   ``ns3`` the whole native frame of pcap link type 147 (from the LPH) as the UDP payload, a
   reference-profile choice for carrying ns-3-UB frames over a socket.  A frame the dialect does
   not carry (another link type, not UDP) is skipped and counted by reason.
2. **Schedule** (:func:`schedule`): the send time of every frame from the start, on an absolute
   timeline (no drift accumulates): the capture's own gaps divided by ``multiplier``; or ``pps``
   frames per second; or ``mbps`` megabits per second of the bytes that travel (a frame leaves
   when the bits before it have); or ``topspeed`` (no waiting).  ``loop`` passes over the
   capture (with the capture's gaps a pass follows the previous one by the capture's mean gap);
   ``limit`` frames sent at most.
3. **Pace and send** (:class:`Pacer`, a :class:`Sender`): sleep until shortly before each send
   time (``spin_ns``), busy-wait the rest, send; the largest lateness is reported.

Senders: :class:`UdpSender` (``--to``: one unconnected UDP socket bound to 127.0.0.1 or
``--bind``, DF set, :func:`~ubpkt.drivers.udp.open_udp_socket`), and a raw Ethernet sender from
``ubpkt.drivers.raw.open_raw_sender(iface)`` when that module exists (:func:`open_sender`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Protocol

from ..capture.pcap import open_capture
from ..dissect import decode
from ..encode import record_layers
from ..formats.grammar import TRANSPORT_OVER_UDP
from ..profile import NS3, SPEC, Profile
from ..record import LINKTYPE_ETHERNET, LINKTYPE_NS3
from .rewrite import Rewriter, RewriteSpec, layer_offsets
from .udp import open_udp_socket

__all__ = ["Dialect", "DIALECTS", "Sender", "UdpSender", "open_sender", "RAW_UNAVAILABLE",
           "Loaded", "load", "schedule", "Pacer", "ReplayConfig", "run_replay", "SCHEMA",
           "udp_payload"]

SCHEMA = "ubpkt.replay/1"
RAW_UNAVAILABLE = "raw Ethernet driver not available"


def udp_payload(frame: bytes, record: dict) -> bytes | None:
    """The UDP payload of a UB-over-UDP frame (None if the frame is not one), located through
    the dissected layers and UDP.Length (an Ethernet trailer is not part of it)."""
    names = record["layers"]
    if "udp" not in names:
        return None
    u = names.index("udp")
    if u + 1 >= len(names) or names[u + 1] not in TRANSPORT_OVER_UDP:
        return None
    layers = record_layers(record)
    off = layer_offsets(layers)[u]
    length = layers[u][1]["length"]
    if not 8 <= length <= len(frame) - off:
        return None
    return frame[off + 8:off + length]


def _whole(frame: bytes, record: dict) -> bytes | None:
    return frame


#: how a frame becomes a datagram, by name
CARRIAGES = {"udp_payload": udp_payload, "whole_frame": _whole}


@dataclass(frozen=True)
class Dialect:
    """How frames of a dialect travel over a UDP socket: the profile they are dissected with,
    the pcap link types carried, and the carriage (:data:`CARRIAGES`)."""
    name: str
    profile: Profile
    linktypes: tuple
    carriage: str


DIALECTS = {
    "spec": Dialect("spec", SPEC, (LINKTYPE_ETHERNET,), "udp_payload"),
    "ns3": Dialect("ns3", NS3, (LINKTYPE_NS3,), "whole_frame"),
}


class Sender(Protocol):
    """Where replayed frames go.  ``kind``: ``udp`` (datagrams: the dialect's carriage) or
    ``ethernet`` (whole Ethernet frames)."""
    kind: str

    def send(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class UdpSender:
    """Datagrams to one peer from an unconnected UDP socket bound to ``bind`` (DF set)."""
    kind = "udp"

    def __init__(self, peer: tuple, bind: tuple = ("127.0.0.1", 0)):
        self.peer = tuple(peer)
        self.sock = open_udp_socket(bind)
        self.local = self.sock.getsockname()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, self.peer)

    def close(self) -> None:
        self.sock.close()


class _RawSender:
    """Adapts ``ubpkt.drivers.raw``'s sender to :class:`Sender` (whole Ethernet frames)."""
    kind = "ethernet"

    def __init__(self, raw):
        self.raw = raw

    def send(self, data: bytes) -> None:
        self.raw.send(data)

    def close(self) -> None:
        close = getattr(self.raw, "close", None)
        if close is not None:
            close()


def open_sender(to: tuple | None = None, iface: str | None = None,
                bind: tuple | None = None) -> Sender:
    """A :class:`UdpSender` to ``to``, or the raw Ethernet sender of ``iface``.  RuntimeError
    (:data:`RAW_UNAVAILABLE`) when ``ubpkt.drivers.raw`` has no ``open_raw_sender``."""
    if (to is None) == (iface is None):
        raise ValueError("one destination: to or iface")
    if to is not None:
        return UdpSender(to, bind or ("127.0.0.1", 0))
    try:
        from . import raw
    except ImportError:
        raise RuntimeError(RAW_UNAVAILABLE) from None
    opener = getattr(raw, "open_raw_sender", None)
    if opener is None:
        raise RuntimeError(RAW_UNAVAILABLE)
    return _RawSender(opener(iface))


@dataclass
class Loaded:
    """A loaded capture: ``times`` (ns) and ``data`` (what the sender carries) of the frames
    kept, ``skipped`` counts by reason, ``frames_read``, ``rewrite`` (the rewriter's stats),
    ``load_s``."""
    times: list = field(default_factory=list)
    data: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)
    frames_read: int = 0
    rewrite: dict = field(default_factory=dict)
    load_s: float = 0.0
    linktype: int | None = None


def load(path, *, kind: str = "udp", dialect: str = "spec",
         rewrite: RewriteSpec | None = None) -> Loaded:
    """Read, rewrite and carry every frame of the capture at ``path`` (module doc)."""
    t0 = time.perf_counter()
    d = DIALECTS[dialect]
    carry = CARRIAGES[d.carriage]
    rw = Rewriter(rewrite or RewriteSpec(), d.profile)
    out = Loaded()
    with open_capture(path) as cap:
        out.linktype = cap.linktype
        for pkt in cap:
            out.frames_read += 1
            lt = pkt.linktype
            if kind == "ethernet":
                ok = lt == LINKTYPE_ETHERNET
            else:
                ok = lt in d.linktypes
            if not ok:
                reason = f"linktype_{lt}"
                out.skipped[reason] = out.skipped.get(reason, 0) + 1
                continue
            frame = rw.rewrite(bytes(pkt.data), lt)
            if kind == "ethernet":
                data = frame
            else:
                data = carry(frame, decode(frame, lt, d.profile)) \
                    if d.carriage != "whole_frame" else frame
            if data is None:
                out.skipped["not_ub_over_udp"] = out.skipped.get("not_ub_over_udp", 0) + 1
                continue
            out.times.append(pkt.time_ns)
            out.data.append(bytes(data))
    out.rewrite = dict(rw.stats)
    out.load_s = time.perf_counter() - t0
    return out


def schedule(times: list, sizes: list, *, multiplier: float = 1.0, pps: float | None = None,
             mbps: float | None = None, topspeed: bool = False, loop: int = 1,
             limit: int | None = None) -> Iterator[tuple[int, int]]:
    """``(frame index, send offset ns from the start)`` for every frame sent (module doc)."""
    if sum(x is not None and x is not False for x in (pps, mbps, topspeed or None)) > 1:
        raise ValueError("one rate: pps, mbps or topspeed")
    if multiplier <= 0 or (pps is not None and pps <= 0) or (mbps is not None and mbps <= 0):
        raise ValueError("rates and the multiplier must be positive")
    if loop < 1:
        raise ValueError("loop must be at least 1")
    n = len(times)
    if n == 0 or limit == 0:
        return
    t_first = times[0]
    span = max(times[-1] - t_first, 0)
    pass_len = span + (span / (n - 1) if n > 1 else 0)
    sent = 0
    bits = 0
    for k in range(loop):
        for i in range(n):
            if limit is not None and sent >= limit:
                return
            if topspeed:
                off = 0
            elif pps is not None:
                off = round(sent * 1e9 / pps)
            elif mbps is not None:
                off = round(bits * 1e3 / mbps)
                bits += sizes[i] * 8
            else:
                # capture gaps; a timestamp going backwards sends at once (no negative gap)
                off = round((k * pass_len + max(times[i] - t_first, 0)) / multiplier)
            yield i, off
            sent += 1


class Pacer:
    """An absolute schedule on the wall clock: :meth:`wait` returns at ``start + offset``
    (sleeping until ``spin_ns`` before it, then busy-waiting), and how late it is (ns)."""

    def __init__(self, spin_ns: int = 300_000):
        self.spin_ns = spin_ns
        self.t0 = time.monotonic_ns()

    def start(self) -> int:
        self.t0 = time.monotonic_ns()
        return self.t0

    def wait(self, offset_ns: int) -> int:
        due = self.t0 + offset_ns
        now = time.monotonic_ns()
        left = due - now
        if left > self.spin_ns:
            time.sleep((left - self.spin_ns) / 1e9)
        while now < due:
            now = time.monotonic_ns()
        return now - due


@dataclass
class ReplayConfig:
    pcap: str
    to: tuple | None = None
    iface: str | None = None
    bind: tuple | None = None
    multiplier: float = 1.0
    pps: float | None = None
    mbps: float | None = None
    topspeed: bool = False
    loop: int = 1
    limit: int | None = None
    dialect: str = "spec"
    rewrite: RewriteSpec = field(default_factory=RewriteSpec)


def _requested(cfg: ReplayConfig) -> dict:
    if cfg.topspeed:
        return {"mode": "topspeed"}
    if cfg.pps is not None:
        return {"mode": "pps", "pps": cfg.pps}
    if cfg.mbps is not None:
        return {"mode": "mbps", "mbps": cfg.mbps}
    return {"mode": "capture", "multiplier": cfg.multiplier}


def run_replay(cfg: ReplayConfig, sender: Sender | None = None) -> dict:
    """Replay ``cfg.pcap`` (module doc) and return the report (schema ``ubpkt.replay/1``).
    ``sender``: given, or opened from ``cfg.to``/``cfg.iface`` (and closed at the end)."""
    own = sender is None
    if own:
        sender = open_sender(cfg.to, cfg.iface, cfg.bind)
    try:
        loaded = load(cfg.pcap, kind=sender.kind, dialect=cfg.dialect, rewrite=cfg.rewrite)
        return _send(cfg, sender, loaded)
    finally:
        if own:
            sender.close()


def _send(cfg: ReplayConfig, sender: Sender, loaded: Loaded) -> dict:
    data = loaded.data
    sizes = [len(x) for x in data]
    plan = list(schedule(loaded.times, sizes, multiplier=cfg.multiplier, pps=cfg.pps,
                         mbps=cfg.mbps, topspeed=cfg.topspeed, loop=cfg.loop,
                         limit=cfg.limit))
    pacer = Pacer()
    send = sender.send
    n = nbytes = errors = 0
    late_max = late_sum = 0
    last_bytes = 0
    first_t = last_t = None
    wait = pacer.wait
    timed = not cfg.topspeed
    pacer.start()
    for i, off in plan:
        if timed:
            late = wait(off)
            late_sum += late
            if late > late_max:
                late_max = late
        t = time.monotonic_ns()
        try:
            send(data[i])
        except OSError:
            errors += 1
            continue
        if first_t is None:
            first_t = t
        last_t = t
        n += 1
        last_bytes = sizes[i]
        nbytes += sizes[i]
    span = (last_t - first_t) / 1e9 if n > 1 else 0.0
    wall = (time.monotonic_ns() - pacer.t0) / 1e9
    # the rate between the first and the last send: n - 1 gaps carry all bytes but the last
    pps = (n - 1) / span if span > 0 else None
    mbps = (nbytes - last_bytes) * 8 / span / 1e6 if span > 0 else None
    return {
        "schema": SCHEMA,
        "pcap": str(cfg.pcap),
        "destination": (f"{cfg.to[0]}:{cfg.to[1]}" if cfg.to else
                        f"iface {cfg.iface}" if cfg.iface else sender.kind),
        "dialect": cfg.dialect,
        "frames_read": loaded.frames_read,
        "frames_loaded": len(data),
        "skipped": loaded.skipped,
        "loop": cfg.loop,
        "limit": cfg.limit,
        "frames": n,
        "bytes": nbytes,
        "bytes_note": "datagram bytes (UDP payloads)" if sender.kind == "udp" else
                      "Ethernet frame bytes",
        "send_errors": errors,
        "requested": _requested(cfg),
        "wall_s": round(wall, 6),
        "send_span_s": round(span, 6),
        "pps": round(pps, 1) if pps else None,
        "mbps": round(mbps, 3) if mbps else None,
        "max_lateness_us": round(late_max / 1e3, 1),
        "mean_lateness_us": round(late_sum / len(plan) / 1e3, 2) if plan and timed else 0.0,
        "load_s": round(loaded.load_s, 6),
        "rewrite": {**cfg.rewrite.as_dict(), **loaded.rewrite},
    }
