"""The compiled CRC30 engine (anycrc) against the pure-Python/numpy reference engines: same
register for whole bytes, the BCRC information bits, and many blocks of a buffer at once."""
from __future__ import annotations

import importlib
import random

import pytest

C = importlib.import_module("ubpkt.link.crc30")   # ubpkt.link.crc30 is also a function name

needs_compiled = pytest.mark.skipif(C._COMPILED is None, reason="anycrc is not installed")


def _both(fn):
    """fn() with the compiled engine, then with the reference engine."""
    old = C.set_backend("compiled")
    try:
        a = fn()
        C.set_backend("python")
        b = fn()
    finally:
        C.set_backend(old)
    return a, b


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
    for n in (0, 1, 2, 3, 7, 8, 16, 60, 76, 636, 637):
        data = rng.randbytes(n)
        assert (C._COMPILED.calc(data) if n else C.INIT) == _bitwise(data)
        for info in range(4):
            old = C.set_backend("compiled")
            try:
                assert C.bcrc_crc30(data, info) == _bitwise(data, info)
            finally:
                C.set_backend(old)


@needs_compiled
@pytest.mark.parametrize("n", [0, 1, 5, 16, 17, 191, 192, 636, 641, 8191, 8192, 20000])
def test_compiled_equals_reference(n):
    data = random.Random(n).randbytes(n)
    a, b = _both(lambda: C.crc30(data))
    assert a == b
    for info in (None, 0, 1, 2, 3):
        a, b = _both(lambda: C.bcrc_crc30(data, info))
        assert a == b
    a, b = _both(lambda: C.crc30_update(0x1234567, data))
    assert a == b


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
        a, b = _both(lambda: C.block_crc_values(buf, spans, infos, covers))
        assert a == b
    # seal half of the blocks correctly, the others stay random: the checks agree
    vals = C.block_crc_values(buf, spans, infos)
    for k, ((s, e), info, v) in enumerate(zip(spans, infos, vals)):
        if k % 2:
            buf[e - 4:e] = ((info << 30) | v).to_bytes(4, "big")
    a, b = _both(lambda: C.block_crc_many(buf, spans))
    assert a == b and a[1::2] == [True] * 150 and not any(a[0::2])


def test_set_backend_rejects_unknown_names():
    with pytest.raises(ValueError):
        C.set_backend("fast")


@needs_compiled
def test_patch_term_equal_on_both_engines():
    for nbytes in (16, 36, 76, 636):
        for delta in (0x04, 0x40, 0x80, 0xFC):
            for covers in (True, False):
                a, b = _both(lambda: C.bcrc_patch_term.__wrapped__(nbytes, delta, covers))
                assert a == b
