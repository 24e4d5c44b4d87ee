"""Drivers that run the sans-IO engines of :mod:`ubpkt.stack` on real wires and the wall clock
(``ubpkt serve``, ``ubpkt inject``).  :mod:`ubpkt.drivers.udp`: UBoE over the host's IP stack."""
from __future__ import annotations

from .udp import (ICRC_NOTE, UdpDriver, UdpPath, parse_hostport, udp_profile,
                  wallclock_profile)

__all__ = ["UdpDriver", "UdpPath", "parse_hostport", "udp_profile", "wallclock_profile",
           "ICRC_NOTE"]
