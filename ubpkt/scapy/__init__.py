"""Scapy layers for UnifiedBus (UB 2.0), generated from :mod:`ubpkt.formats` and chained by
its packet grammar (:mod:`ubpkt.formats.grammar`).

``from ubpkt.scapy import *`` gives one class per declared UB header (``UBLph``, ``UBCna16``,
``UBRtph``, ``UBBtah``, ``UBMaetah``...), bound so that::

    Ether()/IP(flags="DF")/UDP()/UBRtph(psn=1)/UBBtah(taopcode="Write")/UBMaetah(length=4)
        /Raw(b"abcd")

builds with UDP port 4792, lengths, transport padding and the ICRC filled in (explicit values are
kept), ``rdpcap`` of UB captures (linktypes 1, 148 and 147) dissects into the same layers, and
``sr()``/``PacketList.sr()`` pair requests with their TA and TP responses.
:class:`UBAnsweringMachine` answers UBoE requests with the reference stack's target;
:class:`UdpSession` runs ``sr()`` against a UBoE peer (``ubpkt serve``) over a UDP socket.  See
``docs/scapy.md``.
"""
from __future__ import annotations

from . import layers as _layers
from .layers import (CLASSES, LAYER_CLASSES, UBPacket, class_name, get_profile, layer_ids,
                     profile_of, set_profile, tah_sequence)

globals().update(CLASSES)

from .answering import UBAnsweringMachine, ub_ports          # noqa: E402 (needs the layers)
from .udpsession import UdpSession                           # noqa: E402
from .listing import ls                                      # noqa: E402

__all__ = sorted(CLASSES) + ["CLASSES", "LAYER_CLASSES", "UBPacket", "class_name", "get_profile",
                             "layer_ids", "profile_of", "set_profile", "tah_sequence",
                             "UBAnsweringMachine", "UdpSession", "ub_ports", "ls"]
del _layers
