"""Micro-benchmark: TP packets per second through two RtpChannels, no loss.

    python tests/stack/transport/bench_rtp.py [packets] [payload bytes]

``framed``: real frames (Framer.rtp_data/tp_response, Framer.parse with its ICRC check);
``engine only``: a stub framer that hands TpPacket objects across, i.e. the channels' own cost.
"""
from __future__ import annotations

import sys
import time

from ubpkt import SPEC
from ubpkt.profile import TransportTuning
from ubpkt.stack.network import RTP_DATA, TPACK, Framer, Path, TpPacket
from ubpkt.stack.transport import TaSegment
from ubpkt.stack.transport.rtp import RtpChannel

TA = bytes(24)


class StubFramer:
    """Frames are the TpPackets themselves."""

    def rtp_data(self, srctpn, dsttpn, psn, ta, payload=b"", *, a=0, last=0, tpmsn=0):
        return TpPacket("rtp", RTP_DATA, last, srctpn, dsttpn, a, psn, 0, 0, tpmsn, payload)

    def tp_response(self, srctpn, dsttpn, psn, *, rspst=0, rspinfo=0, tpmsn=0, bitmap=None,
                    maxrcvpsn=0):
        return TpPacket("rtp", TPACK, 0, srctpn, dsttpn, 0, psn, rspst, rspinfo, tpmsn, b"")

    def parse(self, frame):
        return frame


def run(n: int, size: int, framed: bool, tuning=TransportTuning()) -> float:
    fa = Framer(Path(), SPEC) if framed else StubFramer()
    fb = Framer(Path().reverse(), SPEC) if framed else StubFramer()
    got = [0]

    def deliver(pkt, now):
        got[0] += 1

    a = RtpChannel(channel_id=1, local_tpn=1, peer_tpn=2, tx_psn=7, rx_psn=9, framer=fa,
                   tuning=tuning, deliver=deliver)
    b = RtpChannel(channel_id=2, local_tpn=2, peer_tpn=1, tx_psn=9, rx_psn=7, framer=fb,
                   tuning=tuning, deliver=deliver)
    payload = bytes(size)
    segs = [TaSegment(TA, payload, True) for _ in range(n)]
    pa, pb = fa.parse, fb.parse
    t0 = time.perf_counter()
    for s in segs:
        a.send(s)
    now = 0
    while not a.idle():
        now += 1000
        for f in a.transmit(now, 64):           # a burst per step, like a driver would
            b.receive(pb(f), now)
        for f in b.transmit(now):
            a.receive(pa(f), now)
    dt = time.perf_counter() - t0
    assert got[0] == n
    return n / dt


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    for framed in (False, True):
        rate = run(n, size, framed)
        label = "framed" if framed else "engine only"
        mb = rate * size / 1e6 if framed else 0
        print(f"{label:12} {rate:12,.0f} packets/s" + (f"  ({mb:,.0f} MB/s of payload)"
                                                          if framed else ""))


if __name__ == "__main__":
    main()
