"""decode/stats as a tshark user expects them (issue 12): filters, fields, options, analysis."""
import json

import pytest
from click.testing import CliRunner

from ubpkt.capture.pcap import PcapWriter
from ubpkt.capture.stream import iter_records
from ubpkt.views.analysis import PSN_SPACE, Analyzer
from ubpkt.views.filter import FilterError, compile_filter
from ubpkt_cli.main import main


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


@pytest.fixture(scope="module")
def cap(sample_captures):
    return sample_captures / "uboe_transactions.pcap"


def frames(r):
    return [int(line.split()[0]) for line in r.output.splitlines() if line.strip()]


def test_unknown_fields_are_errors_naming_the_closest(cap):
    for args in (["-Y", "ub.rtph.pns == 3"], ["-T", "fields", "-e", "ub.rtph.pns"]):
        r = run("decode", *args, cap)
        assert r.exit_code == 2 and "ub.rtph.psn" in r.output, r.output
        assert "Traceback" not in r.output
    r = run("decode", "-Y", "ub.btah.taopcode == Wirte", cap)
    assert r.exit_code == 2 and "Write" in r.output


@pytest.mark.parametrize("expr,expected", [
    ("ub.btah.taopcode == Write", [1, 2, 23]),
    ("ub.btah.taopcode == wRiTe", [1, 2, 23]),
    ("ub.btah.taopcode == 3", [1, 2, 23]),
    ("ub.btah.taopcode in {Read Send}", [3, 9, 22]),
    ("ub.btah.ini_tassn in {2 4..5}", [2, 5, 6]),
    ("ip.src == 192.0.2.1 && frame.number <= 2", [1, 2]),
    ("ip.dst == 192.0.2.0/24 && frame.number == 3", [3]),
    ("ip.addr == 192.0.2.2 && frame.number == 4", [4]),
    ("eth.addr == 02:00:00:00:00:02 && frame.number < 3", [1, 2]),
    ("ub.btah.taopcode_name matches \"^atomic_(store|compare)\"", [12, 13]),
    ("ub.btah.taopcode_name contains \"_be\"", [6]),
    ("frame.len == 150", [1, 8]),
])
def test_filter_language_tshark_forms(cap, expr, expected):
    r = run("decode", "-Y", expr, cap)
    assert r.exit_code == 0, r.output
    assert frames(r) == expected


def test_slices_and_byte_literals(cap):
    recs = list(iter_records(cap))
    data = recs[0]["fields"]["data.data"]
    first2 = data[:2] + ":" + data[2:4]
    assert compile_filter(f"data.data[0:2] == {first2}")(recs[0])
    assert compile_filter(f"data.data[0-1] == {first2}")(recs[0])
    assert not compile_filter(f"data.data[1:2] == {first2}")(recs[0])
    assert compile_filter(f"data.data contains {data[4:6]}:{data[6:8]}")(recs[0])
    assert compile_filter("eth.src[0] == 02")(recs[0])
    with pytest.raises(FilterError):
        compile_filter("frame.len[0:1] == 1")


WIRESHARK_FIELDS = ["frame.number", "frame.len", "frame.cap_len", "frame.time_epoch",
                    "frame.time_relative", "frame.time_delta", "frame.time_delta_displayed",
                    "frame.protocols", "eth.src", "eth.dst", "eth.addr", "eth.type",
                    "ip.src", "ip.dst", "ip.addr", "ip.proto", "ip.ttl", "ip.len", "ip.id",
                    "ip.checksum", "ip.dscp", "ip.flags",
                    "udp.srcport", "udp.dstport", "udp.port", "udp.length", "udp.checksum"]


def test_wiresharks_own_carrier_names_work_in_Y_and_e(cap):
    for name in WIRESHARK_FIELDS:
        r = run("decode", "-T", "fields", "-e", name, "-c", "1", cap)
        assert r.exit_code == 0 and r.output.strip(), (name, r.output)
        r = run("decode", "-Y", name, "-c", "1", cap)
        assert r.exit_code == 0 and frames(r) == [1], (name, r.output)
    r = run("decode", "-T", "fields", "-e", "frame.number", "-e", "frame.len", "-e",
            "frame.cap_len", "-e", "udp.port", "-e", "ip.addr", "-c", "1", cap)
    assert r.output == "1\t150\t150\t49152,4792\t192.0.2.1,192.0.2.2\n"
    r = run("decode", "-Y", "frame.time_relative >= 0.000002 && frame.time_delta == 0.000001",
            "-c", "5", cap)
    assert frames(r) == [3, 4, 5]


def test_fields_lists_every_key_decode_emits(sample_captures, ns3_dir):
    from ubpkt.dissect import decode
    from ubpkt.encode import encode_layers
    from ubpkt.formats.samples import samples
    from ubpkt.profile import NS3, SPEC
    listed = {line.split("\t")[0] for line in run("fields").output.splitlines()}
    keys = set()
    for p in [*sample_captures.glob("*.pcap"), *ns3_dir.glob("*.pcap")]:
        for rec in iter_records(p):
            keys |= set(rec.get("fields", ()))
    for prof in (SPEC, NS3):
        for lt, p, layers in samples(prof):
            keys |= set(decode(encode_layers(layers, p), lt, p)["fields"])
    recs = [json.loads(x) for x in run("decode", "-2", "-T", "ndjson",
                                       sample_captures / "uboe_transactions.pcap").output.split("\n") if x]
    keys |= {k for r in recs for k in r["fields"]}
    assert any(k.startswith("ub.analysis.") for k in keys)
    assert len(keys) > 300 and keys <= listed, sorted(keys - listed)


def _pcap(path, frames_, nanosecond):
    with PcapWriter(path, 1, nanosecond=nanosecond) as w:
        for t, data in frames_:
            w.write(data, t)


def test_time_formats_from_integer_ns(cap, tmp_path):
    recs = list(iter_records(cap, raw=True))
    t0 = 1_700_000_000_123_456_789
    ns = tmp_path / "ns.pcap"
    us = tmp_path / "us.pcap"
    _pcap(ns, [(t0 + i * 1001, r["_raw"]) for i, r in enumerate(recs[:3])], True)
    _pcap(us, [(t0 + i * 1001, r["_raw"]) for i, r in enumerate(recs[:3])], False)
    r = run("decode", "-t", "e", ns)
    assert r.output.split()[1] == "1700000000.123456789"
    r = run("decode", "-t", "e", us)
    assert r.output.split()[1] == "1700000000.123456"
    r = run("decode", "-t", "d", ns)
    assert [line.split()[1] for line in r.output.splitlines()] == \
        ["0.000000000", "0.000001001", "0.000001001"]
    r = run("decode", "-t", "ud", us, "-c", "1")
    assert "2023-11-14 22:13:20.123456" in r.output
    r = run("decode", "-T", "fields", "-e", "frame.time_epoch", "-c", "1", "-r", ns)
    assert r.output == "1700000000.123456789\n"


def test_write_keeps_link_type_resolution_and_records(cap, tmp_path, sample_captures):
    out = tmp_path / "w.pcap"
    r = run("decode", "-Y", "ub.btah.taopcode == Write", "-w", out, cap)
    assert r.exit_code == 0 and r.output == ""
    again = list(iter_records(out, exact_time=True))
    orig = [x for x in iter_records(cap, exact_time=True)
            if x["fields"].get("ub.btah.taopcode") == 3]
    strip = lambda x: {k: v for k, v in x.items() if k != "frame"}
    assert [strip(a) for a in again] == [strip(b) for b in orig] and len(again) == 3
    native = sample_captures / "ub_native.pcap"
    r = run("decode", "-w", out, native)
    assert list(iter_records(out))[0]["linktype"] == 148


def test_E_header_separator_quote_occurrence(cap):
    r = run("decode", "-T", "fields", "-e", "frame.number", "-e", "ip.addr", "-E",
            "header=y,separator=,", "-E", "quote=d", "-E", "occurrence=f", "-c", "1", cap)
    assert r.output.splitlines() == ['"frame.number","ip.addr"', '"1","192.0.2.1"']
    r = run("decode", "-T", "fields", "-e", "frame", "-E", "bogus=1", cap)
    assert r.exit_code == 2
    assert run("decode", "-l", "-n", "-c", "2", cap).output.count("\n") == 2


def test_V_tree_offsets_hex_enums_and_x(cap):
    r = run("decode", "-V", "-x", "-c", "1", cap)
    out = r.output
    assert "IPv4 [ip] @14, 20 bytes" in out and "UDP [udp] @34, 8 bytes" in out
    assert "ub.btah.taopcode = Write (3)" in out
    assert "ip.checksum = 0x" in out
    assert "0000  02 00 00 00 00 02 02 00  00 00 00 01 08 00" in out


def test_request_response_linking(cap):
    r = run("decode", "-2", "-T", "fields", "-e", "frame", "-e", "ub.analysis.response_in",
            "-e", "ub.analysis.request_in", "-e", "ub.analysis.response_time", "-e",
            "ub.analysis.no_response", "-Y", "frame in {3 4 14 15 16}", cap)
    rows = [line.split("\t") for line in r.output.splitlines()]
    assert rows[0] == ["3", "4", "", "", ""]
    assert rows[1] == ["4", "", "3", "0.000001", ""]
    assert rows[2][:2] == ["14", "15"] and rows[3][2] == "14"
    r = run("decode", "-Y", "ub.analysis.request_in == 3", cap)
    assert frames(r) == [4]


def _rtp(psns, f=None):
    recs = []
    for i, p in enumerate(psns, 1):
        recs.append({"frame": i, "time": i * 1e-6, "len": 80, "caplen": 80, "layers": [],
                     "issues": [], "fields": {"ip.src": "10.0.0.1", "ip.dst": "10.0.0.2",
                                              "ub.rtph.tpopcode": 1, "ub.rtph.srctpn": 1,
                                              "ub.rtph.dsttpn": 2, "ub.rtph.psn": p}})
    return recs


def test_psn_analysis_wrap_gap_retransmission_duplicate():
    top = PSN_SPACE - 1
    an = Analyzer()
    got = [an.add(r) for r in _rtp([top - 1, top, 0, 1, 4, 2, 2, 3, 1, 5])]
    assert got[:4] == [{}, {}, {}, {}]           # the wrap to 0 is in order
    assert got[4] == {"ub.analysis.psn_gap": 2}
    assert got[5]["ub.analysis.out_of_order"] == 1
    assert got[6]["ub.analysis.retransmission"] == 1 and got[6]["ub.analysis.duplicate"] == 1
    assert got[7]["ub.analysis.out_of_order"] == 1
    assert got[8]["ub.analysis.retransmission"] == 1 and got[8]["ub.analysis.psn_backwards"] == 3
    assert got[9] == {}


def test_stats_wrap_is_not_a_gap_and_top_n(tmp_path):
    from ubpkt.views.stats import CaptureStats
    st = CaptureStats()
    for r in _rtp([PSN_SPACE - 2, PSN_SPACE - 1, 0, 1, 2] * 1):
        st.add(r)
    assert st.to_json()["channels"][0]["gaps"] == 0
    st = CaptureStats()
    for k in range(30):
        for r in _rtp(range(k + 1)):
            r["fields"]["ub.rtph.srctpn"] = k
            st.add(r)
    j = st.to_json(5)
    assert len(j["channels"]) == 5 and j["channels"][0]["packets"] == 30
    assert j["channels_total"]["channels"] == 30 and j["channels_total"]["packets"] == 465


def test_stats_tables(cap, tmp_path):
    j = json.loads(run("stats", "conv", "--json", cap).output)
    assert j["rows"][0]["packets"] == 22 and j["rows"][0]["type"] == "address pair"
    assert any(r["type"] == "TP channel" for r in j["rows"])
    j = json.loads(run("stats", "endpoints", "--json", cap).output)
    assert {tuple(r["key"]) for r in j["rows"]} >= {("192.0.2.1",), ("192.0.2.2",)}
    j = json.loads(run("stats", "io", "--interval", "5us", "--json", cap).output)
    assert [r["frames"] for r in j["rows"]][:2] == [5, 5] and j["interval_ns"] == 5000
    assert sum(r["frames"] for r in j["rows"]) == 23
    j = json.loads(run("stats", "srt", "--json", cap).output)
    ops = {r["opcode"]: r for r in j["rows"]}
    assert ops["Read"]["count"] == 1 and ops["Read"]["min_ns"] == 1000
    j = json.loads(run("stats", "expert", "--json", cap).output)
    assert any("missing TAACK" in r["message"] for r in j["rows"])
    r = run("stats", "io", "--interval", "0ms", cap)
    assert r.exit_code == 2
    rep = tmp_path / "s.json"
    assert run("stats", "--report", rep, cap).exit_code == 0 and json.loads(rep.read_text())
    assert run("stats", "bogus", cap).exit_code == 2


def test_follow(cap):
    r = run("follow", "--tassn", "3", cap)
    assert "2 frames followed" in r.output and "request_in=3" in r.output
    r = run("follow", "--channel", "192.0.2.2,192.0.2.1,32,16", cap)
    assert r.exit_code == 0 and "13 frames followed" in r.output
    assert run("follow", cap).exit_code == 2


def test_io_plot_png(cap, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed: --plot has nothing to draw with")
    png = tmp_path / "io.png"
    assert run("stats", "io", "--interval", "2us", "--plot", png, cap).exit_code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
