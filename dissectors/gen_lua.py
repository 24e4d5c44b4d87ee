#!/usr/bin/env python3
"""Write ``dissectors/ub.lua``, the Wireshark Lua dissector of UnifiedBus, from the declarations.

Everything per header is generated from :mod:`ubpkt.formats` as data (one table per header: its
fields' offsets, widths, kinds, ProtoFields named ``ub.<prefix>.<field>`` exactly as ubpkt's
record keys, bit masks, value_strings from the enums, reserved/fixed-value flags; one generic
function in ``ub_dispatch.lua`` reads every header), the derived record fields from
:mod:`ubpkt.formats.derived`, the packet grammar from :mod:`ubpkt.formats.grammar` (which header
follows which, variants, TA extension-header sequences, management PDUs, ICRC coverage and masks,
padding, request/response pairs) as Lua tables, and the two shipped profiles from
:mod:`ubpkt.profile`.  The generic walk that interprets those tables and the procedures the
grammar names (``grammar.PROCEDURES``) is the hand-written ``ub_dispatch.lua``: ub.lua loads it at
run time from its own folder (the plugin is the two files).

    python dissectors/gen_lua.py            # rewrite dissectors/ub.lua
    python dissectors/gen_lua.py --check    # exit 1 if ub.lua is not what the generator writes
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from ubpkt.formats import HEADERS  # noqa: E402
from ubpkt.formats import enums as E  # noqa: E402
from ubpkt.formats import grammar as G  # noqa: E402
from ubpkt.formats.checks import CHECKS  # noqa: E402
from ubpkt.formats.core import Field, Header  # noqa: E402
from ubpkt.formats.derived import (  # noqa: E402
    BYTE_LAYER_TITLES, BYTE_RUNS, DERIVED, INTERPRETATIONS, Derived)
from ubpkt.profile import PROFILES  # noqa: E402

OUT = HERE / "ub.lua"
DISPATCH = HERE / "ub_dispatch.lua"
#: the flit-stream dissector (hand-written), run after the walk with the same environment
FLITS = HERE / "ub_flits.lua"
#: the layers of a flit-stream unit (ubpkt.dissect.flitstream) that ub_flits.lua shows
FLIT_LAYERS = {"ub.flits": "UB flit-stream unit", "ub.dlldp": "UB DLL data packet (DLLDP)"}


def _plugin_layer(layer: str) -> bool:
    """A layer the plugin shows: a declared UB header, a UB byte run / trailer, or a flit-stream
    unit's layer (linktype 151, ub_flits.lua); Wireshark's own dissectors own ``data``,
    ``eth``, ``ip`` and the other carrier names."""
    return layer.startswith("ub.") and (layer in HEADERS or layer in BYTE_LAYER_TITLES
                                        or layer in FLIT_LAYERS)


def _lua_ctor(d: Derived) -> str:
    """The ProtoField constructor of a derived field, from its kind and width."""
    if d.kind == "string":
        return "string"
    if d.kind == "bytes":
        return "bytes"
    # uint, and list (a field repeated once per element)
    for ctor, width in (("uint8", 8), ("uint16", 16), ("uint24", 24), ("uint32", 32)):
        if d.bits <= width:
            return ctor
    return "uint64"


#: Fields the walk derives (not read from one declared header position), from
#: ``ubpkt.formats.derived.DERIVED``: (key, lua constructor, display name, value_string enum,
#: layer).
#: The enum ``<field>_name`` keys are not fields here: Wireshark shows value_strings instead.
EXTRA_FIELDS = [(d.key, _lua_ctor(d), d.title, d.enum, d.layer) for d in DERIVED
                if d.key.startswith("ub.") and _plugin_layer(d.layer)]

#: Layers the walk adds that have no declared header (a byte run or a trailer).
EXTRA_LAYERS = [(layer, title) for layer, title in BYTE_LAYER_TITLES.items()
                if layer.startswith("ub.") and layer not in HEADERS] + list(FLIT_LAYERS.items())


def lua_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- the grammar as Lua tables ------------------------------------------------------------------
# ubpkt.formats.grammar emitted as data (never hand-copied): the walk in ub_dispatch.lua reads it.
# Rules become tables: {switch = key, cases = {...}, default = t}, {peek = offset, mask, shift,
# cases, default, missing} and {knob = name, cases, default}; grammar.END is the Lua END and
# grammar.RESERVED the Lua RESERVED (both strings: a Lua table cannot hold nil).

_LUA_KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function",
                 "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then",
                 "true", "until", "while"}


def lua_key(k) -> str:
    if isinstance(k, bool):
        return "[true]" if k else "[false]"
    if isinstance(k, int):
        return f"[0x{k:04x}]" if k > 255 else f"[{k}]"
    if re.fullmatch(r"[A-Za-z_]\w*", k) and k not in _LUA_KEYWORDS:
        return k
    return f"[{lua_str(k)}]"


def lua_data(x) -> str:
    """Plain data as a Lua constructor: dicts keyed, tuples and lists as sequences."""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, str):
        return lua_str(x)
    if isinstance(x, (tuple, list)):
        return "{" + ", ".join(lua_data(v) for v in x) + "}"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{lua_key(k)} = {lua_data(v)}" for k, v in x.items()) + "}"
    raise TypeError(f"cannot emit {x!r} as Lua data")


def lua_set(values) -> str:
    """A tuple of integers as a Lua set ``{[v] = true, ...}``."""
    return "{" + ", ".join(f"[{v}] = true" for v in values) + "}"


def lua_target(t) -> str:
    """A grammar target (layer, procedure, rule, END, RESERVED, or a rule's plain outcome such as
    COMPACT_TAH's booleans) as a Lua value."""
    if isinstance(t, bool):
        return "true" if t else "false"
    if t is G.END:
        return "END"
    if t == G.RESERVED:
        return "RESERVED"
    if isinstance(t, str):
        return lua_str(t)
    cases = "{" + ", ".join(f"{lua_key(k)} = {lua_target(v)}" for k, v in t.cases.items()) + "}"
    if isinstance(t, G.Switch):
        return (f"{{switch = {lua_str(t.key)}, cases = {cases}, "
                f"default = {lua_target(t.default)}}}")
    if isinstance(t, G.Peek):
        return (f"{{peek = {t.offset}, mask = 0x{t.mask:02x}, shift = {t.shift}, cases = {cases}, "
                f"default = {lua_target(t.default)}, missing = {lua_target(t.missing)}}}")
    if isinstance(t, G.Knob):
        return (f"{{knob = {lua_str(t.name)}, cases = {cases}, "
                f"default = {lua_target(t.default)}}}")
    raise TypeError(f"not a grammar target: {t!r}")


def lua_ta_step(step) -> str:
    """A TA sequence step: a layer, or {flag = BTAH field, layer} / {knob = profile, layer}."""
    if isinstance(step, str):
        return lua_str(step)
    kind, name, layer = step
    return f"{{{kind} = {lua_str(name)}, layer = {lua_str(layer)}}}"


def mgmt_key(code: int, sub, rsp: int) -> str:
    """The Lua key of a MGMT_PDUS entry: "code/sub/rsp", sub "*" for any sub code."""
    return f"{code}/{'*' if sub is None else sub}/{rsp}"


def rule_targets(rule):
    """Every target a rule can reach (the rule itself when it is a layer or procedure)."""
    if isinstance(rule, (G.Switch, G.Peek, G.Knob)):
        extra = [rule.missing] if isinstance(rule, G.Peek) else []
        for t in [*rule.cases.values(), rule.default, *extra]:
            yield from rule_targets(t)
    else:
        yield rule


def grammar_rules():
    """Every rule of the grammar (START, NEXT, TPH, COMPACT_TAH)."""
    return [*G.START.values(), *G.NEXT.values(), G.TPH, *G.COMPACT_TAH.values()]


def procedures_used() -> set:
    """The procedures the grammar names (PROCEDURES, targets, TA sequence steps)."""
    out = set(G.PROCEDURES)
    for rule in grammar_rules():
        out |= {t for t in rule_targets(rule) if isinstance(t, str) and t.startswith("@")}
    for steps in ta_step_lists():
        out |= {s for s in steps if isinstance(s, str) and s.startswith("@")}
    return out


def ta_step_lists():
    """Every list of TA sequence steps (the request prefix, per TAOpcode)."""
    return [G.TA_REQUEST_PREFIX, *G.TA_REQUEST_HEADERS.values(), *G.TA_RESPONSE_HEADERS.values()]


def grammar_profile_names() -> set:
    """The profile attributes the grammar tables consult (knobs, variant conditions, ICRC knobs,
    TA gates)."""
    out = {knob for c in G.ICRC_COVERAGE for _, _, knob in c.exempt}

    def visit(rule):
        if isinstance(rule, G.Knob):
            out.add(rule.name)
        if isinstance(rule, (G.Switch, G.Peek, G.Knob)):
            for t in [*rule.cases.values(), rule.default]:
                visit(t)

    for rule in grammar_rules():
        visit(rule)
    for choices in G.VARIANTS.values():
        for conds, _ in choices:
            out |= {name for name, _ in conds if name != "compact"}
    for c in G.ICRC_COVERAGE:
        out |= {k for k, _ in c.knobs}
    for steps in ta_step_lists():
        out |= {s[1] for s in steps if isinstance(s, tuple) and s[0] == "knob"}
    return out


def grammar_lines() -> list[str]:
    """The grammar section of ub.lua, self-contained between its BEGIN/END markers (the test
    loads exactly that chunk in tshark's Lua)."""
    out = ["-- BEGIN GRAMMAR",
           'local END, RESERVED = "!end", "!reserved"  -- grammar.END (payload follows), '
           "grammar.RESERVED", ""]
    out.append("-- logical layer -> {{when = {condition = value...}, layer = concrete}...}, first "
               "match wins (grammar.VARIANTS)")
    out.append("local VARIANTS = {")
    for layer, choices in G.VARIANTS.items():
        items = ", ".join(f"{{when = {lua_data(dict(conds))}, layer = {lua_str(concrete)}}}"
                          for conds, concrete in choices)
        out.append(f"  [{lua_str(layer)}] = {{{items}}},")
    out.append("}")
    out.append("-- what starts a frame, per pcap link type (grammar.START)")
    out.append("local START = {")
    out += [f"  [{lt}] = {lua_target(t)}," for lt, t in G.START.items()]
    out.append("}")
    out.append("-- layer -> what follows it; absent: payload (grammar.NEXT)")
    out.append("local NEXT = {")
    for layer, t in G.NEXT.items():
        spec = getattr(t, "spec", "")
        out.append(f"  [{lua_str(layer)}] = {lua_target(t)},"
                   + (f"  -- {spec}" if spec else ""))
    out.append("}")
    out.append("-- RTPH or UTPH: after a CNA NTH with NLP 2 and after UDP to a UB port (grammar.TPH, "
               f"{G.TPH.spec}; grammar.TRANSPORT_OVER_UDP)")
    out.append(f"local TPH = {lua_target(G.TPH)}")
    out.append(f"local TRANSPORT_OVER_UDP = {lua_data(G.TRANSPORT_OVER_UDP)}")
    out.append("-- layer -> whether the compact TAH forms follow (the VARIANTS condition compact; "
               "grammar.COMPACT_TAH)")
    out.append("local COMPACT_TAH = {")
    out += [f"  [{lua_str(layer)}] = {lua_target(t)}," for layer, t in G.COMPACT_TAH.items()]
    out.append("}")
    out.append("-- the steps whose lengths or repetitions are computed: ub_dispatch.lua "
               "implements each (grammar.PROCEDURES)")
    out.append("local PROCEDURES = {")
    out += [f"  [{lua_str(k)}] = {lua_str(v)}," for k, v in G.PROCEDURES.items()]
    out.append("}")
    out.append("-- steps before every request's own (grammar.TA_REQUEST_PREFIX, UB 2.0 §7.2.11)")
    out.append("local TA_REQUEST_PREFIX = {"
               + ", ".join(lua_ta_step(s) for s in G.TA_REQUEST_PREFIX) + "}")
    out.append("-- BTAH flag -> the header it announces (grammar.TA_FLAGS, UB 2.0 §7.2.1)")
    out.append(f"local TA_FLAGS = {lua_data(G.TA_FLAGS)}")
    for name, table in (("TA_REQUEST_HEADERS", G.TA_REQUEST_HEADERS),
                        ("TA_RESPONSE_HEADERS", G.TA_RESPONSE_HEADERS)):
        out.append(f"-- TAOpcode -> steps after the TAH, in wire order; {{flag = BTAH field, "
                   f"layer}} / {{knob = profile, layer}} are gated (grammar.{name}, UB 2.0 §7.4)")
        out.append(f"local {name} = {{")
        for op, steps in sorted(table.items()):
            out.append(f"  [0x{op:02x}] = {{" + ", ".join(lua_ta_step(s) for s in steps) + "},")
        out.append("}")
    out.append("-- ns-3-UB: a TA response inside an RTP data packet (grammar."
               "TA_RESPONSE_IN_DATA_NS3)")
    out.append(f"local TA_RESPONSE_IN_DATA_NS3 = {lua_data(G.TA_RESPONSE_IN_DATA_NS3)}")
    out.append("-- TAOpcodes whose UDETAH[23:20] is an atomic sub-operation "
               "(grammar.ATOMIC_SUBOP_OPCODES, UB 2.0 §7.4.2.3.2)")
    out.append(f"local ATOMIC_SUBOP_OPCODES = {lua_data(G.ATOMIC_SUBOP_OPCODES)}")
    out.append("-- an ATAH after a TP response is read when this many bytes remain "
               "(grammar.TP_RESPONSE_ATAH_BYTES, profile G10)")
    out.append(f"local TP_RESPONSE_ATAH_BYTES = {G.TP_RESPONSE_ATAH_BYTES}")
    out.append('-- "code/sub code" -> the byte-run layer of another protocol\'s PDU '
               "(grammar.MGMT_PAYLOADS, UB 2.0 Table 10-11)")
    out.append("local MGMT_PAYLOADS = {" + ", ".join(
        f'["{c}/{sc}"] = {lua_str(layer)}' for (c, sc), layer in G.MGMT_PAYLOADS.items()) + "}")
    out.append('-- "code/sub code/rsp" -> the procedure reading the PDU (grammar.MGMT_PDU_PROCS)')
    out.append("local MGMT_PDU_PROCS = {" + ", ".join(
        f'["{c}/{sc}/{r}"] = {lua_str(p)}' for (c, sc, r), p in G.MGMT_PDU_PROCS.items()) + "}")
    out.append("-- PDU header -> the list fields its body carries (grammar.PDU_LISTS)")
    out.append("local PDU_LISTS = {" + ", ".join(
        f"[{lua_str(layer)}] = {{count = {lua_str(l.count)}, entry_bits = {l.entry_bits}, "
        f"fields = {lua_data([list(f) for f in l.fields])}, "
        f"fixed = {lua_data([list(f) for f in l.fixed])}}}" for layer, l in G.PDU_LISTS.items())
        + "}")
    out.append("-- atomic operand sizes in bytes and the Atomic_response TAOpcode "
               "(grammar.ATOMIC_OPERAND_BYTES/ATOMIC_RESPONSE, UB 2.0 §7.4.2.3.2-3)")
    out.append(f"local ATOMIC_OPERAND_BYTES = {lua_data(G.ATOMIC_OPERAND_BYTES)}")
    out.append(f"local ATOMIC_RESPONSE = {G.ATOMIC_RESPONSE}")
    out.append("-- the atomic request TAOpcodes (enums.ATOMICS, UB 2.0 Table 7-16)")
    out.append(f"local ATOMICS = {lua_data(sorted(E.ATOMICS))}")
    out.append("-- topology TLV Type -> the header of its value (grammar.SCAN_TLV_VALUES, "
               "UB 2.0 §10.4.3.2 Table 10-9)")
    out.append(f"local SCAN_TLV_VALUES = {lua_data(G.SCAN_TLV_VALUES)}")
    out.append("-- BEETAH widths in bits (grammar.BE_SIZES, UB 2.0 §7.2.10); grammar.be_bits picks one")
    out.append(f"local BE_SIZES = {lua_data(G.BE_SIZES)}")
    out.append('-- "code/sub code/rsp" -> PDU header; sub code "*": any (grammar.MGMT_PDUS, '
               "UB 2.0 §10.4.3.1)")
    out.append("local MGMT_PDUS = {" + ", ".join(
        f"[{lua_str(mgmt_key(c, s, r))}] = {lua_str(layer)}"
        for (c, s, r), layer in G.MGMT_PDUS.items()) + "}")
    out.append("-- a PDU header's longer form by PDU_Length (grammar.MGMT_PDU_FORMS, UB 2.0 §10.4.3.3)")
    out.append(f"local MGMT_PDU_FORMS = {lua_data(G.MGMT_PDU_FORMS)}")
    out.append("-- where the ICRC coverage starts and when (grammar.ICRC_COVERAGE, UB 2.0 §5.3.7)")
    out.append("local ICRC_COVERAGE = {")
    for c in G.ICRC_COVERAGE:
        out.append(f"  {{start = {lua_str(c.start)}, knobs = {lua_data(dict(c.knobs))}, "
                   f"unless = {lua_data([list(u) for u in c.unless])}, "
                   f"needs_ub_udp = {lua_data(c.needs_ub_udp)}, "
                   f"exempt = {lua_data([list(e) for e in c.exempt])}}},"
                   + (f"  -- {c.spec}" if c.spec else ""))
    out.append("}")
    out.append("-- header -> {{offset, length, or-mask of the first byte}...}: the bytes the ICRC "
               "sees as ones (Header.icrc_masks(0), from the icrc_mask field flags)")
    out.append("local ICRC_MASKS = {")
    for layer, h in HEADERS.items():
        runs = h.icrc_masks(0)
        if runs:
            out.append(f"  [{lua_str(layer)}] = {{" + ", ".join(
                f"{{{o}, {n}, 0x{m:02x}}}" for o, n, m in runs) + "},")
    out.append("}")
    pad = G.PADDING
    out.append("-- the transport padding (grammar.PADDING, " + pad.spec + ")")
    out.append(f"local PADDING = {{headers = {lua_data(pad.headers)}, "
               f"field = {lua_str(pad.field)}, "
               f"align = {pad.align}, pad_layer = {lua_str(pad.pad_layer)}, "
               f"ends_before = {lua_data(pad.ends_before)}}}")
    out.append("-- requests and their responses (grammar.TA_PAIRS/TA_MATCH, TP_PAIRS/TP_MATCH; "
               "UB 2.0 §7.1, §6.2.1)")
    out.append("local TA_PAIRS = {" + ", ".join(f"[0x{k:02x}] = 0x{v:02x}"
                                              for k, v in sorted(G.TA_PAIRS.items())) + "}")
    out.append(f"local TA_MATCH = {lua_data(G.TA_MATCH)}")
    out.append(f"local TP_PAIRS = {lua_data(G.TP_PAIRS)}")
    out.append(f"local TP_MATCH = {lua_data(G.TP_MATCH)}")
    out.append("-- ns-3-UB's TP responses besides TP_PAIRS' (its TPNAK; grammar.TP_RESPONSES_NS3)")
    out.append(f"local TP_RESPONSES_NS3 = {lua_data(G.TP_RESPONSES_NS3)}")
    out.append("-- concrete layer -> the value checks applied after it is read: {field, values, when, "
               "severity, message} (ubpkt.formats.checks.CHECKS; a key with a dot is a record key "
               "of an earlier header; message: {v} is the value found)")
    out.append("local CHECKS = {")
    for layer, h in HEADERS.items():
        mine = [c for c in CHECKS if c.layer == G.logical(layer)]
        if not mine:
            continue
        rows = []
        for c in mine:
            when = "{" + ", ".join(f"{{{lua_str(k)}, {lua_set(vs)}}}" for k, vs in c.when) + "}"
            rows.append(f"{{field = {lua_str(c.field)}, values = {lua_set(c.values)}, "
                        f"when = {when}, severity = {lua_str(c.severity)}, "
                        f"message = {lua_str(c.message)}}}")
        out.append(f"  [{lua_str(layer)}] = {{" + ", ".join(rows) + "},")
    out.append("}")
    out.append("-- concrete layer -> the record fields computed from one of its fields: {key, field, "
               "kind, arg, when} (ubpkt.formats.derived.INTERPRETATIONS; kind bits: arg {shift, "
               "mask}, pow2: arg << value, plus: value + arg, names: arg[value] or reserved_<n>)")
    out.append("local INTERPRETING = {")
    for layer, h in HEADERS.items():
        mine = [i for i in INTERPRETATIONS if i.layer == G.logical(layer) and i.field in h.index]
        if not mine:
            continue
        rows = []
        for i in mine:
            when = "{" + ", ".join(f"{{{lua_str(k)}, {lua_set(vs)}}}" for k, vs in i.when) + "}"
            arg = lua_data(list(i.arg) if isinstance(i.arg, tuple) else i.arg)
            rows.append(f"{{key = {lua_str(i.key)}, field = {lua_str(i.field)}, "
                        f"kind = {lua_str(i.kind)}, arg = {arg}, when = {when}}}")
        out.append(f"  [{lua_str(layer)}] = {{" + ", ".join(rows) + "},")
    out.append("}")
    names = ["CHECKS", "INTERPRETING", "VARIANTS", "START", "NEXT", "TPH", "TRANSPORT_OVER_UDP",
             "COMPACT_TAH", "PROCEDURES",
             "TA_REQUEST_PREFIX", "TA_FLAGS", "TA_REQUEST_HEADERS", "TA_RESPONSE_HEADERS",
             "TA_RESPONSE_IN_DATA_NS3", "ATOMIC_SUBOP_OPCODES", "TP_RESPONSE_ATAH_BYTES", "BE_SIZES",
             "ATOMIC_OPERAND_BYTES", "ATOMIC_RESPONSE", "ATOMICS", "SCAN_TLV_VALUES",
             "MGMT_PAYLOADS", "MGMT_PDU_PROCS", "PDU_LISTS",
             "MGMT_PDUS", "MGMT_PDU_FORMS", "ICRC_COVERAGE", "ICRC_MASKS", "PADDING",
             "TA_PAIRS", "TA_MATCH", "TP_PAIRS", "TP_MATCH", "TP_RESPONSES_NS3"]
    out.append("local GRAMMAR = {" + ", ".join(f"{n} = {n}" for n in names) + "}")
    out.append("-- END GRAMMAR")
    return out


# how the spec spells some field-name words (display only; filter names stay ubpkt's)
_SPELLING = {
    "tpopcode": "TPOpcode", "taopcode": "TAOpcode", "tpver": "TPVer", "taver": "TAVer",
    "srctpn": "SrcTPN", "dsttpn": "DstTPN", "tpmsn": "TPMSN", "rspst": "RSPST",
    "rspinfo": "RSPINFO", "plength": "PLENGTH", "clength": "CLENGTH", "tokenid": "TokenID",
    "tokenvalue": "TokenValue", "maxrcvpsn": "MaxRcvPSN", "bitmapsize": "BitMapSize",
    "scna": "SCNA", "dcna": "DCNA", "seid": "SEID", "deid": "DEID", "guid": "GUID",
    "dguid": "DGUID", "sguid": "SGUID", "ueid": "UEID", "tassn": "TASSN", "numfreebuf":
    "NumFreeBuf", "rcvptr": "RcvPtr", "rdptr": "RdPtr", "wrptr": "WrPtr", "taid": "TAID",
    "ud": "UD", "ipv4": "IPv4", "ipv6": "IPv6",
}


def display_name(f: Field) -> str:
    """The tree label of a field: the spec's spelling where known, short words in capitals."""
    if f.reserved:
        return "Reserved"
    words = []
    for w in f.name.split("_"):
        words.append(_SPELLING.get(w) or (w.upper() if len(w) <= 3 and not w.isdigit()
                                          else w.capitalize()))
    return " ".join(words)


# Which integer fields Wireshark shows in hex (base.HEX; the rest base.DEC), as Wireshark's own
# dissectors show addresses, checksums and identifiers: a documented rule on the record key, not
# a per-field list.  A field is hex when the last word of its name (split at "_", trailing digits
# dropped) is an address, a CNA or EID, a GUID, a CRC or checksum, or a token (TokenID,
# TokenValue), or its name is a PCI-style vendor/device ID, or it is a derived value of a CRC
# layer (ub.icrc.value, ub.icrc.computed, ub.bcrc.computed).  -T fields then prints these as
# 0x... (the tests normalise both forms); the record values of ubpkt do not change.
HEX_LAST_WORDS = frozenset({"address", "addr", "sa", "start", "cna", "scna", "dcna", "eid",
                            "seid", "deid", "ueid", "guid", "crc", "checksum", "tokenid",
                            "tokenvalue"})
HEX_NAMES = frozenset({"vendor_id", "device_id"})
HEX_LAYERS = frozenset({"ub.icrc", "ub.bcrc"})


def shows_hex(key: str) -> bool:
    """Whether the integer field ``key`` (``ub.<prefix>.<name>``) is shown in hex (rule above)."""
    layer, _, name = key.rpartition(".")
    last = re.sub(r"\d+$", "", name.rsplit("_", 1)[-1])
    return (last in HEX_LAST_WORDS or name in HEX_NAMES
            or layer in HEX_LAYERS and name in ("value", "computed"))


class Gen:
    def __init__(self) -> None:
        # HF[n]: one ProtoField per (key, constructor, value string, mask, base); the walk makes
        # it from the row of the first header field using n (hf_tabled) or from DERIVED_HF
        self.hf_args: dict[int, tuple] = {}  # HF index -> (constructor, label, VS, mask)
        self.hf_tabled: set[int] = set()    # HF indices a header's field table defines
        self.hf_derived: set[int] = set()   # HF indices of derived fields (DERIVED_HF)
        self.hf_index: dict[tuple, int] = {}
        self.first_hf: dict[str, int] = {}  # key -> first HF index (for derived values)
        self.hf_shift: dict[int, int] = {}  # HF index -> mask shift
        self.hf_hex: dict[int, bool] = {}   # HF index -> shown in hex (shows_hex)
        self.vs_index: dict[tuple, int] = {}
        self.vs_defs: list[str] = []

    # -- value strings ----------------------------------------------------------------------------
    def vs(self, enum) -> str:
        if not enum:
            return "nil"
        key = tuple(sorted(enum.items()))
        if key not in self.vs_index:
            n = len(self.vs_defs) + 1
            self.vs_index[key] = n
            body = ", ".join(f"[{k}]={lua_str(str(v))}" for k, v in key)
            self.vs_defs.append(f"VS[{n}] = {{{body}}}")
        return f"VS[{self.vs_index[key]}]"

    # -- header fields ----------------------------------------------------------------------------
    def hf(self, key: str, ctor: str, name: str, vs: str = "nil", mask: int = 0,
           shift: int = 0) -> int:
        """The HF index of a ProtoField (integers in decimal, or in hex by :func:`shows_hex`:
        ub_dispatch.lua's protofield)."""
        base = None
        if ctor.startswith("uint"):
            base = "base.HEX" if shows_hex(key) else "base.DEC"
        sig = (key, ctor, vs, mask, base)
        if sig in self.hf_index:
            return self.hf_index[sig]
        n = len(self.hf_args) + 1
        self.hf_index[sig] = n
        self.hf_args[n] = (ctor, name, vs, mask)
        self.hf_hex[n] = base == "base.HEX"
        self.first_hf.setdefault(key, n)
        self.hf_shift[n] = shift
        return n

    def field_entry(self, h: Header, f: Field, key: str, off: int) -> str:
        """One field of a header's table: ``{name, bit offset, bits, kind, HF index}``, then,
        where the field is the first to use that HF index, its ProtoField constructor and label
        (and ``vs``, ``mask``, ``hex`` when :func:`shows_hex`), plus
        ``shift``/``rsvd``/``fixed``/``dw`` when they apply.  The walk (ub_dispatch.lua) makes the ProtoField ``ub.<prefix>.<name>``, adds the field to
        the tree by its kind (``FIELD_KINDS``) and sets ``v.<name>`` to the wire value of the
        numeric kinds:

        * ``uint``: <= 4 bytes, big-endian, the ProtoField masks the bits;
        * ``scaled``: <= 4 bytes shown as value << shift (the record keeps the low zero bits);
        * ``le``: a little-endian whole-byte field;
        * ``u64``, ``u64_bits``: 33..64 bits, whole bytes or masked (``shift``: keep the low
          zero bits); ``u64_dw``: 64 bits sent low 32-bit word first;
        * ``raw``: MAC, IPv4, IPv6 and byte fields, as Wireshark shows them (no value);
        * ``eid``, ``guid``, ``text``: 128-bit identifiers as ubpkt's text (``dw``: the wire
          holds the 32-bit words in reverse order)."""
        span = (off + f.bits + 7) // 8 - off // 8
        aligned = off % 8 == 0 and f.bits % 8 == 0
        rshift = span * 8 - (off % 8) - f.bits
        name = display_name(f)
        vs = self.vs(f.enum)
        extra = {}
        if f.dwrev and f.bits == 64 and aligned and f.fmt == "int":
            # a 64-bit number sent low word first (resource-space start addresses)
            kind, n = "u64_dw", self.hf(key, "uint64", name, vs)
        elif f.dwrev or f.fmt in ("eid", "guid") and f.bits == 128:
            kind = f.fmt if f.fmt in ("eid", "guid") else "text"
            n = self.hf(key, "string", name)
            if f.dwrev:
                extra["dw"] = "true"
        elif f.fmt in ("mac", "ipv4", "ipv6"):
            kind, n = "raw", self.hf(key, {"mac": "ether"}.get(f.fmt, f.fmt), name)
        elif f.fmt == "hex" or f.bits > 64:
            assert aligned, (h.name, f.name)
            kind, n = "raw", self.hf(key, "bytes", name)
        elif f.le:
            assert aligned and f.bits <= 32
            kind = "le"
            n = self.hf(key, {1: "uint8", 2: "uint16", 3: "uint24", 4: "uint32"}[span], name, vs)
        elif span <= 4:
            if f.shift:
                kind, n = "scaled", self.hf(key, "uint32", name, vs)
                extra["shift"] = str(f.shift)
            else:
                mask = 0 if aligned else ((1 << f.bits) - 1) << rshift
                ctor = {1: "uint8", 2: "uint16", 3: "uint24", 4: "uint32"}[span]
                kind, n = "uint", self.hf(key, ctor, name, vs, mask, shift=rshift if mask else 0)
        else:
            # 33..64 bits: a 64-bit field; a mask (or a shifted record value) is applied by the walk
            n = self.hf(key, "uint64", name, vs)
            if aligned and not f.shift:
                kind = "u64"
            else:
                kind = "u64_bits"
                if f.shift:
                    extra["shift"] = str(f.shift)
        if f.reserved:
            extra["rsvd"] = "true"
        if f.fixed is not None:
            extra["fixed"] = str(f.fixed)
        items = [lua_str(f.name), str(off), str(f.bits), lua_str(kind), str(n)]
        if n not in self.hf_tabled and n not in self.hf_derived:
            self.hf_tabled.add(n)
            ctor, label, vs, mask = self.hf_args[n]
            items += [lua_str(ctor), lua_str(label)]
            if vs != "nil":
                extra["vs"] = vs
            if mask:
                extra["mask"] = f"0x{mask:x}"
            if self.hf_hex[n]:
                extra["hex"] = "true"
        items += [f"{k} = {v}" for k, v in extra.items()]
        return "{" + ", ".join(items) + "}"

    def header_code(self, h: Header) -> list[str]:
        """A header as data: size, record-key base, title and its fields (``field_entry``);
        ub_dispatch.lua gives every header the one function that reads it (``HDR[layer].fn``)."""
        fields = ", ".join(self.field_entry(h, f, key, off)
                           for f, key, off in zip(h.fields, h.keys, h.offsets))
        return [f"-- {h.title} ({h.spec}), {h.size} bytes",
                f"HDR[{lua_str(h.layer)}] = {{size = {h.size}, base = {lua_str(h.base)}, "
                f"title = {lua_str(h.title)}, fields = {{",
                f"  {fields}}}}}"]

    def generate(self) -> str:
        ub = [h for h in HEADERS.values() if h.ns == "ub"]
        for h in ub:
            self.header_code(h)     # number the header fields first
        derived: dict[str, list] = {}
        for key, ctor, name, enum, layer in EXTRA_FIELDS:
            # a derived value wins FIRST_HF even where a header declares the same key
            n = self.first_hf[key] = self.hf(key, ctor, name, self.vs(enum))
            self.hf_derived.add(n)
            if BYTE_RUNS.get(layer) == key:
                # the walk makes a byte run's one field from BYTE_RUNS and the layer's title
                assert ctor == "bytes" and name == BYTE_LAYER_TITLES[layer], key
                continue
            # (a field a header declares alike keeps that header's label)
            ctor, label, vs, _ = self.hf_args[n]
            row = [str(n), lua_str(key), lua_str(ctor), lua_str(label)]
            if vs != "nil":
                row.append(vs)
            if self.hf_hex[n]:
                row.append("hex = true")
            derived.setdefault(layer, []).append("{" + ", ".join(row) + "}")
        # the header tables define the ProtoFields of their fields, except those a derived field
        # shares (those are written out with the derived ones)
        self.hf_tabled = set()
        hdr_lines = [line for h in ub for line in self.header_code(h)]
        # the headers' own layer items are made from HDR by the walk
        assert not {lay for lay, _ in EXTRA_LAYERS} & {h.layer for h in ub}
        derived_lines = ["local DERIVED_HF = {"]
        derived_lines += [f"  [{lua_str(layer)}] = {{{', '.join(rows)}}},"
                          for layer, rows in derived.items()]
        derived_lines += ["}", "local EXTRA_LAYERS = {" + ", ".join(
            f"[{lua_str(layer)}] = {lua_str(title)}" for layer, title in EXTRA_LAYERS) + "}"]
        first = ", ".join(f"[{lua_str(k)}] = {v}" for k, v in sorted(self.first_hf.items()))
        shifts = ", ".join(f"[{n}] = {s}" for n, s in sorted(self.hf_shift.items()) if s)
        prof_lines = []
        walk = DISPATCH.read_text(encoding="utf-8")
        # the profile attributes either hand-written file reads
        consulted_text = walk + FLITS.read_text(encoding="utf-8")
        missing = sorted(p for p in procedures_used() if f'PROC["{p}"]' not in walk)
        if missing:
            raise SystemExit(f"{DISPATCH.name} implements no {', '.join(missing)} "
                             "(grammar procedures)")
        consulted = grammar_profile_names()
        for pname, prof in PROFILES.items():
            items = []
            for k, v in asdict(prof).items():
                # only the choices the walk or the grammar tables read
                if not (k in consulted or re.search(rf"\b{k}\b", consulted_text)):
                    continue
                if isinstance(v, bool):
                    items.append(f"{k} = {'true' if v else 'false'}")
                elif isinstance(v, (int, float)):
                    items.append(f"{k} = {v}")
                elif isinstance(v, str):
                    items.append(f"{k} = {lua_str(v)}")
                elif isinstance(v, (tuple, list)):
                    items.append(f"{k} = {{" + ", ".join(f"[{x}] = true" for x in v) + "}")
            prof_lines.append(f"PROFILE[{lua_str(pname)}] = {{" + ", ".join(items) + "}")
        # UB 2.0 §10.4.3.2: the path entry width of each Scan header Type ("4bit"...)
        path_bits = {k: int(re.fullmatch(r"(\d+)bit", v).group(1))
                     for k, v in E.SCAN_PATH_TYPE.items()}
        enum_tables = {
            "TAOPCODE": E.TAOPCODE, "TAOPCODE_NS3": E.TAOPCODE_NS3, "TPOPCODE": E.TPOPCODE, "CTP_OPCODE": E.CTP_OPCODE,
            "SACK_BITMAP_BITS": E.SACK_BITMAP_BITS, "SCAN_PATH_BITS": path_bits,
            # ubpkt.formats.derived: the one hex field of each byte-run layer
            "BYTE_RUNS": {k: v for k, v in BYTE_RUNS.items() if k.startswith("ub.")},
        }
        def lua_val(v):
            return lua_str(v) if isinstance(v, str) else str(v)
        enum_lines = [f"local {n} = {{" + ", ".join(f"{lua_key(k)} = {lua_val(v)}"
                                                   for k, v in sorted(t.items())) + "}"
                      for n, t in enum_tables.items()]
        dllcb = ", ".join(f"[{c * 16 + s}] = {lua_str(n)}" for (c, s), n in
                          sorted(E.DLLCB_TYPES.items()))
        enum_lines.append(f"local DLLCB_TYPES = {{{dllcb}}}  -- key: CTRL * 16 + SUB_CTRL")
        from ubpkt.link.framing import DLLDP_CFGS
        enum_lines.append("local DLLDP_CFGS = {" + ", ".join(f"[{c}] = true" for c in
                                                            sorted(DLLDP_CFGS))
                          + "}  -- the LPH CFGs of a DLLDP (UB 2.0 Table 4-1)")
        from ubpkt.link.plength import FLIT, MAX_FLITS, MAX_PACKET
        enum_lines.append(f"local DLL_FRAMING = {{flit = {FLIT}, max_flits = {MAX_FLITS}, "
                          f"max_packet = {{[true] = {MAX_PACKET[True]}, "
                          f"[false] = {MAX_PACKET[False]}}}}}  -- ubpkt.link.plength: flit "
                          "bytes, flits a block, the largest packet (CRC / non-CRC mode), "
                          "UB 2.0 §4.3.2")
        sub = []
        for code, names in sorted(E.MGMT_SUB_CODE.items()):
            sub.append(f"[{code}] = {{" + ", ".join(f"[{k}] = {lua_str(v)}"
                                                  for k, v in sorted(names.items())) + "}")
        enum_lines.append("local MGMT_SUB_CODE = {" + ", ".join(sub) + "}")

        out = [
            "-- UnifiedBus (UB Base Specification 2.0) dissector for Wireshark.",
            "-- GENERATED by dissectors/gen_lua.py from ubpkt.formats and ubpkt.profile:",
            "-- do not edit; change the declarations or the grammar and regenerate.  The walk is",
            "-- ub_dispatch.lua (hand-written), loaded at the end from this file's folder.",
            "",
            'local ub = Proto("ub", "UnifiedBus")',
            'local ub_udp = Proto("ub_udp", "UnifiedBus over UDP")',
            "local HF, VS, LAYER, HDR, PROFILE = {}, {}, {}, {}, {}",
            "",
            "-- value strings (ubpkt.formats.enums)",
            *self.vs_defs,
            "",
            "-- ProtoFields (HF[n]), named ub.<prefix>.<field> as ubpkt's record keys, and one FT_NONE",
            "-- item per layer (LAYER[layer]) are made by the walk: a declared field's from the header",
            "-- tables below (at the first field entry with n), a derived field's (ubpkt.formats.",
            "-- derived) from DERIVED_HF, per layer {n, key, constructor, label[, value string]",
            "-- [, hex = true]}, a byte run's one bytes field and the layers without a declared",
            "-- header from BYTE_RUNS and EXTRA_LAYERS (layer -> title, the byte runs' field titled",
            "-- alike)",
            *derived_lines,
            "",
            f"local FIRST_HF = {{{first}}}",
            f"local HF_SHIFT = {{{shifts}}}",
            "",
            "local EX = {",
            '  rsvd = ProtoExpert.new("ub.reserved", "Reserved bits are not zero", '
            "expert.group.PROTOCOL, expert.severity.WARN),",
            '  fixed = ProtoExpert.new("ub.fixed", "Field differs from the value the spec fixes", '
            "expert.group.PROTOCOL, expert.severity.WARN),",
            '  icrc_bad = ProtoExpert.new("ub.icrc.bad", "Bad ICRC", expert.group.CHECKSUM, '
            "expert.severity.ERROR),",
            '  bcrc_bad = ProtoExpert.new("ub.bcrc.bad", "Bad BCRC", expert.group.CHECKSUM, '
            "expert.severity.ERROR),",
            '  malformed = ProtoExpert.new("ub.malformed", "Malformed UB packet", '
            "expert.group.MALFORMED, expert.severity.ERROR),",
            '  warn = ProtoExpert.new("ub.warning", "UB protocol warning", expert.group.PROTOCOL, '
            "expert.severity.WARN),",
            '  note = ProtoExpert.new("ub.note", "UB note", expert.group.PROTOCOL, '
            "expert.severity.NOTE),",
            "  -- the analysis over several frames (ub_dispatch.lua analyse(), ubpkt.views.analysis)",
            '  no_response = ProtoExpert.new("ub.analysis.no_response.expert", "Request without a '
            'response", expert.group.SEQUENCE, expert.severity.WARN),',
            '  psn_gap = ProtoExpert.new("ub.analysis.psn_gap.expert", "PSNs missing (lost '
            'packets)", expert.group.SEQUENCE, expert.severity.WARN),',
            '  out_of_order = ProtoExpert.new("ub.analysis.out_of_order.expert", "Out-of-order PSN '
            '(fills a gap)", expert.group.SEQUENCE, expert.severity.WARN),',
            '  retransmission = ProtoExpert.new("ub.analysis.retransmission.expert", '
            '"Retransmission (PSN seen before)", expert.group.SEQUENCE, expert.severity.NOTE),',
            '  duplicate = ProtoExpert.new("ub.analysis.duplicate.expert", "Duplicate (same PSN as '
            'the previous packet)", expert.group.SEQUENCE, expert.severity.NOTE),',
            '  tpnak = ProtoExpert.new("ub.analysis.tpnak.expert", "TPNAK seen", '
            'expert.group.SEQUENCE, expert.severity.NOTE),',
            "}",
            "ub.experts = {EX.rsvd, EX.fixed, EX.icrc_bad, EX.bcrc_bad, EX.malformed, EX.warn, "
            "EX.note, EX.no_response, EX.psn_gap, EX.out_of_order, EX.retransmission, "
            "EX.duplicate, EX.tpnak}",
            "",
            "-- headers (ubpkt.formats) as data: {name, bit offset, bits, kind, HF index, ...} per",
            "-- field (gen_lua.Gen.field_entry); ub_dispatch.lua reads them (HDR[layer].fn)",
            *hdr_lines,
            "-- profiles (ubpkt.profile)",
            *prof_lines,
            "",
            "-- enumerations the walk needs (ubpkt.formats.enums, ubpkt.formats.derived)",
            *enum_lines,
            "",
            *analysis_limit_lines(),
            "",
            "-- ---------------------------------------------------------------------------------",
            "-- the packet grammar (ubpkt.formats.grammar) as data: the walk below interprets it",
            "-- ---------------------------------------------------------------------------------",
            *grammar_lines(),
            "",
            "-- ---------------------------------------------------------------------------------",
            "-- the generic walk and the grammar's procedures: ub_dispatch.lua, next to this file,",
            "-- loaded at run time and given the tables above",
            "-- ---------------------------------------------------------------------------------",
            *loader_lines(sorted(enum_tables) + ["DLLCB_TYPES", "DLLDP_CFGS", "DLL_FRAMING",
                                                  "MGMT_SUB_CODE"]),
            "",
        ]
        return "\n".join(out)


def analysis_limit_lines() -> list[str]:
    """The caps on the plugin's analysis state: ubpkt's AnalysisLimits defaults (a ubpkt
    choice, the spec says nothing about analysers), so both drop the same state; and the RSPST
    values the analysis calls a TPNAK."""
    from ubpkt.views.analysis import AnalysisLimits
    from dataclasses import fields
    lim = AnalysisLimits()
    items = ", ".join(f"{f.name} = {getattr(lim, f.name)}" for f in fields(lim))
    from ubpkt.views.analysis import TPNAK_RSPST
    naks = ", ".join(f"[{v}] = true" for v in sorted(TPNAK_RSPST))
    return ["-- caps on the analysis state (ubpkt.views.analysis.AnalysisLimits)",
            f"local ANALYSIS_LIMITS = {{{items}}}",
            "-- RTPH RSPST values that make a TP response a TPNAK (analysis.TPNAK_RSPST)",
            f"local TPNAK_RSPST = {{{naks}}}"]


#: What ub.lua hands the walk besides the grammar tables (GRAMMAR) and the enumerations.
WALK_ENV = ["ub", "ub_udp", "HF", "VS", "LAYER", "HDR", "PROFILE", "FIRST_HF", "HF_SHIFT", "EX",
            "DERIVED_HF", "EXTRA_LAYERS", "END", "RESERVED", "ANALYSIS_LIMITS",
            "TPNAK_RSPST"]


def loader_lines(enums: list[str]) -> list[str]:
    """The end of ub.lua: run ub_dispatch.lua, then ub_flits.lua (found next to ub.lua) with the
    generated tables (ub_flits.lua also finds what ub_dispatch.lua puts in that environment).
    Each returns a function of that environment and does nothing on its own, so Wireshark
    loading them as plugins of their own is harmless."""
    names = ", ".join(f"{n} = {n}" for n in WALK_ENV + enums)
    return [
        f"local WALK_ENV = setmetatable({{{names}}}, {{__index = _G}})",
        "for name, t in pairs(GRAMMAR) do WALK_ENV[name] = t end",
        'local HERE = debug.getinfo(1, "S").source:match("^@(.-)[^/\\\\]*$") or ""',
        f'for _, name in ipairs({{"{DISPATCH.name}", "{FLITS.name}"}}) do',
        '  local path = HERE .. name',
        '  local f = io.open(path, "rb")',
        '  if f == nil then error("ub.lua needs " .. name .. " in its folder: no " .. path) end',
        '  local walk = assert(load(f:read("*a"), "@" .. path, "t"))',
        "  f:close()",
        "  walk()(WALK_ENV)",
        "end",
    ]


def generate() -> str:
    return Gen().generate()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed ub.lua")
    ap.add_argument("-o", "--output", default=str(OUT))
    args = ap.parse_args(argv)
    text = generate()
    out = Path(args.output)
    if args.check:
        same = out.exists() and out.read_text(encoding="utf-8") == text
        print(f"{out}: {'up to date' if same else 'OUT OF DATE (run dissectors/gen_lua.py)'}")
        return 0 if same else 1
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
