"""UB physical layer (UB Base Specification 2.0, chapter 3): symbols, scrambler, RS-FEC,
AMCTL/eBCH-16, LTB/EEIB, lanes, the LMSM and whole TX/RX pipelines.

Choices the spec leaves open are in :mod:`ubpkt.phy.profile` (``PhyProfile``)."""
from .ebch import ebch16_decode, ebch16_encode
from .profile import DEFAULT_PROFILE, PhyProfile
from .rsfec import RsResult, rs_decode, rs_decode_many, rs_encode, rs_encode_many

__all__ = [
    "ebch16_encode", "ebch16_decode", "rs_encode", "rs_decode", "rs_encode_many",
    "rs_decode_many", "RsResult", "PhyProfile", "DEFAULT_PROFILE",
    "TxConfig", "tx", "rx", "Lmsm", "LinkSim", "PortConfig",
]

_LAZY = {"TxConfig": "pcs", "tx": "pcs", "rx": "pcs",
         "Lmsm": "lmsm", "LinkSim": "lmsm", "PortConfig": "lmsm"}


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'ubpkt.phy' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
