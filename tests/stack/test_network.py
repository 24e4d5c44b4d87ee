"""The stack's framer builds what the reference encoder builds and reads it back."""
from __future__ import annotations

import random

import pytest

from ubpkt import SPEC, decode
from ubpkt.stack.network import TPACK, TPACK_CC, TPSACK, TPSACK_CC, Framer, Path

from ubpkt import encode_layers

# a Write's transaction headers: full BTAH (TASSN 1, RC 3) and MAETAH; compact forms for CFG 9
TA = encode_layers([("ub.btah", {"taopcode": "Write", "ee_bits": 1, "ini_tassn": 1,
                                 "ini_rc_id": 3}), ("ub.maetah", {"address": 0x1000,
                                                                  "length": 4})])
TA_C = encode_layers([("ub.btah_c", {"taopcode": "Write", "ini_tassn": 1}),
                      ("ub.maetah_c", {"address": 0x1000, "len_code": 0})])
BTAH = TA[:8]


@pytest.mark.parametrize("kind", ["uboe", "ipv4", "cna24"])
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


@pytest.mark.parametrize("variant", ["caqm", "ldcp"])
@pytest.mark.parametrize("kind", ["uboe", "ipv4", "cna24"])
def test_cc_responses_frame_by_frame(kind, variant):
    # TPACK_CC / TPNAK_CC / TPSACK_CC with the profile's CETPH (UB 2.0 §6.2.2): the template's
    # bytes are the encoder's, the dissector reads them without issues, parse gives the fields
    prof = SPEC.with_(cetph_variant=variant)
    fr = Framer(Path(kind=kind), prof)
    layer = "ub.cetph_" + variant
    assert fr.cetph_layer == layer
    names = ("ack_seq", "ce_seq") if variant == "ldcp" else ("ack_seq", "loc", "i", "c", "hint")
    rng = random.Random(5)
    for n in range(30):
        psn = rng.getrandbits(24)
        cc = {"ack_seq": rng.getrandbits(32), "ce_seq": rng.getrandbits(32),
              "loc": rng.getrandbits(1), "i": rng.getrandbits(1), "c": rng.getrandbits(8),
              "hint": rng.getrandbits(16)}
        want = {k: cc[k] for k in names}
        rtph = {"tpopcode": TPACK_CC, "nlp": 0, "srctpn": 7, "dsttpn": 5, "psn": psn}
        if n % 3 == 2:
            bm = rng.randbytes(8 << rng.randrange(5))
            bm = bytes([bm[0] | 0x80]) + bm[1:]
            frame = fr.tp_response(7, 5, psn, bitmap=bm, maxrcvpsn=psn + 3, cc=cc)
            rtph["tpopcode"] = TPSACK_CC
            size = {8: 0, 16: 1, 32: 2, 64: 3, 128: 4}[len(bm)]
            tail = [("ub.saetph", {"bitmapsize": size, "maxrcvpsn": (psn + 3) & 0xFFFFFF}),
                    ("ub.saetph_bitmap", {"bitmap": bm})]
        else:
            rspst = 3 if n % 3 else 0                       # TPNAK_CC, TPACK_CC
            frame = fr.tp_response(7, 5, psn, rspst=rspst, tpmsn=n, cc=cc)
            rtph.update(rspst=rspst, tpmsn=n)
            bm, tail = None, []
        ref = encode_layers(fr.path.carrier("rtp") + [("ub.rtph", rtph), (layer, want)] + tail,
                            prof)
        assert frame == ref, n
        rec = decode(frame, fr.path.linktype, prof)
        assert not [i for i in rec["issues"] if i["severity"] != "info"], rec["issues"]
        assert layer in rec["layers"] and rec["fields"]["ub.icrc.status"] == "good"
        assert {k: rec["fields"]["ub.cetph." + k] for k in names} == want
        p = fr.parse(frame)
        slow = fr._parse_slow(frame)
        for q in (p, slow):
            assert (q.tpopcode, q.psn, q.cetph, q.bitmap) == (rtph["tpopcode"], psn, want, bm)
            assert len(q.ta) == 0
        if kind == "uboe":
            assert fr.stats["rx_slow_path"] == 0
    # C and Hint saturate instead of wrapping; Ack_Seq runs modulo 2^32
    if variant == "caqm":
        p = fr.parse(fr.tp_response(7, 5, 1, cc={"c": 300, "hint": 1 << 20, "ack_seq": 1 << 32}))
        assert (p.cetph["c"], p.cetph["hint"], p.cetph["ack_seq"]) == (255, 0xFFFF, 0)


def test_data_marks_are_read():
    # UBoE: the IPv4 ECN field, CE = 0b11 (reference-profile reading); CNA: the CCI in CAQM mode
    fr = Framer(Path(), SPEC)
    frame = bytearray(fr.rtp_data(1, 2, 3, TA, b"abc"))
    assert fr.parse(bytes(frame)).ce == 0
    frame[15] |= 3                                          # ECN is masked in the ICRC
    ck = sum(int.from_bytes(frame[i:i + 2], "big") for i in range(14, 34, 2) if i != 24)
    while ck >> 16:
        ck = (ck & 0xFFFF) + (ck >> 16)
    frame[24:26] = (~ck & 0xFFFF).to_bytes(2, "big")
    rec = decode(bytes(frame), 1)
    assert rec["fields"]["ip.ecn"] == 3 and rec["fields"]["ub.icrc.status"] == "good"
    assert not [i for i in rec["issues"] if i["severity"] != "info"]
    assert fr.parse(bytes(frame)).ce == 1 and fr._parse_slow(bytes(frame)).ce == 1
    for kind, cci_at in (("cna16", 8), ("cna24", 10)):
        fr = Framer(Path(kind=kind), SPEC)
        # RTP rides only the 24-bit CNA NTH (UB 2.0 §5.2.1/§5.2.2)
        for fn in ("rtp_data", "ctp_data") if kind == "cna24" else ("ctp_data",):
            frame = bytearray(fr.rtp_data(1, 2, 3, TA, b"abc") if fn == "rtp_data"
                              else fr.ctp_data(TA, b"abc"))
            # CAQM mode, LoC 1, C 1, I 1, Hint 0x21 (UB 2.0 §5.3.5.1 Figure 5-11)
            frame[cci_at:cci_at + 2] = ((1 << 12) | (1 << 9) | (1 << 8) | 0x21).to_bytes(2, "big")
            p = fr.parse(bytes(frame))
            assert p is not None, (kind, fn)
            assert (p.ce, p.ci, p.hint, p.loc) == (1, 1, 0x21, 1), (kind, fn)
            s = fr._parse_slow(bytes(frame))
            assert (s.ce, s.ci, s.hint, s.loc) == (1, 1, 0x21, 1)


@pytest.mark.parametrize("kind", ["uboe", "cna16", "cna24"])
def test_parse_never_raises_and_counts_what_it_drops(kind):
    rng = random.Random(kind)
    fr = Framer(Path(kind=kind), SPEC)
    good = fr.rtp_data(1, 2, 3, TA, b"x" * 40) if kind == "uboe" else fr.ctp_data(TA, b"x" * 40)
    for n in range(1500):
        b = bytearray(good if n % 2 else rng.randbytes(rng.randrange(0, 120)))
        if n % 2:
            for _ in range(rng.randrange(1, 4)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        fr.parse(bytes(b))            # must not raise
    st = fr.stats
    assert st["rx_bad_icrc"] + st["rx_malformed"] > 0


@pytest.mark.parametrize("kind,transport", [("cna16", "rtp"), ("cna16", "utp"),
                                            ("cna24", "utp"), ("cna24", "bypass")])
def test_a_cna_nth_carries_only_what_the_spec_lists(kind, transport):
    # UB 2.0 §5.2.1: CFG 6 NLP 0 (CTPH) or 1 (UPIH); §5.2.2: CFG 7 NLP 0 (CTPH) or 2 (RTPH)
    with pytest.raises(ValueError, match="not a UB 2.0 format"):
        Path(kind=kind).carrier(transport)
