"""Frame times as tshark prints them, from integer nanoseconds (never floats).

The decode loop asks the reader for exact times (``iter_records(..., exact_time=True)`` puts
``rec["_tns"] = (time_ns, digits)``, ``digits`` being the capture's resolution: 6 for a
microsecond pcap, 9 for a nanosecond one, what pcapng's if_tsresol gives).  :class:`FrameClock`
turns that into ``rec["_t"] = (epoch, relative, delta, delta_displayed, digits)`` in ns, which
``frame.time_*`` fields and ``-t`` read.  Both keys start with ``_``: views strip them before
writing JSON, so the JSON records stay those of the fast path.

``-t`` formats (tshark's): ``a`` absolute local time of day, ``ad`` absolute with date, ``u``/
``ud`` the same in UTC, ``r`` relative to the first frame (the default), ``d`` delta from the
previous frame, ``dd`` delta from the previous displayed frame, ``e`` seconds since the epoch.
"""
from __future__ import annotations

import time as _time

__all__ = ["FrameClock", "TIME_FORMATS", "seconds_text", "time_column", "strip_private",
           "format_time", "TimeColumn", "json_view"]

TIME_FORMATS = ("a", "ad", "u", "ud", "r", "d", "dd", "e")


def seconds_text(ns: int, digits: int = 9) -> str:
    """``ns`` nanoseconds as decimal seconds with ``digits`` fraction digits (truncated, as
    the capture holds no more)."""
    sign = "-" if ns < 0 else ""
    sec, rem = divmod(abs(ns), 1_000_000_000)
    if digits <= 0:
        return f"{sign}{sec}"
    return f"{sign}{sec}.{rem // 10 ** (9 - digits):0{digits}d}"


class FrameClock:
    """Relative and delta times over a stream of records."""

    def __init__(self) -> None:
        self.first = None
        self.prev = None
        self.prev_displayed = None

    def stamp(self, rec: dict) -> None:
        got = rec.pop("_tns", None)
        if got is None:
            return
        ns, digits = got
        if self.first is None:
            self.first = self.prev = self.prev_displayed = ns
        rec["_t"] = (ns, ns - self.first, ns - self.prev, ns - self.prev_displayed, digits)
        self.prev = ns

    def displayed(self, rec: dict) -> None:
        """The frame passed the display filter (for ``dd`` / frame.time_delta_displayed)."""
        t = rec.get("_t")
        if t is not None:
            self.prev_displayed = t[0]


def time_column(rec: dict, fmt: str = "r") -> str:
    """The time column of the one-line summary in format ``fmt`` (see the module doc)."""
    t = rec.get("_t")
    if t is None:
        v = rec.get("time")
        return "-" if v is None else f"{v:.9f}"
    return format_time(fmt, *t)


def format_time(fmt: str, epoch: int, rel: int, delta: int, ddisp: int, digits: int) -> str:
    """A time column in format ``fmt`` from the frame clock's integer nanoseconds."""
    if fmt == "r":
        return seconds_text(rel, digits)
    if fmt == "d":
        return seconds_text(delta, digits)
    if fmt == "dd":
        return seconds_text(ddisp, digits)
    if fmt == "e":
        return seconds_text(epoch, digits)
    sec, rem = divmod(epoch, 1_000_000_000)
    tm = _time.gmtime(sec) if fmt.startswith("u") else _time.localtime(sec)
    frac = f".{rem // 10 ** (9 - digits):0{digits}d}" if digits > 0 else ""
    day = _time.strftime("%Y-%m-%d ", tm) if fmt.endswith("d") else ""
    return day + _time.strftime("%H:%M:%S", tm) + frac


class TimeColumn:
    """The time column of consecutive frames that are all displayed (no display filter), from
    their integer nanoseconds: what :class:`FrameClock` and :func:`time_column` give, for the
    summary fast path that builds no records."""

    def __init__(self, fmt: str = "r") -> None:
        self.fmt = fmt
        self.first = None
        self.prev = None

    def __call__(self, ns: int, digits: int) -> str:
        if self.first is None:
            self.first = self.prev = ns
        delta = ns - self.prev
        self.prev = ns
        if self.fmt == "r":
            rel = ns - self.first
            if rel >= 0 and digits > 0:     # seconds_text in one %-format (the views' hot path)
                sec, rem = divmod(rel, 1_000_000_000)
                return _SECONDS_FMT[digits] % (sec, rem // _FRACTION_DIV[digits])
            return seconds_text(rel, digits)
        return format_time(self.fmt, ns, ns - self.first, delta, delta, digits)

    def function(self):
        """This column as the cheapest callable ``(ns, digits) -> text`` (the same texts,
        sharing this column's state only when it cannot do better): for ``-t r`` a closure
        over the first frame's time."""
        if self.fmt != "r" or self.first is not None:
            return self
        first = None

        def relative(ns: int, digits: int) -> str:
            nonlocal first
            if first is None:
                first = ns
            rel = ns - first
            if rel >= 0 and digits > 0:
                sec, rem = divmod(rel, 1_000_000_000)
                return _SECONDS_FMT[digits] % (sec, rem // _FRACTION_DIV[digits])
            return seconds_text(rel, digits)
        return relative


#: seconds_text of a non-negative time with 1-9 fraction digits: the format and the divisor of
#: the nanoseconds (index: digits)
_SECONDS_FMT = [""] + [f"%d.%0{d}d" for d in range(1, 10)]
_FRACTION_DIV = [0] + [10 ** (9 - d) for d in range(1, 10)]


def json_view(rec: dict) -> dict:
    """The record as the JSON views write it: without the private keys, with the exact time
    ``time_epoch`` (``ubpkt.views.output.with_time_epoch``) when the frame clock stamped it."""
    t = rec.get("_t")
    out = strip_private(rec)
    if t is None:
        return out
    from .output import with_time_epoch
    return with_time_epoch(out, seconds_text(t[0], t[4]))


def strip_private(rec: dict) -> dict:
    """The record without the view's private keys (``_t``, ``_tns``, ``_raw``)."""
    if "_t" in rec or "_tns" in rec or "_raw" in rec:
        return {k: v for k, v in rec.items() if not k.startswith("_")}
    return rec
