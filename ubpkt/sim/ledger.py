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
    An RTP data packet that was lost (``loss``, ``blackout``, ``drop``, ``corrupt``,
    ``tail_drop``) or held back (``reorder``), retransmitted afterwards: the first unclaimed
    Retransmitted event of the sender, channel = the frame's SrcTPN, same PSN, at or after the
    fault.  A lost or corrupted TP response (TPACK, TPNAK, TPSACK...) is recovered when the data
    sender (the response's receiver, channel = its DstTPN) retransmits a PSN at or before the
    response's PSN before the receiver sends a later response that covers it.
``benign``
    A duplicate (the receiver discards it: noted when a ``Discarded(duplicate)`` is seen); a
    lost TP response covered by a later one (a later ResponseSent of the same channel with a PSN
    at or after it, itself not lost); a reorder that caused no retransmission.
``expected_loss``
    Anything lost from a mode with no transport reliability: UTP, CTP (reliability is the
    link's, below this simulated link), TP bypass, frames that are not TP packets.
``unrecovered`` (``error`` = the ChannelError's status, or None)
    The sender's channel gave up (a ChannelError on it after the fault), or nothing recovered
    the loss before the run ended (``error`` None; ``note`` says so).

Gaps no fault explains are ``unattributed``: a Retransmitted event that neither a fault claims
nor follows a claimed one in the same Go-Back-N run (PSNs consecutive on that channel), an RNR
retransmission with no RNR response before it, a ChannelError no fault led to, a
``Discarded(bad_icrc | malformed)`` no corruption explains.  A run of consecutive unattributed
retransmissions counts once.

:meth:`Ledger.report` gives the counts (``injected``: every record, tail drops included;
``recovered``, ``benign``, ``expected_loss``, ``unrecovered``, ``unattributed``), the counts by
kind and by recovery reason, the per-fault list and the unattributed events.
"""
from __future__ import annotations

from dataclasses import dataclass, field

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
        retx: list = []                                 # [at, node, ev, claimed_by]
        errors: list = []
        responses: list = []
        discards: list = []
        for at, _, node, ev in evs:
            if isinstance(ev, Retransmitted):
                retx.append([at, node, ev, None])
            elif isinstance(ev, ChannelError):
                errors.append([at, node, ev, None])
            elif isinstance(ev, ResponseSent):
                responses.append((at, node, ev))
            elif isinstance(ev, Discarded):
                discards.append([at, node, ev, None])
        for f in self.faults:
            f.outcome = f.by = f.error = f.note = None
        lost_responses = {(f.summary.get("srctpn"), f.summary.get("psn"), f.at)
                          for f in self.faults if f.kind in LOSSY}

        # losses first: their recovery is the retransmission of that very PSN; a reorder's
        # may be of a frame that overtook it (a Go-Back-N receiver drops those)
        for f in sorted(self.faults, key=lambda f: (f.kind not in LOSSY, f.at, f.id)):
            self._resolve_one(f, retx, errors, responses, discards, lost_responses)

        self.unattributed = self._unattributed(retx, errors, responses, discards)
        self._resolved = True
        return self

    def _resolve_one(self, f: Fault, retx, errors, responses, discards, lost_responses) -> None:
        s = f.summary
        mode = s.get("mode")
        lossy = f.kind in LOSSY
        if f.kind == "corrupt":
            for d in discards:          # the receiver's bad-ICRC discard, if it reports one
                ev = d[2]
                if (d[3] is None and d[0] >= f.at and _node_ok(f.dst, d[1])
                        and ev.reason in ("bad_icrc", "malformed")):
                    d[3] = f.id
                    break
        if mode != "rtp":
            if lossy:
                f.outcome = "expected_loss"
                f.note = (f"{mode.upper()} has no transport retransmission" if mode
                          else "not a TP packet")
            else:
                f.outcome = "benign"
            return
        if f.kind == "duplicate":
            f.outcome = "benign"
            for d in discards:
                ev = d[2]
                if (d[0] >= f.at and _node_ok(f.dst, d[1]) and ev.reason == "duplicate"
                        and ev.psn == s.get("psn") and d[3] is None):
                    d[3] = f.id
                    f.note = "discarded by the receiver"
                    break
            return
        if s.get("tpopcode") == _RTP_DATA:
            self._resolve_data(f, retx, errors)
        else:
            self._resolve_response(f, retx, errors, responses, lost_responses)

    def _resolve_data(self, f: Fault, retx, errors) -> None:
        s = f.summary
        ch = s.get("srctpn")
        after = {s.get("psn"): f.at}        # PSN -> a recovery must come after this time
        for o in f.detail.get("overtaken_by", ()):
            if o.get("mode") == "rtp" and o.get("tpopcode") == _RTP_DATA and o.get("srctpn") == ch:
                after.setdefault(o.get("psn"), o.get("at", f.at))
        for r in retx:
            ev = r[2]
            if (r[3] is None and ev.channel == ch and ev.psn in after and r[0] > after[ev.psn]
                    and _node_ok(f.src, r[1])):
                r[3] = f.id
                f.outcome, f.by = "recovered", ev.reason
                return
        if f.kind not in LOSSY:             # held back, delivered: nothing to recover
            f.outcome = "benign"
            return
        if self._channel_error(f, errors, f.src, ch):
            return
        f.outcome = "unrecovered"
        f.note = "no retransmission or channel error before the run ended"

    def _resolve_response(self, f: Fault, retx, errors, responses, lost_responses) -> None:
        s = f.summary
        psn = s.get("psn")
        ack_ch, data_ch = s.get("srctpn"), s.get("dsttpn")
        if f.kind not in LOSSY:             # reordered or delayed: the response still arrives
            f.outcome = "benign"
            return
        cover = None
        for at, node, ev in responses:
            if (at > f.at and ev.channel == ack_ch and _node_ok(f.src, node)
                    and ev.kind in ("tpack", "tpsack") and psn is not None
                    and _psn_le(psn, ev.psn)
                    and (ev.channel, ev.psn, at) not in lost_responses):
                cover = at
                break
        for r in retx:
            ev = r[2]
            if (r[3] is None and r[0] > f.at and (cover is None or r[0] < cover)
                    and ev.channel == data_ch and _node_ok(f.dst, r[1]) and psn is not None
                    and _psn_le(ev.psn, psn)):
                r[3] = f.id
                f.outcome, f.by = "recovered", ev.reason
                return
        if cover is not None:
            f.outcome = "benign"
            f.note = "covered by a later acknowledgement"
            return
        if self._channel_error(f, errors, f.dst, data_ch):
            return
        f.outcome = "unrecovered"
        f.note = "no later acknowledgement, retransmission or channel error before the run ended"

    @staticmethod
    def _channel_error(f: Fault, errors, node, ch) -> bool:
        for e in errors:
            ev = e[2]
            if e[0] >= f.at and ev.channel == ch and _node_ok(node, e[1]):
                e[3] = f.id
                f.outcome, f.error = "unrecovered", ev.status
                f.note = ev.message or None
                return True
        return False

    @staticmethod
    def _unattributed(retx, errors, responses, discards) -> list[dict]:
        out: list[dict] = []
        rnr_times = [at for at, _node, ev in responses if ev.kind == "rnr"]
        # Go-Back-N bursts: runs of consecutive PSNs on one channel; a burst is explained when
        # any retransmission in it is (a fault claimed it, or an RNR response preceded it)
        bursts: list = []
        last: dict = {}             # (node, channel) -> the open burst
        for at, node, ev, claim in retx:
            key = (node, ev.channel)
            b = last.get(key)
            if b is None or ev.psn != (b["psns"][-1] + 1) % _PSN_MOD:
                b = last[key] = {"at": at, "node": node, "event": "Retransmitted",
                                 "channel": ev.channel, "psns": [], "reason": ev.reason,
                                 "explained": False}
                bursts.append(b)
            b["psns"].append(ev.psn)
            if claim is not None or (ev.reason == "rnr" and any(t <= at for t in rnr_times)):
                b["explained"] = True
        for b in bursts:
            if not b.pop("explained"):
                out.append(b)
        for at, node, ev, claim in errors:
            if claim is None:
                out.append({"at": at, "node": node, "event": "ChannelError",
                            "channel": ev.channel, "status": ev.status, "message": ev.message})
        for at, node, ev, claim in discards:
            if claim is None and ev.reason in ("bad_icrc", "malformed"):
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
