"""Workload specs: a short text naming the operations to run, turned into
:class:`~ubpkt.stack.transaction.ops.WorkRequest` s laid out in one target segment.

Grammar (items separated by commas; spaces ignored)::

    write:64KiB*100,read:4KiB,atomic:cas,send:1KiB,atomic:fetch_add:4*10

* ``write:SIZE``, ``read:SIZE``, ``send:SIZE`` (also ``write_with_immediate:SIZE`` and
  ``send_with_immediate:SIZE``): SIZE in bytes, with ``B``, ``KiB``/``K``/``KB``, ``MiB``/``M``/
  ``MB`` or ``GiB`` (all powers of 1024);
* ``atomic:KIND[:SIZE]``: KIND one of :data:`ATOMIC_KINDS` (``cas`` is Atomic_compare_swap,
  ``store``/``load`` are Atomic_store/Atomic_load with the ADD sub-operation, UB 2.0
  §7.4.2.3.2); SIZE the operand size, 1..64 bytes, a power of two (default 8);
* ``*N`` after an item repeats it N times.

:func:`plan` lays the items out: each work request gets its own slot in the target segment
(``base`` onward, in spec order, slots aligned to 64 bytes; atomics naturally aligned, §7.2.3),
its own seeded source bytes (write, send) or buffer (read), and its own seeded operands
(atomics).  A Send names a receive queue, not a segment: it takes no slot.  The :class:`Plan`
keeps what a verifier needs: the bytes each slot must hold after the workload, given what the
slots held before.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from .transaction.ops import ATOMIC_SIZES, OP_OPCODE, WorkRequest, atomic_apply

__all__ = ["WorkItem", "Slot", "Plan", "parse_size", "parse_workload", "plan",
           "ATOMIC_KINDS", "DATA_OPS"]

#: workload atomic kinds -> WorkRequest op names (UB 2.0 §7.4.2.3)
ATOMIC_KINDS = {
    "cas": "compare_swap", "compare_swap": "compare_swap", "swap": "swap",
    "fetch_add": "fetch_add", "fetch_sub": "fetch_sub", "fetch_and": "fetch_and",
    "fetch_or": "fetch_or", "fetch_xor": "fetch_xor", "store": "atomic_store",
    "load": "atomic_load",
}
#: ops taking a size
DATA_OPS = ("write", "read", "send", "write_with_immediate", "send_with_immediate")
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}
_SIZE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")
_SLOT_ALIGN = 64
_MAX_COUNT = 1 << 24


def parse_size(text: str) -> int:
    """``4096``, ``4KiB``, ``1MiB``, ``64K`` -> bytes."""
    m = _SIZE.match(str(text))
    if not m or m[2].lower() not in _UNITS:
        raise ValueError(f"{text!r}: not a size (a number with B, KiB, MiB or GiB)")
    return int(m[1]) * _UNITS[m[2].lower()]


@dataclass(frozen=True)
class WorkItem:
    """One item of a spec: ``op`` (``write``, ``read``, ``send``... or ``atomic``), ``size``
    (bytes; the operand size of an atomic), ``count``, ``kind`` (an atomic's WorkRequest op)."""
    op: str
    size: int
    count: int = 1
    kind: str | None = None

    def __str__(self) -> str:
        if self.op == "atomic":
            name = next(k for k, v in ATOMIC_KINDS.items() if v == self.kind)
            s = f"atomic:{name}" + (f":{self.size}" if self.size != 8 else "")
        else:
            s = f"{self.op}:{self.size}"
        return s + (f"*{self.count}" if self.count != 1 else "")


def parse_workload(spec: str) -> list[WorkItem]:
    """The items of ``spec`` (see the module doc); ValueError names the bad item."""
    if not spec or not spec.strip():
        raise ValueError("empty workload")
    items = []
    for raw in spec.split(","):
        text = raw.strip()
        if not text:
            continue
        body, star, rep = text.partition("*")
        count = 1
        if star:
            try:
                count = int(rep.strip())
            except ValueError:
                raise ValueError(f"{text!r}: *N needs a number") from None
            if not 1 <= count <= _MAX_COUNT:
                raise ValueError(f"{text!r}: the count must be 1..{_MAX_COUNT}")
        parts = [p.strip() for p in body.split(":")]
        op = parts[0].lower()
        if op == "atomic":
            if len(parts) < 2 or parts[1].lower() not in ATOMIC_KINDS:
                raise ValueError(f"{text!r}: atomic:KIND with KIND one of "
                                 f"{', '.join(ATOMIC_KINDS)}")
            if len(parts) > 3:
                raise ValueError(f"{text!r}: atomic:KIND[:SIZE]")
            size = parse_size(parts[2]) if len(parts) == 3 else 8
            if size not in ATOMIC_SIZES:
                raise ValueError(f"{text!r}: an atomic operand is 1, 2, 4, 8, 16, 32 or 64 "
                                 "bytes (UB 2.0 §7.4.2.3.2)")
            items.append(WorkItem("atomic", size, count, ATOMIC_KINDS[parts[1].lower()]))
        elif op in DATA_OPS:
            if len(parts) != 2:
                raise ValueError(f"{text!r}: {op}:SIZE")
            size = parse_size(parts[1])
            if size < 1:
                raise ValueError(f"{text!r}: the size must be at least 1 byte")
            items.append(WorkItem(op, size, count))
        else:
            raise ValueError(f"{text!r}: unknown operation {op!r} (write, read, send, atomic, "
                             "write_with_immediate, send_with_immediate)")
    if not items:
        raise ValueError("empty workload")
    return items


@dataclass
class Slot:
    """Where one work request acts in the target segment: ``offset`` (from ``base``),
    ``length``; ``wr`` the request."""
    index: int
    op: str
    offset: int
    length: int
    wr: WorkRequest


@dataclass
class Plan:
    """Work requests laid out in a target segment (see :func:`plan`)."""
    items: list
    wrs: list
    slots: list                     # Slot per work request (Sends: offset None)
    base: int
    tokenid: int
    tokenvalue: int | None
    extent: int                     # bytes of the segment the workload touches
    data: dict = field(default_factory=dict)    # wr index -> source bytes (write, send)
    bufs: dict = field(default_factory=dict)    # wr index -> read buffer / atomic result

    def counts(self) -> dict:
        out: dict = {}
        for s in self.slots:
            out[s.op] = out.get(s.op, 0) + 1
        return out

    def payload_bytes(self) -> int:
        """Bytes the workload moves (atomics: their operand size)."""
        return sum(s.length for s in self.slots)

    def touched(self) -> list:
        """Slots whose target bytes the workload reads or changes (read, write, atomic)."""
        return [s for s in self.slots if s.offset is not None]

    def expected(self, s: Slot, before: bytes) -> bytes | None:
        """The bytes slot ``s`` holds after its request ran once on ``before`` (None: a Send,
        no segment bytes)."""
        if s.offset is None:
            return None
        if s.op == "read":
            return bytes(before)
        if s.op in ("write", "write_with_immediate"):
            return bytes(self.data[s.index])
        wr = s.wr
        bits = s.length * 8
        mem = int.from_bytes(before, "little")
        new = atomic_apply(OP_OPCODE[wr.op], mem, wr.operand1, wr.operand2, bits,
                           _subop_code(wr.subop))
        return new.to_bytes(s.length, "little")


def _subop_code(subop) -> int:
    if isinstance(subop, int):
        return subop
    from .transaction.ops import SUBOPS
    return SUBOPS[subop]


def plan(items, *, base: int = 0, tokenid: int = 0, tokenvalue: int | None = None,
         seed: int = 1, first_wr_id: int = 0, align: int = _SLOT_ALIGN) -> Plan:
    """Lay ``items`` (a spec string or :func:`parse_workload`'s list) out from ``base`` (see
    the module doc).  Operands and data come from ``random.Random(seed)``."""
    if isinstance(items, str):
        items = parse_workload(items)
    rng = random.Random(seed)
    wrs, slots = [], []
    data, bufs = {}, {}
    off = 0
    i = 0
    for it in items:
        for _ in range(it.count):
            wr_id = first_wr_id + i
            if it.op == "atomic":
                size = it.size
                off = -(-off // max(size, 8)) * max(size, 8)
                bits = size * 8
                op1 = rng.getrandbits(bits)
                op2 = 0
                if it.kind == "compare_swap":
                    # compare with the value the slot holds before (a verifier fills it with
                    # plan.prefill); a fresh zeroed segment matches half the time
                    op2 = 0
                wr = WorkRequest(wr_id, it.kind, remote_addr=base + off, size=size,
                                 operand1=op1, operand2=op2, tokenid=tokenid,
                                 tokenvalue=tokenvalue)
                if it.kind == "atomic_store" or it.kind == "atomic_load":
                    wr.subop = 0            # ADD
                bufs[i] = None
                slots.append(Slot(i, "atomic", off, size, wr))
                off += size
            elif it.op in ("send", "send_with_immediate"):
                src = rng.randbytes(it.size)
                data[i] = src
                wr = WorkRequest(wr_id, it.op, local=memoryview(src))
                if it.op == "send_with_immediate":
                    wr.imm = rng.getrandbits(64)
                slots.append(Slot(i, it.op, None, it.size, wr))
            else:
                off = -(-off // align) * align
                if it.op == "read":
                    buf = bytearray(it.size)
                    bufs[i] = buf
                    wr = WorkRequest(wr_id, "read", local=memoryview(buf), length=it.size,
                                     remote_addr=base + off, tokenid=tokenid,
                                     tokenvalue=tokenvalue)
                else:
                    src = rng.randbytes(it.size)
                    data[i] = src
                    wr = WorkRequest(wr_id, it.op, local=memoryview(src),
                                     remote_addr=base + off, tokenid=tokenid,
                                     tokenvalue=tokenvalue)
                    if it.op == "write_with_immediate":
                        wr.imm = rng.getrandbits(64)
                slots.append(Slot(i, it.op, off, it.size, wr))
                off += it.size
            wrs.append(wr)
            i += 1
    return Plan(list(items), wrs, slots, base, tokenid, tokenvalue, off, data, bufs)


def prefill(p: Plan, seed: int = 2) -> dict:
    """Seeded bytes for every slot a read or an atomic uses (``{index: bytes}``): written
    before the workload, they make reads and atomics checkable.  A compare-and-swap's compare
    operand is set to its slot's prefill, so it swaps."""
    rng = random.Random(seed)
    out = {}
    for s in p.slots:
        if s.op in ("read", "atomic"):
            b = rng.randbytes(s.length)
            out[s.index] = b
            if s.op == "atomic" and s.wr.op == "compare_swap":
                s.wr.operand2 = int.from_bytes(b, "little")
    return out


__all__.append("prefill")
