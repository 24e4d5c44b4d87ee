import random

import pytest

from channel import Link
from ubpkt.link import control as C
from ubpkt.link.engine import CREDIT_INIT, DISABLED, NORMAL_STATE, PARAM_INIT, DLLEngine
from ubpkt.link.framing import fill_plength
from ubpkt.profile import SPEC


def mk(vl, n, i, rng, crc_mode=True):
    head = bytes(((vl >> 3) & 1, ((vl & 7) << 5) | 6, 0, 0))
    return fill_plength(head + i.to_bytes(4, "big") + rng.randbytes(n - 8), crc_mode)


def up(prof=SPEC, **kw):
    a, b = DLLEngine(prof, name="a"), DLLEngine(prof, name="b", guid=0xABCDEF, port_idx=4)
    link = Link(a, b, **kw)
    link.up()
    assert link.run(20000, until=lambda: a.status_up and b.status_up), (a.state, b.state)
    return a, b, link


def test_bring_up_sequence():
    a, b, link = up()
    states = [e["state"] for e in link.events[id(a)]
              if e["event"] == "state" and e.machine == "DLL"]
    assert states == [PARAM_INIT, CREDIT_INIT, NORMAL_STATE]
    names = [e["event"] for e in link.events[id(a)]]
    assert names.index("retry_done") < names.index("negotiated")
    link.run(50)
    # b advertises its neighbour info once in DLL_Normal (Param_Exchg, §10.4.4)
    adv = [e for e in link.events[id(a)] if e["event"] == "param_exchg"]
    assert adv and adv[0]["neighbor"] == {"guid": 0xABCDEF, "port_idx": 4}
    assert a.tx_credits.excl[0] == SPEC.tuning.rx_buffer_cells  # VL0 only
    assert not a.send(b"\x00\x06\x00\x00")                # too short
    assert not DLLEngine().send(mk(0, 20, 0, random.Random()))   # not up


def run_traffic(seed, p_flip, p_fec, npk, maxlen, prof=SPEC, vls=4, check=None):
    rng = random.Random(seed)
    prof = prof.with_(dll_vl_enable=(1 << vls) - 1)
    a, b, link = up(prof, seed=seed, p_flip=p_flip, p_fec=p_fec)
    sent = {id(a): {}, id(b): {}}
    backlog = []
    for i in range(npk):
        for src in (a, b):
            vl = rng.randrange(vls)
            p = mk(vl, rng.randrange(8, maxlen), i, rng, prof.crc_mode)
            backlog.append((src, vl, p))
    rb_peak = 0

    def step_check():
        nonlocal rb_peak
        for e in (a, b):
            tc = e.tx_credits
            assert min(tc.excl) >= 0 and tc.share >= 0                  # never negative
            assert all(tc.excl[v] <= tc.initial[v] for v in range(16)) or tc.shared
            assert 0 <= e.rb.numfreebuf <= e.rb.depth
            rb_peak = max(rb_peak, e.rb.depth - e.rb.numfreebuf)
        return False

    for src, vl, p in backlog:
        assert src.send(p)
        sent[id(src)].setdefault(vl, []).append(p)
    total = npk

    def done():
        step_check()
        return (len(link.delivered(a)) >= total and len(link.delivered(b)) >= total
                and a.idle() and b.idle())
    assert link.run(300000, until=done), (a.stats, b.stats, a.req_sm, b.req_sm)
    link.run(500)
    for src, dst in ((a, b), (b, a)):
        got = {}
        for e in link.delivered(dst):
            got.setdefault(e["vl"], []).append(e["packet"])
        assert got == sent[id(src)]                     # exactly once, in order per VL
        tc = src.tx_credits
        assert tc.total() == tc.initial_total           # no credit leaked
        assert dst.rx_credits.owed() == 0 and sum(dst.rx_credits.used) == 0
    fatal = [e for e in link.errors(a) + link.errors(b) if e["severity"] == "error"]
    assert not fatal, fatal
    return a, b, link


def test_traffic_clean():
    a, b, link = run_traffic(1, 0, 0, 120, 2500)
    assert a.stats["retries"] == b.stats["retries"] == 0


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_traffic_under_loss_and_corruption(seed):
    a, b, link = run_traffic(seed, 2e-3, 2e-3, 80, 2500)
    assert a.stats["retries"] + b.stats["retries"] > 0


def test_traffic_heavy_errors_small_packets():
    run_traffic(5, 1e-2, 5e-3, 150, 120)


def test_traffic_noncrc_fec_only():
    prof = SPEC.with_(crc_mode=False)
    a, b, link = run_traffic(6, 0, 3e-3, 60, 2000, prof=prof)
    assert a.stats["fec_errors"] + b.stats["fec_errors"] > 0
    # §4.7.3.2.2: resending started at the failed flit, inside a block
    assert a.rb.mid_block_replays + b.rb.mid_block_replays > 0


def test_traffic_noncrc_block_granular():
    prof = SPEC.with_(crc_mode=False, noncrc_block_granular_retry=True)
    a, b, link = run_traffic(8, 0, 3e-3, 60, 2000, prof=prof)
    assert a.rb.mid_block_replays + b.rb.mid_block_replays == 0


def test_shared_credits_and_small_grain():
    prof = SPEC.with_(rxbuf_vl_share=1, use_shared_credits=True, rx_buffer_cells=200,
                      dll_flow_ctrl_size=0x04, shared_reserve_cells=4)
    a, b, link = run_traffic(7, 1e-3, 0, 80, 1500, prof=prof)
    assert a.tx_credits.shared and a.neg.flow_ctrl_size == 4


def test_min_interval_nobs():
    prof = SPEC.with_(dll_packet_min_interval=6)
    a, b, link = up(prof)
    rng = random.Random(1)
    for i in range(5):
        a.send(mk(0, 10, i, rng))
    out = a.transmit(link.t * 10, 1000)
    kinds = [(out[k + 2] >> 4, out[k + 2] & 15) if out[k + 1] & 15 == 0 else "D"
             for k in range(0, len(out), 20)]
    assert kinds[:6] == ["D", (0, 1), (0, 1), (0, 1), (0, 1), (0, 1)]


def test_retrain_then_error_when_peer_is_gone():
    prof = SPEC.with_(num_retry_threshold=3, num_phy_reinit_threshold=2,
                      retry_wait_timeout_ns=200)
    a = DLLEngine(prof)
    a.link_up(0)
    ev = a.pop_events()
    t = 0
    retrains = 0
    for _ in range(400):
        t += 10
        a.transmit(t, 64)
        a.handle_timeout(t)
        new = a.pop_events()
        ev += new
        if any(e.get("event") == "phy_retrain" for e in new):
            retrains += 1
            a.phy_retrained(t)
            ev += a.pop_events()
    names = [e.get("name") for e in ev if e["event"] == "error"]
    assert "DL Retry ACK Timeout" in names and "DL Retry Rollover" in names
    assert names[-1] == "DL Retry Error" and a.req_sm == "ERROR" and retrains == 1
    assert a.transmit(t + 10, 10) == b""
    a.reset(t)
    assert a.state == DISABLED and a.req_sm == "NORMAL"


def test_link_down_resets():
    a, b, link = up()
    a.send(mk(0, 3000, 0, random.Random()))
    link.run(10)
    ev = b.link_down(link.t * 10)
    assert b.state == DISABLED and b.rb.numfreebuf == b.rb.depth and b.queued() == 0
    assert b.tx_credits is None


def test_ack_overflow_is_protocol_error():
    a, b, link = up()
    ev = a.receive(C.crd_ack(5000, None), link.t * 10)
    assert any(e.get("name") == "DL Protocol Error" for e in ev)


def test_flow_control_overflow():
    a, b, link = up()
    ev = a.receive(C.crd_ack(0, [63] + [0] * 15), link.t * 10)
    assert any(e.get("name") == "Flow Control Overflow" for e in ev)


def test_block_mode_change_handshake():
    a, b, link = up()
    a.request_mode_change(link.t * 10)
    link.run(100)
    assert any(e["event"] == "mode_change_ready" for e in link.events[id(a)])
    assert any(e["event"] == "mode_change_ready" for e in link.events[id(b)])
    # both ends are quiet until the PHY reports the new mode; then traffic flows in it
    rng = random.Random(4)
    p = mk(0, 300, 0, rng, False)
    assert a.send(p)
    link.run(100)
    assert not link.delivered(b)
    a.mode_changed(False)
    b.mode_changed(False)
    link.run(200)
    assert [e["packet"] for e in link.delivered(b)] == [p]


def test_error_flag_and_cfg0():
    a, b, link = up()
    rng = random.Random(5)
    p = mk(0, 300, 0, rng)
    assert a.send(p, error_flag=True)
    assert not a.send(bytes((0, 0, 0, 0)) + bytes(40))     # CFG 0 is never a DLLDP
    link.run(100)
    [e] = link.delivered(b)
    assert e["error_flag"] and e["packet"] == p


def test_lane_manage_delivered():
    a, b, link = up()
    a.send_lane_manage(change_tlw=1, tlw=2)
    link.run(50)
    lm = [e for e in link.events[id(b)] if e["event"] == "lane_manage"]
    assert lm and lm[0]["tlw"] == 2


def test_large_packets_fast_link_idle_gaps():
    """Big DLLDPs at 32 flits/tick on one VL, the reverse direction idle (no Null fill): the
    Retry_Req_Sets of successive timeouts arrive back to back and must each be answered."""
    rng = random.Random(11)
    a, b, link = up(SPEC, seed=11, p_flip=1e-3, p_fec=1e-3, rate=32)
    sent = []
    for i in range(120):
        p = mk(0, rng.choice((64, 1024, 4096, 10146)), i, rng)
        assert a.send(p)
        sent.append(p)
    assert link.run(100000, until=lambda: len(link.delivered(b)) >= len(sent) and a.idle())
    assert [e["packet"] for e in link.delivered(b)] == sent
    link.run(200)
    assert a.tx_credits.total() == a.tx_credits.initial_total


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402


@settings(max_examples=int(__import__("os").environ.get("UBPKT_ENGINE_EXAMPLES", "30")), deadline=None,
          suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10**6), p_flip=st.sampled_from([0, 1e-3, 4e-3]),
       p_fec=st.sampled_from([0, 1e-3, 4e-3]), rate=st.sampled_from([1, 4, 16]),
       delay=st.sampled_from([1, 6, 25]), fill=st.booleans(), vls=st.integers(1, 4),
       crc_mode=st.booleans())
def test_engine_property(seed, p_flip, p_fec, rate, delay, fill, vls, crc_mode):
    """Every packet exactly once and in order per VL; credits never negative and all back at the
    end; every buffer bounded."""
    if not crc_mode:
        p_flip = 0                    # non-CRC mode relies on FEC status only (§4.7.1)
    rng = random.Random(seed)
    prof = SPEC.with_(dll_vl_enable=(1 << vls) - 1, crc_mode=crc_mode, rx_buffer_cells=300)
    a, b = DLLEngine(prof), DLLEngine(prof)
    link = Link(a, b, seed=seed, rate=rate, delay=delay, p_flip=p_flip, p_fec=p_fec,
                fill=fill)
    link.up()
    assert link.run(60000, until=lambda: a.status_up and b.status_up)
    sent = {id(a): {}, id(b): {}}
    n = 25
    for i in range(n):
        for src in (a, b):
            vl = rng.randrange(vls)
            p = mk(vl, rng.randrange(8, 900), i, rng, crc_mode)
            assert src.send(p)
            sent[id(src)].setdefault(vl, []).append(p)

    def check():
        for e in (a, b):
            tc = e.tx_credits
            assert min(tc.excl) >= 0 and tc.share >= 0
            assert tc.total() <= tc.initial_total
            assert 0 <= e.rb.numfreebuf <= e.rb.depth
            assert len(e._out) <= (C.RETRY_SET_LEN + 32 + rate) * 20
            assert len(e._rx) <= 32 * 20 and len(e._ctrl) <= 16
        return (len(link.delivered(a)) >= n and len(link.delivered(b)) >= n
                and a.idle() and b.idle())
    assert link.run(400000, until=check), (a.stats, b.stats)
    link.run(2 * delay + 400)
    for src, dst in ((a, b), (b, a)):
        got = {}
        for e in link.delivered(dst):
            got.setdefault(e["vl"], []).append(e["packet"])
        assert got == sent[id(src)]
        assert src.tx_credits.total() == src.tx_credits.initial_total
    assert not [e for e in link.errors(a) + link.errors(b) if e["severity"] == "error"]


def test_receive_buffer_overflow_reported():
    prof = SPEC.with_(rx_auto_release=False, rx_buffer_cells=16)
    a, b, link = up(prof)
    rng = random.Random(2)
    # a well-behaved sender stops at the advertised credits ...
    for i in range(6):
        a.send(mk(0, 600, i, rng))          # 31 flits = 4 cells each: 4 fit in 16 cells
    link.run(300)
    assert len(link.delivered(b)) == 4 and a.queued() == 2
    # ... the network layer frees them, credits flow back, the rest follow
    for e in link.delivered(b):
        b.release(e["vl"], e["cells"])
    link.run(300)
    assert len(link.delivered(b)) == 6
    # a sender ignoring credits overflows the receive buffer
    from ubpkt.link.framing import frame_blocks
    rogue = b"".join(frame_blocks(mk(0, 5000, 9, rng)))
    ev = b.receive(rogue, link.t * 10)
    assert any(e.get("name") == "Receive Buffer Overflow" for e in ev)


def test_packet_larger_than_the_peer_buffer_is_refused():
    prof = SPEC.with_(rx_buffer_cells=40)
    a, b, link = up(prof)
    rng = random.Random(1)
    assert not a.send(mk(0, 10000, 0, rng))           # 64 cells > 40
    assert any(e.get("name") == "DLLDP too large" for e in a.pop_events())
    assert a.send(mk(0, 2000, 1, rng))


def test_retry_buffer_keeps_one_flit_free():
    from ubpkt.link.retry import RetryBuffer
    rb = RetryBuffer(40)
    assert rb.can_store(32) and not rb.can_store(40)
    rb.store(bytes(32 * 20))
    assert not rb.can_store(8) and rb.can_store(7)
    rb.store(bytes(7 * 20))
    assert rb.numfreebuf == 1
    # RcvPtr == WrPtr now unambiguously means "nothing to resend"
    assert rb.start_replay(rb.wrptr) and rb.next_replay() is None
    assert rb.start_replay(0) and len(rb.next_replay()) == 640
    assert not rb.release(40) and rb.release(32) and rb.numfreebuf == 33


def test_incomplete_block_on_an_idle_link_triggers_a_retry():
    a, b, link = up()
    t = link.t * 10
    cb = bytearray(C.null())
    cb[0] = 0x7E                                   # CLENGTH 31: the receiver waits for 31 more
    from ubpkt.link.framing import seal
    ev = a.receive(bytes(seal(cb, True)), t)
    assert a.next_deadline() is not None
    ev += a.handle_timeout(t + SPEC.tuning.rx_stall_timeout_ns)
    assert any(e["event"] == "retry" for e in ev) and a.req_sm == "REQ"


def test_packets_queued_across_a_mode_change_are_laid_out_in_the_new_mode():
    """send() notes each packet's layout in the CRC mode of the moment; packets still queued
    when the mode changes must be laid out (flits, credits, blocks) again in the new one."""
    from ubpkt.link.plength import MAX_FLITS, layout
    a, b, link = up()
    rng = random.Random(9)
    a.request_mode_change(link.t * 10)
    link.run(100)
    sizes = [10146, 4000, 300, 1200, 600]
    assert any(layout(n, True) != layout(n, False) for n in sizes)
    pkts = [mk(0, n, i, rng, False) for i, n in enumerate(sizes)]
    for p in pkts:
        assert a.send(p)
    a.mode_changed(False)
    b.mode_changed(False)
    # the first DLLDP started in the new mode spends the cells of its new layout
    lay = layout(sizes[0], False)
    flits = (lay.blocks - 1) * MAX_FLITS + lay.last_flits
    before = a.tx_credits.available(0)
    cur = a._start_dlldp(0)
    assert cur[3] == flits
    assert before - a.tx_credits.available(0) == -(-flits // a.neg.flow_ctrl_size)
    link.run(600)
    assert [e["packet"] for e in link.delivered(b)] == pkts
