"""TP bypass (CFG 9, UB 2.0 App B): the compact TAH straight after the 16-bit CNA NTH, no
transport header at all, no ICRC: nothing to number, acknowledge or resend.  The segments'
``ta`` must be the compact TAH forms.  See :mod:`.datagram`."""
from __future__ import annotations

from .datagram import DatagramChannel

__all__ = ["BypassChannel"]


class BypassChannel(DatagramChannel):
    """One TP-bypass endpoint."""

    mode = "bypass"
    _build = "bypass_data"
