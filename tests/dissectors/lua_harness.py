"""Driving dissectors/ub.lua through tshark from other tests, frame by frame.

The tshark invocation, the value normalisation and the field comparison are test_lua.py's
(imported here, not copied); this module adds what a parity test over many generated frames
needs: the field list, a pcap per link type, and a per-frame verdict instead of one assertion for
the whole capture, so that a failing frame can be named (and a known Lua bug pinned to exactly
the frames it affects).
"""
from __future__ import annotations

from pathlib import Path

from test_lua import (CARRIER_KEYS, _find_tshark, _generated, compare, run_tshark,  # noqa: F401
                      write)

_KEYS = None


def lua_keys() -> list[str]:
    """The field names ub.lua registers (from its generator) plus the carrier fields and the
    payload, as test_lua.check_capture compares them."""
    global _KEYS
    if _KEYS is None:
        _KEYS = sorted(_generated().first_hf) + CARRIER_KEYS + ["data.data", "data.len"]
    return list(_KEYS)


def find_tshark() -> str:
    """The tshark executable (pytest.skip with the reason when there is none)."""
    return _find_tshark()


def reserved_warnings(issues) -> list[str]:
    return sorted(i["field"] for i in issues if i["message"].startswith("reserved bits set"))


def lua_verdicts(tshark: str, tmp: Path, linktype: int, records: list[dict],
                 frames: list[bytes]) -> list[list[str]]:
    """Run ``frames`` (one pcap of ``linktype``) through tshark + ub.lua and compare each with
    its ubpkt record (``decode()`` output).  Returns, per frame, the list of differences (empty
    when the Lua agrees): field values both ways, as test_lua.compare does, and the reserved-bit
    expert infos."""
    keys = lua_keys()
    pcap = write(tmp / f"parity_{linktype}.pcap", linktype, frames)
    rows = run_tshark(tshark, pcap, keys)
    assert len(rows) == len(records), f"{len(records)} frames, {len(rows)} tshark rows"
    out = []
    for n, (rec, row) in enumerate(zip(records, rows), 1):
        errs = []
        try:
            compare([rec["fields"]], [row], keys, f"frame {n}")
        except AssertionError as exc:
            errs += [line for line in str(exc).splitlines()[1:]]
        got = sorted(m.split(": ", 1)[1] for m in row["_experts"].split("|")
                     if m.startswith("Reserved bits set: "))
        if got != reserved_warnings(rec["issues"]):
            errs.append(f"reserved-bit warnings: lua {got}, ubpkt "
                        f"{reserved_warnings(rec['issues'])}")
        out.append(errs)
    return out
