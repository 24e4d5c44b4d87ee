"""The cheap analyzer (issue 14): the PSN holes as runs behave as the insertion-ordered set of
PSNs they replace, and the analysis of a frame from its picked fields equals that of its
record."""
from __future__ import annotations

import random

import pytest

from ubpkt.views.analysis import PSN_SPACE, Analyzer, _Holes


class _SetHoles:
    """The reference: one dict entry per open PSN (what the analyzer kept before)."""

    def __init__(self):
        self.d = {}

    def take(self, psn):
        if psn in self.d:
            del self.d[psn]
            return True
        return False

    def add_gap(self, high, ahead, cap):
        for k in range(max(1, ahead - cap), ahead):
            self.d[(high + k) % PSN_SPACE] = True
        while len(self.d) > cap:
            self.d.pop(next(iter(self.d)))


@pytest.mark.parametrize("seed", range(6))
def test_holes_runs_equal_the_ordered_set(seed):
    """Random gaps (small, large, across the 24-bit wrap, overlapping earlier ones) and fills:
    the same answers and the same open PSNs in the same order after every step."""
    rnd = random.Random(seed)
    cap = rnd.choice((1, 5, 64, 300))
    ref, runs = _SetHoles(), _Holes()
    high = rnd.choice((0, PSN_SPACE - 40, rnd.randrange(PSN_SPACE)))
    filled = 0
    for _ in range(400):
        r = rnd.random()
        if r < 0.45:
            ahead = rnd.choice((2, 3, rnd.randint(2, 2 * cap + 2), rnd.randint(2, 5000)))
            ref.add_gap(high, ahead, cap)
            runs.add_gap(high, ahead, cap)
            high = (high + ahead) % PSN_SPACE
        elif r < 0.6:
            # a gap that reopens PSNs still open (high moved back, as after a wrap)
            back = rnd.randint(1, 2 * cap + 5)
            start = (high - back) % PSN_SPACE
            ahead = rnd.randint(2, 3 * cap + 5)
            ref.add_gap(start, ahead, cap)
            runs.add_gap(start, ahead, cap)
        else:
            opened = list(ref.d)
            psn = rnd.choice(opened) if opened and rnd.random() < 0.7 else \
                (high - rnd.randint(0, 3 * cap)) % PSN_SPACE
            got = runs.take(psn)
            assert got == ref.take(psn)
            filled += got
        assert list(runs) == list(ref.d)
        assert len(runs) == len(ref.d)
    assert filled > 10          # the fills exercised the runs, not only misses


def test_analyzer_from_fields_equals_from_records():
    """``add_fields`` (the stats fast path) gives the analysis ``add`` gives for the record."""
    rnd = random.Random(3)
    a, b = Analyzer(annotate=False), Analyzer(annotate=False)
    for i in range(3000):
        f = {"ip.src": "10.0.0.%d" % rnd.randint(1, 3), "ip.dst": "10.0.0.9",
             "ub.rtph.tpopcode": rnd.choice((0, 1, 2, 3, 4)),
             "ub.rtph.psn": rnd.choice((i, i - 3, rnd.randrange(PSN_SPACE))) % PSN_SPACE,
             "ub.rtph.srctpn": 1, "ub.rtph.dsttpn": 2, "ub.rtph.rspst": rnd.randint(0, 3)}
        if rnd.random() < 0.5:
            f["ub.btah.taopcode"] = rnd.choice((0, 1, 3, 4))
            f["ub.btah.ini_tassn"] = rnd.randint(0, 50)
        else:
            f["ub.atah.taopcode"] = rnd.choice((0, 1, 2, 17))
            f["ub.atah.ini_tassn"] = rnd.randint(0, 50)
        tns = 1000 * i + rnd.randint(0, 999)
        rec = {"frame": i + 1, "time": tns / 1e9, "_t": (tns,), "fields": dict(f)}
        assert b.add_fields(i + 1, tns, f) == a.add(rec)
    assert a.counts == b.counts and a.pending == b.pending and a.srt == b.srt
    assert a.counts["psn_gap"] and a.counts["retransmission"]
    assert {k: {x: y for x, y in v.items() if x != "holes"} for k, v in a.channels.items()} == \
        {k: {x: y for x, y in v.items() if x != "holes"} for k, v in b.channels.items()}
