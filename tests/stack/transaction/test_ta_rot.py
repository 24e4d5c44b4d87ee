"""ROT (UB 2.0 §7.3.3.3): the initiator applies for a sequence context (BTAH.Alloc), the target
answers SV/SCID, later requests name the SC (INI_RC_Type Target_SC, INI_RC_ID SCID) and the
target orders them (method 2: an SO waits for the earlier TASSNs of its SC)."""
from __future__ import annotations

import random

import pytest

from ubpkt import SPEC, decode
from ubpkt.stack.network import Framer, Path
from ubpkt.stack.transaction.initiator import Initiator
from ubpkt.stack.transaction.ops import TaLayout, TransactionError, WorkRequest
from ubpkt.stack.transaction.target import Target

from ta_harness import BASE, TOKENID, TOKENVALUE, Pair

RCID = 0x1ABCD
SC = 2          # INI_RC_Type Target_SC
BTAH = TaLayout(["ub.btah"])
ATAH = TaLayout(["ub.atah"])


def rot_pair(*, sc_entries=4, scid=None, mtu=1024, **kw):
    p = Pair(mtu=mtu, **kw)
    p.ini = Initiator(rc_id=RCID, tuning=p.tuning, submit=p.requests.append, mode="rot",
                      scid=scid)
    p.tgt = Target(memory=p.mem, tuning=p.tuning, submit_response=p.responses.append,
                   sc_entries=sc_entries)
    return p


def wr(wr_id, op, local=None, off=0, **kw):
    kw.setdefault("tokenid", TOKENID)
    kw.setdefault("tokenvalue", TOKENVALUE)
    return WorkRequest(wr_id, op, local, remote_addr=BASE + off, **kw)


def fields(seg, psn=0):
    framer = Framer(Path(), SPEC)
    fr = framer.rtp_data(1, 2, psn, seg.ta, bytes(seg.payload), last=int(seg.last))
    rec = decode(fr, framer.path.linktype, SPEC)
    assert not [i for i in rec["issues"] if i["severity"] in ("error", "warning")]
    return rec["fields"]


def test_allocation_handshake_bytes():
    p = rot_pair()
    p.ini.post(wr(1, "write", b"a" * 100, 0))
    p.ini.post(wr(2, "write", b"b" * 100, 200, order="SO"))
    # the second work request waits for the application's answer
    assert len(p.requests) == 1
    p.run()
    c = p.ini.pop_completions()
    assert [(x.wr_id, x.status) for x in c] == [(1, "success"), (2, "success")]
    assert p.mem.read(BASE, 100) == b"a" * 100 and p.mem.read(BASE + 200, 100) == b"b" * 100
    r1, r2 = p.sent_requests
    a1, a2 = p.sent_responses
    f = fields(r1)
    assert (f["ub.btah.alloc"], f["ub.btah.ini_rc_type"], f["ub.btah.ini_rc_id"],
            f["ub.btah.ini_tassn"]) == (1, 0, RCID, 0)
    f = fields(a1, 1)
    scid = p.ini.scid
    assert p.tgt.sc_table() == {scid: (0, RCID)}
    assert (f["ub.atah.sv"], f["ub.atah.ini_tassn"], f["ub.atah.ini_rc_id"]) == (1, scid, RCID)
    f = fields(r2, 2)
    assert (f["ub.btah.alloc"], f["ub.btah.ini_rc_type"], f["ub.btah.ini_rc_id"],
            f["ub.btah.ini_tassn"]) == (0, SC, scid, 1)
    # the response to an SC request carries the RCID mapped to the SCID
    f = fields(a2, 3)
    assert (f["ub.atah.sv"], f["ub.atah.ini_tassn"], f["ub.atah.ini_rc_id"]) == (0, 1, RCID)
    assert p.ini.stats["rot_granted"] == 1 and p.ini.alloc_state == "granted"


def test_nonzero_scid_is_matched_to_the_allocating_request():
    p = rot_pair()
    p.tgt.assign_sc(0, 0x777)                          # SCID 0 taken by another RC
    p.ini._tassn = 0x1234
    dst = bytearray(3000)
    p.mem.write(BASE, bytes(range(250)) * 12)
    p.ini.post(wr(1, "read", dst, 0))                  # the application is a Read (3 packets)
    p.run()
    assert [(c.wr_id, c.status) for c in p.ini.pop_completions()] == [(1, "success")]
    assert dst == p.mem.read(BASE, 3000)
    assert p.ini.scid == 1
    # every Read_response packet of the application carries SV 1 and the SCID
    assert [(ATAH.get(int.from_bytes(s.ta[:8], "big"), "atah.sv"),
             ATAH.get(int.from_bytes(s.ta[:8], "big"), "atah.ini_tassn"))
            for s in p.sent_responses] == [(1, 1)] * 3
    assert p.ini.stats["rx_unexpected"] == 0 and not p.ini._inflight


def test_writes_and_reads_complete_in_rot_mode():
    rng = random.Random(8)
    p = rot_pair(mtu=256, taack_aggregate=4)
    data = {}
    n = 0
    for i in range(30):
        size = rng.choice([1, 255, 256, 257, 1000])
        off = 2048 * i
        data[off] = rng.randbytes(size)
        n += 1
        p.ini.post(wr(n, "write", data[off], off, order=rng.choice(["NO", "RO", "SO"])))
    bufs = {}
    for off, src in data.items():
        n += 1
        bufs[off] = bytearray(len(src))
        p.ini.post(wr(n, "read", bufs[off], off, order=rng.choice(["NO", "RO", "SO"])))
    n += 1
    res = bytearray(8)
    p.ini.post(wr(n, "fetch_add", res, 1 << 16, size=8, operand1=7, order="SO"))
    p.run()
    comps = p.ini.pop_completions()
    assert len(comps) == n and all(c.status == "success" for c in comps)
    for off, src in data.items():
        assert p.mem.read(BASE + off, len(src)) == src and bufs[off] == src
    # after the application every request names the SC; nothing waited at the initiator
    scid = p.ini.scid
    rcs = [(BTAH.get(int.from_bytes(s.ta[:8], "big"), "btah.ini_rc_type"),
            BTAH.get(int.from_bytes(s.ta[:8], "big"), "btah.ini_rc_id")) for s in p.sent_requests]
    first_n = sum(1 for r in rcs if r == (0, RCID))
    assert first_n >= 1 and set(rcs[first_n:]) == {(SC, scid)}
    alloc = [BTAH.get(int.from_bytes(s.ta[:8], "big"), "btah.alloc") for s in p.sent_requests]
    assert alloc[0] == 1 and sum(alloc) == 1           # only the first TASSN applies
    assert all(ATAH.get(int.from_bytes(s.ta[:8], "big"), "atah.ini_rc_id") == RCID
               for s in p.sent_responses)
    assert p.tgt.stats["sc_held"] == 0                 # in order over a direct wire
    assert p.ini.stats["rx_unexpected"] == 0 and p.ini.outstanding == 0


def test_refused_allocation_falls_back_to_roi():
    p = rot_pair(sc_entries=1)
    p.tgt.assign_sc(0, 0x777)                          # the only SC is taken
    p.ini.post(wr(1, "write", b"x" * 10, 0))
    p.run()
    a = p.sent_responses[0]
    f = fields(a)
    assert (f["ub.atah.sv"], f["ub.atah.ini_tassn"]) == (0, 0)
    assert p.ini.alloc_state == "refused" and p.ini.roi and p.ini.scid is None
    assert p.ini.stats["rot_fallbacks"] == 1 and p.tgt.stats["sc_refused"] == 1
    # ROI from now on: an SO waits for the RO before it at the initiator
    p.ini.post(wr(2, "write", b"r" * 10, 100, order="RO"))
    p.ini.post(wr(3, "write", b"s" * 10, 200, order="SO"))
    assert len(p.requests) == 1
    p.run()
    assert [(c.wr_id, c.status) for c in p.ini.pop_completions()] == [
        (1, "success"), (2, "success"), (3, "success")]
    assert p.mem.read(BASE + 200, 10) == b"s" * 10
    assert {BTAH.get(int.from_bytes(s.ta[:8], "big"), "btah.ini_rc_type")
            for s in p.sent_requests} == {0}


def test_static_scid_skips_the_application():
    p = rot_pair(scid=5)
    p.tgt.assign_sc(5, RCID, 0, first_tassn=0)
    for i in range(3):
        p.ini.post(wr(i, "write", bytes([i]) * 8, 8 * i, order="SO"))
    assert len(p.requests) == 3                        # no waiting at the initiator
    p.run()
    assert [c.status for c in p.ini.pop_completions()] == ["success"] * 3
    assert all(BTAH.get(int.from_bytes(s.ta[:8], "big"), "btah.alloc") == 0 and
               BTAH.get(int.from_bytes(s.ta[:8], "big"), "btah.ini_rc_id") == 5
               for s in p.sent_requests)
    assert p.ini.stats["rot_alloc_requests"] == 0


def test_target_holds_an_so_behind_an_earlier_ro():
    """Fed out of order directly: TASSN 2 (SO) arrives before TASSN 1 (RO); the SO is held
    and executed after the RO, and the responses carry the RCID mapped to the SCID."""
    p = rot_pair(scid=3)
    p.tgt.assign_sc(3, RCID, 0, first_tassn=0)
    p.ini.post(wr(1, "write", b"N" * 8, 0, order="NO"))
    p.ini.post(wr(2, "write", b"R" * 8, 0x100, order="RO"))
    p.ini.post(wr(3, "write", b"S" * 8, 0x100, order="SO"))   # must land after the RO
    s0, s1, s2 = list(p.requests)
    p.requests.clear()
    tgt = p.tgt
    order = []
    acc = tgt.memory.access

    def spy(addr, n, *a):
        order.append(addr)
        return acc(addr, n, *a)
    tgt.memory.access = spy
    for seg in (s0, s2):
        tgt.on_request(bytes(seg.ta) + bytes(seg.payload), last=seg.last)
    assert tgt.stats["sc_held"] == 1
    assert p.mem.read(BASE + 0x100, 8) == bytes(8)            # the SO has not run
    tgt.on_request(bytes(s1.ta) + bytes(s1.payload), last=s1.last)
    tgt.flush()
    assert order == [BASE, BASE + 0x100, BASE + 0x100]
    assert p.mem.read(BASE + 0x100, 8) == b"S" * 8            # RO first, then SO
    rsp = [int.from_bytes(s.ta[:8], "big") for s in p.responses]
    assert {(ATAH.get(v, "atah.ini_rc_type"), ATAH.get(v, "atah.ini_rc_id")) for v in rsp} == \
        {(0, RCID)}
    acked = set()
    for v in rsp:
        t = ATAH.get(v, "atah.ini_tassn")
        acked |= {(t + k) & 0xFFFF for k in range(ATAH.get(v, "atah.rspinfo") + 1)}
    assert acked == {0, 1, 2}
    p.run()
    assert [c.status for c in p.ini.pop_completions()] == ["success"] * 3


def test_target_so_waits_for_every_earlier_tassn_and_no_runs_at_once():
    p = rot_pair(scid=1)
    p.tgt.assign_sc(1, RCID, 0, first_tassn=0)
    for i, o in enumerate(["SO", "RO", "NO", "SO"]):
        p.ini.post(wr(i, "write", bytes([0x41 + i]) * 4, 16 * i, order=o))
    segs = list(p.requests)
    p.requests.clear()
    feed = lambda s: p.tgt.on_request(bytes(s.ta) + bytes(s.payload), last=s.last)
    feed(segs[3])                                       # SO, TASSN 3: held
    feed(segs[2])                                       # NO: runs at once
    assert p.mem.read(BASE + 32, 4) == b"CCCC" and p.mem.read(BASE + 48, 4) == bytes(4)
    feed(segs[1])                                       # RO: runs, TASSN 0 still missing
    assert p.mem.read(BASE + 48, 4) == bytes(4)
    feed(segs[0])                                       # SO at TASSN 0: runs, releases 3
    assert p.mem.read(BASE + 48, 4) == b"DDDD" and p.tgt.stats["sc_held"] == 1
    p.tgt.flush()
    p.run()
    assert [c.status for c in p.ini.pop_completions()] == ["success"] * 4


def test_unknown_scid_is_unsupported_and_bad_arguments():
    p = rot_pair(scid=9)                                # the target never provisioned SC 9
    p.ini.post(wr(1, "write", b"z", 0))
    p.run()
    # the target cannot know the RCID: the Unsupported TAACK echoes the SCID, which the
    # initiator does not take as its own
    assert p.tgt.stats["sc_unknown"] == 1
    v = int.from_bytes(p.sent_responses[0].ta[:8], "big")
    assert (ATAH.get(v, "atah.rspst"), ATAH.get(v, "atah.rspinfo"),
            ATAH.get(v, "atah.ini_rc_type"), ATAH.get(v, "atah.ini_rc_id")) == (3, 1, SC, 9)
    assert p.ini.stats["rx_wrong_rc"] == 1 and p.ini.outstanding == 1
    with pytest.raises(TransactionError):
        Initiator(rc_id=1, submit=print, mode="rot", compact=True)
    with pytest.raises(TransactionError):
        Initiator(rc_id=1, submit=print, scid=3)        # scid without ROT


def test_multi_segment_application_and_lost_order():
    """The application is a 4-segment Write: only its first TASSN carries Alloc, the other
    segments follow under the RC's own id (the SC tracks them too), then SO requests under the
    SC delivered in reverse are executed in TASSN order."""
    p = rot_pair(mtu=256, taack_aggregate=8)
    p.ini.post(wr(1, "write", b"w" * 1000, 0))
    p.run()
    assert [BTAH.get(int.from_bytes(s.ta[:8], "big"), "btah.alloc")
            for s in p.sent_requests] == [1, 0, 0, 0]
    assert p.ini.alloc_state == "granted"
    for i in range(4):
        p.ini.post(wr(10 + i, "write", bytes([i + 1]) * 4, 0x1000, order="SO"))
    segs = list(p.requests)
    p.requests.clear()
    for s in reversed(segs):
        p.tgt.on_request(bytes(s.ta) + bytes(s.payload), last=s.last)
    assert p.tgt.stats["sc_held"] == 3
    assert p.mem.read(BASE + 0x1000, 4) == b"\x04" * 4        # the last SO wrote last
    p.tgt.flush()
    p.run()
    assert [c.status for c in p.ini.pop_completions()] == ["success"] * 5
