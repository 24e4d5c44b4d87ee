"""Rewriting captured frames before they are sent again (``ubpkt replay``; tcprewrite style).

Every option works on the *declared* headers: a frame is dissected (:func:`ubpkt.dissect.
decode`), its ``(layer, fields)`` list (:func:`ubpkt.encode.record_layers`) is edited by field
name, and the encoder packs it again (:func:`ubpkt.encode.encode_layers`): no hand-written
offsets.  Options (:class:`RewriteSpec`):

* ``dmac``/``smac``: the Ethernet destination / source MAC of every frame.
* ``srcip``/``dstip``: IPv4 address maps ``{old: new}``; the key ``"*"`` maps every address.
* ``portmap``: UDP port map ``{old: new}`` applied to both ports.
* ``tpnmap``: TPN map ``{old: new}`` applied to every field named ``srctpn``/``dsttpn`` (the
  RTPH declares them, UB 2.0 §6.2.1; the CTPH and UTPH carry no TPN).
* ``psn_rebase``: shift the PSNs of each TP channel direction so that its first PSN becomes N,
  modulo 2^24 (UB 2.0 §6.2.1).  A PSN belongs to the direction of the data packets it counts: an
  RTP data packet's own, a TPACK/TPNAK/TPSACK's (RTPH.PSN, SAETPH.MaxRcvPSN) that of the data it
  acknowledges (source and destination swapped).  The direction is the pair of addresses (IP
  or CNA) and the TPN pair, as captured (not the UDP source port: UBoE's flow label).
* ``fix_icrc``: recompute the ICRC (UB 2.0 §5.3.7) of every rewritten frame.  Without it a
  rewritten frame keeps its old ICRC; :attr:`Rewriter.stats` counts ``icrc_wrong``, the frames
  whose stored ICRC no longer matches their content.
* ``udp_path``: put the frame on this socket pair (:class:`~ubpkt.drivers.udp.UdpPath`): both
  IPv4 addresses and UDP ports, and the IPv4 header the kernel sends (IP id 0, DF), so the ICRC
  is the one the peer computes over the real header (``replay --as-initiator``).

The IPv4 header checksum is recomputed when the IPv4 header changed; a UDP checksum that was not
zero (zero: none, RFC 768) is recomputed when anything it covers changed.  A frame nothing
applies to is returned unchanged, byte for byte.  A frame the encoder cannot pack again (a
damaged capture) is returned unchanged and counted ``failed``.  Never raises on input.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ..dissect import decode
from ..encode import encode_layers, record_layers
from ..formats import HEADERS
from ..formats.derived import BYTE_RUNS
from ..formats.grammar import TP_PAIRS, TP_RESPONSES_NS3
from ..profile import Profile, profile_for

__all__ = ["RewriteSpec", "Rewriter", "parse_ip_map", "parse_int_map", "parse_mac",
           "layer_offsets", "PSN_FIELDS", "TPN_FIELDS"]

PSN_MASK = (1 << 24) - 1
#: fields holding a PSN of the channel direction the packet's data travels in (UB 2.0 §6.2.1,
#: §6.2.3): (layer base, field name)
PSN_FIELDS = (("ub.rtph", "psn"), ("ub.saetph", "maxrcvpsn"))
#: fields holding a TPN, found in the declarations: every header field named srctpn/dsttpn
TPN_FIELDS = tuple(sorted({(h.base, f.name) for h in HEADERS.values() for f in h.fields
                           if f.name in ("srctpn", "dsttpn")}))
_TP_DATA = frozenset(TP_PAIRS)
_TP_RESPONSES = frozenset(x for v in TP_PAIRS.values() for x in v) | frozenset(TP_RESPONSES_NS3)
#: the address fields naming a direction's two ends (source, destination); not the UDP source
#: port, which is UBoE's flow label and may change per packet (UB 2.0 §5.2.3)
_ENDS = (("ip.src", "ip.dst"), ("ipv6.src", "ipv6.dst"), ("ub.cna16.scna", "ub.cna16.dcna"),
         ("ub.cna24.scna", "ub.cna24.dcna"))
_MAC = re.compile(r"^[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}$")


def parse_mac(text: str) -> str:
    """``aa:bb:cc:dd:ee:ff`` (or with dashes) -> the lower-case colon form; ValueError."""
    s = (text or "").strip()
    if not _MAC.match(s):
        raise ValueError(f"{text!r}: not a MAC address (aa:bb:cc:dd:ee:ff)")
    return s.replace("-", ":").lower()


def _ipv4(text: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not an IPv4 address") from None


def parse_ip_map(text: str) -> dict:
    """``OLD:NEW,...`` or a single ``NEW`` (every address) -> ``{old: new}`` (``"*"``: all)."""
    s = (text or "").strip()
    if not s:
        raise ValueError("empty address map")
    if ":" not in s and "," not in s:
        return {"*": _ipv4(s, "address")}
    out = {}
    for item in s.split(","):
        old, sep, new = item.partition(":")
        if not sep:
            raise ValueError(f"{item!r}: OLD:NEW expected")
        out[_ipv4(old, "OLD")] = _ipv4(new, "NEW")
    return out


def parse_int_map(text: str, bits: int, what: str) -> dict:
    """``OLD:NEW,...`` (decimal or 0x hex) -> ``{old: new}``, each below 2^bits; ValueError."""
    s = (text or "").strip()
    if not s:
        raise ValueError(f"empty {what} map")
    out = {}
    for item in s.split(","):
        old, sep, new = item.partition(":")
        if not sep:
            raise ValueError(f"{what} map: {item!r}: OLD:NEW expected")
        try:
            a, b = int(old.strip(), 0), int(new.strip(), 0)
        except ValueError:
            raise ValueError(f"{what} map: {item!r}: integers expected") from None
        for v in (a, b):
            if not 0 <= v < 1 << bits:
                raise ValueError(f"{what} map: {v} outside 0..{(1 << bits) - 1}")
        out[a] = b
    return out


@dataclass
class RewriteSpec:
    """What to rewrite (module doc); the empty spec changes nothing."""
    dmac: str | None = None
    smac: str | None = None
    srcip: dict = field(default_factory=dict)
    dstip: dict = field(default_factory=dict)
    portmap: dict = field(default_factory=dict)
    tpnmap: dict = field(default_factory=dict)
    psn_rebase: int | None = None
    fix_icrc: bool = False
    udp_path: object = None

    def __post_init__(self):
        if self.psn_rebase is not None and not 0 <= self.psn_rebase <= PSN_MASK:
            raise ValueError(f"psn_rebase {self.psn_rebase}: a PSN has 24 bits (0..{PSN_MASK})")

    @property
    def empty(self) -> bool:
        return not (self.dmac or self.smac or self.srcip or self.dstip or self.portmap or
                    self.tpnmap or self.psn_rebase is not None or self.fix_icrc or
                    self.udp_path is not None)

    def as_dict(self) -> dict:
        up = self.udp_path
        return {"dmac": self.dmac, "smac": self.smac, "srcip": dict(self.srcip),
                "dstip": dict(self.dstip), "portmap": {str(k): v for k, v in self.portmap.items()},
                "tpnmap": {hex(k): hex(v) for k, v in self.tpnmap.items()},
                "psn_rebase": self.psn_rebase, "fix_icrc": self.fix_icrc,
                "udp_path": None if up is None else
                f"{up.src_ip}:{up.udp_sport}->{up.dst_ip}:{up.udp_dport}"}


def _size(layer: str, value) -> int:
    if layer == "ub.icrc":
        return 4
    if layer in BYTE_RUNS:
        return len(value)
    return HEADERS[layer].size


def layer_offsets(layers: list) -> list[int]:
    """The byte offset of each layer of a ``(layer, fields)`` list (sizes from the
    declarations; byte runs by their length)."""
    out, off = [], 0
    for name, value in layers:
        out.append(off)
        off += _size(name, value)
    return out


def _udp_checksum(frame: bytes, ip_off: int, udp_off: int, udp_len: int) -> int:
    """The UDP checksum (RFC 768) over the IPv4 pseudo header and the datagram."""
    ph = frame[ip_off + 12:ip_off + 20] + b"\0\x11" + udp_len.to_bytes(2, "big")
    seg = bytearray(frame[udp_off:udp_off + udp_len])
    seg[6:8] = b"\0\0"
    data = ph + bytes(seg)
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s & 0xFFFF) or 0xFFFF


class Rewriter:
    """Applies a :class:`RewriteSpec` frame by frame (module doc).  ``profile``: the dissect
    and encode profile (None: by link type, ``NS3`` for 147).  ``stats``: ``frames`` seen,
    ``rewritten`` (bytes changed), ``icrc_fixed``, ``icrc_wrong``, ``failed``, ``psn_channels``
    (directions rebased)."""

    def __init__(self, spec: RewriteSpec, profile: Profile | None = None):
        self.spec = spec
        self.profile = profile
        self._psn_base: dict = {}
        self.stats = {"frames": 0, "rewritten": 0, "icrc_fixed": 0, "icrc_wrong": 0,
                      "failed": 0, "psn_channels": 0}

    def _profile(self, linktype: int) -> Profile:
        return profile_for(linktype, self.profile)

    def rewrite(self, frame: bytes, linktype: int) -> bytes:
        """``frame`` rewritten (or unchanged, see the module doc)."""
        st = self.stats
        st["frames"] += 1
        if self.spec.empty:
            return frame
        prof = self._profile(linktype)
        try:
            rec = decode(frame, linktype, prof)
            layers = record_layers(rec)
        except Exception:
            st["failed"] += 1
            return frame
        changed = self._edit(layers, rec["fields"])
        if not changed and not self.spec.fix_icrc:
            return frame
        names = [n for n, _ in layers]
        has_icrc = "ub.icrc" in names
        old_icrc = layers[names.index("ub.icrc")][1]["value"] if has_icrc else None
        if has_icrc:
            layers[names.index("ub.icrc")] = ("ub.icrc", {"value": None})
        try:
            out = bytearray(encode_layers(layers, prof, add_layers=False))
        except Exception:
            st["failed"] += 1
            return frame
        offs = layer_offsets(layers)
        udp_at = [i for i, n in enumerate(names) if n == "udp"]
        if udp_at and "ip" in names:
            u = udp_at[0]
            udp = layers[u][1]
            if changed & {"ip", "udp", "inner"} and udp.get("checksum"):
                ip_off = offs[names.index("ip")]
                c = _udp_checksum(bytes(out), ip_off, offs[u], udp["length"])
                out[offs[u] + 6:offs[u] + 8] = c.to_bytes(2, "big")
        if has_icrc:
            at = offs[names.index("ub.icrc")]
            new_icrc = int.from_bytes(out[at:at + 4], prof.icrc_byteorder)
            if self.spec.fix_icrc:
                if new_icrc != old_icrc:
                    st["icrc_fixed"] += 1
            else:
                out[at:at + 4] = int(old_icrc).to_bytes(4, prof.icrc_byteorder)
                if new_icrc != old_icrc:
                    st["icrc_wrong"] += 1
        out = bytes(out)
        if out != frame:
            st["rewritten"] += 1
        return out

    # -- the edits --------------------------------------------------------------------------------
    def _edit(self, layers: list, fields: dict) -> set:
        """Edit ``layers`` in place; the set of what changed (``eth``, ``ip``, ``udp``,
        ``inner``: something the UDP checksum covers beyond the headers)."""
        sp = self.spec
        changed: set = set()
        first_ip = first_udp = True
        rebase = self._psn_shift(fields) if sp.psn_rebase is not None else 0
        up = sp.udp_path
        for name, vals in layers:
            if not isinstance(vals, dict):
                continue
            base = HEADERS[name].base if name in HEADERS else name
            new = dict(vals)
            if base == "eth":
                if sp.dmac:
                    new["dst"] = sp.dmac
                if sp.smac:
                    new["src"] = sp.smac
            elif base == "ip" and first_ip:
                first_ip = False
                new["src"] = self._map_ip(sp.srcip, vals["src"])
                new["dst"] = self._map_ip(sp.dstip, vals["dst"])
                if up is not None:
                    new.update(src=up.src_ip, dst=up.dst_ip, id=0, flags=2)
                if new != vals:
                    new["checksum"] = None
            elif base == "udp" and first_udp:
                first_udp = False
                pm = sp.portmap
                new["srcport"] = pm.get(vals["srcport"], vals["srcport"])
                new["dstport"] = pm.get(vals["dstport"], vals["dstport"])
                if up is not None:
                    new.update(srcport=up.udp_sport, dstport=up.udp_dport)
            for b, f in TPN_FIELDS:
                if b == base and sp.tpnmap and f in new:
                    new[f] = sp.tpnmap.get(new[f], new[f])
            for b, f in PSN_FIELDS:
                if b == base and rebase and f in new:
                    new[f] = (new[f] + rebase) & PSN_MASK
            if new != vals:
                vals.clear()
                vals.update(new)
                changed.add(base if base in ("eth", "ip", "udp") else "inner")
        return changed

    @staticmethod
    def _map_ip(m: dict, addr):
        if not m or not isinstance(addr, str):
            return addr
        return m.get(addr, m.get("*", addr))

    def _psn_shift(self, fields: dict) -> int:
        """The PSN shift of this frame's channel direction (module doc); 0 without a PSN."""
        opc = fields.get("ub.rtph.tpopcode")
        psn = fields.get("ub.rtph.psn")
        if opc is None or not isinstance(psn, int):
            return 0
        src = tuple(fields.get(a) for a, _ in _ENDS)
        dst = tuple(fields.get(b) for _, b in _ENDS)
        stpn, dtpn = fields.get("ub.rtph.srctpn"), fields.get("ub.rtph.dsttpn")
        if opc in _TP_RESPONSES:
            key = (dst, src, dtpn, stpn)
        else:
            key = (src, dst, stpn, dtpn)
        shift = self._psn_base.get(key)
        if shift is None:
            shift = self._psn_base[key] = (self.spec.psn_rebase - psn) & PSN_MASK
            self.stats["psn_channels"] += 1
        return shift
