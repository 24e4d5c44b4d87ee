"""Capture files in and out: pcap (micro- and nanosecond) and pcapng, streamed in constant memory."""
from .pcap import (CaptureError, Packet, PcapWriter, open_capture,  # noqa: F401
                   LINKTYPE_ETHERNET, LINKTYPE_NS3, LINKTYPE_UB, LINKTYPE_FLITS)
from .pcapng import PcapngWriter  # noqa: F401,E402
