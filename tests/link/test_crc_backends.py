"""The compiled CRC30 engines (the package's C extension ``ubpkt._linkc``, the ``anycrc``
package) against the pure-Python/numpy reference engines: same register for whole bytes, the
BCRC information bits, and many blocks of a buffer at once."""
from __future__ import annotations

import importlib
import random

import pytest

C = importlib.import_module("ubpkt.link.crc30")   # ubpkt.link.crc30 is also a function name

COMPILED = [b for b in C.backends() if b != "python"]
needs_compiled = pytest.mark.skipif(not COMPILED, reason="no compiled CRC30 engine here (the C "
                                    "extension was not built and anycrc is not installed)")


def _both(fn):
    """[fn() on each compiled engine, ...], fn() on the reference engine."""
    old = C.BACKEND
    try:
        got = []
        for name in COMPILED:
            C.set_backend(name)
            got.append(fn())
        C.set_backend("python")
        ref = fn()
    finally:
        C.set_backend(old)
    return got, ref


def _bitwise(data: bytes, info=None) -> int:
    """Bit-serial CRC30 straight from the definition (independent of both engines)."""
    crc = C.INIT
    bits = [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]
    if info is not None:
        bits += [(info >> 1) & 1, info & 1]
    for b in bits:
        fb = ((crc >> 29) & 1) ^ b
        crc = (crc << 1) & C.MASK
        if fb:
            crc ^= C.POLY
    return crc


@needs_compiled
def test_compiled_matches_bit_serial_definition():
    rng = random.Random(7)
    for n in (0, 1, 2, 3, 7, 8, 9, 16, 60, 76, 636, 637):
        data = rng.randbytes(n)
        for info in range(4):
            got, _ = _both(lambda: C.bcrc_crc30(data, info))
            assert got == [_bitwise(data, info)] * len(COMPILED)
        got, _ = _both(lambda: C.crc30(data))
        assert got == [_bitwise(data)] * len(COMPILED)


@needs_compiled
@pytest.mark.parametrize("n", [0, 1, 5, 16, 17, 191, 192, 636, 641, 8191, 8192, 20000])
def test_compiled_equals_reference(n):
    data = random.Random(n).randbytes(n)
    got, ref = _both(lambda: C.crc30(data))
    assert set(got) == {ref}
    for info in (None, 0, 1, 2, 3):
        got, ref = _both(lambda: C.bcrc_crc30(data, info))
        assert set(got) == {ref}
    got, ref = _both(lambda: C.crc30_update(0x1234567, data))
    assert set(got) == {ref}


@needs_compiled
def test_block_values_and_checks_equal_reference_on_random_blocks():
    rng = random.Random(3)
    buf = bytearray()
    spans, infos = [], []
    for _ in range(300):
        flits = rng.choice((1, 2, 4, 5, 17, 32))
        start = len(buf)
        buf += rng.randbytes(flits * 20)
        spans.append((start, len(buf)))
        infos.append(rng.randrange(4))
    for covers in (True, False):
        got, ref = _both(lambda: C.block_crc_values(buf, spans, infos, covers))
        assert all(g == ref for g in got)
    # seal half of the blocks correctly, the others stay random: the checks agree
    vals = C.block_crc_values(buf, spans, infos)
    for k, ((s, e), info, v) in enumerate(zip(spans, infos, vals)):
        if k % 2:
            buf[e - 4:e] = ((info << 30) | v).to_bytes(4, "big")
    got, ref = _both(lambda: C.block_crc_many(buf, spans))
    assert all(g == ref for g in got)
    assert ref[1::2] == [True] * 150 and not any(ref[0::2])


def test_set_backend_rejects_unknown_names():
    with pytest.raises(ValueError):
        C.set_backend("fast")


@needs_compiled
def test_patch_term_equal_on_both_engines():
    for nbytes in (16, 36, 76, 636):
        for delta in (0x04, 0x40, 0x80, 0xFC):
            for covers in (True, False):
                got, ref = _both(lambda: C.bcrc_patch_term.__wrapped__(nbytes, delta, covers))
                assert set(got) == {ref}


@pytest.mark.skipif(C._NATIVE is None, reason="the C extension ubpkt._linkc was not built")
def test_native_rejects_bad_spans_instead_of_reading_outside():
    buf = bytes(100)
    for spans in ([(0, 101)], [(-1, 20)], [(10, 12)]):
        with pytest.raises(ValueError):
            C._NATIVE.check_blocks(buf, spans, True)
        with pytest.raises(ValueError):
            C._NATIVE.crc30_blocks(buf, spans, None)
    with pytest.raises(TypeError):
        C._NATIVE.check_blocks(buf, [[0, 20]], True)
    with pytest.raises(ValueError):
        C._NATIVE.crc30_blocks(buf, [(0, 20), (20, 40)], [0])
