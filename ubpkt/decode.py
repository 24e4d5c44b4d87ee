"""The decoded record: one dict per frame, the basis of every output format.

``{"frame", "time", "len", "caplen", "layers", "fields", "issues"}`` (plus ``linktype``).
"""
from __future__ import annotations

from .dissect import LINKTYPE_UB, dissect
from .profile import Profile

__all__ = ["decode"]


def decode(data: bytes, linktype: int = LINKTYPE_UB, profile: Profile | None = None, *,
           frame: int = 1, time: float = 0.0, orig_len: int | None = None) -> dict:
    """Decode one frame to a record.  Never raises on bad input: problems become issues."""
    fr = dissect(data, linktype, profile)
    return {"frame": frame, "time": time, "len": len(data) if orig_len is None else orig_len,
            "caplen": len(data), "linktype": linktype, "layers": fr.layers,
            "fields": fr.fields, "issues": fr.issues}
