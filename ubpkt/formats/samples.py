"""Sample packets generated from the packet grammar (:mod:`ubpkt.formats.grammar`), not listed by
hand: one frame per branch the grammar allows, for a given profile.

The generator walks :data:`~ubpkt.formats.grammar.START` and :data:`~ubpkt.formats.grammar.NEXT`
the way the dissector does, but forwards: every case of a :class:`~ubpkt.formats.grammar.Switch`
or :class:`~ubpkt.formats.grammar.Peek` is a branch, taken by assigning the selector field in the
header that owns it (the header just emitted, an earlier one for a record-key Switch, the next one
for a Peek); a :class:`~ubpkt.formats.grammar.Knob` follows the profile.  The procedures are
expanded with the tables they name:

* ``@tah``: every TAOpcode (UB 2.0 §7.1 Tables 7-1/7-3) in the form the packet uses (full or
  compact, §7.2.1-3, App B), each request with every combination of the BTAH flags its extension
  headers depend on (``ud_flag``, ``tv_en``), the headers from
  :func:`~ubpkt.formats.grammar.ta_sequence` (§7.4 Tables 7-2/7-4);
* ``@mgmt_pdu``: every entry of :data:`~ubpkt.formats.grammar.MGMT_PDUS` and an opaque PDU
  (§10.4.3.1 Tables 10-10/10-11);
* ``@dllcb``: every DLL control-block type of Table 4-6 (§4.3.3), with the LCH form and the body
  header the type declares, and the profile's trailer (BCRC §4.7.2, END Table 4-4, or none);
* the others with a small body: IPv4 with and without options, an Ethernet trailer (RFC 791,
  UB 2.0 §5.2.3), UDP to a UB port, to BOOTP (App F.2.2) or elsewhere, every SACK bitmap size
  (§6.2.3), the G10 ATAH after a TP response or none, a CIPH body (G9), scan paths of each entry
  width with and without the return path and topology TLVs (§10.4.3.2), NPIC entries (App F.2.5),
  LLDP and LACP TLVs (App F.2), a BEETAH with its payload (§7.2.10).

Non-selector fields get seeded random values (fixed fields their value, auto fields left to the
encoder, reserved fields 0 except one field in a sixteenth of the headers, to exercise the
reserved-bit reports); a few fields the dissector's checks read are kept sane (:data:`_SANE`: an
IPv4 header that is not a fragment, a UDP checksum of 0, TPVer 0...).  The payload length is
random unless a procedure fixes it.  Padding (§6.2.1) and the ICRC (§5.3.7) are the encoder's.

The tree is large (transport x TAH x flags x carriers), so a branch point is expanded fully the
first time it is met in a context (the link type and LPH CFG, or the TAH form) and later contributes
one branch, rotating; the walk is bounded (a layer at most twice per frame).  Everything is
deterministic for a given seed.

A candidate is kept only if ``decode(encode_layers(layers))`` gives back exactly the intended
layer sequence (plus the pad bytes and the ICRC the grammar calls for) with no error issue;
otherwise it is counted as dropped, with the reason (:class:`SampleSet`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import product
from typing import Iterator

from . import HEADERS
from . import enums as E
from .checks import CHECKS
from .core import Header
from .grammar import (AUTO_FILL, COMPACT_TAH, MGMT_PDU_FORMS, END, ICRC_COVERAGE, MGMT_PAYLOADS, MGMT_PDU_PROCS,
                      MGMT_PDUS,
                      NEXT, mgmt_pdu, PADDING, RESERVED,
                      START, SCAN_TLV_VALUES, TA_FLAGS, TA_REQUEST_HEADERS, TA_REQUEST_PREFIX,
                      TA_RESPONSE_IN_DATA_NS3, TP_RESPONSE_ATAH_BYTES, TPH, TRANSPORT_OVER_UDP,
                      Knob, Peek, Switch, icrc_start, logical, resolve, select, ta_sequence)

__all__ = ["Sample", "SampleSet", "generate", "samples", "linktypes_for", "expected_layers"]

#: A walk target (layer reached through NEXT/START) may repeat this often in one frame (802.1ad
#: stacking of two VLAN tags).
MAX_REPEAT = 2
MAX_HEADERS = 64
#: A branch point met again tries this many of its options for one that gives a frame.
MAX_RETRY = 3
#: The share of headers that get one reserved field set to a non-zero value.
RESERVED_SET = 1 / 16


@dataclass(frozen=True)
class Sample:
    """One generated frame: ``layers`` is ``encode_layers`` input; ``expected`` the layer ids the
    dissector must report; ``start`` the START branch (``"148:ub.lph"``); ``via`` the walk targets
    and procedures the frame went through."""
    linktype: int
    profile: object
    layers: list
    expected: tuple
    start: str
    via: frozenset
    data: bytes


@dataclass
class SampleSet:
    profile: object
    samples: list = field(default_factory=list)
    kept: dict = field(default_factory=dict)          # START branch -> frames kept
    dropped: list = field(default_factory=list)       # (START branch, layer ids, reason)

    def dropped_by(self) -> dict:
        out: dict = {}
        for start, _, _ in self.dropped:
            out[start] = out.get(start, 0) + 1
        return out


# ------------------------------------------------------------------------------------------------
# one header of a candidate frame

class _H:
    __slots__ = ("layer", "header", "vals", "forced", "checks", "raw")

    def __init__(self, layer: str, header: Header | None, vals=None, raw: bytes | None = None):
        self.layer = layer
        self.header = header
        self.vals = vals               # wire values (list), header layers
        self.forced: dict = {}         # field -> wire value set by a selector
        self.checks: list = []         # (field, excluded values) from a Peek default
        self.raw = raw                 # bytes, byte-run layers

    def copy(self) -> "_H":
        c = _H(self.layer, self.header, list(self.vals) if self.vals is not None else None,
               self.raw)
        c.forced = dict(self.forced)
        c.checks = list(self.checks)
        return c

    def get(self, name: str):
        return self.vals[self.header.index[name]]

    def force(self, name: str, value: int) -> bool:
        """Set a selector; False if it contradicts an earlier one."""
        if name in self.forced:
            return self.forced[name] == value
        for f, excluded in self.checks:
            if f == name and value in excluded:
                return False
        self.forced[name] = value
        self.vals[self.header.index[name]] = value
        return True

    def encoder_value(self):
        if self.header is None:
            return self.raw
        out = {}
        for f, v in zip(self.header.fields, self.vals):
            if v is None:
                continue
            out[f.name] = v << f.shift if f.shift else v
        return out


@dataclass
class _State:
    linktype: int
    start: str
    hdrs: list
    pending: list = field(default_factory=list)    # Peek constraints on the next bytes
    payload: tuple = (0, 40)                       # allowed payload length range at END
    via: tuple = ()
    trailer: bool = False                          # an Ethernet trailer after the IP packet

    def fork(self) -> "_State":
        return _State(self.linktype, self.start, [h.copy() for h in self.hdrs],
                      list(self.pending), self.payload, self.via, self.trailer)

    def find(self, base: str) -> _H | None:
        """The first header with record prefix ``base`` (what ``fr.fields.get`` sees)."""
        for h in self.hdrs:
            if h.header is not None and h.header.base == base:
                return h
        return None

    def count(self, layer: str) -> int:
        return sum(1 for x in self.via if x == layer)


#: Fields the dissector's checks read that must stay sane for the frame to mean what the walk
#: says (other values are legal but steer elsewhere or are reported): (layer, field) -> value or
#: a choice of values.
#: auto fields a sample still draws: a capture may hold any value there (the encoder's rule only
#: gives the value when none is given)
_DRAWN_AUTO = frozenset({"next_protocol", "ub_ip_flags"})

_SANE = {
    ("ip", "flags"): (0, 2),            # never MF: a fragment is not decoded further (RFC 791)
    ("ip", "frag_offset"): 0,
    ("udp", "checksum"): 0,             # UB 2.0 §5.3: checksum 0
    ("ub.rtph", "tpver"): 0,            # UB 2.0 §6.2.1
    ("ub.rtph", "last"): 0,             # only RTP data packets may set it (see _tidy)
    ("ub.utph", "last"): 0,
}
#: The value checks without a condition (ubpkt.formats.checks: TPVer, TAver...) keep their
#: fields sane too, in every form of the layer: (concrete layer, field) -> allowed values.
_SANE.update({(lay, c.field): c.values for c in CHECKS if not c.when and "." not in c.field
              for lay in HEADERS if logical(lay) == c.layer})
#: Value ranges of selector fields whose other values mean something else to the carriers'
#: standards: an Ethernet type below 0x0600 is an IEEE 802.3 length.
_RANGES = {("eth", "type"): (0x0600, 0xFFFF), ("vlan", "etype"): (0x0600, 0xFFFF)}


class _Gen:
    def __init__(self, profile, seed: int):
        self.p = profile
        self.rnd = random.Random(seed)
        self.rot: dict = {}
        self.out = SampleSet(profile)

    # -- helpers ---------------------------------------------------------------------------------
    def options(self, key, opts: list) -> tuple[list, bool]:
        """All of ``opts`` the first time branch point ``key`` is met, else one (rotating)."""
        n = self.rot.get(key)
        if n is None:
            self.rot[key] = 0
            return list(opts), True
        self.rot[key] = n + 1
        k = n % len(opts) if opts else 0
        return list(opts[k:] + opts[:k]), False

    def each(self, key, opts, fn) -> Iterator[Sample]:
        """Run ``fn(option)`` (a generator of samples) over the options of branch point ``key``;
        a revisited point stops after the first option that produced a sample."""
        opts, full = self.options(key, opts)
        if not full:
            opts = opts[:MAX_RETRY]
        for o in opts:
            got = False
            for s in fn(o):
                got = True
                yield s
            if got and not full:
                return

    def context(self, st: _State):
        lph = st.find("ub.lph")
        if lph is not None:
            return (st.linktype, lph.forced.get("cfg"))
        return (st.linktype, st.hdrs[0].layer if st.hdrs else None)

    def rand_value(self, layer: str, f) -> int | None:
        if f.auto and AUTO_FILL.get((layer, f.name)) not in _DRAWN_AUTO:
            return None
        if f.fixed is not None:
            return f.fixed
        if f.reserved:
            return 0
        sane = _SANE.get((layer, f.name))
        if sane is not None:
            return self.rnd.choice(sane) if isinstance(sane, tuple) else sane
        if f.enum and self.rnd.random() < 0.7:
            return self.rnd.choice(sorted(f.enum))
        return self.rnd.getrandbits(f.bits)

    def new(self, st: _State, layer: str, **fixed) -> _H | None:
        """Append a header (concrete id) with random values, ``fixed`` values forced and the
        pending Peek constraints applied; None when they cannot hold."""
        h = HEADERS[layer]
        x = _H(layer, h, [self.rand_value(layer, f) for f in h.fields])
        if h.rsvd_idx and self.rnd.random() < RESERVED_SET:
            # a reserved field set (reported as a warning, the walk is unchanged)
            i = self.rnd.choice(h.rsvd_idx)
            x.vals[i] = 1 + self.rnd.getrandbits(h.fields[i].bits) % ((1 << h.fields[i].bits) - 1)
        for name, v in fixed.items():
            if not x.force(name, v):
                return None
        if not self.apply_pending(st, x):
            return None
        st.hdrs.append(x)
        return x

    def new_raw(self, st: _State, layer: str, raw: bytes) -> _H | None:
        x = _H(layer, None, raw=raw)
        if st.pending:
            raw = self.peek_bytes(st, raw)
            if raw is None:
                return None
            x.raw = raw
        st.hdrs.append(x)
        return x

    def pending_field(self, x: _H, offset: int, mask: int, shift: int):
        """The field of ``x`` that byte ``offset`` & ``mask`` is exactly (None otherwise)."""
        h = x.header
        lo = offset * 8 + (7 - (mask.bit_length() - 1))      # first bit (MSB order)
        width = bin(mask).count("1")
        if mask >> shift != (1 << width) - 1 or (mask & ((1 << shift) - 1)):
            return None
        for f, off in zip(h.fields, h.offsets):
            if off == lo and f.bits == width and not f.le and not f.shift:
                return f
        return None

    def apply_pending(self, st: _State, x: _H) -> bool:
        for offset, mask, shift, want, excluded in st.pending:
            f = self.pending_field(x, offset, mask, shift)
            if f is None:
                # a byte that is no single field (a Peek over a MAC address...): set its bits in
                # the fields under it, unless a selector already fixed them
                if not self.apply_byte(x, offset, mask, shift, want, excluded):
                    return False
                continue
            if want is not None:
                if not x.force(f.name, want):
                    return False
            else:
                cur = x.get(f.name)
                if cur in excluded:
                    if f.name in x.forced:
                        return False
                    x.vals[x.header.index[f.name]] = self.other_value(f, excluded, x.layer)
                x.checks.append((f.name, frozenset(excluded)))
        st.pending = []
        return True

    def apply_byte(self, x: _H, offset: int, mask: int, shift: int, want, excluded) -> bool:
        """Make ``(byte offset & mask) >> shift`` of header ``x`` equal ``want`` (or, with
        ``want`` None, none of ``excluded``) by changing the bits of the fields it spans."""
        h = x.header
        lo = offset * 8
        if lo + 8 > h.bits:
            return False
        spans = []                         # (field index, bit position in the field's value)
        for i, (f, off) in enumerate(zip(h.fields, h.offsets)):
            for p in range(max(lo, off), min(lo + 8, off + f.bits)):
                if f.le or f.dwrev or f.shift or not isinstance(x.vals[i], int):
                    return False
                spans.append((i, off + f.bits - 1 - p, p - lo))
        byte = 0
        for i, bit, p in spans:
            byte |= ((x.vals[i] >> bit) & 1) << (7 - p)
        cur = (byte & mask) >> shift
        if want is None:
            if cur not in excluded:
                return True
            free = [v for v in range((mask >> shift) + 1) if v not in excluded]
            if not free:
                return False
            want = self.rnd.choice(free)
        new = (byte & ~mask & 0xFF) | ((want << shift) & mask)
        for i, bit, p in spans:
            b = (new >> (7 - p)) & 1
            if ((x.vals[i] >> bit) & 1) != b:
                if h.fields[i].name in x.forced:
                    return False
                x.vals[i] ^= 1 << bit
        return True

    def peek_bytes(self, st: _State, raw: bytes) -> bytes | None:
        b = bytearray(raw)
        for offset, mask, shift, want, excluded in st.pending:
            if want == "missing":
                if b:
                    return None
                continue
            if offset >= len(b):
                return None
            cur = (b[offset] & mask) >> shift
            if want is not None:
                cur = want
            elif cur in excluded:
                cur = self.rnd.choice([v for v in range((mask >> shift) + 1) if v not in excluded])
            b[offset] = (b[offset] & ~mask & 0xFF) | ((cur << shift) & mask)
        st.pending = []
        return bytes(b)

    def other_value(self, f, excluded, layer: str = "") -> int:
        """A value of field ``f`` that no case of a rule names (a Switch/Peek default)."""
        lo_hi = _RANGES.get((layer, f.name))
        if lo_hi is not None:
            while True:
                v = self.rnd.randint(*lo_hi)
                if v not in excluded:
                    return v
        named = [k for k in sorted(f.enum or ()) if k not in excluded and k < 1 << f.bits]
        if named and self.rnd.random() < 0.8:
            return self.rnd.choice(named)
        if f.bits <= 12:
            free = [v for v in range(1 << f.bits) if v not in excluded]
            return self.rnd.choice(free) if free else None
        while True:
            v = self.rnd.getrandbits(f.bits)
            if v not in excluded:
                return v

    def rbytes(self, n: int) -> bytes:
        return bytes(self.rnd.getrandbits(8) for _ in range(n))

    # -- the walk ------------------------------------------------------------------------------
    def run(self, linktypes) -> SampleSet:
        for lt in linktypes:
            rule = START.get(lt)
            if rule is None:
                continue
            for target, pending in _start_branches(rule):
                st = _State(lt, f"{lt}:{target}", [], pending=pending)
                n = 0
                for s in self.go(st, target, None):
                    self.out.samples.append(s)
                    n += 1
                self.out.kept[st.start] = self.out.kept.get(st.start, 0) + n
        return self.out

    def go(self, st: _State, target, last: int | None) -> Iterator[Sample]:
        """Samples that continue ``st`` with ``target`` (``last``: index of the header whose
        fields the rule reads, the one just emitted)."""
        if isinstance(target, Switch):
            yield from self.switch(st, target, last)
        elif isinstance(target, Peek):
            yield from self.peek(st, target, last)
        elif isinstance(target, Knob):
            yield from self.go(st, target.cases.get(getattr(self.p, target.name),
                                                   target.default), last)
        elif target is END:
            yield from self.finish(st)
        elif target == RESERVED:
            return
        elif target.startswith("@"):
            if st.count(target) >= MAX_REPEAT:
                return
            st = st.fork()
            st.via += (target,)
            yield from getattr(self, "p_" + target[1:])(st, last)
        else:
            if st.count(target) >= MAX_REPEAT or len(st.hdrs) >= MAX_HEADERS:
                return
            st = st.fork()
            st.via += (target,)
            x = self.new(st, resolve(target, self.p, self.compact(st)))
            if x is None:
                return
            yield from self.go(st, NEXT.get(target, END), len(st.hdrs) - 1)

    def switch(self, st: _State, rule: Switch, last: int | None) -> Iterator[Sample]:
        own = "." not in rule.key
        opts = [v for v, t in sorted(rule.cases.items()) if t != RESERVED]
        if rule.default != RESERVED:
            opts.append("default")

        def branch(v):
            s = st.fork()
            if own:
                owner = s.hdrs[last] if last is not None else None
                name = rule.key
            else:
                base, name = rule.key.rsplit(".", 1)
                owner = s.find(base)
            if owner is None:
                if v == "default":
                    yield from self.go(s, rule.default, last)
                return
            f = owner.header.by_name[name]
            if v == "default":
                cur = owner.forced.get(name)
                if cur is None:
                    nv = self.other_value(f, set(rule.cases), owner.layer)
                    if nv is None or not owner.force(name, nv):
                        return
                elif cur in rule.cases:
                    return
                target = rule.default
            else:
                if not owner.force(name, v):
                    return
                target = rule.cases[v]
            yield from self.go(s, target, last)

        key = ("switch", self.context(st), st.hdrs[last].layer if last is not None else None,
               rule.key, id(rule))
        yield from self.each(key, opts, branch)

    def peek(self, st: _State, rule: Peek, last: int | None) -> Iterator[Sample]:
        opts = [v for v, t in sorted(rule.cases.items()) if t != RESERVED]
        if rule.default != RESERVED:
            opts.append("default")
        if rule.missing is END:
            opts.append("missing")

        def branch(v):
            s = st.fork()
            if v == "missing":
                s.pending.append((rule.offset, rule.mask, rule.shift, "missing", ()))
                s.payload = (0, 0)
                yield from self.go(s, END, last)
                return
            if v == "default":
                s.pending.append((rule.offset, rule.mask, rule.shift, None, tuple(rule.cases)))
                target = rule.default
                if target is END:
                    s.payload = (max(s.payload[0], rule.offset + 1), max(s.payload[1],
                                                                         rule.offset + 1))
            else:
                s.pending.append((rule.offset, rule.mask, rule.shift, v, ()))
                target = rule.cases[v]
                if target is END:
                    s.payload = (rule.offset + 1, max(s.payload[1], rule.offset + 1))
            yield from self.go(s, target, last)

        key = ("peek", self.context(st), st.hdrs[last].layer if last is not None else None,
               id(rule))
        yield from self.each(key, opts, branch)

    # -- state the dissector keeps while it walks --------------------------------------------------
    def compact(self, st: _State) -> bool:
        """Whether the TAH takes its compact form here: the last grammar COMPACT_TAH rule met
        (App B; profile G13)."""
        compact = False
        for i, h in enumerate(st.hdrs):
            rule = COMPACT_TAH.get(logical(h.layer))
            if rule is None:
                continue
            compact = bool(select(rule, h.get, lambda key, _i=i: _earlier(st.hdrs[:_i], key),
                                  lambda off: None, self.p))
        return compact

    def tp_data(self, st: _State) -> bool:
        h = st.find("ub.rtph")
        return h is not None and h.get("tpopcode") == 1

    # -- procedures ----------------------------------------------------------------------------
    def p_ipv4(self, st: _State, last) -> Iterator[Sample]:
        """RFC 791: the header, with or without options; under Ethernet possibly a trailer."""
        opts = ["plain", "options"] + (["trailer"] if st.hdrs and st.hdrs[0].layer == "eth"
                                       else [])

        def branch(o):
            s = st.fork()
            x = self.new(s, "ip")
            if x is None:
                return
            if o == "options":
                self.new_raw(s, "ip.options", b"\x01" * (4 * self.rnd.randint(1, 3)))  # NOPs
            s.trailer = o == "trailer"
            yield from self.go(s, NEXT["ip"], s.hdrs.index(x))

        yield from self.each(("@ipv4", self.context(st)), opts, branch)

    def p_ipv6(self, st: _State, last) -> Iterator[Sample]:
        opts = ["plain"] + (["trailer"] if st.hdrs and st.hdrs[0].layer == "eth" else [])

        def branch(o):
            s = st.fork()
            x = self.new(s, "ipv6")
            if x is None:
                return
            s.trailer = o == "trailer"
            yield from self.go(s, NEXT["ipv6"], len(s.hdrs) - 1)

        yield from self.each(("@ipv6", self.context(st)), opts, branch)

    def p_udp(self, st: _State, last) -> Iterator[Sample]:
        """UB 2.0 §5.2.3: a UB port carries a transport header; BOOTP on 67/68 in a CFG-5 frame
        (App F.2.2); any other port is payload (every port is UB with ``any_udp_port_is_ub``)."""
        p = self.p
        lph = st.find("ub.lph")
        cfg5 = lph is not None and lph.get("cfg") == 5
        opts = ["ub"]
        if not p.any_udp_port_is_ub:
            opts.append("other")
            if cfg5 and 67 not in p.ub_udp_ports:
                opts.append("bootp")
        def branch(o):
            s = st.fork()
            udp = s.hdrs[last]
            if o == "ub":
                port = p.ub_udp_ports[0] if not p.any_udp_port_is_ub else \
                    self.rnd.getrandbits(16)
                if not udp.force("dstport", port):
                    return
                yield from self.go(s, TPH, last)
            elif o == "bootp":
                if not udp.force("dstport", self.rnd.choice((67, 68))):
                    return
                self.new(s, "bootp")
                self.new_raw(s, "bootp.options", bytes([53, 1, 1, 255]))
                s.payload = (0, 0)
                yield from self.finish(s)
            else:
                port = self.rnd.choice([v for v in (5353, 4791, 9000, 12345)
                                        if v not in p.ub_udp_ports])
                if not udp.force("dstport", port):
                    return
                yield from self.finish(s)

        yield from self.each(("@udp", self.context(st)), opts, branch)

    def p_tah(self, st: _State, last) -> Iterator[Sample]:
        """UB 2.0 §7.2, §7.4: the TAH of every TAOpcode and its extension headers."""
        compact = self.compact(st)
        ns3_data = self.p.ns3_layouts and self.tp_data(st) and not compact
        ops = sorted(E.TAOPCODE)
        yield from self.each(("@tah", compact, ns3_data), ops,
                             lambda op: self.tah_op(st, op, compact, ns3_data, False))

    def tah_op(self, st: _State, op: int, compact: bool, ns3_data: bool, response_only: bool):
        p = self.p
        if op in E.TA_RESPONSES:
            s = st.fork()
            if ns3_data:
                # ns-3-UB: a TA response in an RTP data packet is a full BTAH + MAETAH
                x = self.new(s, "ub.btah", taopcode=op)
                seq = [resolve(t, p) for t in TA_RESPONSE_IN_DATA_NS3]
            else:
                x = self.new(s, resolve("ub.atah", p, compact), taopcode=op)
                seq = ta_sequence(op, True, {}, p, compact)
            if x is None:
                return
            yield from self.tah_rest(s, seq, x)
            return
        if response_only:
            return
        steps = TA_REQUEST_PREFIX + TA_REQUEST_HEADERS.get(op, ())
        flags = sorted({st_[1] for st_ in steps if isinstance(st_, tuple) and st_[0] == "flag"})
        combos = [dict(zip(flags, bits)) for bits in product((0, 1), repeat=len(flags))]

        def branch(fl):
            s = st.fork()
            seq = ta_sequence(op, False, fl, p, compact)
            layer = resolve("ub.btah", p, compact)
            forced = {"taopcode": op, **fl}
            # the other flags that announce a header (TA_FLAGS, §7.2.1) say whether it is there
            for flag, announced in TA_FLAGS.items():
                if flag not in forced and flag in HEADERS[layer].index:
                    forced[flag] = int(any(logical(x) == announced for x in seq))
            x = self.new(s, layer, **forced)
            if x is None:
                return
            yield from self.tah_rest(s, seq, x)

        yield from self.each(("@tah.flags", op, compact), combos, branch)

    def tah_rest(self, st: _State, seq, last) -> Iterator[Sample]:
        for i, layer in enumerate(seq):
            if layer == "@beetah":
                yield from self.p_beetah(st, last, seq[i + 1:])
                return
            x = self.new(st, layer)
            if x is None:
                return
            if NEXT.get(logical(layer)) is not None:
                st.via += (logical(layer),)
                yield from self.go(st, NEXT[logical(layer)], len(st.hdrs) - 1)
                return
        yield from self.finish(st)

    def p_beetah(self, st: _State, last, rest=()) -> Iterator[Sample]:
        """UB 2.0 §7.2.10: one BE bit per payload byte, a 64..1024-byte payload."""
        s = st.fork()
        s.via += ("@beetah",)
        n = self.rnd.choice((64, 128))
        m = s.find("ub.maetah")
        if m is not None:
            # the bitmap's width follows the MAETAH Length (grammar.be_bits, §7.4.2.1.3)
            if "len_code" in m.header.index:
                m.vals[m.header.index["len_code"]] = n.bit_length() - 7     # 64 << code
            else:
                m.vals[m.header.index["length"]] = n
        self.new_raw(s, "ub.beetah", self.rbytes(n // 8))
        for layer in rest:
            if self.new(s, layer) is None:
                return
        s.payload = (n, n)
        yield from self.finish(s)

    def p_mgmt_pdu(self, st: _State, last) -> Iterator[Sample]:
        """UB 2.0 §10.4.3.1: every PDU header of MGMT_PDUS, and an opaque PDU."""
        keys = sorted(MGMT_PDUS, key=lambda k: (k[0], -1 if k[1] is None else k[1], k[2]))
        # an opaque PDU: a message no PDU header or payload layer is declared for; and the PDUs
        # of other protocols (MGMT_PAYLOADS)
        opaque = next((c, sc, 0) for c in sorted(E.MGMT_SUB_CODE)
                      for sc in sorted(E.MGMT_SUB_CODE[c])
                      if mgmt_pdu(c, sc, 0) is None and (c, sc) not in MGMT_PAYLOADS)
        opts = keys + [opaque] + [(c, sc, r) for (c, sc) in sorted(MGMT_PAYLOADS) for r in (0, 1)]
        opts += sorted(MGMT_PDU_PROCS)
        # the longer forms a PDU_Length selects (MGMT_PDU_FORMS): (key, form layer)
        opts += [(k, form) for k in keys for form in MGMT_PDU_FORMS.get(MGMT_PDUS[k], {}).values()]

        def branch(key):
            form = None
            if len(key) == 2:
                key, form = key
            code, sub, rsp = key
            s = st.fork()
            m = s.hdrs[last]
            if sub is None:
                sub = self.rnd.choice(sorted(E.MGMT_SUB_CODE.get(code, {0: ""})))
            for name, v in (("code", code), ("sub_code", sub), ("rsp", rsp)):
                if not m.force(name, v):
                    return
            if key in MGMT_PDU_PROCS:
                # Link Neighbor Query response: Port_info TLVs (Fig 10-46)
                if not self.scan_tlv_layers(s, [2] * self.rnd.randint(1, 3)):
                    return
                s.payload = (0, 0)
                yield from self.finish(s)
                return
            layer = form or MGMT_PDUS.get(key)
            if layer is not None:
                self.new(s, layer)
            extra = 0 if form else self.rnd.choice((0, 0, 4, 7))
            if extra or layer is None:
                self.new_raw(s, MGMT_PAYLOADS.get((code, sub), "ub.pdu"), self.rbytes(extra or 5))
            s.payload = (0, 0)
            yield from self.finish(s)

        yield from self.each(("@mgmt_pdu", self.context(st)), opts, branch)

    def p_saetph_bitmap(self, st: _State, last) -> Iterator[Sample]:
        """UB 2.0 §6.2.3: 8 << BitMapSize bytes of bitmap, every size."""
        def branch(size):
            s = st.fork()
            sae = s.hdrs[last]
            if not sae.force("bitmapsize", size):
                return
            x = self.new_raw(s, "ub.saetph_bitmap", self.rbytes(E.SACK_BITMAP_BITS[size] // 8))
            if x is None:
                return
            yield from self.go(s, NEXT["ub.saetph_bitmap"], last)

        yield from self.each(("@saetph_bitmap", self.context(st)), sorted(E.SACK_BITMAP_BITS),
                             branch)

    def p_tp_response_atah(self, st: _State, last) -> Iterator[Sample]:
        """Profile G10: an ATAH (a TA response, §7.2.2) after a TP response, or none (then fewer
        than TP_RESPONSE_ATAH_BYTES follow)."""
        def branch(o):
            s = st.fork()
            if o is None:
                s.payload = (0, TP_RESPONSE_ATAH_BYTES - 1)
                yield from self.finish(s)
                return
            yield from self.tah_op(s, o, False, False, True)

        yield from self.each(("@tp_response_atah", self.context(st)),
                             [None] + sorted(E.TA_RESPONSES), branch)

    def p_ciph_body(self, st: _State, last) -> Iterator[Sample]:
        """Profile G9: the protected part, then the ICV of ``ciph_icv_len`` bytes; a protected
        part that leaves the transport padding (§6.2.1) at 0, and one that needs pad bytes."""
        def branch(aligned):
            s = st.fork()
            n = self.rnd.randint(4, 24)
            tph = next((i for i, h in enumerate(s.hdrs) if h.layer in PADDING.headers), None)
            if tph is not None:
                before = sum(h.header.size if h.header is not None else len(h.raw)
                             for h in s.hdrs[tph:]) + self.p.ciph_icv_len
                n = self._ciph_len(before, aligned)
            elif not aligned:
                return
            self.new_raw(s, "ub.ciph_protected", self.rbytes(n))
            self.new_raw(s, "ub.ciph_icv", self.rbytes(self.p.ciph_icv_len))
            s.payload = (0, 0)
            yield from self.finish(s)

        yield from self.each(("@ciph_body", self.context(st)), [True, False], branch)

    def _ciph_len(self, before: int, aligned: bool) -> int:
        """A protected length of 4..27 bytes that makes ``before`` + it a multiple of the padding
        alignment (``aligned``) or not."""
        while True:
            n = self.rnd.randint(4, 27)
            if ((before + n) % PADDING.align == 0) == aligned:
                return n

    def p_scan_paths(self, st: _State, last) -> Iterator[Sample]:
        """UB 2.0 §10.4.3.2: forward (and with R, return) path entries of each width, padded to
        4 bytes, then the Scan PDU."""
        def branch(o):
            typ, r = o
            s = st.fork()
            scan = s.hdrs[last]
            hops = self.rnd.randint(1, 6)
            for name, v in (("type", typ), ("r", r), ("hops", hops)):
                if not scan.force(name, v):
                    return
            width = 4 << typ
            n = -(-(hops * width) // 32) * 4
            self.new_raw(s, "ub.scan_fwd", self.rbytes(n))
            if r:
                self.new_raw(s, "ub.scan_ret", self.rbytes(n))
            yield from self.go(s, "ub.scan_pdu", last)

        yield from self.each(("@scan_paths", self.context(st)),
                             [(t, r) for t in sorted(E.SCAN_PATH_TYPE) for r in (0, 1)], branch)

    def p_scan_tlvs(self, st: _State, last) -> Iterator[Sample]:
        """UB 2.0 §10.4.3.2 Table 10-9: topology TLVs to the end, the declared ones (Fig
        10-27..10-30) with 0, 2 or 4 value bytes past their fields."""
        s = st.fork()
        if not self.scan_tlv_layers(s):
            return
        s.payload = (0, 0)
        yield from self.finish(s)

    def scan_tlv_layers(self, s: _State, types=None) -> bool:
        """Append topology TLVs: every declared one (Table 10-9) in a random order and a
        reserved or vendor one, or those of ``types``; False when they cannot be placed."""
        if types is None:
            types = sorted(SCAN_TLV_VALUES) + [self.rnd.choice((3, 128 + self.rnd.getrandbits(7)))]
            self.rnd.shuffle(types)
        for typ in types:
            value = SCAN_TLV_VALUES.get(typ)
            extra = self.rnd.choice((0, 0, 2, 4))
            if value is None:
                extra = self.rnd.randint(1, 8)
            size = HEADERS[value].size if value else 2
            if self.new(s, value or "ub.scan_tlv", type=typ, length=size + extra) is None:
                return False
            if extra or not value:
                self.new_raw(s, "ub.scan_tlv_value", self.rbytes(extra))
        return True

    def p_npic_entries(self, st: _State, last) -> Iterator[Sample]:
        """UB 2.0 App F.2.5: SUM NPIC entries."""
        s = st.fork()
        npic = s.hdrs[last]
        n = self.rnd.randint(0, 3)
        if not npic.force("sum", n):
            return
        for _ in range(n):
            self.new(s, "ub.npic_entry")
        yield from self.finish(s)

    def _tlvs(self, st: _State, tlv: str, value: str, hdr_len: int, end_len: int):
        s = st.fork()
        for _ in range(self.rnd.randint(1, 3)):
            n = self.rnd.randint(1, 8)
            t = HEADERS[tlv].fields[0]
            typ = self.rnd.randint(1, (1 << t.bits) - 1)
            if self.new(s, tlv, tlv_type=typ, tlv_len=n + hdr_len) is None:
                return                  # the bytes a Peek wants here cannot start a TLV
            self.new_raw(s, value, self.rbytes(n))
        self.new(s, tlv, tlv_type=0, tlv_len=end_len)
        yield from self.finish(s)

    def p_lldp_tlvs(self, st: _State, last) -> Iterator[Sample]:
        """IEEE 802.1AB TLVs (length = value bytes) to the End TLV (App F.2)."""
        yield from self._tlvs(st, "ub.lldp_tlv", "ub.lldp_value", 0, 0)

    def p_lacp_tlvs(self, st: _State, last) -> Iterator[Sample]:
        """IEEE 802.1AX TLVs (length counts the 2 header bytes) to the Terminator (App F.2)."""
        yield from self._tlvs(st, "ub.lacp_tlv", "ub.lacp_value", 2, 0)

    def p_dllcb(self, st: _State, last) -> Iterator[Sample]:
        """UB 2.0 §4.3.3 Table 4-6: every control-block type, its LCH form and declared body,
        the rest of the block as a zero body, then the profile's trailer (§4.7.2, Table 4-4)."""
        from ..link.control import KINDS
        p = self.p
        trailer = ("ub.bcrc" if p.crc_mode else "ub.end") if p.dllcb_bcrc else None
        tlen = HEADERS[trailer].size if trailer else 0

        def branch(code):
            ctrl, sub = code
            kind = E.DLLCB_TYPES[code]
            lo, hi = KINDS[kind][2]
            flits = self.rnd.randint(lo, min(hi, lo + 2))
            s = st.fork()
            lch = f"ub.lch_{kind.lower()}"
            lch = lch if lch in HEADERS else "ub.lch"
            x = self.new(s, lch, clength=flits - 1, ctrl=ctrl, sub_ctrl=sub)
            if x is None:
                return
            body = resolve(f"ub.{kind.lower()}", p)
            if body not in HEADERS:
                body = "ub.cb_rsvd"
            self.new(s, body)
            if body == "ub.param_exchg":
                for _ in range(flits - 1):
                    self.new(s, "ub.param_exchg_flit")
            used = sum(h.header.size for h in s.hdrs)
            rest = flits * 20 - tlen - used
            if rest < 0:
                return
            if rest:
                self.new_raw(s, "ub.cb_body", bytes(rest))
            if trailer:
                self.new(s, trailer)
            s.payload = (0, 0)
            yield from self.finish(s)

        yield from self.each(("@dllcb",), sorted(E.DLLCB_TYPES), branch)

    # -- the end of a frame --------------------------------------------------------------------
    def finish(self, st: _State) -> Iterator[Sample]:
        s = st.fork()
        lo, hi = s.payload
        n = self.rnd.choice([lo, hi, self.rnd.randint(lo, hi)]) if hi > lo else lo
        if n:
            if self.new_raw(s, "data", self.rbytes(n)) is None:
                return
        elif any(c[3] != "missing" for c in s.pending):
            return                      # a Peek wants a byte that is not there
        s.pending = []
        if s.trailer:
            s.hdrs.append(_H("eth.trailer", None, raw=self.rbytes(self.rnd.randint(1, 6))))
        _tidy(s)
        sample = self.verify(s)
        if sample is not None:
            yield sample

    def verify(self, st: _State) -> Sample | None:
        from ..dissect import decode
        from ..encode import encode_layers
        from ..record import has_errors
        layers = [(h.layer, h.encoder_value()) for h in st.hdrs]
        names = [h.layer for h in st.hdrs]
        try:
            buf = encode_layers(layers, self.p)
        except Exception as exc:  # noqa: BLE001 - a candidate the encoder refuses is dropped
            self.out.dropped.append((st.start, tuple(names), f"encode: {exc}"))
            return None
        expected = expected_layers(st.hdrs, self.p, buf)
        rec = decode(buf, st.linktype, self.p)
        if rec["layers"] != list(expected):
            self.out.dropped.append((st.start, tuple(names),
                                     f"decoded as {rec['layers']}, expected {list(expected)}"))
            return None
        if has_errors(rec["issues"]):
            self.out.dropped.append((st.start, tuple(names), "error: " + "; ".join(
                i["message"] for i in rec["issues"] if i["severity"] == "error")))
            return None
        return Sample(st.linktype, self.p, layers, expected, st.start,
                      frozenset(st.via) | frozenset(names), buf)


def _start_branches(rule) -> list:
    """The branches of a START rule: (first target, Peek constraints on the first bytes)."""
    if not isinstance(rule, Peek):
        return [(rule, [])]
    out = [(t, [(rule.offset, rule.mask, rule.shift, v, ())])
           for v, t in sorted(rule.cases.items()) if t not in (RESERVED, END)]
    if rule.default not in (RESERVED, END):
        out.append((rule.default, [(rule.offset, rule.mask, rule.shift, None,
                                    tuple(rule.cases))]))
    return out


def _tidy(st: _State) -> None:
    """Flags that are derived from the rest of the frame (not selectors)."""
    for h in st.hdrs:
        if h.layer == "ub.rtph" and "last" not in h.forced and h.get("tpopcode") == 1:
            h.vals[h.header.index["last"]] = h.get("psn") & 1
        if logical(h.layer) == "ub.cna16" and st.find("ub.lph") is not None \
                and st.find("ub.lph").get("cfg") == 9:
            for name in ("mgmt", "nlp"):       # App B: CFG 9 sets neither
                if name not in h.forced:
                    h.vals[h.header.index[name]] = 0
        if h.layer == "ub.nth" and not h.get("npi"):
            h.vals[h.header.index["npi"]] = 1          # UB 2.0 §5.3.3.1: NPI 0 is invalid


_ICRC_STARTS = frozenset(c.start for c in ICRC_COVERAGE)


def _earlier(hdrs, key: str):
    """Record key ``ub.<prefix>.<field>`` of the first of ``hdrs`` that has it (None)."""
    base, name = key.rsplit(".", 1)
    for q in hdrs:
        if q.header is not None and q.header.base == base and name in q.header.index:
            return q.get(name)
    return None


def _has_icrc(hdrs, profile) -> bool:
    """Whether the grammar's ICRC_COVERAGE gives this frame an ICRC (UB 2.0 §5.3.7)."""
    for i, h in enumerate(hdrs):
        lay = logical(h.layer)
        if lay not in _ICRC_STARTS or h.header is None:
            continue

        ub_udp = any(q.layer in TRANSPORT_OVER_UDP for q in hdrs[i:])
        own = (lambda name, _h=h: _h.get(name) if name in _h.header.index else None)
        if icrc_start(lay, lambda key, _i=i: _earlier(hdrs[:_i], key), profile, ub_udp=ub_udp,
                      own=own):
            return True
        if lay != "ub.cfg5":
            return False
    return False


def expected_layers(hdrs, profile, buf: bytes | None = None) -> tuple:
    """The layer ids a dissector reports for the frame ``hdrs``: the generated ones, the pad
    bytes (UB 2.0 §6.2.1, grammar PADDING) and the ICRC (§5.3.7) where the grammar puts them."""
    names = [h.layer for h in hdrs]
    size = [h.header.size if h.header is not None else len(h.raw) for h in hdrs]
    end = names.index("eth.trailer") if "eth.trailer" in names else len(names)
    out = list(names[:end])
    for i, n in enumerate(names[:end]):
        if n in PADDING.headers:
            if (-sum(size[i:end])) % PADDING.align:
                out.append(PADDING.pad_layer)
            break
    if _has_icrc(hdrs, profile):
        out.append("ub.icrc")
    return tuple(out + names[end:])


def linktypes_for(profile) -> tuple:
    """Ethernet (UBoE), and native UB packets as the profile's dialect records them (147 for
    the ns-3-UB dialect, 148 otherwise); for the spec dialect also captures on a Linux UB link
    netdev (150, ``record.LINKTYPE_UBL``)."""
    return (1, 147) if profile.lph_rt_swapped else (1, 148, 150)


def generate(profile, seed: int = 20240611, linktypes=None) -> SampleSet:
    """The samples of ``profile`` (see the module doc), with the kept/dropped counts."""
    return _Gen(profile, seed).run(linktypes or linktypes_for(profile))


def samples(profile, seed: int = 20240611, linktypes=None) -> Iterator[tuple]:
    """``(linktype, profile, layers)`` per generated frame, ``layers`` ready for
    ``ubpkt.encode.encode_layers``."""
    for s in generate(profile, seed, linktypes).samples:
        yield s.linktype, s.profile, s.layers
