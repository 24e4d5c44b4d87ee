"""UB data-link layer (UB 2.0 ch. 4): CRC30, PLENGTH, DLLDP framing, DLLCBs, the DLL engine
(state machine, credits, retry) and flit-stream decoding."""
from .crc30 import bcrc_crc30, crc30, crc30_batch  # noqa: F401
from .plength import layout, packet_length, plength  # noqa: F401
from .framing import Deframer, deframe, fill_plength, frame_blocks, frame_packet  # noqa: F401
