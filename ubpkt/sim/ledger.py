"""The fault ledger: every fault the simulator injects (and every frame a link's queue drops),
what it hit, and what became of it.

Recording: :meth:`Ledger.record` gives each fault an id and keeps the time, the link direction
(``"a->b"``, with the sending and receiving node), the kind and a summary of the frame *before*
any damage (:func:`summarize`: mode, TPOpcode, SrcTPN, DstTPN, PSN, Last, RSPST and, when present,
the TAH opcode and TASSN), plus kind-specific detail (flipped bits, the drop rule...).

Resolving: after a run, :meth:`Ledger.resolve` reads the engines' events (``ubpkt.stack.engine``:
plain events or ``(node, event)`` pairs as :class:`~ubpkt.sim.driver.Simulator` keeps them) and
gives each fault one outcome:

``recovered`` (``by`` = the Retransmitted event's reason: ``nak``, ``sack``, ``rto``, ``rnr``)
    An RTP data packet lost (``loss``, ``blackout``, ``drop``, ``corrupt``, ``tail_drop``) and
    sent again: the first unclaimed Retransmitted event of the sender (the node the link leaves,
    channel = the frame's SrcTPN) with that PSN, strictly after the fault (a fault on a
    retransmitted frame is at the time of that frame's own event).  A ``reorder`` is recovered
    the same way, or by the retransmission of a frame that overtook it (a Go-Back-N receiver
    drops those; the injector lists them in ``detail["overtaken_by"]``).  A lost TP response
    (TPACK, TPNAK, TPSACK...) is recovered when the data sender (the response's receiver,
    channel = its DstTPN) retransmits a PSN at or before the response's PSN before the receiver
    reports a later response covering it; so is a reordered or duplicated one (a late or second
    TPNAK makes the sender go back again).  Lost data packets claim their retransmissions
    first, then lost responses, then reorders and duplicates.
``benign``
    A duplicate (``note`` says when a ``Discarded(duplicate)`` shows the receiver dropped it); a
    reorder after which nothing was sent again; a lost TP response after which nothing was sent
    again (covered by a later cumulative response: a later ResponseSent of the same channel with
    a PSN at or after it, itself not lost, or one the engine did not report: engines report
    only some TPACKs).  A congestion ``mark`` (the frame still arrives; ``note`` "echoed" when
    the receiving channel, the frame's DstTPN on the node the link enters, sent a _CC response,
    a ResponseSent of kind ``tpack_cc``, ``tpnak_cc`` or ``tpsack_cc``, after it: UB 2.0
    §6.6.1.3.4).  Marks take part in nothing else: no retransmission is claimed by one.
``expected_loss``
    Anything lost from a mode with no transport reliability: UTP, CTP (reliability is the
    link's, below this simulated link), TP bypass, frames that are not TP packets.
``unrecovered`` (``error`` = the ChannelError's status, or None)
    The channel gave up (a ChannelError on the data sender's channel after the fault), or an RTP
    data packet was never sent again before the run ended (``error`` None, ``note`` says so).

When the retransmission that recovered a lost data packet is itself lost, the first fault ends
as the last of that chain does (``note`` names the next fault): recovered by the copy that got
through, or unrecovered with the channel's error.

Gaps no fault explains are ``unattributed``.  Retransmissions are grouped in bursts (PSNs
consecutive on one channel, as Go-Back-N sends them, or one channel's retransmissions of one
instant for one reason); a burst no fault claimed any part of is one unattributed entry.  Also
explained: an RNR retransmission after an RNR response, and a ``nak``/``sack`` burst answering a
TPNAK/TPSACK the peer sent (ResponseSent) after a fault on that data channel (one loss may be
recovered twice: by the timeout, then by the late TPNAK).  So are a ChannelError no fault led to and
a ``Discarded`` with reason ``bad_icrc``, ``malformed`` or ``bad_frame`` (the endpoint's) that no
``corrupt`` fault on a link into that node explains.  The ledger sees events, not deliveries: a
transfer that silently lost data shows up as the ``unrecovered`` fault behind it, or in the
caller's own check of what arrived.

:meth:`Ledger.report` gives the counts (``injected``: every record, tail drops included;
``recovered``, ``benign``, ``expected_loss``, ``unrecovered``, ``unattributed``), the counts by
kind and by recovery reason, the per-fault list and the unattributed events.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import islice

from ..dissect import decode
from ..record import LINKTYPE_ETHERNET
from ..stack.engine import ChannelError, Discarded, FaultInjected, ResponseSent, Retransmitted

__all__ = ["Fault", "Ledger", "summarize", "LOSSY", "OUTCOMES"]

#: fault kinds after which the frame does not arrive intact
LOSSY = frozenset({"loss", "blackout", "drop", "corrupt", "tail_drop"})
OUTCOMES = ("recovered", "benign", "expected_loss", "unrecovered")
_RTP_DATA = 1
_PSN_MOD = 1 << 24
_HALF = 1 << 23
_TAH_LAYERS = ("ub.btah", "ub.atah", "ub.btah_c", "ub.atah_c", "ub.atah_ns3")
#: Discarded reasons of a frame that failed its checks (``bad_frame``: the endpoint's, before
#: any channel)
_BAD_FRAME = ("bad_icrc", "malformed", "bad_frame")


def _first(v):
    return v[0] if isinstance(v, list) else v


def summary_from_record(layers, fields: dict, length: int | None = None) -> dict:
    """The ledger's frame summary from a decoded record's ``layers`` and ``fields``."""
    out: dict = {}
    if "ub.rtph" in layers:
        out["mode"] = "rtp"
        for k in ("tpopcode", "last", "srctpn", "dsttpn", "psn", "rspst", "rspinfo"):
            out[k] = _first(fields.get("ub.rtph." + k))
        name = _first(fields.get("ub.rtph.tpopcode_name"))
        if name is not None:
            out["tpopcode_name"] = name
    elif "ub.utph" in layers:
        out["mode"] = "utp"
    elif "ub.ctph" in layers:
        out["mode"] = "ctp"
    elif _first(fields.get("ub.lph.cfg")) == 9:
        out["mode"] = "bypass"
    else:
        out["mode"] = None
    for lay in _TAH_LAYERS:
        if lay in layers:
            out["taopcode"] = _first(fields.get(lay + ".taopcode"))
            name = _first(fields.get(lay + ".taopcode_name"))
            if name is not None:
                out["taopcode_name"] = name
            out["tassn"] = _first(fields.get(lay + ".ini_tassn"))
            break
    if length is not None:
        out["len"] = length
    return out


def summarize(frame, linktype: int = LINKTYPE_ETHERNET) -> dict:
    """A summary of ``frame`` (see :func:`summary_from_record`), decoded with ``ubpkt.decode``."""
    rec = decode(bytes(frame), linktype)
    return summary_from_record(rec["layers"], rec["fields"], len(frame))


@dataclass
class Fault:
    """One ledger record (see the module doc)."""
    id: int
    at: int
    link: str
    kind: str
    summary: dict
    detail: dict = field(default_factory=dict)
    src: str | None = None
    dst: str | None = None
    outcome: str | None = None
    by: str | None = None
    error: str | None = None
    note: str | None = None

    def as_dict(self) -> dict:
        d = {"id": self.id, "at": self.at, "link": self.link, "kind": self.kind,
             "summary": dict(self.summary), "outcome": self.outcome}
        if self.detail:
            d["detail"] = dict(self.detail)
        for k in ("by", "error", "note"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        return d


def _psn_le(a: int, b: int) -> bool:
    """``a`` at or before ``b`` in the 24-bit PSN space (within half the space)."""
    return (b - a) % _PSN_MOD < _HALF


def _node_ok(want, have) -> bool:
    return want is None or have is None or want == have


def _answers_gap_report(b: dict, reports: list, first_fault: dict) -> bool:
    """Whether a ``nak``/``sack`` burst answers a TPNAK/TPSACK the peer sent after a fault on
    that data channel (a late TPNAK after the timeout already resent the packets makes the
    sender go back once more: the same fault, recovered twice)."""
    if b["reason"] not in ("nak", "sack"):
        return False
    since = first_fault.get(b["channel"])
    if since is None:
        return False
    first = b["psns"][0]
    for at, node, ev in reports:
        if at > b["at"]:
            break
        if at < since or (node is not None and node == b["node"]):
            continue
        if ev.kind == "tpnak" and ev.psn in b["psns"]:
            return True
        if ev.kind == "tpsack" and _psn_le(ev.psn, first):
            return True
    return False


class _Timeline:
    """Entries by key, each list in time order (entries are lists: [at, node, event, claim...])."""

    def __init__(self):
        self._d: dict = {}

    def add(self, key, at: int, entry) -> None:
        t = self._d.get(key)
        if t is None:
            t = self._d[key] = ([], [])
        t[0].append(at)
        t[1].append(entry)

    def after(self, key, at: int, strict: bool = True):
        """The entries of ``key`` after ``at`` (at or after it when not ``strict``)."""
        t = self._d.get(key)
        if t is None:
            return ()
        i = (bisect_right if strict else bisect_left)(t[0], at)
        return islice(t[1], i, None)

    def count(self, key, at: int, node=None) -> int:
        """How many entries of ``key`` are at or before ``at`` (of ``node``, when entries carry
        one)."""
        t = self._d.get(key)
        if t is None:
            return 0
        n = bisect_right(t[0], at)
        if node is None:
            return n
        return sum(1 for e in t[1][:n] if not isinstance(e, list) or _node_ok(node, e[1]))

    def all(self):
        out = [e for t in self._d.values() for e in t[1]]
        out.sort(key=lambda e: e[0])
        return out


class _Events:
    """The engines' events, indexed for resolving."""

    def __init__(self):
        self.retx: list = []                # [at, node, event, claimed by, seq], in time order
        self.retx_key = _Timeline()         # (channel, psn) ->
        self.retx_chan = _Timeline()        # channel ->
        self.errors = _Timeline()           # channel -> [at, node, event, claimed by]
        self.responses = _Timeline()        # channel -> [at, node, event]
        self.bad = _Timeline()              # None -> bad-frame discards
        self.dups = _Timeline()             # psn -> duplicate discards
        self.lost = _Timeline()             # (channel, psn) -> lossy data faults
        self.extra = _Timeline()            # (channel, psn) -> duplicate data faults
        self.lost_responses: set = set()
        self.claims: dict = {}              # fault id -> the retransmission it claimed

    def add(self, at: int, node, ev) -> None:
        if isinstance(ev, Retransmitted):
            r = [at, node, ev, None, len(self.retx)]
            self.retx.append(r)
            self.retx_key.add((ev.channel, ev.psn), at, r)
            self.retx_chan.add(ev.channel, at, r)
        elif isinstance(ev, ChannelError):
            self.errors.add(ev.channel, at, [at, node, ev, None])
        elif isinstance(ev, ResponseSent):
            self.responses.add(ev.channel, at, [at, node, ev])
        elif isinstance(ev, Discarded):
            if ev.reason in _BAD_FRAME:
                self.bad.add(None, at, [at, node, ev, None])
            elif ev.reason == "duplicate":
                self.dups.add(ev.psn, at, [at, node, ev, None])

    @staticmethod
    def first(line: _Timeline, key, at: int, node, strict: bool = True):
        """The first unclaimed entry of ``key`` after ``at`` whose node fits."""
        for e in line.after(key, at, strict):
            if e[3] is None and _node_ok(node, e[1]):
                return e
        return None


class Ledger:
    """The fault ledger (see the module doc).  ``listener(fault)`` is called for every record
    (the simulator uses it to log a :class:`~ubpkt.stack.engine.FaultInjected` event)."""

    def __init__(self, listener=None):
        self.faults: list[Fault] = []
        self.unattributed: list[dict] = []
        self.listener = listener
        self._resolved = False

    def __len__(self) -> int:
        return len(self.faults)

    def record(self, at: int, link: str, kind: str, frame=None, *,
               linktype: int = LINKTYPE_ETHERNET, summary: dict | None = None,
               detail: dict | None = None, src: str | None = None,
               dst: str | None = None) -> Fault:
        """Record a fault on ``frame`` (the frame before damage; summarised here unless
        ``summary`` is given)."""
        if summary is None:
            summary = summarize(frame, linktype) if frame is not None else {"mode": None}
        f = Fault(len(self.faults) + 1, at, link, kind, summary, dict(detail or {}), src, dst)
        self.faults.append(f)
        self._resolved = False
        if self.listener is not None:
            self.listener(f)
        return f

    def event(self, f: Fault) -> FaultInjected:
        """The engine-contract event for a record."""
        return FaultInjected(f.at, f.id, f.kind, f.link, dict(f.summary))

    # -- resolving ------------------------------------------------------------------------------
    def resolve(self, events) -> "Ledger":
        """Give every fault its outcome from the engines' ``events`` (see the module doc) and
        collect the unattributed ones.  May be called again after more events."""
        evs = []
        for e in events:
            node, ev = e if isinstance(e, tuple) else (None, e)
            if not isinstance(ev, FaultInjected):
                evs.append((ev.at, len(evs), node, ev))
        evs.sort(key=lambda t: (t[0], t[1]))
        x = _Events()
        for at, _, node, ev in evs:
            x.add(at, node, ev)
        for f in self.faults:
            f.outcome = f.by = f.error = f.note = None
        x.lost_responses = {(f.summary.get("srctpn"), f.summary.get("psn"), f.at)
                            for f in self.faults if f.kind in LOSSY}
        for f in self.faults:               # the copies of each data packet that did not arrive
            s = f.summary
            if s.get("mode") == "rtp" and s.get("tpopcode") == _RTP_DATA:
                key = (s.get("srctpn"), s.get("psn"))
                if f.kind in LOSSY:
                    x.lost.add(key, f.at, f)
                elif f.kind == "duplicate":
                    x.extra.add(key, f.at, f)

        # lost data packets first: their recovery is the retransmission of that very PSN; then
        # lost responses (any PSN up to theirs); then reorders (whose recovery may be of a frame
        # that overtook them: a Go-Back-N receiver drops those) and duplicates
        def order(f):
            data = f.summary.get("tpopcode") == _RTP_DATA
            return (0 if f.kind in LOSSY and data else 1 if f.kind in LOSSY else 2, f.at, f.id)
        for f in sorted(self.faults, key=order):
            self._resolve_one(f, x)

        self._follow_chains(x)
        first_fault: dict = {}              # data channel -> time of its first fault
        for f in self.faults:
            ch = f.summary.get("srctpn")
            if f.kind == "mark":            # delivered: explains no gap report
                continue
            if f.summary.get("tpopcode") == _RTP_DATA and f.at < first_fault.get(ch, f.at + 1):
                first_fault[ch] = f.at
        # frames that overtook a reordered one: a Go-Back-N receiver dropped them as out of order,
        # so every later retransmission of theirs is the reorder's doing, not only the first
        overtakers: dict = {}
        for f in self.faults:
            if f.kind == "reorder":
                for o in f.detail.get("overtaken_by", ()):
                    key = (o.get("srctpn"), o.get("psn"))
                    overtakers[key] = min(overtakers.get(key, f.at), f.at)
        self.unattributed = self._unattributed(x, first_fault, overtakers)
        self._resolved = True
        return self

    def _resolve_one(self, f: Fault, x: "_Events") -> None:
        s = f.summary
        mode = s.get("mode")
        if f.kind == "mark":                # delivered, marked: benign, perhaps echoed
            f.outcome = "benign"
            if mode == "rtp" and s.get("tpopcode") == _RTP_DATA:
                for r in x.responses.after(s.get("dsttpn"), f.at, strict=False):
                    if r[2].kind.endswith("_cc") and _node_ok(f.dst, r[1]):
                        f.note = "echoed"
                        break
            return
        lossy = f.kind in LOSSY
        if f.kind == "corrupt":         # the receiver's bad-frame discard, if it reports one
            d = x.first(x.bad, None, f.at, f.dst, strict=False)
            if d is not None:
                d[3] = f.id
        if mode != "rtp":
            if lossy:
                f.outcome = "expected_loss"
                f.note = (f"{mode.upper()} has no transport retransmission" if mode
                          else "not a TP packet")
            else:
                f.outcome = "benign"
            return
        if f.kind == "duplicate" and s.get("tpopcode") == _RTP_DATA:
            f.outcome = "benign"
            d = x.first(x.dups, s.get("psn"), f.at, f.dst, strict=False)
            if d is not None:
                d[3] = f.id
                f.note = "discarded by the receiver"
            return
        if s.get("tpopcode") == _RTP_DATA:
            self._resolve_data(f, x)
        else:
            self._resolve_response(f, x)

    def _resolve_data(self, f: Fault, x: "_Events") -> None:
        s = f.summary
        ch, psn = s.get("srctpn"), s.get("psn")
        after = {psn: f.at}                 # PSN -> a recovery must come after this time
        for o in f.detail.get("overtaken_by", ()):
            if o.get("mode") == "rtp" and o.get("tpopcode") == _RTP_DATA and o.get("srctpn") == ch:
                after.setdefault(o.get("psn"), o.get("at", f.at))
        best = None
        for p, t in after.items():
            r = x.first(x.retx_key, (ch, p), t, f.src)
            if r is not None and (best is None or r[4] < best[4]):
                best = r
        if best is not None:
            best[3] = f.id
            f.outcome, f.by = "recovered", best[2].reason
            x.claims[f.id] = best
            return
        if f.kind not in LOSSY:             # held back, delivered: nothing to recover
            f.outcome = "benign"
            return
        # a lost packet whose PSN was sent again after the loss, by a retransmission another
        # fault already claimed (Go-Back-N resends a whole window: the same copy can answer a
        # reorder upstream and this loss): that copy carried it
        for e in x.retx_key.after((ch, psn), f.at, True):
            if _node_ok(f.src, e[1]):
                f.outcome, f.by = "recovered", e[2].reason
                f.note = "by a retransmission also charged to another fault"
                return
        if self._channel_error(f, x, f.src, ch):
            return
        key = (ch, psn)
        copies = (1 + x.retx_key.count(key, f.at, f.src) + x.extra.count(key, f.at))
        if copies > x.lost.count(key, f.at):
            f.outcome = "benign"
            f.note = "another copy of this packet arrived; none was needed again"
            return
        f.outcome = "unrecovered"
        f.note = "no retransmission or channel error before the run ended"

    def _follow_chains(self, x: "_Events") -> None:
        """A data packet lost, sent again, and that copy lost too: the first fault ends as the
        last of the chain does (recovered by the copy that got through, or the channel's
        error)."""
        nxt: dict = {}
        for f in self.faults:
            r = x.claims.get(f.id)
            if r is None or r[2].psn != f.summary.get("psn"):
                continue
            key = (f.summary.get("srctpn"), f.summary.get("psn"))
            for g in x.lost.after(key, r[0], strict=False):
                if g.at != r[0]:
                    break
                if g is not f and _node_ok(f.src, g.src):
                    nxt[f.id] = g
                    break
        for f in sorted(self.faults, key=lambda f: (f.at, f.id), reverse=True):
            g = nxt.get(f.id)
            if g is not None and g.outcome in ("recovered", "unrecovered"):
                f.outcome, f.by, f.error = g.outcome, g.by, g.error
                f.note = f"the retransmission was lost too (fault {g.id})"

    def _resolve_response(self, f: Fault, x: "_Events") -> None:
        s = f.summary
        psn = s.get("psn")
        ack_ch, data_ch = s.get("srctpn"), s.get("dsttpn")
        if psn is None:
            f.outcome = "benign"
            return
        cover = None
        for r in x.responses.after(ack_ch, f.at):
            at, node, ev = r[0], r[1], r[2]
            if (_node_ok(f.src, node) and ev.kind in ("tpack", "tpsack") and _psn_le(psn, ev.psn)
                    and (ev.channel, ev.psn, at) not in x.lost_responses):
                cover = at
                break
        for r in x.retx_chan.after(data_ch, f.at):
            if cover is not None and r[0] >= cover:
                break
            if r[3] is None and _node_ok(f.dst, r[1]) and _psn_le(r[2].psn, psn):
                r[3] = f.id
                f.outcome, f.by = "recovered", r[2].reason
                return
        if f.kind not in LOSSY:             # reordered, duplicated: it still arrived
            f.outcome = "benign"
            return
        if cover is not None:
            f.outcome = "benign"
            f.note = "covered by a later acknowledgement"
            return
        if self._channel_error(f, x, f.dst, data_ch):
            return
        # nothing waited on it: a later response (engines do not report every TPACK) served
        f.outcome = "benign"
        f.note = "no retransmission followed"

    @staticmethod
    def _channel_error(f: Fault, x: "_Events", node, ch) -> bool:
        for e in x.errors.after(ch, f.at, strict=False):
            if _node_ok(node, e[1]):
                e[3] = f.id
                f.outcome, f.error = "unrecovered", e[2].status
                f.note = e[2].message or None
                return True
        return False

    @staticmethod
    def _unattributed(x: "_Events", first_fault: dict, overtakers: dict) -> list[dict]:
        out: list[dict] = []
        gap_reports = [r for r in x.responses.all() if r[2].kind in ("tpnak", "tpsack")]
        rnr_times = [r[0] for r in x.responses.all() if r[2].kind == "rnr"]
        first_rnr = min(rnr_times) if rnr_times else None
        # bursts: runs of consecutive PSNs on one channel (Go-Back-N), or retransmissions of one
        # channel at the same instant for the same reason (a selective round); a burst is
        # explained when any retransmission in it is (a fault claimed it, or an RNR response
        # preceded it)
        bursts: list = []
        last: dict = {}             # (node, channel) -> the open burst
        for at, node, ev, claim, _seq in x.retx:
            key = (node, ev.channel)
            b = last.get(key)
            if b is None or not (ev.psn == (b["psns"][-1] + 1) % _PSN_MOD
                                 or (at == b["last"] and ev.reason == b["reason"])):
                b = last[key] = {"at": at, "node": node, "event": "Retransmitted",
                                 "channel": ev.channel, "psns": [], "reason": ev.reason,
                                 "explained": False, "last": at}
                bursts.append(b)
            b["psns"].append(ev.psn)
            b["last"] = at
            if claim is not None or (ev.reason == "rnr" and first_rnr is not None
                                     and first_rnr <= at) or \
                    overtakers.get((ev.channel, ev.psn), at) < at:
                b["explained"] = True
        for b in bursts:
            del b["last"]
            if not b.pop("explained") and not _answers_gap_report(b, gap_reports, first_fault):
                out.append(b)
        for at, node, ev, claim in x.errors.all():
            if claim is None:
                out.append({"at": at, "node": node, "event": "ChannelError",
                            "channel": ev.channel, "status": ev.status, "message": ev.message})
        for at, node, ev, claim in x.bad.all():
            if claim is None:
                out.append({"at": at, "node": node, "event": "Discarded", "channel": ev.channel,
                            "psn": ev.psn, "reason": ev.reason})
        out.sort(key=lambda d: d["at"])
        return out

    # -- reporting -------------------------------------------------------------------------------
    def report(self) -> dict:
        """Counts, per-kind and per-reason tallies, the faults and the unattributed events (call
        :meth:`resolve` first; unresolved faults have outcome None)."""
        counts = {k: 0 for k in OUTCOMES}
        by_kind: dict = {}
        recovered_by: dict = {}
        for f in self.faults:
            if f.outcome in counts:
                counts[f.outcome] += 1
            by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
            if f.outcome == "recovered":
                recovered_by[f.by] = recovered_by.get(f.by, 0) + 1
        return {"injected": len(self.faults), **counts, "unattributed": len(self.unattributed),
                "resolved": self._resolved, "by_kind": by_kind, "recovered_by": recovered_by,
                "faults": [f.as_dict() for f in self.faults],
                "unattributed_events": [dict(u) for u in self.unattributed]}
