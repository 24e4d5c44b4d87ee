"""What the DLL engine reports (typed events over :class:`ubpkt.engine.Event`).

Every event has ``at`` (the ns time of the call that raised it) and a ``kind`` class name that
older callers read as ``event["event"]``: the events also answer ``ev[key]`` / ``ev.get(key)``
with their field names (plus the aliases listed per class), so code written for the dict
events of earlier releases keeps working.  New code should use the attributes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...engine import Event, StateChanged

__all__ = ["DllEvent", "LinkStateChanged", "PacketDelivered", "Discarded", "LinkError",
           "RetryRequested", "RetryDone", "ReplayStarted", "Handshake", "Negotiated",
           "PhyRetrainRequested", "ParamExchanged", "LaneManageReceived", "ModeChangeReady"]


class _DictView:
    """``ev["event"]`` is the kind; ``ev[name]`` an attribute (or an alias of one)."""
    __slots__ = ()
    kind: ClassVar[str] = ""
    aliases: ClassVar[dict] = {}

    def __getitem__(self, key: str):
        if key == "event":
            return self.kind
        try:
            return getattr(self, self.aliases.get(key, key))
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default=None):
        try:
            return self[key]
        except KeyError:
            return default


@dataclass(slots=True)
class DllEvent(_DictView, Event):
    """Base of the DLL engine's events."""


@dataclass(slots=True)
class LinkStateChanged(_DictView, StateChanged):
    """A DLL state machine moved: ``machine`` is ``DLL`` (§4.2), ``RETRY_REQ_SM`` or
    ``RETRY_ACK_SM`` (§4.7.3.3, §4.7.3.4); ``ev["state"]`` is the new state."""
    kind: ClassVar[str] = "state"
    aliases: ClassVar[dict] = {"state": "new"}


@dataclass(slots=True)
class PacketDelivered(DllEvent):
    """A whole DLLDP handed to the network layer (CRD/ACK/CRD_VL cleared)."""
    packet: bytes = b""
    vl: int = 0
    error_flag: bool = False
    cells: int = 0
    kind: ClassVar[str] = "packet"


@dataclass(slots=True)
class Discarded(DllEvent):
    """A DLLDP not handed up (link down inside it, or received outside DLL_Normal)."""
    reason: str = ""
    vl: int | None = None
    kind: ClassVar[str] = "discard"


@dataclass(slots=True)
class LinkError(DllEvent):
    """An error of UB 2.0 §4.8, in the issue shape of the decoders (``layer`` ub.dll)."""
    name: str = ""
    severity: str = "error"
    message: str = ""
    field: str | None = None
    layer: str = "ub.dll"
    offset: int = 0
    kind: ClassVar[str] = "error"


@dataclass(slots=True)
class RetryRequested(DllEvent):
    """The receiver found a bad block (BCRC, FEC failure, stall...) and asks for a replay."""
    reason: str = ""
    rcvptr: int = 0
    kind: ClassVar[str] = "retry"


@dataclass(slots=True)
class RetryDone(DllEvent):
    """A Retry_Ack for our RcvPtr arrived: RETRY_REQ_SM is back to NORMAL."""
    rcvptr: int = 0
    kind: ClassVar[str] = "retry_done"


@dataclass(slots=True)
class ReplayStarted(DllEvent):
    """The sender goes back to ``from_ptr`` (the peer's RcvPtr) and resends ``flits``."""
    from_ptr: int = 0
    flits: int = 0
    kind: ClassVar[str] = "replay"
    aliases: ClassVar[dict] = {"from": "from_ptr"}


@dataclass(slots=True)
class Handshake(DllEvent):
    """The first Retry_Ack_Set after link-up (the retry handshake of DLL_Param_Init)."""
    kind: ClassVar[str] = "handshake"


@dataclass(slots=True)
class Negotiated(DllEvent):
    """Init parameters negotiated (§4.4)."""
    params: Any = None
    kind: ClassVar[str] = "negotiated"


@dataclass(slots=True)
class PhyRetrainRequested(DllEvent):
    """RETRY_REQ_SM entered RETRAIN: the PHY should retrain, then call ``phy_retrained``."""
    num_phy_reinit: int = 0
    kind: ClassVar[str] = "phy_retrain"


@dataclass(slots=True)
class ParamExchanged(DllEvent):
    """A Param_Exchg block arrived (``neighbor``: the §10.4.4 advertisement, if it was one)."""
    words: list = field(default_factory=list)
    neighbor: dict | None = None
    kind: ClassVar[str] = "param_exchg"


@dataclass(slots=True)
class LaneManageReceived(DllEvent):
    """A Lane_Manage block arrived; ``values`` its fields (also readable as ``ev[name]``)."""
    values: dict = field(default_factory=dict)
    kind: ClassVar[str] = "lane_manage"

    def __getitem__(self, key: str):
        if key in self.values:
            return self.values[key]
        return _DictView.__getitem__(self, key)


@dataclass(slots=True)
class ModeChangeReady(DllEvent):
    """The peer's Block_Mode_Chg ACK arrived (§4.3.3.8): the PHY may switch mode."""
    kind: ClassVar[str] = "mode_change_ready"
