"""A template fast path for bulk decoding, checked against the reference dissector.

The first frame of a kind is decoded by :func:`ubpkt.dissect.dissect`.  When that frame is clean
(no warning or error), its layer layout becomes a *template*: the header region as one integer,
a guard mask covering every field the dissector branches on or derives a value from
(:data:`DISPATCH_FIELDS`), every reserved and fixed field and every zero-checked byte run, and a
generated function that extracts the remaining fields.  Later frames of the same length whose
guard bits match, and whose ICRC verifies, are decoded by that function alone; anything else goes
through the dissector.  ``tests/test_fastpath.py`` checks, frame by frame and under random
corruption, that both paths give the same record.
"""
from __future__ import annotations

import zlib
from collections import OrderedDict

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
from .checks import INTERPRETING as _INTERPRETING
from ..formats.sack import sack_psns
from ..formats.grammar import (ATOMIC_OPERAND_BYTES, ATOMIC_PAYLOAD_OPCODES, ATOMIC_RESPONSE,
                               AUTO_FILL, END, LENGTH_EXACT_RULES, LENGTH_RULES, NEXT,
                               PROCEDURE_ROOM, Knob, Peek, Switch, covered_from, logical, peeks)

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
for (_lay, _f), _rule in AUTO_FILL.items():
    if _rule in LENGTH_RULES:
        LENGTH_FIELDS.setdefault(_lay, set()).add(_f)
    elif _rule in LENGTH_EXACT_RULES:
        _EXACT_FIELDS.setdefault(_lay, set()).add(_f)
#: The record keys of the TAH's opcode (full and compact forms share them)
_TA_OPCODE_KEYS = ("ub.btah.taopcode", "ub.atah.taopcode")
#: The byte runs a template lets grow and shrink: the payload and the transport padding after it
_VARIABLE_RUNS = ("data", "ub.pad")


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
    frames of this length), or ``(data offset, bytes after the payload, largest payload or
    None)``.  A layout varies when it ends in payload [+ padding] [+ ICRC], every length its
    headers carry is a relation (LENGTH_FIELDS), every Peek found its byte and every procedure
    the walk entered has a known dependence on the bytes left (grammar.PROCEDURE_ROOM)."""
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
    if any(lay in BYTE_LAYERS and lay not in _VARIABLE_RUNS for lay in names) or \
            names[d + 1:] not in ([], ["ub.pad"], ["ub.icrc"], ["ub.pad", "ub.icrc"]) or \
            any(lay not in HEADERS for lay in names[:d]):
        return None
    data_off = placed[d][1]
    tail = len(buf) - data_off - placed[d][2]
    largest = None
    for i, (layer, o, n) in enumerate(placed[:d]):
        h = HEADERS[layer]
        if _EXACT_FIELDS.get(layer) or _EXACT_FIELDS.get(logical(layer)):
            return None
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
    return data_off, tail, largest, barred


class _Template:
    __slots__ = ("fn", "layers", "issues", "json", "summary", "pick", "region", "sample", "varied",
                 "seen", "special", "fails", "probe", "key", "variable", "sig", "src", "views")

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
    if plan is None:
        size_test = f"L != {L}"
        tailx = None
    else:
        data_off, tail, largest, barred = plan
        size_test = f"L < {max(region, data_off + 1) + tail}"
        if largest is not None:
            size_test += f" or L > {data_off + largest + tail}"
        if barred:
            size_test += f" or L - {data_off + tail} in {frozenset(barred)!r}"
        tailx = f"L - {tail}" if tail else "L"
    lines = ["def run(buf):",
             "    L = len(buf)",
             f"    if {size_test}:",
             "        return None",
             f"    v = int.from_bytes(buf[:{region}], 'big')",
             f"    if v & {hex(0)} != 0:  # placeholder",
             "        return None"]
    relations = []
    body = []
    exprs = {}
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
                for k, expr in (("ub.atomic.operand1", f"buf[{o}:{o + half}][::-1].hex()"),
                                ("ub.atomic.operand2", f"buf[{o + half}:{o + n}][::-1].hex()"),
                                ("ub.atomic.origin_data", f"buf[{o}:{o + n}].hex()")):
                    if k in fields:
                        declared.add(k)
                        exprs[k] = expr
            if layer == "ub.saetph_bitmap" and "ub.saetph.acked_psns" in fields:
                # the PSNs a TPSACK reports, from the bitmap bytes and RTPH.PSN (read, or the
                # guarded value)
                psn = raw_keys.get("ub.rtph.psn", repr(fields.get("ub.rtph.psn")))
                declared.add("ub.saetph.acked_psns")
                exprs["ub.saetph.acked_psns"] = (f"_sack_psns(buf[{o}:{o + n}], {psn}, "
                                                 f"{profile.sack_bit_order!r})")
            if plan is not None and layer in _VARIABLE_RUNS:
                # the payload up to the padding, the padding up to the ICRC: offsets from the end
                if layer == "data":
                    exprs[key] = f"buf[{o}:{tailx}].hex()"
                    exprs["data.len"] = f"({tailx} - {o})"
                    declared.add("data.len")
                else:
                    pad_from = f"L - {plan[1]}"
                    pad_to = f"L - {plan[1] - n}" if plan[1] - n else "L"
                    relations.append(f"buf[{pad_from}:{pad_to}] != {bytes(n)!r}")
                    exprs[key] = f"buf[{pad_from}:{pad_to}].hex()"
                continue
            if layer in _ZERO_CHECKED:
                gmask |= ((1 << (8 * n)) - 1) << (total - 8 * (o + n))
            exprs[key] = f"buf[{o}:{o + n}].hex()"
            continue
        h = HEADERS[layer]
        guarded = set(DISPATCH_FIELDS.get(layer, ()))
        lengths = LENGTH_FIELDS.get(layer, ()) if plan is not None else ()
        raws = {}
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
    gval = int.from_bytes(buf[:region], "big") & gmask
    lines[5] = f"    if v & {gmask:#x} != {gval:#x}:"
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
    exec(compile("\n".join(lines) + "\n", "<ubpkt.dissect.fastpath template>", "exec"), ns)
    tjson = _json_fn(head, fields, exprs, static, layers, fr.issues, ns, dotted)
    tsum = _summary_fn(head, fields, exprs, static, fr.issues, ns, dotted)
    tpick = _pick_fn(head, fields, exprs, static, ns)
    t = _Template(ns["run"], tuple(layers), tuple(fr.issues), tjson, region,
                  int.from_bytes(buf[:region], "big"), special=bool(constant),
                  summary=tsum, pick=tpick)
    t.probe = (region, smask)
    # a copy: the record the caller builds from ``fields`` may be annotated (-V's analysis)
    t.src = TemplateSource(head, dict(fields), exprs, static, ns, dotted, buf)
    t.key = t.sample & smask
    t.variable = plan is not None
    return t


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
    try:
        parts = ['{"frame":%d,"time":%s%s,"len":%d,"caplen":%d,"linktype":', ]
        tail = ',"layers":' + dumps(list(layers)).decode() + ',"fields":{'
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
        closing = '},"issues":' + dumps(list(issues)).decode().replace("%", "%%") + "}\n"
    except TypeError:   # a value orjson cannot encode (an integer wider than 64 bits)
        return None
    fmt = parts[0] + "%d" + tail.replace("%", "%%") + ",".join(body) + closing
    lines = [line.replace("def run(buf):", "def run_json(buf, frame, time, epoch, orig_len, lt):")
             for line in head]
    lines.append(f"    return ({fmt!r} % (frame, _dumps(time).decode(), epoch, orig_len, len(buf), lt"
                 + "".join(f", {a}" for a in args) + ")).encode()")
    ns = dict(ns, _dumps=dumps)
    exec(compile("\n".join(lines) + "\n", "<ubpkt.dissect.fastpath json template>", "exec"), ns)
    return ns["run_json"]


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
                            if f not in LENGTH_FIELDS.get(layer, ()))
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
        self._seen: dict = {}          # layout signature -> dissections (and builds) so far
        self._count = 0                # templates held
        self.hits = 0
        self.misses = 0
        self.compiled = 0

    #: Frames a general template compares with its sample before it is specialised.
    LEARN = 16
    #: Consecutive guard failures after which a specialised template is dropped.
    GIVE_UP = 32
    #: Dissections of a layout before it gets a template (a layout seen once costs no compile).
    COMPILE_AFTER = 2

    #: Fraction digits of the capture's times: when set, ndjson lines carry the exact time as
    #: ``"time_epoch": "<seconds>.<digits>"`` after ``time`` (as tshark's -T json writes
    #: frame.time_epoch: a string with the capture's full precision); None: no such key.
    digits = None

    def _candidates(self, buf):
        """The templates of the layout ``buf`` seems to have (None: no such layout known)."""
        n = len(buf)
        groups = self._groups
        for i, g in enumerate(groups):
            r = g[0]
            if n < r:
                continue
            lst = g[2].get(int.from_bytes(buf[:r], "big") & g[1])
            if lst:
                if i:       # busier probes drift to the front
                    groups[i - 1], groups[i] = g, groups[i - 1]
                return lst
        return None

    def _failed(self, t, lst) -> None:
        if t.special:
            t.fails += 1
            if t.fails > self.GIVE_UP and t in lst:
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
        lst = self._candidates(buf)
        if lst is not None:
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
        lst = self._candidates(buf)
        if lst is not None:
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
        layers, fields, issues = self._miss(buf, linktype)
        return summary_line(make_record(frame, None, orig_len, len(buf), linktype, layers,
                                        fields, issues), time_col)

    def pick(self, buf: bytes, linktype: int):
        """``(template, fields)`` of one frame where ``fields`` holds at least the
        :data:`STATS_KEYS` the frame has (only those when a template decoded it); ``template``
        (its ``layers`` and ``issues`` are the frame's) or None with ``(None, (layers, fields,
        issues))`` from the dissector."""
        lst = self._candidates(buf)
        if lst is not None:
            for t in lst:
                f = t.pick(buf)
                if f is not None:
                    self.hits += 1
                    return t, f
        return None, self._miss(buf, linktype)

    def view(self, buf: bytes, linktype: int, compiled, *args):
        """A view rendered straight from a template: ``compiled(template)`` gives the view's
        function for that layout (compiled once from ``template.src``, kept in
        ``template.views``) or None; its result for ``(buf, *args)`` is returned when the frame
        fits (not None).  Otherwise the dissector's ``(layers, fields, issues)`` tuple (the
        view renders the record)."""
        lst = self._candidates(buf)
        if lst is not None:
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
            special = _build(bytes(buf), dissect(buf, linktype, self.profile), self.profile,
                             constant)
        except Exception:  # an optimisation only
            special = None
        if special is not None and special.json is not None and \
                special.probe == t.probe and special.key == t.key and t in lst:
            lst.insert(lst.index(t), special)
            self._count += 1
            self.compiled += 1

    def decode(self, buf: bytes, linktype: int):
        """(layers, fields, issues) of one frame."""
        lst = self._candidates(buf)
        if lst is not None:
            for t in lst:
                f = t.fn(buf)
                if f is not None:
                    self.hits += 1
                    return list(t.layers), f, [dict(i) for i in t.issues]
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
        fr = dissect(buf, linktype, self.profile)
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
        g[2].setdefault(t.key, []).append(t)
        self._count += 1
        self.compiled += 1
