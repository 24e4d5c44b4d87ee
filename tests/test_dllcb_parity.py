"""The two DLLCB readers agree: the packet dissector (pcap records of control blocks) and the
link layer's parser (flit streams, the DLL engine) give the same value for every field both show."""
import random

import pytest

from ubpkt import decode
from ubpkt.encode import encode_layers
from ubpkt.formats import enums as E
from ubpkt.link.control import parse_control

FLITS = {"Crd_Ack": 2, "Init": 5, "Param_Exchg": 5}


def _block(kind, ctrl, sub, rnd):
    flits = FLITS.get(kind, 1)
    lch = {"Crd_Ack": "ub.lch_crd_ack", "Block_Mode_Chg": "ub.lch_block_mode_chg"}.get(
        kind, "ub.lch")
    extra = {"Crd_Ack": {"sd": 1, "t": rnd.randint(0, 1)},
             "Block_Mode_Chg": {"type": rnd.randint(0, 1)}}.get(kind, {})
    head = encode_layers([(lch, {"clength": flits - 1, "ctrl": ctrl, "sub_ctrl": sub, **extra})])
    body = bytearray(20 * flits - 8)
    if kind == "Crd_Ack":
        body[0:14] = rnd.randbytes(14)
    elif kind == "Retry_Req":
        body[4:8] = rnd.randbytes(4)
    elif kind == "Retry_Ack":
        body[1:8] = rnd.randbytes(7)
    elif kind == "Param_Exchg":
        for i in range(flits):
            o = i * 20 + 8 - 4
            body[o:o + 4] = rnd.randbytes(4)
    return encode_layers([("data", head + bytes(body)), ("ub.bcrc", {})])


@pytest.mark.parametrize("code,kind", sorted(E.DLLCB_TYPES.items(), key=lambda kv: kv[1]))
def test_dissector_and_link_parser_agree(code, kind):
    rnd = random.Random(kind)
    for _ in range(5):
        blk = _block(kind, code[0], code[1], rnd)
        rec = decode(blk)
        cb = parse_control(blk)
        assert cb.kind == kind == rec["fields"]["ub.lch.block"]
        common = set(rec["fields"]) & set(cb.fields)
        assert len(common) >= 8
        for k in common:
            assert rec["fields"][k] == cb.fields[k], k
        assert cb.crc_ok is True and rec["fields"]["ub.bcrc.status"] == "good"
