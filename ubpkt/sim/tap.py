"""A pcap tap on simulated links (like smoltcp's pcap device): every frame that crosses a link,
written when it arrives, with the simulated time as its timestamp (nanosecond pcap).

Frames are written as they travel: injected damage (flipped bits, duplicates, reordering) is in
the file as sent, so the decoder shows a corrupted frame with ``ub.icrc.status == "bad"``.  Frames
a fault or a full queue dropped never cross the link and are not written (the fault ledger lists
them).  One tap may serve several link directions (the simulator writes in time order); all must
carry the same link type: 1 (UBoE, Ethernet) or 148 (native UB from the LPH).
"""
from __future__ import annotations

from ..capture.pcap import PcapWriter
from ..record import LINKTYPE_ETHERNET

__all__ = ["PcapTap"]


class PcapTap:
    """``PcapTap(path_or_file, linktype=1)``; ``write(frame, now, link=None)``; ``close()``.
    ``links``: when given, only those link directions (``"a->b"``) are written.  ``count`` is
    the number of frames written."""

    def __init__(self, path_or_file, linktype: int = LINKTYPE_ETHERNET, *, links=None,
                 snaplen: int = 262144):
        self.linktype = linktype
        self.links = None if links is None else set(links)
        self._w = PcapWriter(path_or_file, linktype, nanosecond=True, snaplen=snaplen)
        self.count = 0
        self._last = 0
        self.closed = False

    def write(self, frame, now: int, link: str | None = None) -> None:
        if self.closed:
            raise ValueError("the tap is closed")
        if self.links is not None and link not in self.links:
            return
        if now < self._last:
            raise ValueError(f"pcap records out of time order ({now} after {self._last})")
        self._last = now
        self._w.write(bytes(frame), now)
        self.count += 1

    def close(self) -> None:
        if not self.closed:
            self._w.close()
            self.closed = True

    def __enter__(self) -> "PcapTap":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
