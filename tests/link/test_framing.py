import random
import time

import pytest
from hypothesis import given, settings, strategies as st

from ubpkt.link import Deframer, deframe, fill_plength, frame_packet
from ubpkt.link import control as C
from ubpkt.link.framing import frame_blocks
from ubpkt.link.plength import MAX_PACKET


def pkt(n, seed=0, cfg=6, vl=0):
    rng = random.Random(seed * 100003 + n)
    head = bytes(((vl >> 3) & 1, ((vl & 7) << 5) | cfg, 0, 0))
    return fill_plength(head + rng.randbytes(n - 4), True)


def test_first_flit_example():
    f = frame_packet(bytes((0, 6, 0, 0)) + bytes(26))
    assert len(f) == 40 and f[:4] == bytes.fromhex("00060029")


@pytest.mark.parametrize("crc_mode", [True, False])
def test_identity_every_size(crc_mode):
    """frame -> deframe is the identity for every size 5..max (PLENGTH filled by framing)."""
    t0 = time.time()
    rng = random.Random(7)
    body = rng.randbytes(MAX_PACKET[crc_mode])
    for n in range(5, MAX_PACKET[crc_mode] + 1):
        p = fill_plength(bytes((0, 0x26, 0, 0)) + body[:n - 4], crc_mode)
        stream = frame_packet(p, crc_mode)
        assert len(stream) % 20 == 0 and len(stream) <= 10240
        units = deframe(stream, crc_mode)
        assert len(units) == 1, n
        u = units[0]
        assert u.packet == p and u.issues == [], (n, u.issues)
    assert time.time() - t0 < 60


def test_block_structure():
    p = pkt(3000)
    blocks = frame_blocks(p)
    assert [len(b) // 20 for b in blocks][:-1] == [32] * (len(blocks) - 1)
    for b in blocks[1:]:
        assert b[0] == p[0] & 0x01 and b[1] == p[1]      # LBH: VL and CFG, no CRD/ACK
    bits = [(1, 0, 3)] + [(0, 1, 0)] * 4
    blocks = frame_blocks(p, block_bits=bits)
    assert blocks[0][0] >> 6 == 0b10 and (blocks[0][0] >> 2) & 0xF == 3
    assert all(b[0] >> 6 == 0b01 for b in blocks[1:])
    u = deframe(b"".join(blocks))[0]
    assert u.issues == [] and [b.header.get("ub.lbh.ack") for b in u.blocks[1:]] == [1] * 4


def test_max_sizes_and_refusal():
    assert len(frame_packet(pkt(10146))) == 10240
    with pytest.raises(ValueError):
        frame_packet(pkt(10147))
    with pytest.raises(ValueError):
        frame_packet(bytes((0, 0x20, 0, 0)) + bytes(30))      # CFG 0
    p = fill_plength(bytes((0, 6, 0, 0)) + bytes(10205), False)
    assert len(frame_packet(p, False)) == 10240


@settings(max_examples=150, deadline=None)
@given(n=st.integers(5, 3000), bit=st.integers(0, 10**9))
def test_single_bit_flip_detected(n, bit):
    p = pkt(n, 3)
    stream = bytearray(frame_packet(p))
    i = bit % (len(stream) * 8)
    stream[i >> 3] ^= 0x80 >> (i & 7)
    units = deframe(bytes(stream), controls=True)
    issues = [x for u in units for x in u.issues if x["severity"] == "error"]
    assert issues, f"flip of bit {i} in a {n}-byte packet went unnoticed"


def test_single_bit_flip_every_bit_of_one_block():
    blk = frame_packet(pkt(300, 4))
    for i in range(len(blk) * 8):
        s = bytearray(blk)
        s[i >> 3] ^= 0x80 >> (i & 7)
        assert any(x["severity"] == "error" for u in deframe(bytes(s), controls=True)
                   for x in u.issues), i


def test_interleaved_controls_and_streaming():
    packets = [pkt(n, 9, vl=n % 4) for n in (5, 17, 20, 700, 2000, 10146, 33)]
    stream = bytearray()
    for p in packets:
        for b in frame_blocks(p):
            stream += b + C.null()          # a DLLCB after every DLLDB
        stream += C.crd_ack(1, [2] * 16)
    want = deframe(bytes(stream), controls=True)
    assert [u.packet for u in want if u.kind == "packet"] == packets
    assert all(u.issues == [] or all(i["severity"] == "info" for i in u.issues) for u in want)
    # fed in odd chunks, the result is the same
    d = Deframer(controls=True)
    got = []
    for k in range(0, len(stream), 77):
        got += d.feed(stream[k:k + 77])
    got += d.close()
    assert [(u.kind, u.packet) for u in got] == [(u.kind, u.packet) for u in want]


def test_deframe_reports_inconsistencies():
    p = pkt(2000)
    blocks = [bytearray(b) for b in frame_blocks(p)]
    blocks[1][1] = (blocks[1][1] & 0xF0) | 7              # LBH CFG differs
    from ubpkt.link.framing import seal
    seal(blocks[1], True, end=False)
    u = deframe(b"".join(blocks))[0]
    assert any(i["field"] == "ub.lbh.cfg" for i in u.issues)
    # truncated stream
    s = frame_packet(p)
    units = deframe(s[:700])
    assert any(i["severity"] == "error" for u in units for i in u.issues)
    # ragged tail, garbage: never raises
    for junk in (b"\x01" * 7, bytes(range(256)) * 3, b"\xff" * 400, b"\x00" * 60):
        deframe(junk, controls=True)
        deframe(junk, False, controls=True)
    # ERROR_FLAG is reported, the packet still delivered
    u = deframe(frame_packet(p, error_flag=True))[0]
    assert u.error_flag and u.packet == p
    u = deframe(frame_packet(fill_plength(p, False), False, error_flag=True), False)[0]
    assert u.error_flag
    # non-zero padding
    s = bytearray(frame_packet(pkt(30)))
    s[35] = 1
    from ubpkt.link.framing import seal as _seal
    s = _seal(s, True)
    assert any(i["field"] == "ub.dlldp.padding" for i in deframe(bytes(s))[0].issues)


def test_bcrc_info_bits_are_covered():
    s = bytearray(frame_packet(pkt(30)))
    s[36] ^= 0x40                                          # flip ERROR_FLAG only
    assert any(i["field"] == "ub.bcrc.crc30" for i in deframe(bytes(s))[0].issues)
    # with the profile reading "info bits not covered" the same flip passes the CRC
    s2 = bytearray(frame_packet(pkt(30), covers_info=False))
    s2[36] ^= 0x40
    u = deframe(bytes(s2), covers_info=False)[0]
    assert not any(i["field"] == "ub.bcrc.crc30" for i in u.issues)


def test_compiled_framing_equals_the_python_framer_for_every_size():
    """The C extension's DLLDP framing (used when it is the CRC30 engine) against the Python
    framer and the reference CRC30 engines: every size in both modes, both BCRC readings,
    with and without ERROR_FLAG."""
    import importlib
    import random
    crc = importlib.import_module("ubpkt.link.crc30")
    if "native" not in crc.backends():
        pytest.skip("the C extension ubpkt._linkc was not built")
    from ubpkt.link.framing import frame_many
    from ubpkt.link.plength import MAX_PACKET
    rng = random.Random(4)
    for crc_mode in (True, False):
        data = rng.randbytes(MAX_PACKET[crc_mode])
        pkts = [(bytes((rng.randrange(256), 0x20 | rng.randrange(1, 16), rng.randrange(256),
                        0)) + data[4:n], n % 3 == 0) for n in range(5, MAX_PACKET[crc_mode] + 1)]
        for covers in (True, False):
            old = crc.set_backend("native")
            try:
                fast = frame_many(pkts, crc_mode, covers_info=covers)
                crc.set_backend("python")
                ref = frame_many(pkts, crc_mode, covers_info=covers)
            finally:
                crc.set_backend(old)
            assert fast == ref
    with pytest.raises(ValueError):
        crc._NATIVE.frame(bytes(10), bytes(4), (700,), 1, True, False, True)
