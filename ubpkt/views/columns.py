"""``-T fields -e NAME ... -E OPTION=VALUE``: columns as tshark writes them.

``-E`` options (tshark's): ``header=y|n`` a first line of field names; ``separator=/t|/s|C``
(tab, space or one character); ``quote=d|s|n`` (double, single or no quotes round each value);
``occurrence=f|l|a`` (first, last or all values of a repeated field); ``aggregator=,|/s|C``
(between the values of a repeated field).  Names are checked (an unknown one is an error naming
the closest known field); frame times print in exact decimal seconds from integer ns.
"""
from __future__ import annotations

from ..errors import FilterError
from .fieldnames import FRAME_TIME_KEYS, getter
from .timefmt import seconds_text

__all__ = ["Columns", "parse_E"]

_SEP = {"/t": "\t", "/s": " "}


def parse_E(options) -> dict:
    """``-E`` options to settings (FilterError on an unknown one)."""
    out = {"header": False, "separator": "\t", "quote": "", "occurrence": "a",
           "aggregator": ","}
    for opt in options:
        for part in _split(opt):
            key, eq, val = part.partition("=")
            if not eq:
                raise FilterError(f"-E {part!r}: expected KEY=VALUE")
            if key == "header":
                if val not in ("y", "n"):
                    raise FilterError("-E header takes y or n")
                out["header"] = val == "y"
            elif key in ("separator", "aggregator"):
                out[key] = _SEP.get(val, val)
                if len(out[key]) != 1:
                    raise FilterError(f"-E {key} takes /t, /s or one character")
            elif key == "quote":
                if val not in ("d", "s", "n"):
                    raise FilterError("-E quote takes d, s or n")
                out["quote"] = {"d": '"', "s": "'", "n": ""}[val]
            elif key == "occurrence":
                if val not in ("f", "l", "a") and not val.lstrip("-").isdigit():
                    raise FilterError("-E occurrence takes f, l, a or a number")
                out["occurrence"] = val
            else:
                raise FilterError(f"-E: unknown option {key!r} (header, separator, quote, "
                                  "occurrence, aggregator)")
    return out


def _split(opt: str):
    """``header=y,separator=,`` as one -E (a separator of ``,`` is kept)."""
    parts, cur = [], ""
    for piece in opt.split(","):
        if cur.endswith("=") or (not piece and cur):
            cur += "," + piece if cur.endswith("=") else ","
            continue
        if cur:
            parts.append(cur)
        cur = piece
    if cur:
        parts.append(cur)
    return parts


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.9f}".rstrip("0").rstrip(".") if v else "0"
    return str(v)


class Columns:
    """Renders records as delimited lines of ``names``."""

    def __init__(self, names, settings: dict | None = None):
        self.names = list(names)
        self.getters = [getter(n) for n in self.names]   # raises on an unknown name
        self.s = settings or parse_E(())

    def header(self) -> str:
        return self.s["separator"].join(self._quote(n) for n in self.names)

    def _quote(self, text: str) -> str:
        q = self.s["quote"]
        return f"{q}{text}{q}" if q else text

    def _cell(self, name, v, rec) -> str:
        if name in FRAME_TIME_KEYS:
            t = rec.get("_t")
            return "" if t is None else seconds_text(v, t[4])
        if isinstance(v, list):
            occ = self.s["occurrence"]
            if occ == "f":
                v = v[:1]
            elif occ == "l":
                v = v[-1:]
            elif occ != "a":
                k = int(occ)
                v = v[k - 1:k] if k > 0 else v[k:len(v) + k + 1]
            return self.s["aggregator"].join(_text(x) for x in v)
        return _text(v)

    def line(self, rec: dict) -> str:
        sep = self.s["separator"]
        cells = []
        for name, get in zip(self.names, self.getters):
            v = get(rec)
            text = self._cell(name, v, rec)
            cells.append(self._quote(text) if text or self.s["quote"] else text)
        return sep.join(cells)
