"""Fixes from the PHY/DLL review, each against the section of UB 2.0 it implements."""
from __future__ import annotations

import numpy as np
import pytest

from ubpkt.link import control as C
from ubpkt.phy._nullblock import NULL_BLOCK, NULL_BLOCK_NONCRC, is_null_block_many, null_block
from ubpkt.phy.amctl import AMCTL_LEN, build_amctl
from ubpkt.phy.pcs import TxConfig, flit_fec_ok, rx, tx
from ubpkt.phy.profile import PhyProfile
from ubpkt.phy.symbols import bytes_to_ui

NOPRE = PhyProfile(precode=False)


def _flits(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, n * 20, dtype=np.uint8).tobytes()


# -- §4.3.3.2 / §4.3.2.3: the Null Block in non-CRC mode -------------------------------------------

def test_noncrc_null_block_is_the_end_byte_form():
    nb = null_block(crc_mode=False)
    assert nb[:4] == b"\x02\x00\x00\x00" and nb[4:19] == bytes(15) and nb[19] == 0
    assert null_block(error_flag=True, crc_mode=False)[19] == 0x40  # END.ERROR_FLAG (Table 4-4)
    # the data link builds the same flit for its own idle fill
    assert nb == C.null(crc_mode=False) and NULL_BLOCK == C.null(crc_mode=True)
    both = np.frombuffer(NULL_BLOCK + NULL_BLOCK_NONCRC, np.uint8).reshape(2, 20)
    assert is_null_block_many(both, crc_mode=True).tolist() == [True, False]
    assert is_null_block_many(both, crc_mode=False).tolist() == [False, True]
    # a flit that failed FEC decoding is never dropped as a Null Block in non-CRC mode
    assert is_null_block_many(both, False, np.array([True, False])).tolist() == [False, False]


@pytest.mark.parametrize("lanes,il", [(4, 1), (2, 2), (8, 1)])
def test_noncrc_fill_and_drop(lanes, il):
    fl = _flits(13, lanes)
    cfg = TxConfig(lanes, "rs-t4", il, "nrz", crc_mode=False)
    uis, stats = tx(fl, cfg)
    assert stats["null_blocks_added"] > 0
    r = rx(uis, cfg)
    assert r.flits == fl and r.report["null_blocks_dropped"] == stats["null_blocks_added"]
    # read with the wrong mode, the fill is not recognised and reaches the data link
    wrong = rx(uis, TxConfig(lanes, "rs-t4", il, "nrz", crc_mode=True))
    assert wrong.report["null_blocks_dropped"] == 0
    assert wrong.flits == fl + NULL_BLOCK_NONCRC * stats["null_blocks_added"]


def test_noncrc_mode_needs_fec():
    with pytest.raises(ValueError, match="FEC"):
        TxConfig(1, "bypass", crc_mode=False).validate()


def test_flit_fec_ok_per_codeword_group():
    ok = flit_fec_ok([np.array([True, False, True])], 18)
    assert ok.tolist() == [True] * 6 + [False] * 6 + [True] * 6
    # two encoders: 240 bytes = 12 flits share the fate of both codewords of the group
    ok = flit_fec_ok([np.array([True, True]), np.array([True, False])], 24)
    assert ok.tolist() == [True] * 12 + [False] * 12


# -- §3.2.4.2: a lane ID is taken after two consecutive equal LIDs ---------------------------------

def _swap_amctl_lid(ui: np.ndarray, k: int, period: int, lane_id: int) -> None:
    """Replace the k-th AMCTL of an NRZ lane (no precoding) by one claiming ``lane_id``."""
    start = k * (AMCTL_LEN + period) * 8
    ui[start:start + AMCTL_LEN * 8] = bytes_to_ui(np.frombuffer(build_amctl(lane_id), np.uint8),
                                                  "nrz")


def test_lane_id_needs_two_consecutive_equal_lids():
    period = 64
    cfg = TxConfig(4, "rs-t4", 1, "nrz", period)
    uis, _ = tx(_flits(60), cfg, NOPRE)
    assert rx(uis, cfg, NOPRE).report["lane_ids"] == [0, 1, 2, 3]
    # lane 2's LIDs alternate 3, 2, 3, 2 ...: no two consecutive AMCTLs agree -> no lane ID
    # (the old reader took the first LID seen)
    bad = [u.copy() for u in uis]
    nam = (bad[2].size // 8) // (AMCTL_LEN + period) + 1
    for k in range(0, nam, 2):
        _swap_amctl_lid(bad[2], k, period, 3)
    r = rx(bad, cfg, NOPRE)
    assert r.report["lane_ids"][2] is None and r.report["lane_ids_unconfirmed"] == [2]
    assert "error" in r.report and r.flits == b""
    # one stray LID at the start is outvoted by the next two
    ok = [u.copy() for u in uis]
    _swap_amctl_lid(ok[2], 1, period, 3)
    r = rx(ok, cfg, NOPRE)
    assert r.report["lane_ids"] == [0, 1, 2, 3]


def test_single_amctl_capture_is_a_named_choice():
    cfg = TxConfig(2, "rs-t4", 1, "nrz")  # period0 = 6656: 12 flits carry one AMCTL per lane
    uis, _ = tx(_flits(12), cfg)
    r = rx(uis, cfg)
    assert r.report["lane_ids"] == [0, 1] and r.report["lane_ids_single_amctl"] == [0, 1]
    strict = PhyProfile(lid_single_amctl_capture=False)
    r = rx(uis, cfg, strict)
    assert r.report["lane_ids"] == [None, None] and r.flits == b""
