"""Engine events a man in the middle can derive from the RTP traffic it sees (for the fault
ledger of ``ubpkt inject --proxy``).

A proxy runs no engine: the :class:`~ubpkt.sim.ledger.Ledger` needs the events the engines
report in the simulator (``Retransmitted``, ``ResponseSent``, ``Discarded``, ``ChannelError``),
and the proxy sees only datagrams.  What it can observe, per TP channel (a node and its
SrcTPN), from the RTPH of each datagram as it comes in (UB 2.0 §6.2.1):

* **a retransmission**: an RTP data packet whose PSN is at or before the highest PSN that
  sender has already sent on that channel (a sender's new PSNs only grow, UB 2.0 §6.4.1) ->
  ``Retransmitted(channel=SrcTPN, psn, reason)``.  The reason is inferred: ``nak`` when the
  last TP response the proxy *forwarded* to that sender for that channel since the PSN's
  previous transmission was a TPNAK (RSPST 011), ``sack`` for a TPSACK, ``rnr`` for an RNR
  TPNAK (RSPST 001/010), else ``rto`` (the sender's timer).  A guess from the wire, documented
  as such in the report.
* **a TP response** (TPACK, TPNAK, TPSACK, RNR and the _CC forms, UB 2.0 §6.2.2) ->
  ``ResponseSent(channel=SrcTPN, psn, kind)``, the _CC forms as the engine reports them (the
  plain kind and the ``_cc`` kind).  Unlike an engine, the proxy sees every TPACK.

What it cannot know: whether a receiver discarded a duplicate (``Discarded(duplicate)``), or a
frame for a bad ICRC (``Discarded(bad_icrc)``), or whether a channel gave up
(``ChannelError``): those happen inside the endpoints.  So a duplicate stays ``benign``
without the "discarded by the receiver" note, and a data packet a sender never sent again is
``unrecovered`` (no retransmission seen) rather than matched to a channel error.

Memory: per channel, the transmission times of the last ``psn_memory`` PSNs (a named setting,
:class:`~ubpkt.drivers.proxy.ProxyConfig`); an older PSN seen again is still a retransmission,
its reason then inferred from the last response alone.
"""
from __future__ import annotations

from collections import OrderedDict

from ..stack.engine import ResponseSent, Retransmitted

__all__ = ["WireObserver", "rtph_fields", "response_kinds", "REASON_NOTE"]

_PSN_MOD = 1 << 24
_HALF = 1 << 23
_RTP_DATA, _TPACK, _TPACK_CC, _TPSACK, _TPSACK_CC = 1, 2, 3, 5, 6   # UB 2.0 §6.2.1 Table 6-2
_RSPST_RNR, _RSPST_PAGE_FAULT, _RSPST_NAK = 1, 2, 3
_GAP_REASON = {"tpnak": "nak", "tpsack": "sack", "rnr": "rnr"}
REASON_NOTE = ("retransmissions and TP responses are derived from the datagrams the proxy "
               "saw come in (a data PSN at or before the highest that sender had sent is a "
               "retransmission; its reason is inferred from the last TP response forwarded to "
               "the sender); a receiver's discards (duplicates, bad ICRC) and a channel giving "
               "up happen inside the endpoints and are not visible to the proxy")


def rtph_fields(dgram) -> tuple | None:
    """(TPOpcode, SrcTPN, DstTPN, PSN, RSPST) of a UDP payload that starts with an RTPH
    (UB 2.0 §6.2.1: byte 0 Last|TPOpcode, SrcTPN bytes 2-4, DstTPN 5-7, PSN 9-11, RSPST the top
    three bits of byte 12), or None when it is shorter than an RTPH."""
    if len(dgram) < 16:
        return None
    return (dgram[0] & 0x7F, int.from_bytes(dgram[2:5], "big"), int.from_bytes(dgram[5:8], "big"),
            int.from_bytes(dgram[9:12], "big"), dgram[12] >> 5)


def response_kinds(tpopcode: int, rspst: int) -> tuple:
    """The ``ResponseSent`` kinds an engine reports for a TP response (empty for data)."""
    if tpopcode in (_TPACK, _TPACK_CC):
        if rspst == _RSPST_NAK:
            base = "tpnak"
        elif rspst in (_RSPST_RNR, _RSPST_PAGE_FAULT):
            return ("rnr",)
        else:
            base = "tpack"
        return (base, base + "_cc") if tpopcode == _TPACK_CC else (base,)
    if tpopcode == _TPSACK:
        return ("tpsack",)
    if tpopcode == _TPSACK_CC:
        return ("tpsack", "tpsack_cc")
    return ()


def _psn_le(a: int, b: int) -> bool:
    return (b - a) % _PSN_MOD < _HALF


class WireObserver:
    """Derives ledger events from the datagrams of both directions (module doc).  ``events``:
    ``(node, event)`` pairs in the order seen, what :meth:`Ledger.resolve` reads.  ``stats``:
    data packets, retransmissions by inferred reason, responses by kind."""

    def __init__(self, psn_memory: int = 1 << 16):
        self.psn_memory = psn_memory
        self.events: list = []
        self._highest: dict = {}        # (node, channel) -> highest data PSN sent
        self._sent: dict = {}           # (node, channel) -> OrderedDict psn -> last sent at
        self._gap: dict = {}            # (node, channel) -> (at, kind) last response forwarded
        self.stats = {"data": 0, "retransmissions": {}, "responses": {}}

    def ingress(self, node: str, fields: tuple, now: int) -> None:
        """A datagram ``node`` sent, as it reached the proxy (``fields``: :func:`rtph_fields`)."""
        opc, src, _dst, psn, rspst = fields
        st = self.stats
        if opc == _RTP_DATA:
            st["data"] += 1
            key = (node, src)
            top = self._highest.get(key)
            sent = self._sent.get(key)
            if sent is None:
                sent = self._sent[key] = OrderedDict()
            if top is not None and _psn_le(psn, top):
                prev = sent.get(psn)
                gap = self._gap.get(key)
                reason = "rto"
                if gap is not None and (prev is None or gap[0] > prev):
                    reason = _GAP_REASON.get(gap[1], "rto")
                self.events.append((node, Retransmitted(now, src, psn, reason)))
                r = st["retransmissions"]
                r[reason] = r.get(reason, 0) + 1
                if psn in sent:
                    sent.move_to_end(psn)
            else:
                self._highest[key] = psn
            sent[psn] = now
            if len(sent) > self.psn_memory:
                sent.popitem(last=False)
            return
        for kind in response_kinds(opc, rspst):
            self.events.append((node, ResponseSent(now, src, psn, kind)))
            r = st["responses"]
            r[kind] = r.get(kind, 0) + 1

    def egress(self, to_node: str, fields: tuple, now: int) -> None:
        """A datagram the proxy forwarded to ``to_node``: TP responses tell the data sender to
        go back (the reason of its next retransmissions)."""
        opc, _src, dst, _psn, rspst = fields
        kinds = response_kinds(opc, rspst)
        if kinds:
            self._gap[(to_node, dst)] = (now, kinds[0])

    def report(self) -> dict:
        return {"data_packets": self.stats["data"],
                "retransmissions": dict(self.stats["retransmissions"]),
                "responses": dict(self.stats["responses"]), "note": REASON_NOTE}
