"""Work requests, operation and status names, and the transaction-header layouts shared by the
initiator and the target (UB 2.0 ch. 7).

Operations
----------
The names a :class:`WorkRequest` takes in ``op`` and the TAOpcode each one sends (UB 2.0 §7.1,
Table 7-1, §7.4):

========================  ======  ===============================================================
op                        TAOp    notes
========================  ======  ===============================================================
``write``                 0x03    segmented by MTU, one TASSN per segment (§7.3.1.1, §7.4.2.1.1)
``write_with_immediate``  0x04    earlier segments are Writes, the last one carries the IMMETAH
``write_with_notify``     0x05    earlier segments are Writes, the last one carries the NTFETAH
``write_with_be``         0x14    one packet, 64..1024 bytes, the BEETAH from ``wr.be``
``writeback``             0x17    one packet
``writeback_with_be``     0x18    one packet, as ``write_with_be``
``read``                  0x06    one request (one TASSN); the answer may span several packets
``send``                  0x00    one TASSN for every packet of the message (§7.4.3.1)
``send_with_immediate``   0x01    earlier packets are Sends, the last one carries the IMMETAH
``compare_swap``          0x07    ``operand1`` swap data, ``operand2`` compare data
``swap``                  0x08
``atomic_store``          0x09    ``subop`` in UDETAH[23:20]; no data comes back
``atomic_load``           0x0A    ``subop`` in UDETAH[23:20]
``fetch_add`` .. ``fetch_xor``    0x0B..0x0F
``prefetch_tgt``          0x15    no response (UNO); completes when handed to transport
``mgmt_cfg_read``         0x10    configuration read (MGMTETAH Code 2, Sub Code 0 / 2 for
                                  ``cfg_space`` 0 / 1); the data read goes to ``wr.result``
``mgmt_cfg_write``        0x10    configuration write (Sub Code 1 / 3), ``wr.data`` under the
                                  Byte_En bits ``wr.be`` (default 0xF)
========================  ======  ===============================================================

Management (UB 2.0 §7.4.5.1, §10.4.3.3): a configuration message is one packet, full BTAH only
(TAOpcode 0x10, TV_EN 0, ODR NO: UNO mode), the MSN in BTAH.INI_TASSN and the message queue
index (the initiator's ``rc_id``) in BTAH.INI_RC_ID, then the MGMTETAH and the 16-byte
configuration request PDU (``ub.cfg_req``: ``entity_idx``, ``be`` as Byte_En, ``remote_addr`` as
the Request Address in 4-byte units, ``data``).  No TAACK answers it: the target sends a
management response message (BTAH TAOpcode 0x10 again, MGMTETAH.Rsp 1 with a status, the
``ub.cfg_rsp`` PDU), matched on the MSN and the queue index.  The MGMTETAH status becomes the
completion status (:data:`MGMT_STATUS_OF`) and ``wr.mgmt_status`` keeps the raw code.

Statuses
--------
A completion's ``status`` (``Completed.status``), and how the target's error answers map to the
full ATAH's RSPST/RSPINFO (UB 2.0 §7.2.2 Table 7-3; the CQE names follow §10.6.2.2.2, Table
10-12):

* ``success``: RSPST 0 (or 5, accepted but not yet persistent: also success to the initiator).
* ``remote_access_error``: RSPST 3 Completer Error, RSPINFO 2 Remote Abort (Table 10-12 A.3.2,
  "remote access abort").  The target answers this when the access check of the memory segment
  or the target queue fails: unknown TokenID, TokenValue missing or wrong, the segment does not
  grant the permission, the range is outside the segment, a Send longer than the posted buffer.
  Nothing is changed in memory.
* ``unsupported``: RSPST 3, RSPINFO 1 Unsupported Request (A.3.1): a request the target cannot
  run as formed: a reserved or unsupported TAOpcode, an atomic operand size outside
  1..64 bytes or not a power of two, a misaligned atomic address (§7.2.3), an atomic without
  its operands, Atomic_store/Atomic_load without a UDETAH, a BEETAH/payload size mismatch, an
  unknown target queue (TCID).
* ``remote_abort``: RSPST 3 with a reserved RSPINFO (not sent by the reference target).
* ``rnr_retry_exceeded``: the transaction-level RNR / page-fault retries ran out (RSPST 1/2,
  §7.3.1.1), or given to :meth:`Initiator.fail_all` by a channel that exhausted its RNR retries.
* ``retry_exceeded``: given to ``fail_all`` by a channel whose retransmissions ran out.
* ``remote_response_length_error``: a Read_response or Atomic_response whose length does not
  match the request (A.2.3).
* ``local_length_error``: a target-side receive completion whose message did not fit the posted
  buffer (A.2.1).
* compact ATAH: Status 1 (authentication failed) is ``remote_access_error`` (§7.2.2).
* management responses (§10.4.3.1 error codes, ``enums.MGMT_STATUS``): 0x00 is ``success``,
  every other code ``mgmt_<name>`` in lower case (``mgmt_bad_code``, ``mgmt_bad_address``,
  ``mgmt_no_target``...); a reserved code is ``mgmt_unknown``.  ``mgmt_timeout``: no response
  came within the initiator's ``mgmt_timeout_ns`` (management messages have no transport or
  transaction-level reliability, §10.4.3.1: the software above retries).

Byte orders (UB 2.0 §7.4.2.3.2-3)
---------------------------------
The request payload diagram puts Operand1[7:0] in byte 0: operands travel little-endian; the
response diagram puts Origin_data[63:56] in byte 0: the old value travels big-endian.  The
reference stack follows both figures as drawn (:data:`OPERAND_ORDER`, :data:`ORIGIN_ORDER`);
target memory holds integers little-endian, as the operands' byte image.

Atomic sub-operations (UB 2.0 §7.4.2.3.2)
-----------------------------------------
The codes 0..7 (ADD, CLR, EOR, SET, SMAX, SMIN, UMAX, UMIN) are the Arm LSE ``opc`` encoding,
name for name.  The prose of Table 7-16 describes 0x1 (CLR) as XOR and 0x2 (EOR) as AND with the
inverted operand, which is the other way round from those names; the reference stack follows the
names (CLR: ``mem & ~op``, EOR: ``mem ^ op``), see :data:`SUBOP_FUNCS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ...errors import UBError
from ...formats import HEADERS
from ...formats import enums as E
from ...formats.grammar import logical
from ..engine import Completed

__all__ = ["WorkRequest", "RecvCompleted", "TransactionError", "OPS", "OP_OPCODE",
           "OPCODE_OP", "ATOMIC_OPS", "SUBOPS", "SUBOP_FUNCS", "STATUSES", "SUCCESS",
           "REMOTE_ACCESS_ERROR", "UNSUPPORTED", "REMOTE_ABORT", "RNR_RETRY_EXCEEDED",
           "RETRY_EXCEEDED", "REMOTE_RESPONSE_LENGTH_ERROR", "LOCAL_LENGTH_ERROR",
           "STATUS_RSP", "status_of", "TaLayout", "OPERAND_ORDER", "ORIGIN_ORDER",
           "ATOMIC_SIZES", "BE_SIZES", "atomic_apply", "MGMT_OPS", "MGMT_OPCODE", "MGMT_CODE_CFG",
           "MGMT_STATUS_OF", "MGMT_STATUS_CODE", "MGMT_TIMEOUT", "mgmt_status_of",
           "cfg_sub_code"]


class TransactionError(UBError, ValueError):
    """A work request the transaction engines cannot take (API misuse: too many outstanding,
    a length no header can carry, an unknown op, a missing buffer)."""


# ------------------------------------------------------------------------------------------------
# operations

_OPC = {v: k for k, v in E.TAOPCODE.items()}
OP_OPCODE: dict[str, int] = {
    "send": _OPC["Send"], "send_with_immediate": _OPC["Send_with_immediate"],
    "write": _OPC["Write"], "write_with_immediate": _OPC["Write_with_immediate"],
    "write_with_notify": _OPC["Write_with_notify"], "read": _OPC["Read"],
    "compare_swap": _OPC["Atomic_compare_swap"], "swap": _OPC["Atomic_swap"],
    "atomic_store": _OPC["Atomic_store"], "atomic_load": _OPC["Atomic_load"],
    "fetch_add": _OPC["Atomic_fetch_add"], "fetch_sub": _OPC["Atomic_fetch_sub"],
    "fetch_and": _OPC["Atomic_fetch_and"], "fetch_or": _OPC["Atomic_fetch_or"],
    "fetch_xor": _OPC["Atomic_fetch_xor"], "write_with_be": _OPC["Write_with_be"],
    "prefetch_tgt": _OPC["Prefetch_tgt"], "writeback": _OPC["Writeback"],
    "writeback_with_be": _OPC["Writeback_with_be"],
}
OPCODE_OP = {v: k for k, v in OP_OPCODE.items()}
#: Management (TAOpcode 0x10, UB 2.0 §7.4.5.1): configuration read and write (§10.4.3.3)
MGMT_OPCODE = _OPC["Management"]
MGMT_OPS = ("mgmt_cfg_read", "mgmt_cfg_write")
OP_OPCODE.update({op: MGMT_OPCODE for op in MGMT_OPS})
OPS = tuple(OP_OPCODE)
#: MGMTETAH Code of a configuration message (Table 10-11)
MGMT_CODE_CFG = {v: k for k, v in E.MGMT_CODE.items()}["Configuration"]


def cfg_sub_code(write: bool, space: int) -> int:
    """The MGMTETAH Sub Code of a configuration message (Table 10-11): CFG0 read 0, CFG0 write
    1, CFG1 read 2, CFG1 write 3."""
    return 2 * space + int(write)
ATOMIC_OPS = frozenset(op for op, c in OP_OPCODE.items() if c in E.ATOMICS)
#: atomic operand sizes (MAETAH.Length, §7.4.2.3.2)
ATOMIC_SIZES = (1, 2, 4, 8, 16, 32, 64)
#: Write_with_be / Writeback_with_be payload sizes, one BE bit per byte (§7.2.10)
BE_SIZES = (64, 128, 256, 512, 1024)
OPERAND_ORDER = "little"
ORIGIN_ORDER = "big"

#: sub-operation name -> code (UDETAH[23:20], §7.4.2.3.2)
SUBOPS = {v: k for k, v in E.ATOMIC_SUBOP.items()}


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


#: code -> f(memory value, operand, bits) -> new memory value (all unsigned, ``bits`` wide)
SUBOP_FUNCS = {
    0: lambda m, o, b: (m + o) & ((1 << b) - 1),                      # ADD
    1: lambda m, o, b: m & ~o & ((1 << b) - 1),                       # CLR (bit clear)
    2: lambda m, o, b: m ^ o,                                         # EOR (exclusive or)
    3: lambda m, o, b: m | o,                                         # SET
    4: lambda m, o, b: m if _signed(m, b) >= _signed(o, b) else o,    # SMAX
    5: lambda m, o, b: m if _signed(m, b) <= _signed(o, b) else o,    # SMIN
    6: lambda m, o, b: m if m >= o else o,                            # UMAX
    7: lambda m, o, b: m if m <= o else o,                            # UMIN
}
_FETCH = {
    0x0B: lambda m, o, b: (m + o) & ((1 << b) - 1),
    0x0C: lambda m, o, b: (m - o) & ((1 << b) - 1),
    0x0D: lambda m, o, b: m & o,
    0x0E: lambda m, o, b: m | o,
    0x0F: lambda m, o, b: m ^ o,
}


def atomic_apply(opcode: int, mem: int, op1: int, op2: int, bits: int, subop: int = 0) -> int:
    """The new memory value of atomic ``opcode`` (UB 2.0 §7.4.2.3.2 Table 7-16) on ``mem``."""
    if opcode == 0x07:
        return op1 if mem == op2 else mem
    if opcode == 0x08:
        return op1
    if opcode in (0x09, 0x0A):
        return SUBOP_FUNCS[subop](mem, op1, bits)
    return _FETCH[opcode](mem, op1, bits)


# ------------------------------------------------------------------------------------------------
# statuses

SUCCESS = "success"
REMOTE_ACCESS_ERROR = "remote_access_error"
UNSUPPORTED = "unsupported"
REMOTE_ABORT = "remote_abort"
RNR_RETRY_EXCEEDED = "rnr_retry_exceeded"
RETRY_EXCEEDED = "retry_exceeded"
REMOTE_RESPONSE_LENGTH_ERROR = "remote_response_length_error"
LOCAL_LENGTH_ERROR = "local_length_error"
MGMT_TIMEOUT = "mgmt_timeout"
#: MGMTETAH.Status code -> completion status (§10.4.3.1; module doc)
MGMT_STATUS_OF = {c: SUCCESS if c == 0 else "mgmt_" + n.lower() for c, n in E.MGMT_STATUS.items()}
#: completion status -> MGMTETAH.Status code (what the target sends)
MGMT_STATUS_CODE = {v: k for k, v in MGMT_STATUS_OF.items()}
STATUSES = (SUCCESS, REMOTE_ACCESS_ERROR, UNSUPPORTED, REMOTE_ABORT, RNR_RETRY_EXCEEDED,
            RETRY_EXCEEDED, REMOTE_RESPONSE_LENGTH_ERROR, LOCAL_LENGTH_ERROR, MGMT_TIMEOUT) + \
    tuple(s for s in MGMT_STATUS_OF.values() if s != SUCCESS)


def mgmt_status_of(code: int) -> str:
    """The completion status of a management response's MGMTETAH.Status (reserved codes:
    ``mgmt_unknown``)."""
    return MGMT_STATUS_OF.get(code, MGMT_STATUS_OF[0xFF])

_RSPST = {v: k for k, v in E.TA_RSPST.items()}
#: what the target sends for a status: (RSPST, RSPINFO) of the full ATAH (Table 7-3)
STATUS_RSP = {
    SUCCESS: (_RSPST["Success"], 0),
    REMOTE_ACCESS_ERROR: (_RSPST["Completer_Error"], 2),
    UNSUPPORTED: (_RSPST["Completer_Error"], 1),
    REMOTE_ABORT: (_RSPST["Completer_Error"], 2),
    LOCAL_LENGTH_ERROR: (_RSPST["Completer_Error"], 2),
}
RSPST_SUCCESS = _RSPST["Success"]
RSPST_RNR = _RSPST["RNR"]
RSPST_PAGE_FAULT = _RSPST["Page_Fault"]
RSPST_COMPLETER_ERROR = _RSPST["Completer_Error"]
RSPST_NOT_PERSISTED = _RSPST["Not_Persisted"]


def status_of(rspst: int, rspinfo: int) -> str:
    """The completion status of a full ATAH's RSPST/RSPINFO (``rnr``/``page_fault`` for the two
    statuses the initiator retries, UB 2.0 §7.3.1.1)."""
    if rspst in (RSPST_SUCCESS, RSPST_NOT_PERSISTED):
        return SUCCESS
    if rspst == RSPST_COMPLETER_ERROR:
        return {1: UNSUPPORTED, 2: REMOTE_ACCESS_ERROR}.get(rspinfo, REMOTE_ABORT)
    if rspst == RSPST_RNR:
        return "rnr"
    if rspst == RSPST_PAGE_FAULT:
        return "page_fault"
    return REMOTE_ABORT


# ------------------------------------------------------------------------------------------------
# work requests and target completions

@dataclass(eq=False)
class WorkRequest:
    """One operation posted to an :class:`~ubpkt.stack.transaction.initiator.Initiator`.

    ``local``: the local buffer (bytes-like; writable for ``read`` and for the old value of an
    atomic), or an address in the initiator's ``memory``, or None (atomics: the old value is
    only put in ``result``).  ``length``: bytes to move (default: the buffer's length; required
    with an address).  ``remote_addr``/``tokenid``/``tokenvalue``: the target memory segment
    (MAETAH, TVETAH; ``tokenvalue`` None sends no TVETAH).  ``order``: ODR name or value
    (``NO``, ``RO``, ``SO``, ``NO_TCO``...; §7.2.1).  ``tcid``/``tc_type``/``hint``: the target
    queue of a Send or Write_with_immediate (MTETAH); ``imm``/``imm_tokenvalue``: IMMETAH.
    ``notify_*``: NTFETAH.  ``be``: the byte-enable bitmap, bit n for payload byte n (BEETAH).
    ``size``, ``operand1``, ``operand2``, ``subop``: atomics (``subop`` a name of
    ``ATOMIC_SUBOP`` or its code).  ``ud``: a UDETAH value for the other ops.  ``no_taack``:
    BTAH.No_TAACK (CTP only; the WR completes when handed to transport).
    Management (``mgmt_cfg_read``/``mgmt_cfg_write``): ``entity_idx``, ``cfg_space`` (0: CFG0,
    1: CFG1), ``remote_addr`` the register's address in 4-byte units, ``be`` the 4-bit
    Byte_En (None: all four bytes), ``data`` the DW written (bit 8i..8i+7 is byte lane i, the
    one Byte_En bit i enables).
    ``result`` is set by the initiator: an atomic's old value, the DW a configuration read
    returned; ``mgmt_status`` the raw MGMTETAH.Status of a management response.
    """

    wr_id: int
    op: str
    local: Any = None
    length: int | None = None
    remote_addr: int = 0
    tokenid: int = 0
    tokenvalue: int | None = None
    order: Any = "NO"
    tcid: int = 0
    tc_type: int = 0
    hint: int = 0
    imm: int = 0
    imm_tokenvalue: int = 0
    notify_addr: int = 0
    notify_tokenid: int = 0
    notify_tokenvalue: int = 0
    notify_data: int = 0
    be: int | None = None
    size: int = 8
    operand1: int = 0
    operand2: int = 0
    subop: Any = 0
    ud: int | None = None
    no_taack: bool = False
    entity_idx: int = 0
    cfg_space: int = 0
    data: int = 0
    result: int | None = None
    mgmt_status: int | None = None


@dataclass(slots=True)
class RecvCompleted(Completed):
    """A target-side completion (a consumed receive buffer: Send, Send_with_immediate,
    Write_with_immediate; UB 2.0 §7.3.2.3 note 2): ``imm`` is the IMMETAH immediate data (None
    without one), ``tcid`` the target queue."""
    imm: int | None = None
    tcid: int = 0


# ------------------------------------------------------------------------------------------------
# transaction-header layouts: a chain of declared headers read and written as one integer

class TaLayout:
    """Transaction headers in wire order (concrete layer ids from ``grammar.ta_sequence``) seen
    as one big-endian integer: ``shift[key]``/``mask[key]`` place each field, keyed
    ``<logical prefix>.<field>`` (``btah.ini_tassn``, ``maetah.address``).  Everything comes
    from the declarations (``ubpkt.formats.transaction``); a field's record ``shift`` (the
    compact MAETAH address) is applied by :meth:`pack` and :meth:`get`."""

    __slots__ = ("layers", "size", "bits", "shift", "mask", "vshift")

    def __init__(self, layers):
        self.layers = tuple(layers)
        hs = [HEADERS[lay] for lay in self.layers]
        total = sum(h.bits for h in hs)
        self.bits = total
        self.size = total // 8
        self.shift: dict[str, int] = {}
        self.mask: dict[str, int] = {}
        self.vshift: dict[str, int] = {}
        off = 0
        for lay, h in zip(self.layers, hs):
            name = logical(lay)
            name = name[3:] if name.startswith("ub.") else name
            for f, fo in zip(h.fields, h.offsets):
                if f.reserved:
                    continue
                key = f"{name}.{f.name}"
                self.shift[key] = total - off - fo - f.bits
                self.mask[key] = (1 << f.bits) - 1
                self.vshift[key] = f.shift
            off += h.bits

    def __contains__(self, key: str) -> bool:
        return key in self.shift

    def pack(self, values: Mapping[str, int], base: int = 0) -> int:
        """``base`` with ``values`` (record values, keyed as above) or-ed in; keys this layout
        does not have are ignored (the optional headers)."""
        v = base
        shift, mask, vs = self.shift, self.mask, self.vshift
        for k, x in values.items():
            s = shift.get(k)
            if s is None:
                continue
            x >>= vs[k]
            if x < 0 or x > mask[k]:
                raise TransactionError(f"{k}: {x} does not fit in the header field")
            v |= x << s
        return v

    def get(self, v: int, key: str) -> int:
        return ((v >> self.shift[key]) & self.mask[key]) << self.vshift[key]

    def to_bytes(self, v: int) -> bytes:
        return v.to_bytes(self.size, "big")

    def __repr__(self) -> str:
        return f"<TaLayout {'+'.join(self.layers)} {self.size}B>"
