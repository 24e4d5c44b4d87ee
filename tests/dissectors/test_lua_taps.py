"""The plugin's statistics taps (``tshark -z ub,conv`` / ``-z ub,srt``) against ubpkt's own
tables (``ubpkt stats conv`` TP-channel rows, ``ubpkt stats srt``) on the same captures: the
sample captures, the built analysis captures (both directions, TPACKs, CNA-addressed native UB)
and the ns-3-UB traces."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from test_lua import LUA, _find_tshark, write
from test_lua_analysis import psns, transactions
from ubpkt.capture.stream import iter_records
from ubpkt.views.stats import ConvStats, SrtStats, _tns

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tshark():
    return _find_tshark()


def run_tap(tshark, pcap, z: str, two_pass: bool = False) -> list[str]:
    """The table lines a -z tap prints (between its ==== rules)."""
    res = subprocess.run([tshark, "-n", "-q", "-X", f"lua_script:{LUA}", "-r", str(pcap), "-z", z,
                          *(["-2"] if two_pass else [])],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "Lua" not in res.stderr and "error" not in res.stderr, \
        res.stderr
    lines = res.stdout.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=" * 20)]
    assert len(rules) == 2, res.stdout
    return lines[rules[0] + 1:rules[1]]


def tap_conv(lines) -> dict:
    """{frozenset of the two ends: ({end: (frames sent, bytes sent)}, rel start ns, duration
    ns)}; an end is 'address,tpn'."""
    assert lines[0].startswith("UB TP-channel conversations") and lines[1].split()[0] == "A"
    out = {}
    for line in lines[2:]:
        a, b, fab, bab, fba, bba, frames, nbytes, start, dur = line.split()
        assert int(frames) == int(fab) + int(fba) and int(nbytes) == int(bab) + int(bba)
        sent = {a: (int(fab), int(bab)), b: (int(fba), int(bba))}
        out[frozenset(sent)] = (sent, round(float(start) * 1e9), round(float(dur) * 1e9))
    return out


def ubpkt_conv(pcap) -> dict:
    st = ConvStats()
    first = None
    for rec in iter_records(str(pcap)):
        if first is None:
            first = _tns(rec)
        st.add(rec)
    out = {}
    for r in st.to_json()["rows"]:
        if r["type"] != "TP channel":
            continue
        (a, ta), (b, tb) = r["key"]
        ea, eb = f"{a},{ta}", f"{b},{tb}"
        sent = {ea: (r["packets_ab"], r["bytes_ab"]), eb: (r["packets_ba"], r["bytes_ba"])}
        out[frozenset(sent)] = (sent, r["start_ns"] - first, r["duration_ns"])
    return out


def tap_srt(lines) -> tuple[dict, int]:
    assert lines[0].startswith("UB service response time") and lines[1].split()[0] == "opcode"
    rows = {}
    for line in lines[2:-1]:
        name, n, lo, hi, avg = line.split()
        rows[name] = (int(n), *(round(float(x) * 1e9) for x in (lo, hi, avg)))
    assert lines[-1].startswith("requests unanswered: ")
    return rows, int(lines[-1].split(": ")[1])


def ubpkt_srt(pcap) -> tuple[dict, int]:
    st = SrtStats()
    for rec in iter_records(str(pcap)):
        st.add(rec)
    j = st.to_json()
    return ({r["opcode"]: (r["count"], r["min_ns"], r["max_ns"], r["avg_ns"]) for r in j["rows"]},
            j["unanswered"])


def _captures(tmp_path, ns3: bool):
    out = [ROOT / "captures" / "uboe_transactions.pcap", ROOT / "captures" / "ub_native.pcap",
           write(tmp_path / "transactions.pcap", 1, transactions()),
           write(tmp_path / "psns.pcap", 1, psns())]
    if ns3:
        from conftest import NS3_DIR
        out += sorted(NS3_DIR.glob("*.pcap")) if NS3_DIR.exists() else []
    return out


def test_conv_tap_matches_ubpkt(tshark, tmp_path):
    seen_both_ways = False
    for pcap in _captures(tmp_path, ns3=True):
        ref = ubpkt_conv(pcap)
        got = tap_conv(run_tap(tshark, pcap, "ub,conv"))
        assert got == ref, f"{pcap.name}: tap {got}\nubpkt {ref}"
        seen_both_ways |= any(all(v[0] for v in sent.values()) for sent, *_ in got.values())
    assert seen_both_ways, "a capture has a TP channel with frames both ways"


def test_srt_tap_matches_ubpkt(tshark, tmp_path):
    answered = 0
    for pcap in _captures(tmp_path, ns3=True):
        ref = ubpkt_srt(pcap)
        for two_pass in (False, True):
            got = tap_srt(run_tap(tshark, pcap, "ub,srt", two_pass))
            assert got == ref, f"{pcap.name} (-2: {two_pass}): tap {got}\nubpkt {ref}"
        answered += sum(n for n, *_ in ref[0].values())
    assert answered >= 5


def test_tap_filter(tshark, tmp_path):
    """-z ub,conv,FILTER counts the frames the filter passes only."""
    pcap = write(tmp_path / "psns.pcap", 1, psns())
    everything = tap_conv(run_tap(tshark, pcap, "ub,conv"))
    acks_only = tap_conv(run_tap(tshark, pcap, "ub,conv,ub.rtph.tpopcode != 1"))
    assert len(everything) == 2 and len(acks_only) == 2
    for key, (sent, _, _) in acks_only.items():
        # the TP responses go from 10.0.0.2 only; the data frames are gone
        assert sum(f for f, _ in sent.values()) == sum(
            f for e, (f, _) in sent.items() if e.startswith("10.0.0.2,"))
        assert sum(f for f, _ in sent.values()) < sum(f for f, _ in everything[key][0].values())
