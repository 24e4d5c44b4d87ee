"""The compact lane file (ubpkt-lanes-2, issue 14): layout, round trips for NRZ and PAM4 at any
UI count, the former .npz still read (told apart by content), damaged files as one-line
errors, and the size against the one-byte-per-UI file."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from click.testing import CliRunner

from ubpkt.phy.lanefile import (FORMAT, LEGACY_FORMAT, MAGIC, LaneFileError, decode_lanes,
                                detect, encode_lanes, read_lanes, write_lanes)
from ubpkt.phy.pcs import TxConfig, tx
from ubpkt_cli.main import main

RNG = np.random.default_rng(140)
SETTINGS = {"lanes": 2, "fec": "rs-t4", "interleave": 1, "amctl_period": 6656, "crc_mode": True}


def _lanes(mod: str, sizes) -> list[np.ndarray]:
    top = 2 if mod == "nrz" else 4
    return [RNG.integers(0, top, n, dtype=np.uint8) for n in sizes]


def test_layout_is_magic_length_json_then_lsb_first_packed_lanes():
    nrz = [np.array([1, 0, 0, 0, 0, 0, 0, 1, 1], np.uint8)]           # 9 UIs
    data = encode_lanes(nrz, dict(SETTINGS, lanes=1, modulation="nrz"), rate_gbps=25.78125)
    assert data[:8] == MAGIC
    (hlen,) = struct.unpack_from("<I", data, 8)
    head = json.loads(data[12:12 + hlen])
    assert head["format"] == FORMAT and head["bits_per_ui"] == 1
    assert head["ui_order"] == "lsb-first" and head["ui_counts"] == [9]
    assert head["rate_gbps"] == 25.78125 and head["fec"] == "rs-t4"
    assert data[12 + hlen:] == bytes([0b1000_0001, 0b0000_0001])     # UI 0 = bit 0
    pam4 = [np.array([3, 0, 1, 2, 1], np.uint8)]
    data = encode_lanes(pam4, dict(SETTINGS, lanes=1, modulation="pam4"))
    (hlen,) = struct.unpack_from("<I", data, 8)
    assert json.loads(data[12:12 + hlen])["bits_per_ui"] == 2
    assert data[12 + hlen:] == bytes([0b10_01_00_11, 0b01])            # UI k = bits 2k+1..2k


@pytest.mark.parametrize("mod", ["nrz", "pam4"])
@pytest.mark.parametrize("sizes", [[0], [1], [7, 9], [8, 8, 8, 8], [1001, 1000, 999]])
def test_round_trip_any_ui_count(mod, sizes):
    lanes = _lanes(mod, sizes)
    back, st = decode_lanes(encode_lanes(lanes, dict(SETTINGS, modulation=mod)))
    assert [u.tolist() for u in back] == [u.tolist() for u in lanes]
    assert st["modulation"] == mod and st["format"] == FORMAT and st["fec"] == "rs-t4"


@pytest.mark.parametrize("mod", ["nrz", "pam4"])
def test_both_formats_read_alike_and_the_packed_one_is_8_or_4_times_smaller(tmp_path, mod):
    data = RNG.integers(0, 256, 20 * 600, dtype=np.uint8).tobytes()
    cfg = TxConfig(4, "rs-t4", 1, mod)
    uis, _ = tx(data, cfg)
    packed, legacy = tmp_path / "l.ublanes", tmp_path / "l.npz"
    settings = dict(SETTINGS, lanes=4, modulation=mod)
    n_packed = write_lanes(packed, uis, settings)
    n_legacy = write_lanes(legacy, uis, settings, "npz")
    assert n_packed == packed.stat().st_size and n_legacy == legacy.stat().st_size
    assert detect(packed.read_bytes()[:8]) == "packed" and detect(legacy.read_bytes()) == "npz"
    (a, sa), (b, sb) = read_lanes(packed), read_lanes(legacy)
    assert all((x == y).all() for x, y in zip(a, b)) and all((x == y).all() for x, y in zip(a, uis))
    assert sa["format"] == FORMAT and sb["format"] == LEGACY_FORMAT
    assert sa["modulation"] == sb["modulation"] == mod
    ratio = n_legacy / n_packed
    assert ratio > (7.5 if mod == "nrz" else 3.8), ratio


def _good() -> bytes:
    return encode_lanes(_lanes("pam4", [40, 40]), dict(SETTINGS, modulation="pam4"))


def _with_header(head: dict, body: bytes = b"") -> bytes:
    text = json.dumps(head).encode()
    return MAGIC + struct.pack("<I", len(text)) + text + body


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d[:10], "cut off inside the header length"),
    (lambda d: d[:30], "cut off inside the header"),
    (lambda d: d[:-1], "cut off"),
    (lambda d: d + b"\0", "bytes after the last lane"),
    (lambda d: d[:8] + struct.pack("<I", 1 << 30) + d[12:], "over"),
    (lambda d: _with_header({"format": "other"}), "does not name"),
    (lambda d: d[:12] + b"\xff" + d[13:], "not JSON"),
    (lambda d: _with_header({"format": FORMAT, "modulation": "pam4", "bits_per_ui": 1,
                             "ui_order": "lsb-first", "ui_counts": [4]}, b"\0"), "bits_per_ui"),
    (lambda d: _with_header({"format": FORMAT, "modulation": "nrz", "bits_per_ui": 1,
                             "ui_order": "msb-first", "ui_counts": [8]}, b"\0"), "ui_order"),
    (lambda d: _with_header({"format": FORMAT, "modulation": "nrz", "bits_per_ui": 1,
                             "ui_order": "lsb-first", "ui_counts": [-8]}), "ui_counts"),
    (lambda d: _with_header({"format": FORMAT, "modulation": "nrz", "bits_per_ui": 1,
                             "ui_order": "lsb-first", "ui_counts": [1 << 60]}), "ui_counts"),
])
def test_damaged_packed_files_are_lane_file_errors(mutate, message):
    with pytest.raises(LaneFileError, match=message):
        decode_lanes(mutate(_good()))


def test_values_out_of_range_are_refused_on_write():
    with pytest.raises(LaneFileError, match="above 1"):
        encode_lanes([np.array([0, 2], np.uint8)], {"modulation": "nrz"})


def test_cli_reads_both_writes_packed_by_default_and_reports_bad_files(tmp_path):
    runner = CliRunner()
    src = tmp_path / "in.flits"
    src.write_bytes(RNG.integers(0, 256, 20 * 120, dtype=np.uint8).tobytes())
    for fmt in ("packed", "npz"):
        out = tmp_path / f"l.{fmt}"
        args = ["phy", "tx", str(src), "-o", str(out), "--modulation", "pam4", "--lanes", "2",
                "--rate", "53.125", "--report", str(tmp_path / "tx.json")]
        r = runner.invoke(main, args + ([] if fmt == "packed" else ["--lane-format", "npz"]))
        assert r.exit_code == 0, r.output
        rep = json.loads((tmp_path / "tx.json").read_text())
        assert rep["lane_format"] == (FORMAT if fmt == "packed" else LEGACY_FORMAT)
        assert rep["file_bytes"] == out.stat().st_size
        back = tmp_path / f"back.{fmt}"
        r = runner.invoke(main, ["phy", "rx", str(out), "-o", str(back), "--report",
                                 str(tmp_path / "rx.json")])
        assert r.exit_code == 0, r.output
        assert back.read_bytes() == src.read_bytes()
        assert json.loads((tmp_path / "rx.json").read_text())["lane_file_format"] == \
            rep["lane_format"]
    assert read_lanes(tmp_path / "l.packed")[1]["rate_gbps"] == 53.125
    # the fuzzed copy of a former .npz stays an .npz
    r = runner.invoke(main, ["fuzz", str(tmp_path / "l.npz"), "-o", str(tmp_path / "f.npz"),
                             "--ber", "1e-3", "--seed", "1", "--report", str(tmp_path / "f.json")])
    assert r.exit_code == 0, r.output
    assert detect((tmp_path / "f.npz").read_bytes()[:8]) == "npz"
    bad = tmp_path / "cut.ublanes"
    bad.write_bytes((tmp_path / "l.packed").read_bytes()[:-3])
    r = runner.invoke(main, ["phy", "rx", str(bad), "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "cut off" in r.output and "Traceback" not in r.output
