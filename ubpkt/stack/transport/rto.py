"""RTP timers: the retransmission timeout and the RNR wait (UB 2.0 §6.4.2.1, §6.2.1).

Static mode: one interval, configured when the channel is made (the spec lists 512 us, 16 ms,
128 ms and 4 s as choices).  Dynamic mode: exponential back-off, the interval before timeout
retransmission number ``times + 1`` being ``Base_time x 2^(N x times)`` (``times`` counts the
consecutive timeout retransmissions so far; with Base_time 20 us and N 3 that is 20, 160, 1280...
us, §6.4.2.1 Table 6-8).  RNR: a receiver without resources names a timer code; the sender waits
2 us x 2^code before sending again (§6.2.1 RSPINFO).
"""
from __future__ import annotations

__all__ = ["RtoPolicy", "rnr_timeout_ns", "RNR_CODE_MAX"]

#: RNR_Timer codes 0..19 are valid (§6.2.1)
RNR_CODE_MAX = 19


class RtoPolicy:
    """The RTO interval (ns) after ``times`` consecutive timeout retransmissions."""

    __slots__ = ("mode", "static_ns", "base_ns", "exp_n")

    def __init__(self, tuning):
        self.mode = tuning.rto_mode
        if self.mode not in ("static", "dynamic"):
            raise ValueError(f"rto_mode {self.mode!r}: static or dynamic")
        self.static_ns = int(tuning.rto_static_ns)
        self.base_ns = int(tuning.rto_base_ns)
        self.exp_n = int(tuning.rto_exp_n)

    def interval(self, times: int) -> int:
        if self.mode == "static":
            return self.static_ns
        return self.base_ns << (self.exp_n * times)


def rnr_timeout_ns(code: int) -> int:
    """RNR_Timeout = 2 us x 2^code (§6.2.1); reserved codes are clamped to the largest valid
    one."""
    return 2_000 << min(max(code, 0), RNR_CODE_MAX)
