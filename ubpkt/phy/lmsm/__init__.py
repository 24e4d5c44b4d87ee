"""Link state management (LMSM, UB 2.0 §3.4.3) as a sans-IO engine, and a two-port simulator.

Modules: :mod:`.states` (state enum, transition table, port configuration), :mod:`.training`
(Link_Idle .. Send_NullBlock), :mod:`.retrain` (Retrain, Change_Speed, Equalization),
:mod:`.lane_manage` (Link_Active: width degradation/increase, FEC control, EDF requests),
:mod:`.engine` (the :class:`Lmsm` composing them on the engine contract), :mod:`.sim`
(:class:`LinkSim`, two ports over a simulated channel).
"""
from .engine import Lmsm
from .sim import LinkSim
from .states import (FEC_CODES, MODE_RATES, TRANSITIONS, LmsmEvent, LmsmState, PortConfig, Unit,
                     eq_mode_result, rate_bitmap)

STATES = ("Link_Idle", "Probe", "RXEQ_Optimize", "Discovery", "Config", "Send_NullBlock",
          "Link_Active", "Retrain", "Change_Speed", "Equalization")

__all__ = ["STATES", "PortConfig", "Unit", "Lmsm", "LinkSim", "FEC_CODES", "MODE_RATES",
           "TRANSITIONS", "LmsmState", "LmsmEvent", "eq_mode_result", "rate_bitmap"]
