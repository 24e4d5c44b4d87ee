"""Varied traffic (issue 14): the fast path against the generic path, and every view against
ndjson, side by side in one run.

The workload: the UBoE sample kinds (``captures/make_captures.uboe_packets``: every TA opcode
and header form the sample set has) drawn at random, each frame with a random payload length
(1..``MAX_PAYLOAD`` bytes where the kind carries a payload), random PSN, TASSN, IP id, address and
payload bytes - what real captures look like, not the same 23 frames over and over.  A seeded
``random.Random`` makes it the same file every run.

Measured in this process (CPU time, ``time.process_time``, best of ``REPEAT``) over a pcap of
``N`` frames (10k by default, the issue's sample size):

* generic: ``ubpkt.decode()`` + orjson per frame (no templates at all);
* ndjson: ``ubpkt.capture.stream.iter_ndjson`` (what ``decode -T ndjson`` writes);
* json, summary, fields (``FIELDS``), tree (``-V``) and every ``stats`` kind (stats, conv,
  endpoints, io, srt, expert): the views' fast entry points.

Usage: python bench/bench_varied.py [N] [--same]   (--same: the 23 kinds with fixed lengths)
"""
from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "captures"))

from make_captures import uboe_packets  # noqa: E402

from ubpkt.capture import LINKTYPE_ETHERNET, PcapWriter  # noqa: E402
from ubpkt.analytics.traffic import vary_layers  # noqa: E402
from ubpkt.encode import encode_layers  # noqa: E402

#: Largest random payload, bytes.
MAX_PAYLOAD = 1024
REPEAT = 3


def varied_frames(n: int, seed: int = 14, same: bool = False) -> list[bytes]:
    """``n`` UBoE frames of random kinds with random payload lengths and per-frame values."""
    rnd = random.Random(seed)
    kinds = uboe_packets()
    out = []
    size = len if same else (lambda _: rnd.randint(1, MAX_PAYLOAD))
    for i in range(n):
        kind = kinds[i % len(kinds)] if same else rnd.choice(kinds)
        out.append(encode_layers(vary_layers(kind, rnd, size, vary_address=True)))
    return out


def write_pcap(path: Path, frames: list[bytes]) -> None:
    with PcapWriter(path, LINKTYPE_ETHERNET) as w:
        for i, f in enumerate(frames):
            w.write(f, i * 1000)


def _generic(path):
    import orjson
    from ubpkt.capture import open_capture
    from ubpkt.dissect import decode
    from ubpkt.profile import SPEC
    out = []
    with open_capture(path) as cap:
        for n, p in enumerate(cap, 1):
            out.append(orjson.dumps(decode(p.data, p.linktype, SPEC, frame=n, time=p.time_ns / 1e9,
                                           orig_len=p.orig_len), option=orjson.OPT_APPEND_NEWLINE))
    return b"".join(out)


def _ndjson(path):
    from ubpkt.capture.stream import iter_ndjson
    return b"".join(iter_ndjson(path))


def _json(path):
    from ubpkt.capture.stream import iter_json
    return b"".join(iter_json(path))


def _summary(path):
    from ubpkt.capture.stream import iter_summary
    return b"".join(iter_summary(path))


FIELDS = ["frame", "ip.src", "ub.rtph.psn", "ub.btah.taopcode_name", "ub.maetah.length",
          "data.len", "ub.icrc.status"]


def _fields(path):
    from ubpkt.capture.stream import iter_fields
    from ubpkt.views.columns import Columns
    return b"".join(iter_fields(path, Columns(FIELDS, {})))


def _stats_kind(make):
    """A ``ubpkt stats`` kind over the fast path's parts, its JSON result rendered."""
    def run(path):
        from ubpkt.capture.stream import iter_parts
        st = make()
        add = st.add_parts
        for part in iter_parts(path):
            for p in part:
                add(*p)
        return st.to_json(20)
    return run


def _make(kind):
    from ubpkt.views import stats
    return {"stats": stats.CaptureStats, "conv": stats.ConvStats,
            "endpoints": lambda: stats.ConvStats(endpoints=True),
            "io": lambda: stats.IoStats(1_000_000), "srt": stats.SrtStats,
            "expert": stats.ExpertStats}[kind]


def _tree(path):
    from ubpkt.capture.stream import iter_tree
    return b"".join(iter_tree(path))


VIEWS = {"generic": _generic, "ndjson": _ndjson, "json": _json, "summary": _summary,
         "fields": _fields, "tree": _tree,
         **{k: _stats_kind(lambda k=k: _make(k)())
            for k in ("stats", "conv", "endpoints", "io", "srt", "expert")}}


def cpu(fn, path) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        t = time.process_time()
        fn(path)
        best = min(best, time.process_time() - t)
    return best


def main(n: int, same: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "varied.pcap"
        write_pcap(path, varied_frames(n, same=same))
        per = {}
        for name, fn in VIEWS.items():
            try:
                per[name] = cpu(fn, path)
            except ImportError as exc:      # a view without a fast entry point yet
                print(f"{name:8s} (skipped: {exc})")
    print(f"{'workload':10s} {'view':9s} {'frames/s':>10s}  ratio")
    label = "same-23" if same else "varied"
    for name, t in per.items():
        rate = n / max(t, 1e-9)
        if name == "generic":
            ratio = "1.00x (reference)"
        elif name == "ndjson":
            ratio = f"{per['generic'] / t:.2f}x generic"
        else:
            ratio = f"{per['ndjson'] / t:.2f}x ndjson"
        print(f"{label:10s} {name:9s} {rate:10,.0f}  {ratio}")
    return per


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 10000, same="--same" in sys.argv)
