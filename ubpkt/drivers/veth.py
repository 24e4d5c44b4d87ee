"""``ubpkt loopback --driver veth``: the loopback's two endpoints on raw Ethernet, each in its own
network namespace, joined by a veth pair (:class:`~ubpkt.drivers.netns.VethLab`).

:class:`VethNet` is the loopback's network (the calls of ``ubpkt.sim.loopback._SimNet``): it
makes the namespaces and the pair, opens one :class:`~ubpkt.drivers.raw.RawDriver` inside each
namespace (the sockets stay there; the process does not), gives endpoint A the path to B's MAC,
IP and UDP port and back, puts the fault injectors on each driver's send path (the same options,
seeds and ledger as the simulator), runs both drivers in this thread on one wall clock
(:func:`~ubpkt.drivers.wallclock.run_drivers`) and removes everything on :meth:`close` (which the
loopback calls in a ``finally``; ``atexit`` catches the rest).

Only UBoE travels on Ethernet: transports ``rtp`` and ``utp`` (UB 2.0 §5.2.3).  The timers are
those of :func:`~ubpkt.drivers.udp.wallclock_profile` (a dynamic RTO from 16 ms), the link
delay and rate options of the simulator do not apply (the veth pair is the link).
"""
from __future__ import annotations

import time

from ..profile import Profile
from ..sim.faults import FaultInjector, FaultSpec
from ..sim.ledger import Ledger
from .netns import VethLab, enter
from .raw import RawDriver
from .udp import wallclock_profile
from .wallclock import run_drivers

__all__ = ["VethNet"]

#: how long the last acknowledgements may take once the workload completed (a lost final
#: TPACK is recovered by a retransmission after the 16 ms RTO)
SETTLE_S = 0.3


class VethNet:
    """Two raw Ethernet drivers in two namespaces (module doc)."""
    name = "veth"

    def __init__(self, cfg, kind: str):
        if kind != "uboe":
            raise ValueError(f"--driver veth carries UBoE only (transport rtp or utp), not "
                             f"{cfg.transport}")
        if cfg.pcap:
            raise ValueError("--pcap is the simulator's tap; capture the veth with tshark "
                             "inside the namespace instead")
        self.cfg = cfg
        self.drivers: list = []
        self.lab = VethLab()
        self._closed = False
        self.lab.create()
        try:
            t0 = time.monotonic_ns()
            for ns, ifn in zip(self.lab.ns, self.lab.ifaces):
                with enter(ns):
                    self.drivers.append(RawDriver(ifn, profile=cfg.profile, t0=t0))
        except BaseException:
            self.close()
            raise

    def profile(self, prof: Profile) -> Profile:
        return wallclock_profile(prof, window=prof.tuning.transport.window)

    def paths(self) -> tuple:
        da, db = self.drivers
        return da.path_to(db.local), db.path_to(da.local)

    def connect(self, app, peer, fa, fb, ledger: Ledger, prof: Profile) -> None:
        cfg = self.cfg
        da, db = self.drivers
        for drv, other, eng, spec, seed, name, dst in (
                (da, db, app, fa, cfg.seed, "A", "B"), (db, da, peer, fb, cfg.seed + 1, "B", "A")):
            inj = None
            if spec:
                fs = FaultSpec.parse(spec)
                if fs:
                    inj = FaultInjector(fs, seed=fs.seed if fs.seed is not None else seed,
                                        link=f"{name}->{dst}", src=name, dst=dst, ledger=ledger,
                                        profile=prof)
            drv.profile = prof
            drv.node = name         # what this driver drops, endpoint `name` dropped
            drv.add_peer(other.local, eng, name=name, faults=inj)

    @property
    def now(self) -> int:
        return self.drivers[0].now()

    @property
    def events(self) -> list:
        return [e for d in self.drivers for e in d.events]

    @property
    def driver_bad_icrc(self) -> int:
        return sum(d.stats["bad_icrc"] for d in self.drivers)

    def run(self, until) -> str:
        out = run_drivers(self.drivers, until, timeout_s=self.cfg.timeout_s)
        return {"until": "until", "timeout": "time"}.get(out, out)

    def settle(self, until) -> None:
        run_drivers(self.drivers, lambda: until() and not any(d.pending() for d in self.drivers),
                    timeout_s=SETTLE_S)

    def stop(self) -> None:
        for d in self.drivers:
            d.stop()

    def close(self) -> None:
        """Close the sockets and remove the namespaces (and the veth pair); idempotent."""
        if self._closed:
            return
        self._closed = True
        for d in self.drivers:
            try:
                d.close()
            except OSError:
                pass
        self.lab.remove()

    def link_report(self) -> dict:
        """A veth pair is a real Ethernet link: the loopback's link modes are simulated ones."""
        return {"mode": "ethernet"}

    def report(self) -> dict:
        out = {"kind": "veth", "removed": self._closed}
        out.update(self.lab.describe())
        for name, d in zip("ab", self.drivers):
            out[name] = d.report()
        return out
