"""Flit streams and the link against byte-level limits, ratios side by side in one run.

* ``ubpkt decode -T ndjson`` of a flit stream (pcap linktype LINKTYPE_FLITS, written by
  ``ubpkt link frame``) against the same packets as a linktype-148 capture (frames/s);
* ``ubpkt link frame`` and ``ubpkt link deframe`` (MB/s of flit stream) against a C CRC30 over
  the same bytes (the package's ``_linkc`` when built, else ``anycrc``) and a memory copy:
  frame from a linktype-148 capture to raw flits and to a flit pcap (151), deframe from raw
  flits and from that flit pcap (``link frame`` takes only 148/147 captures: an Ethernet/UBoE
  capture is refused, so there is no such row).

Every CLI figure is CPU time (user + system of the child) by difference between 2N and N
packets, so interpreter start-up cancels.  Not run by the tests.

    PYTHONPATH=$PWD:$PWD/cli python3 bench/bench_flits.py [N] [--link-only]   (default 20000)

``--link-only`` skips the decode rows (the link rows alone take a few seconds).
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "captures"))

from make_captures import native_packets  # noqa: E402

from ubpkt.capture import LINKTYPE_UB, PcapWriter  # noqa: E402
from ubpkt.encode import encode_layers  # noqa: E402


def make(path: Path, n: int) -> None:
    """A linktype-148 capture of the sample DLLDP kinds (DLLCB samples left out) in turn."""
    pkts = [encode_layers(p) for p in native_packets()]
    pkts = [p for p in pkts if p[1] & 0x0F]            # CFG 0 marks a DLLCB, not a DLLDP
    with PcapWriter(path, LINKTYPE_UB) as w:
        for i in range(n):
            w.write(pkts[i % len(pkts)], 1_000_000 + i * 1000)


def cpu(args, repeat: int = 1) -> float:
    """CPU seconds of a child running ``args``, the least of ``repeat`` runs (a shared
    machine's load only ever adds)."""
    out = float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = min(out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return out


def best(fn, repeat: int = 3) -> float:
    out = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        out = min(out, time.process_time() - t)
    return max(out, 1e-9)


#: megabytes of flits (about) the link commands run over, and twice that
LINK_MB = 16
#: runs of each link command, the least CPU time counted (start-up ~0.15 s is most of a run)
LINK_REPEAT = 3


def cli(*args) -> list:
    return [sys.executable, "-m", "ubpkt_cli", *args]


def main(n: int, link_only: bool = False) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="ubpkt-bench-flits-"))
    per: dict = {"n": {}, "2n": {}}
    for tag, count in (() if link_only else (("n", n), ("2n", 2 * n))):
        pk, fl = tmp / f"{tag}.pcap", tmp / f"{tag}.flits.pcap"
        make(pk, count)
        subprocess.run(cli("link", "frame", str(pk), "-o", str(fl)), check=True,
                       stderr=subprocess.DEVNULL)
        per[tag]["decode 148"] = cpu(cli("decode", "-q", "-T", "ndjson", str(pk)))
        per[tag]["decode flits"] = cpu(cli("decode", "-q", "-T", "ndjson", str(fl)))
    # the link commands over LINK_MB and twice as many megabytes of flits
    sizes = {}
    for tag, mb in (("n", LINK_MB), ("2n", 2 * LINK_MB)):
        count = int(mb * 1e6 / 90)
        make(tmp / f"{tag}.link.pcap", count)
        rw = tmp / f"{tag}.flits"
        fp = tmp / f"{tag}.flits.151.pcap"
        per[tag]["frame"] = cpu(cli("link", "frame", str(tmp / f"{tag}.link.pcap"), "-o",
                                    str(rw), "--raw"), LINK_REPEAT)
        per[tag]["frame151"] = cpu(cli("link", "frame", str(tmp / f"{tag}.link.pcap"), "-o",
                                       str(fp)), LINK_REPEAT)
        per[tag]["deframe"] = cpu(cli("link", "deframe", str(rw), "-o", str(tmp / "out.pcap")),
                                  LINK_REPEAT)
        per[tag]["deframe151"] = cpu(cli("link", "deframe", str(fp), "-o",
                                         str(tmp / "out.pcap")), LINK_REPEAT)
        sizes[tag] = rw.stat().st_size
    d = {k: max(per["2n"][k] - per["n"][k], 1e-9) for k in per["n"]}
    mb = (sizes["2n"] - sizes["n"]) / 1e6
    stream = (tmp / "2n.flits").read_bytes()
    try:
        from ubpkt import _linkc
        c_crc = ("C CRC30 (_linkc)", lambda: _linkc.crc30_update(0x3FFFFFFF, stream))
    except ImportError:
        import anycrc
        crc = anycrc.CRC(width=30, poly=0x15A94AD5, init=0x3FFFFFFF, refin=False,
                         refout=False, xorout=0)
        c_crc = ("C CRC30 (anycrc)", lambda: crc.calc(stream))
    crc_rate = len(stream) / 1e6 / best(c_crc[1])
    copy_rate = len(stream) / 1e6 / best(lambda: bytearray(stream))
    rates = {"link frame 148 -> raw flits": mb / d["frame"],
             "link frame 148 -> 151 pcap": mb / d["frame151"],
             "link deframe raw flits": mb / d["deframe"],
             "link deframe 151 pcap": mb / d["deframe151"]}
    print(f"link: {mb:.1f} MB of flits per N" + ("" if link_only else
                                                 f"; decode: {n} packets per N"))
    if not link_only:
        fps148, fpsfl = n / d["decode 148"], n / d["decode flits"]
        print(f"{'decode -T ndjson, linktype 148':34s} {fps148:10,.0f} frames/s")
        print(f"{'decode -T ndjson, flit stream':34s} {fpsfl:10,.0f} frames/s   "
              f"{fpsfl / fps148:6.2f}x the 148 path (goal >= 0.8x)")
    print(f"{c_crc[0]:34s} {crc_rate:10,.1f} MB/s")
    print(f"{'memory copy':34s} {copy_rate:10,.1f} MB/s")
    for k, r in rates.items():
        print(f"{k:34s} {r:10,.1f} MB/s     {r / crc_rate:6.3f}x C CRC30   "
              f"{r / copy_rate:6.4f}x memcpy")
    for p in tmp.iterdir():
        p.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONPATH", os.pathsep.join(sys.path))
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 20000, "--link-only" in sys.argv[1:])
