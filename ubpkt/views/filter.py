"""A small display-filter language over record field names.

    ub.lph.cfg == 6 and not ub.rtph.last
    ub.btah.taopcode_name == "Write" || ub.icrc.status == bad
    (ub.rtph.psn >= 0x10 && ub.rtph.psn < 32) or ub.mgmtetah.code == 2

A bare field name tests presence (and truthiness for integers 0/1 flags is not implied: it is
presence).  ``issues`` / ``errors`` / ``warnings`` are pseudo-fields counting the frame's issues.
Comparisons on a repeated field match if any value matches.
"""
from __future__ import annotations

import re
from typing import Callable

__all__ = ["compile_filter", "FilterError"]


from ..errors import FilterError


_TOKEN = re.compile(r"""\s*(?:
    (?P<op>==|!=|<=|>=|<|>|&&|\|\||!|\(|\))
  | (?P<str>"[^"]*"|'[^']*')
  | (?P<num>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?))
  | (?P<word>[A-Za-z_][A-Za-z0-9_.:\-]*)
)""", re.X)

_CMP = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"cannot read the filter at {text[pos:pos + 12]!r}")
        kind = m.lastgroup
        val = m.group(kind)
        if kind == "word" and val.lower() in ("and", "or", "not"):
            kind, val = "op", {"and": "&&", "or": "||", "not": "!"}[val.lower()]
        elif kind == "word" and val in ("eq", "ne", "lt", "le", "gt", "ge"):
            kind, val = "op", {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">",
                               "ge": ">="}[val]
        out.append((kind, val))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _value(kind: str, tok: str):
    if kind == "num":
        return int(tok, 0) if "." not in tok else float(tok)
    if kind == "str":
        return tok[1:-1]
    return tok


def _lookup(record: dict, name: str):
    if name in ("issues", "errors", "warnings"):
        issues = record["issues"]
        if name == "issues":
            return len(issues)
        sev = name[:-1]
        return sum(1 for i in issues if i["severity"] == sev)
    if name == "frame" or name == "len" or name == "caplen" or name == "time":
        return record[name]
    v = record["fields"].get(name)
    if v is None and name in record["layers"]:
        return True
    return v


def _matches(v, op: str, rhs) -> bool:
    values = v if isinstance(v, list) else [v]
    cmp = _CMP[op]
    for x in values:
        if x is None:
            continue
        try:
            if isinstance(rhs, str) and not isinstance(x, str):
                if op in ("==", "!=") and isinstance(x, bool):
                    ok = cmp(str(x).lower(), rhs.lower())
                else:
                    ok = cmp(str(x), rhs)
            elif isinstance(x, str) and not isinstance(rhs, str):
                try:
                    ok = cmp(int(x, 16) if x and all(c in "0123456789abcdef" for c in x)
                             else x, rhs)
                except (TypeError, ValueError):
                    ok = False
            else:
                ok = cmp(x, rhs)
        except TypeError:
            ok = False
        if ok:
            return True
    return False


def compile_filter(text: str) -> Callable[[dict], bool]:
    """Compile a filter expression to a predicate over records."""
    toks = _tokens(text)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else (None, None)

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
        nk, nt = peek()
        if nk == "op" and nt in _CMP:
            take()
            vk, vt = take()
            if vk is None or vk == "op":
                raise FilterError(f"a value was expected after {nt}")
            rhs = _value(vk, vt)
            return lambda r: _matches(_lookup(r, name), nt, rhs)
        return lambda r: _lookup(r, name) not in (None, False, 0) or (
            _lookup(r, name) == 0 and name in r["fields"])

    if not toks:
        raise FilterError("empty filter")
    expr = parse_or()
    if pos != len(toks):
        raise FilterError(f"unexpected {toks[pos][1]!r}")
    return expr
