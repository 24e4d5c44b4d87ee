"""Initiator and target wired directly: every operation moves the right bytes, statuses and
completions are right (UB 2.0 §7.3, §7.4)."""
from __future__ import annotations

import random

import pytest

from ubpkt.errors import UBError
from ubpkt.stack.transaction import initiator as ini_mod
from ubpkt.stack.transaction.ops import (ATOMIC_SIZES, SUBOPS, TaLayout, WorkRequest,
                                         atomic_apply)

from ta_harness import BASE, TOKENID, TOKENVALUE, Pair, joined


def wr(wr_id, op, local=None, off=0, **kw):
    kw.setdefault("tokenid", TOKENID)
    kw.setdefault("tokenvalue", TOKENVALUE)
    return WorkRequest(wr_id, op, local, remote_addr=BASE + off, **kw)


def one(comps):
    assert len(comps) == 1, comps
    return comps[0]


# -- writes and reads ---------------------------------------------------------------------------

@pytest.mark.parametrize("mtu", [256, 1024, 4096])
def test_write_read_random_sizes(mtu):
    rng = random.Random(mtu)
    p = Pair(mtu=mtu)
    for i in range(25):
        n = rng.choice([0, 1, mtu - 1, mtu, mtu + 1, 3 * mtu, rng.randrange(1, 6 * mtu)])
        off = rng.randrange(0, 4096)
        src = rng.randbytes(n)
        c = one(p.do(wr(i, "write", src, off)))
        assert (c.wr_id, c.op, c.status, c.nbytes) == (i, "write", "success", n)
        assert p.mem.read(BASE + off, n) == src
        dst = bytearray(n)
        c = one(p.do(wr(100 + i, "read", dst, off)))
        assert (c.status, c.nbytes) == ("success", n) and dst == src
    # every write segment carries at most one MTU; reads come back in MTU pieces
    assert all(len(s.payload) <= mtu for s in p.sent_requests + p.sent_responses)
    assert p.ini.outstanding == 0 and not p.ini._inflight


def test_segments_tassn_address_and_last():
    p = Pair(mtu=1024)
    src = bytes(range(256)) * 10                           # 2560 bytes: 3 segments
    p.ini.post(wr(1, "write", src, 0x40))
    segs = list(p.requests)
    lay = TaLayout(["ub.btah", "ub.maetah", "ub.tvetah"])
    vals = [int.from_bytes(s.ta, "big") for s in segs]
    assert [lay.get(v, "btah.ini_tassn") for v in vals] == [0, 1, 2]
    assert [lay.get(v, "maetah.address") for v in vals] == [BASE + 0x40 + k * 1024
                                                             for k in range(3)]
    assert [lay.get(v, "maetah.length") for v in vals] == [1024, 1024, 512]
    assert [lay.get(v, "btah.ini_rc_id") for v in vals] == [0x1ABCD] * 3
    assert [s.last for s in segs] == [False, False, True]
    assert all(isinstance(s.payload, memoryview) for s in segs)
    assert b"".join(bytes(s.payload) for s in segs) == src
    p.run()
    assert one(p.ini.pop_completions()).status == "success"


def test_taack_aggregation_and_tassn_wrap():
    p = Pair(mtu=256, taack_aggregate=4)
    p.ini._tassn = 0xFFFB                                   # the 10 segments wrap past 0xFFFF
    src = random.Random(1).randbytes(2560)
    c = one(p.do(wr(1, "write", src)))
    assert c.status == "success" and c.nbytes == 2560
    # 10 segments: TAACKs covering 4, 4 and the 2 up to the last packet
    lay = TaLayout(["ub.atah"])
    acks = [int.from_bytes(s.ta, "big") for s in p.sent_responses]
    assert [(lay.get(v, "atah.ini_tassn"), lay.get(v, "atah.rspinfo")) for v in acks] == [
        (0xFFFB, 3), (0xFFFF, 3), (0x0003, 1)]
    assert p.tgt.stats["taacks_aggregated"] == 7


def test_initiator_takes_an_aggregated_taack():
    """TAACK TASSN N with RSPINFO k acknowledges N..N+k (§7.3.1.1): built by hand."""
    p = Pair(mtu=256)
    for i in range(3):
        p.ini.post(wr(i, "write", bytes(200), 256 * i))
    p.requests.clear()
    atah = TaLayout(["ub.atah"])
    ack = atah.pack({"atah.taopcode": 0x11, "atah.ini_tassn": 0, "atah.rspinfo": 2,
                     "atah.ini_rc_id": 0x1ABCD})
    p.ini.on_response(atah.to_bytes(ack), 5)
    assert [c.wr_id for c in p.ini.pop_completions()] == [0, 1, 2]
    # a response for another RC, or for no outstanding TASSN, is dropped and counted
    p.ini.on_response(atah.to_bytes(ack), 6)
    assert p.ini.stats["rx_unexpected"] == 3
    other = atah.pack({"atah.taopcode": 0x11, "atah.ini_rc_id": 7})
    p.ini.on_response(atah.to_bytes(other), 7)
    assert p.ini.stats["rx_wrong_rc"] == 1 and p.ini.pop_completions() == []


def test_local_buffer_from_initiator_memory():
    p = Pair()
    from ubpkt.stack.transaction.memory import Memory
    local = Memory()
    local.register(0x5000, 8192, tokenid=1)
    local.write(0x5000, b"hello, target")
    p.ini.memory = local
    assert one(p.do(wr(1, "write", 0x5000, 8, length=13))).status == "success"
    assert p.mem.read(BASE + 8, 13) == b"hello, target"
    assert one(p.do(wr(2, "read", 0x6000, 8, length=13))).status == "success"
    assert local.read(0x6000, 13) == b"hello, target"


def test_writeback_and_write_with_be():
    rng = random.Random(7)
    p = Pair()
    before = rng.randbytes(1024)
    p.mem.write(BASE, before)
    assert one(p.do(wr(1, "writeback", b"W" * 100, 2000))).status == "success"
    assert p.mem.read(BASE + 2000, 100) == b"W" * 100
    for n in (64, 128, 256, 512, 1024):
        p.mem.write(BASE, before)
        be = rng.getrandbits(n)
        payload = rng.randbytes(n)
        op = "write_with_be" if n & 0x1C0 else "writeback_with_be"
        assert one(p.do(wr(n, op, payload, be=be))).status == "success"
        got = p.mem.read(BASE, n)
        want = bytes(payload[i] if be >> i & 1 else before[i] for i in range(n))
        assert got == want
    with pytest.raises(UBError):
        p.ini.post(wr(9, "write_with_be", bytes(100), be=1))   # not a BE size
    with pytest.raises(UBError):
        p.ini.post(wr(9, "writeback", bytes(5000)))            # one packet only


def test_write_with_notify():
    p = Pair(mtu=1024)
    src = random.Random(3).randbytes(3000)
    c = one(p.do(wr(1, "write_with_notify", src, 0, notify_addr=BASE + 0x8000,
                    notify_tokenid=TOKENID, notify_tokenvalue=TOKENVALUE,
                    notify_data=0x1122334455667788)))
    assert (c.status, c.nbytes) == ("success", 3000)
    assert p.mem.read(BASE, 3000) == src
    assert p.mem.read(BASE + 0x8000, 8) == bytes.fromhex("1122334455667788")
    assert [s.ta[0] for s in p.sent_requests] == [0x03, 0x03, 0x05]
    # a bad notify token: the last segment fails and changes nothing
    snap = p.mem.read(BASE, 0x9000)
    c = one(p.do(wr(2, "write_with_notify", b"x" * 500, 0, notify_addr=BASE + 0x8000,
                    notify_tokenid=TOKENID, notify_tokenvalue=1, notify_data=1)))
    assert c.status == "remote_access_error" and p.mem.read(BASE, 0x9000) == snap


def test_write_with_immediate_consumes_a_receive():
    p = Pair(mtu=512)
    src = bytes(range(200)) * 6
    p.ini.post(wr(1, "write_with_immediate", src, 0, imm=0xABCDEF, tcid=0))
    p.run()
    assert p.rnr >= 1 and p.ini.pop_completions() == []      # no receive posted: RNR
    assert p.mem.read(BASE + 1024, 176) == bytes(176)        # the last segment waits
    p.tgt.post_recv(bytearray(0), 77)
    p.run()
    c = one(p.ini.pop_completions())
    assert (c.status, c.nbytes) == ("success", 1200)
    assert p.mem.read(BASE, 1200) == src
    t = one(p.tgt.pop_completions())
    assert (t.wr_id, t.op, t.status, t.nbytes, t.imm) == (77, "write_with_immediate", "success",
                                                          1200, 0xABCDEF)


# -- sends --------------------------------------------------------------------------------------

def test_send_with_and_without_receive_buffers():
    p = Pair(mtu=1024)
    rng = random.Random(5)
    msgs = [rng.randbytes(n) for n in (0, 10, 1024, 5000)]
    for i, m in enumerate(msgs):
        p.ini.post(wr(i, "send", m))
    p.run()
    assert p.rnr >= 1 and p.ini.pop_completions() == []      # nothing posted: RNR
    bufs = [bytearray(6000) for _ in msgs]
    for i, b in enumerate(bufs):
        p.tgt.post_recv(b, 50 + i)
    p.run()
    comps = p.ini.pop_completions()
    assert [(c.wr_id, c.status, c.nbytes) for c in comps] == [
        (i, "success", len(m)) for i, m in enumerate(msgs)]
    tc = p.tgt.pop_completions()
    assert [(c.wr_id, c.op, c.status, c.nbytes, c.imm) for c in tc] == [
        (50 + i, "send", "success", len(m), None) for i, m in enumerate(msgs)]
    for b, m in zip(bufs, msgs):
        assert bytes(b[:len(m)]) == m
    # one TASSN for all packets of a message, OFSTETAH in KiB
    lay = TaLayout(["ub.btah", "ub.mtetah", "ub.ofstetah", "ub.tvetah"])
    big = [int.from_bytes(s.ta, "big") for s in p.sent_requests if s.tag == 3]
    assert len(big) == 5
    assert {lay.get(v, "btah.ini_tassn") for v in big} == {3}
    assert [lay.get(v, "ofstetah.offset") for v in big] == [0, 1, 2, 3, 4]
    assert all(lay.get(v, "btah.mt_en") == 1 for v in big)


def test_send_with_immediate_and_errors():
    p = Pair(mtu=256)
    p.tgt.open_queue(9, tokenvalue=0x55)
    buf = bytearray(1000)
    p.tgt.post_recv(buf, 1, tcid=9)
    src = bytes(range(256)) * 3
    c = one(p.do(wr(1, "send_with_immediate", src, tcid=9, tokenvalue=0x55, imm=42)))
    assert (c.status, c.nbytes) == ("success", 768)
    t = one(p.tgt.pop_completions())
    assert (t.op, t.imm, t.tcid, t.nbytes) == ("send_with_immediate", 42, 9, 768)
    assert bytes(buf[:768]) == src
    assert [s.ta[0] for s in p.sent_requests] == [0x00, 0x00, 0x01]
    # wrong queue token: remote access error, the buffer stays posted
    p.tgt.post_recv(bytearray(10), 2, tcid=9)
    assert one(p.do(wr(2, "send", b"abc", tcid=9, tokenvalue=0x56))).status == \
        "remote_access_error"
    # unknown queue: unsupported request
    assert one(p.do(wr(3, "send", b"abc", tcid=4))).status == "unsupported"
    # too long for the posted buffer: both sides see the error
    c = one(p.do(wr(4, "send", bytes(600), tcid=9, tokenvalue=0x55)))
    assert c.status == "remote_access_error"
    t = one(p.tgt.pop_completions())
    assert (t.wr_id, t.status) == (2, "local_length_error")
    with pytest.raises(UBError):
        for i in range(1000):
            p.tgt.post_recv(bytearray(1), i)                   # recv_queue_depth


# -- atomics ------------------------------------------------------------------------------------

def _signed(v, bits):
    return v - (1 << bits) if v >> (bits - 1) else v


def model(op, mem, o1, o2, bits, sub=None):
    """The semantics written out independently of ops.py (Table 7-16; CLR/EOR as named)."""
    mask = (1 << bits) - 1
    if op == "compare_swap":
        return o1 if mem == o2 else mem
    if op == "swap":
        return o1
    if op in ("fetch_add",):
        return (mem + o1) & mask
    if op == "fetch_sub":
        return (mem - o1) & mask
    if op == "fetch_and":
        return mem & o1
    if op == "fetch_or":
        return mem | o1
    if op == "fetch_xor":
        return mem ^ o1
    return {"ADD": (mem + o1) & mask, "CLR": mem & (mask ^ o1), "EOR": mem ^ o1,
            "SET": mem | o1,
            "SMAX": mem if _signed(mem, bits) >= _signed(o1, bits) else o1,
            "SMIN": mem if _signed(mem, bits) <= _signed(o1, bits) else o1,
            "UMAX": max(mem, o1), "UMIN": min(mem, o1)}[sub]


ATOMIC_CASES = [(op, None) for op in ("swap", "fetch_add", "fetch_sub", "fetch_and",
                                      "fetch_or", "fetch_xor")] + \
    [(op, sub) for op in ("atomic_store", "atomic_load") for sub in SUBOPS]


@pytest.mark.parametrize("op,sub", ATOMIC_CASES)
def test_atomic_semantics(op, sub):
    rng = random.Random(hash((op, sub)) & 0xFFFF)
    p = Pair(keep=False)
    for size in ATOMIC_SIZES:
        bits = size * 8
        for k in range(4):
            mem = rng.getrandbits(bits) if k else (1 << bits) - 1
            o1 = rng.getrandbits(bits) if k != 1 else 1 << (bits - 1)
            off = size * rng.randrange(0, 64)
            p.mem.write(BASE + off, mem.to_bytes(size, "little"))
            res = bytearray(size)
            w = wr(k, op, res, off, size=size, operand1=o1, subop=sub or 0)
            c = one(p.do(w))
            assert (c.status, c.nbytes) == ("success", size)
            new = int.from_bytes(p.mem.read(BASE + off, size), "little")
            assert new == model(op, mem, o1, 0, bits, sub)
            assert new == atomic_apply(_opc(op), mem, o1, 0, bits, SUBOPS.get(sub, 0))
            if op == "atomic_store":
                assert w.result is None and res == bytes(size)
            else:
                assert w.result == mem and int.from_bytes(res, "little") == mem


def _opc(op):
    from ubpkt.stack.transaction.ops import OP_OPCODE
    return OP_OPCODE[op]


@pytest.mark.parametrize("size", ATOMIC_SIZES)
def test_compare_swap(size):
    bits = size * 8
    p = Pair()
    old = (1 << bits) - 3
    p.mem.write(BASE + size, old.to_bytes(size, "little"))
    w = wr(1, "compare_swap", None, size, size=size, operand1=5, operand2=old - 1)
    assert one(p.do(w)).status == "success" and w.result == old    # no match: unchanged
    assert int.from_bytes(p.mem.read(BASE + size, size), "little") == old
    w = wr(2, "compare_swap", None, size, size=size, operand1=5, operand2=old)
    assert one(p.do(w)).status == "success" and w.result == old    # match: swapped
    assert int.from_bytes(p.mem.read(BASE + size, size), "little") == 5
    # operands little-endian in the request, the old value big-endian in the response
    req = p.sent_requests[-1]
    assert bytes(req.payload) == (5).to_bytes(size, "little") + old.to_bytes(size, "little")
    assert bytes(p.sent_responses[-1].payload) == old.to_bytes(size, "big")


def test_atomic_executed_once_on_replay():
    p = Pair()
    p.mem.write(BASE + 64, (100).to_bytes(8, "little"))
    w = wr(1, "fetch_add", None, 64, size=8, operand1=7)
    p.ini.post(w)
    req = p.requests.popleft()
    raw = joined(req)
    p.tgt.on_request(raw, 1)
    p.tgt.on_request(raw, 2)                     # a retransmission after a lost response
    assert int.from_bytes(p.mem.read(BASE + 64, 8), "little") == 107
    r1, r2 = p.responses
    assert (r1.ta, bytes(r1.payload)) == (r2.ta, bytes(r2.payload))
    assert p.tgt.stats["replayed"] == 1
    p.run()
    assert one(p.ini.pop_completions()).status == "success" and w.result == 100
    # the Retry bit set (a TA-level retry) still matches; another operand does not
    lay = TaLayout(["ub.btah"])
    retry = (int.from_bytes(req.ta[:8], "big") | 1 << lay.shift["btah.retry"]).to_bytes(8, "big")
    p.tgt.on_request(memoryview(retry + bytes(raw[8:])), 3)
    assert int.from_bytes(p.mem.read(BASE + 64, 8), "little") == 107
    changed = bytearray(raw)
    changed[-16] ^= 1
    p.tgt.on_request(memoryview(bytes(changed)), 4)
    assert int.from_bytes(p.mem.read(BASE + 64, 8), "little") == 107 + 6


def test_replay_cache_is_bounded():
    p = Pair(atomic_replay_entries=4)
    for i in range(10):
        p.do(wr(i, "fetch_add", None, 0, size=8, operand1=1))
    assert len(p.tgt._replay) == 4


def test_atomic_errors():
    p = Pair()
    snap = p.mem.read(BASE, 4096)
    # misaligned, bad size (raw), no permission, bad token
    assert one(p.do(wr(1, "fetch_add", None, 4, size=8, operand1=1))).status == "unsupported"
    p.ini.post(wr(2, "swap", None, 0, size=8, operand1=1))
    req = p.requests.popleft()
    lay = TaLayout(["ub.btah", "ub.maetah", "ub.tvetah"])
    v = int.from_bytes(req.ta, "big")
    v = v & ~(lay.mask["maetah.length"] << lay.shift["maetah.length"]) | \
        3 << lay.shift["maetah.length"]
    p.requests.append(type(req)(lay.to_bytes(v), bytes(6), True, req.tag))
    p.run()
    assert one(p.ini.pop_completions()).status == "unsupported"
    assert one(p.do(wr(3, "swap", None, 0, size=8, operand1=1, tokenvalue=1))).status == \
        "remote_access_error"
    assert one(p.do(wr(4, "swap", None, 1 << 20, size=8, operand1=1))).status == \
        "remote_access_error"
    p.mem.register(BASE + (2 << 20), 64, tokenid=3, perms="rw")
    assert one(p.do(wr(5, "swap", None, 2 << 20, size=8, operand1=1, tokenid=3,
                       tokenvalue=None))).status == "remote_access_error"
    assert p.mem.read(BASE, 4096) == snap
    with pytest.raises(UBError):
        p.ini.post(wr(6, "swap", None, size=3))
    with pytest.raises(UBError):
        p.ini.post(wr(6, "atomic_load", None, size=8, subop="NAND"))


# -- errors change nothing ----------------------------------------------------------------------

@pytest.mark.parametrize("case", ["tokenvalue", "no_tokenvalue", "tokenid", "out_of_bounds",
                                  "straddle", "perm"])
def test_access_errors_change_no_byte(case):
    p = Pair(mtu=1024, size=8192)
    p.mem.register(BASE + 0x10000, 4096, tokenid=9, tokenvalue=TOKENVALUE, perms="r")
    rng = random.Random(2)
    p.mem.write(BASE, rng.randbytes(8192))
    snap = [bytes(r.buf) for r in p.mem.regions()]
    kw = {"tokenvalue": {"tokenvalue": 0x1234}, "no_tokenvalue": {"tokenvalue": None},
          "tokenid": {"tokenid": 4}, "out_of_bounds": {}, "straddle": {},
          "perm": {"tokenid": 9}}[case]
    off = {"out_of_bounds": 9000, "straddle": 8000, "perm": 0x10000}.get(case, 0)
    c = one(p.do(wr(1, "write", rng.randbytes(3000), off, **kw)))
    assert c.status == "remote_access_error" and c.nbytes == 0
    # an aligned atomic cannot straddle the end: the first one past it
    c = one(p.do(wr(2, "fetch_or", None, 8192 if case == "straddle" else off, size=8,
                    operand1=2**64 - 1, **kw)))
    assert c.status == "remote_access_error"
    off64 = 8160 if case == "straddle" else off
    c = one(p.do(wr(3, "write_with_be", bytes(64), off64, be=(1 << 64) - 1, **kw)))
    assert c.status == "remote_access_error"
    p.tgt.post_recv(bytearray(8), 1)
    c = one(p.do(wr(4, "write_with_immediate", bytes(64), off64, imm=1, **kw)))
    assert c.status == "remote_access_error"
    assert [bytes(r.buf) for r in p.mem.regions()] == snap
    dst = bytearray(b"\xAA" * 100)
    c = one(p.do(wr(5, "read", dst, off + 8100 if case == "straddle" else off, **kw)))
    if case == "perm":                                        # read is granted there
        assert c.status == "success"
    else:
        assert c.status == "remote_access_error" and dst == b"\xAA" * 100
    assert p.tgt.pop_completions() == []


@pytest.mark.parametrize("opcode", [0x02, 0x16])
def test_unsupported_opcode_gets_completer_error(opcode):
    # reserved TAOpcodes (Management, 0x10, has its own response: test_ta_mgmt.py)
    p = Pair()
    lay = TaLayout(["ub.btah"])
    ta = lay.to_bytes(lay.pack({"btah.taopcode": opcode, "btah.ini_tassn": 5,
                                "btah.ini_rc_id": 0x1ABCD}))
    p.tgt.on_request(memoryview(ta + bytes(4)), 0)
    rsp = p.responses.popleft()
    atah = TaLayout(["ub.atah"])
    v = int.from_bytes(rsp.ta, "big")
    assert (atah.get(v, "atah.rspst"), atah.get(v, "atah.rspinfo"),
            atah.get(v, "atah.ini_tassn")) == (3, 1, 5)


# -- completion order, retries, failure, limits -------------------------------------------------

def test_completion_order_tco():
    p = Pair()
    p.ini.post(wr(1, "read", bytearray(16), 0))
    p.ini.post(wr(2, "write", b"x", 64, order="NO"))
    p.ini.post(wr(3, "write", b"y", 128, order="SO_TCO"))
    read_req = p.requests.popleft()
    p.run()
    # the NO write completes at once; the TCO write waits for the read posted before it
    assert [c.wr_id for c in p.ini.pop_completions()] == [2]
    p.requests.append(read_req)
    p.run()
    assert [c.wr_id for c in p.ini.pop_completions()] == [1, 3]
    odr = TaLayout(["ub.btah"])
    seg3 = next(s for s in p.sent_requests if s.tag == 3)
    assert odr.get(int.from_bytes(seg3.ta[:8], "big"), "btah.odr") == 6


def test_ta_rnr_is_retried_with_retry_bit():
    p = Pair()
    p.ini.post(wr(1, "write", b"abc", 0))
    req = p.requests.popleft()
    atah = TaLayout(["ub.atah"])
    rnr = atah.to_bytes(atah.pack({"atah.taopcode": 0x11, "atah.rspst": 1, "atah.rspinfo": 3,
                                   "atah.ini_tassn": 0, "atah.ini_rc_id": 0x1ABCD}))
    p.ini.on_response(rnr, 1000)
    assert p.ini.next_deadline() == 1000 + 2000 * 8
    p.ini.handle_timeout(1000 + 2000 * 8 - 1)
    assert not p.requests
    p.ini.handle_timeout(1000 + 2000 * 8)
    again = p.requests[0]
    lay = TaLayout(["ub.btah"])
    assert lay.get(int.from_bytes(again.ta[:8], "big"), "btah.retry") == 1
    assert again.ta[8:] == req.ta[8:] and bytes(again.payload) == b"abc"
    p.run()
    assert one(p.ini.pop_completions()).status == "success"
    # page faults until the retries run out
    p.ini.post(wr(2, "write", b"abc", 0))
    p.requests.clear()
    pf = atah.pack({"atah.taopcode": 0x11, "atah.rspst": 2, "atah.ini_tassn": 1,
                    "atah.ini_rc_id": 0x1ABCD})
    for k in range(ini_mod.TA_RNR_RETRIES + 1):
        p.ini.on_response(atah.to_bytes(pf), p.now)
        p.requests.clear()
    assert one(p.ini.pop_completions()).status == "rnr_retry_exceeded"


def test_fail_all_and_limits():
    p = Pair(max_outstanding=3)
    for i in range(3):
        p.ini.post(wr(i, "write", b"z", 0))
    with pytest.raises(UBError):
        p.ini.post(wr(9, "write", b"z", 0))
    p.ini.fail_all("retry_exceeded", 77)
    comps = p.ini.pop_completions()
    assert [(c.wr_id, c.status, c.at) for c in comps] == [(i, "retry_exceeded", 77)
                                                         for i in range(3)]
    assert p.ini.outstanding == 0
    p.requests.clear()
    with pytest.raises(UBError):
        p.ini.post(WorkRequest(1, "frobnicate"))
    with pytest.raises(UBError):
        p.ini.post(wr(1, "read", b"read-only"))
    # header values are checked before anything is handed out
    for bad in (wr(1, "send", b"x", tcid=1 << 20), wr(1, "atomic_store", None, subop="NAND"),
                wr(1, "write", b"x", tokenid=1 << 20), wr(1, "write", b"x", order="XO"),
                WorkRequest(1, "write", b"xy", remote_addr=(1 << 64) - 1)):
        with pytest.raises(UBError):
            p.ini.post(bad)
    assert p.ini.outstanding == 0 and not p.requests


def test_tassn_window_backlog(monkeypatch):
    monkeypatch.setattr(ini_mod, "TASSN_WINDOW", 3)
    p = Pair(mtu=256)
    src = random.Random(4).randbytes(256 * 10)
    p.ini.post(wr(1, "write", src))
    p.ini.post(wr(2, "write", b"after", 4096))
    assert len(p.requests) == 3                   # the rest waits for TASSNs
    p.run()
    assert [c.wr_id for c in p.ini.pop_completions()] == [1, 2]
    assert p.mem.read(BASE, 2560) == src and p.mem.read(BASE + 4096, 5) == b"after"


def test_prefetch_and_no_taack():
    p = Pair()
    c = one(p.do(wr(1, "prefetch_tgt", None, 0, length=4096, tokenvalue=None)))
    assert (c.op, c.status) == ("prefetch_tgt", "success")
    assert not p.sent_responses and p.tgt.stats["prefetch"] == 1
    c = one(p.do(wr(2, "write", b"quiet", 0, no_taack=True)))
    assert c.status == "success" and not p.sent_responses
    assert p.mem.read(BASE, 5) == b"quiet"


def test_compact_forms():
    p = Pair(mtu=1024, compact=True, tokenvalue=None)
    src = random.Random(9).randbytes(2048 + 256)
    assert one(p.do(wr(1, "write", src, 0, tokenvalue=None))).status == "success"
    assert p.mem.read(BASE, len(src)) == src
    dst = bytearray(2048)
    assert one(p.do(wr(2, "read", dst, 0, tokenvalue=None))).status == "success"
    assert dst == src[:2048]
    assert [len(s.ta) for s in p.sent_requests[:3]] == [16, 16, 16]   # BTAH 4 + MAETAH 12
    assert one(p.do(wr(3, "write", bytes(64), 0, tokenid=1, tokenvalue=None))).status == \
        "remote_access_error"                                          # ATAH Status 1
    with pytest.raises(UBError):
        p.ini.post(wr(4, "write", bytes(100), 0, tokenvalue=None))     # not 64 x 2^k


def test_multi_packet_send_error_answered_once():
    p = Pair(mtu=256)
    c = one(p.do(wr(1, "send", bytes(1000), tcid=12)))          # no queue 12
    assert c.status == "unsupported"
    assert len(p.sent_requests) == 4 and len(p.sent_responses) == 1
    assert p.ini.stats["rx_unexpected"] == 0 and not p.tgt._msgs
    p.tgt.open_queue(12, tokenvalue=5)
    p.tgt.post_recv(bytearray(2000), 3, tcid=12)
    c = one(p.do(wr(2, "send", bytes(1000), tcid=12, tokenvalue=6)))
    assert c.status == "remote_access_error" and len(p.sent_responses) == 2
    assert p.tgt.pop_completions() == [] and len(p.tgt._queues[12].rqes) == 1


def test_held_taacks_go_on_time_or_on_flush():
    p = Pair(mtu=256, taack_aggregate=8)
    p.ini.post(wr(1, "write", bytes(1024)), 0)
    segs = list(p.requests)
    p.requests.clear()
    for s in segs[:2]:                                           # the initiator pauses
        p.tgt.on_request(memoryview(s.ta + bytes(s.payload)), 100, last=s.last)
    assert not p.responses and p.tgt.next_deadline() == 100 + 2000
    p.tgt.handle_timeout(2099)
    assert not p.responses
    p.tgt.handle_timeout(2100)
    assert len(p.responses) == 1 and p.tgt.next_deadline() is None
    p.tgt.on_request(memoryview(segs[2].ta + bytes(segs[2].payload)), 3000, last=False)
    p.tgt.flush()
    assert len(p.responses) == 2
    p.tgt.on_request(memoryview(segs[3].ta + bytes(segs[3].payload)), 3000, last=True)
    p.run()
    assert one(p.ini.pop_completions()).nbytes == 1024


def test_roi_holds_so_behind_ro():
    p = Pair()
    p.ini = ini_mod.Initiator(rc_id=0x1ABCD, tuning=p.tuning, submit=p.requests.append,
                              mode="roi")
    p.ini.post(wr(1, "write", b"a", 0, order="RO"))
    p.ini.post(wr(2, "write", b"b", 8, order="SO"))
    p.ini.post(wr(3, "write", b"c", 16, order="NO"))
    # the SO waits for the RO; what is posted after the SO waits behind it (post order)
    assert [s.tag for s in p.requests] == [1]
    p.run()
    assert [c.wr_id for c in p.ini.pop_completions()] == [1, 2, 3]
    assert p.mem.read(BASE, 17)[::8] == b"abc"
    # ROL (default) hands everything out at once
    q = Pair()
    for i, o in enumerate(("RO", "SO", "NO")):
        q.ini.post(wr(i, "write", b"x", 8 * i, order=o))
    assert len(q.requests) == 3


def test_response_lengths_checked():
    p = Pair()
    p.ini.post(wr(1, "fetch_add", None, 0, size=8, operand1=1))
    p.ini.post(wr(2, "read", bytearray(4), 64))
    p.requests.clear()
    atah = TaLayout(["ub.atah"])
    for opc, tassn, data in ((0x13, 0, bytes(4)), (0x12, 1, bytes(5))):
        head = atah.to_bytes(atah.pack({"atah.taopcode": opc, "atah.ini_tassn": tassn,
                                        "atah.ini_rc_id": 0x1ABCD}))
        p.ini.on_response(head + data, 1)
    assert [(c.wr_id, c.status) for c in p.ini.pop_completions()] == [
        (1, "remote_response_length_error"), (2, "remote_response_length_error")]
    # a response handed to the target is not answered
    p.tgt.on_request(memoryview(head), 2)
    assert not p.responses and p.tgt.stats["malformed"] == 1


def test_random_mix_against_a_model():
    """Random Writes, Reads, *_with_be, atomics and failing requests, posted several at a time;
    the target memory ends as a plain model of the same operations says."""
    rng = random.Random(2024)
    size = 1 << 16
    p = Pair(mtu=512, size=size, keep=False)
    model_mem = bytearray(size)
    pending_reads = []
    for rnd in range(60):
        batch = []
        for k in range(rng.randrange(1, 6)):
            i = rnd * 10 + k
            kind = rng.choice(["write", "read", "be", "atomic", "bad"])
            if kind == "write":
                n = rng.randrange(0, 3000)
                off = rng.randrange(0, size - n)
                data = rng.randbytes(n)
                model_mem[off:off + n] = data
                batch.append(wr(i, "write", data, off))
            elif kind == "read":
                n = rng.randrange(0, 3000)
                off = rng.randrange(0, size - n)
                buf = bytearray(n)
                # requests run in post order: the read sees the model as it is now
                pending_reads.append((buf, bytes(model_mem[off:off + n])))
                batch.append(wr(i, "read", buf, off))
            elif kind == "be":
                n = rng.choice([64, 128, 256, 512])
                off = rng.randrange(0, size - n)
                data, be = rng.randbytes(n), rng.getrandbits(n)
                for j in range(n):
                    if be >> j & 1:
                        model_mem[off + j] = data[j]
                batch.append(wr(i, "write_with_be", data, off, be=be))
            elif kind == "atomic":
                sz = rng.choice(ATOMIC_SIZES)
                off = sz * rng.randrange(0, size // sz)
                op = rng.choice(["fetch_add", "fetch_xor", "swap", "compare_swap"])
                o1 = rng.getrandbits(sz * 8)
                old = int.from_bytes(model_mem[off:off + sz], "little")
                o2 = old if rng.random() < 0.5 else rng.getrandbits(sz * 8)
                new = model(op, old, o1, o2, sz * 8)
                model_mem[off:off + sz] = new.to_bytes(sz, "little")
                batch.append(wr(i, op, None, off, size=sz, operand1=o1, operand2=o2))
            else:
                batch.append(wr(i, "write", b"bad", rng.randrange(0, size), tokenvalue=7))
        for w in batch:                             # all in flight together
            p.ini.post(w, p.now)
        p.run()
        for buf, want in pending_reads:
            assert buf == want
        pending_reads.clear()
        comps = p.ini.pop_completions()
        assert [c.wr_id for c in comps] == [w.wr_id for w in batch]
        for c, w in zip(comps, batch):
            assert c.status == ("remote_access_error" if w.tokenvalue == 7 else "success")
    assert bytes(p.region.buf) == bytes(model_mem)
