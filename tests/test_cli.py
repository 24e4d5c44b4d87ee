import json

from click.testing import CliRunner

from ubpkt.views.filter import FilterError, compile_filter
from ubpkt_cli.main import main


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def test_decode_formats(sample_captures):
    cap = sample_captures / "uboe_transactions.pcap"
    r = run("decode", "-T", "ndjson", cap)
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in r.output.splitlines()]
    assert recs[0]["frame"] == 1 and recs[0]["layers"][:3] == ["eth", "ip", "udp"]
    assert set(recs[0]) >= {"frame", "time", "len", "caplen", "layers", "fields", "issues"}
    r = run("decode", "-T", "json", cap)
    assert json.loads(r.output)[2]["fields"]["ub.btah.taopcode_name"] == "Read"
    r = run("decode", "-T", "fields", "-e", "frame", "-e", "ub.rtph.psn", "-e", "ub.atah.status",
            "-Y", "ub.rtph.tpopcode == 1 && ub.btah.taopcode_name == Write", cap)
    lines = r.output.splitlines()
    assert lines[0] == "1\t0\t" and lines[1] == "2\t1\t"
    r = run("decode", "-T", "fields", "-e", "ub.nope", cap)
    assert r.exit_code == 2
    r = run("decode", "-T", "tree", "-c", "1", cap)
    assert "ub.rtph.psn = 0" in r.output and "Frame 1:" in r.output
    r = run("decode", cap)
    assert len(r.output.splitlines()) == 23


def test_decode_errors_are_one_line(tmp_path):
    r = run("decode", tmp_path / "missing.pcap")
    assert r.exit_code != 0 and "Traceback" not in r.output
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    r = run("decode", bad)
    assert r.exit_code == 2 and "not a pcap" in r.output
    r = run("decode", "-Y", "ub.lph.cfg ==", bad)
    assert r.exit_code == 2


def test_link_type_override_and_stats(sample_captures, ns3_dir):
    r = run("decode", "--link-type", "ub", "-T", "ndjson", ns3_dir / "caseC_switch2_port0_tx.pcap")
    rec = json.loads(r.output.splitlines()[0])
    assert rec["layers"][0] == "ub.lph"  # spec profile, not the ns-3 dialect
    r = run("stats", "--json", ns3_dir / "caseB_switch2_port0_tx.pcap")
    st = json.loads(r.output)
    assert st["frames"] == 106
    assert any(o["opcode"] == "CNP" for o in st["opcodes"])
    r = run("stats", sample_captures / "uboe_transactions.pcap")
    assert r.exit_code == 0 and "TP channels" in r.output


def test_filter_language():
    rec = {"frame": 3, "len": 10, "caplen": 10, "time": 0.0, "layers": ["ub.lph"],
           "fields": {"ub.lph.cfg": 6, "ub.rtph.psn": [1, 5], "ub.icrc.status": "good"},
           "issues": [{"severity": "warning"}]}
    assert compile_filter("ub.lph.cfg == 6 and not ub.btah.taopcode")(rec)
    assert compile_filter("ub.rtph.psn == 5 || ub.btah.taopcode")(rec)
    assert not compile_filter("(ub.lph.cfg != 6) or ub.icrc.status == bad")(rec)
    assert compile_filter("warnings == 1 && errors == 0 && frame >= 0x3")(rec)
    for bad in ("", "==", "ub.a ==", "(ub.a", "ub.a == 1 )"):
        try:
            compile_filter(bad)
        except FilterError:
            continue
        raise AssertionError(bad)


def test_parallel_ndjson_is_identical(sample_captures, ns3_dir, monkeypatch):
    import ubpkt.capture.parallel as par
    import ubpkt_cli.decode_cmd as dc
    monkeypatch.setattr(par, "SEGMENT", 300)
    monkeypatch.setattr(dc, "_FORCE_SMALL_PARALLEL", True)
    used = []
    real = par.ndjson_chunks

    def spy(*a, **k):
        used.append(1)
        yield from real(*a, **k)
    monkeypatch.setattr(par, "ndjson_chunks", spy)
    for cap in (sample_captures / "uboe_transactions.pcap", ns3_dir / "caseB_switch2_port0_tx.pcap"):
        one = run("decode", "-T", "ndjson", "-j", "1", cap)
        two = run("decode", "-T", "ndjson", "-j", "2", cap)
        assert one.exit_code == two.exit_code == 0
        assert one.output == two.output and one.output.count("\n") > 20
    assert len(used) == 2


def test_ndjson_count_and_fast_path_agree(sample_captures):
    cap = sample_captures / "ub_native.pcap"
    full = run("decode", "-T", "ndjson", cap).output.splitlines()
    first3 = run("decode", "-T", "ndjson", "-c", "3", cap).output.splitlines()
    assert len(full) == 24 and first3 == full[:3]
    filtered = run("decode", "-T", "ndjson", "-Y", "frame >= 0", cap).output.splitlines()
    assert filtered == full


def test_parallel_workers_write_in_order(sample_captures, ns3_dir, tmp_path, monkeypatch):
    import os

    import ubpkt.capture.parallel as par
    from ubpkt.capture.stream import iter_ndjson
    monkeypatch.setattr(par, "SEGMENT", 200)
    for cap in (sample_captures / "uboe_transactions.pcap", ns3_dir / "caseA_host0_port0_tx.pcap"):
        out = tmp_path / (cap.name + ".ndjson")
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            par.write_ndjson(cap, fd, None, None, 2)
        finally:
            os.close(fd)
        assert out.read_bytes() == b"".join(iter_ndjson(cap))


def test_random_records_never_break_the_cli(tmp_path):
    import os
    import random
    import struct
    rnd = random.Random(11)
    for lt in (1, 147, 148, 149, 105):
        p = tmp_path / f"r{lt}.pcap"
        with open(p, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, lt))
            for i in range(60):
                d = bytearray(os.urandom(rnd.randint(0, 120)))
                if len(d) > 2 and rnd.random() < 0.5:
                    d[1] = rnd.choice([0, 3, 4, 5, 6, 7, 9])
                f.write(struct.pack("<IIII", 0, i, len(d), len(d)) + bytes(d))
        for args in (["-T", "ndjson"], ["-T", "tree"], ["-T", "json"], ["-T", "summary"],
                     ["-T", "fields", "-e", "ub.lph.cfg"], ["-Y", "errors > 0"]):
            r = run("decode", *args, p)
            assert r.exit_code == 0, (lt, args, r.output[-300:])
        assert run("stats", p).exit_code == 0


def test_fields_reference_lists_declared_names():
    r = run("fields", "rtph")
    keys = [line.split("\t")[0] for line in r.output.splitlines()]
    assert "ub.rtph.psn" in keys and "ub.rtph.tpopcode" in keys
    r = run("fields", "--json", "ub.maetah.")
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert {"ub.maetah.address", "ub.maetah.tokenid"} <= {x["field"] for x in rows}
    assert run("fields", "no.such.thing").exit_code == 1
