"""CTP: compact transport (UB 2.0 §6.3.2, §6.7.2): a one-byte CTPH, no PSN, no TPACK, no
end-to-end retransmission (the link layer's hop-by-hop retransmission is relied on).  Every
transaction operation is one TP packet, so each segment must be its transaction's last
(``TaSegment.last``).  See :mod:`.datagram`."""
from __future__ import annotations

from . import TaSegment
from .datagram import DatagramChannel

__all__ = ["CtpChannel"]


class CtpChannel(DatagramChannel):
    """One CTP endpoint (CNA NTH only: CTP is not carried over UDP, §5.2.3)."""

    mode = "ctp"
    _build = "ctp_data"

    def send(self, seg: TaSegment) -> None:
        if not seg.last:
            raise ValueError("CTP carries a whole transaction operation in one packet "
                             "(UB 2.0 §6.7.2.1): the segment must be its last")
        self._queue.append(seg)
