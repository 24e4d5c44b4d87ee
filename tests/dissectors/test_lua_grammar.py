"""The Lua plugin reads the packet grammar: the tables gen_lua.py emits into ub.lua equal
``ubpkt.formats.grammar`` (checked by evaluating the emitted chunk in tshark's own Lua and dumping
it as JSON), and the hand-written walk ``ub_dispatch.lua`` holds no copy of them.
"""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from ubpkt.capture import PcapWriter, open_capture
from ubpkt.dissect import dissect
from ubpkt.formats import HEADERS
from ubpkt.formats.checks import CHECKS
from ubpkt.formats import enums as E
from ubpkt.formats import grammar as G
from ubpkt.formats.derived import BYTE_LAYER_TITLES, DERIVED, INTERPRETATIONS
from ubpkt.link.plength import plength

from test_lua import LUA, ROOT, _gen_module, check_capture, enc, rtph, write

DISPATCH = ROOT / "dissectors" / "ub_dispatch.lua"

# Evaluates the GRAMMAR chunk of ub.lua in an empty environment (it must be self-contained) and
# writes its tables as JSON: a Lua table is a JSON list when its keys are 1..n (empty: []),
# otherwise an object with tostring'd keys.
DUMP_LUA = r"""
local f = assert(io.open(%(src)s, "rb"))
local text = f:read("*a")
f:close()
local chunk = assert(text:match("%%-%%- BEGIN GRAMMAR\n(.-)\n%%-%%- END GRAMMAR"),
                     "no grammar section")
local grammar = assert(load(chunk .. "\nreturn GRAMMAR", "grammar", "t", {}))()

local function enc(x)
  local t = type(x)
  if t == "table" then
    local n, keys = 0, {}
    for k in pairs(x) do n = n + 1; keys[#keys + 1] = k end
    if n == 0 then return "[]" end
    local parts = {}
    local seq = true   -- a sequence: keys exactly 1..n (#x alone is ambiguous with holes)
    for k in pairs(x) do
      if type(k) ~= "number" or k < 1 or k > n or k %% 1 ~= 0 then seq = false end
    end
    if seq then
      for i = 1, n do parts[i] = enc(x[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do parts[#parts + 1] = enc(tostring(k)) .. ":" .. enc(x[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "string" then
    local s = x:gsub('[%%c"\\]', function(c) return string.format("\\u%%04x", c:byte()) end)
    return '"' .. s .. '"'
  elseif t == "number" then
    return string.format("%%d", x)
  elseif t == "boolean" then
    return tostring(x)
  end
  error("cannot encode a " .. t)
end

local out = assert(io.open(%(out)s, "wb"))
out:write(enc(grammar))
out:close()
"""


def lua_shape(x):
    """A Python value as the JSON dump shows the same Lua table."""
    if x is None:
        return "!end"
    if isinstance(x, (bool, str)):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, (list, tuple)):
        return [lua_shape(v) for v in x]
    if isinstance(x, dict):
        if not x:
            return []
        keys = list(x)
        if all(type(k) is int for k in keys) and sorted(keys) == list(range(1, len(keys) + 1)):
            return [lua_shape(x[i]) for i in range(1, len(keys) + 1)]
        return {(str(k).lower() if isinstance(k, bool) else str(k)): lua_shape(v)
                for k, v in x.items()}
    raise TypeError(x)


def rule(t):
    """The Lua form of a grammar target (see gen_lua.lua_target), as plain data."""
    if isinstance(t, G.Switch):
        return {"switch": t.key, "cases": {k: rule(v) for k, v in t.cases.items()},
                "default": rule(t.default)}
    if isinstance(t, G.Peek):
        return {"peek": t.offset, "mask": t.mask, "shift": t.shift,
                "cases": {k: rule(v) for k, v in t.cases.items()}, "default": rule(t.default),
                "missing": rule(t.missing)}
    if isinstance(t, G.Knob):
        return {"knob": t.name, "cases": {k: rule(v) for k, v in t.cases.items()},
                "default": rule(t.default)}
    return t     # a layer, a procedure, END (None), RESERVED, or a plain outcome (COMPACT_TAH)


def step(s):
    return s if isinstance(s, str) else {s[0]: s[1], "layer": s[2]}


def expected_grammar() -> dict:
    """The Python grammar in the shape of the emitted Lua tables."""
    return {
        "VARIANTS": {layer: [{"when": dict(conds), "layer": concrete} for conds, concrete in ch]
                     for layer, ch in G.VARIANTS.items()},
        "START": {lt: rule(t) for lt, t in G.START.items()},
        "NEXT": {layer: rule(t) for layer, t in G.NEXT.items()},
        "TPH": rule(G.TPH),
        "TRANSPORT_OVER_UDP": list(G.TRANSPORT_OVER_UDP),
        "COMPACT_TAH": {layer: rule(t) for layer, t in G.COMPACT_TAH.items()},
        "PROCEDURES": dict(G.PROCEDURES),
        "TA_REQUEST_PREFIX": [step(s) for s in G.TA_REQUEST_PREFIX],
        "TA_FLAGS": dict(G.TA_FLAGS),
        "TA_REQUEST_HEADERS": {op: [step(s) for s in steps]
                               for op, steps in G.TA_REQUEST_HEADERS.items()},
        "TA_RESPONSE_HEADERS": {op: [step(s) for s in steps]
                                for op, steps in G.TA_RESPONSE_HEADERS.items()},
        "TA_RESPONSE_IN_DATA_NS3": list(G.TA_RESPONSE_IN_DATA_NS3),
        "ATOMIC_SUBOP_OPCODES": list(G.ATOMIC_SUBOP_OPCODES),
        "TP_RESPONSE_ATAH_BYTES": G.TP_RESPONSE_ATAH_BYTES,
        "BE_SIZES": list(G.BE_SIZES),
        "SCAN_TLV_VALUES": {str(k): v for k, v in G.SCAN_TLV_VALUES.items()},
        "ATOMIC_OPERAND_BYTES": list(G.ATOMIC_OPERAND_BYTES),
        "ATOMIC_RESPONSE": G.ATOMIC_RESPONSE,
        "ATOMICS": sorted(E.ATOMICS),
        "INTERPRETING": {layer: [{"key": i.key, "field": i.field, "kind": i.kind,
                                  "arg": list(i.arg) if isinstance(i.arg, tuple) else i.arg,
                                  "when": [[n, {v: True for v in a}] for n, a in i.when]}
                                 for i in INTERPRETATIONS
                                 if i.layer == G.logical(layer) and i.field in h.index]
                         for layer, h in HEADERS.items()
                         if any(i.layer == G.logical(layer) and i.field in h.index
                                for i in INTERPRETATIONS)},
        "MGMT_PAYLOADS": {f"{c}/{sc}": layer for (c, sc), layer in G.MGMT_PAYLOADS.items()},
        "MGMT_PDU_PROCS": {f"{c}/{sc}/{r}": p for (c, sc, r), p in G.MGMT_PDU_PROCS.items()},
        "PDU_LISTS": {layer: {"count": lst.count, "entry_bits": lst.entry_bits,
                              "fields": [list(f) for f in lst.fields],
                              "fixed": [list(f) for f in lst.fixed] or []}
                      for layer, lst in G.PDU_LISTS.items()},
        "MGMT_PDUS": {f"{c}/{'*' if s is None else s}/{r}": layer
                      for (c, s, r), layer in G.MGMT_PDUS.items()},
        "MGMT_PDU_FORMS": {k: {str(n): f for n, f in v.items()}
                           for k, v in G.MGMT_PDU_FORMS.items()},
        "ICRC_COVERAGE": [{"start": c.start, "knobs": dict(c.knobs),
                           "unless": [list(u) for u in c.unless],
                           "needs_ub_udp": c.needs_ub_udp,
                           "exempt": [list(e) for e in c.exempt]} for c in G.ICRC_COVERAGE],
        "ICRC_MASKS": {layer: [list(m) for m in h.icrc_masks(0)]
                       for layer, h in HEADERS.items() if h.icrc_masks(0)},
        "PADDING": {"headers": list(G.PADDING.headers), "field": G.PADDING.field,
                    "align": G.PADDING.align, "pad_layer": G.PADDING.pad_layer,
                    "ends_before": list(G.PADDING.ends_before)},
        "TA_PAIRS": dict(G.TA_PAIRS),
        "TA_MATCH": list(G.TA_MATCH),
        "TP_PAIRS": {k: list(v) for k, v in G.TP_PAIRS.items()},
        "TP_MATCH": [list(m) for m in G.TP_MATCH],
        "TP_RESPONSES_NS3": list(G.TP_RESPONSES_NS3),
        "CHECKS": {layer: [{"field": c.field, "values": {v: True for v in c.values},
                            "when": [[k, {v: True for v in vs}] for k, vs in c.when],
                            "severity": c.severity, "message": c.message}
                           for c in CHECKS if c.layer == G.logical(layer)]
                   for layer in HEADERS if any(c.layer == G.logical(layer) for c in CHECKS)},
    }


@pytest.fixture(scope="module")
def lua_grammar(tshark, tmp_path_factory) -> dict:
    """The grammar tables of the committed ub.lua, as tshark's Lua evaluates them."""
    tmp = tmp_path_factory.mktemp("grammar")
    out = tmp / "grammar.json"
    script = tmp / "dump.lua"
    script.write_text(DUMP_LUA % {"src": json.dumps(str(LUA)), "out": json.dumps(str(out))},
                      encoding="utf-8")
    empty = tmp / "empty.pcap"
    with PcapWriter(empty, 1):
        pass
    res = subprocess.run([tshark, "-n", "-X", f"lua_script:{script}", "-r", str(empty)],
                         capture_output=True, text=True, timeout=60)
    assert out.exists(), res.stdout + res.stderr
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def tshark():
    from test_lua import _find_tshark
    return _find_tshark()


def test_lua_grammar_tables_equal_python(lua_grammar):
    want = lua_shape(expected_grammar())
    assert set(lua_grammar) == set(want)
    for name in want:
        assert lua_grammar[name] == want[name], f"{name} in ub.lua differs from grammar.{name}"


def test_lua_shape_sees_differences(lua_grammar):
    """The comparison is not vacuous: a changed rule is noticed."""
    want = lua_shape(expected_grammar())
    changed = json.loads(json.dumps(want))
    changed["NEXT"]["ub.lph"]["cases"]["9"] = "ub.cna24"
    assert lua_grammar["NEXT"] != changed["NEXT"]
    assert lua_grammar["NEXT"] == want["NEXT"]


def test_every_grammar_procedure_is_implemented():
    walk = DISPATCH.read_text(encoding="utf-8")
    used = _gen_module().procedures_used()
    assert set(G.PROCEDURES) <= used
    assert {"@tah", "@dllcb"} <= used
    missing = sorted(p for p in used if f'PROC["{p}"] =' not in walk)
    assert not missing, f"ub_dispatch.lua implements no {missing}"


# names of the generated grammar tables, and of the hand-kept copies the walk once had
GRAMMAR_TABLES = ("VARIANTS", "START", "NEXT", "TPH", "TRANSPORT_OVER_UDP", "COMPACT_TAH",
                  "PROCEDURES", "TA_REQUEST_PREFIX", "TA_FLAGS", "TA_REQUEST_HEADERS",
                  "TA_RESPONSE_HEADERS", "TA_RESPONSE_IN_DATA_NS3", "ATOMIC_SUBOP_OPCODES",
                  "TP_RESPONSE_ATAH_BYTES", "MGMT_PDUS", "MGMT_PDU_FORMS", "ICRC_COVERAGE", "ICRC_MASKS", "PADDING",
                  "TA_PAIRS", "TA_MATCH", "TP_PAIRS", "TP_MATCH", "TP_RESPONSES_NS3", "GRAMMAR",
                  "TA_RESPONSES", "REQ_SEQ", "RSP_SEQ", "REQUEST_HEADERS", "RESPONSE_HEADERS",
                  "UDP_TRANSPORT", "ENUM_ICRC_KNOB", "SUBOP_TAOPCODES")
# a field that steers the walk, compared with a number: the dispatch NEXT holds
SELECTORS = ("cfg", "nlp", "tpopcode", "taopcode", "protocol", "proto", "nxt", "type", "etype",
             "cmd", "opcode", "code", "sub_code", "rsp", "op", "ver", "version", "bitmapsize")
# decisions the grammar makes as data: the BTAH flags (TA_FLAGS, TA_REQUEST_PREFIX), the TAH form
# (COMPACT_TAH), the ICRC exemptions (ICRC_COVERAGE exempt), the room for a TP response's ATAH
# (TP_RESPONSE_ATAH_BYTES), the atomics with a sub-operation (ATOMIC_SUBOP_OPCODES)
HAND_CODED = re.compile(r"\b(?:ud_flag|tv_en|mt_en|cna_tah_form|enum_icrc|is_enumeration"
                        r"|Atomic_store|Atomic_load)\b|>=\s*8\b"
                        r"|st\.compact\s*=\s*(?:true|false)\b")


def _code(text: str) -> str:
    """Lua source without comments and string literals."""
    text = re.sub(r"--\[\[.*?\]\]", "", text, flags=re.S)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    return re.sub(r"--[^\n]*", "", text)


def test_dispatch_holds_no_copy_of_the_grammar():
    code = _code(DISPATCH.read_text(encoding="utf-8"))
    names = "|".join(GRAMMAR_TABLES)
    defined = re.findall(rf"^\s*(?:local\s+)?({names})\s*(?:\[[^\]]*\]\s*)?=[^=]", code, re.M)
    assert not defined, f"ub_dispatch.lua defines grammar tables: {defined}"
    sel = "|".join(SELECTORS)
    dispatch = re.findall(rf"\b(?:{sel})\s*==\s*(?:0x[0-9a-fA-F]+|\d+)\b", code)
    assert not dispatch, f"hard-coded dispatch in ub_dispatch.lua: {dispatch}"
    masks = re.findall(r"\{\s*\{\s*\d+\s*,\s*\d+\s*,\s*0x[0-9a-fA-F]+\s*\}", code)
    assert not masks, f"ICRC mask literals in ub_dispatch.lua: {masks}"
    # ethertypes, the UB UDP port, CFG-5 protocol numbers
    numbers = re.findall(r"\b(?:4792|0x8100|0x88[aA]8|0x0800|0x86[dD][dD]|0x010[0-9])\b", code)
    assert not numbers, f"grammar numbers in ub_dispatch.lua: {numbers}"
    decisions = HAND_CODED.findall(code)
    assert not decisions, f"hand-coded grammar decisions in ub_dispatch.lua: {decisions}"


def test_dispatch_guard_catches_the_old_walk():
    """The guard above would have rejected the hand-written walk this file replaced."""
    old = 'local REQ_SEQ = {\n  [0x00] = {"mtetah"},\n}\nif cfg == 3 or cfg == 4 then end\n'
    code = _code(old)
    names = "|".join(GRAMMAR_TABLES)
    assert re.findall(rf"^\s*(?:local\s+)?({names})\s*(?:\[[^\]]*\]\s*)?=[^=]", code, re.M)
    sel = "|".join(SELECTORS)
    assert re.findall(rf"\b(?:{sel})\s*==\s*(?:0x[0-9a-fA-F]+|\d+)\b", code)
    # and the hand-coded TAH form, UDETAH, MT_EN and TP-response ATAH decisions it kept after that
    for old in ('if not response and flags.ud_flag == 1 then out[1] = "ub.udetah" end',
                'st.compact = st.prof.cna_tah_form == "compact"', "st.compact = true",
                'if v.mt_en ~= mt then', "if st.stop - st.pos - st.pad >= 8 then",
                "local SUBOP_TAOPCODES = {Atomic_store = true, Atomic_load = true}",
                "and not (is_enumeration(st, layer, v) and not st.prof[ENUM_ICRC_KNOB]) then"):
        assert HAND_CODED.findall(_code(old)), old


def test_profiles_carry_what_the_grammar_consults():
    text = LUA.read_text(encoding="utf-8")
    consulted = _gen_module().grammar_profile_names()
    for line in (ln for ln in text.splitlines() if ln.startswith("PROFILE[")):
        for name in consulted:
            assert re.search(rf"[{{ ]{name} = ", line), f"{line[:30]}...: no {name}"


def registered_fields(tshark) -> dict:
    """abbrev -> the FT_ types tshark registers for it with ub.lua loaded (``tshark -G
    fields``): what the walk made from the generated tables."""
    res = subprocess.run([tshark, "-G", "fields", "-X", f"lua_script:{LUA}"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "Lua" not in res.stderr, res.stderr
    out: dict = {}
    for line in res.stdout.splitlines():
        cols = line.split("\t")
        if cols[0] == "F" and len(cols) > 3 and cols[2].startswith("ub."):
            out.setdefault(cols[2], set()).add(cols[3])
    return out


def test_derived_fields_are_protofields(tshark):
    """Every derived record field of a layer the plugin shows is a ProtoField of its kind (as
    tshark registers it), and so is every field the generator declares."""
    fields = registered_fields(tshark)
    gen = _gen_module()
    n = 0
    for d in DERIVED:
        if not (d.key.startswith("ub.") and (d.layer in HEADERS or d.layer in BYTE_LAYER_TITLES)):
            continue
        ctor = gen._lua_ctor(d)
        assert f"FT_{ctor.upper()}" in fields.get(d.key, ()), (d.key, ctor, fields.get(d.key))
        n += 1
    assert n >= 40
    from test_lua import _generated
    keys = set(_generated().first_hf)
    assert len(keys) > 300 and not keys - set(fields), sorted(keys - set(fields))[:10]


# ------------------------------------------------------------------------------------------------
# a bug the grammar walk fixed

def _ns3_cna16(body: bytes, nlp: int) -> bytes:
    nth = enc("ub.cna16_ns3", scna=1, dcna=2, nlp=nlp)
    total = 4 + len(nth) + len(body)
    return enc("ub.lph_ns3", cfg=6, vl=1, plength=plength(total)) + nth + body


def test_padding_without_icrc(tshark, tmp_path):
    """With no ICRC (the ns-3-UB profile) the transport padding after a TP response or a CTP CNP
    is ub.pad, as in ubpkt; the hand-written walk showed it as payload."""
    from test_lua import _generated
    pkts = [_ns3_cna16(rtph(tpopcode=2, psn=6, padding=2) + b"\0\0", 2),
            _ns3_cna16(enc("ub.ctph", tpopcode=1, padding=3) + b"\0\0\0", 0),
            _ns3_cna16(rtph(tpopcode=1, psn=7, nlp=0, padding=1) + enc("ub.btah_c", taopcode=3)
                       + b"\0", 2)]
    pcap = write(tmp_path / "pad147.pcap", 147, pkts)
    records, rows = check_capture(tshark, sorted(_generated().first_hf), pcap, 147,
                                  min_compared=30)
    assert [r["ub.pad.data"] for r in rows] == ["00:00", "00:00:00", "00"] or \
        [r["ub.pad.data"].replace(":", "") for r in rows] == ["0000", "000000", "00"]
    assert [r.get("ub.pad.data") for r in records] == ["0000", "000000", "00"]


def test_ta_flags_from_the_grammar(tshark, tmp_path):
    """The walk's TA_FLAGS check (MT_EN, UB 2.0 §7.2.1) and TA_REQUEST_PREFIX (UDETAH when
    UD_Flag) give ubpkt's warnings and layers."""
    from test_lua import _generated, btah, maetah, uboe
    pkts = [uboe(rtph(psn=1) + btah(0x03, mt_en=1) + maetah(length=4) + bytes(4)),
            uboe(rtph(psn=2) + btah(0x00) + enc("ub.mtetah") + enc("ub.ofstetah") + bytes(4)),
            uboe(rtph(psn=3) + btah(0x03, ud_flag=1) + enc("ub.udetah", ud=5)
                 + maetah(length=4) + bytes(4))]
    pcap = write(tmp_path / "flags.pcap", 1, pkts)
    records, rows = check_capture(tshark, sorted(_generated().first_hf), pcap, 1,
                                  min_compared=60)
    ref = [dissect(p.data, 1) for p in open_capture(pcap)]
    for fr, row in zip(ref, rows):
        want = [x["message"] for x in fr.issues if x["message"].startswith("MT_EN")]
        got = [m for m in row["_experts"].split("|") if m.startswith("MT_EN")]
        assert got == want
    assert rows[0]["_experts"].count("MT_EN is 1 but Write has no MTETAH") == 1
    assert "MT_EN is 0 but Send carries MTETAH" in rows[1]["_experts"]
    assert rows[2]["ub.udetah.ud"] == "5" and "ub.udetah.ud" in records[2]


def test_ciph_body_ends_before_the_padding(tshark, tmp_path):
    """The CIPH's protected part and ICV end where the transport padding starts (as ubpkt)."""
    from test_lua import _generated, cna16_pkt
    body = (enc("ub.ctph", nlp=3, padding=2) + enc("ub.ciph", cip_id=9, nlp=2, sn=5)
            + bytes(range(10)) + bytes(range(100, 112)) + b"\0\0")
    pcap = write(tmp_path / "ciph.pcap", 148, [cna16_pkt(0, body)])
    records, rows = check_capture(tshark, sorted(_generated().first_hf), pcap, 148,
                                  min_compared=20)
    assert records[0]["ub.ciph.icv"] == bytes(range(100, 112)).hex()
    assert rows[0]["ub.icrc.status"] == "good" and rows[0]["ub.pad.data"] in ("00:00", "0000")
