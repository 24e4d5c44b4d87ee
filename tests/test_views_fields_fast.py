"""``-T fields`` from the templates (issue 14): line by line the text ``Columns.line`` gives for
the record, on varied corrupted traffic, two-link pcapng and every sample capture, for column
sets covering frame data, times, pairs, layer tests, enums, lists and issue counts, under each
``-E`` option; the CLI's fast path equals its record path."""
from __future__ import annotations

import pytest

from test_views_analysis_fast import _varied_pcap, flit_stream
from test_views_fast import _cli, two_link_pcapng

COLUMN_SETS = [
    ["frame", "ip.src", "ub.rtph.psn", "ub.btah.taopcode_name", "ub.maetah.length", "data.len",
     "ub.icrc.status"],
    ["frame.number", "frame.len", "frame.cap_len", "frame.time_relative", "frame.time_delta",
     "frame.time_delta_displayed", "frame.time_epoch", "time", "frame.linktype"],
    ["ip.addr", "udp.port", "eth.addr", "eth.src", "ub.rtph", "ub.btah", "ub.lph.cfg",
     "ub.cna16.scna", "ub.cfg5.protocol_name", "ub.saetph.acked_psns", "ub.icrc.value",
     "ub.maetah.address", "issues", "errors", "warnings", "frame.protocols", "data.data",
     "ub.atah.taopcode", "ip.ttl", "ub.rtph.tpopcode_name"],
]
OPTIONS = [(), ("quote=d", "separator=,"), ("occurrence=f", "aggregator=/s", "quote=s"),
           ("separator=%", "occurrence=l")]


def _reference(path, cols) -> bytes:
    from ubpkt.capture.stream import iter_records
    from ubpkt.views.timefmt import FrameClock
    clock = FrameClock()
    out = []
    for rec in iter_records(path, exact_time=True):
        if rec.get("frame") is None:
            continue
        clock.stamp(rec)
        clock.displayed(rec)
        out.append(cols.line(rec) + "\n")
    return "".join(out).encode()


@pytest.fixture(scope="module")
def paths(sample_captures, tmp_path_factory):
    d = tmp_path_factory.mktemp("fields")
    return [_varied_pcap(d / "varied.pcap", n=1500, seed=3),
            two_link_pcapng(sample_captures, d / "two.pcapng"),
            flit_stream(sample_captures, d / "flits.pcap"),
            *sorted(sample_captures.glob("*.pcap"))]


@pytest.mark.parametrize("names", range(len(COLUMN_SETS)))
@pytest.mark.parametrize("opts", range(len(OPTIONS)))
def test_fields_fast_equals_record_lines(paths, names, opts):
    from ubpkt.capture.stream import iter_fields
    from ubpkt.views.columns import Columns, parse_E
    cols = Columns(COLUMN_SETS[names], parse_E(OPTIONS[opts]))
    for path in paths:
        want = _reference(path, cols)
        got = b"".join(iter_fields(path, cols))
        assert got.splitlines() == want.splitlines(), path
        assert got == want and want.count(b"\n") > 3


def test_fields_fast_path_used_templates(paths):
    """The varied capture's lines came from the templates, not from records."""
    from ubpkt.capture import stream
    from ubpkt.dissect.fastpath import TemplateCache
    from ubpkt.views.columns import Columns
    seen = []
    orig = TemplateCache.view

    def spy(self, *a):
        out = orig(self, *a)
        seen.append(out.__class__ is str)
        return out
    TemplateCache.view = spy
    try:
        b"".join(stream.iter_fields(paths[0], Columns(COLUMN_SETS[0])))
    finally:
        TemplateCache.view = orig
    assert sum(seen) > len(seen) // 2


def test_decode_fields_cli_fast_equals_record_path(paths):
    """``decode -T fields`` (fast path) against ``-c BIG`` (the record path), with a header."""
    for path in paths[:3]:
        args = ["decode", "-q", "-T", "fields", "-E", "header=y", "-E", "quote=d"]
        for n in COLUMN_SETS[0] + COLUMN_SETS[1][:5]:
            args += ["-e", n]
        fast = _cli(*args, str(path))
        slow = _cli(*args, "-c", "100000000", str(path))
        assert fast.returncode == slow.returncode == 0, fast.stderr
        assert fast.stdout == slow.stdout and fast.stdout.count(b"\n") > 3
