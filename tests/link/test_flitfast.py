"""Flit-stream decoding on the fast path against the reference, record by record and ndjson
byte for byte: clean and corrupted streams, CRC and non-CRC mode, pcap and raw sources, with
the compiled walk and with its Python twin."""
import random
import sys

import pytest

from ubpkt.capture import PcapWriter
from ubpkt.dissect.flitstream import decode_flit_stream, flit_stream_ndjson
from ubpkt.link import fill_plength, frame_packet
from ubpkt.profile import SPEC
from ubpkt.record import LINKTYPE_FLITS
from ubpkt.views.output import to_json_bytes

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_fastdeframe import backend, stream_of  # noqa: E402,F401  (fixture)

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/../captures")


def native_kinds():
    """The sample network packets of every CFG (captures/make_captures.py), DLLDPs only."""
    from make_captures import native_packets
    from ubpkt.encode import encode_layers
    pk = [encode_layers(p) for p in native_packets()]
    return [p for p in pk if p[1] & 0x0F]


def check(stream, crc_mode, chunk=1 << 16):
    ref = list(decode_flit_stream(stream, SPEC, crc_mode=crc_mode, fast=False))
    fast = list(decode_flit_stream(stream, SPEC, crc_mode=crc_mode, chunk_size=chunk))
    assert len(fast) == len(ref)
    for a, b in zip(ref, fast):
        assert a == b
    lines = b"".join(flit_stream_ndjson(stream, SPEC, crc_mode=crc_mode, chunk_size=chunk))
    assert lines == b"".join(to_json_bytes(r) for r in ref)
    return ref


@pytest.mark.parametrize("crc_mode", [True, False])
def test_sample_packets_of_every_cfg(backend, crc_mode):
    pk = native_kinds()
    stream = b"".join(frame_packet(fill_plength(p, crc_mode), crc_mode) for p in pk * 3)
    recs = check(stream, crc_mode)
    assert len(recs) == 3 * len(pk)
    assert all(r["fields"]["ub.dll.kind"] == "DLLDP" and len(r["layers"]) > 3 for r in recs)


@pytest.mark.parametrize("crc_mode", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_random_streams_clean_and_corrupted(backend, crc_mode, seed):
    rng = random.Random(seed)
    stream = stream_of(rng, 50, crc_mode, big=seed % 2 == 0)
    check(bytes(stream), crc_mode, chunk=rng.choice((20, 500, 1 << 16)))
    for _ in range(rng.randrange(1, 20)):          # bad BCRC, PLENGTH, LBH, END, padding
        stream[rng.randrange(len(stream))] ^= 1 << rng.randrange(8)
    del stream[rng.randrange(len(stream) - 40, len(stream)):]      # truncated
    recs = check(bytes(stream), crc_mode, chunk=rng.choice((20, 500, 1 << 16)))
    assert any(r["issues"] for r in recs)


def test_pcap_source_times(tmp_path, backend):
    """Records of a capture whose records hold one DLLDP, or split one: the fast path's batched
    reads give each unit the time of the record holding its first flit."""
    rng = random.Random(4)
    pk = native_kinds()
    path = tmp_path / "f.pcap"
    with PcapWriter(path, LINKTYPE_FLITS) as w:
        for i in range(60):
            f = frame_packet(fill_plength(rng.choice(pk)))
            if i % 3 == 0 and len(f) > 20:
                w.write(f[:20], 1000 * i)
                w.write(f[20:], 1000 * i + 500)
            else:
                w.write(f, 1000 * i)
    recs = check(str(path), True)
    assert [r["time"] for r in recs] == pytest.approx([1e-6 * i for i in range(60)])


def test_cli_ndjson_equals_the_reference(tmp_path):
    """`ubpkt decode -T ndjson` of a flit stream writes the reference records."""
    from click.testing import CliRunner
    from ubpkt_cli.main import main as cli
    rng = random.Random(8)
    stream = stream_of(rng, 40, True)
    stream[rng.randrange(len(stream))] ^= 4
    path = tmp_path / "s.pcap"
    with PcapWriter(path, LINKTYPE_FLITS) as w:
        w.write(bytes(stream), 5_000_000)
    res = CliRunner().invoke(cli, ["decode", "-q", "-T", "ndjson", str(path)])
    assert res.exit_code == 0, res.output
    want = b"".join(to_json_bytes(r) for r in decode_flit_stream(str(path), fast=False))
    assert res.stdout_bytes == want


@pytest.mark.parametrize("crc_mode", [True, False])
def test_varied_payload_lengths_on_length_free_templates(backend, crc_mode):
    """Native kinds with random payload lengths (one block or several): the packet templates
    vary the length (PLENGTH a relation), the spliced lines equal the reference, clean and with
    a few bits flipped."""
    from make_captures import native_packets
    from ubpkt.encode import encode_layers
    rng = random.Random(21)
    kinds = [k for k in native_packets() if "data" in [n for n, _ in k]]
    pk = []
    for _ in range(120):
        kind = rng.choice(kinds)
        layers = [(n, rng.randbytes(rng.choice((1, 7, 64, rng.randrange(1, 1800))))
                   if n == "data" else s) for n, s in kind]
        pk.append(fill_plength(encode_layers(layers), crc_mode))
    stream = bytearray(b"".join(frame_packet(p, crc_mode) for p in pk))
    recs = check(bytes(stream), crc_mode)
    assert len(recs) == len(pk) and not any(r["issues"] for r in recs)
    for _ in range(12):
        stream[rng.randrange(len(stream))] ^= 1 << rng.randrange(8)
    check(bytes(stream), crc_mode, chunk=rng.choice((500, 1 << 16)))
