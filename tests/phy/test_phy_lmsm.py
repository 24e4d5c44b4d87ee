"""LMSM: two engines brought up against each other over the simulated channel."""
from __future__ import annotations

import pytest

from ubpkt.phy.lanes import quick_degrade_width
from ubpkt.phy.lmsm import LinkSim, Lmsm, PortConfig, Unit, eq_mode_result

BRINGUP = ["Link_Idle", "Probe.Wait", "Probe.Confirm", "Discovery.Active", "Discovery.Confirm",
           "Config.Active", "Config.Check", "Config.Confirm", "Send_NullBlock", "Link_Active"]


def _states(rep, port="A"):
    return [e["state"] for e in rep["trace"] if e["port"] == port]


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_bring_up_every_width(n):
    rep = LinkSim(PortConfig(lanes=n), PortConfig(lanes=n)).run()
    assert rep["final_state"] == "Link_Active" and rep["link_up"]
    assert (rep["tx_width"], rep["rx_width"]) == (n, n)
    assert rep["fec_mode"] == rep["peer_fec_mode"] == "rs-t4"
    assert _states(rep) == BRINGUP and _states(rep, "B") == BRINGUP
    assert rep["null_blocks_received"]["A"] >= 8 and rep["null_blocks_received"]["B"] >= 8
    assert rep["primary"] in ("A", "B")


def test_width_and_fec_negotiation():
    a = PortConfig(lanes=8, fec="rs-t2", interleave=True)
    b = PortConfig(lanes=4, fec="rs-t4", fec_support=("rs-t4",), interleave=True)
    rep = LinkSim(a, b, seed=3).run()
    assert rep["link_up"] and rep["tx_width"] == 4 and rep["rx_width"] == 4
    # the primary picks a mode both support: rs-t2 is not supported by B
    assert rep["fec_mode"] == rep["peer_fec_mode"] == "rs-t4"
    assert rep["fec_interleave"] is True
    rep = LinkSim(PortConfig(lanes=2, fec="bypass", primary=True),
                  PortConfig(lanes=2, primary=False)).run()
    assert rep["fec_mode"] == rep["peer_fec_mode"] == "bypass" and rep["primary"] == "A"


@pytest.mark.parametrize("lane,width", [(5, 4), (3, 2), (7, 4), (1, 1)])
def test_quick_width_degradation(lane, width):
    rep = LinkSim(PortConfig(lanes=8), PortConfig(lanes=8)).run(fail_lane=lane)
    assert rep["final_state"] == "Link_Active"
    assert (rep["tx_width"], rep["rx_width"]) == (width, width)
    assert (rep["peer_tx_width"], rep["peer_rx_width"]) == (width, width)
    assert rep["first_link_active"]["tx_width"] == 8
    ev = [e["event"] for e in rep["events"]]
    assert "request_remote_tx_width" in ev and "tx_width_switch" in ev
    # no retrain: quick degradation stays in Link_Active
    assert _states(rep)[-1] == "Link_Active" and "Retrain.Active" not in _states(rep)


def test_lane0_failure_retrains_with_reversal():
    rep = LinkSim(PortConfig(lanes=8), PortConfig(lanes=8)).run(fail_lane=0)
    assert rep["final_state"] == "Link_Active"
    assert rep["tx_width"] == rep["rx_width"] == 4
    assert "Retrain.Active" in _states(rep)


def test_quick_degrade_rule():
    assert quick_degrade_width(8, {5}) == 4
    assert quick_degrade_width(8, {3}) == 2
    assert quick_degrade_width(8, {2, 6}) == 2
    assert quick_degrade_width(4, {0}) == 0


def test_lane_reversal_and_polarity_detected():
    rep = LinkSim(PortConfig(lanes=4), PortConfig(lanes=4), reverse=True, invert={1, 2}).run()
    assert rep["link_up"] and rep["tx_width"] == 4
    inv = {(e["port"], e["rx_lane"]) for e in rep["events"] if e["event"] == "polarity_inverted"}
    # TX lanes 1 and 2 arrive crossed on RX lanes 2 and 1 of the other port
    assert inv == {("A", 1), ("A", 2), ("B", 1), ("B", 2)}


def test_dynamic_fec_close_open():
    rep = LinkSim(PortConfig(lanes=2), PortConfig(lanes=2)).run(fec_toggle=True)
    ev = [(e["port"], e["event"]) for e in rep["events"]]
    assert ("A", "tx_fec_close") in ev and ("B", "rx_fec_close") in ev
    assert ("A", "tx_fec_open") in ev and ("B", "rx_fec_open") in ev
    assert ev.index(("B", "rx_fec_close")) < ev.index(("B", "rx_fec_open"))
    assert rep["fec_active"] and rep["final_state"] == "Link_Active"


def test_rate_change_with_equalization():
    rep = LinkSim(PortConfig(lanes=4, max_rate=4, eq_mode=1),
                  PortConfig(lanes=4, max_rate=8, eq_mode=1)).run()
    assert rep["link_up"] and rep["rate"] == 4  # common maximum: DR4
    assert rep["eq_mode"] == "only_highest_rate_eq"
    s = _states(rep)
    assert "Change_Speed.EEI" in s and "Equalization.Passive" in s and "Equalization.Active" in s
    assert s[-3:] == ["Retrain.Confirm", "Send_NullBlock", "Link_Active"]
    assert {e["rate"] for e in rep["events"] if e["event"] == "eq_complete"} == {4}
    # Table 3-21: Only_Highest (01) against Full_EQ (00) gives Full_EQ: every rate, level by level
    rep = LinkSim(PortConfig(lanes=4, max_rate=4, eq_mode=1),
                  PortConfig(lanes=4, max_rate=8, eq_mode=0)).run()
    assert rep["eq_mode"] == "full_eq" and rep["rate"] == 4
    # level by level over the PHY Mode-2 rates only (DR3 is a Mode-1 custom rate, §3.1.2)
    assert [e["rate"] for e in rep["events"] if e["event"] == "rate_change" and
            e["port"] == "A"] == [2, 4]
    assert {e["rate"] for e in rep["events"] if e["event"] == "eq_complete"} == {2, 4}


def test_skip_eq_goes_straight_to_top_rate():
    rep = LinkSim(PortConfig(lanes=2, max_rate=8), PortConfig(lanes=2, max_rate=8)).run()
    assert rep["rate"] == 8 and "Equalization.Active" not in _states(rep)
    assert [e["rate"] for e in rep["events"] if e["event"] == "rate_change" and e["port"] == "A"] \
        == [8]


def test_eq_mode_table_3_21():
    assert eq_mode_result(0, 2) == 0 and eq_mode_result(1, 2) == 1 and eq_mode_result(2, 1) == 1
    assert eq_mode_result(2, 2) == 2 and eq_mode_result(3, 1) == 0 and eq_mode_result(1, 3) == 0


def test_engine_is_sans_io():
    e = Lmsm(PortConfig(lanes=2))
    assert e.step([None, None]) == [None, None]  # not started: electrical idle
    e.start()
    out = []
    for _ in range(8):
        out = e.step([None, None], termination=[True, True])
    assert e.state == "Discovery"
    assert all(isinstance(u, Unit) for u in out)


def test_eeib_sequence_after_rate_change():
    sim = LinkSim(PortConfig(lanes=2, max_rate=8), PortConfig(lanes=2, max_rate=8))
    sent = []
    wire = sim._wire

    def spy(units):
        sent.extend(u for u in units if u is not None and u.kind == "eeib")
        return wire(units)
    sim._wire = spy
    rep = sim.run()
    assert rep["rate"] == 8
    # 106.25 Gbit/s: 8 EEIBs (Table 3-19) per lane, both ports, x2
    assert len(sent) == 8 * 2 * 2
    assert {u.sym for u in sent} == {bytes(16), b"\xff" * 16}


def test_retrain_request_and_edf_scrambler_reset():
    """Retrain Link: AMCTL with EDF, both ports reload their seeds (§3.2.2.4) and must still read
    each other's RLTBs, then come back through Retrain.Confirm and Send_NullBlock."""
    sim = LinkSim(PortConfig(lanes=4), PortConfig(lanes=4))
    assert sim.run()["link_up"]
    sim.a.request_retrain()
    assert sim.run_until(lambda: sim.a.trace[-1]["state"] == "Link_Active"
                         and sim.b.trace[-1]["state"] == "Link_Active"
                         and len(sim.a.trace) > len(BRINGUP), 20000)
    tail = ["Link_Active", "Retrain.Active", "Retrain.Confirm", "Send_NullBlock", "Link_Active"]
    assert [e["state"] for e in sim.a.trace][-5:] == tail
    assert [e["state"] for e in sim.b.trace][-5:] == tail
    assert any(e["event"] == "rx_edf" for e in sim.b.events)


def test_optical_link_skips_probe():
    rep = LinkSim(PortConfig(lanes=4, optical=True), PortConfig(lanes=4, optical=True)).run()
    assert _states(rep)[:3] == ["Link_Idle", "RXEQ_Optimize", "Discovery.Active"]
    assert rep["link_up"] and rep["eq_mode"] == "skip_eq" and rep["rate"] == 0
