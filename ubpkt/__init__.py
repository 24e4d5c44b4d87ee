"""ubpkt: encode and decode every UnifiedBus (UB Base Specification 2.0) format byte-exactly."""

__version__ = "0.1.0"
