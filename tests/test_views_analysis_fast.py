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


# -- every stats kind on the fast path ---------------------------------------------------------

def _varied_pcap(path, n=2500, seed=7):
    """UBoE kinds with random payload lengths and per-frame values (bench_varied's workload),
    15 % of the frames with flipped bits, PSNs repeated and skipped, times with jumps."""
    import importlib.util
    from pathlib import Path
    from ubpkt.capture.pcap import PcapWriter
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bv", root / "bench" / "bench_varied.py")
    bv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bv)
    rnd = random.Random(seed)
    frames = bv.varied_frames(n // 2, seed=seed) + bv.varied_frames(n // 2, seed=seed + 1,
                                                                     same=True)
    rnd.shuffle(frames)
    t = 1_700_000_000_000_000_000
    with PcapWriter(path, 1, nanosecond=True) as w:
        for i, buf in enumerate(frames):
            if rnd.random() < 0.1 and i:
                buf = frames[i - 1]                  # a retransmission / duplicate
            if rnd.random() < 0.15:
                b = bytearray(buf)
                for _ in range(rnd.randint(1, 3)):
                    bit = rnd.randrange(min(len(b), 96) * 8)
                    b[bit // 8] ^= 1 << (bit % 8)
                buf = bytes(b)
            t += rnd.choice((1000, 5000, 3_000_000, 250))
            w.write(buf, t, len(buf) + rnd.choice((0, 0, 4)))
    return path


def flit_stream(sample_captures, path):
    """The native UB sample as a flit stream (linktype 151, ``ubpkt link frame``)."""
    from test_views_fast import _cli
    got = _cli("link", "frame", str(sample_captures / "ub_native.pcap"), "-o", str(path))
    assert got.returncode == 0, got.stderr
    return path


def _kinds():
    from ubpkt.views.stats import CaptureStats, ConvStats, ExpertStats, IoStats, SrtStats
    return {"summary": CaptureStats, "conv": ConvStats,
            "endpoints": lambda: ConvStats(endpoints=True), "io": lambda: IoStats(1_000_000),
            "srt": SrtStats, "expert": ExpertStats}


def stats_both(path, kind):
    """A stats kind over the records (the reference) and over the fast path's parts."""
    from ubpkt.capture.stream import iter_parts, iter_records
    from ubpkt.views.timefmt import FrameClock
    make = _kinds()[kind]
    ref, fast = make(), make()
    clock = FrameClock()
    for rec in iter_records(path, exact_time=True):
        if rec.get("frame") is None:
            continue
        clock.stamp(rec)
        ref.add(rec)
    for chunk in iter_parts(path):
        for item in chunk:
            fast.add_parts(*item)
    return ref.to_json(None), fast.to_json(None)


@pytest.mark.parametrize("kind", ["summary", "conv", "endpoints", "io", "srt", "expert"])
def test_every_stats_kind_fast_equals_records(kind, sample_captures, tmp_path):
    from test_views_fast import two_link_pcapng
    paths = [_varied_pcap(tmp_path / "varied.pcap"),
             two_link_pcapng(sample_captures, tmp_path / "two.pcapng"),
             flit_stream(sample_captures, tmp_path / "flits.pcap"),
             *sorted(sample_captures.glob("*.pcap"))]
    for path in paths:
        ref, fast = stats_both(path, kind)
        assert ref == fast, (kind, path)
    ref, _ = stats_both(paths[0], kind)
    assert ref != _kinds()[kind]().to_json(None)      # the varied capture gave rows


def test_stats_cli_kinds_equal_the_record_path(tmp_path):
    """``ubpkt stats KIND --json`` (the fast path) prints the reference's tables."""
    import json
    from test_views_fast import _cli
    path = _varied_pcap(tmp_path / "v.pcap", n=1200, seed=9)
    for kind in ("conv", "io", "srt", "expert"):
        got = _cli("stats", "--json", "--all", "--interval", "1ms", kind, str(path))
        assert got.returncode == 0, got.stderr
        ref, _ = stats_both(path, kind)
        assert json.loads(got.stdout) == json.loads(json.dumps(ref)), kind
