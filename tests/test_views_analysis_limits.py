"""The analyzer's caps (AnalysisLimits): past ``max_pending`` / ``max_channels`` the OLDEST
open transaction / TP channel is dropped and counted, whatever was looked up or answered since
(the eviction order the plain-dict version had, now with an O(1) eviction)."""
from __future__ import annotations

from ubpkt.views.analysis import AnalysisLimits, Analyzer

A, B = "10.0.0.1", "10.0.0.2"


def read(tassn: int) -> dict:
    return {"ip.src": A, "ip.dst": B, "ub.btah.taopcode": 6, "ub.btah.ini_tassn": tassn,
            "ub.btah.taopcode_name": "Read"}


def read_response(tassn: int) -> dict:
    return {"ip.src": B, "ip.dst": A, "ub.atah.taopcode": 0x12, "ub.atah.ini_tassn": tassn}


def data(srctpn: int, psn: int) -> dict:
    return {"ip.src": A, "ip.dst": B, "ub.rtph.tpopcode": 1, "ub.rtph.srctpn": srctpn,
            "ub.rtph.dsttpn": 1, "ub.rtph.psn": psn}


def test_oldest_open_request_is_evicted():
    an = Analyzer(AnalysisLimits(max_pending=3), annotate=False)
    for frame, tassn in enumerate((1, 2, 3), 1):
        an.add_fields(frame, frame * 1000, read(tassn))
    # answering 2 leaves 1 and 3 open; 4 and 5 then push out 1 (the oldest), not 3
    assert "ub.analysis.response_time" in an.add_fields(4, 4000, read_response(2))
    for frame, tassn in ((5, 4), (6, 5)):
        an.add_fields(frame, frame * 1000, read(tassn))
    assert an.evicted["transactions"] == 1 and an.open_requests() == 3
    assert an.add_fields(7, 7000, read_response(1)) == {}          # forgotten: unmatched
    assert an.counts["unmatched_responses"] == 1
    for frame, tassn in ((8, 3), (9, 4), (10, 5)):
        assert "ub.analysis.response_time" in an.add_fields(frame, frame * 1000,
                                                             read_response(tassn))
    assert an.open_requests() == 0


def test_oldest_channel_is_evicted():
    an = Analyzer(AnalysisLimits(max_channels=2), annotate=False)
    an.add_fields(1, 0, data(10, 5))
    an.add_fields(2, 0, data(11, 5))
    an.add_fields(3, 0, data(10, 6))          # channel 10 seen again: still the oldest
    an.add_fields(4, 0, data(12, 5))          # pushes out channel 10
    assert an.evicted["channels"] == 1
    assert sorted(k[2] for k in an.channels) == [11, 12]
    # channel 10 starts afresh (PSN 9 is no gap of a channel it no longer knows) and pushes out
    # 11, now the oldest; 12 still knows its PSN 5
    assert "ub.analysis.psn_gap" not in an.add_fields(5, 0, data(10, 9))
    assert sorted(k[2] for k in an.channels) == [10, 12] and an.evicted["channels"] == 2
    assert an.add_fields(6, 0, data(12, 9)).get("ub.analysis.psn_gap")
