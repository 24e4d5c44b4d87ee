"""SQL over an exported dataset (``ubpkt query``): the table ``frames`` and ready-made views that
reproduce ``ubpkt stats``.

The views are plain SQL files (``ubpkt/analytics/sql/<name>.sql``), one ``SELECT`` each, written
with ANSI window functions only so that they run unchanged on DuckDB (embedded, the default) and
Spark SQL (the distributed export registers the same text as temporary views).  The constants
they need come from ubpkt's own tables, never from copies: the RTP data TPOpcodes
(``ubpkt.formats.grammar.TP_PAIRS``, UB 2.0 §6.2.1), the request -> response TA opcodes
(``TA_PAIRS``, UB 2.0 §7.2.1-2), the PSN space (``ubpkt.views.analysis.PSN_SPACE``) and the
address choice of the analysis (IP, else IPv6, else the CNA of the UB link header).  They are
filled in by :func:`view_sql` (``$name`` placeholders, :class:`string.Template`); ``ubpkt query
--show-sql NAME`` prints the rendered text.

Where the SQL and ``ubpkt.views.analysis`` may differ (documented in docs/analytics.md):

* PSNs are unwrapped against the previous packet of the channel; analysis.py compares with the
  highest PSN.  Both agree while successive PSNs of a channel stay within half the PSN space
  (8M) of each other and of the highest one.
* analysis.py bounds its state (``AnalysisLimits``: remembered gaps, open transactions,
  channels) and stats its tables (``MAX_ROWS``, the first 100k samples for percentiles); the
  SQL has no bound, so both agree until a bound is reached.
* A response is checked against the latest request of its key, analysis.py against the pending
  one (the first request not yet answered); they differ only when a key's request is repeated
  with another opcode or requester context while the first is still unanswered.
* A repeated header (its values in ``extra_fields``) is not read; analysis.py takes the first.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from . import require

__all__ = ["VIEWS", "View", "view_sql", "view_script", "view_params", "frames_source", "connect",
           "run_query", "QueryError", "DEFAULT_INTERVAL_NS", "ADDR_SRC", "ADDR_DST"]

#: Bucket width of the ``io`` view unless ``--interval`` says otherwise (stats io's default).
DEFAULT_INTERVAL_NS = 1_000_000

#: The addresses of a frame as ubpkt's analysis picks them (``analysis.endpoints``): IPv4, else
#: IPv6, else the CNAs of the UB link header (16-bit form, else 24-bit), as text.
ADDR_SRC = ("COALESCE(ip_src, ipv6_src, CAST(cna16_scna AS STRING), "
            "CAST(cna24_scna AS STRING))")
ADDR_DST = ("CASE WHEN COALESCE(ip_src, ipv6_src) IS NOT NULL THEN COALESCE(ip_dst, ipv6_dst) "
            "ELSE COALESCE(CAST(cna16_dcna AS STRING), CAST(cna24_dcna AS STRING)) END")


@dataclass(frozen=True)
class View:
    """A ready-made view: ``name``, what it ``answers`` (one line), the view names it reads
    (``needs``, created first), and for ``--plot`` its time axis and value column
    (``plot_x``/``plot_y``; ``plot_kind`` "step", "points" or "hist")."""
    name: str
    answers: str
    needs: tuple = ()
    plot_x: str | None = None
    plot_y: str | None = None
    plot_kind: str = "step"


#: The views, in creation order (a view only reads ``frames`` and views before it).
VIEWS = {v.name: v for v in (
    View("psn_analysis", "per RTP data packet: PSN gap, backwards, out of order, "
         "retransmission, duplicate (decode -2's ub.analysis.psn_*)",
         plot_x="ts_ns", plot_y="psn", plot_kind="points"),
    View("psn_channels", "per TP channel: packets, gaps, missing, retransmissions, out of "
         "order, duplicates (stats)", ("psn_analysis",)),
    View("ta_events", "requests and responses keyed by initiator, target, INI_TASSN, with "
         "the pending request of each (helper of latency/transactions)"),
    View("latency", "per matched request/response pair: opcode, initiator, target, "
         "INI_RC_ID, INI_TASSN, response_time_ns", ("ta_events",),
         plot_x="response_time_ns", plot_kind="hist"),
    View("transactions", "per capture: responses, unanswered requests, unmatched responses "
         "(stats)", ("ta_events",)),
    View("srt", "per request opcode: count, min/avg/max, p50/p90/p99 response time "
         "(stats srt)", ("ta_events", "latency")),
    View("conversations", "per address pair and TP channel: packets, bytes, start, "
         "duration (stats conv)"),
    View("endpoints", "per address: packets, bytes, start, duration (stats endpoints)"),
    View("io", "per capture and interval: frames, bytes, error frames (stats io; "
         "--interval)", plot_x="start_ns", plot_y="frames"),
)}


class QueryError(Exception):
    """A query failed: ``kind`` is ``"query"`` (the SQL is wrong: syntax, unknown table or
    column, type mismatch found before running; exit 2), ``"input"`` (no dataset there: exit
    2, as for a missing capture) or ``"runtime"`` (it failed while running, e.g. an unreadable
    file; exit 1)."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


def _ints(values) -> str:
    return ", ".join(str(v) for v in sorted(values))


def view_params(interval_ns: int = DEFAULT_INTERVAL_NS) -> dict:
    """The ``$name`` values of the view SQL, from ubpkt's grammar tables."""
    from ..formats.grammar import TA_PAIRS, TP_PAIRS, ta_response_opcode
    from ..views.analysis import PSN_SPACE
    if int(interval_ns) <= 0:
        raise ValueError("the io interval must be a positive number of ns")
    no_taack = [op for op in TA_PAIRS if ta_response_opcode(op, 1) is None]
    response_of = "CASE c_op " + " ".join(
        f"WHEN {op} THEN {TA_PAIRS[op]}" for op in sorted(TA_PAIRS)) + " END"
    return {"src": ADDR_SRC, "dst": ADDR_DST,
            "tp_data_opcodes": _ints(TP_PAIRS),
            "psn_space": str(PSN_SPACE), "psn_half": str(PSN_SPACE // 2),
            "ta_request_opcodes": _ints(TA_PAIRS),
            "ta_response_opcodes": _ints(set(TA_PAIRS.values())),
            "ta_no_taack_opcodes": _ints(no_taack),
            "response_of_c_op": response_of,
            "interval_ns": str(int(interval_ns))}


def _sql_text(name: str) -> str:
    return resources.files(__package__).joinpath("sql", f"{name}.sql").read_text()


def view_sql(name: str, interval_ns: int = DEFAULT_INTERVAL_NS) -> str:
    """The rendered ``SELECT`` of view ``name`` (KeyError for an unknown one): the text DuckDB
    and Spark SQL both run, reading ``frames`` and the views it ``needs``."""
    if name not in VIEWS:
        raise KeyError(name)
    return Template(_sql_text(name)).substitute(view_params(interval_ns)).strip()


def view_script(name: str, interval_ns: int = DEFAULT_INTERVAL_NS) -> str:
    """Statements that create view ``name`` and the views it reads, in order, as
    ``CREATE OR REPLACE TEMPORARY VIEW ... AS ...;`` (DuckDB and Spark SQL both take it; the
    engine must have ``frames`` first).  ``ubpkt query --show-sql NAME`` prints it."""
    order = [n for n in VIEWS if n in VIEWS[name].needs] + [name]
    return "\n\n".join(f"CREATE OR REPLACE TEMPORARY VIEW {n} AS\n{view_sql(n, interval_ns)};"
                        for n in order) + "\n"


def frames_source(dataset) -> str:
    """DuckDB's table expression of a dataset: a directory (every ``*.parquet`` below it, hive
    partition columns added) or one Parquet file."""
    p = Path(dataset)
    if not p.exists():
        raise QueryError(f"{dataset}: no such file or directory", "input")
    if p.is_dir():
        if not any(p.rglob("*.parquet")):
            raise QueryError(f"{dataset}: no .parquet files in this directory", "input")
        pattern = str(p / "**" / "*.parquet")
        hive = "true"
    else:
        pattern, hive = str(p), "false"
    quoted = pattern.replace("'", "''")
    return f"read_parquet('{quoted}', hive_partitioning={hive}, union_by_name=true)"


def _classify(exc) -> QueryError:
    """A DuckDB exception as a :class:`QueryError` of kind query or runtime."""
    duckdb = require("duckdb", "ubpkt query")
    bad_query = tuple(getattr(duckdb, n) for n in (
        "ParserException", "CatalogException", "BinderException", "SyntaxException",
        "InvalidInputException", "NotImplementedException") if hasattr(duckdb, n))
    text = " ".join(str(exc).split())
    kind = "query" if isinstance(exc, bad_query) else "runtime"
    if "No files found" in text or isinstance(exc, getattr(duckdb, "IOException", ())):
        kind = "runtime"
    return QueryError(text, kind)


def connect(dataset, interval_ns: int = DEFAULT_INTERVAL_NS):
    """An in-memory DuckDB connection with ``frames`` (the dataset) and every view of
    :data:`VIEWS` created (views are lazy: nothing is read until a query runs)."""
    duckdb = require("duckdb", "ubpkt query")
    source = frames_source(dataset)
    con = duckdb.connect(":memory:")
    try:
        # DuckDB's progress bar writes over the terminal the result goes to
        con.execute("SET enable_progress_bar = false")
        con.execute(f"CREATE VIEW frames AS SELECT * FROM {source}")
    except duckdb.Error as exc:
        con.close()
        err = _classify(exc)
        raise QueryError(f"{dataset}: cannot read the dataset: {err}", "runtime") from exc
    missing = _UNAVAILABLE[id(con)] = {}      # (a new connection may reuse an old id)
    for name in VIEWS:
        try:
            con.execute(f"CREATE VIEW {name} AS {view_sql(name, interval_ns)}")
        except duckdb.Error as exc:
            # a dataset without a column a view reads (another schema version, a foreign
            # file): the view is left out, and a query naming it is told why
            missing[name] = " ".join(str(exc).split())[:200]
    return con


#: id(connection) -> {view: why it could not be created}
_UNAVAILABLE: dict = {}


_VIEW_NAME = re.compile(r"^[a-z_]+$")


def run_query(con, sql: str):
    """Run ``sql`` on ``con``: ``(columns, rows, seconds)``, rows as tuples of Python values.
    Raises :class:`QueryError`."""
    duckdb = require("duckdb", "ubpkt query")
    t0 = time.perf_counter()
    try:
        cur = con.execute(sql)
        if cur.description is None:
            return [], [], time.perf_counter() - t0
        cols = [d[0] for d in cur.description]
        rows = cur.fetchall()
    except duckdb.Error as exc:
        err = _classify(exc)
        for name, why in _UNAVAILABLE.get(id(con), {}).items():
            if re.search(rf"\b{name}\b", sql):
                err = QueryError(f"{err} (view {name} is not available on this dataset: "
                                 f"{why})", err.kind)
                break
        raise err from exc
    return cols, rows, time.perf_counter() - t0


def view_query(name: str) -> str:
    """The SQL ``--view NAME`` runs: every row of the view in a stable order."""
    if not _VIEW_NAME.match(name) or name not in VIEWS:
        raise KeyError(name)
    order = {"psn_analysis": "capture, frame", "psn_channels": "packets DESC, capture, src, "
             "dst, srctpn, dsttpn", "ta_events": "capture, frame",
             "latency": "capture, response_frame", "transactions": "capture",
             "srt": "opcode", "conversations": "bytes DESC, capture, type, a, a_tpn, b, b_tpn",
             "endpoints": "bytes DESC, capture, address", "io": "capture, bucket"}[name]
    return f"SELECT * FROM {name} ORDER BY {order}"
