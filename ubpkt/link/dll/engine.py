"""The UB data-link layer as a sans-IO engine (UB 2.0 §4.2, §4.4-4.8), on the engine contract
of :mod:`ubpkt.engine`.

One :class:`DLLEngine` is one end of a link.  It does no I/O and reads no clock: every method
takes ``now`` (integer ns) and returns bytes or events; timers are reported by
:meth:`next_deadline` and fire in :meth:`handle_timeout` (or inside any call made at or after
them).

* PHY side: ``link_up``, ``link_down``, ``receive(flits, now, fec_ok)`` (whole flits, with the
  per-flit FEC status), ``transmit(now, max_flits, fill=False)``, ``phy_retrained``.
* Network side: ``send`` (a network packet from its LPH), :class:`~.events.PacketDelivered`
  events, ``release`` (free receive-buffer cells when ``rx_auto_release`` is off).
* Events (:mod:`.events`) go to :meth:`pop_events`; the PHY-side calls also return the events
  they raised.

The class is composed of one part per concern, each in its own module: :mod:`.state` (the
three state machines with their transition tables, per-link variables, LinkUp),
:mod:`.retry_sm` (RETRY_REQ_SM / RETRY_ACK_SM, timers), :mod:`.transmit` (scheduling, credits
spent, the retry buffer's input) and :mod:`.receive` (delimiting, checking, reassembly, control
blocks).
"""
from __future__ import annotations

from ...profile import SPEC, Profile
from .. import control as C
from .receive import ReceiveSide
from .retry_sm import RetrySide
from .state import DllState, LinkState
from .transmit import TransmitSide

__all__ = ["DLLEngine"]


class DLLEngine(LinkState, RetrySide, TransmitSide, ReceiveSide):
    """One end of a UB data link (see the module doc).  ``fast_rx=False`` takes received flits
    one at a time, ``fast_tx=False`` schedules every transmitted block on its own (the
    reference paths the fast paths are tested against)."""

    def __init__(self, profile: Profile = SPEC, *, name: str = "", crc_mode: bool | None = None,
                 init: C.InitParams | None = None, guid: int | None = None, port_idx: int = 0,
                 fast_rx: bool = True, fast_tx: bool = True):
        self.p = profile
        self.name = name
        self.crc_mode = profile.crc_mode if crc_mode is None else crc_mode
        self.covers = profile.bcrc_covers_info
        t = profile.tuning
        self.local_init = init or C.InitParams(
            feature_id=t.dll_feature_id, rxbuf_vl_share=t.rxbuf_vl_share,
            data_ack_grain=t.dll_data_ack_grain, ctrl_ack_grain=t.dll_ctrl_ack_grain,
            flow_ctrl_size=t.dll_flow_ctrl_size, vl_enable=t.dll_vl_enable | 1,
            retry_buf_depth=t.retry_buf_depth,
            ctrl_credit_grain=(t.dll_ctrl_credit_grain,) * 16,
            data_credit_grain=(t.dll_data_credit_grain,) * 16,
            packet_min_interval=t.dll_packet_min_interval)
        self.guid = guid
        self.port_idx = port_idx
        self.fast_rx = fast_rx
        self.fast_tx = fast_tx
        self.state = DllState.DISABLED
        self.stats = {"tx_flits": 0, "rx_flits": 0, "retries": 0, "replayed_flits": 0,
                      "crc_errors": 0, "fec_errors": 0, "delivered": 0, "crd_acks": 0}
        self._events: list = []
        self._events_tx: list = self._events
        self.reset_link()

    def pop_events(self) -> list:
        """Every event raised since the last call, oldest first."""
        ev, self._events = self._events, []
        return ev
