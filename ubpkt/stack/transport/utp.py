"""UTP: unreliable transport (UB 2.0 §6.3.3): no TP channel state, no PSN, no response, no
retransmission; a lost packet is simply absent.  See :mod:`.datagram`."""
from __future__ import annotations

from .datagram import DatagramChannel

__all__ = ["UtpChannel"]


class UtpChannel(DatagramChannel):
    """One UTP endpoint: frames with a UTPH (TPOpcode 0), over UBoE or a CNA NTH."""

    mode = "utp"
    _build = "utp_data"
