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
    from ubpkt.capture import stream
    from ubpkt.dissect.fastpath import TemplateCache
    seen = []
    orig = TemplateCache.view

    def spy(self, *a):
        out = orig(self, *a)
        seen.append(out.__class__ is str)
        return out
    TemplateCache.view = spy
    try:
        b"".join(stream.iter_tree(paths[0]))
    finally:
        TemplateCache.view = orig
    assert sum(seen) > len(seen) // 2


@pytest.mark.parametrize("tfmt", ["r", "dd"])
def test_decode_tree_cli_fast_equals_record_path(paths, tfmt):
    """``decode -V`` (fast path) against ``-V -c BIG`` (the record path)."""
    for path in paths[:3]:
        fast = _cli("decode", "-q", "-V", "-t", tfmt, str(path))
        slow = _cli("decode", "-q", "-V", "-t", tfmt, "-c", "100000000", str(path))
        assert fast.returncode == slow.returncode == 0, fast.stderr
        assert fast.stdout == slow.stdout and fast.stdout.count(b"\n\n") > 3
