"""``loopback --link phy``: the DLL engine pair over the PHY link (UB 2.0 §3.2, §3.4.2.3-4,
§4.7), the quality bar of issue 10 at its settings with small transfers: FEC corrects, link
retransmission covers what FEC cannot, a failed lane is dropped without Retrain, and the
transaction layer loses nothing."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ubpkt.link import fill_plength
from ubpkt.phy.link import PhyLinkConfig
from ubpkt.profile import SPEC
from ubpkt.sim.loopback import LoopbackConfig, run_loopback
from ubpkt.sim.phy_link import PhyLinkPair, parse_burst, parse_lane_event


def _run(**kw):
    kw.setdefault("transport", "ctp")
    kw.setdefault("count", 64)
    kw.setdefault("size", 4096)
    return run_loopback(LoopbackConfig(link="phy", **kw))


def _zero_loss(r, n=64):
    """Data verified, every request completed, and the transport never had to retransmit:
    whatever the link lost, the link itself recovered."""
    assert r["data_verified"] and r["completions"] == {"success": n}
    assert r["transport"]["retransmissions"] == 0
    assert not [e for e in r["link"]["errors"] if e["severity"] == "error"]


def _states_after_up(r):
    up = r["link"]["dll_normal_ns"]
    return [e["state"] for e in r["phy"]["timeline"] if e["at_ns"] > up]


def test_rs_t4_corrects_symbol_errors():
    r = _run(lanes=8, fec="rs-t4", ber=1e-4, seed=3)
    _zero_loss(r)
    phy, link = r["phy"], r["link"]
    assert r["schema"] == "ubpkt.loopback/1" and link["mode"] == "phy"
    assert phy["corrected_symbols"] > 50 and phy["uncorrectable_codewords"] == 0
    assert phy["directions"]["A->B"]["symbol_errors_injected"] >= phy["corrected_symbols"] // 2
    assert link["retries"] == 0 and link["replayed_flits"] == 0 and link["fec_errors"] == 0
    assert link["width_changes"] == [] and phy["width"] == {"A->B": 8, "B->A": 8}


@pytest.mark.parametrize("crc", [True, False])
def test_rs_t2_beyond_its_reach_link_retries_recover(crc):
    """T=2 at BER 3e-4: codewords the FEC cannot correct reach the DLL as failed-FEC flits
    (fec_errors) and the DLL replays them (Go-Back-N), in CRC and non-CRC mode."""
    r = _run(lanes=8, fec="rs-t2", ber=3e-4, seed=5, crc_mode=crc)
    _zero_loss(r)
    phy, link = r["phy"], r["link"]
    assert phy["uncorrectable_codewords"] > 0 and phy["corrected_symbols"] > 0
    assert phy["crc_mode"] is crc and link["crc_mode"] is crc
    assert link["fec_errors"] > 0 and link["retries"] >= 1 and link["replayed_flits"] > 0
    if not crc:
        assert link["crc_errors"] == 0
    req = [e for e in link["timeline"] if e["machine"] == "RETRY_REQ_SM" and e["state"] == "REQ"
           and e["t_ns"] > link["dll_normal_ns"]]
    assert req


@pytest.mark.parametrize("lane,width", [(5, 4), (3, 2)])
def test_lane_failure_in_traffic_without_retrain(lane, width):
    r = _run(lanes=8, fec="rs-t4", fail_lanes=(f"{lane}@50%",), seed=2)
    _zero_loss(r)
    phy, link = r["phy"], r["link"]
    [ev] = link["lane_schedule"]
    assert ev["event"] == "fail" and ev["lane"] == lane
    assert link["dll_normal_ns"] < ev["at_ns"] < r["sim_time_ns"]   # in the transfer
    changes = sorted((c["direction"], c["from"], c["to"], c["kind"], c["state"])
                     for c in link["width_changes"])
    assert changes == [("A->B", 8, width, "decrease", "Link_Active"),
                       ("B->A", 8, width, "decrease", "Link_Active")]
    assert all(c["at_ns"] > ev["at_ns"] for c in link["width_changes"])
    assert "Retrain.Active" not in _states_after_up(r) and phy["retrains"] == 0
    assert phy["state"] == {"A": "Link_Active", "B": "Link_Active"}
    assert phy["dead_lanes"] == [lane] and phy["width"] == {"A->B": width, "B->A": width}
    # what was on the dead lane before the switch came out flagged and was replayed
    assert phy["uncorrectable_codewords"] > 0 and link["fec_errors"] > 0
    assert link["retries"] >= 1 and link["replayed_flits"] > 0
    widths = [s["width_ab"] for s in link["series"]]
    assert widths[0] == 8 and widths[-1] == width


def test_restore_lane_widens_again():
    r = _run(lanes=8, fec="rs-t4", count=128, fail_lanes=("5@15us",),
             restore_lanes=("5@35us",), seed=4)
    _zero_loss(r, 128)
    link, phy = r["link"], r["phy"]
    kinds = [(c["direction"], c["from"], c["to"]) for c in link["width_changes"]]
    assert ("A->B", 8, 4) in kinds and ("A->B", 4, 8) in kinds and ("B->A", 4, 8) in kinds
    assert phy["width"] == {"A->B": 8, "B->A": 8} and phy["dead_lanes"] == []
    assert "Retrain.Active" not in _states_after_up(r)
    assert [e["at_ns"] for e in link["lane_schedule"]] == [15_000, 35_000]


def test_lane0_failure_retrains_and_still_loses_nothing():
    """§3.4.2.4: lane 0 cannot be dropped quickly; the link retrains (narrower) and the DLL
    replays what the retrain cost."""
    r = _run(lanes=4, fail_lanes=("0@50%",), seed=1)
    _zero_loss(r)
    assert "Retrain.Active" in _states_after_up(r) and r["phy"]["retrains"] >= 1
    assert r["phy"]["state"] == {"A": "Link_Active", "B": "Link_Active"}


def test_lane_burst_is_corrected():
    r = _run(lanes=4, bursts=("2@40%:3",), seed=1)
    _zero_loss(r)
    assert r["phy"]["directions"]["A->B"]["symbol_errors_injected"] == 3
    assert r["phy"]["corrected_symbols"] == 3 and r["link"]["retries"] == 0


def test_mode_change_through_the_pair():
    """Block_Mode_Chg on both engines, the LMSM retrains into T=2 non-CRC, the engines resume
    in the new mode (``mode_changed``); packets on either side of the change arrive in order."""
    pair = PhyLinkPair(SPEC, PhyLinkConfig(lanes=4, fec="rs-t4", seed=3), slot_flits=96)

    def pkt(i, crc):
        return fill_plength(bytes((0, 6, 0, 0)) + bytes([i]) * (40 + 97 * i), crc)

    def deliver(pkts, t):
        got = []
        while len(got) < len(pkts):
            t = pair.ab.next_deadline()
            assert t is not None and t < 10**7
            got += pair.ab.pop(t)
        assert got == pkts
        return t
    first = [pkt(i, True) for i in range(20)]
    for p in first:
        assert pair.ab.push(p, 0)
    t = deliver(first, 0)
    pair.change_mode(t, fec="rs-t2", crc_mode=False)
    second = [pkt(i, False) for i in range(20, 40)]
    for p in second:
        assert pair.ab.push(p, t)
    deliver(second, t)
    assert [s.engine.crc_mode for s in pair.sides] == [False, False]
    [mc] = pair.phy.report()["mode_changes"]
    assert mc["fec"] == "rs-t2" and mc["crc_mode"] is False


def test_lane_event_and_burst_parsing():
    ev = parse_lane_event("fail", "5@2ms")
    assert (ev.lane, ev.at_ns, ev.share) == (5, 2_000_000, None)
    ev = parse_lane_event("restore", " 3 @ 50% ")
    assert (ev.kind, ev.lane, ev.at_ns, ev.share) == ("restore", 3, None, 0.5)
    assert ev.resolve(1000) == 500
    b, n = parse_burst("2@30us:16")
    assert (b.lane, b.at_ns, n) == (2, 30_000, 16)
    assert parse_burst("1@10%")[1] == 8
    for bad in ("5", "x@1us", "5@", "5@150%", "5@-1us", "5@abc"):
        with pytest.raises(ValueError):
            parse_lane_event("fail", bad)
    for bad in ("2@1us:0", "2@1us:x"):
        with pytest.raises(ValueError):
            parse_burst(bad)


def test_loopback_config_errors():
    with pytest.raises(ValueError):
        run_loopback(LoopbackConfig(count=1, fail_lanes=("1@1us",)))       # needs --link phy
    with pytest.raises(ValueError):
        run_loopback(LoopbackConfig(count=1, link="phy", lanes=4, fail_lanes=("4@1us",)))
    with pytest.raises(ValueError):
        run_loopback(LoopbackConfig(count=1, link="phy", fec="bypass", crc_mode=False))


def _cli(args):
    from ubpkt_cli.main import main
    return CliRunner().invoke(main, ["loopback", *args])


@pytest.mark.parametrize("args,msg", [
    (["--fail-lane", "5@50%"], "--link phy"),
    (["--link", "dll", "--lanes", "8"], "--link phy"),
    (["--link", "phy", "--lanes", "4", "--fail-lane", "5@50%"], "lanes 0..3"),
    (["--link", "phy", "--restore-lane", "1@soon"], "not a time"),
    (["--link", "phy", "--fail-lane", "1"], "LANE@TIME"),
    (["--link", "phy", "--lane-burst", "1@1us:0"], "at least one symbol"),
    (["--link", "phy", "--fec", "bypass", "--non-crc"], "needs the FEC"),
    (["--link", "phy", "--link-rate", "25G"], "--link dll"),
    (["--plot", "x.png"], "--link phy"),
    (["--link", "phy", "--lanes", "3"], "3"),
])
def test_cli_usage_errors(args, msg):
    res = _cli([*args, "-q"])
    assert res.exit_code == 2, res.output
    assert msg in res.output and "Traceback" not in res.output


def test_cli_link_phy_report_and_plot(tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs the optional matplotlib (plot extra)")
    out, png = tmp_path / "r.json", tmp_path / "p.png"
    res = _cli(["--link", "phy", "--lanes", "8", "--fec", "rs-t4", "--fail-lane", "5@50%",
                "--count", "32", "--seed", "2", "-q", "--report", str(out), "--plot", str(png)])
    assert res.exit_code == 0, res.output
    r = json.loads(out.read_text())
    assert r["data_verified"] and r["link"]["mode"] == "phy"
    for key in ("corrected_symbols", "uncorrectable_codewords", "timeline"):
        assert key in r["phy"]
    for key in ("retries", "replayed_flits", "width_changes", "timeline", "series"):
        assert key in r["link"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_cli_plot_without_matplotlib_is_one_line(tmp_path, monkeypatch):
    import builtins
    real = builtins.__import__

    def no_mpl(name, *a, **kw):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real(name, *a, **kw)
    monkeypatch.setattr(builtins, "__import__", no_mpl)
    res = _cli(["--link", "phy", "--count", "1", "-q", "--plot", str(tmp_path / "p.png")])
    assert res.exit_code == 1
    assert "matplotlib" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "p.png").exists()
