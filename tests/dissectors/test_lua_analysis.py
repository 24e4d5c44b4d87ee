"""The plugin's analysis over several frames (request/response links, PSN analysis per TP
channel) against ubpkt's own (``ubpkt.views.analysis``) on the same built captures, frame by
frame: ``tshark -2`` (two passes: response_in and no_response too) and one pass."""
from __future__ import annotations

import subprocess

import pytest

from test_lua import LUA, _find_tshark, btah, enc, maetah, rtph, uboe, write
from ubpkt.capture.stream import iter_records
from ubpkt.views.analysis import ANALYSIS_KEYS, Analyzer, first_pass

A, B = "10.0.0.1", "10.0.0.2"
_SECONDS = ("ub.analysis.response_time", "ub.analysis.ack_time")


@pytest.fixture(scope="module")
def tshark():
    return _find_tshark()


def atah(op: int, tassn: int, rc: int = 0x1F, **kw) -> bytes:
    return enc("ub.atah", taopcode=op, ini_tassn=tassn, ini_rc_id=rc, **kw)


def data(psn: int, src=A, dst=B, **kw) -> bytes:
    """An RTP data packet (a Write without a TAACK wanted) with this PSN."""
    return uboe(rtph(psn=psn, **kw) + btah(0x03, tassn=psn % 4096, no_taack=1)
                + maetah(length=8) + bytes(8), src=src, dst=dst)


def transactions() -> list[bytes]:
    """Read answered, Read unanswered, Write answered by a TAACK, a response nobody asked for,
    an atomic answered with the wrong response opcode, a request repeated."""
    return [
        uboe(rtph(psn=1) + btah(0x06, tassn=10) + maetah(length=64), src=A, dst=B),
        uboe(rtph(psn=2) + btah(0x06, tassn=11) + maetah(length=64), src=A, dst=B),
        uboe(rtph(psn=3) + btah(0x03, tassn=12) + maetah(length=8) + bytes(8), src=A, dst=B),
        uboe(rtph(psn=500, srctpn=0x456, dsttpn=0x123) + atah(0x12, 10) + bytes(64),
             src=B, dst=A),
        uboe(rtph(psn=501, srctpn=0x456, dsttpn=0x123) + atah(0x11, 12), src=B, dst=A),
        uboe(rtph(psn=502, srctpn=0x456, dsttpn=0x123) + atah(0x11, 99), src=B, dst=A),
        uboe(rtph(psn=4) + btah(0x09, tassn=13, ud_flag=1) + enc("ub.udetah", ud=3 << 20)
             + maetah(length=8) + bytes(8), src=A, dst=B),
        uboe(rtph(psn=503, srctpn=0x456, dsttpn=0x123) + atah(0x11, 13), src=B, dst=A),
        uboe(rtph(psn=5) + btah(0x06, tassn=10, ini_rc_type=1) + maetah(length=64), src=A, dst=B),
        uboe(rtph(psn=504, srctpn=0x456, dsttpn=0x123) + atah(0x12, 10, ini_rc_type=1)
             + bytes(64), src=B, dst=A),
    ]


def psns() -> list[bytes]:
    """A drop, the late packet, a duplicate, an older retransmission, a second channel that
    wraps past 2^24 - 1, a TPACK (not data: no PSN analysis; it acknowledges PSNs up to 101 of
    the first channel) and TP responses, three of them TPNAKs (acknowledging nothing), then a
    retransmission after its TPACK, a TPSACK acknowledging up to 104 (its bitmap not read), a
    duplicate TPACK (nothing left to acknowledge) and a TPACK-CC across the second channel's
    wrap."""
    out = [data(p) for p in (100, 101, 104, 102, 102, 105, 101, 103)]
    out += [data(p, srctpn=0x777) for p in (0xFFFFFE, 0xFFFFFF, 0, 2, 1, 0xFFFFFF)]
    out.append(uboe(rtph(tpopcode=2, psn=101, srctpn=0x456, dsttpn=0x123, a=0), src=B, dst=A))
    # TPNAKs (RNR, Completer Error; -CC form) and a TPACK carrying a TA response
    out += [uboe(rtph(tpopcode=op, psn=102, srctpn=0x456, dsttpn=0x123, a=0, rspst=st), src=B,
                 dst=A) for op, st in ((2, 1), (2, 3), (3, 2), (2, 5))]
    out.append(data(101))
    out.append(uboe(rtph(tpopcode=5, psn=104, srctpn=0x456, dsttpn=0x123, a=0)
                    + enc("ub.saetph", bitmapsize=1, maxrcvpsn=105) + bytes(16), src=B, dst=A))
    out.append(uboe(rtph(tpopcode=2, psn=104, srctpn=0x456, dsttpn=0x123, a=0), src=B, dst=A))
    out.append(uboe(rtph(tpopcode=3, psn=0, srctpn=0x456, dsttpn=0x777, a=0)
                    + enc("ub.cetph_caqm", ack_seq=1), src=B, dst=A))
    return out


def two_hosts() -> list[bytes]:
    """Two TP channels with the same TPNs and PSNs that differ only in their IP addresses,
    interleaved, and a Read per host pair with the same TASSN: merged into one channel (the
    addresses lost) the analysis would see duplicates and a response to the wrong request.
    The first pass of tshark -2 builds no tree, so the addresses must come from elsewhere than
    the ip.src field there (pinfo's network addresses)."""
    c, d = "10.0.0.3", "10.0.0.4"
    out = []
    for p in (1, 2, 3):
        out += [data(p), data(p, src=c, dst=d)]
    out += [uboe(rtph(psn=4) + btah(0x06, tassn=20) + maetah(length=64), src=A, dst=B),
            uboe(rtph(psn=4) + btah(0x06, tassn=20) + maetah(length=64), src=c, dst=d),
            uboe(rtph(psn=600, srctpn=0x456, dsttpn=0x123) + atah(0x12, 20) + bytes(64),
                 src=d, dst=c)]
    return out


def long_window() -> list[bytes]:
    """More data frames waiting for their acknowledgement than a channel keeps (max_unacked,
    4096): the oldest are dropped; TPACKs acknowledge part of them (the rest move down) while
    more data frames wrap around the plugin's ring of waiting frames, and a last TPACK
    acknowledges what is still kept."""
    def ack(psn: int) -> bytes:
        return uboe(rtph(tpopcode=2, psn=psn, srctpn=0x456, dsttpn=0x123, a=0), src=B, dst=A)
    out = [data(p) for p in range(10000)]
    out.append(ack(8000))
    out += [data(p) for p in range(10000, 12500)]
    out.append(ack(12499))
    return out


def ubpkt_analysis(pcap, two_pass: bool) -> list[dict]:
    recs = list(iter_records(str(pcap)))
    an = Analyzer(linked=first_pass(iter_records(str(pcap))) if two_pass else None)
    return [an.add(r) for r in recs]


def tshark_analysis(tshark, pcap, two_pass: bool, extra=()) -> list[dict]:
    keys = list(ANALYSIS_KEYS)
    cmd = [tshark, "-n", "-X", f"lua_script:{LUA}", "-r", str(pcap), "-T", "fields",
           "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|",
           *(["-2"] if two_pass else []), *extra]
    for k in [*keys, "_ws.lua.error", "_ws.expert.message"]:
        cmd += ["-e", k]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "Lua" not in res.stderr, res.stderr
    rows = []
    for line in res.stdout.splitlines():
        cols = (line.split("\t") + [""] * (len(keys) + 2))[:len(keys) + 2]
        assert not cols[len(keys)], cols[len(keys) + 1]
        row = {}
        for k, text in zip(keys, cols):
            if text:
                row[k] = float(text) if k in _SECONDS else int(text)
        row["_experts"] = cols[-1]
        rows.append(row)
    return rows


def same(ref: list[dict], got: list[dict]) -> list[str]:
    assert len(ref) == len(got)
    errs = []
    for n, (r, g) in enumerate(zip(ref, got), 1):
        g = {k: v for k, v in g.items() if k != "_experts"}
        r = dict(r)
        for key in _SECONDS:
            if key in r:
                want, have = r.pop(key), g.pop(key, None)
                if have is None or abs(want - have) > 1e-9:
                    errs.append(f"frame {n}: {key} ubpkt {want} tshark {have}")
        if r != g:
            errs.append(f"frame {n}: ubpkt {r} tshark {g}")
    return errs


@pytest.mark.parametrize("two_pass", [True, False], ids=["two-pass", "one-pass"])
@pytest.mark.parametrize("build", [transactions, psns, two_hosts, long_window])
def test_analysis_matches_ubpkt(tshark, tmp_path, build, two_pass):
    pcap = write(tmp_path / f"{build.__name__}.pcap", 1, build())
    ref = ubpkt_analysis(pcap, two_pass)
    assert any(ref), "the capture exercises the analysis"
    got = tshark_analysis(tshark, pcap, two_pass)
    errs = same(ref, got)
    assert not errs, "\n".join(errs)
    if build is long_window:    # what the window case is for: both ACKs reach the cap's edge
        acked = [r["ub.analysis.acked_frames"] for r in ref if "ub.analysis.acked_frames" in r]
        # PSNs 5904..8000 (the older ones dropped); 8404..12499 (8001..8403 dropped)
        assert acked == [8000 - (10000 - 4096) + 1, 4096], acked


def test_what_the_captures_exercise(tshark, tmp_path):
    """The built captures hit every analysis field, and the expert items go with the flags."""
    rows = []
    for build in (transactions, psns):
        pcap = write(tmp_path / f"{build.__name__}.pcap", 1, build())
        rows += tshark_analysis(tshark, pcap, True)
    seen = {k for r in rows for k in r if k != "_experts"}
    assert seen == set(ANALYSIS_KEYS)
    for r in rows:
        ex = r["_experts"]
        assert ("Request without a response" in ex) == ("ub.analysis.no_response" in r)
        assert ("missing before this one" in ex) == ("ub.analysis.psn_gap" in r)
        assert ("Out of order" in ex) == ("ub.analysis.out_of_order" in r)
        assert ("Retransmission" in ex) == ("ub.analysis.retransmission" in r)
        assert ("Duplicate" in ex) == ("ub.analysis.duplicate" in r)
        assert ("TPNAK" in ex) == ("ub.analysis.tpnak" in r)


def test_frame_links_filter(tshark, tmp_path):
    """response_in / request_in are frame numbers a display filter can follow."""
    pcap = write(tmp_path / "t.pcap", 1, transactions())
    res = subprocess.run([tshark, "-n", "-2", "-X", f"lua_script:{LUA}", "-r", str(pcap), "-Y",
                          "ub.analysis.response_in", "-T", "fields", "-e", "frame.number", "-e",
                          "ub.analysis.response_in"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["1\t4", "3\t5", "9\t10"], res.stdout


def test_cumulative_acks(tshark, tmp_path):
    """The ACK links of psns(), spelled out: a TPACK acknowledges every waiting data frame of
    the reverse channel at or behind its PSN (ack_to: the last frame carrying that PSN), a
    TPNAK none, a TPSACK up to its PSN, a repeated TPACK nothing, a TPACK-CC across the wrap."""
    pcap = write(tmp_path / "psns.pcap", 1, psns())
    rows = tshark_analysis(tshark, pcap, True)
    ack_in = {n: r["ub.analysis.ack_in"] for n, r in enumerate(rows, 1)
              if "ub.analysis.ack_in" in r}
    acks = {n: (r.get("ub.analysis.acked_frames"), r.get("ub.analysis.ack_to"))
            for n, r in enumerate(rows, 1) if "ub.analysis.acked_frames" in r}
    # frames 1-8: PSNs 100 101 104 102 102 105 101 103; 9-14 the wrapping channel; 15 TPACK 101;
    # 16-18 TPNAKs; 19 a TPACK carrying a TA response (RSPST 5) for 102; 20 data 101 again;
    # 21 TPSACK 104; 22 TPACK 104 (nothing left); 23 TPACK-CC 0 (second channel, past the wrap)
    assert acks == {15: (3, 7), 19: (2, 5), 21: (3, 3), 23: (4, 11)}, acks
    assert ack_in == {1: 15, 2: 15, 7: 15, 4: 19, 5: 19, 3: 21, 8: 21, 20: 21,
                      9: 23, 10: 23, 11: 23, 14: 23}, ack_in   # 105 (frame 6): never
    assert "ub.analysis.ack_time_ns" in rows[14] and rows[14]["ub.analysis.ack_time_ns"] == 8000
