"""Fault injection on one link direction: a seeded, sans-IO middleware in front of a link, with
netem's option names.

Fault specification (:meth:`FaultSpec.parse`): ``key=value`` items, given as one string with
commas between items (a value holding a comma must be quoted with ``'`` or ``"``), as a list of
``key=value`` strings (one item each: what repeated CLI options give), or as a dict::

    loss=0.01,duplicate=0.001,reorder=0.01:3,corrupt=1e-4,blackout=1ms:2ms,
    drop='ub.rtph.tpopcode == 2'@1          (one line: the commas separate the items)

==================  ==============================================================================
``loss=P``          drop each frame with probability P (Bernoulli).  Probabilities are numbers
                    in [0, 1] or percentages (``1%``).
``burst=N``         with ``loss``: losses come in bursts of mean length N at the same long-run
                    rate P (a Gilbert model: p = P / (N (1 - P)), r = 1/N, 1-h = 1, 1-k = 0)
``ge=p:r:1-h:1-k``  Gilbert-Elliott (netem ``loss gemodel``): p = P(good -> bad), r = P(bad ->
                    good), 1-h = loss probability in the bad state, 1-k = in the good state;
                    defaults r = 1-p, 1-h = 1, 1-k = 0.  Long-run loss rate
                    (r (1-k) + p (1-h)) / (p + r).
``duplicate=P``     send an intact copy right after the frame
``reorder=P[:N]``   hold the frame back until N later frames have gone ahead (``gap=N``, default
                    1), or at the latest ``hold`` ns after it was due (default 100 us)
``gap=N``           ``hold=T``: see ``reorder``
``corrupt=P[:K]``   flip 1..K (default 1) distinct random bits.  ``corrupt_region=icrc`` (the
                    default): only bits the ICRC protects (from the start of its coverage to the
                    ICRC itself, without the fields it masks) that do not steer the dissection of
                    the carrier and network headers (IP version/length/protocol, UDP port and
                    length, NTH NLP...): the receiver's ICRC check must catch every one, and the
                    decoder shows the frame with ``ub.icrc.status == "bad"``.  ``any``: any bit
                    after the Ethernet header (UBoE) or anywhere (native UB).  A frame without an
                    ICRC (TP bypass) is corrupted anywhere; the ledger notes
                    ``detectable: False``.
``mark=P``          set the congestion mark on a data frame (netem's ``ecn``, which marks
                    instead of dropping; here its own probability): RTP data, UTP, CTP data or
                    TP bypass.  UBoE (no NTH): the IPv4 ECN field becomes CE (0b11, RFC 3168;
                    a reference-profile reading, whatever ECT codepoint the frame had) and the
                    IPv4 checksum is fixed; native UB: the CCI word of the CNA NTH (UB 2.0
                    §5.3.5.1), C bit in CAQM mode, FECN 2'b11 in the FECN modes.  Both are
                    masked in the ICRC (§5.3.7), which stays valid.  A frame already marked, or
                    whose CCI is in a reserved mode, is left alone.  Recorded as kind ``mark``;
                    the receiver echoes it in a _CC response (UB 2.0 §6.6.1.3.4).
``delay=T``         extra delay; ``jitter=T``: plus a uniform draw in [-T, +T] per frame (frames
                    may overtake each other: each overtaken frame is recorded as a ``reorder``
                    fault with ``cause: jitter``).  Times: ns, or a number with ns/us/ms/s.
``rate=R``          serialise at R bits/s before the delay (``10G``, ``100Mbit``, ``1e9``)
``blackout=T0:T1``  drop every frame offered in [T0, T1) (repeatable)
``drop='F'[@N]``    drop the Nth frame (counting from 1) matching the display filter F
                    (``ubpkt.views.filter``, the ``-Y`` language), or every matching frame
                    without ``@N`` (repeatable).  Frames are decoded only when a ``drop`` rule
                    exists, and only those still alive when the rules are reached.
``seed=S``          the seed, when the injector is not given one
==================  ==============================================================================

A frame goes through, in order: blackout, loss, drop rules (the first three drop it and end its
way), duplicate (decided on the intact frame), mark, corrupt, reorder (decided), rate, delay and
jitter, then reorder's hold.  Every decision draws from its own ``random.Random`` stream seeded
from ``(seed, kind)``, so adding one fault kind does not change another's schedule, and the same
seed gives the same schedule.  Every fault is recorded in a :class:`~ubpkt.sim.ledger.Ledger`.

The injector follows the link's three calls (``push``, ``pop``, ``next_deadline``), so it chains
in front of a link.  The CLI (``ubpkt loopback``) maps ``--loss P``, ``--burst N``,
``--duplicate P``, ``--reorder P --gap N``, ``--corrupt P``, ``--mark P``,
``--delay T --jitter T``,
``--rate R``, ``--blackout T0:T1`` and ``--drop 'FILTER'[@N]`` to ``key=value`` items one to one
(see :meth:`FaultSpec.from_options`).
"""
from __future__ import annotations

import heapq
import random
import re
from collections import deque
from dataclasses import dataclass, fields, replace

from ..dissect import dissect
from ..dissect.frame import BYTE_LAYERS
from ..dissect.walk import steering_fields
from ..formats import HEADERS
from ..formats.grammar import covered_from
from ..profile import SPEC, Profile
from ..record import LINKTYPE_ETHERNET, LINKTYPE_UB, make_record
from ..views.filter import compile_filter
from .ledger import Ledger, summarize, summary_from_record
from .link import parse_rate, parse_time

__all__ = ["FaultSpec", "FaultInjector", "corruptible_bits"]

_SCRIPTABLE = ("loss", "duplicate", "reorder", "corrupt", "mark")


def _prob(text, key: str) -> float:
    s = str(text).strip()
    try:
        p = float(s[:-1]) / 100 if s.endswith("%") else float(s)
    except ValueError:
        raise ValueError(f"{key}: not a probability: {text!r}") from None
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{key}: probability {text!r} outside [0, 1]")
    return p


def _int(text, key: str, minimum: int = 0) -> int:
    try:
        v = int(str(text).strip(), 0)
    except ValueError:
        raise ValueError(f"{key}: not an integer: {text!r}") from None
    if v < minimum:
        raise ValueError(f"{key}: {v} is below {minimum}")
    return v


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return s


def _split_items(text: str) -> list[str]:
    """Split at commas outside quotes."""
    items, cur, quote = [], [], None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == ",":
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if quote:
        raise ValueError(f"unclosed quote in {text!r}")
    items.append("".join(cur))
    return [i.strip() for i in items if i.strip()]


_DROP_AT = re.compile(r"^(?P<f>.*?)\s*@\s*(?P<n>\d+)\s*$", re.S)


def _drop_rule(value) -> tuple[str, int | None]:
    if isinstance(value, (tuple, list)):
        text, n = value
        n = None if n is None else _int(n, "drop", 1)
    else:
        s = str(value).strip()
        n = None
        if s[:1] in ("'", '"'):
            end = s.find(s[0], 1)
            if end < 0:
                raise ValueError(f"drop: unclosed quote in {value!r}")
            text, rest = s[1:end], s[end + 1:].strip()
            if rest:
                if not rest.startswith("@"):
                    raise ValueError(f"drop: expected @N after the filter, got {rest!r}")
                n = _int(rest[1:], "drop", 1)
        else:
            m = _DROP_AT.match(s)
            text, n = (m["f"], int(m["n"])) if m else (s, None)
            if n is not None and n < 1:
                raise ValueError("drop: @N counts from 1")
    text = text.strip()
    if not text:
        raise ValueError("drop: empty filter")
    compile_filter(text)        # a bad filter fails here, not in the middle of a run
    return text, n


@dataclass(frozen=True)
class FaultSpec:
    """What to inject (see the module doc for the string form)."""
    loss: float = 0.0
    burst: float | None = None
    ge: tuple | None = None                 # (p, r, 1-h, 1-k)
    duplicate: float = 0.0
    reorder: float = 0.0
    gap: int = 1
    hold: int = 100_000
    corrupt: float = 0.0
    corrupt_bits: int = 1
    corrupt_region: str = "icrc"
    mark: float = 0.0
    delay: int = 0
    jitter: int = 0
    rate: int | None = None
    blackout: tuple = ()                    # ((t0, t1), ...)
    drop: tuple = ()                        # ((filter, n or None), ...)
    seed: int | None = None

    def __post_init__(self):
        if self.ge is not None and self.loss:
            raise ValueError("give either loss (with burst) or ge, not both")
        if self.burst is not None:
            if self.burst < 1:
                raise ValueError("burst: the mean burst length is at least 1")
            if self.loss >= 1:
                raise ValueError("burst: loss must be below 1")
            if self.loss / (self.burst * (1 - self.loss)) > 1:
                raise ValueError(f"burst: loss {self.loss} cannot be reached with bursts of "
                                 f"{self.burst} (p = P / (N (1 - P)) exceeds 1)")
        if self.gap < 1:
            raise ValueError("gap: at least 1")
        if self.corrupt_bits < 1:
            raise ValueError("corrupt: at least 1 bit")
        if self.corrupt_region not in ("icrc", "any"):
            raise ValueError("corrupt_region: icrc or any")
        if self.delay < 0 or self.jitter < 0 or self.hold < 0:
            raise ValueError("negative time")
        for t0, t1 in self.blackout:
            if t1 <= t0:
                raise ValueError(f"blackout {t0}:{t1}: the end must follow the start")

    # -- parsing --------------------------------------------------------------------------------
    @classmethod
    def parse(cls, spec=None) -> "FaultSpec":
        """A FaultSpec from a string, a list of ``key=value`` strings, a dict, a FaultSpec or
        None (no faults)."""
        if spec is None:
            return cls()
        if isinstance(spec, cls):
            return spec
        if isinstance(spec, dict):
            items = []
            for k, v in spec.items():
                if k in ("blackout", "drop") and isinstance(v, list):
                    items += [(k, x) for x in v]        # several windows or rules
                else:
                    items.append((k, v))
        else:
            texts = _split_items(spec) if isinstance(spec, str) else list(spec)
            items = []
            for t in texts:
                if not isinstance(t, str) or "=" not in t:
                    raise ValueError(f"fault option {t!r}: expected key=value")
                k, v = t.split("=", 1)
                items.append((k, v))
        kw: dict = {"blackout": [], "drop": []}
        for k, v in items:
            cls._apply(kw, str(k).strip().lstrip("-").replace("-", "_").lower(), v)
        kw["blackout"] = tuple(kw["blackout"])
        kw["drop"] = tuple(kw["drop"])
        return cls(**kw)

    @classmethod
    def from_options(cls, **options) -> "FaultSpec":
        """From CLI-style options (``loss=0.01, gap=3, drop=["...@1"]``); None values are
        skipped."""
        return cls.parse({k: v for k, v in options.items() if v is not None})

    @staticmethod
    def _apply(kw: dict, key: str, v) -> None:
        sv = _unquote(v) if isinstance(v, str) else v
        if key in ("loss", "duplicate", "mark"):
            kw[key] = _prob(sv, key)
        elif key == "burst":
            try:
                kw["burst"] = float(sv)
            except ValueError:
                raise ValueError(f"burst: not a number: {v!r}") from None
        elif key in ("ge", "gemodel"):
            parts = [_prob(x, "ge") for x in (sv if isinstance(sv, (list, tuple))
                                              else str(sv).split(":"))]
            if not 1 <= len(parts) <= 4:
                raise ValueError("ge: p[:r[:1-h[:1-k]]]")
            p = parts[0]
            r = parts[1] if len(parts) > 1 else 1 - p
            kw["ge"] = (p, r, parts[2] if len(parts) > 2 else 1.0,
                        parts[3] if len(parts) > 3 else 0.0)
        elif key in ("reorder", "corrupt"):
            head, _, tail = str(sv).partition(":")
            kw[key] = _prob(head, key)
            if tail:
                kw["gap" if key == "reorder" else "corrupt_bits"] = _int(tail, key, 1)
        elif key == "gap":
            kw["gap"] = _int(sv, "gap", 1)
        elif key in ("corrupt_bits", "bits"):
            kw["corrupt_bits"] = _int(sv, key, 1)
        elif key == "corrupt_region":
            kw["corrupt_region"] = str(sv).strip().lower()
        elif key in ("delay", "jitter", "hold"):
            kw[key] = parse_time(sv)
        elif key == "rate":
            kw["rate"] = parse_rate(sv)
        elif key == "blackout":
            if isinstance(sv, (list, tuple)):
                t0, t1 = sv
            else:
                t0, sep, t1 = str(sv).partition(":")
                if not sep:
                    raise ValueError(f"blackout: T0:T1, got {v!r}")
            kw["blackout"].append((parse_time(t0), parse_time(t1)))
        elif key == "drop":
            kw["drop"].append(_drop_rule(v if not isinstance(v, str) else v.strip()))
        elif key == "seed":
            kw["seed"] = _int(sv, "seed")
        else:
            raise ValueError(f"unknown fault option {key!r}")

    def __str__(self) -> str:
        """The canonical string form (parses back to an equal spec)."""
        out = []
        d = FaultSpec()
        for f in fields(self):
            v = getattr(self, f.name)
            if v == getattr(d, f.name):
                continue
            if f.name == "ge":
                out.append("ge=" + ":".join(repr(x) for x in v))
            elif f.name == "blackout":
                out += [f"blackout={a}:{b}" for a, b in v]
            elif f.name == "drop":
                quote = lambda t: "'" + t + "'" if "'" not in t else '"' + t + '"'  # noqa: E731
                out += [f"drop={quote(t)}" + (f"@{n}" if n is not None else "") for t, n in v]
            else:
                out.append(f"{f.name}={v!r}" if isinstance(v, float) else f"{f.name}={v}")
        return ",".join(out)

    def __bool__(self) -> bool:
        return self != FaultSpec(seed=self.seed)

    def with_(self, **kw) -> "FaultSpec":
        return replace(self, **kw)

    def loss_model(self):
        """None, ``("bernoulli", P)`` or ``("ge", p, r, 1-h, 1-k)``."""
        if self.ge is not None:
            return ("ge",) + tuple(self.ge)
        if not self.loss:
            return None
        if self.burst is not None:
            n, p_loss = self.burst, self.loss
            return ("ge", p_loss / (n * (1 - p_loss)), 1 / n, 1.0, 0.0)
        return ("bernoulli", self.loss)

    def expected_loss_rate(self) -> float:
        """The loss model's long-run loss rate."""
        m = self.loss_model()
        if m is None:
            return 0.0
        if m[0] == "bernoulli":
            return m[1]
        _, p, r, h1, k1 = m
        if p + r == 0:
            return k1
        return (r * k1 + p * h1) / (p + r)


# -- corruption targets ---------------------------------------------------------------------------
def _layer_offsets(fr) -> list[tuple[str, int, int]]:
    """(layer, offset, size) of a dissected frame's layers, in wire order."""
    out = []
    off = 0
    seen: dict = {}
    for lay in fr.layers:
        if lay == "ub.icrc":
            size = 4
        elif lay in BYTE_LAYERS:
            v = fr.fields.get(BYTE_LAYERS[lay])
            if isinstance(v, list):
                i = seen.get(lay, 0)
                seen[lay] = i + 1
                v = v[i] if i < len(v) else ""
            size = len(v or "") // 2
        elif lay in HEADERS:
            size = HEADERS[lay].size
        else:
            break
        out.append((lay, off, size))
        off += size
    return out


def _field_bytes(h, name: str, base: int) -> range:
    bit = 0
    for f in h.fields:
        if f.name == name:
            return range(base + bit // 8, base + (bit + f.bits + 7) // 8)
        bit += f.bits
    return range(0)


def corruptible_bits(frame, linktype: int = LINKTYPE_ETHERNET, region: str = "icrc",
                     profile: Profile = SPEC, fr=None) -> tuple[list[tuple[int, int]], bool]:
    """The bit ranges ``[(first bit, end bit), ...]`` (bit 0 = the first byte's most significant
    bit) that ``corrupt`` may flip in ``frame``, and whether the ICRC protects them (see the
    module doc for the regions)."""
    n = len(frame)
    if fr is None:
        fr = dissect(bytes(frame), linktype, profile)
    any_from = 14 if linktype == LINKTYPE_ETHERNET else 0
    lays = _layer_offsets(fr)
    names = [lay for lay, _, _ in lays]
    start = None
    if region == "icrc" and "ub.icrc" in names and fr.fields.get("ub.icrc.status") == "good":
        i = covered_from(names)
        if i is not None:
            start = lays[i][1]
    if start is None:
        return ([(any_from * 8, n * 8)] if n > any_from else []), False
    icrc_at = lays[names.index("ub.icrc")][1]
    excluded = set()
    for o, ln, _first in fr.icrc_masks or ():
        excluded.update(range(o, o + ln))
    tph = fr.tph_start
    for lay, off, size in lays:
        if lay not in HEADERS or (tph is not None and off >= tph):
            continue
        h = HEADERS[lay]
        for name in steering_fields(lay):
            excluded.update(_field_bytes(h, name, off))
    ranges: list = []
    for b in range(start, icrc_at + 4):
        if b in excluded:
            continue
        if ranges and ranges[-1][1] == b * 8:
            ranges[-1][1] = b * 8 + 8
        else:
            ranges.append([b * 8, b * 8 + 8])
    return [tuple(r) for r in ranges], True


# -- congestion marks ------------------------------------------------------------------------------
_RTP_DATA_OPC, _UTP_OPC = 1, 0      # TPOpcode (UB 2.0 §6.2.1 Table 6-2)
_CNA_SIZES = {6: HEADERS["ub.cna16"].size, 9: HEADERS["ub.cna16"].size,
              7: HEADERS["ub.cna24"].size}
_CCI_AT = {6: 4, 9: 4, 7: 6}            # the CCI's byte offset in the NTH (UB 2.0 §5.2.1)
_NTH_IP_SIZE = HEADERS["ub.nth"].size   # the IP-form NTH, its CCI at byte 0 (§5.2.3)


def _tp_data(opc_byte: int) -> bool:
    return (opc_byte & 0x7F) in (_RTP_DATA_OPC, _UTP_OPC)


def _mark_target(frame, linktype: int, profile: Profile):
    """Where ``mark`` sets the congestion mark of ``frame``: ``("ecn", IPv4 header offset,
    False)``, ``("caqm"|"fecn", CCI offset, little-endian)``, or None (not a data frame, already
    marked, a reserved CCI mode, or a layout this reader does not know)."""
    n = len(frame)
    if linktype == LINKTYPE_ETHERNET:
        off = 14
        if n < 18:
            return None
        etype = frame[12] << 8 | frame[13]
        if etype == 0x8100:
            etype, off = frame[16] << 8 | frame[17], 18
        if etype != 0x0800 or n < off + 20 or frame[off] >> 4 != 4 or frame[off + 9] != 17:
            return None
        udp = off + (frame[off] & 0x0F) * 4
        if n < udp + 9 or (frame[udp + 2] << 8 | frame[udp + 3]) not in profile.ub_udp_ports:
            return None
        if not _tp_data(frame[udp + 8]) or frame[off + 1] & 3 == 3:
            return None
        return ("ecn", off, False)
    if linktype != LINKTYPE_UB or n < 4 or profile.lph_rt_swapped:
        return None
    cfg = frame[1] & 0x0F
    if cfg == 3:
        # the native IP form (UB 2.0 §5.2.3): LPH, the IP-form NTH (its CCI first), IPv4, UDP
        off = 4 + _NTH_IP_SIZE
        if n < off + 20 or frame[off] >> 4 != 4 or frame[off + 9] != 17:
            return None
        udp = off + (frame[off] & 0x0F) * 4
        if n < udp + 9 or not _tp_data(frame[udp + 8]):
            return None
        at, le = 4, False
    else:
        return _cna_mark_target(frame, cfg, n, profile)
    word = int.from_bytes(frame[at:at + 2], "little" if le else "big")
    return _cci_target(word, at, le)


def _cci_target(word: int, at: int, le: bool):
    """The mark a CCI ``word`` at ``at`` takes in its mode (UB 2.0 §5.3.5), or None."""
    mode = word >> 13
    if mode == 0:
        return None if word & 0x0200 else ("caqm", at, le)
    if mode in (2, 4):
        return None if word & 3 == 3 else ("fecn", at, le)
    return None


def _cna_mark_target(frame, cfg: int, n: int, profile: Profile):
    size = _CNA_SIZES.get(cfg)
    if size is None or n < 5 + size:
        return None
    tp = 4 + size
    if cfg != 9:
        nlp = frame[tp - 1] & 7
        if nlp == 2:
            if not _tp_data(frame[tp]):
                return None
        elif nlp != 0 or frame[tp] >> 6 != 0:              # CTPH: CTP data only
            return None
    at = 4 + _CCI_AT[cfg]
    le = bool(profile.cna_little_endian)
    word = int.from_bytes(frame[at:at + 2], "little" if le else "big")
    return _cci_target(word, at, le)


# -- the injector ----------------------------------------------------------------------------------
class FaultInjector:
    """Faults on one link direction (see the module doc).  ``push(frame, now)`` offers a frame;
    ``pop(now)`` gives the frames to put on the link by ``now``; ``next_deadline()``.  ``link``,
    ``src``, ``dst`` name the direction in the ledger (the simulator sets them); ``linktype``
    says how to decode frames (1 UBoE, 148 native UB).  ``script``: ``{kind: frame numbers}``
    (``loss``, ``duplicate``, ``reorder``, ``corrupt``, ``mark``; frames counted from 1 as they are
    pushed) fires those faults on exactly those frames, besides the random ones.  ``seed``
    (int or str; default the spec's, else 0) seeds one stream per fault kind.  ``stats`` counts
    frames and faults by kind."""

    def __init__(self, spec=None, seed: int | str | None = None, *, link: str = "link",
                 src: str | None = None, dst: str | None = None,
                 linktype: int = LINKTYPE_ETHERNET, ledger: Ledger | None = None,
                 profile: Profile = SPEC, script: dict | None = None):
        self.spec = sp = FaultSpec.parse(spec)
        self.script = {k: frozenset(v) for k, v in (script or {}).items()}
        unknown = set(self.script) - set(_SCRIPTABLE)
        if unknown:
            raise ValueError(f"script: unknown fault kinds {sorted(unknown)}")
        self.seed = seed if seed is not None else (sp.seed or 0)
        self.link, self.src, self.dst = link, src, dst
        self.linktype = linktype
        self.profile = profile
        self.ledger = ledger if ledger is not None else Ledger()
        self._rng = {k: random.Random(f"{self.seed}:{k}")
                     for k in ("loss", "duplicate", "reorder", "corrupt", "jitter", "mark")}
        self._model = sp.loss_model()
        self._bad = False                   # Gilbert-Elliott state
        self._rules = [[compile_filter(t), t, n, 0] for t, n in sp.drop]
        # [release, seq, frame, original, reorder fault to hold it (or False), jitter fault]
        self._heap: list = []
        self._seq = 0
        self._busy = 0                      # end of the last serialisation (rate)
        self._held: deque = deque()   # [frame, frames still to overtake it, deadline, fault]
        self.stats = {"frames": 0, "passed": 0}

    def attach(self, *, link=None, src=None, dst=None, linktype=None, ledger=None) -> None:
        """Name the direction and share a ledger (the simulator calls this)."""
        if link is not None:
            self.link = link
        if src is not None:
            self.src = src
        if dst is not None:
            self.dst = dst
        if linktype is not None:
            self.linktype = linktype
        if ledger is not None:
            self.ledger = ledger

    def _fault(self, now: int, kind: str, frame, detail: dict | None = None,
               summary: dict | None = None):
        self.stats[kind] = self.stats.get(kind, 0) + 1
        return self.ledger.record(now, self.link, kind, frame, linktype=self.linktype,
                                  summary=summary, detail=detail, src=self.src, dst=self.dst)

    # -- the decisions ---------------------------------------------------------------------------
    def _lost(self) -> tuple[bool, dict]:
        m = self._model
        if m is None:
            return False, {}
        rng = self._rng["loss"]
        if m[0] == "bernoulli":
            return rng.random() < m[1], {}
        _, p, r, h1, k1 = m
        state = self._bad
        lost = rng.random() < (h1 if state else k1)
        if rng.random() < (r if state else p):
            self._bad = not state
        return lost, {"model": "burst" if self.spec.burst is not None else "ge",
                      "state": "bad" if state else "good"}

    def _corrupt(self, frame, now: int) -> bytes:
        sp = self.spec
        rng = self._rng["corrupt"]
        data = bytes(frame)
        fr = dissect(data, self.linktype, self.profile)
        summary = summary_from_record(fr.layers, fr.fields, len(data))
        ranges, detectable = corruptible_bits(data, self.linktype, sp.corrupt_region,
                                              self.profile, fr)
        total = sum(b - a for a, b in ranges)
        if total == 0:
            return data
        k = rng.randint(1, min(sp.corrupt_bits, total))
        picks = sorted(rng.sample(range(total), k))
        out = bytearray(data)
        bits = []
        for x in picks:
            for a, b in ranges:
                if x < b - a:
                    pos = a + x
                    break
                x -= b - a
            out[pos >> 3] ^= 0x80 >> (pos & 7)
            bits.append(pos)
        self._fault(now, "corrupt", data, {"bits": bits, "region": sp.corrupt_region,
                                           "detectable": detectable}, summary)
        return bytes(out)

    def _mark(self, frame, target, now: int) -> bytes:
        """Set the congestion mark ``target`` (from :func:`_mark_target`) in a copy of
        ``frame``."""
        out = bytearray(frame)
        kind, off, le = target
        if kind == "ecn":
            was = out[off + 1] & 3
            out[off + 1] |= 3
            ihl = (out[off] & 0x0F) * 4
            out[off + 10:off + 12] = b"\0\0"
            ck = sum(int.from_bytes(out[i:i + 2], "big") for i in range(off, off + ihl, 2))
            while ck >> 16:
                ck = (ck & 0xFFFF) + (ck >> 16)
            out[off + 10:off + 12] = (~ck & 0xFFFF).to_bytes(2, "big")
            detail = {"field": "ip.ecn", "was": was}
        else:
            order = "little" if le else "big"
            word = int.from_bytes(out[off:off + 2], order)
            new = word | (0x0200 if kind == "caqm" else 3)
            out[off:off + 2] = new.to_bytes(2, order)
            detail = {"field": "cci.c" if kind == "caqm" else "cci.fecn", "was": word}
        self._fault(now, "mark", frame, detail)
        return bytes(out)

    # -- the link calls --------------------------------------------------------------------------
    def push(self, frame, now: int) -> None:
        sp = self.spec
        self.stats["frames"] += 1
        for t0, t1 in sp.blackout:
            if t0 <= now < t1:
                self._fault(now, "blackout", frame, {"window": [t0, t1]})
                return
        idx = self.stats["frames"]
        script = self.script
        if self._model is not None or "loss" in script:
            lost, detail = self._lost()
            if idx in script.get("loss", ()):
                lost, detail = True, {"model": "script"}
            if lost:
                self._fault(now, "loss", frame, detail)
                return
        if self._rules:
            data = bytes(frame)
            fr = dissect(data, self.linktype, self.profile)
            rec = make_record(self.stats["frames"], now / 1e9, len(data), len(data),
                              self.linktype, fr.layers, fr.fields, fr.issues)
            hit = None
            for rule in self._rules:
                if rule[0](rec):
                    rule[3] += 1
                    if hit is None and (rule[2] is None or rule[3] == rule[2]):
                        hit = rule
            if hit is not None:
                self._fault(now, "drop", frame, {"filter": hit[1], "match": hit[3]},
                            summary_from_record(fr.layers, fr.fields, len(data)))
                return
        dup = bool(sp.duplicate) and self._rng["duplicate"].random() < sp.duplicate
        dup = dup or idx in script.get("duplicate", ())
        out = frame
        if sp.mark or "mark" in script:
            target = _mark_target(frame, self.linktype, self.profile)
            if target is not None and ((sp.mark and self._rng["mark"].random() < sp.mark)
                                       or idx in script.get("mark", ())):
                out = self._mark(frame, target, now)
        if ((sp.corrupt and self._rng["corrupt"].random() < sp.corrupt)
                or idx in script.get("corrupt", ())):
            out = self._corrupt(out, now)
        held = bool(sp.reorder) and self._rng["reorder"].random() < sp.reorder
        held = held or idx in script.get("reorder", ())
        if held:
            held = self._fault(now, "reorder", frame, {"gap": sp.gap, "cause": "reorder",
                                                       "overtaken_by": []})
        self._schedule(out, frame, now, held)
        if dup:
            self._fault(now, "duplicate", frame)
            self._schedule(frame, frame, now, False)

    def _overtaker(self, frame, now: int) -> dict:
        s = summarize(frame, self.linktype)
        d = {k: s[k] for k in ("mode", "tpopcode", "srctpn", "psn") if k in s}
        d["at"] = now
        return d

    def _schedule(self, frame, original, now: int, held) -> None:
        """``held``: False, or the reorder fault of a frame to hold back."""
        sp = self.spec
        release = now
        if sp.rate:
            start = self._busy if self._busy > now else now
            self._busy = release = start + -(-len(frame) * 8 * 1_000_000_000 // sp.rate)
        release += sp.delay
        if sp.jitter:
            release = max(now, release + round(self._rng["jitter"].uniform(-sp.jitter,
                                                                          sp.jitter)))
            me = None
            for e in self._heap:
                if e[0] > release and not e[4]:
                    if me is None:
                        me = self._overtaker(original, now)
                    if not e[5]:
                        e[5] = self._fault(now, "reorder", e[3], {
                            "cause": "jitter", "late_by": e[0] - release, "overtaken_by": []})
                    e[5].detail["overtaken_by"].append(me)
        self._seq += 1
        heapq.heappush(self._heap, [release, self._seq, frame, original, held, False])

    def pop(self, now: int) -> list:
        out: list = []
        heap, held = self._heap, self._held
        while True:
            t_heap = heap[0][0] if heap else None
            t_held = held[0][2] if held else None
            if t_held is not None and t_held <= now and (t_heap is None or t_held <= t_heap):
                out.append(held.popleft()[0])
                continue
            if t_heap is None or t_heap > now:
                break
            e = heapq.heappop(heap)
            if e[4]:
                held.append([e[2], self.spec.gap, e[0] + self.spec.hold, e[4]])
                continue
            out.append(e[2])
            if held:
                me = self._overtaker(e[3], now)
                for h in held:
                    h[1] -= 1
                    h[3].detail["overtaken_by"].append(me)
            while held and held[0][1] <= 0:
                out.append(held.popleft()[0])
        self.stats["passed"] += len(out)
        return out

    def next_deadline(self) -> int | None:
        t = self._heap[0][0] if self._heap else None
        if self._held and (t is None or self._held[0][2] < t):
            t = self._held[0][2]
        return t

    def pending(self) -> int:
        """Frames inside the injector (delayed or held)."""
        return len(self._heap) + len(self._held)
