"""RTP: one reliable TP channel end, sans-IO (UB 2.0 §6.3.1, §6.4, §6.7.1).

A :class:`RtpChannel` is both the TP sender for its own PSN space and the TP receiver for the
peer's (each direction of a channel has its own PSN space, §6.4.1).  It follows the engine
contract of :mod:`ubpkt.stack.engine`: ``send(seg)`` queues a :class:`TaSegment`,
``receive(pkt, now)`` takes a parsed :class:`~ubpkt.stack.network.TpPacket` (data or a TP
response), ``transmit(now, budget)`` gives the frames to send now, ``next_deadline()`` /
``handle_timeout(now)`` drive the timers, ``pop_events()`` the events; ``idle()``, ``backlog()``
and ``in_flight()`` tell the driver where the channel stands, and after a ``ChannelError``
``abandon()`` hands back the segments it still held, for the transaction layer to fail.

Sender (§6.4.1, §6.4.2, §6.7.1.1)
    PSNs are counted as unbounded integers and sent modulo 2^24 (:mod:`.psn`).  Unacknowledged
    packets are kept as their segments (never as frames: a retransmission builds the frame
    again, from the same bytes, with the same PSN).  At most ``tuning.window`` packets (and fewer
    than 8M) are unacknowledged.  The A bit asks for a separate response: it is set every
    ``ack_every`` packets, on a transaction's last packet, on the packet that empties the
    queue or fills the window (so a sender that stops always gets a response), and on every
    retransmitted packet.

    * TPACK (RSPST 000, or 101 carrying a transaction response): cumulative, its PSN is the
      highest in-order PSN received; it frees every segment up to it.
    * TPNAK (RSPST 011, PSN = the receiver's EPSN): everything before it is received; with fast
      retransmission the sender goes back to that PSN and sends every later packet again
      (§6.4.2.2.1), unless the go-back in flight already resends it (below).
    * TPSACK (§6.2.3, §6.4.2.3): cumulative up to its PSN, plus a bitmap; with fast
      retransmission the holes are sent again at once, each at most once per round (HighRtxPSN);
      a hole already resent is resent again only when the peer reports a packet sent after that
      resend (MarkPSN).  Without fast retransmission the bitmap only spares the received packets
      from the next timeout retransmission.
    * Go-back rounds: a go-back (on a TPNAK, a Go-Back-N timeout, the end of an RNR wait)
      resends from its first PSN up to HighRtxPSN (the highest PSN sent when it started); it is
      in flight until the lowest unacknowledged PSN passes HighRtxPSN.  A TPNAK older than the
      lowest unacknowledged PSN is stale: ignored (``rx_stale``).  Any other TPNAK acknowledges
      what precedes it; beyond HighRtxPSN it is a first loss: go back.  Inside the go-back in
      flight it goes back again only if (1) it names a later PSN than the last go-back started
      from (the receiver moved on, then found the next hole: a resend lost or overtaken in
      turn); (2) no TPACK answering a duplicate came back since the last go-back (a TPACK for
      the PSN just below the lowest unacknowledged one: the peer got a packet twice, or its
      responses overtook each other; either way the path reorders, and another go-back would
      pile a window onto copies still on their way; the UB counterpart of a D-SACK); and
      (3) after a go-back on a TPNAK, at least half the shortest round trip measured has
      passed (a TPNAK sooner than that was sent before any resend arrived, about the first
      transmission, like the one that started the go-back; half, as the measure includes the
      sender's own queue).  Otherwise it is ignored (``rx_nak_ignored``), and a resend lost in
      turn is left to the RTO, as the spec does for a resent packet lost again (§6.4.2.2.1,
      non-initial loss).  So every go-back follows progress since the previous one, a timeout
      without progress or an RNR wait: at most one window resent per packet acknowledged (plus
      one per such timeout or wait), even on a path that reorders every burst, where Go-Back-N
      should not use fast retransmission (§6.4.2.2: selective, or no fast retransmission,
      there).  The round trip is sampled from one packet at a time: the last of a batch of new
      packets if it asks for a response, until a TPACK covers it (no sample if it was resent).
    * RTO (§6.4.2.1): started by the first packet sent, restarted whenever a response moves the
      lowest unacknowledged PSN (and by a retransmission burst), stopped when nothing is
      unacknowledged.  On expiry: Go-Back-N resends every unacknowledged packet, selective mode
      every unacknowledged packet the peer has not reported in a bitmap.  After ``retry_limit``
      consecutive timeout retransmissions, the next expiry ends the channel:
      ``ChannelError(status="retry_exceeded")``.
    * RNR TPNAK (RSPST 001 or 010; RSPINFO is the timer code): the sender stops, waits
      2 us x 2^code, then sends again from that PSN.  More than ``rnr_retry`` RNRs in a row (7:
      no limit) end the channel with ``rnr_retry_exceeded``.

Receiver (§6.4.1, §6.4.2.2.1, §6.4.2.2.2, §6.4.2.3)
    The EPSN is the next in-order PSN.  An in-order packet goes up through ``deliver(pkt, now)``
    (``"rnr"``: the transaction layer has no resources: the channel answers with an RNR TPNAK
    carrying ``tuning.rnr_timer_code`` and does not move its EPSN).  A duplicate ([EPSN-8M,
    EPSN-1]) is dropped and answered with a TPACK(EPSN-1) (a TPSACK when out-of-order packets
    are held).  An out-of-order packet (EPSN+1 .. EPSN+``oor_window``):

    * Go-Back-N with fast retransmission: dropped; one TPNAK(EPSN) is sent, and no other TPNAK
      until a TPACK has gone out.
    * Go-Back-N without fast retransmission: kept (the bitmap of received packets), no response;
      delivered in order once the hole is filled.
    * Selective: kept, answered with a TPSACK.  Only what the bitmap can show is kept (PSNs up to
      EPSN-1 + bitmap bits - 1); a later one is dropped but still raises MaxRcvPSN.

    Anything else is out of range and silently dropped.  Responses are coalesced: a channel
    sends at most one TPACK/TPSACK per ``transmit`` call, reporting the state at that time; it is
    due when a packet had the A bit or the last flag, on a duplicate or a gap, and at the latest
    after ``ack_every`` in-order packets.

Reading of the TPSACK (§6.2.3, §6.4.2.3): RTPH.PSN is the highest in-order PSN (EPSN-1) and
BitMap[0] stands for it (so bit 0 is always 1); BitMap[i] stands for RTPH.PSN + i.  Where
BitMap[i] sits in the bytes is the profile's ``sack_bit_order`` (``ubpkt.formats.sack``; the
reference profile reads the bitmap as one big-endian number whose bit i is BitMap[i]).
MaxRcvPSN is the highest PSN the receiver has seen, in order or not.  The sender resends the
holes from RTPH.PSN+1 up to the smaller of MaxRcvPSN and the last PSN the bitmap shows
(RTPH.PSN + BitMapSize - 1; the spec's "RTPH.PSN + BitMapSize" names one past the bitmap).

Events are for what recovery does, never for the loss-free path: ``Retransmitted`` for every
packet sent again, ``Discarded`` for every received packet dropped (``duplicate``, ``ooo``,
``out_of_window``, ``no_channel``, ``bad_icrc``), ``ResponseSent`` for each TPNAK, TPSACK and RNR
TPNAK and for a TPACK answering a duplicate (the ordinary coalesced TPACKs are only counted),
``ChannelError`` once.  ``stats`` counts both roles: sender ``tx_packets``, ``tx_bytes``,
``retransmissions`` and ``rtx_<reason>``, ``timeouts``, ``acked`` (packets freed), ``rx_acks``,
``rx_naks``, ``rx_sacks``, ``rx_rnr``, ``rx_stale``, ``rx_nak_ignored``, ``rx_bad_response``,
``rx_ta_error``;
receiver ``rx_packets``, ``rx_bytes``, ``duplicates``, ``ooo_kept``, ``ooo_dropped``,
``out_of_window``, ``rnr_refused``, ``cc_marked`` (marked data packets), and the responses
sent: ``acks``, ``naks``, ``sacks``, ``rnr``, ``cc_sent`` (those in a _CC form); sender
``cc_responses``, ``cc_marks``.  Keep ``window`` within the peer's ``oor_window``: a packet
further ahead than that is out of range for the receiver and only an RTO brings it back
(§6.5.1.4.1).

Congestion marks (§6.2.2, §6.6.1.3.4; the CAQM echo with coalesced responses)
    The receiver accumulates the marks of the data packets it receives (any packet that reaches
    the channel, in order or not): a marked one (``TpPacket.ce``: the CCI C bit of a CNA NTH,
    or IPv4 ECN CE over UBoE, see :mod:`ubpkt.stack.network`) adds one to its local C; an
    unmarked one with the CCI I bit sets its local I and adds its Hint to the local Hint; LoC is
    ORed.  The next TPACK, TPNAK or TPSACK after anything was marked or asked for goes out in its
    _CC form (TPACK_CC, TPNAK_CC, TPSACK_CC) with a CETPH carrying C, I, Hint and LoC (C and
    Hint saturate at their field widths), and the accumulators are cleared; otherwise the plain
    form goes out.  RNR TPNAKs stay plain.  Ack_Seq is data_size_recvd (§6.6.1.1.4) in 2-byte
    units, counted (reference-profile reading) over the transaction bytes of each packet taken
    in order or kept out of order, modulo 2^32; the LDCP variant's Ce_Seq the same over the
    marked packets.  Each _CC response also gives a ``ResponseSent`` of kind ``tpack_cc``,
    ``tpnak_cc`` or ``tpsack_cc`` (besides the usual event, if any).  The sender reads the CETPH
    of every TPACK_CC/TPSACK_CC (``stats["cc_responses"]``, ``stats["cc_marks"]``: the C values
    summed; ``cc_last``: the last CETPH) and otherwise treats them as TPACK/TPSACK: the fixed
    window stays the only congestion control (Table 6-11's window rules are not applied).

Not done here: window or rate congestion control (CETPH is recorded, not acted on), fake
packets (RTPH.F, §8.2.7.3), and
ROL-mode transaction responses in TPACKs (RSPST 101 is taken as a plain TPACK; RSPST 011 with a
non-zero RSPINFO, a transaction error, is counted in ``stats["rx_ta_error"]`` and otherwise read
as a cumulative acknowledgement of the PSNs before it).
"""
from __future__ import annotations

from collections import deque

from ...formats.sack import sack_bitmap, sack_offsets
from ..engine import ChannelError, Discarded, ResponseSent, Retransmitted
from ..network import RTP_DATA, TPACK, TPACK_CC, TPSACK, TPSACK_CC, TpPacket
from . import TaSegment
from .psn import MAX_OUTSTANDING, PSN_HALF, PSN_MASK
from .rto import RtoPolicy, rnr_timeout_ns

__all__ = ["RtpChannel", "RSPST_ACK", "RSPST_RNR", "RSPST_PAGE_FAULT", "RSPST_NAK",
           "RSPST_TA_RESPONSE", "SACK_BITS"]

#: RTPH.RSPST values (UB 2.0 §6.2.1)
RSPST_ACK, RSPST_RNR, RSPST_PAGE_FAULT, RSPST_NAK, RSPST_TA_RESPONSE = 0, 1, 2, 3, 5
#: the SAETPH BitMapSize choices (§6.2.3)
SACK_BITS = (64, 128, 256, 512, 1024)
_OOR_WINDOWS = (128, 256, 512, 1024, 2048)

_STATS = ("tx_packets", "tx_bytes", "retransmissions", "rtx_nak", "rtx_sack", "rtx_rto",
          "rtx_rnr", "timeouts", "acked", "rx_acks", "rx_naks", "rx_sacks", "rx_rnr",
          "rx_stale", "rx_nak_ignored", "rx_ta_error", "rx_bad_response", "rx_packets",
          "rx_bytes", "duplicates", "ooo_kept", "ooo_dropped", "out_of_window", "rnr_refused",
          "acks", "naks", "sacks", "rnr", "wrong_channel", "cc_marked", "cc_sent",
          "cc_responses", "cc_marks")
_U32 = 0xFFFFFFFF


class RtpChannel:
    """One RTP channel end (see the module doc).  ``tx_psn``: the initial PSN of this end's
    packets; ``rx_psn``: the initial PSN of the peer's (the first EPSN).  ``deliver(pkt, now)``
    returns None (taken) or ``"rnr"`` (not ready)."""

    mode = "rtp"

    def __init__(self, *, channel_id: int, local_tpn: int, peer_tpn: int, tx_psn: int,
                 rx_psn: int, framer, tuning, deliver, tx_msn: int = 0):
        t = tuning
        if t.retransmission not in ("gbn", "sr"):
            raise ValueError(f"retransmission {t.retransmission!r}: gbn or sr")
        if t.oor_window not in _OOR_WINDOWS:
            raise ValueError(f"oor_window {t.oor_window}: one of {_OOR_WINDOWS} (§6.4.1)")
        if t.sack_bitmap_bits not in SACK_BITS:
            raise ValueError(f"sack_bitmap_bits {t.sack_bitmap_bits}: one of {SACK_BITS}")
        if t.window < 1 or t.ack_every < 1:
            raise ValueError("window and ack_every must be at least 1")
        self.channel = channel_id
        self.local_tpn = local_tpn
        self.peer_tpn = peer_tpn
        self.framer = framer
        self.tuning = t
        self._deliver = deliver
        self._sr = t.retransmission == "sr"
        self._fast = bool(t.fast_retransmit)
        self._rto = RtoPolicy(t)
        self._window = min(t.window, MAX_OUTSTANDING)
        self._ack_every = t.ack_every
        self._retry_limit = t.retry_limit
        self._rnr_retry = t.rnr_retry
        self._bits = t.sack_bitmap_bits
        self._sack_order = getattr(getattr(framer, "profile", None), "sack_bit_order",
                                   "field_lsb")
        # -- sender ---------------------------------------------------------------------------
        self._queue: deque = deque()        # TaSegments not sent yet
        self._unacked: deque = deque()      # (segment, tpmsn) for PSNs una, una+1, ... nxt-1
        self._una = tx_psn & PSN_MASK       # absolute PSNs
        self._nxt = self._una
        self._tx_msn = tx_msn & PSN_MASK    # the TPMSN of this end's next transaction
        self._since_a = 0
        self._rtx: deque = deque()          # (absolute PSN, reason) to send again
        self._sacked: set = set()           # absolute PSNs a TPSACK reported received
        self._high_rtx = self._una - 1      # HighRtxPSN (§6.4.2.3.1)
        self._mark = None                   # MarkPSN: first new PSN after a resend burst
        self._gb_from = self._una - 1       # the first PSN of the last go-back
        self._gb_at = None                  # when it started, if on a TPNAK
        self._gb_dup = False                # a duplicate was answered since
        self._probe = None                  # a first transmission with A=1, for an RTT sample
        self._probe_at = 0
        self._min_rtt = None                # the shortest TPACK round trip seen
        self._rto_at = None
        self._rto_times = 0                 # consecutive timeout retransmissions
        self._rnr_at = None
        self._rnr_count = 0
        self._restart_rto = False
        self.error: str | None = None
        # -- receiver -------------------------------------------------------------------------
        self._epsn = rx_psn & PSN_MASK      # absolute
        self._held: dict = {}               # absolute PSN -> TpPacket kept out of order
        self._maxrcv = self._epsn - 1       # MaxRcvPSN (absolute)
        self._rx_msn = 0
        self._since_ack = 0
        self._ack_due = False
        self._ack_event = False             # the due TPACK answers a duplicate: report it
        self._nak_due = False
        self._nak_out = False               # a TPNAK went out, no TPACK since
        self._nak_epsn = None
        self._rnr_due = False
        # congestion marks since the last response (module doc, "Congestion marks")
        self._cc_any = False
        self._cc_c = self._cc_i = self._cc_hint = self._cc_loc = 0
        self._ack_seq = 0                   # data_size_recvd, 2-byte units
        # what a response says about the data packet it acknowledges (the framer uses it as the
        # profile's tp_response_echo / tp_response_atah say): the last in-order packet's
        self._rx_echo: dict | None = None
        # tuning.ack_coalesce off: one response owed per in-order packet, (PSN, TPMSN, echo, cc)
        self._coalesce = getattr(t, "ack_coalesce", True)
        self._owed: list = []
        self._want_echo = bool(getattr(framer, "_resp_extra", False))
        self._ce_seq = 0                    # of the marked packets (LDCP)
        self.cc_last: dict | None = None    # sender: the last CETPH received
        # gbn + fast retransmit: out-of-order packets are not kept; otherwise they are, up to
        # oor_window (sr: and what the bitmap can show, EPSN-1 .. EPSN-1+bits-1)
        self._keep = self._sr or not self._fast
        self._oor = t.oor_window
        self._hold_max = min(self._oor, self._bits - 2) if self._sr else self._oor
        self._events: list = []
        self.stats = dict.fromkeys(_STATS, 0)

    # -- the engine contract ----------------------------------------------------------------------
    def send(self, seg: TaSegment) -> None:
        """Queue one TP packet's worth of transaction bytes (no limit: ``backlog()`` tells)."""
        self._queue.append(seg)

    def backlog(self) -> int:
        """Segments queued and not sent yet."""
        return len(self._queue)

    def in_flight(self) -> int:
        """Packets sent and not acknowledged yet."""
        return self._nxt - self._una

    def idle(self) -> bool:
        """Nothing queued, nothing unacknowledged."""
        return not self._queue and not self._unacked

    def pop_events(self) -> list:
        ev, self._events = self._events, []
        return ev

    def next_deadline(self) -> int | None:
        a, b = self._rto_at, self._rnr_at
        if a is None:
            return b
        return a if b is None or a < b else b

    def abandon(self) -> list:
        """After a :class:`ChannelError`: the segments the channel will never send or see
        acknowledged (unacknowledged first, then queued), for the transaction layer to complete
        with the error.  The channel keeps none of them."""
        segs = [s for s, _ in self._unacked] + list(self._queue)
        self._unacked.clear()
        self._queue.clear()
        self._rtx.clear()
        self._sacked.clear()
        self._una = self._nxt
        self._rto_at = self._rnr_at = None
        return segs

    # -- receive ----------------------------------------------------------------------------------
    def receive(self, pkt, now: int) -> None:
        """A TP packet for this channel: RTP data, TPACK/TPNAK or TPSACK (a frame is parsed with
        the channel's framer first)."""
        if type(pkt) is not TpPacket:
            pkt = self.framer.parse(pkt)
            if pkt is None:
                self._events.append(Discarded(now, self.channel, None, "bad_icrc"))
                return
        if pkt.dsttpn != self.local_tpn or pkt.mode != "rtp":
            self.stats["wrong_channel"] += 1
            self._events.append(Discarded(now, self.channel, pkt.psn, "no_channel"))
            return
        opc = pkt.tpopcode
        if opc == RTP_DATA:
            if pkt.ce or pkt.ci:
                self._cc_mark(pkt)
            self._rx_data(pkt, now)
        elif opc == TPACK:
            self._rx_ack(pkt, now)
        elif opc == TPSACK:
            self._rx_sack(pkt, now)
        elif opc == TPACK_CC or opc == TPSACK_CC:
            self._rx_cc(pkt)
            if opc == TPACK_CC:
                self._rx_ack(pkt, now)
            else:
                self._rx_sack(pkt, now)
        else:
            self.stats["rx_bad_response"] += 1
            self._events.append(Discarded(now, self.channel, pkt.psn, "malformed"))

    # receiver side ------------------------------------------------------------------------------
    def _cc_mark(self, pkt: TpPacket) -> None:
        """Accumulate a data packet's congestion information (§6.6.1.3.4)."""
        self._cc_any = True
        if pkt.ce:
            self._cc_c += 1
            self._ce_seq = (self._ce_seq + ((len(pkt.ta) + 1) >> 1)) & _U32
            self.stats["cc_marked"] += 1
        else:
            self._cc_i = 1
            self._cc_hint += pkt.hint
        self._cc_loc |= pkt.loc

    def _cc_take(self) -> dict:
        """The CETPH of the next response; clears the accumulators."""
        cc = {"ack_seq": self._ack_seq & _U32, "ce_seq": self._ce_seq, "c": self._cc_c,
              "i": self._cc_i, "hint": self._cc_hint, "loc": self._cc_loc}
        self._cc_any = False
        self._cc_c = self._cc_i = self._cc_hint = self._cc_loc = 0
        self.stats["cc_sent"] += 1
        return cc

    def _rx_data(self, pkt: TpPacket, now: int) -> None:
        epsn = self._epsn
        d = (pkt.psn - epsn) & PSN_MASK
        st = self.stats
        if d == 0:                                          # in order (§6.4.1)
            if self._deliver(pkt, now) is not None:
                self._refuse(pkt, now)
                return
            n = len(pkt.ta)
            st["rx_packets"] += 1
            st["rx_bytes"] += n
            self._ack_seq += (n + 1) >> 1
            self._epsn = epsn = epsn + 1
            self._rx_msn = pkt.tpmsn
            self._taken(pkt, epsn - 1)
            if epsn > self._maxrcv:
                self._maxrcv = epsn - 1
            n = self._since_ack + 1
            if self._held:
                n = self._drain(now, n)
            self._since_ack = n
            if pkt.a or pkt.last or n >= self._ack_every:
                self._ack_due = True
            return
        if d >= PSN_HALF:                                   # duplicate: [EPSN-8M, EPSN-1]
            st["duplicates"] += 1
            self._events.append(Discarded(now, self.channel, pkt.psn, "duplicate"))
            self._ack_due = self._ack_event = True
            return
        if d > self._oor:                                   # invalid range: silent
            st["out_of_window"] += 1
            self._events.append(Discarded(now, self.channel, pkt.psn, "out_of_window"))
            return
        # out of order, EPSN+1 .. EPSN+oor_window
        q = epsn + d
        if q > self._maxrcv:
            self._maxrcv = q
        if not self._keep:                                  # gbn + fast retransmit (§6.4.2.2.1)
            st["ooo_dropped"] += 1
            self._events.append(Discarded(now, self.channel, pkt.psn, "ooo"))
            if not self._nak_out:
                self._nak_due = self._nak_out = True
                self._nak_epsn = epsn
            elif self._nak_epsn != epsn:
                # a new gap since the last TPNAK: a TPACK goes out first, then the TPNAK
                self._ack_due = self._nak_due = True
                self._nak_epsn = epsn
            return
        if q in self._held:                                 # already received
            st["duplicates"] += 1
            self._events.append(Discarded(now, self.channel, pkt.psn, "duplicate"))
        elif d <= self._hold_max:
            self._held[q] = pkt
            st["ooo_kept"] += 1
            self._ack_seq += (len(pkt.ta) + 1) >> 1
        else:                                               # beyond what the bitmap shows
            st["ooo_dropped"] += 1
            self._events.append(Discarded(now, self.channel, pkt.psn, "ooo"))
        if self._sr:
            self._ack_due = True                            # answered with a TPSACK (§6.4.2.3)

    def _taken(self, pkt: TpPacket, p: int) -> None:
        """The in-order packet ``pkt`` (absolute PSN ``p``) went up: remember what a response
        to it repeats; without coalescing, owe it its own response."""
        ta = pkt.ta
        # every TAH form carries INI_TASSN in DW0 bits 15:0 (UB 2.0 §7.2.1-2)
        echo = {"last": pkt.last, "a": pkt.a,
                "tassn": (ta[2] << 8 | ta[3]) if len(ta) >= 4 else 0}
        self._rx_echo = echo
        if not self._coalesce:
            cc = self._cc_take() if self._cc_any else None
            self._owed.append((p & PSN_MASK, pkt.tpmsn, echo, cc))
            self._ack_due = True

    def _drain(self, now: int, n: int) -> int:
        """Deliver the held packets that follow the EPSN; ``n``: in-order count since the last
        response."""
        held = self._held
        st = self.stats
        epsn = self._epsn
        while held:
            pkt = held.pop(epsn, None)
            if pkt is None:
                break
            if self._deliver(pkt, now) is not None:
                self._epsn = epsn
                self._refuse(pkt, now)
                return n
            st["rx_packets"] += 1
            st["rx_bytes"] += len(pkt.ta)
            self._rx_msn = pkt.tpmsn
            self._taken(pkt, epsn)
            epsn += 1
            n += 1
            if pkt.a or pkt.last:
                self._ack_due = True
        self._epsn = epsn
        return n

    def _refuse(self, pkt: TpPacket, now: int) -> None:
        """The transaction layer is not ready for the in-order packet: RNR TPNAK (§6.2.1)."""
        self.stats["rnr_refused"] += 1
        self._rnr_due = True

    # sender side --------------------------------------------------------------------------------
    def _rx_cc(self, pkt: TpPacket) -> None:
        """A TPACK_CC/TPSACK_CC's CETPH: recorded (the fixed window is the congestion
        control)."""
        cc = pkt.cetph
        if cc is None:
            return
        st = self.stats
        st["cc_responses"] += 1
        st["cc_marks"] += cc.get("c", 0)
        self.cc_last = cc

    def _ack_to(self, una_new: int, now: int) -> None:
        """Everything before the absolute PSN ``una_new`` is received."""
        n = una_new - self._una
        if n <= 0:
            return
        un = self._unacked
        if n == len(un):
            un.clear()
        else:
            for _ in range(n):
                un.popleft()
        self._una = una_new
        if self._sacked:
            # the lowest unacknowledged PSN is the peer's EPSN: never received, whatever an
            # older bitmap said (a held packet the peer refused with RNR is dropped, §6.2.1)
            self._sacked = {p for p in self._sacked if p > una_new}
        if self._probe is not None and self._probe < una_new:
            self._probe = None
        self.stats["acked"] += n
        self._rto_times = 0
        self._rnr_count = 0
        self._rto_at = now + self._rto.interval(0) if un and self._rnr_at is None else None

    def _rx_ack(self, pkt: TpPacket, now: int) -> None:
        una = self._una
        off = (pkt.psn - una) & PSN_MASK          # offset of the PSN from the lowest unacked
        out = self._nxt - una
        rspst = pkt.rspst
        st = self.stats
        if rspst == RSPST_ACK or rspst == RSPST_TA_RESPONSE:
            st["rx_acks"] += 1
            if off < out:
                pr = self._probe
                if pr is not None and una + off >= pr:
                    rtt = now - self._probe_at
                    if self._min_rtt is None or rtt < self._min_rtt:
                        self._min_rtt = rtt
                self._ack_to(una + off + 1, now)
            elif off < PSN_HALF:
                st["rx_bad_response"] += 1        # acknowledges what was never sent
            else:
                st["rx_stale"] += 1
                if off == PSN_MASK and self._high_rtx >= una:
                    # TPACK(una-1) while a go-back is in flight: it answered a duplicate,
                    # a packet the peer got twice: reordering, not loss
                    self._gb_dup = True
            return
        # TPNAK / RNR: the PSN is the receiver's EPSN; everything before it is received
        if off >= PSN_HALF:                       # before the lowest unacked: old news
            st["rx_stale"] += 1
            return
        if off > out:
            st["rx_bad_response"] += 1
            return
        self._ack_to(una + off, now)
        p = una + off
        if rspst == RSPST_NAK:
            st["rx_naks"] += 1
            if pkt.rspinfo != 0:
                st["rx_ta_error"] += 1
                return
            if self._fast and p < self._nxt and self._rnr_at is None:
                # beyond HighRtxPSN: a first loss; inside the go-back in flight: again only
                # if the receiver moved on since, without a duplicate, and not sooner than a
                # resend could come back (module doc, "Go-back rounds")
                rtt, at = self._min_rtt, self._gb_at
                if p > self._high_rtx or (p > self._gb_from and not self._gb_dup and
                                          (at is None or rtt is None or 2 * (now - at) >= rtt)):
                    self._go_back(p, "nak", now)
                else:
                    st["rx_nak_ignored"] += 1
        elif rspst == RSPST_RNR or rspst == RSPST_PAGE_FAULT:
            st["rx_rnr"] += 1
            self._rnr_count += 1
            if self._rnr_retry != 7 and self._rnr_count > self._rnr_retry:
                self._fail(now, "rnr_retry_exceeded",
                           f"RNR {self._rnr_count} times in a row at PSN {pkt.psn}")
                return
            # wait, then send again from p; the bitmap may be stale now (a held packet the
            # peer refused is no longer received)
            self._rtx.clear()
            self._sacked.clear()
            self._rnr_at = now + rnr_timeout_ns(pkt.rspinfo)
            self._rto_at = None
        else:
            st["rx_bad_response"] += 1

    def _rx_sack(self, pkt: TpPacket, now: int) -> None:
        st = self.stats
        st["rx_sacks"] += 1
        una = self._una
        off = (pkt.psn - una) & PSN_MASK
        out = self._nxt - una
        if off >= PSN_HALF:
            if off != PSN_MASK:                   # older than the last cumulative ack
                st["rx_stale"] += 1
                return
        elif off < out:
            self._ack_to(una + off + 1, now)
        else:
            st["rx_bad_response"] += 1
            return
        base = self._una - 1                      # BitMap[0]: the highest in-order PSN
        bitmap = pkt.bitmap or b""
        nbits = len(bitmap) * 8
        if nbits < 2:
            return
        got = set(sack_offsets(bitmap, self._sack_order))
        maxrcv = base + (((pkt.maxrcvpsn or 0) - base) & PSN_MASK)
        if maxrcv - base >= PSN_HALF:
            maxrcv = base
        last = min(maxrcv, base + nbits - 1, self._nxt - 1)
        sacked = self._sacked
        holes = []
        for i in range(1, last - base + 1):
            if i > 1 and i in got:                        # BitMap[1] is the EPSN: a hole
                sacked.add(base + i)
            else:
                sacked.discard(base + i)
                holes.append(base + i)
        if not (self._sr and self._fast) or not holes or self._rnr_at is not None:
            return
        # fast selective retransmission (§6.4.2.3.1): a hole beyond HighRtxPSN is a first
        # loss; one at or below it was resent already and is resent again only when the peer
        # has seen a packet sent after that resend (MarkPSN)
        again = self._mark is not None and maxrcv >= self._mark
        queued = [h for h in holes if h > self._high_rtx or again]
        if queued:
            self._rtx.extend((h, "sack") for h in queued)
            self._probe = None
            self._high_rtx = max(self._high_rtx, queued[-1])
            self._mark = self._nxt

    def _go_back(self, p: int, reason: str, now: int) -> None:
        """Send every unacknowledged packet from the absolute PSN ``p`` again (Go-Back-N)."""
        self._gb_dup = False
        self._gb_from = p
        self._gb_at = now if reason == "nak" else None
        if self._probe is not None and self._probe >= p:
            self._probe = None                    # resent: its TPACK would be ambiguous
        self._rtx = deque((q, reason) for q in range(p, self._nxt))
        self._high_rtx = self._nxt - 1
        self._mark = self._nxt

    def _fail(self, now: int, status: str, message: str) -> None:
        self.error = status
        self._rto_at = self._rnr_at = None
        self._rtx.clear()
        self._events.append(ChannelError(now, self.channel, status, message))

    # -- timers -----------------------------------------------------------------------------------
    def handle_timeout(self, now: int) -> None:
        if self._rnr_at is not None and now >= self._rnr_at:
            self._rnr_at = None
            self._go_back(self._una, "rnr", now)
            if self._unacked:
                self._rto_at = now + self._rto.interval(self._rto_times)
        if self._rto_at is not None and now >= self._rto_at:
            self._rto_at = None
            if not self._unacked:
                return
            st = self.stats
            st["timeouts"] += 1
            if self._rto_times >= self._retry_limit:
                self._fail(now, "retry_exceeded",
                           f"{self._rto_times} timeout retransmissions of PSN "
                           f"{self._una & PSN_MASK} without progress")
                return
            self._rto_times += 1
            if self._sr:
                sacked = self._sacked
                self._rtx = deque((q, "rto") for q in range(self._una, self._nxt)
                                  if q not in sacked)
                self._probe = None
                self._high_rtx = self._nxt - 1
                self._mark = self._nxt
            else:
                self._go_back(self._una, "rto", now)
            self._rto_at = now + self._rto.interval(self._rto_times)

    # -- transmit ---------------------------------------------------------------------------------
    def transmit(self, now: int, budget: int = 1 << 30) -> list:
        """Frames to send now, at most ``budget``: responses first, then retransmissions, then
        new packets within the window."""
        out: list = []
        if budget <= 0:
            return out
        if self._ack_due or self._nak_due or self._rnr_due:
            self._respond(out, now, budget)
        if self.error is not None or self._rnr_at is not None or len(out) >= budget:
            return out
        fr = self.framer
        ltpn, ptpn = self.local_tpn, self.peer_tpn
        st = self.stats
        if self._rtx:
            rtx = self._rtx
            un = self._unacked
            sacked = self._sacked
            events = self._events
            ch = self.channel
            sent = 0
            while rtx and len(out) < budget:
                p, reason = rtx.popleft()
                off = p - self._una
                if off < 0 or p >= self._nxt or p in sacked:
                    continue
                seg, msn = un[off]
                psn = p & PSN_MASK
                # every resent packet asks for a response: resends are few, and the receiver
                # coalesces its responses anyway
                out.append(fr.rtp_data(ltpn, ptpn, psn, seg.ta, seg.payload, a=1,
                                       last=1 if seg.last else 0, tpmsn=msn))
                events.append(Retransmitted(now, ch, psn, reason))
                st["rtx_" + reason] += 1
                sent += 1
            if sent:
                st["retransmissions"] += sent
                self._restart_rto = True
            if rtx:
                return out
        q = self._queue
        if q and len(out) < budget:
            nxt = self._nxt
            limit = self._una + self._window
            if nxt < limit:
                un = self._unacked
                every = self._ack_every
                since = self._since_a
                msn = self._tx_msn
                nbytes = 0
                n0 = nxt
                room = budget - len(out)
                stop = min(limit, nxt + room)
                append = out.append
                build = fr.rtp_data
                while q and nxt < stop:
                    seg = q.popleft()
                    last = seg.last
                    since += 1
                    if last or since >= every or not q or nxt + 1 == limit:
                        a = 1
                        since = 0
                    else:
                        a = 0
                    payload = seg.payload
                    append(build(ltpn, ptpn, nxt & PSN_MASK, seg.ta, payload, a=a,
                                 last=1 if last else 0, tpmsn=msn))
                    un.append((seg, msn))
                    nbytes += len(payload)
                    if last:
                        msn = (msn + 1) & PSN_MASK
                    nxt += 1
                self._nxt = nxt
                self._since_a = since
                self._tx_msn = msn
                if a and self._probe is None:
                    self._probe = nxt - 1
                    self._probe_at = now
                st["tx_packets"] += nxt - n0
                st["tx_bytes"] += nbytes
                if self._rto_at is None:
                    self._restart_rto = True
        if self._restart_rto:
            self._restart_rto = False
            if self._unacked:
                self._rto_at = now + self._rto.interval(self._rto_times)
        return out

    def _respond(self, out: list, now: int, budget: int) -> None:
        fr = self.framer
        ltpn, ptpn = self.local_tpn, self.peer_tpn
        epsn = self._epsn
        st = self.stats
        if self._rnr_due:
            # the RNR TPNAK names the refused PSN (= EPSN) and acknowledges everything before it
            code = self.tuning.rnr_timer_code
            out.append(fr.tp_response(ltpn, ptpn, epsn & PSN_MASK, rspst=RSPST_RNR,
                                      rspinfo=code, tpmsn=self._rx_msn))
            self._events.append(ResponseSent(now, self.channel, epsn & PSN_MASK, "rnr"))
            st["rnr"] += 1
            self._rnr_due = self._ack_due = self._nak_due = self._ack_event = False
            self._nak_out = True
            self._nak_epsn = epsn
            self._since_ack = 0
            return
        if self._ack_due and self._owed and not (self._sr and self._held):
            # one TPACK per packet taken (tuning.ack_coalesce off), each as of that packet
            for psn, msn, echo, cc in self._owed:
                kw = {"cc": cc} if cc is not None else {}
                out.append(fr.tp_response(ltpn, ptpn, psn, tpmsn=msn, echo=echo, **kw))
                st["acks"] += 1
                if cc is not None:
                    self._events.append(ResponseSent(now, self.channel, psn, "tpack_cc"))
            self._owed.clear()
            if self._ack_event:
                self._events.append(ResponseSent(now, self.channel, (epsn - 1) & PSN_MASK,
                                                 "tpack"))
            self._ack_due = self._ack_event = False
            self._nak_out = False
            self._since_ack = 0
        if self._ack_due:
            self._owed.clear()
            psn = (epsn - 1) & PSN_MASK
            cc = self._cc_take() if self._cc_any else None
            # (cc given only when there is one: a framer without the _CC forms still works)
            kw = {"cc": cc} if cc is not None else {}
            if self._sr and self._held:
                out.append(fr.tp_response(ltpn, ptpn, psn, bitmap=self._bitmap(),
                                          maxrcvpsn=self._maxrcv & PSN_MASK, **kw))
                self._events.append(ResponseSent(now, self.channel, psn, "tpsack"))
                st["sacks"] += 1
                kind = "tpsack_cc"
            else:
                if self._rx_echo is not None and self._want_echo:
                    kw["echo"] = self._rx_echo
                out.append(fr.tp_response(ltpn, ptpn, psn, tpmsn=self._rx_msn, **kw))
                if self._ack_event:
                    self._events.append(ResponseSent(now, self.channel, psn, "tpack"))
                st["acks"] += 1
                kind = "tpack_cc"
            if cc is not None:
                self._events.append(ResponseSent(now, self.channel, psn, kind))
            self._ack_due = self._ack_event = False
            self._nak_out = False
            self._since_ack = 0
        if self._nak_due and len(out) < budget:
            cc = self._cc_take() if self._cc_any else None
            kw = {"cc": cc} if cc is not None else {}
            out.append(fr.tp_response(ltpn, ptpn, epsn & PSN_MASK, rspst=RSPST_NAK, rspinfo=0,
                                      tpmsn=self._rx_msn, **kw))
            self._events.append(ResponseSent(now, self.channel, epsn & PSN_MASK, "tpnak"))
            if cc is not None:
                self._events.append(ResponseSent(now, self.channel, epsn & PSN_MASK,
                                                 "tpnak_cc"))
            st["naks"] += 1
            self._nak_due = False
            self._nak_out = True
            self._nak_epsn = epsn
            self._since_ack = 0

    def _bitmap(self) -> bytes:
        """The SAETPH bitmap: BitMap[0] is EPSN-1, always received; BitMap[i] is EPSN-1+i;
        placed as the profile's ``sack_bit_order`` says (``ubpkt.formats.sack``)."""
        base = self._epsn - 1
        return sack_bitmap([0] + [p - base for p in self._held], self._bits, self._sack_order)

    def __repr__(self) -> str:
        return (f"RtpChannel(channel={self.channel}, {self.tuning.retransmission}, "
                f"una={self._una & PSN_MASK}, nxt={self._nxt & PSN_MASK}, "
                f"epsn={self._epsn & PSN_MASK}, queued={len(self._queue)}, "
                f"held={len(self._held)}, error={self.error})")

