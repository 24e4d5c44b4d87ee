"""scapy's ``sr()`` over a plain UDP socket: UB packets crafted with the scapy layers, sent to a
UBoE peer such as ``ubpkt serve``, answers dissected and paired with ``answers()``.

Why a socket and not scapy's own ``sr``: scapy's L3 socket cannot send to 127.0.0.1 and see the
answer on every set-up, and its raw IPv4 socket lets the kernel replace an IP id of 0, which the
ICRC then no longer covers (UB 2.0 §5.3.7; ``ubpkt serve`` checks the ICRC over a header
rebuilt with DF and IP id 0, ``docs/drivers.md``).  ``srp(..., iface="lo")`` does work as root
(the Ethernet frame goes out as built), see ``docs/scapy.md``; :class:`UdpSession` needs no
privilege.

A :class:`UdpSession` owns one unconnected UDP socket (DF set, as the UDP driver's) bound to
``bind``: the peer keys its session on that address and port.  :meth:`UdpSession.ip` gives the
IPv4/UDP header the kernel will send (the socket pair, DF, IP id 0), so the ICRC scapy computes
over it is the one the peer recomputes.  Only the UDP payload (transport header onward) is sent.
A received datagram is rebuilt the same way (the peer's address and port, ours, DF, IP id 0)
and dissected, with the session's own port bound as a UB port while it is open
(:func:`~ubpkt.scapy.answering.ub_ports`), so answers dissect as UB and their ICRC can be
checked (``ubpkt.dissect``).
"""
from __future__ import annotations

import select
import time

from scapy.layers.inet import IP, UDP
from scapy.packet import Raw
from scapy.plist import PacketList, QueryAnswer, SndRcvList

from ..drivers.udp import UB_UDP_PORT, open_udp_socket
from ..stack.network import RTP_DATA
from .answering import ub_ports
from .layers import LAYER_CLASSES

_RTPH = LAYER_CLASSES["ub.rtph"]

__all__ = ["UdpSession"]


class UdpSession:
    """See the module doc.  ``peer``: (IPv4 address, port) of the UBoE peer; ``bind``: the
    local address (port 0: the kernel picks one).  A context manager."""

    def __init__(self, peer: tuple = ("127.0.0.1", UB_UDP_PORT),
                 bind: tuple = ("127.0.0.1", 0)):
        self.peer = tuple(peer)
        self.sock = open_udp_socket(bind, 1 << 20)
        self.sock.setblocking(False)
        self.local = self.sock.getsockname()
        self._ports = ub_ports(self.local[1], self.peer[1])
        self._ports.__enter__()
        self.sent = PacketList(name="Sent")
        self.received = PacketList(name="Received")
        self.acks = PacketList(name="TPACKs")

    def __enter__(self) -> "UdpSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            self._ports.__exit__(None, None, None)

    def ip(self):
        """``IP()/UDP()`` as the kernel sends our datagrams to the peer: put the UB layers on
        it (``s.ip()/UBRtph(...)/...``)."""
        return (IP(src=self.local[0], dst=self.peer[0], flags="DF", id=0, ttl=64)
                / UDP(sport=self.local[1], dport=self.peer[1]))

    def send(self, pkts) -> None:
        """Send each packet's UDP payload (``pkt[UDP].payload``: transport header, padding,
        ICRC) to the peer."""
        for p in ([pkts] if not isinstance(pkts, (list, PacketList)) else pkts):
            p = IP(bytes(p[IP]))            # built once (lengths, ICRC), as it goes out
            self.sock.sendto(bytes(p[UDP].payload), self.peer)
            p.sent_time = time.time()
            self.sent.append(p)

    def recv(self, timeout: float = 0.5, count: int | None = None,
             ack: bool = True) -> PacketList:
        """Datagrams from the peer until ``timeout`` seconds pass without one (or ``count``
        came), each dissected as ``IP()/UDP()/UB...``.  ``ack``: answer every RTP data packet
        (a Read response, a TAACK...) with a TPACK of its PSN on the swapped channel at once
        (UB 2.0 §6.2.1), as a requester's transport would, so the peer does not retransmit it;
        those TPACKs are kept in :attr:`acks`."""
        got = []
        while count is None or len(got) < count:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                break
            try:
                data, addr = self.sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:                 # an ICMP error reported on the socket
                continue
            if tuple(addr) != self.peer:
                continue
            p = IP(bytes(IP(src=addr[0], dst=self.local[0], flags="DF", id=0, ttl=64)
                         / UDP(sport=addr[1], dport=self.local[1]) / Raw(data)))
            p.time = time.time()
            got.append(p)
            if ack:
                self._ack(p)
        self.received.extend(got)
        return PacketList(got, name="Received")

    def _ack(self, p) -> None:
        tph = p.getlayer(_RTPH)
        if tph is not None and tph.tpopcode == RTP_DATA:
            a = self.ip() / _RTPH(tpopcode="TPACK", psn=tph.psn, srctpn=tph.dsttpn,
                                  dsttpn=tph.srctpn)
            self.sock.sendto(bytes(a[UDP].payload), self.peer)
            self.acks.append(a)

    def sr(self, pkts, timeout: float = 0.5, multi: bool = True, count: int | None = None):
        """Send, collect the answers until ``timeout`` seconds pass quietly, pair them as
        scapy's ``sr`` does (``hashret()`` then ``answers()``): (answered ``SndRcvList``,
        unanswered ``PacketList``).  ``multi``: a request keeps every answer (a Write gets its
        TPACK and its TAACK); else only the first."""
        pkts = [pkts] if not isinstance(pkts, (list, PacketList)) else list(pkts)
        n0 = len(self.sent)
        self.send(pkts)
        sent = list(self.sent[n0:])
        got = self.recv(timeout, count)
        return pair(sent, got, multi)

    def sr1(self, pkt, timeout: float = 0.5):
        """The first answer to ``pkt`` (None: none came)."""
        ans, _ = self.sr(pkt, timeout, multi=False)
        return ans[0].answer if ans else None


def pair(sent, received, multi: bool = True):
    """(answered, unanswered) as scapy's ``sr`` pairs them: by ``hashret()`` then
    ``answers()``."""
    by_hash: dict = {}
    for s in sent:
        by_hash.setdefault(s.hashret(), []).append(s)
    answered, hit = [], set()
    for r in received:
        for s in by_hash.get(r.hashret(), ()):
            if (multi or id(s) not in hit) and r.answers(s):
                answered.append(QueryAnswer(s, r))
                hit.add(id(s))
                if not multi:
                    break
    unanswered = [s for s in sent if id(s) not in hit]
    return SndRcvList(answered), PacketList(unanswered, name="Unanswered")
