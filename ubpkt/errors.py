"""The exceptions of ubpkt: one root, :class:`UBError`, and a typed subclass per concern.

Decoders never raise on input (bad bytes become issues in the record); these are raised by the
APIs that are handed something they cannot do: an encoder given a value that cannot be
represented, a capture file that is not one, a filter that does not parse, a profile that does
not load.  Each subclass also derives from the built-in it refines (``ValueError``, ``OSError``
...) so that callers catching those keep working.
"""
from __future__ import annotations

__all__ = ["UBError", "EncodeError", "CaptureError", "FilterError", "ProfileError", "PhyError",
           "LinkError"]


class UBError(Exception):
    """Root of every exception ubpkt raises on purpose."""


class EncodeError(UBError, ValueError):
    """An encoder was given a value that cannot be represented (too wide, unknown name)."""


class CaptureError(UBError):
    """A capture file cannot be read or written (not pcap/pcapng, bad block, bad link type)."""


class FilterError(UBError, ValueError):
    """A display filter (``-Y``) does not parse or names a field that does not exist."""


class ProfileError(UBError, ValueError):
    """A reference profile cannot be loaded (unknown key, bad value)."""


class PhyError(UBError, ValueError):
    """A physical-layer encoder or parser was given something outside its format."""


class LinkError(UBError, ValueError):
    """A data-link builder was given something outside its format (block sizes, credits)."""
