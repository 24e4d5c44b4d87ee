"""TX and RX pipelines of the PCS/PMA over whole flit streams (UB 2.0 §3.2, §3.3).

TX: flits -> (Null Block fill) -> RS(128,120) encode (1 or 2 encoders) or bypass -> lane
distribution -> per-lane scrambling -> unit intervals (Gray for PAM4) -> precoding per run of
scrambled UIs -> AMCTL insertion (first one = AMCTL with SDF, then every period).
RX: per-lane AMCTL lock (polarity and lane ID from the AMCTL) -> deskew on the SDF -> reorder by
LID -> strip AMCTLs -> de-precode -> symbols -> descramble -> gather -> RS decode -> drop Null
Blocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._nullblock import FLIT, is_null_block_many, null_block
from .amctl import AMCTL_LEN, AmctlLocker, build_amctl
from .lanes import (distribute_bypass, distribute_codewords, gather_bypass, gather_codewords,
                    join_pre_fec, lane_order_from_ids, split_pre_fec)
from .profile import DEFAULT_PROFILE, PhyProfile
from .rsfec import K, N, rs_decode_many, rs_encode_many
from .scrambler import keystream
from .symbols import (UI_PER_SYMBOL, deprecode_nrz_bytes, deprecode_pam4_bytes,
                      gray_pam4_bytes, pack_ui, precode_nrz_bytes, precode_pam4_bytes, unpack_ui)

__all__ = ["TxConfig", "tx", "rx", "RxResult", "FEC_MODES", "MISCORRECTION_NOTE", "confirmed_lane_id",
           "flit_fec_ok"]

FEC_MODES = ("bypass", "rs-t2", "rs-t4")
MISCORRECTION_NOTE = (
    "RS T=4: a codeword with more than 4 symbol errors is reported whenever the decoder can tell; "
    "a rare mis-correction is left to the link layer's CRC30. RS T=2: 3..6 errors are always "
    "reported (distance 9).")


@dataclass(frozen=True)
class TxConfig:
    lanes: int = 1
    fec: str = "rs-t4"
    interleave: int = 1
    modulation: str = "nrz"
    amctl_period: int | None = None  # None -> profile.period0
    crc_mode: bool = True  # the data link's CRC mode: picks the Null Block form (§4.3.3.2)

    def validate(self) -> None:
        if self.lanes not in (1, 2, 4, 8):
            raise ValueError("lanes must be 1, 2, 4 or 8")
        if self.fec not in FEC_MODES:
            raise ValueError(f"fec must be one of {FEC_MODES}")
        if self.interleave not in (1, 2):
            raise ValueError("interleave must be 1 or 2")
        if self.modulation not in ("nrz", "pam4"):
            raise ValueError("modulation must be nrz or pam4")
        if self.amctl_period is not None and self.amctl_period < 16:
            raise ValueError("amctl period must be at least 16 symbols")
        if not self.crc_mode and self.fec == "bypass":
            raise ValueError("non-CRC mode needs the FEC enabled (UB 2.0 §4.3.2.3)")

    def settings(self, profile: PhyProfile) -> dict:
        return {"lanes": self.lanes, "fec": self.fec, "interleave": self.interleave,
                "modulation": self.modulation,
                "amctl_period": self.amctl_period or profile.period0, "crc_mode": self.crc_mode}


def _fill_null(flits: np.ndarray, multiple: int, crc_mode: bool = True
               ) -> tuple[np.ndarray, int]:
    n = flits.shape[0]
    pad = (-n) % multiple
    if pad:
        nb = np.frombuffer(null_block(crc_mode=crc_mode) * pad, dtype=np.uint8).reshape(pad, FLIT)
        flits = np.concatenate([flits, nb])
    return flits, pad


def _lane_symbols(data_flits: np.ndarray, cfg: TxConfig) -> np.ndarray:
    stream = data_flits.reshape(-1)
    if cfg.fec == "bypass":
        return distribute_bypass(stream, cfg.lanes)
    msgs = split_pre_fec(stream, cfg.interleave)
    cws = [rs_encode_many(m) for m in msgs]
    return distribute_codewords(cws, cfg.lanes)


def tx(flits: bytes | np.ndarray, cfg: TxConfig, profile: PhyProfile = DEFAULT_PROFILE
       ) -> tuple[list[np.ndarray], dict]:
    """Flit stream -> per-lane UI arrays (uint8) and a small stats dict."""
    cfg.validate()
    raw = np.frombuffer(bytes(flits), dtype=np.uint8) if not isinstance(flits, np.ndarray) \
        else flits.astype(np.uint8).reshape(-1)
    if raw.size % FLIT:
        raise ValueError(f"flit stream length {raw.size} is not a multiple of {FLIT} bytes")
    f = raw.reshape(-1, FLIT)
    if cfg.fec == "bypass":
        multiple = cfg.lanes // np.gcd(cfg.lanes, FLIT)  # whole symbols per lane
    else:
        multiple = (K // FLIT) * cfg.interleave  # whole codewords (6 flits per encoder)
    f, pad = _fill_null(f, multiple, cfg.crc_mode)
    syms = _lane_symbols(f, cfg)
    period = cfg.amctl_period or profile.period0
    mod = cfg.modulation
    out = []
    a = AMCTL_LEN
    for lane in range(cfg.lanes):
        s = syms[lane]
        sc = s ^ keystream(profile.seed_for_lane(lane), s.size, profile.sdf_scrambler_offset,
                           profile.prbs_taps)
        n = s.size
        nfull = n // period
        sdf = np.frombuffer(build_amctl(lane, "link_width_switch", f"x{cfg.lanes}", profile),
                            dtype=np.uint8)
        plain = np.frombuffer(build_amctl(lane, profile=profile), dtype=np.uint8)
        tail_n = n - nfull * period
        # packed grid, one byte per symbol: [AMCTL | period data symbols] per row, then one
        # expansion to UIs (PAM4: Gray-mapped levels, precoded per byte from tables)
        if mod == "nrz":
            levels, precode_bytes = sc, precode_nrz_bytes
        else:
            levels, precode_bytes = gray_pam4_bytes(sc), precode_pam4_bytes
            sdf, plain = gray_pam4_bytes(sdf), gray_pam4_bytes(plain)
        if profile.precode:
            head = precode_bytes(levels[:nfull * period].reshape(nfull, period))
            tail = precode_bytes(levels[nfull * period:])
        else:
            head = levels[:nfull * period].reshape(nfull, period)
            tail = levels[nfull * period:]
        lane_sym = np.empty(nfull * (a + period) + (a + tail_n if tail_n or not nfull else 0),
                            dtype=np.uint8)
        grid = lane_sym[:nfull * (a + period)].reshape(nfull, a + period)
        grid[:, :a] = plain
        grid[:, a:] = head
        if tail_n or not nfull:
            off = nfull * (a + period)
            lane_sym[off:off + a] = plain
            lane_sym[off + a:] = tail
        lane_sym[:a] = sdf
        out.append(unpack_ui(lane_sym, mod))
    stats = {"flits_in": int(raw.size // FLIT), "null_blocks_added": int(pad),
             "codewords": 0 if cfg.fec == "bypass" else int(f.shape[0] // (K // FLIT)),
             "symbols_per_lane": int(syms.shape[1])}
    return out, stats


def confirmed_lane_id(hits, single_ok: bool = False) -> int | None:
    """The lane ID of one lane from its AMCTL hits: the first valid LID repeated by the very next
    AMCTL (UB 2.0 §3.2.4.2); None when no two consecutive AMCTLs agree.  ``single_ok``: a lane
    that carried exactly one AMCTL takes its LID (``PhyProfile.lid_single_amctl_capture``)."""
    prev = None
    for h in hits:
        a = h.amctl
        cur = a.lane_id if a is not None and a.lid_valid and not a.lid_null else None
        if cur is not None and cur == prev:
            return cur
        prev = cur
    if single_ok and len(hits) == 1:
        return prev
    return None


def flit_fec_ok(ok_per_encoder: list[np.ndarray], nflits: int) -> np.ndarray:
    """Per-flit FEC status from per-codeword ``ok`` flags: a flit is good when every codeword
    holding one of its bytes decoded (with two encoders a codeword group of 240 bytes = 12 flits
    shares both codewords' fate)."""
    ok = np.logical_and.reduce(ok_per_encoder) if len(ok_per_encoder) > 1 else ok_per_encoder[0]
    per = K * len(ok_per_encoder) // FLIT  # flits per codeword group (6 or 12)
    return np.repeat(ok, per)[:nflits]


@dataclass
class RxResult:
    flits: bytes
    report: dict = field(default_factory=dict)


def rx(lane_uis: list[np.ndarray], cfg: TxConfig, profile: PhyProfile = DEFAULT_PROFILE
       ) -> RxResult:
    """Per-lane UI arrays (physical lane order) -> flits (Null Blocks dropped) and a report."""
    cfg.validate()
    mod = cfg.modulation
    ups = UI_PER_SYMBOL[mod]
    period = cfg.amctl_period or profile.period0
    L = len(lane_uis)
    if L != cfg.lanes:
        raise ValueError(f"expected {cfg.lanes} lanes, got {L}")
    a = AMCTL_LEN * ups
    locker = AmctlLocker(mod, period, profile)
    lanes_info = []
    for phys, ui in enumerate(lane_uis):
        u = np.asarray(ui, dtype=np.uint8)
        if u.size and int(u.max()) > (1 if mod == "nrz" else 3):
            raise ValueError(f"lane {phys}: UI values out of range for {mod}")
        lr = locker.run(u)
        lanes_info.append(lr)
    report = {"lanes": L, "fec": cfg.fec, "interleave": cfg.interleave, "modulation": mod,
              "amctl_period": period}
    report["amctl_seen"] = int(sum(sum(1 for h in lr.hits if h.amctl is not None)
                                   for lr in lanes_info))
    report["amctl_missed"] = int(sum(sum(1 for h in lr.hits if h.amctl is None)
                                     for lr in lanes_info))
    report["lanes_locked"] = bool(all(lr.locked and lr.hits for lr in lanes_info))
    report["lane_lock"] = [{"physical_lane": i, "locked": bool(lr.locked),
                            "first_amctl_ui": lr.hits[0].start if lr.hits else None,
                            "polarity_inverted": lr.inverted, "slips": lr.slips,
                            "lock_lost": lr.lock_lost} for i, lr in enumerate(lanes_info)]
    # Lane IDs from LID: taken once two consecutive AMCTLs carry the same valid LID (§3.2.4.2).
    single = profile.lid_single_amctl_capture
    ids = [confirmed_lane_id(lr.hits, single) for lr in lanes_info]
    report["lane_ids_single_amctl"] = [i for i, lr in enumerate(lanes_info)
                                       if len(lr.hits) == 1 and ids[i] is not None]
    order = lane_order_from_ids(ids)
    report["lane_ids"] = ids
    report["lane_ids_unconfirmed"] = [i for i, x in enumerate(ids) if x is None]
    empty = RxResult(b"", report)
    report.update(flits=0, codewords=0, corrected_symbols=0, uncorrectable_codewords=0,
                  null_blocks_dropped=0, skew_ui=None)
    if order is None or not all(lr.hits for lr in lanes_info):
        report["error"] = ("could not lock/identify every lane (a lane ID needs two consecutive "
                           "AMCTLs with the same LID)")
        return empty
    report["lane_order"] = order
    report["lane_reversed"] = order == list(range(L))[::-1] and L > 1
    starts = [lr.hits[0].start for lr in lanes_info]
    report["skew_ui"] = int(max(starts) - min(starts))
    if not all(lr.hits[0].amctl and lr.hits[0].amctl.is_sdf for lr in lanes_info):
        report["warning"] = "first AMCTL on some lane is not an AMCTL with SDF"
    # Strip AMCTLs, de-precode, symbols, descramble; per logical lane.
    lane_syms = []
    for logical in range(L):
        lr = lanes_info[order[logical]]
        ui = lr.ui
        pieces = []
        hits = lr.hits
        for k, h in enumerate(hits):
            s0 = h.start + a
            s1 = hits[k + 1].start if k + 1 < len(hits) else ui.size
            seg = ui[s0:s1]
            seg = seg[:seg.size - seg.size % ups]
            b = pack_ui(seg, mod)        # packed: de-precoded per byte from tables
            if mod == "nrz":
                pieces.append(deprecode_nrz_bytes(b) if profile.precode else b)
            else:
                pieces.append(deprecode_pam4_bytes(b, gray=True) if profile.precode
                              else gray_pam4_bytes(b))
        syms = np.concatenate(pieces) if pieces else np.zeros(0, np.uint8)
        lane_syms.append(syms)
    n = min(s.size for s in lane_syms)
    codecs = cfg.interleave if cfg.fec != "bypass" else 1
    unit = (N * codecs // L) if cfg.fec != "bypass" else 1
    n -= n % unit
    mat = np.empty((L, n), dtype=np.uint8)
    for logical in range(L):
        ks = keystream(profile.seed_for_lane(logical), n, profile.sdf_scrambler_offset,
                       profile.prbs_taps)
        mat[logical] = lane_syms[logical][:n] ^ ks
    if cfg.fec == "bypass":
        stream = gather_bypass(mat)
    else:
        cws = gather_codewords(mat, codecs)
        t = 2 if cfg.fec == "rs-t2" else 4
        results = [rs_decode_many(c, t) for c in cws]
        report["codewords"] = int(sum(r.ok.size for r in results))
        report["corrected_symbols"] = int(sum(r.corrected.sum() for r in results))
        report["uncorrectable_codewords"] = int(sum((~r.ok).sum() for r in results))
        report["corrected_codewords"] = int(sum((r.corrected > 0).sum() for r in results))
        report["miscorrection_note"] = MISCORRECTION_NOTE
        stream = join_pre_fec([r.messages for r in results])
    stream = stream[:stream.size - stream.size % FLIT]
    fl = stream.reshape(-1, FLIT)
    fec_ok = None
    if cfg.fec != "bypass" and not cfg.crc_mode:
        fec_ok = flit_fec_ok([r.ok for r in results], fl.shape[0])
    nulls = is_null_block_many(fl, cfg.crc_mode, fec_ok)
    report["null_blocks_dropped"] = int(nulls.sum())
    keep = fl[~nulls]
    report["flits"] = int(keep.shape[0])
    return RxResult(keep.tobytes(), report)
