"""The DLL engine's historical import path: ``from ubpkt.link.engine import DLLEngine`` keeps
working; the engine lives in :mod:`ubpkt.link.dll` (one module per concern)."""
from .dll import DLLEngine  # noqa: F401
from .dll.state import (CREDIT_INIT, DISABLED, NORMAL_STATE, PARAM_INIT, AckState,  # noqa: F401
                        DllState, ReqState)

__all__ = ["DLLEngine", "DISABLED", "PARAM_INIT", "CREDIT_INIT", "NORMAL_STATE", "DllState",
           "ReqState", "AckState"]
