"""Transport engines (UB 2.0 ch. 6): RTP, CTP, UTP and TP bypass, one object per TP channel."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TaSegment"]


@dataclass(slots=True)
class TaSegment:
    """One TP packet's worth of transaction bytes, handed from the transaction layer to a
    channel: ``ta`` (TAH and extension headers), ``payload`` (bytes or a memoryview into the
    source memory; a retransmission rebuilds the frame from it), ``last`` (RTPH TPOpcode[7]: the
    last packet of its transaction, UB 2.0 §6.2.1), ``tag`` (opaque to transport)."""
    ta: bytes
    payload: object = b""
    last: bool = True
    tag: object = None
