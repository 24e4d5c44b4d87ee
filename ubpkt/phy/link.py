"""A sans-IO PHY link: two ports, N lanes, DLL flits in, flits with a per-flit FEC flag out.

Each port runs its :class:`~ubpkt.phy.lmsm.Lmsm`; the two are wired lane by lane (units cross in
one block time) and train to Link_Active.  Data then goes through a numpy data path per direction,
whole codewords at a time (UB 2.0 §3.2)::

    flits -> Null Block fill to whole codeword groups -> pre-FEC split (1 or 2 encoders)
          -> RS(128,120) encode (or FEC bypass) -> post-FEC lane distribution at the current
          TX width -> per-lane scrambling -> the wire (symbol errors at a BER, bursts, dead lanes)
          -> descrambling -> gathering -> RS decode (T=2 / T=4) -> Null Blocks dropped
          -> flits + one FEC flag per flit (what ``ubpkt.link`` engine's ``receive(...,
             fec_ok=...)`` takes)

Time: integer nanoseconds from the caller; the lanes run at ``lane_gbps`` (one block time = 16
symbols).  The LMSMs only need block-by-block steps around AMCTL slots; between them they
``coast`` (no unit can change anything there), so a link in steady traffic costs a few LMSM steps
per AMCTL period and one numpy pass per batch of codewords.

Lane failure (``fail_lane(n, at)``): from ``at`` the physical lane carries nothing, both
directions.  Codeword groups on it from then on are lost (their flits come out flagged:
uncorrectable), until the receiving LMSM misses ``quick_degrade_misses`` AMCTLs on the lane and
asks the peer for a narrower TX width with an AMCTL Remote TX Link Width Switch (§3.4.2.4): the
link keeps Link_Active at the width the rule allows (x8 -> x4 for lane 5, x2 for lane 3); lane 0
cannot degrade quickly and retrains.  ``restore_lane(n, at)`` goes through the QDLWS width
increase (§3.4.2.3): the Lane_Manage request/ACK and the "RX lane up" answer of the data links
are modelled as direct calls between the two LMSMs (the data link's LM blocks are not part of
this model), the lanes send LP1_PHY_Up RLTBs at the short AMCTL period until the peer has seen
eight, then an AMCTL Link Width Switch widens the link.

Simplifications (named, see docs/phy.md): the data path works on symbols after the PMA (no
precoding / Gray / PAM4 levels on this wire, ``ubpkt phy tx`` has them); an AMCTL takes one block
slot in time, its 40 symbols are the LMSM's units; symbol errors hit data symbols (the AMCTL
codewords are eBCH-16 protected and the LMSM sees them clean unless the lane is dead).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from ._nullblock import FLIT, is_null_block_many, null_block
from .lanes import distribute_bypass, distribute_codewords, gather_bypass, gather_codewords, \
    join_pre_fec, split_pre_fec
from .lmsm import Lmsm, PortConfig
from .pcs import flit_fec_ok
from .profile import DEFAULT_PROFILE, PhyProfile
from .rsfec import K, N, rs_decode_many, rs_encode_many
from .scrambler import prbs_bits

__all__ = ["PhyLinkConfig", "PhyLink", "PhyDirection", "Delivery", "LaneKeystream"]


class LaneKeystream:
    """One lane's scrambler keystream as a stream (the same bytes as
    ``scrambler.keystream(seed, n, start)`` for consecutive ``start``), generated chunk by chunk,
    so a long-running link neither regenerates from the seed nor keeps more than one chunk.

    The PRBS b[n] = b[n-a] ^ b[n-b] also satisfies b[n] = b[n-64a] ^ b[n-64b] (squaring six
    times in GF(2)[x]), so once the first ``a`` 64-bit words exist, whole little-endian words
    follow the same recurrence with lags ``a`` and ``b`` words: a chunk is a few word XORs,
    from the last ``a`` words kept."""

    CHUNK = 1 << 18  # bytes generated at a time

    def __init__(self, seed: int, taps: tuple[int, int] = (23, 18)):
        self.taps = taps
        self.seed = seed
        self.tail: np.ndarray | None = None  # the last taps[0] words generated
        self.buf = np.zeros(0, dtype=np.uint8)

    def _more(self, nbytes: int) -> None:
        a, b = self.taps
        if self.tail is None:  # the first a words straight from the bit sequence
            bits = prbs_bits(self.seed, a * 64, self.taps)
            self.tail = np.packbits(bits, bitorder="little").view("<u8").copy()
            self.buf = np.concatenate([self.buf, self.tail.view(np.uint8)])
        nwords = -(-nbytes // 8)
        out = np.empty(a + nwords, dtype="<u8")
        out[:a] = self.tail
        n, k, end = a, 0, a + nwords
        while n < end:
            while a * (2 << k) <= n:
                k += 1
            A, B = a << k, b << k
            m = min(B, end - n)
            np.bitwise_xor(out[n - A:n - A + m], out[n - B:n - B + m], out=out[n:n + m])
            n += m
        self.tail = out[-a:].copy()
        new = out[a:].view(np.uint8)
        self.buf = np.concatenate([self.buf, new]) if self.buf.size else new

    def take(self, n: int) -> np.ndarray:
        if self.buf.size < n:
            self._more(max(self.CHUNK, n - self.buf.size))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


@dataclass(frozen=True)
class PhyLinkConfig:
    """A PHY link between two ports.

    ``lanes``: 1/2/4/8; ``fec``: 'bypass' | 'rs-t2' | 'rs-t4'; ``interleave``: 1 or 2 encoders;
    ``crc_mode``: the data link's CRC mode (Null Block form, §4.3.3.2); ``ber``: bit error rate on
    every lane (symbol errors follow); ``bursts``: (physical lane, at_ns, symbols) error bursts;
    ``seed``: the wire's random generator; ``lane_gbps``: the lane rate (Data Rate 2, NRZ,
    25.78125 Gbit/s by default); ``delay_ns``: propagation delay; ``quick_degrade``: §3.4.2.4
    on; ``timeout_ticks``: LMSM state timeouts in block times; ``coalesce_arrivals``: a
    driver waiting on ``next_deadline`` wakes once per pushed batch (when its last codeword has
    arrived) rather than once per codeword (simulation cost; ``pop`` still returns every flit
    that arrived by ``now``); ``coast``: skip the LMSMs over data block times (False: step
    every block time, the reference the tests compare against); ``fast_path``: the data path
    with fewer numpy passes per batch (no copies of the queue or the codewords, Null Block fill
    from a ready table, no descrambling pass where the wire left every symbol as sent, flag and
    Null Block bookkeeping only where a codeword failed or a Null Block arrived); False: the
    reference data path, step by step (same flits, flags, statistics and random draws)."""
    lanes: int = 4
    fec: str = "rs-t4"
    interleave: int = 1
    crc_mode: bool = True
    ber: float = 0.0
    bursts: tuple[tuple[int, int, int], ...] = ()
    seed: int = 0
    lane_gbps: float = 25.78125
    delay_ns: int = 0
    quick_degrade: bool = True
    timeout_ticks: int = 6000
    coalesce_arrivals: bool = True
    coast: bool = True
    fast_path: bool = True

    def validate(self) -> None:
        if self.lanes not in (1, 2, 4, 8):
            raise ValueError("lanes must be 1, 2, 4 or 8")
        if self.fec not in ("bypass", "rs-t2", "rs-t4"):
            raise ValueError("fec must be bypass, rs-t2 or rs-t4")
        if self.interleave not in (1, 2):
            raise ValueError("interleave must be 1 or 2")
        if not 0 <= self.ber < 0.5:
            raise ValueError("ber must be in [0, 0.5)")
        if not self.crc_mode and self.fec == "bypass":
            raise ValueError("non-CRC mode needs the FEC enabled (UB 2.0 §4.3.2.3)")
        if self.lane_gbps <= 0:
            raise ValueError("lane_gbps must be positive")
        for lane, _, n in self.bursts:
            if not 0 <= lane < self.lanes or n < 1:
                raise ValueError(f"burst on lane {lane} of {self.lanes}, {n} symbols: invalid")


@dataclass
class Delivery:
    """Flits that arrived (Null Blocks dropped) and one FEC flag per flit (False: the codeword
    holding it could not be corrected); ``all_ok``: every flag is True (a data link can take
    ``fec_ok=True`` for the whole delivery)."""
    flits: bytes
    fec_ok: list
    all_ok: bool = False


_NULL_ROWS: dict = {}


def _null_rows(crc_mode: bool, n: int) -> np.ndarray:
    """``n`` Null Block flits of the CRC mode's form as (n, 20) rows (a read-only table)."""
    t = _NULL_ROWS.get(crc_mode)
    if t is None or t.shape[0] < n:
        t = np.frombuffer(null_block(crc_mode=crc_mode) * max(n, 16), np.uint8).reshape(-1, FLIT)
        _NULL_ROWS[crc_mode] = t
    return t[:n]


class PhyDirection:
    """One direction (``src`` port -> ``dst`` port) of a :class:`PhyLink`, with the three calls
    of :class:`ubpkt.sim.link.Link`: ``push(flits, now)``, ``pop(now)``, ``next_deadline()``."""

    def __init__(self, link: "PhyLink", src: str, dst: str):
        self.link, self.src, self.dst = link, src, dst
        self.queue = bytearray()  # flits waiting for the lanes
        self.tx_free = 0  # tick at which the lanes are free
        prof = link.profile
        self.ks = [LaneKeystream(prof.seed_for_lane(i), prof.prbs_taps)
                   for i in range(link.cfg.lanes)]  # per logical lane
        self.arrivals: deque = deque()  # (arrival ticks per flit, flits (M,20), ok (M,))
        self.stats = {"flits_in": 0, "flits_out": 0, "codewords": 0, "corrected_symbols": 0,
                      "corrected_codewords": 0, "uncorrectable_codewords": 0,
                      "flits_flagged": 0, "null_blocks_added": 0, "null_blocks_dropped": 0,
                      "symbol_errors_injected": 0, "dead_lane_groups": 0}

    @property
    def name(self) -> str:
        return f"{self.src}->{self.dst}"

    def push(self, flits: bytes, now: int) -> bool:
        """Offer whole flits at ``now``; they go out as soon as the lanes are free and the
        link is up."""
        if len(flits) % FLIT:
            raise ValueError(f"{len(flits)} bytes is not a whole number of {FLIT}-byte flits")
        self.link.advance(now)
        self.queue += flits
        self.stats["flits_in"] += len(flits) // FLIT
        self._serve()
        return True

    def pop(self, now: int) -> list[Delivery]:
        """What arrived at ``dst`` by ``now`` (one :class:`Delivery`, or an empty list)."""
        self.link.advance(now)
        self._serve()
        limit = self.link.tick_of(now)
        fl, ok = [], []
        while self.arrivals:
            ticks, f, k = self.arrivals[0]
            n = len(ticks) if ticks[-1] <= limit else int(np.searchsorted(ticks, limit, "right"))
            if n == 0:
                break
            fl.append(f[:n])
            ok.append(k[:n])
            if n == len(ticks):
                self.arrivals.popleft()
            else:
                self.arrivals[0] = (ticks[n:], f[n:], k[n:])
                break
        if not fl:
            return []
        flits = np.concatenate(fl)
        oks = np.concatenate(ok)
        self.stats["flits_out"] += flits.shape[0]
        return [Delivery(flits.tobytes(), oks.tolist(), bool(oks.all()))]

    def next_deadline(self) -> int | None:
        """The next arrival (with ``coalesce_arrivals``: when the oldest pushed batch has
        fully arrived), or the next block time while flits wait for the link."""
        t = None
        if self.arrivals:
            ticks = self.arrivals[0][0]
            t = self.link.time_of(int(ticks[-1] if self.link.cfg.coalesce_arrivals else ticks[0]))
        if self.queue:
            w = self.link.time_of(max(self.link.tick + 1, self.tx_free))
            t = w if t is None else min(t, w)
        return t

    # -- the data path -------------------------------------------------------------------------
    def _serve(self) -> None:
        link = self.link
        src = link.ports[self.src]
        while self.queue:
            t0 = max(self.tx_free, link.tick)
            link._advance_to(t0)
            dst = link.ports[self.dst]
            if src.state != "Link_Active" or dst.state != "Link_Active" or src.tx_width == 0:
                return
            self._send_batch(t0, src)

    def _group_geometry(self, src: Lmsm) -> tuple[int, int, str, int]:
        """(flits per group, symbols per lane per group, fec, encoders) at the current width."""
        w, fec = src.tx_width, src.fec_mode
        if fec == "bypass":
            return w, FLIT, fec, 1
        codecs = 2 if src.fec_interleave else 1
        return (K // FLIT) * codecs, N * codecs // w, fec, codecs

    def _send_batch(self, t0: int, src: Lmsm) -> None:
        if self.link.cfg.fast_path:
            self._send_batch_fast(t0, src)
        else:
            self._send_batch_reference(t0, src)

    def _batch_plan(self, t0: int, src: Lmsm) -> tuple:
        """How many codeword groups go now and when: (groups, flits taken, per_group, sym_lane,
        fec, codecs, per-group last-symbol ticks); sets ``tx_free``."""
        link = self.link
        per_group, sym_lane, fec, codecs = self._group_geometry(src)
        queued = len(self.queue) // FLIT
        groups_wanted = -(-queued // per_group)
        horizon = link._steady_horizon(t0, src)
        cycle = src._amctl_cycle()
        to_amctl = src.blocks_to_amctl()
        if horizon is None:
            groups = groups_wanted
        else:  # stop before the next moment the width may change
            groups = max(1, min(groups_wanted, horizon * 16 // sym_lane))
        nflits = min(queued, groups * per_group)
        data_ticks = -(-(groups * sym_lane) // 16)
        amctls = 0 if data_ticks <= to_amctl else 1 + (data_ticks - to_amctl - 1) // (cycle - 1)
        self.tx_free = t0 + data_ticks + amctls
        # per group: the tick its last symbol leaves (ceil(g * sym_lane / 16), integers only)
        sent = np.arange(sym_lane + 15, groups * sym_lane + 16, sym_lane, dtype=np.int64)
        sent //= 16
        sent += t0
        if to_amctl < data_ticks:
            crossed = np.maximum(0, (sent - t0 - to_amctl + cycle - 2) // (cycle - 1))
            sent += crossed
        return groups, nflits, per_group, sym_lane, fec, codecs, sent

    def _send_batch_fast(self, t0: int, src: Lmsm) -> None:
        """:meth:`_send_batch_reference` with fewer numpy passes (see ``fast_path``)."""
        link = self.link
        st = self.stats
        w = src.tx_width
        groups, nflits, per_group, sym_lane, fec, codecs, sent = self._batch_plan(t0, src)
        total = groups * per_group
        nb = nflits * FLIT
        raw = np.empty((total, FLIT), np.uint8)
        raw.reshape(-1)[:nb] = np.frombuffer(self.queue, np.uint8, nb)
        del self.queue[:nb]
        pad = total - nflits
        if pad:
            raw[nflits:] = _null_rows(src.crc_mode, pad)
            st["null_blocks_added"] += pad
        flat = raw.reshape(-1)
        if fec == "bypass":
            lanes = distribute_bypass(flat, w)
        else:
            lanes = distribute_codewords([rs_encode_many(m) for m in
                                          split_pre_fec(flat, codecs)], w)
        ks = self._keystreams(w, lanes.shape[1])
        wire = np.bitwise_xor(lanes, ks)
        touched = self._wire(wire, src, sent, sym_lane)
        rx = np.bitwise_xor(wire, ks, out=wire) if touched else lanes  # x ^ k ^ k == x
        ok = None  # None: every flit decoded
        if fec == "bypass":
            fl = gather_bypass(rx).reshape(-1, FLIT)
        else:
            t = 2 if fec == "rs-t2" else 4
            res = [rs_decode_many(c, t, copy=False) for c in gather_codewords(rx, codecs)]
            st["codewords"] += groups * codecs
            if any(r.dirty for r in res):
                st["corrected_symbols"] += int(sum(int(r.corrected.sum()) for r in res))
                st["corrected_codewords"] += int(sum(int((r.corrected > 0).sum())
                                                     for r in res))
                bad = int(sum(int((~r.ok).sum()) for r in res))
                if bad:
                    st["uncorrectable_codewords"] += bad
                    ok = flit_fec_ok([r.ok for r in res], total)
            if codecs == 1:
                fl = res[0].codewords[:, :K].reshape(-1, FLIT)
            else:
                fl = join_pre_fec([r.messages for r in res]).reshape(-1, FLIT)
        arrive = np.repeat(sent + link.delay_ticks, per_group) if per_group > 1 else \
            sent + link.delay_ticks
        nulls = is_null_block_many(fl, src.crc_mode, ok if not src.crc_mode else None)
        if ok is None:
            ok = np.ones(total, dtype=bool)
        ndrop = int(np.count_nonzero(nulls))
        if ndrop:
            st["null_blocks_dropped"] += ndrop
            keep = ~nulls
            arrive, fl, ok = arrive[keep], fl[keep], ok[keep]
        if ok.size and not ok.all():
            st["flits_flagged"] += int(np.count_nonzero(~ok))
        if fl.shape[0]:
            self.arrivals.append((arrive, fl, ok))

    def _send_batch_reference(self, t0: int, src: Lmsm) -> None:
        """The data path step by step (the reference of :meth:`_send_batch_fast`)."""
        link = self.link
        w = src.tx_width
        per_group, sym_lane, fec, codecs = self._group_geometry(src)
        queued = len(self.queue) // FLIT
        groups_wanted = -(-queued // per_group)
        horizon = link._steady_horizon(t0, src)
        cycle = src._amctl_cycle()
        to_amctl = src.blocks_to_amctl()
        if horizon is None:
            groups = groups_wanted
        else:  # stop before the next moment the width may change
            groups = max(1, min(groups_wanted, horizon * 16 // sym_lane))
        nflits = min(queued, groups * per_group)
        raw = np.frombuffer(bytes(self.queue[:nflits * FLIT]), np.uint8).reshape(-1, FLIT)
        del self.queue[:nflits * FLIT]
        pad = groups * per_group - nflits
        if pad:
            fill = np.frombuffer(null_block(crc_mode=src.crc_mode) * pad, np.uint8)
            raw = np.concatenate([raw, fill.reshape(pad, FLIT)])
            self.stats["null_blocks_added"] += pad
        # ticks: data blocks, plus one slot per AMCTL the source sends in between
        data_ticks = math.ceil(groups * sym_lane / 16)
        amctls = 0 if data_ticks <= to_amctl else 1 + (data_ticks - to_amctl - 1) // (cycle - 1)
        end = t0 + data_ticks + amctls
        self.tx_free = end
        # per group: the tick its last symbol leaves (for dead lanes and arrival times)
        g = np.arange(1, groups + 1)
        sent = t0 + np.ceil(g * sym_lane / 16).astype(np.int64)
        if to_amctl < data_ticks:
            crossed = np.maximum(0, (sent - t0 - to_amctl + cycle - 2) // (cycle - 1))
            sent = sent + crossed
        # encode -> lanes (logical lane order) -> scramble
        if fec == "bypass":
            lanes = distribute_bypass(raw.reshape(-1), w)
        else:
            lanes = distribute_codewords([rs_encode_many(m) for m in
                                          split_pre_fec(raw.reshape(-1), codecs)], w)
        lanes = np.ascontiguousarray(lanes)
        ks = self._keystreams(w, lanes.shape[1])
        wire = lanes ^ ks
        self._wire(wire, src, sent, sym_lane)
        rx = wire ^ ks
        # receive: gather -> decode -> flags -> drop Null Blocks
        if fec == "bypass":
            stream = gather_bypass(rx)
            ok = np.ones(raw.shape[0], dtype=bool)
        else:
            res = [rs_decode_many(c, 2 if fec == "rs-t2" else 4) for c in
                   gather_codewords(rx, codecs)]
            st = self.stats
            st["codewords"] += int(sum(r.ok.size for r in res))
            st["corrected_symbols"] += int(sum(int(r.corrected.sum()) for r in res))
            st["corrected_codewords"] += int(sum(int((r.corrected > 0).sum()) for r in res))
            st["uncorrectable_codewords"] += int(sum(int((~r.ok).sum()) for r in res))
            stream = join_pre_fec([r.messages for r in res])
            ok = flit_fec_ok([r.ok for r in res], raw.shape[0])
        fl = stream.reshape(-1, FLIT)
        arrive = np.repeat(sent + link.delay_ticks, per_group)[:fl.shape[0]]
        nulls = is_null_block_many(fl, src.crc_mode, ok if not src.crc_mode else None)
        keep = ~nulls
        self.stats["null_blocks_dropped"] += int(nulls.sum())
        self.stats["flits_flagged"] += int((~ok[keep]).sum())
        if keep.any():
            self.arrivals.append((arrive[keep], fl[keep], ok[keep]))

    def _keystreams(self, w: int, n: int) -> np.ndarray:
        """The next ``n`` keystream bytes of logical lanes 0..w-1 (§3.2.2.4: per lane, seeded
        by the lane ID; data continues the stream)."""
        out = np.empty((w, n), dtype=np.uint8)
        for i in range(w):
            out[i] = self.ks[i].take(n)
        return out

    def _wire(self, wire: np.ndarray, src: Lmsm, sent: np.ndarray, sym_lane: int) -> bool:
        """Symbol errors at the BER, bursts, dead lanes: in place on (width, symbols).  True
        when a symbol may have changed."""
        touched = False
        link = self.link
        w, n = wire.shape
        rng = link.rng
        ber = link.cfg.ber
        if ber > 0:
            p_sym = 1.0 - (1.0 - ber) ** 8
            k = int(rng.binomial(w * n, p_sym))
            if k:  # positions with replacement: a repeat (rare) is one symbol hit twice
                idx = rng.integers(0, w * n, size=k)
                bits = rng.integers(0, 8, size=idx.size)
                flat = wire.reshape(-1)
                flat[idx] ^= (1 << bits).astype(np.uint8)
                self.stats["symbol_errors_injected"] += int(idx.size)
                touched = True
        t_first = int(sent[0]) - math.ceil(sym_lane / 16)
        for lane, at_ns, nsym in link.cfg.bursts:
            at = link.tick_of(at_ns)
            logical = src.tx_map.index(lane) if lane in src.tx_map[:w] else None
            if logical is None or not t_first <= at <= int(sent[-1]):
                continue
            g = int(np.searchsorted(sent, at))
            start = g * sym_lane
            seg = wire[logical, start:start + nsym]
            seg ^= rng.integers(1, 256, size=seg.size, dtype=np.uint8)
            self.stats["symbol_errors_injected"] += int(seg.size)
            touched = True
        for phys, since in link.dead.items():
            if phys not in src.tx_map[:w]:
                continue
            logical = src.tx_map.index(phys)
            hit = sent + link.delay_ticks >= since  # sent after the cut, or still on the wire
            if hit.any():
                g0 = int(np.argmax(hit))
                seg = wire[logical, g0 * sym_lane:]
                seg[:] = rng.integers(0, 256, size=seg.size, dtype=np.uint8)
                self.stats["dead_lane_groups"] += int(hit.sum())
                touched = True
        return touched


class PhyLink:
    """Two ports ``A`` and ``B`` over ``cfg.lanes`` lanes.  ``link.ab`` / ``link.ba`` are the two
    :class:`PhyDirection`\\ s (``direction('A')``: what A sends).  ``train()`` brings the link up
    (``advance`` does it too); ``fail_lane`` / ``restore_lane`` schedule lane events;
    ``width_changes``, ``timeline()`` and ``report()`` say what happened."""

    def __init__(self, cfg: PhyLinkConfig = PhyLinkConfig(), profile: PhyProfile = DEFAULT_PROFILE):
        cfg.validate()
        self.cfg = cfg
        self.profile = profile
        self.block_ns = 16 * 8 / cfg.lane_gbps
        self.delay_ticks = math.ceil(cfg.delay_ns / self.block_ns) if cfg.delay_ns else 0
        support = ("rs-t2", "rs-t4")
        pa = PortConfig(lanes=cfg.lanes, fec=cfg.fec, fec_support=support,
                        interleave=cfg.interleave == 2, primary=True, crc_mode=cfg.crc_mode,
                        quick_degrade=cfg.quick_degrade, timeout_ticks=cfg.timeout_ticks,
                        )
        pb = PortConfig(lanes=cfg.lanes, fec=cfg.fec, fec_support=support,
                        interleave=cfg.interleave == 2, primary=False, crc_mode=cfg.crc_mode,
                        quick_degrade=cfg.quick_degrade, timeout_ticks=cfg.timeout_ticks,
                        )
        self.ports = {"A": Lmsm(pa, profile, name="A", block_ns=self.block_ns),
                      "B": Lmsm(pb, profile, name="B", block_ns=self.block_ns)}
        self.rng = np.random.default_rng(cfg.seed)
        self.tick = 0
        self._units = {"A": [None] * cfg.lanes, "B": [None] * cfg.lanes}  # in flight, by sender
        self._ctrl_flight = False  # a unit other than data among them
        self.dead: dict[int, int] = {}  # physical lane -> tick it died
        self._schedule: list[tuple[int, str, int]] = []
        self.width_changes: list[dict] = []
        self.events: list[dict] = []
        self.mode_changes: list[dict] = []
        self.ab = PhyDirection(self, "A", "B")
        self.ba = PhyDirection(self, "B", "A")
        self._started = False
        self.up_at: int | None = None

    # -- time ------------------------------------------------------------------------------------
    def tick_of(self, now: int) -> int:
        return int(now // self.block_ns)

    def time_of(self, tick: int) -> int:
        return int(math.ceil(tick * self.block_ns))

    def direction(self, src: str) -> PhyDirection:
        return self.ab if src == "A" else self.ba

    # -- lane events -----------------------------------------------------------------------------
    def fail_lane(self, lane: int, at: int) -> None:
        """Physical lane ``lane`` stops carrying anything in both directions from ``at`` ns."""
        self._check_lane(lane)
        self._schedule.append((self.tick_of(at), "fail", lane))
        self._schedule.sort()

    def restore_lane(self, lane: int, at: int) -> None:
        """Lane ``lane`` works again from ``at`` ns; the ports widen through QDLWS."""
        self._check_lane(lane)
        self._schedule.append((self.tick_of(at), "restore", lane))
        self._schedule.sort()

    def change_mode(self, fec: str | None = None, crc_mode: bool | None = None,
                    at: int | None = None) -> None:
        """FEC and/or CRC mode switch (§3.4.2.8, §4.3.3.8): the data links' Block_Mode_Chg
        REQ/ACK exchange is taken as done; the primary port (A) retrains into the new mode
        (AMCTL with EDF, RLTBs carrying FEC_Mode_Ctrl / CRC_Mode, Send_NullBlock, Link_Active).
        Flits pushed meanwhile wait for Link_Active and then go out in the new mode; the data
        links learn the new CRC mode from ``report()['crc_mode']`` / ``mode_changes``."""
        if at is not None:
            self.advance(at)
        a = self.ports["A"]
        if a.state != "Link_Active":
            self.train()
        a.request_mode_change(fec, crc_mode)
        while a.state == "Link_Active":  # the AMCTL with EDF goes out at the next AMCTL slot
            self._step()
        self.mode_changes.append({"at_ns": self.time_of(self.tick), "fec": a.fec_mode,
                                  "crc_mode": a.crc_mode})

    def _check_lane(self, lane: int) -> None:
        if not 0 <= lane < self.cfg.lanes:
            raise ValueError(f"lane {lane} is not one of the {self.cfg.lanes} lanes")

    # -- the LMSM pair ---------------------------------------------------------------------------
    def train(self, max_ticks: int = 200000) -> bool:
        """Bring the link up (both ports Link_Active, widths agreed); True when it is."""
        self._start()
        for _ in range(max_ticks):
            if self._settled():
                break
            self._step()
        return self._settled()

    def _start(self) -> None:
        if not self._started:
            self._started = True
            for p in self.ports.values():
                p.start()

    def _settled(self) -> bool:
        a, b = self.ports["A"], self.ports["B"]
        return (a.state == b.state == "Link_Active" and a.tx_width == b.rx_width
                and b.tx_width == a.rx_width and not a.pending_ctrl and not b.pending_ctrl)

    def advance(self, now: int) -> None:
        """Run the ports up to ``now`` (ns)."""
        self._start()
        self._advance_to(self.tick_of(now))

    def _advance_to(self, target: int) -> None:
        a, b = self.ports["A"], self.ports["B"]
        while self.tick < target:
            nxt = self._schedule[0][0] if self._schedule else None
            if self.cfg.coast and a.can_coast() and b.can_coast() and \
                    not self._amctl_in_flight():
                k = min(a.blocks_to_amctl(), b.blocks_to_amctl(), target - self.tick)
                if nxt is not None:
                    k = min(k, nxt - self.tick - 1)
                if k > 0:
                    a.coast(k)
                    b.coast(k)
                    self.tick += k
                    continue
            self._step()

    def _amctl_in_flight(self) -> bool:
        return self._ctrl_flight  # set by _step, where the units change

    def _steady_horizon(self, t0: int, src: Lmsm) -> int | None:
        """Block times from ``t0`` during which the source's width cannot change: None when
        both ports are steady and no lane event is scheduled, else the ticks to the next
        scheduled event (the batch then stops at the source's next AMCTL slot as well)."""
        a, b = self.ports["A"], self.ports["B"]
        steady = a.can_coast() and b.can_coast() and self._settled()
        if steady and not self._schedule:
            return None
        if steady:  # until the next lane event (AMCTL slots in between change nothing)
            return max(1, self._schedule[0][0] - t0)
        return max(1, src.blocks_to_amctl())  # the width may change at the source's AMCTL

    def _step(self) -> None:
        self.tick += 1
        while self._schedule and self._schedule[0][0] <= self.tick:
            _, what, lane = self._schedule.pop(0)
            self._lane_event(what, lane)
        a, b = self.ports["A"], self.ports["B"]
        wa, wb = a.tx_width, b.tx_width
        term = [p not in self.dead for p in range(self.cfg.lanes)]
        ta = a.step(self._units["B"], term)
        tb = b.step(self._units["A"], term)
        self._units["A"] = self._wire(ta)
        self._units["B"] = self._wire(tb)
        self._ctrl_flight = any(u is not None and u.kind != "data" for u in ta) or \
            any(u is not None and u.kind != "data" for u in tb)
        for name, port, before in (("A", a, wa), ("B", b, wb)):
            if port.tx_width != before and before and port.tx_width:
                peer = "B" if name == "A" else "A"
                self.width_changes.append({
                    "at_ns": self.time_of(self.tick), "direction": f"{name}->{peer}",
                    "from": before, "to": port.tx_width,
                    "kind": "increase" if port.tx_width > before else "decrease",
                    "state": port.state})
        for name, port in (("A", a), ("B", b)):
            for e in port.pop_events():
                what = getattr(e, "what", None)
                if what == "rx_lanes_up":  # the data link's LM block "RX lane up" (§3.4.2.3)
                    peer = self.ports["B" if name == "A" else "A"]
                    if peer.width_up:
                        peer.confirm_width_increase()
        if self.up_at is None and self._settled():
            self.up_at = self.time_of(self.tick)

    def _wire(self, units: list) -> list:
        return [None if (u is None or p in self.dead) else u for p, u in enumerate(units)]

    def _lane_event(self, what: str, lane: int) -> None:
        at = self.time_of(self.tick)
        if what == "fail":
            self.dead.setdefault(lane, self.tick)
            self.events.append({"at_ns": at, "event": "lane_failed", "lane": lane})
            return
        self.dead.pop(lane, None)
        self.events.append({"at_ns": at, "event": "lane_restored", "lane": lane})
        self._pending_widen = True
        self._widen()

    def _widen(self) -> None:
        """Lane_Manage request + ACK, modelled: each TX port below its configured width brings
        the working lanes back up (the peer RX expects them)."""
        for name in ("A", "B"):
            tx = self.ports[name]
            rx = self.ports["B" if name == "A" else "A"]
            if tx.state != "Link_Active" or tx.width_up:
                continue
            n = 0
            while n < tx.tx_m and tx.tx_map[n] not in self.dead:
                n += 1
            target = max((w for w in (1, 2, 4, 8) if w <= n), default=0)
            if target > tx.tx_width and rx.state == "Link_Active":
                tx.request_width_increase(target)
                rx.expect_width_increase(target)

    # -- reports ---------------------------------------------------------------------------------
    def timeline(self) -> list[dict]:
        """Every LMSM state entered, both ports, with its time (ns)."""
        out = []
        for name, p in self.ports.items():
            for e in p.trace:
                out.append({"at_ns": int(round(e.get("at", 0))), "port": name, "state": e["state"]})
        return sorted(out, key=lambda e: (e["at_ns"], e["port"]))

    def report(self) -> dict:
        a, b = self.ports["A"], self.ports["B"]
        tot = {k: self.ab.stats[k] + self.ba.stats[k] for k in self.ab.stats}
        return {
            "lanes": self.cfg.lanes, "fec": a.fec_mode, "interleave": 2 if a.fec_interleave else 1,
            "crc_mode": a.crc_mode, "ber": self.cfg.ber, "lane_gbps": self.cfg.lane_gbps,
            "state": {"A": a.state, "B": b.state},
            "width": {"A->B": a.tx_width, "B->A": b.tx_width},
            "link_up_ns": self.up_at, "now_ns": self.time_of(self.tick),
            "dead_lanes": sorted(self.dead), "width_changes": list(self.width_changes),
            "lane_events": list(self.events),
            "directions": {"A->B": dict(self.ab.stats), "B->A": dict(self.ba.stats)},
            **{k: tot[k] for k in ("corrected_symbols", "uncorrectable_codewords", "codewords",
                                   "flits_flagged")},
            "retrains": sum(1 for e in self.timeline() if e["state"] == "Retrain.Active"),
            "mode_changes": list(self.mode_changes),
        }
