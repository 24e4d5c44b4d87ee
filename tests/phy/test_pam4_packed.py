"""PAM4 in packed form (issue 14): Gray map, precoder and de-precoder on one byte per symbol
give exactly the one-byte-per-UI functions' values (UB 2.0 §3.3.1, §3.3.2), and the TX
pipeline's lane UIs are bit-for-bit those of the former UI-level PAM4 path (digests taken from
it before the change)."""
from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from ubpkt.phy.amctl import AMCTL_LEN
from ubpkt.phy.pcs import TxConfig, rx, tx
from ubpkt.phy.profile import DEFAULT_PROFILE
from ubpkt.phy.symbols import (GRAY, bytes_to_ui, deprecode, deprecode_pam4_bytes,
                               gray_pam4_bytes, pack_ui, precode, precode_pam4_bytes,
                               ui_to_bytes, unpack_ui)

RNG = np.random.default_rng(14)
AMCTL_UI = AMCTL_LEN * 4    # the first AMCTL in PAM4 UIs


def _rows_to_ui(m: np.ndarray) -> np.ndarray:
    return np.stack([unpack_ui(r, "pam4") for r in np.atleast_2d(m)])


def _rows_to_bytes(u: np.ndarray) -> np.ndarray:
    return np.stack([pack_ui(r, "pam4") for r in np.atleast_2d(u)])


def test_unpack_and_pack_are_the_ui_order_of_the_spec():
    # UI k of a symbol carries bits (2k+1, 2k), odd bit as MSB
    b = np.array([0b11_10_01_00, 0b00_01_10_11], dtype=np.uint8)
    assert unpack_ui(b, "pam4").tolist() == [0, 1, 2, 3, 3, 2, 1, 0]
    assert pack_ui(np.array([0, 1, 2, 3, 3, 2, 1, 0], np.uint8), "pam4").tolist() == b.tolist()
    every = np.arange(256, dtype=np.uint8)
    assert (pack_ui(unpack_ui(every, "pam4"), "pam4") == every).all()
    assert (unpack_ui(every, "nrz") == np.unpackbits(every, bitorder="little")).all()


def test_gray_bytes_is_table_3_11_per_pair_and_self_inverse():
    every = np.arange(256, dtype=np.uint8)
    assert (unpack_ui(gray_pam4_bytes(every), "pam4") == GRAY[unpack_ui(every, "pam4")]).all()
    assert (gray_pam4_bytes(gray_pam4_bytes(every)) == every).all()
    assert (bytes_to_ui(every, "pam4") == GRAY[unpack_ui(every, "pam4")]).all()
    assert (ui_to_bytes(bytes_to_ui(every, "pam4"), "pam4") == every).all()


@pytest.mark.parametrize("shape", [(1,), (2,), (257,), (5, 1), (7, 33), (3, 600)])
def test_precode_bytes_equals_the_ui_precoder(shape):
    m = RNG.integers(0, 256, shape, dtype=np.uint8)
    want = _rows_to_bytes(precode(_rows_to_ui(m), "pam4"))
    assert (np.atleast_2d(precode_pam4_bytes(m)) == want).all()


@pytest.mark.parametrize("shape", [(1,), (2,), (257,), (5, 1), (7, 33), (3, 600)])
def test_deprecode_bytes_equals_the_ui_deprecoder(shape):
    m = RNG.integers(0, 256, shape, dtype=np.uint8)
    want = _rows_to_bytes(deprecode(_rows_to_ui(m), "pam4"))
    assert (np.atleast_2d(deprecode_pam4_bytes(m)) == want).all()
    assert (np.atleast_2d(deprecode_pam4_bytes(m, gray=True)) == gray_pam4_bytes(want)).all()
    # and it undoes the precoder on a run
    assert (deprecode_pam4_bytes(precode_pam4_bytes(m)) == m).all()


#: sha256 (first 32 hex digits) of the lane UIs the UI-level TX path produced for a fixed
#: 150-flit stream, before the packed path replaced it
GOLDEN = [
    ((1, "rs-t4", 1, "pam4", None), True, "c45190a7a0bf858a133df5d92213ff78"),
    ((4, "rs-t2", 2, "pam4", 100), True, "58b635c20a1af5e0550c02110dba5f1f"),
    ((2, "bypass", 1, "pam4", 16), False, "8c105a003a28bca3a5df94284c58ba42"),
    ((8, "rs-t4", 1, "nrz", 64), True, "77af3c3485c2f989cf808952a463cdab"),
]


@pytest.mark.parametrize("cfg,precode_on,digest", GOLDEN)
def test_tx_output_is_bit_exact_with_the_ui_level_path(cfg, precode_on, digest):
    data = bytes((i * 7 + i // 20) & 0xFF for i in range(20 * 150))
    prof = dataclasses.replace(DEFAULT_PROFILE, precode=precode_on)
    c = TxConfig(*cfg)
    uis, _ = tx(data, c, prof)
    assert hashlib.sha256(b"".join(u.tobytes() for u in uis)).hexdigest()[:32] == digest
    assert all(u.dtype == np.uint8 and int(u.max()) <= (3 if c.modulation == "pam4" else 1)
               for u in uis)
    assert rx(uis, c, prof).flits == data


def test_pam4_rx_corrects_ui_errors_through_the_packed_path():
    data = RNG.integers(0, 256, 20 * 240, dtype=np.uint8).tobytes()
    c = TxConfig(4, "rs-t4", 1, "pam4", 200)
    uis, _ = tx(data, c)
    for u in uis:                       # a level error in a data UI of every lane
        u[AMCTL_UI + 50] = (u[AMCTL_UI + 50] + 1) & 3
    res = rx(uis, c)
    assert res.flits == data
    assert res.report["corrected_symbols"] >= 4

