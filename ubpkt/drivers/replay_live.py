"""``ubpkt replay --as-initiator``: play the initiator side of a captured conversation against a
live peer (``ubpkt serve``, another UB implementation) and compare what the peer answers with
what the capture's other side answered, field by field (:mod:`ubpkt.drivers.compare`).

Which frames are played.  The *initiator* is the source (address and UDP port; the CNAs for
native frames) of the first transaction request in the capture, or ``side``.  Its RTP data
packets (and UTP/CTP packets) are sent again, with their PSNs, rewritten (:mod:`.rewrite`:
``tpnmap``/``psn_rebase`` to match the peer's channel set-up, then put on the live socket
pair so the ICRC is the one the peer computes, UB 2.0 §5.3.7).  Its TP responses are *not*
replayed: they acknowledged the captured answers, so the TPACK of every RTP data packet the
live peer sends is generated here from the live packet (PSN, TPMSN, the TPN pair swapped; UB
2.0 §6.2.1), one per data packet (cumulative acknowledgement allows that).

Pacing by the conversation.  Frames go out in capture order; before each one, the answers the
capture shows *before* it (from the peer) are awaited, at most ``timeout_s`` per wait.  After
the last one, the remaining answers are awaited the same way, then ``settle_s`` more for
anything unexpected.

Pairing (grammar ``TP_MATCH``/``TA_MATCH``).  A TP response (TPACK/TPNAK/TPSACK) pairs with the
captured response of the same channel (SrcTPN/DstTPN) and PSN; a TA response (TAACK, read or
atomic response) with the captured one of the same INI_TASSN, INI_RC_Type and INI_RC_ID.  The
expected answers are the captured ones rewritten the same way (so TPNs and PSNs are in the live
channel's space).  A paired answer is compared with :func:`~.compare.field_differences`,
ignoring the dialect's default set (:func:`~.compare.ignore_for`: carrier fields, the ICRC
value; ns-3-UB adds credits, congestion and routing) plus ``ignore``.  A live answer with no
captured counterpart left is ``unexpected``.

A captured request is *answered* when every captured answer linked to it (its TP response by
PSN, its TA response by TASSN) came back live; requests the capture shows no answer for (a
segment covered by a later cumulative TPACK) are counted ``no_answer_expected``.
"""
from __future__ import annotations

import os
import select
import time
from dataclasses import dataclass, field, replace

from ..capture.pcap import open_capture
from ..dissect import decode
from ..formats.grammar import TA_MATCH, TA_PAIRS, TP_PAIRS, TP_RESPONSES_NS3
from ..stack.network import Framer, Path
from .compare import field_differences, ignore_for, summarize
from .replay import CARRIAGES, DIALECTS
from .rewrite import Rewriter, RewriteSpec
from .udp import UdpPath, open_udp_socket, pseudo_header, udp_profile

__all__ = ["LiveConfig", "run_live", "SCHEMA", "endpoints"]

SCHEMA = "ubpkt.replay-initiator/1"
_TP_DATA = frozenset(TP_PAIRS)
_TP_RESP = frozenset(x for v in TP_PAIRS.values() for x in v) | frozenset(TP_RESPONSES_NS3)
_TA_REQ = frozenset(TA_PAIRS)
_TA_RESP = frozenset(TA_PAIRS.values())
#: (address, port) record keys naming a packet's source and destination, in the order tried
_SRC = (("ip.src", "udp.srcport"), ("ipv6.src", "udp.srcport"), ("ub.cna16.scna", None),
        ("ub.cna24.scna", None))
_DST = (("ip.dst", "udp.dstport"), ("ipv6.dst", "udp.dstport"), ("ub.cna16.dcna", None),
        ("ub.cna24.dcna", None))


@dataclass
class LiveConfig:
    pcap: str
    peer: tuple
    bind: tuple = ("127.0.0.1", 0)
    dialect: str = "spec"
    rewrite: RewriteSpec = field(default_factory=RewriteSpec)
    side: str | None = None
    timeout_s: float = 2.0
    settle_s: float = 0.1
    ignore: tuple = ()
    #: a second capture holding the other side's frames (merged with ``pcap`` by time, as
    #: mergecap does): e.g. the ns-3-UB captures, one per port direction
    answers: str | None = None


def _end(fields: dict, keys) -> tuple | None:
    for a, p in keys:
        if a in fields:
            return (str(fields[a]), fields.get(p) if p else None)
    return None


def endpoints(fields: dict) -> tuple:
    """(source, destination) of a record, each ``(address, port or None)``."""
    return _end(fields, _SRC), _end(fields, _DST)


def _ta(fields: dict):
    """(TA header base, TAOpcode) of a record, or (None, None)."""
    for base in ("ub.btah", "ub.atah"):
        opc = fields.get(base + ".taopcode")
        if isinstance(opc, int):
            return base, opc
    return None, None


def _tp_opcode(fields: dict):
    opc = fields.get("ub.rtph.tpopcode")
    return opc if isinstance(opc, int) else None


def _ta_key(fields: dict, base: str) -> tuple:
    return ("ta",) + tuple(fields.get(f"{base}.{k}") for k in TA_MATCH)


def _tp_key(fields: dict, swap: bool = False) -> tuple:
    s, d = fields.get("ub.rtph.srctpn"), fields.get("ub.rtph.dsttpn")
    if swap:
        s, d = d, s
    return ("tp", s, d, fields.get("ub.rtph.psn"))


def answer_keys(fields: dict) -> list:
    """The pairing keys of an answer (module doc): a TP response's, a TA response's."""
    keys = []
    if _tp_opcode(fields) in _TP_RESP:
        keys.append(_tp_key(fields))
    base, opc = _ta(fields)
    if base is not None and opc in _TA_RESP:
        keys.append(_ta_key(fields, base))
    return keys


def _label(idx: int, fields: dict) -> str:
    tp = fields.get("ub.rtph.tpopcode_name")
    base, _ = _ta(fields)
    ta = fields.get(f"{base}.taopcode_name") if base else None
    parts = [f"frame {idx}"]
    if ta:
        parts.append(f"{ta} TASSN {fields.get(base + '.ini_tassn')}")
    if tp and (not ta or tp != "RTP_Data"):
        parts.append(f"{tp} PSN {fields.get('ub.rtph.psn')}")
    elif tp:
        parts.append(f"PSN {fields.get('ub.rtph.psn')}")
    return " ".join(parts)


def _side_matches(side: str, end) -> bool:
    if end is None:
        return False
    host, sep, port = side.rpartition(":") if ":" in side else (side, "", "")
    if host != end[0]:
        return False
    return not sep or str(end[1]) == port


class _Conversation:
    """The capture split into what is played and what is expected (module doc)."""

    def __init__(self, cfg: LiveConfig, local: tuple):
        d = DIALECTS[cfg.dialect]
        self.dialect = d
        self.carry = CARRIAGES[d.carriage]
        self.on_udp = d.carriage == "udp_payload"
        raw = []
        self.skipped: dict = {}
        ports = {cfg.peer[1], local[1]}
        files = [(cfg.pcap, "")]
        if cfg.answers:
            files.append((cfg.answers, os.path.basename(str(cfg.answers)) + "#"))
        timed = []
        for fi, (path, tag) in enumerate(files):
            with open_capture(path) as cap:
                for n, pkt in enumerate(cap, 1):
                    if pkt.linktype not in d.linktypes:
                        k = f"linktype_{pkt.linktype}"
                        self.skipped[k] = self.skipped.get(k, 0) + 1
                        continue
                    label = n if not tag else f"{tag}{n}"
                    timed.append((pkt.time_ns, fi, len(timed),
                                  (label, pkt.linktype, bytes(pkt.data), fi)))
                    f = decode(timed[-1][3][2], pkt.linktype, d.profile)["fields"]
                    ports.update(v for k, v in f.items()
                                 if k in ("udp.srcport", "udp.dstport") and isinstance(v, int))
        if cfg.answers:         # one conversation from two captures: by time, then file order
            timed.sort(key=lambda t: (t[0], t[1], t[2]))
        raw = [t[3] for t in timed]
        # the capture is one conversation: every UDP port in it carries UB (the ports of a
        # peer listening elsewhere than 4792, UB 2.0 §5.2.3)
        self.profile = prof = udp_profile(d.profile, *sorted(ports - {0}))
        frames = [(n, lt, data, decode(data, lt, prof), fi) for n, lt, data, fi in raw]
        init = None
        if cfg.answers:
            # two captures, one per direction: the first is the initiator's transmit side
            # (its node may send with several source identities: an IP address for URMA, a
            # CNA for load/store), the second the peer's
            init = ("capture", str(cfg.pcap))
        for _, _, _, rec, _fi in (() if init else frames):
            src, _dst = endpoints(rec["fields"])
            if cfg.side is not None:
                if _side_matches(cfg.side, src):
                    init = src
                    break
                continue
            _base, opc = _ta(rec["fields"])
            if opc in _TA_REQ and _tp_opcode(rec["fields"]) not in _TP_RESP:
                init = src
                break
        if init is None:
            raise ValueError("no initiator side in the capture" + (
                f" (no frame from {cfg.side})" if cfg.side else
                " (no transaction request)"))
        self.initiator = init
        up = UdpPath(src_ip=local[0], dst_ip=cfg.peer[0], udp_sport=local[1],
                     udp_dport=cfg.peer[1]) if self.on_udp else None
        self.path = up
        base = replace(cfg.rewrite, fix_icrc=True)
        rw = Rewriter(base, prof)
        self.steps: list = []       # ("send", idx, datagram, fields) | ("expect", idx, record)
        self.own_acks = 0
        self.own_responses = 0
        self.other = 0
        for idx, lt, data, rec, fi in frames:
            f = rec["fields"]
            if _tp_opcode(f) is None and _ta(f)[1] is None:
                # link-local frames (credit returns, PFC; UB 2.0 §4.6): no UB conversation
                self.skipped["link_control"] = self.skipped.get("link_control", 0) + 1
                continue
            src, dst = endpoints(f)
            if cfg.answers:
                src, dst = (init, None) if fi == 0 else (None, init)
            if src == init:
                if _tp_opcode(f) in _TP_RESP:
                    self.own_acks += 1          # regenerated live (module doc)
                    continue
                if _ta(f)[1] in _TA_RESP:
                    # the initiator answering the other side's requests: not what is played
                    self.own_responses += 1
                    continue
                rw.spec = replace(base, udp_path=up)
                out = rw.rewrite(data, lt)
                orec = decode(out, lt, prof)
                dg = self.carry(out, orec)
                if dg is None:
                    self.skipped["not_carried"] = self.skipped.get("not_carried", 0) + 1
                    continue
                self.steps.append(("send", idx, bytes(dg), orec["fields"]))
            elif dst == init:
                rw.spec = replace(base, udp_path=up.reverse() if up else None)
                out = rw.rewrite(data, lt)
                self.steps.append(("expect", idx, decode(out, lt, prof)))
            else:
                self.other += 1
        self.rewrite_stats = rw.stats


def run_live(cfg: LiveConfig) -> dict:
    """Play the conversation of ``cfg.pcap`` against ``cfg.peer`` (module doc); the report
    (schema ``ubpkt.replay-initiator/1``)."""
    if cfg.dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {cfg.dialect!r}")
    sock = open_udp_socket(cfg.bind)
    try:
        sock.setblocking(False)
        return _Live(cfg, sock).run()
    finally:
        sock.close()


class _Live:
    def __init__(self, cfg: LiveConfig, sock):
        self.cfg = cfg
        self.sock = sock
        self.local = sock.getsockname()
        self.conv = _Conversation(cfg, self.local)
        d = self.conv.dialect
        self.profile = self.conv.profile
        self.ignore = ignore_for(cfg.dialect, extra=cfg.ignore)
        self.framer = self._ack_framer()
        # expected answers: key -> [(step position, idx, record)] in capture order
        self.expected: dict = {}
        self.pending_at: list = []      # capture positions of answers not yet received
        self.got: set = set()           # capture positions of answers received
        self.links: dict = {}           # request position -> set of answer positions
        self.differences: list = []
        self.unexpected: list = []
        self.acks_sent = 0
        self.other_direction = 0        # captured peer frames of the other direction
        self.matched: set = set()       # keys of the answers paired so far
        self.retransmitted = 0          # live answers that repeated a paired one
        self.received = 0
        self.bad = 0
        self._index()

    def _ack_framer(self) -> Framer:
        if self.conv.on_udp:
            return Framer(self.conv.path, self.profile)
        # a native frame: the addressing of the captured initiator's first RTP packet (the IP
        # form, UB 2.0 §5.2.3, or a CNA NTH), in the initiator's direction
        for step in self.conv.steps:
            if step[0] == "send" and "ip.src" in step[3] and "ub.rtph.psn" in step[3]:
                f = step[3]
                return Framer(Path(kind="ipv4", npi=int(f.get("ub.nth.npi", 1)),
                                   src_ip=f["ip.src"], dst_ip=f["ip.dst"],
                                   udp_sport=int(f.get("udp.srcport", 0)),
                                   udp_dport=int(f.get("udp.dstport", 0))), self.profile)
        for step in self.conv.steps:
            if step[0] == "send":
                f = step[3]
                for w in ("cna16", "cna24"):
                    if f"ub.{w}.scna" in f:
                        return Framer(Path(kind=w, scna=f[f"ub.{w}.scna"],
                                           dcna=f[f"ub.{w}.dcna"]), self.profile)
        return Framer(Path(kind="cna16"), self.profile)

    def _index(self) -> None:
        """Expected answers by key, and which requests each one answers (module doc)."""
        req_by_tp: dict = {}
        req_by_ta: dict = {}
        for pos, step in enumerate(self.conv.steps):
            if step[0] == "send":
                f = step[3]
                if _tp_opcode(f) in _TP_DATA:
                    req_by_tp.setdefault(_tp_key(f, swap=True), []).append(pos)
                base, opc = _ta(f)
                if opc in _TA_REQ:
                    req_by_ta.setdefault(_ta_key(f, base), []).append(pos)
                continue
            rec = step[2]
            f = rec["fields"]
            keys = answer_keys(f)
            linked = [r for k in keys if k[0] in ("tp", "ta")
                      for r in (req_by_tp if k[0] == "tp" else req_by_ta).get(k, ())]
            if not linked and (_tp_opcode(f) in _TP_RESP or
                               (_ta(f)[1] in _TA_REQ and _tp_opcode(f) not in _TP_RESP)):
                # the other side's own requests, and TP responses to packets not played (the
                # initiator's answers to those requests): another conversation direction
                self.conv.steps[pos] = ("ignored",) + step[1:]
                self.other_direction += 1
                continue
            if not keys:
                # a peer packet that answers nothing here (a CNP...): still expected, paired
                # by its whole TP key
                keys = [("other", _tp_opcode(f), f.get("ub.rtph.psn"))]
            self.expected.setdefault(keys[-1], []).append(pos)
            for r in linked:
                self.links.setdefault(r, set()).add(pos)

    # -- receive --------------------------------------------------------------------------------
    def _poll(self, until: float) -> None:
        """Wait until a datagram arrives or ``until`` (monotonic seconds); handle all that
        wait."""
        left = until - time.monotonic()
        r, _, _ = select.select([self.sock], [], [], max(left, 0))
        if r:
            while True:
                try:
                    data, addr = self.sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    self.bad += 1
                    break
                self._handle(data, addr)
            return

    def _frame(self, data: bytes, addr) -> tuple:
        d = self.conv.dialect
        if self.conv.on_udp:
            return pseudo_header(addr[0], addr[1], self.local[0], self.local[1],
                                 len(data)) + data, d.linktypes[0]
        return data, d.linktypes[0]

    def _handle(self, data: bytes, addr) -> None:
        if tuple(addr) != tuple(self.cfg.peer):
            return
        self.received += 1
        frame, lt = self._frame(data, addr)
        rec = decode(frame, lt, self.profile)
        f = rec["fields"]
        if _tp_opcode(f) in _TP_DATA and f.get("ub.icrc.status", "good") == "good":
            self._ack(f)
        keys = answer_keys(f) or [("other", _tp_opcode(f), f.get("ub.rtph.psn"))]
        lst = self.expected.get(keys[-1])
        if not lst and keys[-1] in self.matched:
            # the same answer again: the peer retransmitted it (its timer fired before our
            # acknowledgement arrived, UB 2.0 §6.4.2.1); counted, not compared again
            self.retransmitted += 1
            return
        if not lst:
            self.unexpected.append({"key": list(keys[-1]), "packet": _label(0, f).replace(
                "frame 0 ", "live "), "layers": rec["layers"]})
            return
        pos = lst.pop(0)
        self.matched.add(keys[-1])
        self.got.add(pos)
        step = self.conv.steps[pos]
        want = step[2]
        self.differences += field_differences(want, rec, ignore=self.ignore,
                                              packet=_label(step[1], want["fields"]))

    def _ack(self, f: dict) -> None:
        """The TPACK of a live RTP data packet (UB 2.0 §6.2.1; module doc)."""
        ack = self.framer.tp_response(f["ub.rtph.dsttpn"], f["ub.rtph.srctpn"],
                                      f["ub.rtph.psn"], tpmsn=f.get("ub.rtph.tpmsn", 0))
        carry = self.conv.carry
        dg = carry(ack, decode(ack, self.conv.dialect.linktypes[0], self.profile)) \
            if self.conv.on_udp else ack
        try:
            self.sock.sendto(dg, self.cfg.peer)
            self.acks_sent += 1
        except OSError:
            self.bad += 1

    # -- the run --------------------------------------------------------------------------------
    def _await(self, positions: list) -> None:
        until = time.monotonic() + self.cfg.timeout_s
        while any(p not in self.got for p in positions):
            if time.monotonic() >= until:
                return
            self._poll(until)

    def run(self) -> dict:
        t0 = time.perf_counter()
        steps = self.conv.steps
        before: list = []
        sent = errors = 0
        for pos, step in enumerate(steps):
            if step[0] != "send":
                if step[0] == "expect":
                    before.append(pos)
                continue
            self._await(before)
            self._poll(time.monotonic())
            try:
                self.sock.sendto(step[2], self.cfg.peer)
                sent += 1
            except (BlockingIOError, InterruptedError):
                select.select([], [self.sock], [], self.cfg.timeout_s)
                try:
                    self.sock.sendto(step[2], self.cfg.peer)
                    sent += 1
                except OSError:
                    errors += 1
            except OSError:
                errors += 1
        self._await(before)
        end = time.monotonic() + self.cfg.settle_s
        while time.monotonic() < end:
            self._poll(end)
        return self._report(sent, errors, time.perf_counter() - t0)

    def _report(self, sent: int, errors: int, wall: float) -> dict:
        steps = self.conv.steps
        requests = [p for p, s in enumerate(steps) if s[0] == "send"]
        answered = no_answer = 0
        unanswered = []
        for p in requests:
            linked = self.links.get(p)
            if not linked:
                no_answer += 1
            elif linked <= self.got:
                answered += 1
            else:
                missing = sorted(linked - self.got)
                unanswered.append({"packet": _label(steps[p][1], steps[p][3]),
                                   "missing": [_label(steps[m][1], steps[m][2]["fields"])
                                               for m in missing]})
        missing_answers = [_label(s[1], s[2]["fields"]) for p, s in enumerate(steps)
                           if s[0] == "expect" and p not in self.got]
        c = self.conv
        return {
            "schema": SCHEMA,
            "pcap": str(self.cfg.pcap),
            "peer": f"{self.cfg.peer[0]}:{self.cfg.peer[1]}",
            "local": f"{self.local[0]}:{self.local[1]}",
            "dialect": self.cfg.dialect,
            "initiator": f"{c.initiator[0]}" + (f":{c.initiator[1]}"
                                                if c.initiator[1] is not None else ""),
            "requests": len(requests),
            "answered": answered,
            "no_answer_expected": no_answer,
            "unanswered": unanswered,
            "expected_answers": sum(1 for s in steps if s[0] == "expect"),
            "missing_answers": missing_answers,
            "received": self.received,
            "unexpected": self.unexpected,
            "retransmitted_answers": self.retransmitted,
            "differences": self.differences,
            "differences_by_field": summarize(self.differences),
            "ignored_fields": list(self.ignore),
            "tpacks_generated": self.acks_sent,
            "captured_tpacks_not_replayed": c.own_acks,
            "captured_responses_not_replayed": c.own_responses,
            "peer_frames_of_the_other_direction": self.other_direction,
            "frames_of_other_conversations": c.other,
            "skipped": c.skipped,
            "sent": sent,
            "send_errors": errors + self.bad,
            "rewrite": {**self.cfg.rewrite.as_dict(), **c.rewrite_stats},
            "timeout_s": self.cfg.timeout_s,
            "wall_s": round(wall, 6),
        }
