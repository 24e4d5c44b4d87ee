"""DLLDP framing and deframing (UB 2.0 §4.3.2, §4.3.4).

A network packet (from its LPH) becomes 1..16 DLLDBs of whole 20-byte flits: every non-last block
has 32 flits, later blocks start with an LBH (the LPH's first two bytes), PLENGTH describes the
cut (:mod:`.plength`), short flits are zero padded, and every block ends with a BCRC (CRC mode)
or the last block with an END byte (non-CRC mode).

:class:`Deframer` is the streaming inverse: it delimits blocks from their headers (§4.3.4.1),
checks every BCRC (vectorised with numpy when many blocks are ready), reassembles DLLDPs across
interleaved DLLCBs, and reports every inconsistency as an issue (same dict shape as
``ubpkt.dissect``).  It never raises on input.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..formats import HEADERS as H
from ..record import ERROR, INFO, WARNING, make_issue
from .blocks import FLIT, check_tail, next_block, seal
from .control import parse_control
from .crc30 import block_crc, block_crc_batch, block_crc_values, native
from .plength import LBH_LEN, LPH_LEN, MAX_FLITS, layout, packet_length

__all__ = ["frame_packet", "fill_plength", "frame_blocks", "frame_many", "deframe", "Deframer", "Unit",
           "BlockInfo", "seal", "check_tail", "FLIT", "DLLDP_CFGS"]

#: CFG values a DLLDP may carry (UB 2.0 §4.3.2.2.2 Table 4-1).
DLLDP_CFGS = frozenset((3, 4, 5, 6, 7, 9))

_LPH, _LBH = H["ub.lph"], H["ub.lbh"]


_issue = make_issue


# ------------------------------------------------------------------------------------------------
# framing

def frame_blocks(packet: bytes, crc_mode: bool = True, *, error_flag: bool = False,
                 block_bits=None, covers_info: bool = True) -> list:
    """The DLLDBs of one network packet, as a list of bytearrays of whole flits.

    ``block_bits``: optional ``(crd, ack, crd_vl)`` per block, written into the LPH (block 0) and
    the LBHs; by default the LPH keeps the packet's own bits and the LBHs return nothing.
    The LBHs carry the packet's VL and CFG (UB 2.0 §4.3.2.2.3).
    """
    return frame_many([(packet, error_flag)], crc_mode, block_bits=block_bits,
                      covers_info=covers_info)[0]


def frame_many(packets, crc_mode: bool = True, *, block_bits=None,
               covers_info: bool = True) -> list:
    """:func:`frame_blocks` of several ``(packet, error_flag)`` at once: one list of blocks per
    packet, every BCRC of all of them computed in one batch (the DLL engine frames the packets
    queued on a VL together).  With the package's C extension as the CRC30 engine
    (:func:`ubpkt.link.crc30.native`), each packet is cut and sealed in one compiled call
    (same blocks: ``tests/link/test_framing.py`` compares the two for every size)."""
    nat = native()
    if nat is not None and block_bits is None:
        out = []
        for packet, error_flag in packets:
            lay = layout(len(packet), crc_mode)
            if packet[1] & 0x0F == 0:
                raise ValueError("LPH CFG 0 marks a DLLCB; a DLLDP never carries it "
                                 "(UB 2.0 Table 4-1)")
            plen = lay.plength
            lph = bytes((packet[0], packet[1], (packet[2] & 0xC0) | (plen >> 8), plen & 0xFF))
            out.append(nat.frame(packet, lph, lay.block_payload, lay.last_flits, crc_mode,
                                 bool(error_flag), covers_info))
        return out
    buf = bytearray()
    spans, infos, per = [], [], []
    for packet, error_flag in packets:
        first = len(spans)
        _cut(packet, crc_mode, error_flag, block_bits, buf, spans, infos)
        per.append((first, len(spans)))
    if crc_mode:
        # every BCRC at once (UB 2.0 §4.7.2; the same value as seal() block by block)
        for (s, e), info, crc in zip(spans, infos, block_crc_values(buf, spans, infos,
                                                                    covers_info)):
            buf[e - 4:e] = ((info << 30) | crc).to_bytes(4, "big")
    return [[buf[s:e] for s, e in spans[i:j]] for i, j in per]


def _cut(packet, crc_mode, error_flag, block_bits, buf, spans, infos) -> None:
    """Append the blocks of ``packet`` (headers, payload, zero padding; END filled, BCRC not
    yet) to ``buf``, their (start, end) to ``spans`` and their BCRC information bits to
    ``infos``."""
    lay = layout(len(packet), crc_mode)
    if packet[1] & 0x0F == 0:
        raise ValueError("LPH CFG 0 marks a DLLCB; a DLLDP never carries it (UB 2.0 Table 4-1)")
    plen = lay.plength
    lph = bytearray(packet[:LPH_LEN])
    lph[2] = (lph[2] & 0xC0) | (plen >> 8)
    lph[3] = plen & 0xFF
    lbh0 = lph[0] & 0x01                       # VL[3] only: CRD/ACK/CRD_VL are per block
    lbh1 = lph[1]
    nblk = lay.blocks
    at = len(buf)
    buf += bytes(((nblk - 1) * MAX_FLITS + lay.last_flits) * FLIT)
    pos = LPH_LEN
    src = memoryview(packet)
    lbh = bytes((lbh0, lbh1))
    full = MAX_FLITS * FLIT
    for i, size in enumerate(lay.block_payload):
        last = i == nblk - 1
        span = lay.last_flits * FLIT if last else full
        hdr = lph if i == 0 else lbh
        if block_bits is not None and i < len(block_bits) and block_bits[i] is not None:
            crd, ack, crd_vl = block_bits[i]
            hdr = bytearray(hdr)
            hdr[0] = (hdr[0] & 0x03) | (crd & 1) << 7 | (ack & 1) << 6 | (crd_vl & 0xF) << 2
        h = at + len(hdr)
        buf[at:h] = hdr
        buf[h:h + size] = src[pos:pos + size]
        pos += size
        spans.append((at, at + span))
        infos.append(1 if error_flag and last else 0)    # ERROR_FLAG in the last block only
        at += span
    if not crc_mode and error_flag:
        buf[at - 1] = 0x40                      # END (Table 4-4); 0 otherwise


def frame_packet(packet: bytes, crc_mode: bool = True, *, error_flag: bool = False,
                 block_bits=None, covers_info: bool = True) -> bytes:
    """A network packet (starting at its LPH, 5..10146 bytes in CRC mode, 5..10209 in non-CRC
    mode) as whole flits: PLENGTH, LBHs, zero padding and BCRCs (or END) filled."""
    return b"".join(frame_blocks(packet, crc_mode, error_flag=error_flag, block_bits=block_bits,
                                 covers_info=covers_info))


# ------------------------------------------------------------------------------------------------
# deframing

@dataclass
class BlockInfo:
    offset: int                     # byte offset of the block in the stream
    flits: int
    header: dict                    # LPH / LBH / LCH fields (record names)
    tail: dict                      # BCRC / END fields
    crc_ok: bool | None = None


@dataclass
class Unit:
    """One delimited unit of a flit stream: a reassembled DLLDP (``kind == "packet"``), a DLLCB
    (``"control"``) or bytes that could not be delimited (``"garbage"``)."""

    kind: str
    offset: int
    flits: int = 0
    packet: bytes | None = None     # the network packet (DLLDP) or None
    issues: list = field(default_factory=list)
    blocks: list = field(default_factory=list)
    error_flag: bool = False
    control: object = None          # control.ControlBlock for DLLCBs
    raw: bytes | None = None        # the DLLCB's bytes (or garbage)

    @property
    def ok(self) -> bool:
        return not any(i["severity"] == ERROR for i in self.issues)


class _Pkt:
    __slots__ = ("offset", "lph", "nblocks", "last_flits", "plength", "parts", "issues",
                 "blocks", "seen", "error_flag", "expected_len", "flits", "head")

    def __init__(self, offset, lph, plength, crc_mode):
        self.offset = offset
        self.lph = lph
        self.plength = plength
        self.nblocks = (plength >> 10) + 1
        self.last_flits = ((plength >> 5) & 0x1F) + 1
        self.parts = []
        self.issues = []
        self.blocks = []
        self.seen = 0
        self.error_flag = False
        self.flits = 0
        self.expected_len = packet_length(plength, crc_mode)


class Deframer:
    """Streaming delimiter/reassembler: ``feed(bytes)`` returns the units completed so far,
    ``close()`` the rest (a truncated tail becomes an issue).  Memory stays bounded by one DLLDP
    (<= 512 flits) plus one feed."""

    def __init__(self, crc_mode: bool = True, *, covers_info: bool = True,
                 controls: bool = True, vectorise: bool = True, crd_ack_vl0_first: bool = False):
        self.crc_mode = crc_mode
        self.covers_info = covers_info
        self.vl0_first = crd_ack_vl0_first
        self.controls = controls
        self.vectorise = vectorise
        self._buf = bytearray()
        self._base = 0                 # stream offset of _buf[0]
        self._pkt: _Pkt | None = None
        self._pending = None           # the DLLDP being delimited (blocks.next_block)

    def feed(self, data) -> list:
        if data:
            self._buf += data
        buf = self._buf
        n = len(buf)
        pos = 0
        spans = []
        pending = self._pending
        while n - pos >= FLIT:
            kind, flits, after = next_block(buf, pos, pending)
            size = flits * FLIT
            if n - pos < size:
                break                       # not complete yet: rescan this block next time
            pending = after
            spans.append((kind, pos, flits))
            pos += size
        self._pending = pending
        if not spans:
            return []
        crc_ok = self._check_crcs(buf, spans)
        out = []
        for (kind, p, flits), ok in zip(spans, crc_ok):
            self._block(kind, bytes(buf[p:p + flits * FLIT]), self._base + p, flits, ok, out)
        del buf[:pos]
        self._base += pos
        return out

    def _check_crcs(self, buf, spans) -> list:
        if not self.crc_mode:
            return [None] * len(spans)
        if not self.vectorise or len(spans) < 8:
            out = []
            for _, p, flits in spans:
                e = p + flits * FLIT
                info = buf[e - 4] >> 6
                crc = int.from_bytes(buf[e - 4:e], "big") & 0x3FFFFFFF
                out.append(block_crc(bytes(buf[p:e - 4]), info, self.covers_info) == crc)
            return out
        import numpy as np
        end = spans[-1][1] + spans[-1][2] * FLIT
        flits_view = np.frombuffer(bytes(buf[:end]), dtype=np.uint8).reshape(-1, FLIT)
        out = [None] * len(spans)
        groups: dict = {}
        for i, (_, p, flits) in enumerate(spans):
            groups.setdefault(flits, []).append(i)
        for flits, idx in groups.items():
            first = np.array([spans[i][1] // FLIT for i in idx], dtype=np.intp)
            rows = flits_view[first[:, None] + np.arange(flits)].reshape(len(idx), flits * FLIT)
            tail = rows[:, -4:].astype(np.uint32)
            word = (tail[:, 0] << 24) | (tail[:, 1] << 16) | (tail[:, 2] << 8) | tail[:, 3]
            crc = block_crc_batch(rows[:, :-4], word >> 30, self.covers_info)
            good = (crc == (word & 0x3FFFFFFF)).tolist()
            for j, i in enumerate(idx):
                out[i] = good[j]
        return out

    # -- assembly ---------------------------------------------------------------------------------
    def _block(self, kind, blk, off, flits, crc_ok, out) -> None:
        if kind == "cb":
            cb = parse_control(blk, self.crc_mode, covers_info=self.covers_info, offset=off,
                               crc_ok=crc_ok, vl0_first=self.vl0_first)
            u = Unit("control", off, flits, None, list(cb.issues), [], False, cb, blk)
            if self._pkt is not None:
                u.issues.append(_issue(INFO, "ub.lch", None, off,
                                       "DLLCB between the DLLDBs of a DLLDP"))
            if self.controls:
                out.append(u)
            return
        if kind == "lph":
            if self._pkt is not None:      # cannot happen with header-driven scanning
                self._finish(out)
            lph = _LPH.unpack(blk, 0)
            p = _Pkt(off, lph, lph[-1], self.crc_mode)
            p.head = blk[:LPH_LEN]
            self._pkt = p
            hdr = dict(zip(_LPH.keys, lph))
            hlen = LPH_LEN
            cfg = lph[6]
            if cfg not in DLLDP_CFGS:
                p.issues.append(_issue(WARNING, "ub.lph", "ub.lph.cfg", off + 1,
                                       f"reserved CFG value {cfg} in a DLLDP"))
            if lph[3] or lph[5]:
                p.issues.append(_issue(WARNING, "ub.lph", "ub.lph.rsvd1", off,
                                       "reserved bits of the LPH are set"))
            if p.expected_len is None:
                p.issues.append(_issue(ERROR, "ub.lph", "ub.lph.plength", off + 2,
                                       f"PLENGTH {lph[-1]:#06x} uses a reserved encoding"))
        else:
            p = self._pkt
            lbh = _LBH.unpack(blk, 0)
            hdr = dict(zip(_LBH.keys, lbh))
            hlen = LBH_LEN
            if lbh[6] != p.lph[6]:
                p.issues.append(_issue(ERROR, "ub.lbh", "ub.lbh.cfg", off + 1,
                                       f"LBH CFG {lbh[6]} differs from the LPH's {p.lph[6]}"))
            if lbh[4] != p.lph[4]:
                p.issues.append(_issue(ERROR, "ub.lbh", "ub.lbh.vl", off,
                                       f"LBH VL {lbh[4]} differs from the LPH's {p.lph[4]} "
                                       "(all DLLDBs of a DLLDP share one VL, UB 2.0 §4.5.1)"))
            if lbh[3] or lbh[5]:
                p.issues.append(_issue(WARNING, "ub.lbh", "ub.lbh.rsvd1", off,
                                       "reserved bits of the LBH are set"))
        idx = p.seen
        p.seen += 1
        last = p.seen == p.nblocks
        tail = check_tail(blk, self.crc_mode, off, p.issues, end=last,
                          covers_info=self.covers_info, crc_ok=crc_ok, last=last)
        p.blocks.append(BlockInfo(off, flits, hdr, tail, crc_ok))
        p.flits += flits
        # payload of this block
        trailer = 4 if self.crc_mode else (1 if last else 0)
        room = flits * FLIT - hlen - trailer
        if last and p.expected_len is not None:
            if p.nblocks == 1:
                take = p.expected_len - LPH_LEN
            else:
                done = sum(len(x) for x in p.parts)
                take = p.expected_len - LPH_LEN - done
            take = max(0, min(take, room))
        else:
            take = room
        if idx == 0:
            p.parts.append(bytes(blk[LPH_LEN:LPH_LEN + take]))
        else:
            p.parts.append(bytes(blk[hlen:hlen + take]))
        pad = blk[hlen + take:flits * FLIT - trailer]
        if any(pad):
            p.issues.append(_issue(WARNING, "ub.dlldp", "ub.dlldp.padding", off + hlen + take,
                                   "flit padding bytes are not zero"))
        if last:
            eflag = tail.get("ub.bcrc.error_flag", tail.get("ub.end.error_flag", 0))
            if eflag:
                p.error_flag = True
                p.issues.append(_issue(WARNING, "ub.bcrc" if self.crc_mode else "ub.end",
                                       "ub.bcrc.error_flag" if self.crc_mode
                                       else "ub.end.error_flag", off + flits * FLIT - 1,
                                       "ERROR_FLAG: the sender marked this DLLDP bad; it is to "
                                       "be dropped above the data link (UB 2.0 §4.8.3)"))
            self._finish(out)

    def _finish(self, out, truncated: bool = False) -> None:
        p = self._pkt
        self._pkt = None
        if p is None:
            return
        pkt = p.head + b"".join(p.parts)
        if truncated:
            p.issues.append(_issue(ERROR, "ub.lph", "ub.lph.plength", p.offset,
                                   f"stream ends after {p.seen} of {p.nblocks} DLLDBs"))
        elif p.expected_len is not None and len(pkt) != p.expected_len:
            p.issues.append(_issue(ERROR, "ub.lph", "ub.lph.plength", p.offset,
                                   f"PLENGTH describes {p.expected_len} bytes, "
                                   f"{len(pkt)} were carried"))
        out.append(Unit("packet", p.offset, p.flits, pkt, p.issues, p.blocks, p.error_flag))

    def close(self) -> list:
        out = []
        if self._buf:
            n = len(self._buf)
            msg = (f"{n} trailing bytes: not a whole flit" if n < FLIT
                   else f"stream ends inside a block ({n} bytes left)")
            out.append(Unit("garbage", self._base, n // FLIT, None,
                            [_issue(ERROR, "frame", None, self._base, msg)], raw=bytes(self._buf)))
            self._buf.clear()
        if self._pkt is not None:
            self._finish(out, truncated=True)
        self._pending = None
        return out


def deframe(stream: bytes, crc_mode: bool = True, *, controls: bool = False,
            covers_info: bool = True) -> list:
    """The DLLDPs of a flit stream: objects with ``.packet`` (the network packet, LPH first)
    and ``.issues`` (empty when every BCRC, length and header checks out).  ``controls=True``
    also returns the DLLCBs (``kind == "control"``, ``.control`` decoded)."""
    d = Deframer(crc_mode, covers_info=covers_info, controls=controls)
    return d.feed(stream) + d.close()



def fill_plength(packet: bytes, crc_mode: bool = True) -> bytes:
    """``packet`` with the PLENGTH its length needs (what :func:`frame_packet` writes), so that
    ``deframe(frame_packet(p))[0].packet == fill_plength(p)`` for every framable packet."""
    plen = layout(len(packet), crc_mode).plength
    return bytes((packet[0], packet[1], (packet[2] & 0xC0) | (plen >> 8), plen & 0xFF)) + \
        bytes(packet[4:])
