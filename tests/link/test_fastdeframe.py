"""The bulk deframer against the reference Deframer, unit by unit, on clean and damaged
streams, with the compiled walk and with its Python twin."""
import random
import sys
from array import array

import pytest

from ubpkt.link import control as C
from ubpkt.link import fill_plength, frame_packet
from ubpkt.link.fastdeframe import (CFG_MASK, BulkDeframer, Plain, lengths_table,
                                    plain_dlldps_py)
from ubpkt.link.framing import Deframer

crc30_mod = sys.modules["ubpkt.link.crc30"]

BACKENDS = [b for b in ("native", "python") if b in crc30_mod.backends()]


@pytest.fixture(params=BACKENDS)
def backend(request):
    old = crc30_mod.set_backend(request.param)
    yield request.param
    crc30_mod.set_backend(old)


def packets(rng, n, crc_mode=True, big=False):
    out = []
    for _ in range(n):
        size = rng.choice((5, 17, 60, 120, 300, 635, 636, 1300)) if not big else \
            rng.randrange(5, 4000)
        cfg = rng.choice((3, 4, 5, 6, 7, 9))
        vl = rng.randrange(16)
        head = bytes(((vl >> 3) | rng.choice((0, 0x80, 0x40, 0x3C)), (vl & 7) << 5 | cfg, 0, 0))
        out.append(fill_plength(head + rng.randbytes(size - 4), crc_mode))
    return out


def stream_of(rng, n, crc_mode=True, controls=True, big=False):
    parts = []
    for p in packets(rng, n, crc_mode, big):
        parts.append(frame_packet(p, crc_mode, error_flag=rng.random() < 0.05))
        if controls and rng.random() < 0.3:
            parts.append(C.crd_ack(rng.randrange(1 << 16), [rng.randrange(64)] * 16,
                                   crc_mode=crc_mode) if rng.random() < 0.5 else
                         C.null(crc_mode=crc_mode))
    return bytearray(b"".join(parts))


def as_tuple(u):
    """What a unit says, compared across the two readers (a Plain's record fields come from
    its raw flits, which must be the stream's)."""
    if isinstance(u, Plain):
        off, flits, nb, pkt, raw = u
        return ("packet", off, flits, pkt, [], nb, False)
    return (u.kind, u.offset, u.flits, u.packet, u.issues, len(u.blocks), u.error_flag)


def both(stream, crc_mode, chunk, controls=True):
    ref = Deframer(crc_mode, controls=controls)
    bulk = BulkDeframer(crc_mode, controls=controls, keep_raw=True)
    a, b = [], []
    for i in range(0, len(stream), chunk):
        a += ref.feed(bytes(stream[i:i + chunk]))
        b += bulk.feed(bytes(stream[i:i + chunk]))
    a += ref.close()
    b += bulk.close()
    for u in b:
        if isinstance(u, Plain):
            assert u[4] == bytes(stream[u[0]:u[0] + 20 * u[1]])
    return [as_tuple(u) for u in a], [as_tuple(u) for u in b], bulk


@pytest.mark.parametrize("crc_mode", [True, False])
def test_clean_streams_unit_by_unit(backend, crc_mode):
    rng = random.Random(5)
    stream = stream_of(rng, 120, crc_mode, big=True)
    for chunk in (20, 333, 4096, 1 << 20):
        a, b, bulk = both(stream, crc_mode, chunk)
        assert a == b
        assert bulk.plain > 80          # most DLLDPs took the bulk walk


@pytest.mark.parametrize("crc_mode", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_corrupted_streams_unit_by_unit(backend, crc_mode, seed):
    """Bit flips anywhere (BCRC, LPH/LBH, PLENGTH, padding, END), cut streams, stray bytes."""
    rng = random.Random(seed)
    stream = stream_of(rng, 60, crc_mode)
    for _ in range(rng.randrange(1, 30)):
        stream[rng.randrange(len(stream))] ^= 1 << rng.randrange(8)
    if seed % 2:
        del stream[rng.randrange(len(stream)):]            # truncated, maybe mid-flit
    if seed % 3 == 0:
        stream[rng.randrange(len(stream)):0] = rng.randbytes(rng.randrange(1, 60))
    for chunk in (20, 97, 2000, 1 << 20):
        a, b, _ = both(stream, crc_mode, chunk)
        assert a == b


@pytest.mark.parametrize("crc_mode", [True, False])
def test_each_kind_of_damage_leaves_the_bulk_walk(backend, crc_mode):
    """One DLLDP with each damage the reference reports, after a good one: the walk stops at
    it (stop 1), and the units are still the reference's.  Non-CRC mode has no BCRC to
    catch them first: there every check of the walk is on its own."""
    rng = random.Random(9)
    p = fill_plength(bytes((0, 6, 0, 0)) + rng.randbytes(1500), crc_mode)
    good = bytearray(frame_packet(p, crc_mode))
    end = len(good) - 1
    cases = {"lph reserved": (0, 0x02), "lph reserved 2": (1, 0x10), "lph cfg": (1, 6 ^ 8),
             "plength": (3, 0x01), "lbh cfg": (641, 0x01), "lbh vl": (641, 0x20),
             "lbh reserved": (640, 0x02), "padding": (end - 1, 0x08), "dllcb inside": (641, 6)}
    if crc_mode:
        cases.update({"bcrc": (10, 0x01), "error flag": (end - 3, 0x40),
                      "bcrc reserved": (end - 3, 0x80)})
    else:
        cases.update({"end error flag": (end, 0x40), "end reserved": (end, 0x01)})
    table = lengths_table(crc_mode)
    for name, (at, bit) in cases.items():
        bad = bytearray(good)
        bad[at] ^= bit
        s = bytes(good) + bytes(bad)
        done, stop, items = plain_dlldps_py(s, len(s) // 20, crc_mode, True, CFG_MASK, table,
                                            None)
        assert (done, stop, len(items)) == (len(good) // 20, 1, 1), name
        a, b, _ = both(good + bad + good, crc_mode, 1 << 20)
        assert a == b, name
        assert a[0][4] == [] and (a[1][4] or a[1][0] != "packet"), name


def test_compiled_walk_equals_its_twin():
    if "native" not in crc30_mod.backends():
        pytest.skip("ubpkt._linkc is not built here (python3 setup.py build_ext --inplace)")
    from ubpkt import _linkc
    rng = random.Random(11)
    for crc_mode in (True, False):
        table = lengths_table(crc_mode)
        for seed in range(30):
            s = stream_of(rng, 20, crc_mode, controls=seed % 2 == 0)
            for _ in range(seed % 4):
                s[rng.randrange(len(s))] ^= 1 << rng.randrange(8)
            total = len(s) // 20
            for out in (None, bytearray):
                o1, o2 = (None, None) if out is None else (bytearray(), bytearray())
                r1 = _linkc.plain_dlldps(bytes(s), total, crc_mode, True, CFG_MASK, table, o1,
                                         7, 9)
                r2 = plain_dlldps_py(bytes(s), total, crc_mode, True, CFG_MASK, table, o2, 7, 9)
                assert r1 == r2 and o1 == o2


def test_walk_refuses_bad_arguments():
    if "native" not in crc30_mod.backends():
        pytest.skip("ubpkt._linkc is not built here")
    from ubpkt import _linkc
    with pytest.raises(ValueError):
        _linkc.plain_dlldps(bytes(40), 3, True, True, CFG_MASK, lengths_table(True), None, 0, 0)
    with pytest.raises(ValueError):
        _linkc.plain_dlldps(bytes(40), 2, True, True, CFG_MASK, array("i", [0] * 10), None,
                            0, 0)


@pytest.mark.parametrize("damaged", [False, True])
def test_cli_deframe_writes_the_reference_packets(tmp_path, backend, damaged):
    """`ubpkt link deframe`: the packets (and times) the reference Deframer gives, in order,
    whether they came through the compiled pcap writer or the reference reader."""
    from click.testing import CliRunner
    from ubpkt.capture import PcapWriter, open_capture
    from ubpkt_cli.main import main
    rng = random.Random(21)
    stream = stream_of(rng, 80, True)
    if damaged:
        for _ in range(8):
            stream[rng.randrange(len(stream))] ^= 1 << rng.randrange(8)
    path = tmp_path / "in.pcap"
    want = []
    ref = Deframer(True, controls=True)
    with PcapWriter(path, 149) as w:
        for i in range(0, len(stream), 700):
            piece = bytes(stream[i:i + 700])
            w.write(piece, 1_000_000 * i + 7)
            want += [(u.packet, 1_000_000 * i + 7) for u in ref.feed(piece)
                     if u.kind == "packet"]
    want += [(u.packet, 1_000_000 * i + 7) for u in ref.close() if u.kind == "packet"]
    out = tmp_path / "out.pcap"
    res = CliRunner().invoke(main, ["link", "deframe", str(path), "-o", str(out)])
    assert res.exit_code == 0, res.output
    got = [(p.data, p.time_ns) for p in open_capture(out)]
    assert got == want and len(want) > 50
