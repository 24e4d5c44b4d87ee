"""A UB endpoint: network framing, TP channels, and a transaction initiator and target per
channel over one memory (UB 2.0 ch. 5-7).  Sans-IO: it follows the engine contract
(:mod:`ubpkt.stack.engine`), so a simulator, a socket driver or a test moves its frames.

Channels are configured explicitly (the spec leaves TP channel set-up to the implementation,
UB 2.0 §6.1): :meth:`Endpoint.open_channel` with the local and peer TPN, the transport
(``rtp``, ``ctp``, ``utp`` or ``bypass``) and the initial PSN of each direction.  A received
frame is parsed once (:class:`~ubpkt.stack.network.Framer`), routed to its channel by mode and
DstTPN, and what the channel delivers goes to the channel's target (requests) or initiator
(responses) by the TAOpcode (UB 2.0 §7.1 Table 7-1).
"""
from __future__ import annotations

from ..formats.enums import TA_RESPONSES
from ..profile import SPEC, Profile
from .engine import ChannelError, Discarded
from .network import Framer, Path, TpPacket
from .transaction.initiator import Initiator
from .transaction.memory import Memory
from .transaction.ops import TransactionError
from .transaction.target import Target
from .transport.bypass import BypassChannel
from .transport.ctp import CtpChannel
from .transport.rtp import RtpChannel
from .transport.utp import UtpChannel

__all__ = ["Endpoint", "Channel"]

#: Send and Send_with_immediate: one message over several packets (UB 2.0 §7.4.3)
_MULTI_PACKET_MESSAGES = (0x00, 0x01)
_TRANSPORTS = {"rtp": RtpChannel, "ctp": CtpChannel, "utp": UtpChannel, "bypass": BypassChannel}


class Channel:
    """One TP channel of an endpoint: the transport engine and the initiator and target that
    use it."""

    __slots__ = ("tpn", "transport", "engine", "initiator", "target", "dead")

    def __init__(self, tpn: int, transport: str, engine, initiator: Initiator, target: Target):
        self.tpn = tpn
        self.transport = transport
        self.engine = engine
        self.initiator = initiator
        self.target = target
        self.dead: str | None = None    # the status of the ChannelError that ended it


class Endpoint:
    """See the module doc.  ``path``: how this endpoint reaches its peer."""

    def __init__(self, name: str, path: Path, profile: Profile = SPEC, *,
                 memory: Memory | None = None, rc_id: int = 1):
        self.name = name
        self.path = path
        self.profile = profile
        self.framer = Framer(path, profile)
        self.memory = memory if memory is not None else Memory()
        self.rc_id = rc_id
        self.channels: dict[int, Channel] = {}
        self._by_mode: dict[str, Channel] = {}
        self._order: list[Channel] = []
        self._rr = 0
        self._events: list = []
        self.stats = {"rx_frames": 0, "tx_frames": 0, "rx_dropped": 0}

    # -- configuration ----------------------------------------------------------------------------
    def retarget(self, path: Path) -> None:
        """Address the peer by ``path`` from now on (every channel shares the framer)."""
        self.path = path
        self.framer.retarget(path)

    def open_channel(self, local_tpn: int, peer_tpn: int, *, transport: str = "rtp",
                     tx_psn: int = 0, rx_psn: int = 0, tx_msn: int = 0) -> Channel:
        """A TP channel to the peer (both ends must agree on the TPNs and PSNs).  ``tx_msn``:
        the TPMSN of this end's first transaction (RTP; 0 for a new channel)."""
        if local_tpn in self.channels:
            raise ValueError(f"TPN {local_tpn} is already open")
        tun = self.profile.tuning
        holder: dict = {}

        if transport == "rtp":
            def submit(seg, _h=holder):
                _h["engine"].send(seg)
        else:
            def submit(seg, _h=holder):
                # CTP, UTP and TP bypass carry one transaction operation per packet (UB 2.0
                # §6.7.2.1): an MTU-sized Write or Read_response segment is one; a Send message
                # spread over packets is not, as nothing but the RTPH marks its last packet
                if not seg.last:
                    if seg.ta and seg.ta[0] in _MULTI_PACKET_MESSAGES:
                        raise TransactionError(f"{transport}: a Send longer than the MTU needs "
                                               "RTP (UB 2.0 §6.7.2.1)")
                    seg.last = True
                _h["engine"].send(seg)

        compact = transport == "bypass"     # TP bypass carries the compact TAH (App B)
        initiator = Initiator(rc_id=self.rc_id, tuning=tun.transaction, submit=submit,
                              memory=self.memory, profile=self.profile, compact=compact)
        # a management response (BTAH TAOpcode Management, MGMTETAH Rsp 1, UB 2.0 §7.4.5.1)
        # reaches the target's side of the walk: it hands it to the initiator
        target = Target(memory=self.memory, tuning=tun.transaction, submit_response=submit,
                        rc_id=self.rc_id, profile=self.profile,
                        on_mgmt_response=initiator.on_mgmt_response)
        cls = _TRANSPORTS[transport]
        deliver = self._deliverer(initiator, target, compact)
        if transport == "rtp":
            engine = cls(channel_id=local_tpn, local_tpn=local_tpn, peer_tpn=peer_tpn,
                         tx_psn=tx_psn, rx_psn=rx_psn, framer=self.framer,
                         tuning=tun.transport, deliver=deliver, tx_msn=tx_msn)
        else:
            engine = cls(channel_id=local_tpn, framer=self.framer, tuning=tun.transport,
                         deliver=deliver)
        holder["engine"] = engine
        ch = Channel(local_tpn, transport, engine, initiator, target)
        self.channels[local_tpn] = ch
        self._order.append(ch)
        if transport != "rtp":
            self._by_mode[transport] = ch
        return ch

    @staticmethod
    def _deliverer(initiator: Initiator, target: Target, compact: bool):
        responses = TA_RESPONSES

        def deliver(pkt: TpPacket, now: int):
            ta = pkt.ta
            if len(ta) and ta[0] in responses:
                initiator.on_response(ta, now)
                return None
            # RTPH TPOpcode[7] marks a transaction's last packet (UB 2.0 §6.2.1); the other
            # modes carry one operation per packet
            return target.on_request(ta, now, last=bool(pkt.last) or pkt.mode != "rtp",
                                     compact=compact)
        return deliver

    # -- the application side ---------------------------------------------------------------------
    def post(self, wr, channel: int | None = None, now: int = 0) -> None:
        """Post a work request on ``channel`` (the first opened by default)."""
        ch = self.channels[channel] if channel is not None else self._order[0]
        ch.initiator.post(wr, now)
        if ch.dead:
            ch.initiator.fail_all(ch.dead, now)     # a dead channel carries nothing more

    def post_recv(self, buffer, wr_id: int, channel: int | None = None) -> None:
        """A receive buffer for Send on ``channel``'s target."""
        ch = self.channels[channel] if channel is not None else self._order[0]
        ch.target.post_recv(buffer, wr_id)

    def idle(self) -> bool:
        return all((ch.dead or ch.engine.idle()) and not ch.initiator.outstanding
                   for ch in self._order)

    # -- the engine contract ----------------------------------------------------------------------
    def receive(self, data, now: int) -> None:
        self.stats["rx_frames"] += 1
        pkt = self.framer.parse(data)
        if pkt is None:
            self.stats["rx_dropped"] += 1
            self._events.append(Discarded(now, -1, None, "bad_frame"))
            return
        if pkt.mode == "rtp":
            ch = self.channels.get(pkt.dsttpn)
        else:
            ch = self._by_mode.get(pkt.mode)
        if ch is None or ch.dead:
            self.stats["rx_dropped"] += 1
            self._events.append(Discarded(now, pkt.dsttpn, pkt.psn, "no_channel"))
            return
        ch.engine.receive(pkt, now)

    def transmit(self, now: int, budget: int = 1 << 30) -> list:
        out: list = []
        order = self._order
        n = len(order)
        for i in range(n):
            if len(out) >= budget:
                break
            ch = order[(self._rr + i) % n]
            if ch.dead:
                continue
            out += ch.engine.transmit(now, budget - len(out))
        if n:
            self._rr = (self._rr + 1) % n
        self.stats["tx_frames"] += len(out)
        return out

    def next_deadline(self) -> int | None:
        best = None
        for ch in self._order:
            for eng in (ch.initiator, ch.target) if ch.dead else (ch.engine, ch.initiator,
                                                                   ch.target):
                t = eng.next_deadline()
                if t is not None and (best is None or t < best):
                    best = t
        return best

    def handle_timeout(self, now: int) -> None:
        for ch in self._order:
            for eng in (ch.initiator, ch.target) if ch.dead else (ch.engine, ch.initiator,
                                                                   ch.target):
                t = eng.next_deadline()
                if t is not None and t <= now:
                    eng.handle_timeout(now)

    def pop_events(self) -> list:
        ev, self._events = self._events, []
        for ch in self._order:
            got = ch.engine.pop_events()
            for e in got:
                if isinstance(e, ChannelError) and not ch.dead:
                    # the channel gave up: what it carried completes with its error, and it
                    # carries nothing more (UB 2.0 §6.4.2.1)
                    ch.dead = e.status
                    ch.initiator.fail_all(e.status, e.at)
            ev += got
            ev += ch.initiator.pop_completions()
            ev += ch.target.pop_completions()
        return ev
