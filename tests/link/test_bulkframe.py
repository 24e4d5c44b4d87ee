"""`ubpkt link frame` and pcap-fed `ubpkt link deframe` in bulk (ubpkt/link/bulkframe.py)
against the record-by-record reference path (``link_cmd.REFERENCE_PATH``): the same output
bytes and the same message, for every option, on clean and damaged captures (truncated
records and headers, a damaged length, out-of-range time fractions, oversize, tiny, CFG 0 and
non-UB records, both byte orders, micro- and nanosecond pcaps), with the compiled loops and
with their Python twins; the twins against the compiled loops; the PLENGTH table against
``layout`` for every length."""
import random
import struct
import sys

import pytest

from ubpkt.capture import pcap as pcap_mod
from ubpkt.link import bulkframe
from ubpkt.link.framing import Deframer
from ubpkt.link.plength import MAX_PACKET, layout

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from test_fastdeframe import packets, stream_of  # noqa: E402

crc30_mod = sys.modules["ubpkt.link.crc30"]
BACKENDS = [b for b in ("native", "python") if b in crc30_mod.backends()]
NATIVE = crc30_mod._NATIVE


@pytest.fixture(params=BACKENDS)
def backend(request):
    old = crc30_mod.set_backend(request.param)
    yield request.param
    crc30_mod.set_backend(old)


def pcap_bytes(records, *, big=False, nano=True, linktype=148) -> bytes:
    """A classic pcap: ``records`` of (sec, frac, data) or raw bytes (appended as they are)."""
    e = ">" if big else "<"
    out = [struct.pack(e + "IHHiIII", 0xA1B23C4D if nano else 0xA1B2C3D4, 2, 4, 0, 0, 262144,
                       linktype)]
    for r in records:
        if isinstance(r, bytes):
            out.append(r)
            continue
        sec, frac, data = r
        out.append(struct.pack(e + "IIII", sec, frac, len(data), len(data)) + data)
    return b"".join(out)


def odd_packets(rng, crc_mode):
    """Records `link frame` must skip or treat with care, beside ordinary ones."""
    big = MAX_PACKET[crc_mode]
    fill = [640, 1278, 1916] if not crc_mode else [636, 1270]   # non-CRC: exact block fill
    out = []
    for n in [5, 4, 0, 1, big, big + 1, big + 300] + fill:
        head = bytes((rng.randrange(256), rng.choice((3, 5, 9, 0x23)), 0, 0))
        out.append((head + rng.randbytes(max(0, n - 4)))[:n])
    cfg0 = bytearray(rng.randbytes(60))
    cfg0[1] &= 0xF0                                     # CFG 0: a DLLCB's, never a DLLDP's
    out.append(bytes(cfg0))
    out.append(b"\x45\x00" + rng.randbytes(58))         # an IPv4 header: not a UB packet
    return out


def frame_capture_records(rng, crc_mode, n=60):
    pk = packets(rng, n, crc_mode, big=True) + odd_packets(rng, crc_mode)
    rng.shuffle(pk)
    return [(1000 + i, rng.randrange(1_000_000), p) for i, p in enumerate(pk)]


def run_cli(args, reference, monkeypatch):
    from click.testing import CliRunner
    import ubpkt_cli.link_cmd as link_cmd
    from ubpkt_cli.main import main
    monkeypatch.setattr(link_cmd, "REFERENCE_PATH", reference)
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


def both_ways(tmp_path, monkeypatch, cmd, src, extra):
    """The command's output file and message, bulk and reference."""
    got = []
    for ref in (False, True):
        out = tmp_path / f"out-{ref}"
        code, msg = run_cli(["link", cmd, src, "-o", out] + extra, ref, monkeypatch)
        got.append((code, msg.replace(str(out), "OUT"),
                    out.read_bytes() if out.exists() else None))
    return got


# ------------------------------------------------------------------------------------------
# the PLENGTH table and the compiled loops against their twins

@pytest.mark.parametrize("crc_mode", [True, False])
def test_plength_table_is_layout_for_every_length(crc_mode):
    tab = bulkframe.plength_table(crc_mode)
    assert len(tab) == MAX_PACKET[crc_mode] + 1 and list(tab[:5]) == [-1] * 5
    trailer = 4 if crc_mode else 0
    for n in range(5, MAX_PACKET[crc_mode] + 1):
        lay = layout(n, crc_mode)
        p = tab[n]
        assert p == lay.plength, n
        # the block sizes the compiled framer derives from PLENGTH: every block but the last
        # full (640 bytes less header and BCRC), the last the rest
        nb = (p >> 10) + 1
        full = [640 - (4 if i == 0 else 2) - trailer for i in range(nb - 1)]
        assert tuple(full + [n - 4 - sum(full)]) == lay.block_payload, n


@pytest.mark.skipif(NATIVE is None, reason="the C extension ubpkt._linkc is not built")
@pytest.mark.parametrize("crc_mode", [True, False])
@pytest.mark.parametrize("raw", [True, False])
@pytest.mark.parametrize("big,nano", [(False, True), (True, False)])
def test_frame_records_twin(crc_mode, raw, big, nano):
    rng = random.Random(hash((crc_mode, raw, big, nano)) & 0xFFFF)
    recs = frame_capture_records(rng, crc_mode)
    recs.insert(7, (5, 1_000_000_000 if nano else 1_000_000, b"\x00\x03zzzz"))   # odd time
    buf = pcap_bytes(recs, big=big, nano=nano)
    tab = bulkframe.plength_table(crc_mode)
    for eflag in (False, True):
        for room in (1 << 20, 16 + 16 * 640):          # the small one fills up (stop 2)
            res = []
            for fn in (NATIVE.frame_records, bulkframe.frame_records_py):
                out, pos, steps = bytearray(room), 24, []
                while True:
                    pos, stop, records, framed, used = fn(buf, pos, big, nano, crc_mode, eflag,
                                                          True, tab, out, 0, raw, 1 << 26)
                    steps.append((pos, stop, records, framed, bytes(out[:used])))
                    if stop != 2:
                        break
                res.append(steps)
            assert res[0] == res[1]
            assert res[0][-1][1] == 1 and res[0][-1][0] == len(pcap_bytes(recs[:7])) + 0


@pytest.mark.skipif(NATIVE is None, reason="the C extension ubpkt._linkc is not built")
@pytest.mark.parametrize("big,nano", [(False, True), (True, False)])
def test_pcap_payloads_twin(big, nano):
    rng = random.Random(5)
    recs = [(i, rng.randrange(1000), rng.randbytes(rng.choice((0, 1, 20, 333))))
            for i in range(50)]
    buf = pcap_bytes(recs, big=big, nano=nano) + b"\x01\x02"
    res = []
    for fn in (NATIVE.pcap_payloads, bulkframe.pcap_payloads_py):
        stream, marks = bytearray(b"ab"), bytearray()
        r = fn(buf, 24, big, nano, stream, marks, 1 << 26)
        res.append((r, bytes(stream), bytes(marks)))
    assert res[0] == res[1]
    (pos, stop, records), stream, marks = res[0]
    assert (stop, records, pos) == (0, 50, len(buf) - 2)
    assert stream == b"ab" + b"".join(d for _, _, d in recs)
    mk = memoryview(marks).cast("q").tolist()
    assert mk[-3:] == [len(stream), 49, recs[-1][1] * (1 if nano else 1000)]


# ------------------------------------------------------------------------------------------
# `link frame`: bulk = reference

FRAME_OPTIONS = [[], ["--non-crc"], ["--raw"], ["--non-crc", "--raw"], ["--error-flag"],
                 ["--non-crc", "--error-flag", "--raw"], ["--controls"]]


@pytest.mark.parametrize("extra", FRAME_OPTIONS, ids=" ".join)
def test_frame_bulk_equals_reference(tmp_path, monkeypatch, backend, extra):
    rng = random.Random(len(extra) * 7 + 1)
    crc_mode = "--non-crc" not in extra
    recs = frame_capture_records(rng, crc_mode, 40 if "--controls" in extra else 80)
    src = tmp_path / "in.pcap"
    src.write_bytes(pcap_bytes(recs))
    (code, msg, data), ref = both_ways(tmp_path, monkeypatch, "frame", src, extra)
    assert (code, msg, data) == ref
    assert code == 0 and len(data) > 5000 and "skipped" in msg
    if "--controls" not in extra and "--raw" not in extra:
        assert "packets framed" in msg


@pytest.mark.parametrize("damage", ["tail", "header", "fatal", "frac", "usec-big", "ns3",
                                    "time-too-big", "empty"])
@pytest.mark.parametrize("chunk", [None, 777])
def test_frame_damaged_captures(tmp_path, monkeypatch, backend, damage, chunk):
    """Truncated records and headers, a damaged length mid-file, a time fraction out of
    range (kept as the reader gives it), other byte order and unit, linktype 147, no records:
    the same output and message both ways; ``chunk``: the reader's chunk size, so records
    straddle reads."""
    if chunk:
        monkeypatch.setattr(pcap_mod, "_CHUNK", chunk)
    monkeypatch.setattr(bulkframe, "FLUSH_BYTES", 3000)   # at least one largest DLLDP
    rng = random.Random(hash(damage) & 0xFFFF)
    recs = frame_capture_records(rng, True, 50)
    kw = {}
    if damage == "tail":
        body = pcap_bytes(recs)[:-7]
    elif damage == "header":
        body = pcap_bytes(recs) + b"\x01" * 9
    elif damage == "fatal":
        body = pcap_bytes(recs[:20] + [struct.pack("<IIII", 1, 2, 1 << 27, 60) + b"x" * 60]
                          + recs[20:])
    elif damage == "frac":
        recs[10] = (7, 1_500_000_000, recs[10][2])
        recs[30] = (8, 4_294_967_295, recs[30][2])
        body = pcap_bytes(recs)
    elif damage == "usec-big":
        recs[3] = (9, 1_000_000, recs[3][2])
        body = pcap_bytes(recs, big=True, nano=False)
    elif damage == "ns3":
        kw = {"linktype": 147}
        body = pcap_bytes(recs, **kw)
    elif damage == "time-too-big":
        # 2^32 - 1 s and a microsecond fraction past a second: a flit pcap cannot hold it
        recs = [r for r in recs if bulkframe.framable(r[2], True)]
        recs[12] = (4_294_967_295, 4_000_000, recs[12][2])
        body = pcap_bytes(recs, nano=False)
    else:
        body = pcap_bytes([])
    src = tmp_path / "in.pcap"
    src.write_bytes(body)
    for extra in ([], ["--raw"], ["--non-crc"]):
        bulk, ref = both_ways(tmp_path, monkeypatch, "frame", src, extra)
        if damage == "time-too-big" and "--raw" not in extra:
            assert bulk[:2] == ref[:2] and bulk[0] == 1 and "does not fit" in bulk[1]
            continue
        assert bulk == ref, (damage, extra)
        assert bulk[0] == 0
    if damage == "fatal":       # the records before the damaged length, none after
        n = sum(bulkframe.framable(p, False) for _, _, p in recs[:20])
        assert f"{n} packets framed" in bulk[1]


def test_frame_bulk_output_decodes_back(tmp_path, monkeypatch):
    """Not only equal to the reference: every framed packet deframes back to its packet."""
    from ubpkt.link import fill_plength
    rng = random.Random(3)
    recs = frame_capture_records(rng, True, 100)
    src = tmp_path / "in.pcap"
    src.write_bytes(pcap_bytes(recs))
    out = tmp_path / "flits"
    code, _ = run_cli(["link", "frame", src, "-o", out, "--raw"], False, monkeypatch)
    assert code == 0
    want = [fill_plength(p, True) for _, _, p in recs if bulkframe.framable(p, True)]
    got = [u.packet for u in Deframer(True).feed(out.read_bytes())]
    assert got == want


# ------------------------------------------------------------------------------------------
# `link deframe` of a flit pcap: bulk = reference

def flit_records(rng, stream, *, zero_every=0):
    """The stream cut into records of random sizes (not whole flits), some empty."""
    recs, i, t = [], 0, 5
    while i < len(stream):
        k = rng.choice((0, 1, 19, 20, 21, 333, 700, 2000)) if not zero_every else \
            rng.randrange(0, 900)
        recs.append((t, rng.randrange(1_000_000), bytes(stream[i:i + k])))
        i += k
        t += 1
    return recs


@pytest.mark.parametrize("crc_mode", [True, False])
@pytest.mark.parametrize("damaged", [False, True])
def test_deframe_bulk_equals_reference(tmp_path, monkeypatch, backend, crc_mode, damaged):
    monkeypatch.setattr(pcap_mod, "_CHUNK", 5000)
    rng = random.Random(crc_mode * 2 + damaged)
    stream = stream_of(rng, 150, crc_mode, controls=True, big=True)
    if damaged:
        for _ in range(10):
            stream[rng.randrange(len(stream))] ^= 1 << rng.randrange(8)
        stream += b"\x07" * 27                               # a tail that is no unit
    recs = flit_records(rng, stream)
    recs[5] = (recs[5][0], 1_000_000_001, recs[5][2])        # a fraction out of range
    src = tmp_path / "in.pcap"
    src.write_bytes(pcap_bytes(recs, linktype=151))
    extra = [] if crc_mode else ["--non-crc"]
    bulk, ref = both_ways(tmp_path, monkeypatch, "deframe", src, extra)
    assert bulk == ref
    assert bulk[0] == 0 and len(bulk[2]) > 10000


@pytest.mark.parametrize("case", ["tail", "fatal", "usec-big", "old-149", "time-too-big"])
def test_deframe_damaged_captures(tmp_path, monkeypatch, backend, case):
    monkeypatch.setattr(pcap_mod, "_CHUNK", 3000)
    rng = random.Random(hash(case) & 0xFFFF)
    stream = stream_of(rng, 60, True, controls=True)
    recs = flit_records(rng, stream)
    lt, big, nano = 151, False, True
    if case == "old-149":
        lt = 149
    if case == "usec-big":
        big, nano = True, False
    if case == "time-too-big":
        # 2^32 - 1 s and a microsecond fraction past a second: beyond a classic pcap record
        recs[8] = (4_294_967_295, 4_000_000, recs[8][2])
        big, nano = False, False
    body = pcap_bytes(recs, big=big, nano=nano, linktype=lt)
    if case == "tail":
        body = body[:-5]
    if case == "fatal":
        cut = len(pcap_bytes(recs[:9]))
        body = body[:cut] + struct.pack("<IIII", 1, 0, 1 << 27, 4) + b"abcd" + body[cut:]
    src = tmp_path / "in.pcap"
    src.write_bytes(body)
    bulk, ref = both_ways(tmp_path, monkeypatch, "deframe", src, [])
    if case == "time-too-big":
        assert bulk[:2] == ref[:2] and bulk[0] == 1 and "does not fit" in bulk[1]
    else:
        assert bulk == ref


def test_raw_deframe_keeps_unit_order(tmp_path, monkeypatch):
    """A raw flit file is read a megabyte at a time, so one feed gives several units that
    are not plain with plain DLLDPs between them: the packets still come out in stream order
    (they did not before: body slices were cut from stale offsets)."""
    rng = random.Random(11)
    stream = stream_of(rng, 300, True, controls=True)
    for _ in range(6):
        stream[rng.randrange(len(stream))] ^= 0x10
    src = tmp_path / "in.flits"
    src.write_bytes(bytes(stream))
    out = tmp_path / "out.pcap"
    code, _ = run_cli(["link", "deframe", src, "-o", out], False, monkeypatch)
    assert code == 0
    want = [u.packet for u in Deframer(True, controls=True).feed(bytes(stream))
            if u.kind == "packet"]
    got = [p.data for p in pcap_mod.open_capture(out)]
    assert got == want and len(want) > 250
