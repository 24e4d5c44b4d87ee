"""The stack's framer builds what the reference encoder builds and reads it back."""
from __future__ import annotations

import random

import pytest

from ubpkt import SPEC, decode
from ubpkt.stack.network import TPACK, TPSACK, Framer, Path

from ubpkt import encode_layers

# a Write's transaction headers: full BTAH (TASSN 1, RC 3) and MAETAH; compact forms for CFG 9
TA = encode_layers([("ub.btah", {"taopcode": "Write", "ee_bits": 1, "ini_tassn": 1,
                                 "ini_rc_id": 3}), ("ub.maetah", {"address": 0x1000,
                                                                  "length": 4})])
TA_C = encode_layers([("ub.btah_c", {"taopcode": "Write", "ini_tassn": 1}),
                      ("ub.maetah_c", {"address": 0x1000, "len_code": 0})])
BTAH = TA[:8]


@pytest.mark.parametrize("kind", ["uboe", "cna16", "cna24"])
def test_rtp_data_round_trip(kind):
    fr = Framer(Path(kind=kind), SPEC)
    rng = random.Random(1)
    for n in range(50):
        psn = rng.getrandbits(24)
        payload = rng.randbytes(rng.randrange(0, 2000))
        frame = fr.rtp_data(5, 7, psn, TA, payload, a=n & 1, last=1, tpmsn=n)
        rec = decode(frame, fr.path.linktype)
        assert rec["fields"]["ub.icrc.status"] == "good"
        assert rec["fields"]["ub.rtph.psn"] == psn
        p = fr.parse(frame)
        assert (p.mode, p.tpopcode, p.srctpn, p.dsttpn, p.psn, p.a, p.last, p.tpmsn) == (
            "rtp", 1, 5, 7, psn, n & 1, 1, n)
        assert bytes(p.ta) == TA + payload


def test_fast_and_slow_parse_agree_and_bad_icrc_is_dropped():
    fr = Framer(Path(), SPEC)
    frame = fr.rtp_data(1, 2, 99, TA, b"x" * 13)
    fast = fr.parse(frame)
    slow = fr._parse_slow(frame)
    assert (fast.psn, bytes(fast.ta)) == (slow.psn, bytes(slow.ta))
    assert fr.stats["rx_slow_path"] == 0
    bad = bytearray(frame)
    bad[60] ^= 1
    assert fr.parse(bytes(bad)) is None and fr.stats["rx_bad_icrc"] == 1


def test_responses():
    fr = Framer(Path(), SPEC)
    ack = fr.parse(fr.tp_response(7, 5, 1234, rspst=3, rspinfo=0))
    assert (ack.tpopcode, ack.psn, ack.rspst) == (TPACK, 1234, 3)
    bm = bytes([0b10100000]) + bytes(7)
    sack = fr.parse(fr.tp_response(7, 5, 10, bitmap=bm, maxrcvpsn=12))
    assert (sack.tpopcode, sack.maxrcvpsn, sack.bitmap) == (TPSACK, 12, bm)
    rec = decode(fr.tp_response(7, 5, 10, bitmap=bm, maxrcvpsn=12), 1)
    assert rec["fields"]["ub.saetph.bitmap"] == bm.hex()
    assert not [i for i in rec["issues"] if i["severity"] != "info"]


def test_other_modes():
    for kind, fn, mode in (("uboe", "utp_data", "utp"), ("cna16", "ctp_data", "ctp"),
                           ("cna16", "bypass_data", "bypass")):
        fr = Framer(Path(kind=kind), SPEC)
        ta = TA if mode != "bypass" else TA_C
        frame = getattr(fr, fn)(ta, b"abcd")
        p = fr.parse(frame)
        assert p.mode == mode and bytes(p.ta) == ta + b"abcd", mode


def test_native_fast_parse_equals_reference():
    rng = random.Random(3)
    for kind, fn in (("cna16", "ctp_data"), ("cna24", "ctp_data"), ("cna16", "bypass_data")):
        fr = Framer(Path(kind=kind), SPEC)
        ta = TA_C if fn == "bypass_data" else TA
        for n in range(20):
            payload = rng.randbytes(rng.randrange(0, 300))
            frame = getattr(fr, fn)(ta, payload)
            fast = fr._parse_fast(frame)
            slow = fr._parse_slow(frame)
            assert fast is not None
            assert (fast.mode, bytes(fast.ta), fast.src) == (slow.mode, bytes(slow.ta), slow.src)
            bad = bytearray(frame)
            bad[len(bad) // 2] ^= 0x10
            if fn != "bypass_data":          # CFG 9 carries no ICRC (App B)
                assert fr.parse(bytes(bad)) is None
    assert fr.stats["rx_slow_path"] == 0
