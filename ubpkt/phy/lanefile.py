"""Lane files: the UI streams of a link's lanes on disk, as ``ubpkt phy tx`` writes them and
``ubpkt phy rx`` / ``ubpkt fuzz`` read them.

Two formats, told apart by their first bytes (:func:`detect`):

``ubpkt-lanes-2`` (the default, bit-packed; ``.ublanes``)::

    offset  size  content
    0       8     magic b"UBLANES2"
    8       4     H: length of the header, uint32 little-endian (at most MAX_HEADER)
    12      H     header: a UTF-8 JSON object (keys below)
    12+H    ...   lane 0's packed UIs, then lane 1's, ... (physical lane order), each lane
                  ceil(ui_count * bits_per_ui / 8) bytes, nothing after the last lane

Header keys: ``format`` ("ubpkt-lanes-2"), ``modulation`` ("nrz" | "pam4"), ``bits_per_ui``
(1 | 2), ``ui_order`` ("lsb-first": UI k of a lane sits in byte k*b // 8 at bit (k*b) mod 8,
so a byte holds one UB symbol as the lane sends it: bit 0 first, UB 2.0 §3.2.5.1; a PAM4 UI
k is bits 2k+1..2k, odd bit the MSB), ``ui_counts`` (UIs per lane), ``rate_gbps`` (the lane
data rate, UB 2.0 §3.1.2, or null when not given) and the TX settings (``lanes``, ``fec``,
``interleave``, ``amctl_period``, ``crc_mode``).  Padding bits of a lane's last byte are 0.
PAM4 UIs are stored as the levels on the wire (after Gray coding and precoding).

``ubpkt-phy-lanes-1`` (the former format, still read; written with ``--lane-format npz``): a
numpy ``.npz`` of ``lane0``..``laneN-1`` (uint8, one byte per UI) and the settings as scalars.

The packed form holds 1 (NRZ) or 2 (PAM4) bits per UI where the ``.npz`` holds 8.  The spec
defines no file format: this one is ubpkt's (``docs/phy.md``).
"""
from __future__ import annotations

import json
import struct
import zipfile

import numpy as np

from .symbols import pack_ui, unpack_ui

__all__ = ["FORMAT", "LEGACY_FORMAT", "MAGIC", "MAX_HEADER", "LaneFileError", "detect",
           "write_lanes", "read_lanes", "encode_lanes", "decode_lanes", "infer_modulation"]

FORMAT = "ubpkt-lanes-2"
LEGACY_FORMAT = "ubpkt-phy-lanes-1"
MAGIC = b"UBLANES2"
MAX_HEADER = 1 << 16
BITS_PER_UI = {"nrz": 1, "pam4": 2}
_SETTINGS = ("lanes", "fec", "interleave", "modulation", "amctl_period", "crc_mode")


class LaneFileError(ValueError):
    """A file that is not a readable lane file; the message is one line, fit for a user."""


def detect(head: bytes) -> str | None:
    """``"packed"``, ``"npz"`` or None from a file's first bytes (8 are enough)."""
    if head[:8] == MAGIC:
        return "packed"
    if head[:2] == b"PK":
        return "npz"
    return None


def infer_modulation(lanes) -> str:
    """PAM4 when any UI is above 1 (what a lane file without settings implies), else NRZ."""
    return "pam4" if max((int(u.max(initial=0)) for u in lanes), default=0) > 1 else "nrz"


def _packed_len(ui: int, bits: int) -> int:
    return (ui * bits + 7) // 8


def encode_lanes(lanes, settings: dict, rate_gbps: float | None = None) -> bytes:
    """The ``ubpkt-lanes-2`` bytes of ``lanes`` (one uint8 UI array per lane)."""
    lanes = [np.asarray(u, dtype=np.uint8).reshape(-1) for u in lanes]
    mod = settings.get("modulation") or infer_modulation(lanes)
    if mod not in BITS_PER_UI:
        raise LaneFileError(f"unknown modulation {mod!r}")
    bits = BITS_PER_UI[mod]
    top = (1 << bits) - 1
    for i, u in enumerate(lanes):
        if u.size and int(u.max()) > top:
            raise LaneFileError(f"lane {i}: UI values above {top} cannot be stored as {mod}")
    head = {"format": FORMAT, "modulation": mod, "bits_per_ui": bits, "ui_order": "lsb-first",
            "ui_counts": [int(u.size) for u in lanes], "rate_gbps": rate_gbps}
    head.update({k: settings[k] for k in _SETTINGS if k in settings and k != "modulation"})
    text = json.dumps(head, sort_keys=True).encode()
    parts = [MAGIC, struct.pack("<I", len(text)), text]
    per_symbol = 8 // bits
    for u in lanes:
        pad = (-u.size) % per_symbol
        if pad:
            u = np.concatenate([u, np.zeros(pad, np.uint8)])
        parts.append(pack_ui(u, mod).tobytes())
    return b"".join(parts)


def decode_lanes(data: bytes, name: str = "lane file") -> tuple[list[np.ndarray], dict]:
    """Lanes (uint8, one UI per byte) and settings from ``ubpkt-lanes-2`` bytes; every defect
    is a :class:`LaneFileError`."""
    if data[:8] != MAGIC:
        raise LaneFileError(f"{name}: not a {FORMAT} file (no {MAGIC.decode()} magic)")
    if len(data) < 12:
        raise LaneFileError(f"{name}: cut off inside the header length")
    (hlen,) = struct.unpack_from("<I", data, 8)
    if hlen > MAX_HEADER:
        raise LaneFileError(f"{name}: header length {hlen} is over {MAX_HEADER} bytes")
    if len(data) < 12 + hlen:
        raise LaneFileError(f"{name}: cut off inside the header ({len(data) - 12} of {hlen} "
                            "bytes)")
    try:
        head = json.loads(data[12:12 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise LaneFileError(f"{name}: header is not JSON ({str(e).splitlines()[0]})")
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise LaneFileError(f"{name}: header does not name the {FORMAT} format")
    mod = head.get("modulation")
    counts = head.get("ui_counts")
    if mod not in BITS_PER_UI or head.get("bits_per_ui") != BITS_PER_UI[mod]:
        raise LaneFileError(f"{name}: modulation {mod!r} / bits_per_ui "
                            f"{head.get('bits_per_ui')!r} is not nrz/1 or pam4/2")
    if head.get("ui_order") != "lsb-first":
        raise LaneFileError(f"{name}: unknown ui_order {head.get('ui_order')!r}")
    if (not isinstance(counts, list) or not counts or
            not all(type(c) is int and 0 <= c < (1 << 48) for c in counts)):
        raise LaneFileError(f"{name}: ui_counts must be a non-empty list of UI counts")
    bits = BITS_PER_UI[mod]
    sizes = [_packed_len(c, bits) for c in counts]
    body = len(data) - 12 - hlen
    if body != sum(sizes):
        what = "cut off" if body < sum(sizes) else "has bytes after the last lane"
        raise LaneFileError(f"{name}: {what} ({body} bytes of lane data, the header "
                            f"announces {sum(sizes)})")
    lanes, off = [], 12 + hlen
    for c, n in zip(counts, sizes):
        lanes.append(unpack_ui(np.frombuffer(data, np.uint8, n, off), mod)[:c])
        off += n
    settings = {k: head[k] for k in _SETTINGS if k in head}
    settings.update(modulation=mod, format=FORMAT, rate_gbps=head.get("rate_gbps"))
    return lanes, settings


def _read_npz(path: str) -> tuple[list[np.ndarray], dict]:
    """The former ``.npz`` lane file (``ubpkt-phy-lanes-1``)."""
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise LaneFileError(f"{path}: not a lane file (.npz): {str(e).splitlines()[0]}")
    if not hasattr(z, "files"):
        raise LaneFileError(f"{path} is a plain .npy array, not a lane file (.npz)")
    names = sorted((f for f in z.files if f.startswith("lane") and f[4:].isdigit()),
                   key=lambda f: int(f[4:]))
    if not names or names != [f"lane{i}" for i in range(len(names))]:
        raise LaneFileError(f"{path}: no lane0..laneN-1 arrays in the file")
    try:
        lanes = [np.asarray(z[n]) for n in names]
        settings = {k: z[k].item() for k in z.files if k not in names}
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise LaneFileError(f"{path}: unreadable array ({str(e).splitlines()[0]})")
    for n, u in zip(names, lanes):
        if u.ndim != 1 or not np.issubdtype(u.dtype, np.integer):
            raise LaneFileError(f"{path}: {n} must be a 1-D integer array")
        if u.size and (u.min() < 0 or u.max() > 3):
            raise LaneFileError(f"{path}: {n} holds values outside 0..3")
    settings["format"] = LEGACY_FORMAT
    return [u.astype(np.uint8) for u in lanes], settings


def read_lanes(path: str) -> tuple[list[np.ndarray], dict]:
    """Lanes and settings of a lane file in either format (detected from its content);
    ``settings["format"]`` says which.  OSError when it cannot be read, LaneFileError when it
    is not a lane file."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        kind = detect(head)
        if kind == "packed":
            return decode_lanes(head + fh.read(), str(path))
    if not head:
        raise LaneFileError(f"{path}: empty file, not a lane file")
    if kind == "npz":
        return _read_npz(path)
    what = "a plain .npy array" if head[:6] == b"\x93NUMPY" else "unknown content"
    raise LaneFileError(f"{path}: not a lane file ({FORMAT} or .npz written by "
                        f"`ubpkt phy tx`): {what}")


def write_lanes(path: str, lanes, settings: dict, lane_format: str = "packed",
                rate_gbps: float | None = None) -> int:
    """Write a lane file (``lane_format`` "packed" = ``ubpkt-lanes-2``, "npz" = the former
    format); returns the bytes written."""
    if lane_format == "packed":
        data = encode_lanes(lanes, settings, rate_gbps)
        with open(path, "wb") as fh:
            fh.write(data)
        return len(data)
    if lane_format != "npz":
        raise ValueError(f"unknown lane file format {lane_format!r}")
    arrays = {f"lane{i}": np.asarray(u, dtype=np.uint8) for i, u in enumerate(lanes)}
    for k, v in settings.items():
        if k not in ("format", "rate_gbps"):
            arrays[k] = np.array(v)
    arrays["format"] = np.array(LEGACY_FORMAT)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
        return fh.tell()
