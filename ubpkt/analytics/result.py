"""A query result as text and pictures (``ubpkt query``): JSON (an array of row objects), CSV,
tab-separated text, and a PNG of its time series or histogram.

Values: integers stay integers (also DuckDB's 128-bit sums), bytes become hex text, decimals
become int or float, lists and structs (the ``issues`` column) become JSON arrays/objects;
NULL is JSON ``null`` and an empty field in CSV/TSV (tshark's ``-T fields`` shows a missing
field as empty).
"""
from __future__ import annotations

import csv
import datetime
import decimal
import json

__all__ = ["json_value", "text_value", "rows_json", "write_json", "write_csv", "write_tsv",
           "plot_result", "numeric_columns"]


def json_value(v):
    """A DuckDB value as a JSON-ready Python value."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): json_value(x) for k, x in v.items()}
    if isinstance(v, (datetime.date, datetime.time, datetime.datetime)):
        return v.isoformat()
    return str(v)


def text_value(v) -> str:
    """A value as one CSV/TSV/table cell (NULL empty; lists and structs as compact JSON)."""
    v = json_value(v)
    if v is None:
        return ""
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def rows_json(columns, rows) -> list:
    """The rows as a list of ``{column: value}`` objects."""
    return [{c: json_value(v) for c, v in zip(columns, r)} for r in rows]


def write_json(out, columns, rows) -> None:
    """A JSON array of row objects, one row per line."""
    out.write("[")
    for i, obj in enumerate(rows_json(columns, rows)):
        out.write(("\n" if i == 0 else ",\n") + json.dumps(obj))
    out.write("\n]\n" if rows else "]\n")


def write_csv(out, columns, rows) -> None:
    """RFC 4180 CSV with a header line."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([text_value(v) for v in r])


def write_tsv(out, columns, rows) -> None:
    """Tab-separated text with a header line (tshark ``-T fields -E header=y``); a tab or
    newline inside a value becomes a space."""
    def clean(s):
        return s.replace("\t", " ").replace("\n", " ")
    out.write("\t".join(clean(c) for c in columns) + "\n")
    for r in rows:
        out.write("\t".join(clean(text_value(v)) for v in r) + "\n")


def _is_number(v) -> bool:
    return isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool)


def numeric_columns(columns, rows) -> list:
    """The columns whose non-null values are all numbers (and that have one)."""
    out = []
    for i, c in enumerate(columns):
        vals = [r[i] for r in rows if r[i] is not None]
        if vals and all(_is_number(v) for v in vals):
            out.append(c)
    return out


def plot_result(path, columns, rows, view=None, series: str | None = None) -> str:
    """Draw the result to a PNG and say what was drawn.  ``view`` (a
    ``ubpkt.analytics.query.View``) gives the axes of a ready-made view: a histogram of its
    ``plot_x`` or ``plot_y`` over ``plot_x`` (a time in ns, shown in seconds from the first),
    one line per ``series`` value (e.g. the capture).  Any other result: the first column on x
    and every other numeric column as a line (bars when x is text).  ValueError when there is
    nothing numeric to draw; ImportError without matplotlib."""
    import importlib
    importlib.import_module("matplotlib").use("Agg")
    plt = importlib.import_module("matplotlib.pyplot")
    idx = {c: i for i, c in enumerate(columns)}
    nums = numeric_columns(columns, rows)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    try:
        if view is not None and view.plot_kind == "hist" and view.plot_x in nums:
            vals = [float(r[idx[view.plot_x]]) for r in rows if r[idx[view.plot_x]] is not None]
            ax.hist(vals, bins=min(100, max(10, len(vals) // 20)))
            ax.set_xlabel(view.plot_x)
            ax.set_ylabel("count")
            what = f"histogram of {view.plot_x} ({len(vals)} values)"
        elif view is not None and view.plot_y and view.plot_x in nums and view.plot_y in nums:
            xi, yi = idx[view.plot_x], idx[view.plot_y]
            groups: dict = {}
            for r in rows:
                key = r[idx[series]] if series in idx else ""
                groups.setdefault(key, []).append((r[xi], r[yi]))
            t0 = min(x for pts in groups.values() for x, _ in pts)
            scale = 1e9 if view.plot_x.endswith("_ns") else 1
            for key, pts in sorted(groups.items(), key=lambda kv: str(kv[0])):
                pts.sort()
                xs = [(x - t0) / scale for x, _ in pts]
                ys = [float(y) for _, y in pts]
                if view.plot_kind == "step":
                    ax.step(xs, ys, where="post", label=str(key) if key != "" else None)
                else:
                    ax.plot(xs, ys, ".", label=str(key) if key != "" else None)
            ax.set_xlabel("time (s)" if scale != 1 else view.plot_x)
            ax.set_ylabel(view.plot_y)
            if len(groups) > 1 and len(groups) <= 12:
                ax.legend(fontsize="small")
            what = f"{view.plot_y} over {view.plot_x} ({len(groups)} series)"
        else:
            if not rows or len(columns) < 2:
                raise ValueError("--plot needs a result with an x column and a numeric column")
            x = columns[0]
            ys = [c for c in nums if c != x]
            if not ys:
                raise ValueError("--plot needs a numeric column besides the first (x) column")
            xs = [r[0] for r in rows]
            if x in nums:
                for c in ys:
                    ax.plot([float(v) for v in xs],
                            [None if r[idx[c]] is None else float(r[idx[c]]) for r in rows],
                            label=c)
            else:
                width = 0.8 / len(ys)
                for k, c in enumerate(ys):
                    ax.bar([i + k * width for i in range(len(xs))],
                           [0 if r[idx[c]] is None else float(r[idx[c]]) for r in rows],
                           width=width, label=c)
                ax.set_xticks(range(len(xs)), [text_value(v) for v in xs], rotation=45,
                              ha="right", fontsize="small")
            ax.set_xlabel(x)
            if len(ys) > 1:
                ax.legend(fontsize="small")
            what = f"{', '.join(ys)} over {x}"
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return what
