"""Drivers that run the sans-IO engines of :mod:`ubpkt.stack` on real wires and the wall clock
(``ubpkt serve``, ``ubpkt inject``, ``ubpkt generate``, ``ubpkt loopback --driver veth``).
:mod:`ubpkt.drivers.wallclock`: the loop they share; :mod:`ubpkt.drivers.udp`: UBoE over the
host's IP stack; :mod:`ubpkt.drivers.raw`: UBoE frames on an interface (AF_PACKET);
:mod:`ubpkt.drivers.netns` and :mod:`ubpkt.drivers.veth`: two namespaces and a veth pair."""
from __future__ import annotations

from .udp import (ICRC_NOTE, UdpDriver, UdpPath, parse_hostport, udp_profile,
                  wallclock_profile)
from .wallclock import WallClockDriver, run_drivers

__all__ = ["UdpDriver", "UdpPath", "parse_hostport", "udp_profile", "wallclock_profile",
           "ICRC_NOTE", "WallClockDriver", "run_drivers"]
