"""LMSM states, the transition table, port configuration and the per-lane unit (UB 2.0 §3.4.3).

The states of Figure 3-28 with their substates are one flat :class:`LmsmState` enum (member name
``Discovery_Active``, value the trace label ``"Discovery.Active"``).  :data:`TRANSITIONS` lists
every move the state sections allow (§3.4.3.1..10), for :class:`ubpkt.engine.Transitions`: the
engine checks each move against it, so a move the spec does not list is caught at once.

Data rates (§3.1.2 Table 3-1, DLTB symbols 5/6 Table 3-12): PHY Mode-1 uses Data Rate 0
(4.0 Gbit/s) and the custom rates DR3/DR5/DR7; PHY Mode-2 uses DR0 (2.578125), DR2 (25.78125),
DR4 (53.125) and DR8 (106.25).  The mode is fixed before power-on, so a port advertises the rates
of its own mode only (:func:`rate_bitmap`).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ...engine import Event, Transitions

__all__ = ["LmsmState", "TRANSITIONS", "PortConfig", "Unit", "LmsmEvent", "FEC_CODES",
           "FEC_NAMES", "MODE_RATES", "EEIB_RATE", "BLOCK", "eq_mode_result", "rate_bitmap",
           "state_of"]

FEC_CODES = {"bypass": 0, "rs-t2": 1, "rs-t4": 2}
FEC_NAMES = {v: k for k, v in FEC_CODES.items()}
#: Data Rate indices per PHY mode (Table 3-1 and Table 3-12 symbols 5/6).
MODE_RATES = {1: (0, 3, 5, 7), 2: (0, 2, 4, 8)}
EEIB_RATE = {0: "2.578125", 2: "25.78125", 4: "53.125", 8: "106.25"}  # Mode-2 DRn -> EEIB table
BLOCK = 16  # symbols per LTB / block time


class LmsmState(enum.Enum):
    Link_Idle = "Link_Idle"
    Probe_Wait = "Probe.Wait"
    Probe_Confirm = "Probe.Confirm"
    RXEQ_Optimize = "RXEQ_Optimize"
    Discovery_Active = "Discovery.Active"
    Discovery_Confirm = "Discovery.Confirm"
    Config_Active = "Config.Active"
    Config_Check = "Config.Check"
    Config_Confirm = "Config.Confirm"
    Send_NullBlock = "Send_NullBlock"
    Link_Active = "Link_Active"
    Retrain_Active = "Retrain.Active"
    Retrain_Confirm = "Retrain.Confirm"
    Change_Speed_EEI = "Change_Speed.EEI"    # sending the AMCTL with EEI (§3.4.3.9)
    Change_Speed_Idle = "Change_Speed.Idle"  # electrical idle, then the new rate
    EQ_Coarsetune_Active = "Equalization.Coarsetune_Active"
    EQ_Coarsetune_Confirm = "Equalization.Coarsetune_Confirm"
    EQ_Active = "Equalization.Active"
    EQ_Passive = "Equalization.Passive"


S = LmsmState
_EQ = (S.EQ_Coarsetune_Active, S.EQ_Coarsetune_Confirm, S.EQ_Active, S.EQ_Passive)
#: Every transition §3.4.3 lists.  Link_Idle is also reachable from every state on a reset (the
#: upper layer's choice), which the table includes.
TRANSITIONS = Transitions("lmsm", LmsmState, {
    S.Link_Idle: {S.Probe_Wait, S.RXEQ_Optimize, S.Discovery_Active},           # §3.4.3.1
    S.Probe_Wait: {S.Probe_Confirm, S.Link_Idle},                                # §3.4.3.2
    S.Probe_Confirm: {S.Discovery_Active, S.Probe_Wait, S.Link_Idle},
    S.RXEQ_Optimize: {S.Discovery_Active, S.Link_Idle},                          # §3.4.3.3
    S.Discovery_Active: {S.Discovery_Confirm, S.Link_Idle},                      # §3.4.3.4
    S.Discovery_Confirm: {S.Config_Active, S.Link_Idle},
    S.Config_Active: {S.Config_Check, S.Link_Idle},                              # §3.4.3.5
    S.Config_Check: {S.Config_Confirm, S.Link_Idle},
    S.Config_Confirm: {S.Send_NullBlock, S.Link_Idle},
    S.Send_NullBlock: {S.Discovery_Active, S.Link_Active, S.Retrain_Active,     # §3.4.3.6
                       S.Link_Idle},
    S.Link_Active: {S.Retrain_Active, S.Link_Idle},                              # §3.4.3.7
    S.Retrain_Active: {S.Retrain_Confirm, S.Discovery_Active, S.Change_Speed_EEI,  # §3.4.3.8
                       S.EQ_Coarsetune_Active, S.EQ_Coarsetune_Confirm, S.Link_Idle},
    S.Retrain_Confirm: {S.Change_Speed_EEI, S.Discovery_Active, S.Send_NullBlock, S.Link_Idle},
    S.Change_Speed_EEI: {S.Change_Speed_Idle, S.Link_Idle},                      # §3.4.3.9
    S.Change_Speed_Idle: {S.Retrain_Active, S.Link_Idle},
    S.EQ_Coarsetune_Active: {S.EQ_Coarsetune_Confirm, S.Change_Speed_EEI,        # §3.4.3.10
                             S.Retrain_Active, S.Link_Idle},
    S.EQ_Coarsetune_Confirm: {S.EQ_Active, S.EQ_Passive, S.Change_Speed_EEI, S.Retrain_Active,
                              S.Link_Idle},
    S.EQ_Active: {S.EQ_Passive, S.Retrain_Active, S.Change_Speed_EEI, S.Link_Idle},
    S.EQ_Passive: {S.EQ_Active, S.Retrain_Active, S.Change_Speed_EEI, S.Link_Idle},
})
_BY_LABEL = {s.value: s for s in LmsmState}


def state_of(state: str, sub: str = "") -> LmsmState:
    """The enum member of a (state, substate) pair as the engine keeps them."""
    return _BY_LABEL[state + ("." + sub if sub else "")]


@dataclass(slots=True)
class LmsmEvent(Event):
    """Something an LMSM port reports besides a state change (lane failed, width switch, rate
    change, EDF/SDF seen ...): ``what`` names it, ``detail`` holds its values."""
    port: str
    what: str
    detail: dict


def eq_mode_result(tx_mode: int, rx_mode: int) -> int:
    """Table 3-21: the negotiated EQ mode from the sent and received CLTB.EQ_Mode."""
    if tx_mode == 3 or rx_mode == 3:
        return 0
    return min(tx_mode, rx_mode)


def rate_bitmap(max_rate: int, phy_mode: int = 2) -> int:
    """DLTB/RLTB Data_Rate_Support bitmap: the rates of ``phy_mode`` up to Data Rate
    ``max_rate`` (never a rate of the other mode, §3.1.2)."""
    return sum(1 << r for r in MODE_RATES[phy_mode] if r <= max_rate)


@dataclass(frozen=True)
class PortConfig:
    lanes: int = 8  # target TX and RX width (Tx_M = Rx_N, PHY Mode-2 style)
    fec: str = "rs-t4"  # preferred FEC mode
    fec_support: tuple[str, ...] = ("rs-t2", "rs-t4")
    interleave: bool = False
    max_rate: int = 0  # supports the rates of phy_mode up to DR<max_rate>
    phy_mode: int = 2  # PHY Mode-1 (4.0 G + custom DR3/5/7) or Mode-2 (DR0/2/4/8), §3.1.2
    eq_mode: int = 2  # 0 Full_EQ, 1 Only_Highest_Data_Rate_EQ, 2 Skip_EQ
    primary: bool | None = None  # None: port-type negotiation (§3.4.2.1)
    link_id: int = 1
    optical: bool = False  # Optical-Link mode: no Probe, fixed rate, Skip_EQ
    bypass_probe: bool = False
    quick_degrade: bool = True
    crc_mode: bool = True  # the data link's CRC mode, carried in RLTB.CRC_Mode (§3.4.2.8)
    discovery_min_tx: int = 1024  # DLTBs sent after the first received (§3.4.3.4)
    timeout_ticks: int = 6000  # stands for the millisecond timeouts
    change_speed_idle: int = 8  # block times of electrical idle in Change_Speed
    change_speed_min_tx: int = 128  # RLTBs with Change_Speed=1 sent after one received (§3.4.3.8)

    def __post_init__(self):
        if self.phy_mode not in MODE_RATES:
            raise ValueError("phy_mode must be 1 or 2")
        if self.lanes not in (1, 2, 4, 8):
            raise ValueError("lanes must be 1, 2, 4 or 8")


@dataclass(frozen=True)
class Unit:
    """What one physical lane carries in one block time: ``kind`` 'ltb' | 'amctl' | 'data' |
    'prbs' | 'eeib', ``sym`` its symbols."""
    kind: str
    sym: bytes


def _inv(b: bytes) -> bytes:
    return bytes(x ^ 0xFF for x in b)


@dataclass
class _RxLane:
    lane_id: int | None = None
    lid_prev: int | None = None
    inverted: bool = False
    scr_pos: int = 0
    last_body: bytes | None = None
    consec: int = 0
    ltb: object = None
    locked: bool = False
    misses: int = 0
    next_expected: int | None = None
    failed: bool = False
    data: bytes | None = None
    last_amctl: int = -10**9
    up_seen: bool = False  # this lane's first AMCTL of a width increase was seen
