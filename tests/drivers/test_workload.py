"""Workload specs (ubpkt.stack.workload): parsing and the layout in the target segment."""
from __future__ import annotations

import pytest

from ubpkt.stack.workload import WorkItem, parse_size, parse_workload, plan, prefill


def test_the_issue_example():
    items = parse_workload("write:64KiB*100,read:4KiB,atomic:cas,send:1KiB")
    assert items == [WorkItem("write", 65536, 100), WorkItem("read", 4096),
                     WorkItem("atomic", 8, 1, "compare_swap"), WorkItem("send", 1024)]
    assert [str(i) for i in items] == ["write:65536*100", "read:4096", "atomic:cas",
                                       "send:1024"]


@pytest.mark.parametrize("text,n", [("1", 1), ("4KiB", 4096), ("4k", 4096), ("2 MiB", 2 << 20),
                                    ("1GiB", 1 << 30), ("3000B", 3000), ("64KB", 65536)])
def test_sizes(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["", "write", "write:", "write:4Kx", "read:1KiB*0",
                                 "read:1KiB*x", "atomic", "atomic:nand", "atomic:cas:3",
                                 "atomic:cas:8:1", "jump:4KiB", "write:0"])
def test_bad_specs_name_the_item(bad):
    with pytest.raises(ValueError):
        parse_workload(bad)


def test_layout_slots_do_not_overlap_and_atomics_are_aligned():
    p = plan("write:100*3,atomic:fetch_add:4*2,read:4KiB,atomic:swap:64,send:10",
             base=1 << 32, tokenid=7, tokenvalue=9, seed=3)
    assert len(p.wrs) == 8 and p.counts() == {"write": 3, "atomic": 3, "read": 1, "send": 1}
    spans = sorted((s.offset, s.offset + s.length) for s in p.touched())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    for s in p.slots:
        if s.op == "atomic":
            assert s.offset % max(8, s.length) == 0 and s.wr.size == s.length
        if s.offset is not None:
            assert s.wr.remote_addr == (1 << 32) + s.offset
            assert s.wr.tokenid == 7 and s.wr.tokenvalue == 9
    assert [w.wr_id for w in p.wrs] == list(range(8))
    # seeded: the same seed gives the same bytes and operands
    q = plan("write:100*3,atomic:fetch_add:4*2,read:4KiB,atomic:swap:64,send:10", seed=3)
    assert q.data == p.data and [w.operand1 for w in q.wrs] == [w.operand1 for w in p.wrs]


def test_expected_values_of_atomics():
    p = plan("atomic:fetch_add:2,atomic:cas,atomic:store", seed=1)
    pre = prefill(p)
    add, cas, store = p.slots
    old = int.from_bytes(pre[0], "little")
    assert p.expected(add, pre[0]) == ((old + add.wr.operand1) & 0xFFFF).to_bytes(2, "little")
    # prefill sets the compare operand: the swap happens
    assert p.expected(cas, pre[1]) == cas.wr.operand1.to_bytes(8, "little")
    old = int.from_bytes(pre[2], "little")
    assert p.expected(store, pre[2]) == ((old + store.wr.operand1) % (1 << 64)).to_bytes(
        8, "little")
