"""A configuration space model for the transaction target's management requests (UB 2.0
§10.4.1.3, §10.4.3.3).

Addressing: one 32-bit address space of 4-byte registers (DWs) per Entity, addressed in DW units
as the configuration request PDU carries them (Request Address).  The slices sit where UB 2.0
Table 10-6 puts them: CFG1 (CFG1_BASIC and the CFG1 CAPs) is DW 0x1_0000..0x1_FFFF, everything
else is CFG0 (CFG0_BASIC and CAPs below 0x1_0000, the per-port slices from 0x2_0000, the route
table from 0xF000_0000).  Each Entity has its own CFG0 and CFG1; only Entity 0 has the port
slices and the route table (§10.2.2).  A request whose Sub Code names the other space than the
address lies in, or a port/route-table address of an Entity other than 0, is answered
``Bad_Address`` (0x22).

Registers are declared with :meth:`ConfigSpace.define` (a value and the bits software may
write; the others are read-only and keep their value on a write).  An address nothing was
declared at reads as 0 and ignores writes, as the undefined part of a slice does (§10.4.1.3);
with ``strict=True`` it is answered ``Bad_Address`` instead.  An Entity index that does not
exist is answered ``No_Target`` (0x02, the management target does not exist, §10.4.3.1).

Byte enables (§10.4.3.3 Fig 10-38): Byte_En bit i enables byte lane i of the DW, the bits
8i+7..8i of the register and of the request's Data (the lane order the Linux UB bus driver uses
for byte and word accesses: the enables shifted by the byte address modulo 4).  The spec
describes Byte_En for writes only; a read returns the whole DW.

The permission split between UBFM and Users (CFG0 read-only to a User, §10.4.1.1) depends on
NTH.Mgmt and the UPI, which the transaction layer does not see: it is not modelled here.
"""
from __future__ import annotations

from ...formats import enums as E

__all__ = ["ConfigSpace", "CFG1_FIRST", "CFG1_END", "PORT_FIRST", "space_of", "OK",
           "NO_TARGET", "BAD_ADDRESS"]

_ST = {v: k for k, v in E.MGMT_STATUS.items()}
OK = _ST["OK"]
NO_TARGET = _ST["No_Target"]
BAD_ADDRESS = _ST["Bad_Address"]

#: CFG1's DW addresses (UB 2.0 Table 10-6: CFG1_BASIC .. the last CFG1 CAP)
CFG1_FIRST, CFG1_END = 0x1_0000, 0x2_0000
#: the first DW of the port slices; they and the route table exist in Entity 0 only
PORT_FIRST = 0x2_0000

_DW = 0xFFFF_FFFF


def space_of(addr: int) -> int:
    """0 (CFG0) or 1 (CFG1): the configuration space DW address ``addr`` lies in."""
    return 1 if CFG1_FIRST <= addr < CFG1_END else 0


def _lanes(be: int) -> int:
    """The 32-bit mask of the byte lanes Byte_En ``be`` enables."""
    m = 0
    for i in range(4):
        if be >> i & 1:
            m |= 0xFF << (8 * i)
    return m


class ConfigSpace:
    """See the module doc.  ``entities``: the Entity indexes that exist (Entity 0 by default);
    ``strict``: undeclared registers are ``Bad_Address`` rather than read-as-zero."""

    def __init__(self, entities=(0,), *, strict: bool = False):
        self.strict = strict
        # entity -> {DW address: [value, writable mask]}
        self._regs: dict[int, dict[int, list]] = {}
        for e in entities:
            self.add_entity(e)

    def add_entity(self, entity: int) -> None:
        if not 0 <= entity < 1 << 16:
            raise ValueError("Entity_idx has 16 bits (UB 2.0 §10.4.3.3)")
        self._regs.setdefault(entity, {})

    @property
    def entities(self) -> tuple:
        return tuple(sorted(self._regs))

    def define(self, entity: int, addr: int, value: int = 0, *, writable: int = _DW) -> None:
        """A register at DW ``addr`` of ``entity`` (created if new) holding ``value``;
        ``writable``: the bits a configuration write may change."""
        if not 0 <= addr <= _DW:
            raise ValueError("configuration addresses are 32-bit DW addresses")
        if not (0 <= value <= _DW and 0 <= writable <= _DW):
            raise ValueError("a register is 32 bits")
        self.add_entity(entity)
        self._regs[entity][addr] = [value, writable]

    def peek(self, entity: int, addr: int) -> int:
        """A register's value as it is (0 when undeclared), without any check."""
        r = self._regs.get(entity, {}).get(addr)
        return 0 if r is None else r[0]

    def _check(self, entity: int, space: int, addr: int):
        regs = self._regs.get(entity)
        if regs is None:
            return NO_TARGET, None
        if space_of(addr) != space or (entity != 0 and addr >= PORT_FIRST):
            return BAD_ADDRESS, None
        r = regs.get(addr)
        if r is None and self.strict:
            return BAD_ADDRESS, None
        return OK, r

    def read(self, entity: int, space: int, addr: int) -> tuple[int, int]:
        """(MGMTETAH status code, the DW read) of a CFG``space`` read."""
        st, r = self._check(entity, space, addr)
        return st, (r[0] if r is not None else 0)

    def write(self, entity: int, space: int, addr: int, be: int, data: int) -> int:
        """A CFG``space`` write of ``data`` under Byte_En ``be``: the MGMTETAH status code."""
        st, r = self._check(entity, space, addr)
        if r is not None:
            m = _lanes(be) & r[1]
            r[0] = (r[0] & ~m | data & m) & _DW
        return st
