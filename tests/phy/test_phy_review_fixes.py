"""Fixes from the PHY/DLL review, each against the section of UB 2.0 it implements."""
from __future__ import annotations

import numpy as np
import pytest

from ubpkt.link import control as C
from ubpkt.phy._nullblock import NULL_BLOCK, NULL_BLOCK_NONCRC, is_null_block_many, null_block
from ubpkt.phy.amctl import AMCTL_LEN, build_amctl
from ubpkt.phy.pcs import TxConfig, flit_fec_ok, rx, tx
from ubpkt.phy.profile import PhyProfile
from ubpkt.phy.symbols import bytes_to_ui

NOPRE = PhyProfile(precode=False)


def _flits(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, n * 20, dtype=np.uint8).tobytes()


# -- §4.3.3.2 / §4.3.2.3: the Null Block in non-CRC mode ---------------------------------------

def test_noncrc_null_block_is_the_end_byte_form():
    nb = null_block(crc_mode=False)
    assert nb[:4] == b"\x02\x00\x00\x00" and nb[4:19] == bytes(15) and nb[19] == 0
    assert null_block(error_flag=True, crc_mode=False)[19] == 0x40  # END.ERROR_FLAG (Table 4-4)
    # the data link builds the same flit for its own idle fill
    assert nb == C.null(crc_mode=False) and NULL_BLOCK == C.null(crc_mode=True)
    both = np.frombuffer(NULL_BLOCK + NULL_BLOCK_NONCRC, np.uint8).reshape(2, 20)
    assert is_null_block_many(both, crc_mode=True).tolist() == [True, False]
    assert is_null_block_many(both, crc_mode=False).tolist() == [False, True]
    # a flit that failed FEC decoding is never dropped as a Null Block in non-CRC mode
    assert is_null_block_many(both, False, np.array([True, False])).tolist() == [False, False]


@pytest.mark.parametrize("lanes,il", [(4, 1), (2, 2), (8, 1)])
def test_noncrc_fill_and_drop(lanes, il):
    fl = _flits(13, lanes)
    cfg = TxConfig(lanes, "rs-t4", il, "nrz", crc_mode=False)
    uis, stats = tx(fl, cfg)
    assert stats["null_blocks_added"] > 0
    r = rx(uis, cfg)
    assert r.flits == fl and r.report["null_blocks_dropped"] == stats["null_blocks_added"]
    # read with the wrong mode, the fill is not recognised and reaches the data link
    wrong = rx(uis, TxConfig(lanes, "rs-t4", il, "nrz", crc_mode=True))
    assert wrong.report["null_blocks_dropped"] == 0
    assert wrong.flits == fl + NULL_BLOCK_NONCRC * stats["null_blocks_added"]


def test_noncrc_mode_needs_fec():
    with pytest.raises(ValueError, match="FEC"):
        TxConfig(1, "bypass", crc_mode=False).validate()


def test_flit_fec_ok_per_codeword_group():
    ok = flit_fec_ok([np.array([True, False, True])], 18)
    assert ok.tolist() == [True] * 6 + [False] * 6 + [True] * 6
    # two encoders: 240 bytes = 12 flits share the fate of both codewords of the group
    ok = flit_fec_ok([np.array([True, True]), np.array([True, False])], 24)
    assert ok.tolist() == [True] * 12 + [False] * 12


# -- §3.2.4.2: a lane ID is taken after two consecutive equal LIDs -----------------------------

def _swap_amctl_lid(ui: np.ndarray, k: int, period: int, lane_id: int) -> None:
    """Replace the k-th AMCTL of an NRZ lane (no precoding) by one claiming ``lane_id``."""
    start = k * (AMCTL_LEN + period) * 8
    ui[start:start + AMCTL_LEN * 8] = bytes_to_ui(np.frombuffer(build_amctl(lane_id), np.uint8),
                                                  "nrz")


def test_lane_id_needs_two_consecutive_equal_lids():
    period = 64
    cfg = TxConfig(4, "rs-t4", 1, "nrz", period)
    uis, _ = tx(_flits(60), cfg, NOPRE)
    assert rx(uis, cfg, NOPRE).report["lane_ids"] == [0, 1, 2, 3]
    # lane 2's LIDs alternate 3, 2, 3, 2 ...: no two consecutive AMCTLs agree -> no lane ID
    # (the old reader took the first LID seen)
    bad = [u.copy() for u in uis]
    nam = (bad[2].size // 8) // (AMCTL_LEN + period) + 1
    for k in range(0, nam, 2):
        _swap_amctl_lid(bad[2], k, period, 3)
    r = rx(bad, cfg, NOPRE)
    assert r.report["lane_ids"][2] is None and r.report["lane_ids_unconfirmed"] == [2]
    assert "error" in r.report and r.flits == b""
    # one stray LID at the start is outvoted by the next two
    ok = [u.copy() for u in uis]
    _swap_amctl_lid(ok[2], 1, period, 3)
    r = rx(ok, cfg, NOPRE)
    assert r.report["lane_ids"] == [0, 1, 2, 3]


def test_single_amctl_capture_is_a_named_choice():
    cfg = TxConfig(2, "rs-t4", 1, "nrz")  # period0 = 6656: 12 flits carry one AMCTL per lane
    uis, _ = tx(_flits(12), cfg)
    r = rx(uis, cfg)
    assert r.report["lane_ids"] == [0, 1] and r.report["lane_ids_single_amctl"] == [0, 1]
    strict = PhyProfile(lid_single_amctl_capture=False)
    r = rx(uis, cfg, strict)
    assert r.report["lane_ids"] == [None, None] and r.flits == b""


# -- the LMSM (§3.4.3) ---------------------------------------------------------------------------

from ubpkt.engine import Engine, StateChanged  # noqa: E402
from ubpkt.phy.lmsm import (TRANSITIONS, LinkSim, LmsmState, Lmsm, PortConfig,  # noqa: E402
                            rate_bitmap)
from ubpkt.phy.lmsm import engine as lmsm_engine  # noqa: E402
from ubpkt.phy.ltb import DLTB, ltb_crc16  # noqa: E402


def _labels(port):
    return [e["state"] for e in port.trace]


def _assert_trace_legal(port):
    by = {s.value: s for s in LmsmState}
    seq = [by[x] for x in _labels(port)]
    for a, b in zip(seq, seq[1:]):
        assert a is b or TRANSITIONS.allowed(a, b), (a, b)


def test_transition_table_covers_every_state():
    assert TRANSITIONS.reachable(LmsmState.Link_Idle) == set(LmsmState)
    # Change_Speed leaves to Retrain.Active only (or Link_Idle on its timeout), §3.4.3.9
    assert TRANSITIONS.table[LmsmState.Change_Speed_Idle] == {LmsmState.Retrain_Active,
                                                               LmsmState.Link_Idle}
    assert isinstance(Lmsm(PortConfig(lanes=1)), Engine)


def test_change_speed_exits_to_retrain_then_equalization_and_eq_initial():
    """§3.4.3.9: after the rate change the next state is Retrain.Active; equalization is entered
    from Retrain.Active (§3.4.3.8).  Full_EQ: Retrain.Confirm sends Retrain.EQ_Initial RLTBs,
    which the peer accepts for Change_Speed after sending 128 RLTBs with Change_Speed."""
    sim = LinkSim(PortConfig(lanes=2, max_rate=4, eq_mode=0),
                  PortConfig(lanes=2, max_rate=4, eq_mode=0))
    sent = []
    orig = sim.a._ltb_for

    def spy(i):
        t = orig(i)
        if i == 0 and sim.a.state == "Retrain" and sim.a.sub == "Confirm":
            sent.append((sim.a.tick, t.type, t.change_speed))
        return t
    sim.a._ltb_for = spy
    rep = sim.run()
    assert rep["link_up"] and rep["rate"] == 4
    for port in (sim.a, sim.b):
        s = _labels(port)
        _assert_trace_legal(port)
        for k, x in enumerate(s):
            if x == "Change_Speed.Idle":
                assert s[k + 1] == "Retrain.Active"
        assert "Equalization.Coarsetune_Active" in s or "Equalization.Coarsetune_Confirm" in s
    assert {t for _, t, cs in sent if cs} == {0xC3}  # EQ_Initial before each rate change
    # the first Confirm period before Change_Speed: at least 128 RLTBs with Change_Speed = 1
    first_cs = next(e["tick"] for e in sim.a.trace if e["state"] == "Change_Speed.EEI")
    assert sum(1 for tick, _, cs in sent if cs and tick < first_cs) >= 128
    ev = [e for e in sim.a.pop_events() if isinstance(e, StateChanged)]
    assert ev and all(TRANSITIONS.allowed(LmsmState[e.old], LmsmState[e.new]) for e in ev)


def test_discovery_confirm_checks_port_type(monkeypatch):
    """§3.4.3.4 Discovery.Confirm: with port type negotiation active, DLTBs with the same
    Port_Type as ours do not lead to Config."""
    sim = LinkSim(PortConfig(lanes=2, timeout_ticks=2500), PortConfig(lanes=2, timeout_ticks=2500))
    orig = sim.b._ltb_for

    def same_type(i):
        t = orig(i)
        if isinstance(t, DLTB) and t.type == 0xA1:
            t.port_type = int(bool(sim.a.primary))  # claim A's own port type
        return t
    sim.b._ltb_for = same_type
    sim._rx_a = [None] * 2
    sim._rx_b = [None] * 2
    sim.a.start()
    sim.b.start()
    sim.run_until(lambda: False, 6000)
    s = _labels(sim.a)
    assert "Discovery.Confirm" in s and "Config.Active" not in s
    assert s[s.index("Discovery.Confirm") + 1] == "Link_Idle"  # the 48 ms timeout


def test_probe_confirm_redetects_partial_termination():
    """§3.4.3.2: termination on some lanes only -> wait, detect again; the same result goes to
    Discovery with the width it allows, a different one back to Probe.Wait."""
    e = Lmsm(PortConfig(lanes=8))
    e.start()
    part = [True, True, True, False, True, True, True, True]
    ticks = 0
    while e.state != "Discovery" and ticks < 40:
        e.step([None] * 8, termination=part)
        ticks += 1
    assert e.state == "Discovery" and e.tx_m == 2
    assert [x["event"] for x in e.events] == ["probe_partial_termination"]
    confirm_ticks = [x["tick"] for x in e.trace if x["state"] in ("Probe.Confirm",
                                                                   "Discovery.Active")]
    assert confirm_ticks[1] - confirm_ticks[0] > e.profile.probe_redetect_blocks
    # a different second result: back to Probe.Wait
    e = Lmsm(PortConfig(lanes=4))
    e.start()
    for k in range(12):
        e.step([None] * 4, termination=[True, True, False, False] if k < 4 else
               [True, False, False, False])
    assert "Probe.Wait" in _labels(e)[2:] and "probe_redetect_mismatch" in \
        [x["event"] for x in e.events]


def test_advertised_rates_stay_in_one_phy_mode():
    """§3.1.2 / Table 3-12: Mode-2 DR0/2/4/8, Mode-1 DR0 and the custom DR3/5/7, never mixed."""
    assert rate_bitmap(8) == 0b1_0001_0101 and rate_bitmap(4) == 0b10101
    assert rate_bitmap(7, phy_mode=1) == 0b1010_1001 and rate_bitmap(8, 1) == 0b1010_1001
    a = Lmsm(PortConfig(lanes=1, max_rate=8))
    a.state, a.sub = "Discovery", "Active"
    assert a._ltb_for(0).data_rates == rate_bitmap(8)
    rep = LinkSim(PortConfig(lanes=2, max_rate=7, phy_mode=1),
                  PortConfig(lanes=2, max_rate=8, phy_mode=1)).run()
    assert rep["link_up"] and rep["rate"] == 7
    with pytest.raises(ValueError):
        PortConfig(phy_mode=3)


def test_reserved_dltb_code_is_reported_and_training_goes_on(monkeypatch):
    """Table 3-12: a reserved RX_Lane0_ID code in otherwise good DLTBs is reported as an event
    and the link still trains (it used to make every DLTB unusable)."""
    real = lmsm_engine.encode_ltb

    def reserved_lane0(ltb, profile=lmsm_engine.DEFAULT_PROFILE):
        s = bytearray(real(ltb, profile))
        if isinstance(ltb, DLTB):
            s[11] = (s[11] & ~0x7) | 0b010  # reserved RX_Lane0_ID code
            c = ltb_crc16(bytes(s[:12]), profile)
            s[12], s[13] = c & 0xFF, c >> 8
        return bytes(s)
    monkeypatch.setattr(lmsm_engine, "encode_ltb", reserved_lane0)
    rep = LinkSim(PortConfig(lanes=2), PortConfig(lanes=2)).run()
    assert rep["link_up"]
    bad = [e for e in rep["events"] if e["event"] == "ltb_reserved_code"]
    assert bad and all(e["fields"] == ["RX_Lane0_ID"] for e in bad)
