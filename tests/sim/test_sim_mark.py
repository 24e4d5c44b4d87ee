"""The ``mark`` fault (netem's ecn): UBoE IPv4 ECN CE or the CNA NTH's CCI, the ICRC still good;
recorded as ``mark``, benign in the ledger, ``echoed`` after a _CC response."""
from __future__ import annotations

import pytest

from ubpkt import decode
from ubpkt.sim import FaultInjector, FaultSpec, Ledger
from ubpkt.stack.engine import ResponseSent, Retransmitted
from ubpkt.stack.network import Framer, Path

from sim_helpers import write_ta

LT = {"uboe": 1, "ipv4": 148, "cna24": 148}


def through(inj, frames):
    out = []
    for f in frames:
        inj.push(f, 0)
        out += inj.pop(0)
    return out


def test_spec_parses_and_prints():
    sp = FaultSpec.parse("mark=0.1,loss=1%")
    assert sp.mark == 0.1 and FaultSpec.parse(str(sp)) == sp and "mark=0.1" in str(sp)
    assert FaultSpec.from_options(mark="5%").mark == 0.05
    with pytest.raises(ValueError):
        FaultSpec.parse("mark=2")


@pytest.mark.parametrize("kind", ["uboe", "ipv4", "cna24"])
def test_mark_sets_the_congestion_mark_and_keeps_the_icrc(kind):
    fr = Framer(Path(kind=kind))
    data = fr.rtp_data(5, 7, 9, write_ta(), b"payload", a=1)
    other = fr.utp_data(write_ta(), b"x") if kind == "uboe" else fr.ctp_data(write_ta(), b"x")
    ack = fr.tp_response(7, 5, 9)
    inj = FaultInjector("mark=1", linktype=LT[kind])
    out = through(inj, [data, ack, other])
    assert out[1] == ack                                  # responses are not data: untouched
    assert [f.kind for f in inj.ledger.faults] == ["mark", "mark"]
    for f in (out[0], out[2]):
        rec = decode(f, LT[kind])
        assert rec["fields"]["ub.icrc.status"] == "good"
        assert not [i for i in rec["issues"] if i["severity"] != "info"], rec["issues"]
        if kind == "uboe":
            assert rec["fields"]["ip.ecn"] == 3           # CE, checksum fixed (no issue)
        else:
            assert rec["fields"]["ub.cci.c"] == 1
        p = fr.parse(f)
        assert p.ce == 1
    assert inj.ledger.faults[0].summary["psn"] == 9
    # already marked: left alone, nothing recorded
    inj2 = FaultInjector("mark=1", linktype=LT[kind])
    assert through(inj2, [out[0]]) == [out[0]] and len(inj2.ledger) == 0


def test_mark_fecn_mode_and_script_and_seeds():
    fr = Framer(Path(kind="cna16"))
    f = bytearray(fr.ctp_data(write_ta(), b"x"))
    f[8:10] = (4 << 13 | 1).to_bytes(2, "big")            # FECN mode, light congestion
    out = through(FaultInjector("mark=1", linktype=148), [bytes(f)])[0]
    assert out[9] & 3 == 3 and decode(out, 148)["fields"]["ub.icrc.status"] == "good"
    fr = Framer(Path())
    frames = [fr.rtp_data(5, 7, i, write_ta(), b"p") for i in range(200)]
    inj = FaultInjector(script={"mark": {2, 5}})
    out = through(inj, frames)
    assert [i for i, o in enumerate(out) if o != frames[i]] == [1, 4]
    a = through(FaultInjector("mark=0.2,loss=0.1", seed=3), frames)
    b = through(FaultInjector("mark=0.2,loss=0.1", seed=3), frames)
    c = through(FaultInjector("loss=0.1", seed=3), frames)
    assert a == b and len(a) == len(c)                    # marks draw from their own stream
    assert sum(x != y for x, y in zip(a, c)) > 10


def test_ledger_mark_is_benign_echoed_and_claims_nothing():
    fr = Framer(Path())
    led = Ledger()
    m1 = led.record(100, "a->b", "mark", fr.rtp_data(5, 7, 10, write_ta(), b"p"),
                    src="a", dst="b")
    m2 = led.record(300, "a->b", "mark", fr.rtp_data(5, 7, 20, write_ta(), b"p"),
                    src="a", dst="b")
    ev = [("b", ResponseSent(150, 7, 10, "tpack_cc")),
          ("a", Retransmitted(400, 5, 20, "rto"))]
    rep = led.resolve(ev).report()
    assert (m1.outcome, m1.note) == ("benign", "echoed")
    assert (m2.outcome, m2.note) == ("benign", None)      # no _CC response after it
    assert rep["benign"] == 2 and rep["recovered"] == 0
    assert rep["unattributed"] == 1                       # the retransmission stays unexplained
