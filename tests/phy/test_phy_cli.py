"""`ubpkt phy tx|rx|train` and `ubpkt fuzz` through click's runner."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ubpkt.phy.lanefile import FORMAT, LEGACY_FORMAT, read_lanes
from ubpkt_cli.main import main


@pytest.fixture
def runner():
    return CliRunner()


def _flits(tmp_path, n=50, seed=0):
    p = tmp_path / "in.flits"
    p.write_bytes(np.random.default_rng(seed).integers(0, 256, 20 * n, dtype=np.uint8).tobytes())
    return p


@pytest.mark.parametrize("lane_format", ["packed", "npz"])
@pytest.mark.parametrize("args", [
    ["--lanes", "8", "--fec", "rs-t4", "--interleave", "2", "--modulation", "pam4"],
    ["--lanes", "2", "--fec", "bypass", "--modulation", "nrz", "--amctl-period", "64"],
    ["--lanes", "1", "--fec", "rs-t2"],
])
def test_tx_rx_round_trip(runner, tmp_path, args, lane_format):
    src = _flits(tmp_path)
    lanes = tmp_path / "l.lanes"
    r = runner.invoke(main, ["phy", "tx", str(src), "-o", str(lanes), *args,
                             "--lane-format", lane_format])
    assert r.exit_code == 0, r.output
    n = int(args[1])
    uis, st = read_lanes(lanes)
    assert len(uis) == n and all(u.dtype == np.uint8 for u in uis)
    assert st["format"] == (FORMAT if lane_format == "packed" else LEGACY_FORMAT)
    assert st["lanes"] == n and st["fec"] == args[3]
    if lane_format == "npz":
        z = np.load(lanes)
        names = sorted((f for f in z.files if f[4:].isdigit()), key=lambda f: int(f[4:]))
        assert [f"lane{i}" for i in range(n)] == names
        assert all(z[k].size == 1 for k in z.files if not k[4:].isdigit())  # scalars only
    out = tmp_path / "out.flits"
    rep = tmp_path / "rep.json"
    r = runner.invoke(main, ["phy", "rx", str(lanes), "-o", str(out), "--report", str(rep)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes() == src.read_bytes()
    d = json.loads(rep.read_text())
    for k in ("flits", "codewords", "corrected_symbols", "uncorrectable_codewords",
              "lanes_locked", "amctl_seen"):
        assert k in d
    assert d["flits"] == 50 and d["lanes_locked"] is True and d["amctl_seen"] >= n


def test_rx_report_on_stdout(runner, tmp_path):
    src = _flits(tmp_path)
    lanes = tmp_path / "l.npz"
    runner.invoke(main, ["phy", "tx", str(src), "-o", str(lanes)])
    r = CliRunner(mix_stderr=False).invoke(main, ["phy", "rx", str(lanes), "-o",
                                                  str(tmp_path / "o")]) \
        if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else \
        runner.invoke(main, ["phy", "rx", str(lanes), "-o", str(tmp_path / "o")])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["flits"] == 50


def test_fuzz_lanes_then_rx_corrects(runner, tmp_path):
    src = _flits(tmp_path, 300)
    lanes, bad = tmp_path / "l.lanes", tmp_path / "b.lanes"
    runner.invoke(main, ["phy", "tx", str(src), "-o", str(lanes), "--lanes", "4"])
    rep = tmp_path / "f.json"
    r = runner.invoke(main, ["fuzz", str(lanes), "-o", str(bad), "--ber", "1e-4", "--seed", "5",
                             "--report", str(rep)])
    assert r.exit_code == 0, r.output
    f = json.loads(rep.read_text())
    assert f["kind"] == "lanes" and f["changed"] == len(f["changes"]) > 0
    (a, _), (b, st) = read_lanes(lanes), read_lanes(bad)
    assert st["format"] == FORMAT and f["lane_file_format"] == FORMAT   # the input's format
    diff = sum(int((a[i] != b[i]).sum()) for i in range(4))
    assert diff == f["changed"]
    c = f["changes"][0]
    assert b[c["lane"]][c["ui"]] == c["new"] and a[c["lane"]][c["ui"]] == c["old"]
    out = tmp_path / "o"
    r = runner.invoke(main, ["phy", "rx", str(bad), "-o", str(out), "--report",
                             str(tmp_path / "r.json")])
    assert r.exit_code == 0 and out.read_bytes() == src.read_bytes()
    assert json.loads((tmp_path / "r.json").read_text())["corrected_symbols"] > 0


def test_fuzz_flits_and_pcap(runner, tmp_path):
    src = _flits(tmp_path, 20)
    out = tmp_path / "o.flits"
    r = runner.invoke(main, ["fuzz", str(src), "-o", str(out), "--ber", "0.01", "--burst", "2",
                             "--seed", "1", "--report", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    d = json.loads((tmp_path / "r.json").read_text())
    a, b = src.read_bytes(), out.read_bytes()
    assert d["kind"] == "flits"
    assert sum(bin(x ^ y).count("1") for x, y in zip(a, b)) == d["changed"] > 0
    from ubpkt.capture import PcapWriter, open_capture
    pc = tmp_path / "in.pcap"
    with PcapWriter(str(pc), 147, nanosecond=True) as w:
        for i in range(5):
            w.write(bytes(range(i, i + 40)), 1000 * i)
    r = runner.invoke(main, ["fuzz", str(pc), "-o", str(tmp_path / "o.pcap"), "--ber", "0.02",
                             "--seed", "2", "--report", str(tmp_path / "p.json")])
    assert r.exit_code == 0, r.output
    d = json.loads((tmp_path / "p.json").read_text())
    with open_capture(str(tmp_path / "o.pcap")) as cap:
        recs = [(p.time_ns, p.data) for p in cap]
        assert cap.linktype == 147
    assert [t for t, _ in recs] == [0, 1000, 2000, 3000, 4000]
    flips = sum(bin(x ^ y).count("1") for i, (_, d2) in enumerate(recs)
                for x, y in zip(bytes(range(i, i + 40)), d2))
    assert d["kind"] == "pcap" and flips == d["changed"] > 0
    assert all({"record", "byte", "bit", "old", "new"} <= set(c) for c in d["changes"])


@pytest.mark.parametrize("argv,msg", [
    (["phy", "rx", "/nonexistent.npz", "-o", "x"], "no such file"),
    (["phy", "tx", "/nonexistent", "-o", "x.npz"], "no such file"),
    (["phy", "tx", "BAD", "-o", "x.npz"], "whole number"),
    (["phy", "rx", "BADNPZ", "-o", "x"], "no lane0"),
    (["phy", "tx", "GOOD", "-o", "x.npz", "--lanes", "3"], "Invalid value"),
    (["fuzz", "GOOD", "-o", "x", "--ber", "2"], "Invalid value"),
    (["fuzz", "GOOD", "-o", "x", "--ber", "abc"], "Invalid value"),
    (["phy", "train", "--lanes", "4", "--fail-lane", "6"], "Invalid value"),
])
def test_bad_input_is_one_line_error(runner, tmp_path, argv, msg):
    (tmp_path / "BAD").write_bytes(b"123")
    (tmp_path / "GOOD").write_bytes(bytes(40))
    np.savez(tmp_path / "BADNPZ.npz", foo=np.zeros(3))
    argv = [str(tmp_path / a) if a in ("BAD", "GOOD") else
            (str(tmp_path / "BADNPZ.npz") if a == "BADNPZ" else a) for a in argv]
    r = runner.invoke(main, argv)
    assert r.exit_code != 0
    assert "Traceback" not in r.output and not isinstance(r.exception, (ValueError, KeyError,
                                                                         TypeError))
    assert msg in r.output


def test_train_fail_lane_report(runner, tmp_path):
    rep = tmp_path / "t.json"
    r = runner.invoke(main, ["phy", "train", "--lanes", "8", "--fail-lane", "5", "--report",
                             str(rep)])
    assert r.exit_code == 0, r.output
    d = json.loads(rep.read_text())
    assert d["final_state"] == "Link_Active"
    assert (d["tx_width"], d["rx_width"]) == (4, 4)
    assert d["fec_mode"] == "rs-t4"
    assert d["trace"][0]["state"] == "Link_Idle" and d["trace"][-1]["state"] == "Link_Active"


def test_train_options(runner):
    r = CliRunner().invoke(main, ["phy", "train", "--lanes", "2", "--fec", "rs-t2",
                                  "--reverse", "--invert", "1", "--max-rate", "4", "--eq", "full"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output[r.output.index("{"):])
    assert d["final_state"] == "Link_Active" and d["fec_mode"] == "rs-t2" and d["rate"] == 4
    assert d["eq_mode"] == "full_eq"
