"""The Lua plugin on issue 11's remaining formats (tests/test_conf11b.py builds the frames by
hand): the Linux UB link netdev link type (150) and both forms of CFG-5 LLDP agree with ubpkt,
field by field (with enumeration CNA query and topology TLVs), and the fast path agrees with
the walk."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ubpkt import decode
from ubpkt.dissect import dissect
from ubpkt.dissect.fastpath import TemplateCache
from ubpkt.profile import SPEC
from ubpkt.record import LINKTYPE_UB, LINKTYPE_UBL

from lua_harness import lua_verdicts

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_conf11b as G  # noqa: E402  (the hand-built frames)

ETH_LLDP = G.LLDP_DST + G.LLDP_SRC + b"\x88\xcc"

FRAMES = {
    LINKTYPE_UBL: [G.ublhdr(3) + G.ipv4(G.udp(5000, b"hello")),
                   G.ublhdr(4, cc=0, npi=0x12345) + G.ipv6(G.udp(6000, b"\x01\x02")),
                   G.ublhdr(5) + G.cfg5(0x0102, bytes([0x10, 24, 192, 168, 1, 9])),
                   G.ublhdr(5) + G.cfg5(0x0109, ETH_LLDP + G.LLDP_TLVS),
                   bytes([7]) + bytes(12)],
    LINKTYPE_UB: [G.lph_cfg5(G.cfg5(0x0109, G.LLDP_TLVS)),
                  G.lph_cfg5(G.cfg5(0x0109, ETH_LLDP + G.LLDP_TLVS)),
                  G.lph_cfg5(G.cfg5(0x0109, G.LLDP_DST + G.LLDP_SRC + b"\x08\x00" + G.LLDP_TLVS)),
                  G.enumeration(2, 3, 0, bytes(2) + b"\x00\x07"),
                  G.enumeration(2, 0, 0, b"\x00\x12\x34\x56"),
                  G.enumeration(0, 0, 0, bytes([0, 4, 2, 1, 1, 8, 0, 16, 0, 1, 0, 0])
                                + bytes([2, 28, 0b1011, 0, 0, 3, 0, 9]) + bytes(4) + G.guid_wire()
                                + bytes([4, 8, 0x53, 0x01, 0, 0, 0x02, 0x00])
                                + bytes([200, 6, 1, 2, 3, 4, 0, 8, 3, 2, 9, 9, 9, 9])),
                  G.enumeration(0, 0, 0, bytes([2, 8]) + bytes(6))],
}


@pytest.fixture(scope="module")
def tshark():
    from test_lua import _find_tshark
    return _find_tshark()


@pytest.mark.parametrize("linktype", sorted(FRAMES))
def test_lua_agrees(tshark, tmp_path, linktype):
    frames = FRAMES[linktype]
    records = [decode(f, linktype, SPEC) for f in frames]
    verdicts = lua_verdicts(tshark, tmp_path, linktype, records, frames)
    bad = [(n, v) for n, v in enumerate(verdicts, 1) if v]
    assert not bad, bad


def _variants(linktype):
    """Each frame, then copies of the same length with one byte of the steering bytes changed
    (the LLDP destination MAC, the CFG byte): a template learnt on one must not decode another."""
    for f in FRAMES[linktype]:
        yield f
        for off in range(0, min(len(f), 64)):
            for flip in (0x01, 0x40):
                b = bytearray(f)
                b[off] ^= flip
                yield bytes(b)


@pytest.mark.parametrize("linktype", sorted(FRAMES))
def test_fast_path_agrees(linktype):
    cache = TemplateCache(SPEC)
    for rnd in range(2):           # the second round goes through the cached templates
        for f in _variants(linktype):
            fr = dissect(f, linktype, SPEC)
            assert cache.decode(f, linktype) == (fr.layers, fr.fields, fr.issues), (rnd, f.hex())
