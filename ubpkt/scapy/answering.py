"""A scapy ``AnsweringMachine`` that answers UBoE requests with the reference stack's target.

:class:`UBAnsweringMachine` sniffs (or is handed) IPv4/UDP packets to a UB port and answers the
RTP data requests among them (UB 2.0 §6.2.1 RTP, §7.4 transactions) the way
``ubpkt serve`` does, without re-implementing any of it: each requester gets a
:class:`~ubpkt.stack.endpoint.Endpoint` with one RTP channel over a shared
:class:`~ubpkt.stack.transaction.memory.Memory`, the frame goes into that endpoint as received
(the ICRC, UB 2.0 §5.3.7, is checked over the real IPv4/UDP header) and what the endpoint sends
back at once is the reply: a TPACK for every data packet, a TAACK after a Write's last packet,
the Read response, the Atomic response, the access error for a failing check (bad TokenID or
TokenValue, out of bounds, §7.2.5), an RNR TPNAK for a Send no buffer is posted for (none is,
unless the caller posts one on :meth:`UBAnsweringMachine.session`'s endpoint).

What it answers, and what it does not:

* RTP only, over IPv4/UDP (UBoE, UB 2.0 §5.2.3): UTP, CTP and native UB frames are ignored.
* A session is made by the first RTP data packet (good ICRC) from a (source IP, UDP source
  port, SrcTPN, DstTPN); its channel answers as TPN DstTPN to TPN SrcTPN.  The spec leaves TP
  channel set-up open (§6.1): here the receive PSN is learnt from that first packet
  (``learn_psn``, default) or given (``rx_psn``), and the send PSN is ``tx_psn`` (0).
* Single shot: every request is answered when it arrives, never later.  The machine runs no
  timer: no retransmission of its Read/Atomic responses or TAACKs (a requester's TPACKs for
  them are taken in when sniffed, nothing else), no TAACK held back for aggregation, no ACK
  coalescing (its profile, :func:`answering_profile`, acknowledges every data packet and sends
  every TAACK on its own).  A requester that never acknowledges the responses stalls its
  session once the channel's window (``window``) of them is unacknowledged.
* At most ``max_sessions`` sessions (the least recently used goes); its own replies, seen again
  by a sniffer on the same interface, are recognised and not answered.

Replies are whole Ethernet frames (the MACs and addresses of the request swapped, IPv4 DF and
IP id 0 as :class:`~ubpkt.drivers.udp.UdpPath` builds them), sent from their IPv4 header on
(``send``) or whole (``l2=True``, ``sendp``); in a test, :meth:`make_reply` is called
directly with crafted packets.
"""
from __future__ import annotations

import time
from collections import OrderedDict, deque
from contextlib import contextmanager

from scapy.ansmachine import AnsweringMachine
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.plist import PacketList
from scapy.config import conf
from scapy.sendrecv import AsyncSniffer, send, sendp, sniff

from ..drivers.udp import UB_UDP_PORT, UdpPath, udp_profile
from ..profile import SPEC, Profile
from ..stack.endpoint import Endpoint
from ..stack.network import RTP_DATA, Framer
from ..stack.transaction.memory import Memory
from .layers import get_profile, set_profile

__all__ = ["UBAnsweringMachine", "answering_profile", "default_memory", "ub_ports"]

_ETH_IPV4 = 0x0800
_DEFAULT_MACS = (bytes.fromhex("020000000002"), bytes.fromhex("020000000001"))
#: replies remembered so that a sniffer seeing them again does not take them for requests
_OWN_REPLIES = 4096


def answering_profile(profile: Profile = SPEC, *, window: int = 128) -> Profile:
    """``profile`` with the transport and transaction settings of a machine that has no timers:
    every data packet acknowledged at once (``ack_every`` 1, UB 2.0 §6.2.1), every TAACK sent
    on its own (``taack_aggregate`` 1, no aggregation across transactions, §7.3.1.1), a window
    of ``window`` unacknowledged responses per session."""
    tr = profile.tuning.transport
    return profile.with_(transport={"ack_every": 1, "window": min(window, tr.oor_window)},
                         transaction={"taack_aggregate": 1, "taack_across_transactions": False})


def default_memory(size: int = 1 << 20) -> Memory:
    """The memory ``ubpkt serve`` has without ``--region``, made smaller: one region of
    ``size`` zero bytes at ``1 << 32``, TokenID 1, no TokenValue, read/write/atomic."""
    m = Memory()
    m.register(1 << 32, size, tokenid=1, perms="rwa")
    return m


@contextmanager
def ub_ports(*ports: int):
    """While open, scapy dissects UDP datagrams to ``ports`` as UB too (the scapy profile's
    ``ub_udp_ports``): replies go to a requester's own port, which is no UB port.  Changes
    scapy's global bindings: not for concurrent use with another profile change."""
    old = get_profile()
    extra = tuple(p for p in ports if p and p not in old.ub_udp_ports)
    if extra:
        set_profile(old.with_(ub_udp_ports=tuple(old.ub_udp_ports) + extra))
    try:
        yield
    finally:
        if extra:
            set_profile(old)


def _frame_of(pkt) -> bytes | None:
    """The Ethernet frame of an IPv4 packet (a default Ethernet header put in front when it has
    none), cut at the IPv4 total length (Ethernet padding is no part of the datagram)."""
    if Ether in pkt and pkt[Ether].type == _ETH_IPV4:
        b = bytes(pkt[Ether])
    elif IP in pkt:
        b = _DEFAULT_MACS[0] + _DEFAULT_MACS[1] + _ETH_IPV4.to_bytes(2, "big") + bytes(pkt[IP])
    else:
        return None
    if len(b) < 42 or b[14] >> 4 != 4 or b[23] != 17:
        return None
    total = int.from_bytes(b[16:18], "big")
    return b[:14 + total] if 28 <= total <= len(b) - 14 else None


class _Session:
    __slots__ = ("ep", "channel", "requests", "replies")

    def __init__(self, ep: Endpoint, channel):
        self.ep = ep
        self.channel = channel
        self.requests = 0
        self.replies = 0


class UBAnsweringMachine(AnsweringMachine):
    """See the module doc.  Options (keyword arguments, scapy's AnsweringMachine style):

    ``memory``: the :class:`~ubpkt.stack.transaction.memory.Memory` requests act on (default
    :func:`default_memory`); ``ports``: the UDP ports that carry UB (default 4792, UB 2.0
    §5.2.3); ``tpn``: answer only requests to this DstTPN (default: any); ``learn_psn``
    (default True) / ``rx_psn``: the first expected PSN of a session; ``tx_psn``: the PSN of a
    session's first response packet; ``max_sessions``; ``profile``: the profile the stack runs
    (made timer-free by :func:`answering_profile`).  Plus scapy's sniff and send options
    (``iface``, ``count``, ``timeout``...).  ``am(iface="lo")`` answers until interrupted;
    ``am.bg(iface="lo")`` in the background."""

    function_name = "ubam"
    filter = "udp"
    send_function = staticmethod(sendp)

    def parse_options(self, memory=None, ports=(UB_UDP_PORT,), tpn=None, learn_psn=True,
                      rx_psn=0, tx_psn=0, max_sessions=64, profile=SPEC, l2=False):
        self.l2 = l2
        self.memory = memory
        self.ports = tuple(ports)
        self.tpn = tpn
        self.learn_psn = learn_psn
        self.rx_psn = rx_psn
        self.tx_psn = tx_psn
        self.max_sessions = max_sessions
        self.profile = profile

    def __init__(self, **kargs):
        super().__init__(**kargs)
        d = self.__dict__
        d["mem"] = self.memory if self.memory is not None else default_memory()
        d["stack_profile"] = udp_profile(answering_profile(self.profile), *self.ports)
        d["sessions"] = OrderedDict()
        d["own"] = set()
        d["own_order"] = deque()
        d["t0"] = time.monotonic_ns()
        d["stats"] = {"requests": 0, "replies": 0, "sessions": 0, "evicted": 0, "bad_icrc": 0,
                      "ignored": 0, "own_replies": 0, "engine_errors": 0}
        d["errors"] = []

    # -- the AnsweringMachine interface ---------------------------------------------------------
    def is_request(self, req) -> int:
        """An IPv4/UDP packet to one of ``ports`` that is not one of this machine's replies."""
        if IP not in req or UDP not in req or req[UDP].dport not in self.ports:
            return 0
        frame = _frame_of(req)
        if frame is None:
            return 0
        if frame in self.own:
            self.stats["own_replies"] += 1
            return 0
        return 1

    def make_reply(self, req) -> PacketList:
        """The frames the session's endpoint sends in answer to ``req`` (may be none: a bad
        ICRC, a packet for no session, an acknowledgement of a response)."""
        st = self.stats
        frame = _frame_of(req)
        if frame is None:
            st["ignored"] += 1
            return PacketList()
        sess = self._session(frame)
        if sess is None:
            return PacketList()
        now = time.monotonic_ns() - self.t0
        try:
            sess.ep.receive(frame, now)
            sess.channel.target.flush(now)
            out = sess.ep.transmit(now)
            sess.ep.pop_events()
        except Exception as exc:            # the stack must never take the machine down
            st["engine_errors"] += 1
            if len(self.errors) < 100:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            return PacketList()
        sess.requests += 1
        sess.replies += len(out)
        st["replies"] += len(out)
        replies = []
        path = sess.ep.path
        with ub_ports(path.udp_dport):
            for f in out:
                b = bytes(f)
                self._remember(b)
                replies.append(Ether(b))
        return PacketList(replies, name="UB replies")

    def send_reply(self, reply, send_function=None) -> None:
        """At layer 3 (``send``: the kernel routes, scapy keeps the IPv4 header as built, IP id
        0 included) unless ``l2`` (``sendp`` of the Ethernet frames on ``iface``)."""
        if send_function is not None:
            send_function(reply)
        elif self.l2:
            sendp(reply, **self.optsend)
        else:
            opts = {k: v for k, v in self.optsend.items() if k != "iface"}
            send(PacketList([r[IP] for r in reply]), **opts)

    # -- sniffing: incoming frames only ------------------------------------------------------------
    def _sniff_options(self) -> dict:
        """scapy's sniff options with an ``L2socket`` opened here unless one was given: unlike
        sniff's listening socket it skips the frames the host sends (Linux shows every frame on
        ``lo`` twice, outgoing and incoming: the outgoing copy of a request would be taken for
        a retransmission and acknowledged again)."""
        o = dict(self.optsniff)
        iface = o.pop("iface", None)
        flt = o.pop("filter", None)
        o.pop("promisc", None)
        if o.get("opened_socket") is None:
            sock = conf.L2socket(iface=iface or conf.iface, filter=flt)
            self.__dict__["own_socket"] = sock
            o["opened_socket"] = sock
        return o

    def sniff(self) -> None:
        try:
            sniff(**self._sniff_options())
        finally:
            self.close()

    def sniff_bg(self) -> None:
        self.sniffer = AsyncSniffer(**self._sniff_options())
        self.sniffer.start()

    def stop(self) -> None:
        """Stop a background machine (:meth:`bg`) and close the socket it opened."""
        sn = self.__dict__.get("sniffer")
        if sn is not None and getattr(sn, "running", False):
            sn.stop()
        self.close()

    def close(self) -> None:
        sock = self.__dict__.pop("own_socket", None)
        if sock is not None:
            sock.close()

    def print_reply(self, req, reply) -> None:
        print("%s ==> %s" % (req.summary(), [r.summary() for r in reply]))

    # -- sessions -------------------------------------------------------------------------------
    def session(self, src_ip: str, sport: int, srctpn: int, dsttpn: int) -> _Session | None:
        """The session of a requester (its endpoint: ``.ep``, its channel: ``.channel``)."""
        return self.sessions.get((src_ip, sport, srctpn, dsttpn))

    def _session(self, frame: bytes) -> _Session | None:
        st = self.stats
        src_ip = ".".join(str(x) for x in frame[26:30])
        sport = int.from_bytes(frame[34:36], "big")
        dport = int.from_bytes(frame[36:38], "big")
        prof = self.stack_profile
        if dport not in prof.ub_udp_ports:
            prof = udp_profile(prof, dport)
        probe = Framer(UdpPath(udp_dport=sport, udp_sport=dport), prof).parse(frame)
        if probe is None:
            st["bad_icrc"] += 1
            return None
        if probe.mode != "rtp" or (self.tpn is not None and probe.dsttpn != self.tpn):
            st["ignored"] += 1
            return None
        key = (src_ip, sport, probe.srctpn, probe.dsttpn)
        sess = self.sessions.get(key)
        if sess is not None and not sess.channel.dead:
            self.sessions.move_to_end(key)
            if probe.tpopcode == RTP_DATA:
                st["requests"] += 1
            return sess
        if probe.tpopcode != RTP_DATA:
            st["ignored"] += 1          # a TP response for no session: nothing to answer
            return None
        st["requests"] += 1
        while len(self.sessions) >= max(1, self.max_sessions):
            self.sessions.popitem(last=False)
            st["evicted"] += 1
        path = UdpPath(src_mac=_mac(frame[0:6]), dst_mac=_mac(frame[6:12]),
                       src_ip=".".join(str(x) for x in frame[30:34]), dst_ip=src_ip,
                       udp_sport=dport, udp_dport=sport)
        ep = Endpoint(f"{src_ip}:{sport}", path, prof, memory=self.mem, rc_id=2)
        rx = probe.psn if self.learn_psn else self.rx_psn
        ch = ep.open_channel(probe.dsttpn, probe.srctpn, tx_psn=self.tx_psn, rx_psn=rx)
        sess = self.sessions[key] = _Session(ep, ch)
        st["sessions"] += 1
        return sess

    def _remember(self, frame: bytes) -> None:
        if len(self.own_order) >= _OWN_REPLIES:
            self.own.discard(self.own_order.popleft())
        self.own.add(frame)
        self.own_order.append(frame)


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)
