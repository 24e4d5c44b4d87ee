"""PcapTap: what crosses the links, at simulated time, decodable; corrupted frames flagged."""
from __future__ import annotations

import io

import pytest

from ubpkt import decode, open_capture
from ubpkt.sim import PcapTap, Simulator
from ubpkt.views.filter import compile_filter

from sim_helpers import Sink, Source, gbn_pair


@pytest.mark.parametrize("kind,lt", [("uboe", 1), ("ipv4", 148)])
def test_tap_of_a_faulty_run(tmp_path, kind, lt):
    path = tmp_path / f"run-{kind}.pcap"
    snd, rcv = gbn_pair(kind=kind, n=40)
    sim = Simulator(seed=2)
    arrivals = []
    with PcapTap(path, lt) as tap:
        d_ab, d_ba = sim.connect(snd, rcv, {"delay": 1000, "rate": "10G", "linktype": lt},
                                 faults_ab="corrupt=0.2:2,duplicate=0.1,loss=0.05",
                                 faults_ba="loss=0.1", tap=tap)
        recv = rcv.receive

        def spy(data, now):
            arrivals.append(now)
            recv(data, now)
        rcv.receive = spy
        sim.run(until=lambda: snd.done)
    rep = sim.report()
    n_corrupt = rep["by_kind"].get("corrupt", 0)
    assert n_corrupt > 0 and len(rcv.delivered) == 40
    with open_capture(path) as cap:
        assert cap.linktype == lt
        pkts = list(cap)
    assert len(pkts) == tap.count == d_ab.stats["delivered"] + d_ba.stats["delivered"]
    times = [p.time_ns for p in pkts]
    assert times == sorted(times) and set(arrivals) <= set(times)
    bad = compile_filter('ub.icrc.status == "bad"')
    recs = [decode(p.data, lt) for p in pkts]
    assert sum(bad(r) for r in recs) == n_corrupt
    assert all(r["fields"]["ub.icrc.status"] in ("good", "bad") for r in recs)
    assert not [i for r in recs if not bad(r) for i in r["issues"] if i["severity"] == "error"]


def test_tap_filters_links_and_checks_order():
    buf = io.BytesIO()
    tap = PcapTap(buf, 1, links=["a->b"])
    tap.write(bytes(60), 10, "a->b")
    tap.write(bytes(60), 20, "b->a")           # not this tap's direction
    assert tap.count == 1
    with pytest.raises(ValueError, match="order"):
        tap.write(bytes(60), 5, "a->b")
    tap.close()
    with pytest.raises(ValueError):
        tap.write(bytes(60), 30, "a->b")


def test_tap_linktype_must_match_the_link(tmp_path):
    sim = Simulator()
    with PcapTap(tmp_path / "x.pcap", 148) as tap:
        with pytest.raises(ValueError, match="link type"):
            sim.connect(Source([]), Sink(), {"linktype": 1}, tap=tap)
        # with no link parameters the tap's link type is the link's
        d, _ = sim.connect(Source([]), Sink(), tap=tap)
        assert d.linktype == 148


def test_tap_timestamps_are_nanoseconds(tmp_path):
    path = tmp_path / "ns.pcap"
    frames = [bytes(64)] * 3
    sim = Simulator()
    with PcapTap(path) as tap:
        sim.connect(Source(frames, start=1_000_000_001, interval=3), Sink(), {"delay": 2},
                    tap=tap)
        sim.run()
    with open_capture(path) as cap:
        assert [p.time_ns for p in cap] == [1_000_000_003, 1_000_000_006, 1_000_000_009]
