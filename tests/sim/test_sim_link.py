"""SimLink: propagation delay, serialisation at a rate, tail-drop queue; exact timing."""
from __future__ import annotations

import pytest

from ubpkt.sim import Link, LinkParams, SimLink, parse_rate, parse_time


def test_delay_only():
    link = SimLink(delay=1000)
    assert isinstance(link, Link)
    assert link.push(b"a" * 60, 0) and link.push(b"b" * 60, 5)
    assert link.next_deadline() == 1000
    assert link.pop(999) == []
    assert link.pop(1000) == [b"a" * 60]
    assert link.next_deadline() == 1005
    assert link.pop(10_000) == [b"b" * 60]
    assert link.next_deadline() is None


def test_rate_serialises_back_to_back():
    # 8 Gbit/s = one byte per ns
    link = SimLink(LinkParams(delay=50, rate=8_000_000_000))
    for i in range(3):
        assert link.push(bytes(100), 0)
    arrivals = []
    t = link.next_deadline()
    while t is not None:
        arrivals += [t] * len(link.pop(t))
        t = link.next_deadline()
    assert arrivals == [150, 250, 350]
    # an idle link starts at once: no memory of old busy periods
    link.push(bytes(10), 1000)
    assert link.next_deadline() == 1000 + 10 + 50


def test_serialisation_rounds_up_and_overhead():
    p = LinkParams(rate=3_000_000_000)
    assert p.serialisation(1) == 3            # 8/3 ns rounded up
    p = LinkParams(rate=8_000_000_000, overhead=20)
    assert p.serialisation(100) == 120
    assert LinkParams().serialisation(10_000) == 0


def test_queue_frames_tail_drop():
    link = SimLink(rate=8_000_000_000, queue_frames=2)
    ok = [link.push(bytes(100), 0) for _ in range(5)]
    # the first goes on the wire, two wait, two are dropped
    assert ok == [True, True, True, False, False]
    assert link.stats["tail_drops"] == 2 and link.stats["tail_drop_bytes"] == 200
    assert link.queue_len(0) == (2, 200)
    assert link.queue_len(100) == (1, 100)     # the second started at 100
    assert link.push(bytes(100), 100)          # room again
    assert link.queue_len(100) == (2, 200)
    assert link.stats["max_queue"] == 2


def test_queue_bytes_tail_drop():
    link = SimLink(rate=8_000_000_000, queue_bytes=250)
    ok = [link.push(bytes(100), 0) for _ in range(5)]
    assert ok == [True, True, True, False, False]
    assert link.push(bytes(40), 0) is True     # 240 bytes waiting: fits
    assert link.push(bytes(20), 0) is False


def test_no_rate_no_queue():
    link = SimLink(queue_frames=0)
    assert all(link.push(bytes(1000), 0) for _ in range(10))
    assert len(link.pop(0)) == 10


def test_params_from_dict_and_units():
    p = LinkParams.of({"delay": "1.5us", "rate": "10G", "queue_frames": 8})
    assert (p.delay, p.rate, p.queue_frames) == (1500, 10_000_000_000, 8)
    assert parse_time("2ms") == 2_000_000 and parse_time(7) == 7 and parse_time("1s") == 10 ** 9
    assert parse_time("250ns") == 250 and parse_time("1e3") == 1000
    assert parse_rate("100Mbit") == 10 ** 8 and parse_rate("25gbit/s") == 25 * 10 ** 9
    assert parse_rate("1e9") == 10 ** 9 and parse_rate(None) is None and parse_rate("inf") is None
    with pytest.raises(ValueError):
        parse_time("soon")
    with pytest.raises(ValueError):
        parse_rate("fast")
    with pytest.raises(ValueError):
        SimLink(delay=-1)
