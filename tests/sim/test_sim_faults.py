"""FaultSpec parsing and each fault kind of the FaultInjector, at P=1 or scripted; seeds."""
from __future__ import annotations

import pytest

import ubpkt.sim.faults as faults_mod
from ubpkt import decode
from ubpkt.errors import FilterError
from ubpkt.sim import FaultInjector, FaultSpec, Ledger, corruptible_bits
from ubpkt.stack.network import Framer, Path

from sim_helpers import taack_ta, write_ta

FR = Framer(Path())


def numbered(n, size=64):
    return [i.to_bytes(4, "big") + bytes(size - 4) for i in range(n)]


def run(inj, frames, times=None):
    """Push frames (at ``times``, default all at 0) and collect (time, frame) out of it."""
    times = times or [0] * len(frames)
    out = []
    for f, t in zip(frames, times):
        inj.push(f, t)
        out += [(t, x) for x in inj.pop(t)]
    t = inj.next_deadline()
    while t is not None:
        out += [(t, x) for x in inj.pop(t)]
        t = inj.next_deadline()
    return out


def ids(out):
    return [int.from_bytes(f[:4], "big") for _, f in out]


# -- the spec --------------------------------------------------------------------------------
def test_parse_the_cli_string():
    sp = FaultSpec.parse("loss=0.01,duplicate=0.001,reorder=0.01:3,corrupt=1e-4,"
                         "blackout=1000000:2000000,drop='ub.rtph.tpopcode == 2'@1")
    assert (sp.loss, sp.duplicate, sp.reorder, sp.gap, sp.corrupt) == (0.01, 0.001, 0.01, 3, 1e-4)
    assert sp.blackout == ((1_000_000, 2_000_000),)
    assert sp.drop == (("ub.rtph.tpopcode == 2", 1),)
    assert FaultSpec.parse(str(sp)) == sp


def test_parse_list_dict_and_units():
    sp = FaultSpec.parse(["--loss=1%", "burst=4", "gap=2", "reorder=0.5", "corrupt=0.1:3",
                          "delay=1.5us", "jitter=100ns", "rate=10G", "blackout=1ms:2ms",
                          "blackout=5ms:6ms", "drop=ub.rtph.last == 1@2",
                          "drop=\"ub.atah.taopcode == 0x11\"", "seed=7"])
    assert sp.loss == 0.01 and sp.burst == 4 and sp.gap == 2 and sp.corrupt_bits == 3
    assert (sp.delay, sp.jitter, sp.rate, sp.seed) == (1500, 100, 10 ** 10, 7)
    assert sp.blackout == ((1_000_000, 2_000_000), (5_000_000, 6_000_000))
    assert sp.drop == (("ub.rtph.last == 1", 2), ("ub.atah.taopcode == 0x11", None))
    assert FaultSpec.parse(str(sp)) == sp
    d = FaultSpec.parse({"loss": 0.1, "blackout": ["0:10", (20, 30)], "drop": "ub.rtph.psn == 3"})
    assert d.blackout == ((0, 10), (20, 30)) and d.drop == (("ub.rtph.psn == 3", None),)
    assert FaultSpec.from_options(loss=None, duplicate=0.5, gap=None) == FaultSpec(duplicate=0.5)
    assert not FaultSpec.parse("") and not FaultSpec.parse(None) and FaultSpec(loss=0.1)
    ge = FaultSpec.parse("ge=0.1")
    assert ge.ge == (0.1, 0.9, 1.0, 0.0)


@pytest.mark.parametrize("bad", ["loss=2", "loss=x", "nope=1", "reorder=0.1:0", "blackout=5:1",
                                 "blackout=5", "drop='ub.rtph.psn =='", "drop='x'junk",
                                 "loss=0.5,burst=0.5", "loss=0.1,ge=0.1", "corrupt_region=some",
                                 "loss"])
def test_parse_errors(bad):
    with pytest.raises((ValueError, FilterError)):
        FaultSpec.parse(bad)


# -- each kind -------------------------------------------------------------------------------
def test_loss_all_and_none():
    inj = FaultInjector("loss=1")
    assert run(inj, numbered(10)) == []
    assert inj.stats["loss"] == 10 and len(inj.ledger) == 10
    assert [f.kind for f in inj.ledger.faults] == ["loss"] * 10
    inj = FaultInjector("loss=0")
    assert ids(run(inj, numbered(10))) == list(range(10))


def test_bernoulli_rate_and_seed_determinism():
    def schedule(seed, spec="loss=0.1"):
        inj = FaultInjector(spec, seed=seed)
        out = run(inj, numbered(5000, 8))
        lost = sorted(set(range(5000)) - set(ids(out)))
        return lost
    a, b, c = schedule(1), schedule(1), schedule(2)
    assert a == b and a != c
    assert 400 < len(a) < 600
    # another fault kind does not move the loss schedule (own random stream per kind)
    d = schedule(1, "loss=0.1,duplicate=0.3")
    assert d == a


def test_gilbert_elliott_long_run_rate():
    spec = FaultSpec.parse("ge=5%:30%:80%:1%")
    inj = FaultInjector(spec, seed=3)
    n = 100_000
    lost = 0
    for i in range(n):
        lost += inj._lost()[0]
    expected = spec.expected_loss_rate()
    assert abs(expected - (0.3 * 0.01 + 0.05 * 0.8) / 0.35) < 1e-12
    assert abs(lost / n - expected) < 0.01


def test_burst_loss_rate_and_burst_length():
    spec = FaultSpec.parse("loss=0.05,burst=5")
    assert abs(spec.expected_loss_rate() - 0.05) < 1e-12
    inj = FaultInjector(spec, seed=11)
    seq = [inj._lost()[0] for _ in range(100_000)]
    rate = sum(seq) / len(seq)
    runs, cur = [], 0
    for x in seq:
        if x:
            cur += 1
        elif cur:
            runs.append(cur)
            cur = 0
    assert abs(rate - 0.05) < 0.01
    assert 4.0 < sum(runs) / len(runs) < 6.0


def test_duplicate():
    inj = FaultInjector("duplicate=1")
    out = run(inj, numbered(4))
    assert ids(out) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert out[0][1] == out[1][1]
    assert [f.kind for f in inj.ledger.faults] == ["duplicate"] * 4


def test_reorder_scripted_gap():
    inj = FaultInjector("gap=3", script={"reorder": [2]})
    out = run(inj, numbered(6))
    assert ids(out) == [0, 2, 3, 4, 1, 5]
    assert all(t == 0 for t, _ in out)
    f, = inj.ledger.faults
    assert f.kind == "reorder" and f.detail["gap"] == 3 and len(f.detail["overtaken_by"]) == 3


def test_reorder_hold_timeout():
    inj = FaultInjector("reorder=0:5,hold=2us", script={"reorder": [3]})
    out = run(inj, numbered(3), [0, 10, 20])
    assert ids(out) == [0, 1, 2] and [t for t, _ in out] == [0, 10, 2020]
    # P=1: every frame held: released one by one at their hold deadlines, order kept
    inj = FaultInjector("reorder=1,hold=100")
    out = run(inj, numbered(3), [0, 10, 20])
    assert ids(out) == [0, 1, 2] and [t for t, _ in out] == [100, 110, 120]


def test_delay_and_rate():
    inj = FaultInjector("delay=1000,rate=8G")
    out = run(inj, [bytes(100)] * 3)
    assert [t for t, _ in out] == [1100, 1200, 1300]


def test_jitter_bounds_and_reorder_records():
    inj = FaultInjector("delay=1000,jitter=400", seed=5)
    n = 300
    frames = [FR.rtp_data(5, 7, i, write_ta(), b"x") for i in range(n)]
    releases = {}
    order = []
    for i, f in enumerate(frames):
        inj.push(f, i * 100)
    t = inj.next_deadline()
    while t is not None:
        for x in inj.pop(t):
            psn = FR.parse(x).psn
            releases[psn] = t
            order.append(psn)
        t = inj.next_deadline()
    assert sorted(order) == list(range(n))
    for i in range(n):
        assert 600 <= releases[i] - i * 100 <= 1400
    late = {f.summary["psn"] for f in inj.ledger.faults}
    assert {f.kind for f in inj.ledger.faults} == {"reorder"}
    # exactly the frames something overtook are recorded
    overtaken = {p for k, p in enumerate(order) if any(q > p for q in order[:k])}
    assert late == overtaken and late


def test_blackout():
    inj = FaultInjector("blackout=100:200")
    out = run(inj, numbered(5), [50, 100, 150, 199, 200])
    assert ids(out) == [0, 4]
    assert [f.kind for f in inj.ledger.faults] == ["blackout"] * 3
    assert inj.ledger.faults[0].detail["window"] == [100, 200]


@pytest.mark.parametrize("kind,lt", [("uboe", 1), ("ipv4", 148), ("cna24", 148)])
def test_corrupt_every_frame_caught_by_the_icrc(kind, lt):
    fr = Framer(Path(kind=kind))
    frames = [fr.rtp_data(5, 7, i, write_ta(), b"payload" * i) for i in range(20)]
    frames += [fr.tp_response(7, 5, i) for i in range(10)]
    inj = FaultInjector("corrupt=1:3", seed=4, linktype=lt)
    out = run(inj, frames)
    assert len(out) == len(frames)
    for (_, bad), good, fault in zip(out, frames, inj.ledger.faults):
        diff = sum(bin(a ^ b).count("1") for a, b in zip(bad, good))
        assert 1 <= diff <= 3 and diff == len(fault.detail["bits"])
        assert fault.detail["detectable"] is True
        rec = decode(bad, lt)
        assert rec["fields"]["ub.icrc.status"] == "bad"
        assert fr.parse(bad) is None
        # the ledger summarises the frame before damage
        assert fault.summary["psn"] == fr.parse(good).psn


@pytest.mark.parametrize("kind,lt", [("uboe", 1), ("ipv4", 148)])
def test_corruptible_bits_single_flips_all_detected(kind, lt):
    fr = Framer(Path(kind=kind))
    for frame in (fr.rtp_data(5, 7, 9, write_ta(), b"abcd", last=1), fr.tp_response(7, 5, 9),
                  fr.rtp_data(7, 5, 3, taack_ta())):
        ranges, detectable = corruptible_bits(frame, lt)
        assert detectable and ranges
        for a, b in ranges:
            for bit in range(a, b, 3):
                x = bytearray(frame)
                x[bit >> 3] ^= 0x80 >> (bit & 7)
                assert decode(bytes(x), lt)["fields"].get("ub.icrc.status") == "bad", bit


def test_corrupt_bypass_is_not_detectable():
    fr = Framer(Path(kind="cna16"))
    from ubpkt import encode_layers
    ta = encode_layers([("ub.btah_c", {"taopcode": "Write", "ini_tassn": 1}),
                        ("ub.maetah_c", {"address": 0x1000, "len_code": 0})])
    inj = FaultInjector("corrupt=1", linktype=148)
    run(inj, [fr.bypass_data(ta, b"abcd")])
    f, = inj.ledger.faults
    assert f.detail["detectable"] is False and f.summary["mode"] == "bypass"


def test_scripted_loss_and_corrupt():
    inj = FaultInjector(script={"loss": [2, 4], "corrupt": [3]})
    frames = [FR.rtp_data(5, 7, i, write_ta(), b"x") for i in range(5)]
    out = run(inj, frames)
    assert [x for _, x in out][0] == frames[0] and len(out) == 3
    assert [(f.kind, f.summary["psn"]) for f in inj.ledger.faults] == [
        ("loss", 1), ("corrupt", 2), ("loss", 3)]
    with pytest.raises(ValueError):
        FaultInjector(script={"explode": [1]})


# -- drop filters on real UB frames ---------------------------------------------------------------
def traffic():
    """data 0..5 (the last one Last), a TPACK after each, a TAACK at the end."""
    out = []
    for i in range(6):
        out.append(FR.rtp_data(5, 7, i, write_ta(i), b"data", last=int(i == 5)))
        out.append(FR.tp_response(7, 5, i))
    out.append(FR.rtp_data(7, 5, 100, taack_ta(6)))
    return out


def psns_of(out):
    return [(FR.parse(x).tpopcode, FR.parse(x).psn) for _, x in out]


def test_drop_nth_tpack():
    inj = FaultInjector("drop='ub.rtph.tpopcode == 2'@2")
    out = run(inj, traffic())
    got = psns_of(out)
    assert (2, 1) not in got and (2, 0) in got and (2, 2) in got and len(got) == 12
    f, = inj.ledger.faults
    assert (f.kind, f.summary["tpopcode"], f.summary["psn"]) == ("drop", 2, 1)
    assert f.detail == {"filter": "ub.rtph.tpopcode == 2", "match": 2}


def test_drop_every_match_last_and_taack():
    inj = FaultInjector("drop='ub.rtph.tpopcode == 2'")
    assert all(op != 2 for op, _ in psns_of(run(inj, traffic())))
    assert len(inj.ledger) == 6
    inj = FaultInjector("drop='ub.rtph.last == 1'@1")
    got = psns_of(run(inj, traffic()))
    assert (1, 5) not in got and len(got) == 12
    inj = FaultInjector("drop='ub.atah.taopcode == 0x11'@1")
    got = psns_of(run(inj, traffic()))
    assert (1, 100) not in got and len(got) == 12
    f, = inj.ledger.faults
    assert (f.summary["taopcode"], f.summary["tassn"]) == (0x11, 6)


def test_decode_only_when_a_rule_needs_it(monkeypatch):
    calls = []
    real = faults_mod.dissect

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)
    monkeypatch.setattr(faults_mod, "dissect", counting)
    run(FaultInjector("duplicate=0.5,reorder=0.5", seed=1), traffic())
    assert calls == []
    # every frame lost before the rule: nothing decoded for the rule
    run(FaultInjector("loss=1,drop='ub.rtph.tpopcode == 2'", ledger=Ledger()), traffic())
    assert calls == []
    run(FaultInjector("drop='ub.rtph.tpopcode == 2'@1"), traffic())
    assert len(calls) == 13


def test_same_seed_same_schedule():
    spec = ("loss=0.1,duplicate=0.1,reorder=0.1:2,corrupt=0.1:2,delay=100,jitter=50,"
            "drop='ub.rtph.tpopcode == 2'@3")

    def go(seed):
        inj = FaultInjector(spec, seed=seed)
        frames = traffic() * 5
        out = run(inj, frames, [i * 30 for i in range(len(frames))])
        return out, [(f.at, f.kind, f.summary.get("psn"), tuple(f.detail.get("bits", ())))
                     for f in inj.ledger.faults]
    assert go(9) == go(9)
    assert go(9) != go(10)
