"""UB data-link layer (UB 2.0 ch. 4): CRC30 and the BCRC, PLENGTH, block delimiting and trailers,
DLLDP framing and deframing, DLLCBs (builders and the one reader), and the DLL engine (state
machine, credits, retry).  Decoding flit streams to records is the decoder's
(:mod:`ubpkt.dissect.flitstream`); nothing here imports :mod:`ubpkt.dissect`."""
from .crc30 import bcrc_crc30, block_crc, crc30, crc30_batch  # noqa: F401
from .plength import layout, packet_length, plength  # noqa: F401
from .blocks import next_block  # noqa: F401
from .framing import Deframer, deframe, fill_plength, frame_blocks, frame_packet  # noqa: F401
