"""``ls()`` for the UB layers: scapy's listing, with every enum field's names and values.

scapy's own ``ls(cls, verbose=True)`` lists the values of byte-aligned enum fields only; the UB
headers' enums are bit fields (:class:`ubpkt.scapy.fields.UBEnumBits`), so their names would be
missing.  This ``ls`` shows them by default (``verbose=False`` for the short form); any other
argument goes to scapy's ``ls``.
"""
from __future__ import annotations

from scapy.packet import Packet, ls as scapy_ls

from .fields import UBEnumBits

__all__ = ["ls", "enum_lines"]


def enum_lines(field: UBEnumBits) -> list[str]:
    """``name: value`` lines of an enum field, by value."""
    return [f"{name}: {value}" for value, name in sorted(field.i2s.items())]


def ls(obj=None, case_sensitive: bool = False, verbose: bool = True) -> None:
    """List layers (no argument, or a name pattern) or the fields of a layer class or packet,
    with the names each UB enum field accepts."""
    from .layers import UBPacket
    is_pkt = isinstance(obj, Packet)
    cls = type(obj) if is_pkt else obj
    if not (isinstance(cls, type) and issubclass(cls, UBPacket)):
        scapy_ls(obj, case_sensitive=case_sensitive, verbose=verbose)
        return
    for f in cls.fields_desc:
        dflt = f.default
        line = f"{f.name:<10} : {type(f).__name__ + ' (' + str(getattr(f, 'ub_bits', '')) + ' bits)':<35} ="
        if is_pkt:
            line += f" {obj.getfieldval(f.name)!r:<15}"
        print(f"{line} ({dflt!r})")
        if verbose and isinstance(f, UBEnumBits):
            for text in enum_lines(f):
                print(f"{'':15}{text}")
    if is_pkt and obj.payload:
        print("--")
        ls(obj.payload, case_sensitive, verbose)
