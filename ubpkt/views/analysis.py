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

from collections import OrderedDict, deque
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


def endpoints(f: dict):
    """A frame's (source, destination): its IP addresses, else its CNAs (native UB); the keys of
    TP channels and transactions here and of ``stats conv``/``endpoints``."""
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


class _Holes:
    """The PSNs a channel's gaps left open, oldest first, at most ``cap`` (the oldest dropped):
    runs of consecutive PSNs ``(first, end)`` in the order they were opened, so a gap of
    ``max_holes`` PSNs costs a few tuple operations, not one dict entry per PSN.  Behaves as
    the insertion-ordered set it replaces (a PSN opened again keeps its place)."""

    __slots__ = ("runs", "n")

    def __init__(self) -> None:
        self.runs: list = []     # [(first, end)] oldest first, disjoint, none wrapping
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def __contains__(self, psn) -> bool:
        return any(a <= psn < b for a, b in self.runs)

    def __iter__(self):
        for a, b in self.runs:
            yield from range(a, b)

    def take(self, psn: int) -> bool:
        """Remove ``psn``; whether it was open (an out-of-order packet filling a gap)."""
        runs = self.runs
        for i, (a, b) in enumerate(runs):
            if a <= psn < b:
                if b - a == 1:
                    del runs[i]
                elif psn == a:
                    runs[i] = (a + 1, b)
                elif psn == b - 1:
                    runs[i] = (a, b - 1)
                else:
                    runs[i:i + 1] = [(a, psn), (psn + 1, b)]
                self.n -= 1
                return True
        return False

    def add_gap(self, high: int, ahead: int, cap: int) -> None:
        """Open the PSNs between ``high`` and ``high + ahead`` (the last ``cap`` of them), then
        drop the oldest beyond ``cap``."""
        lo = max(1, ahead - cap)
        if ahead <= lo:
            return
        start = (high + lo) % PSN_SPACE
        end = start + ahead - lo
        old = self.runs
        if ahead - cap >= 1:        # cap PSNs opened: every older one goes, unless reopened
            if end <= PSN_SPACE:
                for oa, ob in old:
                    if oa < end and ob > start:
                        break
                else:
                    self.runs = [(start, end)]
                    self.n = cap
                    return
        pieces = [(start, end)] if end <= PSN_SPACE else [(start, PSN_SPACE),
                                                          (0, end - PSN_SPACE)]
        added = []
        for a, b in pieces:
            parts = [(a, b)]
            for oa, ob in old:
                if ob <= a or oa >= b:
                    continue
                cut = []
                for pa, pb in parts:
                    if ob <= pa or oa >= pb:
                        cut.append((pa, pb))
                        continue
                    if pa < oa:
                        cut.append((pa, oa))
                    if ob < pb:
                        cut.append((ob, pb))
                parts = cut
            added.extend(parts)
        for a, b in added:
            self.n += b - a
        old.extend(added)
        excess = self.n - cap
        if excess > 0:
            self.n = cap
            i = 0
            while excess > 0:
                a, b = old[i]
                if b - a <= excess:
                    excess -= b - a
                    i += 1
                else:
                    old[i] = (a + excess, b)
                    excess = 0
            del old[:i]


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
        # insertion-ordered with an O(1) oldest-first eviction (OrderedDict.popitem(last=False)):
        # a plain dict's pop(next(iter(d))) scans the deleted slots at its front, about 18 us a
        # frame once a one-direction capture fills max_pending
        self.pending: OrderedDict = OrderedDict()   # (initiator, target, tassn) -> request facts
        self.channels: OrderedDict = OrderedDict()  # TP channel -> PSN state
        self.evicted = {"channels": 0, "transactions": 0, "unacked": 0}
        self.ack_sink: dict | None = None  # first_pass: {data frame: ACK frame} is filled in
        self.srt: list = []              # (request opcode name, response time ns)
        self.counts = {"psn_gap": 0, "missing": 0, "out_of_order": 0, "retransmission": 0,
                       "duplicate": 0, "psn_backwards": 0, "responses": 0,
                       "unmatched_responses": 0, "tpnak": 0, "acks": 0, "acked": 0}

    # -- transactions -------------------------------------------------------------------------
    def _transaction(self, frame: int, time_ns: int, f: dict, out: dict) -> None:
        # on the hot path of stats and -V: one lookup per field, a list (repeated header) rarely
        get = f.get
        op = get("ub.btah.taopcode")
        if op.__class__ is list:
            op = op[0]
        if op is not None and op in TA_PAIRS:
            tassn = get("ub.btah.ini_tassn")
            if tassn.__class__ is list:
                tassn = tassn[0]
            if tassn is None:
                return
            no_ack = get("ub.btah.no_taack")
            if no_ack.__class__ is list:
                no_ack = no_ack[0]
            if ta_response_opcode(op, no_ack or 0) is None:
                return
            src = get("ip.src") or get("ipv6.src")
            if src is not None:
                key = (src, get("ip.dst") or get("ipv6.dst"), tassn)
            else:
                key = (*endpoints(f), tassn)
            if key not in self.pending:
                rc_type, rc_id, name = (get("ub.btah.ini_rc_type"), get("ub.btah.ini_rc_id"),
                                        get("ub.btah.taopcode_name"))
                if rc_type.__class__ is list or rc_id.__class__ is list or \
                        name.__class__ is list:
                    rc_type, rc_id, name = _one(rc_type), _one(rc_id), _one(name)
            else:
                rc_type = rc_id = name = None
            self._request(frame, time_ns, out, key, op, rc_type, rc_id, name or str(op))
            return
        rop = get("ub.atah.taopcode")
        if rop.__class__ is list:
            rop = rop[0]
        if rop is None or rop not in _RESPONSES:
            return
        self._response(frame, time_ns, out, rop, _one(get("ub.atah.ini_tassn")), *endpoints(f),
                       _one(f.get("ub.atah.ini_rc_type")), _one(f.get("ub.atah.ini_rc_id")))

    def _request(self, frame: int, time_ns: int, out: dict, key: tuple, op: int, rc_type,
                 rc_id, name: str) -> None:
        """A request that expects a response, ``key`` (initiator, target, TASSN): remembered
        until its response (the first of a key is kept), linked with a first pass."""
        pending = self.pending
        if key not in pending:
            pending[key] = (frame, time_ns, op, rc_type, rc_id, name)
            if len(pending) > self.limits.max_pending:
                pending.popitem(last=False)
                self.evicted["transactions"] += 1
        if self.linked is not None:
            resp = self.linked.responses.get(frame)
            if resp is not None:
                out["ub.analysis.response_in"] = resp
            else:
                out["ub.analysis.no_response"] = 1

    def _response(self, frame: int, time_ns: int, out: dict, rop: int, tassn, src, dst,
                  rc_type, rc_id) -> None:
        """A response (TAOpcode ``rop``) from ``src`` to ``dst``: matched with its request."""
        key = (dst, src, tassn)          # back from the target to the initiator
        if key not in self.pending:
            key = (src, dst, tassn)      # a capture that keeps the request's addresses
        req = self.pending.get(key)
        rc = (rc_type, rc_id)
        if req is None or TA_PAIRS.get(req[2]) != rop or (
                rc[0] is not None and req[3] is not None and rc != (req[3], req[4])):
            self.counts["unmatched_responses"] += 1
            return
        del self.pending[key]
        dt = time_ns - req[1]
        self.counts["responses"] += 1
        self.srt.append((req[5], dt))
        out["ub.analysis.request_in"] = req[0]
        out["ub.analysis.response_time_ns"] = dt
        out["ub.analysis.response_time"] = round(dt / 1e9, 9)

    # -- PSNs ---------------------------------------------------------------------------------
    def _ack(self, frame: int, time_ns: int, out: dict, src, dst, psn, stpn, dtpn) -> None:
        """A TPACK/TPSACK from ``src`` to ``dst``: acknowledge the reverse channel's data
        frames up to its PSN."""
        ch = self.channels.get((dst, src, _one(dtpn), _one(stpn)))
        if ch is None or not ch["unacked"] or psn is None:
            return
        psn = _one(psn)
        t = time_ns
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

    def _psn(self, frame: int, time_ns: int, f: dict, out: dict) -> None:
        # on the hot path of stats: one lookup per field, a list (repeated header) rarely
        get = f.get
        op = get("ub.rtph.tpopcode")
        if op.__class__ is list:
            op = op[0]
        if op not in _TP_DATA:
            if op in _TP_NAK_OPS or (op in _TP_RESPONSES and _one(get("ub.rtph.rspst"))
                                     in TPNAK_RSPST):
                self._tpnak(out)
            elif op in _TP_RESPONSES:
                self._ack(frame, time_ns, out, *endpoints(f), get("ub.rtph.psn"),
                          get("ub.rtph.srctpn"), get("ub.rtph.dsttpn"))
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
            key = (*endpoints(f), stpn, dtpn)
        self._data(frame, time_ns, out, key, psn)

    def _tpnak(self, out: dict) -> None:
        out["ub.analysis.tpnak"] = 1
        self.counts["tpnak"] += 1

    def _data(self, frame: int, time_ns: int, out: dict, key: tuple, psn: int) -> None:
        """An RTP data packet of TP channel ``key`` (source, destination, SrcTPN, DstTPN)."""
        ch = self.channels.get(key)
        if ch is None:
            ch = self.channels[key] = {"packets": 0, "gaps": 0, "missing": 0, "high": None,
                                       "last": None, "holes": _Holes(), "retrans": 0, "ooo": 0,
                                       "unacked": deque()}
            if len(self.channels) > self.limits.max_channels:
                self.channels.popitem(last=False)
                self.evicted["channels"] += 1
        ch["packets"] += 1
        unacked = ch["unacked"]
        unacked.append((frame, psn, time_ns))
        if len(unacked) > self.limits.max_unacked:
            unacked.popleft()
            self.evicted["unacked"] += 1
        if self.linked is not None:
            ack = self.linked.acks.get(frame)
            if ack is not None:
                out["ub.analysis.ack_in"] = ack
        high = ch["high"]
        if high is not None:
            ahead = (psn - high) % PSN_SPACE
            if ahead == 0 or ahead >= _HALF:          # not ahead: behind (or equal)
                back = (high - psn) % PSN_SPACE
                out["ub.analysis.psn_backwards"] = back
                self.counts["psn_backwards"] += 1
                if ch["holes"].take(psn):
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
                ch["holes"].add_gap(high, ahead, self.limits.max_holes)
        ch["high"] = psn
        ch["last"] = psn

    def add(self, rec: dict) -> dict:
        """Analyse one record; the analysis fields are added to ``rec['fields']`` (when
        annotating) and returned."""
        f = rec["fields"]
        if "ub.btah.taopcode" not in f and "ub.atah.taopcode" not in f and "ub.rtph.psn" not in f:
            return {}
        out = self.add_fields(rec["frame"], _time_ns(rec), f)
        if out and self.annotate:
            f.update(out)
        return out

    def add_fields(self, frame: int, time_ns: int, f: dict) -> dict:
        """Analyse one frame from its number, time (ns) and fields (the record's, or only the
        :data:`READS` the fast path picks); the analysis fields found, never added to ``f``.
        The same state and counts as :meth:`add` of the frame's record."""
        out: dict = {}
        if "ub.btah.taopcode" in f or "ub.atah.taopcode" in f:
            self._transaction(frame, time_ns, f, out)
        if "ub.rtph.psn" in f:
            self._psn(frame, time_ns, f, out)
        return out

    def plan(self, fields: dict, varying: dict):
        """The analysis of one fast-path layout as generated code: ``fields`` the layout's
        sample fields, ``varying`` ``{key: Python expression}`` of those read per frame (the
        others are fixed by the layout, their sample value).  Returns ``(lines, names)``:
        statements (4-space indent) that put the frame's analysis fields in a dict ``o``
        (frame number ``fr``, time ``tns``), calling only the steps this layout can reach
        with the same state and counts as :meth:`add_fields`, and the names they use; or
        None when the layout is not planned (a repeated header's lists, a steering field read
        per frame): the caller calls :meth:`add_fields`."""
        if any(fields[k].__class__ is list for k in READS if k in fields):
            return None
        for k in ("ip.src", "ip.dst", "ipv6.src", "ipv6.dst"):
            if k in fields and not (fields[k].__class__ is str and fields[k]):
                return None      # endpoints takes "or" of these: only non-empty text is planned
        steering = ("ub.btah.taopcode", "ub.atah.taopcode", "ub.rtph.tpopcode",
                    "ub.btah.taopcode_name")
        if any(k in varying for k in steering):
            return None

        def ex(k):
            return varying[k] if k in varying else repr(fields.get(k))

        def pick(*keys):
            return next((k for k in keys if k in fields), None)
        src_k, dst_k = pick("ip.src", "ipv6.src"), pick("ip.dst", "ipv6.dst")
        if src_k is None:      # endpoints: the CNAs when there is no IP source
            src_k = pick("ub.cna16.scna", "ub.cna24.scna")
            dst_k = pick("ub.cna16.dcna", "ub.cna24.dcna")
        src = "None" if src_k is None else ex(src_k)
        dst = "None" if dst_k is None else ex(dst_k)
        names = {"_req": self._request, "_resp": self._response, "_nak": self._tpnak,
                 "_ack": self._ack, "_dat": self._data, "_tro": ta_response_opcode,
                 "_NAKST": TPNAK_RSPST}
        lines: list = []
        if "ub.btah.taopcode" in fields or "ub.atah.taopcode" in fields:
            op = fields.get("ub.btah.taopcode")
            if op is not None and op in TA_PAIRS:
                tassn = "ub.btah.ini_tassn"
                no_ack = "ub.btah.no_taack"
                reachable = tassn in varying or fields.get(tassn) is not None
                if no_ack not in varying and \
                        ta_response_opcode(op, fields.get(no_ack) or 0) is None:
                    reachable = False
                if reachable:
                    name = fields.get("ub.btah.taopcode_name") or str(op)
                    call = (f"_req(fr, tns, o, ({src}, {dst}, {ex(tassn)}), {op!r}, "
                            f"{ex('ub.btah.ini_rc_type')}, {ex('ub.btah.ini_rc_id')}, "
                            f"{name!r})")
                    if no_ack in varying:
                        lines.append(f"    if _tro({op!r}, {varying[no_ack]} or 0) is not None:")
                        lines.append("        " + call)
                    else:
                        lines.append("    " + call)
            else:
                rop = fields.get("ub.atah.taopcode")
                if rop is not None and rop in _RESPONSES:
                    lines.append(f"    _resp(fr, tns, o, {rop!r}, {ex('ub.atah.ini_tassn')}, "
                                 f"{src}, {dst}, {ex('ub.atah.ini_rc_type')}, "
                                 f"{ex('ub.atah.ini_rc_id')})")
        if "ub.rtph.psn" in fields:
            op = fields.get("ub.rtph.tpopcode")
            psn, stpn, dtpn = ex("ub.rtph.psn"), ex("ub.rtph.srctpn"), ex("ub.rtph.dsttpn")
            ack = f"_ack(fr, tns, o, {src}, {dst}, {psn}, {stpn}, {dtpn})"
            if op in _TP_DATA:
                lines.append(f"    _dat(fr, tns, o, ({src}, {dst}, {stpn}, {dtpn}), {psn})")
            elif op in _TP_NAK_OPS:
                lines.append("    _nak(o)")
            elif op in _TP_RESPONSES:
                if "ub.rtph.rspst" in varying:
                    lines += [f"    if {varying['ub.rtph.rspst']} in _NAKST:", "        _nak(o)",
                              "    else:", "        " + ack]
                elif fields.get("ub.rtph.rspst") in TPNAK_RSPST:
                    lines.append("    _nak(o)")
                else:
                    lines.append("    " + ack)
        if lines:
            lines.insert(0, "    o = {}")
        return lines, names

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
