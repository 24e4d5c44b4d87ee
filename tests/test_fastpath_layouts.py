"""Templates keyed by layout (issue 14): the fast path against the record path on SEQUENCES of
frames - varied kinds and payload lengths, corruption, same-length neighbours of another layout -
for every view the fast path serves (ndjson, json, summary, the stats picks, records), and the
grammar tables the templates' length classes come from."""
from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

from ubpkt import SPEC, NS3, encode_layers
from ubpkt.analytics.traffic import vary_layers
from ubpkt.dissect import dissect
from ubpkt.dissect.fastpath import STATS_KEYS, TemplateCache
from ubpkt.formats import HEADERS
from ubpkt.formats.grammar import (FIELD_SIZED_PROCEDURES, LENGTH_EXACT_PROCEDURES,
                                   PROCEDURE_ROOM, PROCEDURES)
from ubpkt.formats.samples import samples
from ubpkt.record import make_record
from ubpkt.views.output import summary_line, to_json_bytes, with_time_epoch
from ubpkt.views.timefmt import seconds_text

ROOT = Path(__file__).resolve().parents[1]


def _make_captures():
    spec = importlib.util.spec_from_file_location("mc", ROOT / "captures" / "make_captures.py")
    mc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mc)
    return mc


def _vary(kind, rnd):
    """One frame of ``kind`` with random per-frame values and payload length (the exporter's
    and bench_varied's variation, ``traffic.vary_layers``)."""
    return vary_layers(kind, rnd,
                       lambda _: rnd.choice((1, 2, 3, 7, 8, 9, 64, rnd.randint(1, 700))))


def _cfg5_pair():
    """A CFG-5 frame of protocol 0x0100 carrying IPv4 (the grammar peeks the first payload
    nibble) and the same bytes with that nibble changed: raw data of the same length."""
    for lt, prof, layers in samples(SPEC):
        names = [n for n, _ in layers]
        if "ub.cfg5" in names and "ip" in names and names[-1] in ("udp", "data") or \
                ("ub.cfg5" in names and "ip" in names and "ub.utph" in names):
            buf = encode_layers(layers, prof)
            at = HEADERS["ub.lph"].size + HEADERS["ub.cfg5"].size
            if buf[at] >> 4 != 4:
                continue
            other = bytearray(buf)
            other[at] = (other[at] & 0x0F) | 0x50
            return lt, buf, bytes(other)
    raise AssertionError("no CFG-5 IPv4 sample")


def _sequence(seed: int, n: int = 600):
    """(linktype, profile, frame) in a seeded random order: UBoE kinds with random payloads,
    every grammar sample, CFG-5 IP/data neighbours, and corrupted copies of all of them."""
    rnd = random.Random(seed)
    kinds = _make_captures().uboe_packets()
    pool = [(lt, prof, encode_layers(layers, prof)) for prof in (SPEC, NS3)
            for lt, p, layers in samples(prof) for prof in (p,)]
    lt5, ip5, data5 = _cfg5_pair()
    out = []
    for _ in range(n):
        r = rnd.random()
        if r < 0.45:
            item = (1, SPEC, encode_layers(_vary(rnd.choice(kinds), rnd)))
        elif r < 0.5:
            item = (1, SPEC, encode_layers(_odd_padding(rnd.choice(kinds[:16]), rnd)))
        elif r < 0.6:
            prof = rnd.choice((SPEC, NS3))
            item = (148, prof, _native(rnd, prof))
        elif r < 0.75:
            item = rnd.choice(pool)
        else:
            item = (lt5, SPEC, rnd.choice((ip5, data5)))
        lt, prof, buf = item
        if rnd.random() < 0.15 and buf:
            b = bytearray(buf)
            for _ in range(rnd.randint(1, 3)):
                bit = rnd.randrange(min(len(b), 96) * 8)
                b[bit // 8] ^= 1 << (bit % 8)
            buf = bytes(b)
        out.append((lt, prof, buf))
    return out


def _odd_padding(kind, rnd):
    """A padded frame of ``kind`` whose padding the dissector must judge (the ICRC valid over
    it): non-zero pad bytes, or a padding count that does not align the payload."""
    layers = [(n, s) for n, s in _vary(kind, rnd) if n != "ub.pad"]
    count = rnd.randint(1, 3)
    pad = bytes(count) if rnd.random() < 0.5 else \
        bytes(rnd.randint(0, 255) if i == rnd.randrange(count) else 0 for i in range(count))
    return layers + [("ub.pad", pad)]


def _native(rnd, prof):
    """A linktype-148 packet (LPH first) of a native sample kind with a random payload length
    (PLENGTH follows it), a third of them with PLENGTH changed (the ICRC does not cover it)."""
    kinds = [k for k in _make_captures().native_packets() if "data" in [n for n, _ in k]]
    kind = rnd.choice(kinds)
    layers = [(n, rnd.randbytes(rnd.randint(1, 900)) if n == "data" else s) for n, s in kind]
    buf = bytearray(encode_layers(layers, prof))
    if rnd.random() < 0.33:
        buf[3] ^= 1 << rnd.randrange(8)          # PLENGTH[7:0] (the LPH's last byte)
    return bytes(buf)


def _reference(lt, prof, buf, frame, tns):
    fr = dissect(buf, lt, prof)
    return fr, make_record(frame, tns / 1e9, len(buf) + 4, len(buf), lt, fr.layers, fr.fields,
                           fr.issues)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_sequences_agree_in_every_view(seed):
    """Frame by frame through one cache per profile and view, against the dissector."""
    seq = _sequence(seed)
    views = ("ndjson", "summary", "pick", "decode")
    caches = {(prof, v): TemplateCache(prof) for prof in (SPEC, NS3) for v in views}
    for (prof, v), c in caches.items():
        c.digits = 6
    for i, (lt, prof, buf) in enumerate(seq * 2, 1):
        tns = 1_700_000_000_000_000_000 + 1000 * i
        fr, rec = _reference(lt, prof, buf, i, tns)
        line = caches[prof, "ndjson"].ndjson(buf, lt, i, tns, len(buf) + 4)
        assert line == to_json_bytes(with_time_epoch(rec, seconds_text(tns, 6))), (i, fr.layers)
        assert caches[prof, "summary"].summary(buf, lt, i, "1.5", len(buf) + 4) == \
            summary_line(rec, "1.5")
        assert caches[prof, "decode"].decode(buf, lt) == (fr.layers, fr.fields, fr.issues)
        t, got = caches[prof, "pick"].pick(buf, lt)
        if t is None:
            assert got == (fr.layers, fr.fields, fr.issues)
        else:
            assert list(t.layers) == fr.layers and list(t.issues) == fr.issues
            assert {k: v for k, v in got.items()} == \
                {k: fr.fields[k] for k in STATS_KEYS if k in fr.fields}
    hits = sum(c.hits for c in caches.values())
    assert hits > len(seq) * len(views) // 2      # the templates did most of the work


def test_varied_payload_lengths_share_one_template():
    """One layout, many payload lengths: one variable-length template (the issue's 39% hit rate
    came from keying by frame length)."""
    rnd = random.Random(5)
    kinds = _make_captures().uboe_packets()
    write = kinds[0]          # RTP + BTAH Write + MAETAH + payload
    cache = TemplateCache(SPEC)
    for i in range(200):
        buf = encode_layers(_vary(write, rnd))
        fr = dissect(buf, 1, SPEC)
        assert cache.decode(buf, 1) == (fr.layers, fr.fields, fr.issues)
    assert cache.hits >= 180
    assert any(t.variable for t in cache.templates())


def _kind(layer):
    """The first UBoE sample kind with ``layer`` and a payload."""
    return next(k for k in _make_captures().uboe_packets()
                if layer in [n for n, _ in k] and "data" in [n for n, _ in k])


def test_padding_counts_share_one_template():
    """Padding 1, 2 and 3 (UB 2.0 §6.2.1) are one layout: the count is read per frame; a frame
    without padding, with non-zero pad bytes or a count that does not align the payload still
    decodes as the dissector says."""
    rnd = random.Random(8)
    kind = _kind("ub.maetah")
    cache = TemplateCache(SPEC)
    counts = []
    for i in range(120):
        if i % 5 == 4:
            buf = encode_layers(_odd_padding(kind, rnd))
        else:
            buf = encode_layers(_vary(kind, rnd))
        fr = dissect(buf, 1, SPEC)
        counts.append(fr.fields["ub.rtph.padding"])
        assert cache.decode(buf, 1) == (fr.layers, fr.fields, fr.issues), i
        line = cache.ndjson(buf, 1, i, 0, len(buf))
        assert line == to_json_bytes(make_record(i, 0.0, len(buf), len(buf), 1, fr.layers,
                                                 fr.fields, fr.issues)), i
    assert set(counts) == {0, 1, 2, 3}
    padded = [t for t in cache.templates() if "ub.pad" in t.layers and not t.special]
    assert len({id(t) for t in padded}) == 1 and len(padded[0].keys) == 3
    assert cache.hits >= 150
    # the template itself refuses a frame of its headers without padding (not only the index)
    unpadded = next(b for b in (encode_layers(_vary(kind, rnd)) for _ in range(50))
                    if dissect(b, 1, SPEC).fields["ub.rtph.padding"] == 0)
    assert padded[0].fn(unpadded) is None


def test_beetah_width_follows_the_maetah_length():
    """A Write_with_be template varies the payload length after a BEETAH whose width the
    guarded MAETAH Length sets (grammar FIELD_SIZED_PROCEDURES); another Length (another
    width) or a BEETAH that does not fit go to the dissector."""
    rnd = random.Random(9)
    kind = _kind("ub.beetah")
    cache = TemplateCache(SPEC)

    def frame(length, be, payload):
        layers = []
        for name, spec in _vary(kind, rnd):
            if name == "ub.maetah":
                spec = dict(spec, length=length)
            elif name == "ub.beetah":
                spec = be
            elif name == "data":
                spec = rnd.randbytes(payload)
            layers.append((name, spec))
        return encode_layers(layers)
    bufs = [frame(64, rnd.randbytes(8), rnd.randint(1, 300)) for _ in range(40)]
    bufs += [frame(128, rnd.randbytes(16), 130), frame(128, rnd.randbytes(8), 20),
             frame(128, rnd.randbytes(8), 3), frame(64, rnd.randbytes(4), 2)]
    for i, buf in enumerate(bufs + bufs):
        fr = dissect(buf, 1, SPEC)
        assert cache.decode(buf, 1) == (fr.layers, fr.fields, fr.issues), i
    assert any(t.variable and "ub.beetah" in t.layers for t in cache.templates())
    assert cache.hits >= 60


@pytest.mark.parametrize("prof", [SPEC, NS3], ids=["spec", "ns3"])
def test_plength_is_a_relation(prof):
    """Native packets (LPH first) of one layout and many payload lengths share a template: the
    PLENGTH must encode the frame length where the profile checks it (SPEC; UB 2.0
    §4.3.2.2.2), and is a plain value where it does not (NS3)."""
    rnd = random.Random(10)
    kind = next(k for k in _make_captures().native_packets()
                if "ub.maetah" in [n for n, _ in k] and "data" in [n for n, _ in k])
    cache = TemplateCache(prof)
    warned = 0
    for i in range(150):
        layers = [(n, rnd.randbytes(rnd.randint(1, 1500)) if n == "data" else s)
                  for n, s in kind]
        buf = bytearray(encode_layers(layers, prof))
        if i % 3 == 2:
            buf[3] ^= 1 << rnd.randrange(8)
        buf = bytes(buf)
        fr = dissect(buf, 148, prof)
        warned += any(x["field"] == "ub.lph.plength" for x in fr.issues)
        assert cache.decode(buf, 148) == (fr.layers, fr.fields, fr.issues), i
    assert (warned >= 40) if prof.check_plength else (warned == 0)
    assert cache.hits >= (80 if prof.check_plength else 130)
    assert any(t.variable and t.layers[0].startswith("ub.lph") for t in cache.templates())


def test_a_frame_refused_by_one_probe_tries_the_next():
    """An atomic request whose payload is an operand size (read as numbers: an exact-length
    layout) and padded has a longer guarded region than the variable template of its headers:
    two probes match it; after the variable one refuses it, the exact template still serves."""
    rnd = random.Random(4)

    def frame(kind, size):
        return encode_layers([(n, rnd.randbytes(size) if n == "data" else s) for n, s in kind])

    def operands_padded(buf):
        fr = dissect(buf, 1, SPEC)
        return "ub.pad" in fr.layers and "ub.atomic.operand1" in fr.fields
    kind, exact = next((k, b) for k in _make_captures().uboe_packets() if "data" in dict(k)
                       for b in (frame(k, 2 * op) for op in (1, 2, 4, 8)) if operands_padded(b))
    cache = TemplateCache(SPEC)
    for size in (5, 6, 7, 9, 10, 11, 13, 5, 6, 7):
        cache.decode(frame(kind, size), 1)
    for i in range(4):
        hits = cache.hits
        fr = dissect(exact, 1, SPEC)
        assert cache.decode(exact, 1) == (fr.layers, fr.fields, fr.issues)
    assert cache.hits == hits + 1          # the last one came from a template


def test_cfg5_ip_and_data_neighbours():
    """The issue's bug class: same length, the grammar chooses IP or data by a payload nibble;
    after a template for one, the other still decodes as the dissector says."""
    lt, ip5, data5 = _cfg5_pair()
    assert len(ip5) == len(data5)
    cache = TemplateCache(SPEC)
    for buf in (data5, data5, data5, ip5, ip5, ip5, data5, ip5):
        fr = dissect(buf, lt, SPEC)
        assert cache.decode(buf, lt) == (fr.layers, fr.fields, fr.issues)
    assert "ip" in dissect(ip5, lt, SPEC).layers and "ip" not in dissect(data5, lt, SPEC).layers


def test_a_layout_seen_once_is_not_compiled():
    cache = TemplateCache(SPEC)
    buf = encode_layers(_make_captures().uboe_packets()[0])
    cache.decode(buf, 1)
    assert cache.compiled == 0
    cache.decode(buf, 1)
    assert cache.compiled == 1


def test_a_layout_that_keeps_missing_stops_compiling():
    """Frames whose template can never fit (a bad ICRC each time, new values): builds stop
    after per_key."""
    rnd = random.Random(7)
    kind = _make_captures().uboe_packets()[16]      # a TPACK: no payload, one length
    cache = TemplateCache(SPEC, per_key=3)
    for i in range(40):
        layers = _vary(kind, rnd)
        buf = bytearray(encode_layers(layers))
        buf[-1] ^= 0xFF if i % 2 else 0          # every other frame fails the ICRC
        cache.decode(bytes(buf), 1)
    assert cache.compiled <= 3


def test_every_procedure_has_a_length_class():
    """A new grammar procedure must say how it depends on the bytes left, or the templates
    could stretch a layout it decides by length."""
    classes = (set(PROCEDURE_ROOM), set(LENGTH_EXACT_PROCEDURES), set(FIELD_SIZED_PROCEDURES))
    assert set(PROCEDURES) == set.union(*classes)
    assert sum(map(len, classes)) == len(set.union(*classes))      # one class each


def test_parallel_equals_one_process(tmp_path, monkeypatch):
    """``-j 2`` writes the bytes ``-j 1`` writes on varied traffic with CFG-5 neighbours."""
    import os
    from ubpkt.capture import PcapWriter
    from ubpkt.capture import parallel
    from ubpkt.capture.parallel import write_ndjson
    monkeypatch.setattr(parallel, "SEGMENT", 64 << 10)     # many segments, each its own cache
    from ubpkt.capture.stream import iter_ndjson
    rnd = random.Random(11)
    kinds = _make_captures().uboe_packets()
    path = tmp_path / "v.pcap"
    with PcapWriter(path, 1) as w:
        for i in range(6000):
            w.write(encode_layers(_vary(rnd.choice(kinds), rnd)), i * 1000)
    assert path.stat().st_size > 8 * parallel.SEGMENT
    one = b"".join(iter_ndjson(path))
    out = tmp_path / "j2.ndjson"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        write_ndjson(path, fd, None, None, 2)
    finally:
        os.close(fd)
    assert out.read_bytes() == one


def test_json_view_fast_equals_record_path(tmp_path):
    """``decode -T json`` from the ndjson fast path is the record path's output (``-l`` keeps
    the record path), on varied traffic."""
    import os
    import subprocess
    import sys
    from ubpkt.capture import PcapWriter
    rnd = random.Random(12)
    kinds = _make_captures().uboe_packets()
    path = tmp_path / "v.pcap"
    with PcapWriter(path, 1) as w:
        for i in range(300):
            w.write(encode_layers(_vary(rnd.choice(kinds), rnd)), i * 1000)

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "ubpkt_cli", "decode", "-q", "-T", "json",
                               *extra, str(path)], capture_output=True, env=os.environ,
                              check=True).stdout
    fast = run()
    assert fast.startswith(b"[\n{") and fast.endswith(b"}\n]\n")
    assert fast == run("-l")
