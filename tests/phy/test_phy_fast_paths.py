"""The PHY link's fast paths against their references: the LMSM's cached coasting decision
(``can_coast``) against the decision computed from scratch over runs with lane failures,
restores and mode changes, and the small-batch data path against the general one (same flits,
same FEC flags, same statistics and LMSM events)."""
from __future__ import annotations

import numpy as np
import pytest

from ubpkt.phy.link import PhyLink, PhyLinkConfig
from ubpkt.phy.lmsm import LinkSim, Lmsm, PortConfig


def _flits(n, seed=0):
    f = np.random.default_rng(seed).integers(0, 256, (n, 20), dtype=np.uint8)
    f[:, :4] = np.arange(n, dtype=">u4").view(np.uint8).reshape(n, 4)
    f[:, 0] |= 0x80  # never the Null Block header 02 00 00 00
    return f.tobytes()


def _drive(link: PhyLink, data: bytes, chunk: int, now: int) -> tuple[bytes, list, int]:
    """Push ``data`` A->B in ``chunk``-flit batches (a few reverse flits each time, as credits
    and ACKs would be), popping both directions; returns A->B's flits, flags and the time."""
    got, ok = [], []
    back = _flits(1, 99)
    for i in range(0, len(data), chunk * 20):
        link.ab.push(data[i:i + chunk * 20], now)
        link.ba.push(back, now)
        nd = link.ab.next_deadline()
        now = max(now, nd if nd is not None else now)
        for x in link.ab.pop(now):
            got.append(x.flits)
            ok += x.fec_ok
            assert x.all_ok == all(x.fec_ok)
        link.ba.pop(now)
    while (nd := link.ab.next_deadline()) is not None:
        now = max(now + 1, nd)
        for x in link.ab.pop(now):
            got.append(x.flits)
            ok += x.fec_ok
        link.ba.pop(now)
    return b"".join(got), ok, now


@pytest.fixture
def checked_coasting(monkeypatch):
    """Every ``can_coast`` call compared with the uncached decision; counts of calls, answers
    and cache hits."""
    seen = {"calls": 0, "true": 0, "false": 0, "hits": 0}
    orig = Lmsm.can_coast

    def checked(self):
        before = self._coast_cache
        got = orig(self)
        want = self._can_coast_uncached()
        assert got == want, (self.name, self.tick, self.state, got, want)
        seen["calls"] += 1
        seen["true" if got else "false"] += 1
        if before is not None and self._coast_cache is before and self.state == "Link_Active":
            seen["hits"] += 1
        return got
    monkeypatch.setattr(Lmsm, "can_coast", checked)
    return seen


def test_cached_coasting_decision_equals_uncached_through_lane_and_mode_events(
        checked_coasting):
    link = PhyLink(PhyLinkConfig(lanes=8, fec="rs-t4", seed=3))
    assert link.train()
    t0 = link.time_of(link.tick)
    link.fail_lane(5, t0 + 5_000)
    link.restore_lane(5, t0 + 25_000)
    link.fail_lane(3, t0 + 60_000)
    data = _flits(120000, 1)
    out, ok, now = _drive(link, data, 300, t0)
    kinds = [(c["direction"], c["from"], c["to"]) for c in link.width_changes]
    assert ("A->B", 8, 4) in kinds and ("A->B", 4, 8) in kinds and ("A->B", 8, 2) in kinds
    link.change_mode(fec="rs-t2", crc_mode=False, at=now + 1000)
    now = link.time_of(link.tick)
    out2, ok2, _ = _drive(link, _flits(3000, 2), 48, now)
    assert link.ports["B"].fec_mode == "rs-t2" and all(ok2) and out2 == _flits(3000, 2)
    s = checked_coasting
    assert s["true"] > 100 and s["false"] > 100 and s["hits"] > 100, s


def test_cached_coasting_decision_follows_a_lane_going_stale():
    """Time alone (no block step) makes a lane's ID stale: the cache must not outlive it."""
    sim = LinkSim(PortConfig(lanes=2), PortConfig(lanes=2))
    assert sim.run()["link_up"]
    a = sim.a
    assert a.can_coast() == a._can_coast_uncached()
    limit = a._rx_stale_limit()
    last = min(r.last_amctl for r in a.rx)
    a.tick = last + limit  # the last tick the lanes still count
    assert a.can_coast() == a._can_coast_uncached()
    a.tick = last + limit + 1
    assert a.can_coast() == a._can_coast_uncached() is False


def _events(link: PhyLink) -> list:
    return [(n, e["tick"], e["event"]) for n, p in link.ports.items() for e in p.events]


@pytest.mark.parametrize("kw,chunks", [
    (dict(lanes=4, fec="rs-t4", ber=1e-4), (1, 6, 7, 300)),
    (dict(lanes=8, fec="rs-t2", ber=3e-4, crc_mode=False), (5, 600)),
    (dict(lanes=8, fec="rs-t4", interleave=2, ber=2e-4), (12, 13, 500)),
    (dict(lanes=4, fec="bypass", ber=1e-5), (1, 3, 200)),
    (dict(lanes=1, fec="rs-t4", bursts=((0, 30_000, 40),)), (6, 400)),
    (dict(lanes=2, fec="rs-t2", interleave=2, crc_mode=False), (1, 250)),
])
def test_fast_data_path_equals_reference(kw, chunks):
    """Small and large batches, BER, bursts, a lane failure and its restore (x8): the fast data
    path delivers the same flits with the same flags, counts the same and leaves the LMSMs in
    the same states as the reference path."""
    runs = []
    data = _flits(20000, 7)
    for fast in (True, False):
        link = PhyLink(PhyLinkConfig(seed=5, fast_path=fast, **kw))
        assert link.train()
        t0 = link.time_of(link.tick)
        if kw["lanes"] == 8:
            link.fail_lane(5, t0 + 3_000)
            link.restore_lane(5, t0 + 12_000)
        got, ok, now = [], [], t0
        for i, chunk in enumerate(chunks * 200):
            part = data[(i * 97 % 19000) * 20:][:chunk * 20]
            _, _, now = _drive(link, part, chunk, now)
            got += [x.flits for d in (link.ab, link.ba) for x in d.pop(now)]
            out, flags, now = _drive(link, part, chunk, now)
            got.append(out)
            ok += flags
            if now - t0 > 40_000:
                break
        runs.append((b"".join(got), ok, link.report(), link.timeline(), _events(link)))
    fast, ref = runs
    assert fast[2] == ref[2]
    assert fast[0] == ref[0] and fast[1] == ref[1]
    assert fast[3] == ref[3] and fast[4] == ref[4]
    r = ref[2]
    assert r["codewords"] or kw["fec"] == "bypass"
    if kw.get("ber"):
        assert r["directions"]["A->B"]["symbol_errors_injected"] > 0
    if kw.get("ber", 0) >= 3e-4:
        assert r["uncorrectable_codewords"] > 0 and not all(ref[1])
    if kw["lanes"] == 8:
        assert r["width_changes"] and r["directions"]["A->B"]["dead_lane_groups"] > 0


@pytest.mark.parametrize("seed", [1, 0x5A5A5A, 0x7FFFFF])
def test_word_recurrence_keystream_is_the_scrambler_keystream(seed):
    """LaneKeystream's chunks (64-bit word recurrence) against the bit-level PRBS, over chunk
    boundaries that are not word aligned and takes larger than a chunk."""
    from ubpkt.phy.link import LaneKeystream
    from ubpkt.phy.scrambler import keystream
    ks = LaneKeystream(seed)
    ks.CHUNK = 333
    parts = np.concatenate([ks.take(n) for n in (1, 500, 7, 2000, 3, 100000, 5, 0, 64)])
    assert (parts == keystream(seed, parts.size, 0)).all()


def test_null_block_shortcut_equals_the_crc_check():
    """A row equal to the usual Null Block skips the CRC30; every other candidate is checked:
    the mask equals a per-row BCRC check over a mix of forms and damaged copies."""
    from ubpkt.link.crc30 import bcrc_crc30
    from ubpkt.phy._nullblock import NULL_BLOCK, is_null_block_many, null_block
    rng = np.random.default_rng(4)
    rows = [NULL_BLOCK, null_block(error_flag=True)]
    for i in range(300):
        r = bytearray(rows[i % 2])
        r[int(rng.integers(4, 20))] ^= 1 << int(rng.integers(0, 8))
        rows.append(bytes(r))
    rows += [b"\x02\x00\x00\x00" + rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
             for _ in range(50)] + [NULL_BLOCK] * 7
    order = rng.permutation(len(rows))
    flits = [rows[i] for i in order]

    def ref(f: bytes) -> bool:
        if f[:4] != b"\x02\x00\x00\x00":
            return False
        word = int.from_bytes(f[16:], "big")
        return word & ((1 << 30) - 1) == bcrc_crc30(f[:16], word >> 30)
    want = [ref(f) for f in flits]
    got = is_null_block_many(np.frombuffer(b"".join(flits), np.uint8).reshape(-1, 20))
    assert got.tolist() == want and 9 <= sum(want) < len(want)


def test_scramble_block_equals_the_numpy_xor():
    """The LMSM's per-block scrambling with Python integers against the keystream XOR, at
    positions that make the keystream caches grow."""
    from ubpkt.phy.scrambler import keystream, scramble_block
    rng = np.random.default_rng(2)
    for seed in (1, 0x7FFFFF, 0x123456):
        for start in (0, 7, 16 * 1000, 70_000, 400_000, 16):
            d = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
            want = (np.frombuffer(d, np.uint8) ^ keystream(seed, 16, start)).tobytes()
            assert scramble_block(d, seed, start) == want
            assert scramble_block(want, seed, start) == d
