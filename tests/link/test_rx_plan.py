"""The plan of a common DLL receive call (``ubpkt.link.dll.rx_plan``) and its C twin
``ubpkt._linkc.rx_plan``; the engine using it is compared with the reference path flit by flit
in ``test_dll_contract.py``."""
import importlib
import random

import pytest

from ubpkt.link import control as C
from ubpkt.link.dll.rx_plan import rx_plan
from ubpkt.link.framing import fill_plength, frame_blocks

crc = importlib.import_module("ubpkt.link.crc30")


def pkt(n, i, rng, crc_mode, vl=0):
    head = bytes(((vl >> 3) & 1, ((vl & 7) << 5) | 6, 0, 0))
    return fill_plength(head + i.to_bytes(4, "big") + rng.randbytes(n - 8), crc_mode)


def test_a_common_call_is_planned_in_block_order():
    rng = random.Random(1)
    p = pkt(1500, 1, rng, True)                 # 3 blocks (32, 32 flits and the rest)
    blocks = frame_blocks(p, True)
    stream = b"".join(blocks) + C.crd_ack(3, [0, 5], crc_mode=True) + C.null(crc_mode=True)
    actions, counted, worthy, done = rx_plan(stream, len(stream) // 20, None, True, True)
    flits = sum(len(b) for b in blocks) // 20
    assert done == len(stream) // 20
    assert counted == worthy == flits + 2       # the Null is not counted, the Crd_Ack is
    seg, crd = actions
    assert seg[0] == 2 and seg[1] == p[:4] and seg[3] == len(blocks) == 3 and seg[4] == flits
    assert (seg[1] + seg[2])[:len(p)] == p
    assert crd == (1, 3, [0, 5] + [0] * 14, 2)
    # a Crd_Ack carrying only ACK_NUM is counted but not "worthy" (ACKed lazily)
    only_ack = C.crd_ack(3, [0], crc_mode=True)
    assert rx_plan(only_ack, 2, None, True, True)[1:3] == (2, 0)


def test_an_uncommon_call_returns_the_delimiting():
    rng = random.Random(2)
    good = b"".join(frame_blocks(pkt(300, 1, rng, True), True))
    t1 = C.crd_ack(0, [4], t=1, crc_mode=True)
    got = rx_plan(good + t1, (len(good) + len(t1)) // 20, None, True, True)
    assert got[0] is None and len(got[1]) == 2 and got[2][1] == "cb"
    bad = bytearray(good)
    bad[30] ^= 4                                # a BCRC error
    got = rx_plan(bad, len(bad) // 20, None, True, True)
    assert got[0] is None and got[3] == [False]


def _cases(rng, crc_mode):
    stream = bytearray()
    for i in range(30):
        stream += b"".join(frame_blocks(pkt(rng.randrange(8, 3000), i, rng, crc_mode,
                                            rng.randrange(2)), crc_mode))
        r = rng.random()
        if r < 0.5:
            stream += C.crd_ack(rng.randrange(3), [rng.randrange(3), rng.randrange(64)] +
                                [rng.randrange(2)] * 14, crc_mode=crc_mode)
        elif r < 0.7:
            stream += C.null(crc_mode=crc_mode)
        elif r < 0.75:
            stream += C.crd_ack(0, [4], t=1, crc_mode=crc_mode)
    yield bytes(stream), None
    for _ in range(300):
        data = bytearray(stream[rng.randrange(len(stream) // 20) * 20:])
        data = data[:20 * rng.randrange(1, len(data) // 20 + 1)]
        if rng.random() < 0.2:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        pending = None if rng.random() < 0.5 else (rng.randrange(1, 17), rng.randrange(1, 33))
        yield bytes(data), pending
    for _ in range(100):
        yield rng.randbytes(20 * rng.randrange(1, 60)), None


@pytest.mark.parametrize("crc_mode", [True, False])
def test_the_compiled_plan_equals_the_python_plan(crc_mode):
    if "native" not in crc.backends():
        pytest.skip("the C extension ubpkt._linkc was not built")
    nat = crc._NATIVE
    rng = random.Random(7)
    common = 0
    for data, pending in _cases(rng, crc_mode):
        for covers in (True, False):
            want = rx_plan(bytearray(data), len(data) // 20, pending, crc_mode, covers)
            got = nat.rx_plan(data, len(data) // 20, pending, crc_mode, covers,
                              C.KINDS["Crd_Ack"][0] << 4 | C.KINDS["Crd_Ack"][1],
                              C.KINDS["Null"][0] << 4 | C.KINDS["Null"][1])
            if want[0] is None:
                assert got[0] is None and (list(got[1]), list(got[2]), got[3]) == want[1:]
            else:
                common += 1
                assert got == want
    assert common > 100
