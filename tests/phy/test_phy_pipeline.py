"""TX -> RX pipeline properties: identity, counted corrections, lock, skew, reversal, polarity."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from ubpkt.phy.amctl import AMCTL_LEN, AmctlLocker, build_amctl
from ubpkt.phy.fuzz import error_positions, fuzz_flits, fuzz_lanes
from ubpkt.phy.pcs import TxConfig, rx, tx
from ubpkt.phy.profile import DEFAULT_PROFILE, PhyProfile
from ubpkt.phy.scrambler import keystream, prbs_bits
from ubpkt.phy.symbols import UI_PER_SYMBOL, bytes_to_ui, deprecode, precode, ui_to_bytes
from ubpkt.phy._nullblock import NULL_BLOCK

NOPRE = PhyProfile(precode=False)


def _flits(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, n * 20, dtype=np.uint8).tobytes()


@settings(max_examples=40, deadline=None)
@given(lanes=st.sampled_from([1, 2, 4, 8]), fec=st.sampled_from(["bypass", "rs-t2", "rs-t4"]),
       il=st.sampled_from([1, 2]), mod=st.sampled_from(["nrz", "pam4"]),
       nflits=st.integers(0, 40), period=st.sampled_from([64, 640, None]),
       seed=st.integers(0, 1000))
def test_tx_rx_identity(lanes, fec, il, mod, nflits, period, seed):
    fl = _flits(nflits, seed)
    cfg = TxConfig(lanes, fec, il, mod, period)
    uis, stats = tx(fl, cfg)
    assert len(uis) == lanes and all(u.dtype == np.uint8 for u in uis)
    assert max(int(u.max()) for u in uis) <= (1 if mod == "nrz" else 3)
    r = rx(uis, cfg)
    assert r.flits == fl
    assert r.report["lanes_locked"] and r.report["uncorrectable_codewords"] == 0
    assert r.report["corrected_symbols"] == 0
    assert r.report["null_blocks_dropped"] == stats["null_blocks_added"]


def test_stream_starts_with_amctl_sdf_and_period():
    cfg = TxConfig(2, "rs-t4", 1, "nrz", 64)
    uis, _ = tx(_flits(30), cfg)
    first = ui_to_bytes(uis[1][:AMCTL_LEN * 8], "nrz").tobytes()
    assert first == build_amctl(1, "link_width_switch", "x2")
    nxt = (AMCTL_LEN + 64) * 8
    assert ui_to_bytes(uis[1][nxt:nxt + AMCTL_LEN * 8], "nrz").tobytes() == build_amctl(1)


def test_partial_codeword_filled_with_null_blocks():
    cfg = TxConfig(1, "rs-t4", 2, "nrz")
    uis, stats = tx(_flits(13), cfg)
    assert stats["null_blocks_added"] == 11 and stats["codewords"] == 4
    r = rx(uis, cfg)
    assert r.report["flits"] == 13 and r.report["null_blocks_dropped"] == 11


def test_null_blocks_in_input_are_dropped_like_idle():
    fl = _flits(5) + NULL_BLOCK + _flits(6, 1)
    cfg = TxConfig(4, "bypass", 1, "nrz")
    r = rx(tx(fl, cfg)[0], cfg)
    assert r.flits == _flits(5) + _flits(6, 1)


@pytest.mark.parametrize("fec,t", [("rs-t4", 4), ("rs-t2", 2)])
@pytest.mark.parametrize("lanes,il,mod", [(1, 1, "nrz"), (4, 2, "pam4"), (8, 1, "nrz"),
                                          (2, 2, "nrz")])
def test_errors_within_bound_corrected_and_counted(fec, t, lanes, il, mod):
    """Without precoding one UI error is one symbol error: put exactly t errors in selected
    codewords (spread over lanes) and expect them all fixed and counted."""
    fl = _flits(6 * il * 12, 3)
    cfg = TxConfig(lanes, fec, il, mod, 640)
    uis, _ = tx(fl, cfg, NOPRE)
    ups = UI_PER_SYMBOL[mod]
    per_lane = 128 * il // lanes  # symbols per lane per codeword group
    rng = np.random.default_rng(1)
    injected = 0
    for group in (1, 5, 9):
        # t errors in this codeword group, on lane 0 (every symbol of a group on one lane
        # belongs to one of the group's il codewords -> at most t per codeword)
        syms = rng.choice(per_lane // il, size=t, replace=False) * il  # same codeword (A)
        for s in syms:
            sym_index = group * per_lane + int(s)
            seg = sym_index // 640
            ui = (AMCTL_LEN * (seg + 1) + sym_index) * ups + int(rng.integers(0, ups))
            uis[0][ui] = (uis[0][ui] ^ 1) if mod == "nrz" else (uis[0][ui] ^ 1) & 3
            injected += 1
    r = rx(uis, cfg, NOPRE)
    assert r.flits == fl
    assert r.report["corrected_symbols"] == injected
    assert r.report["corrected_codewords"] == 3 and r.report["uncorrectable_codewords"] == 0


def test_t2_reports_3_errors_in_a_codeword():
    fl = _flits(12, 4)
    cfg = TxConfig(1, "rs-t2", 1, "nrz", 640)
    uis, _ = tx(fl, cfg, NOPRE)
    for s in (3, 40, 90):  # three symbols of codeword 0
        uis[0][(AMCTL_LEN + s) * 8 + 2] ^= 1
    r = rx(uis, cfg, NOPRE)
    assert r.report["uncorrectable_codewords"] == 1 and r.report["corrected_symbols"] == 0
    assert r.report["codewords"] == 2


def test_random_errors_with_precoding_are_corrected():
    fl = _flits(600, 5)
    cfg = TxConfig(4, "rs-t4", 1, "pam4", 640)
    uis, _ = tx(fl, cfg)
    bad, changes = fuzz_lanes(uis, "pam4", 2e-4, 1, seed=11)
    assert changes
    r = rx(bad, cfg)
    assert r.flits == fl and r.report["corrected_symbols"] >= len(changes) // 2 > 0


def test_skew_reversal_and_polarity_are_undone():
    fl = _flits(400, 6)
    for mod in ("nrz", "pam4"):
        cfg = TxConfig(8, "rs-t4", 2, mod, 640)
        uis, _ = tx(fl, cfg)
        rng = np.random.default_rng(2)
        maxv = 1 if mod == "nrz" else 3
        skewed = []
        for k, u in enumerate(uis[::-1]):  # lane reversal: physical k carries logical 7-k
            if k in (1, 4):
                u = maxv - u  # polarity swapped
            pre = rng.integers(0, maxv + 1, int(rng.integers(0, 300)), dtype=np.uint8)
            skewed.append(np.concatenate([pre, u]))
        r = rx(skewed, cfg)
        assert r.flits == fl
        assert r.report["lane_reversed"] and r.report["lane_ids"] == list(range(8))[::-1]
        inv = [x["polarity_inverted"] for x in r.report["lane_lock"]]
        assert inv == [k in (1, 4) for k in range(8)]
        assert r.report["skew_ui"] > 0


def test_lock_survives_two_missed_amctls_and_slips_after_three():
    fl = _flits(300, 7)
    cfg = TxConfig(1, "rs-t4", 1, "nrz", 128)
    uis, _ = tx(fl, cfg)
    u = uis[0].copy()
    step = (AMCTL_LEN + 128) * 8

    def kill(k):
        s = k * step + 12 * 8
        u[s:s + 32] ^= 1  # END destroyed

    kill(3)
    kill(4)
    locker = AmctlLocker("nrz", 128)
    res = locker.run(u)
    assert res.locked and res.lock_lost == 0
    assert sum(h.amctl is None for h in res.hits) == 2
    r = rx([u], cfg)
    assert r.flits == fl and r.report["amctl_missed"] == 2
    for k in (6, 7, 8):
        kill(k)
    res = locker.run(u)
    assert res.lock_lost == 1 and res.slips >= 1 and res.locked
    states = [s for _, s in res.trace]
    assert states[:3] == ["Lock_Init", "AMCTL_Slip", "AMCTL_Align"]
    assert "AMCTL_Lock_Count" in states and states.count("AMCTL_Slip") == 2


def test_lock_found_after_garbage_prefix():
    cfg = TxConfig(1, "bypass", 1, "nrz", 64)
    uis, _ = tx(_flits(40), cfg)
    pre = np.random.default_rng(0).integers(0, 2, 777, dtype=np.uint8)
    res = AmctlLocker("nrz", 64).run(np.concatenate([pre, uis[0]]))
    assert res.hits[0].start == 777 and res.hits[0].amctl.is_sdf


# --- building blocks -----------------------------------------------------------------------------
def test_prbs23_recurrence_and_period():
    b = prbs_bits(DEFAULT_PROFILE.seed_for_lane(3), 5000)
    assert all(b[n] == b[n - 23] ^ b[n - 18] for n in range(23, 5000))
    assert keystream(0x7FFFFF, 4).tolist() == np.packbits(
        prbs_bits(0x7FFFFF, 32).reshape(4, 8), axis=1, bitorder="little").reshape(-1).tolist()
    seeds = DEFAULT_PROFILE.scrambler_seeds
    assert len(set(seeds)) == 9 and all(0 < s < (1 << 23) for s in seeds)


def test_symbol_order_and_precoders():
    assert bytes_to_ui(np.array([0x01], np.uint8), "nrz").tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    # 0b10_11_01_00 -> raw pairs (LSB pair first) 00,01,11,10 -> Gray levels 0,1,2,3
    assert bytes_to_ui(np.array([0b10110100], np.uint8), "pam4").tolist() == [0, 1, 2, 3]
    p = np.array([1, 0, 1, 1, 0], np.uint8)
    assert precode(p, "nrz").tolist() == [0, 0, 1, 0, 0]  # T_n = P_n ^ T_n-1, T_-1 = 1
    q = np.array([3, 1, 2, 0, 3], np.uint8)
    t = [3, (1 - 3) % 4]
    for v in q[2:]:
        t.append((int(v) - t[-1]) % 4)
    assert precode(q, "pam4").tolist() == t
    for mod, hi in (("nrz", 2), ("pam4", 4)):
        x = np.random.default_rng(0).integers(0, hi, (3, 999), dtype=np.uint8)
        assert (deprecode(precode(x, mod), mod) == x).all()


def test_fuzz_logs_every_change():
    data = _flits(50)
    new, ch = fuzz_flits(data, 1e-3, burst=3, seed=1)
    diff = np.unpackbits(np.frombuffer(bytes(a ^ b for a, b in zip(data, new)), np.uint8))
    assert diff.sum() == len(ch) > 0
    for c in ch:
        byte = c["flit"] * 20 + c["byte"]
        assert (new[byte] >> c["bit"]) & 1 == c["new"] and (data[byte] >> c["bit"]) & 1 == c["old"]
    lanes = [np.zeros(1000, np.uint8), np.full(1000, 3, np.uint8)]
    out, ch2 = fuzz_lanes(lanes, "pam4", 0.01, seed=2)
    assert all(abs(c["new"] - c["old"]) == 1 for c in ch2)
    assert sum(int((o != l).sum()) for o, l in zip(out, lanes)) == len(ch2)
    pos = error_positions(100, 0.05, 4, np.random.default_rng(0))
    assert (np.diff(pos) > 0).all() and pos.max() < 100


@settings(max_examples=25, deadline=None)
@given(lanes=st.sampled_from([1, 2, 4, 8]), il=st.sampled_from([1, 2]),
       mod=st.sampled_from(["nrz", "pam4"]), t=st.sampled_from([2, 4]),
       data=st.data())
def test_random_errors_within_bound_property(lanes, il, mod, t, data):
    """Random symbol errors, at most t per codeword: all corrected and exactly counted."""
    fl = _flits(6 * il * 4, data.draw(st.integers(0, 99)))
    cfg = TxConfig(lanes, "rs-t4" if t == 4 else "rs-t2", il, mod, 640)
    uis, _ = tx(fl, cfg, NOPRE)
    ups = UI_PER_SYMBOL[mod]
    from ubpkt.phy.lanes import distribute_codewords
    # map every codeword symbol to (lane, symbol index) through the distribution itself
    ids = [np.arange(c * 4 * 128, (c * 4 + 4) * 128).reshape(4, 128) for c in range(il)]
    where = distribute_codewords(ids, lanes)  # value = codec*512 + cw*128 + t
    total = 0
    for cw in range(4):
        for codec in range(il):
            n = data.draw(st.integers(0, t))
            cols = data.draw(st.lists(st.integers(0, 127), min_size=n, max_size=n, unique=True))
            for col in cols:
                lane, sym = map(int, np.argwhere(where == codec * 512 + cw * 128 + col)[0])
                seg = sym // 640  # AMCTLs every 640 symbols
                ui = (AMCTL_LEN * (seg + 1) + sym) * ups + data.draw(st.integers(0, ups - 1))
                uis[lane][ui] = (uis[lane][ui] ^ 1) & (1 if mod == "nrz" else 3)
                total += 1
    r = rx(uis, cfg, NOPRE)
    assert r.flits == fl
    assert r.report["corrected_symbols"] == total
    assert r.report["uncorrectable_codewords"] == 0


def test_locker_follows_insert_period_control():
    """AMCTL Insert Period Control switches the expected spacing to Period1 and back (§3.2.4.2)."""
    rng = np.random.default_rng(9)
    p0, p1 = 64, DEFAULT_PROFILE.period1
    parts = [build_amctl(0, "link_width_switch", "x1"), rng.bytes(p0),
             build_amctl(0, "insert_period", "period1"), rng.bytes(p1),
             build_amctl(0), rng.bytes(p1),
             build_amctl(0, "insert_period", "period0"), rng.bytes(p0),
             build_amctl(0), rng.bytes(p0), build_amctl(0)]
    lane = bytes_to_ui(np.frombuffer(b"".join(parts), np.uint8), "nrz")
    res = AmctlLocker("nrz", p0).run(lane)
    starts = [h.start // 8 for h in res.hits]
    expect, pos = [], 0
    for part in parts:
        if len(part) == AMCTL_LEN and part[12:16] == build_amctl(0)[12:16]:
            expect.append(pos)
        pos += len(part)
    assert starts == expect and all(h.amctl is not None for h in res.hits)
    assert res.locked and res.slips == 0
    assert [h.amctl.ctrl_detail for h in res.hits][1:4] == ["period1", "no_command", "period0"]
