"""One DLLCB reader (UB 2.0 §4.3.3): the packet dissector (pcap records of control blocks), the
flit-stream decoder and the DLL engine's parse give the same record - layers, fields in order,
issues - for every control-block type, intact or damaged (bit flips in the LCH, the body and the
BCRC; truncated and over-long blocks).  They share ``ubpkt.link.control.read_control``; these
tests fail if someone splits it again."""
import random

import pytest

from ubpkt import SPEC, decode
from ubpkt.dissect.flitstream import decode_flit_stream
from ubpkt.encode import encode_layers
from ubpkt.formats import enums as E
from ubpkt.link import control as C
from ubpkt.link.control import parse_control
from ubpkt.link.engine import DLLEngine

FLITS = {"Crd_Ack": 2, "Init": 5, "Param_Exchg": 5}
KINDS = sorted(E.DLLCB_TYPES.items(), key=lambda kv: kv[1])
PROFILES = {"spec": SPEC, "bcrc_bytes_only": SPEC.with_(bcrc_covers_info=False),
            "non_crc": SPEC.with_(crc_mode=False)}
_STREAM_KEYS = ("ub.flit.offset", "ub.flit.index", "ub.flit.count", "ub.dll.kind")


def _block(kind, ctrl, sub, rnd, prof=SPEC):
    """A DLLCB of ``kind`` with random field values, built by the generic encoder."""
    flits = FLITS.get(kind, 1)
    lch = {"Crd_Ack": "ub.lch_crd_ack", "Block_Mode_Chg": "ub.lch_block_mode_chg"}.get(
        kind, "ub.lch")
    extra = {"Crd_Ack": {"sd": 1, "t": rnd.randint(0, 1)},
             "Block_Mode_Chg": {"type": rnd.randint(0, 1)}}.get(kind, {})
    head = encode_layers([(lch, {"clength": flits - 1, "ctrl": ctrl, "sub_ctrl": sub, **extra})])
    tail = 4 if prof.crc_mode else 1
    body = bytearray(20 * flits - 4 - tail)
    if kind == "Crd_Ack":
        body[0:14] = rnd.randbytes(14)
    elif kind == "Retry_Req":
        body[4:8] = rnd.randbytes(4)
    elif kind == "Retry_Ack":
        body[1:8] = rnd.randbytes(7)
    elif kind == "Lane_Manage":
        body[0:4] = bytes((0x50 | rnd.randrange(8), 0xA0 | rnd.randrange(8), rnd.randrange(64),
                           rnd.randrange(64)))            # REQ_ID 5, RSP_ID 0xA (fixed)
    elif kind == "Param_Exchg":
        for i in range(flits):
            o = i * 20 + 8 - 4
            body[o:o + 4] = rnd.randbytes(4)
    if prof.crc_mode:
        return encode_layers([("data", head + bytes(body)), ("ub.bcrc", {})], prof)
    return encode_layers([("data", head + bytes(body)), ("ub.end", {})], prof)


def _built(kind, prof=SPEC):
    """The same type from the link layer's builders."""
    kw = {"crc_mode": prof.crc_mode, "covers_info": prof.bcrc_covers_info}
    make = {
        "Null": C.null, "NOB": C.nob, "Retry_Idle": C.retry_idle,
        "Retry_Req": lambda **k: C.retry_req(0x1234, 2, 7, **k),
        "Retry_Ack": lambda **k: C.retry_ack(3, 0x800, 0x102, 0x304, **k),
        "Crd_Ack": lambda **k: C.crd_ack(9, list(range(16)), t=1, sd=1, **k),
        "Param_Exchg": lambda **k: C.neighbor_advert(0x00112233445566778899AABBCCDDEEFF, 9, **k),
        "Lane_Manage": lambda **k: C.lane_manage(change_tlw=1, tlw=4, rlw=8, **k),
        "Block_Mode_Chg": lambda **k: C.block_mode_chg(1, **k),
        "Init": lambda **k: C.InitParams(vl_enable=0xFF).encode(**k),
    }[kind]
    return make(**kw)


def _variants(blk, rnd):
    """(name, bytes): the block, single-bit flips in the LCH (every bit), the body and the
    trailer (a sample), truncations and an over-long block."""
    n = len(blk)
    yield "intact", blk
    bits = list(range(32))
    bits += rnd.sample(range(32, 8 * n - 32), min(24, 8 * n - 64))
    bits += list(range(8 * n - 32, 8 * n))
    for b in bits:
        v = bytearray(blk)
        v[b // 8] ^= 0x80 >> (b % 8)
        yield f"flip{b}", bytes(v)
    for cut in sorted({2, 3, 4, 5, 10, 16, 19, 20, 21, n - 5, n - 4, n - 1} - {n}):
        if 2 <= cut < n:
            yield f"cut{cut}", blk[:cut]
    yield "long", blk + b"\x00\x01\x02"
    v = bytearray(blk)
    v[4 + rnd.randrange(8)] |= 0x10          # reserved body bits (or a field) set
    yield "rsvd", bytes(v)


def _cases():
    rnd = random.Random(7)
    for (ctrl, sub), kind in KINDS:
        for pname, prof in PROFILES.items():
            yield kind, pname, prof, _block(kind, ctrl, sub, rnd, prof)
            yield kind, pname, prof, _built(kind, prof)


CASES = list(_cases())


def _is_dllcb(blk):
    return len(blk) >= 2 and blk[1] & 0x0F == 0      # LCH CFG 0 (UB 2.0 §4.3.3.1)


def _same(rec, cb, what):
    assert rec["layers"] == cb.layers, what
    assert list(rec["fields"].items()) == list(cb.fields.items()), what
    assert rec["issues"] == cb.issues, what


@pytest.mark.parametrize("i", range(len(CASES)),
                         ids=[f"{k}-{p}-{n % 2}" for n, (k, p, _, _) in enumerate(CASES)])
def test_capture_decoder_engine_and_flit_stream_agree(i):
    kind, _, prof, blk = CASES[i]
    engine = DLLEngine(prof)
    rnd = random.Random(i)
    checked = 0
    for name, v in _variants(blk, rnd):
        if not _is_dllcb(v):
            continue
        what = (kind, name)
        rec = decode(v, profile=prof)
        cb = parse_control(v, prof.crc_mode, covers_info=prof.bcrc_covers_info)
        _same(rec, cb, what)
        checked += 1
        if name == "intact":
            assert cb.kind == kind and cb.ok and rec["issues"] == [], what
            assert rec["fields"]["ub.lch.block"] == kind
            if prof.crc_mode:
                assert cb.crc_ok is True and rec["fields"]["ub.bcrc.status"] == "good"
        if len(v) % 20 or len(v) != 20 * (((v[0] >> 2) & 0x1F) + 1):
            continue
        # a whole block as the flit-stream decoder and the engine see it
        srec, = decode_flit_stream(v, prof)
        assert srec["layers"] == ["ub.flits"] + rec["layers"], what
        assert {k: x for k, x in srec["fields"].items() if k not in _STREAM_KEYS} == \
            rec["fields"], what
        assert srec["issues"] == rec["issues"], what
        if prof.crc_mode:
            assert engine._crc_ok(v) == (rec["fields"].get("ub.bcrc.status") == "good"), what
    assert checked > 40


def test_values_come_from_the_same_parse():
    """What the engine acts on (``values``) matches the record fields of the same read."""
    for (_, _), kind in KINDS:
        cb = parse_control(_built(kind))
        f = cb.fields
        if kind == "Crd_Ack":
            assert cb.values["credits"] == [f[f"ub.crd_ack.crd_vl{vl}"] for vl in range(16)]
            assert (cb.values["t"], cb.values["sd"]) == (f["ub.lch.t"], f["ub.lch.sd"])
            assert cb.values["ack_num"] == f["ub.crd_ack.ack_num"] == 9
        elif kind == "Param_Exchg":
            assert cb.values["words"] == f["ub.param_exchg.data"]
            assert cb.values["neighbor"]["port_idx"] == f["ub.param_exchg.port_idx"] == 9
        elif kind == "Block_Mode_Chg":
            assert cb.values["type"] == f["ub.lch.type"] == 1
        elif kind == "Init":
            assert cb.values["init"].vl_enable == f["ub.init.vl_enable"] == 0xFF
        elif kind in ("Retry_Req", "Retry_Ack", "Lane_Manage"):
            prefix = f"ub.{kind.lower()}."
            assert cb.values == {k[len(prefix):]: x for k, x in f.items()
                                 if k.startswith(prefix) and ".rsvd" not in k
                                 and not k.endswith("_name")}


def test_one_reader(monkeypatch):
    """The dissector, the flit-stream decoder and the engine's parse all run
    ``ubpkt.link.control._read``: replace it and every path sees the replacement."""
    real = C._read

    def marked(r, cb, *a):
        real(r, cb, *a)
        r.fields["test.marker"] = True

    monkeypatch.setattr(C, "_read", marked)
    blk = C.null()
    assert decode(blk)["fields"]["test.marker"] is True
    assert parse_control(blk).fields["test.marker"] is True
    assert next(decode_flit_stream(blk))["fields"]["test.marker"] is True


def test_damaged_null_block_names_the_record_field():
    """The two readers used to disagree here: the link parser blamed ``ub.cb.body`` (a field no
    record has); now every path names the reserved field the record shows."""
    v = bytearray(C.null())
    v[9] = 0x20
    rec = decode(bytes(v))
    cb = parse_control(bytes(v))
    rsvd = [i for i in cb.issues if i["severity"] == "warning"]
    assert [(i["layer"], i["field"]) for i in rsvd] == [("ub.cb_rsvd", "ub.cb.rsvd1")]
    assert "ub.cb.rsvd1" in cb.fields and rec["issues"] == cb.issues
