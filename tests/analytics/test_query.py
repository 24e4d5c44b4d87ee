"""`ubpkt query` and its views (issue 15): export then query gives what `ubpkt stats` and the
analysis of `decode -2` give, number for number, on the bundled captures, the ns-3-UB interop
captures and a generated capture with loss, duplicates, retransmissions, reordering, missing
and stray responses and a PSN wrap (whole and exported in segments)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pyarrow", reason="pyarrow not installed (pip install 'ubpkt[analytics]')")
pytest.importorskip("duckdb", reason="duckdb not installed (pip install 'ubpkt[analytics]')")

from ubpkt.analytics.export import export_capture, plan_segments  # noqa: E402
from ubpkt.analytics.lossy import write_lossy  # noqa: E402
from ubpkt.analytics.query import VIEWS, connect, run_query, view_query, view_sql  # noqa: E402,E501
from ubpkt.capture.stream import iter_records  # noqa: E402
from ubpkt.formats.grammar import TP_PAIRS  # noqa: E402
from ubpkt.views.analysis import Analyzer  # noqa: E402
from ubpkt.views.stats import CaptureStats, ConvStats, IoStats, SrtStats  # noqa: E402
from ubpkt.views.timefmt import FrameClock  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
IO_INTERVAL = 50_000
PSN_KEYS = ("psn_gap", "psn_backwards", "out_of_order", "retransmission", "duplicate")


def _records(cap):
    clock = FrameClock()
    for rec in iter_records(cap, "auto", None, fast=False, exact_time=True):
        if rec.get("frame") is None:
            break
        clock.stamp(rec)
        yield rec


def stats_reference(cap) -> dict:
    """What `ubpkt stats` (summary, srt, conv, endpoints, io) and the analysis compute."""
    cs, srt, conv, ends, io = (CaptureStats(), SrtStats(), ConvStats(), ConvStats(True),
                               IoStats(IO_INTERVAL))
    an = Analyzer(annotate=False)
    psn, pairs = {}, {}
    for rec in _records(cap):
        for st in (cs, srt, conv, ends, io):
            st.add(rec)
        out = an.add(rec)
        f = rec["fields"]
        if f.get("ub.rtph.tpopcode") in TP_PAIRS and f.get("ub.rtph.psn") is not None:
            psn[rec["frame"]] = {k: out.get(f"ub.analysis.{k}") for k in PSN_KEYS}
        if "ub.analysis.request_in" in out:
            pairs[rec["frame"]] = (out["ub.analysis.request_in"],
                                   out["ub.analysis.response_time_ns"])
    return {"summary": cs.to_json(None), "srt": srt.to_json(None), "conv": conv.to_json(None),
            "endpoints": ends.to_json(None), "io": io.to_json(None), "psn": psn,
            "pairs": pairs}


def _rows(con, sql):
    cols, rows, _ = run_query(con, sql)
    return [dict(zip(cols, r)) for r in rows]


def assert_matches_stats(con, ref, capture):
    """Every view of ``con`` (restricted to ``capture``) against ``stats_reference``."""
    cap = capture.replace("'", "''")
    where = f"WHERE capture = '{cap}'"
    # stats: TP channels
    got = sorted((r["src"] or "None", r["dst"] or "None", r["srctpn"], r["dsttpn"],
                  r["packets"], r["gaps"], r["missing"], r["retransmissions"],
                  r["out_of_order"])
                 for r in _rows(con, f"SELECT * FROM psn_channels {where}"))
    want = sorted((c["src"], c["dst"], c["srctpn"], c["dsttpn"], c["packets"], c["gaps"],
                   c["missing"], c["retransmissions"], c["out_of_order"])
                  for c in ref["summary"]["channels"])
    assert got == want
    # stats: transactions
    tr = _rows(con, f"SELECT responses, unanswered, unmatched_responses FROM transactions "
                    f"{where}")
    want_tr = ref["summary"]["transactions"]
    assert (tr[0] if tr else {"responses": 0, "unanswered": 0,
                              "unmatched_responses": 0}) == want_tr
    # decode -2: PSN findings per packet
    got_psn = {r["frame"]: {k: r[k] for k in PSN_KEYS}
               for r in _rows(con, f"SELECT * FROM psn_analysis {where}")}
    assert got_psn == ref["psn"]
    # decode -2: request/response pairs
    got_pairs = {r["response_frame"]: (r["request_frame"], r["response_time_ns"])
                 for r in _rows(con, f"SELECT * FROM latency {where}")}
    assert got_pairs == ref["pairs"]
    # stats conv / endpoints
    got_conv = sorted(
        ((r["type"], ((r["a"], r["a_tpn"]), (r["b"], r["b_tpn"])) if r["type"] == "TP channel"
          else (r["a"], r["b"])), r["packets"], r["bytes"], r["start_ns"], r["duration_ns"])
        for r in _rows(con, f"SELECT * FROM conversations {where}"))
    want_conv = sorted(
        ((r["type"], tuple(tuple(k) for k in r["key"]) if r["type"] == "TP channel"
          else tuple(r["key"])), r["packets"], r["bytes"], r["start_ns"], r["duration_ns"])
        for r in ref["conv"]["rows"])
    assert got_conv == want_conv
    got_ends = sorted((r["address"], r["packets"], r["bytes"], r["start_ns"], r["duration_ns"])
                      for r in _rows(con, f"SELECT * FROM endpoints {where}"))
    want_ends = sorted((str(r["key"][0]), r["packets"], r["bytes"], r["start_ns"],
                        r["duration_ns"]) for r in ref["endpoints"]["rows"])
    assert got_ends == want_ends
    # stats io (the view has the non-empty intervals)
    got_io = [(r["start_ns"], r["frames"], r["bytes"], r["errors"])
              for r in _rows(con, f"SELECT * FROM io {where} ORDER BY bucket")]
    want_io = [(r["start_ns"], r["frames"], r["bytes"], r["errors"])
               for r in ref["io"]["rows"] if r["frames"]]
    assert got_io == want_io


def assert_srt(con, ref):
    got = _rows(con, "SELECT * FROM srt ORDER BY opcode")
    assert got == ref["srt"]["rows"]


def _captures():
    return sorted(str(p) for p in (ROOT / "captures").glob("*.pcap"))


@pytest.fixture(scope="module")
def lossy(tmp_path_factory):
    p = tmp_path_factory.mktemp("lossy") / "lossy.pcap"
    write_lossy(p, 2500, seed=7)
    return str(p)


@pytest.fixture(scope="module")
def lossy_ref(lossy):
    return stats_reference(lossy)


def _one_capture_dataset(cap, out, segments=1):
    for seg in plan_segments(cap, segments):
        export_capture(cap, out, segment=seg)
    return connect(out, IO_INTERVAL)


@pytest.mark.parametrize("which", ["bundled", "interop"])
def test_views_equal_stats_on_real_captures(tmp_path, which, request):
    if which == "bundled":
        caps = _captures()
    else:
        caps = sorted(str(p) for p in Path(request.getfixturevalue("ns3_dir")).glob("*.pcap"))
    assert caps
    for i, cap in enumerate(caps):
        con = _one_capture_dataset(cap, tmp_path / f"d{i}")
        ref = stats_reference(cap)
        assert_matches_stats(con, ref, os.path.basename(cap))
        assert_srt(con, ref)


def test_lossy_capture_has_every_fault(lossy, lossy_ref):
    """The generated capture exercises what the views compute (else equality proves little)."""
    ref = lossy_ref
    psn = ref["psn"].values()
    for k in PSN_KEYS:
        assert sum(1 for v in psn if v[k]) >= 5, k
    tr = ref["summary"]["transactions"]
    assert tr["responses"] > 1000 and tr["unanswered"] > 10 and tr["unmatched_responses"] > 10
    assert len(ref["srt"]["rows"]) >= 4
    psns = [r["fields"]["ub.rtph.psn"] for r in _records(lossy) if "ub.rtph.psn" in r["fields"]]
    assert max(psns) > (1 << 24) - 300 and min(psns) < 300        # wraps past 2^24


@pytest.mark.parametrize("segments", [1, 4])
def test_views_equal_stats_on_lossy_capture(tmp_path, lossy, lossy_ref, segments):
    con = _one_capture_dataset(lossy, tmp_path / "d", segments)
    if segments > 1:
        assert len(list((tmp_path / "d").glob("*.parquet"))) == 4
    ref = lossy_ref
    assert_matches_stats(con, ref, "lossy.pcap")
    assert_srt(con, ref)


def test_views_keep_captures_apart(tmp_path, lossy, lossy_ref):
    """One dataset of several captures: each capture's rows are its own stats."""
    caps = _captures() + [lossy]
    for cap in caps:
        export_capture(cap, tmp_path / "all")
    con = connect(tmp_path / "all", IO_INTERVAL)
    for cap in caps:
        ref = lossy_ref if cap == lossy else stats_reference(cap)
        assert_matches_stats(con, ref, os.path.basename(cap))


def test_view_sql_is_portable():
    """The rendered views use no DuckDB-only syntax (Spark SQL runs the same text)."""
    duckdb_only = [r"::", r"//", r"\bQUALIFY\b", r"\bEXCLUDE\b", r"\bread_parquet\b",
                   r"\barg_(max|min)\b", r"\blist_\w+\(", r"\bCOLUMNS\(", r"\bUSING SAMPLE\b",
                   r"\bILIKE\b", r"\bstrftime\b", r"\bTRY_CAST\b", r"\$\w", r"\bVARCHAR\b",
                   r"\bHUGEINT\b", r"\bUBIGINT\b", r"\bquantile", r"\bmedian\b",
                   r"\bGROUP BY ALL\b"]
    for name in VIEWS:
        text = view_sql(name, 12345)
        code = "\n".join(line.split("--")[0] for line in text.splitlines())
        for pat in duckdb_only:
            assert not re.search(pat, code, re.I), (name, pat)
        assert code.lstrip().upper().startswith(("SELECT", "WITH"))
    assert "12345" in view_sql("io", 12345)


def test_view_query_orders_every_view(tmp_path):
    export_capture(_captures()[0], tmp_path)
    con = connect(tmp_path)
    for name in VIEWS:
        cols, rows, _ = run_query(con, view_query(name))
        assert cols
    with pytest.raises(KeyError):
        view_query("frames; drop view io")


# -- the command -------------------------------------------------------------------------------

def _cli(*args, env=None, check=None):
    p = subprocess.run([sys.executable, "-m", "ubpkt_cli", *map(str, args)],
                       capture_output=True, text=True, env=env, timeout=300)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stderr)
    return p


def test_cli_query_equals_cli_stats(tmp_path, lossy):
    _cli("export", lossy, "-o", tmp_path / "ds", check=0)
    st = json.loads(_cli("stats", lossy, "--json", "--all", check=0).stdout)
    got = json.loads(_cli("query", tmp_path / "ds", "--view", "psn_channels", "-f", "json",
                          check=0).stdout)
    assert sorted((r["src"], r["dst"], r["srctpn"], r["dsttpn"], r["packets"], r["gaps"],
                   r["missing"], r["retransmissions"], r["out_of_order"]) for r in got) == \
        sorted(tuple(c.values()) for c in st["channels"])
    tr = json.loads(_cli("query", tmp_path / "ds", "select responses, unanswered, "
                         "unmatched_responses from transactions", "--format", "json",
                         check=0).stdout)
    assert tr == [st["transactions"]]
    srt = json.loads(_cli("stats", "srt", lossy, "--json", check=0).stdout)
    rep = tmp_path / "srt.json"
    got = json.loads(_cli("query", tmp_path / "ds", "--view", "srt", "-f", "json", "--report",
                          rep, check=0).stdout)
    assert got == srt["rows"]
    report = json.loads(rep.read_text())
    assert report["rows"] == got and report["row_count"] == len(got)
    io = json.loads(_cli("stats", "io", lossy, "--interval", "100us", "--json",
                         check=0).stdout)
    got = json.loads(_cli("query", tmp_path / "ds", "--view", "io", "--interval", "100us",
                          "-f", "json", check=0).stdout)
    assert [(r["start_ns"], r["frames"], r["bytes"]) for r in got] == \
        [(r["start_ns"], r["frames"], r["bytes"]) for r in io["rows"] if r["frames"]]


def test_cli_formats(tmp_path):
    export_capture(_captures()[0], tmp_path / "ds")
    sql = "select frame, layers, issues from frames order by frame limit 3"
    js = json.loads(_cli("query", tmp_path / "ds", sql, "-f", "json", check=0).stdout)
    assert [r["frame"] for r in js] == [1, 2, 3] and isinstance(js[0]["issues"], list)
    csv_lines = _cli("query", tmp_path / "ds", sql, "-f", "csv", check=0).stdout.splitlines()
    assert csv_lines[0] == "frame,layers,issues" and csv_lines[1].startswith("1,")
    tsv = _cli("query", tmp_path / "ds", sql, check=0).stdout.splitlines()  # a pipe: tsv
    assert tsv[0] == "frame\tlayers\tissues" and tsv[1].split("\t")[0] == "1"
    table = _cli("query", tmp_path / "ds", sql, "-f", "table", check=0).stdout
    assert "layers" in table and "┃" in table or "|" in table
    lv = _cli("query", "--list-views", check=0).stdout
    assert [line.split("\t")[0] for line in lv.splitlines()] == list(VIEWS)
    script = _cli("query", "--show-sql", "srt", "--interval", "2ms", check=0).stdout
    assert script.count("CREATE OR REPLACE TEMPORARY VIEW") == 3      # ta_events, latency, srt
    import duckdb
    con = duckdb.connect()
    con.execute(f"CREATE VIEW frames AS SELECT * FROM read_parquet('{tmp_path}/ds/*.parquet')")
    con.execute(script)
    assert con.execute("SELECT * FROM srt ORDER BY opcode").fetchall() == \
        run_query(connect(tmp_path / "ds"), "SELECT * FROM srt ORDER BY opcode")[1]


def test_cli_errors(tmp_path):
    export_capture(_captures()[0], tmp_path / "ds")
    for sql in ("selec 1", "select nope from frames", "select * from no_such_table"):
        p = _cli("query", tmp_path / "ds", sql, check=2)
        assert len(p.stderr.strip().splitlines()) == 1 and "bad query" in p.stderr
        assert "Traceback" not in p.stderr
    p = _cli("query", tmp_path / "ds", "select cast('x' as integer) from frames", check=1)
    assert len(p.stderr.strip().splitlines()) == 1
    p = _cli("query", tmp_path / "missing", "select 1", check=2)
    assert "no such file" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    _cli("query", empty, "select 1", check=2)
    _cli("query", tmp_path / "ds", "--view", "nope", check=2)
    _cli("query", tmp_path / "ds", "select 1", "--view", "io", check=2)
    _cli("query", tmp_path / "ds", "--view", "io", "--interval", "0", check=2)


def test_cli_without_duckdb(tmp_path):
    """A python where duckdb cannot be imported: the one-line extras message, exit 1."""
    export_capture(_captures()[0], tmp_path / "ds")
    block = tmp_path / "block"
    (block / "duckdb").mkdir(parents=True)
    (block / "duckdb" / "__init__.py").write_text("raise ImportError('blocked for a test')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(block)] + [p for p in
                                                        env.get("PYTHONPATH", "").split(
                                                            os.pathsep) if p])
    p = _cli("query", tmp_path / "ds", "select 1", env=env, check=1)
    assert p.stderr.strip() == ("Error: ubpkt query needs duckdb: "
                                "pip install 'ubpkt[analytics]'")


def test_cli_plot(tmp_path, lossy):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (ubpkt[plot])")
    export_capture(lossy, tmp_path / "ds")
    for args in (["--view", "io", "--interval", "100us"], ["--view", "latency"],
                 ["--view", "psn_analysis"],
                 ["select opcode, count(*) n, avg(response_time_ns) a from latency group by 1"],
                 ["select response_time_ns // 1000 us, count(*) n from latency group by 1 "
                  "order by 1"]):
        png = tmp_path / "p.png"
        if png.exists():
            png.unlink()
        _cli("query", tmp_path / "ds", *args, "--plot", png, "-f", "csv", check=0)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    p = _cli("query", tmp_path / "ds", "select capture from frames limit 1", "--plot",
             tmp_path / "x.png", check=2)
    assert "numeric" in p.stderr


def test_result_values():
    """Values DuckDB gives, as JSON and as text cells."""
    import decimal
    from ubpkt.analytics.result import json_value, text_value, write_tsv
    assert json_value(b"\x01\xff") == "01ff"
    assert json_value(decimal.Decimal("12")) == 12 and json_value(decimal.Decimal("1.5")) == 1.5
    assert json_value([{"severity": "error", "offset": None}]) == \
        [{"severity": "error", "offset": None}]
    assert text_value(None) == "" and text_value([1, 2]) == "[1,2]" and text_value(1 << 70) == \
        str(1 << 70)
    import io
    out = io.StringIO()
    write_tsv(out, ["a", "b"], [("x\ty", None)])
    assert out.getvalue() == "a\tb\nx y\t\n"


def test_views_left_out_when_the_dataset_lacks_their_columns(tmp_path):
    """A Parquet file without the RTP columns: frames still queries, psn views say why not."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ubpkt.analytics.query import QueryError
    pq.write_table(pa.table({"capture": ["x"], "frame": [1], "ts_ns": [5], "len": [60]}),
                   tmp_path / "f.parquet")
    con = connect(tmp_path / "f.parquet")
    assert run_query(con, "SELECT count(*) FROM frames")[1] == [(1,)]
    with pytest.raises(QueryError) as exc:
        run_query(con, "SELECT * FROM psn_channels")
    assert exc.value.kind == "query" and "not available on this dataset" in str(exc.value)
