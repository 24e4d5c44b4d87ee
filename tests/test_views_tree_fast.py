"""``decode -V`` from the templates (issue 14): frame by frame the text of the record path
(``tree_lines`` with ``layer_spans`` offsets and the analysis block), on varied corrupted
traffic (payload lengths vary within a template: offsets after the payload move), two-link
pcapng and every sample capture; the CLI's fast path equals its record path."""
from __future__ import annotations

import pytest

from test_views_analysis_fast import _varied_pcap, flit_stream
from test_views_fast import _cli, two_link_pcapng


def _reference(path, analysis=True, fmt="r") -> bytes:
    from ubpkt.capture.stream import iter_records
    from ubpkt.views.analysis import Analyzer
    from ubpkt.views.timefmt import FrameClock, time_column
    from ubpkt.views.tree import layer_spans, tree_lines
    clock = FrameClock()
    an = Analyzer() if analysis else None
    out = []
    for rec in iter_records(path, exact_time=True, raw=True):
        if rec.get("frame") is None:
            continue
        clock.stamp(rec)
        if an is not None:
            an.add(rec)
        clock.displayed(rec)
        raw = rec.get("_raw")        # a flit stream's records have none: no offsets
        spans = layer_spans(raw, rec["linktype"], None) if raw is not None and \
            rec.get("linktype") is not None else None
        out.append("\n".join(tree_lines(rec, spans, "t=" + time_column(rec, fmt))) + "\n\n")
    return "".join(out).encode()


@pytest.fixture(scope="module")
def paths(sample_captures, tmp_path_factory):
    d = tmp_path_factory.mktemp("tree")
    return [_varied_pcap(d / "varied.pcap", n=1200, seed=4),
            two_link_pcapng(sample_captures, d / "two.pcapng"),
            flit_stream(sample_captures, d / "flits.pcap"),
            *sorted(sample_captures.glob("*.pcap"))]


@pytest.mark.parametrize("analysis", [True, False])
def test_tree_fast_equals_record_text(paths, analysis):
    from ubpkt.capture.stream import iter_tree
    for path in paths:
        want = _reference(path, analysis)
        got = b"".join(iter_tree(path, analysis=analysis))
        assert got.split(b"\n\n") == want.split(b"\n\n"), path
        assert want.count(b"\n\n") > 3
    if analysis:
        assert b"[UB analysis]" in want


def test_tree_fast_path_used_templates(paths):
    """Most frames of the varied capture come from the tree functions: the dissector sees
    fewer than half of them."""
    from ubpkt.capture import stream
    from ubpkt.dissect.fastpath import TemplateCache
    misses = []
    orig = TemplateCache._miss

    def spy(self, *a):
        misses.append(1)
        return orig(self, *a)
    TemplateCache._miss = spy
    try:
        text = b"".join(stream.iter_tree(paths[0]))
    finally:
        TemplateCache._miss = orig
    frames = text.count(b"\n\nFrame ") + 1
    assert frames > 1000 and len(misses) < frames // 2, (len(misses), frames)


@pytest.mark.parametrize("tfmt", ["r", "dd"])
def test_decode_tree_cli_fast_equals_record_path(paths, tfmt):
    """``decode -V`` (fast path) against ``-V -c BIG`` (the record path)."""
    for path in paths[:3]:
        fast = _cli("decode", "-q", "-V", "-t", tfmt, str(path))
        slow = _cli("decode", "-q", "-V", "-t", tfmt, "-c", "100000000", str(path))
        assert fast.returncode == slow.returncode == 0, fast.stderr
        assert fast.stdout == slow.stdout and fast.stdout.count(b"\n\n") > 3


def _analysis_pcap(path, n=1500, seed=21):
    """Traffic the ``-V`` analysis has something to say about, in layouts the templates share:
    requests (no_taack 0/1 in one layout: some expect no response) and their responses from the
    target, responses whose request is not in the capture, TPACK/TPSACK frames whose RSPST is
    per frame (0: an acknowledgement, 1-3: a TPNAK) on the reverse channel with PSNs near the
    data's, data PSNs in order, skipped, repeated and late; IPv4 and IPv6 (over 802.1Q)
    hosts; 10 % of the frames with flipped bits."""
    import importlib.util
    import random
    from pathlib import Path
    from ubpkt.capture.pcap import PcapWriter
    from ubpkt.encode import encode_layers
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("mc", root / "captures" / "make_captures.py")
    mc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mc)
    rnd = random.Random(seed)
    ip4 = [("ip", {**mc.IP4[1], "src": a, "dst": b})
           for a, b in (("192.0.2.1", "192.0.2.2"), ("192.0.2.2", "192.0.2.1"))]
    ip6 = [("ipv6", {**mc.IP6[1], "src": a, "dst": b})
           for a, b in (("2001:db8::1", "2001:db8::2"), ("2001:db8::2", "2001:db8::1"))]
    psn = {}
    open_requests = []
    frames = []
    for _ in range(n):
        v6 = rnd.random() < 0.3
        fwd, back = (ip6 if v6 else ip4)
        base = ([mc.ETH6, mc.VLAN6] if v6 else [mc.ETH]) + [fwd, mc.udp()]
        rbase = ([mc.ETH6, mc.VLAN6] if v6 else [mc.ETH]) + [back, mc.udp()]
        p = psn.get(v6, 100)
        step = rnd.choice((1, 1, 1, 2, 5, 0, -3))
        psn[v6] = (p + step) % (1 << 24)
        r = rnd.random()
        if r < 0.45:
            op = rnd.choice((0x03, 0x06, 0x07))
            tassn = rnd.randrange(64)
            no_ack = int(op == 0x03 and rnd.random() < 0.3)
            b = mc.btah(op, tassn=tassn, rc=0x10 + tassn % 3)
            b[1]["no_taack"] = no_ack
            layers = base + [mc.rtph(1, psn=psn[v6], last=1), b,
                             mc.maetah(length=8 if op == 0x07 else 64)]
            if op != 0x06:
                layers.append(("data", rnd.randbytes(8 if op == 0x07 else rnd.randint(1, 200))))
            open_requests.append((v6, op, tassn, 0x10 + tassn % 3))
        elif r < 0.7 and open_requests:
            rv6, op, tassn, rc = open_requests.pop(rnd.randrange(len(open_requests)))
            if rnd.random() < 0.15:
                tassn ^= 0x80                      # no such request
            rback = ([mc.ETH6, mc.VLAN6] if rv6 else [mc.ETH]) + [(ip6 if rv6 else ip4)[1],
                                                                  mc.udp()]
            resp = {0x03: 0x11, 0x06: 0x12, 0x07: 0x13}[op]
            layers = rback + [mc.rtph(1, psn=psn[v6], last=1, stpn=0x20, dtpn=0x10),
                              mc.atah(resp, tassn=tassn, rc=rc)]
            if resp != 0x11:
                layers.append(("data", rnd.randbytes(8 if resp == 0x13 else 64)))
        else:
            layers = rbase + [mc.rtph(rnd.choice((2, 2, 5)), psn=(p - rnd.randrange(4))
                                      % (1 << 24), a=0, rspst=rnd.choice((0, 0, 0, 1, 3)),
                                      stpn=0x20, dtpn=0x10)]
            if layers[-1][1]["tpopcode"] == 5:
                layers += [("ub.saetph", {"bitmapsize": 0, "maxrcvpsn": p}),
                           ("ub.saetph_bitmap", bytes(8))]
        buf = encode_layers(layers)
        if rnd.random() < 0.1:
            b = bytearray(buf)
            bit = rnd.randrange(min(len(b), 80) * 8)
            b[bit // 8] ^= 1 << (bit % 8)
            buf = bytes(b)
        frames.append(buf)
    with PcapWriter(path, 1, nanosecond=True) as w:
        t = 1_700_000_000_999_000_000
        for buf in frames:
            t += rnd.choice((700, 40_000, 1_300_000))
            w.write(buf, t)
    return path


def test_tree_fast_planned_analysis_equals_record_text(tmp_path):
    """The analysis generated per layout (``Analyzer.plan``: only the steps a layout reaches,
    per-frame no_taack and RSPST tested in the template) gives the record path's text and the
    same counts, and the templates do not fall back to ``add_fields``."""
    from ubpkt.capture import stream
    from ubpkt.views import analysis
    path = _analysis_pcap(tmp_path / "an.pcap")
    want = _reference(path)
    for key in (b"request_in", b"no_response", b"tpnak", b"acked_frames", b"ack_to",
                b"psn_gap", b"out_of_order", b"retransmission", b"psn_backwards"):
        if key not in (b"no_response",):        # iter_tree runs no first pass
            assert key in want, key
    calls = []
    orig = analysis.Analyzer.add_fields

    def spy(self, *a):
        calls.append(1)
        return orig(self, *a)
    analysis.Analyzer.add_fields = spy
    try:
        got = b"".join(stream.iter_tree(path))
    finally:
        analysis.Analyzer.add_fields = orig
    assert got.split(b"\n\n") == want.split(b"\n\n")
    frames = want.count(b"\n\nFrame ") + 1
    assert len(calls) < frames // 4, (len(calls), frames)


def test_analysis_plan_matches_add_fields():
    """``Analyzer.plan`` of a layout's fields run as code against ``add_fields`` of the same
    fields, step by step on two analyzers: the same outputs, counts and state, for requests
    (no_taack fixed or per frame), responses, TP responses (RSPST fixed or per frame), data,
    IPv4/IPv6/CNA addresses; layouts it does not plan (lists, a steering value per frame)
    return None."""
    import random
    from ubpkt.views.analysis import Analyzer
    rnd = random.Random(5)
    layouts = [
        {"ip.src": "a", "ip.dst": "b", "ub.rtph.tpopcode": 1, "ub.rtph.psn": 0,
         "ub.rtph.srctpn": 1, "ub.rtph.dsttpn": 2, "ub.btah.taopcode": 3,
         "ub.btah.ini_tassn": 0, "ub.btah.no_taack": 0, "ub.btah.ini_rc_type": 0,
         "ub.btah.ini_rc_id": 5, "ub.btah.taopcode_name": "Write"},
        {"ip.src": "b", "ip.dst": "a", "ub.rtph.tpopcode": 1, "ub.rtph.psn": 0,
         "ub.rtph.srctpn": 2, "ub.rtph.dsttpn": 1, "ub.atah.taopcode": 0x11,
         "ub.atah.ini_tassn": 0, "ub.atah.ini_rc_type": 0, "ub.atah.ini_rc_id": 5},
        {"ipv6.src": "a6", "ipv6.dst": "b6", "ub.rtph.tpopcode": 1, "ub.rtph.psn": 0,
         "ub.rtph.srctpn": 1, "ub.rtph.dsttpn": 2, "ub.btah.taopcode": 0x07,
         "ub.btah.ini_tassn": 0, "ub.btah.taopcode_name": "Atomic"},
        {"ipv6.src": "b6", "ipv6.dst": "a6", "ub.rtph.tpopcode": 1, "ub.rtph.psn": 0,
         "ub.rtph.srctpn": 2, "ub.rtph.dsttpn": 1, "ub.atah.taopcode": 0x13,
         "ub.atah.ini_tassn": 0},
        {"ub.cna16.scna": 0, "ub.cna16.dcna": 7, "ub.rtph.tpopcode": 2, "ub.rtph.psn": 0,
         "ub.rtph.srctpn": 1, "ub.rtph.dsttpn": 2, "ub.rtph.rspst": 0},
        {"ub.cna24.scna": 7, "ub.cna24.dcna": 0, "ub.rtph.tpopcode": 1, "ub.rtph.psn": 0,
         "ub.rtph.srctpn": 2, "ub.rtph.dsttpn": 1, "ub.btah.taopcode": 6,
         "ub.btah.ini_tassn": 0, "ub.btah.taopcode_name": "Read"},
        {"ip.src": "b", "ip.dst": "a", "ub.rtph.tpopcode": 5, "ub.rtph.psn": 0,
         "ub.rtph.srctpn": 2, "ub.rtph.dsttpn": 1, "ub.rtph.rspst": 0},
        {"ip.src": "b", "ip.dst": "a", "ub.rtph.tpopcode": 4, "ub.rtph.psn": 0,
         "ub.rtph.srctpn": 2, "ub.rtph.dsttpn": 1},
    ]
    varies = {"ub.rtph.psn", "ub.btah.ini_tassn", "ub.atah.ini_tassn", "ub.btah.no_taack",
              "ub.rtph.rspst", "ub.btah.ini_rc_type"}
    ref, fast = Analyzer(), Analyzer()
    planned = []
    for lay in layouts:
        for per_frame in (True, False):
            var = {k: f"f[{k!r}]" for k in lay if per_frame and k in varies}
            lines, names = fast.plan(lay, var)
            ns = dict(names)
            src = "def run(fr, tns, f):\n" + "\n".join(lines or ["    o = {}"]) + \
                "\n    return o\n"
            exec(src, ns)
            planned.append((lay, var, ns["run"]))
    for i in range(3000):
        lay, var, run = rnd.choice(planned)
        f = dict(lay)
        for k in var:
            f[k] = {"ub.rtph.psn": rnd.randrange(40), "ub.btah.no_taack": rnd.randrange(2),
                    "ub.rtph.rspst": rnd.randrange(4),
                    "ub.btah.ini_rc_type": rnd.randrange(2)}.get(k, rnd.randrange(6))
        assert run(i, i * 10, f) == ref.add_fields(i, i * 10, f)
    assert fast.counts == ref.counts and fast.srt == ref.srt
    assert fast.pending == ref.pending and fast.channels.keys() == ref.channels.keys()
    assert ref.counts["tpnak"] and ref.counts["acks"] and ref.counts["responses"]
    lay = layouts[0]
    assert fast.plan({**lay, "ub.rtph.psn": [1, 2]}, {}) is None
    assert fast.plan(lay, {"ub.btah.taopcode": "x"}) is None


@pytest.mark.parametrize("fmt", ["r", "d", "e"])
def test_time_column_function_equals_seconds_text(fmt):
    """``TimeColumn.function()`` (the views' per-frame clock; for ``-t r`` a closure with one
    %-format) gives the texts of ``format_time`` of the frame clock, for every resolution,
    times that go backwards, whole seconds and frames a second or more apart."""
    import random
    from ubpkt.views.timefmt import TimeColumn, format_time
    rnd = random.Random(3)
    for digits in range(10):
        col = TimeColumn(fmt).function()
        first = prev = None
        for _ in range(300):
            ns = 1_700_000_000_000_000_000 + rnd.choice(
                (0, 1, 999_999_999, 10 ** 9, 10 ** 9 + 1, 5 * 10 ** 12)) * rnd.randint(-3, 40)
            if first is None:
                first = prev = ns
            want = format_time(fmt, ns, ns - first, ns - prev, ns - prev, digits)
            prev = ns
            assert col(ns, digits) == want, (fmt, digits, ns)
