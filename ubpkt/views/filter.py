"""The display-filter language (``-Y``), close to Wireshark's.

    ub.lph.cfg == 6 and not ub.rtph.last
    ub.btah.taopcode == Write || ub.icrc.status == bad        (enum fields by name, any case)
    ip.src == 192.0.2.1 && ip.dst == 10.0.0.0/8                (IP, CIDR, MAC and EID literals)
    eth.addr == 02:00:00:00:00:01 or udp.port == 4792          (either of two fields)
    data.data[0:2] == 01:02 and data.data contains "abc"       (slices: [start:len], [a-b], [i])
    ub.rtph.psn in {1 3 10..20} or ub.btah.taopcode_name matches "^write"
    frame.time_relative > 0.5 and frame.len >= 100

Names are checked when the filter is compiled: an unknown name is a :class:`FilterError`
naming the closest known one (``ubpkt.views.fieldnames``).  A bare name tests presence (a
layer id: that the frame has the layer; ``issues``/``errors``/``warnings``: a count above 0).
A comparison on a repeated or paired field (``ip.addr``) matches if any value matches; ``!=``
matches when the field is present and no value is equal (Wireshark 4's meaning).  ``matches``
is a case-insensitive regular expression (as Wireshark's; ``(?-i)`` makes it case-sensitive).
Frame times compare in seconds, exactly: the right-hand side is turned into integer
nanoseconds.
"""
from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation
from typing import Callable

from ..errors import FilterError
from .fieldnames import FRAME_TIME_KEYS, check_field, enum_for, field_kind, getter

__all__ = ["compile_filter", "FilterError", "filter_fields"]

_TOKEN = re.compile(r"""\s*(?:
    (?P<op>==|!=|<=|>=|&&|\|\||<|>|!|\(|\)|\{|\}|,|~|\.\.)
  | (?P<str>"(?:[^"\\]|\\.)*"|'[^']*')
  | (?P<lit>(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?![\w.:])
          | [0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7}(?:/\d{1,3})?(?![\w.:])
          | :[0-9a-fA-F:]*:[0-9a-fA-F:]*(?:/\d{1,3})?(?![\w.:])
          | [0-9a-fA-F]{2}(?:[:.\-][0-9a-fA-F]{2})+(?![\w.:\-]))
  | (?P<num>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?)(?!\w|\.\d))
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<slice>\[\s*-?\d*\s*(?:[:\-]\s*-?\d*\s*)?\])
)""", re.X)

_KEYWORDS = {"and": "&&", "or": "||", "not": "!", "eq": "==", "ne": "!=", "lt": "<", "le": "<=",
             "gt": ">", "ge": ">=", "contains": "contains", "matches": "matches", "in": "in"}
_CMP = {"==": lambda a, b: a == b, "!=": lambda a, b: a == b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
_ADDR_KINDS = ("ipv4", "ipv6", "eid")
_BYTE_KINDS = ("mac", "hex", "bytes", "guid")
_SEPARATORS = re.compile(r"[:.\-]")


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"cannot read the filter at {text[pos:pos + 12]!r}")
        kind = m.lastgroup
        val = m.group(kind)
        if kind == "word" and val.lower() in _KEYWORDS:
            kind, val = "op", _KEYWORDS[val.lower()]
        elif kind == "op" and val == "~":
            val = "matches"
        out.append((kind, val))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


# -- values --------------------------------------------------------------------------------------

def _as_bytes(v, kind: str):
    """A field value as bytes (for slices, byte literals and ``contains``), or None."""
    if isinstance(v, (bytes, bytearray)):
        return bytes(v)
    if isinstance(v, str):
        if kind in _ADDR_KINDS:
            try:
                return ipaddress.ip_address(v).packed
            except ValueError:
                return None
        if kind in _BYTE_KINDS:
            try:
                return bytes.fromhex(_SEPARATORS.sub("", v))
            except ValueError:
                return None
        return v.encode()
    return None


def _slice(spec: str):
    """Wireshark's slices: ``[i:n]`` n bytes from i, ``[i-j]`` i to j inclusive, ``[i]`` one
    byte, ``[:n]`` the first n, ``[i:]`` from i to the end; negative i counts from the end."""
    body = spec[1:-1].replace(" ", "")
    m = re.fullmatch(r"(-?\d*)(?:([:\-])(-?\d*))?", body)
    if not m or (not m.group(1) and not m.group(2)):
        raise FilterError(f"cannot read the slice {spec}")
    a = int(m.group(1)) if m.group(1) else 0
    sep, b = m.group(2), m.group(3)
    if sep is None:
        return lambda x: x[a:a + 1] if a != -1 else x[-1:]
    if sep == ":":
        if not b:
            return lambda x: x[a:]
        n = int(b)
        return lambda x: x[a:a + n] if a + n != 0 else x[a:]
    if not b:
        raise FilterError(f"a range slice needs an end: {spec}")
    j = int(b)
    return lambda x: x[a:j + 1] if j != -1 else x[a:]


class _Rhs:
    """A right-hand value, prepared once for the kind of the left field."""

    def __init__(self, name: str, kind: str, tok_kind: str, tok: str, sliced: bool):
        self.name, self.kind = name, kind
        self.field = None          # a getter when the value is another field
        self.value = None
        self.net = None            # an ip_network for address comparisons
        self.raw = tok
        enum = enum_for(name)
        if tok_kind == "str":
            tok = bytes(tok[1:-1], "utf-8").decode("unicode_escape") if tok[0] == '"' \
                else tok[1:-1]
        if sliced:
            self.value = self._bytes(tok_kind, tok)
            return
        if name in FRAME_TIME_KEYS:
            try:
                self.value = int(Decimal(tok) * 1_000_000_000)
            except InvalidOperation:
                raise FilterError(f"{name} compares with seconds, not {tok!r}")
            return
        if kind in _ADDR_KINDS and tok_kind in ("lit", "str", "word", "num"):
            try:
                self.net = ipaddress.ip_network(tok, strict=False)
                return
            except ValueError:
                if tok_kind == "lit":
                    raise FilterError(f"{tok!r} is not an address for {name}")
        if kind in _BYTE_KINDS and tok_kind in ("lit", "str", "word", "num"):
            b = self._bytes(tok_kind, tok) if tok_kind != "num" or not tok.startswith("0x") \
                else None
            if b is not None:
                self.value = b
                return
        if tok_kind == "num":
            self.value = int(tok, 0) if "." not in tok else float(tok)
        elif tok_kind == "lit":
            self.value = self._bytes(tok_kind, tok)
        elif tok_kind == "word":
            if enum:
                by_name = {v.lower(): k for k, v in enum.items()}
                if tok.lower() in by_name:
                    self.value = by_name[tok.lower()]
                    return
            if tok.lower() in ("true", "false") and not kind.startswith("str"):
                self.value = int(tok.lower() == "true")
                return
            try:
                check_field(tok)
            except FilterError:
                if enum:
                    names = ", ".join(list(enum.values())[:12])
                    raise FilterError(f"{tok!r} is not a value of {name} ({names}...)")
                self.value = tok
                return
            self.field = getter(tok)
        else:
            self.value = tok

    @staticmethod
    def _bytes(tok_kind: str, tok: str) -> bytes:
        if tok_kind == "lit" or (tok_kind == "word" and re.fullmatch(r"[0-9a-fA-F]{2}", tok)):
            try:
                return bytes.fromhex(_SEPARATORS.sub("", tok))
            except ValueError:
                pass
            try:
                return ipaddress.ip_address(tok).packed
            except ValueError:
                raise FilterError(f"cannot read {tok!r} as bytes")
        if tok_kind == "num":
            if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", tok):     # 02, 0a0b: bytes, as Wireshark
                return bytes.fromhex(tok)
            if tok.startswith("0x") and len(tok) % 2 == 0:
                return bytes.fromhex(tok[2:])
            n = int(tok, 0)
            return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
        return tok.encode()


def _values(v) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _compare(x, op: str, rhs: _Rhs, kind: str, rv=None) -> bool:
    """One left value against the prepared right value."""
    cmp = _CMP[op]
    if rhs.net is not None and isinstance(x, str):
        try:
            a = ipaddress.ip_address(x)
        except ValueError:
            return False
        if op in ("==", "!="):
            return a.version == rhs.net.version and a in rhs.net
        if a.version != rhs.net.version:
            return False
        return cmp(a, rhs.net.network_address)
    r = rhs.value if rv is None else rv
    try:
        if isinstance(r, bytes):
            b = _as_bytes(x, kind)
            return b is not None and cmp(b, r)
        if isinstance(r, str):
            if isinstance(x, bool) or isinstance(x, int):
                return cmp(str(int(x)), r)
            if isinstance(x, str):
                if kind in ("string", "") or rhs.name.endswith("_name"):
                    return cmp(x.lower(), r.lower()) if op in ("==", "!=") else cmp(x, r)
                return cmp(x, r)
            return False
        if isinstance(x, str) and isinstance(r, (int, float)):
            try:
                x = int(_SEPARATORS.sub("", x), 16) if kind in _BYTE_KINDS + ("",) else x
            except ValueError:
                return False
        return cmp(x, r)
    except TypeError:
        return False


def _comparison(name: str, get, sl, op: str, rhs: _Rhs):
    kind = "bytes" if sl is not None else field_kind(name)

    def left(rec):
        vals = _values(get(rec))
        if sl is not None:
            vals = [b for b in (_as_bytes(v, field_kind(name)) for v in vals) if b is not None]
            vals = [sl(b) for b in vals]
        return vals

    if rhs.field is not None:
        other = rhs.field

        def fn(rec):
            vals = left(rec)
            rvals = _values(other(rec))
            if not vals or not rvals:
                return False
            hit = any(_compare(x, "==" if op == "!=" else op, rhs, kind, y)
                      for x in vals for y in rvals)
            return not hit if op == "!=" else hit
        return fn
    if op == "!=":
        def ne(rec):
            vals = left(rec)
            return bool(vals) and not any(_compare(x, "==", rhs, kind) for x in vals)
        return ne
    return lambda rec: any(_compare(x, op, rhs, kind) for x in left(rec))


def _contains(name: str, get, sl, rhs_kind: str, tok: str):
    kind = "bytes" if sl is not None else field_kind(name)
    if rhs_kind == "str":
        tok = tok[1:-1]
    if kind in _BYTE_KINDS + _ADDR_KINDS + ("bytes",):
        needle = _Rhs._bytes(rhs_kind if rhs_kind != "str" else "str", tok)

        def has(rec):
            for v in _values(get(rec)):
                b = _as_bytes(v, field_kind(name))
                if b is not None and needle in (sl(b) if sl else b):
                    return True
            return False
        return has
    num = int(tok, 0) if rhs_kind == "num" and "." not in tok else None

    def has_value(rec):
        v = get(rec)
        if isinstance(v, list):
            return any(x == num or (isinstance(x, str) and tok in x) for x in v)
        if isinstance(v, str):
            return tok in v
        return v is not None and num is not None and v == num
    return has_value


def _matches(get, pattern: str):
    try:
        rx = re.compile(pattern, re.I)
    except re.error as exc:
        raise FilterError(f"bad regular expression {pattern!r}: {exc}")

    def fn(rec):
        for v in _values(get(rec)):
            if isinstance(v, (bytes, bytearray)):
                v = bytes(v).decode("latin-1")
            if rx.search(str(v)):
                return True
        return False
    return fn


def compile_filter(text: str) -> Callable[[dict], bool]:
    """Compile a filter expression to a predicate over records (``FilterError`` on a syntax
    error, an unknown field or a value the field cannot hold)."""
    toks = _tokens(text)
    pos = 0
    names: list[str] = []

    def peek(k=0):
        return toks[pos + k] if pos + k < len(toks) else (None, None)

    def take():
        nonlocal pos
        t = peek()
        pos += 1
        return t

    def parse_or():
        left = parse_and()
        while peek() == ("op", "||"):
            take()
            right = parse_and()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def parse_and():
        left = parse_not()
        while peek() == ("op", "&&"):
            take()
            right = parse_not()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def parse_not():
        if peek() == ("op", "!"):
            take()
            inner = parse_not()
            return lambda r: not inner(r)
        return parse_atom()

    def value(name, kind, sliced):
        vk, vt = take()
        if vk is None or vk == "op":
            raise FilterError(f"a value was expected after {name}")
        return _Rhs(name, kind, vk, vt, sliced)

    def parse_set(name, get, sl):
        if take() != ("op", "{"):
            raise FilterError("'in' takes a set: in {1 2 3} or {1..5}")
        kind = field_kind(name)
        tests = []
        while True:
            if peek() == ("op", "}"):
                take()
                break
            if peek() == ("op", ","):
                take()
                continue
            if peek()[0] is None:
                raise FilterError("missing } after 'in {'")
            lo = value(name, kind, sl is not None)
            if peek() == ("op", ".."):
                take()
                hi = value(name, kind, sl is not None)
                a = _comparison(name, get, sl, ">=", lo)
                b = _comparison(name, get, sl, "<=", hi)
                tests.append((lambda a, b: lambda r: a(r) and b(r))(a, b))
            else:
                tests.append(_comparison(name, get, sl, "==", lo))
        if not tests:
            raise FilterError("empty set after 'in'")
        return lambda r: any(t(r) for t in tests)

    def parse_atom():
        kind, tok = take()
        if (kind, tok) == ("op", "("):
            e = parse_or()
            if take() != ("op", ")"):
                raise FilterError("missing )")
            return e
        if kind != "word":
            raise FilterError(f"a field name was expected, not {tok!r}")
        name = tok
        get = getter(name)     # raises on an unknown name
        names.append(name)
        sl = None
        if peek()[0] == "slice":
            fk = field_kind(name)
            if fk in ("int", "uint", "list", "time"):
                raise FilterError(f"{name} is a number: slices apply to byte fields")
            sl = _slice(take()[1])
        nk, nt = peek()
        if nk == "op" and nt in _CMP:
            take()
            return _comparison(name, get, sl, nt, value(name, field_kind(name), sl is not None))
        if nk == "op" and nt == "contains":
            take()
            vk, vt = take()
            if vk is None or vk == "op":
                raise FilterError("a value was expected after contains")
            return _contains(name, get, sl, vk, vt)
        if nk == "op" and nt == "matches":
            take()
            vk, vt = take()
            if vk != "str":
                raise FilterError("matches takes a quoted regular expression")
            return _matches(get, vt[1:-1])
        if nk == "op" and nt == "in":
            take()
            return parse_set(name, get, sl)
        if name in ("issues", "errors", "warnings"):
            return lambda r: get(r) > 0
        if sl is not None:
            return lambda r: any(len(sl(b)) > 0 for b in (_as_bytes(v, field_kind(name))
                                                          for v in _values(get(r))) if b)
        return lambda r: get(r) is not None

    if not toks:
        raise FilterError("empty filter")
    expr = parse_or()
    if pos != len(toks):
        raise FilterError(f"unexpected {toks[pos][1]!r}")
    expr.fields = tuple(names)
    return expr


def filter_fields(pred) -> tuple:
    """The field names a compiled filter reads."""
    return getattr(pred, "fields", ())
