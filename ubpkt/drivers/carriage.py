"""How a UB frame travels in a UDP datagram: the *carriage* a driver asks to wrap and unwrap
frames, chosen by the dialect (``ubpkt serve/inject/replay --dialect``).

* :class:`UboeCarriage` (``spec``): UB over UDP as UB 2.0 §5.2.3 defines it.  The datagram is
  the UDP payload (RTPH onward, padding, ICRC); the engines build and parse whole UBoE frames,
  so the 42 bytes of Ethernet/IPv4/UDP are sliced off on the way out and rebuilt from the
  socket's addresses on the way in, where the ICRC is checked over them (``check``/``ignore``,
  see :mod:`ubpkt.drivers.udp`).
* :class:`WholeFrameCarriage` (``ns3``): each datagram is one whole ns-3-UB frame from its LPH,
  as the simulator puts it on its wire (LPH CFG 3 + NTH + IPv4 + UDP + RTPH..., or LPH CFG 9 +
  CNA16 for load/store).  ns-3-UB has no UDP carriage of its own: this is a reference-profile
  choice (``docs/profile.md``), nothing is sliced or rebuilt and there is no ICRC (the NS3
  profile has none).  Answers go back the same way.  The addresses a session answers with
  come from the frame, not the socket: :meth:`path_for` reverses the first frame's.
"""
from __future__ import annotations

from dataclasses import replace

from ..dissect import decode
from ..formats import HEADERS
from ..profile import Profile
from ..record import LINKTYPE_UB
from ..stack.network import Path, _icrc_uboe

__all__ = ["UboeCarriage", "WholeFrameCarriage", "carriage_for", "dialect_of", "DIALECTS"]

#: Ethernet + IPv4 (no options) + UDP: what a UBoE datagram does not carry
HEADER_LEN = 42


def _cfg_position() -> tuple:
    """Byte, mask and shift of the LPH CFG field (UB 2.0 §4.3.2.2), from its declaration."""
    off = 0
    for f in HEADERS["ub.lph"].fields:
        if f.name == "cfg":
            assert off // 8 == (off + f.bits - 1) // 8, "CFG within one byte"
            shift = 8 - off % 8 - f.bits
            return off // 8, ((1 << f.bits) - 1) << shift, shift
        off += f.bits
    raise AssertionError("no CFG in the LPH")


_CFG_BYTE, _CFG_MASK, _CFG_SHIFT = _cfg_position()


class UboeCarriage:
    """UBoE: the datagram is the UDP payload; the header is rebuilt, the ICRC checked (module
    doc).  ``pseudo_header(src, sport, dst, dport, n)`` builds the assumed 42 bytes."""

    name = "spec"
    whole_frames = False
    #: an RTPH (16) and an ICRC (4) at the least
    min_len = 20

    def __init__(self, profile: Profile, icrc: str, pseudo_header):
        self.profile = profile
        self.icrc = icrc
        self._pseudo = pseudo_header

    def unwrap(self, data: bytes, addr: tuple, local: tuple, stats: dict):
        """The frame of a received datagram, or None (counted in ``stats``)."""
        if len(data) < self.min_len:
            stats["runt"] += 1
            return None, "runt"
        frame = bytearray(self._pseudo(addr[0], addr[1], local[0], local[1], len(data)))
        frame += data
        p = self.profile
        if p.icrc:
            end = len(frame) - 4
            calc = _icrc_uboe(memoryview(frame), end)
            if calc != int.from_bytes(frame[end:], p.icrc_byteorder):
                if self.icrc == "check":
                    stats["bad_icrc"] += 1
                    return None, "bad_icrc"
                stats["icrc_ignored"] += 1
                frame[end:] = calc.to_bytes(4, p.icrc_byteorder)
        return frame, None

    def wrap(self, frame):
        """The datagram of a frame the engine built."""
        return memoryview(frame)[HEADER_LEN:]

    def path_for(self, driver, addr: tuple, local_ip: str, frame) -> Path:
        """The path a session with ``addr`` answers on: the socket pair."""
        return driver.path_to(addr, local_ip)

    def initiator_path(self, driver, peer: tuple) -> Path:
        """The path an initiator talks to ``peer`` on: the socket pair."""
        return driver.path_to(peer)


class WholeFrameCarriage:
    """ns-3-UB frames, one per datagram, from the LPH (module doc)."""

    name = "ns3"
    whole_frames = True
    #: an LPH at the least
    min_len = 4

    def __init__(self, profile: Profile):
        self.profile = profile

    def unwrap(self, data: bytes, addr: tuple, local: tuple, stats: dict):
        if len(data) < self.min_len:
            stats["runt"] += 1
            return None, "runt"
        return bytes(data), None

    def wrap(self, frame):
        return frame

    def initiator_path(self, driver, peer: tuple) -> Path:
        """The path an initiator talks to ``peer`` on: the native IP form (LPH CFG 3, NTH,
        IPv4, UDP; UB 2.0 §5.2.3) with the socket pair's addresses and ports inside the frame
        (ns-3-UB's own URMA packets are built this way; nothing checks them against the
        datagram's)."""
        return Path(kind="ipv4", src_ip=driver.local[0], dst_ip=peer[0],
                    udp_sport=driver.local[1], udp_dport=peer[1])

    def cna_path(self, frame, path: Path) -> Path | None:
        """``path`` with the CNAs (swapped), SL and LBF of ``frame`` when it is a CNA16 packet
        (LPH CFG 9, TP bypass: ns-3-UB's load/store), else None.  A session whose first frame
        was URMA (the IP form carries no CNA) learns its peer's CNAs from its first load/store
        this way (``ubpkt serve``)."""
        if len(frame) < 2 or (frame[_CFG_BYTE] & _CFG_MASK) >> _CFG_SHIFT != 9:
            return None
        kw = self._cna_part(self._fields(frame))
        return replace(path, **kw) if kw else None

    def ip_path(self, frame, path: Path) -> Path | None:
        """``path`` with the IPv4 addresses and UDP ports of ``frame`` (reversed as
        :meth:`path_for` does) when it carries them, else None: a session made by a
        load/store learns where its URMA answers go from its first URMA packet."""
        kw = self._ip_part(self._fields(frame))
        return replace(path, **kw) if kw else None

    def _fields(self, frame) -> dict:
        return decode(bytes(frame), LINKTYPE_UB, self.profile)["fields"]

    @staticmethod
    def _ip_part(f: dict) -> dict:
        # ns-3-UB's answers keep the request's UDP ports (dialect notes): not swapped
        if "ip.src" not in f:
            return {}
        # the answer stays in the request's network partition (its NPI; ns-3-UB sends 0)
        return {"npi": int(f.get("ub.nth.npi", 1)),
                "src_ip": f["ip.dst"], "dst_ip": f["ip.src"],
                "udp_sport": int(f.get("udp.srcport", 0)),
                "udp_dport": int(f.get("udp.dstport", 0))}

    @staticmethod
    def _cna_part(f: dict) -> dict:
        if "ub.cna16.scna" not in f:
            return {}
        return {"scna": int(f["ub.cna16.dcna"]), "dcna": int(f["ub.cna16.scna"]),
                "sl": int(f.get("ub.cna16.sl", 0)), "lbf": int(f.get("ub.cna16.lbf", 0))}

    def path_for(self, driver, addr: tuple, local_ip: str, frame) -> Path:
        """The reverse of the first frame's own addressing: its IPv4 addresses and UDP ports
        (ns-3-UB's answers keep the request's ports), its CNAs swapped, its VL and SL."""
        f = self._fields(frame)
        kw = {"kind": "ipv4", "vl": int(f.get("ub.lph.vl", 0) or 0)}
        kw.update(self._ip_part(f))
        kw.update(self._cna_part(f))
        return Path(**kw)


#: the dialects a driver knows, by name
DIALECTS = ("spec", "ns3")


def dialect_of(profile: Profile) -> str:
    """The dialect a profile speaks on a UDP socket: ``ns3`` for the ns-3-UB profile (whole
    frames), ``spec`` otherwise."""
    return "ns3" if profile.name == "ns3" else "spec"


def carriage_for(dialect: str, profile: Profile, icrc: str, pseudo_header):
    """The carriage of ``dialect`` (``spec`` or ``ns3``)."""
    if dialect == "spec":
        return UboeCarriage(profile, icrc, pseudo_header)
    if dialect == "ns3":
        return WholeFrameCarriage(profile)
    raise ValueError(f"dialect {dialect!r}: one of {', '.join(DIALECTS)}")
