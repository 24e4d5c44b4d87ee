"""The DLL engine (UB 2.0 §4.2, §4.4-4.8) split along the engine contract: :mod:`.state`
(DLL state machine, RETRY_REQ_SM, RETRY_ACK_SM and their transition tables), :mod:`.retry_sm`,
:mod:`.transmit`, :mod:`.receive`, :mod:`.events`, composed in :mod:`.engine`."""
from .engine import DLLEngine  # noqa: F401
from .events import *  # noqa: F401,F403
from .state import (ACK_TRANSITIONS, CREDIT_INIT, DISABLED, DLL_TRANSITIONS,  # noqa: F401
                    NORMAL_STATE, PARAM_INIT, REQ_TRANSITIONS, AckState, DllState, ReqState)
