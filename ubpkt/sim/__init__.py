"""The simulator (UB 2.0 stack testing): links with delay, rate and queues (:mod:`.link`), a
seeded fault injector with netem's options (:mod:`.faults`), the fault ledger that matches every
injected fault to what the engines did about it (:mod:`.ledger`), a pcap tap (:mod:`.tap`) and
the deterministic event loop over engines (:mod:`.driver`)::

    from ubpkt.sim import Simulator, PcapTap
    sim = Simulator(seed=1)
    with PcapTap("run.pcap") as tap:
        sim.connect(a, b, {"delay": "1us", "rate": "100G"},
                    faults_ab="loss=0.01,reorder=0.01:3", tap=tap)
        sim.run(until=lambda: a.done)
    print(sim.report())
"""
from .driver import Direction, Node, Simulator
from .faults import FaultInjector, FaultSpec, corruptible_bits
from .ledger import Fault, Ledger, summarize
from .link import Link, LinkParams, SimLink, parse_rate, parse_time
from .tap import PcapTap

__all__ = ["Simulator", "Direction", "Node", "FaultInjector", "FaultSpec", "corruptible_bits",
           "Fault", "Ledger", "summarize", "Link", "LinkParams", "SimLink", "parse_rate",
           "parse_time", "PcapTap"]
