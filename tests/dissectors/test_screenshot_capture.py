"""The capture docs/screenshots/make_screenshots.py shows (docs/screenshots/analysis_capture.py)
holds the cases the screenshots and their README claim: tshark with ub.lua (two passes) finds
each analysis flag, link and the bad ICRC on exactly the frames ``CASES`` names, ubpkt's own
analysis agrees, and the committed ``ub_analysis.pcap`` is what the builder writes.  Not a GUI
test: the GUI shots are checked by eye."""
from __future__ import annotations

import importlib.util
import subprocess

import pytest

from test_lua import LUA, ROOT, _find_tshark
from test_lua_analysis import same, tshark_analysis
from ubpkt.capture.stream import iter_records
from ubpkt.views.analysis import Analyzer, first_pass

SHOTS = ROOT / "docs" / "screenshots"


def _builder():
    spec = importlib.util.spec_from_file_location("analysis_capture",
                                                  SHOTS / "analysis_capture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cap = _builder()


@pytest.fixture(scope="module")
def tshark():
    return _find_tshark()


@pytest.fixture(scope="module")
def pcap(tmp_path_factory):
    return cap.write(tmp_path_factory.mktemp("shots") / "ub_analysis.pcap")


def frames_with(rows, key):
    return {n: r[key] for n, r in enumerate(rows, 1) if key in r}


def test_tshark_finds_each_claimed_case(tshark, pcap):
    rows = tshark_analysis(tshark, pcap, True)
    assert len(rows) == len(cap.FRAMES)
    for case in ("response_in", "request_in", "psn_gap"):
        assert frames_with(rows, f"ub.analysis.{case}") == cap.CASES[case], case
    for case in ("out_of_order", "retransmission", "duplicate", "tpnak", "no_response"):
        assert sorted(frames_with(rows, f"ub.analysis.{case}")) == cap.CASES[case], case
    for n in cap.CASES["request_in"]:
        assert rows[n - 1]["ub.analysis.response_time"] > 0
    # the details shot's frame is a Read that has its response linked
    assert cap.DETAILS_FRAME in cap.CASES["response_in"]


def test_only_the_damaged_frame_has_a_bad_icrc(tshark, pcap):
    res = subprocess.run([tshark, "-n", "-X", f"lua_script:{LUA}", "-r", str(pcap), "-T",
                          "fields", "-e", "ub.icrc.status", "-e", "ub.btah.taopcode"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    status = [line.split("\t")[0] for line in res.stdout.splitlines()]
    assert [n for n, s in enumerate(status, 1) if s == "bad"] == cap.CASES["bad_icrc"]
    assert all(s in ("good", "bad") for s in status)
    ops = [line.split("\t")[1] for line in res.stdout.splitlines()]
    assert ops[cap.DETAILS_FRAME - 1] == "6"          # Read


def ubpkt_analysis_exact(pcap) -> list[dict]:
    """ubpkt's analysis (two passes) with the capture's exact ns timestamps: the capture starts
    in 2024, where a float of seconds is only good to ~240 ns (``rec["time"]``); the Analyzer
    reads the reader's exact time (``_tns``) when the records carry it."""
    recs = list(iter_records(str(pcap), exact_time=True))
    an = Analyzer(linked=first_pass(iter_records(str(pcap), exact_time=True)))
    return [an.add(r) for r in recs]


def test_float_time_alone_is_not_exact(pcap):
    """Why the exact time matters: without it a 2024 capture's response times are off (the test
    above would fail), so the reader's ``_tns`` is what makes them equal to tshark's."""
    exact = [out.get("ub.analysis.response_time") for out in ubpkt_analysis_exact(pcap)]
    an = Analyzer(linked=first_pass(iter_records(str(pcap))))
    rough = [an.add(r).get("ub.analysis.response_time")
             for r in iter_records(str(pcap))]
    assert [x for x in exact if x is not None]
    assert exact != rough


def test_ubpkt_analysis_agrees(tshark, pcap):
    errs = same(ubpkt_analysis_exact(pcap), tshark_analysis(tshark, pcap, True))
    assert not errs, "\n".join(errs)


def test_committed_capture_is_current(pcap):
    committed = SHOTS / "ub_analysis.pcap"
    assert committed.read_bytes() == pcap.read_bytes(), \
        "rerun docs/screenshots/make_screenshots.py (or analysis_capture.py) and commit"
