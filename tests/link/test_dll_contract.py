"""The DLL engine on the engine contract: typed events, state tables, the fast receive and
transmit paths against the reference ones, and retry driven by the per-flit FEC flag."""
import random

import pytest

from channel import Link
from ubpkt.engine import Engine, Event, IllegalTransition
from ubpkt.link import control as C
from ubpkt.link.blocks import seal
from ubpkt.link.crc30 import bcrc_patch, block_crc
from ubpkt.link.dll import (ACK_TRANSITIONS, DLL_TRANSITIONS, REQ_TRANSITIONS, AckState,
                            DLLEngine, DllState, PacketDelivered, ReqState, RetryRequested)
from ubpkt.link.framing import fill_plength, frame_blocks
from ubpkt.profile import SPEC


def mk(vl, n, i, rng, crc_mode=True):
    head = bytes(((vl >> 3) & 1, ((vl & 7) << 5) | 6, 0, 0))
    return fill_plength(head + i.to_bytes(4, "big") + rng.randbytes(n - 8), crc_mode)


def test_engine_follows_the_contract():
    e = DLLEngine()
    assert isinstance(e, Engine)
    e.link_up(5)
    ev = e.pop_events()
    assert ev and all(isinstance(x, Event) and x.at == 5 for x in ev)
    assert [(x.machine, x.new) for x in ev] == [("DLL", "DLL_Param_Init"),
                                               ("RETRY_REQ_SM", "REQ")]
    assert ev[0]["event"] == "state" and ev[0]["state"] == "DLL_Param_Init"   # dict reading
    assert e.pop_events() == []


def test_state_tables():
    assert DLL_TRANSITIONS.reachable(DllState.DISABLED) == set(DllState)
    assert REQ_TRANSITIONS.reachable(ReqState.NORMAL) == set(ReqState)
    assert ACK_TRANSITIONS.reachable(AckState.NORMAL) == set(AckState)
    with pytest.raises(IllegalTransition):
        DLL_TRANSITIONS.move(DllState.DISABLED, DllState.NORMAL, 0)
    with pytest.raises(IllegalTransition):
        REQ_TRANSITIONS.move(ReqState.ERROR, ReqState.NORMAL, 0)
    e = DLLEngine()
    with pytest.raises(IllegalTransition):           # the engine moves only through the table
        e._set_state(DllState.NORMAL, [])


def _run(fast, crc_mode, seed, p_flip, p_fec, rate, fill, *, steps=3000, npk=40, every=3,
         batch=1, **tuning):
    prof = SPEC.with_(crc_mode=crc_mode, dll_vl_enable=3, **tuning)
    a = DLLEngine(prof, fast_rx=fast, fast_tx=fast)
    b = DLLEngine(prof, fast_rx=fast, fast_tx=fast, guid=7)
    link = Link(a, b, seed=seed, rate=rate, p_flip=p_flip, p_fec=p_fec, fill=fill)
    wire = []
    put = link.ab.put

    def spy(t, data):
        wire.append((t, data))
        put(t, data)
    link.ab.put = spy
    link.up()
    rng = random.Random(seed)
    sent = 0
    for _ in range(steps):
        link.step()
        if a.status_up and sent < npk and link.t % every == 0:
            for _ in range(batch):
                for src in (a, b):
                    src.send(mk(sent % 2, rng.randrange(8, 2500), sent, rng, crc_mode))
                sent += 1
    strip = [(type(e).__name__, {k: v for k, v in vars_(e).items()})
             for e in link.events[id(a)] + link.events[id(b)]]
    return wire, strip, a.stats, b.stats


def vars_(e):
    return {f: getattr(e, f) for f in e.__dataclass_fields__}


@pytest.mark.parametrize("crc_mode,p_flip,p_fec,rate,fill", [
    (True, 3e-3, 2e-3, 16, False), (True, 0, 0, 12, True), (False, 0, 4e-3, 16, False),
    (True, 1e-2, 0, 4, True)])
def test_fast_paths_match_the_reference_flit_by_flit(crc_mode, p_flip, p_fec, rate, fill):
    """The fast receive and transmit paths against the reference ones (one flit / one block at
    a time): same flits out at every tick, same events (in order, every field), same
    counters."""
    ref = _run(False, crc_mode, 3, p_flip, p_fec, rate, fill)
    fast = _run(True, crc_mode, 3, p_flip, p_fec, rate, fill)
    assert fast[0] == ref[0]
    assert fast[1] == ref[1]
    assert fast[2] == ref[2] and fast[3] == ref[3]
    assert sum(1 for n, _ in ref[1] if n == "PacketDelivered") >= 60


@pytest.mark.parametrize("crc_mode,p_flip,p_fec,depth,gap", [
    (True, 0, 0, 2048, 0), (True, 0, 0, 100, 0), (True, 3e-4, 0, 160, 0),
    (False, 0, 3e-4, 160, 0), (True, 0, 0, 2048, 40)])
def test_bursts_of_many_blocks_match_the_reference(crc_mode, p_flip, p_fec, depth, gap):
    """Large transmit calls (many blocks, several DLLDPs per call and per received run), a
    small retry buffer (the Crd_Ack forced by a low NumFreeBuf inside a burst) and NOB pacing
    (PACKET_MIN_INTERVAL: NOBs due after a short DLLDP end a burst)."""
    kw = dict(steps=500, npk=90, every=2, batch=3, retry_buf_depth=depth,
              dll_packet_min_interval=gap)
    ref = _run(False, crc_mode, 5, p_flip, p_fec, 160, False, **kw)
    fast = _run(True, crc_mode, 5, p_flip, p_fec, 160, False, **kw)
    assert fast[0] == ref[0]
    assert fast[1] == ref[1]
    assert fast[2] == ref[2] and fast[3] == ref[3]
    assert sum(1 for n, _ in ref[1] if n == "PacketDelivered") >= 120


def test_batched_framing_and_patched_bcrc_equal_sealing_block_by_block():
    rng = random.Random(9)
    for crc_mode in (True, False):
        for covers in (True, False):
            for n in (5, 20, 637, 640, 1278, 4096, 10146):
                p = fill_plength(bytes((0, 6, 0, 0)) + rng.randbytes(n - 4), crc_mode)
                blocks = frame_blocks(p, crc_mode, covers_info=covers, error_flag=n % 2 == 0)
                for i, blk in enumerate(blocks):
                    ref = bytearray(blk)
                    last = i == len(blocks) - 1
                    seal(ref, crc_mode, error_flag=n % 2 == 0 and last, end=last,
                         covers_info=covers)
                    assert ref == blk
                    if crc_mode:        # CRD/ACK bits set later: patch == recompute
                        word = int.from_bytes(blk[-4:], "big")
                        d = rng.randrange(1, 64) << 2
                        changed = bytes((blk[0] ^ d,)) + bytes(blk[1:-4])
                        assert bcrc_patch(word & 0x3FFFFFFF, len(blk) - 4, d, covers) == \
                            block_crc(changed, word >> 30, covers)


def _pair(prof):
    a, b = DLLEngine(prof, name="a"), DLLEngine(prof, name="b")
    link = Link(a, b)
    link.up()
    assert link.run(20000, until=lambda: a.status_up and b.status_up)
    return a, b, link


@pytest.mark.parametrize("crc_mode", [True, False])
@pytest.mark.parametrize("bad", [0, 5, 31, 40])
def test_fec_flag_on_a_chosen_flit_drives_the_retry(crc_mode, bad):
    """The PHY's per-flit FEC status: a failed flit (its bytes intact here, so only the flag
    can tell) makes the receiver request a replay; the packet arrives once, intact.  In
    non-CRC mode RcvPtr points at the failed flit itself (UB 2.0 §4.7.3.2.2); in CRC mode at
    the start of its block."""
    prof = SPEC.with_(crc_mode=crc_mode)
    a, b, link = _pair(prof)
    link.run(200)
    link.events[id(b)].clear()
    p = mk(0, 1600, 1, random.Random(bad), crc_mode)    # 3 blocks: 32 + 32 + a few flits
    assert a.send(p)
    t = link.t * 10
    flits = a.transmit(t, 1000)
    a.pop_events()
    start = b.rcvptr
    nflits = len(flits) // 20
    assert nflits > bad
    fec = [i != bad for i in range(nflits)]
    b.receive(flits, t, fec)
    ev = b.pop_events()
    [retry] = [e for e in ev if isinstance(e, RetryRequested)]
    assert retry.reason == "FEC decoding failure" and b.stats["fec_errors"] == 1
    expect = bad if not crc_mode else (bad // 32) * 32
    assert retry.rcvptr == (start + expect) % b.peer_depth
    assert not [e for e in ev if isinstance(e, PacketDelivered)]
    assert b.req_sm == ReqState.REQ
    link.events[id(b)] += ev
    assert link.run(2000, until=lambda: link.delivered(b))
    link.run(200)
    assert [e.packet for e in link.delivered(b)] == [p]
    assert a.stats["replayed_flits"] == nflits - expect


def test_fec_false_for_a_whole_receive_and_crc_mode_needs_no_flag():
    a, b, link = _pair(SPEC)
    link.run(100)
    p = mk(0, 300, 2, random.Random(1))
    a.send(p)
    t = link.t * 10
    flits = bytearray(a.transmit(t, 100))
    flits[30] ^= 1                         # damaged, FEC says nothing: the BCRC catches it
    b.receive(bytes(flits), t)
    assert [e.reason for e in b.pop_events() if isinstance(e, RetryRequested)] == \
        ["BCRC mismatch"]
    c = DLLEngine(SPEC)
    c.link_up(0)
    c.pop_events()
    c.receive(C.retry_ack_set(0, 100, 0, 0), 10, False)     # every flit failed
    assert c.stats["fec_errors"] == len(C.retry_ack_set(0, 100, 0, 0)) // 20
    assert c.req_sm != ReqState.NORMAL


def test_the_wire_is_the_same_on_every_crc30_engine():
    """The compiled CRC30 engines and the pure-Python/numpy reference give the same flits,
    events and counters for an engine pair over a lossy channel."""
    import importlib
    crc = importlib.import_module("ubpkt.link.crc30")
    if crc.backends() == ["python"]:
        pytest.skip("no compiled CRC30 engine here: only the reference is there")
    kw = dict(steps=400, npk=60, every=1, retry_buf_depth=300)
    runs = {}
    old = crc.BACKEND
    try:
        for name in crc.backends():
            crc.set_backend(name)
            runs[name] = _run(True, True, 8, 3e-4, 0, 128, False, **kw)
    finally:
        crc.set_backend(old)
    ref = runs.pop("python")
    assert all(run == ref for run in runs.values())
    assert ref[2]["crc_errors"] + ref[3]["crc_errors"] > 0


def test_waiting_receiver_skips_to_retry_blocks_and_counts_what_it_skipped():
    """In REQ/WAIT the fast path jumps from one possible Retry block to the next; the flits
    in between still count (a second Retry_Req_Set for the same RcvPtr more than a set's
    length later is a new request, not the rest of the first one), as do their FEC
    failures."""
    from ubpkt.link.dll import ReplayStarted
    results = []
    for fast in (False, True):
        prof = SPEC.with_()
        a = DLLEngine(prof, name="a", fast_rx=fast, fast_tx=fast)
        b = DLLEngine(prof, name="b", fast_rx=fast, fast_tx=fast)
        link = Link(a, b)
        link.up()
        assert link.run(20000, until=lambda: a.status_up and b.status_up)
        link.run(50)
        t = link.t * 10
        b.receive(C.null(), t, False)            # a failed flit: REQ
        b.transmit(t, 100)                       # the Retry_Req_Set goes out: WAIT
        assert b.req_sm == ReqState.WAIT
        b.pop_events()
        req = C.retry_req_set(b.rb.wrptr)
        fill = C.null() * 40
        flits = req + fill + req + C.null() * 3
        fec = [True] * (len(flits) // 20)
        fec[40] = False                          # one failed Null among the skipped ones
        b.receive(flits, t + 10, fec)
        ev = b.pop_events()
        results.append(([(type(e).__name__, vars_(e)) for e in ev], dict(b.stats),
                        b._rx_index))
        assert sum(isinstance(e, ReplayStarted) for e in ev) == 2
    assert results[0] == results[1]


def test_compiled_delimiter_equals_the_python_one():
    """``ubpkt._linkc.delimit`` against the engine's Python delimiting and BCRC checks: framed
    streams with control blocks between DLLDBs, cut anywhere (a DLLDP open at the start),
    damaged bytes and random garbage, in both modes."""
    import importlib
    crc = importlib.import_module("ubpkt.link.crc30")
    if "native" not in crc.backends():
        pytest.skip("the C extension ubpkt._linkc was not built")
    rng = random.Random(12)
    for crc_mode in (True, False):
        e = DLLEngine(SPEC.with_(crc_mode=crc_mode))
        stream = bytearray()
        for i in range(30):
            stream += b"".join(frame_blocks(mk(i % 3, rng.randrange(8, 3000), i, rng,
                                                  crc_mode), crc_mode))
            stream += C.crd_ack(1, [2], crc_mode=crc_mode)
        cases = [(bytes(stream), None)]
        for _ in range(200):
            data = bytearray(stream[rng.randrange(len(stream) // 20) * 20:])
            for _ in range(rng.randrange(3)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            pending = None if rng.random() < 0.5 else (rng.randrange(1, 17),
                                                       rng.randrange(1, 33))
            cases.append((bytes(data), pending))
        cases += [(rng.randbytes(20 * rng.randrange(1, 60)), None) for _ in range(100)]
        for data, pending in cases:
            total = len(data) // 20
            for covers in (True, False):
                e.covers = covers
                want = e._delimit(bytearray(data), total, pending)
                got = crc._NATIVE.delimit(data, total, pending, crc_mode, covers)
                assert (list(got[0]), list(got[1]), got[2]) == want


SMALL_RX = dict(rx_buffer_cells=96, crd_ack_force_cells=6)
SHARED = dict(rxbuf_vl_share=1, use_shared_credits=True, shared_reserve_cells=4,
              rx_buffer_cells=160)


@pytest.mark.parametrize("crc_mode,p_flip,p_fec,depth,gap,extra", [
    (True, 0, 0, 2048, 0, {}), (True, 0, 0, 100, 0, {}), (True, 3e-4, 0, 160, 0, {}),
    (False, 0, 3e-4, 160, 0, {}), (True, 0, 0, 2048, 40, {}), (True, 0, 0, 2048, 0, SMALL_RX),
    (True, 1e-4, 0, 400, 0, SHARED), (False, 0, 0, 2048, 0, SHARED)])
def test_compiled_burst_equals_the_python_burst(crc_mode, p_flip, p_fec, depth, gap, extra,
                                                monkeypatch):
    """``ubpkt._linkc.tx_plan`` (a transmit call's whole data burst in C: forced and idle
    Crd_Acks, DLLDPs started from the VL queues, each block through ``tx_run``'s loop) against
    the burst's Python loop (``fast_tx_native = False``): same flits on the wire at every
    tick, same events, same counters, with credits and ACKs piggy-backed, a small retry
    buffer, NOB pacing, a receive buffer small enough that credits run out and Crd_Acks are
    forced by owed credits, and shared credits (RXBUF_VL_SHARE)."""
    import importlib
    crc = importlib.import_module("ubpkt.link.crc30")
    if "native" not in crc.backends() or crc.BACKEND != "native":
        pytest.skip("the C extension ubpkt._linkc was not built (or another CRC30 engine "
                    "was chosen)")
    kw = dict(steps=500, npk=90, every=2, batch=3, retry_buf_depth=depth,
              dll_packet_min_interval=gap, **extra)
    native = _run(True, crc_mode, 5, p_flip, p_fec, 160, False, **kw)
    monkeypatch.setattr(DLLEngine, "fast_tx_native", False)
    python = _run(True, crc_mode, 5, p_flip, p_fec, 160, False, **kw)
    monkeypatch.undo()
    assert native[0] == python[0]
    assert native[1] == python[1]
    assert native[2] == python[2] and native[3] == python[3]
    if extra:
        # and the reference scheduler, block by block
        assert _run(False, crc_mode, 5, p_flip, p_fec, 160, False, **kw) == python
    assert sum(1 for n, _ in python[1] if n == "PacketDelivered") >= 120


@pytest.mark.parametrize("crc_mode", [True, False])
def test_every_packet_length_is_delivered_as_sent(crc_mode):
    """Delivery joins the DLLDP's bodies once, cutting the padding after the packet's last
    byte from the last body (or from the joined bytes when the padding reaches further back):
    every length over one to three blocks, across each block and flit boundary, arrives as
    sent, CRD/ACK bits cleared (they are 0 as sent)."""
    prof = SPEC.with_(crc_mode=crc_mode)
    a, b, link = _pair(prof)
    rng = random.Random(7)
    lengths = list(range(8, 700)) + list(range(1240, 1330)) + list(range(2500, 2600))
    sent = []
    for i, n in enumerate(lengths):
        p = mk(0, n, i, rng, crc_mode)
        sent.append(p)
        assert a.send(p)
        if i % 40 == 39:
            assert link.run(50000, until=lambda: len(link.delivered(b)) == len(sent))
    assert link.run(50000, until=lambda: len(link.delivered(b)) == len(sent))
    assert [e.packet for e in link.delivered(b)] == sent


def test_compiled_burst_refuses_bad_arguments():
    """``tx_plan`` reads engine state handed over by Python: malformed state raises (never a
    crash, never a partly written burst of wrong bytes)."""
    nat = pytest.importorskip("ubpkt._linkc", reason="the C extension ubpkt._linkc was not built")
    from collections import deque
    cfg = (2, 128, 32, 32, (4,) * 16, 1, (1,) * 16, 8, 0, True, True, C.CRD_LCH)

    def call(**kw):
        a = dict(out=bytearray(), want=400, cur=None, txq=[deque() for _ in range(16)], rr=0,
                 excl=[0] * 16, share=0, shared=False, kept={}, kept_at=deque(), wr=0, tail=0,
                 depth=2048, pending=0, worthy=0, owed=[0] * 16, cfg=cfg)
        a.update(kw)
        return nat.tx_plan(*a.values())
    assert call()[0] == 2                               # nothing to send: idle
    owed = [0] * 16
    owed[1] = 5
    got = call(owed=owed)                               # credits owed, no data: idle Crd_Ack
    assert got[0] == 2 and got[9] == 1 and owed[1] == 0
    with pytest.raises(ValueError):
        call(txq=[deque()] * 3)
    with pytest.raises(ValueError):
        call(cfg=cfg[:-1] + (b"\x00",))
    with pytest.raises(ValueError):
        call(cur=[[], 0])
    with pytest.raises(TypeError):
        q = [deque() for _ in range(16)]
        q[0].append(("not", "a", "queue", "entry"))
        call(txq=q, excl=[100] * 16)
    with pytest.raises(TypeError):
        call(cur=[[b"bytes, not a bytearray"], 0, 0, 1])
