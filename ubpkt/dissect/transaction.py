"""Transaction headers and their extension headers per opcode (UB 2.0 ch. 7).

The header order per TAOpcode, its flag and profile gates, and the full/compact forms are the
grammar's (:func:`ubpkt.formats.grammar.ta_sequence`, ``VARIANTS``)."""
from __future__ import annotations

from ..formats import enums as E
from ..formats.grammar import (ATOMIC_OPERAND_BYTES, ATOMIC_RESPONSE, ATOMIC_SUBOP_OPCODES,
                               TA_FLAGS, TA_RESPONSE_IN_DATA_NS3, be_bits, resolve, ta_sequence)
from .frame import ERROR, H, INFO, WARNING, Frame
from .walk import PROCS, reads, run



def _tah(fr: Frame) -> None:
    """The TAH and its extension headers (UB 2.0 §7.2, §7.4)."""
    p = fr.profile
    op = fr.peek()
    if op is None:
        fr.issue(ERROR, "ub.btah", None, fr.pos, "truncated transaction header")
        return
    start = fr.pos
    compact = fr.compact
    if op in E.TA_RESPONSES and fr.tp_data and not compact and p.ns3_layouts:
        # ns-3-UB sends TA responses in RTP data packets as a full BTAH + MAETAH (dialect §6.7)
        if fr.take(H["ub.btah"]) is None:
            return
        seq = [resolve(s, p) for s in TA_RESPONSE_IN_DATA_NS3]
    elif op in E.TA_RESPONSES:
        if fr.take(H[resolve("ub.atah", p, compact)]) is None:
            return
        seq = ta_sequence(op, True, {}, p, compact)
    else:
        h = H[resolve("ub.btah", p, compact)]
        v = fr.take(h)
        if v is None:
            return
        ix = h.index
        flags = {"tv_en": v[ix["tv_en"]], "ud_flag": v[ix["ud_flag"]]}
        if op not in E.TAOPCODE:
            dialect = E.TAOPCODE_NS3.get(op)
            if dialect is not None and p.ns3_layouts:
                # the ns3 dialect's own opcodes: named, the rest is payload
                fr.fields["ub.btah.taopcode_name"] = dialect
                fr.issue(INFO, h.layer, "ub.btah.taopcode", start,
                         f"TAOpcode {op:#04x} is reserved; ns-3-UB and umdk use it for {dialect}")
            else:
                used = f" (ns-3-UB and umdk: {dialect})" if dialect else ""
                fr.issue(WARNING, h.layer, "ub.btah.taopcode", start,
                         f"reserved TAOpcode {op:#04x}{used}")
            return
        seq = ta_sequence(op, False, flags, p, compact)
        if not compact:
            mt_layer = TA_FLAGS["mt_en"]
            mt = 1 if mt_layer in seq else 0
            if v[ix["mt_en"]] != mt:
                fr.issue(WARNING, h.layer, "ub.btah.mt_en", start + 4,
                         f"MT_EN is {v[ix['mt_en']]} but {E.TAOPCODE[op]} "
                         f"{'carries' if mt else 'has no'} MTETAH")
    for layer in seq:
        if layer == "@beetah":
            if not _beetah(fr):
                return
            continue
        if layer == "ub.mgmtetah":
            run(fr, "ub.mgmtetah")
            return
        h = H[layer]
        v = fr.take(h)
        if v is None:
            return
        if layer == "ub.udetah" and op in ATOMIC_SUBOP_OPCODES:
            # UB 2.0 §7.4.2.3.2: the sub-operation in UDETAH[23:20]
            sub = (v[h.index["ud"]] >> 20) & 0xF
            fr.fields["ub.udetah.atomic_op"] = sub
            fr.fields["ub.udetah.atomic_op_name"] = E.ATOMIC_SUBOP.get(sub, f"unknown_{sub}")
        elif layer in ("ub.maetah_c", "ub.maetah_c_ns3"):
            # compact MAETAH: the length is 64 B << Length[2:0] (UB 2.0 §7.2.3)
            fr.fields["ub.maetah.length"] = 64 << v[h.index["len_code"]]
    _atomic_values(fr, op)


def _atomic_values(fr: Frame, op: int) -> None:
    """The payload of an atomic request as its two operands, of an Atomic_response as the
    original data, each shown as a number in hex, read in the byte order the spec's examples
    give (UB 2.0 §7.4.2.3.2: Operand[7:0] first, least significant byte first; §7.4.2.3.3:
    Origin_data[63:56] first, most significant byte first).  Only for the operand sizes the
    spec allows."""
    payload = bytes(fr.buf[fr.pos:fr.end - fr.pad])
    if op in E.ATOMICS:
        half = len(payload) // 2
        if len(payload) % 2 == 0 and half in ATOMIC_OPERAND_BYTES:
            fr.fields["ub.atomic.operand1"] = payload[:half][::-1].hex()
            fr.fields["ub.atomic.operand2"] = payload[half:][::-1].hex()
    elif op == ATOMIC_RESPONSE and len(payload) in ATOMIC_OPERAND_BYTES:
        fr.fields["ub.atomic.origin_data"] = payload.hex()


def _beetah(fr: Frame) -> bool:
    avail = fr.end - fr.pos - fr.pad
    length = fr.fields.get("ub.maetah.length")
    if type(length) is int:
        # UB 2.0 §7.2.10, §7.4.2.1.3: the bitmap's width follows the MAETAH Length (grammar
        # be_bits); the payload may run past it
        n = be_bits(length) // 8
        if n > avail:
            fr.issue(ERROR, "ub.beetah", "ub.beetah.be", fr.pos,
                     f"{avail} bytes left, the {n * 8}-bit BEETAH of a {length}-byte write "
                     "does not fit")
            return False
        return fr.take_bytes("ub.beetah", n) is not None
    # UB 2.0 §7.2.10: one BE bit per payload byte, payload of 64..1024 bytes, so the BEETAH and the
    # payload together are 9/8 of the payload.
    n = avail * 8 // 9
    if n * 9 != avail * 8 or n not in (64, 128, 256, 512, 1024):
        fr.issue(ERROR, "ub.beetah", "ub.beetah.be", fr.pos,
                 f"{avail} bytes cannot be a BEETAH plus its 64..1024-byte payload")
        return False
    return fr.take_bytes("ub.beetah", n // 8) is not None


def _tah_proc(fr: Frame, h, v) -> bool:
    _tah(fr)
    fr.rest_as_data()
    return True


# the TAOpcode is peeked before the TAH is read; flags gate the extension headers (§7.4)
reads("ub.btah", "taopcode", "tv_en", "ud_flag", "mt_en")
reads("ub.atah", "taopcode")
reads("ub.udetah", "ud")
reads("ub.maetah", "len_code", "length")
PROCS["@tah"] = _tah_proc
