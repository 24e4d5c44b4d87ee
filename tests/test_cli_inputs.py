"""Issue 12 items 3-5: `ubpkt fuzz` keeps pcapng interfaces and refuses bad numbers, the writers'
timestamp limits, `link`/`phy` check what they are given and accept each other's outputs, and
every command fails the same way (exit codes asserted)."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
from pathlib import Path
import pytest
from click.testing import CliRunner

from capture_fixtures import epb, idb, pcap, shb
from ubpkt.capture import CaptureError, PcapWriter, PcapngWriter, open_capture
from ubpkt.phy.fuzz import error_positions
from ubpkt_cli.main import main

UB = bytes.fromhex("00090000000100100000000003000001")


def run(*args, input=None):
    return CliRunner().invoke(main, list(map(str, args)), input=input)


# --- item 3: fuzz ---------------------------------------------------------------------------

def test_fuzz_keeps_every_pcapng_interface(tmp_path):
    eth = bytes(12) + b"\x08\x00" + bytes(30)
    src = tmp_path / "two.pcapng"
    src.write_bytes(shb() + idb(1, 6) + idb(148, 9) + epb(0, 1_700_000_000_123_456, eth)
                    + epb(1, (1 << 32) * 10 ** 9 + 7, UB) + epb(0, 5, eth))
    out = tmp_path / "out.pcapng"
    r = run("fuzz", src, "-o", out, "--ber", "0", "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["format"] == "pcapng" and rep["linktypes"] == [1, 148] and rep["changed"] == 0
    with open_capture(src) as a, open_capture(out) as b:
        pa, pb = list(a), list(b)
        assert [(i.linktype, i.tsresol) for i in b.interfaces] == [(1, 6), (148, 9)]
    assert [(p.time_ns, p.data, p.orig_len, p.iface, p.linktype) for p in pa] == \
           [(p.time_ns, p.data, p.orig_len, p.iface, p.linktype) for p in pb]
    # and at a real BER the records change, the framing does not
    r = run("fuzz", src, "-o", out, "--ber", "0.05", "--seed", "3")
    assert r.exit_code == 0
    with open_capture(out) as b:
        pb = list(b)
    assert [p.linktype for p in pb] == [1, 148, 1] and [p.data for p in pb] != [p.data for p in pa]


def test_fuzz_keeps_a_microsecond_pcap_microsecond(tmp_path):
    src = tmp_path / "us.pcap"
    src.write_bytes(pcap([(5, 999_999, UB)], 148, nano=False))
    out = tmp_path / "o.pcap"
    assert run("fuzz", src, "-o", out, "--ber", "0").exit_code == 0
    assert out.read_bytes() == src.read_bytes()
    with open_capture(out) as cap:
        assert not cap._nano and [p.time_ns for p in cap] == [5_999_999_000]


@pytest.mark.parametrize("args,message", [
    (["--ber", "nan"], "not NaN"),
    (["--ber", "0.1", "--seed", "-1"], "--seed"),
    (["--ber", "2"], "--ber"),
])
def test_fuzz_bad_numbers_are_usage_errors(tmp_path, args, message):
    src = tmp_path / "f.bin"
    src.write_bytes(bytes(40))
    r = run("fuzz", src, "-o", tmp_path / "o", *args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output


def test_huge_burst_does_not_allocate_per_burst(tmp_path):
    """--burst 1048576 on a 317 GiB-sized product before; now O(units) memory."""
    src = tmp_path / "f.bin"
    src.write_bytes(bytes(20 * 4096))
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "from ubpkt_cli.main import main; main()")
    r = subprocess.run([sys.executable, "-c", code, "fuzz", str(src), "-o", str(tmp_path / "o"),
                        "--ber", "1e-3", "--burst", "1048576", "--seed", "1", "--report",
                        str(tmp_path / "r.json")], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads((tmp_path / "r.json").read_text())
    c = rep["changes"][0]
    first = c["flit"] * 160 + c["byte"] * 8 + (7 - c["bit"])
    assert rep["changed"] == rep["units"] - first      # one event covers the rest of the stream
    # the runs are the positions the expanded bursts gave (same draws, same result)
    pos = error_positions(1000, 0.01, 7, np.random.default_rng(5))
    rng = np.random.default_rng(5)
    starts = np.unique(rng.integers(0, 1000, size=int(rng.binomial(1000, 0.01))))
    assert pos.tolist() == sorted({s + k for s in starts.tolist() for k in range(7) if s + k < 1000})


def test_pcap_writer_refuses_what_it_cannot_hold_and_pcapng_takes_it(tmp_path):
    with PcapWriter(tmp_path / "a.pcap", 148) as w:
        w.write(UB, ((1 << 32) - 1) * 10 ** 9)          # the last second a pcap can hold
        with pytest.raises(CaptureError, match="does not fit a classic pcap"):
            w.write(UB, (1 << 32) * 10 ** 9)
        with pytest.raises(CaptureError, match="does not fit"):
            w.write(UB, -1)
    t = (1 << 32) * 10 ** 9 + 1
    with PcapngWriter(tmp_path / "b.pcapng", [148]) as w:
        w.write(UB, t)
    with open_capture(tmp_path / "b.pcapng") as cap:
        assert [p.time_ns for p in cap] == [t + (-t % 1000)]    # microseconds, rounded up


# --- item 4: link / phy ---------------------------------------------------------------------

def test_link_commands_check_link_types(tmp_path, sample_captures):
    eth = sample_captures / "uboe_transactions.pcap"
    for cmd in (["link", "deframe", eth, "-o", tmp_path / "x.pcap"], ["link", "show", eth]):
        r = run(*cmd)
        assert r.exit_code == 2 and "link type 1 (Ethernet), not a flit stream" in r.stderr
    r = run("link", "frame", eth, "-o", tmp_path / "x.pcap")
    assert r.exit_code == 2 and "not a capture of UB network packets" in r.stderr
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"hello world")
    assert run("link", "show", odd).exit_code == 2
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)
                        .tobytes())
    r = run("link", "show", garbage)
    assert r.exit_code == 2 and "not a flit stream" in r.stderr
    r = run("link", "deframe", garbage, "-o", tmp_path / "g.pcap")
    assert r.exit_code == 2
    assert run("link", "show", tmp_path / "missing").exit_code == 2


def test_link_frame_output_goes_through_phy_tx_and_back(tmp_path, sample_captures):
    native = sample_captures / "ub_native.pcap"
    flits = tmp_path / "f.pcap"
    assert run("link", "frame", native, "-o", flits).exit_code == 0
    lanes = tmp_path / "l.npz"
    r = run("phy", "tx", flits, "-o", lanes)
    assert r.exit_code == 0, r.output
    back = tmp_path / "back.flits"
    r = run("phy", "rx", lanes, "-o", back, "--report", tmp_path / "r.json")
    assert r.exit_code == 0, r.output
    with open_capture(flits) as cap:
        original = b"".join(p.data for p in cap)
    assert back.read_bytes()[:len(original)] == original
    r = run("link", "show", back)
    assert r.exit_code == 0
    # a capture of another link type is refused by phy tx
    r = run("phy", "tx", native, "-o", lanes)
    assert r.exit_code == 2 and "not a flit stream (151)" in r.stderr


def test_phy_rx_empty_and_foreign_files(tmp_path):
    empty = tmp_path / "e.npz"
    empty.write_bytes(b"")
    r = run("phy", "rx", empty, "-o", tmp_path / "o")
    assert r.exit_code == 2 and "empty file" in r.stderr and "Aborted" not in r.output
    other = tmp_path / "o.npz"
    other.write_bytes(b"\x80\x04K\x01." * 3)                 # a pickle
    r = run("phy", "rx", other, "-o", tmp_path / "o")
    assert r.exit_code == 2 and "allow_pickle" not in r.output and "not a lane file" in r.stderr


def test_phy_rx_says_when_unequal_lanes_are_cut(tmp_path):
    flits = tmp_path / "f.bin"
    flits.write_bytes(bytes(range(200)) * 20)
    lanes = tmp_path / "l.lanes"
    assert run("phy", "tx", flits, "-o", lanes, "--lanes", "2").exit_code == 0
    from ubpkt.phy.lanefile import read_lanes, write_lanes
    uis, st = read_lanes(lanes)
    uis[1] = uis[1][:-100]
    write_lanes(lanes, uis, st)
    r = run("phy", "rx", lanes, "-o", tmp_path / "o", "--report", tmp_path / "r.json")
    assert "lanes of unequal length" in r.stderr and "100 UI beyond it" in r.stderr
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["ui_beyond_shortest_lane"] == 100


# --- item 5: errors -------------------------------------------------------------------------

def test_missing_file_is_exit_2_everywhere(tmp_path):
    nope = tmp_path / "nope"
    for cmd in (["decode", nope], ["decode", "-T", "ndjson", nope], ["stats", nope],
                ["fuzz", nope, "-o", tmp_path / "o", "--ber", "0"],
                ["phy", "tx", nope, "-o", tmp_path / "o"], ["phy", "rx", nope, "-o", "o"],
                ["link", "show", nope], ["link", "deframe", nope, "-o", tmp_path / "o"],
                ["link", "frame", nope, "-o", tmp_path / "o"]):
        r = run(*cmd)
        assert r.exit_code == 2 and "no such file" in r.output, (cmd, r.output)


def _env():
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "0"
    return env


def _big_capture(tmp_path, n=200_000):
    p = tmp_path / "big.pcap"
    p.write_bytes(pcap([(i, 0, UB) for i in range(n)], 148))
    return p


def test_broken_pipe_exits_cleanly_and_early(tmp_path):
    p = _big_capture(tmp_path)
    for fmt in ("summary", "ndjson"):
        proc = subprocess.Popen([sys.executable, "-m", "ubpkt_cli", "decode", "-T", fmt, str(p)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
        proc.stdout.readline()
        proc.stdout.close()                       # what `| head -1` does
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0, err
        assert b"Traceback" not in err and b"Exception ignored" not in err and not err


def test_full_disk_is_one_line_exit_1(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    p = _big_capture(tmp_path, 20_000)
    for fmt in ("summary", "ndjson", "json"):
        with open("/dev/full", "wb") as full:
            r = subprocess.run([sys.executable, "-m", "ubpkt_cli", "decode", "-T", fmt, str(p)],
                               stdout=full, stderr=subprocess.PIPE, env=_env(), timeout=120)
        assert r.returncode == 1, (fmt, r.stderr)
        assert b"No space left on device" in r.stderr and b"Traceback" not in r.stderr
        assert b"Exception ignored" not in r.stderr


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_is_quiet_130(tmp_path, jobs):
    p = _big_capture(tmp_path, 400_000)
    code = ("import ubpkt_cli.decode_cmd as d; d._FORCE_SMALL_PARALLEL = True; "
            "from ubpkt_cli.main import main; main()")
    fmt = "ndjson" if jobs == "2" else "tree"
    proc = subprocess.Popen([sys.executable, "-c", code, "decode", "-T", fmt, "-j", jobs, str(p)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    assert proc.stdout.readline()                 # it is running
    proc.send_signal(signal.SIGINT)
    # keep reading so that it never blocks on a full pipe
    out = proc.stdout.read()
    err = proc.stderr.read()
    rc = proc.wait(timeout=120)
    if rc == 0 and out:
        pytest.skip("finished before the interrupt arrived")
    assert rc == 130, err[-2000:]
    assert b"Traceback" not in err and b"Aborted" not in err and b"KeyboardInterrupt" not in err


def test_shell_c_errors_are_one_line():
    pytest.importorskip("scapy")
    r = run("shell", "-c", "1/0")
    assert r.exit_code == 1 and "ZeroDivisionError: division by zero" in r.output
    assert "click" not in r.output and "Traceback" not in r.output
    r = run("shell", "-c", "UBBtah(taopcode='Wirte')")
    assert r.exit_code == 1 and "Wirte" in r.output and "Write" in r.output
    r = run("shell", "-c", "def (")
    assert r.exit_code == 2 and "SyntaxError" in r.output


@pytest.mark.parametrize("args", [["stats"], ["decode", "-V"], ["fields"]])
def test_a_reader_that_stops_after_some_lines_ends_the_command_with_0(args, tmp_path):
    """`| head -3`: the reader goes after a few lines while rich tables or the tree are still
    being written (rich's own handler would exit 1)."""
    cap = Path(__file__).resolve().parent.parent / "captures" / "uboe_transactions.pcap"
    argv = [*args] + ([str(cap)] if args[0] != "fields" else [])
    proc = subprocess.Popen([sys.executable, "-m", "ubpkt_cli", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    for _ in range(3):
        proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert b"Traceback" not in err
