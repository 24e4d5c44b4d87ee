"""The fault ledger: scripted faults and engine events, classified into outcomes."""
from __future__ import annotations

from ubpkt.sim import Ledger, summarize
from ubpkt.stack.engine import (ChannelError, Completed, Discarded, FaultInjected, ResponseSent,
                                Retransmitted)
from ubpkt.stack.network import Framer, Path

from sim_helpers import taack_ta, write_ta

A, B = "a", "b"             # a: channel 5 (sends data), b: channel 7 (acknowledges)
FR = Framer(Path())
FR_N = Framer(Path(kind="cna24"))


def data(psn, last=0):
    return FR.rtp_data(5, 7, psn, write_ta(psn), b"payload", last=last)


def ack(psn):
    return FR.tp_response(7, 5, psn)


def rec(led, at, kind, frame, link="a->b", lt=1, detail=None):
    src, dst = link.split("->")
    return led.record(at, link, kind, frame, linktype=lt, src=src, dst=dst, detail=detail)


def test_summary_fields():
    s = summarize(data(42, last=1))
    assert s["mode"] == "rtp" and (s["tpopcode"], s["srctpn"], s["dsttpn"], s["psn"],
                                   s["last"]) == (1, 5, 7, 42, 1)
    assert (s["taopcode_name"], s["tassn"]) == ("Write", 42)
    t = summarize(FR.rtp_data(7, 5, 3, taack_ta(9)))
    assert (t["taopcode"], t["tassn"]) == (0x11, 9)
    assert summarize(FR.utp_data(write_ta(), b"x"))["mode"] == "utp"
    assert summarize(FR_N.ctp_data(write_ta(), b"x"), 148)["mode"] == "ctp"
    assert summarize(b"\x00" * 30)["mode"] is None


def test_scripted_outcomes():
    seen = []
    led = Ledger(listener=seen.append)
    f_nak = rec(led, 100, "loss", data(10))
    f_rto = rec(led, 200, "corrupt", data(20))
    f_ack_benign = rec(led, 300, "loss", ack(30), "b->a")
    f_ack_rto = rec(led, 400, "drop", ack(40), "b->a")
    f_dup = rec(led, 500, "duplicate", data(50))
    f_reo_benign = rec(led, 600, "reorder", data(60))
    f_reo_nak = rec(led, 610, "reorder", data(61),
                    detail={"overtaken_by": [{"mode": "rtp", "tpopcode": 1, "srctpn": 5,
                                              "psn": 62, "at": 611}]})
    f_utp = rec(led, 700, "loss", FR.utp_data(write_ta(), b"x"))
    f_ctp = rec(led, 710, "blackout", FR_N.ctp_data(write_ta(), b"x"), lt=148)
    f_err = rec(led, 800, "loss", data(70))
    f_none = rec(led, 900, "tail_drop", data(80))
    f_rnr = rec(led, 1000, "loss", data(100))
    f_taack = rec(led, 1100, "loss", FR.rtp_data(7, 5, 300, taack_ta(1)), "b->a")
    assert len(seen) == 13

    ev = [
        (A, Retransmitted(150, 5, 10, "nak")), (A, Retransmitted(150, 5, 11, "nak")),
        (A, Retransmitted(151, 5, 12, "nak")),                 # the rest of the GBN burst
        (B, Discarded(205, 7, None, "bad_icrc")),
        (A, Retransmitted(250, 5, 20, "rto")),
        (B, ResponseSent(300, 7, 30, "tpack")),                # the lost one itself
        (B, ResponseSent(350, 7, 31, "tpack")),                # covers 30
        (A, Retransmitted(450, 5, 38, "rto")),                 # before any cover of 40
        (B, ResponseSent(460, 7, 41, "tpack")),
        (B, Discarded(505, 7, 50, "duplicate")),
        (A, Retransmitted(620, 5, 62, "nak")),                 # the overtaker is resent
        (A, ChannelError(850, 5, "retry_exceeded", "retries exhausted")),
        (B, ResponseSent(1010, 7, 99, "rnr")),
        (A, Retransmitted(1050, 5, 100, "rnr")),
        (B, Retransmitted(1200, 7, 300, "rto")),
        (A, Completed(1300, 1, "write", "success", 4)),
        ("a->b", FaultInjected(100, 1, "loss", "a->b", {})),  # ignored
    ]
    rep = led.resolve(ev).report()
    got = {f.id: (f.outcome, f.by, f.error) for f in led.faults}
    assert got[f_nak.id] == ("recovered", "nak", None)
    assert got[f_rto.id] == ("recovered", "rto", None)
    assert got[f_ack_benign.id] == ("benign", None, None)
    assert got[f_ack_rto.id] == ("recovered", "rto", None)
    assert got[f_dup.id] == ("benign", None, None) and f_dup.note == "discarded by the receiver"
    assert got[f_reo_benign.id] == ("benign", None, None)
    assert got[f_reo_nak.id] == ("recovered", "nak", None)
    assert got[f_utp.id][0] == got[f_ctp.id][0] == "expected_loss"
    assert got[f_err.id] == ("unrecovered", None, "retry_exceeded")
    assert got[f_none.id] == ("unrecovered", None, None) and "run ended" in f_none.note
    assert got[f_rnr.id] == ("recovered", "rnr", None)
    assert got[f_taack.id] == ("recovered", "rto", None)
    assert f_taack.summary["taopcode"] == 0x11
    assert (rep["injected"], rep["recovered"], rep["benign"], rep["expected_loss"],
            rep["unrecovered"], rep["unattributed"]) == (13, 6, 3, 2, 2, 0)
    assert rep["recovered_by"] == {"nak": 2, "rto": 3, "rnr": 1}
    assert rep["by_kind"]["loss"] == 6
    assert [f["id"] for f in rep["faults"]] == list(range(1, 14))


def test_unattributed():
    led = Ledger()
    rec(led, 100, "loss", data(10))
    ev = [
        (A, Retransmitted(150, 5, 10, "rto")),
        (A, Retransmitted(500, 5, 90, "rto")),     # no fault behind it: one burst of three
        (A, Retransmitted(500, 5, 91, "rto")),
        (A, Retransmitted(501, 5, 92, "rto")),
        (A, Retransmitted(600, 5, 95, "rnr")),     # RNR with no RNR response
        (B, Discarded(700, 7, None, "bad_icrc")),  # corruption nobody injected
        (B, Discarded(710, 7, 3, "duplicate")),    # a consequence, not a gap
        (A, ChannelError(800, 9, "retry_exceeded", "")),
    ]
    rep = led.resolve(ev).report()
    assert rep["recovered"] == 1 and rep["unattributed"] == 4
    u = rep["unattributed_events"]
    assert [x["event"] for x in u] == ["Retransmitted", "Retransmitted", "Discarded",
                                       "ChannelError"]
    assert u[0]["psns"] == [90, 91, 92] and u[1]["psns"] == [95]


def test_a_lost_retransmission_chains():
    """A retransmission lost again: its own Retransmitted event (same time) recovers the first
    loss, the next one the second; the first fault ends as the chain does."""
    led = Ledger()
    first = rec(led, 100, "loss", data(7))
    second = rec(led, 1000, "corrupt", data(7))
    ev = [(A, Retransmitted(1000, 5, 7, "rto")), (A, Retransmitted(2000, 5, 7, "nak"))]
    rep = led.resolve(ev).report()
    assert (first.outcome, first.by, second.outcome, second.by) == (
        "recovered", "nak", "recovered", "nak")
    assert first.note == f"the retransmission was lost too (fault {second.id})"
    assert rep["unattributed"] == 0
    # the last copy lost, then the channel gave up: every fault of the chain is unrecovered
    third = rec(led, 2000, "blackout", data(7))
    rep = led.resolve(ev + [(A, ChannelError(3000, 5, "retry_exceeded", "gave up"))]).report()
    assert [f.outcome for f in (first, second, third)] == ["unrecovered"] * 3
    assert {f.error for f in (first, second, third)} == {"retry_exceeded"}
    # nothing after the last copy: unrecovered, the run ended
    rep = led.resolve(ev).report()
    assert third.outcome == "unrecovered" and third.error is None and first.outcome == "unrecovered"


def test_a_redundant_copy_lost_is_benign():
    led = Ledger()
    f = rec(led, 1000, "loss", data(7))            # a copy sent again at 1000: the first arrived
    led.resolve([(A, Retransmitted(1000, 5, 7, "rto"))])
    assert f.outcome == "benign" and "another copy" in f.note
    led = Ledger()
    c = rec(led, 10, "corrupt", data(8))
    d = rec(led, 10, "duplicate", data(8))           # the intact duplicate got through
    led.resolve([])
    assert (c.outcome, d.outcome) == ("benign", "benign")


def test_lost_data_claims_before_a_lost_response():
    led = Ledger()
    nak = rec(led, 5, "loss", FR.tp_response(7, 5, 9, rspst=3), "b->a")
    lost = rec(led, 10, "loss", data(9))
    led.resolve([(A, Retransmitted(100, 5, 9, "rto"))])
    assert (lost.outcome, lost.by) == ("recovered", "rto")
    assert nak.outcome == "benign"


def test_a_late_nak_after_the_timeout_is_explained():
    led = Ledger()
    rec(led, 10, "loss", data(20))
    ev = [(B, ResponseSent(40, 7, 20, "tpnak")),
          (A, Retransmitted(50, 5, 20, "rto")), (A, Retransmitted(50, 5, 21, "rto")),
          (A, Retransmitted(60, 5, 20, "nak")), (A, Retransmitted(60, 5, 21, "nak"))]
    assert led.resolve(ev).report()["unattributed"] == 0
    # with no fault on the channel the same NAK round is unattributed
    led = Ledger()
    rep = led.resolve(ev[0:1] + ev[3:]).report()
    assert rep["unattributed"] == 1


def test_plain_events_and_psn_wrap():
    led = Ledger()
    f = rec(led, 10, "loss", ack(2), "b->a")           # acknowledges up to 2 after the wrap
    ev = [Retransmitted(50, 5, (1 << 24) - 1, "rto")]   # plain events, no node
    led.resolve(ev)
    assert (f.outcome, f.by) == ("recovered", "rto")
    led2 = Ledger()
    g = rec(led2, 10, "loss", ack((1 << 24) - 1), "b->a")
    led2.resolve([ResponseSent(20, 7, 0, "tpack")])     # covers across the wrap
    assert g.outcome == "benign"


def test_report_before_resolve():
    led = Ledger()
    rec(led, 1, "loss", data(1))
    rep = led.report()
    assert rep["injected"] == 1 and rep["resolved"] is False and rep["faults"][0]["outcome"] is None


def test_lost_response_nothing_followed_is_benign():
    led = Ledger()
    f = rec(led, 10, "loss", ack(5), "b->a")
    led.resolve([])
    assert f.outcome == "benign" and f.note == "no retransmission followed"


def test_endpoint_bad_frame_discard_matches_corruption():
    led = Ledger()
    f = rec(led, 10, "corrupt", data(1))
    rep = led.resolve([(B, Discarded(11, -1, None, "bad_frame")),
                       (A, Retransmitted(90, 5, 1, "rto"))]).report()
    assert f.outcome == "recovered" and rep["unattributed"] == 0
    rep = led.resolve([(B, Discarded(11, -1, None, "bad_frame")),
                       (B, Discarded(12, -1, None, "bad_frame")),
                       (A, Retransmitted(90, 5, 1, "rto"))]).report()
    assert rep["unattributed"] == 1 and rep["unattributed_events"][0]["reason"] == "bad_frame"


def test_a_selective_round_is_one_burst():
    led = Ledger()
    rec(led, 10, "loss", data(12))
    ev = [(A, Retransmitted(50, 5, 10, "sack")), (A, Retransmitted(50, 5, 12, "sack")),
          (A, Retransmitted(50, 5, 14, "sack")), (A, Retransmitted(60, 5, 20, "sack"))]
    rep = led.resolve(ev).report()
    assert rep["recovered_by"] == {"sack": 1}
    assert [u["psns"] for u in rep["unattributed_events"]] == [[20]]
