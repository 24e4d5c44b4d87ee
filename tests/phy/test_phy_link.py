"""The sans-IO PHY link: FEC under a BER, per-flit FEC flags, lane failure and restore in
traffic (UB 2.0 §3.2, §3.4.2.3, §3.4.2.4), mode changes through Retrain (§3.4.2.8), and the
fast data path against the reference pipeline (ubpkt.phy.pcs)."""
from __future__ import annotations

import numpy as np
import pytest

from ubpkt.phy.amctl import AMCTL_LEN
from ubpkt.phy.link import LaneKeystream, PhyDirection, PhyLink, PhyLinkConfig
from ubpkt.phy.lmsm import LinkSim, PortConfig
from ubpkt.phy.pcs import TxConfig, tx
from ubpkt.phy.profile import PhyProfile
from ubpkt.phy.scrambler import keystream
from ubpkt.phy.symbols import ui_to_bytes


def _flits(n, seed=0):
    """Distinct flits (an index in the first 4 bytes) so order and loss are visible."""
    f = np.random.default_rng(seed).integers(0, 256, (n, 20), dtype=np.uint8)
    f[:, :4] = np.arange(n, dtype=">u4").view(np.uint8).reshape(n, 4)
    f[:, 0] |= 0x80  # never the Null Block header 02 00 00 00
    return f.tobytes()


def _run(link: PhyLink, data: bytes, chunk: int = 600, src: str = "A", until=None):
    """Push ``data`` in chunks as a data link would, popping what arrives; returns the flits
    received (bytes) and their FEC flags, in order."""
    d = link.direction(src)
    now = link.time_of(link.tick)
    got, ok = [], []
    for i in range(0, len(data), chunk * 20):
        d.push(data[i:i + chunk * 20], now)
        nd = d.next_deadline()
        now = max(now, nd if nd is not None else now)
        for x in d.pop(now):
            got.append(x.flits)
            ok += x.fec_ok
    while (nd := d.next_deadline()) is not None:
        now = max(now + 1, nd)
        for x in d.pop(now):
            got.append(x.flits)
            ok += x.fec_ok
        if until is not None and now > until:
            break
    return b"".join(got), ok


def _split(b):
    return [b[i:i + 20] for i in range(0, len(b), 20)]


def test_lane_keystream_is_the_scrambler_keystream():
    ks = LaneKeystream(0x5A5A5A)
    ks.CHUNK = 333
    parts = np.concatenate([ks.take(n) for n in (1, 500, 7, 2000, 3)])
    assert (parts == keystream(0x5A5A5A, parts.size, 0)).all()


@pytest.mark.parametrize("lanes,il", [(4, 1), (8, 2), (2, 1)])
def test_data_path_matches_reference_pipeline(lanes, il, monkeypatch):
    """The link's lane symbols (after scrambling, before the wire) are what pcs.tx puts on the
    lanes for the same flits (reference path, AMCTLs stripped, no precoding)."""
    seen = []
    real = PhyDirection._wire

    def spy(self, wire, src, sent, sym_lane):
        seen.append(wire.copy())
        return real(self, wire, src, sent, sym_lane)
    monkeypatch.setattr(PhyDirection, "_wire", spy)
    link = PhyLink(PhyLinkConfig(lanes=lanes, interleave=il))
    assert link.train()
    data = _flits(120)
    out, ok = _run(link, data, chunk=120)
    assert out == data and all(ok)
    prof = PhyProfile(precode=False)
    uis, _ = tx(data, TxConfig(lanes, "rs-t4", il, "nrz", amctl_period=1 << 20), prof)
    for i in range(lanes):
        ref = ui_to_bytes(uis[i], "nrz")[AMCTL_LEN:]
        assert (seen[0][i] == ref).all()


def test_rs_t4_corrects_at_ber_1e4_without_flags():
    link = PhyLink(PhyLinkConfig(lanes=8, fec="rs-t4", ber=1e-4, seed=7))
    assert link.train()
    data = _flits(30000, 1)
    out, ok = _run(link, data)
    r = link.report()
    assert r["corrected_symbols"] > 100 and r["uncorrectable_codewords"] == 0
    assert out == data and all(ok) and len(ok) == 30000


def test_rs_t2_beyond_its_reach_flags_flits():
    link = PhyLink(PhyLinkConfig(lanes=8, fec="rs-t2", ber=3e-4, seed=3))
    assert link.train()
    data = _flits(30000, 2)
    out, ok = _run(link, data)
    r = link.report()
    assert r["uncorrectable_codewords"] > 0 and r["corrected_symbols"] > 0
    assert not all(ok) and r["flits_flagged"] == ok.count(False)
    sent, got = _split(data), _split(out)
    assert len(got) == len(sent)  # nothing dropped: a flagged flit is still delivered
    bad = [i for i, k in enumerate(ok) if not k]
    assert all(got[i] == sent[i] for i, k in enumerate(ok) if k)  # unflagged flits are right
    assert any(got[i] != sent[i] for i in bad)  # flagged ones really were damaged
    # flags come in whole codewords: 6 flits per codeword (one encoder)
    assert len(bad) % 6 == 0


def test_burst_on_one_lane_is_corrected_or_flagged():
    link = PhyLink(PhyLinkConfig(lanes=4, fec="rs-t4", bursts=((2, 30_000, 3),), seed=1))
    assert link.train()
    data = _flits(20000, 3)
    out, ok = _run(link, data)
    r = link.report()
    assert r["directions"]["A->B"]["symbol_errors_injected"] == 3
    assert r["corrected_symbols"] >= 1 and out == data and all(ok)


def _timeline_states(link):
    return [e["state"] for e in link.timeline()]


@pytest.mark.parametrize("lane,width", [(5, 4), (3, 2)])
def test_lane_failure_in_traffic_degrades_without_retrain(lane, width):
    link = PhyLink(PhyLinkConfig(lanes=8, fec="rs-t4", seed=5))
    assert link.train()
    data = _flits(100000, 4)  # about 78 us at x8, 25.78125 Gbit/s per lane
    t_fail = link.time_of(link.tick) + 30_000
    link.fail_lane(lane, t_fail)
    out, ok = _run(link, data)
    r = link.report()
    changes = [(c["direction"], c["from"], c["to"], c["kind"]) for c in r["width_changes"]]
    assert sorted(changes) == [("A->B", 8, width, "decrease"), ("B->A", 8, width, "decrease")]
    assert all(c["at_ns"] > t_fail and c["state"] == "Link_Active" for c in r["width_changes"])
    assert "Retrain.Active" not in _timeline_states(link) and r["retrains"] == 0
    assert r["state"] == {"A": "Link_Active", "B": "Link_Active"}
    assert r["width"] == {"A->B": width, "B->A": width}
    sent, got = _split(data), _split(out)
    assert len(got) == len(sent)  # flits on the dead lane come out flagged, none go missing
    flagged = [i for i, k in enumerate(ok) if not k]
    assert flagged
    # only the flits in flight between the cut and the width switch are hit; after it, the
    # narrower link delivers everything clean.  A codeword full of dead-lane noise can decode
    # to a wrong codeword (RS T=4 mis-correction, ~0.3 % of them): those flits are not flagged
    # and are left to the data link's CRC30, as on a real link
    wrong = [i for i, k in enumerate(ok) if k and got[i] != sent[i]]
    assert all(flagged[0] <= i <= flagged[-1] for i in wrong)
    assert len(wrong) <= 0.01 * len(flagged)
    assert flagged[-1] < len(sent) - 1000


def test_lane0_failure_retrains():
    """§3.4.2.4 rule 1: RX lane 0 broken -> no quick degradation, Retrain."""
    link = PhyLink(PhyLinkConfig(lanes=4, seed=2))
    assert link.train()
    link.fail_lane(0, link.time_of(link.tick) + 1000)
    link.advance(link.time_of(link.tick) + 200_000)
    assert "Retrain.Active" in _timeline_states(link)


def test_restore_lane_goes_through_width_increase():
    link = PhyLink(PhyLinkConfig(lanes=8, fec="rs-t4", seed=6))
    assert link.train()
    t0 = link.time_of(link.tick)
    link.fail_lane(5, t0 + 10_000)
    link.restore_lane(5, t0 + 60_000)
    data = _flits(80000, 5)
    out, ok = _run(link, data)
    r = link.report()
    kinds = [(c["direction"], c["from"], c["to"]) for c in r["width_changes"]]
    assert ("A->B", 8, 4) in kinds and ("A->B", 4, 8) in kinds
    assert ("B->A", 4, 8) in kinds and r["width"] == {"A->B": 8, "B->A": 8}
    assert "Retrain.Active" not in _timeline_states(link)
    ev = [e["event"] for e in link.ports["B"].events]
    assert "rx_lanes_up" in ev and "tx_width_increase_start" in ev
    sent, got = _split(data), _split(out)
    assert len(got) == len(sent)
    flagged = [i for i, k in enumerate(ok) if not k]
    wrong = [i for i, k in enumerate(ok) if k and got[i] != sent[i]]  # RS mis-corrections
    assert flagged and len(wrong) <= 0.01 * len(flagged)
    assert all(flagged[0] <= i <= flagged[-1] for i in wrong)
    assert all(ok[-1000:]) and got[-1000:] == sent[-1000:]  # clean again at x8


def test_mode_change_goes_through_retrain():
    """§3.4.2.8: FEC T=4 -> T=2 and CRC -> non-CRC via Retrain; the secondary takes the modes
    from the RLTBs; data afterwards uses them (non-CRC Null Block fill dropped)."""
    link = PhyLink(PhyLinkConfig(lanes=4, fec="rs-t4", seed=8))
    assert link.train()
    link.change_mode(fec="rs-t2", crc_mode=False)
    data = _flits(1003, 6)  # not whole codewords: Null Block fill in the non-CRC form
    out, ok = _run(link, data)
    a, b = link.ports["A"], link.ports["B"]
    assert (a.fec_mode, b.fec_mode, a.crc_mode, b.crc_mode) == ("rs-t2", "rs-t2", False, False)
    s = [e["state"] for e in link.timeline() if e["port"] == "B"]
    assert s[-4:] == ["Retrain.Active", "Retrain.Confirm", "Send_NullBlock", "Link_Active"]
    assert out == data and all(ok)
    st = link.report()["directions"]["A->B"]
    assert st["null_blocks_added"] > 0 and st["null_blocks_dropped"] == st["null_blocks_added"]


def test_coasting_equals_stepping_every_block():
    """The LMSM fast path (coasting over data block times) against stepping every block time:
    the same width changes, state timeline and codeword groups lost on the dead lane through a
    lane failure (the noise drawn for the wire may be drawn in another order)."""
    runs = []
    data = _flits(60000, 9)
    for coast in (True, False):
        link = PhyLink(PhyLinkConfig(lanes=8, seed=4, coast=coast))
        assert link.train()
        link.fail_lane(6, link.time_of(link.tick) + 8_000)
        out, ok = _run(link, data)
        r = link.report()
        lost = r["directions"]["A->B"]["dead_lane_groups"]
        runs.append((r["width_changes"], link.timeline(), lost, len(out), ok[-5000:],
                     out[-100000:]))
    assert runs[0] == runs[1]
    assert runs[0][0] and runs[0][0][0]["to"] == 4 and runs[0][2] > 0
    assert all(runs[0][4]) and runs[0][5] == data[-100000:]


def test_coast_refuses_to_cross_an_amctl_slot():
    sim = LinkSim(PortConfig(lanes=2), PortConfig(lanes=2))
    assert sim.run()["link_up"]
    a = sim.a
    if a.can_coast():
        with pytest.raises(RuntimeError):
            a.coast(a.blocks_to_amctl() + 1)
        t = a.tick
        a.coast(a.blocks_to_amctl())
        assert a.tick > t and a.blocks_to_amctl() == 0


def test_config_errors():
    for bad in (dict(lanes=3), dict(fec="x"), dict(ber=0.7), dict(fec="bypass", crc_mode=False),
                dict(bursts=((9, 0, 1),))):
        with pytest.raises(ValueError):
            PhyLink(PhyLinkConfig(**bad))
    link = PhyLink(PhyLinkConfig(lanes=2))
    with pytest.raises(ValueError):
        link.fail_lane(2, 0)
    with pytest.raises(ValueError):
        link.ab.push(b"x" * 21, 0)
