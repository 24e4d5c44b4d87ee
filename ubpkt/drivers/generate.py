"""Stateless UBoE traffic from templates and a field engine (``ubpkt generate``; TRex/trafgen
style).

:func:`generate` turns a workload spec (:mod:`ubpkt.stack.workload`) into RTP data request
frames, one per MTU segment as the initiator segments them (UB 2.0 §7.3.1.1: a Write gets a
TASSN per segment and MAETAH.Address advances with it, §7.4.2.1.1; a Send keeps one TASSN for
all its packets with OFSTETAH.Offset in 1 KiB units, §7.4.3.1; the *_with_immediate forms carry
the IMMETAH on their last packet, §7.4.2.1.2/§7.4.3.2; a Read and an atomic are one request
packet, §7.4.2.2-3).  Nothing is expected back: no TPACK, no TAACK, no retransmission.

Every frame comes from a :class:`~ubpkt.stack.templates.PacketTemplate` compiled once per packet
kind (Ethernet, IPv4, UDP, RTPH, BTAH and the extension headers ``grammar.ta_sequence`` names
for the TAOpcode, UB 2.0 §6.2.1, §7.2): lengths, padding, the IPv4 checksum and the ICRC
(§5.3.7) are filled per frame.  The field engine sets, per frame:

* ``psn``: RTPH.PSN (24 bits, §6.2.1), one per frame;
* ``tassn``: BTAH.INI_TASSN (16 bits, §7.2.1), one per transaction (a Write segment, a Send
  message, a Read, an atomic);
* ``address``: MAETAH.Address of each work request (its segments follow contiguously);
* ``sport``: the UDP source port (the flow label of UBoE, §5.2.3), one per frame;

each ``inc`` (from a start value, wrapping at the field's width; the UDP source port wraps
inside 49152..65535 when it starts there), ``random`` (``random.Random(seed)``: the same seed
gives the same stream) or ``fixed`` (the start value on every frame).  Addresses under ``inc``
follow the workload plan (``base`` onward, slots in spec order), the same on every pass when
``count`` cycles the workload; under ``random`` each work request starts at a random address
inside ``span`` bytes from ``base`` (64-byte aligned; atomics naturally aligned, §7.2.3).
RTPH.TPMSN counts the requests (incremented after each request's last packet, which has the
``last`` flag and the A bit set).

Outputs: :func:`write_pcap` (linktype 1, timestamps from the pacing), :func:`send_udp` (the UDP
payload only, to one peer, as :mod:`ubpkt.drivers.udp` sends it: an unconnected socket with DF
set, so the kernel's IPv4 header is the one the ICRC was computed over; the source port is the
socket's own, so the ``sport`` engine is ``fixed`` there), :func:`send_raw` (the whole frames as
they are, on an interface: :mod:`ubpkt.drivers.raw`, built for a :func:`raw_path`).
"""
from __future__ import annotations

import random
import socket
import time
from dataclasses import dataclass
from typing import Iterator

from ..capture.pcap import PcapWriter
from ..formats.grammar import resolve, ta_sequence
from ..profile import SPEC, Profile
from ..record import LINKTYPE_ETHERNET
from ..stack.network import RTP_DATA, Path
from ..stack.templates import PacketTemplate
from ..stack.transaction.ops import OP_OPCODE, OPCODE_OP, OPERAND_ORDER
from ..stack.workload import parse_workload, plan
from .udp import HEADER_LEN, UdpPath, open_udp_socket

__all__ = ["generate", "Stream", "write_pcap", "send_udp", "send_raw", "send_paced", "raw_path",
           "schedule", "FIELD_MODES",
           "ENGINE_FIELDS", "parse_field_engine"]

FIELD_MODES = ("inc", "random", "fixed")
ENGINE_FIELDS = ("psn", "tassn", "address", "sport")
_PSN_MASK = (1 << 24) - 1
_TASSN_MASK = 0xFFFF
_EPHEMERAL = 49152
_SLOT_ALIGN = 64
#: the per-frame fields every template takes, in the compiled builder's argument order
_COMMON = ("udp.srcport", "ub.rtph.psn", "ub.rtph.last", "ub.rtph.a", "ub.rtph.tpmsn",
           "ub.btah.ini_tassn")


def parse_field_engine(engine) -> dict:
    """``{"psn": "inc", ...}`` completed with ``inc`` for the fields not named; ValueError on an
    unknown field or mode."""
    out = {k: "inc" for k in ENGINE_FIELDS}
    for k, v in (engine or {}).items():
        if k not in ENGINE_FIELDS:
            raise ValueError(f"field engine: unknown field {k!r} ({', '.join(ENGINE_FIELDS)})")
        if v is None:
            continue
        if v not in FIELD_MODES:
            raise ValueError(f"field engine: {k}={v!r}: one of {', '.join(FIELD_MODES)}")
        out[k] = v
    return out


@dataclass
class _Seg:
    """One frame of a workload pass: its builder, whether it opens a work request or a
    transaction, its offset from the work request's address, the builder's extra arguments,
    the payload parts, the last flag."""
    fn: object
    has_addr: bool
    new_wr: bool
    new_tassn: bool
    off: int
    extras: tuple
    parts: tuple
    last: int
    op: str
    wr: int


class Stream:
    """An iterator of frames (bytes); see :func:`generate`.  ``stats``: frames and bytes so
    far, frames per TAOpcode name (``ops``), ``frames_per_pass``."""

    def __init__(self, workload, *, path: Path = Path(), count: int | None = None,
                 field_engine=None, seed: int = 0, profile: Profile = SPEC,
                 mtu: int | None = None, srctpn: int = 0x10, dsttpn: int = 0x20,
                 psn: int = 0, tassn: int = 0, base: int = 0x100000000, tokenid: int = 1,
                 tokenvalue: int | None = None, rc_id: int = 0, span: int | None = None):
        if path.kind != "uboe":
            raise ValueError("generate: UBoE paths only (Ethernet/IPv4/UDP, UB 2.0 §5.2.3)")
        if count is not None and count < 0:
            raise ValueError("count must be at least 0")
        self.engine = parse_field_engine(field_engine)
        self.path = path
        self.profile = profile
        self.count = count
        self.seed = seed
        self.mtu = mtu or profile.tuning.transaction.mtu
        if self.mtu < 1:
            raise ValueError("the MTU must be positive")
        for name, v, bits in (("srctpn", srctpn, 24), ("dsttpn", dsttpn, 24), ("psn", psn, 24),
                              ("tassn", tassn, 16), ("tokenid", tokenid, 20),
                              ("rc_id", rc_id, 20), ("base", base, 64)):
            if not 0 <= v < 1 << bits:
                raise ValueError(f"{name} {v}: outside 0..2^{bits}-1")
        if tokenvalue is not None and not 0 <= tokenvalue < 1 << 32:
            raise ValueError("tokenvalue has 32 bits")
        self.items = parse_workload(workload) if isinstance(workload, str) else list(workload)
        self.plan = plan(self.items, base=base, tokenid=tokenid, tokenvalue=tokenvalue,
                         seed=seed + 1)
        self.base = base
        longest = max((s.length for s in self.plan.slots if s.offset is not None), default=0)
        self.span = span if span is not None else max(self.plan.extent, longest, _SLOT_ALIGN)
        if self.span < longest:
            raise ValueError(f"span {self.span}: shorter than the longest request ({longest})")
        if base + self.span > 1 << 64:
            raise ValueError("base + span must fit in 64-bit addresses")
        self.start = {"psn": psn, "tassn": tassn, "sport": path.udp_sport}
        self._static = {"srctpn": srctpn, "dsttpn": dsttpn, "tokenid": tokenid,
                        "tokenvalue": tokenvalue, "rc_id": rc_id}
        self._tpl: dict = {}
        self.templates: dict = {}
        self.segs = self._segments()
        self.stats = {"frames": 0, "bytes": 0, "ops": {}, "frames_per_pass": len(self.segs)}
        self._it = self._run()

    # -- templates ------------------------------------------------------------------------------
    def _builder(self, opcode: int, extra: tuple):
        """The compiled builder of TAOpcode ``opcode`` packets: ``fn(*_COMMON, [address],
        *extra, parts)``; (fn, has an address)."""
        st = self._static
        tv = 0 if st["tokenvalue"] is None else 1
        ud = 1 if opcode in (0x09, 0x0A) else 0
        key = (opcode, extra)
        hit = self._tpl.get(key)
        if hit is not None:
            return hit
        seq = [s for s in ta_sequence(opcode, False, {"tv_en": tv, "ud_flag": ud}, self.profile)
               if not s.startswith("@")]
        names = {resolve(s, self.profile) for s in seq}
        has = lambda n: resolve(n, self.profile) in names  # noqa: E731
        layers = self.path.carrier("rtp") + [
            ("ub.rtph", {"tpopcode": RTP_DATA, "nlp": 0, "srctpn": st["srctpn"],
                         "dsttpn": st["dsttpn"]}),
            (resolve("ub.btah", self.profile),
             {"taopcode": opcode, "ee_bits": 1, "tv_en": tv, "ud_flag": ud, "odr": 0,
              "ini_rc_type": 0, "ini_rc_id": st["rc_id"], "no_taack": 0,
              "mt_en": 1 if has("ub.mtetah") else 0})]
        for s in seq:
            vals = {}
            if s == resolve("ub.maetah", self.profile):
                vals = {"tokenid": st["tokenid"]}
            elif s == resolve("ub.tvetah", self.profile):
                vals = {"tokenvalue": st["tokenvalue"]}
            elif s == resolve("ub.udetah", self.profile):
                vals = {"ud": 0}       # Atomic_store/load: sub-operation ADD (UDETAH[23:20])
            layers.append((s, vals))
        t = PacketTemplate(layers, self.profile)
        has_addr = "ub.maetah.address" in t.refs
        keys = _COMMON + (("ub.maetah.address",) if has_addr else ()) + extra
        for k in keys:
            t.field(k)
        hit = self._tpl[key] = (t.compile(keys), has_addr)
        self.templates[key] = t
        return hit

    # -- one pass of the workload ---------------------------------------------------------------
    def _segments(self) -> list:
        out = []
        mtu = self.mtu
        p = self.plan
        for s in p.slots:
            wr = s.wr
            op = wr.op
            opc = OP_OPCODE[op]
            i = s.index
            if op in ("write", "write_with_immediate", "send", "send_with_immediate"):
                out += self._mtu_segments(s, wr, op, opc, mtu, memoryview(p.data[i]))
            elif op == "read":
                fn, ha = self._builder(opc, ("ub.maetah.length",))
                out.append(_Seg(fn, ha, True, True, 0, (s.length,), (), 1, op, i))
            else:       # atomics: operand1, operand2 (UB 2.0 §7.4.2.3.2), as the initiator
                size = wr.size
                fn, ha = self._builder(opc, ("ub.maetah.length",))
                payload = wr.operand1.to_bytes(size, OPERAND_ORDER) + \
                    wr.operand2.to_bytes(size, OPERAND_ORDER)
                out.append(_Seg(fn, ha, True, True, 0, (size,), (payload,), 1, op, i))
        return out

    def _mtu_segments(self, slot, wr, op: str, opc: int, mtu: int, src) -> list:
        """The MTU segments of a Write or a Send (UB 2.0 §7.3.1.1, §7.4): a Write's segments are
        Writes with their own offset in the address, the last one the opcode's own form (its
        IMMETAH); a Send's share one TASSN and carry their offset in OFSTETAH (1 KiB units)."""
        write = op.startswith("write")
        plain = OP_OPCODE["write" if write else "send"]
        imm = op.endswith("_with_immediate")
        total = len(src)
        out = []
        off = 0
        while True:
            n = min(mtu, total - off)
            final = off + n >= total
            if write:
                if final and imm:
                    fn, ha = self._builder(opc, ("ub.maetah.length",
                                                 "ub.immetah.immediate_data",
                                                 "ub.immetah.msg_length"))
                    extras = (n, wr.imm, total)
                else:
                    fn, ha = self._builder(plain, ("ub.maetah.length",))
                    extras = (n,)
            elif final and imm:
                fn, ha = self._builder(opc, ("ub.ofstetah.offset", "ub.immetah.immediate_data"))
                extras = (off // 1024, wr.imm)
            else:
                fn, ha = self._builder(plain, ("ub.ofstetah.offset",))
                extras = (off // 1024,)
            out.append(_Seg(fn, ha, off == 0, True if write else off == 0, off, extras,
                            (src[off:off + n],), int(final),
                            OPCODE_OP[opc if final else plain], slot.index))
            off += n
            if final:
                return out

    def _address(self, rng, wr_index: int) -> int:
        slot = self.plan.slots[wr_index]
        if slot.offset is None:
            return 0
        mode = self.engine["address"]
        if mode == "inc":
            return slot.wr.remote_addr
        if mode == "fixed":
            return self.base
        align = slot.length if slot.op == "atomic" else _SLOT_ALIGN
        room = (self.span - slot.length) // align
        return self.base + rng.randint(0, max(room, 0)) * align

    # -- the stream -----------------------------------------------------------------------------
    def _run(self) -> Iterator[bytes]:
        segs = self.segs
        if not segs or self.count == 0:
            return
        eng = self.engine
        rng = random.Random(self.seed)
        psn_mode, tassn_mode, sport_mode = eng["psn"], eng["tassn"], eng["sport"]
        psn = self.start["psn"]
        tassn = self.start["tassn"]
        sport = self.start["sport"]
        first = True
        ephemeral = sport >= _EPHEMERAL
        tpmsn = 0
        addr = 0
        limit = self.count
        n = 0
        st = self.stats
        ops = st["ops"]
        while True:
            for d in segs:
                if limit is not None and n >= limit:
                    return
                if d.new_wr and d.has_addr:
                    addr = self._address(rng, d.wr)
                if d.new_tassn and not first:
                    if tassn_mode == "inc":
                        tassn = (tassn + 1) & _TASSN_MASK
                    elif tassn_mode == "random":
                        tassn = rng.getrandbits(16)
                elif first and tassn_mode == "random":
                    tassn = rng.getrandbits(16)
                if not first:
                    if psn_mode == "inc":
                        psn = (psn + 1) & _PSN_MASK
                    if sport_mode == "inc":
                        sport = (_EPHEMERAL + (sport - _EPHEMERAL + 1) % 16384) if ephemeral \
                            else (sport + 1) & 0xFFFF
                if psn_mode == "random":
                    psn = rng.getrandbits(24)
                if sport_mode == "random":
                    sport = rng.randint(_EPHEMERAL, 0xFFFF)
                first = False
                last = d.last
                if d.has_addr:
                    frame = d.fn(sport, psn, last, last, tpmsn, tassn, addr + d.off, *d.extras,
                                 d.parts)
                else:
                    frame = d.fn(sport, psn, last, last, tpmsn, tassn, *d.extras, d.parts)
                if last:
                    tpmsn = (tpmsn + 1) & _PSN_MASK
                n += 1
                st["frames"] = n
                st["bytes"] += len(frame)
                ops[d.op] = ops.get(d.op, 0) + 1
                yield frame
            if limit is None:
                return

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        return next(self._it)


def generate(workload, *, path: Path = Path(), count: int | None = None, field_engine=None,
             seed: int = 0, profile: Profile = SPEC, **kw) -> Stream:
    """The frames of ``workload`` (a spec string or parsed items), see the module doc.
    ``count``: frames in all (the workload is repeated as often as needed; None: one pass).
    ``field_engine``: ``{"psn"|"tassn"|"address"|"sport": "inc"|"random"|"fixed"}`` (default
    ``inc``).  Other keywords: ``mtu`` (payload bytes per packet, default the profile's),
    ``srctpn``/``dsttpn``, the start ``psn``/``tassn``, ``base``, ``tokenid``, ``tokenvalue``
    (None: no TVETAH), ``rc_id`` (BTAH.INI_RC_ID), ``span`` (random addresses: bytes from
    ``base``).  Raises ValueError on a bad spec or value."""
    return Stream(workload, path=path, count=count, field_engine=field_engine, seed=seed,
                  profile=profile, **kw)


def schedule(frames, *, pps: float | None = None, mbps: float | None = None,
             gap_ns: int = 1000, start_ns: int = 0) -> Iterator[tuple[int, bytes]]:
    """``(time_ns, frame)`` for each frame: ``pps`` frames per second, or ``mbps`` megabits per
    second of frame bytes (a frame goes out when the bits before it have), or ``gap_ns``
    apart."""
    if pps is not None and mbps is not None:
        raise ValueError("pps or mbps, not both")
    if pps is not None and pps <= 0 or mbps is not None and mbps <= 0:
        raise ValueError("the rate must be positive")
    bits = 0
    for i, f in enumerate(frames):
        if pps is not None:
            t = start_ns + round(i * 1e9 / pps)
        elif mbps is not None:
            t = start_ns + round(bits * 1e3 / mbps)
            bits += len(f) * 8
        else:
            t = start_ns + i * gap_ns
        yield t, f


def write_pcap(frames, out, *, pps: float | None = None, mbps: float | None = None,
               start_ns: int = 0) -> dict:
    """Write ``frames`` (UBoE frames) to the pcap ``out`` (path or binary file), linktype 1,
    nanosecond timestamps from :func:`schedule`.  Returns frames, bytes, duration_s (the
    stream's length at its rate: n frames at ``pps`` last n / pps), first_ns, last_ns."""
    n = nbytes = 0
    t0 = t1 = start_ns
    with PcapWriter(out, LINKTYPE_ETHERNET) as w:
        for t, f in schedule(frames, pps=pps, mbps=mbps, start_ns=start_ns):
            w.write(f, t)
            if n == 0:
                t0 = t
            t1 = t
            n += 1
            nbytes += len(f)
    # the stream lasts until the slot after its last frame: n frames at pps take n / pps
    if pps is not None:
        dur = n / pps
    elif mbps is not None:
        dur = nbytes * 8 / (mbps * 1e6)
    else:
        dur = n * 1000 / 1e9
    return {"frames": n, "bytes": nbytes, "duration_s": dur, "first_ns": t0, "last_ns": t1}


def udp_path(peer: tuple, bind: tuple | None = None) -> tuple[socket.socket, UdpPath]:
    """An unconnected UDP socket for ``peer`` (DF set, bound to the local address the route to
    ``peer`` uses, or ``bind``) and the :class:`UdpPath` its datagrams' headers match."""
    if bind is None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect(peer)         # no datagram: the route's source address only
            bind = (probe.getsockname()[0], 0)
        finally:
            probe.close()
    sock = open_udp_socket(bind)
    lip, lport = sock.getsockname()
    return sock, UdpPath(src_ip=lip, dst_ip=peer[0], udp_sport=lport, udp_dport=peer[1])


def send_udp(frames, sock: socket.socket, peer: tuple, *, pps: float | None = None,
             mbps: float | None = None) -> dict:
    """Send the UDP payload of each frame (bytes 42 onward) to ``peer`` only, paced by ``pps``
    or ``mbps`` (of datagram bytes) on the wall clock; unpaced: as fast as the socket takes
    them.  Returns frames, bytes (datagram bytes), duration_s, errors."""
    return send_paced((memoryview(f)[HEADER_LEN:] for f in frames),
                      lambda dg: sock.sendto(dg, peer), pps=pps, mbps=mbps)


def send_raw(frames, send, *, pps: float | None = None, mbps: float | None = None) -> dict:
    """Put each frame on the wire as it is with ``send`` (a
    :class:`~ubpkt.drivers.raw.RawSender`), paced like :func:`send_udp` (``mbps`` of frame
    bytes).  Returns frames, bytes, duration_s, errors."""
    return send_paced(frames, send, pps=pps, mbps=mbps)


def raw_path(sender, peer: tuple, dmac: str | None = None, *, vlan: int | None = None,
             pcp: int = 0, sport: int = _EPHEMERAL):
    """The :class:`~ubpkt.drivers.raw.RawPath` from ``sender``'s interface (its MAC and IPv4
    address) to ``peer`` = (IP, UDP port) at ``dmac`` (default: resolved from the kernel's ARP
    table, :func:`~ubpkt.drivers.raw.resolve_mac`)."""
    from .raw import RawError, RawPath, resolve_mac
    info = sender.iface
    if info.ipv4 is None:
        raise RawError(99, f"{info.name}: no IPv4 address")
    mac = dmac or resolve_mac(peer[0], info.name)
    return RawPath(src_mac=info.mac, dst_mac=mac, src_ip=info.ipv4, dst_ip=peer[0],
                   udp_sport=sport, udp_dport=peer[1], vlan=vlan, pcp=pcp)


def send_paced(items, send, *, pps: float | None = None, mbps: float | None = None) -> dict:
    """``send(item)`` for each item (bytes-like), ``pps`` items per second or ``mbps`` megabits
    per second of item bytes on the wall clock, else as fast as ``send`` returns; an OSError
    from ``send`` is counted, not raised.  Returns frames, bytes, duration_s, errors."""
    n = nbytes = errors = 0
    t0 = time.monotonic_ns()
    interval = 1e9 / pps if pps else None
    bits = 0
    for dg in items:
        if interval is not None or mbps:
            due = t0 + (n * interval if interval is not None else bits * 1e3 / mbps)
            while True:
                now = time.monotonic_ns()
                if now >= due:
                    break
                wait = (due - now) / 1e9
                if wait > 0.0005:
                    time.sleep(wait - 0.0002)
        try:
            send(dg)
        except OSError:
            errors += 1
        n += 1
        nbytes += len(dg)
        bits += len(dg) * 8
    return {"frames": n, "bytes": nbytes, "duration_s": (time.monotonic_ns() - t0) / 1e9,
            "errors": errors}
