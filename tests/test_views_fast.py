"""The default views' fast paths (issue 12): the summary line rendered by the templates is,
frame by frame, the reference ``summary_line`` of the record; ``decode`` writes the same text
through the fast path as through the record path."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ubpkt import NS3, SPEC, encode_layers
from ubpkt.capture import open_capture
from ubpkt.dissect import dissect
from ubpkt.dissect.fastpath import TemplateCache
from ubpkt.formats.samples import samples
from ubpkt.record import FLIT_LINKTYPES, make_record
from ubpkt.views.output import summary_line

ROOT = Path(__file__).resolve().parents[1]


def _capture_frames(sample_captures, ns3_dir=None):
    paths = sorted(sample_captures.glob("*.pcap"))
    paths += [Path(p) for p in sorted(glob.glob(str(ROOT.parent / "shared/interop/*/*.pcap")))]
    out = []
    for path in paths:
        with open_capture(path) as cap:
            if cap.linktype in FLIT_LINKTYPES:
                continue
            for p in cap:
                out.append((p.data, p.linktype, NS3 if p.linktype == 147 else SPEC))
    return out


def _check(frames, rounds=20):
    """Each frame twice through one cache per profile (the second pass hits the templates,
    later ones the specialised templates), compared with the reference renderer."""
    caches = {SPEC: TemplateCache(SPEC), NS3: TemplateCache(NS3)}
    n = 0
    for _ in range(rounds):
        for i, (buf, lt, prof) in enumerate(frames):
            fr = dissect(buf, lt, prof)
            want = summary_line(make_record(i + 1, None, len(buf) + 2, len(buf), lt, fr.layers,
                                            fr.fields, fr.issues), "1.5")
            assert caches[prof].summary(buf, lt, i + 1, "1.5", len(buf) + 2) == want
            n += 1
    return sum(c.hits for c in caches.values()), n


def test_summary_renderer_matches_on_every_capture(sample_captures):
    frames = _capture_frames(sample_captures)
    assert len(frames) > 20
    hits, n = _check(frames)
    assert hits > n // 2          # the templates did the work, not only the fallback


def test_summary_renderer_matches_on_the_grammar_samples():
    frames = []
    for prof in (SPEC, NS3):
        for lt, p, layers in samples(prof):
            frames.append((encode_layers(layers, p), lt, p))
    assert len(frames) > 50
    hits, n = _check(frames, rounds=4)   # a layout compiles on its second sight
    assert hits > n // 4          # many samples carry issues on purpose: those take the fallback


def test_summary_renderer_after_corruption(sample_captures):
    """Flipped bits (a broken ICRC, reserved bits, other opcodes) leave the templates'
    guards and go through the reference renderer: still the same text."""
    import random
    rnd = random.Random(12)
    frames = _capture_frames(sample_captures)
    caches = {SPEC: TemplateCache(SPEC), NS3: TemplateCache(NS3)}
    for buf, lt, prof in frames * 3:
        caches[prof].summary(buf, lt, 1, "0", len(buf))
    for _ in range(600):
        buf, lt, prof = rnd.choice(frames)
        m = bytearray(buf)
        for _ in range(rnd.randint(1, 3)):
            bit = rnd.randrange(min(len(m), 120) * 8)
            m[bit // 8] ^= 1 << (bit % 8)
        m = bytes(m)
        fr = dissect(m, lt, prof)
        want = summary_line(make_record(3, None, len(m), len(m), lt, fr.layers, fr.fields,
                                        fr.issues), "0")
        assert caches[prof].summary(m, lt, 3, "0", len(m)) == want


def two_link_pcapng(sample_captures, path):
    """A pcapng of two interfaces: UBoE at microseconds, native UB (148) at nanoseconds, their
    frames interleaved."""
    from capture_fixtures import epb, idb, shb
    with open_capture(sample_captures / "uboe_transactions.pcap") as cap:
        eth = [p.data for p in cap]
    with open_capture(sample_captures / "ub_native.pcap") as cap:
        ub = [p.data for p in cap]
    body = shb() + idb(1, 6) + idb(148, 9)
    for i in range(max(len(eth), len(ub))):
        if i < len(eth):
            body += epb(0, 1_700_000_000_000_000 + 10 * i, eth[i])
        if i < len(ub):
            body += epb(1, 1_700_000_000_000_000_000 + 10_000 * i + 7, ub[i])
    path.write_bytes(body)
    return path


def _cli(*args, **kw):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "cli"),
                                         env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "ubpkt_cli", *args], capture_output=True,
                          env=env, **kw)


@pytest.mark.parametrize("tfmt", ["r", "d", "e", "ud"])
def test_decode_summary_fast_path_equals_record_path(sample_captures, tmp_path, tfmt):
    """``decode FILE`` (fast path) against ``decode -c BIG FILE`` (the record path, as a count
    turns the fast path off) on every capture, pcap and pcapng."""
    ng = two_link_pcapng(sample_captures, tmp_path / "two.pcapng")
    paths = sorted(sample_captures.glob("*.pcap")) + [ng]
    for path in paths:
        fast = _cli("decode", "-q", "-t", tfmt, str(path))
        slow = _cli("decode", "-q", "-t", tfmt, "-c", "100000000", str(path))
        assert fast.returncode == slow.returncode == 0, fast.stderr
        assert fast.stdout == slow.stdout and fast.stdout.count(b"\n") > 3, path


def _stats_both(path):
    """CaptureStats over the records against CaptureStats over the fast path's parts."""
    from test_views_analysis_fast import stats_both
    return stats_both(path, "summary")


def test_stats_fast_path_counts_what_the_records_give(sample_captures, tmp_path):
    import random
    paths = sorted(sample_captures.glob("*.pcap"))
    paths.append(two_link_pcapng(sample_captures, tmp_path / "two.pcapng"))
    # a bigger capture: the samples repeated with PSNs skipped, repeated and corrupted frames
    from ubpkt.capture.pcap import PcapWriter
    frames = _capture_frames(sample_captures)
    rnd = random.Random(5)
    big = tmp_path / "mixed.pcap"
    with PcapWriter(big, 1) as w:
        for i in range(3000):
            buf, lt, _ = rnd.choice([f for f in frames if f[1] == 1])
            if rnd.random() < 0.1:
                m = bytearray(buf)
                m[rnd.randrange(len(m))] ^= 0x10
                buf = bytes(m)
            w.write(buf, 1000 * i)
    paths.append(big)
    for path in paths:
        ref, fast = _stats_both(path)
        assert ref == fast, path
        assert ref["frames"] > 0


def test_stats_cli_json_unchanged_by_the_early_first_line(sample_captures):
    import json
    path = sample_captures / "uboe_transactions.pcap"
    got = _cli("stats", "--json", str(path))
    assert got.returncode == 0, got.stderr
    j = json.loads(got.stdout)
    ref, _ = _stats_both(path)
    assert j["frames"] == ref["frames"] and j["layers"] == ref["layers"]


def test_stats_head_1_stops_reading(sample_captures, tmp_path):
    """``stats FILE | head -1`` must not read the whole capture: fed through a pipe on stdin,
    the command stops taking bytes soon after the reader of its first line is gone."""
    import struct
    with open_capture(sample_captures / "uboe_transactions.pcap") as cap:
        recs = [p.data for p in cap]
    one = b"".join(struct.pack("<IIII", i, 0, len(d), len(d)) + d for i, d in enumerate(recs))
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    total = 64 << 20
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "cli"),
                                         env.get("PYTHONPATH", "")])
    for args in (["stats", "-"], ["stats", "--json", "-"], ["stats", "conv", "-"]):
        head = subprocess.Popen(["head", "-1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        proc = subprocess.Popen([sys.executable, "-m", "ubpkt_cli", *args],
                                stdin=subprocess.PIPE, stdout=head.stdin,
                                stderr=subprocess.PIPE, env=env)
        head.stdin.close()
        sent = 0
        try:
            proc.stdin.write(hdr)
            while sent < total:
                proc.stdin.write(one)
                sent += len(one)
        except BrokenPipeError:
            pass
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        first = head.stdout.read()
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
        head.wait(timeout=10)
        assert first.strip(), args
        assert sent < total // 2, (args, sent)


def test_write_from_a_two_link_pcapng_keeps_interfaces_and_resolution(sample_captures,
                                                                       tmp_path):
    """``-w`` from a pcapng of two link types: a pcapng with both interfaces (link type and
    if_tsresol kept), every frame on its interface, re-decoding to the same records; with
    ``-Y`` only the frames that pass."""
    from ubpkt.capture.stream import iter_records
    src = two_link_pcapng(sample_captures, tmp_path / "two.pcapng")
    out = tmp_path / "w.pcapng"
    r = _cli("decode", "-w", str(out), str(src))
    assert r.returncode == 0, r.stderr
    with open_capture(out) as cap:
        pkts = list(cap)
        assert cap.format == "pcapng"
        assert [(i.linktype, i.tsresol) for i in cap.interfaces] == [(1, 6), (148, 9)]
    with open_capture(src) as cap:
        orig = list(cap)
    assert [(p.iface, p.linktype, p.time_ns, p.data, p.orig_len) for p in pkts] == \
        [(p.iface, p.linktype, p.time_ns, p.data, p.orig_len) for p in orig]
    strip = lambda rec: {k: v for k, v in rec.items() if k != "frame"}
    assert [strip(x) for x in iter_records(out, exact_time=True)] == \
        [strip(x) for x in iter_records(src, exact_time=True)]
    # filtered: only native UB frames, on their interface (both interfaces described)
    r = _cli("decode", "-Y", "frame.linktype == 148", "-w", str(out), str(src))
    if r.returncode == 2 and b"frame.linktype" in r.stderr:
        r = _cli("decode", "-Y", "ub.lph", "-w", str(out), str(src))
    assert r.returncode == 0, r.stderr
    with open_capture(out) as cap:
        got = list(cap)
        assert [(i.linktype, i.tsresol) for i in cap.interfaces] == [(1, 6), (148, 9)]
        assert {p.iface for p in got} == {1}
    assert got and [p.data for p in got] == [p.data for p in orig if p.linktype == 148]


def test_json_records_keep_the_exact_time(sample_captures, tmp_path):
    """``time_epoch``: the epoch seconds as a string with the capture's digits (tshark's -T json
    frame.time_epoch), the same from the ndjson fast path, the record path, -T json and the
    parallel path; a microsecond interface keeps 6 digits, a nanosecond one 9."""
    import json
    from ubpkt.capture.pcap import PcapWriter
    ng = two_link_pcapng(sample_captures, tmp_path / "two.pcapng")
    fast = [json.loads(x) for x in _cli("decode", "-T", "ndjson", str(ng)).stdout.splitlines()]
    slow = [json.loads(x) for x in
            _cli("decode", "-T", "ndjson", "-c", "999999", str(ng)).stdout.splitlines()]
    arr = json.loads(_cli("decode", "-T", "json", str(ng)).stdout)
    assert fast == slow == arr and len(fast) > 4
    # every interface is described before the first packet: the finest resolution holds
    assert fast[0]["time_epoch"] == "1700000000.000000000"
    ub = [r for r in fast if r["linktype"] == 148]
    assert ub[1]["time_epoch"] == "1700000000.000010007"       # no float could keep this
    nano = tmp_path / "ns.pcap"
    with open_capture(sample_captures / "uboe_transactions.pcap") as cap:
        data = [p.data for p in cap]
    with PcapWriter(nano, 1, nanosecond=True) as w:
        for i, d in enumerate(data):
            w.write(d, 1_700_000_000_123_456_789 + i)
    micro = tmp_path / "us.pcap"
    with PcapWriter(micro, 1, nanosecond=False) as w:
        for i, d in enumerate(data):
            w.write(d, 1_700_000_000_123_456_000 + 1000 * i)
    for path, first in ((nano, "1700000000.123456789"), (micro, "1700000000.123456")):
        lines = _cli("decode", "-T", "ndjson", str(path)).stdout.splitlines()
        recs = [json.loads(x) for x in lines]
        assert recs[0]["time_epoch"] == first
        assert recs == [json.loads(x) for x in _cli("decode", "-T", "ndjson", "-c", "999999",
                                                    str(path)).stdout.splitlines()]
        assert list(recs[0])[:3] == ["frame", "time", "time_epoch"]


def test_parallel_ndjson_keeps_the_exact_time(sample_captures, tmp_path):
    import json
    from ubpkt.capture import parallel
    from ubpkt.capture.pcap import PcapWriter
    path = tmp_path / "us.pcap"
    with open_capture(sample_captures / "uboe_transactions.pcap") as cap:
        data = [p.data for p in cap]
    with PcapWriter(path, 1, nanosecond=False) as w:
        for i in range(2000):
            w.write(data[i % len(data)], 1_700_000_000_000_001_000 + 1000 * i)
    out = b"".join(parallel.ndjson_chunks(path, None, None, 2))
    recs = [json.loads(x) for x in out.splitlines()]
    assert recs[0]["time_epoch"] == "1700000000.000001"
    assert recs[-1]["time_epoch"] == "1700000000.002000"
