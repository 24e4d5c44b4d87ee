"""A template fast path for bulk decoding, checked against the reference dissector.

The first frame of a kind is decoded by :func:`ubpkt.dissect.dissect`.  When that frame is clean
(no warning or error), its layer layout becomes a *template*: the header region as one integer,
a guard mask covering every field the dissector branches on or derives a value from
(:data:`DISPATCH_FIELDS`), every reserved and fixed field and every zero-checked byte run, and a
generated function that extracts the remaining fields.  Later frames of that layout (any
payload length the grammar allows it: lengths, PLENGTH and the padding count are relations or
per-frame values, docs/fastpath.md) whose guard bits match, and whose ICRC verifies, are decoded
by that function alone; anything else goes through the dissector.  ``tests/test_fastpath.py``
and ``tests/test_fastpath_layouts.py`` check, frame by frame, on sequences and under random
corruption, that both paths give the same record.
"""
from __future__ import annotations

import zlib
from . import BYTE_LAYERS, dissect
from ..formats import HEADERS
from ..formats.core import _FAST_TEXT, value_to_text
from ..views.analysis import READS as ANALYSIS_READS
from ..views.output import SUMMARY_PLAN, summary_line, to_json_bytes, with_time_epoch
from ..views.timefmt import seconds_text
from ..views.stats import OPCODE_KEYS
from ..profile import Profile
from ..record import make_record
from .walk import steering_fields
from .bulkguard import GuardData
from .checks import INTERPRETING as _INTERPRETING
from ..formats.sack import sack_psns
from ..link.plength import packet_length, plength_blocks, plength_last_flits
from ..formats.grammar import (ATOMIC_OPERAND_BYTES, ATOMIC_PAYLOAD_OPCODES, ATOMIC_RESPONSE,
                               AUTO_FILL, FIELD_SIZED_PROCEDURES, LENGTH_ENCODED_RULES,
                               LENGTH_EXACT_RULES, LENGTH_RULES, NEXT, PADDING, PROCEDURE_ROOM,
                               Knob, Peek, Switch, covered_from, logical, peeks)

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover
    _orjson = None

__all__ = ["TemplateCache", "DISPATCH_FIELDS", "STATS_KEYS"]

#: Fields whose value steers the dissector (next header, lengths, derived fields, issue checks):
#: the grammar's selectors and what the walk's hooks read (``ubpkt.dissect.walk.steering_fields``).
DISPATCH_FIELDS = {layer: steering_fields(layer) for layer in HEADERS}
#: Layers whose presence makes a frame unsuitable for a template (values derived from byte runs,
#: CRCs other than the ICRC, repeated headers are handled by refusing too).
_UNSAFE_LAYERS = {"ub.scan_fwd", "ub.scan_ret", "ub.bcrc", "ub.scan", "ip.options"}
_ZERO_CHECKED = {"ub.pad", "ub.cb_body"}
#: The record fields ``ubpkt stats`` reads: the opcodes it counts and what the analysis of
#: transactions and PSNs reads (ubpkt.views.stats.OPCODE_KEYS, ubpkt.views.analysis.READS).
STATS_KEYS = tuple(dict.fromkeys(OPCODE_KEYS + ANALYSIS_READS))
#: List fields a template computes itself (from a byte run): the TPSACK's PSNs
_COMPUTED_LISTS = {"ub.saetph.acked_psns"}
#: layer -> its fields that count the bytes to the end of the packet (grammar AUTO_FILL rules in
#: LENGTH_RULES): checked as ``value == frame length - constant``, never as one value
LENGTH_FIELDS = {}
#: layer -> its fields whose length rule a template cannot express (LENGTH_EXACT_RULES)
_EXACT_FIELDS = {}
#: layer -> {field: rule} of the fields that encode the packet length from that header on
#: (grammar LENGTH_ENCODED_RULES): checked as ``length(value) == frame length`` (_ENCODINGS)
_ENCODED_FIELDS = {}
for (_lay, _f), _rule in AUTO_FILL.items():
    if _rule in LENGTH_RULES:
        LENGTH_FIELDS.setdefault(_lay, set()).add(_f)
    elif _rule in LENGTH_ENCODED_RULES:
        _ENCODED_FIELDS.setdefault(_lay, {})[_f] = _rule
    elif _rule in LENGTH_EXACT_RULES:
        _EXACT_FIELDS.setdefault(_lay, set()).add(_f)
#: The record keys of the TAH's opcode (full and compact forms share them)
_TA_OPCODE_KEYS = ("ub.btah.taopcode", "ub.atah.taopcode")
#: rule of LENGTH_ENCODED_RULES -> (whether the profile has the dissector check it, the
#: function of (value, profile) giving the packet length the value describes (None: none) as the
#: dissector computes it, the record fields the walk derives from the value and the function
#: computing each): PLENGTH (UB 2.0 §4.3.2.2.2; ubpkt.dissect.network reads it)
_ENCODINGS = {
    "plength": (lambda profile: profile.check_plength,
                lambda value, profile: packet_length(value, profile.crc_mode),
                (("ub.lph.blocks", plength_blocks), ("ub.lph.last_flits", plength_last_flits))),
}
assert set(_ENCODINGS) == set(LENGTH_ENCODED_RULES)
#: The byte runs a template lets grow and shrink: the payload and the transport padding after it
_VARIABLE_RUNS = ("data", "ub.pad")
#: Byte-run layers sized by a record field read before them (grammar FIELD_SIZED_PROCEDURES):
#: layer -> that field's record key.  A template may vary the frame length after them.
_FIELD_SIZED_RUNS = {run: key for run, key in FIELD_SIZED_PROCEDURES.values()}
#: The transport headers whose ``PADDING.field`` counts the ``ub.pad`` bytes (UB 2.0 §6.2.1): a
#: template of a padded layout reads that count per frame (any non-zero value) instead of
#: guarding it, so the 3 padding lengths share one template.
_PAD_COUNTERS = frozenset(PADDING.headers)


def _resolve_traced(rule, own, earlier, peek, profile):
    """Follow ``rule`` as ``grammar.select`` does; None when a Peek found no byte (what follows
    would change with a longer frame)."""
    while True:
        if isinstance(rule, Switch):
            v = earlier(rule.key) if "." in rule.key else own(rule.key)
            rule = rule.cases.get(v, rule.default) if isinstance(v, int) else rule.default
        elif isinstance(rule, Peek):
            b = peek(rule.offset)
            if b is None:
                return None
            rule = rule.cases.get((b & rule.mask) >> rule.shift, rule.default)
        elif isinstance(rule, Knob):
            rule = rule.cases.get(getattr(profile, rule.name), rule.default)
        else:
            return rule


def _length_plan(buf, fr, placed, profile):
    """How a template for this layout may vary the frame length, from the grammar: None (only
    frames of this length), or ``(data offset, bytes after the payload (less the padding when
    it is variable), largest payload or None, payload lengths barred, the transport header
    whose padding count is read per frame or None)``.  A layout varies when it ends in payload
    [+ padding] [+ ICRC], every length its headers carry is a relation (LENGTH_FIELDS,
    _ENCODED_FIELDS), every byte run before the payload is sized by a guarded field, every Peek
    found its byte and every procedure the walk entered has a known dependence on the bytes
    left (grammar.PROCEDURE_ROOM)."""
    names = [p[0] for p in placed]
    fields = fr.fields
    if "data" not in names or any(k.startswith("ub.atomic.") for k in fields):
        return None
    # an atomic payload is read as numbers only at the operand sizes: a template whose sample
    # was not one serves every other payload length (the sizes are excluded)
    barred = ()
    for k in _TA_OPCODE_KEYS:
        if fields.get(k) in ATOMIC_PAYLOAD_OPCODES:
            barred = tuple(ATOMIC_OPERAND_BYTES) if fields[k] == ATOMIC_RESPONSE else \
                tuple(2 * b for b in ATOMIC_OPERAND_BYTES)
    d = names.index("data")
    if any(lay in BYTE_LAYERS and lay not in _VARIABLE_RUNS and
           not _sized_by_guarded_field(lay, names[:d], fields) for lay in names) or \
            names[d + 1:] not in ([], ["ub.pad"], ["ub.icrc"], ["ub.pad", "ub.icrc"]) or \
            any(lay not in HEADERS and lay not in _FIELD_SIZED_RUNS for lay in names[:d]):
        return None
    data_off = placed[d][1]
    tail = len(buf) - data_off - placed[d][2]
    largest = None
    for i, (layer, o, n) in enumerate(placed[:d]):
        h = HEADERS.get(layer)
        if h is None:       # a byte run sized by a guarded field (checked above)
            continue
        if _EXACT_FIELDS.get(layer) or _EXACT_FIELDS.get(logical(layer)):
            return None
        if _ENCODED_FIELDS.get(layer) and o != 0:
            return None     # an encoded length counts from its header: the packet's first
        rule = NEXT.get(logical(layer))
        if rule is None:
            continue

        def own(name, h=h):
            return fields.get(h.keys[h.index[name]]) if name in h.index else None

        def peek(off, at=o + n):
            return buf[at + off] if at + off < len(buf) else None

        target = _resolve_traced(rule, own, fields.get, peek, profile)
        if target is None:
            return None
        if isinstance(target, str) and target.startswith("@"):
            if target not in PROCEDURE_ROOM:
                return None
            room = PROCEDURE_ROOM[target]
            if isinstance(room, str):
                room = HEADERS[room].size
            if room and names[i + 1] == "data":
                # the procedure declined for lack of room: so must every frame of the template
                largest = room - 1 if largest is None else min(largest, room - 1)
    # the padding count: read per frame from the transport header that carries it
    padvar = None
    if PADDING.pad_layer in names[d + 1:]:
        tph = [(i, lay) for i, lay in enumerate(names[:d]) if lay in _PAD_COUNTERS]
        f = HEADERS[tph[-1][1]].fields[HEADERS[tph[-1][1]].index[PADDING.field]] if tph else None
        if f is None or f.le or f.dwrev or f.shift or f.enum or f.fmt != "int":
            return None
        padvar = tph[-1][1]
        tail -= placed[d + 1][2]
    return data_off, tail, largest, barred, padvar


def _sized_by_guarded_field(layer: str, before, fields) -> bool:
    """Whether byte run ``layer`` is sized by a record field a template guards (grammar
    FIELD_SIZED_PROCEDURES): the field is in the record and is a steering field of its header
    (or a value a hook derived from steering fields, which templates copy from the sample)."""
    key = _FIELD_SIZED_RUNS.get(layer)
    if key is None or key not in fields:
        return False
    for lay in before:
        h = HEADERS.get(lay)
        if h is not None and key in h.keys:
            name = h.fields[h.keys.index(key)].name
            return name in DISPATCH_FIELDS.get(lay, ()) and \
                name not in LENGTH_FIELDS.get(lay, ())
    return True


class _Template:
    __slots__ = ("fn", "layers", "issues", "json", "summary", "pick", "region", "sample", "varied",
                 "seen", "special", "fails", "probe", "key", "keys", "variable", "sig", "parts",
                 "columns", "ok", "guard", "src", "views")

    def __init__(self, fn, layers, issues, json=None, region=0, sample=0, special=False,
                 summary=None, pick=None):
        self.fn = fn
        self.pick = pick          # the few fields stats reads (see _pick_fn)
        self.layers = layers
        self.issues = issues
        self.json = json
        self.summary = summary    # the summary line's fields part (see _summary_fn)
        self.region = region      # bytes of the guarded header region
        self.sample = sample      # that region of the frame the template was built from
        self.varied = 0           # region bits seen to differ from the sample
        self.seen = 0             # frames compared with the sample so far
        self.special = special    # built from the bits that stayed constant
        self.fails = 0            # consecutive guard failures (specialised templates)
        self.columns = None       # the fields as data, for bulk cutting (_columns_plan)
        self.ok = None            # guard only: True when a frame fits (with ``columns``)
        self.guard = None         # ``ok``'s tests as data (bulkguard.GuardData, with ``ok``)
        self.src = None           # what more views compile from (see TemplateCache.view)
        self.views = {}           # view key -> that view's function for this layout


def _build(buf: bytes, fr, profile: Profile, constant: int = 0):
    """A template for frames laid out like ``buf`` (decoded as ``fr``), or None.  ``constant``:
    header-region bits also to guard (and so to copy from ``fr``) - the specialised templates of
    :class:`TemplateCache` guard every field that did not change between the frames seen."""
    if any(i["severity"] != "info" for i in fr.issues):
        return None
    layers = fr.layers
    if len(set(layers)) != len(layers) or _UNSAFE_LAYERS.intersection(layers):
        return None
    fields = fr.fields
    if any(isinstance(v, list) and k not in _COMPUTED_LISTS for k, v in fields.items()):
        return None
    # walk the layers again to learn their offsets
    off = 0
    placed = []
    for layer in layers:
        if layer == "ub.icrc":
            placed.append((layer, off, 4))
            off += 4
        elif layer in BYTE_LAYERS:
            n = len(fields[BYTE_LAYERS[layer]]) // 2
            placed.append((layer, off, n))
            off += n
        else:
            h = HEADERS[layer]
            placed.append((layer, off, h.size))
            off += h.size
    if off != len(buf):
        return None
    plan = _length_plan(buf, fr, placed, profile)
    L = len(buf)
    # the guarded region: from 0 to the end of the last header or zero-checked run, and every
    # byte after a header that a grammar Peek read to choose what follows it
    region = 0
    peeked = []
    for layer, o, n in placed:
        if layer in HEADERS or (layer in _ZERO_CHECKED and plan is None):
            region = max(region, o + n)
        if layer in HEADERS:
            for off, mask in peeks(logical(layer)):
                if o + n + off < len(buf):
                    peeked.append((o + n + off, mask))
                    region = max(region, o + n + off + 1)
    total = region * 8
    gmask = 0
    smask = 0        # the bits that choose the layout: the probe of TemplateCache's index
    for q, mask in peeked:
        gmask |= mask << (total - 8 * (q + 1))
    smask = gmask
    declared = set()
    # the guard's tests as data as they are generated (bulkguard.GuardData: the same values)
    gd = {"exact": None, "tail": 0, "lo": 0, "hi": None, "barred": (), "data_off": 0,
          "min_len": 0, "pad": None, "lenrel": [], "encoded": [], "zero_fixed": [],
          "zero_pad": None, "icrc": None}
    if plan is None:
        size_test = f"L != {L}"
        tailx = None
        gd["exact"] = L
    else:
        data_off, tail, largest, barred, padvar = plan
        # E: where the payload ends (before the padding and the ICRC); with a variable padding
        # the payload's bounds are tested once the count is read (the relations)
        endx = "E" if padvar else (f"L - {tail}" if tail else "L")
        bounds = [f"{endx} < {max(region, data_off + 1)}"]
        if largest is not None:
            bounds.append(f"{endx} > {data_off + largest}")
        if barred:
            # a set display of constants: one frozenset constant, not built per call
            bounds.append(f"{endx} - {data_off} in {{{', '.join(map(str, sorted(barred)))}}}")
        size_test = f"L < {max(region, data_off + 1) + tail + 1}" if padvar else \
            " or ".join(bounds)
        gd.update(tail=tail, lo=max(region, data_off + 1), data_off=data_off,
                  hi=None if largest is None else data_off + largest, barred=tuple(barred),
                  min_len=max(region, data_off + 1) + tail + 1 if padvar else 0)
        tailx = endx
    lines = ["def run(buf):",
             "    L = len(buf)",
             f"    if {size_test}:",
             "        return None",
             f"    v = int.from_bytes(buf[:{region}], 'big')",
             f"    if v & {hex(0)} != 0:  # placeholder",
             "        return None"]
    relations = []
    pre = []            # assignments the relations use (the padding count P, the payload end E)
    padkeys = None      # (shift, mask) of a variable padding count in the region
    padbits = None      # (bit, bits) of that count: the column plans' variable padding
    body = []
    exprs = {}
    plans = {}       # record key -> how to cut it in bulk (columns, see _Template.columns)
    dotted = {}
    names = {}
    guarded_keys = set()
    raw_keys = {}
    for layer, o, n in placed:
        if layer == "ub.icrc":
            declared.add("ub.icrc.value")
            continue
        if layer in BYTE_LAYERS:
            key = BYTE_LAYERS[layer]
            declared.add(key)
            if layer == "data":
                # an atomic payload read as numbers (dissect.transaction._atomic_values)
                half = n // 2
                for k, expr, cut in (
                        ("ub.atomic.operand1", f"buf[{o}:{o + half}][::-1].hex()",
                         ("bytes_rev", o, half)),
                        ("ub.atomic.operand2", f"buf[{o + half}:{o + n}][::-1].hex()",
                         ("bytes_rev", o + half, n - half)),
                        ("ub.atomic.origin_data", f"buf[{o}:{o + n}].hex()", ("bytes", o, n))):
                    if k in fields:
                        declared.add(k)
                        exprs[k] = expr
                        plans[k] = cut
            if layer == "ub.saetph_bitmap" and "ub.saetph.acked_psns" in fields:
                # the PSNs a TPSACK reports, from the bitmap bytes and RTPH.PSN (read, or the
                # guarded value)
                psn = raw_keys.get("ub.rtph.psn", repr(fields.get("ub.rtph.psn")))
                declared.add("ub.saetph.acked_psns")
                exprs["ub.saetph.acked_psns"] = (f"_sack_psns(buf[{o}:{o + n}], {psn}, "
                                                 f"{profile.sack_bit_order!r})")
                src = plans.get("ub.rtph.psn") if "ub.rtph.psn" in raw_keys else None
                plans["ub.saetph.acked_psns"] = (
                    "sack", o, n, src[1:3] if src else fields.get("ub.rtph.psn"),
                    profile.sack_bit_order)
            if plan is not None and layer in _VARIABLE_RUNS:
                # the payload up to the padding, the padding up to the ICRC: offsets from the end
                if layer == "data":
                    exprs[key] = f"buf[{o}:{tailx}].hex()"
                    exprs["data.len"] = f"({tailx} - {o})"
                    if not plan[4]:
                        plans[key] = ("run", o, plan[1])
                        plans["data.len"] = ("runlen", o, plan[1])
                    elif padbits is not None:   # up to the P padding bytes
                        plans[key] = ("run_padded", o, plan[1], *padbits)
                        plans["data.len"] = ("runlen_padded", o, plan[1], *padbits)
                    declared.add("data.len")
                elif plan[4]:
                    # the padding: P zero bytes from E
                    pad_to = f"L - {plan[1]}" if plan[1] else "L"
                    relations.append(f"int.from_bytes(buf[E:{pad_to}], 'big')")
                    gd["zero_pad"] = plan[1]         # buf[E:L - plan[1]] all zero
                    exprs[key] = f"buf[E:{pad_to}].hex()"
                    if padbits is not None:
                        plans[key] = ("tail_padded", plan[1], *padbits)
                else:
                    pad_from = f"L - {plan[1]}"
                    pad_to = f"L - {plan[1] - n}" if plan[1] - n else "L"
                    relations.append(f"buf[{pad_from}:{pad_to}] != {bytes(n)!r}")
                    gd["zero_fixed"].append((plan[1], plan[1] - n))    # buf[L-a:L-b] zero
                    exprs[key] = f"buf[{pad_from}:{pad_to}].hex()"
                    plans[key] = ("tail", plan[1], plan[1] - n)
                continue
            if layer in _ZERO_CHECKED:
                gmask |= ((1 << (8 * n)) - 1) << (total - 8 * (o + n))
            exprs[key] = f"buf[{o}:{o + n}].hex()"
            plans[key] = ("bytes", o, n)
            continue
        h = HEADERS[layer]
        guarded = set(DISPATCH_FIELDS.get(layer, ()))
        lengths = LENGTH_FIELDS.get(layer, ()) if plan is not None else ()
        encoded = _ENCODED_FIELDS.get(layer, {}) if plan is not None else {}
        raws = {}
        bitpos = {}
        for f, k, foff in zip(h.fields, h.keys, h.offsets):
            declared.add(k)
            if f.enum:
                declared.add(k + "_name")
            shift = total - 8 * o - foff - f.bits
            mask = (1 << f.bits) - 1
            if f.name in lengths and not (f.le or f.dwrev or f.shift):
                # a byte count to the end of the packet: the same distance from the end in
                # every frame of the template
                x = _read_expr(8 * o + foff, f.bits, shift, mask)
                relations.append(f"{x} != L - {L - fields[k]}")
                gd["lenrel"].append((8 * o + foff, f.bits, L - fields[k]))
            elif f.name in encoded and not (f.le or f.dwrev or f.shift or f.enum) and \
                    f.fmt == "int":
                # a packet length encoded (PLENGTH): the value the frame length gives, when the
                # profile has the dissector check it; the fields derived from it per frame
                checked, length_of, derived = _ENCODINGS[encoded[f.name]]
                x = _read_expr(8 * o + foff, f.bits, shift, mask)
                if checked(profile):
                    var = f"e{len(names)}"
                    names[var] = length_of
                    names[f"e{len(names)}"] = profile
                    relations.append(f"{var}({x}, e{len(names) - 1}) != L")
                    gd["encoded"].append((8 * o + foff, f.bits, length_of, profile))
                tmp = f"t{len(names)}_{f.name}"
                body.append(f"    {tmp} = {x}")
                exprs[k] = tmp
                for dk, fn in derived:
                    var = f"e{len(names)}"
                    names[var] = fn
                    exprs[dk] = f"{var}({tmp})"
                    declared.add(dk)
                continue
            elif plan is not None and plan[4] == layer and f.name == PADDING.field:
                # the padding count, any non-zero value (the layout has a ub.pad); the index
                # holds the template under each (TemplateCache._insert)
                pre.append(f"    P = {_read_expr(8 * o + foff, f.bits, shift, mask)}")
                pre.append(f"    E = L - {plan[1]} - P" if plan[1] else "    E = L - P")
                relations[:0] = ["not P"] + bounds
                exprs[k] = "P"
                smask |= mask << shift
                padkeys = (shift, mask)
                padbits = (8 * o + foff, f.bits)
                gd["pad"] = padbits
                plans[k] = ("field", 8 * o + foff, f.bits, f.shift, f.fmt)
                continue
            elif (f.name in guarded or f.reserved or f.fixed is not None or f.le or f.dwrev
                    or (constant >> shift) & mask == mask):
                gmask |= mask << shift
                if f.name in guarded:
                    smask |= mask << shift
                guarded_keys.update((k, k + "_name"))
                continue
            x = _read_expr(8 * o + foff, f.bits, shift, mask)
            raw = x
            raws[f.name] = raw
            raw_keys[k] = raw
            bitpos[f.name] = (8 * o + foff, f.bits)
            plans[k] = ("field", 8 * o + foff, f.bits, f.shift, f.fmt)
            if f.enum:
                plans[k + "_name"] = ("enum", 8 * o + foff, f.bits, dict(f.enum))
            if f.shift:
                x = f"({x} << {f.shift})"
            if f.fmt != "int":
                a, rem = divmod(8 * o + foff, 8)
                if f.fmt == "hex" and not rem and not f.bits % 8:
                    x = f"buf[{a}:{a + f.bits // 8}].hex()"
                elif f.fmt == "mac" and not rem and f.bits == 48:
                    x = f"buf[{a}:{a + 6}].hex(':')"
                elif f.fmt == "ipv4" and not rem and f.bits == 32:
                    x = f"'%d.%d.%d.%d' % tuple(buf[{a}:{a + 4}])"
                    dotted[k] = a
                elif f.fmt in _FAST_TEXT:
                    x = _FAST_TEXT[f.fmt].format(x=x)
                else:
                    x = f"_text({f.fmt!r}, {x}, {f.bits})"
            if f.enum:
                var = f"e{len(names)}"
                tmp = f"t{len(names) + 1}"
                body.append(f"    {tmp} = {raw}")
                if not f.shift and f.fmt == "int":
                    x = tmp
                if f.bits <= 8:
                    # every value has its name (or unknown_N): one tuple index
                    names[var] = tuple(f.enum.get(i, f"unknown_{i}") for i in range(1 << f.bits))
                    exprs[k + "_name"] = f"{var}[{tmp}]"
                else:
                    names[var] = dict(f.enum)
                    exprs[k + "_name"] = (f"({var}[{tmp}] if {tmp} in {var} "
                                          f"else 'unknown_%d' % {tmp})")
            exprs[k] = x
        # interpretations of a field the template reads (formats.derived.INTERPRETATIONS): the
        # same computation in the generated code; of a guarded field, the sample's value stands
        its = _INTERPRETING.get(layer)
        if its:
            hv = h.unpack(buf, o)
            for it in its:
                if it.field not in raws or not all(hv[h.index[n]] in a for n, a in it.when):
                    continue
                declared.add(it.key)
                exprs[it.key] = _interpret_expr(it, raws[it.field], names)
                plans[it.key] = ("interpret", *bitpos[it.field], it)
    gval = int.from_bytes(buf[:region], "big") & gmask
    lines[5] = f"    if v & {gmask:#x} != {gval:#x}:"
    lines.extend(pre)
    for r in relations:
        lines.append(f"    if {r}:")
        lines.append("        return None")
    static = {k: v for k, v in fields.items() if k not in declared or k in guarded_keys}
    icrc = None
    if "ub.icrc" in layers:
        o = [p for p in placed if p[0] == "ub.icrc"][0][1]
        # recompute with the dissector's masks: take them from a fresh dissection state
        icrc = _icrc_plan(buf, fr, profile, o)
        if icrc is None:
            return None
        start, masks, end = icrc
        order = profile.icrc_byteorder
        # masked fields as one OR over the header part that holds them, then the rest
        hdr_end = min(max((o + n for o, n, _ in masks), default=start), end)
        ormask = 0
        for mo, mn, first in masks:
            for j in range(mn):
                byte = first if j == 0 else 0xFF
                ormask |= byte << (8 * (hdr_end - (mo + j) - 1))
        endx = end if plan is None else "L - 4"
        lines.append(f"    stored = int.from_bytes(buf[{endx}:], {order!r})")
        lines.append(f"    h = (int.from_bytes(buf[{start}:{hdr_end}], 'big') | {ormask:#x})"
                     f".to_bytes({hdr_end - start}, 'big')")
        lines.append(f"    if _crc32(buf[{hdr_end}:{endx}], _crc32(h)) != stored:")
        lines.append("        return None")
        exprs["ub.icrc.value"] = "stored"
        gd["icrc"] = (start, hdr_end, ormask.to_bytes(hdr_end - start, "big"), end,
                      plan is None, order)
        plans["ub.icrc.value"] = ("icrc", order)
    guard = lines + ["    return True"]
    lines.extend(body)
    items = []
    for k, v in fields.items():
        if k in exprs and k not in static:
            items.append(f"{k!r}: {exprs[k]}")
        elif isinstance(v, (int, str, float)) or v is None:
            items.append(f"{k!r}: {v!r}")
        else:
            return None
    head = list(lines)
    lines.append("    return {" + ", ".join(items) + "}")
    ns = {"_text": value_to_text, "_crc32": zlib.crc32, "_sack_psns": sack_psns, **names}
    issues = fr.issues
    t = _Template(None, tuple(layers), tuple(issues), None, region,
                  int.from_bytes(buf[:region], "big"), special=bool(constant))
    # each view's function is generated and compiled the first time that view asks for it
    # (a cache serves one view: compiling all four would cost four compiles per layout)
    t.fn = _lazy(t, "fn", lambda: _compile(lines, ns, "run", "template"))
    t.json = _lazy(t, "json", lambda: _json_fn(head, fields, exprs, static, layers, issues,
                                                ns, dotted))
    t.summary = _lazy(t, "summary", lambda: _summary_fn(head, fields, exprs, static, issues,
                                                         ns, dotted))
    t.pick = _lazy(t, "pick", lambda: _pick_fn(head, fields, exprs, static, ns))
    t.parts = _lazy(t, "parts", lambda: _parts_fn(head, fields, exprs, static, layers, issues,
                                                   ns, dotted))
    t.probe = (region, smask)
    # a copy: the record the caller builds from ``fields`` may be annotated (-V's analysis)
    t.src = TemplateSource(head, dict(fields), exprs, static, ns, dotted, buf)
    t.key = t.sample & smask
    if padkeys is None:
        t.keys = (t.key,)
    else:       # every non-zero padding count
        shift, mask = padkeys
        t.keys = tuple(t.key & ~(mask << shift) | (c << shift) for c in range(1, mask + 1))
    t.variable = plan is not None
    t.columns = _columns_plan(fields, exprs, static, plans)
    if t.columns is not None:
        guard_src = [line.replace("def run(buf):", "def run_ok(buf):") for line in guard]
        t.ok = _lazy(t, "ok", lambda: _compile(guard_src, ns, "run_ok", "guard"))
        t.guard = GuardData(region, gmask, gval, **gd)
    return t


def _columns_plan(fields, exprs, static, plans):
    """The template's fields as data for cutting them from many frames at once
    (``ubpkt.analytics.columnar``): ``(record key, plan)`` in record order, a plan being
    ``("const", value)`` (a guarded field: the sample's value), ``("field", bit, bits, shift,
    fmt)`` (a header field at an absolute bit position, shown as ``fmt``), ``("enum", bit,
    bits, names)``, ``("interpret", bit, bits, Interpretation)``, ``("bytes", offset, n)`` (hex
    of a fixed byte run; ``bytes_rev``: its bytes reversed, an atomic operand), ``("sack",
    offset, n, psn, bit order)`` (a TPSACK's PSNs from its bitmap; ``psn`` the RTPH PSN's
    ``(bit, bits)`` or its guarded value), ``("run", offset, tail)`` (hex from ``offset`` to ``tail`` bytes before
    the end: the payload), ``("runlen", offset, tail)`` (its length), ``("tail", start, stop)``
    (hex of the bytes ``start`` to ``stop`` before the end: the padding); with a padding count
    read per frame (the field at ``bit``, ``bits`` wide: P), ``("run_padded", offset, tail, bit,
    bits)`` / ``("runlen_padded", ...)`` (the payload up to the P padding bytes) and
    ``("tail_padded", tail, bit, bits)`` (the P bytes before the last ``tail``), ``("icrc", byte
    order)`` (the last four bytes).  None when a value has no such plan: that layout goes
    through :attr:`_Template.fn`."""
    out = []
    for k, v in fields.items():
        if k in exprs and k not in static:
            p = plans.get(k)
            if p is None:
                return None
            out.append((k, p))
        elif isinstance(v, (int, str, float)) or v is None:
            out.append((k, ("const", v)))
        else:
            return None
    return tuple(out)


def _compile(lines, ns, name, what):
    """The function ``name`` defined by source ``lines``, its globals a copy of ``ns``."""
    ns = dict(ns)
    exec(compile("\n".join(lines) + "\n", f"<ubpkt.dissect.fastpath {what}>", "exec"), ns)
    return ns[name]


def _lazy(t, attr, make):
    """A stand-in for ``t.<attr>``: on its first call it makes the real function (``make()``,
    None when the layout cannot have one), puts it in its place and answers as it would (None,
    the frame goes to the dissector, when there is no such function)."""
    def first(*args):
        try:
            fn = make()
        except Exception:       # a template is an optimisation: never let it fail a decode
            fn = None
        setattr(t, attr, fn)
        return None if fn is None else fn(*args)
    return first


class TemplateSource:
    """What a view compiles its own per-layout function from (``TemplateCache.view``): the
    generated function's head (length checks, guards, ICRC, temporaries) in ``head`` (source
    lines of ``def run(buf):``), the sample's ``fields``, ``exprs`` (record key -> Python
    expression of its value in this frame), ``static`` (keys whose sample value every frame of
    the template has), ``ns`` (the namespace the expressions need), ``dotted`` (IPv4 keys ->
    byte offset), ``frame`` (the sample frame's bytes).  Frames of a template whose length
    varies (``_Template.variable``) differ from the sample only in the payload's length: what
    follows the payload sits as far from the end."""

    __slots__ = ("head", "fields", "exprs", "static", "ns", "dotted", "frame")

    def __init__(self, head, fields, exprs, static, ns, dotted, frame=b""):
        self.head, self.fields, self.exprs = head, fields, exprs
        self.static, self.ns, self.dotted = static, ns, dotted
        self.frame = frame


def _pick_fn(head, fields, exprs, static, ns):
    """A fourth generated function: the dict of only the :data:`STATS_KEYS` this layout holds
    (what ``ubpkt stats`` reads), the rest of the fields never built."""
    items = []
    for k in STATS_KEYS:
        if k not in fields:
            continue
        if k in exprs and k not in static:
            items.append(f"{k!r}: {exprs[k]}")
        else:
            items.append(f"{k!r}: {fields[k]!r}")
    lines = [line.replace("def run(buf):", "def run_pick(buf):") for line in head]
    lines.append("    return {" + ", ".join(items) + "}")
    ns = dict(ns)
    exec(compile("\n".join(lines) + "\n", "<ubpkt.dissect.fastpath pick template>", "exec"), ns)
    return ns["run_pick"]


def _summary_fn(head, fields, exprs, static, issues, ns, dotted):
    """A third generated function giving the fields part of the one-line summary
    (:func:`ubpkt.views.output.summary_line` after the frame, time and length columns): one
    %-format over the summary keys this layout holds, constant ones rendered once.  None when
    the layout needs the general renderer (a value that is neither int nor str, an issue that
    the summary counts)."""
    if any(i["severity"] in ("error", "warning") for i in issues):
        return None
    pieces, args = [], []
    for key, label, is_addr in SUMMARY_PLAN:
        if key not in fields:
            continue
        v = fields[key]
        if v is None:
            continue
        if key in dotted and key not in static:
            a = dotted[key]
            pieces.append(" " + label.replace("%", "%%") + "%d.%d.%d.%d")
            args.extend(f"buf[{a + i}]" for i in range(4))
        elif key in exprs and key not in static:
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                return None
            conv = ("%#x" if is_addr else "%d") if isinstance(v, int) else "%s"
            pieces.append(" " + label.replace("%", "%%") + conv)
            args.append(exprs[key])
        else:
            if isinstance(v, list):
                return None
            if is_addr and isinstance(v, int):
                v = hex(v)
            pieces.append((" " + label + str(v)).replace("%", "%%"))
    fmt = "".join(pieces)
    lines = [line.replace("def run(buf):", "def run_summary(buf):") for line in head]
    if args:
        lines.append(f"    return {fmt!r} % ({', '.join(args)},)")
    else:
        lines.append(f"    return {fmt.replace('%%', '%')!r}")
    ns = dict(ns)
    exec(compile("\n".join(lines) + "\n", "<ubpkt.dissect.fastpath summary template>", "exec"),
         ns)
    return ns["run_summary"]


def _json_fn(head, fields, exprs, static, layers, issues, ns, dotted):
    """A second generated function writing the ndjson line directly: the frame's values go
    through one %-format whose constant parts are rendered once, by the same JSON encoder the
    record path uses.  None when that is not possible (values orjson cannot hold)."""
    if _orjson is None:
        return None
    dumps = _orjson.dumps
    body = _json_fields(fields, exprs, static, dotted)
    if body is None:
        return None
    body, args = body
    try:
        parts = ['{"frame":%d,"time":%s%s,"len":%d,"caplen":%d,"linktype":', ]
        tail = ',"layers":' + dumps(list(layers)).decode() + ',"fields":{'
        closing = '},"issues":' + dumps(list(issues)).decode().replace("%", "%%") + "}\n"
    except TypeError:   # a value orjson cannot encode
        return None
    fmt = parts[0] + "%d" + tail.replace("%", "%%") + body + closing
    lines = [line.replace("def run(buf):", "def run_json(buf, frame, time, epoch, orig_len, lt):")
             for line in head]
    lines.append(f"    return ({fmt!r} % (frame, _dumps(time).decode(), epoch, orig_len, len(buf), lt"
                 + "".join(f", {a}" for a in args) + ")).encode()")
    return _compile(lines, dict(ns, _dumps=dumps), "run_json", "json template")


def _parts_fn(head, fields, exprs, static, layers, issues, ns, dotted):
    """A generated function giving the frame's ndjson pieces for splicing into an enclosing
    record (a flit stream's DLLDP, ``ubpkt.dissect.flitfast``), as str: ``(layers, fields,
    issues, names)``: the JSON text of the layers' and of the fields' items, each led by a comma
    (empty when there are none: it follows the enclosing record's own items), the issues' items
    (constant; the layers too, the fields one %-format as in :func:`_json_fn`) and the
    frozenset of the field names (constant: the caller may judge it once per template).  None
    when not possible."""
    if _orjson is None:
        return None
    dumps = _orjson.dumps
    body = _json_fields(fields, exprs, static, dotted)
    if body is None:
        return None
    body, args = body
    try:
        jl = dumps(list(layers)).decode()[1:-1]
        ji = dumps(list(issues)).decode()[1:-1]
    except TypeError:
        return None
    jl = "," + jl if jl else ""
    body = "," + body if body else ""
    lines = [line.replace("def run(buf):", "def run_parts(buf):") for line in head]
    if args:
        lines.append(f"    return _L, {body!r} % ({', '.join(args)},), _I, _K")
    else:
        lines.append(f"    return _L, {body.replace('%%', '%')!r}, _I, _K")
    return _compile(lines, dict(ns, _dumps=dumps, _L=jl, _I=ji, _K=frozenset(fields)),
                    "run_parts", "parts template")


def _json_fields(fields, exprs, static, dotted):
    """``(format, argument expressions)`` of the JSON text inside a record's ``fields`` object
    (keys and constant values rendered once, by the record path's encoder), or None (a value
    orjson cannot hold, or one a template cannot write)."""
    dumps = _orjson.dumps
    try:
        args = []
        body = []
        for k, v in fields.items():
            key = dumps(k).decode()
            if k in dotted and k not in static:
                # an IPv4 address straight from its four bytes
                a = dotted[k]
                body.append(key + ':"%d.%d.%d.%d"')
                args.extend(f"buf[{a + i}]" for i in range(4))
            elif k in exprs and k not in static and k in _COMPUTED_LISTS:
                # a computed list (the TPSACK's PSNs): JSON text from the same encoder
                body.append(key + ":%s")
                args.append(f"_dumps({exprs[k]}).decode()")
            elif k in exprs and k not in static:
                if isinstance(v, bool) or not isinstance(v, (int, str)):
                    return None
                body.append(key + (":%d" if isinstance(v, int) else ':"%s"'))
                args.append(exprs[k])
            else:
                body.append(key + ":" + dumps(v).decode().replace("%", "%%"))
    except TypeError:   # a value orjson cannot encode (an integer wider than 64 bits)
        return None
    return ",".join(body), args


def _interpret_expr(it, raw: str, names: dict) -> str:
    """Python source computing interpretation ``it`` from the field read by ``raw``, as
    :func:`ubpkt.formats.derived.interpret` does (value names go to ``names``)."""
    if it.kind == "bits":
        shift, mask = it.arg
        return f"(({raw} >> {shift}) & {mask:#x})"
    if it.kind == "pow2":
        return f"({it.arg} << {raw})"
    if it.kind == "plus":
        return f"({raw} + {it.arg})"
    var = f"e{len(names)}"
    names[var] = dict(it.arg)
    return f"{var}.get({raw}) or 'reserved_%d' % {raw}"


def _read_expr(bit: int, bits: int, shift: int, mask: int) -> str:
    """The cheapest expression for a field at absolute bit ``bit`` of ``buf``: whole bytes are
    read directly, bits inside one byte from that byte, anything else from the region int."""
    a, rem = divmod(bit, 8)
    if not rem and not bits % 8:
        if bits == 8:
            return f"buf[{a}]"
        if bits == 16:
            return f"(buf[{a}] << 8 | buf[{a + 1}])"
        return f"int.from_bytes(buf[{a}:{a + bits // 8}], 'big')"
    if rem + bits <= 8:
        s = 8 - rem - bits
        return f"((buf[{a}] >> {s}) & {mask:#x})" if s else f"(buf[{a}] & {mask:#x})"
    return f"((v >> {shift}) & {mask:#x})"


def _icrc_plan(buf: bytes, fr, profile: Profile, icrc_off: int):
    """(start, masks, end) of the frame's ICRC: the coverage the grammar gives (first covering
    header), masks from the ``icrc_mask`` flags of the covered headers."""
    layers = fr.layers
    start = covered_from(layers)
    if start is None:
        return None
    off = 0
    masks = []
    first = None
    for i, layer in enumerate(layers):
        if layer == "ub.icrc":
            break
        if layer in BYTE_LAYERS:
            n = len(fr.fields[BYTE_LAYERS[layer]]) // 2
        else:
            h = HEADERS[layer]
            n = h.size
            if i >= start and h.icrc_ormask:
                masks += h.icrc_masks(off)
        if i == start:
            first = off
        off += n
    return first, masks, icrc_off


_EPOCH_FMT = tuple(',"time_epoch":"%d"' if d == 0 else f',"time_epoch":"%d.%0{d}d"'
                   for d in range(10))
_EPOCH_DIV = tuple(10 ** (9 - d) for d in range(10))


#: layer -> the record keys of its layout-steering fields (DISPATCH_FIELDS less the byte counts
#: LENGTH_FIELDS): with the layer sequence they name a layout (TemplateCache._signature)
_STEER_KEYS = {layer: tuple(h.keys[h.index[f]] for f in DISPATCH_FIELDS.get(layer, ())
                            if f not in LENGTH_FIELDS.get(layer, ()) and
                            f not in _ENCODED_FIELDS.get(layer, ()))
               for layer, h in HEADERS.items()}


class TemplateCache:
    """Decodes frames through templates when it can, through the dissector otherwise.

    Templates are keyed by *layout*: the header sequence and the values of the fields that
    steer the grammar walk (``DISPATCH_FIELDS``, the bytes grammar Peeks read), with the payload
    length and the byte counts that follow it (``LENGTH_FIELDS``) as variables.  The index is a
    short list of probes ``(region bytes, steering mask)``, each a dict from the masked header
    region to that layout's templates: finding a frame's template costs one masked integer and
    one dict lookup per probe, and one guard test.  A layout gets a template the second time the
    dissector sees it (``COMPILE_AFTER``); a layout whose templates keep failing their guards
    stops compiling after ``per_key`` builds.  Memory is bounded: ``max_keys`` templates.
    """

    def __init__(self, profile: Profile, max_keys: int = 2048, per_key: int = 4):
        self.profile = profile
        self.max_keys = max_keys
        self.per_key = per_key
        self._groups: list = []        # [region, steering mask, {masked region: [templates]}]
        self._by_probe: dict = {}      # (region, mask) -> its entry of _groups
        self._top = 0                  # the longest probe region up to SHARED_REGION
        self._seen: dict = {}          # layout signature -> dissections (and builds) so far
        self._count = 0                # templates held
        self.hits = 0
        self.misses = 0
        self.compiled = 0
        self.inserted: list = []       # every template put in the index, in order (bulkguard)

    #: Bytes of a frame's start read once per lookup as one integer for every probe whose region
    #: fits (longer regions are read on their own: a long integer would cost every probe).
    SHARED_REGION = 256
    #: Frames a general template compares with its sample before it is specialised.
    LEARN = 16
    #: Consecutive guard failures after which a specialised template is dropped.
    GIVE_UP = 32
    #: Dissections of a layout before it gets a template (a layout seen once costs no compile).
    COMPILE_AFTER = 2

    #: When set, a frame no template fits is dissected with ``layer_list=trace()`` (a list
    #: that notes where each layer ends, ``ubpkt.views.tree._TracingLayers``) and ``traced``
    #: holds ``(frame bytes, that list)``: ``-V`` takes the layers' offsets from that one
    #: dissection instead of dissecting the frame again; a template built from a traced
    #: dissection keeps its sample's list in ``template.views["traced"]``.
    trace = None
    traced = None

    #: Fraction digits of the capture's times: when set, ndjson lines carry the exact time as
    #: ``"time_epoch": "<seconds>.<digits>"`` after ``time`` (as tshark's -T json writes
    #: frame.time_epoch: a string with the capture's full precision); None: no such key.
    digits = None

    def _candidates(self, buf, start: int = 0):
        """``(i, templates)``: the templates of a layout ``buf`` seems to have, found by probe
        ``start`` or a later one, ``i`` where to go on (``start=i + 1``) when none of them fits;
        ``(-1, None)``: no (further) such layout known.  A frame can match more than one probe
        (layouts whose header regions differ: a padded layout and an exact-length one), so a
        caller whose templates all refuse the frame asks again before dissecting."""
        n = len(buf)
        groups = self._groups
        # the frame's first bytes as one integer, each probe's region a shift of it (regions
        # longer than SHARED_REGION are read on their own)
        top = self._top if n >= self._top else n
        whole = int.from_bytes(buf[:top], "big")
        for i in range(start, len(groups)):
            g = groups[i]
            r = g[0]
            if r <= top:
                lst = g[2].get((whole >> ((top - r) << 3)) & g[1])
            elif n < r:
                continue
            else:
                lst = g[2].get(int.from_bytes(buf[:r], "big") & g[1])
            if lst:
                if i > start:       # busier probes drift to the front
                    groups[i - 1], groups[i] = g, groups[i - 1]
                return i, lst
        return -1, None

    def _failed(self, t, lst) -> None:
        if t.special:
            t.fails += 1
            if t.fails > self.GIVE_UP and t in lst:
                self._drop(t)

    def _drop(self, t: _Template) -> None:
        """Take template ``t`` out of the index (every key it is held under)."""
        g = self._by_probe.get(t.probe)
        for key in t.keys:
            lst = g[2].get(key) if g is not None else None
            if lst and t in lst:
                lst.remove(t)
        self._count -= 1

    def ndjson(self, buf: bytes, linktype: int, frame: int, time_ns: int, orig_len: int) -> bytes:
        """The ndjson line of one frame (identical to rendering its record, with
        ``time_epoch`` when :attr:`digits` is set, see :func:`with_time_epoch`)."""
        digits = self.digits
        if digits is None:
            epoch = ""
        elif time_ns >= 0:     # seconds_text's digits, one %-format (the ndjson hot path)
            sec, rem = divmod(time_ns, 1_000_000_000)
            epoch = _EPOCH_FMT[digits] % (sec, rem // _EPOCH_DIV[digits])
        else:
            epoch = ',"time_epoch":"%s"' % seconds_text(time_ns, digits)
        # view()'s loop, inlined here and in summary(): through view() (a call and *args a
        # frame) `decode -T ndjson` measured 3-5 % slower on 200k varied frames
        i, lst = self._candidates(buf)
        while lst is not None:
            for t in lst:
                if t.json is None:
                    continue
                line = t.json(buf, frame, time_ns / 1e9, epoch, orig_len, linktype)
                if line is not None:
                    self.hits += 1
                    if t.special:
                        t.fails = 0
                    elif t.seen < self.LEARN:
                        self._learn(t, lst, buf, linktype)
                    return line
                self._failed(t, lst)
            i, lst = self._candidates(buf, i + 1)
        layers, fields, issues = self._miss(buf, linktype)
        rec = make_record(frame, time_ns / 1e9, orig_len, len(buf), linktype, layers, fields,
                          issues)
        if digits is not None:
            rec = with_time_epoch(rec, seconds_text(time_ns, digits))
        return to_json_bytes(rec)

    def summary(self, buf: bytes, linktype: int, frame: int, time_col: str,
                orig_len: int) -> str:
        """The one-line summary of one frame (identical to :func:`summary_line` of its record,
        ``time_col`` being its time column as ``-t`` formats it), from a template's summary
        renderer where the frame fits one."""
        i, lst = self._candidates(buf)
        while lst is not None:
            for t in lst:
                fn = t.summary
                if fn is None:
                    continue
                tail = fn(buf)
                if tail is not None:
                    self.hits += 1
                    if t.special:
                        t.fails = 0
                    elif t.seen < self.LEARN:
                        self._learn(t, lst, buf, linktype)
                    return f"{frame:>6} {time_col} {orig_len:>5}{tail}"
                self._failed(t, lst)
            i, lst = self._candidates(buf, i + 1)
        layers, fields, issues = self._miss(buf, linktype)
        return summary_line(make_record(frame, None, orig_len, len(buf), linktype, layers,
                                        fields, issues), time_col)

    def pick(self, buf: bytes, linktype: int):
        """``(template, fields)`` of one frame where ``fields`` holds at least the
        :data:`STATS_KEYS` the frame has (only those when a template decoded it); ``template``
        (its ``layers`` and ``issues`` are the frame's) or None with ``(None, (layers, fields,
        issues))`` from the dissector."""
        i, lst = self._candidates(buf)
        while lst is not None:
            for t in lst:
                fn = t.pick
                f = None if fn is None else fn(buf)
                if f is not None:
                    self.hits += 1
                    return t, f
            i, lst = self._candidates(buf, i + 1)
        return None, self._miss(buf, linktype)

    def view(self, buf: bytes, linktype: int, compiled, *args):
        """A view rendered straight from a template: ``compiled(template)`` gives the view's
        function for that layout (compiled once from ``template.src``, kept in
        ``template.views``) or None; its result for ``(buf, *args)`` is returned when the frame
        fits (not None).  Otherwise the dissector's ``(layers, fields, issues)`` tuple (the
        view renders the record)."""
        i, lst = self._candidates(buf)
        while lst is not None:
            for t in lst:
                fn = compiled(t)
                if fn is None:
                    continue
                out = fn(buf, *args)
                if out is not None:
                    self.hits += 1
                    if t.special:
                        t.fails = 0
                    elif t.seen < self.LEARN:
                        self._learn(t, lst, buf, linktype)
                    return out
                self._failed(t, lst)
            i, lst = self._candidates(buf, i + 1)
        return self._miss(buf, linktype)

    def _learn(self, t: _Template, lst: list, buf: bytes, linktype: int) -> None:
        """Note which header bits vary; after LEARN frames, put a template in front that guards
        (and so copies) every field whose bits never changed."""
        t.varied |= int.from_bytes(buf[:t.region], "big") ^ t.sample
        t.seen += 1
        if t.seen < self.LEARN or self._count >= self.max_keys:
            return
        constant = ~t.varied & ((1 << (8 * t.region)) - 1)
        try:
            tl = None if self.trace is None else self.trace()
            fr = dissect(buf, linktype, self.profile, layer_list=tl)
            if tl is not None:
                fr.layers, tl.frame = list(tl), None
            special = _build(bytes(buf), fr, self.profile, constant)
            if special is not None and tl is not None:
                special.views["traced"] = tl
        except Exception:  # an optimisation only
            special = None
        if special is not None and special.probe == t.probe and special.key == t.key and \
                t in lst:
            # in front of the general template, under each key both are held (a padded
            # layout's counts, when the padding varied)
            g = self._by_probe[t.probe][2]
            keys = [k for k in special.keys if k in t.keys and t in g.get(k, ())]
            special.keys = tuple(keys)
            for k in keys:
                g[k].insert(g[k].index(t), special)
            self._count += 1
            self.compiled += 1
            self.inserted.append(special)

    def parts(self, buf: bytes, linktype: int):
        """The frame's ndjson pieces for splicing, ``(layers, fields, issues, field names)``
        (JSON text, see ``_parts_fn``) from a template; or, when no template fits, ``(None,
        (layers, fields, issues))`` from the dissector."""
        i, lst = self._candidates(buf)
        while lst is not None:
            for t in lst:
                fn = t.parts
                got = None if fn is None else fn(buf)
                if got is not None:
                    self.hits += 1
                    if t.special:
                        t.fails = 0
                    elif t.seen < self.LEARN:
                        self._learn(t, lst, buf, linktype)
                    return got
                self._failed(t, lst)
            i, lst = self._candidates(buf, i + 1)
        return None, self._miss(buf, linktype)

    def decode(self, buf: bytes, linktype: int):
        """(layers, fields, issues) of one frame."""
        i, lst = self._candidates(buf)
        while lst is not None:
            for t in lst:
                fn = t.fn
                f = None if fn is None else fn(buf)
                if f is not None:
                    self.hits += 1
                    return list(t.layers), f, [dict(x) for x in t.issues]
            i, lst = self._candidates(buf, i + 1)
        return self._miss(buf, linktype)

    def _signature(self, fr, size: int):
        """The layout of a dissected frame: its layers and steering values; the frame length
        too when a template for it could not vary it (decided when one is built)."""
        fields = fr.fields
        get = fields.get
        steer = []
        for layer in fr.layers:
            keys = _STEER_KEYS.get(layer)
            if keys:
                steer.extend(get(k) for k in keys)
        return tuple(fr.layers), tuple(steer)

    def _miss(self, buf: bytes, linktype: int):
        """The dissector's (layers, fields, issues); a template for the layout the second time
        it comes this way (unless its slot stopped compiling)."""
        self.misses += 1
        if self.trace is None:
            fr = dissect(buf, linktype, self.profile)
        else:
            tl = self.trace()
            fr = dissect(buf, linktype, self.profile, layer_list=tl)
            self.traced = (buf, tl)
            fr.layers, tl.frame = list(tl), None
        if fr.issues and any(i["severity"] != "info" for i in fr.issues):
            return fr.layers, fr.fields, fr.issues
        try:
            sig = self._signature(fr, len(buf))
            seen = self._seen.get(sig, 0) + 1
        except TypeError:        # an unhashable steering value (a repeated header's list)
            return fr.layers, fr.fields, fr.issues
        if len(self._seen) < 8 * self.max_keys or sig in self._seen:
            self._seen[sig] = seen
        # seen: dissections so far; past COMPILE_AFTER + per_key the slot keeps missing (a
        # layout whose frames its templates never fit): it stops compiling
        if self.COMPILE_AFTER <= seen < self.COMPILE_AFTER + self.per_key and \
                self._count < self.max_keys:
            try:
                t = _build(bytes(buf), fr, self.profile)
            except Exception:  # a template is an optimisation; never let it fail a decode
                t = None
            if t is None:
                self._seen[sig] = self.COMPILE_AFTER + self.per_key    # never again
            else:
                if self.trace is not None:      # the sample's layer ends (trace)
                    t.views["traced"] = self.traced[1]
                self._insert(t)
        return fr.layers, fr.fields, fr.issues

    def templates(self):
        """Every template held (for tests and diagnostics)."""
        for g in self._groups:
            for lst in g[2].values():
                yield from lst

    def _insert(self, t: _Template) -> None:
        g = self._by_probe.get(t.probe)
        if g is None:
            g = self._by_probe[t.probe] = [t.probe[0], t.probe[1], {}]
            self._groups.append(g)
            if self._top < g[0] <= self.SHARED_REGION:
                self._top = g[0]
        for key in t.keys:
            g[2].setdefault(key, []).append(t)
        self._count += 1
        self.compiled += 1
        self.inserted.append(t)
