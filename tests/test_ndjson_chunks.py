"""Streamed ndjson (issue 14): the classic-pcap ndjson path hands out chunks of at most
``NDJSON_CHUNK_LINES`` whole lines, never a whole read buffer's output, and the bytes are the
record path's; the CLI's peak memory on a capture whose ndjson is many read buffers long stays
bounded."""
import os
import subprocess
import sys

import pytest

from capture_fixtures import SAMPLE, pcap
from ubpkt.capture import open_capture
from ubpkt.capture import stream
from ubpkt.capture.stream import iter_ndjson, iter_records
from ubpkt.views.output import to_json_bytes
from ubpkt.views.timefmt import FrameClock, json_view


def _record_path(p) -> bytes:
    """The ndjson the record path writes (``ubpkt decode -T ndjson -c N``)."""
    clock, out = FrameClock(), []
    for rec in iter_records(p, exact_time=True):
        clock.stamp(rec)
        out.append(to_json_bytes(json_view(rec)))
    return b"".join(out)


def _sample_frames():
    with open_capture(SAMPLE) as cap:
        return cap.linktype, [p.data for p in cap]


def _capture(tmp_path, n):
    lt, frames = _sample_frames()
    p = tmp_path / "many.pcap"
    p.write_bytes(pcap([(i, i * 7, frames[i % len(frames)]) for i in range(n)], lt))
    return p


def test_chunks_are_small_whole_lines_and_match_the_record_path(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "NDJSON_CHUNK_LINES", 7)
    p = _capture(tmp_path, 100)
    chunks = list(iter_ndjson(p))
    assert len(chunks) == 15                       # 14 chunks of 7 lines and one of 2
    assert all(c.endswith(b"\n") and c.count(b"\n") <= 7 for c in chunks)
    assert b"".join(chunks) == _record_path(p)


def test_a_record_longer_than_the_read_buffer_still_comes_out(tmp_path, monkeypatch):
    """A chunk boundary falling on a buffer refill: records straddling the 4 MiB read."""
    monkeypatch.setattr(stream, "NDJSON_CHUNK_LINES", 3)
    lt, frames = _sample_frames()
    big = frames[0] + bytes(5 << 20)
    p = tmp_path / "big.pcap"
    p.write_bytes(pcap([(0, 0, frames[1]), (1, 0, big), (2, 0, frames[2]), (3, 0, frames[3])],
                       lt))
    out = b"".join(iter_ndjson(p))
    assert out == _record_path(p) and out.count(b"\n") == 4


@pytest.mark.parametrize("jobs", [1, 2])
def test_cli_peak_memory_does_not_grow_with_the_output(tmp_path, jobs):
    """60k frames render to ~90 MB of ndjson (several 4 MiB read buffers, each ~45 MB of
    output): the process (and with -j 2 each worker) stays well under what holding one
    buffer's output twice costs; the output is the same with -j 1 and -j 2."""
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc/self/status (VmHWM) to read the peak RSS")
    p = tmp_path / "many.pcap"
    if not p.exists():
        p = _capture(tmp_path, 60_000)
    # VmHWM, not getrusage(SELF): ru_maxrss survives exec on Linux, so a child of pytest would
    # report pytest's own peak.  The workers (forked, reaped when the pool closes) are
    # RUSAGE_CHILDREN.  The small-file rule (-j needs 16 MiB) is lifted for the test.
    code = ("import resource, runpy, sys\n"
            "import ubpkt_cli.decode_cmd as d\n"
            "d._FORCE_SMALL_PARALLEL = True\n"
            "sys.argv = ['ubpkt', 'decode', '-q', '-j', sys.argv[2], '-T', 'ndjson', sys.argv[1]]\n"
            "try:\n"
            "    runpy.run_module('ubpkt_cli', run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
            "sys.stderr.write('maxrss=%d %d\\n' % (int(hwm.split()[1]), kids))\n")
    r = subprocess.run([sys.executable, "-c", code, str(p), str(jobs)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=True)
    assert r.stdout.count(b"\n") == 60_000
    parent_kb, workers_kb = map(int, r.stderr.decode().rsplit("maxrss=", 1)[1].split())
    assert parent_kb < 80 * 1024, parent_kb
    assert workers_kb < 80 * 1024, workers_kb
    if jobs == 2:
        assert workers_kb > 0                      # the workers did run
        one = subprocess.run([sys.executable, "-m", "ubpkt_cli", "decode", "-q", "-T", "ndjson",
                              str(p)], stdout=subprocess.PIPE, check=True).stdout
        assert one == r.stdout
