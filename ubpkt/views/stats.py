"""Capture statistics over a stream of records, in bounded memory.

* :class:`CaptureStats` (``ubpkt stats FILE``): layers, opcodes, issues by kind, and the PSN
  analysis per TP channel (``ubpkt.views.analysis``: a 24-bit wrap is not a gap), of which the
  top N channels by packets are shown with a total over all of them.
* :class:`ConvStats` (``stats conv`` / ``stats endpoints``, tshark's ``-z conv`` /
  ``-z endpoints``): packets, bytes, first and last time per TP channel and per address pair
  (or per address).
* :class:`IoStats` (``stats io --interval``, ``-z io,stat``): frames and bytes per interval.
* :class:`SrtStats` (``stats srt``, ``-z srt``): service response time per request opcode:
  count, min, avg, max, p50/p90/p99 (from the matched request/response pairs).
* :class:`ExpertStats` (``stats expert``, ``-z expert``): issues by severity and message, with
  the analysis findings (PSN gaps, retransmissions, missing TAACKs).

Every table is bounded: at most ``MAX_ROWS`` keys are kept (the rest counted in an ``other``
row), and each class's ``to_json(limit)`` / ``tables(limit)`` gives the top ``limit`` rows.
Times are integer nanoseconds.
"""
from __future__ import annotations

from collections import Counter

from .analysis import AnalysisLimits, Analyzer, endpoints as frame_endpoints
from .timefmt import seconds_text

__all__ = ["CaptureStats", "ConvStats", "IoStats", "SrtStats", "ExpertStats", "OPCODE_KEYS",
           "MAX_ROWS"]

#: Record keys whose values are counted as "opcodes", per header.
OPCODE_KEYS = ("ub.rtph.tpopcode_name", "ub.ctph.tpopcode_name", "ub.btah.taopcode_name",
               "ub.atah.taopcode_name", "ub.lch.block", "ub.mgmtetah.code_name",
               "ub.cfg5.protocol_name")

_OPCODE_HEADERS = tuple((k, k.rsplit(".", 1)[0].replace("_name", "")) for k in OPCODE_KEYS)

#: Keys kept per table (conversations, endpoints, opcodes in srt): ubpkt's bound on memory.
MAX_ROWS = 65536


def _tns(rec) -> int:
    t = rec.get("_t")
    if t is not None:
        return t[0]
    v = rec.get("time")
    return 0 if v is None else round(v * 1e9)


def _top(items, limit, key):
    rows = sorted(items, key=key, reverse=True)
    return rows if limit is None else rows[:limit]


class CaptureStats:
    """Counters over a stream of records (``ubpkt stats FILE``)."""

    def __init__(self, limits: AnalysisLimits | None = None) -> None:
        self.frames = 0
        self.layers: Counter = Counter()
        self.opcodes: Counter = Counter()
        self.issues: Counter = Counter()
        self.analyzer = Analyzer(limits, annotate=False)
        self._by_template: dict = {}     # template -> frames, counted into layers/issues late
        self._template_ops: dict = {}    # template -> the opcode keys its frames hold
        self._raw_opcodes: dict = {}     # (header, value) -> frames, made text late

    @property
    def channels(self) -> dict:
        return self.analyzer.channels

    def add(self, rec: dict) -> None:
        self.frames += 1
        f = rec["fields"]
        self._count_layout(rec["layers"], rec["issues"], 1)
        for key, header in _OPCODE_HEADERS:
            v = f.get(key)
            if v is not None:
                self.opcodes[(header, str(v))] += 1
        if "ub.rtph.psn" in f or "ub.btah.taopcode" in f or "ub.atah.taopcode" in f:
            self.analyzer.add(rec)

    def add_parts(self, frame: int, time_ns, template, fields, orig_len: int = 0) -> None:
        """One frame from the fast path (``TemplateCache.pick``, see
        ``ubpkt.capture.stream.iter_parts``): ``template`` gives the layers and issues (counted
        once per template at the end), ``fields`` at least the fields stats reads; or
        ``template`` None and ``fields`` the dissector's ``(layers, fields, issues)``.  The same
        counts as :meth:`add` of the record."""
        self.frames += 1
        if template is None:
            layers, fields, issues = fields
            self._count_layout(layers, issues, 1)
            ops = _OPCODE_HEADERS
        else:
            by = self._by_template
            by[template] = by.get(template, 0) + 1
            ops = self._template_ops.get(template)
            if ops is None:
                ops = self._template_ops[template] = tuple(
                    (k, h) for k, h in _OPCODE_HEADERS if k in fields)
        raw = self._raw_opcodes
        for key, header in ops:
            v = fields.get(key)
            if v is not None:
                if v.__class__ is list:      # a repeated header: counted as add() does
                    v = str(v)
                k = (header, v)
                raw[k] = raw.get(k, 0) + 1
        if "ub.rtph.psn" in fields or "ub.btah.taopcode" in fields or \
                "ub.atah.taopcode" in fields:
            self.analyzer.add_fields(frame, 0 if time_ns is None else time_ns, fields)

    def _count_layout(self, layers, issues, n: int) -> None:
        for layer in dict.fromkeys(layers):
            self.layers[layer] += n
        for i in issues:
            k = (i["severity"], i["layer"], i["message"].split(":")[0][:60])
            if k in self.issues or len(self.issues) < MAX_ROWS:
                self.issues[k] += n

    def _settle(self) -> None:
        """Count the layers and issues of the frames the templates decoded."""
        for t, n in self._by_template.items():
            self._count_layout(t.layers, t.issues, n)
        self._by_template.clear()
        for (header, v), n in self._raw_opcodes.items():
            self.opcodes[(header, str(v))] += n
        self._raw_opcodes.clear()

    def _channel_rows(self, limit):
        items = self.analyzer.channels.items()
        return _top(items, limit, key=lambda kv: kv[1]["packets"])

    def to_json(self, limit: int | None = None) -> dict:
        self._settle()
        ch = self.analyzer.channels
        an = self.analyzer
        return {"frames": self.frames, "layers": dict(self.layers),
                "opcodes": [{"header": h, "opcode": o, "count": c}
                            for (h, o), c in sorted(self.opcodes.items())],
                "issues": [{"severity": s, "layer": lay, "kind": k, "count": c}
                           for (s, lay, k), c in sorted(self.issues.items())],
                "channels": [{"src": str(k[0]), "dst": str(k[1]), "srctpn": k[2],
                              "dsttpn": k[3], "packets": v["packets"], "gaps": v["gaps"],
                              "missing": v["missing"], "retransmissions": v["retrans"],
                              "out_of_order": v["ooo"]}
                             for k, v in self._channel_rows(limit)],
                "channels_total": {"channels": len(ch),
                                   "packets": sum(v["packets"] for v in ch.values()),
                                   "gaps": sum(v["gaps"] for v in ch.values()),
                                   "missing": sum(v["missing"] for v in ch.values()),
                                   "evicted": an.evicted["channels"]},
                "transactions": {"responses": an.counts["responses"],
                                 "unanswered": an.open_requests(),
                                 "unmatched_responses": an.counts["unmatched_responses"]}}

    def tables(self, limit, file):
        j = self.to_json(limit)
        yield (f"{file}: {self.frames} frames, layers", ("layer", "frames"),
               sorted(self.layers.items(), key=lambda kv: -kv[1]), None)
        yield ("opcodes", ("header", "opcode", "count"),
               [(o["header"], o["opcode"], o["count"]) for o in j["opcodes"]], None)
        yield ("issues", ("severity", "layer", "kind", "count"),
               [(i["severity"], i["layer"], i["kind"], i["count"]) for i in j["issues"]], None)
        t = j["channels_total"]
        shown = len(j["channels"])
        title = (f"TP channels (RTP data): top {shown} of {t['channels']}" if shown < t["channels"]
                 else "TP channels (RTP data)")
        yield (title, ("src", "dst", "srctpn", "dsttpn", "packets", "psn gaps", "missing",
                       "retrans", "out of order"),
               [(c["src"], c["dst"], c["srctpn"], c["dsttpn"], c["packets"], c["gaps"],
                 c["missing"], c["retransmissions"], c["out_of_order"])
                for c in j["channels"]],
               ("total", "", "", t["channels"], t["packets"], t["gaps"], t["missing"], "", ""))


class ConvStats:
    """Conversations (TP channels and address pairs) or endpoints (addresses).  A conversation's
    key is its two ends in sorted order; ``packets_ab``/``bytes_ab`` count what the first end
    sent, ``packets_ba``/``bytes_ba`` what the second sent (a TP channel: RTPH frames, both
    directions, data and TP responses)."""

    def __init__(self, endpoints: bool = False) -> None:
        self.endpoints = endpoints
        self.rows: dict = {}
        self.other = {"packets": 0, "bytes": 0}

    def _bump(self, key, kind, n, t, forward: bool = True) -> None:
        row = self.rows.get(key)
        if row is None:
            if len(self.rows) >= MAX_ROWS:
                self.other["packets"] += 1
                self.other["bytes"] += n
                return
            row = self.rows[key] = {"kind": kind, "packets": 0, "bytes": 0, "first": t,
                                    "last": t, "ab": [0, 0], "ba": [0, 0]}
        row["packets"] += 1
        row["bytes"] += n
        row["last"] = t
        way = row["ab"] if forward else row["ba"]
        way[0] += 1
        way[1] += n

    def add(self, rec: dict) -> None:
        self._add(rec["fields"], rec["len"], _tns(rec))

    def add_parts(self, frame: int, time_ns, template, fields, orig_len: int) -> None:
        """One frame from the fast path (see :meth:`CaptureStats.add_parts`): the same rows as
        :meth:`add` of its record."""
        if template is None:
            fields = fields[1]
        self._add(fields, orig_len, 0 if time_ns is None else time_ns)

    def _add(self, f: dict, n: int, t: int) -> None:
        src, dst = frame_endpoints(f)
        if src is None:
            return
        if self.endpoints:
            self._bump((src,), "address", n, t)
            if dst is not None and dst != src:
                self._bump((dst,), "address", n, t)
            return
        a, b = sorted((str(src), str(dst)))
        self._bump((a, b), "address pair", n, t, a == str(src))
        stpn, dtpn = f.get("ub.rtph.srctpn"), f.get("ub.rtph.dsttpn")
        if stpn is not None:
            me = (str(src), stpn)
            ends = sorted((me, (str(dst), dtpn)), key=str)
            self._bump(tuple(ends), "TP channel", n, t, ends[0] == me)

    def to_json(self, limit=None) -> dict:
        rows = _top(self.rows.items(), limit, key=lambda kv: kv[1]["bytes"])
        out = []
        for key, v in rows:
            row = {"key": [list(k) if isinstance(k, tuple) else k for k in key],
                   "type": v["kind"], "packets": v["packets"], "bytes": v["bytes"],
                   "start_ns": v["first"], "duration_ns": v["last"] - v["first"]}
            if not self.endpoints:
                row.update(packets_ab=v["ab"][0], bytes_ab=v["ab"][1],
                           packets_ba=v["ba"][0], bytes_ba=v["ba"][1])
            out.append(row)
        return {"kind": "endpoints" if self.endpoints else "conversations", "rows": out,
                "total_rows": len(self.rows), "other": self.other}

    def tables(self, limit, file):
        j = self.to_json(limit)
        ways = () if self.endpoints else ("packets_ab", "bytes_ab", "packets_ba", "bytes_ba")
        rows = [(" <-> ".join(",".join(map(str, k)) if isinstance(k, list) else str(k)
                              for k in r["key"]), r["type"], r["packets"], r["bytes"],
                 *(r[w] for w in ways), seconds_text(r["duration_ns"])) for r in j["rows"]]
        title = "endpoints" if self.endpoints else "conversations"
        heads = () if self.endpoints else ("pkts A->B", "bytes A->B", "pkts B->A", "bytes B->A")
        yield (f"{file}: {title} (top {len(rows)} of {j['total_rows']} by bytes)",
               ("key", "type", "packets", "bytes", *heads, "duration s"), rows, None)


class IoStats:
    """Frames and bytes per interval (the I/O graph)."""

    def __init__(self, interval_ns: int) -> None:
        self.interval = interval_ns
        self.first = None
        self.buckets: dict = {}

    def add(self, rec: dict) -> None:
        self._add(_tns(rec), rec["len"], rec["issues"])

    def add_parts(self, frame: int, time_ns, template, fields, orig_len: int) -> None:
        """One frame from the fast path (see :meth:`CaptureStats.add_parts`)."""
        self._add(0 if time_ns is None else time_ns, orig_len,
                  fields[2] if template is None else template.issues)

    def _add(self, t: int, n: int, issues) -> None:
        if self.first is None:
            self.first = t
        i = (t - self.first) // self.interval
        b = self.buckets.get(i)
        if b is None:
            if len(self.buckets) >= MAX_ROWS * 16:
                return
            b = self.buckets[i] = [0, 0, 0]
        b[0] += 1
        b[1] += n
        if issues and any(x["severity"] == "error" for x in issues):
            b[2] += 1

    def _series(self):
        if not self.buckets:
            return []
        last = max(self.buckets)
        return [(i, *self.buckets.get(i, (0, 0, 0))) for i in range(0, last + 1)]

    def to_json(self, limit=None) -> dict:
        rows = self._series()
        return {"interval_ns": self.interval,
                "rows": [{"start_ns": i * self.interval, "frames": f, "bytes": b, "errors": e}
                         for i, f, b, e in rows]}

    def tables(self, limit, file):
        rows = [(f"{seconds_text(i * self.interval)}-{seconds_text((i + 1) * self.interval)}",
                 f, b, e) for i, f, b, e in self._series()]
        yield (f"{file}: I/O per {seconds_text(self.interval)} s",
               ("interval s", "frames", "bytes", "error frames"), rows, None)

    def plot(self, path) -> None:
        """The I/O graph as a PNG; matplotlib is optional (the ``plot`` extra): ImportError
        when it is missing."""
        import importlib
        importlib.import_module("matplotlib").use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
        s = self._series()
        fig, ax = plt.subplots(figsize=(8, 3))
        ax.step([i * self.interval / 1e9 for i, *_ in s], [f for _, f, _b, _e in s], where="post")
        ax.set_xlabel("time (s)")
        ax.set_ylabel(f"frames per {seconds_text(self.interval)} s")
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def _percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, round(p / 100 * (len(sorted_vals) - 1))))
    return sorted_vals[k]


class SrtStats:
    """Service response time per request opcode (from the transaction analysis).  Keeps at most
    ``keep`` samples per opcode (a reservoir of the first ones: the percentiles are over them;
    min, max and the mean are over all)."""

    def __init__(self, keep: int = 100_000) -> None:
        self.an = Analyzer(annotate=False)
        self.keep = keep
        self.ops: dict = {}

    def add(self, rec: dict) -> None:
        f = rec["fields"]
        if "ub.btah.taopcode" not in f and "ub.atah.taopcode" not in f:
            return
        self._add(rec["frame"], _tns(rec), f)

    def add_parts(self, frame: int, time_ns, template, fields, orig_len: int = 0) -> None:
        """One frame from the fast path (see :meth:`CaptureStats.add_parts`)."""
        if template is None:
            fields = fields[1]
        if "ub.btah.taopcode" in fields or "ub.atah.taopcode" in fields:
            self._add(frame, 0 if time_ns is None else time_ns, fields)

    def _add(self, frame: int, t: int, f: dict) -> None:
        before = len(self.an.srt)
        self.an.add_fields(frame, t, f)
        if len(self.an.srt) > before:
            op, dt = self.an.srt.pop()
            s = self.ops.setdefault(op, {"n": 0, "sum": 0, "min": dt, "max": dt, "samples": []})
            s["n"] += 1
            s["sum"] += dt
            s["min"] = min(s["min"], dt)
            s["max"] = max(s["max"], dt)
            if len(s["samples"]) < self.keep:
                s["samples"].append(dt)

    def to_json(self, limit=None) -> dict:
        rows = []
        for op, s in sorted(self.ops.items()):
            v = sorted(s["samples"])
            rows.append({"opcode": op, "count": s["n"], "min_ns": s["min"],
                         "avg_ns": s["sum"] // s["n"], "max_ns": s["max"],
                         "p50_ns": _percentile(v, 50), "p90_ns": _percentile(v, 90),
                         "p99_ns": _percentile(v, 99)})
        return {"rows": rows, "unanswered": self.an.open_requests()}

    def tables(self, limit, file):
        j = self.to_json(limit)
        rows = [(r["opcode"], r["count"], *(seconds_text(r[k]) for k in
                                            ("min_ns", "avg_ns", "max_ns", "p50_ns", "p90_ns",
                                             "p99_ns"))) for r in j["rows"]]
        yield (f"{file}: service response time (s), {j['unanswered']} requests unanswered",
               ("opcode", "count", "min", "avg", "max", "p50", "p90", "p99"), rows, None)


class ExpertStats:
    """Issues by severity and message, and the analysis findings."""

    def __init__(self) -> None:
        self.an = Analyzer(annotate=False)
        self.items: Counter = Counter()

    def add(self, rec: dict) -> None:
        self._add(rec["frame"], rec["issues"], rec["fields"], rec)

    def add_parts(self, frame: int, time_ns, template, fields, orig_len: int = 0) -> None:
        """One frame from the fast path (see :meth:`CaptureStats.add_parts`): a template's
        issues are the frame's."""
        if template is None:
            _, fields, issues = fields
        else:
            issues = template.issues
        self._add(frame, issues, fields, None, time_ns)

    def _add(self, frame, issues, f, rec, time_ns=None) -> None:
        for i in issues:
            k = (i["severity"], i["layer"], i["message"].split(":")[0][:80])
            if k in self.items or len(self.items) < MAX_ROWS:
                self.items[k] += 1
        if "ub.rtph.psn" in f or "ub.btah.taopcode" in f or "ub.atah.taopcode" in f:
            self.an.add_fields(frame, (_tns(rec) if rec is not None else
                                       0 if time_ns is None else time_ns), f)

    def to_json(self, limit=None) -> dict:
        c = self.an.counts
        findings = [("warning", "ub.analysis", "PSN gap (packets not captured)", c["psn_gap"]),
                    ("note", "ub.analysis", "retransmission", c["retransmission"]),
                    ("note", "ub.analysis", "duplicate PSN", c["duplicate"]),
                    ("note", "ub.analysis", "out of order", c["out_of_order"]),
                    ("warning", "ub.analysis", "request without a response (missing TAACK)",
                     self.an.open_requests()),
                    ("warning", "ub.analysis", "response without its request",
                     c["unmatched_responses"])]
        rows = [{"severity": s, "layer": lay, "message": m, "count": n}
                for (s, lay, m), n in self.items.items()]
        rows += [{"severity": s, "layer": lay, "message": m, "count": n}
                 for s, lay, m, n in findings if n]
        order = {"error": 0, "warning": 1, "note": 2, "info": 3}
        rows.sort(key=lambda r: (order.get(r["severity"], 9), -r["count"]))
        return {"rows": rows if limit is None else rows[:max(limit, 50)]}

    def tables(self, limit, file):
        j = self.to_json(limit)
        yield (f"{file}: expert information", ("severity", "layer", "message", "count"),
               [(r["severity"], r["layer"], r["message"], r["count"]) for r in j["rows"]], None)
