"""`ubpkt export` and ``export_capture`` (issue 15): the dataset holds the decoder's records
exactly, row by row, read back with pyarrow, DuckDB and a plain ``read_table``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import assert_same_rows, dataset_records, reference_records

pq = pytest.importorskip("pyarrow.parquet")

from ubpkt.analytics.export import ExportDamaged, export_capture, plan_segments  # noqa: E402
from ubpkt.analytics.partition import PartitionRule  # noqa: E402
from ubpkt.analytics.traffic import write_samples, write_varied  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    p = tmp_path_factory.mktemp("varied") / "varied.pcap"
    write_varied(p, 3000)
    return str(p)


def _bundled():
    return sorted(str(p) for p in (ROOT / "captures").glob("*.pcap"))


def test_bundled_captures_row_by_row(tmp_path):
    for cap in _bundled():
        paths = export_capture(cap, tmp_path)
        assert paths == [str(tmp_path / (os.path.basename(cap) + ".parquet"))]
        assert_same_rows(dataset_records(paths), reference_records(cap))


def test_interop_captures_row_by_row(tmp_path, ns3_dir):
    caps = sorted(str(p) for p in Path(ns3_dir).glob("*.pcap"))
    assert caps
    for cap in caps:
        paths = export_capture(cap, tmp_path)
        assert_same_rows(dataset_records(paths), reference_records(cap))


def test_generated_capture_with_payload_and_small_row_groups(tmp_path, varied):
    paths = export_capture(varied, tmp_path, payload=True, row_group=700)
    md = pq.read_metadata(paths[0])
    assert md.num_rows == 3000 and md.num_row_groups == 5
    assert md.row_group(0).column(0).compression == "ZSTD"
    assert_same_rows(dataset_records(paths), reference_records(varied, payload=True))


def test_grammar_samples_of_every_link_type(tmp_path):
    caps = write_samples(tmp_path / "caps")
    for cap in caps:
        paths = export_capture(cap, tmp_path / "out")
        assert_same_rows(dataset_records(paths), reference_records(cap))


def test_segments_give_the_same_rows(tmp_path, varied):
    segs = plan_segments(varied, 4)
    assert len(segs) == 4 and segs[0].first_frame == 1
    assert sum(s.length for s in segs) == os.path.getsize(varied) - 24
    paths = []
    for s in segs:
        paths += export_capture(varied, tmp_path, segment=s)
    assert len(paths) == 4
    assert_same_rows(dataset_records(paths), reference_records(varied))
    with pytest.raises(ValueError):
        export_capture(varied, tmp_path, segment=segs[0], analysis=True)


def test_analysis_columns_match_decode_two_pass(tmp_path):
    from ubpkt.capture.stream import iter_records
    from ubpkt.views.analysis import Analyzer, first_pass
    cap = str(ROOT / "captures" / "uboe_transactions.pcap")
    paths = export_capture(cap, tmp_path, analysis=True)
    got = dataset_records(paths)
    linked = first_pass(iter_records(cap, exact_time=True))
    an = Analyzer(linked=linked)
    want = []
    for rec in iter_records(cap, exact_time=True):
        rec["_t"] = (rec["_tns"][0],)
        an.add(rec)
        want.append({k: v for k, v in rec["fields"].items() if k.startswith("ub.analysis.")})
    assert any(want)
    assert [{k: v for k, v in r["fields"].items() if k.startswith("ub.analysis.")}
            for r in got] == want
    meta = pq.read_schema(paths[0]).metadata
    assert meta[b"ubpkt.analysis"] == b"capture"


def test_damaged_capture_exports_readable_frames(tmp_path, varied):
    data = Path(varied).read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:len(data) - 50])
    with pytest.raises(ExportDamaged) as exc:
        export_capture(str(cut), tmp_path / "out")
    want = reference_records(str(cut))
    assert_same_rows(dataset_records(exc.value.paths), want)
    assert exc.value.problems


def test_partitions_by_node_port_date(tmp_path, varied):
    import shutil
    a = tmp_path / "n1_p3_cap.pcap"
    shutil.copy(varied, a)
    rule = PartitionRule(("node", "port", "date"), pattern="{node}_{port}_*.pcap")
    paths = export_capture(str(a), tmp_path / "ds", rule=rule)
    assert paths == [str(tmp_path / "ds" / "node=n1" / "port=p3" / "date=2023-11-14" /
                         "n1_p3_cap.pcap.parquet")]
    csv = tmp_path / "map.csv"
    csv.write_text("capture,node,port\nn1_p3_cap.pcap,sw7,12\n")
    rule = PartitionRule.from_csv(("node", "port"), csv)
    paths = export_capture(str(a), tmp_path / "ds2", rule=rule)
    assert "node=sw7/port=12/" in paths[0]
    with pytest.raises(ValueError):
        PartitionRule(("node",))


def _duckdb_count(glob):
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    return con.execute(f"select count(*), sum(frame), sum(rtph_psn), count(distinct ip_src) "
                       f"from read_parquet('{glob}', hive_partitioning=true)").fetchone()


def test_cli_dataset_reads_in_duckdb_pyarrow_and_read_table(tmp_path, varied):
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    caps = _bundled() + [varied]
    out = tmp_path / "ds"
    report = tmp_path / "r.json"
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "ubpkt_cli", "export", *caps, "-o", str(out),
                        "--partition-by", "date", "--segment-size", "100k", "-j", "2",
                        "--report", str(report)], capture_output=True, text=True, env=env,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res == json.loads(report.read_text())
    want = sum(len(reference_records(c)) for c in caps)
    assert res["rows"] == want
    by_cap = {os.path.basename(e["capture"]): e for e in res["captures"]}
    assert len(by_cap["varied.pcap"]["files"]) > 1          # segmented
    t = ds.dataset(str(out), format="parquet", partitioning="hive").to_table()
    assert t.num_rows == want
    n, sframe, spsn, nip = _duckdb_count(f"{out}/**/*.parquet")
    assert n == want
    assert sframe == pc.sum(t["frame"]).as_py()
    assert spsn == pc.sum(t["rtph_psn"]).as_py()
    assert nip == len(pc.unique(pc.drop_null(t["ip_src"])))
    plain = pq.read_table(by_cap["varied.pcap"]["files"][0])
    assert plain.num_rows > 0 and "date" not in plain.column_names


def test_cli_missing_pyarrow_message(tmp_path):
    code = ("import sys; sys.modules['pyarrow'] = None\n"
            "from ubpkt_cli.main import main\n"
            f"main(['export', {str(_bundled()[0])!r}, '-o', {str(tmp_path / 'x')!r}])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == \
        "Error: ubpkt export needs pyarrow: pip install 'ubpkt[analytics]'"


def test_cli_bad_arguments(tmp_path):
    cap = _bundled()[0]
    r = subprocess.run([sys.executable, "-m", "ubpkt_cli", "export", cap, "-o", str(tmp_path),
                        "--partition-by", "node"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "ubpkt_cli", "export", str(tmp_path / "nope.pcap"),
                        "-o", str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr


def test_writer_settings_dictionary_text_statistics_numbers(tmp_path, varied):
    """Dictionary pages for text columns only, min/max statistics for numeric columns and
    ``capture`` (export.writer_options): set in the file, the schema unchanged."""
    from ubpkt.analytics.schema import arrow_schema
    (path,) = export_capture(varied, tmp_path)
    f = pq.ParquetFile(path)
    assert f.schema_arrow.remove_metadata().equals(arrow_schema().remove_metadata())
    rg = f.metadata.row_group(0)
    cols = {rg.column(i).path_in_schema: rg.column(i) for i in range(rg.num_columns)}
    assert any("DICTIONARY" in e for e in cols["ip_src"].encodings)
    assert any("DICTIONARY" in e for e in cols["rtph_tpopcode_name"].encodings)
    assert not any("DICTIONARY" in e for e in cols["rtph_psn"].encodings)
    stats = cols["ts_ns"].statistics
    assert stats is not None and stats.has_min_max
    assert stats.min <= stats.max
    assert cols["capture"].statistics.has_min_max
    assert cols["ip_src"].statistics is None or not cols["ip_src"].statistics.has_min_max


def test_frame_columns_with_and_without_time():
    """Frames without a time (None) keep a null ts_ns next to exact ones, rows added one by
    one and in blocks (the numeric frame columns go through numpy when they can)."""
    from ubpkt.analytics.rows import BatchBuilder
    b = BatchBuilder("c.pcap")
    rec = {"frame": 1, "len": 60, "caplen": 60, "linktype": 1, "layers": ["eth"],
           "fields": {}, "issues": []}
    b.add(rec, None)
    b.add_frames([(2, 1_700_000_000_123_456_789, 70, 64, 1, "eth", ())])
    b.add(dict(rec, frame=3), 5)
    batch = b.flush()
    assert batch.column(batch.schema.get_field_index("ts_ns")).to_pylist() == [
        None, 1_700_000_000_123_456_789, 5]
    assert batch.column(batch.schema.get_field_index("frame")).to_pylist() == [1, 2, 3]
    assert batch.column(batch.schema.get_field_index("cap_len")).to_pylist() == [60, 64, 60]
