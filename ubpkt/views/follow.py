"""``ubpkt follow``: which records belong to one TP channel (both directions) or one
transaction (its initiator TASSN, request and response)."""
from __future__ import annotations

__all__ = ["FollowFilter"]


def _num(text: str) -> int:
    return int(text, 0)


class FollowFilter:
    """A predicate over records: ``channel`` = (src, dst, srctpn, dsttpn) matched in either
    direction, or ``tassn`` matched in the BTAH or the ATAH."""

    def __init__(self, channel=None, tassn=None):
        self.channel = channel
        self.tassn = tassn

    @classmethod
    def parse(cls, channel: str | None, tassn: int | None) -> "FollowFilter":
        if channel is None:
            return cls(tassn=tassn)
        parts = [p.strip() for p in channel.split(",")]
        if len(parts) != 4:
            raise ValueError("--channel takes SRC,DST,SRCTPN,DSTTPN")
        try:
            return cls(channel=(parts[0], parts[1], _num(parts[2]), _num(parts[3])))
        except ValueError:
            raise ValueError("--channel: SRCTPN and DSTTPN are numbers")

    def __call__(self, rec: dict) -> bool:
        f = rec["fields"]
        if self.tassn is not None:
            return self.tassn in (f.get("ub.btah.ini_tassn"), f.get("ub.atah.ini_tassn"))
        src = f.get("ip.src") or f.get("ipv6.src") or f.get("ub.cna16.scna",
                                                            f.get("ub.cna24.scna"))
        dst = f.get("ip.dst") or f.get("ipv6.dst") or f.get("ub.cna16.dcna",
                                                            f.get("ub.cna24.dcna"))
        s, d, stpn, dtpn = self.channel
        here = (str(src), str(dst), f.get("ub.rtph.srctpn"), f.get("ub.rtph.dsttpn"))
        return here == (s, d, stpn, dtpn) or here == (d, s, dtpn, stpn)
