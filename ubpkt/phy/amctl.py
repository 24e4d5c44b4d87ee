"""AMCTL: the 40-symbol alignment marker with control fields, its insertion and the RX lock FSM.

UB 2.0 §3.2.4.2 (structure, Tables 3-7..3-10), §3.2.4.3 (TX rules), §3.2.4.4 (RX rules and the
Lock_Init .. AMCTL_Lock_Count locking process), §3.2.5.2 (symbol order).  Every 16-bit group is an
eBCH-16 codeword after the DC-balance permutation; profile: Byte_A first, group [63:48] first.
AMCTLs are neither scrambled nor precoded; in PAM4 they are Gray-mapped (Table 3-6).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .ebch import CODEWORDS, decode_table, permute_dc
from .profile import DEFAULT_PROFILE, PhyProfile
from .symbols import UI_PER_SYMBOL, bytes_to_ui, invert_polarity, ui_to_bytes

__all__ = [
    "AMCTL_LEN", "LID_CW", "CTRL_TYPES", "CTRL_DETAILS", "Amctl", "build_amctl", "parse_amctl",
    "AmctlLocker", "LockResult", "AmctlHit", "LOCK_STATES", "WIDTH_DETAIL",
]

AMCTL_LEN = 40
BODY = (21, 28, 21, 28, 21, 28)
END = (22, 22)
LID_CW = (3, 8, 9, 10, 21, 22, 23, 28)  # X codeword of lanes 0..7 (Table 3-8)
LID_NULL = (21, 3)

# Table 3-9 (upper, lower) codeword pairs
CTRL_TYPES: dict[str, tuple[int, int]] = {
    "fec_control": (3, 8),
    "link_width_switch": (8, 9),
    "ei_indicator": (9, 10),
    "insert_period": (10, 21),
    "remote_tx_width": (21, 22),
    "reserved_22_23": (22, 23),
    "reserved_23_28": (23, 28),
    "no_command": (28, 3),
}
_TYPE_BY_PAIR = {v: k for k, v in CTRL_TYPES.items()}
_DETAIL_PAIRS = ((3, 9), (8, 10), (9, 21), (10, 22), (21, 23), (22, 28), (23, 3), (28, 8))
WIDTH_DETAIL = {0: (3, 9), 1: (8, 10), 2: (9, 21), 4: (10, 22), 8: (21, 23)}
# Table 3-10 meanings per control type: pair -> name
CTRL_DETAILS: dict[str, dict[tuple[int, int], str]] = {
    "fec_control": {(23, 3): "close_fec", (28, 8): "open_fec"},
    "link_width_switch": {(3, 9): "x0", (8, 10): "x1", (9, 21): "x2", (10, 22): "x4",
                          (21, 23): "x8"},
    "ei_indicator": {(22, 28): "eei"},
    "insert_period": {(3, 9): "period0", (8, 10): "period1"},
    "remote_tx_width": {(8, 10): "x1", (9, 21): "x2", (10, 22): "x4", (21, 23): "x8"},
    "no_command": {(3, 9): "no_command"},
}
_DETAIL_BY_NAME = {t: {n: p for p, n in d.items()} for t, d in CTRL_DETAILS.items()}

_VALUE, _NBITS = decode_table()


@dataclass
class Amctl:
    """A decoded AMCTL (fields None when invalid)."""

    end_ok: bool
    body_ok: bool = False
    body_words_ok: int = 0
    lane_id: int | None = None  # 0..7, or None
    lid_null: bool = False
    lid_valid: bool = False
    ctrl_type: str | None = None
    ctrl_detail: str | None = None
    corrected_bits: int = 0

    @property
    def is_sdf(self) -> bool:
        return (self.ctrl_type == "link_width_switch"
                and self.ctrl_detail in ("x1", "x2", "x4", "x8"))

    @property
    def is_edf(self) -> bool:
        return self.ctrl_type == "link_width_switch" and self.ctrl_detail == "x0"


def _word_bytes(cw_index: int, byte_a_first: bool) -> tuple[int, int]:
    w = permute_dc(CODEWORDS[cw_index])
    a, b = w >> 8, w & 0xFF
    return (a, b) if byte_a_first else (b, a)


@lru_cache(maxsize=256)
def _build_cached(lane_id, ctrl_type, ctrl_detail, byte_a_first) -> bytes:
    if lane_id is None:
        lid = LID_NULL
    else:
        lid = (3, LID_CW[lane_id])
    tpair = CTRL_TYPES[ctrl_type]
    if ctrl_detail is None:
        dpair = (3, 9)
    elif isinstance(ctrl_detail, tuple):
        dpair = ctrl_detail
    else:
        dpair = _DETAIL_BY_NAME[ctrl_type][ctrl_detail]
    words = list(BODY) + list(END) + list(lid) * 2 + list(tpair) * 2 + list(dpair) * 2
    out = bytearray()
    for w in words:
        out.extend(_word_bytes(w, byte_a_first))
    return bytes(out)


def build_amctl(lane_id: int | None, ctrl_type: str = "no_command", ctrl_detail=None,
                profile: PhyProfile = DEFAULT_PROFILE) -> bytes:
    """The 40 AMCTL symbols for a lane (``lane_id`` None = NULL lane)."""
    if ctrl_type == "no_command" and ctrl_detail is None:
        ctrl_detail = "no_command"
    return _build_cached(lane_id, ctrl_type, ctrl_detail, profile.byte_a_first)


def _decode_words(sym: np.ndarray, byte_a_first: bool) -> tuple[np.ndarray, np.ndarray]:
    s = sym.astype(np.int64).reshape(-1, 2)
    hi, lo = (s[:, 0], s[:, 1]) if byte_a_first else (s[:, 1], s[:, 0])
    from .ebch import _UA, _UB  # unpermute tables
    words = (_UA[hi].astype(np.int64) << 8) | _UB[lo]
    return _VALUE[words].astype(np.int64), _NBITS[words].astype(np.int64)


def _half(vals, a, b):
    if vals[a] < 0 or vals[b] < 0:
        return None
    return (int(vals[a]), int(vals[b]))


def parse_amctl(symbols, profile: PhyProfile = DEFAULT_PROFILE) -> Amctl:
    """Decode 40 AMCTL symbols with the §3.2.4.2 validity rules."""
    sym = np.frombuffer(bytes(symbols), dtype=np.uint8) if not isinstance(symbols, np.ndarray) \
        else symbols.astype(np.uint8)
    if sym.size != AMCTL_LEN:
        raise ValueError("an AMCTL has 40 symbols")
    vals, nb = _decode_words(sym, profile.byte_a_first)
    end_ok = vals[6] == 22 and vals[7] == 22
    res = Amctl(end_ok=bool(end_ok))
    res.corrected_bits = int(nb[nb > 0].sum())
    res.body_words_ok = int(sum(1 for i in range(6) if vals[i] == BODY[i]))
    res.body_ok = res.body_words_ok == 6
    if not end_ok:
        return res
    h1, h2 = _half(vals, 8, 9), _half(vals, 10, 11)
    if h1 is not None and h1 == h2:
        if h1 == LID_NULL:
            res.lid_valid, res.lid_null = True, True
        elif h1[0] == 3 and h1[1] in LID_CW:
            res.lid_valid = True
            res.lane_id = LID_CW.index(h1[1])
    # CTRL_TYPE / CTRL_DETAIL: valid if either half decodes; conflicting halves -> ignored
    def pick(i):
        a, b = _half(vals, i, i + 1), _half(vals, i + 2, i + 3)
        if a is not None and b is not None and a != b:
            return None
        return a if a is not None else b
    tp = pick(12)
    dp = pick(16)
    if tp is not None and tp in _TYPE_BY_PAIR:
        res.ctrl_type = _TYPE_BY_PAIR[tp]
        if dp is not None:
            res.ctrl_detail = CTRL_DETAILS.get(res.ctrl_type, {}).get(dp, "reserved")
    return res


LOCK_STATES = ("Lock_Init", "AMCTL_Slip", "AMCTL_Align", "AMCTL_Confirm", "AMCTL_Lock",
               "AMCTL_Lock_Count")


@dataclass
class AmctlHit:
    start: int  # UI index of AMCTL symbol 0
    amctl: Amctl | None  # None: expected but not valid (a miss)


@dataclass
class LockResult:
    hits: list[AmctlHit] = field(default_factory=list)
    trace: list[tuple[int, str]] = field(default_factory=list)  # (UI position, state entered)
    locked: bool = False
    inverted: bool = False
    slips: int = 0
    lock_lost: int = 0
    ui: np.ndarray | None = None  # the lane's UIs with polarity corrected


class AmctlLocker:
    """Per-lane AMCTL lock FSM of §3.2.4.4 run over a lane's unit intervals.

    ``period`` is the number of non-AMCTL symbols between AMCTLs; an AMCTL carrying Insert Period
    Control switches between ``period`` (Period0) and ``profile.period1``.
    """

    def __init__(self, modulation: str, period: int, profile: PhyProfile = DEFAULT_PROFILE,
                 search_symbols: int | None = None):
        self.mod = modulation
        self.ups = UI_PER_SYMBOL[modulation]
        self.period = period
        self.profile = profile
        self.search_symbols = search_symbols
        end = np.frombuffer(build_amctl(0, profile=profile)[12:16], dtype=np.uint8)
        self.end_ui = bytes_to_ui(end, modulation)
        self.end_ui_inv = invert_polarity(self.end_ui, modulation)

    def _amctl_at(self, ui: np.ndarray, pos: int, need_body: bool = False) -> Amctl | None:
        n = AMCTL_LEN * self.ups
        if pos < 0 or pos + n > ui.size:
            return None
        a = parse_amctl(ui_to_bytes(ui[pos:pos + n], self.mod), self.profile)
        if not a.end_ok:
            return None
        # While sliding, BODY backs up END (§3.2.4.4 AMCTL_Slip): most BODY words must decode.
        if need_body and a.body_words_ok < 4:
            return None
        return a

    def _candidates(self, region: np.ndarray, pat: np.ndarray) -> np.ndarray:
        """Offsets in ``region`` where ``pat`` matches with few enough differing UIs."""
        m = region.size - pat.size + 1
        if m <= 0:
            return np.zeros(0, dtype=np.int64)
        dist = np.zeros(m, dtype=np.uint8)
        for k in range(pat.size):  # one vectorised compare per pattern UI
            dist += region[k:k + m] != pat[k]
        return np.nonzero(dist <= self.profile.end_search_max_bit_errors)[0]

    def _search(self, ui: np.ndarray, start: int, inverted_ok: bool):
        """Slide for END from ``start``; returns (amctl_start, amctl, inverted) or None.

        The window grows from a few AMCTL lengths to two AMCTL periods, so a lane that starts on
        its AMCTL (the usual case) costs little."""
        ups = self.ups
        span = self.search_symbols or (2 * (AMCTL_LEN + max(self.period, self.profile.period1)))
        lo = start + 12 * ups
        hi_max = min(ui.size, lo + span * ups + self.end_ui.size)
        width = 256 * ups
        searched = lo
        pats = [(self.end_ui, False)] + ([(self.end_ui_inv, True)] if inverted_ok else [])
        while searched < hi_max:
            hi = min(hi_max, lo + width)
            region = ui[searched:hi]
            best = None
            for pat, inv in pats:
                src = None
                for c in self._candidates(region, pat)[:64]:
                    pos = searched + int(c) - 12 * ups
                    if best is not None and pos >= best[0]:
                        break
                    if src is None:
                        src = invert_polarity(ui, self.mod) if inv else ui
                    a = self._amctl_at(src, pos, need_body=True)
                    if a is not None:
                        best = (pos, a, inv)
                        break
            if best is not None:
                return best
            if hi >= hi_max:
                return None
            searched = hi - self.end_ui.size + 1
            width *= 4
        return None

    def run(self, ui: np.ndarray, allow_inversion: bool = True) -> LockResult:
        res = LockResult()
        ui = np.asarray(ui, dtype=np.uint8)
        ups = self.ups
        alen = AMCTL_LEN * ups
        period = self.period
        res.trace.append((0, "Lock_Init"))
        pos = 0
        while True:
            res.trace.append((pos, "AMCTL_Slip"))
            found = self._search(ui, pos, allow_inversion and not res.inverted)
            if found is None:
                res.ui = ui
                return res
            start, a, inv = found
            if inv:
                ui = invert_polarity(ui, self.mod)
                res.inverted = True
            res.trace.append((start, "AMCTL_Align"))
            hits = [AmctlHit(start, a)]
            period = self._next_period(a, period)
            nxt = start + alen + period * ups
            res.trace.append((nxt, "AMCTL_Confirm"))
            confirmed = 1
            ok = True
            while confirmed < self.profile.lock_confirm_count:
                if nxt + alen > ui.size:
                    break  # stream ended while confirming
                a2 = self._amctl_at(ui, nxt)
                if a2 is None:
                    ok = False
                    break
                hits.append(AmctlHit(nxt, a2))
                period = self._next_period(a2, period)
                nxt = nxt + alen + period * ups
                confirmed += 1
            if not ok:
                res.slips += 1
                pos = start + ups  # slip past this candidate
                continue
            res.hits.extend(hits)
            if confirmed >= self.profile.lock_confirm_count:
                res.trace.append((hits[-1].start, "AMCTL_Lock"))
                res.trace.append((hits[-1].start, "AMCTL_Lock_Count"))
            res.locked = True  # (or the stream ended before a confirmation was due)
            misses = 0
            while nxt + alen <= ui.size:
                a3 = self._amctl_at(ui, nxt)
                res.hits.append(AmctlHit(nxt, a3))
                if a3 is None:
                    misses += 1
                    if misses >= self.profile.lock_loss_count:
                        res.lock_lost += 1
                        res.locked = False
                        break
                else:
                    misses = 0
                    period = self._next_period(a3, period)
                nxt = nxt + alen + period * ups
            else:
                res.ui = ui
                return res
            # lock lost: drop the trailing misses and slip again
            del res.hits[-self.profile.lock_loss_count:]
            res.slips += 1
            pos = res.hits[-1].start + alen if res.hits else 0

    def _next_period(self, a: Amctl, period: int) -> int:
        if a.ctrl_type == "insert_period":
            if a.ctrl_detail == "period1":
                return self.profile.period1
            if a.ctrl_detail == "period0":
                return self.period
        return period
