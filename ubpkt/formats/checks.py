"""Value checks as data: fields whose value the spec fixes (or restricts) in some context.

A :class:`Expect` says: when ``layer`` is read and every ``when`` condition holds, ``field``
should hold one of ``values``; otherwise the decoder reports ``message`` (a warning unless
``severity`` says otherwise) and keeps going.  The checks never change what follows: reserved
*selectors* (values the grammar cannot continue from) are the grammar's ``RESERVED``.

One table, read by every decoder: the Python walk (``ubpkt.dissect.checks``, which also
declares the fields to the fast path's guards) and the Lua plugin (``dissectors/gen_lua.py``
emits it as ``CHECKS``; ``ub_dispatch.lua`` applies it after each header it reads).

``field`` and the ``when`` keys are a field of ``layer`` (``"tpver"``) or the record key of a
header read earlier in the packet (``"ub.lph.cfg"``, ``"ip.hdr_len"``); a condition on a key the
packet does not have does not hold, and a check whose field is absent is skipped.
``message`` may hold ``{v}``: the value found.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Expect", "CHECKS"]


@dataclass(frozen=True)
class Expect:
    layer: str          # logical layer (every concrete form of it is checked)
    field: str          # own field, or a record key of an earlier header
    values: tuple       # what the spec allows
    message: str        # "{v}": the value found
    spec: str
    when: tuple = ()    # ((field or record key, (values...)), ...): all must hold
    severity: str = "warning"


_TPSACK = (("tpopcode", (5, 6)),)

CHECKS: tuple[Expect, ...] = (
    # UB 2.0 §5.2.3 Table 5-4: UB over IPv4 uses a 5-word IPv4 header (no options).  Checked
    # when the UB transport header is read, so only on packets that carry UB.
    Expect("ub.rtph", "ip.hdr_len", (5,), "IPv4 IHL {v} on a UB packet (5 expected, no options)",
           "UB 2.0 §5.2.3 Table 5-4"),
    Expect("ub.utph", "ip.hdr_len", (5,), "IPv4 IHL {v} on a UB packet (5 expected, no options)",
           "UB 2.0 §5.2.3 Table 5-4"),
    # UB 2.0 §6.2.1 Table 6-2: TPVer is 0 in this version
    Expect("ub.rtph", "tpver", (0,), "TPVer {v} (0 expected)", "UB 2.0 §6.2.1"),
    Expect("ub.utph", "tpver", (0,), "TPVer {v} (0 expected)", "UB 2.0 §6.2.1"),
    # UB 2.0 §6.2.1: for TPSACK the RSPST and RSPINFO fields are fixed to 0
    Expect("ub.rtph", "rspst", (0,), "RSPST {v} in a TPSACK (fixed to 0)", "UB 2.0 §6.2.1",
           _TPSACK),
    Expect("ub.rtph", "rspinfo", (0,), "RSPINFO {v} in a TPSACK (fixed to 0)", "UB 2.0 §6.2.1",
           _TPSACK),
    # UB 2.0 §7.2.1-2: TAver is 0 for the current protocol
    Expect("ub.btah", "taver", (0,), "TAver {v} (0 expected)", "UB 2.0 §7.2.1"),
    Expect("ub.atah", "taver", (0,), "TAver {v} (0 expected)", "UB 2.0 §7.2.2"),
    # UB 2.0 §7.4.5 (Management transaction): BTAH.TV_EN shall be 0
    Expect("ub.btah", "tv_en", (0,), "TV_EN {v} on a management request (shall be 0)",
           "UB 2.0 §7.4.5", (("taopcode", (0x10,)),)),
    # App B.2.4: CFG 6 packets carry NTH.NLP 0 (CTP) or 1 (enumeration)
    Expect("ub.cna16", "nlp", (0, 1), "NLP {v} in a CFG 6 packet (App B.2.4: 0 or 1)",
           "UB 2.0 App B.2.4", (("ub.lph.cfg", (6,)),)),
    # App B.2.4.1: CFG 6 uses the 16-bit UPI and 20-bit EIDs (CTPH.NLP 2, CIPH.NLP 1)
    Expect("ub.ctph", "nlp", (0, 2, 3), "CTPH NLP {v} (32-bit UPI) in a CFG 6 packet "
           "(App B.2.4.1: 16-bit UPI, 20-bit EIDs)", "UB 2.0 App B.2.4.1",
           (("ub.lph.cfg", (6,)),)),
    Expect("ub.ciph", "nlp", (1, 2), "CIPH NLP {v} in a CFG 6 packet (App B.2.4.1: 1 or 2)",
           "UB 2.0 App B.2.4.1", (("ub.lph.cfg", (6,)),)),
    # App B.2.5 (and B.2.2 for CFG 3/4): the 32-bit UPI and 128-bit EIDs
    Expect("ub.ctph", "nlp", (0, 1, 3), "CTPH NLP {v} (16-bit UPI) in a CFG 7 packet "
           "(App B.2.5: 32-bit UPI, 128-bit EIDs)", "UB 2.0 App B.2.5",
           (("ub.lph.cfg", (7,)),)),
    Expect("ub.ciph", "nlp", (0, 2), "CIPH NLP {v} in a CFG 3, 4 or 7 packet "
           "(App B.2.2/B.2.5: 0 or 2)", "UB 2.0 App B.2.2, B.2.5", (("ub.lph.cfg", (3, 4, 7)),)),
)
