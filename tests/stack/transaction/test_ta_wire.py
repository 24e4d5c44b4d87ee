"""Every request and response the engines build is a spec-correct packet: framed by the stack's
Framer, the reference dissector reads it with no error or warning and finds the same fields
(UB 2.0 §7.2, §7.4)."""
from __future__ import annotations

import random

import pytest

from ubpkt import SPEC, decode
from ubpkt.formats.enums import TAOPCODE
from ubpkt.stack.network import Framer, Path
from ubpkt.stack.transaction.ops import SUBOPS, WorkRequest

from ta_harness import BASE, TOKENID, TOKENVALUE, Pair

KNOBS = SPEC.with_(read_taidetah=True, read_ofstetah=True, atomic_taidetah=True,
                   read_response_taidetah=True, read_response_ofstetah=True,
                   atomic_response_taidetah=True)


def workload(p: Pair, rng: random.Random, compact=False):
    tv = None if compact else TOKENVALUE
    kw = dict(tokenid=TOKENID, tokenvalue=tv)
    n = 0

    def post(op, local=None, off=0, **extra):
        nonlocal n
        n += 1
        p.ini.post(WorkRequest(n, op, local, remote_addr=BASE + off, **{**kw, **extra}))
        p.run()

    mtu = p.tuning.mtu
    if compact:
        post("write", rng.randbytes(2 * mtu + 64))
        post("read", bytearray(mtu), 0)
        post("write", rng.randbytes(64), 64, tokenid=1)        # error response
        return
    for size in (0, 1, mtu, 3 * mtu + 5):
        post("write", rng.randbytes(size), rng.randrange(0, 1000))
        post("read", bytearray(size), 0)
    post("writeback", rng.randbytes(100))
    post("write_with_be", rng.randbytes(256), be=rng.getrandbits(256))
    post("writeback_with_be", rng.randbytes(64), be=rng.getrandbits(64))
    post("write_with_notify", rng.randbytes(mtu + 3), notify_addr=BASE + 0x8000,
         notify_tokenid=TOKENID, notify_tokenvalue=TOKENVALUE, notify_data=7)
    p.tgt.post_recv(bytearray(8), 1)
    post("write_with_immediate", rng.randbytes(2 * mtu), imm=3)
    p.tgt.post_recv(bytearray(4 * mtu), 2)
    post("send", rng.randbytes(3 * mtu - 1))
    p.tgt.post_recv(bytearray(4 * mtu), 3)
    post("send_with_immediate", rng.randbytes(mtu + 1), imm=0xFEED)
    for size in (1, 8, 64):
        post("compare_swap", None, 64, size=size, operand1=1, operand2=0)
        post("swap", None, 128, size=size, operand1=2)
        for sub in SUBOPS:
            post("atomic_store", None, 192, size=size, operand1=3, subop=sub)
            post("atomic_load", None, 192, size=size, operand1=3, subop=sub)
        for op in ("fetch_add", "fetch_sub", "fetch_and", "fetch_or", "fetch_xor"):
            post(op, None, 256, size=size, operand1=5)
    post("fetch_add", None, 3, size=8, operand1=5)             # unsupported (misaligned)
    post("write", b"x" * 10, 0, tokenvalue=1)                  # remote access error
    post("read", bytearray(10), 1 << 30)                       # out of bounds
    post("prefetch_tgt", None, 0, length=64, tokenvalue=None)
    post("write", b"udf", 0, ud=0x12345678)


def check_frames(p: Pair, framer: Framer, profile, bypass=False):
    segs = [(s, False) for s in p.sent_requests] + [(s, True) for s in p.sent_responses]
    ops = set()
    for psn, (seg, response) in enumerate(segs):
        payload = bytes(seg.payload)
        if bypass:
            frame = framer.bypass_data(seg.ta, payload)
        else:
            frame = framer.rtp_data(1, 2, psn, seg.ta, payload, last=int(seg.last))
        rec = decode(frame, framer.path.linktype, profile)
        bad = [i for i in rec["issues"] if i["severity"] in ("error", "warning")]
        assert not bad, (seg, bad)
        f = rec["fields"]
        tah = "ub.atah" if response else "ub.btah"
        assert f[f"{tah}.taopcode"] == seg.ta[0]
        assert f[f"{tah}.ini_tassn"] == int.from_bytes(seg.ta[2:4], "big")
        if not bypass:
            assert f[f"{tah}.ini_rc_id"] == 0x1ABCD
        ops.add(TAOPCODE[seg.ta[0]])
    return ops


@pytest.mark.parametrize("profile", [SPEC, KNOBS], ids=["spec", "optional_headers"])
def test_every_packet_decodes(profile):
    p = Pair(mtu=1024, profile=profile)
    workload(p, random.Random(11))
    ops = check_frames(p, Framer(Path(), profile), profile)
    assert ops == set(TAOPCODE.values()) - {"Management"}


def test_compact_packets_decode_in_tp_bypass():
    p = Pair(mtu=1024, compact=True, tokenvalue=None)
    workload(p, random.Random(12), compact=True)
    ops = check_frames(p, Framer(Path(kind="cna16"), SPEC), SPEC, bypass=True)
    assert ops == {"Write", "Read", "TAACK", "Read_response"}
