"""The transaction target (responder), sans-IO (UB 2.0 §7.3, §7.4).

``on_request(ta, now, last=..., compact=...)`` takes one request packet's TA bytes (BTAH onward,
as the transport delivers them) and the RTPH Last flag, reads the headers the grammar lists for
the TAOpcode (:func:`ubpkt.formats.grammar.ta_sequence`, by field name from the declarations),
checks the access (:meth:`Memory.access <ubpkt.stack.transaction.memory.Memory.access>`),
executes, and hands the response to ``submit_response`` as
:class:`~ubpkt.stack.transport.TaSegment` s:

* Write, Writeback, Write_with_be/Writeback_with_be (bytes whose BE bit is 0 are left alone,
  §7.2.10), Write_with_notify (the data, then the 8 notification bytes, as carried, at the
  NTFETAH address checked with the NTFETAH token, §7.2.9), Write_with_immediate (the data and a
  receive completion with the immediate data; it consumes a posted receive, §7.4.3.3): a TAACK.
  Successful TAACKs of contiguous TASSNs from one initiator are aggregated (ATAH RSPINFO counts
  the extra ones, §7.3.1.1) up to ``tuning.taack_aggregate``, at most until the request's last
  packet (RTPH Last) and at most :data:`TAACK_HOLD_NS` after the first one was held (an initiator
  may pause in the middle of a transaction: ``next_deadline``/``handle_timeout``, or ``flush``).
  Error TAACKs are never aggregated; the compact ATAH has no RSPINFO and is never aggregated.
* Read: Read_response packets of at most ``tuning.mtu`` bytes, all with the request's TASSN
  (§7.4.2.2), the last one flagged ``last``; an error is one Read_response with no data.
* Atomics: an Atomic_response with the old value (none for Atomic_store, §7.4.2.3.3), executed
  exactly once: the response of each atomic is kept, keyed by (INI_RC_Type, INI_RC_ID, TASSN),
  for the last ``tuning.atomic_replay_entries`` atomics; a request that repeats one (same
  opcode, address, length, token and operands; the Retry bit may differ) gets the kept response
  again and is not executed (a transport retransmission after a lost response, §7.3.1.1).
* Send / Send_with_immediate: the message goes into the oldest receive buffer posted on the
  target queue (MTETAH.TGT_TC_ID; ``post_recv``); the TAACK and the receive completion follow
  its last packet (§7.4.3.1).  No buffer posted: ``on_request`` returns ``"rnr"`` and changes
  nothing; the transport answers RNR and sends the packet again later (UB 2.0 §6.2.1).
* Prefetch_tgt: checked, nothing else, no response (§7.4.4.1).
* Management (TAOpcode 0x10, full BTAH only; §7.4.5.1, §10.4.3.3): a configuration read or
  write (MGMTETAH Code 2, Sub Code 0..3) runs on ``config`` (a
  :class:`~ubpkt.stack.transaction.config.ConfigSpace`) and is answered by a management
  response message, never a TAACK: BTAH TAOpcode 0x10 with the request's INI_TASSN (the MSN),
  INI_RC_Type and INI_RC_ID (the message queue index), the MGMTETAH with the request's Code and
  Sub Code, Rsp 1 and the status (§10.4.3.1 error codes), and the 16-byte ``ub.cfg_rsp`` PDU
  (the DW read; 0 for a write or an error).  Other Codes and the reserved Sub Codes are
  answered ``Bad_Code`` with no PDU; a configuration PDU that is not 16 bytes ``Bad_Length``;
  TV_EN set (it must be 0) ``Invalid_Parameter``.  A management message with Rsp 1 is a
  response for this endpoint's initiator: it goes to ``on_mgmt_response(ta, now)`` (counted
  and dropped without one).  Compact management packets are dropped as malformed: the compact
  BTAH has no INI_RC_ID to answer to.

Sequence contexts (ROT, UB 2.0 §7.3.3.3): a full-form request with BTAH.Alloc 1 applies for an
SC for its (INI_RC_Type, INI_RC_ID).  The target keeps at most ``sc_entries`` SCs (constructor,
else ``tuning.sc_entries``, else :data:`SC_ENTRIES`); an RC that already holds one gets the same
SCID again (a retransmitted application).  Every response packet to the applying request carries
ATAH.SV 1 and the SCID in ATAH.INI_TASSN; none free: SV 0 and the request's own TASSN (the
initiator falls back to ROI).  The answer to an application is never aggregated with other
TAACKs.  ``assign_sc`` provisions an SC statically.  A request with INI_RC_Type Target_SC (2)
names the SC in INI_RC_ID: it is executed as if its RC had sent it, and its responses carry the
mapped RC's INI_RC_Type and INI_RC_ID; an unknown SCID is answered Unsupported.
Ordering inside an SC is method 2 of §7.3.3.3: the SC tracks its RC's TASSNs (both those sent
under the SCID and under the RC's own id, from the applying TASSN on); a request marked SO
(ODR[1:0] = SO) is held until every earlier TASSN of the SC has executed (an earlier TASSN not
seen yet might be an RO/SO one), then run; NO and RO requests run as they arrive.  A TASSN
counts as executed once its last packet ran (a Send's earlier packets share it).
``stats["sc_held"]`` counts the held requests.

Errors and their ATAH statuses are listed in :mod:`ubpkt.stack.transaction.ops`.  An error
response changes no byte of memory.
"""
from __future__ import annotations

import re
from collections import OrderedDict, deque

from ...formats import HEADERS
from ...formats import enums as E

from ...formats.grammar import TA_REQUEST_HEADERS, resolve, ta_response_opcode, ta_sequence
from ...profile import SPEC, Profile, TransactionTuning
from ..transport import TaSegment
from .config import ConfigSpace
from .memory import Memory, Perm
from .ops import (ATOMIC_SIZES, BE_SIZES, LOCAL_LENGTH_ERROR, MGMT_CODE_CFG, MGMT_OPCODE,
                  OPCODE_OP, OPERAND_ORDER, ORIGIN_ORDER, REMOTE_ACCESS_ERROR, STATUS_RSP,
                  SUCCESS, UNSUPPORTED, RecvCompleted, TaLayout, TransactionError, atomic_apply)

__all__ = ["Target", "RNR", "TAACK_HOLD_NS", "SC_ENTRIES"]

#: sequence contexts a target provides by default (ROT, §7.3.3.3)
SC_ENTRIES = 16
_SC_TYPE = {v: k for k, v in E.INI_RC_TYPE.items()}["Target_SC"]
_SO = {v: k for k, v in E.ODR.items()}["SO"]
#: BTAH.Alloc in byte 4 (DW1 bit 24, full form)
_ALLOC_BIT = 1 << (HEADERS["ub.btah"].bits - 1 - HEADERS["ub.btah"].offsets[
    HEADERS["ub.btah"].index["alloc"]]) % 8
#: BTAH.INI_RC_Type in byte 5 (full form): its mask and the Target_SC value there
_RCT_SHIFT = TaLayout(["ub.btah"]).shift["btah.ini_rc_type"] - 16
_RCT_MASK, _RCT_SC = 3 << _RCT_SHIFT, _SC_TYPE << _RCT_SHIFT

#: what ``on_request`` returns when a Send finds no receive buffer
RNR = "rnr"
#: the longest a TAACK is held back for aggregation (ns; ``tuning.taack_hold_ns`` if it exists)
TAACK_HOLD_NS = 2_000

#: the responses, as the grammar pairs them with their requests (UB 2.0 §7.1 Tables 7-1/7-3)
_TAACK, _READ_RSP, _ATOMIC_RSP = (
    ta_response_opcode(next(k for k, v in E.TAOPCODE.items() if v == name))
    for name in ("Write", "Read", "Atomic_fetch_add"))
_RUN = re.compile(b"1+")
_R, _W, _A = int(Perm.READ), int(Perm.WRITE), int(Perm.ATOMIC)

def _flag_bit(name: str) -> int:
    """The mask of a one-bit BTAH DW0 field in byte 1 (both forms share DW0)."""
    h = HEADERS["ub.btah"]
    off = h.offsets[h.index[name]]
    assert off // 8 == 1
    return 0x80 >> (off % 8)

_TV_BIT, _UD_BIT = _flag_bit("tv_en"), _flag_bit("ud_flag")
_MST = {v: k for k, v in E.MGMT_STATUS.items()}
_M_BAD_CODE, _M_BAD_LENGTH, _M_INVALID = (_MST["Bad_Code"], _MST["Bad_Length"],
                                          _MST["Invalid_Parameter"])
#: the configuration request / response PDUs (UB 2.0 §10.4.3.3 Fig 10-38/10-39)
_CFG_REQ = TaLayout(["ub.cfg_req"])
_CFG_PDU_BYTES = _CFG_REQ.size

class _Queue:
    """A target queue (jetty / JFR, §8.2.2): posted receive buffers and its token value."""
    __slots__ = ("tcid", "tokenvalue", "depth", "rqes")

    def __init__(self, tcid, tokenvalue, depth):
        self.tcid = tcid
        self.tokenvalue = tokenvalue
        self.depth = depth
        self.rqes: deque = deque()

class _SC:
    """A sequence context: its RC, the first TASSN not executed yet (``low``), the later
    TASSNs executed, the SO packets held (TASSN -> [(ta, last)])."""
    __slots__ = ("scid", "rc", "low", "done", "held")

    def __init__(self, scid, rc, low):
        self.scid = scid
        self.rc = rc
        self.low = low
        self.done: set = set()
        self.held: dict = {}

class _Plan:
    """How to read the requests of one (TAOpcode, TV_EN, UD_Flag, form)."""
    __slots__ = ("layout", "size", "be", "handler", "s", "m")

    def __init__(self, layout: TaLayout, be: bool, handler):
        self.layout = layout
        self.size = layout.size
        self.be = be
        self.handler = handler
        self.s = layout.shift
        self.m = layout.mask

class Target:
    """See the module doc.  ``submit_response(seg)``: hand a response
    :class:`~ubpkt.stack.transport.TaSegment` to the transport.  ``rc_id``: this target's own
    context id (kept for the endpoint; responses echo the request's INI_RC_ID).  ``config``:
    the configuration space management requests use (default: an empty
    :class:`~ubpkt.stack.transaction.config.ConfigSpace` with Entity 0).
    ``on_mgmt_response(ta, now)``: where management responses (MGMTETAH.Rsp 1) go, e.g.
    :meth:`Initiator.on_mgmt_response
    <ubpkt.stack.transaction.initiator.Initiator.on_mgmt_response>`."""

    def __init__(self, *, memory: Memory, tuning: TransactionTuning | None = None,
                 submit_response, rc_id: int = 0, profile: Profile = SPEC,
                 config: ConfigSpace | None = None, on_mgmt_response=None,
                 sc_entries: int | None = None):
        self.memory = memory
        self.profile = profile
        self.tuning = tuning or profile.tuning.transaction
        self.submit_response = submit_response
        self.rc_id = rc_id
        self.config = config if config is not None else ConfigSpace()
        self.on_mgmt_response = on_mgmt_response
        self.mtu = self.tuning.mtu
        self.aggregate = max(1, min(self.tuning.taack_aggregate, 32))   # RSPINFO has 5 bits
        self.replay_entries = self.tuning.atomic_replay_entries
        self.hold_ns = getattr(self.tuning, "taack_hold_ns", TAACK_HOLD_NS)
        self.across = getattr(self.tuning, "taack_across_transactions", False)
        self.stats = {"requests": 0, "responses": 0, "taacks": 0, "taacks_aggregated": 0,
                      "errors": 0, "rnr": 0, "replayed": 0, "malformed": 0, "prefetch": 0,
                      "mgmt_requests": 0, "mgmt_responses": 0, "mgmt_dropped": 0,
                      "sc_allocated": 0, "sc_refused": 0, "sc_held": 0, "sc_unknown": 0}
        self.sc_entries = sc_entries if sc_entries is not None else \
            getattr(self.tuning, "sc_entries", SC_ENTRIES)
        self._scs: dict[int, _SC] = {}      # SCID -> SC
        self._sc_of: dict = {}              # (INI_RC_Type, INI_RC_ID) -> SC
        self._cur_sv = None                 # (SV, SCID) while answering an application
        self._btah = TaLayout([resolve("ub.btah", profile, False)])
        self._plans: dict = {}
        self._acks: dict = {}           # (rc_type, rc_id) -> [first TASSN, count]
        self._replay: OrderedDict = OrderedDict()
        self._queues: dict[int, _Queue] = {}
        self._msgs: dict = {}           # (rc_type, rc_id, TASSN) -> Send in progress
        self._cq: list = []
        self._rsp: dict = {}
        self.open_queue(0)
        # the response form (profile ta_response_form) and the TAACK rule (write_tassn_bytes)
        self._data_form = profile.ta_response_form == "btah_maetah"
        if self._data_form:
            self.aggregate = 1          # a BTAH has no RSPINFO to count aggregated TAACKs
            self._dform = TaLayout([resolve("ub.btah", profile, False),
                                    resolve("ub.maetah", profile, False)])
        self._ack_on_last = profile.write_tassn_bytes > 0
        lay = self._rsp_layout(_TAACK, False)
        sh = lay.shift
        self._sv_shift = sh["atah.sv"]
        self._taack = (_TAACK << sh["atah.taopcode"], sh["atah.ini_tassn"], sh["atah.rspinfo"],
                       sh["atah.ini_rc_type"], sh["atah.ini_rc_id"], lay.size)
        self._handlers = {
            0x03: self._write, 0x17: self._write, 0x14: self._write_be, 0x18: self._write_be,
            0x05: self._write_notify, 0x04: self._write_imm, 0x06: self._read,
            0x00: self._send, 0x01: self._send, 0x15: self._prefetch,
            MGMT_OPCODE: self._management,
        }
        for op in E.ATOMICS:
            self._handlers[op] = self._atomic

    # -- receive queues ---------------------------------------------------------------------------
    def open_queue(self, tcid: int, tokenvalue: int | None = None,
                   depth: int | None = None) -> None:
        """A target queue ``tcid`` (MTETAH.TGT_TC_ID) whose requests must carry ``tokenvalue``
        (TVETAH for Send, IMMETAH.Immediate_TokenValue for Write_with_immediate; None: no
        check).  Queue 0 exists from the start."""
        self._queues[tcid] = _Queue(tcid, tokenvalue,
                                    depth if depth is not None else self.tuning.recv_queue_depth)

    def post_recv(self, buffer, wr_id: int, *, tcid: int = 0) -> None:
        """Post a receive buffer (writable bytes-like) on queue ``tcid``."""
        q = self._queues.get(tcid)
        if q is None:
            raise TransactionError(f"no target queue {tcid}")
        if len(q.rqes) >= q.depth:
            raise TransactionError(f"queue {tcid}: {q.depth} receive buffers posted "
                                   "(tuning.recv_queue_depth)")
        mv = memoryview(buffer).cast("B")
        if mv.readonly:
            raise TransactionError("a receive buffer must be writable")
        q.rqes.append((mv, wr_id))

    def pop_completions(self) -> list:
        """Target-side completions (:class:`~ubpkt.stack.transaction.ops.RecvCompleted`)."""
        out = self._cq
        self._cq = []
        return out

    # -- responses --------------------------------------------------------------------------------
    def _rsp_layout(self, opcode: int, compact: bool) -> TaLayout:
        key = (opcode, compact)
        lay = self._rsp.get(key)
        if lay is None:
            seq = ta_sequence(opcode, True, {}, self.profile, compact)
            lay = self._rsp[key] = TaLayout([resolve("ub.atah", self.profile, compact)] + seq)
        return lay

    def _data_head(self, opcode, tassn, rc_type, rc_id, status, length) -> bytes:
        """A response in the ``btah_maetah`` form (profile ``ta_response_form``): BTAH with the
        response TAOpcode, the request's INI_TASSN and INI_RC, Poison 1 for an error; MAETAH
        with Length = the data bytes that follow (a TAACK: its one dummy byte, included)."""
        d = self._dform
        v = d.pack({"btah.taopcode": opcode, "btah.ini_tassn": tassn,
                    "btah.ini_rc_type": rc_type, "btah.ini_rc_id": rc_id,
                    "btah.poison": 0 if status == SUCCESS else 1,
                    "maetah.length": 1 if opcode == _TAACK else length})
        head = d.to_bytes(v)
        return head + b"\0" if opcode == _TAACK else head

    def _atah(self, opcode, tassn, rc_type, rc_id, status, compact, count=1, taid=0,
              offset=0, length=0) -> bytes:
        if self._data_form and not compact:
            return self._data_head(opcode, tassn, rc_type, rc_id, status, length)
        lay = self._rsp_layout(opcode, compact)
        s = lay.shift
        cur = self._cur_sv
        if cur is not None and not compact:
            if cur[0]:
                tassn = cur[1]      # SV 1: INI_TASSN carries the SCID (§7.3.3.3)
            count = 1
        v = opcode << s["atah.taopcode"] | tassn << s["atah.ini_tassn"]
        if cur is not None and not compact:
            v |= cur[0] << s["atah.sv"]
        if compact:
            v |= (0 if status == SUCCESS else 1) << s["atah.status"]
        else:
            rspst, rspinfo = STATUS_RSP[status]
            if status == SUCCESS:
                rspinfo = count - 1
            v |= rspst << s["atah.rspst"] | rspinfo << s["atah.rspinfo"] | \
                rc_type << s["atah.ini_rc_type"] | rc_id << s["atah.ini_rc_id"]
        if taid and "taidetah.taid" in s:
            v |= taid << s["taidetah.taid"]
        if offset and "ofstetah.offset" in s:
            v |= offset << s["ofstetah.offset"]
        return v.to_bytes(lay.size, "big")

    def _send_rsp(self, ta: bytes, payload=b"", last: bool = True) -> None:
        self.stats["responses"] += 1
        self.submit_response(TaSegment(ta, payload, last, None))

    def _ack(self, tassn, rc_type, rc_id, last, compact, now=0) -> None:
        """A successful TAACK, aggregated while the TASSNs run on (module doc)."""
        if compact:
            self.stats["taacks"] += 1
            self._send_rsp(self._atah(_TAACK, tassn, 0, 0, SUCCESS, True))
            return
        if self._ack_on_last and not last:
            return                  # one TAACK after the TASSN's last packet (write_tassn_bytes)
        key = (rc_type, rc_id)
        if self._cur_sv is not None:        # an SC application: answered on its own
            self._flush_rc(rc_type, rc_id)
            self.stats["taacks"] += 1
            self._send_rsp(self._atah(_TAACK, tassn, rc_type, rc_id, SUCCESS, False))
            return
        acks = self._acks
        p = acks.get(key)
        if last and self.across:
            last = False            # the next transaction's TAACKs may join (§7.3.1.1)
        if p is not None:
            if (p[0] + p[1]) & 0xFFFF == tassn and p[1] < self.aggregate:
                p[1] += 1
                if p[1] >= self.aggregate or last:
                    del acks[key]
                    self._emit_ack(key, p)
                return
            del acks[key]
            self._emit_ack(key, p)
        if last or self.aggregate == 1:
            self._emit_ack(key, [tassn, 1])
        else:
            acks[key] = [tassn, 1, now + self.hold_ns]

    def _emit_ack(self, key, p) -> None:
        st = self.stats
        st["taacks"] += 1
        st["responses"] += 1
        if p[1] > 1:
            st["taacks_aggregated"] += p[1] - 1
        if self._data_form:
            self.submit_response(TaSegment(self._data_head(_TAACK, p[0], key[0], key[1],
                                                           SUCCESS, 1), b"", True, None))
            return
        base, s_tassn, s_info, s_type, s_id, size = self._taack
        v = base | p[0] << s_tassn | (p[1] - 1) << s_info | key[0] << s_type | key[1] << s_id
        self.submit_response(TaSegment(v.to_bytes(size, "big"), b"", True, None))

    def flush(self, now: int = 0) -> None:
        """Send every TAACK held for aggregation now."""
        acks, self._acks = self._acks, {}
        for key, p in acks.items():
            self._emit_ack(key, p)

    def next_deadline(self) -> int | None:
        """When the oldest TAACK held for aggregation must go (None: none held)."""
        if not self._acks:
            return None
        return min(p[2] for p in self._acks.values())

    def handle_timeout(self, now: int) -> None:
        """Send the held TAACKs whose hold time is over."""
        for key in [k for k, p in self._acks.items() if p[2] <= now]:
            self._emit_ack(key, self._acks.pop(key))

    def _flush_rc(self, rc_type, rc_id) -> None:
        p = self._acks.pop((rc_type, rc_id), None)
        if p is not None:
            self._emit_ack((rc_type, rc_id), p)

    def _error(self, opcode_rsp, tassn, rc_type, rc_id, status, compact) -> None:
        self.stats["errors"] += 1
        if not compact:
            self._flush_rc(rc_type, rc_id)
        self._send_rsp(self._atah(opcode_rsp, tassn, rc_type, rc_id, status, compact))

    # -- requests ---------------------------------------------------------------------------------
    def _plan(self, opcode: int, flags: int, compact: bool) -> _Plan | None:
        key = (opcode, flags, compact)
        plan = self._plans.get(key)
        if plan is None:
            handler = self._handlers.get(opcode)
            btah = resolve("ub.btah", self.profile, compact)
            if handler is None or opcode not in TA_REQUEST_HEADERS:
                layers = [btah]
                handler = self._unsupported
                be = False
            else:
                seq = ta_sequence(opcode, False, {"tv_en": flags & _TV_BIT,
                                                  "ud_flag": flags & _UD_BIT},
                                  self.profile, compact)
                be = "@beetah" in seq
                layers = [btah] + [s for s in seq if not s.startswith("@")]
            plan = self._plans[key] = _Plan(TaLayout(layers), be, handler)
        return plan

    def on_request(self, ta, now: int = 0, *, last: bool = True, compact: bool = False):
        """One request packet (TA bytes: BTAH onward; ``last``: RTPH Last; ``compact``: the
        packet uses the compact TAH forms).  Returns ``"rnr"`` when a Send or
        Write_with_immediate finds no receive buffer (nothing was done), else None."""
        self.stats["requests"] += 1
        if len(ta) < 4:
            self.stats["malformed"] += 1
            return None
        if ta[0] in E.TA_RESPONSES:     # a response is not a request: not answered
            self.stats["malformed"] += 1
            return None
        plan = self._plan(ta[0], ta[1] & (_TV_BIT | _UD_BIT), compact)
        size = plan.size
        if len(ta) < size:
            self.stats["malformed"] += 1
            return None
        if compact or ta[0] == MGMT_OPCODE or not (self._scs or ta[4] & _ALLOC_BIT or
                                                   ta[5] & _RCT_MASK == _RCT_SC):
            v = int.from_bytes(ta[:size], "big")
            return plan.handler(plan, v, ta, now, last, compact)
        return self._sc_request(plan, ta, now, last)

    # -- sequence contexts (ROT) ------------------------------------------------------------------
    def assign_sc(self, scid: int, rc_id: int, rc_type: int = 0, first_tassn: int = 0) -> None:
        """Provision SC ``scid`` statically for the RC (``rc_type``, ``rc_id``) whose first
        transaction in it has TASSN ``first_tassn`` (§7.3.3.3 note: no application)."""
        if not 0 <= scid < 1 << 20 or scid in self._scs:
            raise TransactionError(f"SCID {scid}: taken or not 20 bits")
        sc = self._scs[scid] = _SC(scid, (rc_type, rc_id), first_tassn & 0xFFFF)
        self._sc_of[(rc_type, rc_id)] = sc

    def release_sc(self, scid: int) -> None:
        """Free SC ``scid`` (its held requests are dropped)."""
        sc = self._scs.pop(scid, None)
        if sc is not None:
            self._sc_of.pop(sc.rc, None)

    def sc_table(self) -> dict:
        """SCID -> (INI_RC_Type, INI_RC_ID) of the SCs in use."""
        return {k: sc.rc for k, sc in self._scs.items()}

    def _allocate(self, rc, tassn):
        sc = self._sc_of.get(rc)
        if sc is not None:
            return sc
        if len(self._scs) >= self.sc_entries:
            self.stats["sc_refused"] += 1
            return None
        scid = next(i for i in range(len(self._scs) + 1) if i not in self._scs)
        self.assign_sc(scid, rc[1], rc[0], tassn)
        self.stats["sc_allocated"] += 1
        return self._scs[scid]

    def _sc_request(self, plan, ta, now, last):
        b = self._btah
        bv = int.from_bytes(ta[:b.size], "big")
        rc = (b.get(bv, "btah.ini_rc_type"), b.get(bv, "btah.ini_rc_id"))
        tassn = b.get(bv, "btah.ini_tassn")
        sv = None
        if rc[0] == _SC_TYPE:
            sc = self._scs.get(rc[1])
            if sc is None:
                self.stats["sc_unknown"] += 1
                return self._error(_TAACK, tassn, rc[0], rc[1], UNSUPPORTED, False)
            # executed as the RC's own: the responses carry its RCID (§7.3.3.3 step 4)
            bv = b.pack({"btah.ini_rc_type": sc.rc[0], "btah.ini_rc_id": sc.rc[1]},
                        bv & ~(b.mask["btah.ini_rc_type"] << b.shift["btah.ini_rc_type"] |
                               b.mask["btah.ini_rc_id"] << b.shift["btah.ini_rc_id"]))
            ta = b.to_bytes(bv) + bytes(ta[b.size:])
        else:
            sc = self._sc_of.get(rc)
            if b.get(bv, "btah.alloc"):
                sc = self._allocate(rc, tassn)
                sv = (1, sc.scid) if sc is not None else (0, 0)
        if sc is None:
            return self._run(plan, ta, now, last, sv)
        d = (tassn - sc.low) & 0xFFFF
        if d < 0x8000 and b.get(bv, "btah.odr") & 3 == _SO and \
                (d or tassn in sc.held) and sv is None:
            # method 2: an SO waits for every earlier TASSN of the SC
            self.stats["sc_held"] += 1
            sc.held.setdefault(tassn, []).append((bytes(ta), last))
            return None
        r = self._run(plan, ta, now, last, sv)
        if r != RNR and d < 0x8000 and (last or ta[0] not in (0x00, 0x01)):
            self._sc_done(sc, tassn, now)
        return r

    def _run(self, plan, ta, now, last, sv):
        v = int.from_bytes(ta[:plan.size], "big")
        self._cur_sv = sv
        try:
            return plan.handler(plan, v, ta, now, last, False)
        finally:
            self._cur_sv = None

    def _sc_done(self, sc, tassn, now):
        """``tassn`` executed: move ``low`` on and run the held SO requests now first in
        line."""
        sc.done.add(tassn)
        while True:
            while sc.low in sc.done:
                sc.done.discard(sc.low)
                sc.low = (sc.low + 1) & 0xFFFF
            pkts = sc.held.pop(sc.low, None)
            if pkts is None or self._scs.get(sc.scid) is not sc:
                return
            t = sc.low
            finished = False
            for i, (ta, last) in enumerate(pkts):
                plan = self._plan(ta[0], ta[1] & (_TV_BIT | _UD_BIT), False)
                if self._run(plan, ta, now, last, None) == RNR:
                    sc.held[t] = pkts[i:]       # offered again with the next request
                    return
                finished = last or ta[0] not in (0x00, 0x01)
            if not finished:
                return
            sc.done.add(t)

    def _ids(self, plan, v, compact):
        s = plan.s
        tassn = (v >> s["btah.ini_tassn"]) & 0xFFFF
        if compact:
            return tassn, 0, 0
        return tassn, (v >> s["btah.ini_rc_type"]) & 3, (v >> s["btah.ini_rc_id"]) & 0xFFFFF

    def _tv(self, plan, v):
        s = plan.s.get("tvetah.tokenvalue")
        return None if s is None else (v >> s) & 0xFFFFFFFF

    def _mae(self, plan, v, compact):
        """(address, length, tokenid) of the MAETAH."""
        lay = plan.layout
        if compact:
            return (lay.get(v, "maetah.address"), 64 << lay.get(v, "maetah.len_code"),
                    lay.get(v, "maetah.tokenid"))
        s = plan.s
        return ((v >> s["maetah.address"]) & 0xFFFFFFFFFFFFFFFF,
                (v >> s["maetah.length"]) & 0xFFFFFFFF,
                (v >> s["maetah.tokenid"]) & 0xFFFFF)

    def _unsupported(self, plan, v, ta, now, last, compact):
        tassn, rc_type, rc_id = self._ids(plan, v, compact)
        self._error(_TAACK, tassn, rc_type, rc_id, UNSUPPORTED, compact)

    # Write, Writeback
    def _write(self, plan, v, ta, now, last, compact):
        s = plan.s
        tassn = (v >> s["btah.ini_tassn"]) & 0xFFFF
        if compact:
            rc_type = rc_id = 0
            addr, length, tokenid = self._mae(plan, v, True)
        else:
            rc_type = (v >> s["btah.ini_rc_type"]) & 3
            rc_id = (v >> s["btah.ini_rc_id"]) & 0xFFFFF
            addr = (v >> s["maetah.address"]) & 0xFFFFFFFFFFFFFFFF
            length = (v >> s["maetah.length"]) & 0xFFFFFFFF
            tokenid = (v >> s["maetah.tokenid"]) & 0xFFFFF
        payload = ta[plan.size:]
        n = len(payload)
        if n != length and not compact:
            return self._error(_TAACK, tassn, rc_type, rc_id, UNSUPPORTED, compact)
        st = s.get("tvetah.tokenvalue")
        tv = None if st is None else (v >> st) & 0xFFFFFFFF
        status, mv = self.memory.access(addr, n, tokenid, tv, _W)
        if status is not SUCCESS:
            return self._error(_TAACK, tassn, rc_type, rc_id, status, compact)
        mv[:] = payload
        if not ((v >> s["btah.no_taack"]) & 1 if not compact else 0):
            self._ack(tassn, rc_type, rc_id, last, compact, now)

    # Write_with_be, Writeback_with_be
    def _write_be(self, plan, v, ta, now, last, compact):
        tassn, rc_type, rc_id = self._ids(plan, v, compact)
        addr, length, tokenid = self._mae(plan, v, compact)
        rest = len(ta) - plan.size
        n = rest * 8 // 9
        if n * 9 != rest * 8 or n not in BE_SIZES or (n != length and not compact):
            return self._error(_TAACK, tassn, rc_type, rc_id, UNSUPPORTED, compact)
        be = int.from_bytes(ta[plan.size:plan.size + n // 8], "big")
        payload = ta[plan.size + n // 8:]
        status, mv = self.memory.access(addr, n, tokenid, self._tv(plan, v), _W)
        if status is not SUCCESS:
            return self._error(_TAACK, tassn, rc_type, rc_id, status, compact)
        # BE[i] (bit i of the bitmap) enables payload byte i: copy the runs of enabled bytes
        bits = format(be, f"0{n}b")[::-1].encode()
        for m in _RUN.finditer(bits):
            a, b = m.span()
            mv[a:b] = payload[a:b]
        self._ack(tassn, rc_type, rc_id, last, compact, now)

    # Write_with_notify
    def _write_notify(self, plan, v, ta, now, last, compact):
        tassn, rc_type, rc_id = self._ids(plan, v, compact)
        addr, length, tokenid = self._mae(plan, v, compact)
        payload = ta[plan.size:]
        if len(payload) != length:
            return self._error(_TAACK, tassn, rc_type, rc_id, UNSUPPORTED, compact)
        lay = plan.layout
        tv = self._tv(plan, v)
        status, mv = self.memory.access(addr, len(payload), tokenid, tv, _W)
        if status is SUCCESS:
            # §7.2.9: the NTFETAH's own token value, meaningful only when TV_EN is set
            status, nv = self.memory.access(lay.get(v, "ntfetah.address"), 8,
                                            lay.get(v, "ntfetah.notify_tokenid"),
                                            None if tv is None else
                                            lay.get(v, "ntfetah.notify_tokenvalue"), _W)
        if status is not SUCCESS:
            return self._error(_TAACK, tassn, rc_type, rc_id, status, compact)
        mv[:] = payload
        nv[:] = lay.get(v, "ntfetah.notify_data").to_bytes(8, "big")
        self._ack(tassn, rc_type, rc_id, last, compact, now)

    # Write_with_immediate
    def _write_imm(self, plan, v, ta, now, last, compact):
        tassn, rc_type, rc_id = self._ids(plan, v, compact)
        addr, length, tokenid = self._mae(plan, v, compact)
        lay = plan.layout
        payload = ta[plan.size:]
        if len(payload) != length:
            return self._error(_TAACK, tassn, rc_type, rc_id, UNSUPPORTED, compact)
        q = self._queues.get(lay.get(v, "mtetah.tgt_tc_id"))
        if q is None:
            return self._error(_TAACK, tassn, rc_type, rc_id, UNSUPPORTED, compact)
        if q.tokenvalue is not None and lay.get(v, "immetah.immediate_tokenvalue") != \
                q.tokenvalue:
            return self._error(_TAACK, tassn, rc_type, rc_id, REMOTE_ACCESS_ERROR, compact)
        status, mv = self.memory.access(addr, len(payload), tokenid, self._tv(plan, v), _W)
        if status is not SUCCESS:
            return self._error(_TAACK, tassn, rc_type, rc_id, status, compact)
        if not q.rqes:
            self.stats["rnr"] += 1
            return RNR
        _, wr_id = q.rqes.popleft()
        mv[:] = payload
        self._cq.append(RecvCompleted(now, wr_id, "write_with_immediate", SUCCESS,
                                      lay.get(v, "immetah.msg_length"),
                                      lay.get(v, "immetah.immediate_data"), q.tcid))
        self._ack(tassn, rc_type, rc_id, last, compact, now)

    # Read
    def _read(self, plan, v, ta, now, last, compact):
        tassn, rc_type, rc_id = self._ids(plan, v, compact)
        addr, length, tokenid = self._mae(plan, v, compact)
        taid = plan.layout.get(v, "taidetah.taid") if "taidetah.taid" in plan.s else 0
        status, mv = self.memory.access(addr, length, tokenid, self._tv(plan, v), _R)
        if not compact:
            self._flush_rc(rc_type, rc_id)
        if status is not SUCCESS:
            self.stats["errors"] += 1
            return self._send_rsp(self._atah(_READ_RSP, tassn, rc_type, rc_id, status, compact,
                                             taid=taid))
        data = memoryview(bytes(mv))    # the data as read now (a later Write must not change it)
        mtu = self.mtu
        off = 0
        while True:
            n = min(mtu, length - off)
            final = off + n >= length
            head = self._atah(_READ_RSP, tassn, rc_type, rc_id, SUCCESS, compact, taid=taid,
                              offset=off // 1024, length=n)
            self._send_rsp(head, data[off:off + n], final)
            off += n
            if final:
                break

    # Atomics
    def _atomic(self, plan, v, ta, now, last, compact):
        tassn, rc_type, rc_id = self._ids(plan, v, compact)
        addr, size, tokenid = self._mae(plan, v, compact)
        opcode = ta[0]
        payload = ta[plan.size:]
        lay = plan.layout
        sub = (lay.get(v, "udetah.ud") >> 20) & 0xF if "udetah.ud" in plan.s else None
        tv = self._tv(plan, v)
        key = (rc_type, rc_id, tassn)
        fp = (opcode, addr, size, tokenid, tv, sub, bytes(payload))
        cache = self._replay
        hit = cache.get(key)
        if hit is not None:
            if hit[0] == fp:
                cache.move_to_end(key)
                self.stats["replayed"] += 1
                for seg in hit[1]:
                    self._send_rsp(seg.ta, seg.payload, seg.last)
                return None
            del cache[key]
        taid = lay.get(v, "taidetah.taid") if "taidetah.taid" in plan.s else 0
        status = SUCCESS
        if size not in ATOMIC_SIZES or addr % size:
            status = UNSUPPORTED
        elif len(payload) not in (size, 2 * size) or (opcode == 0x07 and
                                                       len(payload) != 2 * size):
            status = UNSUPPORTED
        elif opcode in (0x09, 0x0A) and (sub is None or sub not in E.ATOMIC_SUBOP):
            status = UNSUPPORTED
        mv = None
        if status is SUCCESS:
            status, mv = self.memory.access(addr, size, tokenid, tv, _A)
        if not compact:
            self._flush_rc(rc_type, rc_id)
        rsp_payload = b""
        if status is SUCCESS:
            bits = size * 8
            old = int.from_bytes(mv, OPERAND_ORDER)
            op1 = int.from_bytes(payload[:size], OPERAND_ORDER)
            op2 = int.from_bytes(payload[size:2 * size], OPERAND_ORDER) if \
                len(payload) >= 2 * size else 0
            new = atomic_apply(opcode, old, op1, op2, bits, sub or 0)
            if new != old:
                mv[:] = new.to_bytes(size, OPERAND_ORDER)
            if opcode != 0x09:
                rsp_payload = old.to_bytes(size, ORIGIN_ORDER)
        else:
            self.stats["errors"] += 1
        seg = TaSegment(self._atah(_ATOMIC_RSP, tassn, rc_type, rc_id, status, compact,
                                   taid=taid), rsp_payload, True, None)
        if self.replay_entries > 0:
            cache[key] = (fp, (seg,))
            if len(cache) > self.replay_entries:
                cache.popitem(last=False)
        self._send_rsp(seg.ta, seg.payload, True)
        return None

    # Send, Send_with_immediate
    def _send(self, plan, v, ta, now, last, compact):
        tassn, rc_type, rc_id = self._ids(plan, v, compact)
        lay = plan.layout
        payload = ta[plan.size:]
        key = (rc_type, rc_id, tassn)
        m = self._msgs.get(key)
        if m is None:
            # the message's first packet: check the queue, take a receive buffer
            tcid = lay.get(v, "mtetah.tgt_tc_id")
            q = self._queues.get(tcid)
            if q is None:
                m = [None, None, 0, UNSUPPORTED, tcid]
            elif q.tokenvalue is not None and self._tv(plan, v) != q.tokenvalue:
                # §7.2.5: a Send is checked against the queue's token even without data
                m = [None, None, 0, REMOTE_ACCESS_ERROR, tcid]
            elif not q.rqes:
                self.stats["rnr"] += 1
                return RNR
            else:
                buf, wr_id = q.rqes.popleft()
                m = [buf, wr_id, 0, SUCCESS, tcid]
            if not last:
                self._msgs[key] = m
        elif last:
            del self._msgs[key]
        if m[3] is SUCCESS:
            buf, got = m[0], m[2]
            n = len(payload)
            if got + n > len(buf):
                m[3] = LOCAL_LENGTH_ERROR
            else:
                buf[got:got + n] = payload
                m[2] = got + n
        if not last:
            return None
        # the last packet: the receive completion, then one TAACK for the message (§7.4.3.1)
        opcode = ta[0]
        if m[1] is not None:
            imm = lay.get(v, "immetah.immediate_data") if opcode == 0x01 else None
            self._cq.append(RecvCompleted(now, m[1], OPCODE_OP[opcode], m[3],
                                          m[2] if m[3] is SUCCESS else 0, imm, m[4]))
        if m[3] is not SUCCESS:
            return self._error(_TAACK, tassn, rc_type, rc_id, m[3], compact)
        self._ack(tassn, rc_type, rc_id, True, compact, now)
        return None

    # Prefetch_tgt
    def _prefetch(self, plan, v, ta, now, last, compact):
        addr, length, tokenid = self._mae(plan, v, compact)
        self.stats["prefetch"] += 1
        self.memory.access(addr, length, tokenid, None, _R)    # a hint: nothing answers
        return None

    # Management (module doc)
    def _mgmt_rsp_layout(self, with_pdu: bool) -> TaLayout:
        key = ("mgmt", with_pdu)
        lay = self._rsp.get(key)
        if lay is None:
            layers = [resolve("ub.btah", self.profile, False)] + \
                ta_sequence(MGMT_OPCODE, False, {}, self.profile, False)
            if with_pdu:
                layers.append(resolve("ub.cfg_rsp", self.profile, False))
            lay = self._rsp[key] = TaLayout(layers)
        return lay

    def _management(self, plan, v, ta, now, last, compact):
        lay = plan.layout
        if compact:
            self.stats["malformed"] += 1
            return None
        if lay.get(v, "mgmtetah.rsp"):
            self.stats["requests"] -= 1
            self.stats["mgmt_responses"] += 1
            if self.on_mgmt_response is None:
                self.stats["mgmt_dropped"] += 1
            else:
                self.on_mgmt_response(ta, now)
            return None
        self.stats["mgmt_requests"] += 1
        code = lay.get(v, "mgmtetah.code")
        sub = lay.get(v, "mgmtetah.sub_code")
        pdu = ta[plan.size:]
        data = 0
        cfg = code == MGMT_CODE_CFG and sub < 4
        if not cfg:
            status = _M_BAD_CODE
        elif lay.get(v, "btah.tv_en"):
            status = _M_INVALID
        elif lay.get(v, "mgmtetah.pdu_length") != _CFG_PDU_BYTES or len(pdu) < _CFG_PDU_BYTES:
            status = _M_BAD_LENGTH
        else:
            r = _CFG_REQ
            p = int.from_bytes(pdu[:r.size], "big")
            entity = r.get(p, "cfg_req.entity_idx")
            addr = r.get(p, "cfg_req.req_addr")
            space, write = sub >> 1, sub & 1
            if write:
                status = self.config.write(entity, space, addr, r.get(p, "cfg_req.byte_en"),
                                           r.get(p, "cfg_req.data"))
            else:
                status, data = self.config.read(entity, space, addr)
        if status:
            self.stats["errors"] += 1
        out = self._mgmt_rsp_layout(cfg)
        vals = {"btah.taopcode": MGMT_OPCODE, "btah.ee_bits": lay.get(v, "btah.ee_bits"),
                "btah.ini_tassn": lay.get(v, "btah.ini_tassn"),
                "btah.ini_rc_type": lay.get(v, "btah.ini_rc_type"),
                "btah.ini_rc_id": lay.get(v, "btah.ini_rc_id"),
                "mgmtetah.sub_code": sub, "mgmtetah.code": code, "mgmtetah.rsp": 1,
                "mgmtetah.status": status,
                "mgmtetah.pdu_length": _CFG_PDU_BYTES if cfg else 0, "cfg_rsp.data": data}
        self._send_rsp(out.to_bytes(out.pack(vals)))
        return None
