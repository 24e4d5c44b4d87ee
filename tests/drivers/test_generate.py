"""`ubpkt generate` (ubpkt.drivers.generate): stateless request streams from compiled templates
and a field engine; every frame decodes with a good ICRC.  Sockets: 127.0.0.1 only."""
from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner

from ubpkt import decode
from ubpkt.capture.pcap import open_capture
from ubpkt.drivers.generate import generate, schedule, send_udp, udp_path, write_pcap
from ubpkt.drivers.udp import HEADER_LEN, pseudo_header, udp_profile
from ubpkt.profile import SPEC
from ubpkt_cli.main import main

ALL = ("write:10000,read:4KiB,atomic:cas,atomic:store,send:5000,write_with_immediate:5000,"
       "send_with_immediate:3000,atomic:fetch_add:4")
#: (TAOpcode name the dissector shows, RTPH last flag) per frame of ALL with a 4 KiB MTU
EXPECTED_OPS = ["Write"] * 3 + ["Read", "Atomic_compare_swap", "Atomic_store", "Send", "Send",
                                "Write", "Write_with_immediate", "Send_with_immediate",
                                "Atomic_fetch_add"]


def _records(frames, profile=None):
    out = []
    for f in frames:
        r = decode(bytes(f), 1, profile)
        assert r["fields"]["ub.icrc.status"] == "good", r["fields"]
        assert not [i for i in r["issues"] if i["severity"] == "error"], r["issues"]
        out.append(r["fields"])
    return out


def test_every_op_decodes_with_a_good_icrc_and_its_opcode():
    s = generate(ALL)
    recs = _records(s)
    assert len(recs) == len(EXPECTED_OPS) == s.stats["frames"]
    from ubpkt.formats.enums import TAOPCODE
    assert [TAOPCODE[f["ub.btah.taopcode"]] for f in recs] == EXPECTED_OPS
    assert all(f["ub.rtph.tpopcode"] == 1 for f in recs)            # RTP_Data
    # last flag on each request's final packet; TPMSN counts requests
    lasts = [f["ub.rtph.last"] for f in recs]
    assert lasts == [0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1]
    msn = [f["ub.rtph.tpmsn"] for f in recs]
    assert msn == [0, 0, 0, 1, 2, 3, 4, 4, 5, 5, 6, 7]
    # a Write's segments: a TASSN each, the address advancing by the MTU; a Send's packets
    # share one TASSN, OFSTETAH in 1 KiB units
    assert [f["ub.maetah.length"] for f in recs[:3]] == [4096, 4096, 10000 - 8192]
    a0 = recs[0]["ub.maetah.address"]
    assert [f["ub.maetah.address"] - a0 for f in recs[:3]] == [0, 4096, 8192]
    assert recs[6]["ub.btah.ini_tassn"] == recs[7]["ub.btah.ini_tassn"]
    assert [recs[6]["ub.ofstetah.offset"], recs[7]["ub.ofstetah.offset"]] == [0, 4]
    assert recs[9]["ub.immetah.msg_length"] == 5000
    assert recs[3]["ub.maetah.length"] == 4096 and "data" not in decode(
        bytes(list(generate("read:4KiB"))[0]), 1)["layers"]


def test_incrementing_fields():
    recs = _records(generate("write:64KiB*2,send:5000", mtu=1024, psn=100, tassn=0xFFFE))
    psns = [f["ub.rtph.psn"] for f in recs]
    assert psns == list(range(100, 100 + len(recs)))
    ports = [f["udp.srcport"] for f in recs]
    assert ports == list(range(49152, 49152 + len(recs)))
    tassn = [f["ub.btah.ini_tassn"] for f in recs]
    assert tassn[:3] == [0xFFFE, 0xFFFF, 0]                            # 16 bits, wraps
    assert len(set(tassn[-5:])) == 1                                  # one Send message


def test_psn_wraps_at_24_bits_and_sport_in_the_ephemeral_range():
    from ubpkt.stack.network import Path
    recs = _records(generate("write:1KiB*4", psn=(1 << 24) - 2, path=Path(udp_sport=65534)))
    assert [f["ub.rtph.psn"] for f in recs] == [(1 << 24) - 2, (1 << 24) - 1, 0, 1]
    assert [f["udp.srcport"] for f in recs] == [65534, 65535, 49152, 49153]


def test_random_fields_are_seeded_and_reproducible():
    eng = {"psn": "random", "tassn": "random", "address": "random", "sport": "random"}
    a = list(generate("write:256*50,atomic:fetch_add*20", field_engine=eng, seed=7))
    b = list(generate("write:256*50,atomic:fetch_add*20", field_engine=eng, seed=7))
    c = list(generate("write:256*50,atomic:fetch_add*20", field_engine=eng, seed=8))
    assert a == b and a != c
    recs = _records(a)
    psns = [f["ub.rtph.psn"] for f in recs]
    assert len(set(psns)) > 60 and psns != sorted(psns)
    assert len({f["udp.srcport"] for f in recs}) > 40
    assert all(49152 <= f["udp.srcport"] <= 65535 for f in recs)
    assert len({f["ub.btah.ini_tassn"] for f in recs}) > 60
    base = 0x100000000
    addrs = [f["ub.maetah.address"] for f in recs]
    assert len(set(addrs)) > 20
    for f in recs:
        a, n = f["ub.maetah.address"], f["ub.maetah.length"]
        assert a % (n if n <= 8 else 64) == 0      # atomics naturally aligned
    span = max(addrs) + 256 - base
    assert all(base <= x for x in addrs) and span <= 50 * 256 + 20 * 64


def test_fixed_fields():
    eng = {"psn": "fixed", "tassn": "fixed", "address": "fixed", "sport": "fixed"}
    recs = _records(generate("write:512*5", field_engine=eng, psn=9, tassn=3))
    assert {(f["ub.rtph.psn"], f["ub.btah.ini_tassn"], f["ub.maetah.address"],
             f["udp.srcport"]) for f in recs} == {(9, 3, 0x100000000, 49152)}


def test_count_repeats_the_workload_and_truncates():
    s = generate("write:10000,atomic:cas", count=11)
    recs = _records(s)
    assert len(recs) == 11 and s.stats["frames_per_pass"] == 4
    assert [f["ub.rtph.psn"] for f in recs] == list(range(11))
    # the address pattern repeats per pass (a target's region holds every pass)
    assert recs[4]["ub.maetah.address"] == recs[0]["ub.maetah.address"]
    assert s.stats["ops"] == {"write": 9, "compare_swap": 2}
    assert list(generate("write:1", count=0)) == []


def test_tokenvalue_and_bad_arguments():
    recs = _records(generate("write:100,read:100", tokenvalue=0xABCD))
    assert all(f["ub.tvetah.tokenvalue"] == 0xABCD and f["ub.btah.tv_en"] == 1 for f in recs)
    for kw in ({"field_engine": {"psn": "sometimes"}}, {"field_engine": {"ttl": "inc"}},
               {"psn": 1 << 24}, {"count": -1}):
        with pytest.raises(ValueError):
            generate("write:1", **kw)
    with pytest.raises(ValueError):
        generate("write:0")


def test_schedule_and_pcap_timestamps(tmp_path):
    frames = [b"x" * 125] * 4
    assert [t for t, _ in schedule(frames)] == [0, 1000, 2000, 3000]
    assert [t for t, _ in schedule(frames, pps=1000)] == [0, 10**6, 2 * 10**6, 3 * 10**6]
    # 1000 bits per frame at 1 Mbit/s: one per millisecond
    assert [t for t, _ in schedule(frames, mbps=1)] == [0, 10**6, 2 * 10**6, 3 * 10**6]
    out = tmp_path / "g.pcap"
    st = write_pcap(generate("write:8KiB*2", mtu=1024), out, pps=1e6)
    assert st["frames"] == 16 and st["duration_s"] == pytest.approx(16e-6)
    with open_capture(out) as cap:
        pkts = list(cap)
        assert cap.linktype == 1
    assert [p.time_ns for p in pkts] == [i * 1000 for i in range(16)]
    _records(p.data for p in pkts)


def test_udp_peer_receives_the_datagrams_with_a_good_icrc():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2.0)
    peer = rx.getsockname()
    sock, path = udp_path(peer)
    try:
        assert path.src_ip == "127.0.0.1" and path.udp_dport == peer[1]
        s = generate("write:3000*4,read:1KiB,atomic:cas", path=path, mtu=1024,
                     field_engine={"sport": "fixed"})
        st = send_udp(s, sock, peer, pps=2000)
        got = []
        for _ in range(st["frames"]):
            data, src = rx.recvfrom(65536)
            got.append((data, src))
    finally:
        sock.close()
        rx.close()
    assert st["frames"] == 14 == len(got) and st["errors"] == 0
    assert st["bytes"] == sum(len(d) for d, _ in got)
    assert st["duration_s"] >= 13 / 2000 * 0.9               # paced
    # the header the peer would see, rebuilt as the UDP driver does: the ICRC holds
    frames = [pseudo_header(src[0], src[1], peer[0], peer[1], len(d)) + d for d, src in got]
    recs = _records(frames, udp_profile(SPEC, peer[1]))      # an ephemeral port: UB on it
    assert [f["ub.rtph.psn"] for f in recs] == list(range(14))
    assert all(len(d) == len(f) - HEADER_LEN for (d, _), f in zip(got, frames))


def test_cli_writes_the_pcap_and_the_report(tmp_path):
    out, rep = tmp_path / "g.pcap", tmp_path / "r.json"
    r = CliRunner().invoke(main, ["generate", "--workload", "write:10000*3,atomic:cas", "-o",
                                  str(out), "--count", "25", "--pps", "1000", "--psn",
                                  "random", "--seed", "3", "--report", str(rep), "-q"])
    assert r.exit_code == 0, r.output
    report = json.loads(rep.read_text())
    assert report["frames"] == 25 and report["duration_s"] == pytest.approx(0.025)
    assert report["field_engine"]["psn"] == "random"
    with open_capture(out) as cap:
        pkts = list(cap)
    assert len(pkts) == 25 and report["bytes"] == sum(len(p.data) for p in pkts)
    recs = _records(p.data for p in pkts)
    assert len({f["ub.rtph.psn"] for f in recs}) > 20


def test_cli_sends_to_a_udp_peer(tmp_path):
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2.0)
    host, port = rx.getsockname()
    try:
        r = CliRunner().invoke(main, ["generate", "--workload", "send:100*5", "--to",
                                      f"{host}:{port}", "-q"])
        assert r.exit_code == 0, r.output
        report = json.loads(r.output)
        got = [rx.recvfrom(65536)[0] for _ in range(5)]
    finally:
        rx.close()
    assert report["frames"] == 5 and report["peer"] == f"{host}:{port}"
    assert report["bytes"] == sum(len(d) for d in got)


@pytest.mark.parametrize("args,text", [
    (["--workload", "write:1"], "one output"),
    (["--workload", "jump:1", "-o", "x.pcap"], "unknown operation"),
    (["--workload", "write:1", "-o", "x.pcap", "--pps", "1", "--mbps", "1"], "not both"),
    (["--workload", "write:1", "--to", "127.0.0.1:9", "--sport", "random"], "socket's own"),
    (["--workload", "write:1", "-o", "x.pcap", "--base", "zz"], "not an integer"),
    (["--workload", "write:1", "--to", "127.0.0.1:99999"], "port"),
])
def test_cli_errors_are_clear(args, text, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["generate"] + args)
    assert r.exit_code == 2, r.output
    assert text in r.output and "Traceback" not in r.output


def test_a_live_serve_takes_the_generated_writes():
    """generate -> serve over UDP on 127.0.0.1: serve's defaults (TPNs 0x20/0x10, region at
    1 << 32 with TokenID 1) match generate's, so the stateless writes land in its memory."""
    import threading
    import time

    from ubpkt.drivers.serve import ServeConfig, Server
    srv = Server(ServeConfig(bind=("127.0.0.1", 0), regions=["mem:1MiB"]))
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("report", srv.run()), daemon=True)
    t.start()
    sock, path = udp_path(srv.local)
    try:
        s = generate("write:6000*3,atomic:fetch_add*2", path=path, mtu=2048, seed=5,
                     field_engine={"sport": "fixed"})
        st = send_udp(s, sock, srv.local, pps=5000)
        end = time.monotonic() + 5
        while srv.requests() < st["frames"] and time.monotonic() < end:
            time.sleep(0.01)
    finally:
        srv.stop()
        t.join(5)
        srv.close()
        sock.close()
    rep = out["report"]
    assert rep["requests"] == st["frames"] == 11 and rep["errors"] == 0
    assert srv.driver.stats["bad_icrc"] == 0
    for slot in s.plan.slots[:3]:
        assert srv.memory.read(slot.wr.remote_addr, slot.length) == s.plan.data[slot.index]
