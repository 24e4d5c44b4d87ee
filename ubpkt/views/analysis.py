"""Analysis over a stream of records (tshark's ``-2`` idea): transactions and PSN sequences.

* Request/response linking from the grammar's pairs (``ubpkt.formats.grammar.TA_PAIRS``,
  ``TA_MATCH``; UB 2.0 §7.2.1-2): a request (BTAH) is matched with the response (ATAH) that
  comes back from its target with the same initiator TASSN (and requester context when the
  response carries one; a response keeping the request's addresses is matched too, as
  synthetic captures have them).  The response gets ``ub.analysis.request_in`` and
  ``ub.analysis.response_time`` (seconds) / ``response_time_ns``; with a first pass
  (:func:`first_pass`), the request gets ``ub.analysis.response_in``, and a request that
  expects a response and never gets one ``ub.analysis.no_response`` (a missing TAACK).
* PSN analysis per TP channel (source, destination, SrcTPN, DstTPN) of RTP data packets
  (UB 2.0 §6.2.1; PSNs are 24 bits and wrap): ``ub.analysis.psn_gap`` (PSNs skipped before
  this one), ``ub.analysis.out_of_order`` (fills an earlier gap), ``ub.analysis.retransmission``
  (a PSN seen before), ``ub.analysis.duplicate`` (the same PSN as the previous packet),
  ``ub.analysis.psn_backwards`` (how far behind the highest PSN).  A PSN is ahead of the
  highest when it is less than half the PSN space ahead of it, so a wrap to 0 is in order.
* TPNAK seen (UB 2.0 §6.2.1, the RTPH's RSPST): ``ub.analysis.tpnak`` on a TP response
  (TPOpcode of ``TP_PAIRS``' responses) whose RSPST is one of ``TPNAK_RSPST`` (RNR, Page Fault,
  Completer Error; 0 and TA_Response make it a TPACK), and on ns-3-UB's TPNAK opcode
  (``grammar.TP_RESPONSES_NS3``).
* Data -> TP acknowledgement (UB 2.0 §6.4.1: a TPACK reports the highest PSN received in order,
  a TPSACK is cumulative up to its PSN plus a bitmap): every TP response that is not a TPNAK
  (TPACK, TPACK-CC, TPSACK, TPSACK-CC) is a *cumulative* acknowledgement of its TP channel: it
  acknowledges every data packet of the reverse channel (the TPNs swapped, ``TP_MATCH``) not yet
  acknowledged whose PSN is at or behind its PSN (behind: less than half the PSN space, so a
  wrap counts).  The TPSACK bitmap is not read (only its cumulative PSN), and a TPNAK
  acknowledges nothing here (it is flagged ``tpnak``).  The ACK gets
  ``ub.analysis.acked_frames`` (how many data frames it acknowledges first; absent when none),
  and when one of them carries its PSN ``ub.analysis.ack_to`` (that frame, the last one in
  capture order) and ``ub.analysis.ack_time`` / ``ack_time_ns`` (since that frame); with a
  first pass, each acknowledged data frame gets ``ub.analysis.ack_in`` (the ACK's frame).  A
  data frame sent again after its ACK is acknowledged by the next ACK covering its PSN.

State is bounded (:class:`AnalysisLimits`, documented settings): at most ``max_channels`` TP
channels, ``max_pending`` open transactions, ``max_holes`` remembered gaps and
``max_unacked`` data frames waiting for their acknowledgement per channel; past a cap the
oldest entry is dropped and counted in ``Analyzer.evicted``.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..formats.grammar import TA_PAIRS, TP_PAIRS, TP_RESPONSES_NS3, ta_response_opcode

__all__ = ["AnalysisLimits", "Analyzer", "Links", "first_pass", "PSN_SPACE", "ANALYSIS_KEYS",
           "TPNAK_RSPST"]

PSN_SPACE = 1 << 24            # UB 2.0 §6.2.1: 24-bit PSN
_HALF = PSN_SPACE // 2
_RESPONSES = frozenset(TA_PAIRS.values())
_TP_DATA = frozenset(TP_PAIRS)
_TP_RESPONSES = frozenset(op for ops in TP_PAIRS.values() for op in ops)
_TP_NAK_OPS = frozenset(TP_RESPONSES_NS3)
#: RTPH RSPST values that make a TP response a TPNAK (UB 2.0 §6.2.1: RNR, Page Fault, Completer
#: Error; TPSACKs carry 0).
TPNAK_RSPST = frozenset({1, 2, 3})

ANALYSIS_KEYS = ("ub.analysis.request_in", "ub.analysis.response_in",
                 "ub.analysis.response_time", "ub.analysis.response_time_ns",
                 "ub.analysis.no_response", "ub.analysis.psn_gap", "ub.analysis.out_of_order",
                 "ub.analysis.retransmission", "ub.analysis.duplicate",
                 "ub.analysis.psn_backwards", "ub.analysis.tpnak", "ub.analysis.ack_in",
                 "ub.analysis.ack_to", "ub.analysis.acked_frames", "ub.analysis.ack_time",
                 "ub.analysis.ack_time_ns")

#: Every record field the analysis reads (the stats fast path extracts only these).
READS = ("ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ub.cna16.scna", "ub.cna16.dcna",
         "ub.cna24.scna", "ub.cna24.dcna", "ub.rtph.tpopcode", "ub.rtph.psn", "ub.rtph.srctpn",
         "ub.rtph.dsttpn", "ub.rtph.rspst", "ub.btah.taopcode", "ub.btah.ini_tassn", "ub.btah.no_taack",
         "ub.btah.ini_rc_type", "ub.btah.ini_rc_id", "ub.btah.taopcode_name",
         "ub.atah.taopcode", "ub.atah.ini_tassn", "ub.atah.ini_rc_type", "ub.atah.ini_rc_id")


@dataclass(frozen=True)
class AnalysisLimits:
    """Caps on the analysis state (ubpkt's choice; the spec says nothing about analysers)."""
    max_channels: int = 65536
    max_pending: int = 262144
    max_holes: int = 1024
    #: data frames per TP channel waiting for their TPACK (a capture without the reverse
    #: direction would otherwise grow without end); the oldest is dropped (never linked)
    max_unacked: int = 4096


@dataclass
class Links:
    """What a first pass (:func:`first_pass`) learnt for the frames before them:
    ``responses`` ``{request frame: response frame}``, ``acks`` ``{data frame: ACK frame}``."""
    responses: dict = field(default_factory=dict)
    acks: dict = field(default_factory=dict)


def _addrs(f: dict):
    src = f.get("ip.src") or f.get("ipv6.src")
    dst = f.get("ip.dst") or f.get("ipv6.dst")
    if src is None:
        src = f.get("ub.cna16.scna", f.get("ub.cna24.scna"))
        dst = f.get("ub.cna16.dcna", f.get("ub.cna24.dcna"))
    return src, dst


def _one(v):
    return v[0] if isinstance(v, list) else v


def _time_ns(rec: dict) -> int:
    """The frame's time in integer ns: the decode loop's clock (``_t``), else the reader's exact
    time (``_tns``, ``iter_records(..., exact_time=True)``), else the float seconds of ``time``
    (about 0.24 us resolution for present-day epochs: pass exact times for response times)."""
    t = rec.get("_t")
    if t is not None:
        return t[0]
    t = rec.get("_tns")
    if t is not None:
        return t[0]
    v = rec.get("time")
    return 0 if v is None else round(v * 1e9)


class Analyzer:
    """Adds ``ub.analysis.*`` fields to records in order (``add``) and keeps the counts stats
    reports.  ``linked``: the :class:`Links` of :func:`first_pass` (a plain dict is read as
    its ``responses``)."""

    def __init__(self, limits: AnalysisLimits | None = None, linked: dict | None = None,
                 annotate: bool = True):
        self.limits = limits or AnalysisLimits()
        if isinstance(linked, dict):
            linked = Links(responses=linked)
        self.linked = linked
        self.annotate = annotate
        self.pending: dict = {}          # (initiator, target, tassn) -> request facts
        self.channels: dict = {}         # TP channel -> PSN state
        self.evicted = {"channels": 0, "transactions": 0, "unacked": 0}
        self.ack_sink: dict | None = None  # first_pass: {data frame: ACK frame} is filled in
        self.srt: list = []              # (request opcode name, response time ns)
        self.counts = {"psn_gap": 0, "missing": 0, "out_of_order": 0, "retransmission": 0,
                       "duplicate": 0, "psn_backwards": 0, "responses": 0,
                       "unmatched_responses": 0, "tpnak": 0, "acks": 0, "acked": 0}

    # -- transactions -------------------------------------------------------------------------
    def _transaction(self, rec: dict, f: dict, out: dict) -> None:
        op = f.get("ub.btah.taopcode")
        if op.__class__ is list:
            op = op[0]
        if op is not None and op in TA_PAIRS:
            tassn = _one(f.get("ub.btah.ini_tassn"))
            if tassn is None:
                return
            if ta_response_opcode(op, _one(f.get("ub.btah.no_taack")) or 0) is None:
                return
            src, dst = _addrs(f)
            key = (src, dst, tassn)
            if key not in self.pending:
                self.pending[key] = (rec["frame"], _time_ns(rec), op,
                                     _one(f.get("ub.btah.ini_rc_type")),
                                     _one(f.get("ub.btah.ini_rc_id")),
                                     _one(f.get("ub.btah.taopcode_name")) or str(op))
                if len(self.pending) > self.limits.max_pending:
                    self.pending.pop(next(iter(self.pending)))
                    self.evicted["transactions"] += 1
            if self.linked is not None:
                resp = self.linked.responses.get(rec["frame"])
                if resp is not None:
                    out["ub.analysis.response_in"] = resp
                else:
                    out["ub.analysis.no_response"] = 1
            return
        rop = _one(f.get("ub.atah.taopcode"))
        if rop is None or rop not in _RESPONSES:
            return
        tassn = _one(f.get("ub.atah.ini_tassn"))
        src, dst = _addrs(f)
        key = (dst, src, tassn)          # back from the target to the initiator
        if key not in self.pending:
            key = (src, dst, tassn)      # a capture that keeps the request's addresses
        req = self.pending.get(key)
        rc = (_one(f.get("ub.atah.ini_rc_type")), _one(f.get("ub.atah.ini_rc_id")))
        if req is None or TA_PAIRS.get(req[2]) != rop or (
                rc[0] is not None and req[3] is not None and rc != (req[3], req[4])):
            self.counts["unmatched_responses"] += 1
            return
        del self.pending[key]
        dt = _time_ns(rec) - req[1]
        self.counts["responses"] += 1
        self.srt.append((req[5], dt))
        out["ub.analysis.request_in"] = req[0]
        out["ub.analysis.response_time_ns"] = dt
        out["ub.analysis.response_time"] = round(dt / 1e9, 9)

    # -- PSNs ---------------------------------------------------------------------------------
    def _ack(self, rec: dict, f: dict, psn, stpn, dtpn, out: dict) -> None:
        """A TPACK/TPSACK: acknowledge the reverse channel's data frames up to its PSN."""
        src, dst = _addrs(f)
        ch = self.channels.get((dst, src, _one(dtpn), _one(stpn)))
        if ch is None or not ch["unacked"] or psn is None:
            return
        psn = _one(psn)
        frame, t = rec["frame"], _time_ns(rec)
        keep: deque = deque()
        acked = 0
        named = None
        sink = self.ack_sink
        for entry in ch["unacked"]:
            if (psn - entry[1]) % PSN_SPACE < _HALF:       # at or behind the ACK's PSN
                acked += 1
                if entry[1] == psn:
                    named = entry
                if sink is not None:
                    sink[entry[0]] = frame
            else:
                keep.append(entry)
        if not acked:
            return
        ch["unacked"] = keep
        self.counts["acks"] += 1
        self.counts["acked"] += acked
        out["ub.analysis.acked_frames"] = acked
        if named is not None:
            dt = t - named[2]
            out["ub.analysis.ack_to"] = named[0]
            out["ub.analysis.ack_time_ns"] = dt
            out["ub.analysis.ack_time"] = round(dt / 1e9, 9)

    def _psn(self, rec: dict, f: dict, out: dict) -> None:
        # on the hot path of stats: one lookup per field, a list (repeated header) rarely
        get = f.get
        op = get("ub.rtph.tpopcode")
        if op.__class__ is list:
            op = op[0]
        if op not in _TP_DATA:
            if op in _TP_NAK_OPS or (op in _TP_RESPONSES and _one(get("ub.rtph.rspst"))
                                     in TPNAK_RSPST):
                out["ub.analysis.tpnak"] = 1
                self.counts["tpnak"] += 1
            elif op in _TP_RESPONSES:
                self._ack(rec, f, get("ub.rtph.psn"), get("ub.rtph.srctpn"),
                          get("ub.rtph.dsttpn"), out)
            return
        psn, stpn, dtpn = get("ub.rtph.psn"), get("ub.rtph.srctpn"), get("ub.rtph.dsttpn")
        if psn.__class__ is list or stpn.__class__ is list or dtpn.__class__ is list:
            psn, stpn, dtpn = _one(psn), _one(stpn), _one(dtpn)
        if psn is None:
            return
        src = get("ip.src") or get("ipv6.src")
        if src is not None:
            key = (src, get("ip.dst") or get("ipv6.dst"), stpn, dtpn)
        else:
            key = (*_addrs(f), stpn, dtpn)
        ch = self.channels.get(key)
        if ch is None:
            ch = self.channels[key] = {"packets": 0, "gaps": 0, "missing": 0, "high": None,
                                       "last": None, "holes": {}, "retrans": 0, "ooo": 0,
                                       "unacked": deque()}
            if len(self.channels) > self.limits.max_channels:
                self.channels.pop(next(iter(self.channels)))
                self.evicted["channels"] += 1
        ch["packets"] += 1
        unacked = ch["unacked"]
        unacked.append((rec["frame"], psn, _time_ns(rec)))
        if len(unacked) > self.limits.max_unacked:
            unacked.popleft()
            self.evicted["unacked"] += 1
        if self.linked is not None:
            ack = self.linked.acks.get(rec["frame"])
            if ack is not None:
                out["ub.analysis.ack_in"] = ack
        high = ch["high"]
        if high is not None:
            ahead = (psn - high) % PSN_SPACE
            if ahead == 0 or ahead >= _HALF:          # not ahead: behind (or equal)
                back = (high - psn) % PSN_SPACE
                out["ub.analysis.psn_backwards"] = back
                self.counts["psn_backwards"] += 1
                holes = ch["holes"]
                if psn in holes:
                    del holes[psn]
                    out["ub.analysis.out_of_order"] = 1
                    self.counts["out_of_order"] += 1
                    ch["ooo"] += 1
                else:
                    out["ub.analysis.retransmission"] = 1
                    self.counts["retransmission"] += 1
                    ch["retrans"] += 1
                    if psn == ch["last"]:
                        out["ub.analysis.duplicate"] = 1
                        self.counts["duplicate"] += 1
                ch["last"] = psn
                return
            if ahead > 1:
                missing = ahead - 1
                out["ub.analysis.psn_gap"] = missing
                self.counts["psn_gap"] += 1
                self.counts["missing"] += missing
                ch["gaps"] += 1
                ch["missing"] += missing
                holes = ch["holes"]
                cap = self.limits.max_holes
                for k in range(max(1, ahead - cap), ahead):
                    holes[(high + k) % PSN_SPACE] = True
                while len(holes) > cap:
                    holes.pop(next(iter(holes)))
        ch["high"] = psn
        ch["last"] = psn

    def add(self, rec: dict) -> dict:
        """Analyse one record; the analysis fields are added to ``rec['fields']`` (when
        annotating) and returned."""
        f = rec["fields"]
        out: dict = {}
        if "ub.btah.taopcode" in f or "ub.atah.taopcode" in f:
            self._transaction(rec, f, out)
        if "ub.rtph.psn" in f:
            self._psn(rec, f, out)
        if out and self.annotate:
            f.update(out)
        return out

    def open_requests(self) -> int:
        """Requests still waiting for a response (missing TAACKs at the end of a capture)."""
        return len(self.pending)


def first_pass(records, limits: AnalysisLimits | None = None) -> Links:
    """The :class:`Links` of a whole capture (the first of two passes): which frame answers
    each request, which ACK acknowledges each data frame."""
    an = Analyzer(limits, annotate=False)
    links = Links()
    an.ack_sink = links.acks
    for rec in records:
        got = an.add(rec)
        req = got.get("ub.analysis.request_in")
        if req is not None:
            links.responses[req] = rec["frame"]
    return links
