"""The compiled Crd_Ack builder and reader and DLLDB gather (``ubpkt._linkc.crd_ack`` / ``crd_ack_read``) against
their Python twins (:func:`ubpkt.link.control.crd_ack_py`, :func:`crd_ack_values`): the same
bytes for every field combination in both CRC modes, the same fields read back, the same
errors for out-of-range fields; and the public builder without the compiled helpers."""
from __future__ import annotations

import importlib
import random

import pytest

from ubpkt.link import control as C

CRC = importlib.import_module("ubpkt.link.crc30")
NAT = CRC._NATIVE
needs_native = pytest.mark.skipif(NAT is None, reason="the C extension ubpkt._linkc is not built "
                                  "here (python3 setup.py build_ext --inplace)")


def _cases(n: int = 600):
    rng = random.Random(10)
    yield 0, [0] * 16, 0, 0
    yield 0xFFFF, [63] * 16, 1, 1
    for vl in range(16):                       # each VL's 6 bits alone: VL15 at the high end
        yield 1, [63 if k == vl else 0 for k in range(16)], 0, 0
    for _ in range(n):
        credits = [rng.choice((0, 0, 0, 1, 63, rng.randrange(64))) for _ in range(16)]
        yield rng.randrange(0x10000), credits[:rng.choice((16, 16, 3, 0))], rng.randrange(2), \
            rng.randrange(2)


@needs_native
@pytest.mark.parametrize("crc_mode,covers", [(True, True), (True, False), (False, True)])
def test_builder_same_bytes(crc_mode, covers):
    for ack, credits, t, sd in _cases():
        ref = C.crd_ack_py(ack, credits, t=t, sd=sd, crc_mode=crc_mode, covers_info=covers)
        got = NAT.crd_ack(C._CRD_LCH, ack, credits, t, sd, crc_mode, covers)
        assert got == ref, (ack, credits, t, sd)


@needs_native
def test_reader_same_fields():
    for ack, credits, t, sd in _cases():
        blk = C.crd_ack_py(ack, credits, t=t, sd=sd)
        v = C.crd_ack_values(blk)
        assert NAT.crd_ack_read(blk) == (v["ack_num"], v["credits"], v["t"], v["sd"])
        # and the generic reader agrees on what the engine acts on
        g = C.parse_control(blk, True, crc_ok=True).values
        assert (g["ack_num"], g["credits"]) == (v["ack_num"], v["credits"])


@needs_native
@pytest.mark.parametrize("ack,credits", [(0x10000, []), (-1, []), (0, [64]), (0, [0, -1])])
def test_builder_same_errors(ack, credits):
    with pytest.raises(ValueError) as ref:
        C.crd_ack_py(ack, credits)
    with pytest.raises(ValueError) as got:
        NAT.crd_ack(C._CRD_LCH, ack, credits, 0, 0, True, True)
    assert str(got.value) == str(ref.value)


@needs_native
def test_reader_refuses_short_input():
    with pytest.raises(ValueError):
        NAT.crd_ack_read(b"\x00" * 17)


def test_public_builder_without_native():
    """With the pure-Python CRC engine selected the public builder and reader take the Python
    twins (what runs where the extension is not built), with the same results."""
    old = CRC.BACKEND
    try:
        CRC.set_backend("python")
        assert CRC.native() is None
        for ack, credits, t, sd in list(_cases(50)):
            blk = C.crd_ack(ack, credits, t=t, sd=sd)
            assert blk == C.crd_ack_py(ack, credits, t=t, sd=sd)
            assert C.crd_ack_fields(blk) == (ack, (list(credits) + [0] * 16)[:16], t, sd)
    finally:
        CRC.set_backend(old)


@needs_native
def test_dlldb_gather_same_as_python():
    """The compiled DLLDB gather against its Python twin: random buffers and block runs, with
    and without a BCRC tail, opening (LPH) or continuing (LBH) a DLLDP."""
    from ubpkt.link.dll.receive import dlldb_gather
    rng = random.Random(11)
    for _ in range(300):
        sizes = [rng.choice((32, 32, rng.randrange(1, 33))) for _ in range(rng.randrange(1, 6))]
        lead = rng.randrange(3)
        buf = bytearray(rng.randbytes((lead + sum(sizes)) * 20))
        spans, pos = [], lead
        for f in sizes:
            spans.append((pos, f))
            pos += f
        for skip_first in (4, 2):
            for tail in (4, 0):
                assert NAT.dlldb_gather(buf, spans, skip_first, 2, tail) == \
                    dlldb_gather(buf, spans, skip_first, 2, tail)
    with pytest.raises(ValueError):
        NAT.dlldb_gather(bytes(40), [(1, 2)], 4, 2, 4)     # past the buffer's end
