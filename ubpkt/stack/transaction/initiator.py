"""The transaction initiator: requester and completer of one requester context (UB 2.0 §7.3,
§7.4), sans-IO.

``post(wr)`` turns a :class:`~ubpkt.stack.transaction.ops.WorkRequest` into
:class:`~ubpkt.stack.transport.TaSegment` s handed to ``submit`` (a channel's ``send``);
``on_response(ta, now)`` takes the TA bytes of a response (ATAH onward); completions come out of
``pop_completions()``.  The split follows the usual RDMA software model (a requester that builds
and numbers the packets, a completer that matches responses and retires work requests).

Segmentation (§7.3.1.1): a Write is cut at ``tuning.mtu`` bytes, each segment a packet with its
own TASSN (BTAH.INI_TASSN) and its own TAACK; MAETAH.Address advances by the MTU from segment to
segment and MAETAH.Length is the segment's length (§7.4.2.1.1).  Write_with_immediate and
Write_with_notify send their earlier segments as Writes and the last one with their own
TAOpcode and extension header (§7.4.2.1.2, §7.4.3.3).  A Send (and Send_with_immediate) uses one
TASSN for all its packets, with OFSTETAH.Offset in 1 KiB units, and is answered once (§7.4.3.1,
§7.4.3.2).  A Read is one request; its Read_response may arrive in several packets, placed one
after the other (the reliable transport delivers them in order, §7.4.2.2).  Atomics, Writeback
and the *_with_be writes are single packets (§7.4.2.1.3-5, §7.4.2.3).  ``last`` (RTPH
TPOpcode[7]) is set on a request's final packet.

Responses: a TAACK with RSPST Success/Not_Persisted and RSPINFO k acknowledges TASSNs N..N+k
(aggregated TAACK, §7.3.1.1); Read_response data is written into the local buffer at its offset;
an Atomic_response's old value goes to ``wr.result`` (and the local buffer, if any).  RSPST RNR
and Page Fault are retried after the RNR timer (2 us x 2^RSPINFO, Table 7-3) with BTAH.Retry set,
at most :data:`TA_RNR_RETRIES` times (``next_deadline``/``handle_timeout``).  Other errors
complete the work request with the status of :func:`~ubpkt.stack.transaction.ops.status_of`.

Ordering: ODR is sent as ``wr.order`` says and requests are handed over in post order.  With
``mode="rol"`` (the default) execution order is left to the layers below (ROL over one RTP
channel, §7.3.3.4) and nothing is held back; with ``mode="roi"`` the initiator holds a request
marked SO until every earlier RO/SO request has completed (ROI, §7.3.3.2).  Completion order: a work request whose ODR asks for completion order (ODR[2], TCO) is
reported only after every work request posted before it (§7.3.2.3); the others as they finish.

ROT (``mode="rot"``, UB 2.0 §7.3.3.3): the target orders the transactions in a sequence context
(SC).  Reading of the dynamic allocation: no dedicated allocation transaction exists, so the first
work request handed out carries the application (BTAH.Alloc 1 on its first packet, i.e. its first
TASSN; a Send's packets all share that TASSN and all carry it) under the initiator's own
INI_RC_Type/INI_RC_ID, and every later work request waits until its answer.  The answer with
ATAH.SV 1 carries the SCID in ATAH.INI_TASSN instead of the request's TASSN, so it is matched by
its INI_RC_ID (ours) and the pending state: it answers the one allocating TASSN in flight (every
packet of a Read_response to it carries the SCID).  From then on requests carry
INI_RC_Type = Target_SC (2) and INI_RC_ID = SCID and are handed out without any initiator-side
ordering; their responses come back with our RCID.  SV 0 (refused, or a target that ignores
Alloc): that answer carries the request's own TASSN, and the initiator falls back to ROI
(``stats["rot_fallbacks"]``).  ``scid=``: a statically provisioned SC (steps 1-2 skipped).
Prefetch_tgt, No_TAACK requests and management messages never carry the application (nothing
would answer it / UNO); they go out under the current RC as they are.

Management (``mgmt_cfg_read``/``mgmt_cfg_write``, UB 2.0 §7.4.5.1, §10.4.3.3): one packet, BTAH
(TAOpcode 0x10, TV_EN 0, ODR NO: the UNO mode; full form only) with the MSN in INI_TASSN, from
the same 16-bit counter as the TASSNs, and ``rc_id`` as the message queue index in INI_RC_ID,
then the MGMTETAH and the configuration request PDU.  Its answer is a management response
message, BTAH-carried like the request (the grammar pairs no ATAH response with TAOpcode 0x10):
the target side of the endpoint hands it to :meth:`on_mgmt_response` (:meth:`on_response` also
takes one, recognised by its TAOpcode).  A response with Rsp 1, the request's MSN, queue index,
Code and Sub Code completes the work request with the status of
:func:`~ubpkt.stack.transaction.ops.mgmt_status_of`; a read's DW goes to ``wr.result``.  No
transport retransmits management messages (§10.4.3.1): with ``mgmt_timeout_ns`` a request with
no response by then completes ``mgmt_timeout`` (``next_deadline``/``handle_timeout``).

TASSNs are 16 bits: at most :data:`TASSN_WINDOW` segments are in flight; further segments wait
and go out as responses free TASSNs.
"""
from __future__ import annotations

import heapq
from collections import deque

from ...formats import HEADERS
from ...formats import enums as E

from ...formats.grammar import resolve, ta_response_opcode, ta_sequence
from ...profile import SPEC, Profile, TransactionTuning
from ..engine import Completed
from ..transport import TaSegment
from .ops import (ATOMIC_SIZES, BE_SIZES, MGMT_CODE_CFG, MGMT_OPCODE, MGMT_TIMEOUT, OP_OPCODE,
                  OPERAND_ORDER, ORIGIN_ORDER, REMOTE_ACCESS_ERROR,
                  REMOTE_RESPONSE_LENGTH_ERROR, RNR_RETRY_EXCEEDED, SUBOPS, SUCCESS,
                  RSPST_NOT_PERSISTED, RSPST_SUCCESS, STATUS_RSP, TaLayout, TransactionError, WorkRequest,
                  cfg_sub_code, mgmt_status_of, status_of)

__all__ = ["Initiator", "TASSN_WINDOW", "TA_RNR_RETRIES"]

#: segments in flight at most (half the 16-bit TASSN space, so an old TASSN is never mistaken)
TASSN_WINDOW = 1 << 15
#: transaction-level retries of one segment answered RNR / Page Fault (§7.3.1.1)
TA_RNR_RETRIES = 7

_ODR = {v: k for k, v in E.ODR.items()}
#: wr.order as given (name in any case, or value) -> ODR value
_ODR_ANY = {**_ODR, **{k.lower(): v for k, v in _ODR.items()}, **{v: v for v in _ODR.values()}}
#: the responses, as the grammar pairs them with their requests (UB 2.0 §7.1 Tables 7-1/7-3)
_TAACK, _READ_RSP, _ATOMIC_RSP = (
    ta_response_opcode(next(k for k, v in E.TAOPCODE.items() if v == name))
    for name in ("Write", "Read", "Atomic_fetch_add"))
_WRITE = OP_OPCODE["write"]
_SO = _ODR["SO"]
_SEND = OP_OPCODE["send"]
#: INI_RC_Type of a target sequence context (UB 2.0 §7.2.1, §7.3.3.3)
E_SC = {v: k for k, v in E.INI_RC_TYPE.items()}["Target_SC"]
# kinds of work
_K_WRITE, _K_READ, _K_SEND, _K_ATOMIC, _K_SINGLE, _K_PREFETCH, _K_MGMT = range(7)
_KIND = {"write": _K_WRITE, "write_with_immediate": _K_WRITE, "write_with_notify": _K_WRITE,
         "read": _K_READ, "send": _K_SEND, "send_with_immediate": _K_SEND,
         "writeback": _K_SINGLE, "write_with_be": _K_SINGLE, "writeback_with_be": _K_SINGLE,
         "prefetch_tgt": _K_PREFETCH, "mgmt_cfg_read": _K_MGMT, "mgmt_cfg_write": _K_MGMT}
#: the configuration request PDU after the MGMTETAH (UB 2.0 §10.4.3.3 Fig 10-38)
_CFG_PDU_BYTES = HEADERS["ub.cfg_req"].bits // 8
#: BTAH.UD_Flag in byte 1 (UB 2.0 §7.2.1)
_UD_BIT = 0x80 >> (HEADERS["ub.btah"].offsets[HEADERS["ub.btah"].index["ud_flag"]] % 8)
for _op in ("compare_swap", "swap", "atomic_store", "atomic_load", "fetch_add", "fetch_sub",
            "fetch_and", "fetch_or", "fetch_xor"):
    _KIND[_op] = _K_ATOMIC

class _Work:
    """A posted work request's progress."""
    __slots__ = ("wr", "kind", "opcode", "odr", "src", "total", "off", "pending", "emitted",
                 "status", "tco", "nbytes", "done", "reported", "static", "layout",
                 "last_static", "last_layout", "counted", "rc", "alloc", "gtassn", "gstart")

    def __init__(self, wr, kind, opcode, odr):
        self.wr = wr
        self.odr = odr
        self.tco = bool(odr & 4)
        self.kind = kind
        self.opcode = opcode
        self.src = None
        self.total = 0
        self.off = 0
        self.pending = 0
        self.emitted = False
        self.status = SUCCESS
        self.nbytes = 0
        self.done = False
        self.reported = False
        self.static = 0
        self.layout = None
        self.last_static = 0
        self.last_layout = None
        self.counted = False
        self.rc = None
        self.alloc = False
        self.gtassn = None      # write_tassn_bytes: the TASSN of the group being sent
        self.gstart = 0

class _Seg:
    """A segment waiting for its response: the work, the TaSegment (for retries), the local
    bytes a Read_response or Atomic_response fills, how much of them came, retries so far."""
    __slots__ = ("work", "seg", "dst", "got", "retries", "nbytes")

    def __init__(self, work, seg, dst=None, nbytes=None):
        self.work = work
        self.seg = seg
        self.dst = dst
        self.got = 0
        self.retries = 0
        # the Write bytes its TAACK acknowledges (several packets with write_tassn_bytes)
        self.nbytes = len(seg.payload) if nbytes is None else nbytes

class Initiator:
    """See the module doc.  ``submit(seg)``: hand a :class:`TaSegment` to the transport.
    ``memory``: the :class:`~ubpkt.stack.transaction.memory.Memory` that resolves a work
    request's ``local`` when it is an address.  ``compact``: the compact BTAH/MAETAH/ATAH forms
    (TP bypass; §7.2.1-3) instead of the full ones.  ``rc_type``: BTAH.INI_RC_Type.
    ``mgmt_timeout_ns``: how long a management request waits for its response (None: for
    ever).  ``mode``: ``"rol"``, ``"roi"`` or ``"rot"``; ``scid``: a statically provisioned
    SC for ROT (module doc)."""

    def __init__(self, *, rc_id: int, tuning: TransactionTuning | None = None, submit,
                 memory=None, profile: Profile = SPEC, compact: bool = False, rc_type: int = 0,
                 ee_bits: int = 1, mode: str = "rol", mgmt_timeout_ns: int | None = None,
                 scid: int | None = None):
        if not 0 <= rc_id < 1 << 20:
            raise TransactionError("INI_RC_ID has 20 bits (UB 2.0 §7.2.1)")
        if mode not in ("rol", "roi", "rot"):
            raise TransactionError("mode: 'rol', 'roi' or 'rot'")
        self.rc_id = rc_id
        self.roi = mode == "roi"
        self.rot = mode == "rot"
        if self.rot and compact:
            raise TransactionError("ROT needs the full BTAH/ATAH (Alloc, SV, INI_RC_Type)")
        if scid is not None and not (self.rot and 0 <= scid < 1 << 20):
            raise TransactionError("scid: a 20-bit SCID, with mode='rot'")
        #: the SCID in use (ROT), None before allocation / after a refusal
        self.scid = scid
        # ROT allocation: "none" (to apply), "pending", "granted", "refused"
        self.alloc_state = "granted" if scid is not None else "none"
        self._alloc_work = None
        self._alloc_tassn = None
        # (INI_RC_Type, INI_RC_ID) the requests carry
        self._tx_rc = (E_SC, scid) if scid is not None else (rc_type, rc_id)
        self._ordered = 0       # RO/SO work handed out and not completed (ROI)
        self.rc_type = rc_type
        self.tuning = tuning or profile.tuning.transaction
        self.submit = submit
        self.memory = memory
        self.profile = profile
        self.compact = compact
        self.ee_bits = ee_bits
        self.mtu = self.tuning.mtu
        self.max_outstanding = self.tuning.max_outstanding
        self.stats = {"posted": 0, "segments": 0, "responses": 0, "rx_unexpected": 0,
                      "rx_wrong_rc": 0, "rx_malformed": 0, "ta_retries": 0,
                      "mgmt_responses": 0, "mgmt_timeouts": 0, "rot_alloc_requests": 0,
                      "rot_granted": 0, "rot_fallbacks": 0}
        self.mgmt_timeout_ns = mgmt_timeout_ns
        self._mgmt_due: list = []               # heap of (deadline, n, MSN) of management work
        self._mgmt_layouts: dict = {}
        self._tassn = 0
        self._inflight: dict[int, _Seg] = {}
        self._order: deque[_Work] = deque()     # posted work, in post order, until reported
        self._n_active = 0
        self._backlog: deque[_Work] = deque()
        self._cq: list = []
        self._retry: list = []                   # heap of (deadline, n, tassn)
        self._retry_n = 0
        self._static: dict = {}
        self._layouts: dict = {}
        btah = resolve("ub.btah", profile, compact)
        self._btah = btah
        self._atah = TaLayout([resolve("ub.atah", profile, compact)])
        self._rsp_len: dict[int, int] = {}
        for opc in (_TAACK, _READ_RSP, _ATOMIC_RSP):
            seq = ta_sequence(opc, True, {}, profile, compact)
            self._rsp_len[opc] = TaLayout([self._atah.layers[0]] + seq).size
        a = self._atah
        if compact:
            self._a_status = (a.shift["atah.status"], a.mask["atah.status"])
        else:
            self._a_rspst = a.shift["atah.rspst"]
            self._a_rspinfo = a.shift["atah.rspinfo"]
            self._a_rc = (a.shift["atah.ini_rc_id"], a.mask["atah.ini_rc_id"])
            self._a_sv = a.shift["atah.sv"]
        self._a_tassn = a.shift["atah.ini_tassn"]
        # the response form (profile ta_response_form) and Write TASSN groups (write_tassn_bytes)
        self._dform = None
        if profile.ta_response_form == "btah_maetah" and not compact:
            self._dform = TaLayout([resolve("ub.btah", profile, False),
                                    resolve("ub.maetah", profile, False)])
        self._wgroup = profile.write_tassn_bytes
        self._retry_bit = None
        if not compact:
            lay = TaLayout([btah])
            self._retry_bit = (lay.shift["btah.retry"], lay.size)

    # ---------------------------------------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        """Work requests posted and not completed yet."""
        return self._n_active

    def pop_completions(self) -> list:
        """The completion queue: :class:`~ubpkt.stack.engine.Completed` entries, oldest first."""
        out = self._cq
        self._cq = []
        return out

    # -- post -------------------------------------------------------------------------------------
    def post(self, wr: WorkRequest, now: int = 0) -> None:
        """Queue ``wr`` and hand its segments to ``submit`` (module doc).  Raises
        :class:`~ubpkt.stack.transaction.ops.TransactionError` on API misuse only: unknown op,
        too many outstanding requests, a missing or read-only buffer, a length or operand the
        headers cannot carry."""
        kind = _KIND.get(wr.op)
        if kind is None:
            raise TransactionError(f"unknown operation {wr.op!r}")
        if self._n_active >= self.max_outstanding:
            raise TransactionError(f"{self.max_outstanding} work requests outstanding "
                                   "(tuning.max_outstanding)")
        odr = _ODR_ANY.get(wr.order)
        if odr is None:
            raise TransactionError(f"bad order {wr.order!r}")
        if kind == _K_MGMT:
            odr = 0     # UNO: no ordering (UB 2.0 §7.4.5.1)
        w = _Work(wr, kind, OP_OPCODE[wr.op], odr)
        self._prepare(w)
        self._order.append(w)
        self._n_active += 1
        self.stats["posted"] += 1
        if self._backlog or not self._start(w, now):
            self._backlog.append(w)

    def _start(self, w: _Work, now: int) -> bool:
        """Hand out ``w`` unless ROI holds it (an SO behind RO/SO work not completed yet) or a
        ROT allocation is pending."""
        if self.rot and w.kind != _K_MGMT:
            st = self.alloc_state
            if st == "pending":
                if w is not self._alloc_work:
                    return False
            elif st == "none" and w.kind != _K_PREFETCH and not w.wr.no_taack:
                self.alloc_state = "pending"
                self._alloc_work = w
                self._alloc_tassn = self._tassn
                self.stats["rot_alloc_requests"] += 1
                if w.rc != self._tx_rc:
                    self._headers(w)
                w.alloc = True
                w.static |= 1 << w.layout.shift["btah.alloc"]
                w.last_static |= 1 << w.last_layout.shift["btah.alloc"]
            if w.rc != self._tx_rc:
                self._headers(w)
        if not w.counted and w.odr & 3:
            if self.roi and w.odr & 3 == _SO and self._ordered:
                return False
            self._ordered += 1
            w.counted = True
        return self._emit(w, now)

    def _buffer(self, wr, writable: bool):
        loc = wr.local
        if loc is None:
            if wr.length:
                raise TransactionError(f"{wr.op}: no local buffer")
            return memoryview(b"")
        if isinstance(loc, int):
            if self.memory is None or wr.length is None:
                raise TransactionError(f"{wr.op}: a local address needs memory= and a length")
            return self.memory.view(loc, wr.length)
        mv = memoryview(loc).cast("B") if not isinstance(loc, memoryview) or \
            loc.format != "B" or loc.ndim != 1 else loc
        if writable and mv.readonly:
            raise TransactionError(f"{wr.op}: the local buffer is read-only")
        if wr.length is not None:
            if wr.length > len(mv):
                raise TransactionError(f"{wr.op}: length {wr.length} > buffer {len(mv)}")
            mv = mv[:wr.length]
        return mv

    def _prepare(self, w: _Work) -> None:
        wr, kind = w.wr, w.kind
        if kind == _K_MGMT:
            return self._prepare_mgmt(w)
        if kind == _K_READ:
            w.src = self._buffer(wr, True)
        elif kind == _K_ATOMIC:
            if wr.size not in ATOMIC_SIZES:
                raise TransactionError(f"atomic operand size {wr.size} (UB 2.0 §7.4.2.3.2: "
                                       f"{ATOMIC_SIZES})")
            bits = wr.size * 8
            if not (0 <= wr.operand1 < 1 << bits and 0 <= wr.operand2 < 1 << bits):
                raise TransactionError(f"operands must be unsigned {bits}-bit integers")
            w.src = self._buffer(wr, True) if wr.local is not None else None
            if w.src is not None and len(w.src) < wr.size:
                raise TransactionError("the result buffer is shorter than the operand")
        elif kind != _K_PREFETCH:
            w.src = self._buffer(wr, False)
        w.total = len(w.src) if (w.src is not None and kind != _K_ATOMIC) else (
            wr.size if kind == _K_ATOMIC else (wr.length or 0))
        if w.total >> 32:
            raise TransactionError("a transaction moves less than 4 GiB (MAETAH.Length)")
        if kind == _K_SINGLE:
            if w.total > self.mtu:
                raise TransactionError(f"{wr.op} is one packet: at most the MTU "
                                       f"({self.mtu} bytes)")
            if wr.op.endswith("_with_be"):
                if w.total not in BE_SIZES:
                    raise TransactionError(f"{wr.op}: payload of {BE_SIZES} bytes (§7.2.10)")
                if wr.be is None or wr.be >> w.total:
                    raise TransactionError(f"{wr.op}: be must be a {w.total}-bit bitmap")
        if not 0 <= wr.remote_addr < (1 << 64) - max(w.total, 1) + 1:
            raise TransactionError("the remote range must fit in 64-bit addresses")
        if self.compact:
            self._check_compact(w)
        # every header value is checked here, before anything is handed out
        self._headers(w)

    def _headers(self, w: _Work) -> None:
        """``w``'s layouts and constant header bits, under the current (INI_RC_Type,
        INI_RC_ID)."""
        wr, kind = w.wr, w.kind
        w.rc = self._tx_rc
        first = _WRITE if kind == _K_WRITE else (_SEND if kind == _K_SEND else w.opcode)
        w.layout, w.static = self._static_for(w, first, w.odr)
        w.last_layout, w.last_static = w.layout, w.static
        if w.opcode in (0x01, 0x04, 0x05):
            w.last_layout, w.last_static = self._static_for(w, w.opcode, w.odr,
                                                            self._last_fields(w))

    def _prepare_mgmt(self, w: _Work) -> None:
        """The BTAH, MGMTETAH and configuration request PDU of a management work request, all
        but the MSN (UB 2.0 §7.4.5.1, §10.4.3.3)."""
        wr = w.wr
        if self.compact:
            raise TransactionError(f"{wr.op}: management messages use the full BTAH "
                                   "(INI_RC_ID carries the message queue index)")
        if wr.tokenvalue is not None:
            raise TransactionError(f"{wr.op}: BTAH.TV_EN must be 0 (UB 2.0 §7.4.5.1)")
        if wr.local is not None:
            raise TransactionError(f"{wr.op}: the data travels in wr.data / wr.result, "
                                   "not a local buffer")
        if wr.cfg_space not in (0, 1):
            raise TransactionError("cfg_space: 0 (CFG0) or 1 (CFG1)")
        be = 0xF if wr.be is None else wr.be
        for name, x, bits in (("entity_idx", wr.entity_idx, 16), ("be", be, 4),
                              ("remote_addr", wr.remote_addr, 32), ("data", wr.data, 32)):
            if not 0 <= x < 1 << bits:
                raise TransactionError(f"{wr.op}: {name} has {bits} bits (UB 2.0 §10.4.3.3)")
        write = wr.op == "mgmt_cfg_write"
        ud = 0 if wr.ud is None else 1
        lay = self._mgmt_layout(ud)[1]
        vals = {"btah.taopcode": MGMT_OPCODE, "btah.ee_bits": self.ee_bits, "btah.tv_en": 0,
                "btah.ud_flag": ud, "btah.odr": 0, "btah.ini_rc_type": self.rc_type,
                "btah.ini_rc_id": self.rc_id, "udetah.ud": wr.ud or 0,
                "mgmtetah.code": MGMT_CODE_CFG,
                "mgmtetah.sub_code": cfg_sub_code(write, wr.cfg_space), "mgmtetah.rsp": 0,
                "mgmtetah.pdu_length": _CFG_PDU_BYTES,
                "cfg_req.entity_idx": wr.entity_idx, "cfg_req.byte_en": be,
                "cfg_req.req_addr": wr.remote_addr, "cfg_req.data": wr.data if write else 0}
        w.layout = w.last_layout = lay
        w.static = w.last_static = lay.pack(vals)
        w.total = 4

    def _mgmt_layout(self, ud: int) -> tuple:
        """(BTAH [+ UDETAH] + MGMTETAH, the same + the configuration request PDU)."""
        hit = self._mgmt_layouts.get(ud)
        if hit is None:
            heads = [self._btah] + list(ta_sequence(MGMT_OPCODE, False, {"ud_flag": ud},
                                                    self.profile, False))
            hit = self._mgmt_layouts[ud] = (
                TaLayout(heads), TaLayout(heads + [resolve("ub.cfg_req", self.profile, False)]))
        return hit

    def _last_fields(self, w: _Work) -> dict:
        """The IMMETAH / NTFETAH of the last packet (§7.2.8-9)."""
        wr = w.wr
        if w.opcode == 0x01:
            return {"immetah.immediate_data": wr.imm}
        if w.opcode == 0x04:
            return {"immetah.immediate_data": wr.imm,
                    "immetah.immediate_tokenvalue": wr.imm_tokenvalue,
                    "immetah.msg_length": w.total}
        # Notify_TokenValue is meaningful only when TV_EN is set (§7.2.9)
        return {"ntfetah.address": wr.notify_addr, "ntfetah.notify_tokenid": wr.notify_tokenid,
                "ntfetah.notify_tokenvalue": (wr.notify_tokenvalue
                                              if wr.tokenvalue is not None else 0),
                "ntfetah.notify_data": wr.notify_data}

    def _check_compact(self, w: _Work) -> None:
        if w.kind in (_K_SEND, _K_ATOMIC) or w.opcode in (0x04, 0x05):
            raise TransactionError(f"{w.wr.op} has no compact form here: the compact MAETAH "
                                   "carries 64 B x 2^k lengths only (UB 2.0 §7.2.3)")
        if w.wr.remote_addr % 64:
            raise TransactionError("the compact MAETAH carries 64-byte aligned addresses")
        sizes = {64 << k for k in range(8)}
        n, mtu = w.total, self.mtu
        if w.kind == _K_WRITE:
            ok = n > 0 and (n <= mtu or mtu in sizes) and ((n % mtu) or mtu) in sizes
        else:
            ok = n in sizes
        if not ok:
            raise TransactionError("compact: every packet's length must be 64 B x 2^k")

    # -- headers ----------------------------------------------------------------------------------
    def _layout(self, opcode: int, tv: int, ud: int) -> TaLayout:
        key = (opcode, tv, ud)
        lay = self._layouts.get(key)
        if lay is None:
            seq = ta_sequence(opcode, False, {"tv_en": tv, "ud_flag": ud}, self.profile,
                              self.compact)
            lay = self._layouts[key] = TaLayout([self._btah] + [s for s in seq
                                                                if not s.startswith("@")])
        return lay

    def _static_for(self, w: _Work, opcode: int, odr: int, extra: dict | None = None):
        """(layout, the TA headers' constant bits) of ``w``'s packets with TAOpcode
        ``opcode``."""
        wr = w.wr
        tv = 0 if wr.tokenvalue is None else 1
        ud = 1 if (wr.ud is not None or opcode in (0x09, 0x0A)) else 0
        key = None
        if extra is None:
            key = (opcode, tv, ud, odr, wr.tokenid, wr.tokenvalue, wr.ud, wr.no_taack,
                   wr.tcid, wr.tc_type, wr.hint, self._tx_rc)
            hit = self._static.get(key)
            if hit is not None:
                return hit
        lay = self._layout(opcode, tv, ud)
        vals = {"btah.taopcode": opcode, "btah.ee_bits": self.ee_bits, "btah.tv_en": tv,
                "btah.ud_flag": ud, "btah.odr": odr, "btah.ini_rc_type": self._tx_rc[0],
                "btah.ini_rc_id": self._tx_rc[1], "btah.no_taack": int(bool(wr.no_taack)),
                "btah.mt_en": 1 if "mtetah.tgt_tc_id" in lay else 0,
                "maetah.tokenid": wr.tokenid,
                "mtetah.tgt_tc_id": wr.tcid, "mtetah.tgt_tc_type": wr.tc_type,
                "mtetah.hint": wr.hint}
        if tv:
            vals["tvetah.tokenvalue"] = wr.tokenvalue
        if ud:
            if opcode in (0x09, 0x0A):
                sub = wr.subop if isinstance(wr.subop, int) else SUBOPS.get(str(wr.subop).upper())
                if sub is None or sub not in E.ATOMIC_SUBOP:
                    raise TransactionError(f"unknown atomic sub-operation {wr.subop!r}")
                vals["udetah.ud"] = (wr.ud or 0) & ~(0xF << 20) | sub << 20
            else:
                vals["udetah.ud"] = wr.ud
        if extra:
            vals.update(extra)
        out = (lay, lay.pack(vals))
        if key is not None:
            if len(self._static) > 4096:
                self._static.clear()
            self._static[key] = out
        return out

    def _next_tassn(self) -> int:
        t = self._tassn
        self._tassn = (t + 1) & 0xFFFF
        if t in self._inflight:     # cannot happen inside the window; kept as a guard
            raise TransactionError("TASSN space exhausted")
        return t

    def _maetah(self, lay: TaLayout, v: int, addr: int, n: int) -> int:
        if not self.compact:
            return v | addr << lay.shift["maetah.address"] | n << lay.shift["maetah.length"]
        # the compact address field's own unit (Address[63:6], or ns-3-UB's low 58 bits)
        return v | (addr >> lay.vshift["maetah.address"]) << lay.shift["maetah.address"] | \
            (n.bit_length() - 7 if n >= 64 else 0) << lay.shift["maetah.len_code"]

    # -- emit -------------------------------------------------------------------------------------
    def _emit(self, w: _Work, now: int) -> bool:
        """Hand out what ``w`` still has to send; False when the TASSN window is full (``w``
        waits in the backlog)."""
        inflight = self._inflight
        if len(inflight) >= TASSN_WINDOW:
            return False
        kind = w.kind
        if kind == _K_WRITE:
            return self._emit_write(w, now)
        if kind == _K_SEND:
            return self._emit_send(w, now)
        wr = w.wr
        t = self._next_tassn()
        lay = w.layout
        v = w.static | t << lay.shift["btah.ini_tassn"]
        if kind == _K_MGMT:
            seg = TaSegment(lay.to_bytes(v), b"", True, wr.wr_id)
            inflight[t] = _Seg(w, seg)
            if self.mgmt_timeout_ns is not None:
                self._retry_n += 1
                heapq.heappush(self._mgmt_due, (now + self.mgmt_timeout_ns, self._retry_n, t, w))
        elif kind == _K_ATOMIC:
            size = wr.size
            ta = self._maetah(lay, v, wr.remote_addr, size).to_bytes(lay.size, "big")
            payload = wr.operand1.to_bytes(size, OPERAND_ORDER) + \
                wr.operand2.to_bytes(size, OPERAND_ORDER)
            seg = TaSegment(ta, payload, True, wr.wr_id)
            inflight[t] = _Seg(w, seg, w.src)
        else:   # Read, the single-packet writes, Prefetch_tgt
            ta = self._maetah(lay, v, wr.remote_addr, w.total).to_bytes(lay.size, "big")
            if w.opcode in (0x14, 0x18):
                ta += wr.be.to_bytes(w.total // 8, "big")
            seg = TaSegment(ta, w.src if kind == _K_SINGLE else b"", True, wr.wr_id)
            if kind == _K_READ:
                inflight[t] = _Seg(w, seg, w.src)
            elif kind == _K_SINGLE and not wr.no_taack:
                inflight[t] = _Seg(w, seg)
        w.emitted = True
        self.stats["segments"] += 1
        if t in inflight:
            w.pending = 1
        self.submit(seg)
        if w.pending == 0:
            w.nbytes = w.total if kind != _K_PREFETCH else 0
            self._finish(w, now)
        return True

    def _emit_write(self, w: _Work, now: int) -> bool:
        """Write, Write_with_immediate, Write_with_notify: a TASSN per MTU segment; the last
        one carries the op's own TAOpcode and extension header (§7.4.2.1.1-2, §7.4.3.3)."""
        inflight = self._inflight
        wr = w.wr
        lay, static = w.layout, w.static
        st = lay.shift["btah.ini_tassn"]
        total, mtu, src, submit = w.total, self.mtu, w.src, self.submit
        addr0 = wr.remote_addr
        special = w.last_layout is not lay
        full = not self.compact
        if full:
            sa, sl = lay.shift["maetah.address"], lay.shift["maetah.length"]
        size = lay.size
        no_taack = wr.no_taack
        grp = self._wgroup
        while True:
            if len(inflight) >= TASSN_WINDOW:
                return False
            off = w.off
            n = total - off
            if n > mtu:
                n = mtu
            if grp:
                # profile write_tassn_bytes: the packets of one group share its TASSN, the
                # group's last one has RTPH Last and is answered by the one TAACK
                if w.gtassn is None:
                    w.gtassn = self._tassn
                    self._tassn = (self._tassn + 1) & 0xFFFF
                    w.gstart = off
                t = w.gtassn
                n = min(n, w.gstart + grp - off)
                final = off + n >= total
                gend = final or off + n - w.gstart >= grp
            else:
                final = gend = off + n >= total
                t = self._tassn
                self._tassn = (t + 1) & 0xFFFF
            if final and special:
                ll = w.last_layout
                ta = self._maetah(ll, w.last_static | t << ll.shift["btah.ini_tassn"],
                                  addr0 + off, n).to_bytes(ll.size, "big")
            elif full:
                ta = (static | t << st | (addr0 + off) << sa | n << sl).to_bytes(size, "big")
            else:
                ta = self._maetah(lay, static | t << st, addr0 + off, n).to_bytes(size, "big")
            seg = TaSegment(ta, src[off:off + n], gend, wr.wr_id)
            w.off = off + n
            if no_taack:
                w.nbytes += n
            elif gend or not grp:           # one TAACK per TASSN
                w.pending += 1
                inflight[t] = _Seg(w, seg, None, off + n - w.gstart if grp else n)
            if gend:
                w.gtassn = None
            self.stats["segments"] += 1
            if final:
                w.emitted = True
            submit(seg)
            if w.alloc:     # ROT: only the first segment applies for the SC (module doc)
                w.alloc = False
                static = w.static = static & ~(1 << lay.shift["btah.alloc"])
                w.last_static &= ~(1 << w.last_layout.shift["btah.alloc"])
            if final:
                break
        if w.pending == 0:
            self._finish(w, now)
        return True

    def _emit_send(self, w: _Work, now: int) -> bool:
        """Send, Send_with_immediate: one TASSN for every packet of the message, OFSTETAH in
        1 KiB units, one TAACK (§7.4.3.1-2)."""
        wr = w.wr
        t = self._next_tassn()
        total, mtu, src = w.total, self.mtu, w.src
        off = 0
        segs = []
        while True:
            n = min(mtu, total - off)
            final = off + n >= total
            lay, static = (w.last_layout, w.last_static) if final else (w.layout, w.static)
            v = static | t << lay.shift["btah.ini_tassn"]
            if "ofstetah.offset" in lay:
                v |= (off // 1024) << lay.shift["ofstetah.offset"]
            segs.append(TaSegment(v.to_bytes(lay.size, "big"), src[off:off + n], final,
                                  wr.wr_id))
            off += n
            if final:
                break
        w.emitted = True
        if not wr.no_taack:
            self._inflight[t] = _Seg(w, segs[-1])
            w.pending = 1
        self.stats["segments"] += len(segs)
        for seg in segs:
            self.submit(seg)
        if w.pending == 0:
            w.nbytes = total
            self._finish(w, now)
        return True

    def _pump(self, now: int) -> None:
        bl = self._backlog
        while bl:
            w = bl[0]
            if w.done:
                bl.popleft()
                continue
            if not self._start(w, now):
                return
            bl.popleft()

    # -- responses --------------------------------------------------------------------------------
    def _matching(self, inflight: dict, tassn: int, kind, status, rspinfo, now: int):
        """The in-flight entry a Read_response/Atomic_response answers, or None (unexpected:
        counted; an error status: that segment fails)."""
        e = inflight.get(tassn)
        if e is None or e.work.kind != kind:
            self.stats["rx_unexpected"] += 1
            return None
        if status != SUCCESS:
            self._seg_error(tassn, status, rspinfo, now)
            return None
        return e

    def on_response(self, ta, now: int = 0) -> None:
        """A response's TA bytes (ATAH onward).  Unknown TASSNs and other RCs are counted in
        ``stats`` and dropped."""
        n_ta = len(ta)
        if n_ta and ta[0] == MGMT_OPCODE:
            return self.on_mgmt_response(ta, now)
        if self._dform is not None:
            ta = self._from_data_form(ta)
            n_ta = len(ta)
        self.stats["responses"] += 1
        if n_ta < 1:
            self.stats["rx_malformed"] += 1
            return
        opc = ta[0]
        hlen = self._rsp_len.get(opc)
        if hlen is None or n_ta < hlen:
            self.stats["rx_malformed"] += 1
            return
        a = self._atah
        v = int.from_bytes(ta[:a.size], "big")
        tassn = (v >> self._a_tassn) & 0xFFFF
        if self.compact:
            s, m = self._a_status
            status = SUCCESS if not (v >> s) & m else REMOTE_ACCESS_ERROR
            rspst, rspinfo = (RSPST_SUCCESS, 0) if status == SUCCESS else (None, 0)
        else:
            s, m = self._a_rc
            if (v >> s) & m != self.rc_id:
                self.stats["rx_wrong_rc"] += 1
                return
            rspst = (v >> self._a_rspst) & 7
            rspinfo = (v >> self._a_rspinfo) & 0x1F
            status = SUCCESS if rspst == RSPST_SUCCESS else status_of(rspst, rspinfo)
            if self._alloc_tassn is not None:
                tassn = self._rot_answer(v, opc, tassn, rspinfo)
        inflight = self._inflight
        if opc == _TAACK:
            if status == SUCCESS:
                count = rspinfo + 1 if rspst in (RSPST_SUCCESS, RSPST_NOT_PERSISTED) and \
                    not self.compact else 1
                for i in range(count):
                    t = (tassn + i) & 0xFFFF
                    e = inflight.get(t)
                    if e is None or e.work.kind in (_K_READ, _K_ATOMIC, _K_MGMT):
                        self.stats["rx_unexpected"] += 1    # Read/atomics/management have
                        continue                            # their own responses
                    del inflight[t]
                    w = e.work
                    w.pending -= 1
                    if w.kind != _K_READ and w.kind != _K_ATOMIC:
                        w.nbytes += e.nbytes if w.kind != _K_SEND else w.total
                    if w.pending == 0 and w.emitted:
                        self._finish(w, now)
            else:
                self._seg_error(tassn, status, rspinfo, now)
        elif opc == _READ_RSP:
            e = self._matching(inflight, tassn, _K_READ, status, rspinfo, now)
            if e is not None:
                data = ta[hlen:]
                n = len(data)
                got = e.got
                dst = e.dst
                if got + n > len(dst):
                    self._seg_error(tassn, REMOTE_RESPONSE_LENGTH_ERROR, 0, now)
                else:
                    dst[got:got + n] = data
                    e.got = got + n
                    if e.got >= len(dst):
                        del inflight[tassn]
                        w = e.work
                        w.nbytes = e.got
                        w.pending -= 1
                        if w.pending == 0:
                            self._finish(w, now)
        elif opc == _ATOMIC_RSP:
            e = self._matching(inflight, tassn, _K_ATOMIC, status, rspinfo, now)
            if e is not None:
                w = e.work
                data = ta[hlen:]
                size = w.wr.size
                # no data for Atomic_store, the old value for the others (§7.4.2.3.3)
                if len(data) != (0 if w.opcode == 0x09 else size):
                    self._seg_error(tassn, REMOTE_RESPONSE_LENGTH_ERROR, 0, now)
                else:
                    del inflight[tassn]
                    if w.opcode != 0x09:
                        old = int.from_bytes(data, ORIGIN_ORDER)
                        w.wr.result = old
                        if e.dst is not None:
                            e.dst[:size] = old.to_bytes(size, OPERAND_ORDER)
                    w.nbytes = size
                    w.pending -= 1
                    self._finish(w, now)
        at = self._alloc_tassn
        if at is not None and self.alloc_state != "pending" and at not in inflight:
            self._alloc_tassn = None
            self._alloc_work = None
        if self._backlog:
            self._pump(now)

    def _from_data_form(self, ta) -> bytes:
        """A response in the ``btah_maetah`` form (profile ``ta_response_form``) as the ATAH
        form this completer reads: the TAOpcode, INI_TASSN and INI_RC, Success (Remote Abort
        when BTAH.Poison marks an error), then the data (a TAACK's dummy bytes dropped)."""
        d = self._dform
        if len(ta) < d.size:
            return b""                  # malformed: counted by the caller
        v = int.from_bytes(ta[:d.size], "big")
        opc = d.get(v, "btah.taopcode")
        tassn = d.get(v, "btah.ini_tassn")
        a = self._atah
        rspst, rspinfo = (RSPST_SUCCESS, 0) if not d.get(v, "btah.poison") else \
            STATUS_RSP[REMOTE_ACCESS_ERROR]
        head = opc << a.shift["atah.taopcode"] | tassn << a.shift["atah.ini_tassn"] | \
            rspst << self._a_rspst | rspinfo << self._a_rspinfo | \
            d.get(v, "btah.ini_rc_type") << a.shift["atah.ini_rc_type"] | \
            (d.get(v, "btah.ini_rc_id") & self._a_rc[1]) << self._a_rc[0]
        rest = self._rsp_len.get(opc, a.size) - a.size     # the ATAH form's extension headers
        data = b"" if opc == _TAACK else bytes(ta[d.size:])
        return a.to_bytes(head) + bytes(rest) + data

    def _rot_answer(self, v: int, opc: int, tassn: int, rspinfo: int) -> int:
        """The TASSN a response answers while the allocating request is in flight (module
        doc): with SV 1 the allocating TASSN (its INI_TASSN is the SCID); the allocation's
        outcome is recorded on its first answer."""
        at = self._alloc_tassn
        if (v >> self._a_sv) & 1:
            if self.alloc_state == "pending":
                self.scid = tassn
                self.alloc_state = "granted"
                self._tx_rc = (E_SC, tassn)
                self.stats["rot_granted"] += 1
            return at
        if self.alloc_state == "pending" and (at - tassn) & 0xFFFF <= (
                rspinfo if opc == _TAACK else 0):
            self.alloc_state = "refused"        # the target cannot order: ROI (§7.3.3.3)
            self.roi = True
            self.stats["rot_fallbacks"] += 1
        return tassn

    def on_mgmt_response(self, ta, now: int = 0) -> None:
        """A management response message's TA bytes (BTAH onward, MGMTETAH.Rsp 1; module doc).
        Anything that answers no management request in flight is counted and dropped."""
        st = self.stats
        st["mgmt_responses"] += 1
        if len(ta) < 2 or ta[0] != MGMT_OPCODE:
            st["rx_malformed"] += 1
            return
        if self.compact:
            st["rx_malformed"] += 1
            return
        lay = self._mgmt_layout(1 if ta[1] & _UD_BIT else 0)[0]
        head = lay.size
        if len(ta) < head:
            st["rx_malformed"] += 1
            return
        v = int.from_bytes(ta[:head], "big")
        if not lay.get(v, "mgmtetah.rsp"):
            st["rx_malformed"] += 1
            return
        if lay.get(v, "btah.ini_rc_id") != self.rc_id:
            st["rx_wrong_rc"] += 1
            return
        tassn = lay.get(v, "btah.ini_tassn")
        e = self._inflight.get(tassn)
        if e is None or e.work.kind != _K_MGMT:
            st["rx_unexpected"] += 1
            return
        w = e.work
        wr = w.wr
        if (lay.get(v, "mgmtetah.code"), lay.get(v, "mgmtetah.sub_code"),
                lay.get(v, "btah.ini_rc_type")) != (
                MGMT_CODE_CFG, cfg_sub_code(wr.op == "mgmt_cfg_write", wr.cfg_space),
                self.rc_type):
            st["rx_unexpected"] += 1        # not the answer to the message sent with this MSN
            return
        code = lay.get(v, "mgmtetah.status")
        status = mgmt_status_of(code)
        wr.mgmt_status = code
        if status == SUCCESS:
            pdu = ta[head:]
            n = lay.get(v, "mgmtetah.pdu_length")
            if n < 4 or len(pdu) < 4:
                status = REMOTE_RESPONSE_LENGTH_ERROR    # no Data DW in the PDU
            elif wr.op == "mgmt_cfg_read":
                wr.result = int.from_bytes(pdu[:4], "big")      # ub.cfg_rsp.data
        del self._inflight[tassn]
        w.status = status
        w.nbytes = 4
        w.pending = 0
        self._finish(w, now)
        if self._backlog:
            self._pump(now)

    def _seg_error(self, tassn: int, status: str, rspinfo: int, now: int) -> None:
        e = self._inflight.get(tassn)
        if e is None:
            self.stats["rx_unexpected"] += 1
            return
        if status in ("rnr", "page_fault"):
            if e.retries < TA_RNR_RETRIES and self._retry_bit is not None:
                e.retries += 1
                self._retry_n += 1
                heapq.heappush(self._retry, (now + 2000 * (1 << min(rspinfo, 19)),
                                             self._retry_n, tassn))
                return
            status = RNR_RETRY_EXCEEDED
        del self._inflight[tassn]
        w = e.work
        if w.status == SUCCESS:
            w.status = status
        w.pending -= 1
        if w.pending == 0 and w.emitted:
            self._finish(w, now)

    # -- timers -----------------------------------------------------------------------------------
    def next_deadline(self) -> int | None:
        """When a segment answered RNR / Page Fault is due again, or a management request's
        wait ends (None: nothing waits)."""
        due = self._mgmt_due
        while due and due[0][3].done:
            heapq.heappop(due)
        r = self._retry[0][0] if self._retry else None
        if due and (r is None or due[0][0] < r):
            return due[0][0]
        return r

    def handle_timeout(self, now: int) -> None:
        """Send again, with BTAH.Retry set, the segments whose RNR timer expired; complete
        ``mgmt_timeout`` the management requests whose wait is over."""
        due = self._mgmt_due
        while due and due[0][0] <= now:
            _, _, tassn, w = heapq.heappop(due)
            if w.done:
                continue
            e = self._inflight.get(tassn)
            if e is not None and e.work is w:
                del self._inflight[tassn]
            self.stats["mgmt_timeouts"] += 1
            w.status = MGMT_TIMEOUT
            w.pending = 0
            self._finish(w, now)
        if self._backlog:
            self._pump(now)
        q = self._retry
        while q and q[0][0] <= now:
            _, _, tassn = heapq.heappop(q)
            e = self._inflight.get(tassn)
            if e is None:
                continue
            s, size = self._retry_bit
            old = e.seg
            head = (int.from_bytes(old.ta[:size], "big") | 1 << s).to_bytes(size, "big")
            e.seg = TaSegment(head + bytes(old.ta[size:]), old.payload, old.last, old.tag)
            self.stats["ta_retries"] += 1
            self.submit(e.seg)

    # -- completion -------------------------------------------------------------------------------
    def _finish(self, w: _Work, now: int) -> None:
        if w.done:
            return
        w.done = True
        self._n_active -= 1
        if w.counted:
            self._ordered -= 1
        cq = self._cq
        if not w.tco:
            w.reported = True
            cq.append(Completed(now, w.wr.wr_id, w.wr.op, w.status,
                                w.nbytes if w.status == SUCCESS else 0))
        # TCO work requests wait for every older one (module doc)
        order = self._order
        while order:
            x = order[0]
            if not x.done:
                break
            order.popleft()
            if not x.reported:
                x.reported = True
                cq.append(Completed(now, x.wr.wr_id, x.wr.op, x.status,
                                    x.nbytes if x.status == SUCCESS else 0))

    def fail_all(self, status: str, now: int = 0) -> None:
        """The channel below gave up: every outstanding work request completes with
        ``status`` (``retry_exceeded``, ``rnr_retry_exceeded``...; UB 2.0 §6.4.2.1)."""
        self._inflight.clear()
        self._backlog.clear()
        self._retry.clear()
        self._mgmt_due.clear()
        if self.alloc_state == "pending":
            self.alloc_state = "none"
        self._alloc_tassn = self._alloc_work = None
        for w in list(self._order):
            if not w.done:
                if w.status == SUCCESS:
                    w.status = status
                w.pending = 0
                w.emitted = True
                self._finish(w, now)
