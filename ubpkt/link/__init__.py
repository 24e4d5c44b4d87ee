"""UB data-link layer (UB 2.0 ch. 4)."""
from .crc30 import bcrc_crc30, crc30  # noqa: F401
from .plength import layout, packet_length, plength  # noqa: F401
